//! The SQLite → PostgreSQL migration, start to finish.

use crate::created;
use crate::error::{MigrateError, MigrateErrorKind};
use crate::finish;
use crate::load::{self, RowSink, UnitRange, UnitReader, WorkUnit};
use crate::progress::Progress;
use crate::target;
use crate::verify;
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::{Plan, TablePlan};
use pgharbor_core::report::{
    LossyCounts, MigrationReport, PhaseTiming, TableReport, TableVerification,
};
use pgharbor_core::schema::QualifiedName;
use pgharbor_pgwriter::{ddl, WriteError};
use pgharbor_sqlite::open::SourceSnapshot;
use pgharbor_sqlite::planner::{self, PlanOptions};
use pgharbor_sqlite::read::{self, RowRange};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Tables with at least this many rows are split into rowid ranges.
const SPLIT_MIN_ROWS: u64 = 200_000;

/// Options of a SQLite migration.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Parallel workers.
    pub jobs: usize,
    /// Replace tables that already exist in the target.
    pub drop_existing: bool,
    /// Verify after loading.
    pub verify: bool,
    /// Create the target database when it does not exist.
    pub create_database: bool,
}

/// Open `path` read-only with a reader connection for each of `jobs` workers
/// (shared by profiling, loading and verifying), inspect it and plan the migration.
pub fn plan_file(
    path: &Path,
    options: &PlanOptions,
    jobs: usize,
) -> Result<(SourceSnapshot, Plan), MigrateError> {
    let snapshot = SourceSnapshot::open(path, jobs.max(1))?;
    let schema = pgharbor_sqlite::inspect::inspect(snapshot.connection())
        .map_err(|e| MigrateError::from(e.with_path(path)))?;
    let plan = planner::plan(&snapshot, &schema, options, jobs.max(1))
        .map_err(|e| MigrateError::from(e.with_path(path)))?;
    Ok((snapshot, plan))
}

/// Open `path` read-only with a reader for each of `jobs` workers and inspect it
/// (for `--into-existing`, where the target decides the types).
pub fn inspect_file(
    path: &Path,
    jobs: usize,
) -> Result<(SourceSnapshot, pgharbor_sqlite::inspect::SourceSchema), MigrateError> {
    let snapshot = SourceSnapshot::open(path, jobs.max(1))?;
    let schema = pgharbor_sqlite::inspect::inspect(snapshot.connection())
        .map_err(|e| MigrateError::from(e.with_path(path)))?;
    Ok((snapshot, schema))
}

/// Reads SQLite rows inside the shared snapshot.
struct SqliteReader {
    conn: rusqlite::Connection,
}

impl UnitReader for SqliteReader {
    fn read(
        &mut self,
        table: &TablePlan,
        range: UnitRange,
        on_row: &mut RowSink<'_>,
    ) -> Result<(), MigrateError> {
        let columns: Vec<&str> = table.source_columns.iter().map(String::as_str).collect();
        let range = match range {
            UnitRange::WholeTable => RowRange::All,
            UnitRange::Rowids { first, last } => RowRange::Rowids { first, last },
        };
        read::read_rows(
            &self.conn,
            &table.source_name,
            &columns,
            table.splittable,
            range,
            |rowid, cells| on_row(rowid, cells),
        )
    }
}

pub(crate) fn readers(
    snapshot: &SourceSnapshot,
    jobs: usize,
) -> Result<Vec<Box<dyn UnitReader>>, MigrateError> {
    Ok(snapshot
        .take_readers(jobs)?
        .into_iter()
        .map(|conn| Box::new(SqliteReader { conn }) as Box<dyn UnitReader>)
        .collect())
}

/// Split the plan into work units: large rowid tables into ranges, largest first.
pub(crate) fn work_units(
    snapshot: &SourceSnapshot,
    plan: &Plan,
    jobs: usize,
    create_tables: bool,
) -> Result<Vec<WorkUnit>, MigrateError> {
    let mut units = Vec::new();
    for (i, table) in plan.tables.iter().enumerate() {
        let bounds = if jobs > 1 && table.splittable && table.source_rows >= SPLIT_MIN_ROWS {
            read::rowid_bounds(snapshot.connection(), &table.source_name)?
        } else {
            None
        };
        match bounds {
            Some((min, max)) => {
                let parts =
                    (table.source_rows / (SPLIT_MIN_ROWS / 2)).clamp(2, jobs as u64 * 4) as usize;
                for (first, last) in read::split_range(min, max, parts) {
                    let range = UnitRange::Rowids { first, last };
                    units.push(WorkUnit {
                        table: i,
                        range,
                        creates_table: false,
                        journal_id: None,
                    });
                }
            }
            None => units.push(WorkUnit {
                table: i,
                range: UnitRange::WholeTable,
                creates_table: create_tables,
                journal_id: None,
            }),
        }
    }
    Ok(units)
}

