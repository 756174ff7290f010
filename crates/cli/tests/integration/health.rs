//! `pgharbor check`, `status`, `kill` and `serve` against real PostgreSQL
//! clusters and Redis servers started here, and the dashboard in Debian's
//! headless Chromium.

use crate::harness::{assert_refused_once, closed_port, pgharbor, Run};
use crate::serving::{metric, parse_metrics, Serve};
use pgharbor_testkit::{Cluster, ClusterOptions, Flavor, RedisOptions, RedisServer};
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PG_PASSWORD: &str = "Pw-hunter2-pgh";
const REDIS_PASSWORD: &str = "Rd-hunter3-pgh";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn cluster_with(extra: &[(&str, &str)]) -> Cluster {
    Cluster::start_with(
        Flavor::Pg15,
        ClusterOptions {
            password_auth: true,
            password: Some(PG_PASSWORD.to_owned()),
            extra_conf: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        },
    )
}

/// Polls `cond` every 100 ms until it holds; panics after 60 s naming `what`.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.all()))
}

fn assert_no_secret(text: &str) {
    for secret in [PG_PASSWORD, REDIS_PASSWORD, "apppw-secret"] {
        if let Some(at) = text.find(secret) {
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(i, _)| i);
            panic!(
                "a password leaked: …{}…",
                &text[from..(at + secret.len() + 100).min(text.len())]
            );
        }
    }
}

// ------------------------------------------------------------------ check

