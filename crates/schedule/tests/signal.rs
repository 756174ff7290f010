//! SIGTERM (what Kubernetes and Docker send) stops the runner after the run
//! in progress. A test of its own: the signal goes to the whole process.

use std::time::Duration;

use pgharbor_schedule::jiff::Timestamp;
use pgharbor_schedule::{
    run_forever, shutdown_signal, Clock, JobOutcome, ManualClock, RunnerOptions, Schedule,
};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

#[tokio::test]
async fn sigterm_stops_after_the_run_in_progress() {
    let start: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
    let schedule = Schedule::parse("@hourly", Some("UTC")).unwrap();
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let (release, released) = oneshot::channel::<()>();
    let mut released = Some(released);
    let job = move || {
        started_tx.send(()).unwrap();
        let released = released.take().expect("one run only");
        async move {
            released.await.unwrap();
            JobOutcome {
                success: true,
                duration: Duration::from_secs(1),
                size_bytes: None,
                summary: "finished despite SIGTERM".to_owned(),
                details: serde_json::Value::Null,
            }
        }
    };
    let mut options = RunnerOptions::new("nightly");
    options.clock = Clock::Manual(ManualClock::new(start));
    let runner =
        tokio::spawn(async move { run_forever(&schedule, job, options, shutdown_signal()).await });

    started.recv().await.unwrap();
    // Our own listener sees the signal once tokio has passed it to every
    // listener, the runner's included.
    let mut term = signal(SignalKind::terminate()).unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    term.recv().await;
    release.send(()).unwrap();

    let totals = tokio::time::timeout(Duration::from_secs(30), runner)
        .await
        .expect("the runner stops")
        .unwrap()
        .unwrap();
    assert_eq!(totals.runs, 1);
    assert_eq!(totals.failures, 0);
}
