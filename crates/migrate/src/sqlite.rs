//! The runs of a SQLite file ([`SqliteSource`], planned by
//! `pgharbor_sqlite::source::plan_file`): the schema-creating migration and
//! the standalone verification of it.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::finish;
use crate::load;
use crate::new_tables::NewTables;
use crate::progress::Progress;
use crate::run::{build_report, run, saying, CancellationToken, RowSource, RunOptions};
use crate::target;
use crate::verify;
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::Plan;
use pgharbor_core::report::MigrationReport;
use pgharbor_sqlite::open::SourceSnapshot;
use pgharbor_sqlite::SqliteSource;
use std::sync::Arc;
use std::time::Instant;

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
        pgharbor_sqlite::source::readers(&snapshot, jobs.max(1))?,
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
