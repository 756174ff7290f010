//! The fault matrix: commands that write, under the faults a deployment
//! meets — the target server restarted mid-run, pgharbor's connections
//! terminated, pgharbor killed with `kill -9`, the target's disk full, the
//! source changing underneath. Each cell checks the exit status, that the
//! message names what happened and what to do, that the target holds exactly
//! what the message says, and that the suggested next command ends in a
//! verified, exact result.
//!
//! Faults land deterministically, never after a guessed sleep: a row
//! trigger makes a COPY stop at a chosen row for as long as a session of
//! the test exists ([`Hold`]; dropping it lets the COPY go on); the fault
//! is injected once `pg_stat_activity` shows the COPY waiting there. A
//! command's `pg_dump` is held the same way by a table lock.

mod disk_full;
mod leftovers;
mod sources;
mod store;

use crate::harness::{
    cluster, index_definitions, pgharbor, pgharbor_started, scalar, Run, Scratch, SmallDisk,
};
use pgharbor_testkit::Cluster;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// The application name of the test's session the hold trigger waits for
/// (`pg_stat_activity` is the server's, so the hold works in any database,
/// even one the command creates).
const HOLD_NAME: &str = "pgharbor-test-hold";

/// Rows of the table split into rowid ranges (over the 200,000 that splits).
const MESSAGES: i64 = 220_000;

/// A chat app's SQLite file: `message` (split into rowid ranges with
/// `--jobs 2`) and a small `chat`.
fn chat_db(scratch: &Scratch) -> PathBuf {
    scratch.sqlite(
        "chat.db",
        &format!(
            "CREATE TABLE chat (id INTEGER PRIMARY KEY, title TEXT);
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 50)
             INSERT INTO chat SELECT i, 'chat ' || i FROM s;
             CREATE TABLE message (id INTEGER PRIMARY KEY, chat_id INTEGER REFERENCES chat(id), body TEXT);
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {MESSAGES})
             INSERT INTO message SELECT i, 1 + i % 50, 'message ' || i FROM s;"
        ),
    )
}

/// Makes every COPY into `table` (a `LIKE` pattern of `schema.name`; once
/// created, by whoever) stop at its
/// `nth` row until the test's [`Hold`] lets go: an event trigger adds a row
/// trigger waiting while the test's [`Hold`] session exists to the table
/// when it is created. The
/// rows are counted per transaction in a setting, so the hold adds no
/// relation to the target.
fn install_hold(pg: &Cluster, db: &str, table: &str, nth: i64) {
    pg.psql(
        db,
        &format!(
            "CREATE FUNCTION pgharbor_test_hold() RETURNS trigger LANGUAGE plpgsql AS $f$
             DECLARE n int := coalesce(nullif(current_setting('pgharbor_test.rows', true), ''), '0')::int + 1;
             BEGIN
               PERFORM set_config('pgharbor_test.rows', n::text, true);
               WHILE n = {nth} AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = '{HOLD_NAME}') LOOP
                 PERFORM pg_sleep(0.01);
                 PERFORM pg_stat_clear_snapshot();  -- see sessions end within this transaction
               END LOOP;
               RETURN NEW;
             END $f$;
             CREATE FUNCTION pgharbor_test_add_hold() RETURNS event_trigger LANGUAGE plpgsql AS $f$
             DECLARE r record;
             BEGIN
               FOR r IN SELECT DISTINCT objid FROM pg_event_trigger_ddl_commands()
                        WHERE object_type = 'table' AND object_identity LIKE '{table}' LOOP
                 EXECUTE format('CREATE TRIGGER pgharbor_test_hold BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION public.pgharbor_test_hold()', r.objid::regclass);
               END LOOP;
             END $f$;
             CREATE EVENT TRIGGER pgharbor_test_add_hold ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
               EXECUTE FUNCTION pgharbor_test_add_hold();"
        ),
    );
}

/// Take the hold out of the target again (the row trigger goes with its
/// function), so the next run meets the target as a user's would be.
fn remove_hold(pg: &Cluster, db: &str) {
    pg.psql(
        db,
        "DROP EVENT TRIGGER pgharbor_test_add_hold; DROP FUNCTION pgharbor_test_add_hold();
         DROP FUNCTION pgharbor_test_hold() CASCADE;",
    );
}

/// The test's session named [`HOLD_NAME`]; COPYs reaching the hold row
/// wait while it exists.
struct Hold {
    /// Kept for its drop: the runtime running the session's connection.
    _session: (tokio_postgres::Client, tokio::runtime::Runtime),
}

impl Hold {
    fn take(pg: &Cluster) -> Hold {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = runtime.block_on(async {
            let client = pg.client("postgres").await;
            client
                .batch_execute(&format!("SET application_name = '{HOLD_NAME}'"))
                .await
                .expect("take the hold");
            client
        });
        Hold {
            _session: (client, runtime),
        }
    }

    /// Wait until a COPY of pgharbor (`child`) waits for the hold.
    fn wait_for_copy(&self, pg: &Cluster, child: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let waiting = pg
                .try_psql(
                    "postgres",
                    &format!("SELECT count(*) FROM pg_stat_activity WHERE {HELD_COPY}"),
                )
                .unwrap_or_default();
            if waiting.trim() != "0" && !waiting.is_empty() {
                return;
            }
            if let Some(status) = child.try_wait().expect("poll pgharbor") {
                let mut stderr = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
                }
                panic!("pgharbor ended ({status}) before its COPY reached the hold:\n{stderr}");
            }
            assert!(Instant::now() < deadline, "no COPY reached the hold");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `pgharbor migrate DB URL --jobs 2` with `env`, started in the background.
fn migrate_started(db: &Path, url: &str, env: &[(&str, &str)]) -> Child {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pgharbor"));
    command
        .args(["migrate", db.to_str().unwrap(), url, "--jobs", "2"])
        .env_remove("DATABASE_URL")
        .env_remove("PGPASSWORD")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command.spawn().expect("start pgharbor")
}

/// Relations of `db`'s public schema and whether pgharbor's record exists.
fn target_state(pg: &Cluster, db: &str) -> (Vec<String>, bool) {
    let tables = pg.psql(
        db,
        "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class \
         WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
    );
    let record = pg.psql(
        db,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgharbor_journal'",
    );
    let tables = tables
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    (tables, record == "1")
}

/// The same command as the failed run, run again: it must end verified,
/// with exactly the source's rows.
fn run_again_verified(db: &Path, pg: &Cluster, name: &str) -> Run {
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &pg.url(name),
        "--jobs",
        "2",
    ])
    .success();
    assert!(
        run.stdout.contains("verified: every table matches"),
        "{}",
        run.all()
    );
    assert_eq!(
        scalar(
            pg,
            name,
            "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || sum(id) FROM message"
        ),
        format!("{MESSAGES} {MESSAGES} {}", MESSAGES * (MESSAGES + 1) / 2)
    );
    assert_eq!(scalar(pg, name, "SELECT count(*) FROM chat"), "50");
    assert_eq!(
        target_state(pg, name),
        (vec!["chat".into(), "message".into()], false)
    );
    run
}

