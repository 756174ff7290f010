//! Moving the rows: work units (a table, or a range of its pages) spread
//! over `--jobs` workers, each streaming binary COPY from its own source
//! connection — inside the exported snapshot — straight into its own target
//! connection, hashing the rows on the way.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::postgres::catalog::{SequenceState, SourceTable};
use crate::postgres::digest::StreamDigest;
use crate::postgres::{journal, source_error, target_error, Session};
use crate::progress::Progress;
use crate::stop::Crew;
use futures_util::{SinkExt, StreamExt};
use pgharbor_conn::ConnConfig;
use pgharbor_verify::TableDigest;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// Tables above this size are split into page ranges.
const SPLIT_BYTES: i64 = 64 << 20;
/// Large objects are copied in chunks of this many bytes.
const LO_CHUNK: i32 = 1 << 20;

/// What a unit does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitWork {
    /// Copy the rows of pages `[first, last)` (`last` open-ended when `None`)
    /// of table, or the whole table when `pages` is `None`.
    Copy {
        /// Page range, for split tables.
        pages: Option<(i64, Option<i64>)>,
        /// This part's number and the table's number of parts.
        part: (i32, i32),
    },
    /// Only compute the source digest (the table was loaded by an earlier,
    /// interrupted run and is re-verified).
    SourceDigestOnly,
}

/// A unit of the data phase.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Index into the tables.
    pub table: usize,
    /// What to do.
    pub work: UnitWork,
}

/// Plan the units: tables largest first; a table bigger than both
/// [`SPLIT_BYTES`] and its fair share of the work is split into page ranges
/// (TID range scans, PostgreSQL 14+), so one table can use every worker.
pub fn plan_units(
    tables: &[SourceTable],
    done: &HashSet<String>,
    jobs: usize,
    source_major: u32,
) -> Vec<Unit> {
    let total: i64 = tables.iter().map(|t| t.bytes).sum();
    let share = total / jobs.max(1) as i64;
    let mut units = Vec::new();
    for (index, table) in tables.iter().enumerate() {
        if done.contains(&table.name.to_string()) {
            units.push(Unit {
                table: index,
                work: UnitWork::SourceDigestOnly,
            });
            continue;
        }
        let splittable = source_major >= 14 && table.extension_condition.is_none();
        let parts = if splittable && table.bytes > SPLIT_BYTES && table.bytes > share / 2 {
            ((table.bytes / SPLIT_BYTES) as usize).clamp(2, 4 * jobs.max(1)) as i64
        } else {
            1
        };
        if parts == 1 || table.pages < parts {
            units.push(Unit {
                table: index,
                work: UnitWork::Copy {
                    pages: None,
                    part: (0, 1),
                },
            });
            continue;
        }
        let step = (table.pages + parts - 1) / parts;
        for part in 0..parts {
            let first = part * step;
            let last = (part + 1 < parts).then_some((part + 1) * step);
            units.push(Unit {
                table: index,
                work: UnitWork::Copy {
                    pages: Some((first, last)),
                    part: (part as i32, parts as i32),
                },
            });
        }
    }
    units
}

/// The SQL condition of a page range.
fn page_condition(pages: Option<(i64, Option<i64>)>) -> Option<String> {
    let (first, last) = pages?;
    let mut condition = format!("ctid >= '({first},0)'::tid");
    if let Some(last) = last {
        condition.push_str(&format!(" AND ctid < '({last},0)'::tid"));
    }
    Some(condition)
}

/// Per table: rows and the digest of what was read from the source.
pub type SourceDigests = BTreeMap<usize, TableDigest>;

/// Run every unit over `jobs` workers of `crew`; returns the source digests
/// per table.
///
/// Each table's index is sent on `loaded` once all its units are done (so
/// it can be finished while others still copy).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn copy_units(
    source: &ConnConfig,
    target: &ConnConfig,
    session: &Session,
    tables: Arc<Vec<SourceTable>>,
    units: Vec<Unit>,
    jobs: usize,
    progress: Arc<dyn Progress>,
    loaded: mpsc::UnboundedSender<usize>,
    mut crew: Crew,
) -> Result<SourceDigests, MigrateError> {
    let mut remaining: HashMap<usize, usize> = HashMap::new();
    for unit in &units {
        *remaining.entry(unit.table).or_default() += 1;
    }
    let remaining = Arc::new(Mutex::new(remaining));
    let queue = Arc::new(Mutex::new(units.into_iter()));
    let digests = Arc::new(Mutex::new(SourceDigests::new()));
    for _ in 0..jobs.max(1) {
        let (source_client, on_source) = session.connect_source(source).await?;
        let (target_client, on_target) = session.connect_target(target).await?;
        let worker = Worker {
            source: source_client,
            target: target_client,
            tables: Arc::clone(&tables),
            digests: Arc::clone(&digests),
            progress: Arc::clone(&progress),
            remaining: Arc::clone(&remaining),
            loaded: loaded.clone(),
        };
        let queue = Arc::clone(&queue);
        crew.spawn(vec![on_source, on_target], worker.run(queue));
    }
    drop(loaded);
    crew.join(MigrateErrorKind::Write, "copy").await?;
    let digests = std::mem::take(&mut *digests.lock().expect("digests"));
    Ok(digests)
}

