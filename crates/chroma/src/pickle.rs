//! `index_metadata.pickle`: the map from hnswlib labels to user ids.
//!
//! Python Chroma (≤ 0.6) pickles a `PersistentData` object (protocol 4/5);
//! the Rust engine (≥ 1.0) a plain dict (protocol 3). Both carry the same
//! keys; reading the object's state as a dict handles both.

use crate::error::{ChromaError, ErrorKind, Result};
use serde_pickle::{DeOptions, HashableValue, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What the pickle tells about the persisted index.
#[derive(Debug, Default)]
pub(crate) struct IndexMetadata {
    /// hnswlib label → user id.
    pub label_to_id: HashMap<u64, String>,
    /// Persisted log position (0.4.x–0.5.5 keep it here), if any.
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
    let value = serde_pickle::value_from_slice(bytes, options)
        .map_err(|e| format!("not a readable pickle: {e}"))?;
    let Value::Dict(dict) = value else {
        return Err("the pickle does not hold a dict or object state".into());
    };
    Ok(IndexMetadata {
        label_to_id: label_to_id(&dict)?,
        max_seq_id: max_seq_id(&dict)?,
    })
}

fn get<'a>(dict: &'a BTreeMap<HashableValue, Value>, key: &str) -> Option<&'a Value> {
    dict.get(&HashableValue::String(key.to_string()))
}

fn label_to_id(
    dict: &BTreeMap<HashableValue, Value>,
) -> std::result::Result<HashMap<u64, String>, String> {
    let Some(Value::Dict(map)) = get(dict, "label_to_id") else {
        return Err("no label_to_id dict in the pickle".into());
    };
    map.iter()
        .map(|(label, id)| match (label, id) {
            (HashableValue::I64(label), Value::String(id)) if *label >= 0 => {
                Ok((*label as u64, id.clone()))
            }
            _ => Err(format!(
                "label_to_id holds {label:?} → {id:?}, expected an integer label and a string id"
            )),
        })
        .collect()
}

fn max_seq_id(dict: &BTreeMap<HashableValue, Value>) -> std::result::Result<Option<i64>, String> {
    match get(dict, "max_seq_id") {
        None | Some(Value::None) => Ok(None),
        Some(Value::I64(seq)) => Ok(Some(*seq)),
        Some(other) => Err(format!("max_seq_id is {other:?}, expected an integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"not a pickle").is_err());
    }
}
