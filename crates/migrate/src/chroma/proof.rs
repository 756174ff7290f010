//! The steps that prove a Chroma move, per collection, on the run's workers:
//! its check (counts and checksums against the source side tallied while
//! the store was read, and the exact top 10 of its queries, see
//! [`super::check`]) once its table's rows are final, overlapping the other
//! tables' loads and index builds; then its vector index's recall
//! ([`super::recall`]) once the table is indexed and analysed (so
//! PostgreSQL plans the searches as it will for the application) and every
//! collection sharing the table is checked (the sweep's budget counts the
//! table's rows).

use super::build::add_step;
use super::check::{self, CollectionCheck, SourceTally, SpareReader};
use super::layout::ChromaPlan;
use super::neighbours::{Query, TopK};
use super::options::RecallOptions;
use super::recall::{self, RecallReport, Searches};
use super::report::Findings;
use crate::error::MigrateError;
use crate::schedule::{Schedule, Stage, StepId};
use pgharbor_chroma::query_items::pick_query_items;
use pgharbor_chroma::row_source::{ChromaReader, Feeds};
use pgharbor_chroma::Store;
use pgharbor_pgwriter::pgvector::Version;
use std::sync::{Arc, Mutex};
use tokio_postgres::Client;

/// What the proof steps work with.
pub struct Proof {
    /// The plan (where verification reads each collection's rows).
    pub plan: Arc<ChromaPlan>,
    /// The source side of every collection.
    pub tally: Arc<SourceTally>,
    /// The reader naming the rows of a collection that differs.
    pub spare: Arc<SpareReader>,
    /// The recall check's settings.
    pub recall: RecallOptions,
    /// The target's pgvector.
    pub pgvector: Version,
    /// The target database (named in the suggested settings).
    pub database: String,
    /// What the steps found.
    pub found: Arc<Mutex<Found>>,
}

/// What the proof steps found, per collection.
#[derive(Default)]
pub struct Found {
    checks: Vec<Option<(CollectionCheck, Arc<Vec<Query>>)>>,
    recalls: Vec<Option<RecallReport>>,
}

impl Proof {
    /// Add a check and a recall step per collection to `schedule`: checks
    /// once `settled[t]` (their table `t`'s rows are final), recalls once
    /// `indexed[t]` too.
    pub fn schedule(
        &self,
        schedule: &mut Schedule,
        settled: &[Vec<StepId>],
        indexed: &[Vec<StepId>],
    ) {
        let targets = &self.plan.targets;
        *self.found.lock().expect("proof lock") = Found {
            checks: (0..targets.len()).map(|_| None).collect(),
            recalls: vec![None; targets.len()],
        };
        let checks: Vec<StepId> = (0..targets.len())
            .map(|c| self.check(schedule, c, settled[targets[c].table].clone()))
            .collect();
        for (c, target) in targets.iter().enumerate() {
            let mut needs = indexed[target.table].clone();
            needs.extend(
                (0..targets.len())
                    .filter(|other| targets[*other].table == target.table)
                    .map(|other| checks[other]),
            );
            self.recall(schedule, c, needs);
        }
    }

    fn check(&self, schedule: &mut Schedule, c: usize, needs: Vec<StepId>) -> StepId {
        let (plan, tally) = (self.plan.clone(), self.tally.clone());
        let (spare, found) = (self.spare.clone(), self.found.clone());
        let event = Some((plan.targets[c].table, "verified"));
        add_step(
            schedule,
            Stage::Verify,
            needs,
            event,
            move |client| async move {
                if let Some(encryption) = &plan.encryption {
                    encryption.decrypting_session(&client).await?;
                }
                let (side, queries) = tally.take(c);
                let checked =
                    check::verify_collection(&client, &spare, plan, c, (side, &queries)).await?;
                found.lock().expect("proof lock").checks[c] = Some((checked, queries));
                Ok(())
            },
        )
    }

