//! The record of the tables a schema-creating run made (SQLite and Chroma
//! `migrate` without `--into-existing`; copy path `create_schema` of
//! [`super`]), kept in the target so that what a failed run leaves behind
//! is known exactly, whatever stopped it: a restarted server, a terminated
//! connection, `kill -9`, a full disk.
//!
//! * The run writes its `run` row in [`open`], and each table (by oid and
//!   name, in `created_table` of [`SCHEMA`]) in the same transaction that
//!   creates it: a table of the run exists only if it is recorded.
//! * When the run fails, [`clean_up_after_failure`] opens a new connection,
//!   retrying for up to [`reconnect_wait`] while the server comes back, and
//!   drops exactly the recorded tables and the record. The message names
//!   what was removed, or, when the target stays out of reach, what is left
//!   and that running the same command again removes it first.
//! * A new run begins with [`remove_leftovers`]: it drops the tables an
//!   earlier failed run recorded (only while they still have the recorded
//!   oid and name) and the record, so that repeating a failed run works.
//! * Once every table is loaded and finished, [`close`] removes the record:
//!   from then on the tables are the user's, and nothing drops them.
//!
//! Runs into the same database at the same time keep apart: each records its
//! tables under its own run number and holds a session advisory lock on it
//! from [`open`] to [`close`]. A run removes leftovers only of runs whose
//! lock is free (they ended without cleaning up), and the journal's schema
//! is dropped only when it holds no run and no recorded table.

use super::{CopyPath, LOCK_CLASS, SCHEMA};
use crate::error::{pg_error, MigrateError};
use crate::progress::Progress;
use crate::stop::CleanUpConnection;
use pgharbor_conn::ConnConfig;
use pgharbor_core::schema::{quote_literal, QualifiedName};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

use pgharbor_conn::RECONNECT_PAUSE;
pub use pgharbor_conn::{reconnect_wait, RECONNECT_ENV};

/// How long the clean-up waits for a lock on a table it drops.
const DROP_LOCK_TIMEOUT: &str = "10s";

/// The path's table (see [`super::ensure_sql`]), shared by the runs
/// creating tables in the database; it goes with the journal's schema.
pub(super) const TABLES: &str = "
    CREATE TABLE IF NOT EXISTS pgharbor_journal.created_table (oid oid PRIMARY KEY, name text NOT NULL, run integer);";

/// The stage of a schema-creating run while its record exists.
const STAGE: &str = "creating";

/// This process's run number: the runs of one process come one after the
/// other (an Open WebUI move: the database, then the vectors), so they
/// share it.
pub fn run_number() -> i32 {
    static RUN: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mixed = std::process::id().rotate_left(16) ^ nanos;
        (mixed & 0x7fff_ffff).max(1) as i32
    })
}

/// Write this run's `run` row (the record of its tables, empty), once the
/// target was checked and before the first table is created, and take this
/// run's lock (held by `client`'s session until [`close`], or until the
/// session ends).
pub async fn open(client: &Client) -> Result<(), MigrateError> {
    let doing = "recording the tables this run creates";
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({LOCK_CLASS}, {run}); BEGIN",
            run = run_number()
        ))
        .await
        .map_err(pg_error(doing))?;
    let begun = super::begin_run(client, CopyPath::CreateSchema, None, STAGE).await;
    let committed = match begun {
        Ok(()) => client.batch_execute("COMMIT").await,
        Err(e) => Err(e),
    };
    if let Err(e) = committed {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(pg_error(doing)(e));
    }
    Ok(())
}

/// The statement recording `table`, to run in the transaction creating it.
pub fn record_sql(table: &QualifiedName) -> String {
    let name = quote_literal(&table.to_string());
    format!(
        "INSERT INTO pgharbor_journal.created_table (oid, name, run) VALUES ({name}::regclass, {name}, {})",
        run_number()
    )
}

/// The tables are the user's now: remove this run's record and `run` row
/// (and the schema when no other run uses it) and let go of the run's lock.
pub async fn close(client: &Client) -> Result<(), MigrateError> {
    let doing = "removing the record of the tables this run created";
    client
        .batch_execute(&format!(
            "DELETE FROM pgharbor_journal.created_table WHERE run = {run};
             DELETE FROM pgharbor_journal.run WHERE id = {run} AND path = 'create_schema';
             SELECT pg_advisory_unlock({LOCK_CLASS}, {run});",
            run = run_number()
        ))
        .await
        .map_err(pg_error(doing))?;
    super::drop_if_unused(client).await.map_err(pg_error(doing))
}

