//! ChromaDB → PostgreSQL + pgvector, through the shared pipeline: the store is
//! read straight from disk ([`pgharbor_chroma`]), planned into one of two
//! [layouts](layout::Layout), loaded in parallel by [`crate::load`], keyed and
//! indexed by [`crate::finish`] plus the vector indexes, then proved per
//! collection by [`check`] (counts, checksums) and [`neighbours`] (the exact
//! top 10 of stored vectors); the vector index's [`recall`] is measured and
//! reported.

pub mod check;
pub mod layout;
pub mod neighbours;
pub mod openwebui;
pub mod pgcrypto;
pub mod reader;
pub mod recall;
mod verify_only;

pub use verify_only::verify_only;

use crate::error::{pg_error, MigrateError, MigrateErrorKind};
use crate::finish;
use crate::load::{self, UnitRange, UnitReader, WorkUnit};
use crate::progress::Progress;
use crate::run::{interruptible, saying, CancellationToken, Phases};
use crate::target;
use check::{CollectionCheck, SourceTally};
use layout::{
    ChromaPlan, Layout, TableFeed, TargetFacts, OPEN_WEBUI_TABLE, OPEN_WEBUI_VECTOR_INDEX,
};
use neighbours::{ExactCheck, Query};
use openwebui::MetadataChanges;
use pgharbor_chroma::Collection;
pub use pgharbor_chroma::Store;
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::{Plan, ValuePolicy};
use pgharbor_core::report::{MigrationReport, TableVerification};
use pgharbor_core::schema::{quote_ident, PgType, QualifiedName};
use pgharbor_pgwriter::ddl;
use pgharbor_pgwriter::pgvector::{self, IndexMethod, Version};
use reader::{ChromaUnitReader, Feeds};
use recall::{RecallReport, Searches};
use serde::Serialize;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_postgres::Client;

/// Collections with at least this many items are split over several workers.
const SPLIT_MIN_ITEMS: u64 = 20_000;

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

/// Open a store read-only with a reader for each of `jobs` workers.
pub fn open_store(path: &Path, jobs: usize) -> Result<Store, MigrateError> {
    Ok(Store::open(path, jobs.max(1))?)
}

/// Connect, make sure pgvector is there (unless `dry_run`, which changes
/// nothing), look at what the target holds and plan.
pub async fn prepare(
    store: &Store,
    target_config: &ConnConfig,
    options: &ChromaOptions,
    dry_run: bool,
) -> Result<(Client, ChromaPlan, TargetFacts), MigrateError> {
    let (client, _) =
        target::connect_or_create(target_config, options.create_database && !dry_run).await?;
    let version = if dry_run {
        installed_or_available(&client).await?
    } else {
        pgvector::ensure_extension(&client).await?
    };
    if !dry_run {
        crate::created::remove_leftovers(&client, &crate::progress::SilentProgress).await?;
    }
    let facts = target_facts(&client, options, version).await?;
    let plan = layout::plan(store.collections(), options, &facts)?;
    if let Some(encryption) = &plan.encryption {
        encryption.check_key(&client).await?;
    }
    Ok((client, plan, facts))
}

async fn installed_or_available(client: &Client) -> Result<Version, MigrateError> {
    let row = client
        .query_opt(
            "SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), \
             (SELECT default_version FROM pg_available_extensions WHERE name = 'vector'))",
            &[],
        )
        .await
        .map_err(pg_error("looking for pgvector on the target"))?;
    let version: Option<String> = row.and_then(|r| r.get(0));
    Ok(version.map_or((0, 0, 0), |v| pgvector::parse_version(&v)))
}

