//! After the load: keys, indexes, foreign keys, sequences, views, statistics.
//!
//! Each is a step of the run's schedule ([`crate::schedule`]) that starts as
//! soon as what it needs is done: a table's index builds (primary keys
//! included, as unique indexes attached afterwards) once the table is
//! loaded, side by side on the run's workers; its foreign keys once both
//! tables have their keys (added `NOT VALID`, then validated).
//!
//! Failures here do not lose data, so they are collected and reported (with the
//! SQL that was tried) instead of aborting the run.

use crate::error::MigrateError;
use crate::schedule::{Schedule, Stage, StepId};
use futures_util::future::BoxFuture;
use pgharbor_core::plan::{Plan, RowKey, TablePlan};
use pgharbor_core::report::{FinishIssue, OrphanReport};
use pgharbor_core::schema::{ForeignKeySpec, Identity, TableSpec};
use pgharbor_pgwriter::ddl;
use std::sync::{Arc, Mutex};
use tokio_postgres::Client;

/// What finishing found.
#[derive(Debug, Default)]
pub struct FinishOutcome {
    /// Steps that failed.
    pub issues: Vec<FinishIssue>,
    /// Foreign keys left `NOT VALID` because of orphan rows.
    pub orphans: Vec<OrphanReport>,
    /// Indexes of existing tables dropped for the load and built again.
    pub indexes_rebuilt: u64,
}

/// One statement of the finishing work.
#[derive(Debug, Clone)]
struct Statement {
    kind: &'static str,
    name: String,
    sql: String,
}

/// What the finishing steps share: the outcome, and the index builds that failed.
#[derive(Default)]
pub struct Finishing {
    outcome: Mutex<FinishOutcome>,
    failed: Mutex<Vec<String>>,
}

impl Finishing {
    /// What finishing found, once every step is done.
    pub fn outcome(&self) -> FinishOutcome {
        std::mem::take(&mut *self.outcome.lock().expect("outcome lock"))
    }
}

type Shared = Arc<Finishing>;

/// Add the finishing steps of every table of `plan` to `schedule`, each as
/// soon as what it needs is done: a table's index builds (primary key
/// included, as a unique index attached afterwards) once it is loaded, its
/// sequences too; its foreign keys once it and the tables it references
/// have their keys (added `NOT VALID` one table after the other, as
/// additions lock both tables, then validated); `ANALYZE` once its keys and
/// foreign keys are done; views at the end.
pub fn schedule_finish(schedule: &mut Schedule, plan: &Arc<Plan>, shared: &Shared) {
    let keyed: Vec<Vec<StepId>> = (0..plan.tables.len())
        .map(|i| schedule_keys(schedule, plan, i, shared))
        .collect();
    let mut settled: Vec<Vec<StepId>> = keyed.clone();
    let mut previous_addition: Option<StepId> = None;
    for (i, table) in plan.tables.iter().enumerate() {
        if table.spec.foreign_keys.is_empty() {
            continue;
        }
        let mut needs = keyed[i].clone();
        for fk in &table.spec.foreign_keys {
            if let Some(j) = plan.tables.iter().position(|t| t.spec.name == fk.ref_table) {
                needs.extend(&keyed[j]);
            }
        }
        needs.extend(previous_addition);
        let added: Arc<Mutex<Vec<ForeignKeySpec>>> = Arc::default();
        let addition = {
            let (plan, shared, added) = (plan.clone(), shared.clone(), added.clone());
            schedule.target_step(Stage::Finish, needs, None, move |client| {
                Box::pin(async move {
                    add_foreign_keys(&client, &plan.tables[i], &shared, &added).await;
                    Ok(())
                })
            })
        };
        previous_addition = Some(addition);
        let validation = {
            let (plan, shared) = (plan.clone(), shared.clone());
            schedule.target_step(
                Stage::Finish,
                vec![addition],
                Some((i, "foreign keys")),
                move |client| {
                    Box::pin(async move {
                        let added = std::mem::take(&mut *added.lock().expect("added lock"));
                        for fk in &added {
                            validate(&client, &plan.tables[i], fk, &shared).await;
                        }
                        Ok(())
                    })
                },
            )
        };
        settled[i].push(validation);
    }
    for (i, table) in plan.tables.iter().enumerate() {
        let analyze = Statement {
            kind: "statistics",
            name: table.spec.name.to_string(),
            sql: ddl::analyze(&table.spec),
        };
        let step = run_statement(analyze, shared.clone());
        schedule.target_step(
            Stage::Finish,
            settled[i].clone(),
            Some((i, "statistics")),
            step,
        );
    }
    if !plan.views.is_empty() {
        let needs = settled.concat();
        let (plan, shared) = (plan.clone(), shared.clone());
        schedule.target_step(Stage::Finish, needs, None, move |client| {
            Box::pin(async move {
                for view in &plan.views {
                    let sql = ddl::create_view(view);
                    if let Err(e) = execute_one(&client, &sql).await {
                        record(&shared, "view", view.name.to_string(), &e, sql);
                    }
                }
                Ok(())
            })
        });
    }
}

