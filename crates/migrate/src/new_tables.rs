//! Landing in tables the run creates (`migrate` without `--into-existing`).
//!
//! The target is checked (tables the plan would create must not exist,
//! unless `--drop-existing`), the tables an earlier failed run left are
//! removed, and every table is created and recorded ([`crate::created`]) in
//! the transaction of its first rows: a whole table by its one load unit
//! (whose COPY then writes the rows frozen), a table split into ranges
//! before the loads begin. Keys, indexes, foreign keys,
//! sequences, views and statistics follow table by table ([`crate::finish`]).
//! A run that fails before every table is built drops exactly the recorded
//! tables; once they are built the record is removed and they are the user's.

use crate::created::{self, CommitTracking, Committed};
use crate::error::MigrateError;
use crate::finish::{self, FinishOutcome, Finishing};
use crate::load::{UnitRange, WorkUnit};
use crate::progress::Progress;
use crate::run::Landing;
use crate::schedule::{Schedule, Stage};
use crate::target;
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::Plan;
use pgharbor_core::report::MigrationReport;
use pgharbor_core::schema::{QualifiedName, TableSpec};
use pgharbor_pgwriter::{ddl, WriteError};
use std::sync::Arc;
use tokio_postgres::Client;

/// The landing of a schema-creating run.
pub struct NewTables {
    plan: Arc<Plan>,
    config: ConnConfig,
    drop_existing: bool,
    database_created: bool,
    committed: Arc<Committed>,
    finishing: Arc<Finishing>,
}

impl NewTables {
    /// Land `plan`'s tables in `config`'s database; with `drop_existing`,
    /// replace tables and views of the same names.
    pub fn new(plan: Arc<Plan>, config: &ConnConfig, drop_existing: bool) -> Self {
        NewTables {
            plan,
            config: config.clone(),
            drop_existing,
            database_created: false,
            committed: Arc::default(),
            finishing: Arc::default(),
        }
    }

    /// Make room for the plan's tables and views, or refuse.
    async fn make_room(
        &self,
        client: &Client,
        progress: &dyn Progress,
    ) -> Result<(), MigrateError> {
        let plan = &self.plan;
        created::remove_leftovers(client, progress).await?;
        let mut names: Vec<String> = plan
            .tables
            .iter()
            .map(|t| t.spec.name.name.clone())
            .collect();
        names.extend(plan.views.iter().map(|v| v.name.name.clone()));
        let existing = target::existing_relations(client, &plan.target_schema, &names).await?;
        if !self.drop_existing {
            target::refuse_existing(&existing, &plan.target_schema)?;
        }
        prepare_target(client, plan, &existing).await?;
        created::open(client).await
    }
}

impl Landing for NewTables {
    type Report = MigrationReport;

    async fn prepare(
        &mut self,
        client: &Client,
        database_created: bool,
        units: Vec<WorkUnit>,
        schedule: &mut Schedule,
        progress: Arc<dyn Progress>,
    ) -> Result<Arc<dyn Progress>, MigrateError> {
        self.database_created = database_created;
        self.make_room(client, &*progress).await?;
        let plan = self.plan.clone();
        let mut created_by_load = Vec::new();
        for (i, table) in plan.tables.iter().enumerate() {
            let parts: Vec<WorkUnit> = units.iter().filter(|u| u.table == i).copied().collect();
            if let [whole @ WorkUnit {
                range: UnitRange::WholeTable,
                ..
            }] = parts.as_slice()
            {
                let unit = WorkUnit {
                    creates_table: true,
                    ..*whole
                };
                created_by_load.push((table.source_name.clone(), table.spec.name.clone()));
                schedule.load(unit, Vec::new());
                continue;
            }
            if let Err(err) = create_recorded(client, &table.spec).await {
                return Err(self.fail(client, err, Stage::Load).await);
            }
            self.committed.add(&table.spec.name);
            for unit in parts {
                schedule.load(unit, Vec::new());
            }
        }
        finish::schedule_finish(schedule, &plan, &self.finishing);
        Ok(CommitTracking::new(
            progress,
            self.committed.clone(),
            created_by_load,
        ))
    }

    async fn close(&mut self, client: &Client) -> Result<FinishOutcome, MigrateError> {
        created::close(client).await?;
        Ok(self.finishing.outcome())
    }

    async fn fail(&mut self, client: &Client, err: MigrateError, _stage: Stage) -> MigrateError {
        created::release(client).await;
        created::clean_up_after_failure(&self.config, &self.committed, self.database_created, err)
            .await
    }

    fn interrupted(&self, stage: Stage) -> &'static str {
        match stage {
            Stage::Load => "interrupted while loading",
            Stage::Finish => "interrupted while building keys and indexes",
            Stage::Verify => "interrupted during verification: the migration itself is complete; run `pgharbor verify` to check it",
        }
    }

    fn report(&mut self, migration: MigrationReport) -> MigrationReport {
        migration
    }
}

/// Create `spec`'s table and record it, in one transaction.
async fn create_recorded(client: &Client, spec: &TableSpec) -> Result<(), MigrateError> {
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

/// Create the target schema, and drop what `--drop-existing` replaces.
async fn prepare_target(
    client: &Client,
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
        let qualified = QualifiedName::new(&plan.target_schema, name);
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
