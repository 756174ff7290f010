//! The copy's journal in the target database, so an interrupted copy can be
//! resumed (`--resume`) and a finished one is known (`apply` does not redo it).
//!
//! Everything lives in the schema `_pgharbor`:
//! * `copy_run`: one row, the source it copies from and how far it got
//!   (`schema` applied, `data` loaded, `finished`);
//! * `copy_table`: tables whose rows are in, written in the same transaction
//!   as the rows (a table's parts are all loaded before it is recorded);
//! * `copy_post_data`: post-data entries applied, written in the same
//!   transaction as the entry.
//!
//! When a copy finishes and verifies, the work tables are dropped and
//! `copy_run` keeps one row saying so; `--recopy` in `apply` or dropping the
//! database starts over.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::postgres::target_error;
use tokio_postgres::{Client, Transaction};

/// The journal's schema.
pub const SCHEMA: &str = "_pgharbor";

/// How far a copy got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The schema (pre-data) is in.
    Schema,
    /// Every table's rows, large objects and sequences are in.
    Data,
    /// Post-data applied and everything verified.
    Finished,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Schema => "schema",
            Stage::Data => "data",
            Stage::Finished => "finished",
        }
    }

    fn parse(text: &str) -> Option<Stage> {
        match text {
            "schema" => Some(Stage::Schema),
            "data" => Some(Stage::Data),
            "finished" => Some(Stage::Finished),
            _ => None,
        }
    }
}

/// What the journal of a target database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalState {
    /// The source it copies from (endpoint and database, no password).
    pub source: String,
    /// How far it got.
    pub stage: Stage,
    /// Tables all of whose parts are in.
    pub tables_done: Vec<String>,
    /// Post-data entries applied (their positions).
    pub post_data_done: Vec<i32>,
}

/// Read the journal, if the database has one.
pub async fn read(client: &Client) -> Result<Option<JournalState>, MigrateError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('_pgharbor.copy_run') IS NOT NULL", &[])
        .await
        .map_err(target_error("reading the copy journal"))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let run = client
        .query_opt("SELECT source, stage FROM _pgharbor.copy_run", &[])
        .await
        .map_err(target_error("reading the copy journal"))?;
    let Some(run) = run else {
        return Ok(None);
    };
    let stage_text: String = run.get(1);
    let stage = Stage::parse(&stage_text).ok_or_else(|| {
        MigrateError::new(
            MigrateErrorKind::Usage,
            format!("the copy journal in {SCHEMA} has an unknown stage {stage_text:?}"),
        )
    })?;
    let mut state = JournalState {
        source: run.get(0),
        stage,
        tables_done: Vec::new(),
        post_data_done: Vec::new(),
    };
    if stage < Stage::Finished {
        state.tables_done = client
            .query(
                "SELECT name FROM _pgharbor.copy_table GROUP BY name HAVING count(*) = max(parts) ORDER BY 1",
                &[],
            )
            .await
            .map_err(target_error("reading the copy journal"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        state.post_data_done = client
            .query("SELECT entry FROM _pgharbor.copy_post_data ORDER BY 1", &[])
            .await
            .map_err(target_error("reading the copy journal"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
    }
    Ok(Some(state))
}

/// Create the journal for a new copy from `source`, in the transaction that
/// applies the schema.
pub async fn create(tx: &Transaction<'_>, source: &str) -> Result<(), MigrateError> {
    tx.batch_execute(
        "CREATE SCHEMA _pgharbor;
         COMMENT ON SCHEMA _pgharbor IS 'pgharbor: state of a database copy (see pgharbor migrate --resume)';
         CREATE TABLE _pgharbor.copy_run (source text NOT NULL, stage text NOT NULL,
             started timestamptz NOT NULL DEFAULT now(), finished timestamptz);
         CREATE TABLE _pgharbor.copy_table (name text NOT NULL, part int NOT NULL, parts int NOT NULL,
             rows bigint NOT NULL, PRIMARY KEY (name, part));
         CREATE TABLE _pgharbor.copy_post_data (entry int PRIMARY KEY);",
    )
    .await
    .map_err(target_error("creating the copy journal"))?;
    tx.execute(
        "INSERT INTO _pgharbor.copy_run (source, stage) VALUES ($1, $2)",
        &[&source, &Stage::Schema.as_str()],
    )
    .await
    .map_err(target_error("creating the copy journal"))?;
    Ok(())
}

/// Record part `part` of `parts` of a table as loaded (in the transaction
/// holding its rows).
pub async fn part_done(
    tx: &Transaction<'_>,
    name: &str,
    part: i32,
    parts: i32,
    rows: i64,
) -> Result<(), MigrateError> {
    tx.execute(
        "INSERT INTO _pgharbor.copy_table (name, part, parts, rows) VALUES ($1, $2, $3, $4)",
        &[&name, &part, &parts, &rows],
    )
    .await
    .map_err(target_error(format!(
        "recording table {name} in the copy journal"
    )))?;
    Ok(())
}

/// Forget the parts of a table loaded by an earlier run (its rows are about
/// to be replaced).
pub async fn forget_table(client: &Client, name: &str) -> Result<(), MigrateError> {
    client
        .execute("DELETE FROM _pgharbor.copy_table WHERE name = $1", &[&name])
        .await
        .map_err(target_error("updating the copy journal"))?;
    Ok(())
}

/// Record a post-data entry as applied (in its transaction).
pub async fn post_data_done(tx: &Transaction<'_>, entry: i32) -> Result<(), MigrateError> {
    tx.execute(
        "INSERT INTO _pgharbor.copy_post_data (entry) VALUES ($1)",
        &[&entry],
    )
    .await
    .map_err(target_error(
        "recording a post-data entry in the copy journal",
    ))?;
    Ok(())
}

/// Move the copy to `stage`.
pub async fn set_stage(client: &Client, stage: Stage) -> Result<(), MigrateError> {
    client
        .execute(
            "UPDATE _pgharbor.copy_run SET stage = $1",
            &[&stage.as_str()],
        )
        .await
        .map_err(target_error("updating the copy journal"))?;
    Ok(())
}

/// The copy finished and verified: drop the work tables, keep the record.
pub async fn finish(client: &Client) -> Result<(), MigrateError> {
    client
        .batch_execute(
            "DROP TABLE _pgharbor.copy_table, _pgharbor.copy_post_data;
             UPDATE _pgharbor.copy_run SET stage = 'finished', finished = now();",
        )
        .await
        .map_err(target_error("closing the copy journal"))?;
    Ok(())
}
