//! Where each Chroma collection goes in PostgreSQL: the two layouts.
//!
//! * [`Layout::OpenWebUi`]: every collection into Open WebUI's `document_chunk`
//!   (`id`, `vector`, `collection_name`, `text`, `vmetadata`), created exactly as
//!   Open WebUI's pgvector client creates it, or reused when it exists.
//! * [`Layout::Tables`]: one table per collection named after it
//!   (`id`, `embedding`, `document`, `metadata`), plus the catalog table
//!   `chroma_collections` describing every collection.

use super::options::{ChromaOptions, IndexChoice};
use super::pgcrypto::Encryption;
use crate::error::{MigrateError, MigrateErrorKind};
pub use pgharbor_chroma::row_source::{space_name, Layout, TableFeed};
use pgharbor_chroma::{Collection, Space};
use pgharbor_core::plan::{ColumnDecision, Plan, RowKey, TablePlan, ValuePolicy};
use pgharbor_core::schema::{ColumnSpec, IndexSpec, PgType, QualifiedName, TableSpec};
use pgharbor_pgwriter::pgvector::{self, Distance, IndexMethod, Version};

/// Open WebUI's table.
pub const OPEN_WEBUI_TABLE: &str = "document_chunk";
/// Open WebUI's vector index name (it checks this name at startup).
pub const OPEN_WEBUI_VECTOR_INDEX: &str = "idx_document_chunk_vector";
/// Open WebUI's default `PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH`.
pub const OPEN_WEBUI_DEFAULT_DIMENSION: u32 = 1536;
/// Open WebUI builds its IVFFlat index only from 50 × lists rows on.
const OPEN_WEBUI_IVFFLAT_MIN_ROWS_PER_LIST: u64 = 50;
/// The catalog table of the tables layout.
pub const CATALOG_TABLE: &str = "chroma_collections";
/// PostgreSQL's identifier limit in bytes.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// A vector index to build after the load.
#[derive(Debug, Clone)]
pub struct VectorIndexPlan {
    /// Index into the plan's tables.
    pub table: usize,
    /// Index name.
    pub name: String,
    /// Vector column.
    pub column: String,
    /// Method and its options.
    pub method: IndexMethod,
    /// Distance the index serves.
    pub distance: Distance,
    /// The index exists already (kept, not built; still searched by the recall check).
    pub existing: bool,
}

/// Where one collection lands.
#[derive(Debug, Clone)]
pub struct CollectionTarget {
    /// Index into the plan's tables.
    pub table: usize,
    /// For a shared table, the `collection_name` value selecting its rows.
    pub shared_name: Option<String>,
    /// How searches rank (the operator the index and the recall check use).
    pub distance: Distance,
}

/// Everything decided before writing.
#[derive(Debug, Clone)]
pub struct ChromaPlan {
    /// Tables, columns and types (the pipeline's plan).
    pub plan: Plan,
    /// Per plan table, what feeds it.
    pub feeds: Vec<TableFeed>,
    /// Per store collection, where it goes.
    pub targets: Vec<CollectionTarget>,
    /// Vector indexes to build after the load.
    pub vector_indexes: Vec<VectorIndexPlan>,
    /// Full-text (GIN) indexes created with the table, before any row: the
    /// load's own connections then compute their keys on every core (a GIN
    /// build after the load is single-threaded).
    pub text_indexes: Vec<IndexSpec>,
    /// The layout.
    pub layout: Layout,
    /// The Open WebUI table exists already and is reused.
    pub reuse_existing: bool,
    /// Things the user should know (index deferred, spaces, settings).
    pub notes: Vec<String>,
    /// The reused `document_chunk` is Open WebUI's encrypted one
    /// (`PGVECTOR_PGCRYPTO=true`): how its rows are written and read.
    pub encryption: Option<Encryption>,
}

