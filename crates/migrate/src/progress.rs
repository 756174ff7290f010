//! Progress callbacks, so the CLI can draw bars without the pipeline knowing how.

/// Receives progress events from the pipeline (from several threads).
pub trait Progress: Send + Sync {
    /// A phase begins (`planning`, `loading`, `finishing`, `verifying`).
    fn phase(&self, name: &str);
    /// A table's load begins; `rows` is the expected total.
    fn table_started(&self, table: &str, rows: u64);
    /// More rows of a table were sent.
    fn rows_sent(&self, table: &str, rows: u64, bytes: u64);
    /// A table (all its parts) finished loading.
    fn table_finished(&self, table: &str);
    /// A later step of a table is done: `"verified"`, `"index"` (one index
    /// or key), `"foreign keys"`, `"statistics"`. Steps of different tables
    /// overlap; nothing is drawn for them by default.
    fn step_finished(&self, _table: &str, _step: &str) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct SilentProgress;

impl Progress for SilentProgress {
    fn phase(&self, _: &str) {}
    fn table_started(&self, _: &str, _: u64) {}
    fn rows_sent(&self, _: &str, _: u64, _: u64) {}
    fn table_finished(&self, _: &str) {}
}
