//! The copies of a plan around the convergence, against a real cluster: a
//! copy that finished and verified is skipped, or with `--recopy` its
//! database is dropped (never in a dry run) so it is copied again.

use pgharbor_apply::{resumes_interrupted_copy, skip_finished_copies, Copy};
use pgharbor_conn::ConnConfig;
use pgharbor_migrate::postgres::{copy_database, CopyOptions, CopyReport};
use pgharbor_migrate::{CancellationToken, MigrateError, SilentProgress};
use pgharbor_testkit::{Cluster, Flavor};
use std::sync::Arc;

fn config(cluster: &Cluster, db: &str) -> ConnConfig {
    ConnConfig::parse(&cluster.url(db)).unwrap()
}

fn database_exists(cluster: &Cluster, db: &str) -> bool {
    cluster
        .psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'"),
        )
        .trim()
        == "1"
}

/// The copy of `cluster`'s database app into its database copied.
fn app_to_copied(cluster: &Cluster) -> Copy {
    Copy {
        database: "copied".into(),
        source: config(cluster, "app"),
        target: config(cluster, "copied"),
        owner: None,
    }
}

/// `copy` run with `options`.
async fn copy_into(copy: &Copy, options: &CopyOptions) -> Result<CopyReport, MigrateError> {
    copy_database(
        &copy.source,
        &copy.target,
        options,
        Arc::new(SilentProgress),
        &CancellationToken::new(),
    )
    .await
}

