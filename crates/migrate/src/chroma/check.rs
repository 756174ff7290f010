//! Proof for a Chroma migration, per collection: row count and content
//! checksum on both sides, and the exact top 10 of the collection's query
//! vectors as the source ranks them, for the exact-neighbour check
//! ([`super::neighbours`]) and the index's recall ([`super::recall`]).
//!
//! The source side is gathered while the load reads the store
//! ([`SourceTally`], watching the store's row source as its
//! [`RecordObserver`]; the query items are picked from the store by
//! `pgharbor_chroma::query_items`), so verification reads only the target;
//! the source is read again only to name the rows of a collection that
//! differs.

use super::layout::{ChromaPlan, CollectionTarget};
use super::neighbours::{self, dot, round_to_half, ExactCheck, Query, TopK, SAMPLE_LIMIT};
use crate::error::{MigrateError, MigrateErrorKind};
use crate::load::row_key;
use pgharbor_chroma::row_source::{ChromaReader, PartObserver, RecordObserver};
use pgharbor_chroma::Record;
use pgharbor_core::cell::Cell;
use pgharbor_core::plan::{TablePlan, ValuePolicy};
use pgharbor_core::report::TableVerification;
use pgharbor_core::schema::PgType;
use pgharbor_pgwriter::pgvector::Distance;
use pgharbor_source::SourceError;
use pgharbor_verify::digest::{target_digest, RowFilter};
use pgharbor_verify::{RowHasher, RowMultiset, TableDigest};
use std::sync::{Arc, Mutex};
use tokio_postgres::Client;

/// The source side of one collection: the digest of its rows as the load
/// encodes them, and the exact neighbours of its queries.
#[derive(Debug, Default)]
pub struct SourceSide {
    digest: TableDigest,
    exact: Vec<TopK>,
}

impl SourceSide {
    fn new(queries: usize) -> Self {
        SourceSide {
            digest: TableDigest::default(),
            exact: vec![TopK::default(); queries],
        }
    }

    /// Count item `id` with vector `embedding` (as the target stores it),
    /// whose row hashed to `hash`.
    fn add(&mut self, hash: u128, id: &str, embedding: &[f32], queries: &[Query], kind: Distance) {
        self.digest.add(hash);
        if queries.is_empty() {
            return;
        }
        let norm = dot(embedding, embedding).sqrt();
        for (query, top) in queries.iter().zip(&mut self.exact) {
            let d = neighbours::distance(query, embedding, norm, kind);
            if !d.is_nan() {
                top.offer(d, id);
            }
        }
    }

    /// Combine with the side of another part of the same collection.
    fn merge(&mut self, other: SourceSide) {
        self.digest.merge(other.digest);
        for (top, part) in self.exact.iter_mut().zip(other.exact) {
            top.merge(part);
        }
    }
}

/// The source sides of every collection, filled in by the load's readers as
/// they read each part of a collection (the run's [`RecordObserver`]).
pub struct SourceTally {
    queries: Vec<Arc<Vec<Query>>>,
    distances: Vec<Distance>,
    half: Vec<bool>,
    policy: ValuePolicy,
    sides: Vec<Mutex<SourceSide>>,
}

impl SourceTally {
    /// An empty tally; `queries[c]` are collection `c`'s queries.
    pub fn new(plan: &ChromaPlan, queries: Vec<Vec<Query>>) -> Self {
        SourceTally {
            sides: queries
                .iter()
                .map(|q| Mutex::new(SourceSide::new(q.len())))
                .collect(),
            queries: queries.into_iter().map(Arc::new).collect(),
            distances: plan.targets.iter().map(|t| t.distance).collect(),
            half: (0..plan.targets.len())
                .map(|c| holds_half(plan, c))
                .collect(),
            policy: plan.plan.policy,
        }
    }

    /// Collection `c`'s source side and its queries, once the load is done.
    pub fn take(&self, c: usize) -> (SourceSide, Arc<Vec<Query>>) {
        let side = std::mem::take(&mut *self.sides[c].lock().expect("tally lock"));
        (side, self.queries[c].clone())
    }
}

impl RecordObserver for SourceTally {
    fn part<'a>(&'a self, table: &TablePlan, collection: usize) -> Box<dyn PartObserver + 'a> {
        Box::new(PartTally {
            tally: self,
            collection,
            hasher: RowHasher::new(
                table.spec.columns.iter().map(|c| c.pg_type).collect(),
                self.policy,
            ),
            side: SourceSide::new(self.queries[collection].len()),
            rounded: Vec::new(),
        })
    }
}

