//! Verification of a PostgreSQL copy by reading it back: every table read
//! back from the target in the same COPY format and hashed the same way as
//! the source rows were on their way ([`super::digest`]); counts and
//! checksums must match.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::postgres::catalog::SourceTable;
use crate::postgres::data::{large_objects_digest, stream_digest, SourceDigests};
use crate::postgres::Session;
use crate::progress::Progress;
use crate::run::saying;
use crate::stop::Crew;
use futures_util::StreamExt;
use pgharbor_conn::ConnConfig;
use pgharbor_verify::{RowMultiset, TableDigest};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// Differing rows are named only for tables up to this many rows (the
/// diagnosis holds one hash per row in memory).
const NAME_ROWS_UP_TO: u64 = 5_000_000;
/// Rows named per table.
const ROWS_NAMED: usize = 10;

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

/// Pair each table's source digest with its target digest (when read).
pub fn checks(
    tables: &[SourceTable],
    source: &SourceDigests,
    target: Option<&BTreeMap<usize, TableDigest>>,
) -> Vec<TableCheck> {
    tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let digest = source.get(&i).copied().unwrap_or_default();
            let found = target.and_then(|d| d.get(&i));
            TableCheck {
                table: t.name.to_string(),
                source_rows: digest.rows,
                target_rows: found.map(|d| d.rows),
                source_checksum: digest.hex(),
                target_checksum: found.map(|d| d.hex()),
            }
        })
        .collect()
}

/// Read every table back from the target over `jobs` connections and pair
/// it with its source digest; `cancel` stops them.
pub async fn check_tables(
    target: &ConnConfig,
    session: &Session,
    tables: &Arc<Vec<SourceTable>>,
    source: &SourceDigests,
    jobs: usize,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<Vec<TableCheck>, MigrateError> {
    let checks = checks(tables, source, None);
    progress.phase("verifying");
    let results = Arc::new(Mutex::new(checks));
    let queue = Arc::new(Mutex::new(0..tables.len()));
    let mut crew = Crew::new(cancel);
    for _ in 0..jobs.max(1).min(tables.len().max(1)) {
        let (client, stoppable) = session.connect_target(target).await?;
        let (queue, results, tables) =
            (Arc::clone(&queue), Arc::clone(&results), Arc::clone(tables));
        crew.spawn(vec![stoppable], async move {
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
    crew.join(MigrateErrorKind::Verify, "verify").await?;
    let checks = std::mem::take(&mut *results.lock().expect("verify results"));
    Ok(checks)
}

/// Digest one table on the target, as its rows were hashed on the source.
pub async fn target_digest(
    client: &Client,
    table: &SourceTable,
) -> Result<TableDigest, MigrateError> {
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

/// A verification failure naming every table that differs and, where
/// `sides` can still read both (the source inside the copy's snapshot),
/// sample rows by their primary key.
pub async fn fail_on_mismatch(
    checks: &[TableCheck],
    tables: &[SourceTable],
    sides: Option<(&Client, &Client)>,
) -> Result<(), MigrateError> {
    let mut bad = Vec::new();
    for (check, table) in checks.iter().zip(tables).filter(|(c, _)| !c.matches()) {
        let rows = check.target_rows.unwrap_or_default();
        let mut line = if rows == check.source_rows {
            format!("{}: same {rows} rows but different content", check.table)
        } else {
            format!(
                "{}: {} rows on the source, {rows} on the target",
                check.table, check.source_rows
            )
        };
        if let Some((source, target)) =
            sides.filter(|_| check.source_rows.max(rows) <= NAME_ROWS_UP_TO)
        {
            let named = differing_rows(source, target, table).await?;
            if !named.is_empty() {
                line.push_str(&format!(" ({})", named.join("; ")));
            }
        }
        bad.push(line);
    }
    if bad.is_empty() {
        return Ok(());
    }
    Err(MigrateError::new(
        MigrateErrorKind::Verify,
        format!("verification failed: {}", bad.join("; ")),
    ))
}

/// Sample rows present on one side only, named by primary key (or by the
/// whole row when the table has none).
async fn differing_rows(
    source: &Client,
    target: &Client,
    table: &SourceTable,
) -> Result<Vec<String>, MigrateError> {
    let key = key_expression(source, table).await?;
    let sql = format!(
        "COPY (SELECT {key}, md5(ROW({})::text) FROM ONLY {}) TO STDOUT",
        table.columns.join(", "),
        table.name
    );
    let mut rows = RowMultiset::default();
    for (client, is_source) in [(source, true), (target, false)] {
        let stream = client.copy_out(&sql).await.map_err(|e| {
            MigrateError::from(pgharbor_pgwriter::WriteError::from_pg(
                e,
                "naming differing rows",
            ))
        })?;
        futures_util::pin_mut!(stream);
        let mut carry = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                MigrateError::from(pgharbor_pgwriter::WriteError::from_pg(
                    e,
                    "naming differing rows",
                ))
            })?;
            carry.extend_from_slice(&chunk);
            while let Some(end) = carry.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = carry.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..end]).into_owned();
                let (key, hash) = line.rsplit_once('\t').unwrap_or((&line, ""));
                let hash = xxhash_rust::xxh3::xxh3_128(line.as_bytes())
                    ^ xxhash_rust::xxh3::xxh3_128(hash.as_bytes());
                let key = || key.to_string();
                if is_source {
                    rows.add_source(hash, key);
                } else {
                    rows.add_target(hash, key);
                }
            }
        }
    }
    Ok(rows.differences(ROWS_NAMED))
}

/// `format('id=%s', id)` over the primary key columns, else the row itself.
async fn key_expression(source: &Client, table: &SourceTable) -> Result<String, MigrateError> {
    let name = table.name.to_string();
    let row = source
        .query_one(
            "SELECT coalesce(string_agg(format('%L || ''='' || coalesce(%I::text, ''NULL'')', a.attname, a.attname),
                                        ' || '', '' || ' ORDER BY k.ord), '')
             FROM pg_index i
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = $1::text::regclass AND i.indisprimary",
            &[&name],
        )
        .await
        .map_err(crate::postgres::source_error("reading the primary key"))?;
    let key: String = row.get(0);
    Ok(if key.is_empty() {
        format!("left(ROW({})::text, 200)", table.columns.join(", "))
    } else {
        key
    })
}

/// Compare a source database with a target without copying: every table of
/// the source (inside one snapshot) against the same table on the target,
/// by row count and checksum; differing rows are named. `cancel` stops the
/// reading on both sides.
pub async fn compare_databases(
    source: &ConnConfig,
    target: &ConnConfig,
    jobs: usize,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<Vec<TableCheck>, MigrateError> {
    let session = Session::exported(source).await?;
    let tables = Arc::new(crate::postgres::catalog::tables(session.holder()).await?);
    let digests =
        crate::postgres::data::source_digests(source, &session, Arc::clone(&tables), jobs, cancel)
            .await
            .map_err(saying("interrupted during verification"))?;
    let checks = check_tables(target, &session, &tables, &digests, jobs, progress, cancel)
        .await
        .map_err(saying("interrupted during verification"))?;
    let (target_client, _) = session.connect_target(target).await?;
    fail_on_mismatch(&checks, &tables, Some((session.holder(), &target_client))).await?;
    Ok(checks)
}
