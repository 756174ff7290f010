//! A migration's progress as Prometheus metrics, for `pgharbor migrate
//! --listen ADDR`: the phase, and per table the rows and bytes sent against
//! the rows expected, so a dashboard can show a long migration moving.
//!
//! The pipeline reports events (from several threads) to a
//! [`MigrationProgress`]; [`serve_metrics`](crate::server::serve_metrics)
//! renders it on every scrape.

use crate::metrics::Families;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
struct TableProgress {
    expected_rows: u64,
    rows: u64,
    bytes: u64,
    finished: bool,
}

#[derive(Debug, Default)]
struct State {
    phase: String,
    tables: BTreeMap<String, TableProgress>,
}

/// The progress of one migration, shared between the pipeline and the
/// metrics endpoint.
#[derive(Debug)]
pub struct MigrationProgress {
    source: String,
    started_unix: f64,
    state: Mutex<State>,
}

impl MigrationProgress {
    /// Progress of a migration from `source` (shown as a label; pass it
    /// without a password), starting now.
    pub fn new(source: &str) -> MigrationProgress {
        MigrationProgress {
            source: source.to_owned(),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            state: Mutex::new(State::default()),
        }
    }

    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A phase begins (`planning`, `loading`, `verifying`, …).
    pub fn phase(&self, name: &str) {
        self.update(|s| s.phase = name.to_owned());
    }

    /// A table's load begins with `rows` expected.
    pub fn table_started(&self, table: &str, rows: u64) {
        self.update(|s| s.tables.entry(table.to_owned()).or_default().expected_rows = rows);
    }

    /// More rows of a table were sent.
    pub fn rows_sent(&self, table: &str, rows: u64, bytes: u64) {
        self.update(|s| {
            let t = s.tables.entry(table.to_owned()).or_default();
            t.rows += rows;
            t.bytes += bytes;
        });
    }

    /// A table finished loading.
    pub fn table_finished(&self, table: &str) {
        self.update(|s| s.tables.entry(table.to_owned()).or_default().finished = true);
    }

    /// The progress as exposition text.
    pub fn render(&self) -> String {
        let mut m = Families::default();
        let (g, c) = ("gauge", "counter");
        let source = || vec![("source", self.source.clone())];
        self.update(|s| {
            let mut phase = source();
            phase.push(("phase", s.phase.clone()));
            m.add(
                "pgharbor_migration_phase_info",
                g,
                "The phase the migration is in.",
                phase,
                1.0,
            );
            m.add(
                "pgharbor_migration_started_timestamp_seconds",
                g,
                "When the migration started (Unix time).",
                source(),
                self.started_unix,
            );
            let finished = s.tables.values().filter(|t| t.finished).count();
            for (state, n) in [("loading", s.tables.len() - finished), ("loaded", finished)] {
                let mut labels = source();
                labels.push(("state", state.to_owned()));
                m.add(
                    "pgharbor_migration_tables",
                    g,
                    "Tables whose load has begun, by state.",
                    labels,
                    n as f64,
                );
            }
            for (name, t) in &s.tables {
                let labels = || {
                    let mut l = source();
                    l.push(("table", name.clone()));
                    l
                };
                m.add(
                    "pgharbor_migration_rows_expected",
                    g,
                    "Rows a table is expected to hold (from the source's count or estimate).",
                    labels(),
                    t.expected_rows as f64,
                );
                m.add(
                    "pgharbor_migration_rows_total",
                    c,
                    "Rows sent to the target.",
                    labels(),
                    t.rows as f64,
                );
                m.add(
                    "pgharbor_migration_bytes_total",
                    c,
                    "Bytes of COPY data sent to the target.",
                    labels(),
                    t.bytes as f64,
                );
            }
        });
        m.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_metrics() {
        let p = MigrationProgress::new("webui.db");
        p.phase("loading");
        p.table_started("chat", 10);
        p.table_started("user", 2);
        p.rows_sent("chat", 4, 400);
        p.rows_sent("chat", 6, 600);
        p.table_finished("chat");
        let text = p.render();
        for line in [
            "pgharbor_migration_phase_info{source=\"webui.db\",phase=\"loading\"} 1",
            "pgharbor_migration_rows_total{source=\"webui.db\",table=\"chat\"} 10",
            "pgharbor_migration_bytes_total{source=\"webui.db\",table=\"chat\"} 1000",
            "pgharbor_migration_rows_expected{source=\"webui.db\",table=\"user\"} 2",
            "pgharbor_migration_tables{source=\"webui.db\",state=\"loaded\"} 1",
            "pgharbor_migration_tables{source=\"webui.db\",state=\"loading\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
