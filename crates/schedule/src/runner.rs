//! [`run_forever`]: the long-lived process — sleep until the next time, run
//! the job, record it, notify, repeat until asked to stop.
//!
//! Runs never overlap: a run that lasts past later scheduled times makes
//! the runner skip those times (counted in `pgharbor_backup_skipped_total`
//! and logged) and wait for the first time after the run ended. A stop
//! request (SIGTERM from Kubernetes or Docker, SIGINT from a terminal; see
//! [`shutdown_signal`]) ends the wait at once, but lets a run in progress
//! finish and its notification go out first.

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::error::{Result, ScheduleError, ScheduleErrorKind};
use crate::metrics::{self, SharedState};
use crate::notify::{Event, Notification, Webhook};
use crate::Schedule;

/// What one run of the job reports.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    /// Whether the run did its work.
    pub success: bool,
    /// How long the job's own work took.
    pub duration: Duration,
    /// The size of what it produced (a backup's bytes), when it has one.
    pub size_bytes: Option<u64>,
    /// One line saying what happened.
    pub summary: String,
    /// The job's structured report, passed on to webhooks.
    pub details: serde_json::Value,
}

/// How [`run_forever`] runs: the job's name, where to notify, where to
/// serve metrics, and the clock.
#[derive(Debug)]
pub struct RunnerOptions {
    /// The job's name: the `job` label of every metric and the `job` of
    /// every notification.
    pub job: String,
    /// Notified after failed runs (and successful ones when it asks).
    pub webhook: Option<Webhook>,
    /// Serves `/metrics` and `/healthz` while the runner runs (bind it with
    /// [`bind_metrics`]).
    pub metrics: Option<TcpListener>,
    /// The host named in notifications; the host name (the pod's name in
    /// Kubernetes) by default.
    pub host: String,
    /// Where time comes from; the system clock by default.
    pub clock: Clock,
}

impl RunnerOptions {
    /// Options for a job named `job`: no webhook, no metrics endpoint, the
    /// system clock.
    pub fn new(job: impl Into<String>) -> Self {
        RunnerOptions {
            job: job.into(),
            webhook: None,
            metrics: None,
            host: host_name(),
            clock: Clock::System,
        }
    }
}

/// What a runner did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTotals {
    /// Runs finished.
    pub runs: u64,
    /// Runs that failed.
    pub failures: u64,
    /// Scheduled times skipped while a run was going on.
    pub skipped: u64,
}

/// Binds the metrics endpoint's address (`0.0.0.0:9187`, `[::]:9187`, …).
pub async fn bind_metrics(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        ScheduleError::new(
            ScheduleErrorKind::Io,
            format!("cannot listen for metrics on {addr}: {e}"),
        )
    })
}

/// Completes on SIGTERM or SIGINT (Ctrl-C), logging which one came.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT: stopping (a run in progress finishes first)"),
        () = terminate() => tracing::info!("SIGTERM: stopping (a run in progress finishes first)"),
    }
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(e) => {
            tracing::warn!("cannot watch for SIGTERM: {e}");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}

/// Runs `job` at every time `schedule` names until `shutdown` completes.
///
/// Never two runs at once (see the module documentation); metrics served
/// on `options.metrics` and notifications to `options.webhook` as each run
/// ends. A webhook that fails is logged and never stops the runner.
/// Returns the totals once stopped, after a run in progress has finished
/// and pending notifications were delivered or gave up; an error only when
/// the schedule has no next time.
pub async fn run_forever<J, F>(
    schedule: &Schedule,
    mut job: J,
    options: RunnerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<RunTotals>
where
    J: FnMut() -> F,
    F: Future<Output = JobOutcome>,
{
    let state = SharedState::default();
    let server = options
        .metrics
        .map(|listener| spawn_server(&options.job, state.clone(), listener));
    let runner = Runner {
        schedule,
        clock: &options.clock,
        job_name: &options.job,
        host: &options.host,
        webhook: options.webhook.as_ref(),
        state: &state,
    };
    tracing::info!("job {}: scheduled {schedule}", options.job);
    let mut notifications = JoinSet::new();
    let ended = runner.run(&mut job, shutdown, &mut notifications).await;
    notifications.join_all().await;
    if let Some((stop, task)) = server {
        let _ = stop.send(());
        let _ = task.await;
    }
    ended?;
    Ok(state.update(|s| RunTotals {
        runs: s.runs,
        failures: s.failures,
        skipped: s.skipped,
    }))
}

/// The metrics server's task and the sender that stops it.
type Server = (oneshot::Sender<()>, tokio::task::JoinHandle<()>);

fn spawn_server(job: &str, state: SharedState, listener: TcpListener) -> Server {
    let (stop, stopped) = oneshot::channel::<()>();
    let job = job.to_owned();
    let task = tokio::spawn(async move {
        let stopped = async {
            let _ = stopped.await;
        };
        if let Err(e) = metrics::serve(&job, state, listener, stopped).await {
            tracing::warn!("job {job}: the metrics endpoint stopped: {e}");
        }
    });
    (stop, task)
}

/// Everything one runner loop reads.
struct Runner<'a> {
    schedule: &'a Schedule,
    clock: &'a Clock,
    job_name: &'a str,
    host: &'a str,
    webhook: Option<&'a Webhook>,
    state: &'a SharedState,
}

