//! Fetch, check and restore against real Redis servers (pgharbor-testkit's
//! `RedisServer`), and fetch against scripted fake masters for the failures
//! a real one does not produce on demand.

use pgharbor_rdb::{
    check_file, crc64, fetch_to_file, open_file, restore_file, Checksum, FetchOptions, Framing,
    RdbErrorKind, RedisConn, RedisUrl, Reply, RestoreOptions,
};
use pgharbor_testkit::{RedisOptions, RedisServer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(20);
/// Databases the sample data uses.
const DATABASES: [u32; 3] = [0, 1, 5];

/// Redis 7 streams snapshots diskless by default, after a 5-second wait for
/// more replicas; the tests do not wait.
fn diskless() -> Vec<(String, String)> {
    vec![
        ("repl-diskless-sync".into(), "yes".into()),
        ("repl-diskless-sync-delay".into(), "0".into()),
    ]
}

async fn connect(url: &str) -> RedisConn {
    let url = RedisUrl::parse(url).expect("url");
    pgharbor_rdb::client::open_authenticated(&url, TIMEOUT)
        .await
        .expect("connect")
}

async fn run(conn: &mut RedisConn, args: &[&[u8]]) -> Reply {
    let reply = conn.command(args).await.expect("command");
    assert!(reply.error().is_none(), "{args:?}: {reply:?}");
    reply
}

/// Pseudo-random bytes that LZF cannot compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Every value type and encoding, binary keys and values, TTLs, several databases, a function.
async fn populate(url: &str) {
    let mut c = connect(url).await;
    run(&mut c, &[b"SELECT", b"0"]).await;
    run(&mut c, &[b"SET", b"str:short", b"hello"]).await;
    run(&mut c, &[b"SET", b"str:int", b"12345"]).await;
    run(&mut c, &[b"SET", b"str:neg", b"-7"]).await;
    run(
        &mut c,
        &[b"SET", b"str:compressible", &b"abc".repeat(20_000)],
    )
    .await;
    run(&mut c, &[b"SET", b"str:noise", &noise(100_000, 7)]).await;
    run(
        &mut c,
        &[
            b"SET",
            b"bin\x00\xff\xfekey",
            b"\x00\x01\xff\x80 binary \r\n",
        ],
    )
    .await;
    run(
        &mut c,
        &[
            b"SET",
            b"a-key-longer-than-twenty-bytes-aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            b"x",
        ],
    )
    .await;
    run(
        &mut c,
        &[b"RPUSH", b"list:small", b"a", b"b", b"\x00", b"42"],
    )
    .await;
    for i in 0..2000 {
        let item = format!("item-{i}-{}", "x".repeat(i % 90));
        run(&mut c, &[b"RPUSH", b"list:big", item.as_bytes()]).await;
    }
    run(
        &mut c,
        &[b"RPUSH", b"list:plain", &noise(20_000, 3), b"small"],
    )
    .await;
    run(&mut c, &[b"SADD", b"set:int", b"1", b"2", b"3", b"-100000"]).await;
    run(&mut c, &[b"SADD", b"set:small", b"x", b"y", b"\xff\x00"]).await;
    for i in 0..600 {
        run(
            &mut c,
            &[b"SADD", b"set:big", format!("member-{i}").as_bytes()],
        )
        .await;
    }
    run(
        &mut c,
        &[b"HSET", b"hash:small", b"f1", b"v1", b"f\x002", b"\xfe"],
    )
    .await;
    for i in 0..1000 {
        let (f, v) = (format!("field-{i}"), format!("value-{}", i * 7));
        run(&mut c, &[b"HSET", b"hash:big", f.as_bytes(), v.as_bytes()]).await;
    }
    run(
        &mut c,
        &[
            b"ZADD",
            b"zset:small",
            b"1.5",
            b"a",
            b"-2",
            b"b",
            b"inf",
            b"c",
        ],
    )
    .await;
    for i in 0..500 {
        let score = format!("{}", f64::from(i) / 3.0);
        run(
            &mut c,
            &[
                b"ZADD",
                b"zset:big",
                score.as_bytes(),
                format!("m{i}").as_bytes(),
            ],
        )
        .await;
    }
    for i in 0..300 {
        run(
            &mut c,
            &[
                b"XADD",
                b"stream",
                b"*",
                b"n",
                i.to_string().as_bytes(),
                b"bin",
                b"\x00\xff",
            ],
        )
        .await;
    }
    run(&mut c, &[b"XGROUP", b"CREATE", b"stream", b"g1", b"0"]).await;
    run(&mut c, &[b"XGROUP", b"CREATE", b"stream", b"g2", b"$"]).await;
    run(
        &mut c,
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g1",
            b"alice",
            b"COUNT",
            b"10",
            b"STREAMS",
            b"stream",
            b">",
        ],
    )
    .await;
    run(
        &mut c,
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g1",
            b"bob",
            b"COUNT",
            b"5",
            b"STREAMS",
            b"stream",
            b">",
        ],
    )
    .await;
    run(&mut c, &[b"SET", b"ttl:str", b"soon", b"EX", b"3600"]).await;
    run(&mut c, &[b"HSET", b"ttl:hash", b"a", b"b"]).await;
    run(&mut c, &[b"PEXPIRE", b"ttl:hash", b"7200000"]).await;
    run(&mut c, &[b"FUNCTION", b"LOAD", b"#!lua name=pgh\nredis.register_function('pgh_one', function(keys, args) return 1 end)"]).await;
    run(&mut c, &[b"SELECT", b"1"]).await;
    run(&mut c, &[b"SET", b"db1:key", b"one"]).await;
    run(&mut c, &[b"SET", b"db1:ttl", b"t", b"EX", b"1000"]).await;
    run(&mut c, &[b"SELECT", b"5"]).await;
    run(&mut c, &[b"SADD", b"db5:set", b"5"]).await;
    run(
        &mut c,
        &[b"SET", b"str:short", b"same name, other database"],
    )
    .await;
}

