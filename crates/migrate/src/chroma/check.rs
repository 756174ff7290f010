//! Proof for a Chroma migration, per collection: row count and content
//! checksum on both sides, then a nearest-neighbour check — stored vectors as
//! queries, PostgreSQL's top 10 (through its index, at the chosen
//! `ef_search`/`probes`) against the exact top 10 computed from the source.
//!
//! The source side is gathered while the load reads the store
//! ([`SourceTally`]), so verification reads only the target; the source is
//! read again only to name the rows of a collection that differs.

use super::layout::{ChromaPlan, CollectionTarget};
use super::reader::ChromaUnitReader;
use super::RecallOptions;
use crate::error::{pg_error, MigrateError, MigrateErrorKind};
use crate::load::row_key;
use pgharbor_chroma::Record;
use pgharbor_core::cell::Cell;
use pgharbor_core::plan::{TablePlan, ValuePolicy};
use pgharbor_core::report::TableVerification;
use pgharbor_core::schema::{quote_ident, PgType};
use pgharbor_pgwriter::pgvector::{Distance, VectorParam, Version};
use pgharbor_verify::digest::{target_digest, RowFilter};
use pgharbor_verify::{RowHasher, RowMultiset, TableDigest};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use tokio_postgres::Client;

/// Neighbours compared per query.
pub const K: usize = 10;
/// How many differing items a report names per collection.
const SAMPLE_LIMIT: usize = 10;

/// Nearest-neighbour agreement of one collection.
#[derive(Debug, Clone, Serialize)]
pub struct RecallReport {
    /// Queries run (stored vectors of the collection).
    pub queries: usize,
    /// Mean share of the exact top 10 that PostgreSQL returned.
    pub recall_at_10: f64,
    /// The index searched (`hnsw`, `ivfflat`).
    pub index: String,
    /// The search setting used (`hnsw.ef_search = 40`, `ivfflat.probes = 10`).
    pub setting: String,
    /// At or above the threshold.
    pub passed: bool,
}

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

    /// Count one record whose row hashed to `hash`.
    fn add(&mut self, hash: u128, record: &Record<'_>, queries: &[Query], kind: Distance) {
        self.digest.add(hash);
        if queries.is_empty() {
            return;
        }
        let norm = dot(record.embedding, record.embedding).sqrt();
        for (query, top) in queries.iter().zip(&mut self.exact) {
            let d = distance(query, record.embedding, norm, kind);
            if !d.is_nan() {
                top.offer(d, record.id);
            }
        }
    }

    /// Combine with the side of another part of the same collection.
    fn merge(&mut self, other: SourceSide) {
        self.digest.merge(other.digest);
        for (top, part) in self.exact.iter_mut().zip(other.exact) {
            for (d, id) in part.best {
                top.offer(d, &id);
            }
        }
    }
}

/// The source sides of every collection, filled in by the load's readers as
/// they read each part of a collection (see [`ChromaUnitReader::tallying`]).
pub struct SourceTally {
    queries: Vec<Arc<Vec<Query>>>,
    distances: Vec<Distance>,
    policy: ValuePolicy,
    sides: Vec<Mutex<SourceSide>>,
}

impl SourceTally {
    /// An empty tally; `queries[c]` are collection `c`'s recall queries.
    pub fn new(plan: &ChromaPlan, queries: Vec<Vec<Query>>) -> Self {
        SourceTally {
            sides: queries
                .iter()
                .map(|q| Mutex::new(SourceSide::new(q.len())))
                .collect(),
            queries: queries.into_iter().map(Arc::new).collect(),
            distances: plan.targets.iter().map(|t| t.distance).collect(),
            policy: plan.plan.policy,
        }
    }

    /// A tally of one part of `collection`, read into `table`'s rows.
    pub fn part(&self, table: &TablePlan, collection: usize) -> PartTally<'_> {
        PartTally {
            tally: self,
            collection,
            hasher: RowHasher::new(
                table.spec.columns.iter().map(|c| c.pg_type).collect(),
                self.policy,
            ),
            side: SourceSide::new(self.queries[collection].len()),
        }
    }

    /// Collection `c`'s source side and its queries, once the load is done.
    pub fn take(&self, c: usize) -> (SourceSide, Arc<Vec<Query>>) {
        let side = std::mem::take(&mut *self.sides[c].lock().expect("tally lock"));
        (side, self.queries[c].clone())
    }
}

/// One part of a collection being tallied on a reader thread; added to the
/// collection's side by [`PartTally::finish`].
pub struct PartTally<'a> {
    tally: &'a SourceTally,
    collection: usize,
    hasher: RowHasher,
    side: SourceSide,
}