/// Let go of this run's lock on `client`'s session after a failure, so
/// that the clean-up (on a new connection) may remove its record; nothing
/// to do when that session is gone.
pub async fn release(client: &Client) {
    let _ = client
        .batch_execute(&format!(
            "SELECT pg_advisory_unlock({LOCK_CLASS}, {run})",
            run = run_number()
        ))
        .await;
}

/// Drop the tables an earlier failed run recorded and the record (after
/// upgrading the journal an older pgharbor left); returns the tables
/// dropped (none when there is no record).
pub async fn remove_leftovers(
    client: &Client,
    progress: &dyn Progress,
) -> Result<Vec<String>, MigrateError> {
    super::legacy::upgrade(client).await?;
    let recorded: bool = client
        .query_one(
            "SELECT to_regclass('pgharbor_journal.created_table') IS NOT NULL",
            &[],
        )
        .await
        .map_err(pg_error("looking for tables a failed run left"))?
        .get(0);
    if !recorded {
        return Ok(Vec::new());
    }
    let removed = drop_recorded(client, Runs::Ended).await?;
    if !removed.is_empty() {
        progress.phase(&format!(
            "removing the tables a failed earlier run created: {}",
            removed.join(", ")
        ));
    }
    Ok(removed)
}

/// Whose recorded tables to drop.
#[derive(Clone, Copy)]
enum Runs {
    /// Those of runs that ended without cleaning up: another run's, whose
    /// lock is free (or recorded by a pgharbor without run numbers).
    Ended,
    /// This run's.
    This,
}

impl Runs {
    /// The condition on `column` (a run number) selecting these runs. A
    /// free lock of an ended run is taken to test it, and kept until the
    /// transaction ends (`pg_try_advisory_xact_lock`), so that run cannot
    /// seem to come back meanwhile.
    fn condition(self, column: &str) -> String {
        let run = run_number();
        match self {
            Runs::Ended => format!(
                "({column} IS NULL OR ({column} <> {run} AND pg_try_advisory_xact_lock({LOCK_CLASS}, {column})))"
            ),
            Runs::This => format!("{column} = {run}"),
        }
    }
}

/// Drop the recorded tables of `runs` that still have their recorded oid
/// and name, their rows of the record and their `run` rows, in one
/// transaction, then the journal's schema when no run uses it; returns the
/// tables dropped.
async fn drop_recorded(client: &Client, runs: Runs) -> Result<Vec<String>, MigrateError> {
    let doing = "removing the tables a failed run created";
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"
        ))
        .await
        .map_err(pg_error(doing))?;
    let rows = match client
        .query(
            &format!(
                "SELECT r.oid, r.name, to_regclass(r.name) = r.oid \
                 FROM pgharbor_journal.created_table r WHERE {} ORDER BY 2",
                runs.condition("r.run")
            ),
            &[],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(pg_error(doing)(e));
        }
    };
    let mut names = Vec::new();
    let mut sql = String::new();
    for row in &rows {
        let oid: u32 = row.get(0);
        let name: String = row.get(1);
        if row.get::<_, Option<bool>>(2) == Some(true) {
            sql.push_str(&format!("DROP TABLE IF EXISTS {name} CASCADE; "));
            names.push(name);
        }
        sql.push_str(&format!(
            "DELETE FROM pgharbor_journal.created_table WHERE oid = {oid}; "
        ));
    }
    sql.push_str(&format!(
        "DELETE FROM pgharbor_journal.run r WHERE r.path = 'create_schema' AND {}; COMMIT",
        runs.condition("r.id")
    ));
    if let Err(e) = client.batch_execute(&sql).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(pg_error(doing)(e));
    }
    super::drop_if_unused(client)
        .await
        .map_err(pg_error(doing))?;
    Ok(names)
}

