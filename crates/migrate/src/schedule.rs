//! The per-table schedule and the one pool of workers that runs it.
//!
//! A run is a set of steps, each with the steps it needs: the load of a
//! work unit (a table, or a rowid range of one), the verification of a
//! table (once its units are loaded), and the target's own steps (an index
//! build once its table is loaded, a foreign key once both tables have
//! their keys, …). `--jobs` workers, each with its own PostgreSQL
//! connection and its own source reader, take the next step whose needs are
//! done: steps that finish a loaded table first, then verification, then
//! more loading. So a table is indexed and verified while others still
//! load, and both sides stay busy from the first COPY to the last check.
//!
//! The schedule records how far each [`Stage`] got, so a run that fails or
//! is cancelled knows whether its tables were all built.
//!
//! Workers stop together: when one fails, or the caller cancels, every
//! other worker drops its step at once and cancels the statement its
//! connection runs on the server ([`crate::stop`]) — a `COPY`, an index
//! build, a foreign key's validation, a verification query — until the
//! server has answered. A step that ends after the stop is not counted as
//! done (its statement may have been the one cancelled). The first error is
//! the one reported, not the cancellations it caused.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::load::{self, TableGuards, UnitReader, UnitResult, WorkUnit};
use crate::progress::Progress;
use crate::stop::{interrupted, Canceller};
use crate::verify;
use futures_util::future::BoxFuture;
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::Plan;
use pgharbor_core::report::TableVerification;
use pgharbor_verify::TableDigest;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// What a step belongs to; a run's stages end in this order of importance
/// (a run whose `Load` and `Finish` steps are done has built every table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Rows into the target.
    Load,
    /// Keys, indexes, foreign keys, sequences, views, statistics.
    Finish,
    /// Comparing source and target.
    Verify,
}

const STAGES: [Stage; 3] = [Stage::Load, Stage::Finish, Stage::Verify];

impl Stage {
    /// The stage's name in a report's phases.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Load => "load",
            Stage::Finish => "finish",
            Stage::Verify => "verify",
        }
    }
}

/// A step's place in a [`Schedule`].
pub type StepId = usize;

/// A target-side step: given a worker's connection, does its work.
type TargetStep =
    Box<dyn FnOnce(Arc<Client>) -> BoxFuture<'static, Result<(), MigrateError>> + Send>;

enum Work {
    Load(WorkUnit),
    Verify(usize),
    Target(TargetStep),
}

struct Step {
    work: Option<Work>,
    stage: Stage,
    needs: Vec<StepId>,
    /// The table and event reported to [`Progress::step_finished`] when done.
    event: Option<(usize, &'static str)>,
}

/// The steps of a run and what each needs.
#[derive(Default)]
pub struct Schedule {
    steps: Vec<Step>,
}

impl Schedule {
    /// Load `unit` once `needs` are done.
    pub fn load(&mut self, unit: WorkUnit, needs: Vec<StepId>) -> StepId {
        self.push(Work::Load(unit), Stage::Load, needs, None)
    }

    /// Verify the plan's table `table` once `needs` are done.
    pub fn verify(&mut self, table: usize, needs: Vec<StepId>) -> StepId {
        self.push(
            Work::Verify(table),
            Stage::Verify,
            needs,
            Some((table, "verified")),
        )
    }

    /// Run `step` on a worker's connection once `needs` are done; with
    /// `event`, report it as done for that table.
    pub fn target_step<F>(
        &mut self,
        stage: Stage,
        needs: Vec<StepId>,
        event: Option<(usize, &'static str)>,
        step: F,
    ) -> StepId
    where
        F: FnOnce(Arc<Client>) -> BoxFuture<'static, Result<(), MigrateError>> + Send + 'static,
    {
        self.push(Work::Target(Box::new(step)), stage, needs, event)
    }

    /// The load steps of the plan's table `table`.
    pub fn loads_of(&self, table: usize) -> Vec<StepId> {
        self.ids_where(|work| matches!(work, Work::Load(u) if u.table == table))
    }

    /// Every load step.
    pub fn all_loads(&self) -> Vec<StepId> {
        self.ids_where(|work| matches!(work, Work::Load(_)))
    }

    fn ids_where(&self, wanted: impl Fn(&Work) -> bool) -> Vec<StepId> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.work.as_ref().is_some_and(&wanted))
            .map(|(id, _)| id)
            .collect()
    }

