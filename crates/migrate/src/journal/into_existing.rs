//! The journal of an `--into-existing` run (copy path `into_existing` of
//! [`super`]), kept in the target database so a run killed at any moment
//! (`kill -9`, a lost connection, a full disk) can be finished with
//! `--resume`.
//!
//! Before loading, the run writes its `run` row, its work units, the
//! source's row counts (what `--resume` checks the source against) and the
//! foreign keys and secondary indexes it drops, in one transaction, before
//! dropping them. Each unit marks itself done in the same transaction that
//! commits its rows, so after a crash every unit is either fully loaded and
//! marked, or absent: `--resume` loads exactly the unmarked units again,
//! then finishes and verifies everything. The run's rows are removed when it
//! succeeds (and the schema with them when no other run uses it).
//!
//! A run that fails on a value empties the tables it loaded again in the
//! transaction that turns its stage to `restoring` and every unit back to
//! not done ([`empty_for_restore`]); it puts back what it dropped, then
//! removes the journal. Stopped in between, it leaves a journal that
//! promises no rows, and whose restore the next run finishes first.

use super::{CopyPath, SCHEMA};
use crate::error::{pg_error, MigrateError, MigrateErrorKind};
use crate::load::UnitRange;
use tokio_postgres::Client;

/// The path's tables (see [`super::ensure_sql`]).
pub(super) const TABLES: &str = "
    CREATE TABLE IF NOT EXISTS pgharbor_journal.existing_unit (id integer PRIMARY KEY, level integer NOT NULL,
        table_name text NOT NULL, first_rowid bigint, last_rowid bigint, done boolean NOT NULL DEFAULT false);
    CREATE TABLE IF NOT EXISTS pgharbor_journal.existing_source_rows (table_name text PRIMARY KEY, n bigint NOT NULL);
    CREATE TABLE IF NOT EXISTS pgharbor_journal.existing_dropped_fk (table_name text NOT NULL, name text NOT NULL,
        definition text NOT NULL);
    CREATE TABLE IF NOT EXISTS pgharbor_journal.existing_dropped_index (table_name text NOT NULL, name text NOT NULL,
        definition text NOT NULL, tablespace text);";

/// The stage of a run from its start until it fails on a value.
const LOADING: &str = "loading";

/// The stage of a run that failed on a value, from the transaction that
/// emptied its tables again until its journal is removed.
const RESTORING: &str = "restoring";

/// Marks unit `$1` done (run inside the unit's transaction).
pub const MARK_DONE: &str = "UPDATE pgharbor_journal.existing_unit SET done = true WHERE id = $1";

/// A unit as journaled.
#[derive(Debug, Clone)]
pub struct JournaledUnit {
    /// Unit number.
    pub id: i32,
    /// Load level (foreign-key order).
    pub level: i32,
    /// Target table name.
    pub table: String,
    /// Rows covered.
    pub range: UnitRange,
    /// Committed.
    pub done: bool,
}

/// A foreign key dropped for the load, to restore afterwards.
#[derive(Debug, Clone)]
pub struct DroppedForeignKey {
    /// Referencing table.
    pub table: String,
    /// Constraint name.
    pub name: String,
    /// `pg_get_constraintdef` text.
    pub definition: String,
}

/// A secondary index dropped for the load (one backing no constraint), to
/// build again once its table is loaded.
#[derive(Debug, Clone)]
pub struct DroppedIndex {
    /// Its table.
    pub table: String,
    /// Index name.
    pub name: String,
    /// `pg_get_indexdef` text.
    pub definition: String,
    /// Its tablespace, `None` for the database's default.
    pub tablespace: Option<String>,
}

impl DroppedIndex {
    /// From a row of table name, index name, definition and tablespace.
    pub(crate) fn from_row(row: &tokio_postgres::Row) -> DroppedIndex {
        DroppedIndex {
            table: row.get(0),
            name: row.get(1),
            definition: row.get(2),
            tablespace: row.get(3),
        }
    }
}

/// Everything an interrupted run left behind.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// Work units.
    pub units: Vec<JournaledUnit>,
    /// Source rows per source table when the run started.
    pub source_rows: Vec<(String, i64)>,
    /// Foreign keys dropped for the load.
    pub dropped: Vec<DroppedForeignKey>,
    /// Secondary indexes dropped for the load.
    pub dropped_indexes: Vec<DroppedIndex>,
    /// The run failed and emptied its tables again, but was stopped before
    /// it put back what it dropped and removed its journal: no unit is done.
    pub restoring: bool,
}

/// Whether the target holds the journal of an interrupted run (after
/// [`super::legacy::upgrade`], one an older pgharbor left too).
pub async fn exists(client: &Client) -> Result<bool, MigrateError> {
    super::has_run(client, CopyPath::IntoExisting)
        .await
        .map_err(pg_error("looking for an interrupted run"))
}

/// Write a new journal (one transaction).
pub async fn create(client: &Client, journal: &Journal) -> Result<(), MigrateError> {
    let doing = "writing the resume journal";
    client
        .batch_execute("BEGIN")
        .await
        .map_err(pg_error(doing))?;
    if let Err(e) = write(client, journal).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(pg_error(doing)(e));
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(pg_error(doing))
}

