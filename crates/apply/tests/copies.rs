//! The copies of a plan around the convergence, against a real cluster: a
//! copy that finished and verified is skipped, or with `--recopy` its
//! database is dropped (never in a dry run) so it is copied again.

use pgharbor_apply::{resumes_interrupted_copy, skip_finished_copies, Copy};
use pgharbor_conn::ConnConfig;
use pgharbor_migrate::postgres::{copy_database, CopyOptions};
use pgharbor_migrate::{CancellationToken, SilentProgress};
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

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_copy_is_skipped_and_recopy_drops_its_database_except_in_a_dry_run() {
    let cluster = Cluster::start(Flavor::Pg15);
    cluster.create_database("app");
    cluster.psql(
        "app",
        "CREATE TABLE note (id int PRIMARY KEY, body text); INSERT INTO note VALUES (1, 'kept');",
    );
    let copy = Copy {
        database: "copied".into(),
        source: config(&cluster, "app"),
        target: config(&cluster, "copied"),
        owner: None,
    };
    let copies = [copy.clone()];
    assert_eq!(
        skip_finished_copies(&copies, false, false).await.unwrap(),
        [false],
        "nothing copied yet"
    );
    let options = CopyOptions {
        jobs: 1,
        no_owner: false,
        no_privileges: false,
        resume: false,
        no_verify: false,
        create_database: true,
        rerun_resumes: false,
    };
    copy_database(
        &copy.source,
        &copy.target,
        &options,
        Arc::new(SilentProgress),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
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