async fn target_facts(
    client: &Client,
    options: &ChromaOptions,
    pgvector: Version,
) -> Result<TargetFacts, MigrateError> {
    let mut facts = TargetFacts {
        pgvector,
        ..TargetFacts::default()
    };
    if options.layout != Layout::OpenWebUi {
        return Ok(facts);
    }
    let column = client
        .query_opt(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = 'vector' AND NOT a.attisdropped",
            &[&options.schema, &OPEN_WEBUI_TABLE],
        )
        .await
        .map_err(pg_error("looking for Open WebUI's document_chunk"))?;
    if let Some(row) = column {
        let type_name: String = row.get(0);
        facts.existing_vector_type =
            Some(crate::verify::parse_type(&type_name).ok_or_else(|| {
                MigrateError::new(
                    MigrateErrorKind::Usage,
                    format!(
                        "{}.{OPEN_WEBUI_TABLE}.vector has type {type_name}, not vector or halfvec",
                        options.schema
                    ),
                )
            })?);
        let indexes = client
            .query(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
                &[&options.schema, &OPEN_WEBUI_TABLE],
            )
            .await
            .map_err(pg_error("reading document_chunk's indexes"))?;
        for row in indexes {
            let (name, def): (String, String) = (row.get(0), row.get(1));
            if name == OPEN_WEBUI_VECTOR_INDEX {
                facts.existing_vector_index = Some(def.clone());
            }
            facts.existing_indexes.push(name);
        }
        let table = QualifiedName::new(options.schema.clone(), OPEN_WEBUI_TABLE);
        facts.encrypted = pgcrypto::encrypted_columns(client, &table).await?;
    }
    Ok(facts)
}

