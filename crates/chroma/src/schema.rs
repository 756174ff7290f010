//! Which of Chroma's schema variants (0.4.x … 1.5.x) a `chroma.sqlite3` has.

use crate::error::{ChromaError, ErrorKind, Result};
use rusqlite::Connection;

/// Tables every Chroma store has.
const REQUIRED: [&str; 5] = [
    "collections",
    "segments",
    "embeddings",
    "embedding_metadata",
    "embeddings_queue",
];

/// Optional tables and columns, by schema version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema {
    /// `tenants`/`databases` (0.4.15+).
    pub databases: bool,
    /// `collections.config_json_str` (0.5.4+).
    pub config_json: bool,
    /// `collections.schema_str` (1.3+).
    pub schema_str: bool,
    /// The `max_seq_id` table.
    pub max_seq_id: bool,
    /// `embedding_metadata_array` (1.5+).
    pub arrays: bool,
    /// `embedding_metadata.bool_value`.
    pub embedding_bool: bool,
    /// `collection_metadata` exists.
    pub collection_metadata: bool,
    /// `collection_metadata.bool_value`.
    pub collection_bool: bool,
    /// `segment_metadata` exists.
    pub segment_metadata: bool,
    /// `segment_metadata.bool_value`.
    pub segment_bool: bool,
}

impl Schema {
    /// Inspect `conn`; a database without Chroma's tables is `NotChroma`.
    pub fn read(conn: &Connection) -> Result<Schema> {
        let missing: Vec<&str> = REQUIRED
            .into_iter()
            .map(|t| has_table(conn, t).map(|has| (t, has)))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter_map(|(t, has)| (!has).then_some(t))
            .collect();
        if !missing.is_empty() {
            return Err(ChromaError::new(
                ErrorKind::NotChroma,
                format!(
                    "an SQLite database but not Chroma's: no table {}",
                    missing.join(", ")
                ),
            ));
        }
        Ok(Schema {
            databases: has_table(conn, "databases")?,
            config_json: has_column(conn, "collections", "config_json_str")?,
            schema_str: has_column(conn, "collections", "schema_str")?,
            max_seq_id: has_table(conn, "max_seq_id")?,
            arrays: has_table(conn, "embedding_metadata_array")?,
            embedding_bool: has_column(conn, "embedding_metadata", "bool_value")?,
            collection_metadata: has_table(conn, "collection_metadata")?,
            collection_bool: has_column(conn, "collection_metadata", "bool_value")?,
            segment_metadata: has_table(conn, "segment_metadata")?,
            segment_bool: has_column(conn, "segment_metadata", "bool_value")?,
        })
    }
}

fn has_table(conn: &Connection, table: &str) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| ChromaError::sqlite(e, "reading the schema"))
}

fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| ChromaError::sqlite(e, "reading the schema"))
}
