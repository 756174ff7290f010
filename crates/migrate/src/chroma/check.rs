//! Proof for a Chroma migration, per collection: row count and content
//! checksum on both sides, then a nearest-neighbour check — stored vectors as
//! queries, PostgreSQL's top 10 (through its index, at the chosen
//! `ef_search`/`probes`) against the exact top 10 computed from the source.

use super::layout::{ChromaPlan, CollectionTarget};
use super::reader::ChromaUnitReader;
use super::RecallOptions;
use crate::error::{pg_error, MigrateError, MigrateErrorKind};
use crate::load::row_key;
use pgharbor_core::report::TableVerification;
use pgharbor_core::schema::{quote_ident, PgType};
use pgharbor_pgwriter::pgvector::{Distance, VectorParam, Version};
use pgharbor_verify::digest::{target_digest, RowFilter};
use pgharbor_verify::{RowHasher, RowMultiset, TableDigest};
use serde::Serialize;
use std::sync::Arc;
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

/// The source side of one collection: digest, and the exact neighbours of the queries.
struct SourcePass {
    digest: TableDigest,
    multiset: Option<RowMultiset>,
    exact: Vec<TopK>,
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
/// or every n-th item in one pass when the collection is too sparse for that.
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
    if queries.len() * 2 >= wanted {
        return Ok(queries);
    }
    let stride = (items / wanted as u64).max(1);
    let mut seen = 0u64;
    queries.clear();
    reader.read_collection(collection, first, last, &mut |record, _| {
        if seen % stride == 0 && queries.len() < wanted {
            queries.push(Query::new(record.embedding.to_vec()));
        }
        seen += 1;
        Ok(())
    })?;
    Ok(queries)
}

/// Digest one collection's source rows and find the exact neighbours of `queries`.
fn source_pass(
    reader: &mut ChromaUnitReader,
    plan: &ChromaPlan,
    collection: usize,
    bounds: Option<(i64, i64)>,
    queries: &[Query],
    detailed: bool,
) -> Result<SourcePass, MigrateError> {
    let target = &plan.targets[collection];
    let table = &plan.plan.tables[target.table];
    let mut hasher = RowHasher::new(
        table.spec.columns.iter().map(|c| c.pg_type).collect(),
        plan.plan.policy,
    );
    let mut pass = SourcePass {
        digest: TableDigest::default(),
        multiset: detailed.then(RowMultiset::default),
        exact: vec![TopK::default(); queries.len()],
    };
    let Some((first, last)) = bounds else {
        return Ok(pass);
    };
    reader.read_collection(collection, first, last, &mut |record, cells| {
        let hash = hasher.hash_cells(cells).map_err(|e| {
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
        })?;
        pass.digest.add(hash);
        if let Some(set) = pass.multiset.as_mut() {
            set.add_source(hash, || row_key(table, Some(record.rowid), cells));
        }
        if !queries.is_empty() {
            let norm = dot(record.embedding, record.embedding).sqrt();
            for (query, top) in queries.iter().zip(&mut pass.exact) {
                let d = distance(query, record.embedding, norm, target.distance);
                if !d.is_nan() {
                    top.offer(d, record.id);
                }
            }
        }
        Ok(())
    })?;
    Ok(pass)
}

/// Everything checked for one collection.
pub struct CollectionCheck {
    /// Counts and checksums.
    pub verification: TableVerification,
    /// Exact top-10 per query (kept for the recall check).
    exact: Vec<TopK>,
}

/// Verify one collection: source pass on this (blocking) thread's reader,
/// target digest through `client`.
pub async fn verify_collection(
    client: &Client,
    reader: ChromaUnitReader,
    plan: Arc<ChromaPlan>,
    collection: usize,
    queries: Arc<Vec<Query>>,
) -> (ChromaUnitReader, Result<CollectionCheck, MigrateError>) {
    let target = &plan.targets[collection];
    let (columns, hasher, filter_value) = target_view(&plan, target);
    let filter = filter_of(target, filter_value.as_deref());
    let table = &plan.plan.tables[target.table].spec.name;
    // Both sides at once: the source on a blocking thread, the target's COPY here.
    let ((reader, source), digest) = tokio::join!(
        run_source_pass(reader, plan.clone(), collection, queries, false),
        target_digest(client, table, &columns, &hasher, filter, None)
    );
    let (source, digest) = match (source, digest) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) => return (reader, Err(e)),
        (_, Err(e)) => return (reader, Err(e.into())),
    };
    let mut verification = TableVerification {
        source_rows: source.digest.rows,
        target_rows: digest.rows,
        source_checksum: source.digest.hex(),
        target_checksum: digest.hex(),
        matches: source.digest == digest,
        sample_differences: Vec::new(),
    };
    if !verification.matches {
        let (back, detailed) =
            run_source_pass(reader, plan.clone(), collection, Arc::new(Vec::new()), true).await;
        let mut multiset = match detailed {
            Ok(p) => p.multiset.unwrap_or_default(),
            Err(e) => return (back, Err(e)),
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
            return (back, Err(e.into()));
        }
        verification.sample_differences = multiset.differences(SAMPLE_LIMIT);
        return (
            back,
            Ok(CollectionCheck {
                verification,
                exact: source.exact,
            }),
        );
    }
    (
        reader,
        Ok(CollectionCheck {
            verification,
            exact: source.exact,
        }),
    )
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

async fn run_source_pass(
    reader: ChromaUnitReader,
    plan: Arc<ChromaPlan>,
    collection: usize,
    queries: Arc<Vec<Query>>,
    detailed: bool,
) -> (ChromaUnitReader, Result<SourcePass, MigrateError>) {
    let joined = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let bounds = reader_bounds(&reader, collection);
        let outcome = source_pass(&mut reader, &plan, collection, bounds, &queries, detailed);
        (reader, outcome)
    })
    .await;
    match joined {
        Ok(pair) => pair,
        Err(e) => panic!("verify reader thread panicked: {e}"),
    }
}

fn reader_bounds(reader: &ChromaUnitReader, collection: usize) -> Option<(i64, i64)> {
    reader.collection(collection).rowid_bounds
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