/// Run a planned Chroma migration.
pub async fn migrate(
    source_label: &str,
    store: Store,
    target_config: &ConnConfig,
    options: &ChromaOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<ChromaReport, MigrateError> {
    let started = Instant::now();
    let mut phases = Phases::default();
    let jobs = options.jobs.max(1);
    let (client, plan, facts) = prepare(&store, target_config, options, false).await?;
    let committed = crate::created::Committed::default();
    let text_sql = match make_room(&client, &plan, options, &committed).await {
        Ok(sql) => sql,
        Err(err) => {
            return Err(
                clean_up_after_failure(&client, target_config, &plan, &committed, &[], err).await,
            )
        }
    };
    let plan = Arc::new(plan);
    let feeds = Arc::new(Feeds::new(store.collections(), &plan));
    let generic = Arc::new(plan.plan.clone());
    let load_plan = match &plan.encryption {
        Some(encryption) => Arc::new(encryption.staging_plan(&plan.plan)),
        None => generic.clone(),
    };
    let loading = async {
        let tally = if options.verify {
            let tally = source_tally(&store, &feeds, &plan, options.recall.queries).await?;
            Some(Arc::new(tally))
        } else {
            None
        };
        feeds.counting.store(true, Ordering::Relaxed);
        progress.phase("loading");
        for table in &generic.tables {
            progress.table_started(&table.source_name, table.source_rows);
        }
        let readers = unit_readers(&store, &feeds, tally.as_ref(), jobs)?;
        let loaded = load::load_all(
            target_config,
            &load_plan,
            work_units(&plan, &feeds.collections, jobs),
            readers,
            progress.clone(),
            cancel,
        )
        .await
        .map_err(saying("interrupted while loading"))?;
        store.check_unchanged()?;
        Ok::<_, MigrateError>((tally, loaded))
    };
    let loading = async {
        let (tally, loaded) = loading.await?;
        phases.lap("load");
        if let Some(encryption) = &plan.encryption {
            progress.phase("encrypting into document_chunk (pgp_sym_encrypt)");
            let names = feeds.collections.iter().map(|c| c.name.clone()).collect();
            let encrypting = encryption.encrypt_into_table(&client, target_config, names, jobs);
            interruptible(encrypting, cancel, "interrupted while encrypting").await?;
            phases.lap("encrypt");
        }
        Ok::<_, MigrateError>((tally, loaded))
    };
    let (tally, loaded) = match loading.await {
        Ok(done) => done,
        Err(err) => {
            let collections = &feeds.collections;
            return Err(clean_up_after_failure(
                &client,
                target_config,
                &plan,
                &committed,
                collections,
                err,
            )
            .await);
        }
    };
    if !plan.reuse_existing {
        crate::created::close(&client).await?;
    }
    feeds.counting.store(false, Ordering::Relaxed);
    progress.phase("building keys and indexes");
    if !plan.reuse_existing {
        restore_default_storage(&client, &plan).await?;
    }
    flush_text_indexes(&client, &plan).await?;
    // The vector index, the slowest, builds while the keys are built and the
    // rows verified (CREATE INDEX statements on one table block neither each
    // other nor reads); keys are attached and the table analysed once it is done.
    let vector_indexes = {
        let (target_config, plan) = (target_config.clone(), plan.clone());
        let verifying = tally.is_some();
        tokio::spawn(
            async move { build_vector_indexes(&target_config, &plan, jobs, verifying).await },
        )
    };
    let key_sql = interruptible(
        build_keys(target_config, &generic), cancel,
        "interrupted after the load: every row is in, but keys or indexes may be missing; run again with --drop-existing (or --truncate)",
    )
    .await?;
    phases.lap("keys");
    let checked = if let Some(tally) = tally {
        progress.phase("verifying (while the vector index builds)");
        let readers = (0..jobs)
            .map(|_| Ok(ChromaUnitReader::new(store.reader()?, feeds.clone())))
            .collect::<Result<Vec<_>, MigrateError>>()?;
        let checked = interruptible(
            digest_all(target_config, &plan, &feeds, readers, tally),
            cancel,
            "interrupted during verification: the migration itself is complete",
        )
        .await?;
        store.check_unchanged()?;
        phases.lap("verify");
        Some(checked)
    } else {
        None
    };
    let vector_sql = interruptible(
        async {
            vector_indexes.await.map_err(|e| {
                MigrateError::new(MigrateErrorKind::Write, format!("an index worker crashed: {e}"))
            })?
        }, cancel,
        "interrupted while building the vector index: the data is complete; build the index by hand or let Open WebUI build it on its next start",
    )
    .await?;
    attach_keys_and_analyze(target_config, &generic).await?;
    phases.lap("vector index, keys attached, ANALYZE");
    let (checks, recall) = match checked {
        Some(checked) => {
            progress.phase("measuring the vector index's recall");
            let found = recall_all(target_config, &plan, checked, options, facts.pgvector).await?;
            phases.lap("recall check");
            found
        }
        None => (Vec::new(), Recalls::default()),
    };
    let finished = finish::FinishOutcome::default();
    let mut index_sql = text_sql;
    index_sql.extend(key_sql);
    index_sql.extend(vector_sql);
    let mut migration = crate::run::build_report(
        source_label,
        target_config,
        &generic,
        &loaded,
        None,
        finished,
        started,
    );
    migration.phases = phases.done;
    Ok(report(
        migration,
        &plan,
        &feeds,
        index_sql,
        checks,
        recall,
        options.verify,
    ))
}

/// The load's readers; with a tally (verification on) they also gather the
/// source side of the proof.
fn unit_readers(
    store: &Store,
    feeds: &Arc<Feeds>,
    tally: Option<&Arc<SourceTally>>,
    jobs: usize,
) -> Result<Vec<Box<dyn UnitReader>>, MigrateError> {
    (0..jobs)
        .map(|_| {
            let reader = ChromaUnitReader::new(store.reader()?, feeds.clone());
            let reader = match tally {
                Some(tally) => reader.tallying(tally.clone()),
                None => reader,
            };
            Ok(Box::new(reader) as Box<dyn UnitReader>)
        })
        .collect()
}

/// Pick the queries of every collection (short reads spread over it), for
/// the load to tally the source side with.
async fn source_tally(
    store: &Store,
    feeds: &Arc<Feeds>,
    plan: &Arc<ChromaPlan>,
    wanted: usize,
) -> Result<SourceTally, MigrateError> {
    let mut reader = ChromaUnitReader::new(store.reader()?, feeds.clone());
    let (feeds, plan) = (feeds.clone(), plan.clone());
    tokio::task::spawn_blocking(move || {
        let queries = (0..feeds.collections.len())
            .map(|c| {
                let collection = &feeds.collections[c];
                let half = check::holds_half(&plan, c);
                match collection.rowid_bounds {
                    Some(bounds) => {
                        check::pick_queries(&mut reader, c, bounds, collection.count, wanted, half)
                    }
                    None => Ok(Vec::new()),
                }
            })
            .collect::<Result<Vec<_>, MigrateError>>()?;
        Ok(SourceTally::new(&plan, queries))
    })
    .await
    .expect("query picker thread")
}

/// Refuse, or with `replace` clear, whatever the plan would collide with;
/// then create the schema, the tables and their full-text indexes. Returns
/// the indexes' SQL.
async fn make_room(
    client: &Client,
    plan: &ChromaPlan,
    options: &ChromaOptions,
    committed: &crate::created::Committed,
) -> Result<Vec<String>, MigrateError> {
    if plan.reuse_existing {
        clear_collections_in_shared_table(client, plan, options.replace).await?;
        if let Some(encryption) = &plan.encryption {
            encryption
                .create_staging(client, &plan.plan, committed)
                .await?;
        }
    } else {
        create_tables(client, plan, options, committed).await?;
    }
    create_text_indexes(client, plan).await
}

/// Refuse, or with `replace` drop, the tables the plan would collide with;
/// then create the schema and the tables, which keep the rows of the load
/// whole in their pages (see [`ddl::set_rows_inline`]) until
/// [`restore_default_storage`].
async fn create_tables(
    client: &Client,
    plan: &ChromaPlan,
    options: &ChromaOptions,
    committed: &crate::created::Committed,
) -> Result<(), MigrateError> {
    let schema = &plan.plan.target_schema;
    let names: Vec<String> = plan
        .plan
        .tables
        .iter()
        .map(|t| t.spec.name.name.clone())
        .collect();
    let existing = target::existing_relations(client, schema, &names).await?;
    if !options.replace {
        target::refuse_existing(&existing, schema)?;
    }
    if schema != "public" {
        client
            .batch_execute(&ddl::create_schema(schema))
            .await
            .map_err(pg_error("creating the target schema"))?;
    }
    for name in &existing {
        let table = QualifiedName::new(schema.clone(), name.clone());
        client
            .batch_execute(&ddl::drop_table(&table))
            .await
            .map_err(pg_error(format!("dropping {table} (--drop-existing)")))?;
    }
    crate::created::open(client).await?;
    for table in &plan.plan.tables {
        let sql = format!(
            "BEGIN; {}; {}; COMMIT",
            ddl::create_table(&table.spec),
            crate::created::record_sql(&table.spec.name)
        );
        if let Err(e) = client.batch_execute(&sql).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(pg_error(format!("creating table {}", table.spec.name))(e));
        }
        committed.add(&table.spec.name);
        set_storage(client, ddl::set_rows_inline, &table.spec.name).await?;
    }
    Ok(())
}

