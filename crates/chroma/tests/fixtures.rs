//! Reads the stores written by the real chromadb 0.4.24 … 1.5.9 and compares
//! every item with chromadb's own `collection.get()` (`expected.json`), and
//! checks that damaged stores give errors naming the file and the collection.

use pgharbor_chroma::{ChromaError, Collection, ErrorKind, Space, Store};
use pgharbor_testkit::copy_dir;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

const VERSIONS: [&str; 6] = ["0.4.24", "0.5.5", "0.5.23", "0.6.3", "1.0.20", "1.5.9"];
/// Name of the large collection (flushed twice, with a log tail).
const LARGE: &str = "23b8c1e9-3924-46de-beb1-3b9046685257";

fn version_dir(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/chroma")
        .join(version)
}

fn load_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One item as read.
#[derive(Debug)]
struct Item {
    rowid: i64,
    id: String,
    document: Option<String>,
    metadata: Option<Map<String, Value>>,
    embedding: Vec<f32>,
}

/// Read collection `index` in two halves of its rowid range, one reader each.
fn read_split(store: &Store, index: usize) -> Vec<Item> {
    let Some((lo, hi)) = store.collections()[index].rowid_bounds else {
        return Vec::new();
    };
    let mid = lo + (hi - lo) / 2;
    let mut items = Vec::new();
    for (first, last) in [(lo, mid), (mid + 1, hi)] {
        let mut reader = store.reader().unwrap();
        reader
            .read(index, first, last, &mut |r| {
                assert_eq!(r.collection, index);
                assert!((first..=last).contains(&r.rowid));
                items.push(Item {
                    rowid: r.rowid,
                    id: r.id.to_string(),
                    document: r.document.map(str::to_string),
                    metadata: r.metadata.cloned(),
                    embedding: r.embedding.to_vec(),
                });
                Ok::<(), ChromaError>(())
            })
            .unwrap();
    }
    assert!(
        items.windows(2).all(|w| w[0].rowid < w[1].rowid),
        "rowid order"
    );
    items
}

fn space_name(space: Space) -> &'static str {
    match space {
        Space::L2 => "l2",
        Space::Cosine => "cosine",
        Space::Ip => "ip",
    }
}

/// JSON equality with ints compared as ints and floats as f64, exactly.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            (None, None) => x.as_f64() == y.as_f64(),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn check_item(version: &str, c: &Collection, got: &Item, want: &Value) {
    let ctx = format!("{version} {}/{} {}", c.tenant, c.name, got.id);
    assert_eq!(got.id, want["id"].as_str().unwrap(), "{ctx}");
    assert_eq!(
        got.document.as_deref(),
        want["document"].as_str(),
        "{ctx}: document"
    );
    let got_meta = got.metadata.clone().map_or(Value::Null, Value::Object);
    assert!(
        json_eq(&got_meta, &want["metadata"]),
        "{ctx}: metadata {got_meta} != {}",
        want["metadata"]
    );
    let want_vec: Vec<f32> = want["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(got.embedding.len(), want_vec.len(), "{ctx}: dimension");
    for (g, w) in got.embedding.iter().zip(&want_vec) {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
            "{ctx}: embedding {:?} != {want_vec:?}",
            got.embedding
        );
    }
}

fn check_sources(version: &str, c: &Collection, layout: &Value) {
    let ctx = format!("{version} {}/{}", c.tenant, c.name);
    let s = c.sources;
    assert_eq!(
        s.from_hnsw,
        layout["live_vectors_from_hnsw"].as_u64().unwrap(),
        "{ctx}"
    );
    assert_eq!(
        s.from_log,
        layout["live_vectors_from_wal"].as_u64().unwrap(),
        "{ctx}"
    );
    assert_eq!(
        s.hnsw_elements,
        layout["header_cur_element_count"].as_u64().unwrap(),
        "{ctx}"
    );
    assert_eq!(
        s.log_rows_replayed,
        layout["wal_rows_after_position"].as_u64().unwrap(),
        "{ctx}"
    );
    assert_eq!(s.without_item, 0, "{ctx}");
    if c.name == LARGE {
        assert!(
            s.from_hnsw > 0 && s.from_log > 0,
            "{ctx}: both paths exercised"
        );
    }
    if c.count <= 42 {
        assert_eq!(s.from_hnsw, 0, "{ctx}: small collections are never flushed");
    }
}

