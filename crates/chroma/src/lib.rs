//! # pgharbor-chroma
//!
//! The ChromaDB source: reads a persistent Chroma directory (`chroma.sqlite3`
//! plus one HNSW segment directory per collection) straight from disk,
//! read-only, without Python or a `chromadb` install, for stores written by
//! chromadb 0.4.x … 1.5.x.
//!
//! API CONTRACT (skeleton written by the lead; the reader helper implements it
//! and replaces this paragraph with the real overview):
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

use std::path::Path;

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

/// Errors reading a store.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChromaError(String);

/// An opened store: one consistent read snapshot.
pub struct Store {}

impl Store {
    /// Open a Chroma directory (or its `chroma.sqlite3`) read-only, with
    /// `readers` extra connections for [`Store::reader`].
    pub fn open(_path: &Path, _readers: usize) -> Result<Store, ChromaError> {
        unimplemented!("reader helper")
    }

    /// Live collections, in a stable order (tenant, database, name).
    pub fn collections(&self) -> &[Collection] {
        unimplemented!("reader helper")
    }

    /// A reader for another thread, inside the same snapshot.
    pub fn reader(&self) -> Result<StoreReader, ChromaError> {
        unimplemented!("reader helper")
    }

    /// Check nothing changed on disk since open (HNSW files, persisted positions).
    pub fn check_unchanged(&self) -> Result<(), ChromaError> {
        unimplemented!("reader helper")
    }
}

/// Reads items of one collection; `Send`, one per worker thread.
pub struct StoreReader {}

impl StoreReader {
    /// Call `on_record` for every live item of collection `collection` whose
    /// `embeddings.id` is within `first..=last`, in `embeddings.id` order.
    pub fn read<E: From<ChromaError>>(
        &mut self,
        _collection: usize,
        _first: i64,
        _last: i64,
        _on_record: &mut dyn FnMut(&Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        unimplemented!("reader helper")
    }
}
