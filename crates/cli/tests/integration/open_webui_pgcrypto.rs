//! Open WebUI's vector settings beyond the defaults, each on a
//! `document_chunk` that **Open WebUI itself created** (its `PgvectorClient`
//! starting on an empty database, `fixtures/openwebui/vectors.py
//! init-pgvector`): `PGVECTOR_PGCRYPTO=true` (text and metadata encrypted
//! with `pgp_sym_encrypt`), `PGVECTOR_USE_HALFVEC=true` at 3,072 dimensions
//! with the HNSW index it builds (`PGVECTOR_HNSW_M`,
//! `PGVECTOR_HNSW_EF_CONSTRUCTION`), and IVFFlat (`PGVECTOR_IVFFLAT_LISTS`,
//! which Open WebUI leaves to a later start and pgharbor builds from the
//! same settings in its environment).
//! pgharbor moves Open WebUI's real Chroma store (`fixtures/openwebui/`)
//! into it; then Open WebUI's own pgvector client, with the same settings,
//! must return what its Chroma client returns
//! (`fixtures/openwebui/vector-roundtrip.sh`).
//!
//! The server is PostgreSQL 16.8 + pgvector 0.8.0 + pgcrypto built by
//! `fixtures/openwebui/pg16-pgcrypto.sh` (the harness's pgserver wheel has
//! pgvector 0.6.2, without halfvec, and no pgcrypto).

use crate::harness::{pgharbor_with, query, scalar, Run, Scratch};
use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};
use std::path::PathBuf;
use std::process::Command;

const KEY: &str = "owui-pgcrypto-key: ünïcode & spaces";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/openwebui")
        .join(name)
}

/// A PostgreSQL 16 with pgvector 0.8 and pgcrypto (built once, then cached).
pub fn pgcrypto_cluster() -> Cluster {
    pgcrypto_cluster_with(Vec::new())
}

