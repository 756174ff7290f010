//! Verification of a PostgreSQL copy: every table read back from the target
//! in the same COPY format and hashed the same way as the source rows were
//! on their way ([`super::digest`]); counts and checksums must match.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::postgres::catalog::SourceTable;
use crate::postgres::data::{large_objects_digest, stream_digest, SourceDigests};
use crate::postgres::Session;
use crate::progress::Progress;
use pgharbor_conn::ConnConfig;
use pgharbor_verify::TableDigest;
use std::sync::{Arc, Mutex};
use tokio_postgres::Client;

/// The outcome for one table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCheck {
    /// Schema-qualified, quoted name.
    pub table: String,
    /// Rows read from the source.
    pub source_rows: u64,
    /// Rows found on the target (`None` when not verified).
    pub target_rows: Option<u64>,
    /// Source checksum.
    pub source_checksum: String,
    /// Target checksum (`None` when not verified).
    pub target_checksum: Option<String>,
}

impl TableCheck {
    /// Whether the target matches (true when not verified).
    pub fn matches(&self) -> bool {
        self.target_rows.is_none_or(|rows| rows == self.source_rows)
            && self
                .target_checksum
                .as_ref()
                .is_none_or(|sum| *sum == self.source_checksum)
    }
}

/// Read every table back from the target (unless `skip`) over `jobs`
/// connections and pair it with its source digest.
pub async fn check_tables(
    target: &ConnConfig,
    session: &Session,
    tables: &Arc<Vec<SourceTable>>,
    source: &SourceDigests,
    skip: bool,
    jobs: usize,
    progress: Arc<dyn Progress>,
) -> Result<Vec<TableCheck>, MigrateError> {
    let checks: Vec<TableCheck> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let digest = source.get(&i).copied().unwrap_or_default();
            TableCheck {
                table: t.name.to_string(),
                source_rows: digest.rows,
                target_rows: None,
                source_checksum: digest.hex(),
                target_checksum: None,
            }
        })
        .collect();
    if skip {
        return Ok(checks);
    }
    progress.phase("verifying");
    let results = Arc::new(Mutex::new(checks));
    let queue = Arc::new(Mutex::new(0..tables.len()));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..jobs.max(1).min(tables.len().max(1)) {
        let client = session.connect_target(target).await?;
        let (queue, results, tables) =
            (Arc::clone(&queue), Arc::clone(&results), Arc::clone(tables));
        set.spawn(async move {
            loop {
                let next = queue.lock().expect("verify queue").next();
                let Some(index) = next else {
                    return Ok(());
                };
                let digest = target_digest(&client, &tables[index]).await?;
                let mut results = results.lock().expect("verify results");
                results[index].target_rows = Some(digest.rows);
                results[index].target_checksum = Some(digest.hex());
            }
        });
    }
    crate::error::join_workers(set, MigrateErrorKind::Verify, "verify").await?;
    let checks = std::mem::take(&mut *results.lock().expect("verify results"));
    Ok(checks)
}

async fn target_digest(client: &Client, table: &SourceTable) -> Result<TableDigest, MigrateError> {
    let sql = format!(
        "COPY ({}) TO STDOUT ({})",
        table.select(None),
        table.copy_format()
    );
    stream_digest(client, &sql, table.binary)
        .await
        .map_err(|e| e.context(format!("verifying table {} on the target", table.name)))
}

/// Compare the large objects' contents on the target with the source's.
pub async fn check_large_objects(
    target: &Client,
    oids: &[u32],
    source: TableDigest,
) -> Result<(), MigrateError> {
    let found = large_objects_digest(target, oids).await?;
    if found == source {
        return Ok(());
    }
    Err(MigrateError::new(
        MigrateErrorKind::Verify,
        format!(
            "verification failed: the {} large objects differ on the target",
            oids.len()
        ),
    ))
}

/// A verification failure naming every table that differs.
pub fn fail_on_mismatch(checks: &[TableCheck]) -> Result<(), MigrateError> {
    let bad: Vec<String> = checks
        .iter()
        .filter(|c| !c.matches())
        .map(|c| {
            let rows = c.target_rows.unwrap_or_default();
            if rows == c.source_rows {
                format!("{}: same {} rows but different content", c.table, rows)
            } else {
                format!(
                    "{}: {} rows on the source, {rows} on the target",
                    c.table, c.source_rows
                )
            }
        })
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(MigrateError::new(
        MigrateErrorKind::Verify,
        format!("verification failed: {}", bad.join("; ")),
    ))
}
