//! Loading one work unit: a reader thread feeding a binary COPY on the
//! worker's connection through a bounded channel (the workers and their
//! order are [`crate::schedule`]'s). A work unit is a source's unit
//! ([`SourceUnit`]) with what the landing does around its rows.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::progress::Progress;
use crate::schedule::{execute, Progressed, Schedule};
use bytes::Bytes;
use pgharbor_conn::ConnConfig;
use pgharbor_copy_binary::Row;
use pgharbor_core::cell::Cell;
use pgharbor_core::plan::{Plan, RowKey, TablePlan};
use pgharbor_core::report::LossyCounts;
use pgharbor_pgwriter::encode::RowEncoder;
use pgharbor_pgwriter::load::{copy_chunks, Chunk};
use pgharbor_pgwriter::{ddl, WriteError};
pub use pgharbor_source::{RowSink, SourceUnit, UnitRange, UnitReader};
use pgharbor_verify::{RowHasher, TableDigest};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Encoded bytes per chunk sent to the COPY: rows are gathered up to this
/// size, and a larger row is sent in pieces of this size, so the channel
/// and the connection's write buffer hold at most a few of them whatever
/// the size of a value. Memory per worker is then bounded by a small
/// multiple of the largest value (the source's copy, the encoded row, and
/// the previous encoded row while its last pieces are in the channel).
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks buffered between a reader and its COPY.
const CHANNEL_CHUNKS: usize = 4;

/// One piece of work: rows of one table, and what the landing does with
/// them besides loading.
#[derive(Debug, Clone, Copy)]
pub struct WorkUnit {
    /// Index into the plan's tables.
    pub table: usize,
    /// Rows covered.
    pub range: UnitRange,
    /// The unit creates the table in the same transaction as its COPY
    /// (which then writes the rows frozen), and records it there in
    /// [`crate::created`]'s record.
    pub creates_table: bool,
    /// The unit's number in a resume journal: its completion is recorded in
    /// the same transaction as its rows (see [`crate::journal::into_existing`]).
    pub journal_id: Option<i32>,
}

impl WorkUnit {
    /// The rows the unit covers, as its source reads them.
    pub fn source_unit(&self) -> SourceUnit {
        SourceUnit {
            table: self.table,
            range: self.range,
        }
    }
}

impl From<SourceUnit> for WorkUnit {
    /// A plain load of the source's unit (the landing marks what else it does).
    fn from(unit: SourceUnit) -> Self {
        WorkUnit {
            table: unit.table,
            range: unit.range,
            creates_table: false,
            journal_id: None,
        }
    }
}

/// What loading one unit produced.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitResult {
    /// Rows PostgreSQL accepted.
    pub rows: u64,
    /// COPY bytes sent.
    pub bytes: u64,
    /// Lossy changes.
    pub lossy: LossyCounts,
    /// Seconds spent.
    pub seconds: f64,
    /// Count and checksum of the rows read, hashed as verification hashes
    /// them, when asked for and every row could be hashed.
    pub source_digest: Option<TableDigest>,
}

