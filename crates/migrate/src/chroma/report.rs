//! The Chroma report: the run's [`MigrationReport`] with a section of its
//! own — per collection where it went, how its proof went and the vector
//! index's recall; the vector columns and indexes; Open WebUI's settings.

use super::check::CollectionCheck;
use super::layout::{self, ChromaPlan, Layout};
use super::neighbours::ExactCheck;
use super::recall::RecallReport;
use pgharbor_chroma::open_webui_metadata::MetadataChanges;
use pgharbor_chroma::row_source::Feeds;
use pgharbor_core::report::{MigrationReport, TableVerification};
use pgharbor_core::schema::{quote_ident, PgType};
use pgharbor_pgwriter::pgvector::IndexMethod;
use serde::Serialize;

/// What happened to one collection.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionReport {
    /// Collection name.
    pub name: String,
    /// Tenant.
    pub tenant: String,
    /// Database.
    pub database: String,
    /// Distance space in Chroma.
    pub space: String,
    /// Dimension.
    pub dimension: Option<u32>,
    /// Live items.
    pub items: u64,
    /// Target table.
    pub table: String,
    /// Vectors read from the HNSW files.
    pub vectors_from_hnsw: u64,
    /// Vectors read from the write-ahead log.
    pub vectors_from_log: u64,
    /// Counts and checksums, when verified.
    pub verification: Option<TableVerification>,
    /// PostgreSQL's exact top 10 against the source's, when verified.
    pub exact_neighbours: Option<ExactCheck>,
    /// The vector index's recall@10, when the collection's table has one.
    pub recall: Option<RecallReport>,
}

/// The result of a Chroma migration.
#[derive(Debug, Clone, Serialize)]
pub struct ChromaReport {
    /// Tables, rows, bytes, phases.
    pub migration: MigrationReport,
    /// `open-webui` or `tables`.
    pub layout: String,
    /// The vector column type (`vector(1536)`, …) per table.
    pub vector_columns: Vec<String>,
    /// Keys and indexes built after the load, as SQL.
    pub indexes: Vec<String>,
    /// Per collection.
    pub collections: Vec<CollectionReport>,
    /// Open WebUI's metadata rule: what it changed.
    pub metadata_changes: MetadataChanges,
    /// Notes for the user.
    pub notes: Vec<String>,
    /// `Some(false)` when a collection's recall fell below an explicit
    /// `--min-recall`.
    pub recall_passed: Option<bool>,
    /// Statements that give the application's searches recall@10 of 0.9 in
    /// every collection, where the database's own setting does not (the
    /// largest setting those collections' indexes need).
    pub index_settings: Vec<String>,
    /// Open WebUI settings that match what was written (open-webui layout).
    pub open_webui_env: Vec<String>,
}

/// Open WebUI's environment for what the plan writes.
fn open_webui_env(plan: &ChromaPlan) -> Vec<String> {
    if plan.layout != Layout::OpenWebUi {
        return Vec::new();
    }
    let mut env = vec!["VECTOR_DB=pgvector".to_string()];
    match plan.plan.tables[0].spec.columns[1].pg_type {
        PgType::HalfVec(d) => {
            env.push(format!("PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH={d}"));
            env.push("PGVECTOR_USE_HALFVEC=true".into());
        }
        PgType::Vector(d) if d > 0 => {
            env.push(format!("PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH={d}"))
        }
        _ => {}
    }
    if let Some(ix) = plan.vector_indexes.first() {
        env.push(format!("PGVECTOR_INDEX_METHOD={}", ix.method.name()));
        match ix.method {
            IndexMethod::Hnsw { m, ef_construction } => {
                env.push(format!("PGVECTOR_HNSW_M={m}"));
                env.push(format!("PGVECTOR_HNSW_EF_CONSTRUCTION={ef_construction}"));
            }
            IndexMethod::IvfFlat { lists } => env.push(format!("PGVECTOR_IVFFLAT_LISTS={lists}")),
        }
    }
    if plan.encryption.is_some() {
        env.push("PGVECTOR_PGCRYPTO=true".into());
        env.push("PGVECTOR_PGCRYPTO_KEY=**** (the key pgharbor was given)".into());
    }
    env
}

/// What the checks found, per collection (empty without verification).
#[derive(Default)]
pub struct Findings {
    /// Counts, checksums and exact neighbours.
    pub checks: Vec<Option<CollectionCheck>>,
    /// The index's recall, when the collection's table has one.
    pub recalls: Vec<Option<RecallReport>>,
    /// The statements that give the application 0.9 everywhere.
    pub settings: Vec<String>,
}

/// The Chroma report of `migration`: `indexes` built, `findings` of the
/// checks (`verified`: the checks ran).
pub fn report(
    mut migration: MigrationReport,
    plan: &ChromaPlan,
    feeds: &Feeds,
    indexes: Vec<String>,
    findings: Findings,
    verified: bool,
) -> ChromaReport {
    let Findings {
        checks,
        recalls,
        settings,
    } = findings;
    let collections: Vec<CollectionReport> = feeds
        .collections
        .iter()
        .enumerate()
        .map(|(i, c)| CollectionReport {
            name: c.name.clone(),
            tenant: c.tenant.clone(),
            database: c.database.clone(),
            space: layout::space_name(c.space).into(),
            dimension: c.dimension,
            items: c.count,
            table: plan.plan.tables[plan.targets[i].table]
                .spec
                .name
                .to_string(),
            vectors_from_hnsw: c.sources.from_hnsw,
            vectors_from_log: c.sources.from_log,
            verification: checks
                .get(i)
                .and_then(|x| x.as_ref())
                .map(|x| x.verification.clone()),
            exact_neighbours: checks
                .get(i)
                .and_then(|x| x.as_ref())
                .map(|x| x.exact_neighbours.clone()),
            recall: recalls.get(i).cloned().flatten(),
        })
        .collect();
    if verified {
        migration.verified = Some(
            checks
                .iter()
                .all(|c| c.as_ref().is_some_and(|c| c.proved())),
        );
    }
    let recall_passed = verified.then(|| {
        collections
            .iter()
            .all(|c| c.recall.as_ref().is_none_or(|r| r.passed))
    });
    let mut metadata_changes = feeds.changes();
    migration.lossy.nul_stripped += metadata_changes.nul_stripped;
    metadata_changes.nul_stripped = 0;
    ChromaReport {
        migration,
        layout: match plan.layout {
            Layout::OpenWebUi => "open-webui".into(),
            Layout::Tables => "tables".into(),
        },
        vector_columns: plan
            .plan
            .tables
            .iter()
            .filter_map(|t| {
                t.spec
                    .columns
                    .iter()
                    .find(|c| matches!(c.pg_type, PgType::Vector(_) | PgType::HalfVec(_)))
                    .map(|c| format!("{}.{}: {}", t.spec.name, quote_ident(&c.name), c.pg_type))
            })
            .collect(),
        indexes,
        collections,
        metadata_changes,
        notes: plan.notes.clone(),
        recall_passed,
        index_settings: settings,
        open_webui_env: open_webui_env(plan),
    }
}
