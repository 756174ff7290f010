//! `pgharbor verify chroma:DIR TARGET`: prove a move made earlier (or
//! check again after the target changed) without writing anything — one
//! schedule on the run's pool of workers ([`crate::schedule`]): the store
//! read once, a step per work unit, to tally the source side; then each
//! collection's counts, checksums and exact neighbours compared and its
//! vector index's recall measured by the same steps as after a migration
//! ([`super::proof`]).

use super::build::add_step;
use super::check::SpareReader;
use super::layout::ChromaPlan;
use super::options::ChromaOptions;
use super::preparation::prepare;
use super::proof::{source_tally, Proof};
use super::report::{report, ChromaReport};
use crate::error::{MigrateError, MigrateErrorKind};
use crate::load::{self, SourceUnit, UnitReader};
use crate::progress::Progress;
use crate::run::{saying, CancellationToken};
use crate::schedule::{execute, Progressed, Schedule, Stage, StepId};
use pgharbor_chroma::row_source::{work_units, ChromaReader, Feeds, RecordObserver, SharedStore};
use pgharbor_chroma::Store;
use pgharbor_conn::ConnConfig;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_postgres::Client;

/// Verify the collections of `store` against what `target_config` holds,
/// in the layout of `options` (the move's); changes nothing.
pub async fn verify_only(
    source_label: &str,
    store: Store,
    target_config: &ConnConfig,
    options: &ChromaOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<ChromaReport, MigrateError> {
    let started = Instant::now();
    let jobs = options.jobs.max(1);
    let (client, mut plan, facts) = prepare(&store, target_config, options, true).await?;
    with_target_types(&client, &mut plan).await?;
    let plan = Arc::new(plan);
    let feeds = Arc::new(Feeds::new(
        store.collections(),
        &plan.plan,
        &plan.feeds,
        plan.layout,
    ));
    progress.phase("reading the Chroma store");
    let tally = Arc::new(source_tally(&store, &feeds, &plan, options.recall.queries).await?);
    let proof = Proof {
        plan: plan.clone(),
        tally: tally.clone(),
        spare: Arc::new(SpareReader::new(ChromaReader::new(
            store.reader()?,
            feeds.clone(),
        ))),
        recall: options.recall.clone(),
        pgvector: facts.pgvector,
        database: target_config.dbname().to_string(),
        found: Arc::default(),
    };
    let observer: Arc<dyn RecordObserver> = tally.clone();
    let readers = (0..jobs)
        .map(|_| {
            Ok(ChromaReader::new(store.reader()?, feeds.clone()).loading(Some(observer.clone())))
        })
        .collect::<Result<Vec<_>, MigrateError>>()?;
    let store = Arc::new(Mutex::new(store));
    let mut schedule = Schedule::default();
    let read = schedule_reads(&mut schedule, &plan, &feeds, &store, readers, jobs);
    proof.schedule(&mut schedule, &read, &read);
    let progressed = Progressed::new(schedule, &plan.plan).announcing(["verifying", "verifying"]);
    let generic = Arc::new(plan.plan.clone());
    let executed = execute(
        progressed.clone(),
        target_config,
        &generic,
        Vec::new(),
        jobs,
        progress,
        false,
        cancel,
    )
    .await;
    let stage = progressed.unfinished_stage();
    executed.map_err(|err| {
        let message = match stage {
            Some(Stage::Load) => "interrupted while reading the store",
            _ => "interrupted during verification",
        };
        saying(message)(err)
    })?;
    let items: Vec<load::UnitResult> = plan
        .plan
        .tables
        .iter()
        .map(|t| load::UnitResult {
            rows: t.source_rows,
            ..load::UnitResult::default()
        })
        .collect();
    let mut migration = crate::run::build_report(
        source_label,
        target_config,
        &plan.plan,
        &items,
        None,
        crate::finish::FinishOutcome::default(),
        started,
    );
    migration.phases = progressed
        .stage_laps(started)
        .into_iter()
        .map(|(stage, seconds)| pgharbor_core::report::PhaseTiming {
            phase: match stage {
                Stage::Load => "read".into(),
                other => other.name().into(),
            },
            seconds: seconds.as_secs_f64(),
        })
        .collect();
    Ok(report(
        migration,
        &plan,
        &feeds,
        Vec::new(),
        proof.findings(),
        true,
    ))
}

/// Give `plan`'s columns the types the target has (an encrypted
/// `document_chunk`'s bytea text and vmetadata are read decrypted, as the
/// text and jsonb the layout plans).
async fn with_target_types(client: &Client, plan: &mut ChromaPlan) -> Result<(), MigrateError> {
    let encrypted = plan.encryption.is_some();
    for table in &mut plan.plan.tables {
        let types = crate::verify::target_column_types(client, &table.spec.name).await?;
        let decrypted = |name: &str| encrypted && ["text", "vmetadata"].contains(&name);
        for column in table
            .spec
            .columns
            .iter_mut()
            .filter(|c| !decrypted(&c.name))
        {
            column.pg_type = types
                .iter()
                .find(|(name, _)| *name == column.name)
                .map(|(_, t)| *t)
                .ok_or_else(|| {
                    MigrateError::new(
                        MigrateErrorKind::Verify,
                        format!(
                            "{} has no column {:?}: was the store moved with another --layout?",
                            table.spec.name, column.name
                        ),
                    )
                })?;
        }
    }
    Ok(())
}

/// Add a step reading each work unit of the store into the tally (the rows
/// go nowhere else) on one of `readers`, and one checking, once all are
/// read, that the store did not change; returns, per plan table, the steps
/// after which it is read.
fn schedule_reads(
    schedule: &mut Schedule,
    plan: &Arc<ChromaPlan>,
    feeds: &Feeds,
    store: &SharedStore,
    readers: Vec<ChromaReader>,
    jobs: usize,
) -> Vec<Vec<StepId>> {
    let readers = Arc::new(Mutex::new(readers));
    let mut read = vec![Vec::new(); plan.plan.tables.len()];
    for unit in work_units(&plan.plan, feeds, jobs) {
        let (readers, plan) = (readers.clone(), plan.clone());
        read[unit.table].push(add_step(
            schedule,
            Stage::Load,
            Vec::new(),
            None,
            move |_| async move { read_unit(&readers, plan, unit).await },
        ));
    }
    let store = store.clone();
    add_step(schedule, Stage::Load, read.concat(), None, |_| async move {
        tokio::task::spawn_blocking(move || store.lock().expect("store lock").check_unchanged())
            .await
            .expect("store check thread")?;
        Ok(())
    });
    read
}

/// Read `unit` on a reader of `readers` (there is one for each worker).
async fn read_unit(
    readers: &Mutex<Vec<ChromaReader>>,
    plan: Arc<ChromaPlan>,
    unit: SourceUnit,
) -> Result<(), MigrateError> {
    let mut reader = readers
        .lock()
        .expect("readers lock")
        .pop()
        .expect("a reader per worker");
    let (reader, outcome) = tokio::task::spawn_blocking(move || {
        let table = &plan.plan.tables[unit.table];
        let outcome = reader.read(table, unit, &mut |_, _| Ok(()));
        (reader, outcome)
    })
    .await
    .expect("store reader thread");
    readers.lock().expect("readers lock").push(reader);
    Ok(outcome?)
}
