//! `--into-existing`: loading into the schema an application created itself.

use crate::harness::{
    databases, index_definitions, migrate, pgharbor, pgharbor_command, pgharbor_started, query,
    scalar, wait_for_value, Run, Scratch, Session,
};
use pgharbor_testkit::{Flavor, TestDatabases};

/// The schema "the application" creates in PostgreSQL on its first start.
const APP_SCHEMA: &str = r#"
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO alembic_version VALUES ('c0ffee');
CREATE TABLE "user" (id text PRIMARY KEY, name text NOT NULL, info json, settings text, active boolean NOT NULL DEFAULT true, created_at bigint);
CREATE TABLE chat (id text PRIMARY KEY, user_id text REFERENCES "user"(id), chat json, archived boolean, meta jsonb DEFAULT '{}', pinned boolean);
CREATE TABLE message (id serial PRIMARY KEY, chat_id text REFERENCES chat(id), parent_id integer REFERENCES message(id), content text, title varchar(10));
CREATE TABLE config (id serial PRIMARY KEY, data json NOT NULL, version integer NOT NULL DEFAULT 0);
INSERT INTO config (data) VALUES ('{"seeded": true}');
CREATE INDEX message_chat_id_idx ON message (chat_id);
CREATE INDEX message_titled_content_idx ON message (lower(content)) INCLUDE (title) WHERE title IS NOT NULL;
CREATE INDEX chat_meta_idx ON chat USING gin (meta) WITH (fastupdate = off);
CREATE INDEX user_created_at_idx ON "user" (created_at DESC NULLS LAST);
"#;

/// The same application's SQLite database, with its own column order and SQLite habits.
const APP_SQLITE: &str = r#"
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
INSERT INTO alembic_version VALUES ('c0ffee');
CREATE TABLE user (created_at INTEGER, id TEXT PRIMARY KEY, settings TEXT, name TEXT NOT NULL, info JSON, active INTEGER NOT NULL);
INSERT INTO user VALUES (1700000000, 'u1', '{"ui": {"theme": "dark"}}', 'Zoë 🎉', '{"a": 1}', 1);
INSERT INTO user VALUES (1700000001, 'u2', NULL, 'שלום 中文', 400, 0);
CREATE TABLE chat (id TEXT PRIMARY KEY, user_id TEXT, chat JSON, archived BOOLEAN, meta JSON, pinned BOOLEAN);
INSERT INTO chat VALUES ('c1', 'u1', '{"messages": [{"role": "user", "content": "hi\tthere"}]}', 0, 'null', 1);
INSERT INTO chat VALUES ('c2', 'u2', 'null', 1, '{"tags": ["x"]}', NULL);
CREATE TABLE message (id INTEGER PRIMARY KEY, chat_id TEXT, parent_id INTEGER, content TEXT, title TEXT);
INSERT INTO message VALUES (10, 'c1', 20, 'answer (stored before its parent)', 'short');
INSERT INTO message VALUES (20, 'c1', NULL, 'question', 'q');
CREATE TABLE config (id INTEGER PRIMARY KEY, data JSON NOT NULL, version INTEGER NOT NULL DEFAULT 0);
INSERT INTO config VALUES (1, '{"ui": {"default_locale": "en"}}', 3);
"#;

/// Makes [`APP_SQLITE`]'s message 20 a value its target column
/// (`varchar(10)`) cannot hold.
const TITLE_TOO_LONG: &str = "UPDATE message SET title = 'far too long a title' WHERE id = 20;";

/// `pgharbor migrate DB URL --into-existing EXTRA…`.
fn into_existing(db: &std::path::Path, url: &str, extra: &[&str]) -> crate::harness::Run {
    migrate(db, url, &[&["--into-existing"][..], extra].concat())
}

/// This test's fresh database `db` on a PostgreSQL 15 server, holding
/// `schema`, and its URL.
fn target_with(schema: &str, db: &str) -> (TestDatabases, String) {
    let pg = databases(Flavor::Pg15);
    pg.create_database(db);
    pg.psql(db, schema);
    let url = pg.url(db);
    (pg, url)
}

fn app_target(db: &str) -> (TestDatabases, String) {
    target_with(APP_SCHEMA, db)
}