/// [`pgcrypto_cluster`] with `extra_conf` in its `postgresql.conf`.
pub fn pgcrypto_cluster_with(extra_conf: Vec<(String, String)>) -> Cluster {
    let built = Command::new("bash")
        .arg(fixture("pg16-pgcrypto.sh"))
        .output()
        .expect("run fixtures/openwebui/pg16-pgcrypto.sh");
    assert!(
        built.status.success(),
        "fixtures/openwebui/pg16-pgcrypto.sh failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let bin = String::from_utf8(built.stdout).unwrap().trim().to_string();
    Cluster::start_with(
        Flavor::Pg16Vector,
        ClusterOptions {
            bin_dir: Some(PathBuf::from(bin)),
            extra_conf,
            ..Default::default()
        },
    )
}

/// Open WebUI's settings for one scenario.
struct Settings(Vec<(&'static str, String)>);

impl Settings {
    fn env(&self) -> Vec<(&str, &str)> {
        self.0.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    fn python(&self, args: &[&str]) -> std::process::Output {
        Command::new("python3")
            .args(args)
            .envs(self.env())
            .output()
            .expect("run python3")
    }

    /// Open WebUI's pgvector client starts on `url`'s empty database and
    /// creates its table and indexes; returns what it made.
    fn open_webui_creates_its_table(&self, url: &str) -> serde_json::Value {
        let vectors = fixture("vectors.py");
        let made = self.python(&[vectors.to_str().unwrap(), "init-pgvector", "--url", url]);
        assert!(
            made.status.success(),
            "Open WebUI could not create document_chunk: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        serde_json::from_slice(&made.stdout).unwrap()
    }

    /// Open WebUI's pgvector client finds what its Chroma client finds.
    fn round_trip(&self, url: &str, tolerances: &[(&str, &str)]) {
        let started = std::time::Instant::now();
        let run = Command::new(fixture("vector-roundtrip.sh"))
            .arg(url)
            .arg(fixture(""))
            .envs(self.env())
            .envs(tolerances.iter().copied())
            .output()
            .expect("run vector-roundtrip.sh");
        assert!(
            run.status.success(),
            "Open WebUI's pgvector client finds other chunks than its Chroma client:\n{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        eprintln!(
            "vector round trip: {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

fn store() -> String {
    format!("chroma:{}", fixture("vector_db").display())
}

fn migrate(url: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let store = store();
    let mut args = vec!["migrate", store.as_str(), url, "--layout", "open-webui"];
    args.extend_from_slice(extra);
    pgharbor_with(&args, env, None)
}

#[test]
fn an_encrypted_halfvec_table_open_webui_created_gets_every_chunk_and_open_webui_reads_them() {
    let pg = pgcrypto_cluster();
    pg.create_database("encrypted");
    let url = pg.url("encrypted");
    let settings = Settings(vec![
        ("PGVECTOR_PGCRYPTO", "true".into()),
        ("PGVECTOR_PGCRYPTO_KEY", KEY.into()),
        ("PGVECTOR_USE_HALFVEC", "true".into()),
        ("PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH", "3072".into()),
        ("PGVECTOR_INDEX_METHOD", "hnsw".into()),
        ("PGVECTOR_HNSW_M", "24".into()),
        ("PGVECTOR_HNSW_EF_CONSTRUCTION", "100".into()),
    ]);
    let made = settings.open_webui_creates_its_table(&url);
    assert_eq!(made["columns"]["text"], "bytea", "{made}");
    assert_eq!(made["columns"]["vmetadata"], "bytea", "{made}");
    assert_eq!(made["columns"]["vector"], "halfvec(3072)", "{made}");
    assert!(
        made["indexes"].to_string().contains(
            "USING hnsw (vector halfvec_cosine_ops) WITH (m='24', ef_construction='100')"
        ),
        "{made}"
    );

    let without_key = migrate(&url, &[], &[]);
    assert_eq!(without_key.code, 2, "{}", without_key.all());
    assert!(
        without_key.stderr.contains("PGVECTOR_PGCRYPTO_KEY")
            && without_key.stderr.contains("--pgcrypto-key-file"),
        "{}",
        without_key.stderr
    );
    assert_eq!(
        scalar(&pg, "encrypted", "SELECT count(*) FROM document_chunk"),
        "0"
    );

    // A staging table pgharbor did not record (another run's, or the
    // user's) is left alone: staging tables are dropped through the record.
    pg.psql(
        "encrypted",
        "CREATE TABLE pgharbor_document_chunk_plain (note text); \
         INSERT INTO pgharbor_document_chunk_plain VALUES ('not this run''s')",
    );
    let scratch = Scratch::new();
    let key_file = scratch.path("pgcrypto.key");
    crate::leak::write_private(&key_file, &format!("{KEY}\n"), 0o600);
    let key_file = key_file.to_str().unwrap();
    let run = migrate(&url, &["--pgcrypto-key-file", key_file, "--json"], &[]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["migration"]["verified"], true, "{}", run.stdout);
    let env = report["open_webui_env"].to_string();
    for setting in [
        "PGVECTOR_PGCRYPTO=true",
        "PGVECTOR_USE_HALFVEC=true",
        "PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH=3072",
        "PGVECTOR_INDEX_METHOD=hnsw",
        "PGVECTOR_HNSW_M=24",
        "PGVECTOR_HNSW_EF_CONSTRUCTION=100",
    ] {
        assert!(env.contains(setting), "{setting} not in {env}");
    }
    let rows = report["migration"]["total_rows"].to_string();
    assert_eq!(
        scalar(&pg, "encrypted", "SELECT count(*) FROM document_chunk"),
        rows
    );
    assert_eq!(
        query(
            &pg,
            "encrypted",
            "SELECT count(*) FILTER (WHERE position(convert_to('revenue', 'UTF8') IN text) > 0), \
             NOT EXISTS (SELECT 1 FROM pg_class WHERE relname LIKE 'pgharbor_document_chunk_plain\\_%'), \
             to_regnamespace('pgharbor_journal') IS NULL, \
             (SELECT note FROM pgharbor_document_chunk_plain) \
             FROM document_chunk"
        ),
        ["0|t|t|not this run's"],
        "the text is stored encrypted, the plain staging table and its record are gone"
    );

    let wrong = scratch.path("wrong.key");
    crate::leak::write_private(&wrong, "not the key", 0o600);
    migrate(
        &url,
        &["--pgcrypto-key-file", wrong.to_str().unwrap(), "--truncate"],
        &[],
    )
    .fails_with(2, &["does not decrypt the rows already in", "wrong.key"]);
    assert_eq!(
        scalar(&pg, "encrypted", "SELECT count(*) FROM document_chunk"),
        rows
    );

    settings.round_trip(&url, &[("SCORE_TOL", "2e-4"), ("TIE_TOL", "2e-4")]);

    let store = store();
    let verify = [
        "verify",
        store.as_str(),
        url.as_str(),
        "--layout",
        "open-webui",
    ];
    pgharbor_with(&verify, &[("PGVECTOR_PGCRYPTO_KEY", KEY)], None).success();
    // A decrypted text or metadata that differs is caught and named.
    let text_of = "(SELECT min(id) FROM document_chunk WHERE collection_name LIKE 'file-%')";
    let metadata_of =
        "(SELECT min(id) FROM document_chunk WHERE collection_name LIKE 'user-memory-%')";
    let mut altered = query(
        &pg,
        "encrypted",
        &format!(
            "SELECT collection_name FROM document_chunk WHERE id IN ({text_of}, {metadata_of})"
        ),
    );
    altered.sort();
    let k = KEY.replace('\'', "''");
    pg.psql(
        "encrypted",
        &format!(
            "UPDATE document_chunk SET text = pgp_sym_encrypt(pgp_sym_decrypt(text, '{k}') || ' ', '{k}') WHERE id = {text_of}; \
             UPDATE document_chunk SET vmetadata = pgp_sym_encrypt('{{\"page\": 99}}', '{k}') WHERE id = {metadata_of}"
        ),
    );
    let tampered = pgharbor_with(
        &[&verify[..], &["--json"]].concat(),
        &[("PGVECTOR_PGCRYPTO_KEY", KEY)],
        None,
    );
    assert_eq!(tampered.code, 1, "{}", tampered.all());
    let report: serde_json::Value = serde_json::from_str(&tampered.stdout).unwrap();
    let mut differing: Vec<String> = report["collections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verification"]["matches"] == false)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    differing.sort();
    assert_eq!(differing, altered, "{}", tampered.stdout);
}

#[test]
fn an_encrypted_table_with_the_ivfflat_index_open_webui_expects_is_read_back_by_open_webui() {
    let pg = pgcrypto_cluster();
    pg.create_database("ivfflat");
    let url = pg.url("ivfflat");
    let settings = Settings(vec![
        ("PGVECTOR_PGCRYPTO", "true".into()),
        ("PGVECTOR_PGCRYPTO_KEY", KEY.into()),
        ("PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH", "384".into()),
        ("PGVECTOR_INDEX_METHOD", "ivfflat".into()),
        ("PGVECTOR_IVFFLAT_LISTS", "7".into()),
    ]);
    let made = settings.open_webui_creates_its_table(&url);
    assert_eq!(made["columns"]["vector"], "vector(384)", "{made}");
    assert!(
        !made["indexes"]
            .to_string()
            .contains("idx_document_chunk_vector"),
        "Open WebUI defers IVFFlat until 50 rows per list exist: {made}"
    );
    // `--index auto` builds what Open WebUI's settings in the environment name.
    let run = migrate(&url, &["--json"], &settings.env()).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["migration"]["verified"], true, "{}", run.stdout);
    let env = report["open_webui_env"].to_string();
    assert!(
        env.contains("PGVECTOR_INDEX_METHOD=ivfflat") && env.contains("PGVECTOR_IVFFLAT_LISTS=7"),
        "{env}"
    );
    assert_eq!(
        scalar(
            &pg,
            "ivfflat",
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_document_chunk_vector'"
        ),
        "CREATE INDEX idx_document_chunk_vector ON public.document_chunk USING ivfflat (vector vector_cosine_ops) WITH (lists='7')"
    );
    // Open WebUI searches through the index; with every list probed its
    // answers are exact, as Chroma's reference is. Scores are float32
    // arithmetic done another way by pgvector 0.8 (this server) than by
    // Chroma's hnswlib: they differ in the fifth decimal (1.6e-5 seen in
    // CI), so scores and ties are compared within 1e-4; ids, documents and
    // metadata stay exact (the vectors themselves are compared bit for bit
    // by pgharbor's verification).
    pg.psql("postgres", "ALTER DATABASE ivfflat SET ivfflat.probes = 7");
    settings.round_trip(&url, &[("SCORE_TOL", "1e-4"), ("TIE_TOL", "1e-4")]);
}

/// Whether an encrypting INSERT of pgharbor's is running on `db`.
fn encrypting(pg: &Cluster, db: &str) -> bool {
    scalar(
        pg,
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO%pgp_sym_encrypt%' \
         AND pid <> pg_backend_pid()",
    ) != "0"
}

/// Poll `done` every 100 ms for up to `seconds`.
fn eventually(seconds: u64, mut done: impl FnMut() -> bool) -> bool {
    (0..seconds * 10).any(|_| {
        done() || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        }
    })
}

#[test]
fn a_run_killed_mid_encryption_leaves_nothing_and_the_next_run_verifies() {
    let pg = pgcrypto_cluster();
    pg.create_database("killed");
    let url = pg.url("killed");
    Settings(vec![
        ("PGVECTOR_PGCRYPTO", "true".into()),
        ("PGVECTOR_PGCRYPTO_KEY", KEY.into()),
    ])
    .open_webui_creates_its_table(&url);
    // Holds the encrypting INSERT (a statement trigger that sleeps) so that
    // the kill lands while it runs on the server.
    pg.psql(
        "killed",
        "CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN PERFORM pg_sleep(600); RETURN NULL; END$$; \
         CREATE TRIGGER hold BEFORE INSERT ON document_chunk FOR EACH STATEMENT EXECUTE FUNCTION hold()",
    );
    let store = store();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgharbor"))
        .args(["migrate", &store, &url, "--layout", "open-webui"])
        .env("PGVECTOR_PGCRYPTO_KEY", KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        eventually(120, || encrypting(&pg, "killed")),
        "the run never reached the encrypting INSERT"
    );
    child.kill().expect("kill -9");
    child.wait().expect("reap pgharbor");
    // The server notices the closed connection and stops the INSERT
    // (client_connection_check_interval), well before the 600 s hold ends.
    assert!(
        eventually(60, || !encrypting(&pg, "killed")),
        "the killed run's INSERT still runs on the server"
    );
    pg.psql("killed", "DROP TRIGGER hold ON document_chunk");
    assert_eq!(
        scalar(
            &pg,
            "killed",
            "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'pgharbor_document_chunk_plain\\_%'"
        ),
        "1",
        "the killed run's staging table is left, recorded, for the next run"
    );
    let run = migrate(&url, &["--json"], &[("PGVECTOR_PGCRYPTO_KEY", KEY)]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["migration"]["verified"], true, "{}", run.stdout);
    assert_eq!(
        query(
            &pg,
            "killed",
            "SELECT NOT EXISTS (SELECT 1 FROM pg_class WHERE relname LIKE 'pgharbor_document_chunk_plain\\_%'), \
             to_regnamespace('pgharbor_journal') IS NULL"
        ),
        ["t|t"],
        "the staging table and its record are gone after the next run"
    );
}