impl PartTally<'_> {
    /// Count one record and the cells its row received.
    pub fn add(
        &mut self,
        table: &TablePlan,
        record: &Record<'_>,
        cells: &[Cell<'_>],
    ) -> Result<(), MigrateError> {
        let hash = hash_row(&mut self.hasher, table, record, cells)?;
        let c = self.collection;
        self.side.add(
            hash,
            record,
            &self.tally.queries[c],
            self.tally.distances[c],
        );
        Ok(())
    }

    /// Add this part to its collection's side.
    pub fn finish(self) {
        self.tally.sides[self.collection]
            .lock()
            .expect("tally lock")
            .merge(self.side);
    }
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

/// The `K` nearest items seen so far, closest first.
#[derive(Debug, Clone, Default)]
struct TopK {
    best: Vec<(f64, String)>,
}

impl TopK {
    fn offer(&mut self, distance: f64, id: &str) {
        if self.best.len() == K && distance >= self.best[K - 1].0 {
            return;
        }
        let at = self.best.partition_point(|(d, _)| *d <= distance);
        self.best.insert(at, (distance, id.to_string()));
        self.best.truncate(K);
    }

    fn worst(&self) -> Option<f64> {
        self.best.last().map(|(d, _)| *d)
    }
}

/// A query vector with its precomputed norm.
pub struct Query {
    vector: Vec<f32>,
    norm: f64,
}

impl Query {
    fn new(vector: Vec<f32>) -> Self {
        let norm = dot(&vector, &vector).sqrt();
        Query { vector, norm }
    }
}

/// Lanes summed separately so the compiler vectorises the loops; single
/// precision is ample for ranking (results are compared with a tolerance).
const LANES: usize = 8;

fn lanes_sum(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f64 {
    let mut acc = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| term(*x, *y))
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            acc[lane] += term(x[lane], y[lane]);
        }
    }
    f64::from(acc.iter().sum::<f32>() + tail)
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    lanes_sum(a, b, |x, y| x * y)
}

/// The distance pgvector's operator computes.
fn distance(query: &Query, item: &[f32], item_norm: f64, kind: Distance) -> f64 {
    match kind {
        Distance::L2 => lanes_sum(&query.vector, item, |x, y| (x - y) * (x - y)).sqrt(),
        Distance::InnerProduct => -dot(&query.vector, item),
        Distance::Cosine if query.norm == 0.0 || item_norm == 0.0 => f64::NAN,
        Distance::Cosine => 1.0 - dot(&query.vector, item) / (query.norm * item_norm),
    }
}

/// Rowids read around each probe point when picking queries.
const PICK_WINDOW: i64 = 16;

/// Pick up to `count` query vectors spread evenly over the collection: the
/// first item at or after each of `count` evenly spaced rowids (short reads),
/// or every n-th item in one pass when that reads less: the probe windows
/// would cover the whole range anyway, or the collection is too sparse in its
/// rowid range (interleaved with others) for a window to hold an item.
pub fn pick_queries(
    reader: &mut ChromaUnitReader,
    collection: usize,
    bounds: (i64, i64),
    items: u64,
    count: usize,
) -> Result<Vec<Query>, MigrateError> {
    let wanted = (count as u64).min(items).max(1) as usize;
    let (first, last) = bounds;
    let span = last - first + 1;
    let windows_cover_all = span <= wanted as i64 * PICK_WINDOW;
    let windows_mostly_empty = (items as i64).saturating_mul(PICK_WINDOW) < span;
    if !windows_cover_all && !windows_mostly_empty {
        let probed = probe_queries(reader, collection, bounds, wanted)?;
        if probed.len() * 2 >= wanted {
            return Ok(probed);
        }
    }
    let mut queries = Vec::new();
    let stride = (items / wanted as u64).max(1);
    let mut seen = 0u64;
    reader.read_collection(collection, first, last, &mut |record, _| {
        if seen % stride == 0 && queries.len() < wanted {
            queries.push(Query::new(record.embedding.to_vec()));
        }
        seen += 1;
        Ok(())
    })?;
    Ok(queries)
}

/// The first item at or after each of `wanted` evenly spaced rowids.
fn probe_queries(
    reader: &mut ChromaUnitReader,
    collection: usize,
    (first, last): (i64, i64),
    wanted: usize,
) -> Result<Vec<Query>, MigrateError> {
    let span = last - first + 1;
    let mut queries = Vec::new();
    for q in 0..wanted as i64 {
        let at = first + span * q / wanted as i64;
        let mut found = None;
        reader.read_collection(
            collection,
            at,
            (at + PICK_WINDOW - 1).min(last),
            &mut |record, _| {
                found.get_or_insert_with(|| record.embedding.to_vec());
                Ok(())
            },
        )?;
        queries.extend(found.map(Query::new));
    }
    Ok(queries)
}

