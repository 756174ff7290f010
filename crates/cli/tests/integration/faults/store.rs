//! Cells of the fault matrix whose fault is in the object store a backup
//! goes to (moto's S3 server, Azurite): wrong credentials, a missing bucket
//! or container, the store going away mid-upload, and `backups prune` killed
//! with `kill -9` while its delete is under way.
//!
//! Faults of the store land deterministically through [`StoreProxy`], a TCP
//! proxy between pgharbor and the store: it holds the request whose head
//! names a chosen object until the test acts, and can cut every connection
//! and refuse new ones (the store stopped or unreachable) and then let them
//! through again.

use crate::harness::{pgharbor_with, Run};
use pgharbor_testkit::{AzuriteServer, Cluster, Flavor, S3Server};
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the proxy's connections share.
struct ProxyState {
    /// The store's port on 127.0.0.1.
    upstream: u16,
    /// A request whose bytes contain this is held (not forwarded), after
    /// letting the given number of matching ones through.
    hold: Mutex<Option<(String, usize)>>,
    /// Whether a request was held.
    held: AtomicBool,
    /// Whether the store is cut off: connections are closed, new ones refused.
    cut: AtomicBool,
    /// The client side of every connection, to close them when cut.
    clients: Mutex<Vec<TcpStream>>,
}

/// A TCP proxy on 127.0.0.1 in front of an object store (see the module
/// comment); its threads end with the test process.
struct StoreProxy {
    port: u16,
    state: Arc<ProxyState>,
}