/// The statements of [`create`], inside its transaction.
async fn write(client: &Client, journal: &Journal) -> Result<(), tokio_postgres::Error> {
    super::begin_run(client, CopyPath::IntoExisting, None, LOADING).await?;
    for u in &journal.units {
        let (first, last) = match u.range {
            UnitRange::WholeTable => (None, None),
            UnitRange::Rowids { first, last } => (Some(first), Some(last)),
        };
        client
            .execute(
                "INSERT INTO pgharbor_journal.existing_unit VALUES ($1, $2, $3, $4, $5, false)",
                &[&u.id, &u.level, &u.table, &first, &last],
            )
            .await?;
    }
    for (table, n) in &journal.source_rows {
        client
            .execute(
                "INSERT INTO pgharbor_journal.existing_source_rows VALUES ($1, $2)",
                &[table, n],
            )
            .await?;
    }
    for fk in &journal.dropped {
        client
            .execute(
                "INSERT INTO pgharbor_journal.existing_dropped_fk VALUES ($1, $2, $3)",
                &[&fk.table, &fk.name, &fk.definition],
            )
            .await?;
    }
    for index in &journal.dropped_indexes {
        client
            .execute(
                "INSERT INTO pgharbor_journal.existing_dropped_index VALUES ($1, $2, $3, $4)",
                &[
                    &index.table,
                    &index.name,
                    &index.definition,
                    &index.tablespace,
                ],
            )
            .await?;
    }
    Ok(())
}

/// Read the journal of an interrupted run.
pub async fn read(client: &Client) -> Result<Journal, MigrateError> {
    let doing = "reading the resume journal";
    let stage: String = client
        .query_one(
            "SELECT stage FROM pgharbor_journal.run WHERE path = 'into_existing'",
            &[],
        )
        .await
        .map_err(pg_error(doing))?
        .get(0);
    let units = client
        .query("SELECT id, level, table_name, first_rowid, last_rowid, done FROM pgharbor_journal.existing_unit ORDER BY id", &[])
        .await
        .map_err(pg_error(doing))?
        .iter()
        .map(|r| JournaledUnit {
            id: r.get(0),
            level: r.get(1),
            table: r.get(2),
            range: match (r.get::<_, Option<i64>>(3), r.get::<_, Option<i64>>(4)) {
                (Some(first), Some(last)) => UnitRange::Rowids { first, last },
                _ => UnitRange::WholeTable,
            },
            done: r.get(5),
        })
        .collect();
    let source_rows = client
        .query(
            "SELECT table_name, n FROM pgharbor_journal.existing_source_rows ORDER BY 1",
            &[],
        )
        .await
        .map_err(pg_error(doing))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let dropped = client
        .query(
            "SELECT table_name, name, definition FROM pgharbor_journal.existing_dropped_fk",
            &[],
        )
        .await
        .map_err(pg_error(doing))?
        .iter()
        .map(|r| DroppedForeignKey {
            table: r.get(0),
            name: r.get(1),
            definition: r.get(2),
        })
        .collect();
    let dropped_indexes = client
        .query(
            "SELECT table_name, name, definition, tablespace FROM pgharbor_journal.existing_dropped_index",
            &[],
        )
        .await
        .map_err(pg_error(doing))?
        .iter()
        .map(DroppedIndex::from_row)
        .collect();
    Ok(Journal {
        units,
        source_rows,
        dropped,
        dropped_indexes,
        restoring: stage == RESTORING,
    })
}

/// Empty `tables` (qualified, quoted names) again after the run failed,
/// in one transaction with turning its stage to `restoring` and every unit
/// back to not done: whenever the run is stopped, the journal never marks
/// done a unit whose rows are gone.
pub async fn empty_for_restore(
    client: &Client,
    tables: &[String],
) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(&format!(
            "UPDATE pgharbor_journal.run SET stage = '{RESTORING}' WHERE path = 'into_existing';
             UPDATE pgharbor_journal.existing_unit SET done = false;
             TRUNCATE {}",
            tables.join(", ")
        ))
        .await
}

/// Remove the run's journal: its `run` row and the path's tables, in one
/// transaction (and the schema when no other run uses it).
pub async fn remove(client: &Client) -> Result<(), MigrateError> {
    let doing = "removing the resume journal";
    client
        .batch_execute(
            "DO $$ BEGIN
               IF to_regclass('pgharbor_journal.run') IS NOT NULL THEN
                 DELETE FROM pgharbor_journal.run WHERE path = 'into_existing';
               END IF;
             END $$;
             DROP TABLE IF EXISTS pgharbor_journal.existing_unit, pgharbor_journal.existing_source_rows,
               pgharbor_journal.existing_dropped_fk, pgharbor_journal.existing_dropped_index",
        )
        .await
        .map_err(pg_error(doing))?;
    super::drop_if_unused(client).await.map_err(pg_error(doing))
}

/// The error for a run that would start over a journal without being told to.
pub fn journal_in_the_way() -> MigrateError {
    MigrateError::new(
        MigrateErrorKind::Usage,
        format!(
            "an interrupted run left its progress in the target (schema {SCHEMA}): use --resume to finish it, or --truncate to start over"
        ),
    )
}
