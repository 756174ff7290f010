//! `pgharbor backup`, `backups list|verify|prune` and `restore` end to end
//! against real servers and a local destination (the library's own tests
//! cover S3, Azure Blob, encryption and the failure paths).

use crate::harness::{
    assert_refused_once, closed_port, pgharbor_under_umask, pgharbor_with, scalar, Run, Scratch,
};
use crate::postgres_copy::fingerprint;
use pgharbor_testkit::{Cluster, Flavor};

fn pgharbor_pg(args: &[&str]) -> Run {
    let bin = Flavor::Pg16Vector.bin_dir().expect("PG16 binaries");
    pgharbor_with(args, &[("PGHARBOR_PG_BIN", bin.to_str().unwrap())], None)
}

const SHOP: &str = "
CREATE TABLE customer (id serial PRIMARY KEY, name text, since date);
CREATE TABLE purchase (id bigserial PRIMARY KEY, customer_id int REFERENCES customer(id), total numeric(10,2), at timestamptz);
INSERT INTO customer (name, since) SELECT 'customer ' || g, date '2020-01-01' + g FROM generate_series(1, 2000) g;
INSERT INTO purchase (customer_id, total, at) SELECT 1 + g % 2000, g / 3.0, timestamptz '2026-01-01' + make_interval(mins => g) FROM generate_series(1, 20000) g;
CREATE VIEW big_spenders AS SELECT customer_id, sum(total) FROM purchase GROUP BY customer_id HAVING sum(total) > 100000;
";

/// A PostgreSQL 16 server with the database `shop` holding [`SHOP`].
fn shop_server() -> Cluster {
    let server = Cluster::start(Flavor::Pg16Vector);
    server.create_database("shop");
    server.psql("shop", SHOP);
    server
}

