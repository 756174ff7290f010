//! The journals of older pgharbor versions, one schema per copy path, and
//! their upgrade into [`super::SCHEMA`]:
//! * `_pgharbor` (the PostgreSQL copy): `copy_run (source, stage, started,
//!   finished)`, `copy_table`, `copy_post_data` — the last two dropped once
//!   the copy finished;
//! * `pgharbor_resume` (`--into-existing`): `unit`, `source_rows`,
//!   `dropped_fk` and, since secondary indexes are dropped for the load,
//!   `dropped_index`;
//! * `pgharbor_created` (schema-creating runs): `relation (oid, name, run)`,
//!   `run` missing in the oldest.
//!
//! [`upgrade`] moves every row into the new journal and drops the old
//! schemas in one transaction, so an interrupted older run is resumed (or
//! its tables removed) by this version exactly as by the one that wrote it,
//! and a copy an older version finished stays finished.

use super::{created::run_number, ensure_sql, CopyPath};
use crate::error::{pg_error, MigrateError};
use tokio_postgres::Client;

/// The schema of an older pgharbor's PostgreSQL copy journal.
pub const COPY_SCHEMA: &str = "_pgharbor";

/// The schema of an older pgharbor's `--into-existing` journal.
pub const RESUME_SCHEMA: &str = "pgharbor_resume";

/// The schema of an older pgharbor's record of the tables it created.
pub const CREATED_SCHEMA: &str = "pgharbor_created";

/// Moves each older journal's rows into the new one and drops it. The
/// copy path's and `--into-existing`'s run rows get this run's number; a
/// recorded table keeps the number of the run that created it (its lock
/// tells whether that run still lives).
const MOVE_ROWS: &str = "DO $$ BEGIN
    IF to_regclass('_pgharbor.copy_run') IS NOT NULL THEN
      INSERT INTO pgharbor_journal.run (id, path, source, stage, started, finished)
        SELECT current_setting('pgharbor.run')::integer, 'postgres_copy', source, stage, started, finished
        FROM _pgharbor.copy_run LIMIT 1;
      IF to_regclass('_pgharbor.copy_table') IS NOT NULL THEN
        INSERT INTO pgharbor_journal.copy_table SELECT name, part, parts, rows FROM _pgharbor.copy_table;
      END IF;
      IF to_regclass('_pgharbor.copy_post_data') IS NOT NULL THEN
        INSERT INTO pgharbor_journal.copy_post_data SELECT entry FROM _pgharbor.copy_post_data;
      END IF;
      IF EXISTS (SELECT 1 FROM _pgharbor.copy_run WHERE stage = 'finished') THEN
        DROP TABLE pgharbor_journal.copy_table, pgharbor_journal.copy_post_data;
      END IF;
      DROP SCHEMA _pgharbor CASCADE;
    END IF;
    IF to_regclass('pgharbor_resume.unit') IS NOT NULL THEN
      INSERT INTO pgharbor_journal.run (id, path, stage)
        VALUES (current_setting('pgharbor.run')::integer, 'into_existing', 'loading');
      INSERT INTO pgharbor_journal.existing_unit
        SELECT id, level, table_name, first_rowid, last_rowid, done FROM pgharbor_resume.unit;
      INSERT INTO pgharbor_journal.existing_source_rows SELECT table_name, n FROM pgharbor_resume.source_rows;
      INSERT INTO pgharbor_journal.existing_dropped_fk
        SELECT table_name, name, definition FROM pgharbor_resume.dropped_fk;
      IF to_regclass('pgharbor_resume.dropped_index') IS NOT NULL THEN
        INSERT INTO pgharbor_journal.existing_dropped_index
          SELECT table_name, name, definition, tablespace FROM pgharbor_resume.dropped_index;
      END IF;
      DROP SCHEMA pgharbor_resume CASCADE;
    END IF;
    IF to_regclass('pgharbor_created.relation') IS NOT NULL THEN
      IF EXISTS (SELECT 1 FROM pg_attribute
                 WHERE attrelid = 'pgharbor_created.relation'::regclass AND attname = 'run') THEN
        EXECUTE 'INSERT INTO pgharbor_journal.created_table SELECT oid, name, run FROM pgharbor_created.relation';
      ELSE
        INSERT INTO pgharbor_journal.created_table SELECT oid, name, NULL FROM pgharbor_created.relation;
      END IF;
      DROP SCHEMA pgharbor_created CASCADE;
    END IF;
  END $$";

/// The copy paths whose journal an older pgharbor left in the target.
async fn legacy_paths(client: &Client) -> Result<Vec<CopyPath>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT to_regclass('_pgharbor.copy_run') IS NOT NULL, \
                    to_regclass('pgharbor_resume.unit') IS NOT NULL, \
                    to_regclass('pgharbor_created.relation') IS NOT NULL",
            &[],
        )
        .await?;
    let paths = [
        CopyPath::PostgresCopy,
        CopyPath::IntoExisting,
        CopyPath::CreateSchema,
    ];
    Ok(paths
        .into_iter()
        .enumerate()
        .filter(|(i, _)| row.get::<_, bool>(*i))
        .map(|(_, path)| path)
        .collect())
}

/// Upgrade the journals an older pgharbor left in the target (none: nothing
/// is written), in one transaction.
pub async fn upgrade(client: &Client) -> Result<(), MigrateError> {
    let doing = "upgrading the journal an older pgharbor left in the target";
    let paths = legacy_paths(client).await.map_err(pg_error(doing))?;
    if paths.is_empty() {
        return Ok(());
    }
    let moved = client
        .batch_execute(&format!(
            "BEGIN; {ensure}; SET LOCAL pgharbor.run = '{run}'; {MOVE_ROWS}; COMMIT",
            ensure = ensure_sql(&paths),
            run = run_number()
        ))
        .await;
    if let Err(e) = moved {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(pg_error(doing)(e));
    }
    Ok(())
}