/// Count one collection's source rows by hash, keyed for naming them: read
/// again only when the collection's checksums differ.
fn source_multiset(
    reader: &mut ChromaUnitReader,
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
    /// Exact top-10 per query (kept for the recall check).
    exact: Vec<TopK>,
}

/// Verify one collection: its source side (tallied during the load) against
/// the target's digest through `client`; when they differ, the source is read
/// again on `reader` to name the differing rows.
pub async fn verify_collection(
    client: &Client,
    reader: ChromaUnitReader,
    plan: Arc<ChromaPlan>,
    collection: usize,
    source: SourceSide,
) -> (ChromaUnitReader, Result<CollectionCheck, MigrateError>) {
    let target = &plan.targets[collection];
    let (columns, hasher, filter_value) = target_view(&plan, target);
    let filter = filter_of(target, filter_value.as_deref());
    let table = &plan.plan.tables[target.table].spec.name;
    let digest = match target_digest(client, table, &columns, &hasher, filter, None).await {
        Ok(d) => d,
        Err(e) => return (reader, Err(e.into())),
    };
    let mut verification = TableVerification {
        source_rows: source.digest.rows,
        target_rows: digest.rows,
        source_checksum: source.digest.hex(),
        target_checksum: digest.hex(),
        matches: source.digest == digest,
        sample_differences: Vec::new(),
    };
    let check = |verification| CollectionCheck {
        verification,
        exact: source.exact,
    };
    if verification.matches {
        return (reader, Ok(check(verification)));
    }
    let (reader, multiset) = run_source_multiset(reader, plan.clone(), collection).await;
    let mut multiset = match multiset {
        Ok(m) => m,
        Err(e) => return (reader, Err(e)),
    };
    let keys = key_columns(&plan, target);
    if let Err(e) = target_digest(
        client,
        table,
        &columns,
        &hasher,
        filter,
        Some((&mut multiset, &keys)),
    )
    .await
    {
        return (reader, Err(e.into()));
    }
    verification.sample_differences = multiset.differences(SAMPLE_LIMIT);
    (reader, Ok(check(verification)))
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

async fn run_source_multiset(
    reader: ChromaUnitReader,
    plan: Arc<ChromaPlan>,
    collection: usize,
) -> (ChromaUnitReader, Result<RowMultiset, MigrateError>) {
    let joined = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let outcome = source_multiset(&mut reader, &plan, collection);
        (reader, outcome)
    })
    .await;
    match joined {
        Ok(pair) => pair,
        Err(e) => panic!("verify reader thread panicked: {e}"),
    }
}

/// Search settings for the recall check.
pub struct SearchSettings<'a> {
    /// The user's recall options.
    pub options: &'a RecallOptions,
    /// The index method searched.
    pub method: &'a str,
    /// The target's pgvector version (iterative scans from 0.8).
    pub pgvector: Version,
}