/// `migrate DB URL --jobs 2` (with `env`) into a new database `name` of
/// `pg`, returned once its COPY of `message` waits at the hold.
fn held_migrate(pg: &Cluster, db: &Path, name: &str, env: &[(&str, &str)]) -> (Hold, Child) {
    pg.create_database(name);
    install_hold(pg, name, "public.message", 30_000);
    let hold = Hold::take(pg);
    let mut child = migrate_started(db, &pg.url(name), env);
    hold.wait_for_copy(pg, &mut child);
    (hold, child)
}

/// [`held_migrate`], then `kill -9` of pgharbor; the hold is gone after.
fn killed_mid_copy(pg: &Cluster, db: &Path, name: &str) {
    let (hold, mut child) = held_migrate(pg, db, name, &[]);
    child.kill().expect("kill -9");
    child.wait().expect("reap pgharbor");
    drop(hold);
    remove_hold(pg, name);
}

/// The run said it first removed `message` as a failed earlier run's table.
fn assert_removed_first(run: &Run) {
    assert!(
        run.stderr
            .contains("removing the tables a failed earlier run created: \"public\".\"message\""),
        "{}",
        run.stderr
    );
}

/// A create-schema run stopped mid-COPY of the split table by `fault`,
/// with the target back afterwards: what it created is removed, the message
/// names it, and the same command then succeeds.
fn create_schema_fault_is_cleaned_up(name: &str, fault: impl FnOnce(&Cluster), cause: &str) {
    let scratch = Scratch::new();
    let db = chat_db(&scratch);
    let pg = cluster();
    let (hold, child) = held_migrate(&pg, &db, name, &[]);
    fault(&pg);
    let run = Run::finished(child).fails_with(
        1,
        &[
            cause,
            "Nothing was kept",
            "\"public\".\"message\"",
            "The same command can be run again",
        ],
    );
    assert!(
        !run.stderr.contains("no table of this run"),
        "{}",
        run.stderr
    );
    let (tables, record) = target_state(&pg, name);
    assert!(tables.is_empty(), "left behind: {tables:?}\n{}", run.stderr);
    assert!(!record, "the record of created tables was left");
    drop(hold);
    remove_hold(&pg, name);
    run_again_verified(&db, &pg, name);
}

#[test]
fn create_schema_target_restarted_mid_load_removes_what_it_created_and_runs_again() {
    create_schema_fault_is_cleaned_up("restarted", |pg| pg.restart(), "loading table");
}

#[test]
fn create_schema_connections_terminated_mid_load_removes_what_it_created_and_runs_again() {
    create_schema_fault_is_cleaned_up(
        "terminated",
        |pg| {
            pg.psql(
                "postgres",
                &format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {PGHARBOR_SESSIONS}"
                ),
            );
        },
        "loading table \"public\".\"message\"",
    );
}

/// The target stays down longer than the clean-up waits: the message names
/// exactly the tables left (the target then holds those and no other), and
/// the same command, once the server is back, removes them and succeeds.
#[test]
fn create_schema_target_down_names_what_is_left_and_the_next_run_removes_it() {
    let scratch = Scratch::new();
    let db = chat_db(&scratch);
    let pg = cluster();
    let (hold, child) = held_migrate(&pg, &db, "down", &[("PGHARBOR_RECONNECT_SECONDS", "2")]);
    pg.stop();
    let run = Run::finished(child).fails_with(
        1,
        &[
            "Removing what this run created failed",
            "\"public\".\"message\"",
            "pgharbor_journal",
            "Run the same command again once the server is back",
        ],
    );
    assert!(!run.stderr.contains("Nothing was kept"), "{}", run.stderr);
    pg.restart();
    drop(hold);
    let (tables, record) = target_state(&pg, "down");
    assert!(record, "the record of created tables is gone");
    for table in ["chat", "message"] {
        assert_eq!(
            tables.iter().any(|t| t == table),
            run.stderr.contains(&format!("\"public\".\"{table}\"")),
            "{table}: the target holds {tables:?}, the message says:\n{}",
            run.stderr
        );
    }
    remove_hold(&pg, "down");
    assert_removed_first(&run_again_verified(&db, &pg, "down"));
}

/// `kill -9` leaves the split table and the record of it; the same command
/// removes them first and succeeds.
#[test]
fn create_schema_killed_mid_load_is_cleaned_up_by_the_next_run() {
    let scratch = Scratch::new();
    let db = chat_db(&scratch);
    let pg = cluster();
    killed_mid_copy(&pg, &db, "killed");
    let (tables, record) = target_state(&pg, "killed");
    assert!(tables.contains(&"message".to_string()), "{tables:?}");
    assert!(record, "the record of created tables is gone");
    assert_removed_first(&run_again_verified(&db, &pg, "killed"));
}

/// The record of a killed run as an older pgharbor kept it (schema
/// `pgharbor_created`, its exact DDL) is upgraded by the next run, which
/// removes the recorded table first and leaves no older schema behind.
#[test]
fn create_schema_killed_under_an_older_pgharbor_is_cleaned_up_by_the_next_run() {
    let scratch = Scratch::new();
    let db = chat_db(&scratch);
    let pg = cluster();
    killed_mid_copy(&pg, &db, "older");
    pg.psql(
        "older",
        "BEGIN;
         CREATE SCHEMA pgharbor_created;
         CREATE TABLE pgharbor_created.relation (oid oid PRIMARY KEY, name text NOT NULL, run integer);
         INSERT INTO pgharbor_created.relation SELECT oid, name, run FROM pgharbor_journal.created_table;
         DROP SCHEMA pgharbor_journal CASCADE;
         COMMIT;",
    );
    let recorded = scalar(
        &pg,
        "older",
        "SELECT string_agg(name, ',') FROM pgharbor_created.relation",
    );
    assert!(recorded.contains("\"public\".\"message\""), "{recorded}");
    assert_removed_first(&run_again_verified(&db, &pg, "older"));
    assert_eq!(
        scalar(
            &pg,
            "older",
            "SELECT to_regnamespace('pgharbor_created') IS NULL"
        ),
        "t"
    );
}