struct Worker {
    source: Client,
    target: Client,
    tables: Arc<Vec<SourceTable>>,
    digests: Arc<Mutex<SourceDigests>>,
    progress: Arc<dyn Progress>,
    /// Units left per table.
    remaining: Arc<Mutex<HashMap<usize, usize>>>,
    loaded: mpsc::UnboundedSender<usize>,
}

type UnitQueue = Arc<Mutex<std::vec::IntoIter<Unit>>>;

impl Worker {
    async fn run(mut self, queue: UnitQueue) -> Result<(), MigrateError> {
        loop {
            let next = queue.lock().expect("unit queue").next();
            let Some(unit) = next else {
                return Ok(());
            };
            let digest = match unit.work {
                UnitWork::SourceDigestOnly => self.source_digest(unit.table).await?,
                UnitWork::Copy { pages, part } => self.copy(unit.table, pages, part).await?,
            };
            self.digests
                .lock()
                .expect("digests")
                .entry(unit.table)
                .or_default()
                .merge(digest);
            self.unit_done(unit.table);
        }
    }

    /// Count a unit of `table` as done; the last one announces the table.
    fn unit_done(&self, table: usize) {
        let mut remaining = self.remaining.lock().expect("remaining units");
        let left = remaining.get_mut(&table).expect("planned table");
        *left -= 1;
        if *left == 0 {
            // The finishers may have stopped on an error of their own, which
            // is reported when they are joined.
            let _ = self.loaded.send(table);
        }
    }

    async fn source_digest(&self, index: usize) -> Result<TableDigest, MigrateError> {
        let table = &self.tables[index];
        let sql = format!(
            "COPY ({}) TO STDOUT ({})",
            table.select(None),
            table.copy_format()
        );
        stream_digest(&self.source, &sql, table.binary)
            .await
            .map_err(|e| e.context(format!("re-reading table {} on the source", table.name)))
    }

    async fn copy(
        &mut self,
        index: usize,
        pages: Option<(i64, Option<i64>)>,
        (part, parts): (i32, i32),
    ) -> Result<TableDigest, MigrateError> {
        let table = &self.tables[index];
        let name = table.name.to_string();
        let doing = || format!("copying table {name}");
        if part == 0 {
            self.progress.table_started(&name, 0);
        }
        let read_sql = format!(
            "COPY ({}) TO STDOUT ({})",
            table.select(page_condition(pages).as_deref()),
            table.copy_format()
        );
        let whole = parts == 1;
        let freeze = if whole && table.extension_condition.is_none() {
            ", FREEZE"
        } else {
            ""
        };
        let write_sql = format!(
            "COPY {name} ({}) FROM STDIN ({}{freeze})",
            table.columns.join(", "),
            table.copy_format()
        );
        let tx = self
            .target
            .transaction()
            .await
            .map_err(target_error(doing()))?;
        if whole {
            let clear = match &table.extension_condition {
                None => format!("TRUNCATE ONLY {name}"),
                Some(condition) => format!("DELETE FROM ONLY {name} WHERE {condition}"),
            };
            tx.batch_execute(&clear)
                .await
                .map_err(target_error(doing()))?;
        }
        let reader = self
            .source
            .copy_out(&read_sql)
            .await
            .map_err(source_error(doing()))?;
        let writer = tx
            .copy_in(&write_sql)
            .await
            .map_err(target_error(doing()))?;
        futures_util::pin_mut!(reader, writer);
        let mut digest = StreamDigest::new(table.binary);
        let mut bytes = 0u64;
        while let Some(chunk) = reader.next().await {
            let chunk = chunk.map_err(source_error(doing()))?;
            digest.feed(&chunk).map_err(|e| {
                MigrateError::new(MigrateErrorKind::Source, format!("{}: {e}", doing()))
            })?;
            bytes += chunk.len() as u64;
            self.progress.rows_sent(&name, 0, chunk.len() as u64);
            writer.feed(chunk).await.map_err(target_error(doing()))?;
        }
        let rows = writer.finish().await.map_err(target_error(doing()))?;
        let digest = digest.finish().map_err(|e| {
            MigrateError::new(MigrateErrorKind::Source, format!("{}: {e}", doing()))
        })?;
        if digest.rows != rows {
            return Err(MigrateError::new(
                MigrateErrorKind::Write,
                format!(
                    "{}: read {} rows from the source but the target took {rows}",
                    doing(),
                    digest.rows
                ),
            ));
        }
        journal::part_done(&tx, &name, part, parts, rows as i64).await?;
        tx.commit().await.map_err(target_error(doing()))?;
        tracing::debug!(table = %name, part, parts, rows, bytes, "copied");
        if part + 1 == parts {
            self.progress.table_finished(&name);
        }
        Ok(digest)
    }
}