impl ChromaPlan {
    /// The `CREATE INDEX` statement of a planned vector index, and the type
    /// of the column it indexes.
    pub fn vector_index_sql(&self, ix: &VectorIndexPlan) -> (String, PgType) {
        let table = &self.plan.tables[ix.table].spec;
        let column_type = table
            .columns
            .iter()
            .find(|c| c.name == ix.column)
            .map_or(PgType::Vector(0), |c| c.pg_type);
        let sql = pgvector::vector_index(
            &ix.name,
            &table.name,
            &ix.column,
            column_type,
            ix.method,
            ix.distance,
        );
        (sql, column_type)
    }

    /// Where verification reads the rows of plan table `table`: the table,
    /// or the session's decrypting view of an encrypted `document_chunk`.
    pub fn rows_of(&self, table: usize) -> QualifiedName {
        match &self.encryption {
            Some(_) => Encryption::decrypted_view(),
            None => self.plan.tables[table].spec.name.clone(),
        }
    }
}

/// What the target already holds that the plan depends on.
#[derive(Debug, Clone, Default)]
pub struct TargetFacts {
    /// pgvector's version (installed, or about to be).
    pub pgvector: Version,
    /// Type of `document_chunk.vector` when the table exists.
    pub existing_vector_type: Option<PgType>,
    /// Definition of Open WebUI's vector index on `document_chunk`, if it exists.
    pub existing_vector_index: Option<String>,
    /// Names of every index already on `document_chunk`.
    pub existing_indexes: Vec<String>,
    /// `document_chunk.text` and `vmetadata` are `bytea`: Open WebUI created
    /// it with `PGVECTOR_PGCRYPTO=true`.
    pub encrypted: bool,
}

/// Decide the layout's tables for `collections`.
pub fn plan(
    collections: &[Collection],
    options: &ChromaOptions,
    facts: &TargetFacts,
) -> Result<ChromaPlan, MigrateError> {
    match options.layout {
        Layout::OpenWebUi => plan_open_webui(collections, options, facts),
        Layout::Tables => plan_tables(collections, options, facts),
    }
}

fn distance_of(space: Space) -> Distance {
    match space {
        Space::L2 => Distance::L2,
        Space::Cosine => Distance::Cosine,
        Space::Ip => Distance::InnerProduct,
    }
}

fn column(name: &str, pg_type: PgType, nullable: bool) -> ColumnSpec {
    ColumnSpec {
        name: name.into(),
        pg_type,
        nullable,
        default: None,
        identity: None,
    }
}

fn decisions(columns: &[ColumnSpec], reason: &str) -> Vec<ColumnDecision> {
    columns
        .iter()
        .map(|c| ColumnDecision {
            name: c.name.clone(),
            declared: String::new(),
            pg_type: c.pg_type,
            reason: reason.into(),
            widened: false,
        })
        .collect()
}

fn table_plan(
    source_name: String,
    spec: TableSpec,
    rows: u64,
    splittable: bool,
    reason: &str,
) -> TablePlan {
    let source_columns = spec.columns.iter().map(|c| c.name.clone()).collect();
    TablePlan {
        source_name,
        decisions: decisions(&spec.columns, reason),
        spec,
        row_key: RowKey::Columns(vec![0]),
        source_rows: rows,
        sequence_floor: None,
        splittable,
        source_columns,
        computed_by_target: Vec::new(),
    }
}