/// The record only ever names tables this run created: a table of the same
/// name made by someone else after a failed run is left alone.
#[test]
fn a_table_recreated_by_someone_else_is_not_removed_by_the_next_run() {
    let scratch = Scratch::new();
    let db = chat_db(&scratch);
    let pg = cluster();
    killed_mid_copy(&pg, &db, "other");
    pg.psql(
        "other",
        "DROP TABLE message; CREATE TABLE message (id int, note text); INSERT INTO message VALUES (1, 'mine')",
    );
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &pg.url("other"),
        "--jobs",
        "2",
    ]);
    let run = run.fails_with(1, &["the target already has 1 of the tables", "message"]);
    let removal = run
        .stderr
        .lines()
        .find(|l| l.contains("removing the tables"))
        .unwrap_or_default();
    assert!(!removal.contains("message"), "{}", run.stderr);
    assert_eq!(scalar(&pg, "other", "SELECT note FROM message"), "mine");
}

/// Processes whose parent is `parent` and whose command name is `name`.
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …"; comm may hold spaces, so split after ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if comm == name && ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

/// `pgharbor ARGS` with the PG16 client programs, started in the
/// background with its output collected.
fn pg16_started(args: &[&str]) -> Child {
    pg16_started_with(args, &[])
}

/// [`pg16_started`] with the environment variables `env` too.
fn pg16_started_with(args: &[&str], env: &[(&str, &str)]) -> Child {
    let bin = pgharbor_testkit::Flavor::Pg16Vector
        .bin_dir()
        .expect("PG16 binaries");
    std::process::Command::new(env!("CARGO_BIN_EXE_pgharbor"))
        .args(args)
        .env("PGHARBOR_PG_BIN", bin)
        .envs(env.iter().copied())
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pgharbor")
}

/// Whether `pid` still runs (a zombie waiting for its reaper does not).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|s| s != "Z"))
        })
        .unwrap_or(false)
}

/// Start `args` with the PG16 client programs (output collected), wait
/// until its `program` child waits for the lock the test holds, and return
/// pgharbor and that child's pid.
fn started_with_child_waiting(pg: &Cluster, args: &[&str], program: &str) -> (Child, u32) {
    let mut child = pg16_started(args);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = pg
            .try_psql(
                "postgres",
                &format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{program}' AND wait_event_type = 'Lock'"),
            )
            .unwrap_or_default();
        if waiting == "1" {
            break;
        }
        if let Some(status) = child.try_wait().expect("poll pgharbor") {
            panic!("pgharbor ended ({status}) before {program} waited for the lock");
        }
        assert!(
            Instant::now() < deadline,
            "{program} never waited for the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pids = children_named(child.id(), program);
    assert_eq!(pids.len(), 1, "{program} children of pgharbor: {pids:?}");
    (child, pids[0])
}

/// After a `kill -9` of pgharbor, `program` (pid `pid`) must stop too.
fn assert_child_ends(program: &str, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while is_running(pid) {
        assert!(
            Instant::now() < deadline,
            "{program} (pid {pid}) still runs, orphaned, after pgharbor was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A session holding `LOCK TABLE table IN ACCESS EXCLUSIVE MODE` in `db`
/// (pg_dump waits for it before reading anything).
fn lock_table(
    pg: &Cluster,
    db: &str,
    table: &str,
) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = runtime.block_on(async {
        let client = pg.client(db).await;
        client
            .batch_execute(&format!(
                "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
            ))
            .await
            .expect("lock");
        client
    });
    (runtime, client)
}

#[test]
fn a_killed_backup_takes_its_pg_dump_with_it() {
    let pg = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    pg.create_database("shop");
    pg.psql(
        "shop",
        "CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 100)",
    );
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let _lock = lock_table(&pg, "shop", "item");
    let (mut child, pg_dump) = started_with_child_waiting(
        &pg,
        &["backup", &pg.url("shop"), "--to", dest.to_str().unwrap()],
        "pg_dump",
    );
    child.kill().expect("kill -9");
    child.wait().expect("reap pgharbor");
    assert_child_ends("pg_dump", pg_dump);
}

#[test]
fn a_killed_database_copy_takes_its_pg_dump_with_it() {
    let source = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    let target = cluster();
    source.create_database("app");
    source.psql(
        "app",
        "CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 100)",
    );
    let _lock = lock_table(&source, "app", "item");
    let (mut child, pg_dump) = started_with_child_waiting(
        &source,
        &["migrate", &source.url("app"), &target.url("copy")],
        "pg_dump",
    );
    child.kill().expect("kill -9");
    child.wait().expect("reap pgharbor");
    assert_child_ends("pg_dump", pg_dump);
}

/// pgharbor as PID 1 of a container (here a new PID namespace): a SIGTERM
/// (`docker stop`) reaches the work, which stops, and pgharbor exits with
/// 128 + 15 instead of ignoring the signal as PID 1 does by default.
#[test]
fn as_pid_1_pgharbor_passes_sigterm_on_and_exits_with_the_status() {
    let pg = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    pg.create_database("shop");
    pg.psql("shop", "CREATE TABLE item (id int PRIMARY KEY)");
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let _lock = lock_table(&pg, "shop", "item");
    let bin = pgharbor_testkit::Flavor::Pg16Vector
        .bin_dir()
        .expect("PG16 binaries");
    let mut unshare = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            env!("CARGO_BIN_EXE_pgharbor"),
        ])
        .args(["backup", &pg.url("shop"), "--to", dest.to_str().unwrap()])
        .env("PGHARBOR_PG_BIN", bin)
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start unshare (util-linux)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while pg
        .try_psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'",
        )
        .unwrap_or_default()
        != "1"
    {
        assert!(Instant::now() < deadline, "pg_dump never waited for the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let init = children_named(unshare.id(), "pgharbor");
    assert_eq!(init.len(), 1, "pgharbor as PID 1: {init:?}");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &init[0].to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = unshare.try_wait().expect("poll unshare") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = unshare.kill();
            panic!("pgharbor as PID 1 ignored SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(128 + 15));
}

/// The target's disk fills mid-load: the message says so and what to do,
/// the tables of the run are removed (the space is free again), and after
/// growing the volume the same command succeeds.
#[test]
fn create_schema_disk_full_removes_what_it_created_and_runs_again_after_growing() {
    let scratch = Scratch::new();
    let db = chat_db(&scratch);
    let pg = cluster();
    let disk = SmallDisk::mount(
        std::env::temp_dir().join(format!("pgharbor-faults-{}", pg.port())),
        "3M",
    );
    pg.create_database("fulldisk");
    pg.psql(
        "postgres",
        &format!(
            "CREATE TABLESPACE small LOCATION '{}'; ALTER DATABASE fulldisk SET default_tablespace = small",
            disk.path.display()
        ),
    );
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &pg.url("fulldisk"),
        "--jobs",
        "2",
    ])
    .fails_with(
        1,
        &[
            "No space left on device",
            "free space on the target server (or grow its volume) and run again",
            "Nothing was kept",
            "The same command can be run again",
        ],
    );
    let (tables, record) = target_state(&pg, "fulldisk");
    assert!(tables.is_empty(), "left behind: {tables:?}\n{}", run.stderr);
    assert!(!record, "the record of created tables was left");
    disk.grow("64M");
    run_again_verified(&db, &pg, "fulldisk");
    drop(pg);
}

/// The application writes to the SQLite file (WAL mode) while the run
/// copies it: the run copies and verifies the file as it was when it
/// started, says the source changed and what to do, and running again as
/// told copies the later writes too.
#[test]
fn sqlite_source_written_during_the_run_is_named_and_a_second_run_takes_the_writes() {
    let scratch = Scratch::new();
    let db = chat_db(&scratch);
    let app = rusqlite::Connection::open(&db).expect("open as the application");
    app.execute_batch("PRAGMA journal_mode = WAL")
        .expect("WAL mode");
    let pg = cluster();
    let (hold, child) = held_migrate(&pg, &db, "live", &[]);
    app.execute_batch(&format!(
        "INSERT INTO message SELECT id + {MESSAGES}, chat_id, body FROM message WHERE id <= 10"
    ))
    .expect("the application writes");
    drop(hold);
    let run = Run::finished(child).success();
    assert!(
        run.stdout
            .contains("the source changed while it was copied")
            && run.stdout.contains("run again with --drop-existing"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("verified: every table matches"),
        "{}",
        run.stdout
    );
    assert_eq!(
        scalar(&pg, "live", "SELECT count(*) FROM message"),
        MESSAGES.to_string()
    );
    remove_hold(&pg, "live");
    let again = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &pg.url("live"),
        "--drop-existing",
    ])
    .success();
    assert!(
        !again.stdout.contains("the source changed"),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("verified: every table matches"),
        "{}",
        again.stdout
    );
    assert_eq!(
        scalar(&pg, "live", "SELECT count(*) FROM message"),
        (MESSAGES + 10).to_string()
    );
}

