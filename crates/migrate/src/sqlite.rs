//! The SQLite file as a source of runs: planning it, its work units (rowid
//! ranges of large tables) and readers ([`SqliteSource`]), and the
//! schema-creating migration and the standalone verification of it.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::finish;
use crate::load::{self, RowSink, UnitRange, UnitReader, WorkUnit};
use crate::new_tables::NewTables;
use crate::progress::Progress;
use crate::run::{build_report, run, saying, CancellationToken, RowSource, RunOptions};
use crate::target;
use crate::verify;
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::{Plan, TablePlan};
use pgharbor_core::report::MigrationReport;
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
                creates_table: false,
                journal_id: None,
            }),
        }
    }
    Ok(units)
}

/// The SQLite file as a run's [`RowSource`]: one snapshot, a plan.
pub struct SqliteSource {
    snapshot: SourceSnapshot,
    plan: Arc<Plan>,
}

impl SqliteSource {
    /// `plan` (of the file `snapshot` holds open) as a source.
    pub fn new(snapshot: SourceSnapshot, plan: Arc<Plan>) -> Self {
        SqliteSource { snapshot, plan }
    }
}

impl RowSource for SqliteSource {
    fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    fn work_units(&self, jobs: usize) -> Result<Vec<WorkUnit>, MigrateError> {
        work_units(&self.snapshot, &self.plan, jobs)
    }

    fn readers(&self, count: usize) -> Result<Vec<Box<dyn UnitReader>>, MigrateError> {
        readers(&self.snapshot, count)
    }

    fn changed_since_taken(&self) -> Result<bool, MigrateError> {
        Ok(self.snapshot.changed_since_taken()?)
    }
}

/// Run a planned migration into `target_config`, in tables it creates.
pub async fn migrate(
    source_label: &str,
    snapshot: SourceSnapshot,
    plan: Plan,
    target_config: &ConnConfig,
    options: &MigrateOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<MigrationReport, MigrateError> {
    let mut source = SqliteSource::new(snapshot, Arc::new(plan));
    let mut landing = NewTables::new(source.plan().clone(), target_config, options.drop_existing);
    let run_options = RunOptions {
        jobs: options.jobs,
        verify: options.verify,
        create_database: options.create_database,
    };
    run(
        source_label,
        &mut source,
        &mut landing,
        target_config,
        &run_options,
        progress,
        cancel,
    )
    .await
}

/// Verify a SQLite file against tables already in the target, with the target's column types.
pub async fn verify_only(
    source_label: &str,
    snapshot: SourceSnapshot,
    mut plan: Plan,
    target_config: &ConnConfig,
    jobs: usize,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
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
    let verifications = verify::verify_all(
        target_config,
        &plan,
        readers(&snapshot, jobs.max(1))?,
        progress,
        cancel,
    )
    .await
    .map_err(saying("interrupted during verification"))?;
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
