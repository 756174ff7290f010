//! Progress on stderr: bars on a terminal, plain lines otherwise, nothing with --json.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pgharbor_migrate::Progress;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

/// Draws progress for the pipeline.
pub struct Reporter {
    bars: Option<MultiProgress>,
    tables: Mutex<HashMap<String, ProgressBar>>,
    plain: bool,
}

impl Reporter {
    /// A reporter; quiet when `json` (stdout belongs to the report).
    pub fn new(json: bool) -> Arc<Reporter> {
        let terminal = std::io::stderr().is_terminal();
        let bars = (terminal && !json)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Arc::new(Reporter {
            bars,
            tables: Mutex::new(HashMap::new()),
            plain: !terminal && !json,
        })
    }

    /// Remove the bars before the summary prints.
    pub fn done(&self) {
        if let Some(bars) = &self.bars {
            let _ = bars.clear();
        }
    }
}

impl Progress for Reporter {
    fn phase(&self, name: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(format!("pgharbor: {name}…"));
            }
            None if self.plain => eprintln!("pgharbor: {name}…"),
            None => {}
        }
    }

    fn table_started(&self, table: &str, rows: u64) {
        let Some(bars) = &self.bars else { return };
        let bar = bars.add(ProgressBar::new(rows));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>24.bold} [{bar:30}] {pos}/{len} rows {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(table.chars().take(24).collect::<String>());
        self.tables
            .lock()
            .expect("bars lock")
            .insert(table.to_string(), bar);
    }

    fn rows_sent(&self, table: &str, rows: u64, _bytes: u64) {
        if let Some(bar) = self.tables.lock().expect("bars lock").get(table) {
            bar.inc(rows);
        }
    }

    fn table_finished(&self, table: &str) {
        if let Some(bar) = self.tables.lock().expect("bars lock").get(table) {
            bar.finish();
        } else if self.plain {
            eprintln!("pgharbor: loaded {table}");
        }
    }
}
