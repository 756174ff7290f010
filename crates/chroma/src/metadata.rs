//! Metadata values as Chroma stores them: one row per key with one of
//! `string_value`/`str_value`, `int_value`, `float_value`, `bool_value` set.

use crate::error::{ChromaError, Result};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::{Map, Number, Value};

/// The key under which Chroma keeps an item's document.
pub(crate) const DOCUMENT_KEY: &str = "chroma:document";

/// Decode the four value columns starting at `first` (string, int, float,
/// bool), in Chroma's order of precedence; None when all are NULL. Text that
/// is not UTF-8 (Chroma never writes such) is an error, never replaced.
pub(crate) fn decode(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Option<Value>> {
    if let ValueRef::Text(s) = row.get_ref(first)? {
        let text = pgharbor_core::forms::utf8(s).map_err(rusqlite::Error::Utf8Error)?;
        return Ok(Some(Value::String(text.to_owned())));
    }
    if let Some(i) = row.get::<_, Option<i64>>(first + 1)? {
        return Ok(Some(Value::from(i)));
    }
    if let Some(f) = row.get::<_, Option<f64>>(first + 2)? {
        return Ok(Some(Number::from_f64(f).map_or(Value::Null, Value::Number)));
    }
    Ok(row
        .get::<_, Option<i64>>(first + 3)?
        .map(|b| Value::Bool(b != 0)))
}

/// The key/value rows of `collection_metadata` or `segment_metadata` for `owner`.
pub(crate) fn key_values(
    conn: &Connection,
    table: &str,
    owner_column: &str,
    owner: &str,
    has_bool: bool,
) -> Result<Map<String, Value>> {
    let bool_column = if has_bool { "bool_value" } else { "NULL" };
    let sql = format!(
        "SELECT key, str_value, int_value, float_value, {bool_column} FROM {table} \
         WHERE {owner_column} = ?1 ORDER BY key"
    );
    let context = format!("reading {table}");
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| ChromaError::sqlite(e, &context))?;
    let rows = stmt
        .query_map([owner], |r| Ok((r.get::<_, String>(0)?, decode(r, 1)?)))
        .map_err(|e| ChromaError::sqlite(e, &context))?;
    let mut map = Map::new();
    for row in rows {
        let (key, value) = row.map_err(|e| ChromaError::sqlite(e, &context))?;
        if let Some(value) = value {
            map.insert(key, value);
        }
    }
    Ok(map)
}
