//! After the load: keys, indexes, foreign keys, sequences, views, statistics.
//!
//! Failures here do not lose data, so they are collected and reported (with the
//! SQL that was tried) instead of aborting the run.

use crate::error::MigrateError;
use crate::progress::Progress;
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::{Plan, RowKey, TablePlan};
use pgharbor_core::report::{FinishIssue, OrphanReport};
use pgharbor_core::schema::Identity;
use pgharbor_pgwriter::ddl;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio_postgres::Client;

/// What finishing found.
#[derive(Debug, Default)]
pub struct FinishOutcome {
    /// Steps that failed.
    pub issues: Vec<FinishIssue>,
    /// Foreign keys left `NOT VALID` because of orphan rows.
    pub orphans: Vec<OrphanReport>,
}

/// Run every finishing step; `jobs` connections build indexes in parallel.
pub async fn finish(
    target: &ConnConfig,
    plan: &Arc<Plan>,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<FinishOutcome, MigrateError> {
    progress.phase("building keys and indexes");
    let outcome = Arc::new(Mutex::new(FinishOutcome::default()));
    for_each_table_parallel(
        target,
        plan,
        jobs,
        outcome.clone(),
        |client, table, outcome| Box::pin(build_keys(client, table, outcome)),
    )
    .await?;
    progress.phase("adding foreign keys");
    for_each_table_parallel(
        target,
        plan,
        1,
        outcome.clone(),
        |client, table, outcome| Box::pin(add_foreign_keys(client, table, outcome)),
    )
    .await?;
    progress.phase("setting sequences, views and statistics");
    let client = crate::target::connect(target).await?;
    for table in &plan.tables {
        set_sequences(&client, table, &outcome).await;
    }
    for view in &plan.views {
        let sql = ddl::create_view(view);
        if let Err(e) = client.batch_execute(&sql).await {
            record(&outcome, "view", view.name.to_string(), &e, sql);
        }
    }
    for_each_table_parallel(
        target,
        plan,
        jobs,
        outcome.clone(),
        |client, table, outcome| {
            Box::pin(async move {
                let sql = format!("ANALYZE {}", table.spec.name);
                if let Err(e) = client.batch_execute(&sql).await {
                    record(&outcome, "statistics", table.spec.name.to_string(), &e, sql);
                }
            })
        },
    )
    .await?;
    let outcome = std::mem::take(&mut *outcome.lock().expect("outcome lock"));
    Ok(outcome)
}

type Step = for<'a> fn(
    &'a Client,
    &'a TablePlan,
    Arc<Mutex<FinishOutcome>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

async fn for_each_table_parallel(
    target: &ConnConfig,
    plan: &Arc<Plan>,
    jobs: usize,
    outcome: Arc<Mutex<FinishOutcome>>,
    step: Step,
) -> Result<(), MigrateError> {
    let queue = Arc::new(Mutex::new((0..plan.tables.len()).collect::<VecDeque<_>>()));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..jobs.clamp(1, plan.tables.len().max(1)) {
        let client = crate::target::connect(target).await?;
        let (queue, plan, outcome) = (queue.clone(), plan.clone(), outcome.clone());
        set.spawn(async move {
            loop {
                let Some(i) = queue.lock().expect("queue lock").pop_front() else {
                    break;
                };
                step(&client, &plan.tables[i], outcome.clone()).await;
            }
        });
    }
    while set.join_next().await.is_some() {}
    Ok(())
}

fn record(
    outcome: &Mutex<FinishOutcome>,
    kind: &str,
    name: String,
    err: &tokio_postgres::Error,
    sql: String,
) {
    let error = err
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| err.to_string());
    outcome
        .lock()
        .expect("outcome lock")
        .issues
        .push(FinishIssue {
            kind: kind.into(),
            name,
            error,
            sql,
        });
}

async fn build_keys(client: &Client, table: &TablePlan, outcome: Arc<Mutex<FinishOutcome>>) {
    let spec = &table.spec;
    if let Some(pk) = &spec.primary_key {
        let sql = ddl::add_primary_key(&spec.name, pk);
        if let Err(e) = client.batch_execute(&sql).await {
            record(&outcome, "primary key", spec.name.to_string(), &e, sql);
        }
    }
    for index in &spec.indexes {
        let sql = ddl::create_index(&spec.name, index);
        if let Err(e) = client.batch_execute(&sql).await {
            let kind = if index.translated {
                "index (translated from SQLite)"
            } else {
                "index"
            };
            record(&outcome, kind, index.name.clone(), &e, sql);
        }
    }
}

async fn add_foreign_keys(client: &Client, table: &TablePlan, outcome: Arc<Mutex<FinishOutcome>>) {
    let spec = &table.spec;
    for fk in &spec.foreign_keys {
        let sql = ddl::add_foreign_key(&spec.name, fk);
        if let Err(e) = client.batch_execute(&sql).await {
            record(&outcome, "foreign key", fk.name.clone(), &e, sql);
            continue;
        }
        let validate = ddl::validate_constraint(&spec.name, &fk.name);
        let Err(e) = client.batch_execute(&validate).await else {
            continue;
        };
        let key_columns: Vec<String> = match &table.row_key {
            RowKey::Columns(cols) => cols.iter().map(|i| spec.columns[*i].name.clone()).collect(),
            RowKey::Rowid => Vec::new(),
        };
        let query = ddl::orphan_query(&spec.name, fk, &key_columns);
        match client.query_one(&query, &[]).await {
            Ok(row) if row.get::<_, i64>(0) > 0 => {
                let samples: Option<Vec<Option<String>>> = row.get(1);
                outcome
                    .lock()
                    .expect("outcome lock")
                    .orphans
                    .push(OrphanReport {
                        table: spec.name.to_string(),
                        constraint: fk.name.clone(),
                        orphan_rows: row.get::<_, i64>(0) as u64,
                        sample_keys: samples.unwrap_or_default().into_iter().flatten().collect(),
                    });
            }
            _ => record(
                &outcome,
                "foreign key validation",
                fk.name.clone(),
                &e,
                validate,
            ),
        }
    }
}

async fn set_sequences(client: &Client, table: &TablePlan, outcome: &Mutex<FinishOutcome>) {
    for col in &table.spec.columns {
        if let Some(Identity::ByDefault { source_high_water }) = &col.identity {
            let sql = ddl::set_identity(&table.spec.name, &col.name, *source_high_water);
            if let Err(e) = client.batch_execute(&sql).await {
                record(
                    outcome,
                    "sequence",
                    format!("{}.{}", table.spec.name, col.name),
                    &e,
                    sql,
                );
            }
        }
    }
}
