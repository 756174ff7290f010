//! The steps a Chroma move adds to the run's schedule to build its tables,
//! each started as soon as what it needs is done:
//!
//! * once every load is done: the store checked unchanged; then either the
//!   record of the created tables closed (the rows are in: from here on the
//!   tables are the user's), or, for Open WebUI's encrypted
//!   `document_chunk`, the staging table indexed, each collection encrypted
//!   into `document_chunk` (a step each) and the staging table dropped;
//! * once a table's rows are final: its default storage restored and its
//!   full-text indexes' pending lists flushed, then its key and index builds
//!   and vector index builds side by side, then its primary key attached and
//!   its columns analysed.

use super::layout::ChromaPlan;
use super::pgcrypto::Encryption;
use super::preparation::restore_default_storage;
use crate::created;
use crate::error::{pg_error, MigrateError};
use crate::progress::Progress;
use crate::schedule::{Schedule, Stage, StepId};
use pgharbor_chroma::row_source::SharedStore;
use pgharbor_core::schema::{PgType, QualifiedName};
use pgharbor_pgwriter::ddl;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_postgres::Client;

/// How far the build got, for the message of an interrupted run.
#[derive(Debug, Default)]
pub struct BuildState {
    /// The rows are being encrypted into `document_chunk`.
    pub encrypting: AtomicBool,
    /// Key and index builds not done yet.
    pub keys_left: AtomicUsize,
}

/// What the build steps work with.
pub struct Build {
    /// The plan.
    pub plan: Arc<ChromaPlan>,
    /// The store, checked unchanged once it is read.
    pub store: SharedStore,
    /// The session holding the record of the tables this run creates.
    pub record: Arc<Client>,
    /// The names of the collections moved.
    pub collections: Vec<String>,
    /// Where the encryption's phase is announced.
    pub progress: Arc<dyn Progress>,
    /// How far the build got.
    pub state: Arc<BuildState>,
    /// The run's workers.
    pub jobs: usize,
    /// The collections are verified beside the index builds.
    pub verifying: bool,
}

/// The build steps, per plan table.
pub struct Built {
    /// The steps after which a table's rows are final (its checks may run).
    pub settled: Vec<Vec<StepId>>,
    /// The step after which a table is indexed, keyed and analysed.
    pub indexed: Vec<Vec<StepId>>,
    /// The keys', indexes' and vector indexes' SQL, in plan order.
    pub sql: Vec<String>,
}

/// Add `step` to `schedule`: run on a worker's connection once `needs` are
/// done; with `event`, reported done for that table.
pub fn add_step<F, Fut>(
    schedule: &mut Schedule,
    stage: Stage,
    needs: Vec<StepId>,
    event: Option<(usize, &'static str)>,
    step: F,
) -> StepId
where
    F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), MigrateError>> + Send + 'static,
{
    schedule.target_step(stage, needs, event, move |client| Box::pin(step(client)))
}

impl Build {
    /// Add the build steps to `schedule`, whose load steps are in.
    pub fn schedule(&self, schedule: &mut Schedule) -> Built {
        let plan = &self.plan;
        let unchanged = self.store_unchanged(schedule);
        let rows_final = match &plan.encryption {
            Some(encryption) => vec![self.encryption(schedule, encryption, unchanged)],
            None if !plan.reuse_existing => {
                let record = self.record.clone();
                add_step(
                    schedule,
                    Stage::Load,
                    vec![unchanged],
                    None,
                    |_| async move { created::close(&record).await },
                );
                Vec::new()
            }
            None => Vec::new(),
        };
        let mut built = Built {
            settled: Vec::new(),
            indexed: Vec::new(),
            sql: Vec::new(),
        };
        let mut vector_sql = Vec::new();
        let parallel_workers = self.parallel_workers();
        for t in 0..plan.plan.tables.len() {
            let mut ready = schedule.loads_of(t);
            ready.extend(&rows_final);
            let settled = self.settle(schedule, t, ready);
            // The vector index, the slowest build, first: a worker starts it
            // as soon as the table is settled, the keys go beside it.
            let mut needs = settled.clone();
            needs.extend(self.vector_indexes(
                schedule,
                t,
                &settled,
                parallel_workers,
                &mut vector_sql,
            ));
            needs.extend(self.keys(schedule, t, &settled, &mut built.sql));
            built
                .indexed
                .push(vec![self.attach_and_analyze(schedule, t, needs)]);
            built.settled.push(settled);
        }
        built.sql.extend(vector_sql);
        built
    }