/// Once the rows are in, give the tables this run created PostgreSQL's
/// default TOAST threshold back, so that later writes are stored as in a
/// table Open WebUI created (a reused table's options are its owner's and
/// were never changed).
async fn restore_default_storage(client: &Client, plan: &ChromaPlan) -> Result<(), MigrateError> {
    for table in &plan.plan.tables {
        set_storage(client, ddl::reset_rows_inline, &table.spec.name).await?;
    }
    Ok(())
}

/// Run one of [`ddl::set_rows_inline`] / [`ddl::reset_rows_inline`] on `table`.
async fn set_storage(
    client: &Client,
    statement: fn(&QualifiedName) -> String,
    table: &QualifiedName,
) -> Result<(), MigrateError> {
    client
        .batch_execute(&statement(table))
        .await
        .map_err(pg_error(format!("setting the storage of {table}")))
}

/// An existing `document_chunk` may already hold rows of the collections
/// being moved: refuse naming them, or delete exactly those with `replace`.
async fn clear_collections_in_shared_table(
    client: &Client,
    plan: &ChromaPlan,
    replace: bool,
) -> Result<(), MigrateError> {
    let table = &plan.plan.tables[0].spec.name;
    let names: Vec<String> = plan
        .targets
        .iter()
        .filter_map(|t| t.shared_name.clone())
        .collect();
    let rows = client
        .query(
            &format!("SELECT collection_name, count(*) FROM {table} WHERE collection_name = ANY($1) GROUP BY 1 ORDER BY 1"),
            &[&names],
        )
        .await
        .map_err(pg_error(format!("looking at {table}")))?;
    if rows.is_empty() {
        return Ok(());
    }
    if !replace {
        let listed: Vec<String> = rows
            .iter()
            .take(10)
            .map(|r| format!("{:?} ({} rows)", r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect();
        return Err(MigrateError::new(
            MigrateErrorKind::TargetNotEmpty,
            format!(
                "{table} already holds rows of {} collection(s) being moved: {}{}; nothing was changed. Use --truncate to delete exactly those collections' rows first (other collections' rows stay)",
                rows.len(),
                listed.join(", "),
                if rows.len() > 10 { ", …" } else { "" }
            ),
        ));
    }
    client
        .execute(
            &format!("DELETE FROM {table} WHERE collection_name = ANY($1)"),
            &[&names],
        )
        .await
        .map_err(pg_error(format!(
            "deleting the collections' rows from {table} (--truncate)"
        )))?;
    Ok(())
}

/// Split the load: each table whole, or in `embeddings.id` ranges when it is large.
fn work_units(plan: &ChromaPlan, collections: &[Collection], jobs: usize) -> Vec<WorkUnit> {
    let mut units = Vec::new();
    let mut order: Vec<usize> = (0..plan.plan.tables.len()).collect();
    order.sort_by_key(|t| std::cmp::Reverse(plan.plan.tables[*t].source_rows));
    for t in order {
        let rows = plan.plan.tables[t].source_rows;
        let bounds = match &plan.feeds[t] {
            TableFeed::Collections(cs) => cs
                .iter()
                .filter_map(|c| collections[*c].rowid_bounds)
                .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1))),
            TableFeed::Catalog => None,
        };
        match bounds {
            Some((lo, hi)) if jobs > 1 && rows >= SPLIT_MIN_ITEMS => {
                let parts = (rows / (SPLIT_MIN_ITEMS / 2)).clamp(2, jobs as u64 * 4) as i64;
                let span = (hi - lo + 1).max(1);
                for p in 0..parts {
                    let first = lo + span * p / parts;
                    let last = lo + span * (p + 1) / parts - 1;
                    units.push(unit(t, UnitRange::Rowids { first, last }));
                }
            }
            _ => units.push(unit(t, UnitRange::WholeTable)),
        }
    }
    units
}

