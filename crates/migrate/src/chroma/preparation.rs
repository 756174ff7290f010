//! Getting the target ready for a Chroma move, and undoing it after a
//! failure: pgvector, what the target already holds (Open WebUI's
//! `document_chunk`, its vector column, indexes and encryption), room for
//! the plan's tables (refused, dropped with `--drop-existing`, or the
//! collections' rows deleted from a shared table with `--truncate`), the
//! tables and their full-text indexes; after a failure, the tables this run
//! created dropped, or the rows it added to a shared table deleted.

use super::layout::{
    self, ChromaPlan, Layout, TargetFacts, OPEN_WEBUI_TABLE, OPEN_WEBUI_VECTOR_INDEX,
};
use super::options::ChromaOptions;
use super::pgcrypto;
use crate::created::{self, Committed};
use crate::error::{pg_error, MigrateError, MigrateErrorKind};
use crate::target;
use pgharbor_chroma::{Collection, Store};
use pgharbor_conn::ConnConfig;
use pgharbor_core::schema::QualifiedName;
use pgharbor_pgwriter::ddl;
use pgharbor_pgwriter::pgvector::{self, Version};
use tokio_postgres::Client;

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
        created::remove_leftovers(&client, &crate::progress::SilentProgress).await?;
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

/// Refuse, or with `replace` clear, whatever the plan would collide with;
/// then create the schema, the tables and their full-text indexes. Returns
/// the indexes' SQL.
pub async fn make_room(
    client: &Client,
    plan: &ChromaPlan,
    options: &ChromaOptions,
    committed: &Committed,
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
    committed: &Committed,
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
    created::open(client).await?;
    for table in &plan.plan.tables {
        let sql = format!(
            "BEGIN; {}; {}; COMMIT",
            ddl::create_table(&table.spec),
            created::record_sql(&table.spec.name)
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

/// Once the rows are in, give a table this run created PostgreSQL's
/// default TOAST threshold back, so that later writes are stored as in a
/// table Open WebUI created (a reused table's options are its owner's and
/// were never changed).
pub async fn restore_default_storage(
    client: &Client,
    table: &QualifiedName,
) -> Result<(), MigrateError> {
    set_storage(client, ddl::reset_rows_inline, table).await
}

/// Run one of [`ddl::set_rows_inline`] / [`ddl::reset_rows_inline`] on `table`.
pub async fn set_storage(
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

/// Create the plan's full-text indexes on the empty table, so that the load
/// computes their keys on every connection (see [`ChromaPlan::text_indexes`]).
/// Returns their SQL.
pub async fn create_text_indexes(
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

/// Drop the tables this run created (or the rows it added to a reused table).
/// After `err`: the tables this run created are removed (see
/// [`crate::created`]); in a shared table, the rows this run added are
/// deleted again (they are the rows of its collections, which
/// [`clear_collections_in_shared_table`] made sure were absent).
pub async fn clean_up_after_failure(
    client: &Client,
    target_config: &ConnConfig,
    plan: &ChromaPlan,
    committed: &Committed,
    collections: &[Collection],
    err: MigrateError,
) -> MigrateError {
    if !plan.reuse_existing {
        created::release(client).await;
        return created::clean_up_after_failure(target_config, committed, false, err).await;
    }
    let err = match &plan.encryption {
        Some(_) => {
            created::release(client).await;
            created::clean_up_after_failure(target_config, committed, false, err).await
        }
        None => err,
    };
    let table = &plan.plan.tables[0].spec.name;
    let names: Vec<String> = collections.iter().map(|c| c.name.clone()).collect();
    let wait = created::reconnect_wait();
    let deleted = match created::reconnect(target_config, wait).await {
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