/// Load every unit with one worker per reader, on the run's one pool of
/// workers; `cancel` stops them (their `COPY`s too). Results are per plan
/// table.
pub async fn load_all(
    target: &ConnConfig,
    plan: &Arc<Plan>,
    units: Vec<WorkUnit>,
    readers: Vec<Box<dyn UnitReader>>,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<Vec<UnitResult>, MigrateError> {
    let mut schedule = Schedule::default();
    for unit in units {
        schedule.load(unit, Vec::new());
    }
    let progressed = Progressed::new(schedule, plan);
    let workers = readers.len();
    let executed = execute(
        progressed, target, plan, readers, workers, progress, false, cancel,
    )
    .await?;
    Ok(executed.loaded)
}

/// Keeps autovacuum away from the tables being loaded, without changing them:
/// from a table's first unit to its last, a connection of its own holds
/// `SHARE UPDATE EXCLUSIVE` on it, the lock autovacuum needs and skips a
/// table for when it cannot have it. It blocks
/// neither `COPY` nor reads. Without it autovacuum analyses half-loaded
/// tables (for an expression index such as Open WebUI's full-text one, that
/// evaluates the expression over a 30,000-row sample), and when it is still
/// at work as the load ends, the index builds wait `deadlock_timeout` (1 s)
/// for it to be cancelled. The finish's `ANALYZE` gathers the statistics.
/// Best effort: when the lock cannot be had within a second (a wraparound
/// vacuum, an application's lock) the load goes on unguarded. The lock ends
/// with the connection, so nothing outlives an interrupted run.
#[derive(Default)]
pub(crate) struct TableGuards {
    held: tokio::sync::Mutex<HashMap<usize, Option<tokio_postgres::Client>>>,
}

impl TableGuards {
    /// Lock the plan's table `table` against autovacuum, unless it is
    /// locked (or could not be) already. A table its unit creates is not
    /// guarded: its transaction holds it alone until it commits.
    pub(crate) async fn take(&self, target: &ConnConfig, plan: &Plan, table: usize) {
        let mut held = self.held.lock().await;
        if held.contains_key(&table) {
            return;
        }
        let guard = Self::lock(target, &plan.tables[table].spec.name.to_string()).await;
        held.insert(table, guard);
    }

    async fn lock(target: &ConnConfig, name: &str) -> Option<tokio_postgres::Client> {
        let client = crate::target::connect(target).await.ok()?;
        let lock = format!(
            "BEGIN; SET LOCAL lock_timeout = '1s'; LOCK TABLE {name} IN SHARE UPDATE EXCLUSIVE MODE"
        );
        client.batch_execute(&lock).await.ok()?;
        Some(client)
    }

    /// Let autovacuum (and the index builds) at the table again, once its
    /// last unit is loaded.
    pub(crate) async fn release(&self, table: usize) {
        let guard = self
            .held
            .lock()
            .await
            .get_mut(&table)
            .and_then(Option::take);
        if let Some(client) = guard {
            // A failed COMMIT leaves the lock to the connection's end, on drop.
            let _ = client.batch_execute("COMMIT").await;
        }
    }

    /// Release every guard still held (after a failed run).
    pub(crate) async fn release_all(&self) {
        let tables: Vec<usize> = self.held.lock().await.keys().copied().collect();
        for table in tables {
            self.release(table).await;
        }
    }
}

/// Load one unit in one transaction. Gives the reader back in every case.
pub(crate) async fn load_unit(
    client: &tokio_postgres::Client,
    plan: &Arc<Plan>,
    unit: WorkUnit,
    reader: Box<dyn UnitReader>,
    progress: Arc<dyn Progress>,
    digesting: bool,
) -> (Box<dyn UnitReader>, Result<UnitResult, MigrateError>) {
    let started = Instant::now();
    let table = &plan.tables[unit.table];
    let creates = unit.creates_table;
    let doing = format!("loading table {}", table.spec.name);
    if let Err(e) = begin(client, table, creates).await {
        return (reader, Err(e.into()));
    }
    let (tx, rx) = mpsc::channel::<Chunk>(CHANNEL_CHUNKS);
    let plan_for_reader = plan.clone();
    let hasher = digesting.then(|| crate::verify::row_hasher(plan, unit.table));
    let reading = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let outcome = read_and_encode(
            &mut *reader,
            &plan_for_reader,
            unit,
            &tx,
            &*progress,
            hasher,
        );
        (reader, outcome)
    });
    let columns: Vec<String> = table
        .loaded_columns()
        .into_iter()
        .map(|i| table.spec.columns[i].name.clone())
        .collect();
    let copied = copy_chunks(client, &table.spec.name, &columns, creates, rx).await;
    let (reader, read_outcome) = match reading.await {
        Ok(pair) => pair,
        Err(e) => panic!("reader thread panicked: {e}"),
    };
    let outcome = match (read_outcome, copied) {
        // When the target broke the COPY, the reader only saw a closed channel:
        // the target's error is the one that explains it.
        (Err(e), Err(copy_err)) if e.kind() == MigrateErrorKind::Write => Err(copy_err.into()),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e.into()),
        (Ok((bytes, lossy, source_digest)), Ok(rows)) => Ok(UnitResult {
            rows,
            bytes,
            lossy,
            seconds: started.elapsed().as_secs_f64(),
            source_digest,
        }),
    };
    let outcome = match (outcome, unit.journal_id) {
        (Ok(result), Some(id)) => match client
            .execute(crate::journal::into_existing::MARK_DONE, &[&id])
            .await
        {
            Ok(_) => Ok(result),
            Err(e) => Err(WriteError::from_pg(e, "recording progress").into()),
        },
        (outcome, _) => outcome,
    };
    let end = if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    if let Err(e) = client.batch_execute(end).await {
        if outcome.is_ok() {
            return (reader, Err(WriteError::from_pg(e, &doing).into()));
        }
    }
    (reader, outcome)
}

/// Open the unit's transaction, creating its table in it when the unit
/// creates the table.
///
/// Its commit does not wait for the WAL to reach the disk
/// (`synchronous_commit = off`, for this transaction only): the worker goes
/// on while the server's WAL writer flushes it, instead of waiting for the
/// flush after every unit. Nothing is reported done on that commit alone:
/// every run commits a transaction of its own with the server's
/// `synchronous_commit` after its loads (an index build, `ANALYZE`, the
/// removal of the run's record or resume journal), and that commit flushes
/// the WAL of every unit before it. A server crash in between loses the
/// unit's rows and its journal entry together, so `--resume` loads it again.
async fn begin(
    client: &tokio_postgres::Client,
    table: &TablePlan,
    creates: bool,
) -> Result<(), WriteError> {
    let doing = format!("creating table {}", table.spec.name);
    client
        .batch_execute("BEGIN; SET LOCAL synchronous_commit = off")
        .await
        .map_err(|e| WriteError::from_pg(e, &doing))?;
    if creates {
        let sql = format!(
            "{}; {}",
            ddl::create_table(&table.spec),
            crate::created::record_sql(&table.spec.name)
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| WriteError::from_pg(e, &doing))?;
    }
    Ok(())
}

