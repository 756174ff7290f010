//! Home Assistant end to end: a configuration directory whose
//! `home-assistant_v2.db` Home Assistant 2024.3.3's own recorder wrote
//! (`fixtures/homeassistant/`: states with attributes, events with data,
//! 5-minute and hourly statistics, imported statistics, NUL-padded states),
//! moved with the `home-assistant` preset into the schema the recorder itself
//! created in PostgreSQL (version 42, and the rows it seeded on that first
//! start), then read back through Home Assistant's own history, statistics
//! and models and compared with what the same code reads from the SQLite
//! file. Reading starts the recorder, which writes, so both sides are read
//! from copies. Then Home Assistant records new states, events and
//! statistics on PostgreSQL: its identity sequences were moved. A `kill -9`
//! in the middle of the load and `--resume` end the same way.
//!
//! Home Assistant runs from `.cache/homeassistant-venv`
//! (`fixtures/homeassistant/setup.sh`, called by `scripts/test.sh`).

use crate::harness::{databases, index_definitions, pgharbor, query, scalar, Run, Scratch, Target};
use pgharbor_testkit::{Flavor, TestDatabases};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The recorder's schema version in Home Assistant 2024.3.
const SCHEMA_VERSION: &str = "42";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/homeassistant")
        .join(name)
}

/// The configuration directory the fixture's recorder wrote into.
fn config_dir() -> PathBuf {
    fixture("config")
}

