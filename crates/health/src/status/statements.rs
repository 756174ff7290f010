//! The slowest statements from `pg_stat_statements`, or how to turn it on.

use super::postgres::q;
use super::StatusOptions;
use crate::error::{HealthError, Result};
use serde::Serialize;
use tokio_postgres::Client;

/// One statement from `pg_stat_statements`.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// Normalised text (first 300 characters; constants `pg_stat_statements`
    /// leaves in, as in utility statements, replaced too unless
    /// [`StatusOptions::query_text`] says whole), or `<insufficient privilege>`.
    pub query: String,
    /// Executions.
    pub calls: i64,
    /// Total execution time, ms.
    pub total_ms: f64,
    /// Mean execution time, ms.
    pub mean_ms: f64,
    /// Rows returned or affected.
    pub rows: i64,
}

/// The slowest statements, or how to get them.
#[derive(Debug, Clone, Serialize)]
pub struct Statements {
    /// Whether `pg_stat_statements` is usable in the connected database.
    pub installed: bool,
    /// Top statements by total time.
    pub by_total_time: Vec<Statement>,
    /// Top statements by mean time.
    pub by_mean_time: Vec<Statement>,
    /// When not installed: how to enable it, including on managed services.
    pub how_to_enable: Option<String>,
}

/// How to turn on `pg_stat_statements`, self-hosted and on managed services.
pub const ENABLE_PG_STAT_STATEMENTS: &str = "pg_stat_statements is not installed in this database. Self-hosted: add it to shared_preload_libraries in postgresql.conf (or ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'), restart the server, then CREATE EXTENSION pg_stat_statements; \
Azure Database for PostgreSQL flexible server: it is preloaded; allow it in the azure.extensions server parameter, then CREATE EXTENSION pg_stat_statements; \
Amazon RDS / Aurora: preloaded by default (else add it to shared_preload_libraries in the DB parameter group and reboot), then CREATE EXTENSION pg_stat_statements; \
Google Cloud SQL: CREATE EXTENSION pg_stat_statements; \
DigitalOcean and most others: CREATE EXTENSION pg_stat_statements as the admin user";

/// The top statements by total and by mean time (`options.top_statements`
/// of each), their texts as `options.query_text` says.
pub(super) async fn statements(
    c: &Client,
    version_num: i32,
    options: &StatusOptions,
    db: &str,
) -> Result<Statements> {
    let (top, query_text) = (options.top_statements, options.query_text);
    let installed = c
        .query_opt(
            "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'",
            &[],
        )
        .await
        .map_err(q("looking for pg_stat_statements"))?;
    let Some(schema) = installed.map(|r| r.get::<_, String>(0)) else {
        let preloaded = c
            .query_one(
                "SELECT current_setting('shared_preload_libraries') ~ 'pg_stat_statements'",
                &[],
            )
            .await
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false);
        let how = if preloaded {
            format!("pg_stat_statements is loaded but not created in database {db}: CREATE EXTENSION pg_stat_statements;")
        } else {
            ENABLE_PG_STAT_STATEMENTS.to_owned()
        };
        return Ok(Statements {
            installed: false,
            by_total_time: Vec::new(),
            by_mean_time: Vec::new(),
            how_to_enable: Some(how),
        });
    };
    let (total, mean) = if version_num >= 130000 {
        ("total_exec_time", "mean_exec_time")
    } else {
        ("total_time", "mean_time")
    };
    let schema = schema.replace('"', "\"\"");
    let mut lists = Vec::new();
    for order in [total, mean] {
        let sql = format!(
            "SELECT coalesce(left(query, 300), '<insufficient privilege>'), calls, {total}, {mean}, rows
             FROM \"{schema}\".pg_stat_statements ORDER BY {order} DESC LIMIT $1"
        );
        let rows = c.query(&sql, &[&top]).await.map_err(|e| {
            let not_preloaded = e
                .as_db_error()
                .is_some_and(|d| d.message().contains("must be loaded"));
            let mut err = HealthError::postgres("reading pg_stat_statements", e);
            if not_preloaded {
                err = err.context("pg_stat_statements is created but not in shared_preload_libraries; add it there and restart");
            }
            err
        })?;
        lists.push(
            rows.iter()
                .map(|r| Statement {
                    query: query_text.apply(r.get(0)),
                    calls: r.get(1),
                    total_ms: r.get(2),
                    mean_ms: r.get(3),
                    rows: r.get(4),
                })
                .collect::<Vec<_>>(),
        );
    }
    let by_mean_time = lists.pop().unwrap_or_default();
    let by_total_time = lists.pop().unwrap_or_default();
    Ok(Statements {
        installed: true,
        by_total_time,
        by_mean_time,
        how_to_enable: None,
    })
}
