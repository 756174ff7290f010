//! Chroma → PostgreSQL + pgvector: stores written by every chromadb version
//! in the wild (`fixtures/chroma/`), compared with what chromadb's own
//! `collection.get()` returned for them; Open WebUI's layout; what stops a run.

use crate::harness::{databases, pgharbor, query, scalar, Scratch, Target};
use pgharbor_testkit::{copy_dir, Cluster, Flavor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const VERSIONS: &[&str] = &["0.4.24", "0.5.5", "0.5.23", "0.6.3", "1.0.20", "1.5.9"];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn store(version: &str) -> PathBuf {
    fixtures().join("chroma").join(version).join("store")
}

fn source(dir: &Path) -> String {
    format!("chroma:{}", dir.display())
}

/// Size and content hash of every file under `dir`.
fn snapshot_of(dir: &Path) -> BTreeMap<PathBuf, (u64, u64)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.insert(
                    path,
                    (bytes.len() as u64, xxhash_rust::xxh3::xxh3_64(&bytes)),
                );
            }
        }
    }
    files
}

fn table_name(collection: &Value) -> String {
    let (tenant, database, name) = (
        collection["tenant"].as_str().unwrap(),
        collection["database"].as_str().unwrap(),
        collection["name"].as_str().unwrap(),
    );
    match (tenant, database) {
        ("default_tenant", "default_database") => name.to_string(),
        ("default_tenant", db) => format!("{db}/{name}"),
        (t, db) => format!("{t}/{db}/{name}"),
    }
}

fn parse_vector(text: &str) -> Vec<f32> {
    text.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect()
}

/// Compare one migrated table with chromadb's own `get()` of the collection.
fn assert_table_equals_get(pg: &impl Target, db: &str, collection: &Value) {
    let table = table_name(collection).replace('"', "\"\"");
    let rows = query(
        pg,
        db,
        &format!(
            "SELECT id, embedding::text, coalesce(document, '<null>'), coalesce(metadata::text, 'null') FROM \"{table}\" ORDER BY id COLLATE \"C\""
        ),
    );
    let items = collection["items"].as_array().unwrap();
    assert_eq!(rows.len(), items.len(), "row count of {table}");
    for (row, item) in rows.iter().zip(items) {
        let parts: Vec<&str> = row.splitn(4, '|').collect();
        let id = item["id"].as_str().unwrap();
        assert_eq!(parts[0], id, "ids of {table}");
        let document = item["document"].as_str().unwrap_or("<null>");
        assert_eq!(parts[2], document, "document of {table}/{id}");
        let metadata: Value = serde_json::from_str(parts[3]).unwrap();
        assert_eq!(metadata, item["metadata"], "metadata of {table}/{id}");
        let vector = parse_vector(parts[1]);
        let expected: Vec<f32> = item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(vector.len(), expected.len(), "dimension of {table}/{id}");
        for (a, b) in vector.iter().zip(&expected) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "vector of {table}/{id}: {vector:?} vs {expected:?}"
            );
        }
    }
}

#[test]
fn every_chroma_version_lands_in_tables_equal_to_chromas_own_get() {
    let pg = databases(Flavor::Pg16Vector);
    for version in VERSIONS {
        let dir = store(version);
        let before = snapshot_of(&dir);
        let db = format!("v{}", version.replace('.', "_"));
        let run = pgharbor(&["migrate", &source(&dir), &pg.url(&db), "--json"]).success();
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(
            report["migration"]["verified"], true,
            "{version}: {}",
            run.stdout
        );
        assert_eq!(report["recall_passed"], true, "{version}: {}", run.stdout);
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.parent().unwrap().join("expected.json")).unwrap(),
        )
        .unwrap();
        let collections = expected["collections"].as_array().unwrap();
        assert_eq!(
            scalar(&pg, &db, "SELECT count(*) FROM chroma_collections"),
            collections.len().to_string()
        );
        for collection in collections {
            assert_table_equals_get(&pg, &db, collection);
        }
        assert_eq!(
            scalar(
                &pg,
                &db,
                "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND reloptions IS NOT NULL"
            ),
            "0",
            "{version}: the tables' storage options are back to PostgreSQL's defaults"
        );
        let large = report["collections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "23b8c1e9-3924-46de-beb1-3b9046685257")
            .unwrap();
        assert!(
            large["vectors_from_hnsw"].as_u64().unwrap() > 0
                && large["vectors_from_log"].as_u64().unwrap() > 0,
            "{version}: both the HNSW files and the log hold current vectors: {large}"
        );
        assert_eq!(large["exact_neighbours"]["ok"], true, "{version}: {large}");
        assert!(
            large["exact_neighbours"]["queries"].as_u64().unwrap() >= 16,
            "{version}: queries spread over the collection: {large}"
        );
        assert_eq!(
            large["recall"]["application"]["setting"], "hnsw.ef_search = 40",
            "{version}: a new session gets pgvector's default: {large}"
        );
        assert_eq!(
            snapshot_of(&dir),
            before,
            "{version}: the store was changed"
        );
    }
}