/// `INFO keyspace` as `db -> (keys, expires)`.
async fn keyspace(url: &str) -> BTreeMap<u64, (u64, u64)> {
    let mut c = connect(url).await;
    let info = c.info().await.expect("info");
    let mut out = BTreeMap::new();
    for (db, v) in info.sections.get("keyspace").cloned().unwrap_or_default() {
        let n = |k: &str| {
            v.split(',')
                .find_map(|kv| kv.strip_prefix(k))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let db = db
            .trim_start_matches("db")
            .parse::<u64>()
            .expect("db number");
        out.insert(db, (n("keys="), n("expires=")));
    }
    out
}

/// An array reply cut into groups of `n` (1 for set members, 2 for hash
/// fields and values), sorted: the same whatever the hash-table order.
fn sorted_groups(reply: Reply, n: usize) -> Vec<Vec<Reply>> {
    let Reply::Array(Some(items)) = reply else {
        panic!("not an array: {reply:?}")
    };
    let mut groups: Vec<Vec<Reply>> = items.chunks(n).map(<[Reply]>::to_vec).collect();
    groups.sort_by_key(|g| format!("{g:?}"));
    groups
}

/// A key's type and content in a form that does not depend on encoding or
/// hash-table order.
async fn canonical(c: &mut RedisConn, key: &[u8]) -> String {
    let kind = run(c, &[b"TYPE", key]).await.text().expect("type");
    let content = match kind.as_str() {
        "string" => format!("{:?}", run(c, &[b"GET", key]).await),
        "list" => format!("{:?}", run(c, &[b"LRANGE", key, b"0", b"-1"]).await),
        "set" => format!("{:?}", sorted_groups(run(c, &[b"SMEMBERS", key]).await, 1)),
        "hash" => format!("{:?}", sorted_groups(run(c, &[b"HGETALL", key]).await, 2)),
        "zset" => format!(
            "{:?}",
            run(c, &[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]).await
        ),
        "stream" => {
            let entries = run(c, &[b"XRANGE", key, b"-", b"+"]).await;
            let groups = run(c, &[b"XINFO", b"GROUPS", key]).await;
            let mut pending = Vec::new();
            for g in ["g1", "g2"] {
                pending.push(run(c, &[b"XPENDING", key, g.as_bytes()]).await);
            }
            format!("{entries:?} {groups:?} {pending:?}")
        }
        other => panic!("unexpected type {other}"),
    };
    format!("{kind} {content}")
}

/// Every key of `from` is in `to` with the same type, content and TTL (±5 s).
async fn assert_same_data(from: &str, to: &str) {
    let (mut a, mut b) = (connect(from).await, connect(to).await);
    for db in DATABASES {
        let db = db.to_string();
        run(&mut a, &[b"SELECT", db.as_bytes()]).await;
        run(&mut b, &[b"SELECT", db.as_bytes()]).await;
        let Reply::Array(Some(keys)) = run(&mut a, &[b"KEYS", b"*"]).await else {
            panic!("KEYS")
        };
        for key in keys {
            let Reply::Bulk(Some(key)) = key else {
                panic!("key")
            };
            let shown = key.escape_ascii().to_string();
            assert_eq!(
                canonical(&mut a, &key).await,
                canonical(&mut b, &key).await,
                "db {db} key {shown}"
            );
            let ttl = |r: Reply| match r {
                Reply::Integer(n) => n,
                other => panic!("PTTL: {other:?}"),
            };
            let (ta, tb) = (
                ttl(run(&mut a, &[b"PTTL", &key]).await),
                ttl(run(&mut b, &[b"PTTL", &key]).await),
            );
            if ta < 0 || tb < 0 {
                assert_eq!(ta, tb, "db {db} key {shown}: TTL");
            } else {
                assert!(
                    (ta - tb).abs() < 5_000,
                    "db {db} key {shown}: TTL {ta} vs {tb}"
                );
            }
        }
    }
}

fn redis_check_rdb(path: &Path) {
    let bin = Path::new("/usr/bin/redis-check-rdb");
    if !bin.exists() {
        eprintln!("redis-check-rdb is not installed: skipping that check");
        return;
    }
    let out = std::process::Command::new(bin)
        .arg(path)
        .output()
        .expect("run redis-check-rdb");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("RDB looks OK"),
        "redis-check-rdb: {text}"
    );
}

fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = std::fs::read(path).expect("read");
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn fetch_into(url: &str, dir: &Path, name: &str) -> (PathBuf, pgharbor_rdb::FetchReport) {
    let path = dir.join(name);
    let url = RedisUrl::parse(url).expect("url");
    let report = fetch_to_file(&url, &path, &FetchOptions::default())
        .await
        .expect("fetch");
    (path, report)
}

/// The parsed counts per database equal the server's `INFO keyspace`.
async fn assert_counts(path: &Path, url: &str) -> pgharbor_rdb::RdbSummary {
    let summary = check_file(path).await.expect("check");
    let parsed: BTreeMap<u64, (u64, u64)> = summary
        .databases
        .iter()
        .map(|(db, s)| (*db, (s.keys, s.expires)))
        .collect();
    assert_eq!(parsed, keyspace(url).await);
    summary
}

async fn restore_into(
    path: &Path,
    url: &str,
    flush: bool,
) -> pgharbor_rdb::Result<pgharbor_rdb::RestoreReport> {
    let options = RestoreOptions {
        flush,
        batch: 64,
        ..Default::default()
    };
    restore_file(path, &RedisUrl::parse(url).expect("url"), &options).await
}

#[tokio::test]
async fn disk_based_fetch_check_and_restore() {
    let source = RedisServer::start_with(RedisOptions {
        extra: vec![("repl-diskless-sync".into(), "no".into())],
        ..Default::default()
    });
    populate(&source.url()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, report) = fetch_into(&source.url(), dir.path(), "dump.rdb").await;
    assert_eq!(report.framing, Framing::Sized);
    assert_eq!(report.bytes, std::fs::metadata(&path).expect("size").len());
    assert_eq!(report.sha256_hex(), sha256_of(&path));
    redis_check_rdb(&path);
    let summary = assert_counts(&path, &source.url()).await;
    assert_eq!(summary.version, 10);
    assert!(
        summary.redis_version().is_some_and(|v| v.starts_with("7.")),
        "{summary:?}"
    );
    assert!(matches!(summary.checksum, Checksum::Verified(_)));
    assert_eq!(summary.functions, 1);
    assert_eq!(summary.size, report.bytes);

    // A value from the file is exactly what DUMP gives for the key.
    let mut reader = open_file(&path).await.expect("open");
    let mut source_conn = connect(&source.url()).await;
    while let Some(entry) = reader.next_key().await.expect("next") {
        if entry.db == 0 && entry.key.starts_with(b"str:") || entry.key == b"list:small" {
            let dump = run(&mut source_conn, &[b"DUMP", &entry.key]).await;
            assert_eq!(
                dump,
                Reply::Bulk(Some(entry.dump_payload(10))),
                "{}",
                entry.key_display()
            );
        }
    }

    let target = RedisServer::start();
    let restored = restore_into(&path, &target.url(), false)
        .await
        .expect("restore");
    assert_eq!(restored.restored, summary.keys());
    assert_eq!(restored.expired, 0);
    assert_eq!(restored.functions, 1);
    assert!(!restored.flushed);
    assert_same_data(&source.url(), &target.url()).await;
    let mut t = connect(&target.url()).await;
    assert_eq!(
        run(&mut t, &[b"FCALL", b"pgh_one", b"0"]).await,
        Reply::Integer(1)
    );

    // A target with keys is refused, then replaced when flushing is asked for.
    run(&mut t, &[b"SELECT", b"3"]).await;
    run(&mut t, &[b"SET", b"stray", b"1"]).await;
    let e = restore_into(&path, &target.url(), false).await.unwrap_err();
    assert_eq!(e.kind(), RdbErrorKind::NotEmpty, "{e}");
    assert!(
        said(&e).contains("not empty") && said(&e).contains("db3 has 1 keys"),
        "{e}"
    );
    let again = restore_into(&path, &target.url(), true)
        .await
        .expect("restore with flush");
    assert!(again.flushed);
    assert_eq!(again.restored, summary.keys());
    assert_eq!(run(&mut t, &[b"EXISTS", b"stray"]).await, Reply::Integer(0));
    assert_same_data(&source.url(), &target.url()).await;
}