fn plan_open_webui(
    collections: &[Collection],
    options: &ChromaOptions,
    facts: &TargetFacts,
) -> Result<ChromaPlan, MigrateError> {
    refuse_other_tenants(collections)?;
    let rows: u64 = collections.iter().map(|c| c.count).sum();
    let max_dim = collections
        .iter()
        .filter_map(|c| c.dimension)
        .max()
        .unwrap_or(0);
    let mut notes = Vec::new();
    let vector_type = match facts.existing_vector_type {
        Some(t) => {
            if let Some(d) = options
                .dimension
                .filter(|d| PgType::Vector(*d) != t && PgType::HalfVec(*d) != t)
            {
                return Err(MigrateError::new(
                    MigrateErrorKind::Usage,
                    format!("--dimension {d} differs from the existing {OPEN_WEBUI_TABLE}.vector column ({t}); Open WebUI cannot change it after initialisation: drop --dimension to use the column's"),
                ));
            }
            t
        }
        None => {
            let dim = options.dimension.unwrap_or(OPEN_WEBUI_DEFAULT_DIMENSION);
            pgvector::column_type(dim, true, facts.pgvector)?
        }
    };
    let dim = match vector_type {
        PgType::Vector(d) | PgType::HalfVec(d) => d,
        other => {
            return Err(MigrateError::new(
                MigrateErrorKind::Usage,
                format!(
                    "the existing {OPEN_WEBUI_TABLE}.vector column is {other}, not a pgvector type"
                ),
            ))
        }
    };
    if dim != 0 && max_dim > dim {
        let widest = collections
            .iter()
            .find(|c| c.dimension == Some(max_dim))
            .expect("a widest collection");
        return Err(MigrateError::new(
            MigrateErrorKind::Usage,
            format!(
                "collection {:?} has {max_dim}-dimensional vectors but {OPEN_WEBUI_TABLE}.vector holds {dim}; cutting vectors short destroys them (Open WebUI would truncate). Use --dimension {max_dim} on a fresh table (and PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH={max_dim} in Open WebUI)",
                widest.name
            ),
        ));
    }
    if collections
        .iter()
        .any(|c| c.dimension.is_some_and(|d| d < dim))
    {
        notes.push(format!("vectors shorter than {dim} dimensions are zero-padded, as Open WebUI pads them; cosine ranking is unchanged"));
    }
    for c in collections.iter().filter(|c| c.space != Space::Cosine) {
        notes.push(format!(
            "collection {:?} used the {} space in Chroma; Open WebUI searches document_chunk by cosine distance",
            c.name,
            space_name(c.space)
        ));
    }
    let columns = vec![
        column("id", PgType::Text, false),
        column("vector", vector_type, true),
        column("collection_name", PgType::Text, false),
        column("text", PgType::Text, true),
        column("vmetadata", PgType::Jsonb, true),
    ];
    let name = QualifiedName::new(options.schema.clone(), OPEN_WEBUI_TABLE);
    let reuse_existing = facts.existing_vector_type.is_some();
    let encryption = encryption(options, facts, &name, &mut notes)?;
    let spec = TableSpec {
        name,
        columns,
        primary_key: (!reuse_existing).then(|| vec!["id".to_string()]),
        indexes: vec![open_webui_collection_index()]
            .into_iter()
            .filter(|i| !facts.existing_indexes.contains(&i.name))
            .collect(),
        foreign_keys: Vec::new(),
    };
    let half = matches!(vector_type, PgType::HalfVec(_));
    let method = open_webui_vector_index(options.index, rows, half, facts, &mut notes);
    let vector_indexes = method
        .map(|(method, existing)| VectorIndexPlan {
            table: 0,
            name: OPEN_WEBUI_VECTOR_INDEX.into(),
            column: "vector".into(),
            method,
            distance: Distance::Cosine,
            existing,
        })
        .into_iter()
        .collect();
    let targets = collections
        .iter()
        .map(|c| CollectionTarget {
            table: 0,
            shared_name: Some(c.name.clone()),
            distance: Distance::Cosine,
        })
        .collect();
    Ok(ChromaPlan {
        plan: Plan {
            target_schema: options.schema.clone(),
            tables: vec![TablePlan {
                // Rows are named by collection and id in errors and reports.
                row_key: RowKey::Columns(vec![2, 0]),
                ..table_plan(
                    OPEN_WEBUI_TABLE.into(),
                    spec,
                    rows,
                    true,
                    "Open WebUI's pgvector layout",
                )
            }],
            views: Vec::new(),
            reported: Vec::new(),
            policy: options.policy,
        },
        feeds: vec![TableFeed::Collections((0..collections.len()).collect())],
        targets,
        vector_indexes,
        // Open WebUI builds no full-text index over encrypted text.
        text_indexes: Some(open_webui_text_index())
            .filter(|i| !facts.existing_indexes.contains(&i.name) && encryption.is_none())
            .into_iter()
            .collect(),
        layout: Layout::OpenWebUi,
        reuse_existing,
        notes,
        encryption,
    })
}

