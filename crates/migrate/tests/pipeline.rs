//! The pipeline as a library, against one real cluster per PostgreSQL
//! flavour with a fresh database per case: a schema-creating run, a run
//! into existing tables, the per-table schedule (seen through the events a
//! recording [`Progress`] gets), cancellation, and a failure cleaned up —
//! with the statements of a cancelled or failed run stopped on the server
//! (an index build made slow on purpose is cancelled, not waited for; a
//! PostgreSQL copy's `pg_dump` and large-object write waiting for a lock
//! the test holds are stopped); a PostgreSQL copy of a database holding
//! pgharbor's journal; a Chroma move through the same schedule.

use pgharbor_conn::ConnConfig;
use pgharbor_migrate::chroma::layout::{self, Layout};
use pgharbor_migrate::chroma::{self, ChromaOptions, IndexChoice, RecallOptions};
use pgharbor_migrate::existing::{self, ExistingOptions};
use pgharbor_migrate::postgres::{copy_database, plan_copy, CopyOptions};
use pgharbor_migrate::sqlite::{self, MigrateOptions};
use pgharbor_migrate::target;
use pgharbor_migrate::{CancellationToken, MigrateError, MigrateErrorKind, Progress};
use pgharbor_sqlite::planner::PlanOptions;
use pgharbor_testkit::{copy_dir, Cluster, Flavor};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Rows of the large table: enough to take a while to load and verify.
const LARGE_ROWS: i64 = 30_000;

/// What a run reported, in order.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    /// Cancelled at the first rows sent, when set.
    cancel_on_rows: Option<CancellationToken>,
    /// The first rows sent of `posts` wait for a word here, when set.
    posts_gate: Mutex<Option<mpsc::Receiver<()>>>,
    /// A phase whose start waits for the test, when set.
    phase_gate: Mutex<Option<PhaseGate>>,
}

/// The start of `phase` says so on `reached`, then waits for a word on `go`.
struct PhaseGate {
    phase: &'static str,
    reached: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
}

impl Recorder {
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    fn position(&self, event: &str) -> usize {
        let events = self.events();
        events
            .iter()
            .position(|e| e == event)
            .unwrap_or_else(|| panic!("no event {event:?} in {events:#?}"))
    }
}

impl Progress for Recorder {
    fn phase(&self, name: &str) {
        self.events.lock().unwrap().push(format!("phase {name}"));
        let mut slot = self.phase_gate.lock().unwrap();
        if slot.as_ref().is_some_and(|gate| gate.phase == name) {
            let gate = slot.take().unwrap();
            drop(slot);
            gate.reached.send(()).unwrap();
            gate.go.recv().unwrap();
        }
    }
    fn table_started(&self, _: &str, _: u64) {}
    fn rows_sent(&self, table: &str, _: u64, _: u64) {
        if let Some(cancel) = &self.cancel_on_rows {
            cancel.cancel();
        }
        if table == "posts" {
            let gate = self.posts_gate.lock().unwrap().take();
            if let Some(gate) = gate {
                gate.recv().unwrap();
            }
        }
    }
    fn table_finished(&self, table: &str) {
        self.events.lock().unwrap().push(format!("{table} loaded"));
    }
    fn step_finished(&self, table: &str, step: &str) {
        self.events.lock().unwrap().push(format!("{table} {step}"));
    }
}

/// A SQLite file: `authors` (small), `posts` (large, referencing authors),
/// and `tags` (small, its last row's text holding `tag_text`).
fn source_file(dir: &Path, tag_text: &str) -> std::path::PathBuf {
    let path = dir.join("source.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES authors(id), body TEXT);
         CREATE INDEX posts_author ON posts(author_id);
         CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT);
         INSERT INTO authors VALUES (1, 'ann'), (2, 'bob');
         INSERT INTO tags VALUES (1, 'first');",
    )
    .unwrap();
    db.execute_batch(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {LARGE_ROWS})
         INSERT INTO posts SELECT i, 1 + i % 2, printf('post %d %s', i, hex(randomblob(20))) FROM n;"
    ))
    .unwrap();
    db.execute("INSERT INTO tags VALUES (2, ?1)", [tag_text])
        .unwrap();
    path
}

/// The source of [`source_file`] with an expression index on `tags` that
/// the target makes slow ([`slow_index_function`]); with `bad_last_post`,
/// the last row of `posts` holds a NUL the target cannot take.
fn slow_index_source(dir: &Path, bad_last_post: bool) -> std::path::PathBuf {
    let path = source_file(dir, "plain");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch("CREATE INDEX tags_slow ON tags (instr(label, 'x'))")
        .unwrap();
    if bad_last_post {
        db.execute(
            "UPDATE posts SET body = 'nul ' || char(0) || ' inside' WHERE id = ?1",
            [LARGE_ROWS],
        )
        .unwrap();
    }
    path
}

/// In database `db`: `instr(text, text)` (which a translated SQLite index
/// calls) sleeping 30 s per row, and counting in the sequence `slow_rows`
/// the rows it got through.
fn slow_index_function(cluster: &Cluster, db: &str) {
    cluster.psql(
        db,
        "CREATE SEQUENCE slow_rows;
         CREATE FUNCTION instr(t text, s text) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS
           $$ BEGIN PERFORM pg_sleep(30); PERFORM nextval('public.slow_rows'); RETURN strpos(t, s); END $$;",
    );
}

