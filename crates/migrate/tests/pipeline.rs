//! The pipeline as a library, against one real cluster per PostgreSQL
//! flavour with a fresh database per case: a schema-creating run, a run
//! into existing tables, the per-table schedule (seen through the events a
//! recording [`Progress`] gets), cancellation, and a failure cleaned up;
//! a Chroma move through the same schedule.

use pgharbor_conn::ConnConfig;
use pgharbor_migrate::chroma::layout::{self, Layout};
use pgharbor_migrate::chroma::{self, ChromaOptions, IndexChoice, RecallOptions};
use pgharbor_migrate::existing::{self, ExistingOptions};
use pgharbor_migrate::sqlite::{self, MigrateOptions};
use pgharbor_migrate::{CancellationToken, MigrateErrorKind, Progress};
use pgharbor_sqlite::planner::PlanOptions;
use pgharbor_testkit::{copy_dir, Cluster, Flavor};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Rows of the large table: enough to take a while to load and verify.
const LARGE_ROWS: i64 = 30_000;

/// What a run reported, in order.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    /// Cancelled at the first rows sent, when set.
    cancel_on_rows: Option<CancellationToken>,
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
    }
    fn table_started(&self, _: &str, _: u64) {}
    fn rows_sent(&self, _: &str, _: u64, _: u64) {
        if let Some(cancel) = &self.cancel_on_rows {
            cancel.cancel();
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
    let (snapshot, plan) = sqlite::plan_file(path, &PlanOptions::default(), jobs)?;
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
    let (snapshot, schema) = sqlite::inspect_file(&path, 2).unwrap();
    let report = existing::migrate_into_existing(
        "source.db",
        snapshot,
        schema,
        &target,
        &options,
        Arc::new(Recorder::default()),
        &CancellationToken::new(),
    )
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

/// `path` loaded into database `db` of `cluster` with `options`.
async fn load_into_existing(
    cluster: &Cluster,
    db: &str,
    path: &Path,
    options: &ExistingOptions,
) -> pgharbor_core::report::MigrationReport {
    let (snapshot, schema) = sqlite::inspect_file(path, 2).unwrap();
    existing::migrate_into_existing(
        "source.db",
        snapshot,
        schema,
        &config(cluster, db),
        options,
        Arc::new(Recorder::default()),
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
            "SELECT to_regnamespace('pgharbor_created') IS NULL"
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
        keyless_table_finished_after_its_load(&cluster, dir().path()).await;
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
