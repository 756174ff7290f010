//! # pgharbor-source
//!
//! The contract between the pipeline (`pgharbor-migrate`) and a source of
//! rows (`pgharbor-sqlite`, `pgharbor-chroma`): a source crate implements
//! these traits without depending on the pipeline, and the pipeline runs any
//! source through them.
//!
//! * [`RowSource`]: the plan of what the source holds, its rows divided into
//!   [`SourceUnit`]s (whole tables, or rowid ranges of large ones), a
//!   [`UnitReader`] per worker, and whether the source changed while it was
//!   read.
//! * [`UnitReader`]: streams the rows of one unit, as
//!   [`Cell`](pgharbor_core::cell::Cell)s, into a [`RowSink`].
//! * [`SourceError`]: what went wrong on the source side (a kind, the
//!   context, the cause as its `source()`), or the sink's own error passed
//!   back through the reader unchanged.
//!
//! What the pipeline does with a unit in the target (creating its table in
//! the same transaction, recording it in a resume journal) is the
//! pipeline's: it wraps each [`SourceUnit`] in a work unit of its own.

pub mod error;

pub use error::{SourceError, SourceErrorKind};

use pgharbor_core::cell::Cell;
use pgharbor_core::plan::{Plan, TablePlan};
use std::sync::Arc;

/// Which rows of a table a unit covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitRange {
    /// The whole table.
    WholeTable,
    /// Rows with `first <= rowid <= last`.
    Rowids {
        /// First rowid.
        first: i64,
        /// Last rowid.
        last: i64,
    },
}

/// One part of a source's rows: rows of one table of its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceUnit {
    /// Index into the plan's tables.
    pub table: usize,
    /// Rows covered.
    pub range: UnitRange,
}

/// Receives each row: the source row id (if any) and its cells. Its error
/// stops the read and comes back out of [`UnitReader::read`] unchanged.
pub type RowSink<'a> = dyn FnMut(Option<i64>, &[Cell<'_>]) -> Result<(), SourceError> + 'a;

/// Reads source rows for units; one per worker, used on a blocking thread.
pub trait UnitReader: Send + 'static {
    /// Call `on_row` with the row id (if any) and cells of every row of
    /// `unit`, whose table is `table`.
    fn read(
        &mut self,
        table: &TablePlan,
        unit: SourceUnit,
        on_row: &mut RowSink<'_>,
    ) -> Result<(), SourceError>;
}

/// Where a run's rows come from.
pub trait RowSource: Send {
    /// The plan: tables (largest first), their target specs and row keys.
    fn plan(&self) -> &Arc<Plan>;
    /// The plan's rows as units: whole tables, or rowid ranges of large
    /// ones (the units of one table in order), for `jobs` workers.
    fn work_units(&self, jobs: usize) -> Result<Vec<SourceUnit>, SourceError>;
    /// `count` readers, one per worker, all reading the same snapshot.
    fn readers(&self, count: usize) -> Result<Vec<Box<dyn UnitReader>>, SourceError>;
    /// Whether the source changed while the run read it.
    fn changed_since_taken(&self) -> Result<bool, SourceError>;
}
