//! Where each live item's current vector is: a slot of the HNSW files, or a
//! row of the write-ahead log after the persisted position.

use crate::catalog::Entry;
use crate::error::{ChromaError, ErrorKind, Result, ResultExt};
use crate::hnsw::Hnsw;
use crate::pickle;
use crate::wal::{self, LogTail};
use crate::{Space, VectorSources};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::Path;

/// The persisted position of a vector segment in the `max_seq_id` table.
pub(crate) fn table_position(conn: &Connection, vector_segment: &str) -> Result<Option<i64>> {
    let mut stmt = conn
        .prepare_cached("SELECT seq_id FROM max_seq_id WHERE segment_id = ?1")
        .map_err(|e| ChromaError::sqlite(e, "reading max_seq_id"))?;
    let mut rows = stmt
        .query([vector_segment])
        .map_err(|e| ChromaError::sqlite(e, "reading max_seq_id"))?;
    let Some(row) = rows
        .next()
        .map_err(|e| ChromaError::sqlite(e, "reading max_seq_id"))?
    else {
        return Ok(None);
    };
    match row.get_ref(0).map_err(|e| ChromaError::sqlite(e, "reading max_seq_id"))? {
        ValueRef::Integer(i) => Ok(Some(i)),
        ValueRef::Blob(b) if b.len() <= 8 => Ok(Some(
            b.iter().fold(0i64, |acc, byte| (acc << 8) | i64::from(*byte)),
        )),
        ValueRef::Null => Ok(None),
        other => Err(ChromaError::new(
            ErrorKind::Corrupt,
            format!("max_seq_id of segment {vector_segment} is {other:?}, expected an integer or an 8-byte big-endian blob"),
        )),
    }
}

/// Where a vector lives.
#[derive(Debug, Clone, Copy)]
enum Location {
    Hnsw(u32),
    Log(i64),
}

/// The vectors of one collection.
#[derive(Debug)]
pub(crate) struct CollectionVectors {
    /// Collection name, for errors.
    pub name: String,
    /// Collection id, for errors.
    pub id: String,
    /// Segment whose `embeddings` rows are the live items.
    pub metadata_segment: String,
    hnsw: Option<Hnsw>,
    /// Live (not deleted) HNSW slots by id.
    slots: HashMap<String, u32>,
    /// The log tail's verdict, overriding `slots`.
    log: HashMap<String, Option<i64>>,
    /// The items are a small share of their `embeddings.id` range (other
    /// collections' rows are interleaved): read them through the segment index.
    pub sparse: bool,
}

/// A collection's HNSW side, opened before the log is replayed: its vectors
/// without the log tail, and where the tail starts.
#[derive(Debug)]
pub(crate) struct Opened {
    vectors: CollectionVectors,
    /// Dimension known so far (collection record or HNSW files).
    pub dimension: Option<usize>,
    /// The log rows after this position are the tail.
    pub position: Option<i64>,
    /// Position read from the `max_seq_id` table at open.
    pub table_position: Option<i64>,
}

impl Opened {
    /// Whether `id` is live in the HNSW files.
    pub fn in_hnsw(&self, id: &str) -> bool {
        self.vectors.slots.contains_key(id)
    }
}

/// What [`CollectionVectors::finish`] found besides the vectors themselves.
#[derive(Debug)]
pub(crate) struct Built {
    pub vectors: CollectionVectors,
    pub dimension: Option<u32>,
    pub sources: VectorSources,
    /// Position read from the `max_seq_id` table at open.
    pub table_position: Option<i64>,
}

impl CollectionVectors {
    /// Load the HNSW labels of `dir` and find where `entry`'s log tail starts.
    pub fn open(conn: &Connection, has_table: bool, dir: &Path, entry: &Entry) -> Result<Opened> {
        let hnsw = Hnsw::open(dir, entry.space == Space::Cosine)?;
        let mut dimension = entry.dimension.map(|d| d as usize);
        if let Some(h) = &hnsw {
            check_dimension(h, &mut dimension)?;
        }
        let (slots, pickle_position) = match &hnsw {
            Some(h) => load_slots(h, dir)?,
            None => (HashMap::new(), None),
        };
        let table_position = if has_table {
            table_position(conn, &entry.vector_segment)?
        } else {
            None
        };
        let vectors = CollectionVectors {
            name: entry.name.clone(),
            id: entry.id.clone(),
            metadata_segment: entry.metadata_segment.clone(),
            hnsw,
            slots,
            log: HashMap::new(),
            sparse: false,
        };
        Ok(Opened {
            vectors,
            dimension,
            position: table_position.or(pickle_position),
            table_position,
        })
    }