/// The faults every resumable command meets, injected while its COPY waits
/// at the hold: the server restarted, pgharbor's connections terminated,
/// pgharbor killed with `kill -9`.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Restart,
    Terminate,
    Kill,
}

const FAULTS: [Fault; 3] = [Fault::Restart, Fault::Terminate, Fault::Kill];

/// The COPY waiting at the hold, in `pg_stat_activity`.
const HELD_COPY: &str = "wait_event = 'PgSleep' AND query LIKE 'COPY%'";

/// Every session of pgharbor (all but the test's own), in
/// `pg_stat_activity`: terminating them all leaves no COPY of another
/// worker to reach the hold later.
const PGHARBOR_SESSIONS: &str = "backend_type = 'client backend' \
     AND application_name NOT LIKE 'pgharbor-test%' AND pid <> pg_backend_pid()";

impl Fault {
    /// Inject the fault into `pg` (or pgharbor, `child`) while its COPY
    /// waits at the hold; the run's output when pgharbor was left to report it.
    fn inject(self, pg: &Cluster, child: Child) -> Option<Run> {
        self.inject_into(pg, child, PGHARBOR_SESSIONS)
    }

    /// [`Fault::inject`], terminating the backends `whose` selects in
    /// `pg_stat_activity`.
    fn inject_into(self, pg: &Cluster, mut child: Child, whose: &str) -> Option<Run> {
        match self {
            Fault::Restart => pg.restart(),
            Fault::Terminate => {
                pg.psql(
                    "postgres",
                    &format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {whose}"
                    ),
                );
            }
            Fault::Kill => {
                child.kill().expect("kill -9");
                child.wait().expect("reap pgharbor");
                return None;
            }
        }
        Some(Run::finished(child))
    }
}

/// An application's own schema for [`chat_db`], created after the hold so
/// the hold's trigger is on `message`.
const APP_SCHEMA: &str = "CREATE TABLE chat (id bigint PRIMARY KEY, title text);
     CREATE TABLE message (id bigint PRIMARY KEY, chat_id bigint REFERENCES chat(id), body text);
     CREATE INDEX message_chat_body_idx ON message (chat_id, lower(body));";

/// The journal of an interrupted `--into-existing` run is in database
/// `name`, and `--into-existing --resume` ends verified with exactly the
/// source's rows and the `indexes` the target had before the load.
fn resume_ends_verified(pg: &Cluster, db: &Path, name: &str, indexes: &[String]) {
    assert_eq!(
        scalar(
            pg,
            name,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgharbor_journal'"
        ),
        "1",
        "the journal --resume needs is missing"
    );
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &pg.url(name),
        "--into-existing",
        "--resume",
    ])
    .success();
    assert!(
        run.stdout.contains("verified: every table matches"),
        "{}",
        run.all()
    );
    assert_eq!(
        scalar(pg, name, "SELECT count(*) || ' ' || sum(id) FROM message"),
        format!("{MESSAGES} {}", MESSAGES * (MESSAGES + 1) / 2)
    );
    assert_eq!(index_definitions(pg, name), indexes);
}

/// `--into-existing` under each fault: the message says to run again with
/// `--resume` (the journal that makes it possible is in the target), and
/// `--resume` ends verified with exactly the source's rows.
#[test]
fn into_existing_faults_are_finished_by_resume() {
    let scratch = Scratch::new();
    let db = chat_db(&scratch);
    let pg = cluster();
    for (i, fault) in FAULTS.into_iter().enumerate() {
        let name = format!("app{i}");
        pg.create_database(&name);
        install_hold(&pg, &name, "public.message", 30_000);
        pg.psql(&name, APP_SCHEMA);
        let indexes = index_definitions(&pg, &name);
        let url = pg.url(&name);
        let hold = Hold::take(&pg);
        let mut child = pgharbor_started(&[
            "migrate",
            db.to_str().unwrap(),
            &url,
            "--into-existing",
            "--jobs",
            "2",
        ]);
        hold.wait_for_copy(&pg, &mut child);
        if let Some(run) = fault.inject(&pg, child) {
            run.fails_with(1, &["kept and recorded in the target", "--resume"]);
        }
        drop(hold);
        remove_hold(&pg, &name);
        resume_ends_verified(&pg, &db, &name, &indexes);
    }
}