/// One part of a collection being tallied on a reader thread; added to the
/// collection's side when it is read.
struct PartTally<'a> {
    tally: &'a SourceTally,
    collection: usize,
    hasher: RowHasher,
    side: SourceSide,
    rounded: Vec<f32>,
}

impl PartObserver for PartTally<'_> {
    fn row(
        &mut self,
        table: &TablePlan,
        record: &Record<'_>,
        cells: &[Cell<'_>],
    ) -> Result<(), SourceError> {
        let hash = hash_row(&mut self.hasher, table, record, cells)?;
        let c = self.collection;
        let embedding = if self.tally.half[c] {
            self.rounded.clear();
            let rounded = record.embedding.iter().map(|v| round_to_half(*v));
            self.rounded.extend(rounded);
            &self.rounded
        } else {
            record.embedding
        };
        self.side.add(
            hash,
            record.id,
            embedding,
            &self.tally.queries[c],
            self.tally.distances[c],
        );
        Ok(())
    }

    fn finish(self: Box<Self>) {
        self.tally.sides[self.collection]
            .lock()
            .expect("tally lock")
            .merge(self.side);
    }
}

/// The collection's vectors are stored as `halfvec`.
pub fn holds_half(plan: &ChromaPlan, collection: usize) -> bool {
    let table = &plan.plan.tables[plan.targets[collection].table];
    matches!(table.spec.columns[1].pg_type, PgType::HalfVec(_))
}

/// Hash a source row as the load encoded it; an error names the row and column.
fn hash_row(
    hasher: &mut RowHasher,
    table: &TablePlan,
    record: &Record<'_>,
    cells: &[Cell<'_>],
) -> Result<u128, MigrateError> {
    hasher.hash_cells(cells).map_err(|e| {
        MigrateError::new(
            MigrateErrorKind::Conversion,
            format!(
                "collection {:?}, {}, column {:?}: {}",
                table.source_name,
                row_key(table, Some(record.rowid), cells),
                table.spec.columns[e.column].name,
                e.reason
            ),
        )
    })
}

/// Count one collection's source rows by hash, keyed for naming them: read
/// again only when the collection's checksums differ.
fn source_multiset(
    reader: &mut ChromaReader,
    plan: &ChromaPlan,
    collection: usize,
) -> Result<RowMultiset, MigrateError> {
    let target = &plan.targets[collection];
    let table = &plan.plan.tables[target.table];
    let mut hasher = RowHasher::new(
        table.spec.columns.iter().map(|c| c.pg_type).collect(),
        plan.plan.policy,
    );
    let mut multiset = RowMultiset::default();
    let Some((first, last)) = reader.collection(collection).rowid_bounds else {
        return Ok(multiset);
    };
    reader.read_collection(collection, first, last, &mut |record, cells| {
        let hash = hash_row(&mut hasher, table, record, cells)?;
        multiset.add_source(hash, || row_key(table, Some(record.rowid), cells));
        Ok(())
    })?;
    Ok(multiset)
}

/// Everything checked for one collection.
pub struct CollectionCheck {
    /// Counts and checksums.
    pub verification: TableVerification,
    /// PostgreSQL's exact top 10 of each query against the source's.
    pub exact_neighbours: ExactCheck,
    /// The source's exact top 10 per query (kept for the recall check).
    pub exact: Vec<TopK>,
}

impl CollectionCheck {
    /// Counts, checksums and exact neighbours all agree.
    pub fn proved(&self) -> bool {
        self.verification.matches && self.exact_neighbours.ok
    }
}

/// The reader that reads a collection again when its checksums differ (to
/// name the differing rows): one for the whole run, lent to one check at a
/// time, so the run's other readers stay with its workers.
pub struct SpareReader(tokio::sync::Mutex<Option<ChromaReader>>);

impl SpareReader {
    /// Lend `reader`.
    pub fn new(reader: ChromaReader) -> Self {
        SpareReader(tokio::sync::Mutex::new(Some(reader)))
    }

    /// Count `collection`'s source rows by hash on the spare reader's thread.
    async fn multiset(
        &self,
        plan: Arc<ChromaPlan>,
        collection: usize,
    ) -> Result<RowMultiset, MigrateError> {
        let mut lent = self.0.lock().await;
        let mut reader = lent.take().expect("the spare reader is back");
        let (back, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = source_multiset(&mut reader, &plan, collection);
            (reader, outcome)
        })
        .await
        .expect("verify reader thread");
        *lent = Some(back);
        outcome
    }
}