#[test]
fn a_backup_is_listed_verified_by_restoring_restored_and_pruned() {
    let server = shop_server();
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let dest = dest.to_str().unwrap();

    let taken = pgharbor_pg(&["backup", &server.url("shop"), "--to", dest]).success();
    assert!(taken.stdout.contains("complete"), "{}", taken.stdout);
    assert!(taken.stdout.contains("shop.dump.zst"), "{}", taken.stdout);

    let listed = pgharbor_pg(&["backups", "list", dest, "--json"]).success();
    let entries: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 1, "{}", listed.stdout);
    assert_eq!(entries[0]["state"], "complete", "{}", listed.stdout);
    let id = entries[0]["id"].as_str().unwrap().to_string();

    let verified = pgharbor_pg(&[
        "backups",
        "verify",
        dest,
        &id,
        "--restore-to",
        &server.url("postgres"),
    ])
    .success();
    assert!(
        verified.stdout.contains("restored and row counts equal"),
        "{}",
        verified.stdout
    );
    let listed = pgharbor_pg(&["backups", "list", dest]).success();
    assert!(listed.stdout.contains("verified"), "{}", listed.stdout);
    assert_eq!(
        scalar(
            &server,
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgharbor_verify%'"
        ),
        "0",
        "the scratch database is dropped"
    );

    let postgres = server.url("postgres");
    let restore_as = |backup: &str, name: &str, extra: &[&str]| {
        let mut args = vec!["restore", backup, &postgres, "--as", name];
        args.extend_from_slice(extra);
        pgharbor_pg(&args)
    };
    let restored = restore_as(&format!("{dest}/latest"), "shop_copy", &[]).success();
    assert!(
        restored.stdout.contains("shop → shop_copy"),
        "{}",
        restored.stdout
    );
    for q in [
        "SELECT * FROM customer",
        "SELECT * FROM purchase",
        "SELECT * FROM big_spenders",
    ] {
        assert_eq!(
            fingerprint(&server, "shop", q),
            fingerprint(&server, "shop_copy", q),
            "{q}"
        );
    }
    let refused = restore_as(&format!("{dest}/{id}"), "shop_copy", &[]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(refused.stderr.contains("shop_copy"), "{}", refused.stderr);
    // Without --as, into the database the URL names (created, as with
    // pg_restore -d), never into the backup's own "shop".
    let by_url = pgharbor_pg(&[
        "restore",
        &format!("{dest}/{id}"),
        &server.url("shop_by_url"),
    ])
    .success();
    assert!(
        by_url.stdout.contains("shop → shop_by_url"),
        "{}",
        by_url.stdout
    );
    assert_eq!(
        fingerprint(&server, "shop", "SELECT * FROM purchase"),
        fingerprint(&server, "shop_by_url", "SELECT * FROM purchase"),
    );
    // Temporary files go where --temp-dir says, and are gone afterwards.
    let missing = scratch.path("no-such-dir");
    restore_as(
        &format!("{dest}/{id}"),
        "shop_copy",
        &["--clean", "--temp-dir", missing.to_str().unwrap()],
    )
    .fails_with(
        1,
        &[&format!(
            "creating a temporary file in {}",
            missing.display()
        )],
    );
    assert_eq!(
        fingerprint(&server, "shop", "SELECT * FROM purchase"),
        fingerprint(&server, "shop_copy", "SELECT * FROM purchase"),
        "a restore that cannot start leaves the database --clean would replace"
    );
    let temp = scratch.path("restore-temp");
    std::fs::create_dir(&temp).unwrap();
    restore_as(
        &format!("{dest}/{id}"),
        "shop_copy",
        &["--clean", "--temp-dir", temp.to_str().unwrap()],
    )
    .success();
    assert_eq!(
        std::fs::read_dir(&temp).unwrap().count(),
        0,
        "temporary files removed"
    );

    // A corrupted byte is found and named.
    let dump = scratch.path("backups").join(&id).join("shop.dump.zst");
    let mut bytes = std::fs::read(&dump).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&dump, bytes).unwrap();
    let corrupt = pgharbor_pg(&["backups", "verify", dest, &id]);
    assert_eq!(corrupt.code, 1, "{}", corrupt.all());
    assert!(
        corrupt.stderr.contains("shop.dump.zst"),
        "{}",
        corrupt.stderr
    );

    // Pruning never deletes the newest good backup; a dry run deletes nothing.
    pgharbor_pg(&["backup", &server.url("shop"), "--to", dest]).success();
    let dry = pgharbor_pg(&["backups", "prune", dest, "--keep-last", "1", "--dry-run"]).success();
    assert!(
        dry.stdout.contains(&format!("would delete {id}")),
        "{}",
        dry.stdout
    );
    let listed = pgharbor_pg(&["backups", "list", dest, "--json"]).success();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&listed.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    pgharbor_pg(&["backups", "prune", dest, "--keep-last", "1"]).success();
    let listed = pgharbor_pg(&["backups", "list", dest, "--json"]).success();
    let entries: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 1, "{}", listed.stdout);
    assert_ne!(entries[0]["id"], id.as_str());

    // A damaged byte in a backup never verified: the restore fails, naming
    // the file (zstd notices early, or the SHA-256 at the end), and leaves
    // no database behind (none created yet, or the one it created dropped).
    let newest = entries[0]["id"].as_str().unwrap().to_string();
    let dump = scratch.path("backups").join(&newest).join("shop.dump.zst");
    let mut bytes = std::fs::read(&dump).unwrap();
    let at = bytes.len() * 2 / 3;
    bytes[at] ^= 0x55;
    std::fs::write(&dump, bytes).unwrap();
    restore_as(&format!("{dest}/{newest}"), "shop_broken", &[]).fails_with(1, &["shop.dump.zst"]);
    assert_eq!(
        scalar(
            &server,
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'shop_broken'"
        ),
        "0"
    );
}

