//! `index_metadata.pickle`: the map from hnswlib labels to user ids.
//!
//! Python Chroma (≤ 0.6) pickles a `PersistentData` object (protocol 4/5);
//! the Rust engine (≥ 1.0) a plain dict (protocol 3). Both carry the same
//! keys; reading the object's state as a dict handles both.

use crate::error::{ChromaError, ErrorKind, Result};
use serde::Deserialize;
use serde_pickle::DeOptions;
use std::collections::HashMap;
use std::path::Path;

/// What the pickle tells about the persisted index. Deserialised straight
/// into these fields (the other keys, `id_to_label` and `id_to_seq_id`, are
/// skipped), not through a generic value tree: the pickle of a large
/// collection holds three maps of every id, and building ordered maps of all
/// of them was most of the time it took to open the store.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct IndexMetadata {
    /// hnswlib label → user id.
    pub label_to_id: HashMap<u64, String>,
    /// Persisted log position (0.4.x–0.5.5 keep it here), if any.
    #[serde(default)]
    pub max_seq_id: Option<i64>,
}

/// Read the pickle at `path`.
pub(crate) fn read(path: &Path) -> Result<IndexMetadata> {
    let bytes =
        std::fs::read(path).map_err(|e| ChromaError::io(e, "reading the index metadata", path))?;
    parse(&bytes).map_err(|message| ChromaError::new(ErrorKind::Corrupt, message).with_file(path))
}

fn parse(bytes: &[u8]) -> std::result::Result<IndexMetadata, String> {
    let options = DeOptions::new().replace_unresolved_globals();
    serde_pickle::from_slice(bytes, options).map_err(|e| {
        format!("not a readable index metadata pickle (expected a dict or object state with an integer → string label_to_id): {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"not a pickle").is_err());
    }

    /// `pickle.dumps({"dimensionality": 3, "label_to_id": {1: "a", 2: "b"},
    /// "id_to_label": {"a": 1, "b": 2}}, protocol=3)`: the ids of the second
    /// map are memo references to the first's strings.
    const TWO_LABELS: &[u8] = b"\x80\x03}q\x00(X\x0e\x00\x00\x00dimensionalityq\x01K\x03X\x0b\x00\x00\x00label_to_idq\x02}q\x03(K\x01X\x01\x00\x00\x00aq\x04K\x02X\x01\x00\x00\x00bq\x05uX\x0b\x00\x00\x00id_to_labelq\x06}q\x07(h\x04K\x01h\x05K\x02uu.";

    #[test]
    fn labels_are_read_and_other_keys_skipped() {
        let meta = parse(TWO_LABELS).unwrap();
        let expected = HashMap::from([(1, "a".to_string()), (2, "b".to_string())]);
        assert_eq!(meta.label_to_id, expected);
        assert_eq!(meta.max_seq_id, None);
    }

    #[test]
    fn a_pickle_without_labels_names_the_missing_map() {
        // pickle.dumps({"id_to_label": {"a": 1}}, protocol=3)
        let err = parse(
            b"\x80\x03}q\x00X\x0b\x00\x00\x00id_to_labelq\x01}q\x02X\x01\x00\x00\x00aq\x03K\x01ss.",
        )
        .unwrap_err();
        assert!(err.contains("label_to_id"), "{err}");
    }

    #[test]
    fn a_text_label_is_an_error() {
        // pickle.dumps({"label_to_id": {"x": "a"}}, protocol=3)
        let err = parse(b"\x80\x03}q\x00X\x0b\x00\x00\x00label_to_idq\x01}q\x02X\x01\x00\x00\x00xq\x03X\x01\x00\x00\x00aq\x04ss.").unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
    }
}