/// The encryption of an existing `document_chunk` Open WebUI created with
/// `PGVECTOR_PGCRYPTO=true`, which needs its key; a key file given for a
/// table that is not encrypted is refused (the user expects encryption).
fn encryption(
    options: &ChromaOptions,
    facts: &TargetFacts,
    table: &QualifiedName,
    notes: &mut Vec<String>,
) -> Result<Option<Encryption>, MigrateError> {
    match (facts.encrypted, &options.pgcrypto_key) {
        (true, Some(key)) => {
            notes.push(format!("{table}'s text and vmetadata are encrypted with pgcrypto as Open WebUI encrypts them (PGVECTOR_PGCRYPTO=true), with the key from {}", key.origin()));
            Ok(Some(Encryption::new(key.clone(), table.clone())))
        }
        (true, None) => Err(MigrateError::new(
            MigrateErrorKind::Usage,
            format!("{table}'s text and vmetadata are bytea: Open WebUI created it with PGVECTOR_PGCRYPTO=true and encrypts them with PGVECTOR_PGCRYPTO_KEY. Give pgharbor the same key: set PGVECTOR_PGCRYPTO_KEY in its environment, or --pgcrypto-key-file FILE"),
        )),
        (false, Some(key)) if key.explicit() => Err(MigrateError::new(
            MigrateErrorKind::Usage,
            format!("a pgcrypto key was given ({}) but {table} {}: start Open WebUI once with PGVECTOR_PGCRYPTO=true and PGVECTOR_PGCRYPTO_KEY so that it creates its encrypted table, or leave the key out", key.origin(), if facts.existing_vector_type.is_some() { "stores text and vmetadata unencrypted" } else { "does not exist yet" }),
        )),
        (false, Some(key)) => {
            notes.push(format!("the pgcrypto key from {} is not used: {table} is not encrypted", key.origin()));
            Ok(None)
        }
        (false, None) => Ok(None),
    }
}

/// Open WebUI reads one tenant and database (its CHROMA_TENANT/CHROMA_DATABASE
/// defaults); collections elsewhere would be invisible to it.
fn refuse_other_tenants(collections: &[Collection]) -> Result<(), MigrateError> {
    let others: Vec<String> = collections
        .iter()
        .filter(|c| c.tenant != "default_tenant" || c.database != "default_database")
        .map(|c| format!("{}/{}/{}", c.tenant, c.database, c.name))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(MigrateError::new(
        MigrateErrorKind::Usage,
        format!(
            "the store has collections outside default_tenant/default_database, which Open WebUI does not read: {}; use --layout tables to move every collection into tables of its own",
            others.join(", ")
        ),
    ))
}

/// Open WebUI's index on the collection name (every search filters on it).
fn open_webui_collection_index() -> IndexSpec {
    IndexSpec {
        name: "idx_document_chunk_collection_name".into(),
        elements: vec!["collection_name".into()],
        unique: false,
        method: None,
        predicate: None,
        translated: false,
    }
}

/// Open WebUI's full-text index (its hybrid search). Its keys are
/// `to_tsvector` of every chunk, the most expensive part of a move: built
/// after the load, PostgreSQL computes them on one core; present during the
/// load, each COPY connection computes its own rows' keys (see
/// [`ChromaPlan::text_indexes`]).
fn open_webui_text_index() -> IndexSpec {
    IndexSpec {
        name: "idx_document_chunk_text_search".into(),
        elements: vec!["to_tsvector('simple', coalesce(text, ''))".into()],
        unique: false,
        method: Some("gin".into()),
        predicate: None,
        translated: false,
    }
}

