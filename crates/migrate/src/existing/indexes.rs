//! Secondary indexes of `--into-existing`: the indexes of the (empty) tables
//! to load that back no constraint are dropped before the load and built
//! again, with the same definition, name and tablespace, as a step of the
//! shared schedule once their table is loaded — so one table's index builds
//! overlap the loading of others, and rows are not indexed one by one.
//!
//! Kept in place: indexes backing a constraint (primary key, unique,
//! exclusion, or one a foreign key depends on), unique indexes (they keep
//! duplicates out while loading), and indexes carrying something a
//! definition does not (a comment, a statistics target, `CLUSTER`, replica
//! identity, partitions, an invalid state). The dropped definitions are
//! journaled with the run ([`crate::journal::into_existing`]): every rebuild first checks
//! the index is missing, so a resumed, failed or restarted run rebuilds
//! exactly what is not there.

use crate::error::{pg_error, MigrateError};
use crate::journal::into_existing::DroppedIndex;
use crate::schedule::{Schedule, Stage, StepId};
use pgharbor_core::plan::Plan;
use pgharbor_core::schema::{quote_ident, QualifiedName};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_postgres::Client;

/// The indexes of `tables` (in `schema`) that the load drops and rebuilds.
pub(super) async fn droppable_indexes(
    client: &Client,
    schema: &str,
    tables: &[String],
) -> Result<Vec<DroppedIndex>, MigrateError> {
    let rows = client
        .query(
            "SELECT t.relname, i.relname, pg_get_indexdef(x.indexrelid), s.spcname \
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
             LEFT JOIN pg_tablespace s ON s.oid = i.reltablespace \
             WHERE n.nspname = $1 AND t.relname = ANY($2) AND t.relkind = 'r' \
               AND NOT x.indisunique AND NOT x.indisprimary AND NOT x.indisexclusion \
               AND x.indisvalid AND NOT x.indisclustered AND NOT x.indisreplident \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
               AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = x.indexrelid OR h.inhparent = x.indexrelid) \
               AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = x.indexrelid AND a.attstattarget > 0) \
               AND obj_description(x.indexrelid, 'pg_class') IS NULL \
             ORDER BY t.relname, i.relname",
            &[&schema, &tables],
        )
        .await
        .map_err(pg_error("reading the indexes of the tables to load"))?;
    Ok(rows.iter().map(DroppedIndex::from_row).collect())
}

/// Drop `indexes` (journaled already) for the load.
pub(super) async fn drop_indexes(
    client: &Client,
    schema: &str,
    indexes: &[DroppedIndex],
) -> Result<(), MigrateError> {
    for index in indexes {
        let sql = format!(
            "DROP INDEX IF EXISTS {}",
            QualifiedName::new(schema, &index.name)
        );
        client
            .execute(sql.as_str(), &[])
            .await
            .map_err(pg_error(format!(
                "dropping index {} for the load",
                index.name
            )))?;
    }
    Ok(())
}

/// Build `index` again unless it exists; whether it was built.
pub(super) async fn rebuild(
    client: &Client,
    schema: &str,
    index: &DroppedIndex,
) -> Result<bool, MigrateError> {
    let doing = || format!("building index {} again after the load", index.name);
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2)",
            &[&schema, &index.name],
        )
        .await
        .map_err(pg_error(doing()))?
        .get(0);
    if exists {
        return Ok(false);
    }
    client
        .batch_execute("BEGIN")
        .await
        .map_err(pg_error(doing()))?;
    let built = async {
        client
            .execute(
                "SELECT set_config('default_tablespace', $1, true), \
                 set_config('maintenance_work_mem', '256MB', true)",
                &[&index.tablespace.clone().unwrap_or_default()],
            )
            .await?;
        client.batch_execute(&index.definition).await?;
        client.batch_execute("COMMIT").await
    }
    .await;
    if let Err(e) = built {
        let _ = client.batch_execute("ROLLBACK").await;
        let err = pg_error(format!("{} ({})", doing(), index.definition))(e);
        return Err(err.also(
            "The run's journal keeps the index's definition: run the same command with --resume to build it",
        ));
    }
    Ok(true)
}

/// Build again every one of `indexes` that is missing; the names of those
/// that could not be built.
pub(super) async fn rebuild_missing(
    client: &Client,
    schema: &str,
    indexes: &[DroppedIndex],
) -> Vec<String> {
    let mut failed = Vec::new();
    for index in indexes {
        if rebuild(client, schema, index).await.is_err() {
            failed.push(quote_ident(&index.name));
        }
    }
    failed
}

/// One step per index of `indexes`, once its table's loads are done,
/// counting the indexes it builds in `rebuilt`; returns the steps.
pub(super) fn schedule_rebuilds(
    schedule: &mut Schedule,
    plan: &Plan,
    schema: &str,
    indexes: &[DroppedIndex],
    rebuilt: &Arc<AtomicU64>,
) -> Vec<StepId> {
    let mut steps = Vec::new();
    for index in indexes {
        let table = plan
            .tables
            .iter()
            .position(|t| t.spec.name.name == index.table);
        let needs = match table {
            Some(i) => schedule.loads_of(i),
            None => schedule.all_loads(),
        };
        let (schema, index, rebuilt) = (schema.to_string(), index.clone(), rebuilt.clone());
        let event = table.map(|i| (i, "index"));
        steps.push(
            schedule.target_step(Stage::Finish, needs, event, move |client| {
                Box::pin(async move {
                    if rebuild(&client, &schema, &index).await? {
                        rebuilt.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            }),
        );
    }
    steps
}
