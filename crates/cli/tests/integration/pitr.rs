//! Point-in-time recovery end to end against real PostgreSQL 15 and 16
//! clusters: `pgharbor archive` (the real `pg_receivewal` over a slot),
//! `pgharbor base-backup` (the real `pg_basebackup`), rows committed on
//! both sides of a known moment, then `pgharbor restore DEST --pgdata …
//! --time` / `--latest --start`, whose `restore_command` runs
//! `pgharbor restore-wal`; the archiver killed with SIGKILL and restarted;
//! `backups verify --pitr`, and a deleted segment named. PostgreSQL
//! refuses to run as root, so as root (how the suite runs) every pgharbor
//! run here is made as `postgres`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{pgharbor, pgharbor_with, query, scalar, Run};
use pgharbor_testkit::{AzuriteServer, Cluster, Flavor, S3Server};

/// A directory the server's user owns (`postgres` when the tests run as root).
struct Workdir {
    dir: tempfile::TempDir,
}

fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Workdir {
    fn new() -> Workdir {
        let base = std::env::var_os("PGHARBOR_TEST_TMPDIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("pgh-pitr-")
            .tempdir_in(base)
            .expect("tempdir");
        if running_as_root() {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        Workdir { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// `pgharbor ARGS` as the server's user, with `cluster`'s programs.
fn pgharbor_command(cluster: &Cluster, args: &[&str], env: &[(&str, &str)]) -> Command {
    let bin = env!("CARGO_BIN_EXE_pgharbor");
    let mut command = if running_as_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            "postgres",
            "--regid",
            "postgres",
            "--init-groups",
            bin,
        ]);
        c
    } else {
        Command::new(bin)
    };
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PGPASSWORD")
        .env("PGHARBOR_PG_BIN", cluster.bin_dir())
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

fn run_as_server_user(cluster: &Cluster, args: &[&str], env: &[(&str, &str)]) -> Run {
    Run::from(
        pgharbor_command(cluster, args, env)
            .output()
            .expect("run pgharbor"),
    )
}

/// A running `pgharbor archive`, ended with SIGTERM.
struct Archiver {
    child: Option<Child>,
}

impl Archiver {
    fn start(cluster: &Cluster, work: &Workdir, extra: &[&str], env: &[(&str, &str)]) -> Archiver {
        Archiver::start_to(cluster, &work.path("dest"), &work.path("spool"), extra, env)
    }

    fn start_to(
        cluster: &Cluster,
        dest: &str,
        spool: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Archiver {
        Archiver::start_with(cluster, &cluster.url("postgres"), (dest, spool), extra, env)
    }

    /// Archives the server at `url` (with `cluster`'s programs).
    fn start_url(
        cluster: &Cluster,
        url: &str,
        dest: &str,
        spool: &str,
        extra: &[&str],
    ) -> Archiver {
        Archiver::start_with(cluster, url, (dest, spool), extra, &[])
    }

    fn start_with(
        cluster: &Cluster,
        url: &str,
        (dest, spool): (&str, &str),
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Archiver {
        let mut args = vec!["archive", url, "--to", dest, "--spool", spool];
        args.extend_from_slice(extra);
        let child = pgharbor_command(cluster, &args, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pgharbor archive");
        Archiver { child: Some(child) }
    }

    /// SIGKILL: no clean-up of its own.
    fn kill(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill -9 the archiver");
        child.wait().expect("reap the archiver");
    }

    /// Waits (a minute at most) for it to end on its own, then the run's output.
    fn stop_when_done(mut self) -> Run {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("archiver status").is_none() {
            if Instant::now() > deadline {
                terminate(&child);
                panic!("the archiver did not stop:\n{}", Run::finished(child).all());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Run::finished(child)
    }

    /// SIGTERM, then the run's output.
    fn stop(mut self) -> Run {
        let child = self.child.take().expect("running");
        terminate(&child);
        Run::finished(child)
    }
}

fn terminate(child: &Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
}

impl Drop for Archiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&child);
            let _ = child.wait();
        }
    }
}

/// Waits until the archive at `dest` indexes WAL file `name`.
fn wait_archived(dest: &str, name: &str, archiver: &mut Archiver) {
    let entry = Path::new(dest).join("wal").join(format!("{name}.json"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !entry.exists() {
        let child = archiver.child.as_mut().expect("running");
        if let Some(status) = child.try_wait().expect("archiver status") {
            let run = Run::finished(archiver.child.take().unwrap());
            panic!(
                "the archiver stopped ({status}) before {name} was archived:\n{}",
                run.all()
            );
        }
        if Instant::now() > deadline {
            let child = archiver.child.take().expect("running");
            terminate(&child);
            panic!("{name} was never archived:\n{}", Run::finished(child).all());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A restored server, stopped when dropped.
struct Restored {
    data_dir: String,
    pg_ctl: PathBuf,
}

impl Drop for Restored {
    fn drop(&mut self) {
        let mut command = if running_as_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid",
                "postgres",
                "--regid",
                "postgres",
                "--init-groups",
            ])
            .arg(&self.pg_ctl);
            c
        } else {
            Command::new(&self.pg_ctl)
        };
        let _ = command
            .args(["-D", &self.data_dir, "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Every row of `sql` on the restored server at `port`.
fn rows_at(cluster: &Cluster, port: u16, sql: &str) -> Vec<String> {
    let out = Command::new(cluster.bin("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "shop",
        ])
        .arg(format!("--port={port}"))
        .args(["-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql on the restored server: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Restores `dest` with `target` into a new directory, started on a free port.
fn restore(
    cluster: &Cluster,
    work: &Workdir,
    name: &str,
    target: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Restored, u16, Run) {
    let port = free_port();
    let (dest, data_dir) = (work.path("dest"), work.path(name));
    let port_text = port.to_string();
    let mut args = vec![
        "restore", &dest, "--pgdata", &data_dir, "--port", &port_text,
    ];
    args.extend_from_slice(target);
    args.extend_from_slice(extra);
    args.push("--start");
    let run = run_as_server_user(cluster, &args, env);
    let restored = Restored {
        data_dir,
        pg_ctl: cluster.bin("pg_ctl"),
    };
    (restored, port, run.success())
}

const ITEMS: &str = "SELECT id, label, qty FROM item ORDER BY id";

/// An age key pair made by `age-keygen` in `work` (readable by the
/// server's user only): the public key, and the identity file's path.
fn age_key(work: &Workdir) -> (String, String) {
    let file = work.path("age-key.txt");
    let out = Command::new("age-keygen")
        .args(["-o", &file])
        .output()
        .expect("run age-keygen (scripts/setup.sh installs age)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if running_as_root() {
        assert!(Command::new("chown")
            .args(["postgres:postgres", &file])
            .status()
            .unwrap()
            .success());
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("age-keygen writes the public key")
        .to_owned();
    (public, file)
}

/// Archive, base backup, rows before and after a moment, restores to the
/// moment and to the end; with `encrypted`, the archive is age-encrypted
/// to a key pair.
fn restores_exactly_the_state_at_a_time(flavor: Flavor, encrypted: bool) {
    let server = Cluster::start(flavor);
    server.create_database("shop");
    server.psql(
        "shop",
        "CREATE TABLE item (id int PRIMARY KEY, label text, qty int);
         INSERT INTO item SELECT g, 'before ' || g, g FROM generate_series(1, 50) g;",
    );
    let work = Workdir::new();
    let dest = work.path("dest");
    let env: Vec<(&str, &str)> = Vec::new();
    let (public, key_file) = if encrypted {
        age_key(&work)
    } else {
        Default::default()
    };
    let encrypt: Vec<&str> = if encrypted {
        vec!["--encrypt-recipient", &public]
    } else {
        Vec::new()
    };
    let decrypt: Vec<&str> = if encrypted {
        vec!["--decrypt-key-file", &key_file]
    } else {
        Vec::new()
    };
    let (encrypt, decrypt) = (encrypt.as_slice(), decrypt.as_slice());
    let mut archiver = Archiver::start(&server, &work, encrypt, &env);
    let mut base_args = vec!["base-backup", "--to", &dest];
    let url = server.url("postgres");
    base_args.insert(1, &url);
    base_args.extend_from_slice(encrypt);
    let base = run_as_server_user(&server, &base_args, &env).success();
    let suffix = if encrypted {
        "base.tar.zst.age"
    } else {
        "base.tar.zst"
    };
    assert!(base.stdout.contains(suffix), "{}", base.stdout);
    assert!(
        base.stdout.contains("row-count marker at WAL position")
            && base.stdout.contains("table(s) in"),
        "{}",
        base.stdout
    );
    // The destination is claimed for this cluster; another cluster's
    // archive is never written over.
    let identifier = scalar(
        &server,
        "postgres",
        "SELECT system_identifier FROM pg_control_system()",
    );
    let claim = std::fs::read_to_string(Path::new(&dest).join("wal/cluster.json")).unwrap();
    assert!(claim.contains(&identifier), "{claim}");
    let foreign = work.path("foreign");
    std::fs::create_dir_all(Path::new(&foreign).join("wal")).unwrap();
    std::fs::write(
        Path::new(&foreign).join("wal/cluster.json"),
        r#"{"system_identifier": "7000000000000000001"}"#,
    )
    .unwrap();
    let mut to_foreign = vec!["base-backup", &url, "--to", &foreign];
    to_foreign.extend_from_slice(encrypt);
    run_as_server_user(&server, &to_foreign, &env).fails_with(
        1,
        &[
            "holds the archive of another PostgreSQL cluster",
            "7000000000000000001",
            &identifier,
        ],
    );

    // The first state, committed before the moment; the second after it.
    server.psql(
        "shop",
        "INSERT INTO item SELECT g, 'first ' || g, g * 10 FROM generate_series(51, 80) g;
         UPDATE item SET qty = -1 WHERE id = 7;
         DELETE FROM item WHERE id = 9;",
    );
    let first_state = query(&server, "shop", ITEMS);
    std::thread::sleep(Duration::from_millis(1100));
    let moment = scalar(&server, "shop", "SELECT clock_timestamp()::text");
    server.psql(
        "postgres",
        "SELECT pg_create_restore_point('before-second');",
    );
    std::thread::sleep(Duration::from_millis(1100));
    server.psql(
        "shop",
        "INSERT INTO item SELECT g, 'second ' || g, g FROM generate_series(81, 90) g;
         UPDATE item SET label = 'changed after' WHERE id = 60;
         DELETE FROM item WHERE id = 3;",
    );
    let final_state = query(&server, "shop", ITEMS);
    assert_ne!(first_state, final_state);
    let last = scalar(
        &server,
        "postgres",
        "SELECT pg_walfile_name(pg_switch_wal())",
    );
    wait_archived(&dest, &last, &mut archiver);

    let (at_moment, port, run) = restore(
        &server,
        &work,
        "at-moment",
        &["--time", &moment],
        decrypt,
        &env,
    );
    assert!(run.stdout.contains("recovery has ended"), "{}", run.stdout);
    assert_eq!(
        rows_at(&server, port, ITEMS),
        first_state,
        "restored to {moment}"
    );
    let dir_mode = std::fs::metadata(&at_moment.data_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700, "the data directory is private");
    let auto_conf =
        std::fs::read_to_string(Path::new(&at_moment.data_dir).join("postgresql.auto.conf"))
            .unwrap();
    assert!(auto_conf.contains("restore-wal"), "{auto_conf}");
    assert!(auto_conf.contains("archive_mode = 'off'"), "{auto_conf}");
    if encrypted {
        assert!(
            !auto_conf.contains("AGE-SECRET-KEY"),
            "a key in postgresql.auto.conf"
        );
        assert!(
            auto_conf.contains(&format!("--decrypt-key-file {key_file}")),
            "{auto_conf}"
        );
    }
    let over = run_as_server_user(
        &server,
        &[
            "restore",
            &dest,
            "--pgdata",
            &at_moment.data_dir,
            "--latest",
        ],
        &env,
    );
    over.fails_with(1, &["is not empty", "never over an existing one"]);
    // Without --start: the directory is left ready, with the exact start command.
    let ready_dir = tempfile::tempdir().unwrap();
    let ready = ready_dir.path().join("data").display().to_string();
    let mut ready_args = vec!["restore", &dest, "--pgdata", &ready, "--latest"];
    ready_args.extend_from_slice(decrypt);
    let bin = server.bin_dir().display().to_string();
    let left = pgharbor_with(&ready_args, &[("PGHARBOR_PG_BIN", &bin)], None).success();
    assert!(
        left.stdout
            .contains(&format!("-D {ready} -l {ready}/pgharbor-restore.log start")),
        "{}",
        left.stdout
    );
    if running_as_root() {
        assert!(
            left.stdout.contains("chown -R postgres:"),
            "{}",
            left.stdout
        );
    }
    assert!(Path::new(&ready).join("recovery.signal").exists());
    assert!(Path::new(&ready).join("PG_VERSION").exists());
    drop(at_moment);

    let (_latest, port, _) = restore(&server, &work, "latest", &["--latest"], decrypt, &env);
    assert_eq!(
        rows_at(&server, port, ITEMS),
        final_state,
        "restored to the end"
    );
    if flavor == Flavor::Pg16Vector {
        let target = ["--name", "before-second"];
        let (_named, port, _) = restore(&server, &work, "named", &target, decrypt, &env);
        assert_eq!(rows_at(&server, port, ITEMS), first_state, "restore point");
    }

    // Killed with SIGKILL (pg_receivewal dies with it), WAL written while
    // it is down, restarted: the slot kept that WAL, the archive has no gap.
    archiver.kill();
    server.psql(
        "shop",
        "INSERT INTO item SELECT g, 'while down', g FROM generate_series(91, 95) g;",
    );
    let while_down = scalar(
        &server,
        "postgres",
        "SELECT pg_walfile_name(pg_switch_wal())",
    );
    let mut archiver = Archiver::start(&server, &work, encrypt, &env);
    server.psql(
        "shop",
        "INSERT INTO item VALUES (96, 'after the restart', 1);",
    );
    let after = scalar(
        &server,
        "postgres",
        "SELECT pg_walfile_name(pg_switch_wal())",
    );
    wait_archived(&dest, &after, &mut archiver);

    // The proof: everything replayed in a scratch copy, rows as on the server.
    let scratch = work.path("scratch");
    let mut verify = vec![
        "backups",
        "verify",
        &dest,
        "--pitr",
        "--scratch-dir",
        &scratch,
        "--json",
    ];
    verify.extend_from_slice(decrypt);
    let verified = run_as_server_user(&server, &verify, &env).success();
    let report: serde_json::Value = serde_json::from_str(&verified.stdout).unwrap();
    assert_eq!(report["passed"], true, "{}", verified.stdout);
    assert_eq!(report["replayed"], true, "{}", verified.stdout);
    let rows = scalar(&server, "shop", "SELECT count(*) FROM item");
    assert_eq!(report["rows"].to_string(), rows, "{}", verified.stdout);
    if flavor == Flavor::Pg15 {
        assert_eq!(report["amcheck_passed"], true, "{}", verified.stdout);
    }
    // The row-count marker taken after the base backup (50 rows then) was
    // replayed to and compared table by table.
    assert_eq!(
        report["marker"]["differences"],
        serde_json::json!([]),
        "{report}"
    );
    assert_eq!(
        report["marker"]["inexact"],
        serde_json::json!([]),
        "{report}"
    );
    assert!(
        report["marker"]["tables_compared"].as_u64().unwrap() >= 1,
        "{report}"
    );
    let marker_file = Path::new(&dest)
        .join(report["base_backup"].as_str().unwrap())
        .join("rowcounts.json");
    let marker_text = std::fs::read_to_string(&marker_file).unwrap();
    let mut marker: serde_json::Value = serde_json::from_str(&marker_text).unwrap();
    let shop = marker["databases"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|d| d["name"] == "shop")
        .expect("shop counted");
    assert_eq!(
        shop["tables"],
        serde_json::json!([{"table": "public.item", "rows": 50}]),
        "{marker_text}"
    );
    shop["tables"][0]["rows"] = serde_json::json!(51);
    std::fs::write(&marker_file, marker.to_string()).unwrap();
    let mut differing = verify.clone();
    differing.retain(|arg| *arg != "--json");
    let differs = run_as_server_user(&server, &differing, &env);
    assert_eq!(differs.code, 1, "{}", differs.all());
    assert!(
        differs
            .stdout
            .contains("rows differ at the row-count marker")
            && differs
                .stdout
                .contains("shop: public.item has 50 rows, the marker 51"),
        "{}",
        differs.stdout
    );
    std::fs::write(&marker_file, &marker_text).unwrap();
    let verified = run_as_server_user(&server, &verify, &env).success();
    let listed = pgharbor(&["backups", "list", &dest]).success();
    assert!(listed.stdout.contains("verified"), "{}", verified.stdout);
    let status = pgharbor(&["status", &server.url("postgres"), "--backups", &dest]);
    assert!(
        status.stdout.contains("WAL archive:") && status.stdout.contains(&after),
        "{}",
        status.all()
    );
    // The archive's lag, as the archiver measured it at its last look.
    assert!(
        status.stdout.contains("WAL lag:") && status.stdout.contains("not archived, the oldest"),
        "{}",
        status.all()
    );

    // A deleted WAL segment is a gap, and verify names it.
    let wal = Path::new(&dest).join("wal");
    for entry in std::fs::read_dir(&wal).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&while_down)
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    verify.retain(|arg| *arg != "--json");
    let gap = run_as_server_user(&server, &verify, &env);
    assert_eq!(gap.code, 1, "{}", gap.all());
    assert!(
        gap.stdout
            .contains(&format!("WAL segment {while_down} is missing")),
        "{}",
        gap.stdout
    );
    // A restore to the latest state through the gap would stop before it
    // and pass for complete: refused, naming it.
    let through_gap = work.path("through-gap");
    let mut latest = vec!["restore", &dest, "--pgdata", &through_gap, "--latest"];
    latest.extend_from_slice(decrypt);
    let through = run_as_server_user(&server, &latest, &env);
    assert_ne!(through.code, 0, "{}", through.all());
    assert!(
        through.stderr.contains("has a gap") && through.stderr.contains(&while_down),
        "{}",
        through.stderr
    );
    // A WAL file that cannot be fetched intact stops recovery (an exit
    // status above 125) instead of ending it as the archive's end would.
    let stored = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(&after) && !name.ends_with(".json")
        })
        .expect("the stored WAL file");
    let intact = std::fs::read(&stored).unwrap();
    let mut damaged = intact.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    std::fs::write(&stored, &damaged).unwrap();
    let fetched_to = work.path("fetched-wal");
    let mut fetch = vec!["restore-wal", &dest, &after, &fetched_to];
    fetch.extend_from_slice(decrypt);
    let fetched = run_as_server_user(&server, &fetch, &env);
    assert_eq!(fetched.code, 255, "{}", fetched.all());
    assert!(
        fetched.stderr.contains("recovery stops here"),
        "{}",
        fetched.stderr
    );
    assert!(
        !Path::new(&fetched_to).exists(),
        "a damaged file was put in place"
    );
    std::fs::write(&stored, &intact).unwrap();

    // Retention: a new base backup, the old one pruned with the WAL only it
    // needed (the gap with it); what is kept restores, verified again.
    let mut second = base_args.clone();
    second.push("--json");
    let second = run_as_server_user(&server, &second, &env).success();
    let second: serde_json::Value = serde_json::from_str(&second.stdout).unwrap();
    let start_wal = second["manifest"]["base"]["start_wal"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_id = report["base_backup"].as_str().unwrap().to_owned();
    server.psql(
        "shop",
        "INSERT INTO item VALUES (97, 'after the second base', 1);",
    );
    let newest = scalar(
        &server,
        "postgres",
        "SELECT pg_walfile_name(pg_switch_wal())",
    );
    wait_archived(&dest, &newest, &mut archiver);
    let pruned = pgharbor(&["backups", "prune", &dest, "--keep-last", "1", "--json"]).success();
    let pruned: serde_json::Value = serde_json::from_str(&pruned.stdout).unwrap();
    assert_eq!(pruned["removed"], serde_json::json!([first_id]), "{pruned}");
    assert_eq!(pruned["wal"]["kept_from"], start_wal.as_str(), "{pruned}");
    assert!(
        !pruned["wal"]["removed"].as_array().unwrap().is_empty(),
        "{pruned}"
    );
    let mut left: Vec<String> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .collect();
    left.sort();
    assert!(
        left.iter().all(|n| *n >= start_wal),
        "{left:?} before {start_wal}"
    );
    assert!(left.contains(&newest), "{left:?}");
    let verified = run_as_server_user(&server, &verify, &env).success();
    assert!(verified.stdout.contains("verified"), "{}", verified.stdout);

    let stopped = archiver.stop();
    assert_eq!(stopped.code, 0, "{}", stopped.all());
    assert!(
        stopped.stderr.contains("stopped after archiving"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn pg16_restore_to_a_time_and_to_the_end_kill_9_leaves_no_gap_verify_names_a_deleted_segment() {
    restores_exactly_the_state_at_a_time(Flavor::Pg16Vector, false);
}

#[test]
fn pg15_encrypted_archive_restores_to_a_time_and_to_the_end_and_verifies_with_amcheck() {
    restores_exactly_the_state_at_a_time(Flavor::Pg15, true);
}

#[test]
fn restore_targets_and_directories_that_cannot_work_are_refused_naming_why() {
    let scratch = tempfile::tempdir().unwrap();
    std::fs::create_dir(scratch.path().join("dest")).unwrap();
    let dest = scratch.path().join("dest").display().to_string();
    let data = scratch.path().join("data").display().to_string();
    let run = pgharbor(&[
        "restore",
        &dest,
        "--pgdata",
        &data,
        "--time",
        "2026-12-06 10:42:17",
    ]);
    run.fails_with(2, &["has no UTC offset"]);
    let run = pgharbor(&["restore", &dest, "--pgdata", &data, "--lsn", "12345"]);
    run.fails_with(2, &["not a WAL position"]);
    let run = pgharbor(&["restore", &dest, "--pgdata", &data]);
    run.fails_with(2, &["--time, --lsn, --xid, --name or --latest"]);
    let run = pgharbor(&["restore", &dest, "--pgdata", &data, "--latest"]);
    run.fails_with(1, &["no complete base backup at", "pgharbor base-backup"]);
    let run = pgharbor(&["restore-wal", &dest, "000000010000000000000001", &data]);
    run.fails_with(1, &["000000010000000000000001 is not in the archive"]);
}

/// Waits until `pgharbor restore-wal` fetches WAL file `name` from `dest`
/// (an object store, where no file can be looked at directly).
fn wait_fetchable(
    cluster: &Cluster,
    work: &Workdir,
    (dest, options): (&str, &[&str]),
    name: &str,
    env: &[(&str, &str)],
    archiver: &mut Archiver,
) {
    let target = work.path("fetched");
    let mut args = vec!["restore-wal", dest, name, &target];
    args.extend_from_slice(options);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let run = run_as_server_user(cluster, &args, env);
        if run.code == 0 {
            assert_eq!(
                std::fs::metadata(&target).unwrap().len(),
                16 << 20,
                "{name}"
            );
            return;
        }
        assert!(
            run.stderr.contains("is not in the archive"),
            "{}",
            run.all()
        );
        let child = archiver.child.as_mut().expect("running");
        if let Some(status) = child.try_wait().expect("archiver status") {
            let run = Run::finished(archiver.child.take().unwrap());
            panic!("the archiver stopped ({status}):\n{}", run.all());
        }
        assert!(
            Instant::now() < deadline,
            "{name} was never archived at {dest}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn s3_and_azure_archives_restore_to_the_end() {
    let s3 = S3Server::start();
    s3.create_bucket("pitr");
    let az = AzuriteServer::start();
    az.create_container("pitr");
    let server = Cluster::start(Flavor::Pg16Vector);
    server.create_database("shop");
    server.psql(
        "shop",
        "CREATE TABLE item (id int PRIMARY KEY, label text, qty int);",
    );
    let work = Workdir::new();
    let env = [
        ("AWS_ACCESS_KEY_ID", s3.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret_access_key()),
        ("AWS_REGION", s3.region()),
        ("AZURE_STORAGE_ACCOUNT", az.account()),
        ("AZURE_STORAGE_KEY", az.key()),
    ];
    let (s3_endpoint, az_endpoint) = (s3.endpoint(), az.endpoint());
    let stores: [(&str, &[&str], &str); 2] = [
        ("s3://pitr/db", &["--s3-endpoint", &s3_endpoint], "s3"),
        ("az://pitr/db", &["--azure-endpoint", &az_endpoint], "az"),
    ];
    let url = server.url("postgres");
    let mut archivers = Vec::new();
    for (dest, options, name) in stores {
        let spool = work.path(&format!("spool-{name}"));
        let mut extra = vec!["--slot", name];
        extra.extend_from_slice(options);
        archivers.push(Archiver::start_to(&server, dest, &spool, &extra, &env));
        let mut base = vec!["base-backup", &url, "--to", dest];
        base.extend_from_slice(options);
        run_as_server_user(&server, &base, &env).success();
    }
    server.psql(
        "shop",
        "INSERT INTO item SELECT g, 'row ' || g, g FROM generate_series(1, 300) g;",
    );
    let expected = query(&server, "shop", ITEMS);
    let last = scalar(
        &server,
        "postgres",
        "SELECT pg_walfile_name(pg_switch_wal())",
    );
    for ((dest, options, name), archiver) in stores.into_iter().zip(archivers.iter_mut()) {
        wait_fetchable(&server, &work, (dest, options), &last, &env, archiver);
        let port = free_port().to_string();
        let data_dir = work.path(&format!("restored-{name}"));
        let mut args = vec![
            "restore", dest, "--pgdata", &data_dir, "--latest", "--port", &port, "--start",
        ];
        args.extend_from_slice(options);
        let _restored = Restored {
            data_dir: data_dir.clone(),
            pg_ctl: server.bin("pg_ctl"),
        };
        run_as_server_user(&server, &args, &env).success();
        assert_eq!(
            rows_at(&server, port.parse().unwrap(), ITEMS),
            expected,
            "restored from {dest}"
        );
        let auto_conf =
            std::fs::read_to_string(Path::new(&data_dir).join("postgresql.auto.conf")).unwrap();
        assert!(!auto_conf.contains(s3.secret_access_key()), "{auto_conf}");
        assert!(!auto_conf.contains(az.key()), "{auto_conf}");
    }
    for archiver in archivers {
        let stopped = archiver.stop();
        assert_eq!(stopped.code, 0, "{}", stopped.all());
    }
}

/// `GET /metrics` from the archiver at `port`, once it has looked at the slot.
fn scrape_metrics(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = scrape_once(port);
        if text.contains("pgharbor_wal_archive_slot_retained_bytes ") {
            return text;
        }
        assert!(Instant::now() < deadline, "no look at the slot in:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /metrics` from the archiver at `port`, once it listens.
fn scrape_once(port: u16) -> String {
    use std::io::{Read as _, Write as _};
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).unwrap();
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the archiver never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `archiver`'s `pg_receivewal` streams over the slot `pgharbor`.
fn wait_streaming(server: &Cluster, archiver: &mut Archiver) {
    let active =
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgharbor' AND active";
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(server, "postgres", active) != "1" {
        if Instant::now() > deadline {
            let child = archiver.child.take().expect("running");
            terminate(&child);
            panic!(
                "pg_receivewal never streamed:\n{}",
                Run::finished(child).all()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// WAL the slot makes the server keep, in segments written while no archiver ran.
fn hold_back_segments(server: &Cluster, segments: usize) {
    for n in 0..segments {
        server.psql(
            "shop",
            &format!("INSERT INTO item VALUES ({n}, 'held back', {n});"),
        );
        server.psql("postgres", "SELECT pg_switch_wal();");
    }
}

#[test]
fn pg15_the_guard_alerts_over_its_threshold_and_drops_the_slot_only_when_told() {
    let server = Cluster::start(Flavor::Pg15);
    server.create_database("shop");
    server.psql("shop", "CREATE TABLE item (id int, label text, qty int);");
    let work = Workdir::new();
    let retained = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) > 32 * 1024 * 1024 \
                    FROM pg_replication_slots WHERE slot_name = 'pgharbor'";
    // Started once (the slot is made), stopped: the server keeps the WAL for it.
    let mut first = Archiver::start(&server, &work, &[], &[]);
    wait_streaming(&server, &mut first);
    first.stop().success();
    hold_back_segments(&server, 3);
    assert_eq!(scalar(&server, "postgres", retained), "t");

    // Only an alert: logged and counted, the slot kept (and caught up).
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut alerting = Archiver::start(
        &server,
        &work,
        &["--alert-slot-wal", "16MB", "--listen", &listen],
        &[],
    );
    let metrics = scrape_metrics(port);
    wait_streaming(&server, &mut alerting);
    let stopped = alerting.stop();
    assert!(
        stopped.stderr.contains("over the alert threshold"),
        "{}",
        stopped.stderr
    );
    assert!(
        metrics.contains("pgharbor_wal_archive_guard_alerts_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pgharbor_wal_archive_slot_retained_bytes "),
        "{metrics}"
    );
    assert!(
        metrics.contains("pgharbor_wal_archive_slot_drops_total 0"),
        "{metrics}"
    );
    assert_eq!(
        scalar(
            &server,
            "postgres",
            "SELECT count(*) FROM pg_replication_slots"
        ),
        "1"
    );

    // Told to drop over 32MB: the slot is dropped and made anew, the server
    // no longer keeps that WAL, and archiving goes on.
    hold_back_segments(&server, 3);
    assert_eq!(scalar(&server, "postgres", retained), "t");
    let mut dropping = Archiver::start(&server, &work, &["--drop-slot-over", "32MB"], &[]);
    wait_streaming(&server, &mut dropping);
    let next = scalar(
        &server,
        "postgres",
        "SELECT pg_walfile_name(pg_switch_wal())",
    );
    let _ = next;
    server.psql(
        "shop",
        "INSERT INTO item VALUES (100, 'after the drop', 1);",
    );
    let after = scalar(
        &server,
        "postgres",
        "SELECT pg_walfile_name(pg_switch_wal())",
    );
    wait_archived(&work.path("dest"), &after, &mut dropping);
    let stopped = dropping.stop();
    assert!(
        stopped
            .stderr
            .contains("was dropped: the archive has a gap"),
        "{}",
        stopped.stderr
    );
    assert_eq!(scalar(&server, "postgres", retained), "f");
}

/// `pgharbor check URL --archive DEST ARGS --json`, parsed.
fn check_archive(server: &Cluster, dest: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let url = server.url("postgres");
    let mut args = vec!["check", &url, "--archive", dest, "--json"];
    args.extend_from_slice(extra);
    let run = pgharbor(&args);
    let report = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("check --json printed no JSON ({e}):\n{}", run.all()));
    (run.code, report)
}

/// The probe named `name` of a `check --json` report.
fn probe<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe"] == name)
        .unwrap_or_else(|| panic!("no probe {name} in {report}"))
}

/// A transaction inserting `id` into item, and its id (`txid_current()`).
fn insert_in_transaction(server: &Cluster, id: u32) -> String {
    scalar(
        server,
        "shop",
        &format!(
            "WITH ins AS (INSERT INTO item VALUES ({id}, 'xid', {id}) RETURNING 1) \
             SELECT txid_current() FROM ins"
        ),
    )
}

#[test]
fn pg16_check_reports_the_archive_a_lost_slot_stops_the_archiver_xid_picks_its_base_backup() {
    let server = Cluster::start(Flavor::Pg16Vector);
    server.create_database("shop");
    server.psql(
        "shop",
        "CREATE TABLE item (id int PRIMARY KEY, label text, qty int);",
    );
    let work = Workdir::new();
    let dest = work.path("dest");
    let url = server.url("postgres");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut archiver = Archiver::start(&server, &work, &["--listen", &listen], &[]);
    wait_streaming(&server, &mut archiver);
    run_as_server_user(&server, &["base-backup", &url, "--to", &dest], &[]).success();
    // A transaction committed between two base backups: --xid restores it
    // from the first (the second ended after it), which the newest cannot.
    let xid = insert_in_transaction(&server, 1);
    let with_xid = query(&server, "shop", ITEMS);
    run_as_server_user(&server, &["base-backup", &url, "--to", &dest], &[]).success();
    server.psql("shop", "INSERT INTO item VALUES (2, 'after', 2);");
    let last = scalar(
        &server,
        "postgres",
        "SELECT pg_walfile_name(pg_switch_wal())",
    );
    wait_archived(&dest, &last, &mut archiver);
    let (_at_xid, xid_port, run) = restore(&server, &work, "at-xid", &["--xid", &xid], &[], &[]);
    let listed = pgharbor(&["backups", "list", &dest, "--json"]).success();
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let oldest_base = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["id"].as_str())
        .min()
        .unwrap()
        .to_owned();
    assert!(
        run.stdout
            .contains(&format!("restored base backup {oldest_base}")),
        "{}",
        run.stdout
    );
    assert_eq!(
        rows_at(&server, xid_port, ITEMS),
        with_xid,
        "restored to {xid}"
    );

    // Healthy: every probe passes, the lag measured in bytes and seconds.
    std::thread::sleep(Duration::from_millis(200));
    let (code, report) = check_archive(&server, &dest, &[]);
    assert_eq!(code, 0, "{report}");
    for name in ["archive_slot", "archive_lag", "archived_age", "archiver"] {
        assert_eq!(probe(&report, name)["ok"], true, "{report}");
    }
    assert!(
        probe(&report, "archive_lag")["detail"]
            .as_str()
            .unwrap()
            .contains("the oldest written"),
        "{report}"
    );
    // Written and not archived (the segment is not complete): over a
    // 1-byte limit, check exits 1 naming the probe.
    server.psql("shop", "INSERT INTO item VALUES (3, 'unarchived', 3);");
    let (code, report) = check_archive(&server, &dest, &["--max-archive-lag", "1"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(probe(&report, "archive_lag")["ok"], false, "{report}");
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("archive_lag: the archive lacks"),
        "{report}"
    );
    let metrics = scrape_metrics(port);
    assert!(
        metrics.contains("pgharbor_wal_archive_lag_seconds ")
            && metrics.contains("pgharbor_wal_archive_slot_lost 0"),
        "{metrics}"
    );

    // Retention per kind: logical backups at the same destination neither
    // push out the base backups nor count against them.
    for _ in 0..2 {
        run_as_server_user(
            &server,
            &["backup", &server.url("shop"), "--to", &dest],
            &[],
        )
        .success();
    }
    let pruned = pgharbor(&[
        "backups",
        "prune",
        &dest,
        "--keep-last",
        "1",
        "--dry-run",
        "--json",
    ])
    .success();
    let pruned: serde_json::Value = serde_json::from_str(&pruned.stdout).unwrap();
    let kept: Vec<&str> = pruned["kept"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["id"].as_str())
        .collect();
    assert_eq!(kept.len(), 2, "the newest of each kind: {pruned}");
    assert_eq!(pruned["removed"].as_array().unwrap().len(), 2, "{pruned}");
    let pruned = pgharbor(&[
        "backups",
        "prune",
        &dest,
        "--keep-last",
        "1",
        "--base-keep-last",
        "2",
        "--json",
    ])
    .success();
    let pruned: serde_json::Value = serde_json::from_str(&pruned.stdout).unwrap();
    assert_eq!(pruned["removed"].as_array().unwrap().len(), 1, "{pruned}");
    assert!(
        !pruned["removed"].to_string().contains(&oldest_base),
        "a base backup kept by --base-keep-last 2 was pruned: {pruned}"
    );

    // The slot lost: the archiver stopped, WAL written past
    // max_slot_wal_keep_size, checkpoints remove it.
    archiver.stop().success();
    server.psql(
        "postgres",
        "ALTER SYSTEM SET max_slot_wal_keep_size = '16MB'; SELECT pg_reload_conf();",
    );
    let lost = "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'pgharbor'";
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut n = 100;
    while scalar(&server, "postgres", lost) != "lost" {
        assert!(Instant::now() < deadline, "the slot was never lost");
        n += 1;
        server.psql(
            "shop",
            &format!("INSERT INTO item VALUES ({n}, 'fill', {n});"),
        );
        server.psql("postgres", "SELECT pg_switch_wal(); CHECKPOINT;");
    }
    let stopped = Archiver::start(&server, &work, &[], &[]).stop_when_done();
    assert_eq!(stopped.code, 1, "{}", stopped.all());
    assert!(
        stopped
            .stderr
            .contains("replication slot \"pgharbor\" is lost")
            && stopped.stderr.contains("--recreate-lost-slot")
            && stopped.stderr.contains("new base backup"),
        "{}",
        stopped.stderr
    );
    let (code, report) = check_archive(&server, &dest, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(
        probe(&report, "archive_slot")["detail"]
            .as_str()
            .unwrap()
            .contains("is lost"),
        "{report}"
    );
    let status = pgharbor(&["status", &url, "--backups", &dest]);
    assert!(
        status.stdout.contains("replication slot pgharbor is lost")
            && status.stdout.contains("stopped, its slot lost"),
        "{}",
        status.all()
    );
    // Told to: the slot is re-created, archiving goes on (with the gap said).
    let mut recreated = Archiver::start(&server, &work, &["--recreate-lost-slot"], &[]);
    wait_streaming(&server, &mut recreated);
    server.psql("shop", "INSERT INTO item VALUES (4, 'after the loss', 4);");
    let after = scalar(
        &server,
        "postgres",
        "SELECT pg_walfile_name(pg_switch_wal())",
    );
    wait_archived(&dest, &after, &mut recreated);
    let stopped = recreated.stop();
    assert!(
        stopped.stderr.contains("was lost") && stopped.stderr.contains("re-created"),
        "{}",
        stopped.stderr
    );
    assert_eq!(scalar(&server, "postgres", lost), "reserved");
}

#[test]
fn pg15_a_new_timeline_is_followed_through_its_history_file_and_one_missing_is_named() {
    let server = Cluster::start(Flavor::Pg15);
    server.create_database("shop");
    server.psql(
        "shop",
        "CREATE TABLE item (id int PRIMARY KEY, label text, qty int);
         INSERT INTO item SELECT g, 'first', g FROM generate_series(1, 20) g;",
    );
    let work = Workdir::new();
    let dest = work.path("dest");
    let url = server.url("postgres");
    let mut archiver = Archiver::start(&server, &work, &[], &[]);
    // The base backup is taken by a plain REPLICATION user, as docs/pitr.md
    // sets one up: it may read no table, so its marker counts none; and
    // nothing is written after it.
    server.psql("postgres", "CREATE ROLE archivist LOGIN REPLICATION");
    let archivist = url.replacen("postgres@", "archivist@", 1);
    assert_ne!(archivist, url);
    run_as_server_user(&server, &["base-backup", &archivist, "--to", &dest], &[]).success();
    let last = scalar(
        &server,
        "postgres",
        "SELECT pg_walfile_name(pg_switch_wal())",
    );
    wait_archived(&dest, &last, &mut archiver);
    archiver.stop().success();

    // The primary is gone; its copy restored from the archive (timeline 2)
    // becomes the new one and is archived into the same destination.
    let (promoted, port, _) = restore(&server, &work, "promoted", &["--latest"], &[], &[]);
    let promoted_url = format!("postgresql://postgres@127.0.0.1:{port}/postgres");
    let mut second = Archiver::start_url(
        &server,
        &promoted_url,
        &dest,
        &work.path("spool-2"),
        &["--slot", "promoted"],
    );
    let promoted_psql = |sql: &str| rows_at(&server, port, sql);
    let active =
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'promoted' AND active";
    let deadline = Instant::now() + Duration::from_secs(60);
    while promoted_psql(active) != ["1"] {
        assert!(
            Instant::now() < deadline,
            "never streamed from the promoted copy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    promoted_psql("INSERT INTO item SELECT g, 'second', g FROM generate_series(21, 30) g");
    let expected = promoted_psql(ITEMS);
    let newest = promoted_psql("SELECT pg_walfile_name(pg_switch_wal())").join("");
    assert!(newest.starts_with("00000002"), "{newest}");
    wait_archived(&dest, &newest, &mut second);
    second.stop().success();
    assert!(Path::new(&dest).join("wal/00000002.history.json").exists());
    drop(promoted);

    // Verify and a restore follow timeline 2 through its history file.
    let scratch = work.path("scratch");
    let verify = [
        "backups",
        "verify",
        &dest,
        "--pitr",
        "--scratch-dir",
        &scratch,
        "--json",
    ];
    let verified = run_as_server_user(&server, &verify, &[]).success();
    let report: serde_json::Value = serde_json::from_str(&verified.stdout).unwrap();
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["rows"], 30, "replayed into timeline 2: {report}");
    // Its marker was still reached (a WAL record was written at its
    // position) and compared, leaving out the table it could not count.
    assert_eq!(report["warnings"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["marker"]["differences"],
        serde_json::json!([]),
        "{report}"
    );
    assert_eq!(
        report["marker"]["not_counted"],
        serde_json::json!(["shop: public.item"]),
        "{report}"
    );
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("grant pg_read_all_data")),
        "{report}"
    );
    let (_again, again_port, _) = restore(&server, &work, "again", &["--latest"], &[], &[]);
    assert_eq!(rows_at(&server, again_port, ITEMS), expected);

    // Without the history file, recovery would stay on timeline 1 and end
    // early: verify and --latest name it.
    for ending in [".json", ".zst"] {
        std::fs::remove_file(Path::new(&dest).join(format!("wal/00000002.history{ending}")))
            .unwrap();
    }
    let failed = run_as_server_user(&server, &verify[..6], &[]);
    assert_eq!(failed.code, 1, "{}", failed.all());
    assert!(
        failed
            .stdout
            .contains("timeline history file 00000002.history is missing"),
        "{}",
        failed.stdout
    );
    let through = work.path("without-history");
    let refused = run_as_server_user(
        &server,
        &["restore", &dest, "--pgdata", &through, "--latest"],
        &[],
    );
    assert_ne!(refused.code, 0, "{}", refused.all());
    assert!(
        refused.stderr.contains("00000002.history is missing"),
        "{}",
        refused.stderr
    );
}
