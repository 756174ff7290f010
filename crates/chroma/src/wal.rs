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

/// Where one collection's log tail starts.
pub(crate) struct TailStart<'a> {
    /// The collection's id (its topic ends with `/<id>`).
    pub collection_id: &'a str,
    /// Rows after this `seq_id` belong to the tail (all rows when None).
    pub position: Option<i64>,
    /// The collection's dimension, if known.
    pub dimension: Option<usize>,
}

impl LogTail {
    /// Replay the log tails of several collections in one pass over the log,
    /// with Chroma's semantics. `in_hnsw(i, id)` tells whether `id` is live in
    /// collection `i`'s HNSW files. An error comes with the index of the
    /// collection whose row caused it.
    pub fn replay_all(
        conn: &Connection,
        starts: &[TailStart<'_>],
        in_hnsw: impl Fn(usize, &str) -> bool,
    ) -> std::result::Result<Vec<LogTail>, (Option<usize>, ChromaError)> {
        let mut tails: Vec<LogTail> = starts
            .iter()
            .map(|s| LogTail {
                dimension: s.dimension,
                ..LogTail::default()
            })
            .collect();
        let by_id: HashMap<String, usize> = starts
            .iter()
            .enumerate()
            .map(|(i, s)| (s.collection_id.to_ascii_lowercase(), i))
            .collect();
        let first = starts
            .iter()
            .map(|s| s.position.unwrap_or(i64::MIN))
            .min()
            .unwrap_or(i64::MAX);
        let unattributed = |e| (None, e);
        let mut stmt = conn
            .prepare(
                "SELECT seq_id, operation, topic, id, length(vector), encoding FROM embeddings_queue \
                 WHERE seq_id > ?1 ORDER BY seq_id",
            )
            .map_err(|e| unattributed(ChromaError::sqlite(e, "reading the write-ahead log")))?;
        let mut rows = stmt
            .query(params![first])
            .map_err(|e| unattributed(ChromaError::sqlite(e, "reading the write-ahead log")))?;
        while let Some(row) = rows
            .next()
            .map_err(|e| unattributed(ChromaError::sqlite(e, "reading the write-ahead log")))?
        {
            let topic: String = get(row, 2).map_err(unattributed)?;
            let Some(c) = topic_collection(&topic)
                .and_then(|id| by_id.get(&id))
                .copied()
            else {
                continue;
            };
            let seq_id: i64 = get(row, 0).map_err(unattributed)?;
            if starts[c].position.is_some_and(|p| seq_id <= p) {
                continue;
            }
            let attributed = |e| (Some(c), e);
            let row = Row {
                seq_id,
                operation: get(row, 1).map_err(attributed)?,
                id: get(row, 3).map_err(attributed)?,
                vector_len: get(row, 4).map_err(attributed)?,
                encoding: get(row, 5).map_err(attributed)?,
            };
            tails[c]
                .apply(row, &|id| in_hnsw(c, id))
                .map_err(attributed)?;
        }
        Ok(tails)
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

/// The collection id a topic names (`persistent://tenant/database/<id>`),
/// lower-cased.
fn topic_collection(topic: &str) -> Option<String> {
    topic
        .rsplit_once('/')
        .map(|(_, id)| id.to_ascii_lowercase())
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

#[cfg(test)]
mod tests {
    use super::topic_collection;

    #[test]
    fn a_topic_names_its_collection_whatever_the_tenant_and_case() {
        let id = "36a9710f-33b4-42c9-bb05-43b997c704ae";
        for topic in [
            format!("persistent://default-tenant/default-namespace/{id}"),
            format!("persistent://tenant-a/db_b/{}", id.to_uppercase()),
        ] {
            assert_eq!(topic_collection(&topic).as_deref(), Some(id));
        }
        assert_eq!(topic_collection("no-slash"), None);
    }
}