/// The reader side: rows → encoded chunks → channel. Returns bytes, lossy
/// counts, and with a `hasher` the digest of the rows read (the source side
/// of verification: the very fields sent, or, for a table the target
/// computes columns of, the cells encoded again; `None` when a row could
/// not be hashed, for verification to read the source again).
fn read_and_encode(
    reader: &mut dyn UnitReader,
    plan: &Plan,
    unit: WorkUnit,
    tx: &mpsc::Sender<Chunk>,
    progress: &dyn Progress,
    mut hasher: Option<RowHasher>,
) -> Result<(u64, LossyCounts, Option<TableDigest>), MigrateError> {
    let table = &plan.tables[unit.table];
    let types = table.spec.columns.iter().map(|c| c.pg_type).collect();
    let mut encoder = RowEncoder::new(types, plan.policy);
    let loaded = table.loaded_columns();
    let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
    let mut bytes = 0u64;
    let mut rows_in_buffer = 0u64;
    let mut digest = TableDigest::default();
    let send =
        |buffer: &mut Vec<u8>, rows: &mut u64, bytes: &mut u64| -> Result<(), MigrateError> {
            let data = Bytes::from(std::mem::replace(
                buffer,
                Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4),
            ));
            *bytes += data.len() as u64;
            progress.rows_sent(&table.source_name, *rows, data.len() as u64);
            *rows = 0;
            pieces(data).try_for_each(|piece| {
                tx.blocking_send(Chunk::Data(piece))
                    .map_err(|_| stopped(table))
            })
        };
    let sent_whole = table.computed_by_target.is_empty()
        && loaded.iter().copied().eq(0..table.spec.columns.len());
    reader.read(table, unit.source_unit(), &mut |rowid, cells| {
        let row_start = buffer.len();
        encoder
            .encode_row(cells, &loaded, &mut buffer)
            .map_err(|e| {
                let key = row_key(table, rowid, cells);
                let column = &table.spec.columns[e.column].name;
                MigrateError::new(
                    MigrateErrorKind::Conversion,
                    format!(
                        "table {:?}, row {key}, column {column:?}: {}",
                        table.source_name, e.reason
                    ),
                )
            })?;
        if let Some(h) = hasher.as_mut() {
            let hashed = if sent_whole {
                Row::parse(&buffer[row_start..])
                    .ok()
                    .map(|row| h.hash_fields(row.fields()))
            } else {
                h.hash_cells(cells).ok()
            };
            match hashed {
                Some(hash) => digest.add(hash),
                None => hasher = None,
            }
        }
        rows_in_buffer += 1;
        if buffer.len() >= CHUNK_BYTES {
            send(&mut buffer, &mut rows_in_buffer, &mut bytes)?;
        }
        Ok(())
    })?;
    if !buffer.is_empty() {
        send(&mut buffer, &mut rows_in_buffer, &mut bytes)?;
    }
    tx.blocking_send(Chunk::End).map_err(|_| stopped(table))?;
    Ok((bytes, encoder.lossy(), hasher.map(|_| digest)))
}

/// `data` in pieces of at most [`CHUNK_BYTES`], sharing its memory.
fn pieces(data: Bytes) -> impl Iterator<Item = Bytes> {
    (0..data.len())
        .step_by(CHUNK_BYTES)
        .map(move |start| data.slice(start..data.len().min(start + CHUNK_BYTES)))
}

fn stopped(table: &TablePlan) -> MigrateError {
    MigrateError::new(
        MigrateErrorKind::Write,
        format!(
            "loading table {}: the target stopped accepting rows",
            table.spec.name
        ),
    )
}

/// Name a row for a person: by primary key values, else by rowid.
pub fn row_key(table: &TablePlan, rowid: Option<i64>, cells: &[Cell<'_>]) -> String {
    match &table.row_key {
        RowKey::Columns(cols) if !cols.is_empty() => cols
            .iter()
            .map(|i| format!("{}={}", table.spec.columns[*i].name, cells[*i].preview()))
            .collect::<Vec<_>>()
            .join(", "),
        _ => rowid
            .map(|r| format!("rowid={r}"))
            .unwrap_or_else(|| "(no key)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_row_travels_in_pieces_sharing_its_memory() {
        let data = Bytes::from(vec![7u8; 2 * CHUNK_BYTES + 5]);
        let start = data.as_ptr();
        let sizes: Vec<(usize, usize)> = pieces(data)
            .map(|p| (p.len(), p.as_ptr() as usize - start as usize))
            .collect();
        assert_eq!(
            sizes,
            [
                (CHUNK_BYTES, 0),
                (CHUNK_BYTES, CHUNK_BYTES),
                (5, 2 * CHUNK_BYTES)
            ]
        );
        assert_eq!(pieces(Bytes::new()).count(), 0);
    }
}
