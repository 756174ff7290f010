//! A second real application with its own migrations: a Django 5.2 project
//! (`fixtures/django/`). Django's migrations made both `app.db` and the
//! PostgreSQL schema; after `--into-existing`, Django's own ORM must read the
//! same data from PostgreSQL as from SQLite (`expected.json`), and insert new
//! rows without key collisions (sequences moved above the data).

use crate::harness::{databases, pgharbor};
use pgharbor_testkit::Flavor;
use std::path::PathBuf;
use std::process::Command;

fn django_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/django")
        .join(name)
}

#[test]
fn a_django_database_lands_in_djangos_own_schema_and_the_orm_reads_it_back() {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/django-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run fixtures/django/build.sh --venv (scripts/test.sh does)",
        python.display()
    );
    let pg = databases(Flavor::Pg15);
    pg.create_database("django");
    // A server time zone far from UTC: Django's naive UTC text must not be read in it.
    pg.alter_database("django", "SET timezone = 'America/New_York'");
    pg.psql(
        "django",
        &std::fs::read_to_string(django_fixture("pg-schema.sql")).unwrap(),
    );
    let url = pg.url("django");
    let db = django_fixture("app.db");
    let refused = pgharbor(&["migrate", db.to_str().unwrap(), &url, "--into-existing"]);
    assert_eq!(
        refused.code,
        1,
        "Django seeded content types and permissions: {}",
        refused.all()
    );
    assert!(
        refused.stderr.contains("django_content_type"),
        "{}",
        refused.stderr
    );
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &url,
        "--into-existing",
        "--truncate",
        "--json",
    ])
    .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], true, "{}", run.stdout);
    let read_back = Command::new(&python)
        .arg(django_fixture("read_back.py"))
        .arg("--write-check")
        .env("DATABASE_URL", &url)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run read_back.py");
    let stderr = String::from_utf8_lossy(&read_back.stderr);
    assert!(read_back.status.success(), "read_back.py failed: {stderr}");
    let expected = std::fs::read(django_fixture("expected.json")).unwrap();
    assert!(
        read_back.stdout == expected,
        "Django reads different data from PostgreSQL than from SQLite:\n{}",
        String::from_utf8_lossy(&read_back.stdout)
            .chars()
            .take(3000)
            .collect::<String>()
    );
}
