//! A SQLAlchemy application (`fixtures/sqlalchemy/`): SQLAlchemy creates its
//! table on SQLite and on PostgreSQL (`metadata.create_all`) and writes the
//! rows on SQLite; after `--into-existing`, SQLAlchemy must read the same rows
//! from PostgreSQL, `Interval`s (stored on SQLite as date-times counted from
//! 1970-01-01) included.

use crate::harness::{databases, pgharbor, Scratch};
use pgharbor_testkit::Flavor;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture_app() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/sqlalchemy/app.py")
}

/// Run `app.py ARGS` with the fixture's venv; its stdout.
fn app(args: &[&str]) -> String {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/sqlalchemy-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run fixtures/sqlalchemy/setup.sh (scripts/test.sh does)",
        python.display()
    );
    let output = Command::new(&python)
        .arg(fixture_app())
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run app.py");
    assert!(
        output.status.success(),
        "app.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite:///{}", path.display())
}

#[test]
fn sqlalchemy_reads_back_from_postgresql_what_it_wrote_to_sqlite_intervals_included() {
    let scratch = Scratch::new();
    let db = scratch.path("app.db");
    app(&["populate", &sqlite_url(&db)]);
    let pg = databases(Flavor::Pg15);
    pg.create_database("sqla");
    // A server time zone far from UTC: SQLAlchemy's naive UTC text must not be read in it.
    pg.alter_database("sqla", "SET timezone = 'America/New_York'");
    let url = pg.url("sqla");
    app(&["create", &url]);
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &url,
        "--into-existing",
        "--json",
    ])
    .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], true, "{}", run.stdout);
    let from_sqlite = app(&["read", &sqlite_url(&db)]);
    let from_postgres = app(&["read", &url, "--write-check"]);
    assert_eq!(
        from_postgres, from_sqlite,
        "SQLAlchemy reads different rows from PostgreSQL than from SQLite"
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&from_postgres).unwrap();
    assert_eq!(rows.len(), 24);
    let mut intervals: Vec<Option<i64>> =
        rows.iter().map(|r| r["total_run_time"].as_i64()).collect();
    intervals.sort();
    intervals.dedup();
    assert_eq!(
        intervals,
        [
            None,
            Some(-2 * 86_400_000_000 - 19 * 3_600_000_000 + 999_999),
            Some(-90_000_000),
            Some(-1),
            Some(0),
            Some(252_330),
            Some((2 * 86_400 + 4 * 3_600) * 1_000_000),
            Some((400 * 86_400 + 1) * 1_000_000 + 1),
        ],
        "zero, sub-second, over a day and negative durations"
    );
    assert_eq!(
        crate::harness::scalar(
            &pg,
            "sqla",
            "SELECT total_run_time::text FROM job WHERE id = 2"
        ),
        "00:00:00.25233"
    );
}
