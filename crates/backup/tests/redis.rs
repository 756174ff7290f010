//! Redis backups against real servers (pgharbor-testkit's `RedisServer`):
//! backup, manifest counts, list, restore with DUMP/TTL comparison,
//! non-empty targets, encryption, verify (structure, damage, test restore),
//! prune, S3, passwords and ACL users.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::local_dest;
use pgharbor_backup::{
    backup_redis, list, prune, restore_redis, verify, BackupErrorKind, BackupKind, BackupOptions,
    BackupReport, BackupState, Decryption, Encryption, RedisRestoreOptions, RedisRestoreReport,
    Retention, VerifyOptions,
};
use pgharbor_conn::Secret;
use pgharbor_objstore::{Destination, DestinationOptions, S3Credentials};
use pgharbor_rdb::{RedisConn, RedisUrl, Reply};
use pgharbor_testkit::{RedisOptions, RedisServer, S3Server};

/// A server streaming its snapshots diskless without the default 5 s wait.
fn diskless_server() -> RedisServer {
    RedisServer::start_with(RedisOptions {
        extra: vec![
            ("repl-diskless-sync".into(), "yes".into()),
            ("repl-diskless-sync-delay".into(), "0".into()),
        ],
        ..Default::default()
    })
}

fn url(text: &str) -> RedisUrl {
    RedisUrl::parse(text).expect("redis url")
}

async fn conn(text: &str) -> RedisConn {
    pgharbor_rdb::client::open_authenticated(&url(text), Duration::from_secs(10))
        .await
        .expect("connect")
}

/// Runs `args` (split on spaces; `\x00` written as `%00`) and fails on an error reply.
async fn cmd(c: &mut RedisConn, line: &str) -> Reply {
    let args: Vec<Vec<u8>> = line
        .split(' ')
        .map(|a| a.replace("%00", "\0").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let reply = c.command(&refs).await.expect("command");
    assert!(reply.error().is_none(), "{line}: {reply:?}");
    reply
}

/// Strings, lists (small and quicklist), sets (intset and listpack),
/// hashes, sorted sets, a stream with a consumer group, binary keys, TTLs,
/// in databases 0, 1 and 3.
async fn populate(text: &str) {
    let mut c = conn(text).await;
    for line in [
        "SET greeting hello",
        "SET counter 42",
        "SET session:1 alive EX 3600",
        "SET bin%00key %00value%00",
        "RPUSH queue a b c",
        "SADD ids 1 2 3 99999",
        "SADD tags red green blue",
        "HSET user:1 name ada lang rust",
        "HSET cache:1 hits 10",
        "PEXPIRE cache:1 7200000",
        "ZADD ranking 1.5 ann -2 bob 10 cyd",
        "XADD events 1-1 kind login",
        "XADD events 2-1 kind logout",
        "XGROUP CREATE events workers 0",
        "XREADGROUP GROUP workers w1 COUNT 1 STREAMS events >",
        "SELECT 1",
        "SET other one",
        "SET temp t EX 1000",
        "SELECT 3",
        "HSET config mode fast",
    ] {
        cmd(&mut c, line).await;
    }
    cmd(&mut c, "SELECT 0").await;
    for i in 0..300 {
        cmd(
            &mut c,
            &format!("RPUSH long item-{i}-{}", "x".repeat(i % 40)),
        )
        .await;
    }
}

/// `INFO keyspace`: database → (keys, expires).
async fn keyspace(text: &str) -> BTreeMap<u64, (u64, u64)> {
    let info = conn(text).await.info().await.expect("INFO");
    let section = info.sections.get("keyspace").cloned().unwrap_or_default();
    section
        .iter()
        .map(|(db, fields)| {
            let field = |name: &str| -> u64 {
                fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(name))
                    .and_then(|n| n.parse().ok())
                    .expect("keyspace field")
            };
            let db = db.trim_start_matches("db").parse().expect("db number");
            (db, (field("keys="), field("expires=")))
        })
        .collect()
}

