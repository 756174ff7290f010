//! What a Chroma move is told: the layout, the vector index to build, the
//! workers, and the settings of the nearest-neighbour checks.

use super::layout::Layout;
use super::pgcrypto;
use pgharbor_core::plan::ValuePolicy;
use pgharbor_pgwriter::pgvector::IndexMethod;

/// Which vector index to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexChoice {
    /// The layout's default: what Open WebUI builds (IVFFlat from 5,000 rows),
    /// HNSW for the tables layout.
    Auto,
    /// No vector index (exact searches).
    None,
    /// This method.
    Method(IndexMethod),
    /// What Open WebUI's own settings name (`PGVECTOR_INDEX_METHOD` and its
    /// options), built when Open WebUI would build it: HNSW at once,
    /// IVFFlat once 50 rows per list exist.
    OpenWebUiSettings(IndexMethod),
}

/// Settings of the nearest-neighbour checks.
#[derive(Debug, Clone)]
pub struct RecallOptions {
    /// Queries per collection (stored vectors, spread over the collection).
    pub queries: usize,
    /// Fail when the index's recall@10 (at `ef_search`/`probes`) is below
    /// this; without it recall is only reported.
    pub min_recall: Option<f64>,
    /// `hnsw.ef_search` of the reported recall.
    pub ef_search: u32,
    /// `ivfflat.probes` of the reported recall.
    pub probes: u32,
}

impl Default for RecallOptions {
    fn default() -> Self {
        RecallOptions {
            queries: 32,
            min_recall: None,
            ef_search: 40,
            probes: 10,
        }
    }
}

/// Options of a Chroma migration.
#[derive(Debug, Clone)]
pub struct ChromaOptions {
    /// Where collections go.
    pub layout: Layout,
    /// Target schema.
    pub schema: String,
    /// Vector column dimension (Open WebUI's `PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH`).
    pub dimension: Option<u32>,
    /// Vector index.
    pub index: IndexChoice,
    /// Parallel workers.
    pub jobs: usize,
    /// Verify (counts, checksums, exact neighbours; recall) after loading.
    pub verify: bool,
    /// The recall check.
    pub recall: RecallOptions,
    /// Replace what is in the way: the collections' rows in an existing
    /// `document_chunk` (`--truncate`), or existing tables of the tables
    /// layout (`--drop-existing`).
    pub replace: bool,
    /// Create the target database when it is missing.
    pub create_database: bool,
    /// NUL and UTF-8 rules.
    pub policy: ValuePolicy,
    /// Open WebUI's `PGVECTOR_PGCRYPTO_KEY`, for a `document_chunk` it
    /// created encrypted.
    pub pgcrypto_key: Option<pgcrypto::PgcryptoKey>,
}