#[test]
fn print_cronjob_writes_a_kubernetes_cronjob_without_secrets() {
    let run = pgharbor_with(
        &[
            "backup",
            "postgresql://backup@db:5432/app",
            "--to",
            "s3://backups/app",
            "--every",
            "0 2 * * *",
            "--time-zone",
            "Europe/Berlin",
            "--print-cronjob",
            "--secret-env",
            "PGPASSWORD=app-db:password",
            "--image",
            "registry.example/pgharbor:1",
        ],
        &[],
        None,
    )
    .success();
    for needle in [
        "kind: CronJob",
        "schedule: \"0 2 * * *\"",
        "timeZone: \"Europe/Berlin\"",
        "concurrencyPolicy: Forbid",
        "secretKeyRef",
        "\"registry.example/pgharbor:1\"",
        "\"s3://backups/app\"",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle} missing:\n{}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains("--print-cronjob"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("--every"),
        "the CronJob runs one backup per Job:\n{}",
        run.stdout
    );

    let bad = pgharbor_with(
        &[
            "backup",
            "postgresql://db/app",
            "--to",
            "/tmp/x",
            "--every",
            "0 25 * * *",
            "--print-cronjob",
        ],
        &[],
        None,
    );
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(bad.stderr.contains("hour"), "{}", bad.stderr);
    // Without --image: the tag scripts/image.sh gives, not a registry that does not exist.
    let default_image = pgharbor_with(
        &[
            "backup",
            "postgresql://db/app",
            "--to",
            "/tmp/x",
            "--every",
            "0 2 * * *",
            "--print-cronjob",
        ],
        &[],
        None,
    )
    .success();
    let tag = format!("image: \"pgharbor:{}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        default_image.stdout.contains(&tag),
        "{}",
        default_image.stdout
    );
}

#[test]
fn a_redis_snapshot_is_backed_up_and_restored_key_by_key() {
    use pgharbor_testkit::RedisServer;
    let source = RedisServer::start();
    let target = RedisServer::start();
    let scratch = Scratch::new();
    let dest = scratch.path("redis-backups");
    let dest = dest.to_str().unwrap();
    let cli = |server: &RedisServer, args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &server.port().to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    cli(&source, &["SET", "session:1", "alice", "EX", "3600"]);
    cli(&source, &["RPUSH", "queue", "a", "b", "c"]);
    cli(
        &source,
        &["-n", "2", "HSET", "user:7", "name", "bob", "plan", "pro"],
    );

    let taken = pgharbor_with(&["backup", &source.url(), "--to", dest], &[], None).success();
    assert!(taken.stdout.contains("dump.rdb.zst"), "{}", taken.stdout);
    cli(&target, &["SET", "stale", "x"]);
    let refused = pgharbor_with(
        &["restore", &format!("{dest}/latest"), &target.url()],
        &[],
        None,
    );
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(refused.stderr.contains("db0"), "{}", refused.stderr);
    let restored = pgharbor_with(
        &[
            "restore",
            &format!("{dest}/latest"),
            &target.url(),
            "--flush",
        ],
        &[],
        None,
    )
    .success();
    assert!(restored.stdout.contains("3 keys"), "{}", restored.stdout);
    assert_eq!(cli(&target, &["LRANGE", "queue", "0", "-1"]), "a\nb\nc");
    assert_eq!(cli(&target, &["-n", "2", "HGET", "user:7", "plan"]), "pro");
    let ttl: i64 = cli(&target, &["TTL", "session:1"]).parse().unwrap();
    assert!((3500..=3600).contains(&ttl), "TTL kept: {ttl}");
    assert_eq!(cli(&target, &["EXISTS", "stale"]), "0");
}

