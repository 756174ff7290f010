//! After the load: keys, indexes, foreign keys, sequences, views, statistics.
//!
//! Index builds (primary keys included, as unique indexes attached afterwards)
//! form one queue shared by `--jobs` connections, largest tables first, so a big
//! table's indexes are built side by side. Foreign keys are added `NOT VALID`,
//! then validated in parallel across referencing tables.
//!
//! Failures here do not lose data, so they are collected and reported (with the
//! SQL that was tried) instead of aborting the run.

use crate::error::MigrateError;
use crate::progress::Progress;
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::{Plan, RowKey, TablePlan};
use pgharbor_core::report::{FinishIssue, OrphanReport};
use pgharbor_core::schema::{ForeignKeySpec, Identity};
use pgharbor_pgwriter::ddl;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio_postgres::Client;

/// What finishing found.
#[derive(Debug, Default)]
pub struct FinishOutcome {
    /// Steps that failed.
    pub issues: Vec<FinishIssue>,
    /// Foreign keys left `NOT VALID` because of orphan rows.
    pub orphans: Vec<OrphanReport>,
}

/// One statement of the finishing work.
#[derive(Debug, Clone)]
struct Statement {
    kind: &'static str,
    name: String,
    sql: String,
}

type Shared = Arc<Mutex<FinishOutcome>>;

