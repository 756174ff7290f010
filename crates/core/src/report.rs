//! What a migration did, for people (a summary table) and scripts (`--json`).

use serde::Serialize;

/// Counts of values changed by an opt-in lossy rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LossyCounts {
    /// Values from which NUL characters were stripped.
    pub nul_stripped: u64,
    /// Values in which invalid UTF-8 was replaced by U+FFFD.
    pub utf8_replaced: u64,
    /// Vectors shorter than their column, zero-padded (exact for cosine ranking).
    pub vectors_padded: u64,
    /// Vectors with at least one component rounded to half precision (`halfvec`).
    pub vectors_rounded_to_half: u64,
}

impl LossyCounts {
    /// Add another set of counts.
    pub fn add(&mut self, other: LossyCounts) {
        self.nul_stripped += other.nul_stripped;
        self.utf8_replaced += other.utf8_replaced;
        self.vectors_padded += other.vectors_padded;
        self.vectors_rounded_to_half += other.vectors_rounded_to_half;
    }

    /// True when nothing was changed.
    pub fn is_zero(&self) -> bool {
        *self == LossyCounts::default()
    }
}

/// Verification result of one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableVerification {
    /// Rows counted in the source.
    pub source_rows: u64,
    /// Rows counted in the target.
    pub target_rows: u64,
    /// Content checksum of the source (hex).
    pub source_checksum: String,
    /// Content checksum of the target (hex).
    pub target_checksum: String,
    /// True when counts and checksums agree.
    pub matches: bool,
    /// Sample keys of rows missing from the target, extra in it, or different.
    pub sample_differences: Vec<String>,
}

/// What happened to one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// Source table name.
    pub source: String,
    /// Target table (quoted, qualified).
    pub target: String,
    /// Rows written.
    pub rows: u64,
    /// Bytes of COPY data sent.
    pub bytes: u64,
    /// Seconds spent loading.
    pub load_seconds: f64,
    /// Values changed by lossy rules.
    pub lossy: LossyCounts,
    /// Verification, when it ran.
    pub verification: Option<TableVerification>,
}

/// A foreign key that was added `NOT VALID` because rows violate it.
#[derive(Debug, Clone, Serialize)]
pub struct OrphanReport {
    /// Referencing table.
    pub table: String,
    /// The constraint.
    pub constraint: String,
    /// Rows without a parent.
    pub orphan_rows: u64,
    /// Sample keys of orphan rows.
    pub sample_keys: Vec<String>,
}

/// A step after the load that did not succeed and was reported.
#[derive(Debug, Clone, Serialize)]
pub struct FinishIssue {
    /// `index`, `view`, `foreign key`, …
    pub kind: String,
    /// The object.
    pub name: String,
    /// What PostgreSQL said.
    pub error: String,
    /// The SQL that was tried.
    pub sql: String,
}

/// How long one phase of the pipeline took.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTiming {
    /// `load`, `finish`, `verify`.
    pub phase: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The full report of a migration.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    /// The source, as given.
    pub source: String,
    /// The target, password masked.
    pub target: String,
    /// Per-table results.
    pub tables: Vec<TableReport>,
    /// Columns whose type was widened, with reasons.
    pub widened_columns: Vec<String>,
    /// Objects reported instead of copied.
    pub reported: Vec<crate::plan::ReportedObject>,
    /// Foreign keys left `NOT VALID` because of orphan rows.
    pub orphans: Vec<OrphanReport>,
    /// Things after the load that failed (reported, not fatal).
    pub finish_issues: Vec<FinishIssue>,
    /// Secondary indexes of the application's tables dropped for the load
    /// and built again after it (`--into-existing`).
    pub indexes_rebuilt: u64,
    /// Total rows written.
    pub total_rows: u64,
    /// Total COPY bytes.
    pub total_bytes: u64,
    /// Total lossy changes.
    pub lossy: LossyCounts,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Seconds per phase.
    pub phases: Vec<PhaseTiming>,
    /// `Some(true)` all tables verified equal, `Some(false)` a mismatch, `None` skipped.
    pub verified: Option<bool>,
    /// The application committed to the source while the run read its
    /// snapshot: the target (and the verification) is the source as it was
    /// when the run started, without those later writes.
    pub source_changed_during_run: bool,
    /// What the run found and finished before it began (`--into-existing`):
    /// an earlier run into the same tables that failed on a value and was
    /// stopped while it undid its load, whose restore this run completed.
    pub earlier_run_restored: Option<String>,
}