/// Run `work`, or stop with `message` when the user presses Ctrl-C.
pub(crate) async fn interruptible<T>(
    work: impl std::future::Future<Output = Result<T, MigrateError>>,
    message: &str,
) -> Result<T, MigrateError> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err(MigrateError::new(MigrateErrorKind::Interrupted, message)),
    }
}

/// Wall-clock time of consecutive phases.
pub(crate) struct Phases {
    since: Instant,
    pub(crate) done: Vec<PhaseTiming>,
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            since: Instant::now(),
            done: Vec::new(),
        }
    }
}

impl Phases {
    pub(crate) fn lap(&mut self, phase: &str) {
        self.done.push(PhaseTiming {
            phase: phase.into(),
            seconds: self.since.elapsed().as_secs_f64(),
        });
        self.since = Instant::now();
    }
}

/// Run a planned migration into `target_config`.
pub async fn migrate(
    source_label: &str,
    snapshot: SourceSnapshot,
    plan: Plan,
    target_config: &ConnConfig,
    options: &MigrateOptions,
    progress: Arc<dyn Progress>,
) -> Result<MigrationReport, MigrateError> {
    let started = Instant::now();
    let jobs = options.jobs.max(1);
    let plan = Arc::new(plan);
    let (client, database_created) =
        target::connect_or_create(target_config, options.create_database).await?;
    created::remove_leftovers(&client, &*progress).await?;
    let mut names: Vec<String> = plan
        .tables
        .iter()
        .map(|t| t.spec.name.name.clone())
        .collect();
    names.extend(plan.views.iter().map(|v| v.name.name.clone()));
    let existing = target::existing_relations(&client, &plan.target_schema, &names).await?;
    if !options.drop_existing {
        target::refuse_existing(&existing, &plan.target_schema)?;
    }
    prepare_target(&client, &plan, &existing).await?;
    created::open(&client).await?;
    let units = work_units(&snapshot, &plan, jobs, true)?;
    let committed = Arc::new(created::Committed::default());
    let tracked: Arc<dyn Progress> = created::CommitTracking::new(
        progress.clone(),
        committed.clone(),
        created_by_load(&plan, &units),
    );
    let mut phases = Phases::default();
    let building = Building {
        client: &client,
        config: target_config,
        snapshot: &snapshot,
        plan: &plan,
        jobs,
        committed: &committed,
        progress: tracked,
    };
    let (loaded, readers_back, finished) = match building.run(units, &mut phases).await {
        Ok(built) => built,
        Err(err) => {
            return Err(created::clean_up_after_failure(
                target_config,
                &committed,
                database_created,
                err,
            )
            .await)
        }
    };
    created::close(&client).await?;
    let verifications = if options.verify {
        let verifying = verify::verify_all(target_config, &plan, readers_back, progress.clone());
        let result = interruptible(
            verifying,
            "interrupted during verification: the migration itself is complete; run `pgharbor verify` to check it",
        )
        .await?;
        phases.lap("verify");
        Some(result)
    } else {
        None
    };
    let source_changed = snapshot.changed_since_taken()?;
    drop(snapshot);
    let mut report = build_report(
        source_label,
        target_config,
        &plan,
        &loaded,
        verifications,
        finished,
        started,
    );
    report.phases = phases.done;
    report.source_changed_during_run = source_changed;
    Ok(report)
}

/// The tables each created by its one load unit: (source name, target table).
fn created_by_load(plan: &Plan, units: &[WorkUnit]) -> Vec<(String, QualifiedName)> {
    units
        .iter()
        .filter(|u| u.creates_table)
        .map(|u| {
            let table = &plan.tables[u.table];
            (table.source_name.clone(), table.spec.name.clone())
        })
        .collect()
}

/// What [`Building::run`] works with.
struct Building<'a> {
    client: &'a tokio_postgres::Client,
    config: &'a ConnConfig,
    snapshot: &'a SourceSnapshot,
    plan: &'a Arc<Plan>,
    jobs: usize,
    committed: &'a created::Committed,
    progress: Arc<dyn Progress>,
}

/// The tables, rows and keys a run builds.
type Built = (
    Vec<load::UnitResult>,
    Vec<Box<dyn UnitReader>>,
    finish::FinishOutcome,
);