    fn push(
        &mut self,
        work: Work,
        stage: Stage,
        needs: Vec<StepId>,
        event: Option<(usize, &'static str)>,
    ) -> StepId {
        self.steps.push(Step {
            work: Some(work),
            stage,
            needs,
            event,
        });
        self.steps.len() - 1
    }
}

/// What a schedule produced, per plan table.
#[derive(Debug, Default)]
pub struct Executed {
    /// Rows, bytes, lossy changes and seconds loaded.
    pub loaded: Vec<UnitResult>,
    /// Verification results (for tables that had a verification step).
    pub verified: Vec<Option<TableVerification>>,
}

/// How far a schedule got; shared with the caller so that it can tell,
/// after a failure or a cancellation, what was left undone.
pub struct Progressed {
    state: Mutex<State>,
    wake: Notify,
    /// Phases announced when the loads, then the finishing steps, end.
    later_phases: Option<[&'static str; 2]>,
}

struct State {
    steps: Vec<Step>,
    started: Vec<bool>,
    done: Vec<bool>,
    running: usize,
    failed: Option<MigrateError>,
    units_left: Vec<usize>,
    stage_left: [usize; 3],
    stage_had_steps: [bool; 3],
    stage_done_at: [Option<Instant>; 3],
    executed: Executed,
    /// Per table, the source side of verification as the loads read it
    /// (`None` once a unit could not digest its rows).
    read_by_load: Vec<Option<TableDigest>>,
}

impl Progressed {
    /// A schedule ready to run for `plan`.
    pub fn new(schedule: Schedule, plan: &Plan) -> Arc<Self> {
        let tables = plan.tables.len();
        let mut units_left = vec![0; tables];
        let mut stage_left = [0; 3];
        for step in &schedule.steps {
            stage_left[step.stage as usize] += 1;
            if let Some(Work::Load(unit)) = &step.work {
                units_left[unit.table] += 1;
            }
        }
        let now = Instant::now();
        let stage_done_at = stage_left.map(|left| (left == 0).then_some(now));
        let count = schedule.steps.len();
        Arc::new(Progressed {
            state: Mutex::new(State {
                steps: schedule.steps,
                started: vec![false; count],
                done: vec![false; count],
                running: 0,
                failed: None,
                units_left,
                stage_left,
                stage_had_steps: stage_left.map(|left| left > 0),
                stage_done_at,
                executed: Executed {
                    loaded: vec![UnitResult::default(); tables],
                    verified: vec![None; tables],
                },
                read_by_load: vec![Some(TableDigest::default()); tables],
            }),
            wake: Notify::new(),
            later_phases: None,
        })
    }

