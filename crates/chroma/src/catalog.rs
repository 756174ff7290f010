//! The live collections and their segments, from `collections` → `segments`
//! (never from a directory scan: dropped collections leave ghost directories
//! and orphan rows behind).

use crate::error::{ChromaError, ErrorKind, Result, ResultExt};
use crate::metadata::key_values;
use crate::schema::Schema;
use crate::Space;
use rusqlite::Connection;
use serde_json::{Map, Value};

/// Segment type of the persisted HNSW vector segment.
const HNSW_SEGMENT: &str = "urn:chroma:segment/vector/hnsw-local-persisted";
/// Metadata key holding the distance space.
const SPACE_KEY: &str = "hnsw:space";

/// One live collection as listed in the catalog.
#[derive(Debug)]
pub(crate) struct Entry {
    pub id: String,
    pub name: String,
    pub tenant: String,
    pub database: String,
    pub dimension: Option<u32>,
    pub metadata: Map<String, Value>,
    pub space: Space,
    pub vector_segment: String,
    pub metadata_segment: String,
    pub count: u64,
    pub rowid_bounds: Option<(i64, i64)>,
}

/// Raw `collections` row.
struct Row {
    id: String,
    name: String,
    tenant: String,
    database: String,
    dimension: Option<i64>,
    config_json: Option<String>,
    schema_json: Option<String>,
}

/// List the live collections in (tenant, database, name) order.
pub(crate) fn list(conn: &Connection, schema: &Schema) -> Result<Vec<Entry>> {
    rows(conn, schema)?
        .into_iter()
        .map(|row| {
            let (name, id) = (row.name.clone(), row.id.clone());
            entry(conn, schema, row).in_collection(&name, &id)
        })
        .collect()
}

fn rows(conn: &Connection, schema: &Schema) -> Result<Vec<Row>> {
    let config = if schema.config_json {
        "c.config_json_str"
    } else {
        "NULL"
    };
    let schema_str = if schema.schema_str {
        "c.schema_str"
    } else {
        "NULL"
    };
    let sql = if schema.databases {
        format!(
            "SELECT c.id, c.name, d.tenant_id, d.name, c.dimension, {config}, {schema_str} \
             FROM collections c JOIN databases d ON d.id = c.database_id ORDER BY 3, 4, 2, 1"
        )
    } else {
        format!(
            "SELECT c.id, c.name, 'default_tenant', 'default_database', c.dimension, {config}, {schema_str} \
             FROM collections c ORDER BY 2, 1"
        )
    };
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| ChromaError::sqlite(e, "listing collections"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Row {
                id: r.get(0)?,
                name: r.get(1)?,
                tenant: r.get(2)?,
                database: r.get(3)?,
                dimension: r.get(4)?,
                config_json: r.get(5)?,
                schema_json: r.get(6)?,
            })
        })
        .map_err(|e| ChromaError::sqlite(e, "listing collections"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(|e| ChromaError::sqlite(e, "listing collections"))
}

fn entry(conn: &Connection, schema: &Schema, row: Row) -> Result<Entry> {
    let (vector_segment, metadata_segment) = segments(conn, &row.id)?;
    let metadata = if schema.collection_metadata {
        key_values(
            conn,
            "collection_metadata",
            "collection_id",
            &row.id,
            schema.collection_bool,
        )?
    } else {
        Map::new()
    };
    let segment_metadata = if schema.segment_metadata {
        key_values(
            conn,
            "segment_metadata",
            "segment_id",
            &vector_segment,
            schema.segment_bool,
        )?
    } else {
        Map::new()
    };
    let space = space(&segment_metadata, &metadata, &row)?;
    let (count, rowid_bounds) = extent(conn, &metadata_segment)?;
    let dimension = row
        .dimension
        .map(|d| {
            u32::try_from(d).map_err(|_| {
                ChromaError::new(ErrorKind::Corrupt, format!("collections.dimension is {d}"))
            })
        })
        .transpose()?;
    Ok(Entry {
        id: row.id,
        name: row.name,
        tenant: row.tenant,
        database: row.database,
        dimension,
        metadata,
        space,
        vector_segment,
        metadata_segment,
        count,
        rowid_bounds,
    })
}

/// The (vector, metadata) segment ids of a collection.
fn segments(conn: &Connection, collection: &str) -> Result<(String, String)> {
    let mut stmt = conn
        .prepare("SELECT id, type, scope FROM segments WHERE collection = ?1 ORDER BY id")
        .map_err(|e| ChromaError::sqlite(e, "reading segments"))?;
    let rows: Vec<(String, String, String)> = stmt
        .query_map([collection], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| ChromaError::sqlite(e, "reading segments"))?;
    let find = |scope: &str| rows.iter().find(|(_, _, s)| s == scope);
    let (Some(vector), Some(meta)) = (find("VECTOR"), find("METADATA")) else {
        return Err(ChromaError::new(
            ErrorKind::Corrupt,
            "the collection lacks a VECTOR or a METADATA segment in table segments",
        ));
    };
    if vector.1 != HNSW_SEGMENT {
        return Err(ChromaError::new(
            ErrorKind::Unsupported,
            format!(
                "vector segment {} has type {:?}; only {HNSW_SEGMENT} is supported",
                vector.0, vector.1
            ),
        ));
    }
    Ok((vector.0.clone(), meta.0.clone()))
}

/// Live item count and `embeddings.id` bounds of the metadata segment.
fn extent(conn: &Connection, metadata_segment: &str) -> Result<(u64, Option<(i64, i64)>)> {
    conn.query_row(
        "SELECT count(*), min(id), max(id) FROM embeddings WHERE segment_id = ?1",
        [metadata_segment],
        |r| {
            let count: i64 = r.get(0)?;
            let bounds = match (r.get(1)?, r.get(2)?) {
                (Some(lo), Some(hi)) => Some((lo, hi)),
                _ => None,
            };
            Ok((count as u64, bounds))
        },
    )
    .map_err(|e| ChromaError::sqlite(e, "counting items"))
}

/// The distance space: `hnsw:space` metadata (the truth up to 0.6; segment
/// first, then collection), else 1.0's `config_json_str`, else 1.5's
/// `schema_str`, else Chroma's default l2.
fn space(
    segment: &Map<String, Value>,
    collection: &Map<String, Value>,
    row: &Row,
) -> Result<Space> {
    let from_metadata = segment
        .get(SPACE_KEY)
        .or_else(|| collection.get(SPACE_KEY))
        .and_then(Value::as_str)
        .map(str::to_string);
    let name = from_metadata
        .or_else(|| {
            json_path(
                row.config_json.as_deref(),
                &["vector_index", "hnsw", "space"],
            )
        })
        .or_else(|| {
            json_path(
                row.schema_json.as_deref(),
                &["defaults", "float_list", "vector_index", "config", "space"],
            )
        });
    match name.as_deref() {
        None | Some("l2") => Ok(Space::L2),
        Some("cosine") => Ok(Space::Cosine),
        Some("ip") => Ok(Space::Ip),
        Some(other) => Err(ChromaError::new(
            ErrorKind::Unsupported,
            format!("unknown distance space {other:?}"),
        )),
    }
}

fn json_path(text: Option<&str>, path: &[&str]) -> Option<String> {
    let value: Value = serde_json::from_str(text?).ok()?;
    path.iter()
        .try_fold(&value, |v, key| v.get(key))?
        .as_str()
        .map(str::to_string)
}
