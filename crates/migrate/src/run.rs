//! One run for every source: get the target ready, load, finish and verify
//! table by table on one pool of workers, and clean up when it fails.
//!
//! A run joins two halves:
//!
//! * a [`RowSource`] (`pgharbor-source`'s contract): the plan, its units
//!   and a reader per worker (the SQLite file:
//!   [`pgharbor_sqlite::SqliteSource`]);
//! * a [`Landing`]: what the run does to the target around the rows — a new
//!   schema whose tables it creates, records and builds keys on
//!   ([`crate::new_tables::NewTables`]), or the application's own tables,
//!   journaled for `--resume` ([`crate::existing::ExistingTables`]).
//!
//! [`run`] puts the landing's steps and the verification of each table into
//! one [`Schedule`] and runs it (see [`crate::schedule`]). Cancellation comes
//! from the caller (the binary cancels the token on Ctrl-C): the workers'
//! statements are cancelled on the server at once ([`crate::stop`]), then a
//! run stopped before every table was built is undone by its landing, one
//! stopped during the last verifications keeps its tables.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::finish::FinishOutcome;
use crate::load::{UnitResult, WorkUnit};
use crate::progress::Progress;
use crate::schedule::{execute, Progressed, Schedule, Stage};
use crate::target;
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::Plan;
use pgharbor_core::report::{
    LossyCounts, MigrationReport, PhaseTiming, TableReport, TableVerification,
};
pub use pgharbor_source::RowSource;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio_postgres::Client;
pub use tokio_util::sync::CancellationToken;

/// What every run is told.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Parallel workers (connections and source readers).
    pub jobs: usize,
    /// Verify each table once it is loaded.
    pub verify: bool,
    /// Create the target database when it does not exist.
    pub create_database: bool,
}

/// What a run does to the target around the rows, and what it adds to the
/// run: steps of its own in the one schedule (index builds, checks: see
/// [`Landing::prepare`]) and a section of the report.
pub trait Landing {
    /// What a run through this landing returns: the run's
    /// [`MigrationReport`], or a report with a section of the landing's own
    /// around it.
    type Report;
    /// The phase shown while loading.
    fn loading_phase(&self) -> &'static str {
        "loading"
    }
    /// The phases shown once the loads, then the finishing steps, are done.
    fn later_phases(&self) -> [&'static str; 2] {
        ["building keys and indexes", "verifying"]
    }
    /// Check and prepare the target, then add a load step for each of
    /// `units` and the target's own steps to `schedule`. Returns the
    /// progress to report through (the landing may watch it).
    fn prepare(
        &mut self,
        client: &Client,
        database_created: bool,
        units: Vec<WorkUnit>,
        schedule: &mut Schedule,
        progress: Arc<dyn Progress>,
    ) -> impl Future<Output = Result<Arc<dyn Progress>, MigrateError>> + Send;
    /// Every table is built: the tables are the user's. Returns what the
    /// finishing steps found.
    fn close(
        &mut self,
        client: &Client,
    ) -> impl Future<Output = Result<FinishOutcome, MigrateError>> + Send;
    /// The run stopped with `err` before `stage` was done: undo what must
    /// be undone; the error says what was left.
    fn fail(
        &mut self,
        client: &Client,
        err: MigrateError,
        stage: Stage,
    ) -> impl Future<Output = MigrateError> + Send;
    /// What a cancellation during `stage` says.
    fn interrupted(&self, stage: Stage) -> &'static str;
    /// The report of a successful run: `migration`, with what the
    /// landing's own steps found.
    fn report(&mut self, migration: MigrationReport) -> Self::Report;
}

