//! # pgharbor-sqlite
//!
//! The SQLite source of the pipeline:
//!
//! 1. [`open`]: open a database file read-only, never writing, checkpointing or
//!    changing its journal mode, with one read snapshot that every reader
//!    thread shares ([`open::SourceSnapshot`]), so the copy is consistent even
//!    while the owning application keeps writing.
//! 2. [`inspect`]: read the schema (tables, columns, keys, indexes, foreign keys,
//!    defaults, generated columns, views, triggers, virtual tables).
//! 3. [`profile`] and [`planner`]: look at the values actually stored and give
//!    each column the narrowest PostgreSQL type that holds every value exactly.
//! 4. [`read`]: stream rows (optionally a rowid range) as [`pgharbor_core::cell::Cell`]s.
//! 5. [`source`]: the file as the pipeline's row source
//!    ([`pgharbor_source::RowSource`]): planning it in one call, its work
//!    units (rowid ranges of large tables), a reader per worker inside the
//!    snapshot, and whether the application wrote to it meanwhile.
//!
//! ```no_run
//! use pgharbor_sqlite::{open::SourceSnapshot, inspect, planner};
//! let snapshot = SourceSnapshot::open("app.db".as_ref(), 2)?;
//! let schema = inspect::inspect(snapshot.connection())?;
//! let plan = planner::plan(&snapshot, &schema, &planner::PlanOptions::default(), 2)?;
//! println!("{} tables", plan.tables.len());
//! # Ok::<(), pgharbor_sqlite::SqliteError>(())
//! ```

pub mod defaults;
pub mod error;
pub mod inspect;
pub mod open;
pub mod planner;
pub mod profile;
pub mod read;
pub mod source;
pub mod sqltext;

pub use error::{SqliteError, SqliteErrorKind};
pub use source::SqliteSource;