impl Building<'_> {
    /// Create the tables split into ranges, load every unit and finish
    /// (keys, indexes, foreign keys, sequences, views): everything the
    /// record of created tables covers.
    async fn run(self, units: Vec<WorkUnit>, phases: &mut Phases) -> Result<Built, MigrateError> {
        let plan = self.plan;
        for (_, table) in plan
            .tables
            .iter()
            .enumerate()
            .filter(|(i, _)| units.iter().any(|u| u.table == *i && !u.creates_table))
        {
            create_recorded(self.client, &table.spec).await?;
            self.committed.add(&table.spec.name);
        }
        let progress = self.progress;
        progress.phase("loading");
        for table in &plan.tables {
            progress.table_started(&table.source_name, table.source_rows);
        }
        let readers_for_load = readers(self.snapshot, self.jobs)?;
        let load = load::load_all(self.config, plan, units, readers_for_load, progress.clone());
        let (loaded, readers_back) = interruptible(load, "interrupted while loading").await?;
        phases.lap("load");
        let finishing = finish::finish(self.config, plan, self.jobs, &*progress);
        let finished =
            interruptible(finishing, "interrupted while building keys and indexes").await?;
        phases.lap("finish");
        Ok((loaded, readers_back, finished))
    }
}

/// Create `spec`'s table and record it, in one transaction.
async fn create_recorded(
    client: &tokio_postgres::Client,
    spec: &pgharbor_core::schema::TableSpec,
) -> Result<(), MigrateError> {
    let sql = format!(
        "BEGIN; {}; {}; COMMIT",
        ddl::create_table(spec),
        created::record_sql(&spec.name)
    );
    if let Err(e) = client.batch_execute(&sql).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(WriteError::from_pg(e, format!("creating table {}", spec.name)).into());
    }
    Ok(())
}

async fn prepare_target(
    client: &tokio_postgres::Client,
    plan: &Plan,
    existing: &[String],
) -> Result<(), MigrateError> {
    if plan.target_schema != "public" {
        client
            .batch_execute(&ddl::create_schema(&plan.target_schema))
            .await
            .map_err(|e| WriteError::from_pg(e, "creating the target schema"))?;
    }
    for name in existing {
        let qualified = pgharbor_core::schema::QualifiedName::new(&plan.target_schema, name);
        let is_view = plan.views.iter().any(|v| &v.name.name == name);
        let sql = if is_view {
            format!("DROP VIEW IF EXISTS {qualified} CASCADE")
        } else {
            ddl::drop_table(&qualified)
        };
        client.batch_execute(&sql).await.map_err(|e| {
            WriteError::from_pg(
                e,
                format!("dropping existing {qualified} (--drop-existing)"),
            )
        })?;
    }
    Ok(())
}

/// Verify a SQLite file against tables already in the target, with the target's column types.
pub async fn verify_only(
    source_label: &str,
    snapshot: SourceSnapshot,
    mut plan: Plan,
    target_config: &ConnConfig,
    jobs: usize,
    progress: Arc<dyn Progress>,
) -> Result<MigrationReport, MigrateError> {
    let started = Instant::now();
    let client = target::connect(target_config).await?;
    for table in &mut plan.tables {
        let types = verify::target_column_types(&client, &table.spec.name).await?;
        for column in &mut table.spec.columns {
            let found = types
                .iter()
                .find(|(n, _)| *n == column.name)
                .ok_or_else(|| {
                    MigrateError::new(
                        MigrateErrorKind::Verify,
                        format!(
                            "column {:?} of {} is missing in the target",
                            column.name, table.spec.name
                        ),
                    )
                })?;
            column.pg_type = found.1;
        }
    }
    let plan = Arc::new(plan);
    let verifying = verify::verify_all(
        target_config,
        &plan,
        readers(&snapshot, jobs.max(1))?,
        progress,
    );
    let verifications = interruptible(verifying, "interrupted during verification").await?;
    let loaded = vec![load::UnitResult::default(); plan.tables.len()];
    Ok(build_report(
        source_label,
        target_config,
        &plan,
        &loaded,
        Some(verifications),
        finish::FinishOutcome::default(),
        started,
    ))
}

pub(crate) fn build_report(
    source_label: &str,
    target_config: &ConnConfig,
    plan: &Plan,
    loaded: &[load::UnitResult],
    verifications: Option<Vec<TableVerification>>,
    finished: finish::FinishOutcome,
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
        tables,
        widened_columns: plan.widened_columns(),
        reported: plan.reported.clone(),
        orphans: finished.orphans,
        finish_issues: finished.issues,
        lossy,
        seconds: started.elapsed().as_secs_f64(),
        phases: Vec::new(),
    }
}