/// PostgreSQL → PostgreSQL under each fault: the message says to run again
/// with `--resume`, and `--resume` ends with the tables equal to the source's.
#[test]
fn database_copy_faults_are_finished_by_resume() {
    let source = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    source.create_database("app");
    source.psql(
        "app",
        "CREATE TABLE item (id int PRIMARY KEY, v text);
         INSERT INTO item SELECT g, md5(g::text) FROM generate_series(1, 60000) g;
         CREATE TABLE note (id int PRIMARY KEY, item_id int REFERENCES item(id));
         INSERT INTO note SELECT g, g FROM generate_series(1, 100) g;",
    );
    let target = cluster();
    let bin = pgharbor_testkit::Flavor::Pg16Vector
        .bin_dir()
        .expect("PG16 binaries");
    for (i, fault) in FAULTS.into_iter().enumerate() {
        let name = format!("copy{i}");
        target.create_database(&name);
        install_hold(&target, &name, "public.item", 30_000);
        let hold = Hold::take(&target);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pgharbor"))
            .args([
                "migrate",
                &source.url("app"),
                &target.url(&name),
                "--jobs",
                "1",
            ])
            .env("PGHARBOR_PG_BIN", &bin)
            .env_remove("DATABASE_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start pgharbor");
        hold.wait_for_copy(&target, &mut child);
        if let Some(run) = fault.inject(&target, child) {
            run.fails_with(1, &["--resume"]);
        }
        drop(hold);
        remove_hold(&target, &name);
        let run = crate::postgres_copy::pgharbor_pg(&[
            "migrate",
            &source.url("app"),
            &target.url(&name),
            "--resume",
        ])
        .success();
        assert!(run.stdout.contains("resumed"), "{fault:?}: {}", run.stdout);
        for q in ["SELECT * FROM item", "SELECT * FROM note"] {
            assert_eq!(
                crate::postgres_copy::fingerprint(&source, "app", q),
                crate::postgres_copy::fingerprint(&target, &name, q),
                "{fault:?}: {q}"
            );
        }
    }
}

/// `backup` under each fault while its `pg_dump` waits for a lock: a
/// reported failure removed the backup's parts (nothing is listed); a
/// `kill -9` leaves a backup listed as failed, which `prune` removes; the
/// next backup is complete and restores with equal row counts.
#[test]
fn backup_faults_leave_what_the_message_says_and_the_next_backup_verifies() {
    let pg = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    pg.create_database("shop");
    pg.psql(
        "shop",
        "CREATE TABLE item (id int PRIMARY KEY, v text); INSERT INTO item SELECT g, md5(g::text) FROM generate_series(1, 1000) g",
    );
    let scratch = Scratch::new();
    for (i, fault) in FAULTS.into_iter().enumerate() {
        let dest = scratch.path(&format!("backups{i}"));
        let dest = dest.to_str().unwrap();
        let lock = lock_table(&pg, "shop", "item");
        let (child, _) =
            started_with_child_waiting(&pg, &["backup", &pg.url("shop"), "--to", dest], "pg_dump");
        let reported =
            fault.inject_into(&pg, child, "datname = 'shop' AND wait_event_type = 'Lock'");
        drop(lock);
        let listed = crate::postgres_copy::pgharbor_pg(&["backups", "list", dest, "--json"]);
        let entries: serde_json::Value = match listed.code {
            0 => serde_json::from_str(&listed.stdout).expect("json list"),
            _ => serde_json::json!([]),
        };
        let entries = entries.as_array().cloned().unwrap_or_default();
        match reported {
            Some(run) => {
                run.fails_with(1, &["pg_dump", "failed (its parts were removed)"]);
                assert!(entries.is_empty(), "{fault:?}: {entries:?}");
            }
            None => {
                assert_eq!(entries.len(), 1, "{fault:?}: {entries:?}");
                assert_eq!(entries[0]["state"], "failed", "{fault:?}: {entries:?}");
            }
        }
        crate::postgres_copy::pgharbor_pg(&["backup", &pg.url("shop"), "--to", dest]).success();
        crate::postgres_copy::pgharbor_pg(&["backups", "prune", dest, "--keep-last", "1"])
            .success();
        let listed =
            crate::postgres_copy::pgharbor_pg(&["backups", "list", dest, "--json"]).success();
        let entries: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json list");
        assert_eq!(
            entries.as_array().map(Vec::len),
            Some(1),
            "{fault:?}: {entries}"
        );
        let id = entries[0]["id"].as_str().expect("an id");
        let verified = crate::postgres_copy::pgharbor_pg(&[
            "backups",
            "verify",
            dest,
            id,
            "--restore-to",
            &pg.url("postgres"),
        ])
        .success();
        assert!(
            verified.stdout.contains("restored and row counts equal"),
            "{fault:?}: {}",
            verified.stdout
        );
        let listed =
            crate::postgres_copy::pgharbor_pg(&["backups", "list", dest, "--json"]).success();
        let entries: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json list");
        assert_eq!(
            entries.as_array().map(Vec::len),
            Some(1),
            "{fault:?}: {entries}"
        );
        assert_eq!(entries[0]["state"], "verified", "{fault:?}: {entries}");
    }
}

/// A Chroma store moved into tables (Chroma's layout), stopped mid-COPY by
/// a restarted server or by `kill -9`: the tables it created are removed
/// (restart) or left with their record (kill), and the same command then
/// ends verified.
#[test]
fn chroma_faults_leave_nothing_or_what_the_next_run_removes() {
    let scratch = Scratch::new();
    let dir = scratch.path("store");
    pgharbor_testkit::copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/chroma/1.0.20/store"),
        &dir,
    );
    let source = format!("chroma:{}", dir.display());
    let pg = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    for (i, fault) in [Fault::Restart, Fault::Kill].into_iter().enumerate() {
        let name = format!("vectors{i}");
        pg.create_database(&name);
        install_hold(&pg, &name, "public.%", 10);
        let hold = Hold::take(&pg);
        let mut child = pgharbor_started(&["migrate", &source, &pg.url(&name)]);
        hold.wait_for_copy(&pg, &mut child);
        let reported = fault.inject(&pg, child);
        drop(hold);
        let (tables, record) = target_state(&pg, &name);
        match reported {
            Some(run) => {
                run.fails_with(
                    1,
                    &["Nothing was kept", "The same command can be run again"],
                );
                assert!(tables.is_empty(), "{fault:?}: left {tables:?}");
                assert!(!record, "{fault:?}: the record was left");
            }
            None => {
                assert!(
                    !tables.is_empty() && record,
                    "{fault:?}: {tables:?} {record}"
                );
            }
        }
        remove_hold(&pg, &name);
        let run = pgharbor(&["migrate", &source, &pg.url(&name), "--json"]).success();
        let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json report");
        assert_eq!(
            report["migration"]["verified"], true,
            "{fault:?}: {}",
            run.stdout
        );
        assert!(
            !target_state(&pg, &name).1,
            "{fault:?}: the record outlived the run"
        );
    }
}