#[tokio::test]
async fn diskless_fetch() {
    let source = RedisServer::start_with(RedisOptions {
        extra: diskless(),
        ..Default::default()
    });
    populate(&source.url()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, report) = fetch_into(&source.url(), dir.path(), "diskless.rdb").await;
    assert_eq!(report.framing, Framing::Diskless);
    assert_eq!(report.sha256_hex(), sha256_of(&path));
    redis_check_rdb(&path);
    let summary = assert_counts(&path, &source.url()).await;
    assert_eq!(summary.size, report.bytes);
    let target = RedisServer::start();
    restore_into(&path, &target.url(), false)
        .await
        .expect("restore");
    assert_same_data(&source.url(), &target.url()).await;
}

/// A snapshot holds every key: a file already there (readable by everyone)
/// is made private before the first key is written into it.
#[tokio::test]
async fn a_snapshot_over_an_existing_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let source = RedisServer::start();
    populate(&source.url()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.rdb");
    std::fs::write(&path, b"old").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (path, _) = fetch_into(&source.url(), dir.path(), "old.rdb").await;
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

#[tokio::test]
async fn acl_users_and_passwords() {
    let server = RedisServer::start_with(RedisOptions {
        requirepass: Some("defaultpw".into()),
        acl_user: Some(("app".into(), "apppw".into())),
        extra: diskless(),
        ..Default::default()
    });
    populate(&server.url()).await;
    let port = server.port();
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = fetch_into(
        &format!("redis://app:apppw@127.0.0.1:{port}"),
        dir.path(),
        "acl.rdb",
    )
    .await;
    assert_counts(&path, &server.url()).await;

    let fetch = |url: String| {
        let path = dir.path().join("refused.rdb");
        async move {
            let url = RedisUrl::parse(&url).expect("url");
            let e = fetch_to_file(&url, &path, &FetchOptions::default())
                .await
                .unwrap_err();
            assert!(!path.exists(), "a failed fetch leaves no file");
            e
        }
    };
    let e = fetch(format!("redis://app:hunter2-wrong@127.0.0.1:{port}")).await;
    assert_eq!(e.kind(), RdbErrorKind::Refused, "{e}");
    assert!(said(&e).contains("WRONGPASS"), "{e}");
    assert!(
        !said(&e).contains("hunter2-wrong") && !format!("{e:?}").contains("hunter2-wrong"),
        "{e}"
    );
    assert!(said(&e).contains("redis://app:****@127.0.0.1"), "{e}");

    let e = fetch(format!("redis://127.0.0.1:{port}")).await;
    assert_eq!(e.kind(), RdbErrorKind::Refused, "{e}");
    assert!(
        said(&e).contains("NOAUTH") && said(&e).contains("password"),
        "{e}"
    );

    let mut admin = connect(&server.url()).await;
    run(
        &mut admin,
        &[
            b"ACL",
            b"SETUSER",
            b"reader",
            b"on",
            b">readerpw",
            b"~*",
            b"+@all",
            b"-sync",
            b"-psync",
        ],
    )
    .await;
    let e = fetch(format!("redis://reader:readerpw@127.0.0.1:{port}")).await;
    assert_eq!(e.kind(), RdbErrorKind::Refused, "{e}");
    assert!(
        said(&e).contains("NOPERM") && said(&e).contains("+sync"),
        "{e}"
    );
}

#[tokio::test]
async fn fetch_over_tls() {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    let server = RedisServer::start_with(RedisOptions {
        requirepass: Some("tlspw".into()),
        tls: Some((cert.pem(), key.serialize_pem())),
        extra: diskless(),
        ..Default::default()
    });
    let root = server.dir().join("root.pem");
    std::fs::write(&root, cert.pem()).expect("root");
    let url = format!("{}?sslrootcert={}", server.url(), root.display());
    let mut c = connect(&url).await;
    run(&mut c, &[b"SET", b"over", b"tls"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, report) = fetch_into(&url, dir.path(), "tls.rdb").await;
    assert_eq!(report.sha256_hex(), sha256_of(&path));
    let summary = check_file(&path).await.expect("check");
    assert_eq!(summary.keys(), 1);
}

/// A snapshot fetched from a fresh server with a few keys.
async fn small_snapshot(dir: &Path) -> (RedisServer, PathBuf) {
    let server = RedisServer::start_with(RedisOptions {
        extra: diskless(),
        ..Default::default()
    });
    let mut c = connect(&server.url()).await;
    run(&mut c, &[b"SET", b"marker", &noise(5_000, 11)]).await;
    run(&mut c, &[b"SET", b"other", b"value"]).await;
    run(&mut c, &[b"SET", b"short-lived", b"x", b"PX", b"1000"]).await;
    let (path, _) = fetch_into(&server.url(), dir, "small.rdb").await;
    (server, path)
}

#[tokio::test]
async fn damaged_files_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, path) = small_snapshot(dir.path()).await;
    let data = std::fs::read(&path).expect("read");
    let marker = noise(5_000, 11);
    let at = data
        .windows(64)
        .position(|w| w == &marker[..64])
        .expect("value in the file")
        + 2_000;

    let corrupt = dir.path().join("corrupt.rdb");
    let mut bad = data.clone();
    bad[at] ^= 0x01;
    std::fs::write(&corrupt, &bad).expect("write");
    let e = check_file(&corrupt).await.unwrap_err();
    assert_eq!(e.kind(), RdbErrorKind::Checksum, "{e}");
    assert!(
        said(&e).contains("checksum") && said(&e).contains("corrupt.rdb"),
        "{e}"
    );

    let truncated = dir.path().join("truncated.rdb");
    std::fs::write(&truncated, &data[..at]).expect("write");
    let e = check_file(&truncated).await.unwrap_err();
    assert_eq!(e.kind(), RdbErrorKind::Truncated, "{e}");
    assert!(
        said(&e).contains("truncated") && said(&e).contains("key \"marker\""),
        "{e}"
    );
    assert!(e.offset().is_some(), "{e}");
}

