//! The dump's post-data, table by table: finishing each table as soon as its
//! rows are in, while other tables are still copying: its indexes and keys
//! (`pg_dump`'s post-data entries of the table), the read-back for
//! verification, and `ANALYZE` — on `--jobs` connections of their own, as pgcopydb does. Foreign
//! keys and the rest of the post-data wait for every table.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::postgres::catalog::SourceTable;
use crate::postgres::dump::Entry;
use crate::postgres::readback::target_digest;
use crate::postgres::schema::{apply_entry, index_or_key_table, MAINTENANCE_SETTINGS};
use crate::postgres::{target_error, Session};
use crate::stop::Crew;
use pgharbor_conn::ConnConfig;
use pgharbor_verify::TableDigest;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Post-data entries that belong to one table (indexes and keys), by table.
pub type EntriesByTable = HashMap<usize, Vec<(i32, Entry)>>;

/// Group the indexes and keys of `entries` (skipping those `done`) by the
/// table they are built on; entries on other relations (partitioned parents,
/// materialized views) stay for the final waves.
pub fn entries_by_table(
    tables: &[SourceTable],
    entries: &[Entry],
    done: &HashSet<i32>,
) -> EntriesByTable {
    let index: HashMap<(&str, &str), usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.name.schema.as_str(), t.name.name.as_str()), i))
        .collect();
    let mut by_table = EntriesByTable::new();
    for (position, entry) in entries.iter().enumerate() {
        let position = position as i32;
        if done.contains(&position) {
            continue;
        }
        let Some((schema, name)) = index_or_key_table(entry) else {
            continue;
        };
        if let Some(&table) = index.get(&(schema.as_str(), name.as_str())) {
            by_table
                .entry(table)
                .or_default()
                .push((position, entry.clone()));
        }
    }
    by_table
}

/// What the finishers did: target digests per table (when verifying) and
/// the post-data entries they applied.
#[derive(Debug, Default)]
pub struct Finished {
    /// Target digest per table index.
    pub digests: BTreeMap<usize, TableDigest>,
    /// Post-data entries applied.
    pub entries_done: HashSet<i32>,
}

/// Start `jobs` finishers in `crew`; each table index received on `loaded`
/// gets its entries applied, its digest read back (unless `skip_verify`)
/// and is analyzed. The returned task ends when `loaded` is closed and
/// drained, or the crew stops.
pub(crate) fn spawn(
    target: &ConnConfig,
    tables: Arc<Vec<SourceTable>>,
    entries: EntriesByTable,
    loaded: mpsc::UnboundedReceiver<usize>,
    jobs: usize,
    skip_verify: bool,
    mut crew: Crew,
) -> tokio::task::JoinHandle<Result<Finished, MigrateError>> {
    let target = target.clone();
    tokio::spawn(async move {
        let loaded = Arc::new(tokio::sync::Mutex::new(loaded));
        let entries = Arc::new(Mutex::new(entries));
        let finished = Arc::new(Mutex::new(Finished::default()));
        for _ in 0..jobs.max(1) {
            let (client, stoppable) = Session::target_only().connect_target(&target).await?;
            let worker = Finisher {
                client,
                tables: Arc::clone(&tables),
                entries: Arc::clone(&entries),
                finished: Arc::clone(&finished),
                skip_verify,
            };
            crew.spawn(vec![stoppable], worker.run(Arc::clone(&loaded)));
        }
        crew.join(MigrateErrorKind::Write, "finishing").await?;
        let finished = std::mem::take(&mut *finished.lock().expect("finished"));
        Ok(finished)
    })
}

struct Finisher {
    client: tokio_postgres::Client,
    tables: Arc<Vec<SourceTable>>,
    entries: Arc<Mutex<EntriesByTable>>,
    finished: Arc<Mutex<Finished>>,
    skip_verify: bool,
}

impl Finisher {
    async fn run(
        mut self,
        loaded: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<usize>>>,
    ) -> Result<(), MigrateError> {
        self.client
            .batch_execute(MAINTENANCE_SETTINGS)
            .await
            .map_err(target_error("preparing to build indexes"))?;
        loop {
            let next = loaded.lock().await.recv().await;
            let Some(table) = next else {
                return Ok(());
            };
            self.finish_table(table).await?;
        }
    }

    async fn finish_table(&mut self, index: usize) -> Result<(), MigrateError> {
        let entries = self
            .entries
            .lock()
            .expect("entries")
            .remove(&index)
            .unwrap_or_default();
        for (position, entry) in &entries {
            apply_entry(&mut self.client, *position, entry).await?;
            self.finished
                .lock()
                .expect("finished")
                .entries_done
                .insert(*position);
        }
        let table = &self.tables[index];
        if !self.skip_verify {
            let digest = target_digest(&self.client, table).await?;
            self.finished
                .lock()
                .expect("finished")
                .digests
                .insert(index, digest);
        }
        self.client
            .batch_execute(&format!("ANALYZE {}", table.name))
            .await
            .map_err(target_error(format!("analyzing {}", table.name)))
    }
}