/// Puts the hold into `template0` of `pg` (a cluster of the test alone), so
/// a database a command creates from it (as `restore` does) holds its
/// COPY into `table` at row `nth`.
fn install_hold_in_template0(pg: &Cluster, table: &str, nth: i64) {
    in_template0(pg, || install_hold(pg, "template0", table, nth));
}

/// Runs `sql` in `template0` of `pg` (a cluster of the test alone), so
/// every database a command creates from it starts with what `sql` made.
fn run_in_template0(pg: &Cluster, sql: &str) {
    in_template0(pg, || {
        pg.psql("template0", sql);
    });
}

/// Runs `change` with connections to `template0` allowed.
fn in_template0(pg: &Cluster, change: impl FnOnce()) {
    pg.psql(
        "postgres",
        "UPDATE pg_database SET datallowconn = true WHERE datname = 'template0'",
    );
    change();
    pg.psql(
        "postgres",
        "UPDATE pg_database SET datallowconn = false WHERE datname = 'template0'",
    );
}

/// A backup of database `shop` of `pg` (60,000 rows of `item`) in `dest`.
fn shop_backup(pg: &Cluster, dest: &str) {
    pg.create_database("shop");
    pg.psql(
        "shop",
        "CREATE TABLE item (id int PRIMARY KEY, v text);
         INSERT INTO item SELECT g, md5(g::text) FROM generate_series(1, 60000) g;",
    );
    crate::postgres_copy::pgharbor_pg(&["backup", &pg.url("shop"), "--to", dest]).success();
}

/// `pgharbor restore DEST/latest` into database `name` of `pg` with
/// `extra` options: it must end with the row counts equal and the rows of
/// `item` those of `shop`.
fn restore_ends_equal(pg: &Cluster, dest: &str, name: &str, extra: &[&str]) {
    let latest = format!("{dest}/latest");
    let url = pg.url(name);
    let mut args = vec!["restore", &latest, &url];
    args.extend_from_slice(extra);
    let run = crate::postgres_copy::pgharbor_pg(&args).success();
    assert!(run.stdout.contains("row counts equal"), "{}", run.stdout);
    assert_eq!(
        crate::postgres_copy::fingerprint(pg, "shop", "SELECT * FROM item"),
        crate::postgres_copy::fingerprint(pg, name, "SELECT * FROM item"),
    );
}

/// `restore` into a new database, stopped while its COPY waits at the hold.
/// A restarted server or terminated sessions: the message names the cause
/// and that the database it created was dropped (it is gone), and the same
/// command ends with the backup's rows. `kill -9`: the database is left
/// with part of the rows, the same command says
/// it is not empty and to ask for --clean, and `--clean` ends with the
/// backup's rows.
#[test]
fn restore_faults_leave_what_the_message_says_and_restore_again_ends_equal() {
    let pg = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let dest = dest.to_str().unwrap();
    shop_backup(&pg, dest);
    install_hold_in_template0(&pg, "public.item", 30_000);
    let latest = format!("{dest}/latest");
    for (i, fault) in FAULTS.into_iter().enumerate() {
        let name = format!("restored{i}");
        let url = pg.url(&name);
        let hold = Hold::take(&pg);
        let mut child = pg16_started(&["restore", &latest, &url]);
        hold.wait_for_copy(&pg, &mut child);
        let reported = fault.inject(&pg, child);
        drop(hold);
        let left = scalar(
            &pg,
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
        );
        match reported {
            Some(run) => {
                run.fails_with(
                    1,
                    &[
                        "loading rows",
                        "terminating connection",
                        &format!("the database \"{name}\" it created was dropped"),
                    ],
                );
                assert_eq!(left, "0", "{fault:?}: the database was left");
                restore_ends_equal(&pg, dest, &name, &[]);
            }
            None => {
                assert_eq!(left, "1", "{fault:?}: the database is gone");
                crate::postgres_copy::pgharbor_pg(&["restore", &latest, &url]).fails_with(
                    1,
                    &[&format!("\"{name}\" exists and is not empty"), "clean"],
                );
                restore_ends_equal(&pg, dest, &name, &["--clean"]);
            }
        }
    }
}

/// The scratch databases of `backups verify --restore-to` left on `pg`.
fn verify_scratch_databases(pg: &Cluster) -> String {
    scalar(
        pg,
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgharbor\\_verify\\_%'",
    )
}

/// The state `backups list` gives the one backup at `dest`.
fn listed_state(dest: &str) -> String {
    let listed = crate::postgres_copy::pgharbor_pg(&["backups", "list", dest, "--json"]).success();
    let entries: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json list");
    entries[0]["state"].as_str().unwrap_or_default().to_string()
}

/// `backups verify --restore-to`, stopped while the COPY into its scratch
/// database waits at the hold. A restarted server or terminated sessions:
/// the message names the cause, that the scratch database was dropped (it
/// is) and that the backup was not judged (it is not listed as corrupt).
/// `kill -9`: the scratch database is left. Either way the next verify of
/// the same backup replaces it, passes, and leaves none.
#[test]
fn verify_restore_to_faults_are_finished_by_verifying_again() {
    let pg = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let dest = dest.to_str().unwrap();
    shop_backup(&pg, dest);
    install_hold_in_template0(&pg, "public.item", 30_000);
    let verify = [
        "backups",
        "verify",
        dest,
        "--restore-to",
        &pg.url("postgres"),
    ];
    for fault in FAULTS {
        let state_before = listed_state(dest);
        let hold = Hold::take(&pg);
        let mut child = pg16_started(&verify);
        hold.wait_for_copy(&pg, &mut child);
        let reported = fault.inject(&pg, child);
        drop(hold);
        let left = verify_scratch_databases(&pg);
        match reported {
            Some(run) => {
                run.fails_with(
                    1,
                    &[
                        "terminating connection",
                        "it created was dropped",
                        "The backup was not judged: verify it again once the server is back",
                    ],
                );
                assert_eq!(left, "0", "{fault:?}: a scratch database was left");
            }
            None => assert_eq!(left, "1", "{fault:?}: no scratch database left"),
        }
        assert_eq!(listed_state(dest), state_before, "{fault:?}");
        let run = crate::postgres_copy::pgharbor_pg(&verify).success();
        assert!(
            run.stdout.contains("restored and row counts equal"),
            "{fault:?}: {}",
            run.stdout
        );
        assert_eq!(verify_scratch_databases(&pg), "0", "{fault:?}");
        assert_eq!(listed_state(dest), "verified", "{fault:?}");
    }
}