#[test]
fn check_exit_0_when_accepting_with_every_stricter_probe() {
    let c = cluster_with(&[]);
    let url = c.url("postgres");
    let run = pgharbor(&["check", &url]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("accepting connections"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.lines().count(), 1, "one line: {}", run.stdout);
    assert!(run.stdout.contains("postgresql://postgres:****@127.0.0.1"));

    let run = pgharbor(&[
        "check",
        &url,
        "--query",
        "--writable",
        "--max-connections-used",
        "90",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    let j = json(&run);
    assert_eq!(j["readiness"], "accepting");
    assert_eq!(j["exit_code"], 0);
    let probes: Vec<&str> = j["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["probe"].as_str().unwrap())
        .collect();
    assert_eq!(probes, ["query", "writable", "max_connections_used"]);
    assert!(j["probes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["ok"] == true));
    assert_no_secret(&run.all());

    // A failing query is a failed stricter probe: exit 1, the server's message shown.
    let run = pgharbor(&["check", &url, "--query-sql", "SELECT * FROM no_such_table"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("no_such_table"), "{}", run.stdout);
    // 1 of 50 connections is more than 1%.
    let run = pgharbor(&["check", &url, "--max-connections-used", "1"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains("of max_connections 50 in use"),
        "{}",
        run.stdout
    );

    // A wrong password: the server is up (pg_isready says 0), unless a probe needs a session.
    let wrong = url.replace(PG_PASSWORD, "wrong");
    let run = pgharbor(&["check", &wrong]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("password"), "{}", run.stdout);
    let run = pgharbor(&["check", &wrong, "--query"]);
    assert_eq!(run.code, 1, "{}", run.all());
}

#[test]
fn check_exit_1_when_out_of_connection_slots() {
    let c = cluster_with(&[
        ("max_connections", "3"),
        ("superuser_reserved_connections", "0"),
    ]);
    let rt = runtime();
    let held: Vec<_> = (0..3).map(|_| rt.block_on(c.client("postgres"))).collect();
    let run = pgharbor(&["check", &c.url("postgres")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains("rejecting connections"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("too many clients"), "{}", run.stdout);
    drop(held);
}

#[test]
fn check_exit_1_while_shutting_down() {
    let c = cluster_with(&[]);
    let rt = runtime();
    let session = rt.block_on(c.client("postgres"));
    c.begin_smart_shutdown();
    // The postmaster handles the signal asynchronously: wait until it refuses sessions.
    wait_until("the server refuses new sessions with 57P03", || {
        rt.block_on(async {
            match c
                .tokio_config("postgres")
                .connect(tokio_postgres::NoTls)
                .await
            {
                Ok(_) => false,
                Err(e) => e.code().is_some_and(|s| s.code() == "57P03"),
            }
        })
    });
    let run = pgharbor(&["check", &c.url("postgres")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("shutting down"), "{}", run.stdout);
    drop(session);
}

#[test]
fn check_exit_2_without_a_server() {
    let port = closed_port();
    let run = pgharbor(&[
        "check",
        &format!("postgresql://u:{PG_PASSWORD}@127.0.0.1:{port}/db"),
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stdout.contains("no response"), "{}", run.stdout);
    assert_no_secret(&run.all());
    let run = pgharbor(&["check", &format!("redis://127.0.0.1:{port}")]);
    assert_eq!(run.code, 2, "{}", run.all());

    // A server that was up and is stopped.
    let c = cluster_with(&[]);
    let url = c.url("postgres");
    assert_eq!(pgharbor(&["check", &url]).code, 0);
    c.stop();
    let run = pgharbor(&["check", &url, "--timeout", "2s"]);
    assert_eq!(run.code, 2, "{}", run.all());
}

#[test]
fn check_exit_3_on_bad_parameters() {
    for (args, needle) in [
        (
            vec!["check", "postgresql://u:p@ss#word@h/db"],
            "bad parameters",
        ),
        (
            vec!["check", "postgresql://h:notaport/db"],
            "bad parameters",
        ),
        (vec!["check", "host=h sslmode=sometimes"], "bad parameters"),
        (vec!["check", "redis://h:99999"], "bad parameters"),
        (
            vec!["check", "--timeout", "soon", "postgresql://h/db"],
            "invalid duration",
        ),
        (
            vec!["check", "--no-such-option", "postgresql://h/db"],
            "unexpected argument",
        ),
    ] {
        let run = pgharbor(&args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.all());
        assert!(run.all().contains(needle), "{args:?}: {}", run.all());
    }
    let run = pgharbor(&[
        "check",
        &format!("postgresql://u:{PG_PASSWORD}@h:x/db"),
        "--json",
    ]);
    assert_eq!(run.code, 3);
    assert_eq!(json(&run)["readiness"], "bad_parameters");
    assert_no_secret(&run.all());
}

#[test]
fn check_redis_ping_with_and_without_auth() {
    let open = RedisServer::start();
    let run = pgharbor(&["check", &open.url()]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("accepting connections (PONG"),
        "{}",
        run.stdout
    );

    let guarded = RedisServer::start_with(RedisOptions {
        requirepass: Some(REDIS_PASSWORD.to_owned()),
        acl_user: Some(("app".to_owned(), "apppw-secret".to_owned())),
        ..Default::default()
    });
    let port = guarded.port();
    let run = pgharbor(&["check", &guarded.url(), "--query", "--writable"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("PONG; "), "{}", run.stdout);
    assert!(
        run.stdout.contains("redis://:****@127.0.0.1"),
        "{}",
        run.stdout
    );
    // ACL user and password.
    let run = pgharbor(&[
        "check",
        &format!("redis://app:apppw-secret@127.0.0.1:{port}"),
        "--query",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("redis://app:****@"), "{}", run.stdout);
    // No password: the server answers NOAUTH, so it is up (0) unless --query asks for a session.
    let bare = guarded.url_without_password();
    let run = pgharbor(&["check", &bare]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("NOAUTH"), "{}", run.stdout);
    assert_eq!(pgharbor(&["check", &bare, "--query"]).code, 1);
    // Wrong password, default user and ACL user.
    for wrong in [
        format!("redis://:nope@127.0.0.1:{port}"),
        format!("redis://app:nope@127.0.0.1:{port}"),
    ] {
        let run = pgharbor(&["check", &wrong]);
        assert_eq!(run.code, 0, "{}", run.all());
        assert!(
            run.stdout.contains("authentication failed"),
            "{}",
            run.stdout
        );
        let run = pgharbor(&["check", &wrong, "--query"]);
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(run.stdout.contains("WRONGPASS"), "{}", run.stdout);
    }
    assert_no_secret(&run.all());
}

#[test]
fn check_redis_over_tls() {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params");
    params.is_ca = rcgen::IsCa::NoCa;
    let cert = params.self_signed(&key).expect("cert");
    let server = RedisServer::start_with(RedisOptions {
        requirepass: Some(REDIS_PASSWORD.to_owned()),
        tls: Some((cert.pem(), key.serialize_pem())),
        ..Default::default()
    });
    let root = server.dir().join("root.pem");
    std::fs::write(&root, cert.pem()).expect("root");
    let base = server.url();
    // Verified against the server's certificate as the root.
    let run = pgharbor(&[
        "check",
        &format!("{base}?sslrootcert={}", root.display()),
        "--query",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.all(), server.log());
    assert!(
        run.stdout.contains("rediss://:****@127.0.0.1"),
        "{}",
        run.stdout
    );
    // Not trusted by the system's roots: the handshake fails, no response.
    let run = pgharbor(&["check", &base]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stdout.contains("TLS handshake"), "{}", run.stdout);
    // sslmode=require: encrypted without checking the certificate.
    let run = pgharbor(&["check", &format!("{base}?sslmode=require"), "--query"]);
    assert_eq!(run.code, 0, "{}", run.all());
    // Plain redis:// against the TLS port gets no Redis answer.
    let run = pgharbor(&[
        "check",
        &base.replace("rediss://", "redis://"),
        "--timeout",
        "2s",
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_no_secret(&run.all());
}

// ----------------------------------------------------------------- status

#[test]
fn status_of_an_unreachable_server_says_where_and_why_once() {
    let port = closed_port();
    let run = pgharbor(&[
        "status",
        &format!("postgresql://u:{PG_PASSWORD}@127.0.0.1:{port}/db"),
    ]);
    assert_refused_once(&run, port);
    assert_no_secret(&run.all());
}

/// A cluster with something in every section: pg_stat_statements, an old
/// hstore, an inactive slot, failing archiving, a lock conflict, a session
/// idle in a transaction and a few thousand consumed transaction IDs.
struct Busy {
    cluster: Cluster,
    rt: tokio::runtime::Runtime,
    holder: tokio_postgres::Client,
    holder_pid: i32,
    blocked_pid: i32,
    blocked_task: tokio::task::JoinHandle<Result<u64, tokio_postgres::Error>>,
}

fn busy_cluster() -> Busy {
    let cluster = cluster_with(&[
        ("shared_preload_libraries", "pg_stat_statements"),
        ("archive_mode", "on"),
        ("archive_command", "false"),
    ]);
    cluster.create_database("app");
    cluster.psql(
        "app",
        "CREATE TABLE t (id int PRIMARY KEY, v int);
         INSERT INTO t SELECT g, 0 FROM generate_series(1, 1000) g;
         CREATE EXTENSION pg_stat_statements;
         CREATE EXTENSION hstore VERSION '1.7';
         CREATE TABLE burn (i int);
         DO $$ BEGIN FOR i IN 1..3000 LOOP BEGIN INSERT INTO burn VALUES (i);
               EXCEPTION WHEN others THEN NULL; END; END LOOP; END $$;
         SELECT pg_create_physical_replication_slot('stale_slot', true);
         SELECT pg_switch_wal();",
    );
    let rt = runtime();
    let holder = rt.block_on(cluster.client("app"));
    let blocker = rt.block_on(cluster.client("app"));
    let holder_pid: i32 = rt
        .block_on(holder.query_one("SELECT pg_backend_pid()", &[]))
        .unwrap()
        .get(0);
    let blocked_pid: i32 = rt
        .block_on(blocker.query_one("SELECT pg_backend_pid()", &[]))
        .unwrap()
        .get(0);
    rt.block_on(holder.batch_execute("BEGIN; UPDATE t SET v = v + 1 WHERE id = 1"))
        .unwrap();
    let blocked_task = rt.spawn(async move {
        blocker
            .execute("UPDATE t SET v = v + 2 WHERE id = 1", &[])
            .await
    });
    wait_until(
        "the second UPDATE waits for the first and both are over 1.5 s",
        || {
            cluster.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE
                   (pid = {blocked_pid} AND cardinality(pg_blocking_pids(pid)) > 0 AND now() - query_start > interval '1.5s')
                OR (pid = {holder_pid} AND state = 'idle in transaction' AND now() - state_change > interval '1.5s')"
            ),
        ) == "2"
        },
    );
    wait_until("archiving has failed at least once", || {
        cluster.psql("postgres", "SELECT failed_count > 0 FROM pg_stat_archiver") == "t"
    });
    Busy {
        cluster,
        rt,
        holder,
        holder_pid,
        blocked_pid,
        blocked_task,
    }
}

fn status_json(url: &str, extra: &[&str]) -> (Value, Run) {
    let mut args = vec!["status", url, "--json"];
    args.extend_from_slice(extra);
    let run = pgharbor(&args);
    assert_eq!(run.code, 0, "{}", run.all());
    (json(&run), run)
}

fn pids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|s| s["pid"].as_i64().unwrap())
        .collect()
}

#[test]
fn status_reports_every_section() {
    let b = busy_cluster();
    let url = b.cluster.url("app");
    let thresholds = [
        "--idle-in-transaction-over",
        "1s",
        "--long-running-over",
        "1s",
        "--wraparound-warn",
        "3000",
    ];
    let (s, run) = status_json(&url, &thresholds);
    assert_no_secret(&run.all());
    let credentials_in_dest =
        pgharbor(&["status", &url, "--backups", "s3://key:s3secret@bucket/pg"]);
    assert_eq!(credentials_in_dest.code, 2, "{}", credentials_in_dest.all());
    assert!(
        credentials_in_dest
            .stderr
            .contains("credentials in the URL are not supported"),
        "{}",
        credentials_in_dest.stderr
    );
    assert!(!credentials_in_dest.all().contains("s3secret"));

    // Server
    let server = &s["server"];
    assert!(
        server["version"]
            .as_str()
            .unwrap()
            .starts_with("PostgreSQL 15"),
        "{server}"
    );
    assert_eq!(server["in_recovery"], false);
    assert!(server["uptime_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(server["settings"]["max_connections"], "50");
    assert_eq!(
        server["settings"]["shared_preload_libraries"],
        "pg_stat_statements"
    );
    assert_eq!(
        server["settings"]["statement_timeout"], "0",
        "the server's, not our session's"
    );

    // Connections: holder idle in transaction, blocked one active, ours active.
    let conns = &s["connections"];
    assert_eq!(conns["max_connections"], 50);
    let app_state = |state: &str| {
        conns["by_database"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["database"] == "app" && d["state"] == state)
            .map(|d| d["count"].as_i64().unwrap())
            .unwrap_or(0)
    };
    assert_eq!(app_state("idle in transaction"), 1, "{conns}");
    assert!(app_state("active") >= 2, "{conns}");
    assert!(conns["total"].as_i64().unwrap() >= 3);

    // Sizes
    let app = s["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["database"] == "app")
        .expect("app listed");
    assert!(app["size_bytes"].as_i64().unwrap() > 1_000_000, "{app}");

    // Sessions over the thresholds and the lock graph.
    assert_eq!(pids(&s["idle_in_transaction"]), [i64::from(b.holder_pid)]);
    assert!(
        s["idle_in_transaction"][0]["state_seconds"]
            .as_f64()
            .unwrap()
            >= 1.5
    );
    assert_eq!(pids(&s["long_running"]), [i64::from(b.blocked_pid)]);
    assert!(s["longest_transaction_seconds"].as_f64().unwrap() >= 1.5);
    let blocked = &s["locks"]["blocked"];
    assert_eq!(pids(blocked), [i64::from(b.blocked_pid)]);
    assert_eq!(blocked[0]["blocked_by"], serde_json::json!([b.holder_pid]));
    assert!(
        blocked[0]["wait"].as_str().unwrap().starts_with("Lock:"),
        "{blocked}"
    );
    // Query texts are normalised unless asked for whole.
    assert_eq!(
        blocked[0]["query"], "UPDATE t SET v = v + $1 WHERE id = $2",
        "{blocked}"
    );
    let (whole, _) = status_json(&url, &[&thresholds[..], &["--show-query-text"]].concat());
    assert_eq!(
        whole["locks"]["blocked"][0]["query"],
        "UPDATE t SET v = v + 2 WHERE id = 1"
    );
    assert_eq!(pids(&s["locks"]["blocking"]), [i64::from(b.holder_pid)]);

    // Replication: no replica here, one inactive slot holding WAL.
    assert_eq!(s["replication"]["replicas"], serde_json::json!([]));
    let slot = &s["replication"]["slots"][0];
    assert_eq!(slot["name"], "stale_slot");
    assert_eq!(slot["active"], false);
    assert!(slot["retained_bytes"].as_i64().unwrap() > 0, "{slot}");

    // Wraparound: the 3,000 transaction IDs consumed above.
    let xid_age = |db: &str| {
        s["wraparound"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["database"] == db)
            .map(|w| w["xid_age"].as_i64().unwrap())
            .unwrap()
    };
    let app_age = xid_age("app");
    assert!(app_age >= 3000, "{}", s["wraparound"]);
    let server_age: i64 = b
        .cluster
        .psql(
            "postgres",
            "SELECT age(datfrozenxid) FROM pg_database WHERE datname = 'app'",
        )
        .parse()
        .unwrap();
    assert!(
        app_age <= server_age,
        "{app_age} vs {server_age} read afterwards"
    );

    // Archiver failing, cache hit ratio, statements, extensions, backups.
    assert_eq!(s["archiver"]["archive_mode"], "on");
    assert_eq!(s["archiver"]["failing"], true);
    assert!(s["archiver"]["failed_count"].as_i64().unwrap() >= 1);
    let ratio = s["cache_hit"]["overall"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio <= 1.0, "{ratio}");
    assert_eq!(s["statements"]["installed"], true);
    let top = s["statements"]["by_total_time"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 5);
    assert!(top.iter().all(|q| q["calls"].as_i64().unwrap() >= 1));
    assert!(!s["statements"]["by_mean_time"]
        .as_array()
        .unwrap()
        .is_empty());
    let hstore = s["extensions"]["installed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "hstore")
        .expect("hstore listed");
    assert_eq!(hstore["installed_version"], "1.7");
    assert_eq!(hstore["update_available"], true);
    assert_eq!(s["backups"], Value::Null, "only with --backups");

    // Problems, most severe first, naming each thing the test set up.
    let problems = s["problems"].as_array().unwrap();
    let sections: Vec<&str> = problems
        .iter()
        .map(|p| p["section"].as_str().unwrap())
        .collect();
    for wanted in ["archiver", "sessions", "locks", "replication", "wraparound"] {
        assert!(
            sections.contains(&wanted),
            "{wanted} missing from {sections:?}"
        );
    }
    assert_eq!(problems[0]["severity"], "critical");
    assert_eq!(problems[0]["section"], "archiver");
    let text = serde_json::to_string(problems).unwrap();
    assert!(
        text.contains(&format!("pid {} (postgres@app", b.holder_pid)),
        "{text}"
    );
    assert!(text.contains("stale_slot"), "{text}");

    // Without pg_stat_statements in the database: how to enable it.
    let (s, _) = status_json(&b.cluster.url("postgres"), &[]);
    assert_eq!(s["statements"]["installed"], false);
    let how = s["statements"]["how_to_enable"].as_str().unwrap();
    assert!(how.contains("CREATE EXTENSION pg_stat_statements"), "{how}");
    // Default thresholds (1 min, 5 min): the sessions are not listed yet.
    assert_eq!(s["idle_in_transaction"], serde_json::json!([]));

    // The terminal form: problems first, highlighted by severity.
    let run = pgharbor(&[
        "status",
        &url,
        "--idle-in-transaction-over",
        "1s",
        "--long-running-over",
        "1s",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "postgresql://postgres:****@127.0.0.1:{}/app",
            b.cluster.port()
        )
    );
    assert!(lines[1].starts_with("Problems ("), "{}", run.stdout);
    assert!(
        lines[2].starts_with("  CRITICAL [archiver]"),
        "{}",
        run.stdout
    );
    let first_section = run.stdout.find("\nServer\n").expect("server section");
    assert!(run.stdout.find("WARNING [locks]").unwrap() < first_section);
    for heading in [
        "Connections:",
        "Databases",
        "Idle in transaction: 1",
        "Long-running queries: 1",
        "Locks: 1 blocked",
        "Replication:",
        "Transaction-ID wraparound",
        "Archiver:",
        "Cache hit ratio:",
        "Top statements by total time",
        "Extensions in app:",
    ] {
        assert!(
            run.stdout.contains(heading),
            "{heading} missing:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("hstore 1.7 (update available: 1.8"),
        "{}",
        run.stdout
    );
    assert_no_secret(&run.all());

    // `--backups` on a destination holding none: a critical problem first
    // (the backups tests cover real backups).
    let empty = tempfile::tempdir().unwrap();
    let dest = empty.path().to_str().unwrap();
    let run = pgharbor(&["status", &url, "--backups", dest]);
    assert!(
        run.stdout
            .contains(&format!("[backups] no backup at {dest}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("last good:     none"), "{}", run.stdout);

    drop(b.holder);
    let _ = b.rt.block_on(b.blocked_task);
}

#[test]
fn status_warns_when_autovacuum_is_off() {
    let off = cluster_with(&[("autovacuum", "off")]);
    let (status, _) = status_json(&off.url("postgres"), &[]);
    let problems = status["problems"].to_string();
    assert!(problems.contains("autovacuum is off"), "{problems}");
    let on = cluster_with(&[]);
    let (status, _) = status_json(&on.url("postgres"), &[]);
    let problems = status["problems"].to_string();
    assert!(!problems.contains("autovacuum"), "{problems}");
}

#[test]
fn status_as_a_monitoring_user_says_what_it_cannot_see() {
    let c = cluster_with(&[]);
    c.psql(
        "postgres",
        "CREATE ROLE watcher LOGIN PASSWORD 'apppw-secret' IN ROLE pg_monitor;
         CREATE ROLE plain LOGIN PASSWORD 'apppw-secret';
         CREATE DATABASE private; REVOKE CONNECT ON DATABASE private FROM PUBLIC;",
    );
    let rt = runtime();
    let holder = rt.block_on(c.client("postgres"));
    rt.block_on(holder.batch_execute("BEGIN; SELECT txid_current()"))
        .unwrap();
    wait_until(
        "the superuser's session is idle in transaction for 1.5 s",
        || {
            c.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'postgres' AND state = 'idle in transaction' AND now() - state_change > interval '1.5s'",
        ) == "1"
        },
    );
    let url = |user: &str| {
        format!(
            "postgresql://{user}:apppw-secret@127.0.0.1:{}/postgres",
            c.port()
        )
    };
    let args = ["--idle-in-transaction-over", "1s"];

    let (s, run) = status_json(&url("watcher"), &args);
    assert_no_secret(&run.all());
    assert_eq!(s["server"]["monitor_role"], true);
    assert_eq!(s["server"]["superuser"], false);
    assert_eq!(
        pids(&s["idle_in_transaction"]).len(),
        1,
        "pg_monitor sees others' sessions"
    );
    assert!(
        s["not_visible"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["section"] != "sessions"),
        "{}",
        s["not_visible"]
    );
    let sizes = s["databases"].as_array().unwrap();
    assert!(
        sizes.iter().all(|d| d["size_bytes"].is_i64()),
        "pg_monitor reads every size"
    );

    let (s, _) = status_json(&url("plain"), &args);
    assert_eq!(s["server"]["monitor_role"], false);
    let nv = s["not_visible"].as_array().unwrap();
    let sessions = nv
        .iter()
        .find(|n| n["section"] == "sessions")
        .expect("sessions note");
    assert!(
        sessions["reason"]
            .as_str()
            .unwrap()
            .contains("GRANT pg_monitor TO plain"),
        "{sessions}"
    );
    assert_eq!(
        s["idle_in_transaction"],
        serde_json::json!([]),
        "hidden from plain"
    );
    assert!(
        s["connections"]["by_state"]["hidden"].as_i64().unwrap_or(0) >= 1,
        "{}",
        s["connections"]
    );
    let private = sizes_of(&s, "private");
    assert!(private.is_null(), "no CONNECT on private: {private}");
    // Every other section still came through.
    for section in [
        "server",
        "connections",
        "wraparound",
        "archiver",
        "cache_hit",
        "extensions",
    ] {
        assert!(!s[section].is_null(), "{section} missing for a plain user");
    }
    drop(holder);
}

fn sizes_of(s: &Value, db: &str) -> Value {
    s["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["database"] == db)
        .map(|d| d["size_bytes"].clone())
        .unwrap_or_else(|| panic!("{db} not listed"))
}

#[test]
fn status_of_redis() {
    let r = RedisServer::start_with(RedisOptions {
        requirepass: Some(REDIS_PASSWORD.to_owned()),
        extra: vec![
            ("maxmemory".into(), "4mb".into()),
            ("maxmemory-policy".into(), "noeviction".into()),
        ],
        ..Default::default()
    });
    for i in 0..3 {
        assert!(r
            .command(&["SET", &format!("k{i}"), "v"])
            .starts_with("+OK"));
    }
    r.command(&["SELECT", "2"]);
    let run = pgharbor(&["status", &r.url(), "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_no_secret(&run.all());
    let s = json(&run);
    assert!(s["version"].as_str().unwrap().starts_with('7'));
    assert_eq!(s["memory"]["max_bytes"], 4.0 * 1024.0 * 1024.0);
    assert_eq!(s["memory"]["eviction_policy"], "noeviction");
    assert!(s["clients"]["connected"].as_f64().unwrap() >= 1.0);
    assert_eq!(s["persistence"]["last_bgsave_status"], "ok");
    assert_eq!(s["persistence"]["aof_enabled"], false);
    assert_eq!(s["replication"]["role"], "master");
    assert_eq!(s["keyspace"][0]["db"], "db0");
    assert_eq!(s["keyspace"][0]["keys"], 3);
    assert_eq!(s["problems"], serde_json::json!([]));

    // Fill it to the limit: with noeviction, a critical problem.
    let big = "x".repeat(20_000);
    let mut i = 0;
    loop {
        let reply = r.command(&["SET", &format!("big{i}"), &big]);
        if reply.starts_with("-OOM") {
            break;
        }
        assert!(reply.starts_with("+OK"), "{reply}");
        i += 1;
        assert!(i < 1000, "never reached maxmemory");
    }
    let run = pgharbor(&["status", &r.url()]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .lines()
            .nth(2)
            .unwrap()
            .starts_with("  CRITICAL [memory]"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("eviction policy noeviction"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Keyspace: db0:"), "{}", run.stdout);

    // Wrong password: exit 1, said plainly.
    let run = pgharbor(&["status", &r.url().replace(REDIS_PASSWORD, "nope")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("authentication failed"),
        "{}",
        run.stderr
    );
}

// ------------------------------------------------------------------- kill

#[test]
fn kill_lists_first_then_terminates_and_cancels() {
    let c = cluster_with(&[]);
    c.create_database("app");
    let rt = runtime();
    let idle = rt.block_on(c.client("app"));
    let bystander = rt.block_on(c.client("app"));
    let sleeper = rt.block_on(c.client("app"));
    let pid_of = |client: &tokio_postgres::Client| -> i32 {
        rt.block_on(client.query_one("SELECT pg_backend_pid()", &[]))
            .unwrap()
            .get(0)
    };
    let (idle_pid, bystander_pid, sleeper_pid) =
        (pid_of(&idle), pid_of(&bystander), pid_of(&sleeper));
    rt.block_on(idle.batch_execute("BEGIN; SELECT 1")).unwrap();
    let sleeping = rt.spawn(async move {
        let result = sleeper.simple_query("SELECT pg_sleep(120)").await;
        (sleeper, result)
    });
    wait_until(
        "one session idle in transaction and one query running for over 1.5 s",
        || {
            c.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE
                   (pid = {idle_pid} AND state = 'idle in transaction' AND now() - state_change > interval '1.5s')
                OR (pid = {sleeper_pid} AND state = 'active' AND now() - query_start > interval '1.5s')"
            ),
        ) == "2"
        },
    );
    let alive = |pid: i32| {
        c.psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
        ) == "1"
    };
    let url = c.url("app");

    // Dry run: listed, nothing done.
    let run = pgharbor(&[
        "kill",
        &url,
        "--idle-in-transaction-over",
        "1s",
        "--dry-run",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .starts_with("1 session(s) idle in transaction over 1s:"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("terminate pid {idle_pid} postgres@app")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(": BEGIN; SELECT $1\n"),
        "the query normalised: {}",
        run.stdout
    );
    let whole = pgharbor(&[
        "kill",
        &url,
        "--idle-in-transaction-over",
        "1s",
        "--dry-run",
        "--show-query-text",
    ]);
    assert!(
        whole.stdout.contains(": BEGIN; SELECT 1\n"),
        "{}",
        whole.stdout
    );
    assert!(
        run.stdout.contains("dry run: nothing was done"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(&format!("pid {bystander_pid} ")),
        "{}",
        run.stdout
    );
    assert!(alive(idle_pid));
    let run = pgharbor(&[
        "kill",
        &url,
        "--idle-in-transaction-over",
        "1h",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(
        json(&run)["sessions"],
        serde_json::json!([]),
        "none idle for an hour"
    );
    assert_no_secret(&run.all());

    // Real run: the idle-in-transaction session is terminated, nobody else.
    let run = pgharbor(&["kill", &url, "--idle-in-transaction-over", "1s"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains(&format!("terminated pid {idle_pid}")),
        "{}",
        run.stdout
    );
    wait_until("the terminated backend is gone", || !alive(idle_pid));
    assert!(
        rt.block_on(idle.simple_query("SELECT 1")).is_err(),
        "its client sees the connection end"
    );
    assert!(alive(bystander_pid) && alive(sleeper_pid));

    // --running-over: the query is cancelled by default, the session stays.
    let run = pgharbor(&["kill", &url, "--running-over", "1s", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let j = json(&run);
    assert_eq!(pids(&j["sessions"]), [i64::from(sleeper_pid)]);
    assert_eq!(j["sessions"][0]["action"], "cancel");
    assert_eq!(j["sessions"][0]["done"], true);
    let (_sleeper, result) = rt.block_on(sleeping).unwrap();
    let err = result.expect_err("the sleep was cancelled");
    assert_eq!(err.code().map(|s| s.code()), Some("57014"), "{err}");
    assert!(alive(sleeper_pid), "cancel keeps the session");
    assert!(alive(bystander_pid));

    // Nothing selected: a usage error.
    let run = pgharbor(&["kill", &url]);
    assert_eq!(run.code, 2, "{}", run.all());
}

// ------------------------------------------------------------------ serve

fn serve_config(
    c: &Cluster,
    redis: &RedisServer,
    secret_file: &std::path::Path,
    backups: &std::path::Path,
    refresh: u64,
) -> String {
    format!(
        r#"refresh_seconds = {refresh}
timeout_seconds = 5

[thresholds]
idle_in_transaction = "1s"

[[postgres]]
name = "main"
url = "postgresql://postgres@127.0.0.1:{port}/app"
password = {{ env = "PGH_TEST_MAIN_PASSWORD" }}

[[redis]]
name = "cache"
url = "{redis_url}"
password = {{ file = "{secret}" }}

[[backups]]
name = "nightly"
dest = "{backups}"
"#,
        port = c.port(),
        redis_url = redis.url_without_password(),
        secret = secret_file.display(),
        backups = backups.display(),
    )
}

#[test]
fn serve_metrics_healthz_api_and_dashboard() {
    let c = cluster_with(&[]);
    c.create_database("app");
    c.psql(
        "app",
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g",
    );
    let redis = RedisServer::start_with(RedisOptions {
        requirepass: Some(REDIS_PASSWORD.to_owned()),
        ..Default::default()
    });
    redis.command(&["SET", "a", "1"]);
    redis.command(&["SET", "b", "2"]);
    let rt = runtime();
    let idle = rt.block_on(c.client("app"));
    let idle_pid: i32 = rt
        .block_on(idle.query_one("SELECT pg_backend_pid()", &[]))
        .unwrap()
        .get(0);
    rt.block_on(idle.batch_execute("BEGIN; SELECT 1")).unwrap();
    wait_until("a session idle in transaction for 1.5 s", || {
        c.psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {idle_pid} AND now() - state_change > interval '1.5s'"),
        ) == "1"
    });
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("redis-password");
    std::fs::write(&secret, format!("{REDIS_PASSWORD}\n")).unwrap();
    // An empty backup destination: its problem is on every page (the
    // backups tests fill one).
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let serve = Serve::start(
        &serve_config(&c, &redis, &secret, &backups, 1),
        &[("PGH_TEST_MAIN_PASSWORD", PG_PASSWORD)],
        &[PG_PASSWORD, REDIS_PASSWORD],
    );

    let (status, _, body) = serve.request("GET", "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let (status, headers, body) = serve.request("GET", "/metrics");
    assert_eq!(status, 200);
    assert!(
        headers["content-type"].starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    let m = parse_metrics(&body);
    let main = [("server", "main")];
    assert_eq!(metric(&m, "pg_up", &main), Some(1.0), "{body}");
    assert_eq!(metric(&m, "pg_in_recovery", &main), Some(0.0));
    assert_eq!(metric(&m, "pg_max_connections", &main), Some(50.0));
    assert_eq!(
        metric(
            &m,
            "pg_connections",
            &[
                ("server", "main"),
                ("database", "app"),
                ("state", "idle in transaction")
            ]
        ),
        Some(1.0),
        "{body}"
    );
    let size: f64 = c
        .psql("postgres", "SELECT pg_database_size('app')")
        .parse()
        .unwrap();
    let reported = metric(
        &m,
        "pg_database_size_bytes",
        &[("server", "main"), ("database", "app")],
    )
    .unwrap();
    assert!(
        reported > 500_000.0 && (reported - size).abs() / size < 0.1,
        "{reported} vs {size}"
    );
    assert!(metric(&m, "pg_longest_transaction_seconds", &main).unwrap() >= 1.5);
    assert_eq!(
        metric(&m, "pg_idle_in_transaction_sessions", &main),
        Some(1.0)
    );
    assert_eq!(metric(&m, "pg_blocked_sessions", &main), Some(0.0));
    let age: f64 = c
        .psql(
            "postgres",
            "SELECT age(datfrozenxid) FROM pg_database WHERE datname = 'app'",
        )
        .parse()
        .unwrap();
    let reported_age = metric(
        &m,
        "pg_database_xid_age",
        &[("server", "main"), ("database", "app")],
    )
    .unwrap();
    assert!(
        reported_age > 0.0 && reported_age <= age,
        "{reported_age} vs {age}"
    );
    assert_eq!(
        metric(
            &m,
            "pg_problems",
            &[("server", "main"), ("severity", "warning")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "redis_up", &[("server", "cache")]),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(&m, "redis_db_keys", &[("server", "cache"), ("db", "db0")]),
        Some(2.0)
    );
    assert_eq!(
        metric(&m, "redis_memory_max_bytes", &[("server", "cache")]),
        Some(0.0)
    );
    assert_eq!(
        metric(&m, "redis_rdb_last_bgsave_ok", &[("server", "cache")]),
        Some(1.0)
    );
    let nightly = [("backup", "nightly")];
    assert_eq!(
        metric(
            &m,
            "pgharbor_backup_info",
            &[("backup", "nightly"), ("health", "critical")]
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(&m, "pgharbor_backup_destination_up", &nightly),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &m,
            "pgharbor_backup_last_success_timestamp_seconds",
            &nightly
        ),
        Some(0.0),
        "no good backup: 0, so an age alert fires"
    );
    assert_eq!(
        metric(
            &m,
            "pgharbor_backups",
            &[("backup", "nightly"), ("state", "complete")]
        ),
        Some(0.0)
    );
    assert!(
        !m.iter()
            .any(|(n, _, _)| n == "pgharbor_backup_last_size_bytes"),
        "no invented size"
    );

    let api: Value = serde_json::from_str(&serve.get("/api/status")).expect("JSON");
    assert_eq!(api["postgres"][0]["name"], "main");
    assert_eq!(api["postgres"][0]["up"], true);
    assert_eq!(
        api["postgres"][0]["target"],
        format!("postgresql://postgres:****@127.0.0.1:{}/app", c.port())
    );
    assert_eq!(
        pids(&api["postgres"][0]["status"]["idle_in_transaction"]),
        [i64::from(idle_pid)]
    );
    assert_eq!(api["redis"][0]["up"], true);
    assert_eq!(api["redis"][0]["status"]["keyspace"][0]["keys"], 2);
    assert_eq!(api["backups"][0]["readable"], true);
    assert_eq!(api["backups"][0]["last_good"], Value::Null);
    assert_eq!(api["problem_count"], 2, "idle in transaction, no backup");

    let html = serve.get("/");
    assert!(
        html.contains(r#"data-server="main" data-kind="postgresql" data-state="up""#),
        "{html}"
    );
    assert!(html.contains(r#"data-server="cache" data-kind="redis" data-state="up""#));
    assert!(html.contains(r#"<meta http-equiv="refresh" content="1">"#));
    assert!(html.contains(r#"name="viewport""#));
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(
        html.contains(&format!("no backup at {}", backups.display())),
        "{html}"
    );
    assert!(html.contains(r#"<tr data-backup="nightly" data-state="critical">"#));
    assert!(
        html.contains(&format!("pid {idle_pid} (postgres@app")),
        "the problem is on the page"
    );
    assert!(html.contains(r#"<tr data-database="app">"#));

    assert_eq!(serve.request("GET", "/nope").0, 404);
    assert_eq!(serve.request("POST", "/metrics").0, 405);

    // The server goes away: pg_up 0, the card says down, the reason is shown.
    c.stop();
    wait_until("/metrics reports pg_up 0", || {
        metric(&parse_metrics(&serve.get("/metrics")), "pg_up", &main) == Some(0.0)
    });
    let api: Value = serde_json::from_str(&serve.get("/api/status")).unwrap();
    assert_eq!(api["postgres"][0]["up"], false);
    assert!(
        api["postgres"][0]["error"]
            .as_str()
            .unwrap()
            .contains("could not connect"),
        "{}",
        api["postgres"][0]
    );
    let html = serve.get("/");
    assert!(html.contains(r#"data-server="main" data-kind="postgresql" data-state="down""#));
    assert_eq!(
        metric(
            &parse_metrics(&serve.get("/metrics")),
            "redis_up",
            &[("server", "cache")]
        ),
        Some(1.0)
    );
    drop(idle);
}

#[test]
fn serve_config_errors_name_the_problem_not_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let write = |text: &str| {
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases = [
        (
            format!("[[postgres]]\nname = \"main\"\nurl = \"postgresql://u:{PG_PASSWORD}@h/db\"\nbogus = 1\n"),
            "line 4",
        ),
        (
            "[[postgres]]\nname = \"main\"\nurl = { env = \"PGH_TEST_UNSET_VAR\" }\n".to_owned(),
            "PGH_TEST_UNSET_VAR is not set",
        ),
        (
            format!("[[redis]]\nname = \"cache\"\nurl = \"redis://:{REDIS_PASSWORD}@h:99999\"\n"),
            "[[redis]] cache",
        ),
        ("listen = \"127.0.0.1:0\"\n".to_owned(), "nothing to watch"),
        (
            format!("[[backups]]\nname = \"nightly\"\ndest = \"s3://key:{PG_PASSWORD}@bucket/pg\"\n"),
            "backups \"nightly\"",
        ),
        (
            "[[backups]]\nname = \"nightly\"\ndest = \"/srv/b\"\nmax_age = \"daily\"\n".to_owned(),
            "[[backups]] nightly max_age",
        ),
        (
            format!("[auth]\ntoken = \"{PG_PASSWORD}\"\n[[backups]]\nname = \"b\"\ndest = \"/srv/b\"\n"),
            "[auth] token from the literal value has fewer than 16 characters; use at least 16",
        ),
        (
            format!("[auth]\nuser = \"ops\"\npassword = \"{PG_PASSWORD}\"\n[[backups]]\nname = \"b\"\ndest = \"/srv/b\"\n"),
            "[auth] password from the literal value has fewer than 16 characters; use at least 16",
        ),
        (
            format!("[auth]\nuser = \"ops\"\nmetrics = \"sometimes\"\npassword = \"{PG_PASSWORD}\"\n"),
            "line 3",
        ),
        (
            "[tls]\ncert = \"/nonexistent/tls.crt\"\nkey = \"/nonexistent/tls.key\"\n[[backups]]\nname = \"b\"\ndest = \"/srv/b\"\n".to_owned(),
            "[tls] cert /nonexistent/tls.crt: ",
        ),
    ];
    for (text, needle) in cases {
        let path = write(&text);
        let run = pgharbor(&["serve", "--config", path.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{text}: {}", run.all());
        assert!(
            run.stderr.contains(needle),
            "{needle} not in {}",
            run.stderr
        );
        assert_no_secret(&run.all());
    }
}

// ------------------------------------------- serve: who may read what

const TOKEN: &str = "Tk-5f1c9e0b7a2d4c8e9f3a";
const BASIC_PASSWORD: &str = "Bp-7e2a9c4d1f5b83";
/// What a session on the monitored server runs: a literal secret in a query.
const SECRET_QUERY: &str = "select pg_sleep(60), 'secret-token-abc123' as t";
const SECRET_LITERAL: &str = "secret-token-abc123";
const NORMALISED_QUERY: &str = "select pg_sleep($1), $2 as t";

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A cluster with a session running [`SECRET_QUERY`] for over 1.5 s.
fn cluster_running_the_secret_query() -> Cluster {
    let c = cluster_with(&[]);
    let url = c.url("postgres");
    std::thread::spawn(move || pgharbor_testkit_psql(&url, SECRET_QUERY));
    wait_until("the secret query has run for 1.5 s", || {
        c.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'select pg_sleep(60)%' AND state = 'active' AND now() - query_start > interval '1.5s'",
        ) == "1"
    });
    c
}

/// Runs `sql` in its own session (until it ends or the server stops).
fn pgharbor_testkit_psql(url: &str, sql: &str) {
    let rt = runtime();
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let _ = client.simple_query(sql).await;
    });
}

/// `serve` watching `c`'s `postgres` database with long-running queries
/// listed from 1 s, `[auth]` with the token from an environment variable
/// and a user whose password is in `password_file`, and `extra` on top.
fn authenticated_config(c: &Cluster, password_file: &std::path::Path, extra: &str) -> String {
    format!(
        r#"refresh_seconds = 1
timeout_seconds = 5
{extra}

[thresholds]
long_running = "1s"

[auth]
token = {{ env = "PGH_TEST_TOKEN" }}
user = "ops"
password = {{ file = "{password}" }}

[[postgres]]
name = "main"
url = "postgresql://postgres@127.0.0.1:{port}/postgres"
password = {{ env = "PGH_TEST_MAIN_PASSWORD" }}
"#,
        port = c.port(),
        password = password_file.display(),
    )
}

/// `serve` on loopback with `config`: the PostgreSQL password and the token
/// in the environment (and `env`); none of them, no Basic password and
/// none of `secrets` in any answer or the line it prints on starting.
fn serve_authenticated(config: &str, env: &[(&str, &str)], secrets: &[&str]) -> Serve {
    let mut all = vec![
        ("PGH_TEST_MAIN_PASSWORD", PG_PASSWORD),
        ("PGH_TEST_TOKEN", TOKEN),
    ];
    all.extend_from_slice(env);
    let mut hidden = vec![PG_PASSWORD, TOKEN, BASIC_PASSWORD];
    hidden.extend_from_slice(secrets);
    Serve::try_start(config, &all, "127.0.0.1:0")
        .unwrap_or_else(|e| panic!("serve did not start: {e}"))
        .with_secrets(&hidden)
}

#[test]
fn serve_refuses_a_non_loopback_address_without_auth() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[[backups]]\nname = \"nightly\"\ndest = \"{}\"\n",
        dir.path().display()
    );
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let err = match Serve::try_start(&config, &[], listen) {
            Ok(serve) => panic!("it serves without auth: {}", serve.banner()),
            Err(err) => err,
        };
        assert!(err.contains("exit status: 2"), "{err}");
        assert!(
            err.contains(&format!(
                "refusing to serve on {listen} without authentication"
            )),
            "{err}"
        );
        for remedy in ["[auth] section", "127.0.0.1", "--insecure-no-auth"] {
            assert!(err.contains(remedy), "{remedy} not in {err}");
        }
    }
    // The file's own listen address is held to the same rule.
    let listen_in_file = format!("listen = \"0.0.0.0:0\"\n{config}");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, listen_in_file).unwrap();
    let run = pgharbor(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("refusing to serve on 0.0.0.0:0"),
        "{}",
        run.stderr
    );
}

#[test]
fn serve_asks_for_credentials_and_shows_query_texts_normalised() {
    let c = cluster_running_the_secret_query();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("basic-password");
    std::fs::write(&password_file, format!("{BASIC_PASSWORD}\n")).unwrap();
    let serve = serve_authenticated(
        &authenticated_config(&c, &password_file, ""),
        &[("PGHARBOR_LOG", "debug")],
        &[SECRET_LITERAL],
    );
    assert!(
        serve
            .banner()
            .contains("credentials required; query texts normalised"),
        "{}",
        serve.banner()
    );

    // No credentials, a wrong token, a wrong password: 401 and a challenge a browser answers.
    let wrong_token = bearer("Tk-5f1c9e0b7a2d4c8e9f3b");
    let wrong_password = basic("ops", "Bp-7e2a9c4d1f5b84");
    let token_as_user = basic(TOKEN, "x");
    for path in ["/", "/api/status", "/metrics", "/index.html", "/nope"] {
        let (status, headers, body) = serve.request("GET", path);
        assert_eq!(status, 401, "{path}: {body}");
        let challenge = &headers["www-authenticate"];
        assert!(
            challenge.contains("Basic realm=\"pgharbor\"") && challenge.contains("Bearer"),
            "{challenge}"
        );
        assert!(body.contains("credentials required"), "{body}");
        for wrong in [&wrong_token, &wrong_password, &token_as_user] {
            let (status, _, body) = serve.request_with("GET", path, &[("Authorization", wrong)]);
            assert_eq!(status, 401, "{path} with {wrong}: {body}");
            assert!(body.contains("wrong credentials"), "{body}");
        }
    }
    // /healthz stays open by default: probes cannot always send credentials.
    assert_eq!(serve.request("GET", "/healthz").0, 200);

    // The token, as Bearer or as a Basic password, and the user's password: 200.
    let right = bearer(TOKEN);
    for credentials in [
        right.clone(),
        basic("anyone", TOKEN),
        basic("ops", BASIC_PASSWORD),
    ] {
        for path in ["/", "/api/status", "/metrics", "/healthz"] {
            let (status, _, body) =
                serve.request_with("GET", path, &[("Authorization", &credentials)]);
            assert_eq!(status, 200, "{path} with {credentials}: {body}");
        }
    }
    let auth = [("Authorization", right.as_str())];

    // The query with a literal secret: normalised in /api/status, its problem and the page.
    let api: Value = serde_json::from_str(&serve.get_with("/api/status", &auth)).unwrap();
    let status = &api["postgres"][0]["status"];
    let long: Vec<&str> = status["long_running"]
        .as_array()
        .unwrap_or_else(|| panic!("{status}"))
        .iter()
        .map(|s| s["query"].as_str().unwrap())
        .collect();
    assert_eq!(long, [NORMALISED_QUERY], "{status}");
    let problems = status["problems"].to_string();
    assert!(problems.contains(NORMALISED_QUERY), "{problems}");
    let (_, headers, html) = serve.request_with("GET", "/", &auth);
    assert!(html.contains(NORMALISED_QUERY), "{html}");

    // Browser hygiene on every answer.
    let csp = &headers["content-security-policy"];
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");

    // A page whose name was re-pointed at this address (DNS rebinding) is refused, credentials or not.
    for host in ["evil.example", "localhost.evil.example:80"] {
        let (status, _, body) =
            serve.request_with("GET", "/api/status", &[("Host", host), auth[0]]);
        assert_eq!(status, 403, "{host}: {body}");
        assert!(body.contains("add it to allowed_hosts"), "{body}");
    }
    let port = serve.addr().rsplit(':').next().unwrap().to_owned();
    let localhost = format!("localhost:{port}");
    assert_eq!(
        serve
            .request_with("GET", "/healthz", &[("Host", &localhost)])
            .0,
        200
    );

    // Nothing secret in the log (debug level), which does record the wrong attempts.
    let log = serve.log();
    for secret in [TOKEN, BASIC_PASSWORD, SECRET_LITERAL, PG_PASSWORD] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert!(
        log.contains("wrong credentials for \"/api/status\""),
        "{log}"
    );
    drop(serve);

    // show_query_text = true: the text whole, everywhere.
    let serve = serve_authenticated(
        &authenticated_config(&c, &password_file, "show_query_text = true"),
        &[],
        &[],
    );
    assert!(
        serve.banner().contains("query texts shown whole"),
        "{}",
        serve.banner()
    );
    let api: Value = serde_json::from_str(&serve.get_with("/api/status", &auth)).unwrap();
    assert_eq!(
        api["postgres"][0]["status"]["long_running"][0]["query"],
        SECRET_QUERY
    );
    let html = serve.get_with("/", &auth);
    assert!(
        html.contains(&SECRET_QUERY.replace('\'', "&#39;")),
        "{html}"
    );
    c.psql(
        "postgres",
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'select pg_sleep(60)%'",
    );
}

#[test]
fn serve_protects_metrics_by_its_own_setting() {
    let c = cluster_with(&[]);
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("basic-password");
    std::fs::write(&password_file, BASIC_PASSWORD).unwrap();
    let base = authenticated_config(&c, &password_file, "");
    let start = |extra_auth: &str, env: &[(&str, &str)], secrets: &[&str]| {
        let config = base.replace("[auth]\n", &format!("[auth]\n{extra_auth}\n"));
        serve_authenticated(&config, env, secrets)
    };

    // metrics = "open", healthz = "protected"; a scrape token written in the file is warned about.
    let literal = "Lt-9a8b7c6d5e4f3a2b1c";
    let serve = start(
        &format!("metrics = \"open\"\nhealthz = \"protected\"\nmetrics_token = \"{literal}\""),
        &[],
        &[literal],
    );
    assert_eq!(serve.request("GET", "/metrics").0, 200);
    assert_eq!(serve.request("GET", "/healthz").0, 401);
    assert_eq!(serve.request("GET", "/api/status").0, 401);
    let log = serve.log();
    assert!(
        log.contains("warning: [auth] metrics_token is written in")
            && log.contains("prefer { env = \"…\" } or { file = \"…\" }"),
        "{log}"
    );
    assert!(!log.contains(literal), "{log}");
    drop(serve);

    // A scrape token: /metrics and /healthz, never the dashboard.
    let scrape = "Sc-1b2c3d4e5f6a7b8c9d";
    let serve = start(
        "metrics_token = { env = \"PGH_TEST_SCRAPE_TOKEN\" }",
        &[("PGH_TEST_SCRAPE_TOKEN", scrape)],
        &[scrape],
    );
    let with_scrape = bearer(scrape);
    let as_scraper = [("Authorization", with_scrape.as_str())];
    assert_eq!(
        serve.request("GET", "/metrics").0,
        401,
        "protected by default"
    );
    let metrics = serve.get_with("/metrics", &as_scraper);
    assert_eq!(
        metric(&parse_metrics(&metrics), "pg_up", &[("server", "main")]),
        Some(1.0)
    );
    assert_eq!(serve.request_with("GET", "/", &as_scraper).0, 401);
    assert_eq!(serve.request_with("GET", "/api/status", &as_scraper).0, 401);
}

/// A CA and a server certificate for localhost signed by it, written as
/// `cert` (with the CA after it) and `key`; returns the server certificate (DER).
fn issue_localhost_cert(
    ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Vec<u8> {
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, ca)
        .unwrap();
    // The key first: a half-renewed pair (new key, old certificate) must not be served.
    std::fs::write(key, leaf_key.serialize_pem()).unwrap();
    std::fs::write(cert, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    leaf.der().to_vec()
}

fn test_ca() -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pgharbor test CA");
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
}

/// One HTTPS request to `addr` trusting only `ca`, naming `localhost`;
/// the response and the certificate the server presented (DER).
fn https_request(
    addr: &str,
    ca: &[u8],
    path: &str,
    headers: &[(&str, &str)],
) -> (crate::serving::Response, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.to_vec().into()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(crate::serving::request_head("GET", path, addr, headers).as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    if let Err(e) = tls.read_to_end(&mut raw) {
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    }
    let presented = tls.conn.peer_certificates().unwrap()[0].to_vec();
    (
        crate::serving::parse_response(&String::from_utf8(raw).unwrap()),
        presented,
    )
}

#[test]
fn serve_over_tls_and_a_renewed_certificate_without_restart() {
    let c = cluster_with(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let ca = test_ca();
    let first = issue_localhost_cert(&ca, &cert, &key);
    let password_file = dir.path().join("basic-password");
    std::fs::write(&password_file, BASIC_PASSWORD).unwrap();
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"",
        cert.display(),
        key.display()
    );
    let config = authenticated_config(&c, &password_file, "")
        .replace("[thresholds]", &format!("{tls}\n\n[thresholds]"));
    let serve = serve_authenticated(&config, &[], &[]);
    assert!(serve.url("/").starts_with("https://"), "{}", serve.banner());
    let right = bearer(TOKEN);
    let auth = [("Authorization", right.as_str())];
    let ca_der = ca.der().to_vec();

    let ((status, _, body), presented) = https_request(serve.addr(), &ca_der, "/api/status", &auth);
    assert_eq!(status, 200, "{body}");
    assert!(presented == first, "not the configured certificate");
    let api: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["postgres"][0]["up"], true);
    let ((status, _, _), _) = https_request(serve.addr(), &ca_der, "/api/status", &[]);
    assert_eq!(status, 401);

    // Plain HTTP on the HTTPS port gets no answer in clear.
    let mut plain = std::net::TcpStream::connect(serve.addr()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    plain
        .write_all(crate::serving::request_head("GET", "/healthz", serve.addr(), &[]).as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw);
    assert!(
        !raw.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&raw)
    );

    // Renewed in place (as certbot or cert-manager do): the next connection gets the new one.
    let second = issue_localhost_cert(&ca, &cert, &key);
    let ((status, _, _), presented) = https_request(serve.addr(), &ca_der, "/healthz", &auth);
    assert_eq!(status, 200);
    assert!(presented == second, "the renewed certificate is not served");
    assert!(first != second);
}

// ---------------------------------------------------------------- browser

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The dashboard in Debian's headless Chromium, driven by playwright-core
/// (installed by scripts/browser-setup.sh): refused without credentials,
/// logged in with the token, its style applied under the
/// Content-Security-Policy; the server shows as up, is stopped, and the
/// page — refreshing itself — shows it as down.
/// Screenshots: target/test-artifacts/dashboard-up.png, dashboard-down.png.
#[test]
fn dashboard_in_headless_chromium_shows_up_then_down() {
    let root = workspace_root();
    let playwright = root.join(".cache/browser/node_modules/playwright-core");
    assert!(
        playwright.join("package.json").exists(),
        "{} is missing: run scripts/setup.sh (it runs scripts/browser-setup.sh)",
        playwright.display()
    );
    let chromium =
        std::env::var("PGHARBOR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        PathBuf::from(&chromium).exists(),
        "{chromium} missing: run scripts/setup.sh"
    );
    let artifacts = root.join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();

    let c = cluster_with(&[]);
    c.create_database("app");
    let redis = RedisServer::start_with(RedisOptions {
        requirepass: Some(REDIS_PASSWORD.to_owned()),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("redis-password");
    std::fs::write(&secret, REDIS_PASSWORD).unwrap();
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let config = format!(
        "{}\n[auth]\ntoken = {{ env = \"PGH_TEST_TOKEN\" }}\n",
        serve_config(&c, &redis, &secret, &backups, 2)
    );
    let serve = Serve::start(
        &config,
        &[
            ("PGH_TEST_MAIN_PASSWORD", PG_PASSWORD),
            ("PGH_TEST_TOKEN", TOKEN),
        ],
        &[PG_PASSWORD, REDIS_PASSWORD, TOKEN],
    );

    let mut node = Command::new("node")
        .arg(root.join("crates/cli/tests/browser/dashboard.cjs"))
        .env("PLAYWRIGHT_CORE", &playwright)
        .env("CHROMIUM", &chromium)
        .env("DASHBOARD_URL", serve.url("/"))
        .env("DASHBOARD_TOKEN", TOKEN)
        .env("ARTIFACTS", &artifacts)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node (Node.js 20 is on the machine)");
    let mut out = BufReader::new(node.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    if line.trim() != "UP" {
        let _ = node.kill();
        let mut err = String::new();
        node.stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("the page did not show main as up: {line}\n{err}");
    }
    c.stop();
    writeln!(node.stdin.as_mut().unwrap(), "stopped").unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = node.wait().unwrap();
    let mut err = String::new();
    node.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "browser script failed: {rest}\n{err}");
    assert!(rest.contains("DOWN"), "{rest}\n{err}");
    assert!(rest.contains("REDIS UP"), "{rest}\n{err}");
    for shot in [
        "dashboard-up.png",
        "dashboard-down.png",
        "dashboard-phone.png",
    ] {
        let bytes = std::fs::read(artifacts.join(shot)).unwrap_or_else(|e| panic!("{shot}: {e}"));
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 5_000,
            "{shot} is not a real PNG"
        );
    }
}

#[test]
fn status_watch_refreshes_until_stopped() {
    let r = RedisServer::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgharbor"))
        .args(["status", &r.url(), "--watch", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start status --watch");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut views = 0;
    let mut line = String::new();
    while views < 2 {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "status --watch ended early"
        );
        if line.starts_with("(refreshing every 1s") {
            views += 1;
        }
        if views == 1 && line.starts_with("Clients:") {
            // The second view sees this run's own connection again.
            assert!(line.contains("connected"), "{line}");
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running after two views"
    );
    let _ = child.kill();
    let _ = child.wait();
}
