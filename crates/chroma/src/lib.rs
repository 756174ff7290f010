//! # pgharbor-chroma
//!
//! The ChromaDB source: reads a persistent Chroma directory (`chroma.sqlite3`
//! plus one HNSW segment directory per collection) straight from disk,
//! read-only, without Python or a `chromadb` install, for stores written by
//! chromadb 0.4.x … 1.5.x.
//!
//! ## How it reads
//!
//! * [`Store::open`] takes one SQLite read snapshot of `chroma.sqlite3`
//!   (a leader plus `readers` spare connections, all inside one read
//!   transaction, never writing), lists the live collections from
//!   `collections` → `segments` (ghost directories and orphan rows of dropped
//!   collections are ignored), and for each collection:
//!   - reads `header.bin` and the labels and deleted flags of the
//!     `cur_element_count` elements of `data_level0.bin` (not the vectors),
//!     mapping live slots to ids through `index_metadata.pickle`;
//!   - replays the write-ahead log (`embeddings_queue`) past the persisted
//!     position (`max_seq_id` table, else the pickle's `max_seq_id`, else from
//!     the start) with Chroma's add/update/upsert/delete semantics, keeping
//!     only which log row holds each id's current vector;
//!   - checks that every live item (row of the metadata segment's
//!     `embeddings`) has a vector, and counts where they come from
//!     ([`VectorSources`]).
//! * [`StoreReader::read`] streams a range of `embeddings.id` of one
//!   collection with one query joining `embedding_metadata` (and an ordered
//!   cursor over `embedding_metadata_array` on 1.5+), and fetches each vector
//!   by positioned read from `data_level0.bin` (multiplied by `length.bin`
//!   for cosine spaces) or by `seq_id` from the log. Memory stays proportional
//!   to the number of ids, not to the vectors.
//! * [`Store::check_unchanged`] verifies afterwards, on a fresh connection,
//!   that Chroma did not persist the HNSW files while they were read.
//!
//! The metadata segment is the truth for the live id set, documents and
//! metadata; vectors of ids it does not hold are ignored
//! ([`VectorSources::without_item`]). Every error names the file and the
//! collection concerned ([`ChromaError`]).
//!
//! ## As the pipeline's row source
//!
//! * [`row_source::ChromaSource`] implements `pgharbor-source`'s
//!   `RowSource`: work units (collections whole, or `embeddings.id` ranges
//!   of large ones) and a [`row_source::ChromaReader`] per worker, turning
//!   items into the rows of a [`row_source::Layout`] (Open WebUI's
//!   `document_chunk`, or a table per collection and a catalog), its errors
//!   `SourceError`s; a [`row_source::RecordObserver`] the pipeline attaches
//!   sees every item read with its row.
//! * [`open_webui_metadata`]: Open WebUI's rule for chunk metadata, applied
//!   under its layout.
//! * [`query_items`]: the items a proof queries a collection with, spread
//!   over it.
//!
//! ```no_run
//! use pgharbor_chroma::{Store, ChromaError};
//! let store = Store::open("vector_db".as_ref(), 2)?;
//! for (i, c) in store.collections().iter().enumerate() {
//!     let mut reader = store.reader()?;
//!     let (first, last) = c.rowid_bounds.unwrap_or((1, 0));
//!     reader.read(i, first, last, &mut |r| {
//!         println!("{} {} dims", r.id, r.embedding.len());
//!         Ok::<(), ChromaError>(())
//!     })?;
//! }
//! # Ok::<(), ChromaError>(())
//! ```

mod catalog;
mod error;
mod hnsw;
mod metadata;
pub mod open_webui_metadata;
mod pickle;
pub mod query_items;
mod reader;
pub mod row_source;
mod schema;
mod store;
mod vectors;
mod wal;

pub use error::{ChromaError, ErrorKind, Result};
pub use reader::StoreReader;
pub use store::Store;

/// Distance space of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Squared Euclidean (`l2`, Chroma's default).
    L2,
    /// Cosine distance (vectors stored normalised, norms in `length.bin`).
    Cosine,
    /// Inner product (`ip`).
    Ip,
}

/// One live collection of the store.
#[derive(Debug, Clone)]
pub struct Collection {
    /// Collection UUID.
    pub id: String,
    /// Collection name.
    pub name: String,
    /// Tenant name.
    pub tenant: String,
    /// Database name.
    pub database: String,
    /// Distance space.
    pub space: Space,
    /// Vector dimension (None when the collection holds no vectors).
    pub dimension: Option<u32>,
    /// Collection metadata (user keys; `hnsw:*` keys included as stored).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Live items (rows of the metadata segment in the snapshot).
    pub count: u64,
    /// Smallest and largest `embeddings.id` of the metadata segment, for splitting.
    pub rowid_bounds: Option<(i64, i64)>,
    /// Where the vectors come from, for the report.
    pub sources: VectorSources,
}

/// Where a collection's current vectors were found.
#[derive(Debug, Clone, Copy, Default)]
pub struct VectorSources {
    /// Elements in the HNSW files (header `cur_element_count`).
    pub hnsw_elements: u64,
    /// Live items whose vector comes from the HNSW files.
    pub from_hnsw: u64,
    /// Live items whose vector comes from the write-ahead log.
    pub from_log: u64,
    /// Log rows replayed (after the persisted position).
    pub log_rows_replayed: u64,
    /// Current vectors (HNSW or log) whose id has no item in the metadata
    /// segment: ignored, since the metadata segment is the truth.
    pub without_item: u64,
}

/// One item as `collection.get(include=[embeddings, documents, metadatas])` returns it.
#[derive(Debug)]
pub struct Record<'a> {
    /// Index of the collection in [`Store::collections`].
    pub collection: usize,
    /// `embeddings.id` of the item (its position in the metadata segment).
    pub rowid: i64,
    /// The user's id.
    pub id: &'a str,
    /// The document, if any.
    pub document: Option<&'a str>,
    /// Metadata without the document key; None when the item has none.
    pub metadata: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// The vector as Chroma returns it (de-normalised for cosine).
    pub embedding: &'a [f32],
}
