//! `pgharbor verify chroma:DIR TARGET`: prove a move made earlier (or
//! check again after the target changed) without writing anything — the
//! store is read once in parallel to tally the source side, then each
//! collection's counts, checksums and exact neighbours are compared and its
//! vector index's recall measured, exactly as after a migration.

use super::check::SourceTally;
use super::layout::ChromaPlan;
use super::reader::{ChromaUnitReader, Feeds};
use super::{
    digest_all, prepare, recall_all, report, source_tally, work_units, ChromaOptions, ChromaReport,
};
use crate::error::{MigrateError, MigrateErrorKind};
use crate::load::{self, UnitReader, WorkUnit};
use crate::progress::Progress;
use crate::run::{interruptible, CancellationToken, Phases};
use pgharbor_chroma::Store;
use pgharbor_conn::ConnConfig;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    let mut phases = Phases::default();
    let jobs = options.jobs.max(1);
    let (client, mut plan, facts) = prepare(&store, target_config, options, true).await?;
    let encrypted = plan.encryption.is_some();
    for table in &mut plan.plan.tables {
        let types = crate::verify::target_column_types(&client, &table.spec.name).await?;
        // An encrypted document_chunk's bytea text and vmetadata are read
        // decrypted, as the text and jsonb the layout plans.
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
    let plan = Arc::new(plan);
    let feeds = Arc::new(Feeds::new(store.collections(), &plan));
    feeds.counting.store(true, Ordering::Relaxed);
    progress.phase("reading the Chroma store");
    let tally = Arc::new(source_tally(&store, &feeds, &plan, options.recall.queries).await?);
    let reading = tally_store(&store, &feeds, &plan, &tally, jobs);
    interruptible(reading, cancel, "interrupted while reading the store").await?;
    feeds.counting.store(false, Ordering::Relaxed);
    store.check_unchanged()?;
    phases.lap("read");
    progress.phase("verifying");
    let readers = (0..jobs)
        .map(|_| Ok(ChromaUnitReader::new(store.reader()?, feeds.clone())))
        .collect::<Result<Vec<_>, MigrateError>>()?;
    let verifying = digest_all(target_config, &plan, &feeds, readers, tally);
    let checked = interruptible(verifying, cancel, "interrupted during verification").await?;
    phases.lap("verify");
    progress.phase("measuring the vector index's recall");
    let (checks, recalls) =
        recall_all(target_config, &plan, checked, options, facts.pgvector).await?;
    phases.lap("recall check");
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
    migration.phases = phases.done;
    Ok(report(
        migration,
        &plan,
        &feeds,
        Vec::new(),
        checks,
        recalls,
        true,
    ))
}

/// Read every collection once, on `jobs` threads, into `tally` (the rows go
/// nowhere else).
async fn tally_store(
    store: &Store,
    feeds: &Arc<Feeds>,
    plan: &Arc<ChromaPlan>,
    tally: &Arc<SourceTally>,
    jobs: usize,
) -> Result<(), MigrateError> {
    let units: VecDeque<WorkUnit> = work_units(plan, &feeds.collections, jobs).into();
    let queue = Arc::new(Mutex::new(units));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..jobs {
        let mut reader =
            ChromaUnitReader::new(store.reader()?, feeds.clone()).tallying(tally.clone());
        let (queue, plan) = (queue.clone(), plan.clone());
        set.spawn_blocking(move || loop {
            let Some(unit) = queue.lock().expect("queue lock").pop_front() else {
                return Ok::<(), MigrateError>(());
            };
            let table = &plan.plan.tables[unit.table];
            reader.read(table, unit.source_unit(), &mut |_, _| Ok(()))?;
        });
    }
    crate::error::join_workers(set, MigrateErrorKind::Verify, "store reader").await
}