#[test]
fn open_webui_layout_pads_vectors_and_replaces_only_the_collections_moved() {
    let pg = databases(Flavor::Pg16Vector);
    let url = pg.url("owui");
    let dir = fixtures().join("openwebui/vector_db");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "migrate".to_string(),
            source(&dir),
            url.clone(),
            "--layout".into(),
            "open-webui".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run_with = |extra: &[&str]| {
        let a = args(extra);
        pgharbor(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let first = run_with(&["--json"]).success();
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(report["migration"]["verified"], true, "{}", first.stdout);
    let items = report["migration"]["total_rows"].as_u64().unwrap();
    assert_eq!(
        report["migration"]["lossy"]["vectors_padded"]
            .as_u64()
            .unwrap(),
        items
    );
    assert_eq!(
        scalar(&pg, "owui", "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'document_chunk'::regclass AND attname = 'vector'"),
        "vector(1536)"
    );
    assert_eq!(
        query(
            &pg,
            "owui",
            "SELECT indexname FROM pg_indexes WHERE tablename = 'document_chunk' ORDER BY 1"
        ),
        [
            "document_chunk_pkey",
            "idx_document_chunk_collection_name",
            "idx_document_chunk_text_search"
        ],
        "Open WebUI's indexes; no IVFFlat below 5,000 rows, as Open WebUI does"
    );
    assert_eq!(
        scalar(
            &pg,
            "owui",
            "SELECT gin_clean_pending_list('idx_document_chunk_text_search')"
        ),
        "0",
        "the rows the load left in the full-text index's pending list were moved into the index"
    );
    assert_eq!(
        scalar(
            &pg,
            "owui",
            "SELECT coalesce(reloptions::text, 'none') || ' ' || pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'document_chunk'::regclass"
        ),
        "none 0",
        "every row (a 1536-dimension vector, 6 kB) written whole in the table's pages, not moved to TOAST; the table's options back to PostgreSQL's defaults"
    );
    let word = scalar(
        &pg,
        "owui",
        "SELECT lower((regexp_match(text, '([[:alpha:]]{4,})'))[1]) FROM document_chunk WHERE text ~ '[[:alpha:]]{4,}' ORDER BY id LIMIT 1",
    );
    let search = format!("SELECT count(*) FROM document_chunk WHERE to_tsvector('simple', coalesce(text, '')) @@ plainto_tsquery('simple', '{word}')");
    let through_index = scalar(&pg, "owui", &format!("SET enable_seqscan = off; {search}"));
    let by_scan = scalar(
        &pg,
        "owui",
        &format!("SET enable_bitmapscan = off; SET enable_indexscan = off; {search}"),
    );
    assert_eq!(through_index, by_scan, "full-text search for {word:?}");
    assert_ne!(through_index, "0", "full-text search for {word:?}");
    pg.psql("owui", "INSERT INTO document_chunk (id, collection_name, text) VALUES ('kept', 'another-collection', 'not from this store'); ALTER TABLE document_chunk SET (toast_tuple_target = 4000)");

    let refused = run_with(&[]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.stderr.contains("already holds rows") && refused.stderr.contains("--truncate"),
        "{}",
        refused.stderr
    );
    let replaced = run_with(&["--truncate", "--json"]).success();
    let report: Value = serde_json::from_str(&replaced.stdout).unwrap();
    assert_eq!(report["migration"]["verified"], true, "{}", replaced.stdout);
    assert_eq!(
        scalar(&pg, "owui", "SELECT count(*) FROM document_chunk"),
        (items + 1).to_string(),
        "the store's rows replaced, the other collection's row kept"
    );
    assert_eq!(
        scalar(
            &pg,
            "owui",
            "SELECT reloptions::text FROM pg_class WHERE oid = 'document_chunk'::regclass"
        ),
        "{toast_tuple_target=4000}",
        "a table pgharbor did not create keeps its owner's storage options"
    );
    let other_dimension = run_with(&["--truncate", "--dimension", "768"]);
    assert_eq!(other_dimension.code, 2, "{}", other_dimension.all());
    assert!(
        other_dimension.stderr.contains("vector(1536)"),
        "{}",
        other_dimension.stderr
    );
}

#[test]
fn vectors_longer_than_the_existing_column_stop_the_run_naming_the_collection() {
    let pg = databases(Flavor::Pg16Vector);
    pg.create_database("small");
    pg.psql(
        "small",
        "CREATE EXTENSION vector; CREATE TABLE document_chunk (id text PRIMARY KEY, vector vector(4), collection_name text NOT NULL, text text, vmetadata jsonb)",
    );
    let dir = fixtures().join("openwebui/vector_db");
    let run = pgharbor(&[
        "migrate",
        &source(&dir),
        &pg.url("small"),
        "--layout",
        "open-webui",
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("384-dimensional") && run.stderr.contains("cutting vectors short"),
        "{}",
        run.stderr
    );
    assert_eq!(
        scalar(&pg, "small", "SELECT count(*) FROM document_chunk"),
        "0"
    );
}

#[test]
fn collections_of_other_tenants_need_the_tables_layout() {
    let pg = databases(Flavor::Pg16Vector);
    let run = pgharbor(&[
        "migrate",
        &source(&store("1.5.9")),
        &pg.url("t"),
        "--layout",
        "open-webui",
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("acme/knowledge/notes_l2") && run.stderr.contains("--layout tables"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_server_without_pgvector_or_without_the_right_to_create_it_says_how_to_fix_it() {
    let pg15 = Cluster::start(Flavor::Pg15);
    let run = pgharbor(&["migrate", &source(&store("1.5.9")), &pg15.url("none")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("does not have pgvector")
            && run.stderr.contains("pgvector/pgvector:pg"),
        "{}",
        run.stderr
    );
    let pg16 = Cluster::start(Flavor::Pg16Vector);
    pg16.psql(
        "postgres",
        "CREATE ROLE app LOGIN; CREATE DATABASE appdb OWNER app",
    );
    let url = pg16.url("appdb").replacen("postgres@", "app@", 1);
    let run = pgharbor(&["migrate", &source(&store("1.5.9")), &url]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("may not create it") && run.stderr.contains("CREATE EXTENSION vector"),
        "{}",
        run.stderr
    );
}

#[test]
fn dimensions_beyond_vector_indexes_need_halfvec_which_this_pgvector_lacks() {
    let pg = databases(Flavor::Pg16Vector);
    let dir = fixtures().join("openwebui/vector_db");
    let run = pgharbor(&[
        "migrate",
        &source(&dir),
        &pg.url("wide"),
        "--layout",
        "open-webui",
        "--dimension",
        "3072",
    ]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("halfvec") && run.stderr.contains("0.6.2"),
        "{}",
        run.stderr
    );
}

#[test]
fn recall_below_an_explicit_min_recall_fails_the_run_and_names_the_collection() {
    let pg = databases(Flavor::Pg16Vector);
    let run = pgharbor(&[
        "migrate",
        &source(&store("1.5.9")),
        &pg.url("reported"),
        "--ef-search",
        "1",
        "--json",
    ])
    .success();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let large = report["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "23b8c1e9-3924-46de-beb1-3b9046685257")
        .unwrap();
    let recall = &large["recall"];
    assert!(
        recall["recall_at_10"].as_f64().unwrap() < 0.99
            && recall["setting"] == "hnsw.ef_search = 1"
            && recall["min_recall"].is_null()
            && recall["passed"] == true,
        "without --min-recall a low recall is reported, not judged: {recall}"
    );
    assert_eq!(report["migration"]["verified"], true, "{}", run.stdout);
    let run = pgharbor(&[
        "migrate",
        &source(&store("1.5.9")),
        &pg.url("low"),
        "--ef-search",
        "1",
        "--min-recall",
        "0.99",
    ]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains("23b8c1e9-3924-46de-beb1-3b9046685257")
            && run.stdout.contains("below --min-recall")
            && run.stdout.contains("hnsw.ef_search = 1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("every collection matches"),
        "{}",
        run.stdout
    );
}

/// The collections of a `--json` report.
fn collections(report: &Value) -> &Vec<Value> {
    report["collections"].as_array().unwrap()
}

#[test]
fn open_webui_moves_with_different_index_builds_never_fail_on_exact_data() {
    let pg = databases(Flavor::Pg16Vector);
    let dir = fixtures().join("openwebui/vector_db");
    let builds: [&[&str]; 4] = [
        &["--index", "ivfflat", "--probes", "1"],
        &["--index", "ivfflat"],
        &["--index", "ivfflat"],
        &["--index", "hnsw", "--hnsw-m", "4", "--ef-search", "10"],
    ];
    let mut checksums = Vec::new();
    for (n, build) in builds.iter().enumerate() {
        let mut args = vec![
            "migrate".to_string(),
            source(&dir),
            pg.url(&format!("build{n}")),
        ];
        args.extend(["--layout", "open-webui", "--dimension", "384", "--json"].map(String::from));
        args.extend(build.iter().map(|s| s.to_string()));
        let run = pgharbor(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(run.code, 0, "{build:?}: {}", run.all());
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(
            report["migration"]["verified"], true,
            "{build:?}: {}",
            run.stdout
        );
        let mut lowest = 1.0f64;
        for c in collections(&report).iter().filter(|c| c["items"] != 0) {
            assert_eq!(c["exact_neighbours"]["ok"], true, "{build:?}: {c}");
            let recall = &c["recall"];
            let default = if build.contains(&"hnsw") {
                "hnsw.ef_search = 40"
            } else {
                "ivfflat.probes = 1"
            };
            assert_eq!(
                recall["application"]["setting"], default,
                "{build:?}: what a new session gets, pgvector's default: {c}"
            );
            assert_eq!(recall["reaches"].as_array().unwrap().len(), 2, "{c}");
            let reach = &recall["reaches"][0];
            let own = recall["application"]["recall_at_10"].as_f64().unwrap();
            match reach["value"].as_u64().filter(|_| own < 0.9) {
                Some(value) => assert!(
                    reach["recall_at_10"].as_f64().unwrap() >= 0.9
                        && recall["suggestion"].as_str().unwrap().ends_with(&format!(
                            "SET {} = {value}",
                            recall["parameter"].as_str().unwrap()
                        )),
                    "the measured setting that reaches 0.9 is suggested: {c}"
                ),
                None => assert!(recall["suggestion"].is_null(), "{c}"),
            }
            lowest = lowest.min(recall["recall_at_10"].as_f64().unwrap());
        }
        if build.contains(&"--probes") {
            assert!(
                lowest < 0.9,
                "this build's recall at probes 1 is below 0.9 somewhere, and does not fail the run: {lowest}"
            );
        }
        checksums.push(
            collections(&report)
                .iter()
                .map(|c| c["verification"]["target_checksum"].clone())
                .collect::<Vec<_>>(),
        );
    }
    assert!(checksums.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn a_vector_altered_after_the_load_is_named_by_the_exact_neighbour_check() {
    let pg = databases(Flavor::Pg16Vector);
    let dir = fixtures().join("openwebui/vector_db");
    let (url, store) = (pg.url("altered"), source(&dir));
    let moved = ["--layout", "open-webui", "--dimension", "384"];
    let mut args = vec!["migrate", &store, &url];
    args.extend(moved);
    pgharbor(&args).success();
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", &store, &url];
        args.extend(moved[..2].iter().chain(extra));
        pgharbor(&args)
    };
    let clean = verify(&[]).success();
    assert!(
        clean.stdout.contains("every collection matches"),
        "{}",
        clean.stdout
    );
    let collection = "b76a28c5-1bb7-40ff-bc6b-794167ad167a";
    let item = scalar(
        &pg,
        "altered",
        &format!("SELECT id FROM document_chunk WHERE collection_name = '{collection}' ORDER BY id LIMIT 1"),
    );
    pg.psql(
        "altered",
        &format!("UPDATE document_chunk SET vector = (SELECT array_agg(-v) FROM unnest(vector::real[]) v)::vector WHERE id = '{item}'"),
    );
    let run = verify(&["--recall-queries", "1000", "--json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let altered = collections(&report)
        .iter()
        .find(|c| c["name"] == collection)
        .unwrap();
    let exact = &altered["exact_neighbours"];
    assert_eq!(exact["ok"], false, "{altered}");
    assert!(
        exact["differences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str().unwrap().contains(&format!("item {item:?}"))),
        "{exact}"
    );
    let others = collections(&report)
        .iter()
        .filter(|c| c["name"] != collection);
    assert!(others.clone().all(|c| c["exact_neighbours"]["ok"] == true));
    let text = verify(&["--recall-queries", "1000"]);
    assert_eq!(text.code, 1, "{}", text.all());
    assert!(
        text.stdout.contains(&format!(
            "exact-neighbour check FAILED for collection {collection:?}"
        )) && text.stdout.contains(&format!("query item {item:?}")),
        "{}",
        text.stdout
    );
}

#[test]
fn verify_of_a_chroma_store_names_what_does_not_fit() {
    let pg = databases(Flavor::Pg16Vector);
    let dir = fixtures().join("openwebui/vector_db");
    let url = pg.url("fit");
    pgharbor(&["migrate", &source(&dir), &url, "--layout", "open-webui"]).success();
    let run = pgharbor(&["verify", &source(&dir), &url]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("does not exist in the target"),
        "the tables layout's tables are not there: {}",
        run.stderr
    );
    let run = pgharbor(&["verify", &source(&dir), &url, "--min-recall", "1.5"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("--min-recall 1.5 is not between 0 and 1"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_damaged_segment_file_is_named_with_its_collection() {
    let scratch = Scratch::new();
    let copy = scratch.path("store");
    copy_dir(&store("0.6.3"), &copy);
    let conn = rusqlite::Connection::open(copy.join("chroma.sqlite3")).unwrap();
    let segment: String = conn
        .query_row(
            "SELECT s.id FROM segments s JOIN collections c ON c.id = s.collection WHERE c.name = 'notes_l2' AND s.scope = 'VECTOR' AND c.database_id = (SELECT id FROM databases WHERE name = 'default_database')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let data = copy.join(&segment).join("data_level0.bin");
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let pg = databases(Flavor::Pg16Vector);
    let run = pgharbor(&["migrate", &source(&copy), &pg.url("bad")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("notes_l2") && run.stderr.contains("data_level0.bin"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_nul_in_a_document_stops_the_tables_layout_naming_collection_id_and_column() {
    let scratch = Scratch::new();
    let copy = scratch.path("store");
    copy_dir(&store("1.5.9"), &copy);
    let conn = rusqlite::Connection::open(copy.join("chroma.sqlite3")).unwrap();
    conn.execute(
        "UPDATE embedding_metadata SET string_value = 'before' || char(0) || 'after' WHERE key = 'chroma:document' AND id = (SELECT e.id FROM embeddings e JOIN embedding_metadata m ON m.id = e.id WHERE e.embedding_id = 'id-00001' AND m.key = 'chroma:document' ORDER BY e.id LIMIT 1)",
        [],
    )
    .unwrap();
    drop(conn);
    let pg = databases(Flavor::Pg16Vector);
    let run = pgharbor(&["migrate", &source(&copy), &pg.url("nul")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("id='id-00001'")
            && run.stderr.contains("\"document\"")
            && run.stderr.contains("--nul strip"),
        "{}",
        run.stderr
    );
    let stripped = pgharbor(&[
        "migrate",
        &source(&copy),
        &pg.url("nul"),
        "--nul",
        "strip",
        "--drop-existing",
        "--json",
    ])
    .success();
    let report: Value = serde_json::from_str(&stripped.stdout).unwrap();
    assert_eq!(
        report["migration"]["lossy"]["nul_stripped"], 1,
        "{}",
        stripped.stdout
    );
    assert_eq!(report["migration"]["verified"], true);
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let pg = databases(Flavor::Pg16Vector);
    pg.create_database("dry");
    let run = pgharbor(&[
        "migrate",
        &source(&store("1.0.20")),
        &pg.url("dry"),
        "--dry-run",
    ])
    .success();
    assert!(
        run.stdout
            .contains("2352 vectors from the HNSW files, 295 from the log")
            && run.stdout.contains("vector_l2_ops")
            && run
                .stdout
                .contains("toast_tuple_target = 8160 during the load"),
        "{}",
        run.stdout
    );
    assert_eq!(
        scalar(
            &pg,
            "dry",
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ),
        "0"
    );
    assert_eq!(
        scalar(
            &pg,
            "dry",
            "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"
        ),
        "0"
    );
}

/// The Python of the Open WebUI fixture venv (chromadb 1.5.9), made by
/// `fixtures/openwebui/setup.sh`, which `scripts/test.sh` runs.
fn chromadb_python() -> PathBuf {
    let venv = std::env::var_os("OWUI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| fixtures().join("../.cache/openwebui-venv"));
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run fixtures/openwebui/setup.sh",
        python.display()
    );
    python
}

#[test]
fn a_store_open_in_a_running_chroma_is_read_with_its_unflushed_writes() {
    use std::io::{BufRead, Write};
    let scratch = Scratch::new();
    let copy = scratch.path("store");
    copy_dir(&store("1.5.9"), &copy);
    let script = r#"
import sys, chromadb
client = chromadb.PersistentClient(path=sys.argv[1])
notes = client.get_collection("notes_l2", embedding_function=None)
notes.add(ids=[f"live-{i}" for i in range(5)], embeddings=[[float(i), 1.0, 2.0, 3.0] for i in range(5)],
          documents=[f"written while running {i}" for i in range(5)])
print(notes.count(), flush=True)
sys.stdin.readline()
"#;
    let mut chroma = std::process::Command::new(chromadb_python())
        .arg("-c")
        .arg(script)
        .arg(&copy)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start chromadb");
    let mut line = String::new();
    std::io::BufReader::new(chroma.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let count: u64 = line.trim().parse().expect("chromadb printed the count");
    let pg = databases(Flavor::Pg16Vector);
    let run = pgharbor(&["migrate", &source(&copy), &pg.url("live"), "--json"]);
    chroma.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    chroma.wait().unwrap();
    let run = run.success();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["migration"]["verified"], true, "{}", run.stdout);
    assert_eq!(
        scalar(&pg, "live", "SELECT count(*) FROM notes_l2"),
        count.to_string()
    );
    assert_eq!(
        scalar(
            &pg,
            "live",
            "SELECT embedding::text FROM notes_l2 WHERE id = 'live-3'"
        ),
        "[3,1,2,3]"
    );
}

#[test]
fn a_store_upgraded_in_place_by_a_newer_chromadb_is_still_read_exactly() {
    let scratch = Scratch::new();
    let copy = scratch.path("store");
    copy_dir(&store("0.6.3"), &copy);
    // Open WebUI upgrades chromadb under existing stores: chromadb 1.5.9 applies
    // its schema migrations to this 0.6.3 store on open (and then cannot read
    // it: it chokes on the `"chroma:document": null` 0.x wrote into its log).
    let touched = std::process::Command::new(chromadb_python())
        .arg("-c")
        .arg("import sys, chromadb\ntry:\n    chromadb.PersistentClient(path=sys.argv[1]).get_collection('notes_l2').count()\nexcept Exception as e:\n    print(type(e).__name__)")
        .arg(&copy)
        .output()
        .expect("run chromadb 1.5.9");
    assert!(
        touched.status.success(),
        "{}",
        String::from_utf8_lossy(&touched.stderr)
    );
    let migrations = |dir: &Path| -> i64 {
        rusqlite::Connection::open(dir.join("chroma.sqlite3"))
            .unwrap()
            .query_row("SELECT count(*) FROM migrations", [], |r| r.get(0))
            .unwrap()
    };
    assert!(
        migrations(&copy) > migrations(&store("0.6.3")),
        "chromadb 1.5.9 upgraded the schema"
    );
    let pg = databases(Flavor::Pg16Vector);
    let run = pgharbor(&["migrate", &source(&copy), &pg.url("upgraded"), "--json"]).success();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["migration"]["verified"], true, "{}", run.stdout);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("chroma/0.6.3/expected.json")).unwrap(),
    )
    .unwrap();
    for collection in expected["collections"].as_array().unwrap() {
        assert_table_equals_get(&pg, "upgraded", collection);
    }
}
