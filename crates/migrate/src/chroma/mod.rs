//! ChromaDB → PostgreSQL + pgvector, through the shared run
//! ([`crate::run::run`]): the store is read straight from disk by its own
//! crate's row source ([`pgharbor_chroma::row_source::ChromaSource`]),
//! planned into one of two [layouts](layout::Layout), and landed by
//! [`landing::ChromaLanding`], which adds the move's own steps to the run's
//! one schedule: the tables' keys, full-text and vector indexes
//! ([`build`]), and per collection the proof ([`proof`]: counts and
//! checksums, the exact top 10 of stored vectors, see [`check`] and
//! [`neighbours`]) and the vector index's [`recall`], measured and
//! reported ([`report`]).
//!
//! * [`options`]: what a move is told;
//! * [`preparation`]: pgvector, what the target holds, room for the
//!   tables, and the clean-up after a failure;
//! * [`pgcrypto`]: Open WebUI's encrypted `document_chunk`;
//! * [`verify_only`]: the same proof of a move made earlier.

pub mod build;
pub mod check;
pub mod landing;
pub mod layout;
pub mod neighbours;
pub mod options;
pub mod pgcrypto;
pub mod preparation;
pub mod proof;
pub mod recall;
pub mod report;
mod verify_only;

pub use options::{ChromaOptions, IndexChoice, RecallOptions};
pub use pgharbor_chroma::Store;
pub use preparation::prepare;
pub use report::{ChromaReport, CollectionReport};
pub use verify_only::verify_only;

use crate::error::MigrateError;
use crate::progress::Progress;
use crate::run::{run, CancellationToken, RunOptions};
use check::SpareReader;
use landing::ChromaLanding;
use pgharbor_chroma::row_source::{ChromaReader, ChromaSource, Feeds};
use pgharbor_conn::ConnConfig;
use proof::{source_tally, Proof};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Open a store read-only with a reader for each of `jobs` workers, and one
/// more for the checks (naming the rows of a collection that differs).
pub fn open_store(path: &Path, jobs: usize) -> Result<Store, MigrateError> {
    Ok(Store::open(path, jobs.max(1) + 1)?)
}

/// Run a planned Chroma migration: the store as a [`ChromaSource`], the
/// target as a [`ChromaLanding`], through the shared [`run`].
pub async fn migrate(
    source_label: &str,
    store: Store,
    target_config: &ConnConfig,
    options: &ChromaOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<ChromaReport, MigrateError> {
    let (_, plan, facts) = prepare(&store, target_config, options, false).await?;
    let plan = Arc::new(plan);
    let feeds = Arc::new(Feeds::new(
        store.collections(),
        &plan.plan,
        &plan.feeds,
        plan.layout,
    ));
    let load_plan = match &plan.encryption {
        Some(encryption) => encryption.staging_plan(&plan.plan),
        None => plan.plan.clone(),
    };
    let proof = match options.verify {
        true => {
            let tally = source_tally(&store, &feeds, &plan, options.recall.queries).await?;
            let spare = ChromaReader::new(store.reader()?, feeds.clone());
            Some(Proof {
                plan: plan.clone(),
                tally: Arc::new(tally),
                spare: Arc::new(SpareReader::new(spare)),
                recall: options.recall.clone(),
                pgvector: facts.pgvector,
                database: target_config.dbname().to_string(),
                found: Arc::default(),
            })
        }
        false => None,
    };
    let store = Arc::new(Mutex::new(store));
    let mut source = ChromaSource::new(store.clone(), feeds.clone(), Arc::new(load_plan));
    if let Some(proof) = &proof {
        source = source.observed_by(proof.tally.clone());
    }
    let mut landing = ChromaLanding::new(target_config, options, plan, (store, feeds), proof);
    let run_options = RunOptions {
        jobs: options.jobs,
        verify: false,
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