/// Backups hold every row (and role hashes with --with-role-passwords):
/// under the usual umask 022, the dumps, the roles file, manifests,
/// verification records and Redis snapshots are created 0600, and the
/// directories pgharbor creates for them 0700; the test restore's
/// temporary files in --temp-dir are gone afterwards.
#[test]
fn backup_files_are_readable_by_their_owner_alone_under_umask_022() {
    use pgharbor_testkit::RedisServer;
    use std::os::unix::fs::PermissionsExt as _;
    let server = shop_server();
    let redis = RedisServer::start();
    let scratch = Scratch::new();
    let top = scratch.path("srv");
    let dest = top.join("backups");
    let dest = dest.to_str().unwrap();
    let temp = scratch.path("temp");
    std::fs::create_dir(&temp).unwrap();
    let bin = Flavor::Pg16Vector.bin_dir().expect("PG16 binaries");
    let env = [("PGHARBOR_PG_BIN", bin.to_str().unwrap())];
    let run = |args: &[&str]| pgharbor_under_umask("022", args, &env).success();
    run(&[
        "backup",
        &server.url("shop"),
        "--to",
        dest,
        "--roles",
        "--verify-after",
        "--restore-to",
        &server.url("postgres"),
        "--temp-dir",
        temp.to_str().unwrap(),
    ]);
    run(&["backup", &redis.url(), "--to", dest]);
    run(&["backups", "verify", dest]);

    let mut files = Vec::new();
    let mut dirs = vec![top.clone()];
    while let Some(dir) = dirs.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
            files.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    files.sort();
    files.dedup();
    assert_eq!(
        files,
        [
            "dump.rdb.zst",
            "manifest.json",
            "roles.sql.zst",
            "shop.dump.zst",
            "verification.json"
        ],
        "both backups' files were checked"
    );
    assert_eq!(
        std::fs::read_dir(&temp).unwrap().count(),
        0,
        "no temporary file is left in --temp-dir"
    );
}

/// `backups verify DEST` checks the newest backup only (and says so in
/// --help); `--all` checks every one, names the damaged backup and file,
/// exits 1 and records it, so `list`, `status --backups` and /metrics show
/// it as corrupt.
#[test]
fn verify_all_finds_a_byte_changed_in_an_older_backup() {
    use crate::serving::{metric, parse_metrics, Serve};
    let server = shop_server();
    let scratch = Scratch::new();
    let dir = scratch.path("backups");
    let dest = dir.to_str().unwrap();
    let url = server.url("shop");
    pgharbor_pg(&["backup", &url, "--to", dest]).success();
    pgharbor_pg(&["backup", &url, "--to", dest]).success();
    let listed = pgharbor_pg(&["backups", "list", dest, "--json"]).success();
    let entries: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let (newer, older) = (
        entries[0]["id"].as_str().unwrap().to_string(),
        entries[1]["id"].as_str().unwrap().to_string(),
    );
    let dump = dir.join(&older).join("shop.dump.zst");
    let mut bytes = std::fs::read(&dump).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&dump, &bytes).unwrap();

    let help = pgharbor_pg(&["backups", "verify", "--help"]).success();
    assert!(
        help.stdout.contains("only the newest backup") && help.stdout.contains("--all"),
        "{}",
        help.stdout
    );
    let newest_only = pgharbor_pg(&["backups", "verify", dest]).success();
    assert!(
        newest_only.stdout.contains(&newer),
        "{}",
        newest_only.stdout
    );

    let all = pgharbor_pg(&["backups", "verify", dest, "--all"]);
    assert_eq!(all.code, 1, "{}", all.all());
    assert!(
        all.stdout
            .contains(&format!("backup {newer}: 1 file(s) intact")),
        "{}",
        all.stdout
    );
    assert!(
        all.stderr.contains(&format!(
            "1 of 2 backup(s) at {dest} are damaged: {older} (file shop.dump.zst is damaged"
        )),
        "{}",
        all.stderr
    );

    let listed = pgharbor_pg(&["backups", "list", dest, "--json"]).success();
    let entries: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(entries[0]["state"], "verified", "{}", listed.stdout);
    assert_eq!(entries[1]["state"], "corrupt", "{}", listed.stdout);
    let status = pgharbor_pg(&["status", &url, "--backups", dest, "--json"]).success();
    let view: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(view["backups"]["counts"]["corrupt"], 1, "{view}");
    let serve = Serve::start(
        &format!("[[backups]]\nname = \"nightly\"\ndest = \"{dest}\"\n"),
        &[],
        &[],
    );
    let m = parse_metrics(&serve.get("/metrics"));
    let corrupt = [("backup", "nightly"), ("state", "corrupt")];
    assert_eq!(metric(&m, "pgharbor_backups", &corrupt), Some(1.0));
}