/// Rows the slow index function got through.
fn slow_rows(cluster: &Cluster, db: &str) -> String {
    cluster.psql(
        db,
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM slow_rows",
    )
}

/// Statements running in database `db`, other than the one asking.
fn active_statements(cluster: &Cluster, db: &str) -> String {
    cluster.psql(
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()",
    )
}

/// Whether a child process of this test named `name` exists.
fn child_named(name: &str) -> bool {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid …
        let Some((comm, rest)) = stat.split_once(") ") else {
            return false;
        };
        comm.ends_with(&format!("({name}")) && rest.split(' ').nth(1) == Some(me.as_str())
    })
}

/// Return once `sql` (a count) gives 0 in `config`'s database; panics after
/// a minute, naming `what`.
async fn once_none(config: &ConnConfig, sql: &str, what: &str) {
    let (client, _connection) = pgharbor_conn::connect(config).await.unwrap();
    for _ in 0..1200 {
        let left: i64 = client.query_one(sql, &[]).await.unwrap().get(0);
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}");
}

/// Return once a statement like `pattern` runs in `target`'s database.
async fn once_running(target: &ConnConfig, pattern: &str) {
    let (client, _connection) = pgharbor_conn::connect(target).await.unwrap();
    loop {
        let running: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND state = 'active' AND pid <> pg_backend_pid() AND query LIKE $1",
                &[&pattern],
            )
            .await
            .unwrap()
            .get(0);
        if running > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Run `work`, cancelling `cancel` once the slow index builds in
/// `target`'s database; the error it ends with.
async fn cancelled_while_indexing<T: std::fmt::Debug>(
    work: impl std::future::Future<Output = Result<T, MigrateError>>,
    target: &ConnConfig,
    cancel: &CancellationToken,
) -> MigrateError {
    let (outcome, ()) = tokio::join!(work, async {
        once_running(target, "%CREATE INDEX%tags_slow%").await;
        cancel.cancel();
    });
    outcome.unwrap_err()
}

/// `err` ended a run cancelled while the slow index built in `db`: no
/// statement of it runs on, the build was cancelled in its first row, and
/// the message says `--resume` finishes the work.
fn assert_stopped_for_resume(cluster: &Cluster, db: &str, err: &MigrateError) {
    assert_eq!(err.kind(), MigrateErrorKind::Interrupted, "{err}");
    let message = pgharbor_migrate::error::explain(err);
    assert!(message.contains("--resume"), "{message}");
    assert_eq!(active_statements(cluster, db), "0");
    assert_eq!(slow_rows(cluster, db), "0");
}

/// The slow index function of `db`, fast again.
fn make_index_fast(cluster: &Cluster, db: &str) {
    cluster.psql(
        db,
        "CREATE OR REPLACE FUNCTION instr(t text, s text) RETURNS integer LANGUAGE sql IMMUTABLE AS
           $$ SELECT strpos(t, s) $$",
    );
}

fn config(cluster: &Cluster, db: &str) -> ConnConfig {
    ConnConfig::parse(&cluster.url(db)).unwrap()
}

fn options(jobs: usize) -> MigrateOptions {
    MigrateOptions {
        jobs,
        drop_existing: false,
        verify: true,
        create_database: false,
    }
}

async fn migrate(
    path: &Path,
    target: &ConnConfig,
    jobs: usize,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<pgharbor_core::report::MigrationReport, pgharbor_migrate::MigrateError> {
    let (snapshot, plan) = pgharbor_sqlite::source::plan_file(path, &PlanOptions::default(), jobs)?;
    sqlite::migrate(
        "source.db",
        snapshot,
        plan,
        target,
        &options(jobs),
        progress,
        cancel,
    )
    .await
}

fn tables(cluster: &Cluster, db: &str) -> String {
    cluster.psql(
        db,
        "SELECT string_agg(nspname || '.' || relname, ',' ORDER BY nspname || '.' || relname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE relkind = 'r' \
         AND nspname NOT IN ('pg_catalog', 'information_schema')",
    )
}

/// A schema-creating run lands every row, keys and foreign key, verified,
/// and reports its stages.
async fn create_schema(cluster: &Cluster, dir: &Path) {
    cluster.create_database("create_schema");
    let path = source_file(dir, "plain");
    let recorder = Arc::new(Recorder::default());
    let report = migrate(
        &path,
        &config(cluster, "create_schema"),
        2,
        recorder.clone(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.verified, Some(true), "{report:#?}");
    assert_eq!(report.total_rows, LARGE_ROWS as u64 + 4);
    let phases: Vec<&str> = report.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(phases, ["load", "finish", "verify"]);
    let constraints = cluster.psql(
        "create_schema",
        "SELECT string_agg(conrelid::regclass::text || ':' || contype::text, ',' ORDER BY conrelid::regclass::text, contype) FROM pg_constraint \
         WHERE connamespace = 'public'::regnamespace",
    );
    assert_eq!(constraints, "authors:p,posts:f,posts:p,tags:p");
    assert_eq!(
        tables(cluster, "create_schema"),
        "public.authors,public.posts,public.tags",
        "the record of created tables is gone"
    );
    let events = recorder.events();
    for table in ["authors", "posts", "tags"] {
        assert!(
            recorder.position(&format!("{table} loaded"))
                < recorder.position(&format!("{table} verified")),
            "{table} is verified after it is loaded: {events:#?}"
        );
    }
    let foreign_keys = recorder.position("posts foreign keys");
    for keyed in ["posts index", "authors index"] {
        assert!(
            events.iter().rposition(|e| e == keyed).unwrap() < foreign_keys,
            "the foreign key waits for both tables' keys: {events:#?}"
        );
    }
}

/// With one worker the order is the schedule's alone: the large table
/// (loaded first) is indexed and verified before the next table loads.
async fn scheduled_per_table(cluster: &Cluster, dir: &Path) {
    cluster.create_database("scheduled");
    let path = source_file(dir, "plain");
    let recorder = Arc::new(Recorder::default());
    let report = migrate(
        &path,
        &config(cluster, "scheduled"),
        1,
        recorder.clone(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.verified, Some(true));
    let events = recorder.events();
    assert!(
        recorder.position("posts verified") < recorder.position("tags loaded"),
        "the large table's verification ends before another table's load: {events:#?}"
    );
    assert!(
        recorder.position("posts index") < recorder.position("authors loaded"),
        "the large table's index builds start before the others load: {events:#?}"
    );
}

/// Loading into tables the application created: rows land in its schema,
/// verified with its types, and the resume journal is gone.
async fn into_existing(cluster: &Cluster, dir: &Path) {
    cluster.create_database("existing");
    cluster.psql(
        "existing",
        "CREATE TABLE authors (id bigint PRIMARY KEY, name varchar(40) NOT NULL);
         CREATE TABLE posts (id bigserial PRIMARY KEY, author_id bigint REFERENCES authors, body text);
         CREATE TABLE tags (id int PRIMARY KEY, label text);",
    );
    let path = source_file(dir, "plain");
    let target = config(cluster, "existing");
    let options = ExistingOptions {
        schema: "public".into(),
        jobs: 2,
        verify: true,
        ..ExistingOptions::default()
    };
    let report = load_existing(&path, &target, &options, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.verified, Some(true), "{report:#?}");
    assert_eq!(
        cluster.psql("existing", "SELECT count(*) FROM posts"),
        LARGE_ROWS.to_string()
    );
    assert_eq!(
        cluster.psql(
            "existing",
            "SELECT nextval(pg_get_serial_sequence('posts', 'id')) > max(id) FROM posts"
        ),
        "t",
        "the sequence moved above the data"
    );
    assert_eq!(
        tables(cluster, "existing"),
        "public.authors,public.posts,public.tags",
        "no journal is left"
    );
}

/// `path` loaded into the existing tables of `target` with `options`,
/// until `cancel`.
async fn load_existing(
    path: &Path,
    target: &ConnConfig,
    options: &ExistingOptions,
    cancel: &CancellationToken,
) -> Result<pgharbor_core::report::MigrationReport, MigrateError> {
    let (snapshot, schema) = pgharbor_sqlite::source::inspect_file(path, 2).unwrap();
    existing::migrate_into_existing(
        "source.db",
        snapshot,
        schema,
        target,
        options,
        Arc::new(Recorder::default()),
        cancel,
    )
    .await
}

/// `path` loaded into database `db` of `cluster` with `options`.
async fn load_into_existing(
    cluster: &Cluster,
    db: &str,
    path: &Path,
    options: &ExistingOptions,
) -> pgharbor_core::report::MigrationReport {
    load_existing(
        path,
        &config(cluster, db),
        options,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// Rows the application seeded in a table others reference (n8n's shell
/// owner in `user`) are replaced: the referencing tables, empty, are
/// emptied in the same statement, as PostgreSQL requires.
async fn seeded_parent_replaced(cluster: &Cluster, dir: &Path) {
    cluster.create_database("seeded");
    cluster.psql(
        "seeded",
        "CREATE TABLE authors (id bigint PRIMARY KEY, name varchar(40) NOT NULL);
         CREATE TABLE posts (id bigserial PRIMARY KEY, author_id bigint REFERENCES authors, body text);
         CREATE TABLE tags (id int PRIMARY KEY, label text);
         INSERT INTO authors VALUES (999, 'seeded by the application');",
    );
    let path = source_file(dir, "plain");
    let options = ExistingOptions {
        schema: "public".into(),
        jobs: 2,
        verify: true,
        replaced_tables: vec!["authors".into()],
        ..ExistingOptions::default()
    };
    let report = load_into_existing(cluster, "seeded", &path, &options).await;
    assert_eq!(report.verified, Some(true), "{report:#?}");
    assert_eq!(
        cluster.psql("seeded", "SELECT count(*) FROM authors WHERE id = 999"),
        "0"
    );
}

/// A row the target changes as it lands (a trigger of the application's)
/// fails verification, and the report names it: the source side digested
/// during the load is compared with what PostgreSQL returns.
async fn changed_on_arrival(cluster: &Cluster, dir: &Path) {
    cluster.create_database("changed");
    cluster.psql(
        "changed",
        "CREATE TABLE authors (id bigint PRIMARY KEY, name text NOT NULL);
         CREATE TABLE posts (id bigint PRIMARY KEY, author_id bigint REFERENCES authors, body text);
         CREATE TABLE tags (id int PRIMARY KEY, label text);
         CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id = 2 THEN NEW.label := upper(NEW.label); END IF; RETURN NEW; END $$;
         CREATE TRIGGER shout BEFORE INSERT ON tags FOR EACH ROW EXECUTE FUNCTION shout();",
    );
    let path = source_file(dir, "quiet");
    let options = ExistingOptions {
        schema: "public".into(),
        jobs: 2,
        verify: true,
        ..ExistingOptions::default()
    };
    let report = load_into_existing(cluster, "changed", &path, &options).await;
    assert_eq!(report.verified, Some(false), "{report:#?}");
    let tags = report.tables.iter().find(|t| t.source == "tags").unwrap();
    let verification = tags.verification.as_ref().unwrap();
    assert!(!verification.matches);
    assert_eq!((verification.source_rows, verification.target_rows), (2, 2));
    let named = format!("{:?}", verification.sample_differences);
    assert!(named.contains("id=2"), "{named}");
    let posts = report.tables.iter().find(|t| t.source == "posts").unwrap();
    assert!(posts.verification.as_ref().unwrap().matches);
}

/// A cancelled run stops, says where, and removes what it created.
async fn cancelled(cluster: &Cluster, dir: &Path) {
    cluster.create_database("cancelled");
    let path = source_file(dir, "plain");
    let cancel = CancellationToken::new();
    let recorder = Arc::new(Recorder {
        cancel_on_rows: Some(cancel.clone()),
        ..Recorder::default()
    });
    let err = migrate(&path, &config(cluster, "cancelled"), 2, recorder, &cancel)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), MigrateErrorKind::Interrupted, "{err}");
    assert!(
        err.to_string().starts_with("interrupted while loading"),
        "{err}"
    );
    assert_eq!(tables(cluster, "cancelled"), "", "nothing is left behind");
}

/// Cancelled while an index builds (slowly, on purpose): the build is
/// cancelled on the server, the run stops as soon as the server answered,
/// and the tables it created are removed.
async fn cancelled_during_an_index_build(cluster: &Cluster, dir: &Path) {
    cluster.create_database("cancel_index");
    slow_index_function(cluster, "cancel_index");
    let path = slow_index_source(dir, false);
    let target = config(cluster, "cancel_index");
    let cancel = CancellationToken::new();
    let migrating = migrate(&path, &target, 2, Arc::new(Recorder::default()), &cancel);
    let err = cancelled_while_indexing(migrating, &target, &cancel).await;
    assert_eq!(err.kind(), MigrateErrorKind::Interrupted, "{err}");
    assert!(err.to_string().starts_with("interrupted while"), "{err}");
    assert_eq!(
        active_statements(cluster, "cancel_index"),
        "0",
        "no statement of the run runs on"
    );
    assert_eq!(
        slow_rows(cluster, "cancel_index"),
        "0",
        "the index build was cancelled in its first row"
    );
    assert_eq!(
        tables(cluster, "cancel_index"),
        "",
        "nothing is left behind"
    );
}

/// A failing load stops an index build running on another worker at once;
/// the error is the failing table's.
async fn failure_stops_the_other_workers(cluster: &Cluster, dir: &Path) {
    cluster.create_database("fail_index");
    slow_index_function(cluster, "fail_index");
    let path = slow_index_source(dir, true);
    let target = config(cluster, "fail_index");
    let (open_gate, gate) = mpsc::channel();
    let recorder = Arc::new(Recorder {
        posts_gate: Mutex::new(Some(gate)),
        ..Recorder::default()
    });
    let never = CancellationToken::new();
    let (outcome, ()) = tokio::join!(migrate(&path, &target, 2, recorder, &never), async {
        // The load of posts, on one worker, fails only once the other
        // worker builds the slow index.
        once_running(&target, "%CREATE INDEX%tags_slow%").await;
        open_gate.send(()).unwrap();
    });
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), MigrateErrorKind::Conversion, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("\"posts\"") && message.contains(&format!("id={LARGE_ROWS}")),
        "the failing table's error: {message}"
    );
    assert_eq!(active_statements(cluster, "fail_index"), "0");
    assert_eq!(
        slow_rows(cluster, "fail_index"),
        "0",
        "the index build was cancelled, not waited for"
    );
    assert_eq!(tables(cluster, "fail_index"), "", "nothing is left behind");
}

/// Into existing tables: cancelled while an index the run dropped is
/// rebuilt, the build stops on the server, the journal keeps what to do,
/// and `--resume` builds the index.
async fn into_existing_cancelled_during_a_rebuild(cluster: &Cluster, dir: &Path) {
    let db = "cancel_rebuild";
    cluster.create_database(db);
    slow_index_function(cluster, db);
    cluster.psql(
        db,
        "CREATE TABLE authors (id bigint PRIMARY KEY, name varchar(40) NOT NULL);
         CREATE TABLE posts (id bigserial PRIMARY KEY, author_id bigint REFERENCES authors, body text);
         CREATE TABLE tags (id int PRIMARY KEY, label text);
         CREATE INDEX tags_slow ON tags (instr(label, 'x'));",
    );
    let path = source_file(dir, "plain");
    let target = config(cluster, db);
    let mut options = ExistingOptions {
        schema: "public".into(),
        jobs: 2,
        verify: true,
        ..ExistingOptions::default()
    };
    let cancel = CancellationToken::new();
    let loading = load_existing(&path, &target, &options, &cancel);
    let err = cancelled_while_indexing(loading, &target, &cancel).await;
    assert_stopped_for_resume(cluster, db, &err);
    make_index_fast(cluster, db);
    options.resume = true;
    let report = load_into_existing(cluster, db, &path, &options).await;
    assert_eq!(report.verified, Some(true), "{report:#?}");
    assert_eq!(
        cluster.psql(
            db,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'tags_slow'"
        ),
        "1",
        "--resume built the index the cancelled run dropped"
    );
}

/// A PostgreSQL copy cancelled while the target builds an index (made slow
/// on purpose): the build is cancelled on the server, the journal keeps
/// what to do, and `--resume` finishes the copy.
async fn postgres_copy_cancelled_during_an_index_build(cluster: &Cluster) {
    cluster.create_database("copy_source");
    cluster.create_database("copy_target");
    cluster.psql(
        "copy_source",
        "CREATE SEQUENCE slow_rows;
         CREATE FUNCTION instr(t text, s text) RETURNS integer LANGUAGE sql IMMUTABLE AS
           $$ SELECT strpos(t, s) $$;
         CREATE TABLE tags (id int PRIMARY KEY, label text);
         INSERT INTO tags VALUES (1, 'first'), (2, 'second');
         CREATE INDEX tags_slow ON tags (instr(label, 'x'));
         CREATE OR REPLACE FUNCTION instr(t text, s text) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS
           $$ BEGIN PERFORM pg_sleep(30); PERFORM nextval('public.slow_rows'); RETURN strpos(t, s); END $$;",
    );
    let (source, target) = (
        config(cluster, "copy_source"),
        config(cluster, "copy_target"),
    );
    let mut options = CopyOptions {
        jobs: 2,
        ..CopyOptions::default()
    };
    let cancel = CancellationToken::new();
    let copying = copy_database(
        &source,
        &target,
        &options,
        Arc::new(Recorder::default()),
        &cancel,
    );
    let err = cancelled_while_indexing(copying, &target, &cancel).await;
    assert_stopped_for_resume(cluster, "copy_target", &err);
    make_index_fast(cluster, "copy_target");
    options.resume = true;
    let report = copy_database(
        &source,
        &target,
        &options,
        Arc::new(Recorder::default()),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(report.tables.iter().all(|t| t.matches()), "{report:#?}");
    assert_eq!(
        cluster.psql(
            "copy_target",
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'tags_slow'"
        ),
        "1"
    );
}

/// A PostgreSQL copy cancelled while `pg_dump` waits for a lock the test
/// holds on a source table: `pg_dump` is asked to stop (and cancels its
/// statement), none is left running, the run says nothing was copied, and
/// the same copy then runs through.
async fn postgres_copy_cancelled_during_pg_dump(cluster: &Cluster) {
    cluster.create_database("dump_source");
    cluster.create_database("dump_target");
    cluster.psql(
        "dump_source",
        "CREATE TABLE held (id int PRIMARY KEY, label text);
         INSERT INTO held SELECT g, 'row ' || g FROM generate_series(1, 100) g;",
    );
    let (source, target) = (
        config(cluster, "dump_source"),
        config(cluster, "dump_target"),
    );
    let (holder, _holding) = pgharbor_conn::connect(&source).await.unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let options = CopyOptions {
        jobs: 2,
        ..CopyOptions::default()
    };
    let cancel = CancellationToken::new();
    let copying = copy_database(
        &source,
        &target,
        &options,
        Arc::new(Recorder::default()),
        &cancel,
    );
    let (outcome, ()) = tokio::join!(copying, async {
        once_running(&source, "LOCK TABLE%held%").await;
        assert!(child_named("pg_dump"), "pg_dump runs the waiting LOCK");
        cancel.cancel();
    });
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), MigrateErrorKind::Interrupted, "{err}");
    let message = pgharbor_migrate::error::explain(&err);
    assert!(message.contains("Nothing was copied"), "{message}");
    assert!(!child_named("pg_dump"), "pg_dump was stopped and reaped");
    once_none(
        &source,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = 'pg_dump' AND state = 'active'",
        "pg_dump's LOCK still waits on the server: it was not cancelled",
    )
    .await;
    assert_eq!(tables(cluster, "dump_target"), "", "nothing was copied");
    holder.batch_execute("ROLLBACK").await.unwrap();
    let report = copy_database(
        &source,
        &target,
        &options,
        Arc::new(Recorder::default()),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(
        report
            .tables
            .iter()
            .all(|t| t.matches() && t.target_rows == Some(100)),
        "{report:#?}"
    );
}

/// A PostgreSQL copy cancelled while it writes a large object (waiting for
/// a transaction of the test's writing the same object on the target): the
/// write is cancelled on the server, the journal keeps the tables copied,
/// and `--resume` finishes the copy, verified.
async fn postgres_copy_cancelled_during_large_objects(cluster: &Cluster) {
    cluster.create_database("lo_source");
    cluster.create_database("lo_target");
    cluster.psql(
        "lo_source",
        "CREATE TABLE doc (id int PRIMARY KEY, body text);
         INSERT INTO doc SELECT g, 'doc ' || g FROM generate_series(1, 100) g;",
    );
    let oid = cluster.psql(
        "lo_source",
        "SELECT lo_from_bytea(0, convert_to(repeat('large object ', 1000), 'UTF8'))",
    );
    let (source, target) = (config(cluster, "lo_source"), config(cluster, "lo_target"));
    let (reached, at_loading) = mpsc::channel();
    let (open_gate, gate) = mpsc::channel();
    let recorder = Arc::new(Recorder {
        phase_gate: Mutex::new(Some(PhaseGate {
            phase: "loading",
            reached,
            go: gate,
        })),
        ..Recorder::default()
    });
    // Once the schema (with the large object, empty) is in, the test
    // writes the object in a transaction it keeps open.
    let (writer_target, put) = (
        target.clone(),
        format!("BEGIN; SELECT lo_put({oid}, 0, '\\x00')"),
    );
    let writer = tokio::spawn(async move {
        tokio::task::spawn_blocking(move || at_loading.recv().unwrap())
            .await
            .unwrap();
        let connected = pgharbor_conn::connect(&writer_target).await.unwrap();
        connected.0.batch_execute(&put).await.unwrap();
        open_gate.send(()).unwrap();
        connected
    });
    let mut options = CopyOptions {
        jobs: 2,
        ..CopyOptions::default()
    };
    let cancel = CancellationToken::new();
    let copying = copy_database(&source, &target, &options, recorder, &cancel);
    let (outcome, (writer, _writing)) = tokio::join!(copying, async {
        // The schema's own lo_create ran before the test's write.
        let writer = writer.await.unwrap();
        once_running(&target, "%pg_catalog.lo_%").await;
        cancel.cancel();
        writer
    });
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), MigrateErrorKind::Interrupted, "{err}");
    let message = pgharbor_migrate::error::explain(&err);
    assert!(message.contains("--resume"), "{message}");
    assert_eq!(
        active_statements(cluster, "lo_target"),
        "0",
        "the large object's write was cancelled on the server"
    );
    writer.batch_execute("ROLLBACK").await.unwrap();
    options.resume = true;
    let report = copy_database(
        &source,
        &target,
        &options,
        Arc::new(Recorder::default()),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(report.resumed && report.large_objects == 1, "{report:#?}");
    assert!(report.tables.iter().all(|t| t.matches()), "{report:#?}");
    let content = format!("SELECT md5(lo_get({oid}))");
    assert_eq!(
        cluster.psql("lo_target", &content),
        cluster.psql("lo_source", &content)
    );
}

/// A PostgreSQL copy of a database holding pgharbor's journal — the `run`
/// row of the finished copy that filled it, an interrupted
/// `--into-existing` run, an older pgharbor's schema — leaves the journal
/// out: the copy is verified, the plan and the report name what was left
/// out, and the target's journal is its own.
async fn postgres_copy_leaves_the_sources_journal_out(cluster: &Cluster, dir: &Path) {
    for db in ["journal_origin", "journal_source", "journal_copy"] {
        cluster.create_database(db);
    }
    cluster.psql(
        "journal_origin",
        "CREATE TABLE authors (id bigint PRIMARY KEY, name varchar(40) NOT NULL);
         CREATE TABLE posts (id bigserial PRIMARY KEY, author_id bigint REFERENCES authors, body text);
         CREATE TABLE tags (id int PRIMARY KEY, label text);
         CREATE FUNCTION instr(t text, s text) RETURNS integer LANGUAGE sql IMMUTABLE AS
           $$ SELECT strpos(t, s) $$;
         CREATE INDEX tags_slow ON tags (instr(label, 'x'));",
    );
    let (origin, source, copy) = (
        config(cluster, "journal_origin"),
        config(cluster, "journal_source"),
        config(cluster, "journal_copy"),
    );
    let options = CopyOptions {
        jobs: 2,
        ..CopyOptions::default()
    };
    let never = CancellationToken::new();
    copy_database(
        &origin,
        &source,
        &options,
        Arc::new(Recorder::default()),
        &never,
    )
    .await
    .unwrap();
    cluster.psql(
        "journal_source",
        "CREATE SEQUENCE slow_rows;
         CREATE OR REPLACE FUNCTION instr(t text, s text) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS
           $$ BEGIN PERFORM pg_sleep(30); PERFORM nextval('public.slow_rows'); RETURN strpos(t, s); END $$;",
    );
    let existing = ExistingOptions {
        schema: "public".into(),
        jobs: 2,
        verify: true,
        ..ExistingOptions::default()
    };
    let path = source_file(dir, "plain");
    let cancel = CancellationToken::new();
    let loading = load_existing(&path, &source, &existing, &cancel);
    tokio::pin!(loading);
    tokio::select! {
        outcome = &mut loading => panic!("the load ended before its index build: {outcome:?}"),
        () = once_running(&source, "%CREATE INDEX%tags_slow%") => cancel.cancel(),
    }
    let err = loading.await.unwrap_err();
    assert_stopped_for_resume(cluster, "journal_source", &err);
    make_index_fast(cluster, "journal_source");
    assert_eq!(
        cluster.psql(
            "journal_source",
            "SELECT string_agg(path || ':' || stage, ',' ORDER BY path) FROM pgharbor_journal.run"
        ),
        "into_existing:loading,postgres_copy:finished",
        "the source holds a finished copy's run and an interrupted --into-existing"
    );
    // What an older pgharbor's copy into it left (never upgraded: no run
    // into the source follows).
    cluster.psql(
        "journal_source",
        "CREATE SCHEMA _pgharbor;
         CREATE TABLE _pgharbor.copy_run (source text, stage text, started timestamptz, finished timestamptz);
         INSERT INTO _pgharbor.copy_run VALUES ('elsewhere:5432/app', 'finished', now(), now());",
    );

    let left_out = ["_pgharbor", "pgharbor_journal"];
    assert_eq!(
        plan_copy(&source, 2).await.unwrap().journal_left_out,
        left_out
    );
    let report = copy_database(
        &source,
        &copy,
        &options,
        Arc::new(Recorder::default()),
        &never,
    )
    .await
    .unwrap();
    assert_eq!(report.journal_left_out, left_out);
    let copied: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(copied.len(), 3, "{copied:?}");
    assert!(
        copied.iter().all(|t| t.starts_with("\"public\".")),
        "{copied:?}"
    );
    assert!(
        report
            .tables
            .iter()
            .all(|t| t.matches() && t.target_rows.is_some()),
        "{report:#?}"
    );
    assert_eq!(
        tables(cluster, "journal_copy"),
        "pgharbor_journal.run,public.authors,public.posts,public.tags",
        "no journal table of the source's, no older pgharbor's schema"
    );
    assert_eq!(
        cluster.psql(
            "journal_copy",
            "SELECT string_agg(path || ':' || stage || ':' || source, ',') FROM pgharbor_journal.run"
        ),
        format!("postgres_copy:finished:{}", pgharbor_migrate::postgres::source_label(&source)),
        "the target's journal holds its own copy's run only"
    );
    let posts = "SELECT count(*) FROM posts";
    assert_eq!(
        cluster.psql("journal_copy", posts),
        cluster.psql("journal_source", posts)
    );
}

/// A value the target cannot take stops the run with the table, row and
/// column named, and every table the run created is removed.
async fn failure_cleaned_up(cluster: &Cluster, dir: &Path) {
    cluster.create_database("failed");
    let path = source_file(dir, "nul \u{0} inside");
    let err = migrate(
        &path,
        &config(cluster, "failed"),
        2,
        Arc::new(Recorder::default()),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), MigrateErrorKind::Conversion, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("\"tags\"") && message.contains("id=2") && message.contains("label"),
        "{message}"
    );
    assert_eq!(tables(cluster, "failed"), "", "nothing is left behind");
}