/// Schedule table `i`'s index builds, primary key and sequences; returns
/// the steps after which the table is loaded and keyed (its loads too, so
/// that a table without keys is never finished before it is loaded).
fn schedule_keys(
    schedule: &mut Schedule,
    plan: &Arc<Plan>,
    i: usize,
    shared: &Shared,
) -> Vec<StepId> {
    let spec = &plan.tables[i].spec;
    let loads = schedule.loads_of(i);
    let mut keyed = Vec::new();
    for statement in index_statements(spec) {
        let step = run_statement(statement, shared.clone());
        keyed.push(schedule.target_step(Stage::Finish, loads.clone(), Some((i, "index")), step));
    }
    if spec.primary_key.is_some() {
        let (plan, shared) = (plan.clone(), shared.clone());
        let attach = schedule.target_step(
            Stage::Finish,
            keyed.clone(),
            Some((i, "index")),
            move |client| {
                Box::pin(async move { attach_primary_key(&client, &plan.tables[i], &shared).await })
            },
        );
        keyed.push(attach);
    }
    let (plan, shared) = (plan.clone(), shared.clone());
    schedule.target_step(Stage::Finish, loads.clone(), None, move |client| {
        Box::pin(async move {
            set_sequences(&client, &plan.tables[i], &shared).await;
            Ok(())
        })
    });
    keyed.extend(loads);
    keyed
}

/// A step running `statement`, its failure recorded.
fn run_statement(
    statement: Statement,
    shared: Shared,
) -> impl FnOnce(Arc<Client>) -> BoxFuture<'static, Result<(), MigrateError>> + Send + 'static {
    move |client| {
        Box::pin(async move {
            if let Err(e) = execute_one(&client, &statement.sql).await {
                shared
                    .failed
                    .lock()
                    .expect("failed lock")
                    .push(statement.name.clone());
                record(&shared, statement.kind, statement.name, &e, statement.sql);
            }
            Ok(())
        })
    }
}

/// Attach the primary key to its index, unless building the index failed.
async fn attach_primary_key(
    client: &Client,
    table: &TablePlan,
    shared: &Shared,
) -> Result<(), MigrateError> {
    let pk_index = ddl::primary_key_name(&table.spec.name);
    if shared
        .failed
        .lock()
        .expect("failed lock")
        .contains(&pk_index)
    {
        return Ok(());
    }
    let sql = ddl::attach_primary_key(&table.spec.name);
    if let Err(e) = execute_one(client, &sql).await {
        record(shared, "primary key", table.spec.name.to_string(), &e, sql);
    }
    Ok(())
}

/// A table's index builds, its primary key's first.
fn index_statements(spec: &TableSpec) -> Vec<Statement> {
    let mut statements = Vec::new();
    if let Some(pk) = &spec.primary_key {
        statements.push(Statement {
            kind: "primary key",
            name: ddl::primary_key_name(&spec.name),
            sql: ddl::primary_key_index(&spec.name, pk),
        });
    }
    for index in &spec.indexes {
        statements.push(Statement {
            kind: if index.translated {
                "index (translated from SQLite)"
            } else {
                "index"
            },
            name: index.name.clone(),
            sql: ddl::create_index(&spec.name, index),
        });
    }
    statements
}

/// Add a table's foreign keys `NOT VALID`; those added are validated next.
async fn add_foreign_keys(
    client: &Client,
    table: &TablePlan,
    shared: &Shared,
    added: &Mutex<Vec<ForeignKeySpec>>,
) {
    for fk in &table.spec.foreign_keys {
        let sql = ddl::add_foreign_key(&table.spec.name, fk);
        match execute_one(client, &sql).await {
            Ok(()) => added.lock().expect("added lock").push(fk.clone()),
            Err(e) => record(shared, "foreign key", fk.name.clone(), &e, sql),
        }
    }
}

async fn validate(client: &Client, table: &TablePlan, fk: &ForeignKeySpec, shared: &Shared) {
    let spec = &table.spec;
    let validate = ddl::validate_constraint(&spec.name, &fk.name);
    let Err(e) = execute_one(client, &validate).await else {
        return;
    };
    let key_columns: Vec<String> = match &table.row_key {
        RowKey::Columns(cols) => cols.iter().map(|i| spec.columns[*i].name.clone()).collect(),
        RowKey::Rowid => Vec::new(),
    };
    let query = ddl::orphan_query(&spec.name, fk, &key_columns);
    match client.query_one(&query, &[]).await {
        Ok(row) if row.get::<_, i64>(0) > 0 => {
            let samples: Option<Vec<Option<String>>> = row.get(1);
            shared
                .outcome
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
            shared,
            "foreign key validation",
            fk.name.clone(),
            &e,
            validate,
        ),
    }
}

/// Run one statement with the extended protocol, which refuses a second
/// statement hidden in translated SQL.
async fn execute_one(client: &Client, sql: &str) -> Result<(), tokio_postgres::Error> {
    client.execute(sql, &[]).await.map(|_| ())
}

fn record(shared: &Finishing, kind: &str, name: String, err: &tokio_postgres::Error, sql: String) {
    let error = err
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| err.to_string());
    shared
        .outcome
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

async fn set_sequences(client: &Client, table: &TablePlan, shared: &Finishing) {
    for col in &table.spec.columns {
        if let Some(Identity::ByDefault { source_high_water }) = &col.identity {
            let sql = ddl::set_identity(&table.spec.name, &col.name, *source_high_water);
            if let Err(e) = execute_one(client, &sql).await {
                record(
                    shared,
                    "sequence",
                    format!("{}.{}", table.spec.name, col.name),
                    &e,
                    sql,
                );
            }
        }
    }
}
