//! The source-changing-underneath cells beyond a create-schema SQLite run:
//! `migrate --into-existing` with the application writing to its SQLite
//! file during the load, and `migrate chroma:DIR` with Chroma writing to its
//! store during the load.

use super::{chat_db, install_hold, remove_hold, target_state, Hold, APP_SCHEMA, MESSAGES};
use crate::harness::{cluster, pgharbor, pgharbor_started, scalar, Run, Scratch};
use pgharbor_testkit::{Cluster, Flavor};
use std::path::{Path, PathBuf};

/// The application writes to its SQLite file (WAL mode) while
/// `--into-existing` loads it into the application's own tables: the run
/// loads and verifies the file as it was when it started, says the source
/// changed and how to take the later writes (into existing tables: with
/// `--truncate`), and running that takes them.
#[test]
fn into_existing_with_the_sqlite_file_written_during_the_load_names_it_and_truncate_takes_the_writes(
) {
    let scratch = Scratch::new();
    let db = chat_db(&scratch);
    let app = rusqlite::Connection::open(&db).expect("open as the application");
    app.execute_batch("PRAGMA journal_mode = WAL")
        .expect("WAL mode");
    let pg = cluster();
    pg.create_database("liveapp");
    install_hold(&pg, "liveapp", "public.message", 30_000);
    pg.psql("liveapp", APP_SCHEMA);
    let url = pg.url("liveapp");
    let hold = Hold::take(&pg);
    let mut child = pgharbor_started(&[
        "migrate",
        db.to_str().unwrap(),
        &url,
        "--into-existing",
        "--jobs",
        "2",
    ]);
    hold.wait_for_copy(&pg, &mut child);
    app.execute_batch(&format!(
        "INSERT INTO message SELECT id + {MESSAGES}, chat_id, body FROM message WHERE id <= 10"
    ))
    .expect("the application writes");
    drop(hold);
    let run = Run::finished(child).success();
    assert!(
        run.stdout.contains("verified: every table matches"),
        "{}",
        run.stdout
    );
    assert_eq!(
        scalar(&pg, "liveapp", "SELECT count(*) FROM message"),
        MESSAGES.to_string()
    );
    assert!(
        run.stdout
            .contains("the source changed while it was copied")
            && run.stdout.contains("--into-existing --truncate"),
        "the run does not say the source changed while it was copied:\n{}",
        run.stdout
    );
    remove_hold(&pg, "liveapp");
    let again = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &url,
        "--into-existing",
        "--truncate",
    ])
    .success();
    assert!(
        again.stdout.contains("verified: every table matches")
            && !again.stdout.contains("the source changed"),
        "{}",
        again.stdout
    );
    assert_eq!(
        scalar(&pg, "liveapp", "SELECT count(*) FROM message"),
        (MESSAGES + 10).to_string()
    );
}

/// A copy of the Chroma fixture store in `scratch`.
fn chroma_store(scratch: &Scratch) -> PathBuf {
    let dir = scratch.path("store");
    pgharbor_testkit::copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/chroma/1.0.20/store"),
        &dir,
    );
    dir
}

/// Every HNSW `data_level0.bin` of the store at `dir`.
fn hnsw_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read the store")
        .flatten()
        .map(|e| e.path().join("data_level0.bin"))
        .filter(|p| p.exists())
        .collect()
}

/// Chroma at work on the store while a run loads it. A write to its SQLite
/// log waits for the run (the run's read snapshot holds the file's shared
/// lock; Chroma's store is in rollback-journal mode), so the log cannot
/// change underneath. Chroma persisting an HNSW index meanwhile (files the
/// snapshot does not cover): the run stops after the load, names the file
/// and says to run again with Chroma stopped, removes what it created, and
/// the same command then ends verified.
#[test]
fn chroma_store_written_during_the_load_stops_the_run_and_running_again_verifies() {
    let scratch = Scratch::new();
    let dir = chroma_store(&scratch);
    let source = format!("chroma:{}", dir.display());
    let pg = Cluster::start(Flavor::Pg16Vector);
    pg.create_database("vectors");
    install_hold(&pg, "vectors", "public.%", 10);
    let hold = Hold::take(&pg);
    let mut child = pgharbor_started(&["migrate", &source, &pg.url("vectors")]);
    hold.wait_for_copy(&pg, &mut child);
    let chroma = rusqlite::Connection::open(dir.join("chroma.sqlite3")).expect("open as Chroma");
    chroma
        .busy_timeout(std::time::Duration::ZERO)
        .expect("no busy wait");
    let logged = chroma.execute(
        "INSERT INTO embeddings_queue (operation, topic, id, vector, encoding, metadata)
         SELECT operation, topic, id || '-later', vector, encoding, metadata
         FROM embeddings_queue ORDER BY seq_id DESC LIMIT 1",
        [],
    );
    let busy = logged.expect_err("Chroma's log changed under the run's snapshot");
    assert!(busy.to_string().contains("locked"), "{busy}");
    drop(chroma);
    let persisted = hnsw_files(&dir);
    assert!(!persisted.is_empty(), "no HNSW file in the fixture");
    for file in &persisted {
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(file)
            .and_then(|f| f.set_modified(later))
            .expect("Chroma persists an index");
    }
    drop(hold);
    let run = Run::finished(child).fails_with(
        1,
        &[
            "changed (size or modification time) while the store was being read",
            "data_level0.bin",
            "run again, ideally with Chroma stopped",
            "Nothing was kept",
        ],
    );
    let (tables, record) = target_state(&pg, "vectors");
    assert!(tables.is_empty(), "left behind: {tables:?}\n{}", run.stderr);
    assert!(!record, "the record of created tables was left");
    remove_hold(&pg, "vectors");
    let run = pgharbor(&["migrate", &source, &pg.url("vectors"), "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json report");
    assert_eq!(report["migration"]["verified"], true, "{}", run.stdout);
}
