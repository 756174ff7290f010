//! `pgharbor verify`: counts and content checksums without copying.

use crate::harness::{databases, pgharbor, Scratch};
use pgharbor_testkit::Flavor;

#[test]
fn verify_passes_after_a_migration_and_names_changed_rows() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "v.db",
        "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, meta JSON);\
         INSERT INTO item VALUES (1, 'one', '{\"b\": 1, \"a\": [1.50, 2]}'), (2, 'two', '[]'), (3, 'three', 'null');\
         CREATE TABLE nokey (v TEXT); INSERT INTO nokey VALUES ('x'), ('x'), ('y');",
    );
    let pg = databases(Flavor::Pg15);
    let url = pg.url("verify");
    pgharbor(&["migrate", db.to_str().unwrap(), &url, "--no-verify"]).success();
    let ok = pgharbor(&["verify", db.to_str().unwrap(), &url]).success();
    assert!(ok.stdout.contains("every table matches"), "{}", ok.stdout);

    pg.psql("verify", "UPDATE item SET name = 'TWO' WHERE id = 2; DELETE FROM nokey WHERE v = 'y'; INSERT INTO nokey VALUES ('z');");
    let bad = pgharbor(&["verify", db.to_str().unwrap(), &url]);
    assert_eq!(bad.code, 1, "{}", bad.all());
    assert!(
        bad.stdout.contains("verification FAILED for item"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains("id=2"),
        "the changed row is named: {}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains("verification FAILED for nokey"),
        "{}",
        bad.stdout
    );
}

#[test]
fn a_lost_row_fails_verification() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "l.db",
        "CREATE TABLE t (id TEXT PRIMARY KEY, v INTEGER); INSERT INTO t VALUES ('a', 1), ('b', 2);",
    );
    let pg = databases(Flavor::Pg15);
    let url = pg.url("lost");
    pgharbor(&["migrate", db.to_str().unwrap(), &url]).success();
    pg.psql("lost", "DELETE FROM t WHERE id = 'b'");
    let run = pgharbor(&["verify", db.to_str().unwrap(), &url, "--json"]);
    assert_eq!(run.code, 1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], false);
    let diffs = report["tables"][0]["verification"]["sample_differences"].to_string();
    assert!(
        diffs.contains("id='b'") && diffs.contains("missing"),
        "{diffs}"
    );
}