/// Digest every table on the source (inside the session's snapshot) over
/// `jobs` connections, without copying; `cancel` stops them.
pub async fn source_digests(
    source: &ConnConfig,
    session: &Session,
    tables: Arc<Vec<SourceTable>>,
    jobs: usize,
    cancel: &CancellationToken,
) -> Result<SourceDigests, MigrateError> {
    let queue = Arc::new(Mutex::new(0..tables.len()));
    let digests = Arc::new(Mutex::new(SourceDigests::new()));
    let mut crew = Crew::new(cancel);
    for _ in 0..jobs.max(1).min(tables.len().max(1)) {
        let (client, stoppable) = session.connect_source(source).await?;
        let (queue, digests, tables) = (
            Arc::clone(&queue),
            Arc::clone(&digests),
            Arc::clone(&tables),
        );
        crew.spawn(vec![stoppable], async move {
            loop {
                let next = queue.lock().expect("table queue").next();
                let Some(index) = next else {
                    return Ok(());
                };
                let table = &tables[index];
                let sql = format!(
                    "COPY ({}) TO STDOUT ({})",
                    table.select(None),
                    table.copy_format()
                );
                let digest = stream_digest(&client, &sql, table.binary)
                    .await
                    .map_err(|e| {
                        e.context(format!("reading table {} on the source", table.name))
                    })?;
                digests.lock().expect("digests").insert(index, digest);
            }
        });
    }
    crew.join(MigrateErrorKind::Verify, "verify").await?;
    let digests = std::mem::take(&mut *digests.lock().expect("digests"));
    Ok(digests)
}

/// Digest the rows a `COPY … TO STDOUT` statement produces.
pub async fn stream_digest(
    client: &Client,
    sql: &str,
    binary: bool,
) -> Result<TableDigest, MigrateError> {
    let stream = client.copy_out(sql).await.map_err(|e| {
        MigrateError::from(pgharbor_pgwriter::WriteError::from_pg(e, "reading rows"))
    })?;
    futures_util::pin_mut!(stream);
    let mut digest = StreamDigest::new(binary);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            MigrateError::from(pgharbor_pgwriter::WriteError::from_pg(e, "reading rows"))
        })?;
        digest
            .feed(&chunk)
            .map_err(|e| MigrateError::new(MigrateErrorKind::Verify, e))?;
    }
    digest
        .finish()
        .map_err(|e| MigrateError::new(MigrateErrorKind::Verify, e))
}

/// Set every used sequence of the target to the source's value.
pub async fn set_sequences(
    target: &Client,
    sequences: &[SequenceState],
) -> Result<(), MigrateError> {
    for sequence in sequences {
        let Some(value) = sequence.last_value else {
            continue;
        };
        let name = sequence.name.to_string();
        target
            .execute(
                "SELECT pg_catalog.setval($1::text::regclass, $2, true)",
                &[&name, &value],
            )
            .await
            .map_err(target_error(format!("setting sequence {name}")))?;
    }
    Ok(())
}

