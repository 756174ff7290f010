//! # pgharbor-migrate
//!
//! The migration pipeline, shared by every source:
//!
//! 1. **inspect** and **plan**: the source crate reads its schema and values and
//!    produces a [`Plan`](pgharbor_core::plan::Plan) ([`sqlite::plan_file`]),
//!    which the CLI prints for `--dry-run`.
//! 2. **load** ([`load`]): work units (a table, or a rowid range of a large
//!    table) are spread over `--jobs` workers; each worker reads on its own
//!    thread inside one shared source snapshot, encodes binary COPY and streams it
//!    over its own PostgreSQL connection, with bounded buffers.
//! 3. **finish** ([`finish`]): primary keys, unique constraints and indexes are
//!    built in parallel, then foreign keys (added `NOT VALID` and validated,
//!    orphans reported), identity sequences moved above the data, views, ANALYZE.
//! 4. **verify** ([`verify`]): per table row count and content checksum on both
//!    sides, with sample keys of differing rows.
//!
//! Sources plug into these steps: [`sqlite`] (a new schema planned from the
//! values), [`existing`] (the application's own schema, `--into-existing`,
//! with [`resume`]) and [`chroma`] (Chroma collections into pgvector tables
//! or Open WebUI's `document_chunk`, proved by counts, checksums and exact
//! neighbours, the vector index's recall reported) and [`postgres`]
//! (another PostgreSQL database: schema by the real `pg_dump`, rows by binary
//! COPY from server to server); [`presets`] holds
//! application knowledge (Open WebUI); [`source_spec`] parses the SOURCE
//! argument once and checks the options that go with its kind.
//!
//! A run that creates its tables records them in the target as it creates
//! them ([`created`]), so a failed run removes exactly those, or names them
//! when the target is out of reach and the next run removes them.
//!
//! [`target`] connects to the target (creating the database when it is missing
//! and allowed) and checks what already exists there.

pub mod chroma;
pub mod created;
pub mod error;
pub mod existing;
pub mod finish;
pub mod load;
pub mod postgres;
pub mod presets;
pub mod progress;
pub mod resume;
pub mod source_spec;
pub mod sqlite;
pub mod target;
pub mod verify;

pub use error::{MigrateError, MigrateErrorKind};
pub use progress::{Progress, SilentProgress};