    /// Check that the store did not change while the loads read it.
    fn store_unchanged(&self, schedule: &mut Schedule) -> StepId {
        let store = self.store.clone();
        let loads = schedule.all_loads();
        add_step(schedule, Stage::Load, loads, None, |_| async move {
            tokio::task::spawn_blocking(move || {
                store.lock().expect("store lock").check_unchanged()
            })
            .await
            .expect("store check thread")?;
            Ok(())
        })
    }

    /// Encrypt the staged rows into `document_chunk`, one collection per
    /// step, then drop the staging table and close the record; returns the
    /// last step.
    fn encryption(
        &self,
        schedule: &mut Schedule,
        encryption: &Encryption,
        unchanged: StepId,
    ) -> StepId {
        let indexed = {
            let (encryption, progress) = (encryption.clone(), self.progress.clone());
            let state = self.state.clone();
            add_step(
                schedule,
                Stage::Load,
                vec![unchanged],
                None,
                |client| async move {
                    state.encrypting.store(true, Ordering::Relaxed);
                    progress.phase("encrypting into document_chunk (pgp_sym_encrypt)");
                    encryption.index_staging(&client).await
                },
            )
        };
        let encrypted: Vec<StepId> = self
            .collections
            .iter()
            .map(|name| {
                let (encryption, name) = (encryption.clone(), name.clone());
                add_step(
                    schedule,
                    Stage::Load,
                    vec![indexed],
                    None,
                    |client| async move {
                        encryption
                            .encrypt_collection(&client, &name)
                            .await
                            .map(|_| ())
                    },
                )
            })
            .collect();
        let (encryption, record) = (encryption.clone(), self.record.clone());
        let state = self.state.clone();
        add_step(
            schedule,
            Stage::Load,
            encrypted,
            None,
            |client| async move {
                encryption.drop_staging(&client).await?;
                created::close(&record).await?;
                state.encrypting.store(false, Ordering::Relaxed);
                Ok(())
            },
        )
    }

    /// Once table `t`'s rows are in (`ready`): give a created table its
    /// default storage back and flush the full-text indexes' pending lists.
    fn settle(&self, schedule: &mut Schedule, t: usize, ready: Vec<StepId>) -> Vec<StepId> {
        let plan = &self.plan;
        let restore = !plan.reuse_existing;
        let flush = t == 0 && !plan.text_indexes.is_empty();
        if !restore && !flush {
            return ready;
        }
        let plan = plan.clone();
        vec![add_step(
            schedule,
            Stage::Finish,
            ready,
            None,
            move |client| async move {
                if restore {
                    restore_default_storage(&client, &plan.plan.tables[t].spec.name).await?;
                }
                if flush {
                    flush_text_indexes(&client, &plan).await?;
                }
                Ok(())
            },
        )]
    }

    /// Build table `t`'s primary-key index (attached afterwards) and
    /// secondary indexes, a step each; their SQL goes to `sql`.
    fn keys(
        &self,
        schedule: &mut Schedule,
        t: usize,
        settled: &[StepId],
        sql: &mut Vec<String>,
    ) -> Vec<StepId> {
        let spec = &self.plan.plan.tables[t].spec;
        let key = spec
            .primary_key
            .as_ref()
            .map(|pk| ddl::primary_key_index(&spec.name, pk));
        let indexes = spec
            .indexes
            .iter()
            .map(|i| ddl::create_index(&spec.name, i));
        key.into_iter()
            .chain(indexes)
            .map(|statement| {
                sql.push(statement.clone());
                self.state.keys_left.fetch_add(1, Ordering::Relaxed);
                let state = self.state.clone();
                add_step(
                    schedule,
                    Stage::Finish,
                    settled.to_vec(),
                    Some((t, "index")),
                    |client| async move {
                        client
                            .batch_execute(&statement)
                            .await
                            .map_err(pg_error(format!("building an index ({statement})")))?;
                        state.keys_left.fetch_sub(1, Ordering::Relaxed);
                        Ok(())
                    },
                )
            })
            .collect()
    }

