//! Replaying the write-ahead log (`embeddings_queue`) past the position the
//! HNSW files were persisted at.
//!
//! Only where each id's current vector lives is kept (the `seq_id` of the log
//! row carrying it, or "deleted"); vectors are fetched again by `seq_id` when
//! items are read, so memory stays small even for a never-flushed collection.

use crate::error::{ChromaError, ErrorKind, Result};
use rusqlite::{params, Connection};
use std::collections::HashMap;

/// Python's and Rust's operation codes.
const ADD: i64 = 0;
const UPDATE: i64 = 1;
const UPSERT: i64 = 2;
const DELETE: i64 = 3;
/// The Rust engine's backfill record: no effect on vectors.
const BACKFILL: i64 = 4;

/// The effect of the log tail on one collection's vectors.
#[derive(Debug, Default)]
pub(crate) struct LogTail {
    /// id → `seq_id` of the row holding its current vector, or None if deleted.
    pub vectors: HashMap<String, Option<i64>>,
    /// Rows replayed.
    pub rows: u64,
    /// Vector dimension seen in the log (when the collection had none).
    pub dimension: Option<usize>,
}

/// One log row, without its vector bytes.
struct Row {
    seq_id: i64,
    operation: i64,
    id: String,
    vector_len: Option<i64>,
    encoding: Option<String>,
}

impl LogTail {
    /// Replay the rows of `collection_id`'s topic after `position`, with
    /// Chroma's semantics. `in_hnsw` tells whether an id is live in the HNSW
    /// files; `dimension` is the collection's, if known.
    pub fn replay(
        conn: &Connection,
        collection_id: &str,
        position: Option<i64>,
        dimension: Option<usize>,
        in_hnsw: impl Fn(&str) -> bool,
    ) -> Result<LogTail> {
        let mut tail = LogTail {
            dimension,
            ..LogTail::default()
        };
        let mut stmt = conn
            .prepare(
                "SELECT seq_id, operation, id, length(vector), encoding FROM embeddings_queue \
                 WHERE topic LIKE ?1 AND seq_id > ?2 ORDER BY seq_id",
            )
            .map_err(|e| ChromaError::sqlite(e, "reading the write-ahead log"))?;
        let mut rows = stmt
            .query(params![
                format!("%/{collection_id}"),
                position.unwrap_or(i64::MIN)
            ])
            .map_err(|e| ChromaError::sqlite(e, "reading the write-ahead log"))?;
        while let Some(row) = rows
            .next()
            .map_err(|e| ChromaError::sqlite(e, "reading the write-ahead log"))?
        {
            let row = Row {
                seq_id: get(row, 0)?,
                operation: get(row, 1)?,
                id: get(row, 2)?,
                vector_len: get(row, 3)?,
                encoding: get(row, 4)?,
            };
            tail.apply(row, &in_hnsw)?;
        }
        Ok(tail)
    }

    fn apply(&mut self, row: Row, in_hnsw: &impl Fn(&str) -> bool) -> Result<()> {
        self.rows += 1;
        let has_vector = self.check_vector(&row)?;
        let exists = match self.vectors.get(&row.id) {
            Some(state) => state.is_some(),
            None => in_hnsw(&row.id),
        };
        let set = match row.operation {
            ADD => !exists && has_vector,
            UPDATE => exists && has_vector,
            UPSERT => has_vector,
            DELETE => {
                if exists {
                    self.vectors.insert(row.id, None);
                }
                return Ok(());
            }
            BACKFILL => false,
            other => {
                return Err(ChromaError::new(
                    ErrorKind::Unsupported,
                    format!(
                        "embeddings_queue row seq_id {} has unknown operation {other}",
                        row.seq_id
                    ),
                ))
            }
        };
        if set {
            self.vectors.insert(row.id, Some(row.seq_id));
        }
        Ok(())
    }

    /// Whether the row carries a vector; checks its encoding and length.
    fn check_vector(&mut self, row: &Row) -> Result<bool> {
        let Some(len) = row.vector_len else {
            return Ok(false);
        };
        let encoding = row.encoding.as_deref().unwrap_or("FLOAT32");
        if !encoding.eq_ignore_ascii_case("FLOAT32") {
            return Err(ChromaError::new(
                ErrorKind::Unsupported,
                format!("embeddings_queue row seq_id {} has vector encoding {encoding:?}; only FLOAT32 is supported", row.seq_id),
            ));
        }
        let dimension = *self.dimension.get_or_insert((len / 4) as usize);
        if len % 4 != 0 || len as usize != dimension * 4 {
            return Err(ChromaError::new(
                ErrorKind::Corrupt,
                format!(
                    "embeddings_queue row seq_id {} (id {:?}) has a {len}-byte vector, expected {dimension} × 4 bytes",
                    row.seq_id, row.id
                ),
            ));
        }
        Ok(true)
    }
}

fn get<T: rusqlite::types::FromSql>(row: &rusqlite::Row<'_>, i: usize) -> Result<T> {
    row.get(i)
        .map_err(|e| ChromaError::sqlite(e, "reading the write-ahead log"))
}

/// Fetch the vector of log row `seq_id` into `out`.
pub(crate) fn vector(conn: &Connection, seq_id: i64, out: &mut Vec<f32>) -> Result<()> {
    let mut stmt = conn
        .prepare_cached("SELECT vector FROM embeddings_queue WHERE seq_id = ?1")
        .map_err(|e| ChromaError::sqlite(e, "reading a vector from the write-ahead log"))?;
    out.clear();
    stmt.query_row([seq_id], |r| {
        let bytes = r.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
        out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        );
        Ok(())
    })
    .map_err(|e| {
        ChromaError::sqlite(
            e,
            &format!("reading the vector of embeddings_queue row seq_id {seq_id}"),
        )
    })?;
    Ok(())
}
