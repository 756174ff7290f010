//! Ctrl-C (SIGINT) during a move: the first one stops the run's statements
//! on the server and cleans up, exit status 130; a second one, while the
//! clean-up waits, cancels the clean-up's statement and exits at once saying
//! what may be left, and the next run removes it.

use crate::harness::{databases, pgharbor, pgharbor_started, scalar, wait_for_value, Run, Scratch};
use pgharbor_testkit::{Flavor, TestDatabases};
use std::time::Duration;

/// A SQLite file whose `tags` has an expression index the target makes
/// slow (see [`slow_target`]).
fn source(scratch: &Scratch) -> std::path::PathBuf {
    scratch.sqlite(
        "slow.db",
        "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO authors VALUES (1, 'ann'), (2, 'bob');
         CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT);
         INSERT INTO tags VALUES (1, 'first'), (2, 'second');
         CREATE INDEX tags_slow ON tags (instr(label, 'x'));",
    )
}

/// Database `db` with `instr(text, text)` (which the translated index
/// calls) sleeping 30 s per row and counting in `slow_rows` the rows it got
/// through.
fn slow_target(pg: &TestDatabases, db: &str) -> String {
    pg.create_database(db);
    pg.psql(
        db,
        "CREATE SEQUENCE slow_rows;
         CREATE FUNCTION instr(t text, s text) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS
           $$ BEGIN PERFORM pg_sleep(30); PERFORM nextval('public.slow_rows'); RETURN strpos(t, s); END $$;",
    );
    pg.url(db)
}

/// Wait until a statement of database `db` matches `condition` (SQL on
/// `pg_stat_activity`).
fn wait_for_statement(pg: &TestDatabases, db: &str, condition: &str) {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND {condition}"
    );
    while scalar(pg, db, &sql) == "0" {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until no other session is connected to database `db` (those of an
/// exited process end when their server processes notice).
fn wait_until_alone(pg: &TestDatabases, db: &str) {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
               AND backend_type = 'client backend' AND pid <> pg_backend_pid()";
    while scalar(pg, db, sql) != "0" {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server's log file (next to its data directory, as the test
/// harness starts servers), as SQL.
const SERVER_LOG: &str =
    "regexp_replace(current_setting('data_directory'), '/data$', '/server.log')";

fn sigint(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
}

fn user_tables(pg: &TestDatabases, db: &str) -> String {
    scalar(
        pg,
        db,
        "SELECT coalesce(string_agg(relname, ',' ORDER BY relname), '') FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE relkind = 'r' \
         AND nspname NOT IN ('pg_catalog', 'information_schema')",
    )
}

/// `migrate` of [`source`] into [`slow_target`] `db`, started and building
/// the slow index; the source and the target's URL.
fn started_building_the_index(
    pg: &TestDatabases,
    scratch: &Scratch,
    db: &str,
) -> (std::process::Child, std::path::PathBuf, String) {
    let source = source(scratch);
    let url = slow_target(pg, db);
    let child = pgharbor_started(&["migrate", source.to_str().unwrap(), &url, "--jobs", "2"]);
    wait_for_statement(
        pg,
        db,
        "state = 'active' AND query LIKE 'CREATE INDEX%tags_slow%'",
    );
    (child, source, url)
}

#[test]
fn ctrl_c_during_an_index_build_cancels_it_and_removes_the_tables() {
    let scratch = Scratch::new();
    let pg = databases(Flavor::Pg15);
    let (child, _, _) = started_building_the_index(&pg, &scratch, "sigint");
    sigint(&child);
    let run = Run::finished(child).fails_with(
        130,
        &[
            "pgharbor: interrupted: stopping the run's work on the server and cleaning up",
            "interrupted while building keys and indexes",
            "Nothing was kept",
        ],
    );
    assert!(!run.stderr.contains("interrupted again"), "{}", run.all());
    assert_eq!(
        scalar(
            &pg,
            "sigint",
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND pid <> pg_backend_pid()"
        ),
        "0",
        "no statement of the run runs on"
    );
    assert_eq!(
        scalar(
            &pg,
            "sigint",
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM slow_rows"
        ),
        "0",
        "the index build was cancelled in its first row"
    );
    assert_eq!(user_tables(&pg, "sigint"), "", "nothing is left");
}

#[test]
fn a_second_ctrl_c_during_the_clean_up_exits_at_once_and_the_next_run_removes_what_is_left() {
    let scratch = Scratch::new();
    let pg = databases(Flavor::Pg15);
    let (child, source, url) = started_building_the_index(&pg, &scratch, "sigint2");
    // A reader of `tags` that keeps the clean-up's DROP waiting.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = pgharbor_conn::ConnConfig::parse(&url).unwrap();
    let (reader, _connection) = rt.block_on(pgharbor_conn::connect(&config)).unwrap();
    rt.block_on(reader.batch_execute("BEGIN; SELECT count(*) FROM tags"))
        .unwrap();
    sigint(&child);
    let waiting_drop = "wait_event_type = 'Lock' AND query LIKE '%DROP TABLE IF EXISTS%'";
    wait_for_statement(&pg, "sigint2", waiting_drop);
    let drop_pid = scalar(
        &pg,
        "sigint2",
        &format!("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND {waiting_drop}"),
    );
    let log_before = scalar(
        &pg,
        "sigint2",
        &format!("SELECT (pg_stat_file({SERVER_LOG})).size"),
    );
    sigint(&child);
    let run = Run::finished(child).fails_with(
        130,
        &[
            "pgharbor: interrupted again: exiting at once",
            "tables this run created may be left in the target, recorded in schema pgharbor_journal",
            "running the same command again removes exactly those first",
        ],
    );
    assert!(!run.stderr.contains("Nothing was kept"), "{}", run.all());
    // The clean-up's DROP, still waiting behind the reader (whose transaction
    // stays open), was cancelled on the server: it did not wait on for its
    // lock timeout.
    let ended = wait_for_value(
        &pg,
        "sigint2",
        &format!(
            "SELECT coalesce(substring(pg_read_file({SERVER_LOG}, {log_before}, 1000000) \
             FROM '\\[{drop_pid}\\] ERROR:  (canceling statement due to [a-z ]+)'), '')"
        ),
        "",
        None,
    );
    assert_eq!(ended, "canceling statement due to user request");
    rt.block_on(reader.batch_execute("COMMIT")).unwrap();
    drop(reader);
    wait_until_alone(&pg, "sigint2");
    assert_eq!(
        user_tables(&pg, "sigint2"),
        "authors,created_table,run,tags",
        "the tables and their record are left"
    );
    pg.psql(
        "sigint2",
        "CREATE OR REPLACE FUNCTION instr(t text, s text) RETURNS integer LANGUAGE sql IMMUTABLE AS
           $$ SELECT strpos(t, s) $$",
    );
    pgharbor(&["migrate", source.to_str().unwrap(), &url, "--jobs", "2"]).success();
    assert_eq!(
        user_tables(&pg, "sigint2"),
        "authors,tags",
        "the next run removed the leftovers and their record, then moved everything"
    );
}
