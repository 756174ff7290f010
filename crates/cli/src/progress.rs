//! Progress on stderr: bars on a terminal, plain lines otherwise, nothing with
//! --json; and, with `migrate --listen ADDR`, as Prometheus metrics.

use crate::Failure;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pgharbor_health::progress::MigrationProgress;
use pgharbor_migrate::Progress;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock};

/// The progress metrics of this process, once `--listen` started their endpoint.
static METRICS: OnceLock<Arc<MigrationProgress>> = OnceLock::new();

/// Binds `addr` and serves the progress of the migration of `source` on it
/// (`/metrics`, `/healthz`) for the rest of the process; every reporter
/// created afterwards feeds it.
pub async fn serve_metrics(addr: &str, source: &str) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::usage(format!("cannot listen on {addr}: {e}")))?;
    let metrics = Arc::new(MigrationProgress::new(&pgharbor_health::mask_any(source)));
    let _ = METRICS.set(metrics.clone());
    eprintln!("pgharbor: progress metrics on http://{local}/metrics");
    tokio::spawn(async move {
        let render = move || metrics.render();
        if let Err(e) =
            pgharbor_health::server::serve_metrics(listener, std::future::pending(), render).await
        {
            tracing::warn!("the progress metrics endpoint stopped: {e}");
        }
    });
    Ok(())
}

/// A table's bar and the bytes sent so far.
struct TableBar {
    bar: ProgressBar,
    bytes: u64,
    started: std::time::Instant,
}

/// Draws progress for the pipeline.
pub struct Reporter {
    bars: Option<MultiProgress>,
    tables: Mutex<HashMap<String, TableBar>>,
    plain: bool,
    metrics: Option<Arc<MigrationProgress>>,
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
            metrics: METRICS.get().cloned(),
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
        if let Some(m) = &self.metrics {
            m.phase(name);
        }
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(format!("pgharbor: {name}…"));
            }
            None if self.plain => eprintln!("pgharbor: {name}…"),
            None => {}
        }
    }

    fn table_started(&self, table: &str, rows: u64) {
        if let Some(m) = &self.metrics {
            m.table_started(table, rows);
        }
        let Some(bars) = &self.bars else { return };
        let bar = bars.add(ProgressBar::new(rows));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>24.bold} [{bar:30}] {pos}/{len} rows {msg} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(table.chars().take(24).collect::<String>());
        let entry = TableBar {
            bar,
            bytes: 0,
            started: std::time::Instant::now(),
        };
        self.tables
            .lock()
            .expect("bars lock")
            .insert(table.to_string(), entry);
    }

    fn rows_sent(&self, table: &str, rows: u64, bytes: u64) {
        if let Some(m) = &self.metrics {
            m.rows_sent(table, rows, bytes);
        }
        if let Some(entry) = self.tables.lock().expect("bars lock").get_mut(table) {
            entry.bytes += bytes;
            let seconds = entry.started.elapsed().as_secs_f64().max(0.001);
            entry.bar.inc(rows);
            let rate = entry.bar.position() as f64 / seconds;
            entry.bar.set_message(format!(
                "{rate:.0} rows/s {:.1} MB/s",
                entry.bytes as f64 / 1e6 / seconds
            ));
        }
    }

    fn table_finished(&self, table: &str) {
        if let Some(m) = &self.metrics {
            m.table_finished(table);
        }
        if let Some(entry) = self.tables.lock().expect("bars lock").get(table) {
            entry.bar.finish();
        } else if self.plain {
            eprintln!("pgharbor: loaded {table}");
        }
    }
}