/// `--compress-level` trades speed for size and is recorded in the
/// manifest; a level out of range is refused naming the range; the
/// default archive is no larger than `pg_dump -Fc`'s of the same database.
#[test]
fn compress_level_is_chosen_recorded_and_checked() {
    let server = shop_server();
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let dest = dest.to_str().unwrap();
    let url = server.url("shop");
    let backup = |extra: &[&str]| {
        let mut args = vec!["backup", &url, "--to", dest, "--json"];
        args.extend_from_slice(extra);
        let run = pgharbor_pg(&args).success();
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let manifest = &report["manifest"];
        (
            manifest["compression"]["level"].as_i64().unwrap(),
            manifest["files"][0]["size"].as_u64().unwrap(),
        )
    };
    let (fastest, fast_size) = backup(&["--compress-level", "1"]);
    let (smallest, small_size) = backup(&["--compress-level", "19"]);
    assert_eq!((fastest, smallest), (1, 19));
    assert!(small_size < fast_size, "{small_size} < {fast_size}");
    let (default, default_size) = backup(&[]);
    assert!((1..=19).contains(&default), "{default}");

    let bin = Flavor::Pg16Vector.bin_dir().expect("PG16 binaries");
    let plain = scratch.path("shop.dump");
    let dumped = std::process::Command::new(bin.join("pg_dump"))
        .args(["-Fc", "-f", plain.to_str().unwrap(), &url])
        .output()
        .unwrap();
    assert!(dumped.status.success(), "{dumped:?}");
    let pg_dump_size = std::fs::metadata(&plain).unwrap().len();
    assert!(
        default_size <= pg_dump_size,
        "level {default}: {default_size} bytes, pg_dump -Fc {pg_dump_size}"
    );

    pgharbor_pg(&["backup", &url, "--to", dest, "--compress-level", "25"])
        .fails_with(2, &["--compress-level", "25", "1..=19"]);
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn problems_of(view: &serde_json::Value) -> String {
    view["problems"].to_string()
}

/// `status --backups` and `serve`'s `[[backups]]` read what `pgharbor
/// backup` wrote: the last good and last verified backup, its size and
/// times, counts per state, and the problems (never verified, too old, a
/// newer failed backup, a corrupt one, an unreadable destination).
#[test]
fn status_and_serve_show_the_last_good_and_verified_backup() {
    use crate::serving::{metric, parse_metrics, Serve};
    let server = shop_server();
    let scratch = Scratch::new();
    let dir = scratch.path("backups");
    std::fs::create_dir(&dir).unwrap();
    let dest = dir.to_str().unwrap();
    let url = server.url("shop");
    let status = |extra: &[&str]| {
        let mut args = vec!["status", &url, "--backups", dest, "--json"];
        args.extend_from_slice(extra);
        let run = pgharbor_pg(&args).success();
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        json["backups"].clone()
    };

    let before = unix_now();
    pgharbor_pg(&["backup", &url, "--to", dest]).success();
    let after = unix_now();
    let listed = pgharbor_pg(&["backups", "list", dest, "--json"]).success();
    let entries: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let id = entries[0]["id"].as_str().unwrap().to_string();
    let size = entries[0]["size"].as_u64().unwrap();

    let view = status(&[]);
    assert_eq!(view["last_good"]["id"], id.as_str(), "{view}");
    assert_eq!(view["last_good"]["size"], size);
    assert_eq!(view["last_good"]["kind"], "postgres");
    assert_eq!(view["last_good"]["databases"], serde_json::json!(["shop"]));
    let finished = view["last_good"]["finished_unix"].as_f64().unwrap();
    assert!(
        (before - 1.0..=after + 1.0).contains(&finished),
        "{before} ≤ {finished} ≤ {after}"
    );
    assert_eq!(view["counts"]["complete"], 1);
    assert_eq!(view["last_verified"], serde_json::Value::Null);
    assert!(
        problems_of(&view).contains("has been verified: run pgharbor backups verify"),
        "{view}"
    );

    pgharbor_pg(&[
        "backups",
        "verify",
        dest,
        "--restore-to",
        &server.url("postgres"),
    ])
    .success();
    let listed = pgharbor_pg(&["backups", "list", dest, "--json"]).success();
    let entries: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let size = entries[0]["size"].as_u64().unwrap(); // now with verification.json
    let view = status(&[]);
    assert_eq!(view["last_verified"]["id"], id.as_str(), "{view}");
    assert_eq!(view["last_good"]["size"], size);
    assert_eq!(view["counts"]["verified"], 1);
    assert_eq!(view["problems"], serde_json::json!([]), "{view}");
    let text = pgharbor_pg(&["status", &url, "--backups", dest]).success();
    assert!(
        text.stdout
            .contains(&format!("last verified: {id} (postgres, ")),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("1 verified, 0 complete"),
        "{}",
        text.stdout
    );

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let stale = status(&["--backups-max-age", "1s"]);
    let problems = problems_of(&stale);
    assert!(
        problems.contains(&format!("the last good backup {id} finished"))
            && problems.contains("more than the allowed 1s"),
        "{stale}"
    );
    assert_eq!(stale["problems"][0]["severity"], "critical");

    // A newer backup without a manifest: still running while its files are
    // fresh, failed once they are an hour old.
    let failed_id = "29991231T235959Z";
    let part = dir.join(failed_id).join("shop.dump.zst");
    std::fs::create_dir(part.parent().unwrap()).unwrap();
    std::fs::write(&part, b"partial").unwrap();
    let running = status(&[]);
    assert_eq!(running["newest"]["id"], failed_id);
    assert_eq!(running["newest"]["state"], "failed");
    assert_eq!(running["problems"], serde_json::json!([]), "{running}");
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&part)
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    let failed = status(&[]);
    assert!(
        problems_of(&failed).contains(&format!(
            "the newest backup {failed_id} is failed: no manifest"
        )),
        "{failed}"
    );
    assert_eq!(failed["last_good"]["id"], id.as_str());

    // serve: the same view as metrics, JSON and on the dashboard.
    let serve = Serve::start(
        &format!(
            "refresh_seconds = 1\n[[backups]]\nname = \"nightly\"\ndest = \"{dest}\"\nmax_age = \"1h\"\n"
        ),
        &[],
        &[],
    );
    let m = parse_metrics(&serve.get("/metrics"));
    let nightly = [("backup", "nightly")];
    let success = metric(
        &m,
        "pgharbor_backup_last_success_timestamp_seconds",
        &nightly,
    )
    .unwrap();
    assert!((success - finished).abs() < 0.01, "{success} vs {finished}");
    assert_eq!(
        metric(&m, "pgharbor_backup_last_size_bytes", &nightly),
        Some(size as f64)
    );
    let verified_at = metric(
        &m,
        "pgharbor_backup_last_verified_timestamp_seconds",
        &nightly,
    )
    .unwrap();
    assert!(
        verified_at >= success && verified_at <= unix_now(),
        "{verified_at}"
    );
    assert!(metric(&m, "pgharbor_backup_last_duration_seconds", &nightly).unwrap() > 0.0);
    for (state, n) in [
        ("verified", 1.0),
        ("complete", 0.0),
        ("failed", 1.0),
        ("corrupt", 0.0),
    ] {
        assert_eq!(
            metric(
                &m,
                "pgharbor_backups",
                &[("backup", "nightly"), ("state", state)]
            ),
            Some(n),
            "{state}"
        );
    }
    assert_eq!(metric(&m, "pgharbor_backup_problems", &nightly), Some(1.0));
    assert_eq!(
        metric(
            &m,
            "pgharbor_backup_info",
            &[("backup", "nightly"), ("health", "warning")]
        ),
        Some(1.0)
    );
    let api: serde_json::Value = serde_json::from_str(&serve.get("/api/status")).unwrap();
    assert_eq!(api["backups"][0]["last_good"]["id"], id.as_str());
    assert_eq!(api["problem_count"], 1);
    let html = serve.get("/");
    assert!(
        html.contains(r#"<tr data-backup="nightly" data-state="warning">"#),
        "{html}"
    );
    assert!(
        html.contains(&format!("{id} (")),
        "the last good backup is on the page"
    );

    // A truncated file makes the only good backup corrupt: nothing restorable.
    let dump = dir.join(&id).join("shop.dump.zst");
    let bytes = std::fs::read(&dump).unwrap();
    std::fs::write(&dump, &bytes[..bytes.len() / 2]).unwrap();
    let corrupt = status(&[]);
    assert_eq!(corrupt["counts"]["corrupt"], 1, "{corrupt}");
    assert_eq!(corrupt["last_good"], serde_json::Value::Null);
    assert!(
        problems_of(&corrupt).contains(&format!(
            "no restorable backup at {dest}: 1 failed, 1 corrupt"
        )),
        "{corrupt}"
    );
    let html_after = {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        serve.get("/")
    };
    assert!(
        html_after.contains(r#"<tr data-backup="nightly" data-state="critical">"#),
        "{html_after}"
    );

    // A destination that does not answer: a critical problem, not a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let run = pgharbor_with(
        &[
            "status",
            &url,
            "--backups",
            "s3://nowhere/pg",
            "--s3-endpoint",
            &endpoint,
            "--timeout",
            "3s",
            "--json",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test-secret-key"),
            ("AWS_REGION", "us-east-1"),
        ],
        None,
    )
    .success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let view = &json["backups"];
    assert_eq!(view["readable"], false, "{view}");
    assert!(
        problems_of(view).contains("cannot read the backups at s3://nowhere/pg"),
        "{view}"
    );
    assert!(!run.all().contains("test-secret-key"));
}

/// `backup --every` is a long-lived process: it backs up at the next
/// minute, verifies by restoring, serves its metrics, and stops cleanly on
/// SIGTERM.
#[test]
fn backup_every_runs_on_schedule_and_stops_on_sigterm() {
    use crate::serving::{http_get, metric, parse_metrics};
    use std::io::Read as _;
    let server = shop_server();
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let dest = dest.to_str().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let bin = Flavor::Pg16Vector.bin_dir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pgharbor"))
        .args(["backup", &server.url("shop"), "--to", dest])
        .args(["--every", "* * * * *", "--verify-after", "--restore-to"])
        .arg(server.url("postgres"))
        .args(["--listen", &addr])
        .env("PGHARBOR_PG_BIN", bin)
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pgharbor backup --every");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let runs = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the scheduled backup process ended"
        );
        let m = std::net::TcpStream::connect(&addr).ok().map(|_| {
            parse_metrics(
                http_get(&addr, "/metrics")
                    .split_once("\r\n\r\n")
                    .unwrap()
                    .1,
            )
        });
        if let Some(runs) = m
            .as_ref()
            .and_then(|m| metric(m, "pgharbor_backup_runs_total", &[]))
            .filter(|runs| *runs >= 1.0)
        {
            break (runs, m.unwrap());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no run within two minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let (runs, m) = runs;
    assert_eq!(runs, 1.0);
    assert_eq!(metric(&m, "pgharbor_backup_failures_total", &[]), Some(0.0));
    assert!(metric(&m, "pgharbor_backup_last_success_timestamp_seconds", &[]).unwrap() > 0.0);
    let listed = pgharbor_pg(&["backups", "list", dest, "--json"]).success();
    let entries: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(entries[0]["state"], "verified", "{}", listed.stdout);

    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("stopped after 1 run(s), 0 failed"),
        "{stderr}"
    );
}

#[test]
fn a_backup_of_an_unreachable_server_says_where_and_why_once() {
    let port = closed_port();
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let url = format!("postgresql://app:unreachable-pw@127.0.0.1:{port}/shop");
    let run = pgharbor_pg(&["backup", &url, "--to", dest.to_str().unwrap()]);
    assert_refused_once(&run, port);
    assert!(
        run.stderr.contains("check that the server is running"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("unreachable-pw"), "{}", run.all());
}