#[test]
fn loads_into_the_apps_schema_converting_to_its_types() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("app.db", APP_SQLITE);
    let (pg, url) = app_target("app");
    let indexes = index_definitions(&pg, "app");
    let refused = into_existing(&db, &url, &[]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.stderr.contains("config") && refused.stderr.contains("--truncate"),
        "{}",
        refused.stderr
    );
    let run = into_existing(&db, &url, &["--truncate", "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], true, "{}", run.stdout);
    assert_eq!(
        scalar(
            &pg,
            "app",
            r#"SELECT active::text || ' ' || (info->>'a') FROM "user" WHERE id = 'u1'"#
        ),
        "true 1"
    );
    assert_eq!(
        scalar(
            &pg,
            "app",
            r#"SELECT info::text FROM "user" WHERE id = 'u2'"#
        ),
        "400"
    );
    assert_eq!(
        scalar(
            &pg,
            "app",
            "SELECT json_typeof(chat) FROM chat WHERE id = 'c2'"
        ),
        "null"
    );
    assert_eq!(
        scalar(
            &pg,
            "app",
            "SELECT jsonb_typeof(meta) FROM chat WHERE id = 'c1'"
        ),
        "null"
    );
    assert_eq!(
        scalar(&pg, "app", "SELECT count(*) FROM config"),
        "1",
        "the seeded row was replaced, not duplicated"
    );
    assert_eq!(
        scalar(&pg, "app", "SELECT version_num FROM alembic_version"),
        "c0ffee",
        "bookkeeping is not copied"
    );
    assert_eq!(
        scalar(
            &pg,
            "app",
            "INSERT INTO message (content) VALUES ('next') RETURNING id"
        ),
        "21"
    );
    assert_eq!(
        scalar(
            &pg,
            "app",
            "INSERT INTO config (data) VALUES ('{}') RETURNING id"
        ),
        "2"
    );
    let fks = query(&pg, "app", "SELECT conname || ':' || convalidated::text FROM pg_constraint WHERE contype = 'f' ORDER BY 1");
    assert_eq!(
        fks,
        [
            "chat_user_id_fkey:true",
            "message_chat_id_fkey:true",
            "message_parent_id_fkey:true"
        ]
    );
    assert_eq!(
        index_definitions(&pg, "app"),
        indexes,
        "the indexes dropped for the load are built again as they were"
    );
}

#[test]
fn version_mismatch_stops_the_run_unless_allowed() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "app.db",
        &APP_SQLITE.replace("VALUES ('c0ffee')", "VALUES ('0ld')"),
    );
    let (pg, url) = app_target("ver");
    let run = into_existing(&db, &url, &["--truncate"]);
    run.fails_with(
        2,
        &[
            "migration versions differ in \"alembic_version\": the SQLite file has 0ld where PostgreSQL has c0ffee",
            "Some applications keep a separate migration history per database kind",
            "--corresponding-revision 0ld=c0ffee",
            "--allow-version-mismatch",
            "Otherwise run the same application version on both sides",
        ],
    );
    assert_eq!(
        scalar(&pg, "ver", "SELECT count(*) FROM config"),
        "1",
        "nothing was changed"
    );
    into_existing(&db, &url, &["--truncate", "--allow-version-mismatch"]).success();
}

#[test]
fn revisions_declared_to_correspond_count_as_the_same_version() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "app.db",
        &APP_SQLITE.replace("VALUES ('c0ffee')", "VALUES ('5q1173')"),
    );
    let (pg, url) = app_target("corresponding");
    into_existing(&db, &url, &["--corresponding-revision", "5q1173=0ther"]).fails_with(
        2,
        &["the SQLite file has 5q1173 where PostgreSQL has c0ffee"],
    );
    let run = into_existing(
        &db,
        &url,
        &["--truncate", "--corresponding-revision", "5q1173=c0ffee"],
    )
    .success();
    assert!(
        run.stdout
            .contains("alembic_version: not copied; versions correspond (declared): c0ffee"),
        "{}",
        run.stdout
    );
    assert_eq!(
        scalar(&pg, "corresponding", r#"SELECT count(*) FROM "user""#),
        "2"
    );
    pgharbor(&[
        "verify",
        db.to_str().unwrap(),
        &url,
        "--into-existing",
        "--corresponding-revision",
        "5q1173=c0ffee",
    ])
    .success();
    into_existing(&db, &url, &["--corresponding-revision", "5q1173"])
        .fails_with(2, &["\"5q1173\" is not SQLITE_ID=POSTGRESQL_ID"]);
}

#[test]
fn schema_drift_is_named_and_can_be_ignored_knowingly() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "app.db",
        &format!("{APP_SQLITE}\nALTER TABLE chat ADD COLUMN legacy TEXT;"),
    );
    let (_pg, url) = app_target("drift");
    let run = into_existing(&db, &url, &["--truncate"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("chat.legacy") && run.stderr.contains("--ignore-columns"),
        "{}",
        run.stderr
    );
    into_existing(
        &db,
        &url,
        &["--truncate", "--ignore-columns", "chat.legacy"],
    )
    .success();
}