fn unit(table: usize, range: UnitRange) -> WorkUnit {
    WorkUnit {
        table,
        range,
        creates_table: false,
        journal_id: None,
    }
}

/// Drop the tables this run created (or the rows it added to a reused table).
/// After `err`: the tables this run created are removed (see
/// [`crate::created`]); in a shared table, the rows this run added are
/// deleted again (they are the rows of its collections, which
/// [`clear_collections_in_shared_table`] made sure were absent).
async fn clean_up_after_failure(
    client: &Client,
    target_config: &ConnConfig,
    plan: &ChromaPlan,
    committed: &crate::created::Committed,
    collections: &[Collection],
    err: MigrateError,
) -> MigrateError {
    if !plan.reuse_existing {
        crate::created::release(client).await;
        return crate::created::clean_up_after_failure(target_config, committed, false, err).await;
    }
    let err = match &plan.encryption {
        Some(_) => {
            crate::created::release(client).await;
            crate::created::clean_up_after_failure(target_config, committed, false, err).await
        }
        None => err,
    };
    let table = &plan.plan.tables[0].spec.name;
    let names: Vec<String> = collections.iter().map(|c| c.name.clone()).collect();
    let wait = crate::created::reconnect_wait();
    let deleted = match crate::created::reconnect(target_config, wait).await {
        Ok(client) => client
            .execute(
                &format!("DELETE FROM {table} WHERE collection_name = ANY($1)"),
                &[&names],
            )
            .await
            .map_err(pg_error(format!(
                "deleting the rows this run added to {table}"
            ))),
        Err(e) => Err(e),
    };
    match deleted {
        Ok(_) => err.also(format!(
            "The rows this run added were deleted from {table}; the same command can be run again"
        )),
        Err(cause) => err.also(format!(
            "Deleting the rows this run added to {table} failed ({}): rows of the collections {} may remain there; \
             run the same command again with --truncate once the server is back (it deletes them first)",
            crate::error::explain(&cause),
            names.join(", ")
        )),
    }
}