    /// Announce `phases` (of the finishing steps, of the verification) as
    /// the stage before each ends, when steps of theirs are left.
    pub fn announcing(self: Arc<Self>, phases: [&'static str; 2]) -> Arc<Self> {
        let mut this = Arc::into_inner(self).expect("not shared yet");
        this.later_phases = Some(phases);
        Arc::new(this)
    }

    /// The first stage with steps not done, if any.
    pub fn unfinished_stage(&self) -> Option<Stage> {
        let state = self.lock();
        STAGES
            .into_iter()
            .find(|s| state.stage_left[*s as usize] > 0)
    }

    /// The wall-clock seconds each stage ended after the previous one
    /// (after `started` for the first), for the stages that ended.
    pub fn stage_laps(&self, started: Instant) -> Vec<(Stage, Duration)> {
        let state = self.lock();
        let mut since = started;
        let mut laps = Vec::new();
        for stage in STAGES
            .into_iter()
            .filter(|s| state.stage_had_steps[*s as usize])
        {
            if let Some(at) = state.stage_done_at[stage as usize] {
                let at = at.max(since);
                laps.push((stage, at - since));
                since = at;
            }
        }
        laps
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("schedule lock")
    }

    /// The next step this worker can do, `Ok(None)` when it should wait,
    /// `Err(())` when there is nothing left for it.
    fn next(&self, has_reader: bool) -> Result<Option<(StepId, Work)>, ()> {
        let mut state = self.lock();
        if state.failed.is_some() {
            return Err(());
        }
        let pick = [Stage::Finish, Stage::Verify, Stage::Load]
            .into_iter()
            .find_map(|stage| state.ready(stage, has_reader));
        if let Some(id) = pick {
            state.started[id] = true;
            state.running += 1;
            let work = state.steps[id].work.take().expect("a step runs once");
            return Ok(Some((id, work)));
        }
        if state.started.iter().all(|s| *s) {
            return Err(());
        }
        if state.running == 0 {
            state.failed = Some(MigrateError::new(
                MigrateErrorKind::Write,
                "the run's schedule has steps whose needs cannot be met",
            ));
            self.wake.notify_waiters();
            return Err(());
        }
        Ok(None)
    }

    fn finished(&self, id: StepId, progress: &dyn Progress, plan: &Plan) {
        let mut state = self.lock();
        state.running -= 1;
        if state.failed.is_some() {
            // Stopped while it ran: its statement may have been cancelled.
            return;
        }
        state.done[id] = true;
        let stage = state.steps[id].stage as usize;
        state.stage_left[stage] -= 1;
        if state.stage_left[stage] == 0 {
            state.stage_done_at[stage] = Some(Instant::now());
            self.announce_after(&state, stage, progress);
        }
        if let Some((table, event)) = state.steps[id].event {
            progress.step_finished(&plan.tables[table].source_name, event);
        }
        drop(state);
        self.wake.notify_waiters();
    }

    /// Announce the next stage's phase when `ended` ended and it has steps left.
    fn announce_after(&self, state: &State, ended: usize, progress: &dyn Progress) {
        let Some(phases) = self.later_phases else {
            return;
        };
        if let Some(next) = (ended + 1..STAGES.len()).find(|s| state.stage_left[*s] > 0) {
            progress.phase(phases[next - 1]);
        }
    }

    /// A running step ended with `err` (or was stopped: [`interrupted`]).
    fn fail(&self, err: MigrateError) {
        self.lock().running -= 1;
        self.stop_with(err);
    }

    /// Stop the schedule with `err`, unless it stopped with an earlier one.
    fn stop_with(&self, err: MigrateError) {
        self.lock().failed.get_or_insert(err);
        self.wake.notify_waiters();
    }

    /// The last of `table`'s units is loaded.
    fn unit_loaded(&self, table: usize, result: UnitResult) -> bool {
        let mut state = self.lock();
        let slot = &mut state.executed.loaded[table];
        slot.rows += result.rows;
        slot.bytes += result.bytes;
        slot.lossy.add(result.lossy);
        slot.seconds += result.seconds;
        let read = &mut state.read_by_load[table];
        *read = read.zip(result.source_digest).map(|(mut all, part)| {
            all.merge(part);
            all
        });
        state.units_left[table] -= 1;
        state.units_left[table] == 0
    }
}

impl State {
    /// The first step of `stage` not started whose needs are done.
    fn ready(&self, stage: Stage, has_reader: bool) -> Option<StepId> {
        (0..self.steps.len()).find(|id| {
            let step = &self.steps[*id];
            step.stage == stage
                && !self.started[*id]
                && (has_reader || matches!(step.work, Some(Work::Target(_))))
                && step.needs.iter().all(|n| self.done[*n])
        })
    }
}

/// Run `progressed`'s steps on one worker per reader (at least one, for
/// schedules of target steps only). With `digesting`, loads also digest the
/// rows they read, for verification steps to compare the target with
/// instead of reading the source again. Returns what was loaded and
/// verified, or the first error: a worker that fails, or `cancel`
/// ([`MigrateErrorKind::Interrupted`]), stops the others' statements at
/// once, and they have stopped when this returns.
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    progressed: Arc<Progressed>,
    target: &ConnConfig,
    plan: &Arc<Plan>,
    readers: Vec<Box<dyn UnitReader>>,
    workers: usize,
    progress: Arc<dyn Progress>,
    digesting: bool,
    cancel: &CancellationToken,
) -> Result<Executed, MigrateError> {
    let guards = Arc::new(TableGuards::default());
    let mut readers: Vec<Option<Box<dyn UnitReader>>> = readers.into_iter().map(Some).collect();
    readers.resize_with(workers.max(readers.len()).max(1), || None);
    let stop = cancel.child_token();
    let mut set = tokio::task::JoinSet::new();
    for reader in readers {
        let client = crate::target::connect(target).await?;
        crate::target::apply_session_settings(&client, crate::target::LOADER_SETTINGS).await;
        let worker = Worker {
            progressed: progressed.clone(),
            canceller: Canceller::new(&client, target),
            client: Arc::new(client),
            stop: stop.clone(),
            reader,
            plan: plan.clone(),
            progress: progress.clone(),
            guards: guards.clone(),
            target: target.clone(),
            digesting,
        };
        set.spawn(worker.run());
    }
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            progressed.fail(MigrateError::new(
                MigrateErrorKind::Write,
                format!("a worker crashed: {e}"),
            ));
            stop.cancel();
        }
    }
    guards.release_all().await;
    let mut state = progressed.lock();
    if let Some(err) = state.failed.take() {
        return Err(err);
    }
    Ok(std::mem::take(&mut state.executed))
}