#[tokio::test]
async fn newer_rdb_version_and_expired_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, path) = small_snapshot(dir.path()).await;
    // By now the 1-second key has expired: it is skipped and counted.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let target = RedisServer::start();
    let report = restore_into(&path, &target.url(), false)
        .await
        .expect("restore");
    assert_eq!((report.restored, report.expired), (2, 1));

    // The same content labelled RDB 11 (Redis 7.2): the 7.0 target cannot read it.
    let mut data = std::fs::read(&path).expect("read");
    data[5..9].copy_from_slice(b"0011");
    let body = data.len() - 8;
    let crc = crc64(0, &data[..body]);
    data[body..].copy_from_slice(&crc.to_le_bytes());
    let newer = dir.path().join("v11.rdb");
    std::fs::write(&newer, &data).expect("write");
    assert_eq!(check_file(&newer).await.expect("check").version, 11);
    let e = restore_into(&newer, &target.url(), true).await.unwrap_err();
    assert_eq!(e.kind(), RdbErrorKind::Unsupported, "{e}");
    assert!(
        said(&e).contains("RDB version 11") && said(&e).contains("up to 10"),
        "{e}"
    );
}

/// A fake master: `+OK` to each `REPLCONF`, then `script` as the answer to `SYNC`, then it hangs up.
async fn fake_master(script: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.expect("read");
            let got = String::from_utf8_lossy(&buf[..n]).into_owned();
            if n == 0 {
                return;
            }
            if got.contains("SYNC") {
                let _ = s.write_all(&script).await;
                return;
            }
            s.write_all(b"+OK\r\n").await.expect("write");
        }
    });
    format!("redis://127.0.0.1:{port}")
}