/// A table without keys is finished after its load: its foreign key (to a
/// larger table, loaded and keyed first), its statistics, the views.
async fn keyless_table_finished_after_its_load(cluster: &Cluster, dir: &Path) {
    cluster.create_database("keyless");
    let path = dir.join("keyless.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO parent SELECT i, 'parent ' || i FROM n;
             CREATE TABLE child (parent_id INTEGER REFERENCES parent(id), n INTEGER);
             INSERT INTO child VALUES (1, 1), (2, 2), (3, 3);
             CREATE VIEW child_names AS SELECT c.n, p.name FROM child c JOIN parent p ON p.id = c.parent_id;",
        )
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let report = migrate(
        &path,
        &config(cluster, "keyless"),
        1,
        recorder.clone(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.verified, Some(true), "{report:#?}");
    assert!(report.finish_issues.is_empty(), "{report:#?}");
    let events = recorder.events();
    for step in ["foreign keys", "statistics"] {
        assert!(
            recorder.position("child loaded") < recorder.position(&format!("child {step}")),
            "child's {step} after its load: {events:#?}"
        );
    }
    assert_eq!(
        cluster.psql(
            "keyless",
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'child'::regclass AND contype = 'f' AND convalidated"
        ),
        "1"
    );
    assert_eq!(
        cluster.psql("keyless", "SELECT count(*) FROM child_names"),
        "3"
    );
}

/// The loaders' session settings, for a role that is not a superuser: set
/// where the role may set them (large values then stored compressed with
/// LZ4 when the server has it), skipped where it may not (a superuser-only
/// setting, an unknown one, a value the server refuses), the session still
/// usable and the server's configuration unchanged.
async fn loader_session_settings(cluster: &Cluster, dir: &Path) {
    cluster.create_database("settings");
    cluster.psql(
        "settings",
        "CREATE ROLE loader LOGIN; ALTER DATABASE settings OWNER TO loader; \
         ALTER SCHEMA public OWNER TO loader",
    );
    let url = cluster
        .url("settings")
        .replacen(&format!("{}@", cluster.superuser()), "loader@", 1);
    let as_loader = ConnConfig::parse(&url).unwrap();
    let has_lz4 = cluster.psql(
        "settings",
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
    ) == "t";
    let client = target::connect(&as_loader).await.unwrap();
    let applied = target::apply_session_settings(
        &client,
        &[
            ("wal_compression", "on"),
            ("no_such_setting", "1"),
            ("default_toast_compression", "no-such-method"),
            ("default_toast_compression", "lz4"),
        ],
    )
    .await;
    let expected: &[&str] = if has_lz4 {
        &["default_toast_compression"]
    } else {
        &[]
    };
    assert_eq!(applied, expected);
    let session = client
        .query_one(
            "SELECT current_setting('default_toast_compression'), current_setting('wal_compression')",
            &[],
        )
        .await
        .unwrap();
    let toast: String = session.get(0);
    assert_eq!(toast, if has_lz4 { "lz4" } else { "pglz" });
    assert_eq!(session.get::<_, String>(1), "off");
    assert_eq!(
        cluster.psql("settings", "SHOW default_toast_compression"),
        "pglz",
        "other sessions keep the server's setting"
    );

    let path = dir.join("large.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE chat (id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
             INSERT INTO chat SELECT i, printf('{\"n\": %d, \"text\": \"%s\"}', i, replace(hex(zeroblob(4000)), '00', 'chat ')) FROM n;",
        )
        .unwrap();
    let report = migrate(
        &path,
        &as_loader,
        2,
        Arc::new(Recorder::default()),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.verified, Some(true), "{report:#?}");
    assert_eq!(
        cluster.psql(
            "settings",
            "SELECT string_agg(DISTINCT coalesce(pg_column_compression(doc), 'none'), ',') FROM chat"
        ),
        if has_lz4 { "lz4" } else { "pglz" },
        "every 20 kB document stored compressed, with LZ4 when the server has it"
    );
}

/// A Chroma move runs on the same schedule: with one worker, the largest
/// collection's table (loaded first) gets its vector index, and its checks
/// and recall are done, before the other collections' tables load.
async fn chroma_scheduled_per_collection(cluster: &Cluster, dir: &Path) {
    cluster.create_database("chroma");
    let store_dir = dir.join("store");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/chroma/1.5.9/store");
    copy_dir(&fixture, &store_dir);
    let store = chroma::open_store(&store_dir, 1).unwrap();
    let options = ChromaOptions {
        layout: Layout::Tables,
        schema: "public".into(),
        dimension: None,
        index: IndexChoice::Auto,
        jobs: 1,
        verify: true,
        recall: RecallOptions::default(),
        replace: false,
        create_database: false,
        policy: layout::policy_for(Layout::Tables, Default::default(), false),
        pgcrypto_key: None,
    };
    let recorder = Arc::new(Recorder::default());
    let report = chroma::migrate(
        "chroma:store",
        store,
        &config(cluster, "chroma"),
        &options,
        recorder.clone(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.migration.verified, Some(true), "{report:#?}");
    assert_eq!(report.collections.len(), 7);
    let largest = report.collections.iter().max_by_key(|c| c.items).unwrap();
    assert_eq!(largest.items, 2647);
    assert!(largest.recall.is_some(), "{largest:#?}");
    let table = layout::display_name_parts(&largest.tenant, &largest.database, &largest.name);
    let events = recorder.events();
    let last_load = events.iter().rposition(|e| e.ends_with(" loaded")).unwrap();
    assert!(
        recorder.position(&format!("{table} loaded"))
            < recorder.position(&format!("{table} vector index")),
        "{events:#?}"
    );
    for step in ["verified", "recall"] {
        assert!(
            recorder.position(&format!("{table} {step}")) < last_load,
            "the largest collection's {step} step ends before the last table's load: {events:#?}"
        );
    }
    assert_eq!(
        cluster.psql(
            "chroma",
            "SELECT to_regnamespace('pgharbor_journal') IS NULL"
        ),
        "t",
        "the record of the created tables is closed"
    );
}

/// Every case on one cluster of `flavor`, each in a database of its own.
fn every_case(flavor: Flavor) {
    let cluster = Cluster::start(flavor);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = || tempfile::tempdir().unwrap();
    runtime.block_on(async {
        create_schema(&cluster, dir().path()).await;
        scheduled_per_table(&cluster, dir().path()).await;
        into_existing(&cluster, dir().path()).await;
        changed_on_arrival(&cluster, dir().path()).await;
        seeded_parent_replaced(&cluster, dir().path()).await;
        cancelled(&cluster, dir().path()).await;
        failure_cleaned_up(&cluster, dir().path()).await;
        cancelled_during_an_index_build(&cluster, dir().path()).await;
        failure_stops_the_other_workers(&cluster, dir().path()).await;
        into_existing_cancelled_during_a_rebuild(&cluster, dir().path()).await;
        // Debian's pg_dump 15 is at hand for a PostgreSQL 15 source.
        if flavor == Flavor::Pg15 {
            postgres_copy_cancelled_during_an_index_build(&cluster).await;
            postgres_copy_cancelled_during_pg_dump(&cluster).await;
            postgres_copy_cancelled_during_large_objects(&cluster).await;
            postgres_copy_leaves_the_sources_journal_out(&cluster, dir().path()).await;
        }
        keyless_table_finished_after_its_load(&cluster, dir().path()).await;
        loader_session_settings(&cluster, dir().path()).await;
        if flavor == Flavor::Pg16Vector {
            chroma_scheduled_per_collection(&cluster, dir().path()).await;
        }
    });
}

#[test]
fn pipeline_on_pg16_with_pgvector() {
    every_case(Flavor::Pg16Vector);
}

#[test]
fn pipeline_on_pg15() {
    every_case(Flavor::Pg15);
}