/// Load `source` through `landing` into `target`, verifying each table as
/// it is loaded; stop when `cancel` is cancelled.
pub async fn run<L: Landing>(
    label: &str,
    source: &mut dyn RowSource,
    landing: &mut L,
    target: &ConnConfig,
    options: &RunOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<L::Report, MigrateError> {
    let started = Instant::now();
    let jobs = options.jobs.max(1);
    let plan = source.plan().clone();
    let (client, database_created) =
        target::connect_or_create(target, options.create_database).await?;
    let units = source
        .work_units(jobs)?
        .into_iter()
        .map(WorkUnit::from)
        .collect();
    let mut schedule = Schedule::default();
    let progress = landing
        .prepare(&client, database_created, units, &mut schedule, progress)
        .await?;
    if options.verify {
        for table in 0..plan.tables.len() {
            let loads = schedule.loads_of(table);
            schedule.verify(table, loads);
        }
    }
    progress.phase(landing.loading_phase());
    for table in &plan.tables {
        progress.table_started(&table.source_name, table.source_rows);
    }
    let progressed = Progressed::new(schedule, &plan).announcing(landing.later_phases());
    let executing = async {
        let readers = source.readers(jobs)?;
        execute(
            progressed.clone(),
            target,
            &plan,
            readers,
            jobs,
            progress.clone(),
            options.verify,
            cancel,
        )
        .await
    };
    let outcome = executing.await.map_err(|err| {
        let stage = progressed.unfinished_stage().unwrap_or(Stage::Verify);
        saying(landing.interrupted(stage))(err)
    });
    let executed = match outcome {
        Ok(executed) => executed,
        Err(err) => {
            return Err(match progressed.unfinished_stage() {
                Some(stage @ (Stage::Load | Stage::Finish)) => {
                    landing.fail(&client, err, stage).await
                }
                _ => {
                    landing.close(&client).await?;
                    err
                }
            })
        }
    };
    let finished = landing.close(&client).await?;
    let verifications = options.verify.then(|| {
        executed
            .verified
            .into_iter()
            .map(|v| v.expect("every table verified"))
            .collect()
    });
    let mut report = build_report(
        label,
        target,
        &plan,
        &executed.loaded,
        verifications,
        finished,
        started,
    );
    report.phases = progressed
        .stage_laps(started)
        .into_iter()
        .map(|(stage, seconds)| PhaseTiming {
            phase: stage.name().into(),
            seconds: seconds.as_secs_f64(),
        })
        .collect();
    report.source_changed_during_run = source.changed_since_taken()?;
    Ok(landing.report(report))
}

/// What a cancelled step says: `message` for an interruption, any other
/// error as it is.
pub(crate) fn saying(message: &str) -> impl FnOnce(MigrateError) -> MigrateError + '_ {
    move |err| match err.kind() {
        MigrateErrorKind::Interrupted => MigrateError::new(MigrateErrorKind::Interrupted, message),
        _ => err,
    }
}

/// The report of a run: per table what was loaded and how it verified.
pub(crate) fn build_report(
    source_label: &str,
    target_config: &ConnConfig,
    plan: &Plan,
    loaded: &[UnitResult],
    verifications: Option<Vec<TableVerification>>,
    finished: FinishOutcome,
    started: Instant,
) -> MigrationReport {
    let mut lossy = LossyCounts::default();
    let tables: Vec<TableReport> = plan
        .tables
        .iter()
        .zip(loaded)
        .enumerate()
        .map(|(i, (t, l))| {
            lossy.add(l.lossy);
            TableReport {
                source: t.source_name.clone(),
                target: t.spec.name.to_string(),
                rows: l.rows,
                bytes: l.bytes,
                load_seconds: l.seconds,
                lossy: l.lossy,
                verification: verifications.as_ref().map(|v| v[i].clone()),
            }
        })
        .collect();
    MigrationReport {
        source: source_label.to_string(),
        target: target_config.to_string(),
        total_rows: tables.iter().map(|t| t.rows).sum(),
        total_bytes: tables.iter().map(|t| t.bytes).sum(),
        verified: verifications.map(|v| v.iter().all(|t| t.matches)),
        source_changed_during_run: false,
        earlier_run_restored: None,
        tables,
        widened_columns: plan.widened_columns(),
        reported: plan.reported.clone(),
        orphans: finished.orphans,
        finish_issues: finished.issues,
        indexes_rebuilt: finished.indexes_rebuilt,
        lossy,
        seconds: started.elapsed().as_secs_f64(),
        phases: Vec::new(),
    }
}