#[test]
fn a_required_target_column_missing_in_the_source_is_named() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("app.db", APP_SQLITE);
    let (pg, url) = app_target("required");
    pg.psql(
        "required",
        "ALTER TABLE chat ADD COLUMN owner_note text NOT NULL",
    );
    let run = into_existing(&db, &url, &["--truncate"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("chat.owner_note") && run.stderr.contains("NOT NULL"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_value_that_does_not_fit_names_table_key_and_column_and_leaves_tables_empty() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("app.db", &format!("{APP_SQLITE}\n{TITLE_TOO_LONG}"));
    let (pg, url) = app_target("toolong");
    let indexes = index_definitions(&pg, "toolong");
    let run = into_existing(&db, &url, &["--truncate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("\"message\"")
            && run.stderr.contains("id=20")
            && run.stderr.contains("\"title\"")
            && run.stderr.contains("varying(10)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        scalar(&pg, "toolong", r#"SELECT count(*) FROM "user""#),
        "0",
        "loaded tables are emptied again"
    );
    let fks = query(
        &pg,
        "toolong",
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f'",
    );
    assert_eq!(fks, ["3"], "foreign keys dropped for the load are restored");
    assert_eq!(
        index_definitions(&pg, "toolong"),
        indexes,
        "indexes dropped for the load are restored"
    );
}

/// A run into database `name` (holding [`APP_SCHEMA`] without its seeded
/// row) that fails on [`TITLE_TOO_LONG`], killed (SIGKILL, and its server
/// session ended, as when the machine goes down) while it undoes its load:
/// after the transaction emptying the tables it loaded, before its journal
/// is removed — where sessions of the test hold it. Returns the source
/// with the value, the target and its URL, and the target's indexes before.
fn killed_while_restoring(
    scratch: &Scratch,
    name: &str,
) -> (std::path::PathBuf, TestDatabases, String, Vec<String>) {
    let db = scratch.sqlite("app.db", &format!("{APP_SQLITE}\n{TITLE_TOO_LONG}"));
    let (pg, url) = app_target(name);
    let indexes = index_definitions(&pg, name);
    pg.psql(name, "DELETE FROM config");
    // The run journals its units, then waits here to drop message's self-reference.
    let message = Session::open(&pg, name);
    message.run("BEGIN; LOCK TABLE message IN ACCESS SHARE MODE");
    let mut child = pgharbor_started(&["migrate", db.to_str().unwrap(), &url, "--into-existing"]);
    let waiting_on = |relation: &str| {
        format!("SELECT coalesce(min(pid), 0) FROM pg_locks WHERE NOT granted AND relation = '{relation}'::regclass")
    };
    wait_for_value(&pg, name, &waiting_on("message"), "0", Some(&mut child));
    // Marking units done and emptying the tables go by; dropping the journal waits.
    let journal = Session::open(&pg, name);
    journal.run("BEGIN; LOCK TABLE pgharbor_journal.existing_unit IN ACCESS SHARE MODE");
    message.run("COMMIT");
    let removing = wait_for_value(
        &pg,
        name,
        &waiting_on("pgharbor_journal.existing_unit"),
        "0",
        Some(&mut child),
    );
    child.kill().expect("kill -9");
    let killed = Run::finished(child);
    assert!(
        !killed.all().contains("emptied again"),
        "the kill lands before the run ends: {}",
        killed.all()
    );
    pg.psql(name, &format!("SELECT pg_terminate_backend({removing})"));
    wait_for_value(
        &pg,
        name,
        &format!("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = {removing}"),
        "f",
        None,
    );
    drop(journal);
    assert_eq!(
        scalar(
            &pg,
            name,
            r#"SELECT (SELECT count(*) FROM "user") || ' ' || (SELECT count(*) FROM chat)"#
        ),
        "0 0",
        "the kill lands after the tables were emptied again"
    );
    assert_eq!(
        scalar(
            &pg,
            name,
            "SELECT stage || ' ' || (SELECT count(*) FROM pgharbor_journal.existing_unit WHERE done) \
             FROM pgharbor_journal.run"
        ),
        "restoring 0",
        "the journal left behind promises no rows"
    );
    (db, pg, url, indexes)
}

/// The target of [`killed_while_restoring`] once the next run is over:
/// `rows` in `user` and `message`, its foreign keys and `indexes` back,
/// no journal.
fn assert_restored(pg: &TestDatabases, name: &str, rows: &str, indexes: &[String]) {
    assert_eq!(
        scalar(
            pg,
            name,
            r#"SELECT (SELECT count(*) FROM "user") || ' ' || (SELECT count(*) FROM message)"#
        ),
        rows
    );
    assert_eq!(
        query(
            pg,
            name,
            "SELECT conname || ' ' || convalidated FROM pg_constraint WHERE contype = 'f' ORDER BY 1"
        ),
        [
            "chat_user_id_fkey true",
            "message_chat_id_fkey true",
            "message_parent_id_fkey true"
        ]
    );
    assert_eq!(index_definitions(pg, name), indexes);
    assert_eq!(
        scalar(
            pg,
            name,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgharbor_journal'"
        ),
        "0"
    );
}

/// The statement of a run that found and finished a restore.
const FOUND_RESTORE: &str = "Found an earlier run that failed and was stopped while undoing its load: it had emptied the 4 table(s) it loaded (chat, config, message, user) again; this run put back the 4 index(es) and 1 foreign key(s) it had dropped, removed its journal (schema pgharbor_journal) and started over";

#[test]
fn resume_after_a_run_killed_while_emptying_its_tables_again_loads_everything() {
    let scratch = Scratch::new();
    let (_, pg, url, indexes) = killed_while_restoring(&scratch, "restoring");
    let fixed = scratch.sqlite("fixed.db", APP_SQLITE);
    let run = into_existing(&fixed, &url, &["--resume"]).success();
    assert!(
        run.stdout.contains(&format!(
            "{FOUND_RESTORE} (--resume: nothing of that run was kept to finish)"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("verified: every table matches (row counts and content checksums)"),
        "{}",
        run.stdout
    );
    assert_restored(&pg, "restoring", "2 2", &indexes);
}

#[test]
fn the_next_run_after_a_run_killed_while_emptying_its_tables_again_finishes_that_first() {
    let scratch = Scratch::new();
    let (db, pg, url, indexes) = killed_while_restoring(&scratch, "restoring_again");
    into_existing(&db, &url, &[]).fails_with(
        1,
        &[
            "varying(10)",
            FOUND_RESTORE,
            "The 4 table(s) being loaded were emptied again, as they were before the run",
        ],
    );
    assert_restored(&pg, "restoring_again", "0 0", &indexes);
}

#[test]
fn an_app_that_never_created_its_schema_is_explained() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("app.db", APP_SQLITE);
    let pg = databases(Flavor::Pg15);
    pg.create_database("empty");
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &pg.url("empty"),
        "--into-existing",
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("application must create its schema first"),
        "{}",
        run.stderr
    );
}

#[test]
fn dry_run_shows_the_mapping_and_changes_nothing() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("app.db", APP_SQLITE);
    let (pg, url) = app_target("dry");
    let run = into_existing(&db, &url, &["--dry-run"]).success();
    assert!(
        run.stdout
            .contains("active (INTEGER) → user.active is boolean"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("alembic_version"), "{}", run.stdout);
    assert_eq!(scalar(&pg, "dry", "SELECT count(*) FROM config"), "1");
}

/// An app database large enough that a kill lands in the middle of a table.
fn big_app_db(scratch: &Scratch) -> std::path::PathBuf {
    scratch.sqlite(
        "big.db",
        &format!(
            "{APP_SQLITE}
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 1200000)
             INSERT INTO message SELECT 100 + i, 'c1', NULL, printf('message %d %s', i, hex(randomblob(40))), 't' FROM s;"
        ),
    )
}

/// Start `migrate DB URL --into-existing --truncate --jobs 2` and return once it is loading.
fn spawn_and_wait_for_loading(db: &std::path::Path, url: &str) -> std::process::Child {
    let mut child = pgharbor_command(&[
        "migrate",
        db.to_str().unwrap(),
        url,
        "--into-existing",
        "--truncate",
        "--jobs",
        "2",
    ])
    .stderr(std::process::Stdio::piped())
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    for line in lines.by_ref() {
        if line.unwrap().contains("loading") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

#[test]
fn a_run_killed_mid_table_is_finished_by_resume_without_duplicates() {
    let scratch = Scratch::new();
    let db = big_app_db(&scratch);
    let (pg, url) = app_target("killed");
    let indexes = index_definitions(&pg, "killed");
    let mut child = spawn_and_wait_for_loading(&db, &url);
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind
    child.wait().unwrap();
    let during = index_definitions(&pg, "killed");
    assert!(
        !during.iter().any(|i| i.contains("message_chat_id_idx")),
        "message's secondary indexes are dropped while it loads: {during:?}"
    );
    let partial: i64 = scalar(&pg, "killed", "SELECT count(*) FROM message")
        .parse()
        .unwrap();
    assert!(
        partial < 1_200_002,
        "the kill must land mid-load (got {partial} rows)"
    );
    let again = into_existing(&db, &url, &[]);
    assert_eq!(again.code, 2, "{}", again.all());
    assert!(again.stderr.contains("--resume"), "{}", again.stderr);
    let run = into_existing(&db, &url, &["--resume", "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], true, "{}", run.stdout);
    assert_eq!(
        scalar(
            &pg,
            "killed",
            "SELECT count(*) || ' ' || count(DISTINCT id) FROM message"
        ),
        "1200002 1200002"
    );
    assert_eq!(
        scalar(
            &pg,
            "killed",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgharbor_journal'"
        ),
        "0",
        "the journal is removed on success"
    );
    let fks = query(
        &pg,
        "killed",
        "SELECT conname FROM pg_constraint WHERE contype = 'f' ORDER BY 1",
    );
    assert_eq!(
        fks,
        [
            "chat_user_id_fkey",
            "message_chat_id_fkey",
            "message_parent_id_fkey"
        ]
    );
    assert_eq!(
        index_definitions(&pg, "killed"),
        indexes,
        "--resume builds the indexes the killed run dropped"
    );
}

#[test]
fn a_lost_connection_is_finished_by_resume() {
    let scratch = Scratch::new();
    let db = big_app_db(&scratch);
    let (pg, url) = app_target("lost");
    let indexes = index_definitions(&pg, "lost");
    let child = spawn_and_wait_for_loading(&db, &url);
    std::thread::sleep(std::time::Duration::from_millis(500));
    pg.psql("lost", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%'");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let run = into_existing(&db, &url, &["--resume", "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], true, "{}", run.stdout);
    assert_eq!(
        scalar(&pg, "lost", "SELECT count(*) FROM message"),
        "1200002"
    );
    assert_eq!(index_definitions(&pg, "lost"), indexes);
}

#[test]
fn open_webui_preset_takes_the_data_directory_strips_nuls_and_says_what_to_set_next() {
    let scratch = Scratch::new();
    let data = scratch.path("data");
    std::fs::create_dir_all(data.join("vector_db")).unwrap();
    std::fs::create_dir_all(data.join("uploads")).unwrap();
    let conn = rusqlite::Connection::open(data.join("webui.db")).unwrap();
    conn.execute_batch(APP_SQLITE).unwrap();
    conn.execute_batch(
        "UPDATE user SET name = 'Nu' || char(0) || 'l' WHERE id = 'u2';
         CREATE TABLE auth (id TEXT PRIMARY KEY, email TEXT, active INTEGER);
         INSERT INTO auth VALUES ('u1', 'zoe@example.org', 1);",
    )
    .unwrap();
    drop(conn);
    let password = "Owui_Pw_7781";
    let pg = pgharbor_testkit::Cluster::start_with(
        pgharbor_testkit::Flavor::Pg15,
        pgharbor_testkit::ClusterOptions {
            password_auth: true,
            password: Some(password.into()),
            ..Default::default()
        },
    );
    pg.create_database("owui");
    pg.psql("owui", APP_SCHEMA);
    pg.psql(
        "owui",
        "CREATE TABLE auth (id text PRIMARY KEY, email text, active boolean);",
    );
    let run = pgharbor(&[
        "migrate",
        data.to_str().unwrap(),
        &pg.url("owui"),
        "--preset",
        "open-webui",
        "--truncate",
    ])
    .success();
    assert!(run.stdout.contains("every table matches"), "{}", run.stdout);
    assert!(
        run.stdout.contains("1 value(s) NUL-stripped"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("DATABASE_URL=postgresql://postgres:****@"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Vectors were NOT moved") && run.stdout.contains("uploads"),
        "{}",
        run.stdout
    );
    assert!(
        !run.all().contains(password),
        "password leaked: {}",
        run.all()
    );
    assert_eq!(
        scalar(&pg, "owui", r#"SELECT name FROM "user" WHERE id = 'u2'"#),
        "Nul"
    );
}

#[test]
fn enums_epochs_and_arrays_follow_the_target_types() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "events.db",
        "CREATE TABLE event (id INTEGER PRIMARY KEY, kind TEXT, at INTEGER, at_ms INTEGER, tags TEXT, scores TEXT);
         INSERT INTO event VALUES (1, 'happy', 1700000000, 1700000000123, '[\"a\", \"b c\", null]', '[1, 2]');
         INSERT INTO event VALUES (2, 'sad', 0, -1000, '[]', '[-7]');",
    );
    let pg = databases(Flavor::Pg15);
    pg.create_database("events");
    pg.psql(
        "events",
        "CREATE TYPE mood AS ENUM ('happy', 'sad'); \
         CREATE TABLE event (id integer PRIMARY KEY, kind mood, at timestamptz, at_ms timestamp, tags text[], scores bigint[]);",
    );
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &pg.url("events"),
        "--into-existing",
        "--json",
    ])
    .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], true, "{}", run.stdout);
    // Units follow each value's size (documented): -1000 is read as seconds.
    assert_eq!(
        query(&pg, "events", "SELECT kind || ' ' || (at AT TIME ZONE 'UTC')::text || ' ' || at_ms::text FROM event ORDER BY id"),
        ["happy 2023-11-14 22:13:20 2023-11-14 22:13:20.123", "sad 1970-01-01 00:00:00 1969-12-31 23:43:20"]
    );
    let verify = pgharbor(&[
        "verify",
        db.to_str().unwrap(),
        &pg.url("events"),
        "--into-existing",
    ])
    .success();
    assert!(
        verify.stdout.contains("every table matches"),
        "{}",
        verify.stdout
    );
}

/// An app whose model has a stored computed column: SQLite stored the values
/// it computed, the app's PostgreSQL schema computes them itself.
const GENERATED_SQLITE: &str = "
    CREATE TABLE line (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL, price INTEGER NOT NULL,
                       total INTEGER GENERATED ALWAYS AS (qty * price) STORED);
    INSERT INTO line (id, qty, price) VALUES (1, 2, 355), (2, 0, 99), (3, 7, -23);";

#[test]
fn a_target_column_postgresql_computes_is_not_loaded_and_is_verified() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("app.db", GENERATED_SQLITE);
    let (pg, url) = target_with(
        "CREATE TABLE line (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, qty integer NOT NULL, \
         price bigint NOT NULL, total bigint GENERATED ALWAYS AS (qty * price) STORED);",
        "computed",
    );
    let dry = into_existing(&db, &url, &["--dry-run"]).success();
    assert!(
        dry.stdout.contains("total (INTEGER) → line.total is bigint, GENERATED ALWAYS AS ((qty * price)) STORED: computed by PostgreSQL, not loaded")
            && dry.stdout.contains("SQLite column is STORED generated")
            && dry.stdout.contains("generated column \"line.total\": not loaded: PostgreSQL computes it"),
        "{}",
        dry.stdout
    );
    let ignored =
        into_existing(&db, &url, &["--dry-run", "--ignore-columns", "line.total"]).success();
    assert!(
        ignored.stdout.contains(
            "PostgreSQL computes it (GENERATED ALWAYS AS ((qty * price)) STORED); not compared either: --ignore-columns leaves the SQLite column behind"
        ),
        "{}",
        ignored.stdout
    );
    let run = into_existing(&db, &url, &[]).success();
    assert!(
        run.stdout.contains("every table matches")
            && run
                .stdout
                .contains("generated column line.total: not loaded: PostgreSQL computes it"),
        "{}",
        run.stdout
    );
    assert_eq!(
        query(
            &pg,
            "computed",
            "SELECT id || ':' || total FROM line ORDER BY id"
        ),
        ["1:710", "2:0", "3:-161"]
    );
    assert_eq!(
        scalar(
            &pg,
            "computed",
            "INSERT INTO line (qty, price) VALUES (3, 5) RETURNING id::text || ':' || total"
        ),
        "4:15",
        "the application inserts new rows: identity above the data, total computed"
    );
}

#[test]
fn a_target_expression_that_computes_differently_names_the_rows() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("app.db", GENERATED_SQLITE);
    // The PostgreSQL side rounds the price to tens: rows 1 and 3 differ, row 2 does not.
    let (_pg, url) = target_with(
        "CREATE TABLE line (id bigint PRIMARY KEY, qty integer NOT NULL, price bigint NOT NULL, \
         total bigint GENERATED ALWAYS AS (qty * (price / 10 * 10)) STORED);",
        "differs",
    );
    let run = into_existing(&db, &url, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains("verification FAILED for line")
            && run.stdout.contains("missing or different in target: id=1")
            && run.stdout.contains("missing or different in target: id=3")
            && !run.stdout.contains("target: id=2"),
        "{}",
        run.stdout
    );
    let verify = pgharbor(&["verify", db.to_str().unwrap(), &url, "--into-existing"]);
    assert_eq!(verify.code, 1, "{}", verify.all());
    assert!(
        verify
            .stdout
            .contains("missing or different in target: id=3"),
        "{}",
        verify.stdout
    );
}

#[test]
fn a_stored_value_the_computed_target_type_cannot_hold_is_a_differing_row() {
    let scratch = Scratch::new();
    // SQLite computes in doubles: 3 × 0.1 is stored as 0.30000000000000004.
    let db = scratch.sqlite(
        "app.db",
        "CREATE TABLE cart (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL, price REAL NOT NULL,
                            total REAL GENERATED ALWAYS AS (qty * price) STORED);
         INSERT INTO cart (id, qty, price) VALUES (1, 3, 0.1), (2, 2, 0.5);",
    );
    let (pg, url) = target_with(
        "CREATE TABLE cart (id bigint PRIMARY KEY, qty integer NOT NULL, price numeric(10, 2) NOT NULL, \
         total numeric(12, 2) GENERATED ALWAYS AS (qty * price) STORED);",
        "inexact",
    );
    let run = into_existing(&db, &url, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains("verification FAILED for cart")
            && run.stdout.contains("missing or different in target: id=1")
            && !run.stdout.contains("target: id=2"),
        "{}",
        run.all()
    );
    assert_eq!(
        query(
            &pg,
            "inexact",
            "SELECT id || ':' || total FROM cart ORDER BY id"
        ),
        ["1:0.30", "2:1.00"],
        "the load completed"
    );
    assert_eq!(
        scalar(
            &pg,
            "inexact",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgharbor_journal'"
        ),
        "0",
        "the run finished: no journal is left"
    );
}

#[test]
fn generated_columns_on_one_side_and_always_identities_are_handled() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "app.db",
        "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                            upper_name TEXT GENERATED ALWAYS AS (upper(name)) VIRTUAL,
                            name_length INTEGER AS (length(name)), search TEXT);
         INSERT INTO item (id, name, search) VALUES (5, 'cup', 'cup'), (9, 'plate', 'plate');",
    );
    // upper_name: a plain column on PostgreSQL (gets SQLite's computed values);
    // name_length: absent; slug: computed by PostgreSQL only; search: computed
    // by PostgreSQL as a type pgharbor cannot read (nor compare).
    let (pg, url) = target_with(
        "CREATE TABLE item (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, \
         upper_name text, slug text NOT NULL GENERATED ALWAYS AS ('item-' || name) STORED, \
         search tsvector GENERATED ALWAYS AS (to_tsvector('simple', name)) STORED);",
        "sides",
    );
    let run = into_existing(&db, &url, &[]).success();
    assert!(run.stdout.contains("every table matches"), "{}", run.stdout);
    assert!(
        run.stdout.contains("generated column item.name_length: not copied: a VIRTUAL generated column of the SQLite table")
            && run.stdout.contains("generated column item.slug: not loaded: PostgreSQL computes it (GENERATED ALWAYS AS (('item-'::text || name)) STORED); the SQLite table has no such column")
            && run.stdout.contains("generated column item.search: not loaded: PostgreSQL computes it (GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, name)) STORED); not compared either: pgharbor cannot read its type tsvector"),
        "{}",
        run.stdout
    );
    assert_eq!(
        query(
            &pg,
            "sides",
            "SELECT id || ' ' || upper_name || ' ' || slug || ' ' || search::text FROM item ORDER BY id"
        ),
        ["5 CUP item-cup 'cup':1", "9 PLATE item-plate 'plate':1"]
    );
    assert_eq!(
        scalar(
            &pg,
            "sides",
            "INSERT INTO item (name) VALUES ('bowl') RETURNING id"
        ),
        "10",
        "GENERATED ALWAYS AS IDENTITY kept the source's ids and continues above them"
    );
}

