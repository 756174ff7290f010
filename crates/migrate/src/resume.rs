//! The journal of an `--into-existing` run, kept in the target database so a
//! run killed at any moment (`kill -9`, a lost connection, a full disk) can be
//! finished with `--resume`.
//!
//! Before loading, the run writes its work units, the source's row counts and
//! the foreign keys and secondary indexes it drops into the schema [`SCHEMA`]. Each unit marks itself
//! done in the same transaction that commits its rows, so after a crash every
//! unit is either fully loaded and marked, or absent: `--resume` loads exactly
//! the unmarked units again, then finishes and verifies everything. The
//! journal is removed when the run succeeds.

use crate::error::{pg_error, MigrateError, MigrateErrorKind};
use crate::load::UnitRange;
use tokio_postgres::Client;

/// The schema holding the journal.
pub const SCHEMA: &str = "pgharbor_resume";

/// Marks unit `$1` done (run inside the unit's transaction).
pub const MARK_DONE: &str = "UPDATE pgharbor_resume.unit SET done = true WHERE id = $1";

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
}

/// Whether a journal exists in the target.
pub async fn exists(client: &Client) -> Result<bool, MigrateError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&SCHEMA],
        )
        .await
        .map_err(pg_error("looking for an interrupted run"))?;
    Ok(row.get(0))
}

/// Write a new journal (one transaction).
pub async fn create(client: &Client, journal: &Journal) -> Result<(), MigrateError> {
    let doing = "writing the resume journal";
    client
        .batch_execute(
            "BEGIN;
             CREATE SCHEMA pgharbor_resume;
             CREATE TABLE pgharbor_resume.unit (id integer PRIMARY KEY, level integer NOT NULL, table_name text NOT NULL, first_rowid bigint, last_rowid bigint, done boolean NOT NULL DEFAULT false);
             CREATE TABLE pgharbor_resume.source_rows (table_name text PRIMARY KEY, n bigint NOT NULL);
             CREATE TABLE pgharbor_resume.dropped_fk (table_name text NOT NULL, name text NOT NULL, definition text NOT NULL);
             CREATE TABLE pgharbor_resume.dropped_index (table_name text NOT NULL, name text NOT NULL, definition text NOT NULL, tablespace text);",
        )
        .await
        .map_err(pg_error(doing))?;
    for u in &journal.units {
        let (first, last) = match u.range {
            UnitRange::WholeTable => (None, None),
            UnitRange::Rowids { first, last } => (Some(first), Some(last)),
        };
        client
            .execute(
                "INSERT INTO pgharbor_resume.unit VALUES ($1, $2, $3, $4, $5, false)",
                &[&u.id, &u.level, &u.table, &first, &last],
            )
            .await
            .map_err(pg_error(doing))?;
    }
    for (table, n) in &journal.source_rows {
        client
            .execute(
                "INSERT INTO pgharbor_resume.source_rows VALUES ($1, $2)",
                &[table, n],
            )
            .await
            .map_err(pg_error(doing))?;
    }
    for fk in &journal.dropped {
        client
            .execute(
                "INSERT INTO pgharbor_resume.dropped_fk VALUES ($1, $2, $3)",
                &[&fk.table, &fk.name, &fk.definition],
            )
            .await
            .map_err(pg_error(doing))?;
    }
    for index in &journal.dropped_indexes {
        client
            .execute(
                "INSERT INTO pgharbor_resume.dropped_index VALUES ($1, $2, $3, $4)",
                &[
                    &index.table,
                    &index.name,
                    &index.definition,
                    &index.tablespace,
                ],
            )
            .await
            .map_err(pg_error(doing))?;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(pg_error(doing))
}

/// Read the journal of an interrupted run.
pub async fn read(client: &Client) -> Result<Journal, MigrateError> {
    let doing = "reading the resume journal";
    let units = client
        .query("SELECT id, level, table_name, first_rowid, last_rowid, done FROM pgharbor_resume.unit ORDER BY id", &[])
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
            "SELECT table_name, n FROM pgharbor_resume.source_rows ORDER BY 1",
            &[],
        )
        .await
        .map_err(pg_error(doing))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let dropped = client
        .query(
            "SELECT table_name, name, definition FROM pgharbor_resume.dropped_fk",
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
    let dropped_indexes = read_dropped_indexes(client).await?;
    Ok(Journal {
        units,
        source_rows,
        dropped,
        dropped_indexes,
    })
}

/// The journal's dropped indexes (none in a journal written before indexes
/// were dropped for the load).
async fn read_dropped_indexes(client: &Client) -> Result<Vec<DroppedIndex>, MigrateError> {
    let doing = "reading the resume journal's dropped indexes";
    let journaled: bool = client
        .query_one(
            "SELECT to_regclass('pgharbor_resume.dropped_index') IS NOT NULL",
            &[],
        )
        .await
        .map_err(pg_error(doing))?
        .get(0);
    if !journaled {
        return Ok(Vec::new());
    }
    Ok(client
        .query(
            "SELECT table_name, name, definition, tablespace FROM pgharbor_resume.dropped_index",
            &[],
        )
        .await
        .map_err(pg_error(doing))?
        .iter()
        .map(|r| DroppedIndex {
            table: r.get(0),
            name: r.get(1),
            definition: r.get(2),
            tablespace: r.get(3),
        })
        .collect())
}

/// Remove the journal.
pub async fn remove(client: &Client) -> Result<(), MigrateError> {
    client
        .batch_execute("DROP SCHEMA IF EXISTS pgharbor_resume CASCADE")
        .await
        .map_err(pg_error("removing the resume journal"))
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
