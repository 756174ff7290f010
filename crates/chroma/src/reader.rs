//! Streaming the items of a collection: one query over `embeddings` joined
//! with `embedding_metadata` (plus a parallel ordered cursor over
//! `embedding_metadata_array` on 1.5+), each item's vector fetched by
//! positioned read from `data_level0.bin` or by `seq_id` from the log.

use crate::error::{ChromaError, ErrorKind, Result};
use crate::metadata::{decode, DOCUMENT_KEY};
use crate::schema::Schema;
use crate::vectors::CollectionVectors;
use crate::Record;
use rusqlite::{params, Connection, Rows};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

/// What every reader of a store shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The vectors of each collection, in [`crate::Store::collections`] order.
    pub vectors: Vec<CollectionVectors>,
    items_sql: String,
    arrays_sql: Option<String>,
    sparse_items_sql: String,
    sparse_arrays_sql: Option<String>,
}

impl Shared {
    /// Queries for `schema`, around `vectors`. For a collection holding most
    /// rows of its `embeddings.id` range, the unary `+` keeps SQLite off the
    /// `(segment_id, embedding_id)` index, so it walks the rowid range in
    /// order instead of sorting the whole segment in a temp b-tree; a
    /// collection interleaved with others ([`CollectionVectors::sparse`]) is read
    /// through that index instead of walking everyone's rows.
    pub fn new(vectors: Vec<CollectionVectors>, schema: &Schema) -> Shared {
        let bool_column = if schema.embedding_bool {
            "m.bool_value"
        } else {
            "NULL"
        };
        let items_sql = format!(
            "SELECT e.id, e.embedding_id, m.key, m.string_value, m.int_value, m.float_value, {bool_column} \
             FROM embeddings e LEFT JOIN embedding_metadata m ON m.id = e.id \
             WHERE +e.segment_id = ?1 AND e.id BETWEEN ?2 AND ?3 ORDER BY e.id"
        );
        let arrays_sql = schema.arrays.then(|| {
            "SELECT a.id, a.key, a.string_value, a.int_value, a.float_value, a.bool_value \
             FROM embedding_metadata_array a JOIN embeddings e ON e.id = a.id \
             WHERE +e.segment_id = ?1 AND a.id BETWEEN ?2 AND ?3 ORDER BY a.id, a.key, a.rowid"
                .to_string()
        });
        Shared {
            vectors,
            sparse_items_sql: items_sql.replace("+e.segment_id", "e.segment_id"),
            sparse_arrays_sql: arrays_sql
                .as_ref()
                .map(|sql| sql.replace("+e.segment_id", "e.segment_id")),
            items_sql,
            arrays_sql,
        }
    }
}

/// Reads items of one collection; `Send`, one per worker thread.
///
/// Holds one of the snapshot's reader connections, given back to the store
/// when dropped.
pub struct StoreReader {
    conn: Option<Connection>,
    pool: Arc<Mutex<Vec<Connection>>>,
    shared: Arc<Shared>,
    embedding: Vec<f32>,
}

impl StoreReader {
    pub(crate) fn new(
        conn: Connection,
        pool: Arc<Mutex<Vec<Connection>>>,
        shared: Arc<Shared>,
    ) -> Self {
        StoreReader {
            conn: Some(conn),
            pool,
            shared,
            embedding: Vec::new(),
        }
    }