/// One worker: a connection, maybe a reader, and the schedule to take steps from.
struct Worker {
    progressed: Arc<Progressed>,
    client: Arc<Client>,
    canceller: Canceller,
    /// Cancelled when the caller cancels or a worker fails.
    stop: CancellationToken,
    reader: Option<Box<dyn UnitReader>>,
    plan: Arc<Plan>,
    progress: Arc<dyn Progress>,
    guards: Arc<TableGuards>,
    target: ConnConfig,
    digesting: bool,
}

impl Worker {
    async fn run(mut self) {
        let progressed = self.progressed.clone();
        let stop = self.stop.clone();
        loop {
            let wake = progressed.wake.notified();
            let (id, work) = match progressed.next(self.reader.is_some()) {
                Err(()) => return,
                Ok(None) => {
                    tokio::select! {
                        () = wake => {}
                        () = stop.cancelled() => progressed.stop_with(interrupted()),
                    }
                    continue;
                }
                Ok(Some(next)) => next,
            };
            let outcome = tokio::select! {
                outcome = self.work(work) => Some(outcome),
                () = stop.cancelled() => None,
            };
            let Some(outcome) = outcome else {
                progressed.fail(interrupted());
                settle(self.client.clone(), self.canceller.clone()).await;
                return;
            };
            match outcome {
                Ok(()) => progressed.finished(id, &*self.progress, &self.plan),
                Err(e) => {
                    progressed.fail(e);
                    stop.cancel();
                    return;
                }
            }
        }
    }

    async fn work(&mut self, work: Work) -> Result<(), MigrateError> {
        match work {
            Work::Load(unit) => self.load(unit).await,
            Work::Verify(table) => {
                let reader = self.reader.take().expect("verification has a reader");
                let read_by_load = self
                    .digesting
                    .then(|| self.progressed.lock().read_by_load[table])
                    .flatten();
                let (back, result) = verify::verify_table(
                    &self.client,
                    &self.plan,
                    table,
                    reader,
                    read_by_load,
                    &self.stop,
                )
                .await;
                self.reader = Some(back);
                self.progressed.lock().executed.verified[table] = Some(result?);
                Ok(())
            }
            Work::Target(step) => step(self.client.clone()).await,
        }
    }

    async fn load(&mut self, unit: WorkUnit) -> Result<(), MigrateError> {
        if !unit.creates_table {
            self.guards.take(&self.target, &self.plan, unit.table).await;
        }
        let reader = self.reader.take().expect("loading has a reader");
        let (back, result) = load::load_unit(
            &self.client,
            &self.plan,
            unit,
            reader,
            self.progress.clone(),
            self.digesting,
        )
        .await;
        self.reader = Some(back);
        if self.progressed.unit_loaded(unit.table, result?) {
            self.guards.release(unit.table).await;
            self.progress
                .table_finished(&self.plan.tables[unit.table].source_name);
        }
        Ok(())
    }
}

/// After a worker's step was dropped: cancel what its connection still runs
/// on the server until the server has answered everything sent.
async fn settle(client: Arc<Client>, canceller: Canceller) {
    canceller
        .cancel_until(async move {
            let _ = client.batch_execute("").await;
        })
        .await;
}