/// A preset whose rows the application seeded in `meta` and `stat` are
/// replaced (as Home Assistant's recorder seeds `statistics_meta` and leaves
/// `statistics`, which references it, empty on a short first start).
const SEEDED_PRESET: &str = r#"name = "metrics"
title = "Metrics"
homepage = "https://metrics.example"

[data]
database = ["metrics.db"]
tables = ["meta", "stat"]

[tables.meta]
seeded = "replace"

[tables.stat]
seeded = "replace"
"#;

#[test]
fn a_preset_replaces_a_seeded_table_whose_empty_referencing_table_it_empties_with_it() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "metrics.db",
        "CREATE TABLE meta (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO meta VALUES (1, 'a'), (2, 'b');
         CREATE TABLE stat (id INTEGER PRIMARY KEY, meta_id INTEGER REFERENCES meta(id), v REAL);
         INSERT INTO stat VALUES (1, 2, 0.5);",
    );
    let (pg, url) = target_with(
        "CREATE TABLE meta (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text);
         CREATE TABLE stat (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                            meta_id integer REFERENCES meta(id), v double precision);
         INSERT INTO meta (name) VALUES ('seeded');",
        "seeded",
    );
    let preset = scratch.path("metrics.toml");
    std::fs::write(&preset, SEEDED_PRESET).unwrap();
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &url,
        "--preset",
        preset.to_str().unwrap(),
        "--json",
    ])
    .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["database"]["verified"], true, "{}", run.stdout);
    assert_eq!(
        scalar(
            &pg,
            "seeded",
            "SELECT string_agg(id || name, ',' ORDER BY id) FROM meta"
        ),
        "1a,2b",
        "the seeded row is replaced by the source's"
    );
    assert_eq!(scalar(&pg, "seeded", "SELECT count(*) FROM stat"), "1");
}