/// Build the vector indexes, several at a time, each with enough
/// `maintenance_work_mem` for its graph or lists. A build gets parallel
/// workers for the cores it has alone; `beside_verification`, the `jobs`
/// cores are already busy reading the rows back, and workers would only
/// add their coordination to the work (measured: the steps after the load
/// took 1.2 s longer with one worker than without).
async fn build_vector_indexes(
    target_config: &ConnConfig,
    plan: &ChromaPlan,
    jobs: usize,
    beside_verification: bool,
) -> Result<Vec<String>, MigrateError> {
    let statements: Vec<(String, u64)> = plan
        .vector_indexes
        .iter()
        .filter(|ix| !ix.existing)
        .map(|ix| {
            let (sql, column_type) = plan.vector_index_sql(ix);
            (
                sql,
                memory_for(column_type, plan.plan.tables[ix.table].source_rows),
            )
        })
        .collect();
    let workers = jobs.min(statements.len()).max(1);
    let parallel_workers = if beside_verification {
        0
    } else {
        (jobs / workers).saturating_sub(1)
    };
    let queue = Arc::new(Mutex::new(VecDeque::from(statements.clone())));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let client = target::connect(target_config).await?;
        let queue = queue.clone();
        set.spawn(async move {
            loop {
                let Some((sql, memory)) = queue.lock().expect("queue lock").pop_front() else {
                    return Ok::<(), MigrateError>(());
                };
                let settings = format!(
                    "SET maintenance_work_mem = '{}MB'; SET max_parallel_maintenance_workers = {parallel_workers}",
                    memory >> 20
                );
                client.batch_execute(&settings).await.map_err(pg_error("setting up the index build"))?;
                client.batch_execute(&sql).await.map_err(pg_error(format!("building a vector index ({sql})")))?;
            }
        });
    }
    crate::error::join_workers(set, MigrateErrorKind::Write, "index").await?;
    Ok(statements.into_iter().map(|(sql, _)| sql).collect())
}

/// Build every table's primary-key index (attached later, see
/// [`attach_keys_and_analyze`]) and secondary indexes on one connection;
/// returns their SQL.
async fn build_keys(target_config: &ConnConfig, plan: &Plan) -> Result<Vec<String>, MigrateError> {
    let client = target::connect(target_config).await?;
    let mut built = Vec::new();
    for table in &plan.tables {
        let spec = &table.spec;
        let key = spec
            .primary_key
            .as_ref()
            .map(|pk| ddl::primary_key_index(&spec.name, pk));
        let indexes = spec
            .indexes
            .iter()
            .map(|i| ddl::create_index(&spec.name, i));
        for sql in key.into_iter().chain(indexes) {
            client
                .batch_execute(&sql)
                .await
                .map_err(pg_error(format!("building an index ({sql})")))?;
            built.push(sql);
        }
    }
    Ok(built)
}