/// The tables of a run whose creation is known to have committed, for the
/// message when the target cannot be reached after a failure.
#[derive(Debug, Default)]
pub struct Committed {
    tables: Mutex<BTreeSet<String>>,
}

impl Committed {
    /// `table` was created and its transaction committed.
    pub fn add(&self, table: &QualifiedName) {
        self.tables
            .lock()
            .expect("committed tables lock")
            .insert(table.to_string());
    }

    fn names(&self) -> Vec<String> {
        self.tables
            .lock()
            .expect("committed tables lock")
            .iter()
            .cloned()
            .collect()
    }
}

/// Progress that also notes the tables whose load created and committed
/// them (a unit creating its table is the table's only unit), passing every
/// event on.
pub struct CommitTracking {
    inner: Arc<dyn Progress>,
    committed: Arc<Committed>,
    /// Source name → target table, for the tables created by their load.
    created_by_load: Vec<(String, QualifiedName)>,
}

impl CommitTracking {
    /// Track the tables of `created_by_load` (source name, target table).
    pub fn new(
        inner: Arc<dyn Progress>,
        committed: Arc<Committed>,
        created_by_load: Vec<(String, QualifiedName)>,
    ) -> Arc<Self> {
        Arc::new(CommitTracking {
            inner,
            committed,
            created_by_load,
        })
    }
}

impl Progress for CommitTracking {
    fn phase(&self, name: &str) {
        self.inner.phase(name);
    }
    fn table_started(&self, table: &str, rows: u64) {
        self.inner.table_started(table, rows);
    }
    fn rows_sent(&self, table: &str, rows: u64, bytes: u64) {
        self.inner.rows_sent(table, rows, bytes);
    }
    fn table_finished(&self, table: &str) {
        if let Some((_, target)) = self.created_by_load.iter().find(|(s, _)| s == table) {
            self.committed.add(target);
        }
        self.inner.table_finished(table);
    }
    fn step_finished(&self, table: &str, step: &str) {
        self.inner.step_finished(table, step);
    }
}

/// A new connection to the target for a clean-up, retried until `wait` has
/// passed.
pub(crate) async fn reconnect(
    config: &ConnConfig,
    wait: Duration,
) -> Result<CleanUpConnection, MigrateError> {
    let deadline = Instant::now() + wait;
    loop {
        match crate::target::connect(config).await {
            Ok(client) => return Ok(CleanUpConnection::new(client, config)),
            Err(e) if Instant::now() >= deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(RECONNECT_PAUSE).await,
        }
    }
}

/// After `err`, remove what the run created (see the module overview) and
/// say in the error exactly what the target holds now.
pub async fn clean_up_after_failure(
    config: &ConnConfig,
    committed: &Committed,
    database_created: bool,
    err: MigrateError,
) -> MigrateError {
    let wait = reconnect_wait();
    let outcome = match reconnect(config, wait).await {
        Ok(client) => drop_recorded(&client, Runs::This).await,
        Err(e) => Err(e),
    };
    let database = if database_created {
        format!(
            " The database {:?} this run created stays (empty of pgharbor's tables).",
            config.dbname()
        )
    } else {
        String::new()
    };
    let what = match outcome {
        Ok(removed) if removed.is_empty() => format!(
            "Nothing was kept: no table of this run had been created yet.{database} The same command can be run again"
        ),
        Ok(removed) => format!(
            "Nothing was kept: the {} table(s) this run created were removed ({}).{database} The same command can be run again",
            removed.len(),
            removed.join(", ")
        ),
        Err(cause) => left_behind(&committed.names(), wait, &cause),
    };
    err.also(what)
}

/// The message when the clean-up could not reach the target.
fn left_behind(committed: &[String], wait: Duration, cause: &MigrateError) -> String {
    let tables = if committed.is_empty() {
        "no table whose creation is known to have committed".to_string()
    } else {
        format!(
            "the table(s) {} (created by this run, not completely loaded)",
            committed.join(", ")
        )
    };
    format!(
        "Removing what this run created failed ({}s of retrying; last error: {}): the target keeps {tables}, \
         and the record of them in schema {SCHEMA}. Run the same command again once the server is back: \
         it removes exactly the recorded tables first, then loads everything again",
        wait.as_secs(),
        crate::error::explain(cause)
    )
}