/// Run the queries on PostgreSQL and compare with the exact neighbours.
pub async fn recall(
    client: &mut Client,
    plan: &ChromaPlan,
    collection: usize,
    queries: &[Query],
    check: &CollectionCheck,
    settings: &SearchSettings<'_>,
) -> Result<RecallReport, MigrateError> {
    let target = &plan.targets[collection];
    let table = &plan.plan.tables[target.table].spec;
    let column = &table.columns[1];
    let dim = match column.pg_type {
        PgType::HalfVec(d) | PgType::Vector(d) => d,
        other => unreachable!("the vector column is {other}"),
    };
    let op = target.distance.operator();
    let col = quote_ident(&column.name);
    let filter = if target.shared_name.is_some() {
        " WHERE collection_name = $2"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {col} {op} $1 FROM {} {filter} ORDER BY {col} {op} $1 LIMIT {K}",
        table.name
    );
    let setting = match settings.method {
        "ivfflat" => format!("ivfflat.probes = {}", settings.options.probes),
        _ => format!("hnsw.ef_search = {}", settings.options.ef_search),
    };
    let tx = client
        .transaction()
        .await
        .map_err(pg_error("starting the recall check"))?;
    // Plan each search for its own values, as the application's literal
    // queries are: a generic plan would pick a plan for an average collection.
    tx.batch_execute(&format!(
        "SET LOCAL {setting}; SET LOCAL plan_cache_mode = force_custom_plan"
    ))
    .await
    .map_err(pg_error("setting the search parameter"))?;
    if target.shared_name.is_some() && settings.pgvector >= (0, 8, 0) {
        tx.batch_execute(&format!(
            "SET LOCAL {}.iterative_scan = relaxed_order",
            settings.method
        ))
        .await
        .map_err(pg_error("enabling iterative index scans"))?;
    }
    let statement = tx
        .prepare(&sql)
        .await
        .map_err(pg_error("preparing the recall query"))?;
    let asked: Vec<(&TopK, VectorParam<'_>)> = queries
        .iter()
        .zip(&check.exact)
        .filter(|(_, exact)| exact.worst().is_some())
        .map(|(query, exact)| {
            let values = query.vector.as_slice();
            (exact, VectorParam { values, dim })
        })
        .collect();
    let searches = asked.iter().map(|(_, vector)| async {
        match &target.shared_name {
            Some(name) => tx.query(&statement, &[vector, name]).await,
            None => tx.query(&statement, &[vector]).await,
        }
    });
    let answers = futures_util::future::try_join_all(searches)
        .await
        .map_err(pg_error(format!("searching {}", table.name)))?;
    let mut total = 0.0;
    for ((exact, _), rows) in asked.iter().zip(&answers) {
        let worst = exact.worst().expect("filtered above");
        let tolerance = 1e-4 * worst.abs().max(1.0);
        let hits = rows
            .iter()
            .filter(|r| r.get::<_, f64>(0) <= worst + tolerance)
            .count()
            .min(exact.best.len());
        total += hits as f64 / exact.best.len() as f64;
    }
    let counted = asked.len();
    tx.commit()
        .await
        .map_err(pg_error("ending the recall check"))?;
    let recall_at_10 = if counted == 0 {
        1.0
    } else {
        total / counted as f64
    };
    Ok(RecallReport {
        queries: counted,
        recall_at_10,
        index: settings.method.to_string(),
        setting,
        passed: recall_at_10 >= settings.options.min_recall,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_closest_in_order() {
        let mut top = TopK::default();
        for i in (0..25).rev() {
            top.offer(f64::from(i), &format!("id{i}"));
        }
        assert_eq!(top.best.len(), K);
        assert_eq!(top.best[0].1, "id0");
        assert_eq!(top.worst(), Some(9.0));
    }

    #[test]
    fn parts_of_a_collection_add_up_to_the_whole() {
        let queries = vec![Query::new(vec![0.0, 0.0]), Query::new(vec![30.0, 30.0])];
        let ids: Vec<String> = (0..40).map(|i| format!("id{i}")).collect();
        let vectors: Vec<[f32; 2]> = (0..40).map(|i| [i as f32, (i * 7 % 13) as f32]).collect();
        let record = |i: usize| Record {
            collection: 0,
            rowid: i as i64,
            id: &ids[i],
            document: None,
            metadata: None,
            embedding: &vectors[i],
        };
        let hash =
            |i: usize| (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834);
        let mut whole = SourceSide::new(queries.len());
        for i in 0..40 {
            whole.add(hash(i), &record(i), &queries, Distance::L2);
        }
        let mut merged = SourceSide::new(queries.len());
        for part in [0..13, 13..29, 29..40] {
            let mut side = SourceSide::new(queries.len());
            for i in part {
                side.add(hash(i), &record(i), &queries, Distance::L2);
            }
            merged.merge(side);
        }
        assert_eq!(merged.digest, whole.digest);
        assert_eq!(merged.digest.rows, 40);
        for (m, w) in merged.exact.iter().zip(&whole.exact) {
            assert_eq!(m.best, w.best);
            assert_eq!(m.best.len(), K);
        }
        assert_eq!(merged.exact[0].best[0].1, "id0");
    }

    #[test]
    fn distances_match_pgvector_operators() {
        let q = Query::new(vec![1.0, 0.0]);
        let item = [0.0f32, 2.0];
        let norm = dot(&item, &item).sqrt();
        assert!((distance(&q, &item, norm, Distance::Cosine) - 1.0).abs() < 1e-6);
        assert!((distance(&q, &item, norm, Distance::L2) - 5f64.sqrt()).abs() < 1e-6);
        let long: Vec<f32> = (0..21).map(|i| i as f32).collect();
        assert_eq!(
            dot(&long, &long),
            (0..21).map(|i| f64::from(i * i)).sum::<f64>()
        );
        assert_eq!(distance(&q, &item, norm, Distance::InnerProduct), 0.0);
    }
}