/// The vector index Open WebUI's settings expect. `auto` does what Open WebUI
/// does at startup with default settings: IVFFlat (lists = 100) once the table
/// holds 5,000 rows, nothing before (Open WebUI builds it on a later start).
fn open_webui_vector_index(
    choice: IndexChoice,
    rows: u64,
    half: bool,
    facts: &TargetFacts,
    notes: &mut Vec<String>,
) -> Option<(IndexMethod, bool)> {
    if let Some(existing) = &facts.existing_vector_index {
        notes.push(format!(
            "{OPEN_WEBUI_VECTOR_INDEX} already exists and is kept: {existing}"
        ));
        return existing_method(existing).map(|m| (m, true));
    }
    let method = match choice {
        IndexChoice::None => None,
        IndexChoice::Method(m) => Some(m),
        // Open WebUI indexes a halfvec column with HNSW from the start.
        IndexChoice::Auto if half => Some(IndexMethod::Hnsw {
            m: 16,
            ef_construction: 64,
        }),
        IndexChoice::OpenWebUiSettings(IndexMethod::IvfFlat { lists }) => {
            ivfflat_once_trained(lists, rows, notes)
        }
        IndexChoice::OpenWebUiSettings(m) => Some(m),
        IndexChoice::Auto => ivfflat_once_trained(100, rows, notes),
    };
    match method {
        Some(IndexMethod::Hnsw { .. }) => notes.push("set PGVECTOR_INDEX_METHOD=hnsw in Open WebUI: it refuses to start when the index method differs from its setting".into()),
        Some(IndexMethod::IvfFlat { .. }) => notes.push("Open WebUI never sets ivfflat.probes, so it searches with the database's setting (pgvector's default: 1 list); the report gives the recall@10 it will see there and the measured ivfflat.probes that reach 0.9 and 0.99, to set with ALTER DATABASE".into()),
        None => {}
    }
    method.map(|m| (m, false))
}

/// IVFFlat with `lists` when the table holds the 50 rows per list Open WebUI
/// waits for; none before (Open WebUI builds it on a later start).
fn ivfflat_once_trained(lists: u32, rows: u64, notes: &mut Vec<String>) -> Option<IndexMethod> {
    let needed = OPEN_WEBUI_IVFFLAT_MIN_ROWS_PER_LIST * u64::from(lists);
    if rows >= needed {
        return Some(IndexMethod::IvfFlat { lists });
    }
    notes.push(format!("no vector index yet: like Open WebUI, the IVFFlat index (lists = {lists}) is built once {needed} rows exist (searches are exact until then)"));
    None
}

/// The method of an index and its options from its definition
/// (`pg_indexes.indexdef`, e.g. `… USING hnsw (vector halfvec_cosine_ops)
/// WITH (m='24', ef_construction='100')`); pgvector's defaults for options
/// the definition does not set.
pub fn existing_method(definition: &str) -> Option<IndexMethod> {
    let lower = definition.to_ascii_lowercase();
    let option = |name: &str, default: u32| -> u32 {
        let Some((_, with)) = lower.rsplit_once(" with (") else {
            return default;
        };
        with.trim_end_matches(')')
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| key.trim() == name)
            .and_then(|(_, value)| value.trim().trim_matches('\'').parse().ok())
            .unwrap_or(default)
    };
    if lower.contains(" using hnsw ") {
        Some(IndexMethod::Hnsw {
            m: option("m", 16),
            ef_construction: option("ef_construction", 64),
        })
    } else if lower.contains(" using ivfflat ") {
        Some(IndexMethod::IvfFlat {
            lists: option("lists", 100),
        })
    } else {
        None
    }
}