/// Size, mtime and content hash of every file under `dir`.
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime, u64)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(fingerprint(&path));
        } else {
            let meta = std::fs::metadata(&path).unwrap();
            let mut h = DefaultHasher::new();
            std::fs::read(&path).unwrap().hash(&mut h);
            out.insert(path, (meta.len(), meta.modified().unwrap(), h.finish()));
        }
    }
    out
}

fn check_version(version: &str) {
    let dir = version_dir(version);
    let store_dir = dir.join("store");
    let before = fingerprint(&store_dir);
    let expected = load_json(&dir.join("expected.json"));
    let layout = load_json(&dir.join("layout.json"));
    let store = Store::open(&store_dir, 2).unwrap();
    let want: Vec<&Value> = expected["collections"].as_array().unwrap().iter().collect();
    assert_eq!(
        store.collections().len(),
        want.len(),
        "{version}: collections"
    );
    let keys: Vec<_> = store
        .collections()
        .iter()
        .map(|c| (&c.tenant, &c.database, &c.name))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] <= w[1]),
        "{version}: collection order"
    );
    for (index, c) in store.collections().iter().enumerate() {
        let key = |v: &Value| v["tenant"] == c.tenant.as_str() && v["name"] == c.name.as_str();
        let w = want
            .iter()
            .find(|v| key(v))
            .unwrap_or_else(|| panic!("{version}: {} unexpected", c.name));
        assert_eq!(c.id, w["collection_id"].as_str().unwrap());
        assert_eq!(c.database, w["database"].as_str().unwrap());
        assert_eq!(
            space_name(c.space),
            w["space"].as_str().unwrap(),
            "{version} {}",
            c.name
        );
        assert_eq!(c.dimension.map(u64::from), w["dimension"].as_u64());
        assert_eq!(c.count, w["count"].as_u64().unwrap());
        let l = layout["collections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| key(v))
            .unwrap();
        check_sources(version, c, l);
        let mut items = read_split(&store, index);
        items.sort_by(|a, b| a.id.cmp(&b.id));
        let want_items = w["items"].as_array().unwrap();
        assert_eq!(
            items.len(),
            want_items.len(),
            "{version} {}: item count",
            c.name
        );
        for (got, want) in items.iter().zip(want_items) {
            check_item(version, c, got, want);
        }
    }
    store.check_unchanged().unwrap();
    drop(store);
    assert_eq!(
        before,
        fingerprint(&store_dir),
        "{version}: the store directory was modified"
    );
}

#[test]
fn chroma_0_4_24() {
    check_version("0.4.24");
}

#[test]
fn chroma_0_5_5() {
    check_version("0.5.5");
}

#[test]
fn chroma_0_5_23() {
    check_version("0.5.23");
}

#[test]
fn chroma_0_6_3() {
    check_version("0.6.3");
}

#[test]
fn chroma_1_0_20() {
    check_version("1.0.20");
}

#[test]
fn chroma_1_5_9() {
    check_version("1.5.9");
}

#[test]
fn versions_are_all_tested() {
    assert_eq!(VERSIONS.len(), 6);
    for v in VERSIONS {
        assert!(version_dir(v).join("store/chroma.sqlite3").is_file(), "{v}");
    }
}

// ---------- damaged stores ----------

/// A copy of `version`'s store and the segment dir of collection `name` (default tenant).
fn copy_store(version: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&version_dir(version).join("store"), tmp.path());
    let layout = load_json(&version_dir(version).join("layout.json"));
    let segment = layout["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name && c["tenant"] == "default_tenant")
        .unwrap()["vector_segment"]
        .as_str()
        .unwrap()
        .to_string();
    let seg_dir = tmp.path().join(segment);
    (tmp, seg_dir)
}

fn open_err(dir: &Path) -> ChromaError {
    match Store::open(dir, 1) {
        Ok(_) => panic!("opening {} should fail", dir.display()),
        Err(e) => e,
    }
}

fn assert_names(e: &ChromaError, kind: ErrorKind, file: &str, collection: &str) {
    let message = e.to_string();
    assert_eq!(e.kind(), kind, "{message}");
    assert!(message.contains(file), "{message} should name {file}");
    assert!(
        message.contains(collection),
        "{message} should name {collection}"
    );
}