/// `apply` of a plan copying database `app` of `source` into `copy` on
/// `target`, stopped while its copy waits at the hold by a restarted
/// target, terminated sessions or `kill -9`: the copy's journal is left, the message says to
/// run the same command again (`apply` has no `--resume`: it continues an
/// interrupted copy by itself), and the same `apply` continues the copy
/// and ends verified, the tables equal to the source's.
#[test]
fn apply_faults_are_finished_by_applying_again() {
    let source = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    source.create_database("app");
    source.psql(
        "app",
        "CREATE TABLE item (id int PRIMARY KEY, v text);
         INSERT INTO item SELECT g, md5(g::text) FROM generate_series(1, 60000) g;",
    );
    let target = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    let scratch = Scratch::new();
    for (i, fault) in FAULTS.into_iter().enumerate() {
        let name = format!("copy{i}");
        let plan = scratch.path(&format!("plan{i}.toml"));
        std::fs::write(
            &plan,
            format!(
                "[target]\nurl = \"{}\"\n\n[[database]]\nname = \"{name}\"\ncopy_from = \"{}\"\n",
                target.url("postgres"),
                source.url("app")
            ),
        )
        .expect("write the plan");
        target.create_database(&name);
        install_hold(&target, &name, "public.item", 30_000);
        let plan = plan.to_str().unwrap();
        let hold = Hold::take(&target);
        let mut child = pg16_started(&["apply", plan, "--jobs", "1"]);
        hold.wait_for_copy(&target, &mut child);
        let reported = fault.inject(&target, child);
        drop(hold);
        if let Some(run) = reported {
            let run = run.fails_with(
                1,
                &[
                    "copying into database",
                    "kept and recorded in the target",
                    "run the same command again to finish",
                ],
            );
            // The server's FATAL message, or the socket closing before it
            // is read: which one arrives first depends on the machine.
            assert!(
                run.stderr.contains("terminating connection")
                    || run
                        .stderr
                        .contains("the connection to the target was closed"),
                "{}",
                run.stderr
            );
            assert!(!run.stderr.contains("--resume"), "{}", run.stderr);
        }
        assert_eq!(
            scalar(
                &target,
                &name,
                "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgharbor_journal'"
            ),
            "1",
            "{fault:?}: the journal of the copy is missing"
        );
        remove_hold(&target, &name);
        let run = crate::postgres_copy::pgharbor_pg(&["apply", plan]).success();
        assert!(
            run.stdout.contains("resumed") && run.stdout.contains("verified"),
            "{fault:?}: {}",
            run.stdout
        );
        assert_eq!(
            crate::postgres_copy::fingerprint(&source, "app", "SELECT * FROM item"),
            crate::postgres_copy::fingerprint(&target, &name, "SELECT * FROM item"),
            "{fault:?}"
        );
    }
}

/// `backup` to a local destination on a volume too small for the dump: the
/// message names the full disk and what to do, no backup is listed (the
/// parts were removed, the space is free again), and after growing the
/// volume the same backup completes and verifies.
#[test]
fn backup_to_a_full_disk_says_so_and_the_next_backup_after_growing_verifies() {
    let pg = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    let disk = SmallDisk::mount(
        std::env::temp_dir().join(format!("pgharbor-faults-backup-{}", pg.port())),
        "256K",
    );
    let dest = disk.path.join("backups");
    let dest = dest.to_str().unwrap();
    pg.create_database("shop");
    pg.psql(
        "shop",
        "CREATE TABLE item (id int PRIMARY KEY, v text);
         INSERT INTO item SELECT g, md5(g::text) FROM generate_series(1, 60000) g;",
    );
    crate::postgres_copy::pgharbor_pg(&["backup", &pg.url("shop"), "--to", dest]).fails_with(
        1,
        &[
            "failed (its parts were removed)",
            "no space left on device (ENOSPC)",
            "free space on that file system or choose another destination",
        ],
    );
    let listed = crate::postgres_copy::pgharbor_pg(&["backups", "list", dest, "--json"]).success();
    let entries: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json list");
    assert_eq!(entries, serde_json::json!([]), "a backup is listed");
    let mut files = Vec::new();
    walk_files(Path::new(dest), &mut files);
    assert!(files.is_empty(), "left on the full disk: {files:?}");
    disk.grow("64M");
    crate::postgres_copy::pgharbor_pg(&["backup", &pg.url("shop"), "--to", dest]).success();
    let run = crate::postgres_copy::pgharbor_pg(&[
        "backups",
        "verify",
        dest,
        "--restore-to",
        &pg.url("postgres"),
    ])
    .success();
    assert!(
        run.stdout.contains("restored and row counts equal"),
        "{}",
        run.stdout
    );
    assert_eq!(listed_state(dest), "verified");
}

/// Every file under `dir`, recursively (none when it does not exist).
fn walk_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// `--into-existing` into an application's tables on a volume that fills
/// mid-load: the message names the full disk and says to run again with
/// `--resume`; after growing the volume, `--resume` ends verified with
/// exactly the source's rows.
#[test]
fn into_existing_disk_full_is_finished_by_resume_after_growing() {
    let scratch = Scratch::new();
    let db = chat_db(&scratch);
    let pg = cluster();
    let disk = SmallDisk::mount(
        std::env::temp_dir().join(format!("pgharbor-faults-existing-{}", pg.port())),
        "3M",
    );
    pg.create_database("fullapp");
    pg.psql(
        "postgres",
        &format!(
            "CREATE TABLESPACE small_app LOCATION '{}'; ALTER DATABASE fullapp SET default_tablespace = small_app",
            disk.path.display()
        ),
    );
    pg.psql("fullapp", APP_SCHEMA);
    let indexes = index_definitions(&pg, "fullapp");
    assert!(
        indexes
            .iter()
            .any(|i| i.contains("message_chat_body_idx small_app")),
        "{indexes:?}"
    );
    let url = pg.url("fullapp");
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &url,
        "--into-existing",
        "--jobs",
        "2",
    ])
    .fails_with(
        1,
        &[
            "No space left on device",
            "free space on the target server (or grow its volume) and run again",
            "The parts loaded so far are kept and recorded in the target: run the same command with --resume",
        ],
    );
    assert!(
        run.stderr.contains("loading table \"public\".\"message\""),
        "{}",
        run.stderr
    );
    assert_eq!(scalar(&pg, "fullapp", "SELECT count(*) FROM chat"), "50");
    disk.grow("64M");
    resume_ends_verified(&pg, &db, "fullapp", &indexes);
    drop(pg);
}

