//! The runner on a virtual clock: counters and metrics scraped over HTTP,
//! overrun skipping, webhooks received by a local HTTP server, and stopping
//! after the run in progress. No test waits for wall clock time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use pgharbor_schedule::jiff::Timestamp;
use pgharbor_schedule::{
    run_forever, Clock, JobOutcome, ManualClock, RunTotals, RunnerOptions, Schedule, Webhook,
};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// A guard against hangs, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);

fn start() -> Timestamp {
    "2025-01-01T00:00:00Z".parse().unwrap()
}

fn every_five_minutes() -> Schedule {
    Schedule::parse("*/5 * * * *", Some("UTC")).unwrap()
}

fn outcome(success: bool, summary: &str, size: Option<u64>) -> JobOutcome {
    JobOutcome {
        success,
        duration: Duration::from_millis(2500),
        size_bytes: size,
        summary: summary.to_owned(),
        details: json!({"databases": ["app"], "summary": summary}),
    }
}

/// A job the test steers: each run reports its start time on `started`
/// and ends with the next outcome sent on the returned sender.
struct Steered {
    started: mpsc::UnboundedReceiver<Timestamp>,
    outcomes: mpsc::UnboundedSender<JobOutcome>,
}

fn steered_job(
    clock: ManualClock,
) -> (
    Steered,
    impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = JobOutcome> + Send>>,
) {
    let (started_tx, started) = mpsc::unbounded_channel();
    let (outcomes, outcomes_rx) = mpsc::unbounded_channel::<JobOutcome>();
    let outcomes_rx = Arc::new(tokio::sync::Mutex::new(outcomes_rx));
    let job = move || {
        let started_tx = started_tx.clone();
        let outcomes_rx = outcomes_rx.clone();
        let now = clock.now();
        Box::pin(async move {
            started_tx.send(now).unwrap();
            outcomes_rx.lock().await.recv().await.unwrap()
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = JobOutcome> + Send>>
    };
    (Steered { started, outcomes }, job)
}

async fn next_start(s: &mut Steered) -> Timestamp {
    tokio::time::timeout(PATIENCE, s.started.recv())
        .await
        .expect("a run starts")
        .expect("the runner is alive")
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = http()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The value of `name{job="nightly"}` in exposition text.
fn sample(text: &str, name: &str) -> Option<f64> {
    let prefix = format!("{name}{{job=\"nightly\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
}

fn unix(t: &str) -> f64 {
    t.parse::<Timestamp>().unwrap().as_second() as f64
}

#[tokio::test]
async fn counts_runs_and_serves_metrics_over_http() {
    let clock = ManualClock::new(start());
    let (mut steer, job) = steered_job(clock.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut options = RunnerOptions::new("nightly");
    options.metrics = Some(listener);
    options.clock = Clock::Manual(clock.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let runner = tokio::spawn(async move {
        run_forever(&every_five_minutes(), job, options, async {
            let _ = stopped.await;
        })
        .await
    });

    assert_eq!(
        next_start(&mut steer).await.to_string(),
        "2025-01-01T00:05:00Z"
    );
    let (status, m) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(sample(&m, "pgharbor_backup_running"), Some(1.0));
    assert_eq!(sample(&m, "pgharbor_backup_runs_total"), Some(0.0));
    assert_eq!(
        sample(&m, "pgharbor_backup_last_success_timestamp_seconds"),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "pgharbor_backup_last_run_timestamp_seconds"),
        Some(unix("2025-01-01T00:05:00Z"))
    );
    assert!(
        m.contains("# TYPE pgharbor_backup_runs_total counter"),
        "{m}"
    );
    assert_eq!(sample(&m, "pgharbor_backup_last_size_bytes"), None);

    steer
        .outcomes
        .send(outcome(true, "1 database, 1234 bytes", Some(1234)))
        .unwrap();
    assert_eq!(
        next_start(&mut steer).await.to_string(),
        "2025-01-01T00:10:00Z"
    );
    let (_, m) = get(addr, "/metrics").await;
    assert_eq!(sample(&m, "pgharbor_backup_runs_total"), Some(1.0));
    assert_eq!(sample(&m, "pgharbor_backup_failures_total"), Some(0.0));
    assert_eq!(
        sample(&m, "pgharbor_backup_last_success_timestamp_seconds"),
        Some(unix("2025-01-01T00:05:00Z"))
    );
    assert_eq!(sample(&m, "pgharbor_backup_last_size_bytes"), Some(1234.0));
    assert_eq!(
        sample(&m, "pgharbor_backup_last_duration_seconds"),
        Some(2.5)
    );
    assert_eq!(
        sample(&m, "pgharbor_backup_next_run_timestamp_seconds"),
        Some(unix("2025-01-01T00:10:00Z"))
    );

    steer
        .outcomes
        .send(outcome(false, "server went away", None))
        .unwrap();
    next_start(&mut steer).await;
    let (_, m) = get(addr, "/metrics").await;
    assert_eq!(sample(&m, "pgharbor_backup_runs_total"), Some(2.0));
    assert_eq!(sample(&m, "pgharbor_backup_failures_total"), Some(1.0));
    assert_eq!(sample(&m, "pgharbor_backup_skipped_total"), Some(0.0));
    assert_eq!(
        sample(&m, "pgharbor_backup_last_success_timestamp_seconds"),
        Some(unix("2025-01-01T00:05:00Z"))
    );
    assert_eq!(sample(&m, "pgharbor_backup_last_size_bytes"), Some(1234.0));

    assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(get(addr, "/nope").await.0, 404);
    let post = http()
        .post(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);

    // Asked to stop during run 3: run 3 finishes and counts, no run 4.
    stop.send(()).unwrap();
    steer
        .outcomes
        .send(outcome(true, "done", Some(99)))
        .unwrap();
    let totals = tokio::time::timeout(PATIENCE, runner)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        totals,
        RunTotals {
            runs: 3,
            failures: 1,
            skipped: 0
        }
    );
    assert!(steer.started.try_recv().is_err(), "no run after the stop");
    assert!(http()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn an_overrun_skips_and_counts_the_times_it_covered() {
    let clock = ManualClock::new(start());
    let starts = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = oneshot::channel::<()>();
    let mut stop = Some(stop);
    let job = {
        let (clock, starts) = (clock.clone(), starts.clone());
        move || {
            let mut starts = starts.lock().unwrap();
            starts.push(clock.now().to_string());
            if starts.len() == 1 {
                // 17 minutes: past 00:10, 00:15 and 00:20.
                clock.advance(Duration::from_secs(17 * 60));
            } else if let Some(stop) = stop.take() {
                stop.send(()).unwrap();
            }
            std::future::ready(outcome(true, "ok", None))
        }
    };
    let mut options = RunnerOptions::new("nightly");
    options.clock = Clock::Manual(clock.clone());
    let totals = run_forever(&every_five_minutes(), job, options, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    assert_eq!(
        *starts.lock().unwrap(),
        ["2025-01-01T00:05:00Z", "2025-01-01T00:25:00Z"]
    );
    assert_eq!(totals.skipped, 3);
    assert_eq!(totals.runs, 2);
}

/// A local webhook receiver: each request's JSON body on a channel, and
/// the first `failures` requests answered 500.
async fn receiver(failures: usize) -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://user:hunter2@{}/hooks/T000/SECRETPATH?token=s3cret",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(Mutex::new(0usize));
    let handler = move |_peer, req: Request<hyper::body::Incoming>| {
        let (tx, seen) = (tx.clone(), seen.clone());
        async move {
            assert_eq!(req.method(), hyper::Method::POST);
            assert_eq!(req.uri().path(), "/hooks/T000/SECRETPATH");
            let body = req.into_body().collect().await.unwrap().to_bytes();
            tx.send(serde_json::from_slice::<Value>(&body).unwrap())
                .unwrap();
            let n = {
                let mut seen = seen.lock().unwrap();
                *seen += 1;
                *seen
            };
            let status = if n <= failures {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            };
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = status;
            Ok::<_, Infallible>(r)
        }
    };
    tokio::spawn(pgharbor_health::server::serve_with(
        listener,
        std::future::pending(),
        None,
        handler,
    ));
    (url, rx)
}

/// Runs the job `outcomes.len()` times on a virtual clock, then stops.
async fn run_outcomes(webhook: Webhook, outcomes: Vec<JobOutcome>) -> RunTotals {
    let clock = ManualClock::new(start());
    let (stop, stopped) = oneshot::channel::<()>();
    let mut stop = Some(stop);
    let mut left = outcomes.into_iter();
    let job = move || {
        let next = left.next().unwrap();
        if left.len() == 0 {
            if let Some(stop) = stop.take() {
                stop.send(()).unwrap();
            }
        }
        std::future::ready(next)
    };
    let mut options = RunnerOptions::new("nightly");
    options.clock = Clock::Manual(clock);
    options.host = "test-host".to_owned();
    options.webhook = Some(webhook);
    tokio::time::timeout(
        PATIENCE,
        run_forever(&every_five_minutes(), job, options, async {
            let _ = stopped.await;
        }),
    )
    .await
    .unwrap()
    .unwrap()
}

async fn body(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn failures_are_posted_successes_only_when_asked() {
    let (url, mut rx) = receiver(0).await;
    let webhook = Webhook::new(&url, false).unwrap();
    assert!(!webhook.to_string().contains("hunter2"));
    assert!(!webhook.to_string().contains("SECRETPATH"));
    let totals = run_outcomes(
        webhook,
        vec![
            outcome(true, "fine", Some(1)),
            outcome(false, "pg_dump: connection refused", None),
        ],
    )
    .await;
    assert_eq!(totals.failures, 1);
    // The runner returns after pending notifications: all are in.
    let b = body(&mut rx).await;
    assert!(rx.try_recv().is_err(), "one notification only");
    assert_eq!(b["event"], "failure");
    assert_eq!(b["job"], "nightly");
    assert_eq!(b["host"], "test-host");
    assert_eq!(b["summary"], "pg_dump: connection refused");
    assert_eq!(b["details"]["databases"][0], "app");
    assert_eq!(b["started"], "2025-01-01T00:10:00Z");
    assert_eq!(b["finished"], "2025-01-01T00:10:00Z");
    assert_eq!(b["duration_seconds"].as_f64(), Some(2.5));

    let (url, mut rx) = receiver(0).await;
    run_outcomes(
        Webhook::new(&url, true).unwrap(),
        vec![outcome(true, "fine", Some(1)), outcome(false, "bad", None)],
    )
    .await;
    assert_eq!(body(&mut rx).await["event"], "success");
    assert_eq!(body(&mut rx).await["event"], "failure");
}

#[tokio::test]
async fn a_webhook_is_retried_and_a_dead_one_does_not_stop_the_runner() {
    let fast = |w: Webhook| {
        w.with_retries(Duration::from_secs(5), 3, Duration::from_millis(10))
            .unwrap()
    };
    // Two 500s, then delivered by the third try.
    let (url, mut rx) = receiver(2).await;
    run_outcomes(
        fast(Webhook::new(&url, false).unwrap()),
        vec![outcome(false, "x", None)],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(body(&mut rx).await["summary"], "x");
    }
    assert!(rx.try_recv().is_err());

    // Nothing listens there: every run still happens.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", dead.local_addr().unwrap());
    drop(dead);
    let totals = run_outcomes(
        fast(Webhook::new(&url, true).unwrap()),
        vec![
            outcome(false, "a", None),
            outcome(true, "b", None),
            outcome(false, "c", None),
        ],
    )
    .await;
    assert_eq!(
        totals,
        RunTotals {
            runs: 3,
            failures: 2,
            skipped: 0
        }
    );
}
