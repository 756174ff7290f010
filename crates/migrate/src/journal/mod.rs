//! The journal every copy path keeps in its target database, in one schema
//! ([`SCHEMA`]) and one format, so that a run stopped at any moment (`kill
//! -9`, a lost connection, a full disk) is finished, or cleaned up, by the
//! next one, and a finished copy is known as finished.
//!
//! * `run`: one row per run in progress (and per finished PostgreSQL copy):
//!   its copy path ([`CopyPath`]), its identity (the number of the process
//!   that started it, [`created::run_number`]), the source it copies from
//!   where the path checks it, its stage, when it started and finished.
//! * Each copy path's own tables, named after it and following the same
//!   rules — progress is written in the same transaction as the rows it
//!   describes, and what a run drops is written before it is dropped:
//!   - `--into-existing` ([`into_existing`]): `existing_unit` (marked done
//!     with the unit's rows), `existing_source_rows`, `existing_dropped_fk`,
//!     `existing_dropped_index`;
//!   - the PostgreSQL → PostgreSQL copy ([`postgres_copy`]): `copy_table`
//!     (a table's parts, each with its rows), `copy_post_data` (with each
//!     entry);
//!   - a schema-creating run ([`created`]): `created_table` (each table, in
//!     the transaction creating it).
//!
//! A path's tables are created with its first run. When a run ends, its
//! `run` row and its path's tables go (the PostgreSQL copy keeps its `run`
//! row, stage `finished`, so `apply` does not copy again; the record of
//! created tables, shared by the runs creating tables, goes when it is
//! empty), and the schema with the last row ([`drop_if_unused`]). Creating
//! and dropping the schema take one advisory lock, so runs into the same
//! database at the same time never drop each other's journal.
//!
//! A database holding an older pgharbor's journals (`_pgharbor`,
//! `pgharbor_resume`, `pgharbor_created`) is upgraded in one transaction by
//! the first run that writes ([`legacy::upgrade`]); until then, `apply`'s
//! check of a finished copy reads the older layout as it is.

pub mod created;
pub mod into_existing;
pub mod legacy;
pub mod postgres_copy;

use tokio_postgres::GenericClient;

/// The journal's schema.
pub const SCHEMA: &str = "pgharbor_journal";

/// Every schema a pgharbor journal lives in: [`SCHEMA`] and those of older
/// versions ([`legacy`]). They record the runs into a database, not its
/// data: copying a database that holds one leaves them out.
pub const SCHEMAS: [&str; 4] = [
    SCHEMA,
    legacy::COPY_SCHEMA,
    legacy::RESUME_SCHEMA,
    legacy::CREATED_SCHEMA,
];

/// The first key of pgharbor's advisory locks in a target database
/// (`pghc`); the second is a run's number, or [`LAYOUT_LOCK`].
pub(crate) const LOCK_CLASS: i32 = 0x7067_6863;

/// The second key of the lock held while the journal's schema is created
/// or dropped (run numbers are positive).
const LAYOUT_LOCK: i32 = -1;

/// The copy path a run takes, as the `run` table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyPath {
    /// SQLite into the application's own tables (`--into-existing`).
    IntoExisting,
    /// PostgreSQL → PostgreSQL (`migrate postgres://… postgres://…`, `apply`).
    PostgresCopy,
    /// SQLite or Chroma into tables the run creates.
    CreateSchema,
}

impl CopyPath {
    /// The name stored in `run.path`.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyPath::IntoExisting => "into_existing",
            CopyPath::PostgresCopy => "postgres_copy",
            CopyPath::CreateSchema => "create_schema",
        }
    }
}

impl CopyPath {
    /// The statements creating the path's own tables when missing.
    fn tables(self) -> &'static str {
        match self {
            CopyPath::IntoExisting => into_existing::TABLES,
            CopyPath::PostgresCopy => postgres_copy::TABLES,
            CopyPath::CreateSchema => created::TABLES,
        }
    }
}

/// The schema and the `run` table, created when missing.
const RUN_TABLE: &str = "
    CREATE SCHEMA IF NOT EXISTS pgharbor_journal;
    COMMENT ON SCHEMA pgharbor_journal IS 'pgharbor: the journal of the copies into this database (removed with its last run; see pgharbor migrate --resume)';
    CREATE TABLE IF NOT EXISTS pgharbor_journal.run (id integer NOT NULL, path text NOT NULL, source text,
        stage text NOT NULL, started timestamptz NOT NULL DEFAULT now(), finished timestamptz,
        PRIMARY KEY (id, path));";

/// The statements that take the layout lock and create the schema, the
/// `run` table and the tables of `paths` when missing; to run inside a
/// transaction, which holds the lock until it ends.
pub(crate) fn ensure_sql(paths: &[CopyPath]) -> String {
    let mut sql = format!("SELECT pg_advisory_xact_lock({LOCK_CLASS}, {LAYOUT_LOCK}); {RUN_TABLE}");
    for path in paths {
        sql.push_str(path.tables());
    }
    sql
}

/// Create the journal's tables when missing and add this run's `run` row,
/// inside the transaction `client` is in (or the implicit one of a batch).
pub(crate) async fn begin_run(
    client: &impl GenericClient,
    path: CopyPath,
    source: Option<&str>,
    stage: &str,
) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(&ensure_sql(&[path])).await?;
    client
        .execute(
            "INSERT INTO pgharbor_journal.run (id, path, source, stage) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id, path) DO NOTHING",
            &[&created::run_number(), &path.as_str(), &source, &stage],
        )
        .await?;
    Ok(())
}

/// Whether the journal holds a run of `path`.
pub(crate) async fn has_run(
    client: &impl GenericClient,
    path: CopyPath,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT to_regclass('pgharbor_journal.run') IS NOT NULL",
            &[],
        )
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(false);
    }
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pgharbor_journal.run WHERE path = $1)",
            &[&path.as_str()],
        )
        .await?
        .get(0))
}

/// Drop the journal's schema when it holds no run and no recorded table,
/// in a transaction of its own; otherwise leave it to the run that ends
/// last.
pub(crate) async fn drop_if_unused(
    client: &tokio_postgres::Client,
) -> Result<(), tokio_postgres::Error> {
    let dropped = client
        .batch_execute(&format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock({LOCK_CLASS}, {LAYOUT_LOCK});
             DO $$ DECLARE used boolean := false; BEGIN
               IF to_regnamespace('pgharbor_journal') IS NULL THEN
                 RETURN;
               END IF;
               IF to_regclass('pgharbor_journal.run') IS NOT NULL THEN
                 used := EXISTS (SELECT 1 FROM pgharbor_journal.run);
               END IF;
               IF NOT used AND to_regclass('pgharbor_journal.created_table') IS NOT NULL THEN
                 used := EXISTS (SELECT 1 FROM pgharbor_journal.created_table);
               END IF;
               IF NOT used THEN
                 DROP SCHEMA pgharbor_journal CASCADE;
               END IF;
             END $$;
             COMMIT"
        ))
        .await;
    if dropped.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    dropped
}