fn plan_tables(
    collections: &[Collection],
    options: &ChromaOptions,
    facts: &TargetFacts,
) -> Result<ChromaPlan, MigrateError> {
    let names = table_names(collections)?;
    let mut tables = Vec::new();
    let mut feeds = Vec::new();
    let mut targets = Vec::new();
    let mut vector_indexes = Vec::new();
    let mut notes = Vec::new();
    let indexed = options.index != IndexChoice::None;
    for (i, (collection, table_name)) in collections.iter().zip(&names).enumerate() {
        let dim = options.dimension.or(collection.dimension).unwrap_or(0);
        let vector_type = if dim == 0 {
            PgType::Vector(0)
        } else {
            pgvector::column_type(dim, indexed, facts.pgvector)?
        };
        if options
            .dimension
            .is_some_and(|d| collection.dimension.is_some_and(|c| c < d))
        {
            notes.push(format!(
                "collection {:?}: vectors zero-padded to {dim} dimensions",
                collection.name
            ));
        }
        let spec = TableSpec {
            name: QualifiedName::new(options.schema.clone(), table_name.clone()),
            columns: vec![
                column("id", PgType::Text, false),
                column("embedding", vector_type, false),
                column("document", PgType::Text, true),
                column("metadata", PgType::Jsonb, true),
            ],
            primary_key: Some(vec!["id".into()]),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
        };
        let distance = distance_of(collection.space);
        let method = match options.index {
            IndexChoice::None => None,
            IndexChoice::Method(m) | IndexChoice::OpenWebUiSettings(m) => Some(m),
            IndexChoice::Auto => Some(IndexMethod::Hnsw {
                m: 16,
                ef_construction: 64,
            }),
        };
        if let Some(method) = method.filter(|_| dim > 0 && collection.count > 0) {
            vector_indexes.push(VectorIndexPlan {
                table: i,
                name: index_name(table_name),
                column: "embedding".into(),
                method,
                distance,
                existing: false,
            });
        }
        tables.push(table_plan(
            display_name(collection),
            spec,
            collection.count,
            true,
            "Chroma collection",
        ));
        feeds.push(TableFeed::Collections(vec![i]));
        targets.push(CollectionTarget {
            table: i,
            shared_name: None,
            distance,
        });
    }
    tables.push(table_plan(
        "(collections)".into(),
        catalog_spec(&options.schema),
        collections.len() as u64,
        false,
        "catalog of Chroma collections",
    ));
    feeds.push(TableFeed::Catalog);
    Ok(ChromaPlan {
        plan: Plan {
            target_schema: options.schema.clone(),
            tables,
            views: Vec::new(),
            reported: Vec::new(),
            policy: options.policy,
        },
        feeds,
        targets,
        vector_indexes,
        text_indexes: Vec::new(),
        layout: Layout::Tables,
        reuse_existing: false,
        notes,
        encryption: None,
    })
}

/// `tenant/database/name` for collections outside the defaults, else the name.
pub fn display_name(c: &Collection) -> String {
    display_name_parts(&c.tenant, &c.database, &c.name)
}

/// [`display_name`] from its parts.
pub fn display_name_parts(tenant: &str, database: &str, name: &str) -> String {
    match (tenant, database) {
        ("default_tenant", "default_database") => name.to_string(),
        ("default_tenant", db) => format!("{db}/{name}"),
        (tenant, db) => format!("{tenant}/{db}/{name}"),
    }
}