/// A one-worker copy creating its database, verified.
fn copy_options() -> CopyOptions {
    CopyOptions {
        jobs: 1,
        no_owner: false,
        no_privileges: false,
        resume: false,
        no_verify: false,
        create_database: true,
        rerun_resumes: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_copy_is_skipped_and_recopy_drops_its_database_except_in_a_dry_run() {
    let cluster = Cluster::start(Flavor::Pg15);
    cluster.create_database("app");
    cluster.psql(
        "app",
        "CREATE TABLE note (id int PRIMARY KEY, body text); INSERT INTO note VALUES (1, 'kept');",
    );
    let copy = app_to_copied(&cluster);
    let copies = [copy.clone()];
    assert_eq!(
        skip_finished_copies(&copies, false, false).await.unwrap(),
        [false],
        "nothing copied yet"
    );
    let options = copy_options();
    copy_into(&copy, &options).await.unwrap();
    assert!(!resumes_interrupted_copy(&copy).await.unwrap(), "finished");
    assert_eq!(
        skip_finished_copies(&copies, false, false).await.unwrap(),
        [true]
    );
    assert_eq!(
        skip_finished_copies(&copies, true, true).await.unwrap(),
        [false],
        "--recopy --dry-run would copy again"
    );
    assert!(
        database_exists(&cluster, "copied"),
        "a dry run drops nothing"
    );
    assert_eq!(
        skip_finished_copies(&copies, true, false).await.unwrap(),
        [false]
    );
    assert!(
        !database_exists(&cluster, "copied"),
        "--recopy dropped the finished copy's database"
    );
}

/// The journal an older pgharbor kept for a copy, in its exact DDL
/// (schema `_pgharbor`).
const OLDER_COPY_JOURNAL: &str = "CREATE SCHEMA _pgharbor;
 COMMENT ON SCHEMA _pgharbor IS 'pgharbor: state of a database copy (see pgharbor migrate --resume)';
 CREATE TABLE _pgharbor.copy_run (source text NOT NULL, stage text NOT NULL,
     started timestamptz NOT NULL DEFAULT now(), finished timestamptz);
 CREATE TABLE _pgharbor.copy_table (name text NOT NULL, part int NOT NULL, parts int NOT NULL,
     rows bigint NOT NULL, PRIMARY KEY (name, part));
 CREATE TABLE _pgharbor.copy_post_data (entry int PRIMARY KEY);";

/// `sql` run in `db`, one value.
fn scalar(cluster: &Cluster, db: &str, sql: &str) -> String {
    cluster.psql(db, sql).trim().to_string()
}

/// The tables of the journal's schema in `db`.
fn journal_tables(cluster: &Cluster, db: &str) -> String {
    scalar(
        cluster,
        db,
        "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class \
         WHERE relnamespace = 'pgharbor_journal'::regnamespace AND relkind = 'r'",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_an_older_pgharbor_journaled_is_known_finished_and_resumed() {
    let cluster = Cluster::start(Flavor::Pg15);
    cluster.create_database("app");
    // Tables without post-data: the journal below has no entry applied.
    cluster.psql(
        "app",
        "CREATE TABLE note (id int, body text); INSERT INTO note SELECT g, 'note ' || g FROM generate_series(1, 500) g;
         CREATE TABLE tag (name text); INSERT INTO tag SELECT 'tag ' || g FROM generate_series(1, 300) g;",
    );
    let copy = app_to_copied(&cluster);
    let copies = [copy.clone()];
    let mut options = copy_options();
    copy_into(&copy, &options).await.unwrap();
    let label = pgharbor_migrate::postgres::source_label(&copy.source);

    // As an older pgharbor left a copy that finished.
    cluster.psql(
        "copied",
        &format!(
            "DROP SCHEMA pgharbor_journal CASCADE; {OLDER_COPY_JOURNAL}
             DROP TABLE _pgharbor.copy_table, _pgharbor.copy_post_data;
             INSERT INTO _pgharbor.copy_run (source, stage, finished) VALUES ('{label}', 'finished', now());"
        ),
    );
    assert_eq!(
        skip_finished_copies(&copies, false, false).await.unwrap(),
        [true],
        "a copy an older pgharbor finished is skipped"
    );
    assert!(!resumes_interrupted_copy(&copy).await.unwrap());
    let again = copy_into(&copy, &options).await.unwrap_err();
    assert!(
        again.to_string().contains("finished, verified copy"),
        "{again}"
    );
    assert_eq!(
        scalar(
            &cluster,
            "copied",
            "SELECT stage FROM pgharbor_journal.run WHERE path = 'postgres_copy'"
        ),
        "finished",
        "the run that looked upgraded the older journal"
    );
    assert_eq!(journal_tables(&cluster, "copied"), "run");

    // As an older pgharbor left a copy interrupted after loading note.
    cluster.psql(
        "copied",
        &format!(
            "DROP SCHEMA pgharbor_journal CASCADE; {OLDER_COPY_JOURNAL}
             TRUNCATE tag; INSERT INTO tag VALUES ('half-copied');
             INSERT INTO _pgharbor.copy_run (source, stage) VALUES ('{label}', 'schema');
             INSERT INTO _pgharbor.copy_table VALUES ('\"public\".\"note\"', 0, 1, 500);"
        ),
    );
    assert_eq!(
        skip_finished_copies(&copies, false, false).await.unwrap(),
        [false]
    );
    assert!(
        resumes_interrupted_copy(&copy).await.unwrap(),
        "an older pgharbor's interrupted copy is resumed"
    );
    options.resume = true;
    let report = copy_into(&copy, &options).await.unwrap();
    assert!(report.resumed);
    assert_eq!(
        scalar(
            &cluster,
            "copied",
            "SELECT (SELECT count(*) FROM note) || ' ' || (SELECT count(*) FROM tag WHERE name LIKE 'tag %') \
             || ' ' || (SELECT count(*) FROM tag)"
        ),
        "500 300 300"
    );
    assert_eq!(
        scalar(
            &cluster,
            "copied",
            "SELECT (SELECT stage FROM pgharbor_journal.run WHERE path = 'postgres_copy') \
             || ' ' || (to_regnamespace('_pgharbor') IS NULL)"
        ),
        "finished true"
    );
    assert_eq!(
        journal_tables(&cluster, "copied"),
        "run",
        "a finished copy keeps its run row only"
    );
    assert_eq!(
        skip_finished_copies(&copies, false, false).await.unwrap(),
        [true]
    );
}