/// Verify one collection: its source side (tallied during the load) against
/// the target's digest through `client`, and the exact neighbours of its
/// `queries`; when the digests differ, the source is read again on `spare`
/// to name the differing rows.
pub async fn verify_collection(
    client: &Client,
    spare: &SpareReader,
    plan: Arc<ChromaPlan>,
    collection: usize,
    (source, queries): (SourceSide, &[Query]),
) -> Result<CollectionCheck, MigrateError> {
    let target = &plan.targets[collection];
    let (columns, hasher, filter_value) = target_view(&plan, target);
    let filter = filter_of(target, filter_value.as_deref());
    let table = &plan.rows_of(target.table);
    let digest = target_digest(client, table, &columns, &hasher, filter, None).await?;
    let exact_neighbours =
        neighbours::exact_neighbours(client, &plan, collection, queries, &source.exact).await?;
    let mut verification = TableVerification {
        source_rows: source.digest.rows,
        target_rows: digest.rows,
        source_checksum: source.digest.hex(),
        target_checksum: digest.hex(),
        matches: source.digest == digest,
        sample_differences: Vec::new(),
    };
    if !verification.matches {
        let mut multiset = spare.multiset(plan.clone(), collection).await?;
        let keys = key_columns(&plan, target);
        target_digest(
            client,
            table,
            &columns,
            &hasher,
            filter,
            Some((&mut multiset, &keys)),
        )
        .await?;
        verification.sample_differences = multiset.differences(SAMPLE_LIMIT);
    }
    Ok(CollectionCheck {
        verification,
        exact_neighbours,
        exact: source.exact,
    })
}

fn key_columns(plan: &ChromaPlan, target: &CollectionTarget) -> Vec<usize> {
    match &plan.plan.tables[target.table].row_key {
        pgharbor_core::plan::RowKey::Columns(c) => c.clone(),
        pgharbor_core::plan::RowKey::Rowid => Vec::new(),
    }
}

fn target_view(
    plan: &ChromaPlan,
    target: &CollectionTarget,
) -> (Vec<String>, RowHasher, Option<String>) {
    let table = &plan.plan.tables[target.table];
    let columns = table.spec.columns.iter().map(|c| c.name.clone()).collect();
    let hasher = RowHasher::new(
        table.spec.columns.iter().map(|c| c.pg_type).collect(),
        plan.plan.policy,
    );
    (columns, hasher, target.shared_name.clone())
}

fn filter_of<'a>(target: &CollectionTarget, value: Option<&'a str>) -> RowFilter<'a> {
    match (target.shared_name.is_some(), value) {
        (true, Some(value)) => RowFilter::Equals {
            column: "collection_name",
            value,
        },
        _ => RowFilter::All,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chroma::neighbours::K;

    #[test]
    fn parts_of_a_collection_add_up_to_the_whole() {
        let queries = vec![
            Query::new("a", &[0.0, 0.0], false),
            Query::new("b", &[30.0, 30.0], false),
        ];
        let ids: Vec<String> = (0..40).map(|i| format!("id{i}")).collect();
        let vectors: Vec<[f32; 2]> = (0..40).map(|i| [i as f32, (i * 7 % 13) as f32]).collect();
        let hash =
            |i: usize| (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834);
        let mut whole = SourceSide::new(queries.len());
        for i in 0..40 {
            whole.add(hash(i), &ids[i], &vectors[i], &queries, Distance::L2);
        }
        let mut merged = SourceSide::new(queries.len());
        for part in [0..13, 13..29, 29..40] {
            let mut side = SourceSide::new(queries.len());
            for i in part {
                side.add(hash(i), &ids[i], &vectors[i], &queries, Distance::L2);
            }
            merged.merge(side);
        }
        assert_eq!(merged.digest, whole.digest);
        assert_eq!(merged.digest.rows, 40);
        assert_eq!(merged.exact, whole.exact);
        assert!(merged.exact.iter().all(|top| top.len() == K));
        assert_ne!(merged.exact[0], merged.exact[1]);
    }
}