/// Table names: the collection's name (its display name outside the default
/// tenant and database); refused when PostgreSQL would have to shorten it.
fn table_names(collections: &[Collection]) -> Result<Vec<String>, MigrateError> {
    let names: Vec<String> = collections.iter().map(display_name).collect();
    let too_long: Vec<&String> = names
        .iter()
        .filter(|n| n.len() > MAX_IDENTIFIER_BYTES)
        .collect();
    if !too_long.is_empty() {
        return Err(MigrateError::new(
            MigrateErrorKind::Usage,
            format!(
                "collection name(s) longer than PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte identifiers, which it would cut short: {}; use --layout open-webui (names are stored as values there)",
                too_long.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if let Some(clash) = names.iter().find(|n| n.as_str() == CATALOG_TABLE) {
        return Err(MigrateError::new(
            MigrateErrorKind::Usage,
            format!("a collection is named {clash:?}, the name of pgharbor's catalog table; use --schema to keep them apart"),
        ));
    }
    Ok(names)
}

/// `<table>_embedding_idx`, shortened (with a hash of the full name, so
/// shortened names stay distinct) to fit PostgreSQL's 63 bytes.
fn index_name(table: &str) -> String {
    const SUFFIX: &str = "_embedding_idx";
    if table.len() + SUFFIX.len() <= MAX_IDENTIFIER_BYTES {
        return format!("{table}{SUFFIX}");
    }
    let mut cut = 40;
    while !table.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash = xxhash_rust::xxh3::xxh3_64(table.as_bytes()) as u32;
    format!("{}_{hash:08x}{SUFFIX}", &table[..cut])
}

fn catalog_spec(schema: &str) -> TableSpec {
    TableSpec {
        name: QualifiedName::new(schema, CATALOG_TABLE),
        columns: vec![
            column("collection_id", PgType::Text, false),
            column("name", PgType::Text, false),
            column("table_name", PgType::Text, false),
            column("tenant", PgType::Text, false),
            column("database", PgType::Text, false),
            column("space", PgType::Text, false),
            column("dimension", PgType::Integer, true),
            column("items", PgType::BigInt, false),
            column("metadata", PgType::Jsonb, true),
        ],
        primary_key: Some(vec!["collection_id".into()]),
        indexes: Vec::new(),
        foreign_keys: Vec::new(),
    }
}

/// The policy for values: NULs are refused unless stripped (Open WebUI strips them).
pub fn policy_for(layout: Layout, requested: ValuePolicy, nul_given: bool) -> ValuePolicy {
    let mut policy = requested;
    if layout == Layout::OpenWebUi && !nul_given {
        policy.nul = pgharbor_core::plan::NulPolicy::Strip;
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_index_keeps_its_method_and_options() {
        let hnsw = "CREATE INDEX idx_document_chunk_vector ON public.document_chunk USING hnsw (vector halfvec_cosine_ops) WITH (m='24', ef_construction='100')";
        assert_eq!(
            existing_method(hnsw),
            Some(IndexMethod::Hnsw {
                m: 24,
                ef_construction: 100
            })
        );
        let ivfflat = "CREATE INDEX idx_document_chunk_vector ON public.document_chunk USING ivfflat (vector vector_cosine_ops) WITH (lists='7')";
        assert_eq!(
            existing_method(ivfflat),
            Some(IndexMethod::IvfFlat { lists: 7 })
        );
        let bare = "CREATE INDEX i ON public.document_chunk USING hnsw (vector vector_cosine_ops)";
        assert_eq!(
            existing_method(bare),
            Some(IndexMethod::Hnsw {
                m: 16,
                ef_construction: 64
            })
        );
        assert_eq!(existing_method("CREATE INDEX i ON t USING btree (x)"), None);
    }

    #[test]
    fn ivfflat_from_open_webuis_settings_waits_for_fifty_rows_per_list() {
        let mut notes = Vec::new();
        let choice = IndexChoice::OpenWebUiSettings(IndexMethod::IvfFlat { lists: 7 });
        let facts = TargetFacts::default();
        assert_eq!(
            open_webui_vector_index(choice, 349, false, &facts, &mut notes),
            None
        );
        assert!(
            notes[0].contains("lists = 7") && notes[0].contains("350 rows"),
            "{notes:?}"
        );
        assert_eq!(
            open_webui_vector_index(choice, 350, false, &facts, &mut notes),
            Some((IndexMethod::IvfFlat { lists: 7 }, false))
        );
        let hnsw = IndexChoice::OpenWebUiSettings(IndexMethod::Hnsw {
            m: 24,
            ef_construction: 100,
        });
        assert!(open_webui_vector_index(hnsw, 1, false, &facts, &mut notes).is_some());
    }

    #[test]
    fn index_names_fit_and_stay_distinct() {
        let a = index_name(&format!("{}a", "東".repeat(20)));
        let b = index_name(&format!("{}b", "東".repeat(20)));
        assert!(a.len() <= MAX_IDENTIFIER_BYTES && b.len() <= MAX_IDENTIFIER_BYTES);
        assert_ne!(a, b);
        assert_eq!(index_name("notes"), "notes_embedding_idx");
    }
}