/// The target stays down longer than a failed `restore` waits to drop the
/// database it created: the message says the database is left and to
/// restore again with --clean; once the server is back the database is
/// there, and `restore --clean` ends with the backup's rows.
#[test]
fn restore_with_the_target_down_names_the_database_left_and_restore_clean_ends_equal() {
    let pg = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let dest = dest.to_str().unwrap();
    shop_backup(&pg, dest);
    install_hold_in_template0(&pg, "public.item", 30_000);
    let latest = format!("{dest}/latest");
    let url = pg.url("restored");
    let hold = Hold::take(&pg);
    let mut child = pg16_started_with(
        &["restore", &latest, &url],
        &[("PGHARBOR_RECONNECT_SECONDS", "2")],
    );
    hold.wait_for_copy(&pg, &mut child);
    pg.stop();
    Run::finished(child).fails_with(
        1,
        &[
            "loading rows",
            "The database \"restored\" it created is left, holding part of the backup",
            "restore again with --clean to replace it",
        ],
    );
    pg.restart();
    drop(hold);
    assert_eq!(
        scalar(
            &pg,
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'restored'"
        ),
        "1"
    );
    restore_ends_equal(&pg, dest, "restored", &["--clean"]);
}

/// A `DROP DATABASE` cut short by the server stopping (as after a failed
/// restore's clean-up when the target goes down) leaves the database
/// invalid, marked as PostgreSQL marks it: `restore --clean` replaces it.
#[test]
fn restore_clean_replaces_a_database_left_invalid_by_a_cut_short_drop() {
    let pg = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let dest = dest.to_str().unwrap();
    shop_backup(&pg, dest);
    pg.create_database("restored");
    pg.psql(
        "postgres",
        "UPDATE pg_database SET datconnlimit = -2 WHERE datname = 'restored'",
    );
    restore_ends_equal(&pg, dest, "restored", &["--clean"]);
}

/// `backups prune` stopped between its steps: the destination refuses to
/// remove a directory of the pruned backup (a mount point inside it,
/// `EBUSY`) after its manifest and files were deleted, the state a `kill
/// -9` mid-prune leaves. The message names the backup, the cause and to
/// prune again; `backups list` shows the kept backup unchanged and never
/// the half-removed one as complete; the next prune removes the rest.
#[test]
fn prune_stopped_midway_leaves_no_complete_looking_backup_and_says_to_prune_again() {
    let pg = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let dest = dest.to_str().unwrap();
    shop_backup(&pg, dest);
    crate::postgres_copy::pgharbor_pg(&["backup", &pg.url("shop"), "--to", dest]).success();
    let listed = |dest: &str| -> Vec<(String, String)> {
        let run = crate::postgres_copy::pgharbor_pg(&["backups", "list", dest, "--json"]).success();
        let entries: serde_json::Value = serde_json::from_str(&run.stdout).expect("json list");
        entries
            .as_array()
            .expect("a list")
            .iter()
            .map(|e| {
                (
                    e["id"].as_str().unwrap().to_string(),
                    e["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let before = listed(dest);
    assert_eq!(before.len(), 2, "{before:?}");
    let (newest, oldest) = (before[0].0.clone(), before[1].0.clone());
    let busy = SmallDisk::mount(Path::new(dest).join(&oldest).join("busy"), "1M");
    std::fs::write(busy.path.join("part"), b"x").expect("a file on the mount");
    let prune = ["backups", "prune", dest, "--keep-last", "1"];
    crate::postgres_copy::pgharbor_pg(&prune).fails_with(
        1,
        &[
            &format!("pruning backup {oldest}"),
            "Device or resource busy",
            "no complete backup; run the same prune again to remove the rest",
        ],
    );
    let kept = vec![(newest.clone(), "complete".to_string())];
    assert_eq!(listed(dest), kept, "the half-removed backup is listed");
    assert!(Path::new(dest).join(&oldest).exists());
    drop(busy);
    let run = crate::postgres_copy::pgharbor_pg(&prune).success();
    assert!(
        run.stdout.contains(&format!("keep   {newest}")),
        "{}",
        run.stdout
    );
    assert_eq!(listed(dest), kept);
    let mut left = Vec::new();
    walk_files(&Path::new(dest).join(&oldest), &mut left);
    assert!(
        left.is_empty(),
        "files of the pruned backup are left: {left:?}"
    );
}

/// `restore --clean` over a database holding data runs `pg_restore` from a
/// file, so the COPY waiting at the hold is `pg_restore`'s: `kill -9` of
/// pgharbor takes `pg_restore` with it, and `restore --clean` then ends
/// with the backup's rows.
#[test]
fn a_killed_restore_takes_its_pg_restore_with_it_and_restore_clean_ends_equal() {
    let pg = pgharbor_testkit::Cluster::start(pgharbor_testkit::Flavor::Pg16Vector);
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let dest = dest.to_str().unwrap();
    shop_backup(&pg, dest);
    install_hold_in_template0(&pg, "public.item", 30_000);
    restore_ends_equal(&pg, dest, "restored", &[]);
    let latest = format!("{dest}/latest");
    let hold = Hold::take(&pg);
    let mut child = pg16_started(&["restore", &latest, &pg.url("restored"), "--clean"]);
    hold.wait_for_copy(&pg, &mut child);
    let pg_restores = children_named(child.id(), "pg_restore");
    assert!(!pg_restores.is_empty(), "no pg_restore runs the held COPY");
    child.kill().expect("kill -9");
    child.wait().expect("reap pgharbor");
    for pid in pg_restores {
        assert_child_ends("pg_restore", pid);
    }
    drop(hold);
    restore_ends_equal(&pg, dest, "restored", &["--clean"]);
}

/// Two schema-creating runs into one database at once: the second, starting
/// while the first records its tables mid-load, takes them for no failed
/// run's leftovers (the first run's lock on its run number is held), and
/// both end verified; the record is gone once the last one ends.
#[test]
fn a_run_starting_beside_another_leaves_the_others_tables_alone() {
    let scratch = Scratch::new();
    let db = chat_db(&scratch);
    let notes = scratch.sqlite(
        "notes.db",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
         INSERT INTO notes VALUES (1, 'one'), (2, 'two');",
    );
    let pg = cluster();
    let (hold, first) = held_migrate(&pg, &db, "beside", &[]);
    let second = pgharbor(&["migrate", notes.to_str().unwrap(), &pg.url("beside")]).success();
    assert!(
        !second
            .stderr
            .contains("removing the tables a failed earlier run created"),
        "{}",
        second.stderr
    );
    assert!(
        second.stdout.contains("every table matches"),
        "{}",
        second.all()
    );
    let (tables, record) = target_state(&pg, "beside");
    assert_eq!(tables, ["message", "notes"], "the first run's split table");
    assert!(record, "the first run still records its tables");
    drop(hold);
    let first = Run::finished(first).success();
    assert!(
        first.stdout.contains("every table matches"),
        "{}",
        first.all()
    );
    remove_hold(&pg, "beside");
    assert_eq!(
        target_state(&pg, "beside"),
        (vec!["chat".into(), "message".into(), "notes".into()], false)
    );
}