fn integer(reply: Reply) -> i64 {
    match reply {
        Reply::Integer(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

/// A key's type and value: its `DUMP`, except for a set stored as a hash
/// table (Redis 7.0 stores small string sets so), whose order depends on
/// the table: its sorted members.
async fn value(c: &mut RedisConn, key: &[u8]) -> (Option<String>, Reply) {
    let kind = c.command(&[b"TYPE", key]).await.expect("TYPE").text();
    let value = match c.command(&[b"DUMP", key]).await.expect("DUMP") {
        Reply::Bulk(Some(dump)) if dump.first() == Some(&2) => {
            match c.command(&[b"SMEMBERS", key]).await.expect("SMEMBERS") {
                Reply::Array(Some(mut members)) => {
                    members.sort_by_key(|m| format!("{m:?}"));
                    Reply::Array(Some(members))
                }
                other => other,
            }
        }
        dump => dump,
    };
    (kind, value)
}

/// Every key of `from` is in `to` with the same `DUMP` (type and value)
/// and TTL (±5 s); both hold the same databases and key counts.
async fn assert_same_keys(from: &str, to: &str) {
    let databases = keyspace(from).await;
    assert_eq!(keyspace(to).await, databases);
    let (mut a, mut b) = (conn(from).await, conn(to).await);
    for db in databases.keys() {
        let select = format!("SELECT {db}");
        cmd(&mut a, &select).await;
        cmd(&mut b, &select).await;
        let Reply::Array(Some(keys)) = cmd(&mut a, "KEYS *").await else {
            panic!("KEYS")
        };
        for key in keys {
            let Reply::Bulk(Some(key)) = key else {
                panic!("a key: {key:?}")
            };
            let name = key.escape_ascii().to_string();
            assert_eq!(
                value(&mut a, &key).await,
                value(&mut b, &key).await,
                "db {db} key {name}"
            );
            let ttl_a = integer(a.command(&[b"PTTL", &key]).await.expect("PTTL"));
            let ttl_b = integer(b.command(&[b"PTTL", &key]).await.expect("PTTL"));
            if ttl_a < 0 || ttl_b < 0 {
                assert_eq!(ttl_a, ttl_b, "db {db} key {name}: TTL");
            } else {
                assert!((ttl_a - ttl_b).abs() < 5_000, "db {db} key {name}: TTL");
            }
        }
    }
}

/// [`restore_redis`] of `id` into `target` with the default options.
async fn restore_plain(
    dest: &Destination,
    id: &str,
    target: &RedisServer,
) -> pgharbor_backup::Result<RedisRestoreReport> {
    let options = RedisRestoreOptions::default();
    restore_redis(dest, id, &url(&target.url()), &options).await
}

/// The manifest's counts are the source's `INFO keyspace`.
fn assert_manifest_counts(report: &BackupReport, expected: &BTreeMap<u64, (u64, u64)>) {
    let redis = report.manifest.redis().expect("a redis section");
    let counts: BTreeMap<u64, (u64, u64)> = redis
        .databases
        .iter()
        .map(|d| (d.db, (d.keys, d.expires)))
        .collect();
    assert_eq!(&counts, expected);
}

#[tokio::test]
async fn backup_list_restore_verify_prune() {
    let source = diskless_server();
    populate(&source.url()).await;
    let (_dir, dest) = local_dest();
    let report = backup_redis(&url(&source.url()), &dest, &BackupOptions::default())
        .await
        .expect("backup");
    let manifest = &report.manifest;
    assert_eq!(manifest.kind, BackupKind::Redis);
    assert!(manifest.postgres.is_none());
    let redis = manifest.redis().unwrap();
    assert_eq!(redis.file, "dump.rdb.zst");
    assert_eq!(redis.framing, "diskless");
    assert!(redis.server_version.starts_with('7'), "{redis:?}");
    assert!(redis.rdb_version >= 9, "{redis:?}");
    assert_eq!(manifest.files[0].name, "dump.rdb.zst");
    assert_manifest_counts(&report, &keyspace(&source.url()).await);
    let json = String::from_utf8(manifest.to_json()).unwrap();
    assert!(json.contains("\"kind\": \"redis\""), "{json}");

    let entries = list(&dest).await.unwrap();
    assert_eq!(entries[0].state, BackupState::Complete);
    assert_eq!(entries[0].databases, ["db0", "db1", "db3"]);

    let target = RedisServer::start();
    let restored = restore_plain(&dest, "latest", &target)
        .await
        .expect("restore");
    assert_eq!(restored.keys_restored, redis.keys());
    assert!(!restored.flushed);
    assert_same_keys(&source.url(), &target.url()).await;

    // The target now holds keys: refused, naming its databases; flush works.
    let refused = restore_plain(&dest, &report.id, &target)
        .await
        .expect_err("a non-empty target");
    assert_eq!(refused.kind(), BackupErrorKind::TargetNotEmpty);
    assert!(
        pgharbor_backup::chain_text(&refused).contains("db0")
            && pgharbor_backup::chain_text(&refused).contains("not empty"),
        "{refused}"
    );
    let flush = RedisRestoreOptions {
        flush: true,
        ..Default::default()
    };
    let again = restore_redis(&dest, &report.id, &url(&target.url()), &flush)
        .await
        .expect("restore with flush");
    assert!(again.flushed);
    assert_same_keys(&source.url(), &target.url()).await;

    let scratch = RedisServer::start();
    let options = VerifyOptions {
        redis_restore_to: Some(url(&scratch.url())),
        ..Default::default()
    };
    let verified = verify(&dest, None, None, &options).await.unwrap();
    assert!(verified.passed, "{verified:?}");
    assert_eq!(verified.databases_restored, 3);
    assert!(
        keyspace(&scratch.url()).await.is_empty(),
        "flushed after the test restore"
    );
    assert_eq!(list(&dest).await.unwrap()[0].state, BackupState::Verified);

    // Prune keeps the newest verified backup, and removes the older one.
    let newer = BackupOptions {
        started_at: Some(manifest.started - chrono::Duration::days(1)),
        ..Default::default()
    };
    let older = backup_redis(&url(&source.url()), &dest, &newer)
        .await
        .unwrap();
    let policy = Retention {
        keep_last: 1,
        ..Default::default()
    };
    let pruned = prune(&dest, &policy, false).await.unwrap();
    assert_eq!(pruned.removed, [older.id]);
    assert_eq!(list(&dest).await.unwrap().len(), 1);
}

#[tokio::test]
async fn encrypted_backups_and_damage() {
    let source = RedisServer::start_with(RedisOptions {
        extra: vec![("repl-diskless-sync".into(), "no".into())],
        ..Default::default()
    });
    populate(&source.url()).await;
    let (dir, dest) = local_dest();
    let options = BackupOptions {
        encrypt: Some(Encryption::Passphrase(Secret::new("correct horse"))),
        ..Default::default()
    };
    let report = backup_redis(&url(&source.url()), &dest, &options)
        .await
        .unwrap();
    let redis = report.manifest.redis().unwrap();
    assert_eq!(redis.file, "dump.rdb.zst.age");
    assert_eq!(redis.framing, "sized");
    assert_manifest_counts(&report, &keyspace(&source.url()).await);

    let target = RedisServer::start();
    let no_key = restore_plain(&dest, &report.id, &target)
        .await
        .expect_err("no passphrase");
    assert!(
        pgharbor_backup::chain_text(&no_key).contains("encrypted"),
        "{no_key:?}"
    );
    let decryption = Some(Decryption::Passphrase(Secret::new("correct horse")));
    let with_key = RedisRestoreOptions {
        decryption: decryption.clone(),
        ..Default::default()
    };
    restore_redis(&dest, &report.id, &url(&target.url()), &with_key)
        .await
        .expect("encrypted restore");
    assert_same_keys(&source.url(), &target.url()).await;

    let verify_options = VerifyOptions {
        decryption,
        ..Default::default()
    };
    let good = verify(&dest, None, None, &verify_options).await.unwrap();
    assert!(good.passed, "{good:?}");
    let undecryptable = verify(&dest, None, None, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(!undecryptable.passed);

    let path = dir
        .path()
        .join("backups")
        .join(&report.id)
        .join("dump.rdb.zst.age");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let damaged = verify(&dest, None, None, &verify_options).await.unwrap();
    assert!(!damaged.passed);
    assert!(
        damaged.problems[0].contains("dump.rdb.zst.age"),
        "{damaged:?}"
    );
    assert_eq!(list(&dest).await.unwrap()[0].state, BackupState::Corrupt);
}

#[tokio::test]
async fn s3_round_trip() {
    let s3 = S3Server::start();
    s3.create_bucket("rdb");
    let credentials = S3Credentials {
        access_key_id: Some(s3.access_key_id().to_owned()),
        secret_access_key: Some(Secret::new(s3.secret_access_key())),
        session_token: None,
    };
    let dest = Destination::parse(
        "s3://rdb/cache",
        &DestinationOptions {
            s3_endpoint: Some(s3.endpoint()),
            s3_region: Some(s3.region().to_owned()),
            s3_credentials: credentials,
            ..Default::default()
        },
    )
    .unwrap();
    let source = diskless_server();
    populate(&source.url()).await;
    let report = backup_redis(&url(&source.url()), &dest, &BackupOptions::default())
        .await
        .unwrap();
    let target = RedisServer::start();
    restore_plain(&dest, &report.id, &target).await.unwrap();
    assert_same_keys(&source.url(), &target.url()).await;
    let verified = verify(&dest, None, None, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(verified.passed, "{verified:?}");
}

#[tokio::test]
async fn passwords_and_acl_users_never_shown() {
    let options = RedisOptions {
        requirepass: Some("hunter2-secret".into()),
        acl_user: Some(("backup".into(), "acl-pw-secret".into())),
        extra: vec![("repl-diskless-sync-delay".into(), "0".into())],
        ..Default::default()
    };
    let source = RedisServer::start_with(options.clone());
    populate(&source.url()).await;
    let acl_url = format!("redis://backup:acl-pw-secret@127.0.0.1:{}", source.port());
    let (dir, dest) = local_dest();
    let mut shown = String::new();
    for text in [source.url(), acl_url] {
        let report = backup_redis(&url(&text), &dest, &BackupOptions::default())
            .await
            .expect("backup with a password");
        assert_manifest_counts(&report, &keyspace(&source.url()).await);
        shown += &String::from_utf8(report.manifest.to_json()).unwrap();
        shown += &format!("{report:?}");
    }
    let target = RedisServer::start_with(options);
    let restored = restore_plain(&dest, "latest", &target)
        .await
        .expect("restore with a password");
    shown += &format!("{restored:?}");
    assert_same_keys(&source.url(), &target.url()).await;
    let wrong = format!("redis://backup:wrong-secret@127.0.0.1:{}", source.port());
    let refused = backup_redis(&url(&wrong), &dest, &BackupOptions::default())
        .await
        .expect_err("a wrong password");
    assert_eq!(refused.kind(), BackupErrorKind::Refused, "{refused}");
    let not_empty = restore_plain(&dest, "latest", &target)
        .await
        .expect_err("not empty");
    shown += &format!("{refused} {refused:?} {not_empty} {not_empty:?}");
    shown += &pgharbor_backup::chain_text(&refused);
    shown += &pgharbor_backup::chain_text(&not_empty);
    shown += &format!("{:?}", list(&dest).await.unwrap());
    for secret in ["hunter2-secret", "acl-pw-secret", "wrong-secret"] {
        assert!(!shown.contains(secret), "{secret} shown in: {shown}");
    }
    for entry in std::fs::read_dir(dir.path().join("backups")).unwrap() {
        let manifest = entry.unwrap().path().join("manifest.json");
        let text = std::fs::read_to_string(manifest).unwrap();
        assert!(!text.contains("secret"), "{text}");
    }
}