/// Attach the primary keys built by [`build_keys`] and analyse every table.
async fn attach_keys_and_analyze(
    target_config: &ConnConfig,
    plan: &Plan,
) -> Result<(), MigrateError> {
    let client = target::connect(target_config).await?;
    for table in &plan.tables {
        let spec = &table.spec;
        let attach = spec
            .primary_key
            .as_ref()
            .map(|_| ddl::attach_primary_key(&spec.name));
        // Columns only: the full-text index's expression would be evaluated
        // over the whole sample again.
        for sql in attach.into_iter().chain([ddl::analyze_columns(spec)]) {
            client
                .batch_execute(&sql)
                .await
                .map_err(pg_error(format!("finishing {} ({sql})", spec.name)))?;
        }
    }
    Ok(())
}

/// Create the plan's full-text indexes on the empty table, so that the load
/// computes their keys on every connection (see [`ChromaPlan::text_indexes`]).
/// Returns their SQL.
async fn create_text_indexes(
    client: &Client,
    plan: &ChromaPlan,
) -> Result<Vec<String>, MigrateError> {
    let mut created = Vec::new();
    for index in &plan.text_indexes {
        let sql = ddl::create_index(&plan.plan.tables[0].spec.name, index);
        client
            .batch_execute(&sql)
            .await
            .map_err(pg_error(format!("creating {} ({sql})", index.name)))?;
        created.push(sql);
    }
    Ok(created)
}

/// Move the rows the load left in the full-text indexes' pending lists into
/// the indexes proper, as a build would have them (searches then need not scan
/// the list).
async fn flush_text_indexes(client: &Client, plan: &ChromaPlan) -> Result<(), MigrateError> {
    for index in &plan.text_indexes {
        let name = QualifiedName::new(plan.plan.target_schema.clone(), index.name.clone());
        client
            .execute(
                "SELECT gin_clean_pending_list($1::text::regclass)",
                &[&name.to_string()],
            )
            .await
            .map_err(pg_error(format!("flushing the pending list of {name}")))?;
    }
    Ok(())
}

/// Enough memory for pgvector to build the index in memory (each vector plus
/// graph links), between 64 MB and 1 GB.
fn memory_for(column_type: PgType, rows: u64) -> u64 {
    let vector_bytes = match column_type {
        PgType::HalfVec(d) => u64::from(d) * 2,
        PgType::Vector(d) => u64::from(d) * 4,
        _ => 0,
    };
    ((vector_bytes + 300) * rows * 5 / 4).clamp(64 << 20, 1 << 30)
}

/// A collection's counts and checksums, with the queries for its recall check.
type Checked = (CollectionCheck, Arc<Vec<Query>>);

/// Verify every collection with one worker per reader: the target's digest
/// against the source side tallied during the load, and the exact neighbours.
async fn digest_all(
    target_config: &ConnConfig,
    plan: &Arc<ChromaPlan>,
    feeds: &Arc<Feeds>,
    readers: Vec<ChromaUnitReader>,
    tally: Arc<SourceTally>,
) -> Result<Vec<Checked>, MigrateError> {
    let n = feeds.collections.len();
    let queue = Arc::new(Mutex::new((0..n).collect::<VecDeque<_>>()));
    let results: Arc<Mutex<Vec<Option<Checked>>>> =
        Arc::new(Mutex::new((0..n).map(|_| None).collect()));
    let mut set = tokio::task::JoinSet::new();
    for reader in readers {
        let client = target::connect(target_config).await?;
        if let Some(encryption) = &plan.encryption {
            encryption.decrypting_session(&client).await?;
        }
        let (queue, plan, results, tally) =
            (queue.clone(), plan.clone(), results.clone(), tally.clone());
        set.spawn(async move {
            let mut reader = reader;
            loop {
                let Some(c) = queue.lock().expect("queue lock").pop_front() else {
                    return Ok::<(), MigrateError>(());
                };
                let (side, queries) = tally.take(c);
                let (back, outcome) =
                    check::verify_collection(&client, reader, plan.clone(), c, (side, &queries))
                        .await;
                reader = back;
                results.lock().expect("results lock")[c] = Some((outcome?, queries));
            }
        });
    }
    crate::error::join_workers(set, MigrateErrorKind::Verify, "verify").await?;
    let found = std::mem::take(&mut *results.lock().expect("results lock"));
    Ok(found
        .into_iter()
        .map(|entry| entry.expect("every collection verified"))
        .collect())
}