#[tokio::test]
async fn interrupted_and_refused_transfers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.rdb");
    let options = FetchOptions::default();
    let cases: [(&[u8], RdbErrorKind, &str); 4] = [
        (
            b"\n\n\n$1000\r\nREDIS0010",
            RdbErrorKind::Unreachable,
            "after 9 of the snapshot's 1000 bytes",
        ),
        (
            b"\n$EOF:0123456789012345678901234567890123456789\r\nREDIS0010\xfa",
            RdbErrorKind::Unreachable,
            "diskless",
        ),
        (
            b"-ERR replication not allowed here\r\n",
            RdbErrorKind::Refused,
            "does not let clients replicate",
        ),
        (b"", RdbErrorKind::Unreachable, "BGSAVE"),
    ];
    for (script, kind, text) in cases {
        let url = RedisUrl::parse(&fake_master(script.to_vec()).await).expect("url");
        let e = fetch_to_file(&url, &path, &options).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(said(&e).contains(text), "{e}");
        assert!(!path.exists());
    }
    // A diskless payload ends at its mark, whatever follows.
    let script = b"$EOF:0123456789012345678901234567890123456789\r\npayload0123456789012345678901234567890123456789*1\r\n".to_vec();
    let url = RedisUrl::parse(&fake_master(script).await).expect("url");
    let report = fetch_to_file(&url, &path, &options).await.expect("fetch");
    assert_eq!((report.bytes, report.framing), (7, Framing::Diskless));
    assert_eq!(std::fs::read(&path).expect("read"), b"payload");
}

/// An error and its causes as one line, as the CLI prints it.
fn said(e: &(dyn std::error::Error + 'static)) -> String {
    pgharbor_conn::chain_text(e, &pgharbor_rdb::keeps_cause_apart)
}