/// Run Home Assistant's recorder (`fixtures/homeassistant/recorder.py ARGS`);
/// its stdout, or a panic with what it printed.
fn recorder(args: &[&str]) -> String {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.cache/homeassistant-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run fixtures/homeassistant/setup.sh (scripts/test.sh does)",
        python.display()
    );
    let output = Command::new(&python)
        .arg(fixture("recorder.py"))
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run recorder.py");
    assert!(
        output.status.success(),
        "recorder.py {} failed:\n{}{}",
        args.first().unwrap_or(&""),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// A fresh database `name` in which Home Assistant's recorder created its
/// schema on a first start (and seeded its first rows), as a user's
/// `recorder: db_url:` does; its URL.
fn home_assistant_target(pg: &TestDatabases, name: &str) -> String {
    pg.create_database(name);
    let url = pg.url(name);
    recorder(&["create-schema", &url]);
    assert_eq!(
        scalar(pg, name, "SELECT max(schema_version) FROM schema_changes"),
        SCHEMA_VERSION
    );
    assert_ne!(
        scalar(pg, name, "SELECT count(*) FROM recorder_runs"),
        "0",
        "the first start leaves rows behind for the preset to deal with"
    );
    url
}

/// `pgharbor migrate CONFIG_DIR URL ARGS`.
fn move_recorder(url: &str, args: &[&str]) -> Run {
    let dir = config_dir();
    let mut all = vec!["migrate", dir.to_str().unwrap(), url];
    all.extend_from_slice(args);
    pgharbor(&all)
}

/// One number the fixture's SQLite file answers `sql` with.
fn count_in_fixture(sql: &str) -> u64 {
    let db = rusqlite::Connection::open_with_flags(
        config_dir().join("home-assistant_v2.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// States whose value holds a NUL: SQLite keeps them, PostgreSQL cannot.
fn nul_states_in_fixture() -> u64 {
    count_in_fixture("SELECT count(*) FROM states WHERE instr(state, char(0)) > 0")
}

fn states_in_fixture() -> u64 {
    count_in_fixture("SELECT count(*) FROM states")
}

/// What Home Assistant reads from a copy of the fixture's SQLite file.
fn read_back_sqlite(scratch: &Scratch) -> PathBuf {
    let copy = scratch.path("home-assistant_v2.db");
    std::fs::copy(config_dir().join("home-assistant_v2.db"), &copy).unwrap();
    let out = scratch.path("sqlite.json");
    recorder(&[
        "read-back",
        &format!("sqlite:///{}", copy.display()),
        out.to_str().unwrap(),
    ]);
    out
}

/// What Home Assistant reads from a copy (`copy`) of the test's database
/// `name`, compared with `expected`: NULs stripped from the SQLite side's
/// states, as the preset strips them.
fn assert_home_assistant_reads_the_same(
    pg: &TestDatabases,
    name: &str,
    copy: &str,
    expected: &Path,
    scratch: &Scratch,
) {
    pg.copy_database(name, copy);
    let actual = scratch.path(&format!("{copy}.json"));
    recorder(&["read-back", &pg.url(copy), actual.to_str().unwrap()]);
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.cache/homeassistant-venv/bin/python");
    let compared = Command::new(python)
        .arg(fixture("recorder.py"))
        .args(["compare", "--nul", "strip"])
        .arg(expected)
        .arg(&actual)
        .output()
        .expect("run recorder.py compare");
    assert!(
        compared.status.success(),
        "Home Assistant reads other data from PostgreSQL than from SQLite:\n{}{}",
        String::from_utf8_lossy(&compared.stdout),
        String::from_utf8_lossy(&compared.stderr)
    );
}

/// Every identity sequence of the recorder's tables stands at or above the
/// highest id loaded, so the recorder's next row gets a new id.
fn assert_sequences_above_data(pg: &TestDatabases, name: &str) {
    let columns = query(
        pg,
        name,
        "SELECT table_name, column_name FROM information_schema.columns \
         WHERE table_schema = 'public' AND is_identity = 'YES' ORDER BY 1",
    );
    assert!(columns.len() >= 11, "identity columns: {columns:?}");
    for column in columns {
        let (table, id) = column.split_once('|').unwrap();
        let behind = scalar(
            pg,
            name,
            &format!(
                "SELECT coalesce(max({id}), 0) > coalesce(pg_sequence_last_value(pg_get_serial_sequence('{table}', '{id}')), 0) FROM {table}"
            ),
        );
        assert_eq!(
            behind, "f",
            "the sequence of {table}.{id} is behind its data"
        );
    }
}

/// Home Assistant records new states, events and statistics on PostgreSQL.
fn assert_home_assistant_keeps_recording(url: &str) {
    let written = recorder(&["write-new", url]);
    assert!(written.contains("\"states\": 2"), "{written}");
}

#[test]
fn home_assistant_reads_back_from_postgresql_what_its_recorder_wrote_to_sqlite_and_keeps_recording()
{
    let scratch = Scratch::new();
    let pg = databases(Flavor::Pg16Vector);
    let url = home_assistant_target(&pg, "ha");
    let indexes = index_definitions(&pg, "ha");
    let seeded_schema = query(
        &pg,
        "ha",
        "SELECT change_id, schema_version FROM schema_changes",
    );

    let run = move_recorder(&url, &["--preset", "home-assistant", "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["database"]["verified"], true, "{}", run.stdout);
    assert_eq!(
        report["database"]["lossy"]["nul_stripped"].as_u64(),
        Some(nul_states_in_fixture()),
        "every NUL-padded state, and nothing else, is changed: {}",
        run.stdout
    );
    assert!(nul_states_in_fixture() > 0, "the fixture holds NUL states");
    assert!(
        run.stderr.contains(&format!("  db_url: {url}")),
        "what to set in configuration.yaml next: {}",
        run.stderr
    );
    assert_eq!(
        query(
            &pg,
            "ha",
            "SELECT change_id, schema_version FROM schema_changes"
        ),
        seeded_schema,
        "the recorder's own schema_changes row stays as it wrote it"
    );
    assert_sequences_above_data(&pg, "ha");
    assert_eq!(index_definitions(&pg, "ha"), indexes);
    assert!(
        report["database"]["indexes_rebuilt"].as_u64() > Some(0),
        "{}",
        run.stdout
    );

    let expected = read_back_sqlite(&scratch);
    assert_home_assistant_reads_the_same(&pg, "ha", "ha_copy", &expected, &scratch);
    assert_home_assistant_keeps_recording(&url);
}

/// The application name of the test's session that holds the load.
const HOLD_NAME: &str = "pgharbor-test-ha-hold";

/// A session of the test named [`HOLD_NAME`]: while it exists, the load
/// waits at a row of `states` (see [`hold_states_at`]).
struct Hold {
    /// Kept for its drop: the client and the runtime running its connection.
    _session: (tokio_postgres::Client, tokio::runtime::Runtime),
}

impl Hold {
    fn take(pg: &TestDatabases, name: &str) -> Hold {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = pg.config_of(name);
        config.application_name(HOLD_NAME);
        let client = runtime.block_on(async {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .expect("connect the hold");
            tokio::spawn(connection);
            client
        });
        Hold {
            _session: (client, runtime),
        }
    }
}

/// A trigger makes the load of `states` wait at its `nth` row (counted per
/// transaction) while the test's [`Hold`] exists.
fn hold_states_at(pg: &TestDatabases, name: &str, nth: u32) {
    pg.psql(
        name,
        &format!(
            "CREATE FUNCTION pgharbor_test_hold() RETURNS trigger LANGUAGE plpgsql AS $f$
             DECLARE n int := coalesce(nullif(current_setting('pgharbor_test.rows', true), ''), '0')::int + 1;
             BEGIN
               PERFORM set_config('pgharbor_test.rows', n::text, true);
               WHILE n = {nth} AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = '{HOLD_NAME}') LOOP
                 PERFORM pg_sleep(0.01);
                 PERFORM pg_stat_clear_snapshot();
               END LOOP;
               RETURN NEW;
             END $f$;
             CREATE TRIGGER pgharbor_test_hold BEFORE INSERT ON states FOR EACH ROW EXECUTE FUNCTION pgharbor_test_hold();"
        ),
    );
}

/// Wait until a COPY into `states` waits at the hold; panics if `child`
/// ends first.
fn wait_for_held_copy(pg: &TestDatabases, name: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held = scalar(
            pg,
            name,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%states%' AND wait_event = 'PgSleep'",
        );
        if held != "0" {
            return;
        }
        if let Some(status) = child.try_wait().expect("poll pgharbor") {
            panic!("pgharbor ended ({status}) before its COPY of states reached the hold");
        }
        assert!(Instant::now() < deadline, "no COPY reached the hold");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until no session of pgharbor is left in the database.
fn wait_for_sessions_to_end(pg: &TestDatabases, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(
        pg,
        name,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    ) != "0"
    {
        assert!(Instant::now() < deadline, "the killed run's sessions stay");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_kill_9_in_the_middle_of_the_load_and_resume_end_exact_and_home_assistant_reads_it_all_back() {
    let scratch = Scratch::new();
    let pg = databases(Flavor::Pg16Vector);
    let url = home_assistant_target(&pg, "ha");
    let indexes = index_definitions(&pg, "ha");
    hold_states_at(&pg, "ha", 3_000);
    let hold = Hold::take(&pg, "ha");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgharbor"))
        .args(["migrate", config_dir().to_str().unwrap(), &url])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pgharbor");
    wait_for_held_copy(&pg, "ha", &mut child);
    child.kill().expect("kill -9");
    child.wait().expect("reap pgharbor");
    drop(hold);
    wait_for_sessions_to_end(&pg, "ha");
    pg.psql("ha", "DROP FUNCTION pgharbor_test_hold() CASCADE");
    let loaded: u64 = scalar(&pg, "ha", "SELECT count(*) FROM states")
        .parse()
        .unwrap();
    assert!(
        loaded < states_in_fixture(),
        "the kill landed after the load: {loaded} states"
    );

    let again = move_recorder(&url, &[]);
    assert_eq!(again.code, 2, "{}", again.all());
    assert!(again.stderr.contains("--resume"), "{}", again.stderr);
    let resumed = move_recorder(&url, &["--resume", "--json"]).success();
    assert!(
        resumed
            .stderr
            .contains("is Home Assistant's data directory"),
        "the configuration directory alone is recognised: {}",
        resumed.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&resumed.stdout).unwrap();
    assert_eq!(report["database"]["verified"], true, "{}", resumed.stdout);
    assert_sequences_above_data(&pg, "ha");
    assert_eq!(
        index_definitions(&pg, "ha"),
        indexes,
        "--resume builds the indexes the killed run dropped"
    );

    let expected = read_back_sqlite(&scratch);
    assert_home_assistant_reads_the_same(&pg, "ha", "ha_copy", &expected, &scratch);
    assert_home_assistant_keeps_recording(&url);
}

#[test]
fn a_postgresql_schema_newer_than_the_sqlite_file_is_refused_naming_home_assistants_own_upgrade() {
    let pg = databases(Flavor::Pg16Vector);
    let url = home_assistant_target(&pg, "ha");
    pg.psql(
        "ha",
        "INSERT INTO schema_changes (schema_version, changed) VALUES (43, now())",
    );
    let before = query(&pg, "ha", "SELECT count(*) FROM states");
    move_recorder(&url, &["--preset", "home-assistant"]).fails_with(
        2,
        &[
            "schema_changes",
            "42",
            "43",
            "start the newer Home Assistant version once on the configuration directory",
        ],
    );
    assert_eq!(
        query(&pg, "ha", "SELECT count(*) FROM states"),
        before,
        "nothing was changed"
    );
}
