//! The runner's state as Prometheus metrics, served on `/metrics` with
//! `/healthz` by pgharbor-health's HTTP server.
//!
//! Every series carries the label `job` with the job's name. Timestamps
//! are Unix seconds; `pgharbor_backup_last_success_timestamp_seconds` is 0
//! until a run succeeds, so an alert on its age fires for a job that never
//! succeeded. Duration and size appear after the first run reporting them.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use pgharbor_health::metrics::Families;
use pgharbor_health::server::serve_metrics;
use tokio::net::TcpListener;

/// What the runner has done so far; shared with the HTTP server.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub last_success: Option<Timestamp>,
    pub last_run: Option<Timestamp>,
    pub last_duration_seconds: Option<f64>,
    pub last_size_bytes: Option<u64>,
    pub runs: u64,
    pub failures: u64,
    pub skipped: u64,
    pub next_run: Option<Timestamp>,
    pub running: bool,
}

/// [`State`] behind a lock, cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct SharedState(Arc<Mutex<State>>);

impl SharedState {
    /// Changes the state under the lock.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn seconds(t: Option<Timestamp>) -> f64 {
    t.map_or(0.0, |t| t.as_millisecond() as f64 / 1000.0)
}

fn count(n: u64) -> f64 {
    n as f64
}

/// `state` as exposition text.
pub(crate) fn render(job: &str, state: &State) -> String {
    let mut m = Families::default();
    let label = || vec![("job", job.to_owned())];
    let (g, c) = ("gauge", "counter");
    m.add(
        "pgharbor_backup_last_success_timestamp_seconds",
        g,
        "When the last successful run finished (Unix time; 0 before the first success).",
        label(),
        seconds(state.last_success),
    );
    m.add(
        "pgharbor_backup_last_run_timestamp_seconds",
        g,
        "When the last run started (Unix time; 0 before the first run).",
        label(),
        seconds(state.last_run),
    );
    if let Some(d) = state.last_duration_seconds {
        m.add(
            "pgharbor_backup_last_duration_seconds",
            g,
            "How long the last finished run took.",
            label(),
            d,
        );
    }
    if let Some(size) = state.last_size_bytes {
        m.add(
            "pgharbor_backup_last_size_bytes",
            g,
            "The size the last run reporting one produced.",
            label(),
            count(size),
        );
    }
    m.add(
        "pgharbor_backup_runs_total",
        c,
        "Runs finished, successful or not.",
        label(),
        count(state.runs),
    );
    m.add(
        "pgharbor_backup_failures_total",
        c,
        "Runs that failed.",
        label(),
        count(state.failures),
    );
    m.add(
        "pgharbor_backup_skipped_total",
        c,
        "Scheduled times skipped because a run was still going on.",
        label(),
        count(state.skipped),
    );
    m.add(
        "pgharbor_backup_next_run_timestamp_seconds",
        g,
        "When the next run is due (Unix time).",
        label(),
        seconds(state.next_run),
    );
    m.add(
        "pgharbor_backup_running",
        g,
        "Whether a run is going on now (1) or not (0).",
        label(),
        if state.running { 1.0 } else { 0.0 },
    );
    m.render()
}

/// Serves `state` on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    job: &str,
    state: SharedState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let job: Arc<str> = Arc::from(job);
    serve_metrics(listener, shutdown, move || {
        state.update(|s| render(&job, s))
    })
    .await
}