/// Run every finishing step with `jobs` connections.
pub async fn finish(
    target: &ConnConfig,
    plan: &Arc<Plan>,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<FinishOutcome, MigrateError> {
    let outcome: Shared = Arc::new(Mutex::new(FinishOutcome::default()));
    progress.phase("building keys and indexes");
    let failed = run_parallel(target, jobs, index_statements(plan), outcome.clone()).await?;
    let client = crate::target::connect(target).await?;
    for table in &plan.tables {
        let pk_index = ddl::primary_key_name(&table.spec.name);
        if table.spec.primary_key.is_some() && !failed.contains(&pk_index) {
            let sql = ddl::attach_primary_key(&table.spec.name);
            if let Err(e) = execute_one(&client, &sql).await {
                record(
                    &outcome,
                    "primary key",
                    table.spec.name.to_string(),
                    &e,
                    sql,
                );
            }
        }
    }
    progress.phase("adding foreign keys");
    let mut added: Vec<(usize, ForeignKeySpec)> = Vec::new();
    for (i, table) in plan.tables.iter().enumerate() {
        for fk in &table.spec.foreign_keys {
            let sql = ddl::add_foreign_key(&table.spec.name, fk);
            match execute_one(&client, &sql).await {
                Ok(()) => added.push((i, fk.clone())),
                Err(e) => record(&outcome, "foreign key", fk.name.clone(), &e, sql),
            }
        }
    }
    validate_foreign_keys(target, plan, jobs, added, outcome.clone()).await?;
    progress.phase("setting sequences, views and statistics");
    for table in &plan.tables {
        set_sequences(&client, table, &outcome).await;
    }
    for view in &plan.views {
        let sql = ddl::create_view(view);
        if let Err(e) = execute_one(&client, &sql).await {
            record(&outcome, "view", view.name.to_string(), &e, sql);
        }
    }
    let analyze = plan
        .tables
        .iter()
        .map(|t| Statement {
            kind: "statistics",
            name: t.spec.name.to_string(),
            sql: ddl::analyze(&t.spec),
        })
        .collect();
    run_parallel(target, jobs, analyze, outcome.clone()).await?;
    let outcome = std::mem::take(&mut *outcome.lock().expect("outcome lock"));
    Ok(outcome)
}

/// Every index build, largest tables first (the plan's order).
fn index_statements(plan: &Plan) -> VecDeque<Statement> {
    let mut statements = VecDeque::new();
    for table in &plan.tables {
        let spec = &table.spec;
        if let Some(pk) = &spec.primary_key {
            statements.push_back(Statement {
                kind: "primary key",
                name: ddl::primary_key_name(&spec.name),
                sql: ddl::primary_key_index(&spec.name, pk),
            });
        }
        for index in &spec.indexes {
            statements.push_back(Statement {
                kind: if index.translated {
                    "index (translated from SQLite)"
                } else {
                    "index"
                },
                name: index.name.clone(),
                sql: ddl::create_index(&spec.name, index),
            });
        }
    }
    statements
}

/// Run statements on `jobs` connections; returns the names of those that failed.
async fn run_parallel(
    target: &ConnConfig,
    jobs: usize,
    statements: VecDeque<Statement>,
    outcome: Shared,
) -> Result<Vec<String>, MigrateError> {
    let workers = jobs.clamp(1, statements.len().max(1));
    let queue = Arc::new(Mutex::new(statements));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let client = crate::target::connect(target).await?;
        let (queue, failed, outcome) = (queue.clone(), failed.clone(), outcome.clone());
        set.spawn(async move {
            loop {
                let Some(statement) = queue.lock().expect("queue lock").pop_front() else {
                    break;
                };
                if let Err(e) = execute_one(&client, &statement.sql).await {
                    failed
                        .lock()
                        .expect("failed lock")
                        .push(statement.name.clone());
                    record(&outcome, statement.kind, statement.name, &e, statement.sql);
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    let failed = std::mem::take(&mut *failed.lock().expect("failed lock"));
    Ok(failed)
}

/// Validate foreign keys, one referencing table per worker at a time (validations
/// of one table would wait for each other's locks anyway).
async fn validate_foreign_keys(
    target: &ConnConfig,
    plan: &Arc<Plan>,
    jobs: usize,
    added: Vec<(usize, ForeignKeySpec)>,
    outcome: Shared,
) -> Result<(), MigrateError> {
    let mut by_table: Vec<(usize, Vec<ForeignKeySpec>)> = Vec::new();
    for (table, fk) in added {
        match by_table.iter_mut().find(|(t, _)| *t == table) {
            Some((_, fks)) => fks.push(fk),
            None => by_table.push((table, vec![fk])),
        }
    }
    let queue = Arc::new(Mutex::new(VecDeque::from(by_table)));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..jobs.max(1) {
        let client = crate::target::connect(target).await?;
        let (queue, plan, outcome) = (queue.clone(), plan.clone(), outcome.clone());
        set.spawn(async move {
            loop {
                let Some((table, fks)) = queue.lock().expect("queue lock").pop_front() else {
                    break;
                };
                for fk in &fks {
                    validate(&client, &plan.tables[table], fk, &outcome).await;
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    Ok(())
}

async fn validate(client: &Client, table: &TablePlan, fk: &ForeignKeySpec, outcome: &Shared) {
    let spec = &table.spec;
    let validate = ddl::validate_constraint(&spec.name, &fk.name);
    let Err(e) = execute_one(client, &validate).await else {
        return;
    };
    let key_columns: Vec<String> = match &table.row_key {
        RowKey::Columns(cols) => cols.iter().map(|i| spec.columns[*i].name.clone()).collect(),
        RowKey::Rowid => Vec::new(),
    };
    let query = ddl::orphan_query(&spec.name, fk, &key_columns);
    match client.query_one(&query, &[]).await {
        Ok(row) if row.get::<_, i64>(0) > 0 => {
            let samples: Option<Vec<Option<String>>> = row.get(1);
            outcome
                .lock()
                .expect("outcome lock")
                .orphans
                .push(OrphanReport {
                    table: spec.name.to_string(),
                    constraint: fk.name.clone(),
                    orphan_rows: row.get::<_, i64>(0) as u64,
                    sample_keys: samples.unwrap_or_default().into_iter().flatten().collect(),
                });
        }
        _ => record(
            outcome,
            "foreign key validation",
            fk.name.clone(),
            &e,
            validate,
        ),
    }
}

/// Run one statement with the extended protocol, which refuses a second
/// statement hidden in translated SQL.
async fn execute_one(client: &Client, sql: &str) -> Result<(), tokio_postgres::Error> {
    client.execute(sql, &[]).await.map(|_| ())
}

fn record(
    outcome: &Mutex<FinishOutcome>,
    kind: &str,
    name: String,
    err: &tokio_postgres::Error,
    sql: String,
) {
    let error = err
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| err.to_string());
    outcome
        .lock()
        .expect("outcome lock")
        .issues
        .push(FinishIssue {
            kind: kind.into(),
            name,
            error,
            sql,
        });
}

async fn set_sequences(client: &Client, table: &TablePlan, outcome: &Mutex<FinishOutcome>) {
    for col in &table.spec.columns {
        if let Some(Identity::ByDefault { source_high_water }) = &col.identity {
            let sql = ddl::set_identity(&table.spec.name, &col.name, *source_high_water);
            if let Err(e) = execute_one(client, &sql).await {
                record(
                    outcome,
                    "sequence",
                    format!("{}.{}", table.spec.name, col.name),
                    &e,
                    sql,
                );
            }
        }
    }
}
