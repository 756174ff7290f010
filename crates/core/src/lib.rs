//! # pgharbor-core
//!
//! The source-independent model every pgharbor pipeline shares:
//!
//! * [`schema`]: the PostgreSQL target schema a source is planned into
//!   (tables, columns with their [`schema::PgType`], keys, indexes, foreign keys,
//!   views) and the one function that quotes identifiers, [`schema::quote_ident`].
//! * [`cell`]: a borrowed source value ([`cell::Cell`]) as sources hand it to the writer.
//! * [`forms`]: the exact text forms pgharbor recognises (booleans, ISO dates and
//!   timestamps, UUIDs, decimals, JSON). Planning and encoding both use these
//!   functions, so a column is only given a type its values are certain to convert to.
//! * [`plan`]: what a migration will do (tables, per-column conversions and the
//!   reasons for them, load order, objects that are reported instead of copied).
//! * [`report`]: what a migration did, serialisable for `--json`.
//!
//! The pipeline is inspect → plan → load → finish → verify; each source crate
//! produces a [`plan::Plan`] and a row reader, the writer and verifier consume them.

pub mod cell;
pub mod forms;
pub mod plan;
pub mod report;
pub mod schema;