    fn recall(&self, schedule: &mut Schedule, c: usize, needs: Vec<StepId>) -> StepId {
        let plan = self.plan.clone();
        let (found, options) = (self.found.clone(), self.recall.clone());
        let (pgvector, database) = (self.pgvector, self.database.clone());
        let event = Some((plan.targets[c].table, "recall"));
        add_step(
            schedule,
            Stage::Verify,
            needs,
            event,
            move |client| async move {
                let Some(asked) = found.lock().expect("proof lock").asked(&plan, c) else {
                    return Ok(());
                };
                let report =
                    collection_recall(&client, &plan, c, asked, (pgvector, &options), &database)
                        .await?;
                found.lock().expect("proof lock").recalls[c] = report;
                Ok(())
            },
        )
    }

    /// What the steps found, once every one is done.
    pub fn findings(&self) -> Findings {
        let found = std::mem::take(&mut *self.found.lock().expect("proof lock"));
        let reports: Vec<&RecallReport> = found.recalls.iter().flatten().collect();
        let settings = recall::database_suggestions(&self.database, &reports);
        Findings {
            checks: found
                .checks
                .into_iter()
                .map(|c| c.map(|(check, _)| check))
                .collect(),
            recalls: found.recalls,
            settings,
        }
    }
}

/// A checked collection's queries and their exact top 10, and the rows of
/// its table and of the collection (the recall sweep's budget).
struct Asked {
    queries: Arc<Vec<Query>>,
    exact: Vec<TopK>,
    rows: (u64, u64),
}

impl Found {
    /// What collection `c`'s recall check asks, once it and the collections
    /// sharing its table are checked; `None` without queries.
    fn asked(&self, plan: &ChromaPlan, c: usize) -> Option<Asked> {
        let (check, queries) = self.checks[c].as_ref()?;
        if queries.is_empty() {
            return None;
        }
        let table = plan.targets[c].table;
        let table_rows = (0..plan.targets.len())
            .filter(|other| plan.targets[*other].table == table)
            .filter_map(|other| self.checks[other].as_ref())
            .map(|(check, _)| check.verification.target_rows)
            .sum();
        Some(Asked {
            queries: queries.clone(),
            exact: check.exact.clone(),
            rows: (table_rows, check.verification.target_rows),
        })
    }
}

/// Collection `c`'s recall through its table's vector index, `None` when
/// the table has none.
async fn collection_recall(
    client: &Client,
    plan: &ChromaPlan,
    c: usize,
    asked: Asked,
    (pgvector, options): (Version, &RecallOptions),
    database: &str,
) -> Result<Option<RecallReport>, MigrateError> {
    let table = &plan.plan.tables[plan.targets[c].table].spec.name;
    let Some(index) = recall::vector_index(client, table).await? else {
        return Ok(None);
    };
    let searches = Searches {
        index: &index,
        rows: asked.rows,
        pgvector,
        options,
    };
    let pairs: Vec<_> = asked.queries.iter().zip(&asked.exact).collect();
    let report = recall::collection_recall(client, plan, c, &pairs, &searches, database).await?;
    Ok(Some(report))
}

/// Pick the queries of every collection (short reads spread over it) and
/// make the tally the loads' readers fill in with them.
pub async fn source_tally(
    store: &Store,
    feeds: &Arc<Feeds>,
    plan: &Arc<ChromaPlan>,
    wanted: usize,
) -> Result<SourceTally, MigrateError> {
    let mut reader = ChromaReader::new(store.reader()?, feeds.clone());
    let (feeds, plan) = (feeds.clone(), plan.clone());
    tokio::task::spawn_blocking(move || {
        let queries = (0..feeds.collections.len())
            .map(|c| {
                let half = check::holds_half(&plan, c);
                pick_query_items(&mut reader, c, wanted, &mut |record| {
                    Query::new(record.id, record.embedding, half)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SourceTally::new(&plan, queries))
    })
    .await
    .expect("query picker thread")
}
