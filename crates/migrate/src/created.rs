//! The record of the tables a schema-creating run made (SQLite and Chroma
//! `migrate` without `--into-existing`), kept in the target so that what a
//! failed run leaves behind is known exactly, whatever stopped it: a
//! restarted server, a terminated connection, `kill -9`, a full disk.
//!
//! * Each table is recorded (by oid and name, in [`SCHEMA`]) in the same
//!   transaction that creates it: a table of the run exists only if it is
//!   recorded.
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

use crate::error::{pg_error, MigrateError};
use crate::progress::Progress;
use pgharbor_conn::ConnConfig;
use pgharbor_core::schema::{quote_literal, QualifiedName};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// The schema holding the record.
pub const SCHEMA: &str = "pgharbor_created";

use pgharbor_conn::RECONNECT_PAUSE;
pub use pgharbor_conn::{reconnect_wait, RECONNECT_ENV};

/// How long the clean-up waits for a lock on a table it drops.
const DROP_LOCK_TIMEOUT: &str = "10s";

/// Create the (empty) record, once the target was checked and before the
/// first table is created.
pub async fn open(client: &Client) -> Result<(), MigrateError> {
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS pgharbor_created;
             COMMENT ON SCHEMA pgharbor_created IS 'pgharbor: tables a migrate run created and has not finished (removed by the run, or by the next one)';
             CREATE TABLE IF NOT EXISTS pgharbor_created.relation (oid oid PRIMARY KEY, name text NOT NULL);",
        )
        .await
        .map_err(pg_error("recording the tables this run creates"))
}

/// The statement recording `table`, to run in the transaction creating it.
pub fn record_sql(table: &QualifiedName) -> String {
    let name = quote_literal(&table.to_string());
    format!("INSERT INTO pgharbor_created.relation (oid, name) VALUES ({name}::regclass, {name})")
}

/// The tables are the user's now: remove the record.
pub async fn close(client: &Client) -> Result<(), MigrateError> {
    client
        .batch_execute("DROP SCHEMA IF EXISTS pgharbor_created CASCADE")
        .await
        .map_err(pg_error(
            "removing the record of the tables this run created",
        ))
}

/// Drop the tables an earlier failed run recorded and the record; returns
/// the tables dropped (none when there is no record).
pub async fn remove_leftovers(
    client: &Client,
    progress: &dyn Progress,
) -> Result<Vec<String>, MigrateError> {
    let recorded: bool = client
        .query_one(
            "SELECT to_regclass('pgharbor_created.relation') IS NOT NULL",
            &[],
        )
        .await
        .map_err(pg_error("looking for tables a failed run left"))?
        .get(0);
    if !recorded {
        return Ok(Vec::new());
    }
    let removed = drop_recorded(client).await?;
    if !removed.is_empty() {
        progress.phase(&format!(
            "removing the tables a failed earlier run created: {}",
            removed.join(", ")
        ));
    }
    Ok(removed)
}

/// Drop every recorded table that still has its recorded oid and name,
/// then the record, in one transaction; returns the tables dropped.
async fn drop_recorded(client: &Client) -> Result<Vec<String>, MigrateError> {
    let doing = "removing the tables a failed run created";
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"
        ))
        .await
        .map_err(pg_error(doing))?;
    let names: Vec<String> = client
        .query(
            "SELECT r.name FROM pgharbor_created.relation r \
             WHERE to_regclass(r.name) = r.oid ORDER BY 1",
            &[],
        )
        .await
        .map_err(pg_error(doing))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut sql: String = names
        .iter()
        .map(|n| format!("DROP TABLE IF EXISTS {n} CASCADE; "))
        .collect();
    sql.push_str("DROP SCHEMA pgharbor_created CASCADE; COMMIT");
    if let Err(e) = client.batch_execute(&sql).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(pg_error(doing)(e));
    }
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
}

/// A new connection to the target, retried until `wait` has passed.
pub(crate) async fn reconnect(config: &ConnConfig, wait: Duration) -> Result<Client, MigrateError> {
    let deadline = Instant::now() + wait;
    loop {
        match crate::target::connect(config).await {
            Ok(client) => return Ok(client),
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
        Ok(client) => drop_recorded(&client).await,
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