impl Runner<'_> {
    async fn run<J, F>(
        &self,
        job: &mut J,
        shutdown: impl Future<Output = ()>,
        notifications: &mut JoinSet<()>,
    ) -> Result<()>
    where
        J: FnMut() -> F,
        F: Future<Output = JobOutcome>,
    {
        tokio::pin!(shutdown);
        // Times up to the end of the last run were run or counted skipped.
        let mut from = self.clock.now();
        loop {
            let slot = self.next_after(from)?;
            self.state.update(|s| s.next_run = Some(slot));
            // A stop request wins over a time that is also due.
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                () = self.clock.sleep_until(slot) => {}
            }
            let started = self.clock.now();
            self.state.update(|s| {
                s.running = true;
                s.last_run = Some(started);
            });
            tracing::info!("job {}: run for {slot} started", self.job_name);
            let run = job();
            tokio::pin!(run);
            let mut stopping = false;
            let outcome = loop {
                tokio::select! {
                    biased;
                    () = &mut shutdown, if !stopping => {
                        stopping = true;
                        tracing::info!("job {}: stopping once the run in progress ends", self.job_name);
                    }
                    outcome = &mut run => break outcome,
                }
            };
            let finished = self.clock.now();
            from = finished;
            let skipped = self.skipped(slot, finished);
            self.record(&outcome, finished, skipped);
            if let Some(n) = self.notification(outcome, started, finished) {
                notifications.spawn(n);
            }
            if stopping {
                return Ok(());
            }
        }
    }

    fn next_after(&self, t: Timestamp) -> Result<Timestamp> {
        self.schedule.next_after(t).ok_or_else(|| {
            ScheduleError::new(
                ScheduleErrorKind::Exhausted,
                format!("cron schedule {}: no time left after {t}", self.schedule),
            )
        })
    }

    /// Scheduled times after `slot` up to `finished`: missed by this run.
    fn skipped(&self, slot: Timestamp, finished: Timestamp) -> u64 {
        let mut n = 0;
        let mut t = slot;
        while let Some(next) = self.schedule.next_after(t).filter(|n| *n <= finished) {
            n += 1;
            t = next;
        }
        n
    }

    fn record(&self, outcome: &JobOutcome, finished: Timestamp, skipped: u64) {
        self.state.update(|s| {
            s.running = false;
            s.runs += 1;
            s.skipped += skipped;
            s.last_duration_seconds = Some(outcome.duration.as_secs_f64());
            if outcome.size_bytes.is_some() {
                s.last_size_bytes = outcome.size_bytes;
            }
            if outcome.success {
                s.last_success = Some(finished);
            } else {
                s.failures += 1;
            }
        });
        let job = self.job_name;
        if outcome.success {
            tracing::info!("job {job}: succeeded: {}", outcome.summary);
        } else {
            tracing::error!("job {job}: failed: {}", outcome.summary);
        }
        if skipped > 0 {
            tracing::warn!("job {job}: the run overran {skipped} scheduled time(s); skipped them");
        }
    }

    /// The webhook delivery for `outcome`, when one is due.
    fn notification(
        &self,
        outcome: JobOutcome,
        started: Timestamp,
        finished: Timestamp,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let event = if outcome.success {
            Event::Success
        } else {
            Event::Failure
        };
        let webhook = self.webhook.filter(|w| w.wants(event))?.clone();
        let body = Notification {
            event,
            job: self.job_name.to_owned(),
            started,
            finished,
            duration_seconds: outcome.duration.as_secs_f64(),
            summary: outcome.summary,
            details: outcome.details,
            host: self.host.to_owned(),
        };
        Some(async move {
            if let Err(e) = webhook.send(&body).await {
                tracing::error!("job {}: {e}", body.job);
            }
        })
    }
}

/// The host name (a pod's name in Kubernetes), or `unknown`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
