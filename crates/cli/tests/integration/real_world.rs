//! Databases written by real applications and shipped in public packages
//! (fetched by `scripts/fetch-real-dbs.sh`, which `scripts/test.sh` runs),
//! and the generated application-shaped fixtures of `pgharbor-fixtures`.

use crate::harness::{databases, pgharbor, scalar, Scratch};
use pgharbor_testkit::Flavor;
use std::path::PathBuf;

fn real_db(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.cache/realdbs")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-real-dbs.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

fn migrate_and_verify(path: &std::path::Path, db: &str) -> serde_json::Value {
    let pg = databases(Flavor::Pg15);
    let run = pgharbor(&["migrate", path.to_str().unwrap(), &pg.url(db), "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json report");
    assert_eq!(report["verified"], true, "{}", run.stdout);
    let source =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    for table in report["tables"].as_array().unwrap() {
        let name = table["source"].as_str().unwrap();
        let count: i64 = source
            .query_row(
                &format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\"")),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(table["rows"].as_i64().unwrap(), count, "rows of {name}");
        let target = scalar(
            &pg,
            db,
            &format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\"")),
        );
        assert_eq!(target, count.to_string(), "target rows of {name}");
    }
    report
}

#[test]
fn proj_database_from_debian_migrates_and_verifies() {
    let report = migrate_and_verify(&real_db("proj.db"), "proj");
    assert!(report["tables"].as_array().unwrap().len() >= 30);
}

#[test]
fn zipcodes_database_from_pypi_migrates_and_verifies() {
    migrate_and_verify(&real_db("zipcodes.db"), "zip");
}

#[test]
fn r_datasets_with_dotted_column_names_migrate_and_verify() {
    migrate_and_verify(&real_db("rsqlite-datasets.db"), "rdata");
}

#[test]
fn django_application_database_migrates_and_verifies() {
    let report = migrate_and_verify(&real_db("django.db"), "django");
    assert!(report["tables"].to_string().contains("auth_user"));
}

#[test]
fn every_sqlite_failure_mode_fixture_migrates_and_verifies() {
    let scratch = Scratch::new();
    let path = scratch.path("nasty.db");
    pgharbor_fixtures::nasty(&path).unwrap();
    let report = migrate_and_verify(&path, "nasty");
    assert!(!report["widened_columns"].as_array().unwrap().is_empty());
}

#[test]
fn chat_app_fixture_migrates_with_two_workers() {
    let scratch = Scratch::new();
    let path = scratch.path("chat.db");
    pgharbor_fixtures::chat_app(
        &path,
        &pgharbor_fixtures::ChatAppOptions {
            users: 60,
            ..Default::default()
        },
    )
    .unwrap();
    migrate_and_verify(&path, "chat");
}

#[test]
fn nul_fixture_names_the_first_bad_value_and_strips_only_real_nuls() {
    let scratch = Scratch::new();
    let path = scratch.path("nul.db");
    pgharbor_fixtures::with_nul(&path).unwrap();
    let pg = databases(Flavor::Pg15);
    let url = pg.url("nul");
    let run = pgharbor(&["migrate", path.to_str().unwrap(), &url]);
    assert_eq!(run.code, 1);
    let named = pgharbor_fixtures::NUL_CELLS.iter().any(|c| {
        run.stderr.contains(&format!("\"{}\"", c.table))
            && run.stderr.contains(&format!("\"{}\"", c.column))
            && run.stderr.contains(c.key_column)
    });
    assert!(named, "the error names a known bad cell: {}", run.stderr);
    let run = pgharbor(&[
        "migrate",
        path.to_str().unwrap(),
        &url,
        "--nul",
        "strip",
        "--json",
    ])
    .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report["lossy"]["nul_stripped"].as_u64().unwrap(),
        pgharbor_fixtures::NUL_CELLS.len() as u64,
        "{}",
        run.stdout
    );
}