    /// Call `on_record` for every live item of collection `collection` whose
    /// `embeddings.id` is within `first..=last`, in `embeddings.id` order.
    pub fn read<E: From<ChromaError>>(
        &mut self,
        collection: usize,
        first: i64,
        last: i64,
        on_record: &mut dyn FnMut(&Record<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let Some(vectors) = self.shared.vectors.get(collection) else {
            return Err(ChromaError::new(
                ErrorKind::Usage,
                format!(
                    "no collection number {collection} (the store has {})",
                    self.shared.vectors.len()
                ),
            )
            .into());
        };
        let conn = self.conn.as_ref().expect("connection held until drop");
        let reading_items = |e: rusqlite::Error| {
            E::from(
                ChromaError::sqlite(e, "reading items").with_collection(&vectors.name, &vectors.id),
            )
        };
        let (items_sql, arrays_sql) = if vectors.sparse {
            (
                &self.shared.sparse_items_sql,
                &self.shared.sparse_arrays_sql,
            )
        } else {
            (&self.shared.items_sql, &self.shared.arrays_sql)
        };
        let mut items = conn.prepare_cached(items_sql).map_err(reading_items)?;
        let mut rows = items
            .query(params![vectors.metadata_segment, first, last])
            .map_err(reading_items)?;
        let mut array_stmt = match arrays_sql {
            Some(sql) => Some(conn.prepare_cached(sql).map_err(reading_items)?),
            None => None,
        };
        let mut arrays = match array_stmt.as_mut() {
            Some(stmt) => Some(ArrayCursor::new(
                stmt.query(params![vectors.metadata_segment, first, last])
                    .map_err(reading_items)?,
            )),
            None => None,
        };
        let mut emit = |mut item: Item| -> std::result::Result<(), E> {
            if let Some(arrays) = arrays.as_mut() {
                arrays.fill(&mut item).map_err(reading_items)?;
            }
            vectors.vector(conn, &item.id, &mut self.embedding)?;
            on_record(&item.record(collection, &self.embedding))
        };
        let mut current: Option<Item> = None;
        while let Some(row) = rows.next().map_err(reading_items)? {
            let rowid: i64 = row.get(0).map_err(reading_items)?;
            if current.as_ref().is_some_and(|item| item.rowid != rowid) {
                emit(current.take().expect("checked"))?;
            }
            let item = match current.as_mut() {
                Some(item) => item,
                None => current.insert(Item::new(rowid, row.get(1).map_err(reading_items)?)),
            };
            item.add(row).map_err(reading_items)?;
        }
        match current {
            Some(item) => emit(item),
            None => Ok(()),
        }
    }
}

impl Drop for StoreReader {
    fn drop(&mut self) {
        if let (Some(conn), Ok(mut pool)) = (self.conn.take(), self.pool.lock()) {
            pool.push(conn);
        }
    }
}

/// One item being assembled from its metadata rows.
struct Item {
    rowid: i64,
    id: String,
    document: Option<String>,
    metadata: Map<String, Value>,
}

impl Item {
    fn new(rowid: i64, id: String) -> Item {
        Item {
            rowid,
            id,
            document: None,
            metadata: Map::new(),
        }
    }

    /// Add one `embedding_metadata` row (key NULL when the item has none).
    fn add(&mut self, row: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        let Some(key) = row.get::<_, Option<String>>(2)? else {
            return Ok(());
        };
        match (key.as_str(), decode(row, 3)?) {
            (DOCUMENT_KEY, Some(Value::String(document))) => self.document = Some(document),
            (DOCUMENT_KEY, _) | (_, None) => {}
            (_, Some(value)) => {
                self.metadata.insert(key, value);
            }
        }
        Ok(())
    }

    fn record<'a>(&'a self, collection: usize, embedding: &'a [f32]) -> Record<'a> {
        Record {
            collection,
            rowid: self.rowid,
            id: &self.id,
            document: self.document.as_deref(),
            metadata: (!self.metadata.is_empty()).then_some(&self.metadata),
            embedding,
        }
    }
}

/// Rows of `embedding_metadata_array` in (item, key, rowid) order, consumed
/// alongside the items.
struct ArrayCursor<'s> {
    rows: Rows<'s>,
    pending: Option<(i64, String, Value)>,
}

impl<'s> ArrayCursor<'s> {
    fn new(rows: Rows<'s>) -> Self {
        ArrayCursor {
            rows,
            pending: None,
        }
    }

    fn next_row(&mut self) -> rusqlite::Result<Option<(i64, String, Value)>> {
        if let Some(row) = self.pending.take() {
            return Ok(Some(row));
        }
        match self.rows.next()? {
            Some(r) => Ok(Some((
                r.get(0)?,
                r.get(1)?,
                decode(r, 2)?.unwrap_or(Value::Null),
            ))),
            None => Ok(None),
        }
    }

    /// Append the array elements of `item` to its metadata, in rowid order.
    fn fill(&mut self, item: &mut Item) -> rusqlite::Result<()> {
        while let Some((rowid, key, value)) = self.next_row()? {
            if rowid > item.rowid {
                self.pending = Some((rowid, key, value));
                break;
            }
            if rowid == item.rowid {
                push_element(&mut item.metadata, key, value);
            }
        }
        Ok(())
    }
}

fn push_element(metadata: &mut Map<String, Value>, key: String, value: Value) {
    let slot = metadata
        .entry(key)
        .or_insert_with(|| Value::Array(Vec::new()));
    match slot {
        Value::Array(elements) => elements.push(value),
        other => *other = Value::Array(vec![value]),
    }
}

/// Take a connection from `pool` for a new reader.
pub(crate) fn take(pool: &Arc<Mutex<Vec<Connection>>>, reserved: usize) -> Result<Connection> {
    pool.lock()
        .ok()
        .and_then(|mut p| p.pop())
        .ok_or_else(|| {
            ChromaError::new(
                ErrorKind::Usage,
                format!("all {reserved} reader connection(s) of the snapshot are in use; open the store with more readers or drop a reader first"),
            )
        })
}
