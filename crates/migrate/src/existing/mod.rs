//! Loading into the schema the application created itself (`--into-existing`).
//!
//! Apps with their own migrations (Alembic, Django, Prisma, …) must create their
//! PostgreSQL schema; pgharbor then loads the SQLite rows into it:
//!
//! * tables and columns are matched by name (exact, then case-insensitive);
//!   every value is converted to the **target** column's type;
//! * migration bookkeeping tables are compared, not copied;
//! * tables must be empty (or `--truncate`d, never with `CASCADE`);
//! * an application's preset ([`crate::presets`]) adds: tables never copied
//!   (reported as skipped, not verified), tables whose seeded rows are
//!   replaced, and its own migration history read as it says (the latest
//!   version compared, the older side named with the app's command);
//! * tables load in foreign-key order, level by level; foreign keys that a
//!   level order cannot satisfy (self-references, cycles) are dropped for the
//!   load and re-added afterwards, `NOT VALID` when orphan rows exist;
//! * secondary indexes that back no constraint are dropped before the load
//!   and built again once their table is loaded (`indexes`);
//! * every serial/identity sequence of a loaded table moves above the data;
//! * the result is verified with the target's own column types.
//!
//! When the load fails, the loaded tables are emptied again (they were empty
//! before) and dropped foreign keys and indexes are restored.
//!
//! `matching` pairs source tables and columns with the target's,
//! `versions` compares the migration bookkeeping, and `landing` is the
//! run's landing: the journal, the foreign-key order, the restoring.

mod indexes;
mod landing;
mod matching;
mod versions;

use crate::error::{MigrateError, MigrateErrorKind};
use crate::load::UnitResult;
use crate::progress::Progress;
use crate::run::{build_report, run, saying, CancellationToken, RunOptions};
use crate::{target, verify};
pub use landing::ExistingTables;
use matching::{plan_tables, target_tables};
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::{Plan, ReportedObject, ValuePolicy};
use pgharbor_core::report::MigrationReport;
use pgharbor_sqlite::inspect::SourceSchema;
use pgharbor_sqlite::open::SourceSnapshot;
use pgharbor_sqlite::SqliteSource;
use std::sync::Arc;
use tokio_postgres::Client;
use versions::{compare_versions, target_bookkeeping};
pub use versions::{AppVersion, VersionOrder, BOOKKEEPING};

/// Options of `--into-existing`.
#[derive(Debug, Clone, Default)]
pub struct ExistingOptions {
    /// Target schema.
    pub schema: String,
    /// Lossy rules in force.
    pub policy: ValuePolicy,
    /// Parallel workers.
    pub jobs: usize,
    /// Verify after loading.
    pub verify: bool,
    /// Empty the tables being loaded first.
    pub truncate: bool,
    /// Source columns to leave behind, as `table.column` (`--ignore-columns`).
    pub ignore_columns: Vec<String>,
    /// Source columns a preset leaves behind, as `table.column`: reported;
    /// refused when the target table has the column (the preset was
    /// written for another version) unless `--ignore-columns` names it too.
    pub preset_ignored_columns: Vec<String>,
    /// Proceed although the migration versions differ.
    pub allow_version_mismatch: bool,
    /// Migration revisions that stand for the same application version, as
    /// `(SQLite id, PostgreSQL id)`: for applications that keep a separate
    /// migration history per database kind (`--corresponding-revision`, or
    /// what a preset knows of its application). A bookkeeping row is its
    /// columns joined by `/` (`version_num`; `app/name` for Django).
    pub corresponding_revisions: Vec<(String, String)>,
    /// Finish an interrupted run (see [`crate::journal::into_existing`]).
    pub resume: bool,
    /// Source tables never copied, with why (a preset's `copy = false` or
    /// `seeded = "keep-target"`): reported as skipped, not verified.
    pub skipped_tables: Vec<(String, String)>,
    /// Target tables whose rows (seeded by the application's own
    /// migrations) are replaced: emptied before the load without `--truncate`.
    pub replaced_tables: Vec<String>,
    /// The application's migration history, as a preset reads it.
    pub app_version: Option<AppVersion>,
    /// How the application creates its PostgreSQL schema, for the message
    /// when the target lacks it.
    pub create_schema: Option<String>,
}

impl ExistingOptions {
    /// Why `table` (a source table) is not copied, if it is not.
    pub(crate) fn skipped(&self, table: &str) -> Option<&str> {
        self.skipped_tables
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, why)| why.as_str())
    }

    /// `the target lacks …` completed with the application's own command.
    pub(crate) fn create_schema_hint(&self) -> String {
        match &self.create_schema {
            Some(command) => format!(": {command}"),
            None => " (start the application once against the empty PostgreSQL database so its migrations run, then stop it)".into(),
        }
    }
}

pub(super) fn usage(message: String) -> MigrateError {
    MigrateError::new(MigrateErrorKind::Usage, message)
}

/// Plan loading the source into the target's existing tables (no changes made):
/// versions compared, tables and columns matched, target types taken.
pub async fn plan_into_existing(
    client: &Client,
    snapshot: &SourceSnapshot,
    schema: &SourceSchema,
    options: &ExistingOptions,
) -> Result<Plan, MigrateError> {
    let targets = target_tables(client, options).await?;
    let versions = target_bookkeeping(client, &options.schema, &targets, options).await?;
    let mut reported = compare_versions(snapshot, schema, &versions, options)?;
    reported.extend(schema.virtual_tables.iter().map(|v| ReportedObject {
        kind: "virtual table".into(),
        name: v.name.clone(),
        note: "not copied (SQLite module)".into(),
        sql: None,
    }));
    let tables = plan_tables(snapshot, schema, &targets, options, &mut reported)?;
    Ok(Plan {
        target_schema: options.schema.clone(),
        tables,
        views: Vec::new(),
        reported,
        policy: options.policy,
    })
}

/// Compare a SQLite file with tables it was loaded into (`verify --into-existing`).
pub async fn verify_existing(
    source_label: &str,
    snapshot: SourceSnapshot,
    schema: SourceSchema,
    target_config: &ConnConfig,
    options: &ExistingOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<MigrationReport, MigrateError> {
    let started = std::time::Instant::now();
    let client = target::connect(target_config).await?;
    let plan = Arc::new(plan_into_existing(&client, &snapshot, &schema, options).await?);
    let readers = pgharbor_sqlite::source::readers(&snapshot, options.jobs.max(1))?;
    let verifications = verify::verify_all(target_config, &plan, readers, progress, cancel)
        .await
        .map_err(saying("interrupted during verification"))?;
    let loaded = vec![UnitResult::default(); plan.tables.len()];
    let outcome = crate::finish::FinishOutcome::default();
    Ok(build_report(
        source_label,
        target_config,
        &plan,
        &loaded,
        Some(verifications),
        outcome,
        started,
    ))
}

/// Load a SQLite file into the application's own schema.
pub async fn migrate_into_existing(
    source_label: &str,
    snapshot: SourceSnapshot,
    schema: SourceSchema,
    target_config: &ConnConfig,
    options: &ExistingOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<MigrationReport, MigrateError> {
    let client = target::connect(target_config).await?;
    let plan = Arc::new(plan_into_existing(&client, &snapshot, &schema, options).await?);
    drop(client);
    let mut source = SqliteSource::new(snapshot, plan.clone());
    let mut landing = ExistingTables::new(plan, options);
    let run_options = RunOptions {
        jobs: options.jobs,
        verify: options.verify,
        create_database: false,
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