    /// Apply the replayed log `tail` and check every live item has a vector.
    pub fn finish(opened: Opened, tail: LogTail, conn: &Connection) -> Result<Built> {
        let vectors = CollectionVectors {
            log: tail.vectors,
            ..opened.vectors
        };
        let mut sources = vectors.tally(conn)?;
        sources.log_rows_replayed = tail.rows;
        Ok(Built {
            vectors,
            dimension: tail.dimension.map(|d| d as u32),
            sources,
            table_position: opened.table_position,
        })
    }

    fn locate(&self, id: &str) -> Option<Location> {
        match self.log.get(id) {
            Some(Some(seq_id)) => Some(Location::Log(*seq_id)),
            Some(None) => None,
            None => self.slots.get(id).map(|slot| Location::Hnsw(*slot)),
        }
    }

    /// Read the current vector of live item `id` into `out`.
    pub fn vector(&self, conn: &Connection, id: &str, out: &mut Vec<f32>) -> Result<()> {
        match (self.locate(id), &self.hnsw) {
            (Some(Location::Log(seq_id)), _) => wal::vector(conn, seq_id, out),
            (Some(Location::Hnsw(slot)), Some(h)) => h.vector(slot, out),
            _ => Err(self.no_vector(id)),
        }
        .in_collection(&self.name, &self.id)
    }

    fn no_vector(&self, id: &str) -> ChromaError {
        ChromaError::new(
            ErrorKind::Corrupt,
            format!("live item {id:?} has no vector: neither a live HNSW element nor a log row after the persisted position"),
        )
        .with_collection(&self.name, &self.id)
    }

    /// Check every live item has a vector and count where they come from.
    fn tally(&self, conn: &Connection) -> Result<VectorSources> {
        let mut stmt = conn
            .prepare("SELECT embedding_id FROM embeddings WHERE segment_id = ?1")
            .map_err(|e| ChromaError::sqlite(e, "listing live items"))?;
        let mut rows = stmt
            .query([&self.metadata_segment])
            .map_err(|e| ChromaError::sqlite(e, "listing live items"))?;
        let mut sources = VectorSources {
            hnsw_elements: self.hnsw.as_ref().map_or(0, Hnsw::elements),
            ..VectorSources::default()
        };
        while let Some(row) = rows
            .next()
            .map_err(|e| ChromaError::sqlite(e, "listing live items"))?
        {
            let id = row
                .get_ref(0)
                .and_then(|v| v.as_str().map_err(rusqlite::Error::from))
                .map_err(|e| ChromaError::sqlite(e, "listing live items"))?;
            match self.locate(id) {
                Some(Location::Hnsw(_)) => sources.from_hnsw += 1,
                Some(Location::Log(_)) => sources.from_log += 1,
                None => return Err(self.no_vector(id)),
            }
        }
        let vectors = self
            .slots
            .keys()
            .filter(|id| !self.log.contains_key(*id))
            .count()
            + self.log.values().filter(|v| v.is_some()).count();
        sources.without_item = vectors as u64 - (sources.from_hnsw + sources.from_log);
        Ok(sources)
    }
}

/// Check the HNSW layout's dimension against the collection's (or adopt it).
fn check_dimension(h: &Hnsw, dimension: &mut Option<usize>) -> Result<()> {
    let expected = *dimension.get_or_insert(h.dimension());
    if h.dimension() != expected {
        return Err(ChromaError::new(
            ErrorKind::Corrupt,
            format!("HNSW elements hold {}-dimensional vectors but the collection's dimension is {expected}", h.dimension()),
        )
        .with_file(h.data_path()));
    }
    Ok(())
}

/// Map live HNSW slots to ids through the pickle; also its persisted position.
/// The pickle is parsed on a thread of its own while the level-0 file is
/// scanned for labels and deleted flags (each takes a few hundred ms on a
/// large collection).
fn load_slots(h: &Hnsw, dir: &Path) -> Result<(HashMap<String, u32>, Option<i64>)> {
    let pickle_path = dir.join("index_metadata.pickle");
    let (meta, live) = std::thread::scope(|scope| {
        let parsing = scope.spawn(|| pickle::read(&pickle_path));
        let live = live_elements(h);
        let meta = parsing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (meta, live)
    });
    let (mut meta, live) = (meta?, live?);
    let mut slots = HashMap::with_capacity(live.len());
    for (slot, label) in live {
        let id = meta.label_to_id.remove(&label).ok_or_else(|| {
            ChromaError::new(
                ErrorKind::Corrupt,
                format!("live HNSW element {slot} has label {label} which index_metadata.pickle does not map to an id"),
            )
            .with_file(&pickle_path)
        })?;
        slots.insert(id, slot);
    }
    Ok((slots, meta.max_seq_id))
}

/// Slot and label of every element not marked deleted.
fn live_elements(h: &Hnsw) -> Result<Vec<(u32, u64)>> {
    let mut live = Vec::new();
    h.scan(|e| {
        if !e.deleted {
            live.push((e.slot, e.label));
        }
    })?;
    Ok(live)
}