impl StoreProxy {
    /// A proxy forwarding to `upstream` on 127.0.0.1.
    fn start(upstream: u16) -> StoreProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(ProxyState {
            upstream,
            hold: Mutex::new(None),
            held: AtomicBool::new(false),
            cut: AtomicBool::new(false),
            clients: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if shared.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                if let Ok(clone) = client.try_clone() {
                    shared.clients.lock().unwrap().push(clone);
                }
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || forward(client, &shared));
            }
        });
        StoreProxy { port, state }
    }

    /// `http://127.0.0.1:PORT`, the endpoint to hand pgharbor.
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Hold the next request whose bytes contain `needle`.
    fn hold(&self, needle: &str) {
        self.hold_after(needle, 0);
    }

    /// Hold the request whose bytes contain `needle` that comes after
    /// `passing` such requests were let through.
    fn hold_after(&self, needle: &str, passing: usize) {
        *self.state.hold.lock().unwrap() = Some((needle.to_owned(), passing));
    }

    /// Wait until a request was held, failing if `child` ends first.
    fn wait_for_held(&self, child: &mut std::process::Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.state.held.load(Ordering::SeqCst) {
            if let Some(status) = child.try_wait().expect("poll pgharbor") {
                let mut stderr = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                panic!("pgharbor ended ({status}) before its request was held:\n{stderr}");
            }
            assert!(Instant::now() < deadline, "no request was held");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The store goes away: every connection is closed and new ones are
    /// closed as soon as they are accepted.
    fn cut(&self) {
        *self.state.hold.lock().unwrap() = None;
        self.state.cut.store(true, Ordering::SeqCst);
        for client in self.state.clients.lock().unwrap().drain(..) {
            let _ = client.shutdown(Shutdown::Both);
        }
    }

    /// The store is back: connections are forwarded again.
    fn reconnect(&self) {
        self.state.held.store(false, Ordering::SeqCst);
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

/// Forwards one connection both ways until either side closes, holding a
/// request that matches the proxy's hold.
fn forward(mut client: TcpStream, state: &ProxyState) {
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", state.upstream)) else {
        return;
    };
    let (Ok(mut back_from), Ok(mut back_to)) = (upstream.try_clone(), client.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if is_held(state, &buf[..n]) {
            // Never forwarded: the request waits until the proxy is cut.
            while !state.cut.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            break;
        }
        if state.cut.load(Ordering::SeqCst) || upstream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}

/// Whether `bytes` are the request to hold: the first one holding the
/// proxy's needle once the requests to let through have passed.
fn is_held(state: &ProxyState, bytes: &[u8]) -> bool {
    let mut hold = state.hold.lock().unwrap();
    let Some((needle, passing)) = hold.as_mut() else {
        return false;
    };
    if !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
        return false;
    }
    if *passing > 0 {
        *passing -= 1;
        return false;
    }
    *hold = None;
    state.held.store(true, Ordering::SeqCst);
    true
}

/// The environment pointing pgharbor (with the PG16 client programs) at
/// moto through `endpoint`, with `secret` as the secret access key.
fn s3_env(s3: &S3Server, endpoint: &str, secret: &str) -> Vec<(String, String)> {
    let bin = Flavor::Pg16Vector.bin_dir().expect("PG16 binaries");
    vec![
        ("PGHARBOR_PG_BIN".into(), bin.display().to_string()),
        ("AWS_ENDPOINT_URL".into(), endpoint.to_owned()),
        ("AWS_REGION".into(), s3.region().to_owned()),
        ("AWS_ACCESS_KEY_ID".into(), s3.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY".into(), secret.to_owned()),
    ]
}

/// `pgharbor ARGS` with `env`.
fn run_with(args: &[&str], env: &[(String, String)]) -> Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pgharbor_with(args, &env, None)
}

/// `pgharbor ARGS` with `env`, started in the background, output collected.
fn started_with(args: &[&str], env: &[(String, String)]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_pgharbor"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PGPASSWORD")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pgharbor")
}

/// `(id, state)` of every backup `backups list` shows at `dest`, newest first.
fn listed(dest: &str, env: &[(String, String)]) -> Vec<(String, String)> {
    let run = run_with(&["backups", "list", dest, "--json"], env).success();
    let entries: serde_json::Value = serde_json::from_str(&run.stdout).expect("json list");
    entries
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap_or_default().to_string(),
                e["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A server with databases `shop` and `other` (1,000 and 100 rows).
fn two_databases() -> Cluster {
    let pg = Cluster::start(Flavor::Pg16Vector);
    pg.create_database("shop");
    pg.psql(
        "shop",
        "CREATE TABLE item (id int PRIMARY KEY, v text);
         INSERT INTO item SELECT g, md5(g::text) FROM generate_series(1, 1000) g",
    );
    pg.create_database("other");
    pg.psql(
        "other",
        "CREATE TABLE note (id int PRIMARY KEY); INSERT INTO note SELECT generate_series(1, 100)",
    );
    pg
}

/// The one good backup at `dest` restores into scratch databases of `pg`
/// with its row counts equal and is then listed as verified.
fn verifies(pg: &Cluster, dest: &str, env: &[(String, String)]) {
    let run = run_with(
        &[
            "backups",
            "verify",
            dest,
            "--restore-to",
            &pg.url("postgres"),
        ],
        env,
    )
    .success();
    assert!(
        run.stdout.contains("restored and row counts equal"),
        "{}",
        run.stdout
    );
    let states: Vec<String> = listed(dest, env).into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["verified"]);
}

/// `backup` to S3 with a wrong secret, and to a bucket that does not exist:
/// each message names the destination, the store's answer and what to
/// correct, never the secret; nothing is stored; the same backup with the
/// right key to the existing bucket verifies.
#[test]
fn backup_to_s3_with_wrong_credentials_or_no_bucket_says_what_to_correct() {
    let pg = two_databases();
    let s3 = S3Server::start();
    s3.create_bucket("pgb");
    let right = s3_env(&s3, &s3.endpoint(), s3.secret_access_key());
    let wrong_secret = "wrong-secret-0123456789abcdef";
    let wrong = s3_env(&s3, &s3.endpoint(), wrong_secret);
    let backup = |dest: &str, env: &[(String, String)]| {
        run_with(&["backup", &pg.url("shop"), "--to", dest], env)
    };
    let run = backup("s3://pgb/nightly", &wrong).fails_with(
        1,
        &[
            "s3://pgb/nightly",
            "SignatureDoesNotMatch",
            "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ],
    );
    assert!(!run.all().contains(wrong_secret), "{}", run.all());
    backup("s3://missing-bucket/nightly", &right).fails_with(
        1,
        &[
            "s3://missing-bucket/nightly",
            "NoSuchBucket",
            "create the bucket, or correct its name or the endpoint",
        ],
    );
    assert!(listed("s3://pgb/nightly", &right).is_empty());
    backup("s3://pgb/nightly", &right).success();
    verifies(&pg, "s3://pgb/nightly", &right);
}

/// `backup` of two databases to S3, the store going away while the second
/// database's file is being uploaded (the first one stored): the message
/// names the store, that removing the parts failed too, and that `backups
/// list` shows the backup as failed and `backups prune` removes it. Once
/// the store is back that is what `backups list` shows (never a complete
/// backup), the next backup verifies, and prune leaves exactly it.
#[test]
fn backup_to_s3_when_the_store_goes_away_mid_upload_is_never_listed_complete() {
    let pg = two_databases();
    let s3 = S3Server::start();
    s3.create_bucket("pgb");
    let proxy = StoreProxy::start(s3.port());
    let env = s3_env(&s3, &proxy.endpoint(), s3.secret_access_key());
    let dest = "s3://pgb/nightly";
    proxy.hold("/other.dump");
    let mut child = started_with(
        &[
            "backup",
            &pg.url("shop"),
            "--database",
            "shop,other",
            "--to",
            dest,
        ],
        &env,
    );
    proxy.wait_for_held(&mut child);
    proxy.cut();
    let run = Run::finished(child).fails_with(
        1,
        &[
            dest,
            "other.dump",
            "check the endpoint URL and that the service is reachable",
            "Removing its parts failed too",
            "What is left of it is no backup: `pgharbor backups list s3://pgb/nightly` shows it \
             as failed and `pgharbor backups prune s3://pgb/nightly` removes it; back up again \
             once the destination answers",
        ],
    );
    proxy.reconnect();
    let after = listed(dest, &env);
    assert_eq!(after.len(), 1, "{after:?}\n{}", run.stderr);
    assert_eq!(after[0].1, "failed", "{after:?}");
    run_with(&["backup", &pg.url("shop"), "--to", dest], &env).success();
    run_with(&["backups", "prune", dest, "--keep-last", "1"], &env).success();
    verifies(&pg, dest, &env);
}

/// `backup` to Azure Blob (Azurite) with a wrong account key, to a missing
/// container, and with the store going away mid-upload: each message names
/// the destination and what to do, never the key; nothing is listed as
/// complete; the next backup verifies.
#[test]
fn backup_to_azure_under_store_faults_names_the_store_and_the_next_backup_verifies() {
    let pg = two_databases();
    let az = AzuriteServer::start();
    az.create_container("pgb");
    let proxy = StoreProxy::start(az.port());
    let bin = Flavor::Pg16Vector.bin_dir().expect("PG16 binaries");
    let env_with = |endpoint: &str, key: &str| -> Vec<(String, String)> {
        vec![
            ("PGHARBOR_PG_BIN".into(), bin.display().to_string()),
            ("AZURE_STORAGE_BLOB_ENDPOINT".into(), endpoint.to_owned()),
            ("AZURE_STORAGE_ACCOUNT".into(), az.account().to_owned()),
            ("AZURE_STORAGE_KEY".into(), key.to_owned()),
        ]
    };
    let proxied = format!("{}/{}", proxy.endpoint(), az.account());
    let env = env_with(&proxied, az.key());
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let dest = "az://pgb/nightly";
    let run = run_with(
        &["backup", &pg.url("shop"), "--to", dest],
        &env_with(&proxied, wrong_key),
    )
    .fails_with(
        1,
        &[dest, "check AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY"],
    );
    assert!(!run.all().contains(wrong_key), "{}", run.all());
    run_with(
        &["backup", &pg.url("shop"), "--to", "az://missing/nightly"],
        &env,
    )
    .fails_with(
        1,
        &[
            "az://missing/nightly",
            "create the container, or correct its name or the account",
        ],
    );
    proxy.hold("/other.dump");
    let mut child = started_with(
        &[
            "backup",
            &pg.url("shop"),
            "--database",
            "shop,other",
            "--to",
            dest,
        ],
        &env,
    );
    proxy.wait_for_held(&mut child);
    proxy.cut();
    Run::finished(child).fails_with(
        1,
        &[
            dest,
            "check the endpoint URL and that the service is reachable",
            "`pgharbor backups prune az://pgb/nightly` removes it",
            "back up again once the destination answers",
        ],
    );
    proxy.reconnect();
    let after = listed(dest, &env);
    assert!(
        after.iter().all(|(_, state)| state == "failed"),
        "{after:?}"
    );
    run_with(&["backup", &pg.url("shop"), "--to", dest], &env).success();
    run_with(&["backups", "prune", dest, "--keep-last", "1"], &env).success();
    verifies(&pg, dest, &env);
}

/// `backups prune` killed with `kill -9` while the store deletes the pruned
/// backup's files (its manifest already deleted): `backups list` shows the
/// kept backup unchanged and the pruned one as failed, never complete;
/// `backups verify --all` passes on the kept one; the same prune then
/// removes every object of the pruned backup.
#[test]
fn prune_killed_mid_delete_leaves_a_failed_backup_the_next_prune_removes() {
    let pg = two_databases();
    let s3 = S3Server::start();
    s3.create_bucket("pgb");
    let proxy = StoreProxy::start(s3.port());
    let env = s3_env(&s3, &proxy.endpoint(), s3.secret_access_key());
    let dest = "s3://pgb/nightly";
    for _ in 0..2 {
        run_with(&["backup", &pg.url("shop"), "--to", dest], &env).success();
    }
    let before = listed(dest, &env);
    assert_eq!(before.len(), 2, "{before:?}");
    let (newest, oldest) = (before[0].clone(), before[1].0.clone());
    // Deletes are bulk requests (`POST ?delete`): the manifest's alone
    // first, then every other object of the backup.
    proxy.hold_after("?delete", 1);
    let prune = ["backups", "prune", dest, "--keep-last", "1"];
    let mut child = started_with(&prune, &env);
    proxy.wait_for_held(&mut child);
    child.kill().expect("kill -9");
    child.wait().expect("reap pgharbor");
    proxy.cut();
    proxy.reconnect();
    assert_eq!(
        listed(dest, &env),
        vec![newest.clone(), (oldest.clone(), "failed".to_string())]
    );
    let verified = run_with(&["backups", "verify", dest, "--all"], &env).success();
    assert!(
        verified.stdout.contains(&format!("backup {}:", newest.0))
            && !verified.stdout.contains(&format!("backup {oldest}:")),
        "{}",
        verified.stdout
    );
    let run = run_with(&prune, &env).success();
    assert!(
        run.stdout.lines().any(|l| l == format!("deleted {oldest}")),
        "{}",
        run.stdout
    );
    assert_eq!(listed(dest, &env), vec![(newest.0, "verified".to_string())]);
}
