//! # pgharbor-migrate
//!
//! The migration pipeline, shared by every source:
//!
//! 1. **inspect** and **plan**: the source crate reads its schema and values and
//!    produces a [`Plan`](pgharbor_core::plan::Plan) (`pgharbor_sqlite::source::plan_file`),
//!    which the CLI prints for `--dry-run`.
//! 2. **run** ([`run::run`]): a [`RowSource`] (plan, work units, readers) and
//!    a [`Landing`] (what is done to the target around the rows) make one
//!    [`schedule`] of per-table steps — load each work unit ([`load`]), build
//!    a table's keys and indexes once it is loaded and its foreign keys once
//!    both tables have their keys ([`finish`]), verify a table once it is
//!    loaded ([`verify`]: count and content checksum on both sides, the source
//!    side digested by the load itself) — run by `--jobs` workers, each with a
//!    connection and a source reader. Cancellation is a token the caller
//!    cancels.
//!
//! Sources plug into these steps through `pgharbor-source`'s contract
//! ([`RowSource`], implemented by the source crates: the SQLite file is
//! `pgharbor_sqlite::SqliteSource`), all through [`run::run`]: [`sqlite`] (a
//! new schema planned from the values, landed by [`new_tables`]),
//! [`existing`] (the application's own schema, `--into-existing`, with
//! [`journal`]), [`chroma`] (Chroma collections into pgvector tables or Open
//! WebUI's `document_chunk`; its landing adds the vector index builds and
//! the per-collection proof — counts, checksums, exact neighbours, the
//! vector index's recall — as steps of the same schedule, and a section of
//! the report). [`postgres`] (another PostgreSQL database: schema by the
//! real `pg_dump`, rows by binary COPY from server to server) keeps a
//! sequence of its own;
//! [`presets`] holds application knowledge as data (`presets/*.toml`, a
//! hook for what a rule cannot say: Open WebUI's vectors); [`source_spec`]
//! parses the SOURCE argument once and checks the options that go with its
//! kind.
//!
//! Every copy path keeps one journal in the target ([`journal`], schema
//! `pgharbor_journal`): `--into-existing` its units and what it dropped, so
//! `--resume` finishes a killed run; the PostgreSQL copy its tables and
//! stage, so a copy resumes and a finished one is known; a run that creates
//! its tables records them as it creates them ([`created`]), so a failed
//! run removes exactly those, or names them when the target is out of
//! reach and the next run removes them.
//!
//! [`target`] connects to the target (creating the database when it is missing
//! and allowed) and checks what already exists there.

pub mod chroma;
pub mod error;
pub mod existing;
pub mod finish;
pub mod journal;
pub mod load;
pub mod new_tables;
pub mod postgres;
pub mod presets;
pub mod progress;
pub mod run;
pub mod schedule;
pub mod source_spec;
pub mod sqlite;
mod stop;
pub mod target;
pub mod uploads;
pub mod verify;

pub use error::{MigrateError, MigrateErrorKind};
pub use journal::created;
pub use progress::{Progress, SilentProgress};
pub use run::{run, CancellationToken, Landing, RowSource, RunOptions};
pub use stop::abandon_clean_ups;