/// Copy the contents of every large object (created, with owner and
/// privileges, by the pre-data) in chunks; returns their digest (one "row"
/// per object: its OID and content hash).
pub async fn copy_large_objects(
    source: &Client,
    target: &mut Client,
    oids: &[u32],
) -> Result<TableDigest, MigrateError> {
    let mut digest = TableDigest::default();
    for &oid in oids {
        let doing = || format!("copying large object {oid}");
        let tx = target.transaction().await.map_err(target_error(doing()))?;
        tx.execute(
            "SELECT pg_catalog.lo_create($1) WHERE NOT EXISTS \
             (SELECT 1 FROM pg_catalog.pg_largeobject_metadata WHERE oid = $1)",
            &[&oid],
        )
        .await
        .map_err(target_error(doing()))?;
        tx.execute(
            "SELECT pg_catalog.lo_truncate(fd, 0), pg_catalog.lo_close(fd) \
             FROM pg_catalog.lo_open($1, 131072) AS fd",
            &[&oid],
        )
        .await
        .map_err(target_error(doing()))?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut chunks = LargeObjectChunks::new(oid);
        while let Some((offset, chunk)) =
            chunks.next(source).await.map_err(source_error(doing()))?
        {
            hasher.update(&chunk);
            tx.execute(
                "SELECT pg_catalog.lo_put($1, $2, $3)",
                &[&oid, &offset, &chunk],
            )
            .await
            .map_err(target_error(doing()))?;
        }
        tx.commit().await.map_err(target_error(doing()))?;
        digest.add(large_object_hash(oid, hasher.digest128()));
    }
    Ok(digest)
}

/// Digest the large objects of a database as [`copy_large_objects`] does.
pub async fn large_objects_digest(
    client: &Client,
    oids: &[u32],
) -> Result<TableDigest, MigrateError> {
    let mut digest = TableDigest::default();
    for &oid in oids {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut chunks = LargeObjectChunks::new(oid);
        while let Some((_, chunk)) = chunks
            .next(client)
            .await
            .map_err(target_error(format!("verifying large object {oid}")))?
        {
            hasher.update(&chunk);
        }
        digest.add(large_object_hash(oid, hasher.digest128()));
    }
    Ok(digest)
}

/// Reads a large object in chunks of [`LO_CHUNK`] bytes with `lo_get`.
struct LargeObjectChunks {
    oid: u32,
    offset: i64,
}

impl LargeObjectChunks {
    fn new(oid: u32) -> Self {
        LargeObjectChunks { oid, offset: 0 }
    }

    /// The next chunk and its offset; `None` after the last one.
    async fn next(
        &mut self,
        client: &Client,
    ) -> Result<Option<(i64, Vec<u8>)>, tokio_postgres::Error> {
        let row = client
            .query_one(
                "SELECT pg_catalog.lo_get($1, $2, $3)",
                &[&self.oid, &self.offset, &LO_CHUNK],
            )
            .await?;
        let chunk: Vec<u8> = row.get(0);
        if chunk.is_empty() {
            return Ok(None);
        }
        let at = self.offset;
        self.offset += chunk.len() as i64;
        Ok(Some((at, chunk)))
    }
}

fn large_object_hash(oid: u32, content: u128) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&oid.to_be_bytes());
    h.update(&content.to_be_bytes());
    h.digest128()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgharbor_core::schema::QualifiedName;

    fn table(name: &str, mb: i64) -> SourceTable {
        SourceTable {
            name: QualifiedName::new("public", name),
            bytes: mb << 20,
            pages: (mb << 20) / 8192,
            columns: vec!["id".into()],
            binary: true,
            extension_condition: None,
        }
    }

    #[test]
    fn big_tables_are_split_into_covering_page_ranges() {
        let tables = vec![table("big", 400), table("small", 1)];
        let units = plan_units(&tables, &HashSet::new(), 2, 16);
        let big: Vec<_> = units.iter().filter(|u| u.table == 0).collect();
        assert!(big.len() >= 2, "{units:?}");
        let mut expected_first = 0;
        for (k, unit) in big.iter().enumerate() {
            let UnitWork::Copy {
                pages: Some((first, last)),
                part,
            } = unit.work
            else {
                panic!("{unit:?}");
            };
            assert_eq!(first, expected_first);
            assert_eq!(part, (k as i32, big.len() as i32));
            assert_eq!(last.is_none(), k + 1 == big.len());
            expected_first = last.unwrap_or(0);
        }
        assert_eq!(units.iter().filter(|u| u.table == 1).count(), 1);
        let old_server = plan_units(&tables, &HashSet::new(), 2, 13);
        assert_eq!(old_server.len(), 2, "no TID range scans before 14");
    }

    #[test]
    fn tables_done_earlier_are_only_re_read() {
        let tables = vec![table("a", 1)];
        let done: HashSet<String> = [tables[0].name.to_string()].into();
        let units = plan_units(&tables, &done, 2, 16);
        assert_eq!(units[0].work, UnitWork::SourceDigestOnly);
        assert_eq!(
            page_condition(Some((10, Some(20)))).unwrap(),
            "ctid >= '(10,0)'::tid AND ctid < '(20,0)'::tid"
        );
    }
}
