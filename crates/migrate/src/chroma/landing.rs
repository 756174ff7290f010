//! The landing of a Chroma move: what the run does to the target around the
//! rows, and the steps the move adds to the run's one schedule.
//!
//! Before the loads it makes room for the plan's tables ([`make_room`]) on
//! a session of its own, which holds the record of the tables it creates
//! (or of the encrypted load's staging table) until the build closes it.
//! Its steps build the tables ([`super::build`]) and prove every collection
//! ([`super::proof`]); its report is the Chroma report
//! ([`super::report`]). A run that fails before every row is in is undone:
//! the tables it created dropped, or the rows it added to Open WebUI's
//! shared `document_chunk` deleted (other collections' rows stay); once
//! every row is in, the tables are the user's and a failure keeps them.

use super::build::{Build, BuildState};
use super::layout::ChromaPlan;
use super::options::ChromaOptions;
use super::preparation::{clean_up_after_failure, make_room};
use super::proof::Proof;
use super::report::{report, ChromaReport, Findings};
use crate::created::Committed;
use crate::error::MigrateError;
use crate::finish::FinishOutcome;
use crate::load::WorkUnit;
use crate::progress::Progress;
use crate::run::Landing;
use crate::schedule::{Schedule, Stage};
use pgharbor_chroma::row_source::{Feeds, SharedStore};
use pgharbor_conn::ConnConfig;
use pgharbor_core::report::MigrationReport;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_postgres::Client;

/// The landing of a Chroma move.
pub struct ChromaLanding {
    config: ConnConfig,
    options: ChromaOptions,
    plan: Arc<ChromaPlan>,
    store: SharedStore,
    feeds: Arc<Feeds>,
    proof: Option<Proof>,
    committed: Committed,
    record: Option<Arc<Client>>,
    state: Arc<BuildState>,
    index_sql: Vec<String>,
}

impl ChromaLanding {
    /// Land `plan`'s tables, fed from `store` as `feeds` says, in `config`'s
    /// database; with `proof`, prove every collection.
    pub fn new(
        config: &ConnConfig,
        options: &ChromaOptions,
        plan: Arc<ChromaPlan>,
        (store, feeds): (SharedStore, Arc<Feeds>),
        proof: Option<Proof>,
    ) -> Self {
        ChromaLanding {
            config: config.clone(),
            options: options.clone(),
            plan,
            store,
            feeds,
            proof,
            committed: Committed::default(),
            record: None,
            state: Arc::default(),
            index_sql: Vec::new(),
        }
    }
}

impl Landing for ChromaLanding {
    type Report = ChromaReport;

    async fn prepare(
        &mut self,
        _client: &Client,
        _database_created: bool,
        units: Vec<WorkUnit>,
        schedule: &mut Schedule,
        progress: Arc<dyn Progress>,
    ) -> Result<Arc<dyn Progress>, MigrateError> {
        let record = Arc::new(crate::target::connect(&self.config).await?);
        self.record = Some(record.clone());
        let (plan, committed) = (&self.plan, &self.committed);
        let text_sql = match make_room(&record, plan, &self.options, committed).await {
            Ok(sql) => sql,
            // No row of this run is in a shared table yet: none to delete.
            Err(err) => {
                return Err(clean_up_after_failure(
                    &record,
                    &self.config,
                    plan,
                    committed,
                    &[],
                    err,
                )
                .await)
            }
        };
        for unit in units {
            schedule.load(unit, Vec::new());
        }
        let build = Build {
            plan: plan.clone(),
            store: self.store.clone(),
            record,
            collections: self
                .feeds
                .collections
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            progress: progress.clone(),
            state: self.state.clone(),
            jobs: self.options.jobs.max(1),
            verifying: self.proof.is_some(),
        };
        let built = build.schedule(schedule);
        if let Some(proof) = &self.proof {
            proof.schedule(schedule, &built.settled, &built.indexed);
        }
        self.index_sql = text_sql;
        self.index_sql.extend(built.sql);
        Ok(progress)
    }

    async fn close(&mut self, _client: &Client) -> Result<FinishOutcome, MigrateError> {
        Ok(FinishOutcome::default())
    }

    async fn fail(&mut self, _client: &Client, err: MigrateError, stage: Stage) -> MigrateError {
        if stage != Stage::Load {
            return err;
        }
        let record = self.record.as_ref().expect("the landing was prepared");
        let collections = &self.feeds.collections;
        clean_up_after_failure(
            record,
            &self.config,
            &self.plan,
            &self.committed,
            collections,
            err,
        )
        .await
    }

    fn interrupted(&self, stage: Stage) -> &'static str {
        match stage {
            Stage::Load if self.state.encrypting.load(Ordering::Relaxed) => "interrupted while encrypting",
            Stage::Load => "interrupted while loading",
            Stage::Finish if self.state.keys_left.load(Ordering::Relaxed) > 0 => {
                "interrupted after the load: every row is in, but keys or indexes may be missing; run again with --drop-existing (or --truncate)"
            }
            Stage::Finish => {
                "interrupted while building the vector index: the data is complete; build the index by hand or let Open WebUI build it on its next start"
            }
            Stage::Verify => "interrupted during verification: the migration itself is complete",
        }
    }

    fn report(&mut self, mut migration: MigrationReport) -> ChromaReport {
        // The load wrote an encrypted document_chunk's rows through a
        // staging table: the report names where they are.
        for (table, planned) in migration.tables.iter_mut().zip(&self.plan.plan.tables) {
            table.target = planned.spec.name.to_string();
        }
        let findings = self
            .proof
            .as_ref()
            .map_or_else(Findings::default, Proof::findings);
        let indexes = std::mem::take(&mut self.index_sql);
        report(
            migration,
            &self.plan,
            &self.feeds,
            indexes,
            findings,
            self.options.verify,
        )
    }
}