/// The journal an older pgharbor kept for an `--into-existing` run, in its
/// exact DDL (schema `pgharbor_resume`), as a run of [`APP_SQLITE`] left it
/// when interrupted after loading `config`: message's self-reference and
/// one of its indexes dropped, the other tables not loaded yet.
const OLDER_INTO_EXISTING_JOURNAL: &str = r#"
TRUNCATE config;
INSERT INTO config VALUES (1, '{"ui": {"default_locale": "en"}}', 3);
ALTER TABLE message DROP CONSTRAINT message_parent_id_fkey;
DROP INDEX message_chat_id_idx;
BEGIN;
CREATE SCHEMA pgharbor_resume;
CREATE TABLE pgharbor_resume.unit (id integer PRIMARY KEY, level integer NOT NULL, table_name text NOT NULL, first_rowid bigint, last_rowid bigint, done boolean NOT NULL DEFAULT false);
CREATE TABLE pgharbor_resume.source_rows (table_name text PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE pgharbor_resume.dropped_fk (table_name text NOT NULL, name text NOT NULL, definition text NOT NULL);
CREATE TABLE pgharbor_resume.dropped_index (table_name text NOT NULL, name text NOT NULL, definition text NOT NULL, tablespace text);
INSERT INTO pgharbor_resume.unit VALUES (0, 0, 'user', NULL, NULL, false), (1, 0, 'config', NULL, NULL, true),
  (2, 1, 'chat', NULL, NULL, false), (3, 2, 'message', NULL, NULL, false);
INSERT INTO pgharbor_resume.source_rows VALUES ('user', 2), ('chat', 2), ('message', 2), ('config', 1);
INSERT INTO pgharbor_resume.dropped_fk VALUES ('message', 'message_parent_id_fkey', 'FOREIGN KEY (parent_id) REFERENCES message(id)');
INSERT INTO pgharbor_resume.dropped_index VALUES ('message', 'message_chat_id_idx', 'CREATE INDEX message_chat_id_idx ON public.message USING btree (chat_id)', NULL);
COMMIT;
"#;

/// `--resume` ends verified, with no finish issue.
fn resume_verified_without_issues(db: &std::path::Path, url: &str) {
    let run = into_existing(db, url, &["--resume", "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], true, "{}", run.stdout);
    assert_eq!(
        report["finish_issues"],
        serde_json::json!([]),
        "{}",
        run.stdout
    );
}

#[test]
fn an_older_pgharbors_interrupted_run_is_upgraded_and_finished_by_resume() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("app.db", APP_SQLITE);
    let (pg, url) = app_target("older");
    let indexes = index_definitions(&pg, "older");
    pg.psql("older", OLDER_INTO_EXISTING_JOURNAL);
    let refused = into_existing(&db, &url, &[]);
    assert_eq!(refused.code, 2, "{}", refused.all());
    assert!(
        refused.stderr.contains("--resume") && refused.stderr.contains("pgharbor_journal"),
        "{}",
        refused.stderr
    );
    resume_verified_without_issues(&db, &url);
    assert_eq!(
        query(
            &pg,
            "older",
            "SELECT id || ':' || chat_id FROM message ORDER BY id"
        ),
        ["10:c1", "20:c1"]
    );
    assert_eq!(
        scalar(
            &pg,
            "older",
            "SELECT count(*) || ' ' || max(version) FROM config"
        ),
        "1 3",
        "the unit the older run loaded is not loaded again"
    );
    assert_eq!(
        scalar(
            &pg,
            "older",
            "SELECT convalidated FROM pg_constraint WHERE conname = 'message_parent_id_fkey'"
        ),
        "t"
    );
    assert_eq!(index_definitions(&pg, "older"), indexes);
    assert_eq!(
        scalar(
            &pg,
            "older",
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('pgharbor_resume', 'pgharbor_journal')"
        ),
        "0",
        "the older journal was upgraded, and the new one removed on success"
    );
}

/// A run that fails while finishing — here the session validating
/// message's self-reference, put back already, is ended — is finished by
/// `--resume`, which validates that key rather than adding it again.
#[test]
fn resume_after_a_failure_while_finishing_puts_back_only_what_is_missing() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("app.db", APP_SQLITE);
    let (pg, url) = app_target("finishing");
    let indexes = index_definitions(&pg, "finishing");
    pg.psql(
        "finishing",
        "CREATE FUNCTION end_validating_session() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN
           IF current_query() LIKE '%VALIDATE CONSTRAINT%message_parent_id_fkey%' THEN
             PERFORM pg_terminate_backend(pg_backend_pid());
           END IF;
         END $$;
         CREATE EVENT TRIGGER end_validating_session ON ddl_command_end
           WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION end_validating_session();",
    );
    let failed = into_existing(&db, &url, &["--truncate"]);
    assert_eq!(failed.code, 1, "{}", failed.all());
    assert_eq!(
        scalar(
            &pg,
            "finishing",
            "SELECT convalidated FROM pg_constraint WHERE conname = 'message_parent_id_fkey'"
        ),
        "f",
        "the failed run put the foreign key back before its session ended"
    );
    assert_eq!(
        scalar(
            &pg,
            "finishing",
            "SELECT count(*) FROM pgharbor_journal.existing_unit WHERE NOT done"
        ),
        "0",
        "every unit is in"
    );
    pg.psql("finishing", "DROP EVENT TRIGGER end_validating_session");
    resume_verified_without_issues(&db, &url);
    assert_eq!(
        query(
            &pg,
            "finishing",
            "SELECT conname || ' ' || convalidated FROM pg_constraint WHERE contype = 'f' ORDER BY 1"
        ),
        [
            "chat_user_id_fkey true",
            "message_chat_id_fkey true",
            "message_parent_id_fkey true"
        ]
    );
    assert_eq!(index_definitions(&pg, "finishing"), indexes);
    assert_eq!(
        scalar(
            &pg,
            "finishing",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgharbor_journal'"
        ),
        "0"
    );
}