#[test]
fn truncated_data_level0_is_named() {
    for version in ["0.6.3", "1.5.9"] {
        let (tmp, seg) = copy_store(version, LARGE);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(seg.join("data_level0.bin"))
            .unwrap();
        file.set_len(1000).unwrap();
        assert_names(
            &open_err(tmp.path()),
            ErrorKind::Corrupt,
            "data_level0.bin",
            LARGE,
        );
    }
}

#[test]
fn short_header_is_named() {
    let (tmp, seg) = copy_store("0.5.5", "notes_l2");
    let header = std::fs::read(seg.join("header.bin")).unwrap();
    std::fs::write(seg.join("header.bin"), &header[..60]).unwrap();
    assert_names(
        &open_err(tmp.path()),
        ErrorKind::Corrupt,
        "header.bin",
        "notes_l2",
    );
}

#[test]
fn garbage_pickle_is_named() {
    for version in ["0.4.24", "1.0.20"] {
        let (tmp, seg) = copy_store(version, LARGE);
        std::fs::write(seg.join("index_metadata.pickle"), b"\x80\x05garbage").unwrap();
        assert_names(
            &open_err(tmp.path()),
            ErrorKind::Corrupt,
            "index_metadata.pickle",
            LARGE,
        );
    }
}

#[test]
fn live_item_without_vector_is_named() {
    let (tmp, seg) = copy_store("0.6.3", LARGE);
    let header = std::fs::read(seg.join("header.bin")).unwrap();
    let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap());
    let (count, size) = (u64_at(20) as usize, u64_at(28) as usize);
    let mut data = std::fs::read(seg.join("data_level0.bin")).unwrap();
    for slot in 0..count {
        data[slot * size + 2] |= 1;
    }
    std::fs::write(seg.join("data_level0.bin"), data).unwrap();
    let e = open_err(tmp.path());
    assert_names(&e, ErrorKind::Corrupt, "has no vector", LARGE);
}

#[test]
fn wrong_dimension_is_named() {
    let (tmp, _) = copy_store("1.5.9", LARGE);
    let db = rusqlite::Connection::open(tmp.path().join("chroma.sqlite3")).unwrap();
    db.execute(
        "UPDATE collections SET dimension = 9 WHERE name IN (?1, 'scores_ip')",
        [LARGE],
    )
    .unwrap();
    drop(db);
    let e = open_err(tmp.path());
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    let message = e.to_string();
    assert!(
        (message.contains("data_level0.bin") && message.contains(LARGE))
            || (message.contains("embeddings_queue") && message.contains("scores_ip")),
        "{message}"
    );
}

#[test]
fn directory_without_database_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let e = open_err(tmp.path());
    assert_eq!(e.kind(), ErrorKind::NotChroma);
    assert!(e.to_string().contains("chroma.sqlite3"), "{e}");
    let e = open_err(&tmp.path().join("missing"));
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[test]
fn database_file_path_is_accepted() {
    let store = Store::open(&version_dir("1.5.9").join("store/chroma.sqlite3"), 1).unwrap();
    assert_eq!(store.path(), version_dir("1.5.9").join("store"));
    assert_eq!(store.collections().len(), 7);
}

#[test]
fn readers_are_given_back() {
    let store = Store::open(&version_dir("0.5.23").join("store"), 1).unwrap();
    let first = store.reader().unwrap();
    assert_eq!(
        store.reader().err().map(|e| e.kind()),
        Some(ErrorKind::Usage)
    );
    drop(first);
    let mut again = store.reader().unwrap();
    let mut n = 0;
    again
        .read(0, i64::MIN, i64::MAX, &mut |_| {
            n += 1;
            Ok::<(), ChromaError>(())
        })
        .unwrap();
    assert_eq!(n as u64, store.collections()[0].count);
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&again);
}

#[test]
fn modified_hnsw_file_is_detected() {
    let (tmp, seg) = copy_store("1.0.20", "notes_l2");
    let store = Store::open(tmp.path(), 1).unwrap();
    store.check_unchanged().unwrap();
    let mut data = std::fs::read(seg.join("data_level0.bin")).unwrap();
    data.push(0);
    std::fs::write(seg.join("data_level0.bin"), data).unwrap();
    let e = store.check_unchanged().unwrap_err();
    assert_names(&e, ErrorKind::Changed, "data_level0.bin", "notes_l2");
}