    /// The parallel maintenance workers of a vector index build: those of
    /// the cores it has alone. Beside verification the `jobs` cores are
    /// already busy reading the rows back, and workers would only add their
    /// coordination to the work (measured: the steps after the load took
    /// 1.2 s longer with one worker than without).
    fn parallel_workers(&self) -> usize {
        let builds = self
            .plan
            .vector_indexes
            .iter()
            .filter(|ix| !ix.existing)
            .count();
        let builders = self.jobs.min(builds).max(1);
        match self.verifying {
            true => 0,
            false => (self.jobs / builders).saturating_sub(1),
        }
    }

    /// Build table `t`'s vector indexes, a step each, with enough
    /// `maintenance_work_mem` for the graph or lists; their SQL goes to `sql`.
    fn vector_indexes(
        &self,
        schedule: &mut Schedule,
        t: usize,
        settled: &[StepId],
        parallel_workers: usize,
        sql: &mut Vec<String>,
    ) -> Vec<StepId> {
        let plan = &self.plan;
        plan.vector_indexes
            .iter()
            .filter(|ix| ix.table == t && !ix.existing)
            .map(|ix| {
                let (statement, column_type) = plan.vector_index_sql(ix);
                sql.push(statement.clone());
                let memory = memory_for(column_type, plan.plan.tables[t].source_rows);
                let settings = format!(
                    "SET maintenance_work_mem = '{}MB'; SET max_parallel_maintenance_workers = {parallel_workers}",
                    memory >> 20
                );
                add_step(
                    schedule,
                    Stage::Finish,
                    settled.to_vec(),
                    Some((t, "vector index")),
                    |client| async move {
                        client
                            .batch_execute(&settings)
                            .await
                            .map_err(pg_error("setting up the index build"))?;
                        client.batch_execute(&statement).await.map_err(pg_error(format!(
                            "building a vector index ({statement})"
                        )))?;
                        client
                            .batch_execute("RESET maintenance_work_mem; RESET max_parallel_maintenance_workers")
                            .await
                            .map_err(pg_error("ending the index build"))
                    },
                )
            })
            .collect()
    }

    /// Once table `t`'s indexes are built (`needs`): attach its primary key
    /// and analyse its columns (only: the full-text index's expression would
    /// be evaluated over the whole sample again).
    fn attach_and_analyze(&self, schedule: &mut Schedule, t: usize, needs: Vec<StepId>) -> StepId {
        let plan = self.plan.clone();
        add_step(
            schedule,
            Stage::Finish,
            needs,
            Some((t, "statistics")),
            move |client| async move {
                let spec = &plan.plan.tables[t].spec;
                let attach = spec
                    .primary_key
                    .as_ref()
                    .map(|_| ddl::attach_primary_key(&spec.name));
                for sql in attach.into_iter().chain([ddl::analyze_columns(spec)]) {
                    client
                        .batch_execute(&sql)
                        .await
                        .map_err(pg_error(format!("finishing {} ({sql})", spec.name)))?;
                }
                Ok(())
            },
        )
    }
}

/// Move the rows the load left in the full-text indexes' pending lists into
/// the indexes proper, as a build would have them (searches then need not scan
/// the list).
async fn flush_text_indexes(client: &Client, plan: &ChromaPlan) -> Result<(), MigrateError> {
    for index in &plan.text_indexes {
        let name = QualifiedName::new(plan.plan.target_schema.clone(), index.name.clone());
        client
            .execute(
                "SELECT gin_clean_pending_list($1::text::regclass)",
                &[&name.to_string()],
            )
            .await
            .map_err(pg_error(format!("flushing the pending list of {name}")))?;
    }
    Ok(())
}

/// Enough memory for pgvector to build the index in memory (each vector plus
/// graph links), between 64 MB and 1 GB.
fn memory_for(column_type: PgType, rows: u64) -> u64 {
    let vector_bytes = match column_type {
        PgType::HalfVec(d) => u64::from(d) * 2,
        PgType::Vector(d) => u64::from(d) * 4,
        _ => 0,
    };
    ((vector_bytes + 300) * rows * 5 / 4).clamp(64 << 20, 1 << 30)
}
