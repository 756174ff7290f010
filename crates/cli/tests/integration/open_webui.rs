//! Open WebUI end to end: a data directory written by Open WebUI 0.12.4 itself
//! (`fixtures/openwebui/`: `webui.db` from its models, `vector_db/` from its
//! Chroma client), moved with `--preset open-webui` into the schema Open
//! WebUI's own migrations create in PostgreSQL — as it stands after Open
//! WebUI's first start, with its seeded `config` rows — then read back through
//! Open WebUI's own models and its own pgvector client, and compared with what
//! the same code reads from the SQLite file and the Chroma store.

use crate::harness::{pgharbor, query, scalar};
use pgharbor_testkit::{Cluster, Flavor};
use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/openwebui")
        .join(name)
}

#[test]
fn a_real_open_webui_data_directory_lands_in_postgres_and_open_webui_reads_it_all_back() {
    let pg = Cluster::start(Flavor::Pg16Vector);
    pg.create_database("openwebui");
    pg.psql(
        "openwebui",
        &std::fs::read_to_string(fixture("pg-first-start.sql")).unwrap(),
    );
    let data = fixture("webui.db");
    let url = pg.url("openwebui");
    let refused = pgharbor(&[
        "migrate",
        data.to_str().unwrap(),
        &url,
        "--preset",
        "open-webui",
    ]);
    assert_eq!(
        refused.code,
        1,
        "Open WebUI's seeded config rows are refused by name: {}",
        refused.all()
    );
    assert!(
        refused.stderr.contains("config") && refused.stderr.contains("--truncate"),
        "{}",
        refused.stderr
    );
    let run = pgharbor(&[
        "migrate",
        data.to_str().unwrap(),
        &url,
        "--preset",
        "open-webui",
        "--truncate",
        "--json",
    ])
    .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let database = &report["database"];
    assert_eq!(database["verified"], true, "{}", run.stdout);
    assert!(
        database["lossy"]["nul_stripped"].as_u64().unwrap() > 0,
        "the fixture holds NULs: {}",
        run.stdout
    );
    let vectors = &report["vectors"];
    assert_eq!(vectors["migration"]["verified"], true, "{}", run.stdout);
    assert!(
        run.stderr.contains("VECTOR_DB=pgvector")
            && run
                .stderr
                .contains("PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH=1536"),
        "{}",
        run.stderr
    );
    assert_eq!(
        scalar(&pg, "openwebui", "SELECT count(*) FROM document_chunk"),
        vectors["migration"]["total_rows"].to_string()
    );
    assert_eq!(
        query(&pg, "openwebui", "SELECT version_num FROM alembic_version"),
        ["0bd252b206fb"]
    );

    let actual = tempfile::NamedTempFile::new().unwrap();
    let read_back = Command::new("python3")
        .arg(fixture("gen.py"))
        .args(["read-back", "--url", &url, "--out"])
        .arg(actual.path())
        .output()
        .expect("run gen.py read-back");
    assert!(
        read_back.status.success(),
        "Open WebUI's models could not read the migrated database: {}",
        String::from_utf8_lossy(&read_back.stderr)
    );
    let compared = Command::new("python3")
        .arg(fixture("gen.py"))
        .arg("compare")
        .arg(fixture("expected.json"))
        .arg(actual.path())
        .output()
        .expect("run gen.py compare");
    assert!(
        compared.status.success(),
        "Open WebUI reads different data from PostgreSQL than from SQLite:\n{}{}",
        String::from_utf8_lossy(&compared.stdout),
        String::from_utf8_lossy(&compared.stderr)
    );

    let round_trip = Command::new(fixture("vector-roundtrip.sh"))
        .arg(&url)
        .arg(fixture(""))
        .output()
        .expect("run vector-roundtrip.sh");
    assert!(
        round_trip.status.success(),
        "Open WebUI's pgvector client finds other chunks than its Chroma client:\n{}{}",
        String::from_utf8_lossy(&round_trip.stdout),
        String::from_utf8_lossy(&round_trip.stderr)
    );
}

/// `fixtures/openwebui` itself: Open WebUI's data directory.
fn data_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/openwebui")
}

#[test]
fn open_webuis_data_directory_without_the_preset_is_recognised_and_moved_as_the_preset_moves_it() {
    let pg = Cluster::start(Flavor::Pg16Vector);
    pg.create_database("openwebui");
    pg.psql(
        "openwebui",
        &std::fs::read_to_string(fixture("pg-first-start.sql")).unwrap(),
    );
    let data = data_directory();
    let url = pg.url("openwebui");
    let run = pgharbor(&["migrate", data.to_str().unwrap(), &url, "--truncate"]).success();
    assert!(
        run.stderr.contains(&format!(
            "pgharbor: {} is Open WebUI's data directory (webui.db, vector_db/): moving it as --preset open-webui does",
            data.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("every table matches")
            && run.stdout.contains("value(s) NUL-stripped")
            && run.stdout.contains("PGVECTOR_DB_URL=")
            && run.stdout.contains("VECTOR_DB=pgvector"),
        "the database (NULs stripped as the preset does) and then vector_db/: {}",
        run.stdout
    );
    assert_ne!(
        scalar(&pg, "openwebui", "SELECT count(*) FROM document_chunk"),
        "0"
    );
    let verify = pgharbor(&["verify", data.to_str().unwrap(), &url]).success();
    assert!(
        verify.stdout.contains("every table matches"),
        "{}",
        verify.all()
    );
}

#[test]
fn a_directory_that_is_no_known_source_names_what_it_lacks_and_the_databases_it_holds() {
    let scratch = crate::harness::Scratch::new();
    let dir = scratch.path("data");
    std::fs::create_dir_all(&dir).unwrap();
    let empty = pgharbor(&["migrate", dir.to_str().unwrap(), "--dry-run"]);
    assert_eq!(empty.code, 1, "{}", empty.all());
    assert!(
        empty.stderr.contains("is a directory, not an SQLite database file")
            && empty.stderr.contains("neither webui.db (Open WebUI's data directory) nor chroma.sqlite3 (a Chroma store)"),
        "{}",
        empty.stderr
    );
    std::fs::copy(fixture("webui.db"), dir.join("app.db")).unwrap();
    let named = pgharbor(&["migrate", dir.to_str().unwrap(), "--dry-run"]);
    assert_eq!(named.code, 1, "{}", named.all());
    assert!(
        named
            .stderr
            .contains("SQLite databases in it: app.db (give one of them as SOURCE)"),
        "{}",
        named.stderr
    );
    std::fs::copy(fixture("webui.db"), dir.join("webui.db")).unwrap();
    std::fs::copy(fixture("webui.db"), dir.join("chroma.sqlite3")).unwrap();
    let both = pgharbor(&["migrate", dir.to_str().unwrap(), "--dry-run"]);
    assert_eq!(both.code, 2, "{}", both.all());
    assert!(
        both.stderr.contains("--preset open-webui") && both.stderr.contains("chroma:"),
        "{}",
        both.stderr
    );
}
