//! The PostgreSQL → PostgreSQL copy's journal (copy path `postgres_copy`
//! of [`super`]) in the target database, so an interrupted copy can be
//! resumed (`--resume`) and a finished one is known (`apply` does not redo
//! it):
//! * its `run` row: the source it copies from (endpoint and database) and
//!   how far it got (`schema` applied, `data` loaded, `finished`), written
//!   in the transaction applying the schema;
//! * `copy_table`: tables whose rows are in, written in the same transaction
//!   as the rows (a table's parts are all loaded before it is recorded);
//! * `copy_post_data`: post-data entries applied, written in the same
//!   transaction as the entry.
//!
//! When a copy finishes and verifies, `copy_table` and `copy_post_data` are
//! dropped and the `run` row stays, stage `finished`; `--recopy` in
//! `apply` or dropping the database starts over. A copy an older pgharbor
//! journaled in schema `_pgharbor` is read as it is (so `apply` knows it
//! finished) until a run upgrades it ([`super::legacy`]).

use super::legacy::COPY_SCHEMA;
use super::{CopyPath, SCHEMA};
use crate::error::{MigrateError, MigrateErrorKind};
use crate::postgres::target_error;
use tokio_postgres::{Client, Transaction};

/// The path's tables (see [`super::ensure_sql`]).
pub(super) const TABLES: &str = "
    CREATE TABLE IF NOT EXISTS pgharbor_journal.copy_table (name text NOT NULL, part int NOT NULL, parts int NOT NULL,
        rows bigint NOT NULL, PRIMARY KEY (name, part));
    CREATE TABLE IF NOT EXISTS pgharbor_journal.copy_post_data (entry int PRIMARY KEY);";

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

/// Read the journal, if the database has one (in the layout of an older
/// pgharbor when that is all it has).
pub async fn read(client: &Client) -> Result<Option<JournalState>, MigrateError> {
    let doing = "reading the copy journal";
    let run = if super::has_run(client, CopyPath::PostgresCopy)
        .await
        .map_err(target_error(doing))?
    {
        client
            .query_opt(
                "SELECT source, stage FROM pgharbor_journal.run WHERE path = 'postgres_copy'",
                &[],
            )
            .await
            .map(|row| row.map(|row| (SCHEMA, row)))
    } else {
        read_legacy_run(client).await
    }
    .map_err(target_error(doing))?;
    let Some((schema, run)) = run else {
        return Ok(None);
    };
    let stage_text: String = run.get(1);
    let stage = Stage::parse(&stage_text).ok_or_else(|| {
        MigrateError::new(
            MigrateErrorKind::Usage,
            format!("the copy journal in {schema} has an unknown stage {stage_text:?}"),
        )
    })?;
    let mut state = JournalState {
        source: run.get(0),
        stage,
        tables_done: Vec::new(),
        post_data_done: Vec::new(),
    };
    if stage < Stage::Finished {
        let done = client
            .query_one(
                &format!(
                    "SELECT ARRAY(SELECT name FROM {schema}.copy_table GROUP BY name HAVING count(*) = max(parts) ORDER BY 1), \
                     ARRAY(SELECT entry FROM {schema}.copy_post_data ORDER BY 1)"
                ),
                &[],
            )
            .await
            .map_err(target_error(doing))?;
        state.tables_done = done.get(0);
        state.post_data_done = done.get(1);
    }
    Ok(Some(state))
}

/// The run row of a copy an older pgharbor journaled in [`COPY_SCHEMA`],
/// with that schema.
async fn read_legacy_run(
    client: &Client,
) -> Result<Option<(&'static str, tokio_postgres::Row)>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('_pgharbor.copy_run') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    Ok(client
        .query_opt("SELECT source, stage FROM _pgharbor.copy_run", &[])
        .await?
        .map(|row| (COPY_SCHEMA, row)))
}

/// Create the journal for a new copy from `source`, in the transaction that
/// applies the schema.
pub async fn create(tx: &Transaction<'_>, source: &str) -> Result<(), MigrateError> {
    super::begin_run(
        tx,
        CopyPath::PostgresCopy,
        Some(source),
        Stage::Schema.as_str(),
    )
    .await
    .map_err(target_error("creating the copy journal"))
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
        "INSERT INTO pgharbor_journal.copy_table (name, part, parts, rows) VALUES ($1, $2, $3, $4)",
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
        .execute(
            "DELETE FROM pgharbor_journal.copy_table WHERE name = $1",
            &[&name],
        )
        .await
        .map_err(target_error("updating the copy journal"))?;
    Ok(())
}

/// Record a post-data entry as applied (in its transaction).
pub async fn post_data_done(tx: &Transaction<'_>, entry: i32) -> Result<(), MigrateError> {
    tx.execute(
        "INSERT INTO pgharbor_journal.copy_post_data (entry) VALUES ($1)",
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
            "UPDATE pgharbor_journal.run SET stage = $1 WHERE path = 'postgres_copy'",
            &[&stage.as_str()],
        )
        .await
        .map_err(target_error("updating the copy journal"))?;
    Ok(())
}

/// The copy finished and verified: drop the path's tables, keep its `run`
/// row (in one transaction).
pub async fn finish(client: &Client) -> Result<(), MigrateError> {
    client
        .batch_execute(
            "DROP TABLE pgharbor_journal.copy_table, pgharbor_journal.copy_post_data;
             UPDATE pgharbor_journal.run SET stage = 'finished', finished = now() WHERE path = 'postgres_copy';",
        )
        .await
        .map_err(target_error("closing the copy journal"))?;
    Ok(())
}