/// The index recall of every collection.
#[derive(Default)]
struct Recalls {
    /// Per collection, when its table has a vector index.
    collections: Vec<Option<RecallReport>>,
    /// The statements that give the application 0.9 everywhere.
    settings: Vec<String>,
}

/// The recall of every collection whose table has a vector index, once the
/// tables are analysed (so PostgreSQL plans searches as it will for the
/// application); collections are searched over `jobs` connections.
async fn recall_all(
    target_config: &ConnConfig,
    plan: &ChromaPlan,
    checked: Vec<Checked>,
    options: &ChromaOptions,
    pgvector: Version,
) -> Result<(Vec<Option<CollectionCheck>>, Recalls), MigrateError> {
    let mut clients = futures_util::future::try_join_all(
        (0..options.jobs.max(1)).map(|_| target::connect(target_config)),
    )
    .await?;
    let mut indexes = Vec::new();
    for table in &plan.plan.tables {
        indexes.push(recall::vector_index(&clients[0], &table.spec.name).await?);
    }
    let mut table_rows = vec![0; plan.plan.tables.len()];
    for (c, (check, _)) in checked.iter().enumerate() {
        table_rows[plan.targets[c].table] += check.verification.target_rows;
    }
    let queue = Mutex::new((0..checked.len()).collect::<VecDeque<_>>());
    let found: Mutex<Vec<Option<RecallReport>>> = Mutex::new(vec![None; checked.len()]);
    let lanes = clients.iter_mut().map(|client| {
        let (queue, found, checked, indexes) = (&queue, &found, &checked, &indexes);
        let table_rows = &table_rows;
        async move {
            loop {
                let Some(c) = queue.lock().expect("queue lock").pop_front() else {
                    return Ok::<(), MigrateError>(());
                };
                let (check, queries) = &checked[c];
                let index = indexes[plan.targets[c].table].as_ref();
                let Some(index) = index.filter(|_| !queries.is_empty()) else {
                    continue;
                };
                let searches = Searches {
                    index,
                    rows: (
                        table_rows[plan.targets[c].table],
                        check.verification.target_rows,
                    ),
                    pgvector,
                    options: &options.recall,
                };
                let asked: Vec<_> = queries.iter().zip(&check.exact).collect();
                let database = target_config.dbname();
                let recall =
                    recall::collection_recall(client, plan, c, &asked, &searches, database).await?;
                found.lock().expect("results lock")[c] = Some(recall);
            }
        }
    });
    futures_util::future::try_join_all(lanes).await?;
    let collections = found.into_inner().expect("results lock");
    let reports: Vec<&RecallReport> = collections.iter().flatten().collect();
    let settings = recall::database_suggestions(target_config.dbname(), &reports);
    let checks = checked.into_iter().map(|(check, _)| Some(check)).collect();
    Ok((
        checks,
        Recalls {
            collections,
            settings,
        },
    ))
}

fn report(
    mut migration: MigrationReport,
    plan: &ChromaPlan,
    feeds: &Feeds,
    indexes: Vec<String>,
    checks: Vec<Option<CollectionCheck>>,
    recalls: Recalls,
    verified: bool,
) -> ChromaReport {
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
            recall: recalls.collections.get(i).cloned().flatten(),
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
    let mut metadata_changes = *feeds.changes.lock().expect("changes lock");
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
        index_settings: recalls.settings,
        open_webui_env: open_webui_env(plan),
    }
}
