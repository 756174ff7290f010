//! Exact nearest neighbours: the query vectors of a collection, the exact top
//! 10 of each as the source's vectors rank them, and the check that
//! PostgreSQL, ranking every target row with pgvector's distance operator in
//! one scan that no index can answer, finds the same top 10.
//!
//! Equal-distance items at the edge of a top 10 may be exchanged: two lists
//! agree when their distances agree position by position and every item
//! closer than the tenth distance is in both, at the same distance (within
//! [`tolerance`], float rounding of a sum computed in another order).

use super::layout::ChromaPlan;
use crate::error::{pg_error, MigrateError};
use futures_util::{pin_mut, TryStreamExt};
use pgharbor_core::schema::{quote_ident, PgType};
use pgharbor_pgwriter::pgvector::{Distance, VectorParam};
use serde::Serialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

/// Neighbours compared per query.
pub const K: usize = 10;
/// How many differences a report names per collection.
pub const SAMPLE_LIMIT: usize = 10;
/// Distances computed per row in one statement (one column each).
const QUERIES_PER_SCAN: usize = 64;

/// A stored item used as a query: its id and its vector (rounded to half
/// precision when the column is `halfvec`, as the target holds it), with the
/// vector's norm.
pub struct Query {
    id: String,
    vector: Vec<f32>,
    norm: f64,
}

impl Query {
    /// The query of item `id`.
    pub fn new(id: &str, vector: &[f32], half: bool) -> Self {
        let vector = if half {
            vector.iter().map(|v| round_to_half(*v)).collect()
        } else {
            vector.to_vec()
        };
        let norm = dot(&vector, &vector).sqrt();
        Query {
            id: id.to_string(),
            vector,
            norm,
        }
    }

    /// The item the query vector belongs to.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The components.
    pub fn vector(&self) -> &[f32] {
        &self.vector
    }
}

/// A value as a `halfvec` stores it.
pub fn round_to_half(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

/// The `K` nearest items seen so far, closest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopK {
    best: Vec<(f64, String)>,
}

impl TopK {
    /// Consider item `id` at `distance`.
    pub fn offer(&mut self, distance: f64, id: &str) {
        if self.best.len() == K && distance >= self.best[K - 1].0 {
            return;
        }
        let at = self.best.partition_point(|(d, _)| *d <= distance);
        self.best.insert(at, (distance, id.to_string()));
        self.best.truncate(K);
    }

    /// Add the items of another part of the same collection.
    pub fn merge(&mut self, other: TopK) {
        for (d, id) in other.best {
            self.offer(d, &id);
        }
    }

    /// The tenth (or last) distance.
    pub fn worst(&self) -> Option<f64> {
        self.best.last().map(|(d, _)| *d)
    }

    /// Items kept.
    pub fn len(&self) -> usize {
        self.best.len()
    }

    /// No item kept.
    pub fn is_empty(&self) -> bool {
        self.best.is_empty()
    }

    fn distance_of(&self, id: &str) -> Option<f64> {
        self.best.iter().find(|(_, i)| i == id).map(|(d, _)| *d)
    }
}

/// Lanes summed separately so the compiler vectorises the loops; single
/// precision, as pgvector computes.
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

/// The dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    lanes_sum(a, b, |x, y| x * y)
}

/// The distance pgvector's operator computes; NaN where it has none (cosine
/// of a zero vector).
pub fn distance(query: &Query, item: &[f32], item_norm: f64, kind: Distance) -> f64 {
    match kind {
        Distance::L2 => lanes_sum(&query.vector, item, |x, y| (x - y) * (x - y)).sqrt(),
        Distance::InnerProduct => -dot(&query.vector, item),
        Distance::Cosine if query.norm == 0.0 || item_norm == 0.0 => f64::NAN,
        Distance::Cosine => 1.0 - dot(&query.vector, item) / (query.norm * item_norm),
    }
}

/// How far two computations of the same distance may differ: single
/// precision sums of a few thousand terms added in another order agree to
/// about 1e-6 of their size.
pub fn tolerance(distance: f64) -> f64 {
    1e-4 * distance.abs().max(1.0)
}

/// The exact-neighbour check of one collection.
#[derive(Debug, Clone, Serialize)]
pub struct ExactCheck {
    /// Queries compared.
    pub queries: usize,
    /// Every query's top 10 in PostgreSQL equals the source's.
    pub ok: bool,
    /// The first differences, naming the query item and the neighbour.
    pub differences: Vec<String>,
}

/// How the top 10 of query item `query` differ, `None` when they agree.
pub fn compare(query: &str, source: &TopK, target: &TopK) -> Option<String> {
    if source.len() != target.len() {
        return Some(format!(
            "query item {query:?}: PostgreSQL finds {} neighbours, the source has {}",
            target.len(),
            source.len()
        ));
    }
    let edge = source
        .worst()
        .into_iter()
        .chain(target.worst())
        .fold(f64::NEG_INFINITY, f64::max);
    let inside = |d: f64| d < edge - tolerance(edge);
    for (d, id) in &source.best {
        match target.distance_of(id) {
            Some(t) if (t - d).abs() > tolerance(*d) => {
                return Some(format!(
                    "query item {query:?}: item {id:?} is at distance {d:.6} in the source, {t:.6} in PostgreSQL"
                ))
            }
            None if inside(*d) => {
                return Some(format!(
                    "query item {query:?}: item {id:?} (distance {d:.6}) is among the source's {K} nearest, not PostgreSQL's"
                ))
            }
            _ => {}
        }
    }
    for (d, id) in &target.best {
        if inside(*d) && source.distance_of(id).is_none() {
            return Some(format!(
                "query item {query:?}: item {id:?} (distance {d:.6}) is among PostgreSQL's {K} nearest, not the source's"
            ));
        }
    }
    let positions = source.best.iter().zip(&target.best).enumerate();
    for (n, ((s, s_id), (t, t_id))) in positions {
        if (s - t).abs() > tolerance(*s) {
            return Some(format!(
                "query item {query:?}: neighbour {} is item {s_id:?} at {s:.6} in the source, item {t_id:?} at {t:.6} in PostgreSQL",
                n + 1
            ));
        }
    }
    None
}

/// Rank every target row of `collection` for each query with the collection's
/// distance operator and compare each top 10 with the source's `exact`. The
/// statement computes one distance column per query and has no `ORDER BY`,
/// so no vector index can answer it: every row is read (with a filter on the
/// collection in Open WebUI's shared table), each query's top 10 kept here.
pub async fn exact_neighbours(
    client: &Client,
    plan: &ChromaPlan,
    collection: usize,
    queries: &[Query],
    exact: &[TopK],
) -> Result<ExactCheck, MigrateError> {
    let mut found = vec![TopK::default(); queries.len()];
    for (chunk, tops) in queries
        .chunks(QUERIES_PER_SCAN)
        .zip(found.chunks_mut(QUERIES_PER_SCAN))
    {
        rank_in_postgres(client, plan, collection, chunk, tops).await?;
    }
    let differences: Vec<String> = queries
        .iter()
        .zip(exact.iter().zip(&found))
        .filter_map(|(query, (source, target))| compare(&query.id, source, target))
        .collect();
    Ok(ExactCheck {
        queries: queries.len(),
        ok: differences.is_empty(),
        differences: differences.into_iter().take(SAMPLE_LIMIT).collect(),
    })
}

/// One scan computing the distances of `queries` to every row of the
/// collection, streamed into `tops`.
async fn rank_in_postgres(
    client: &Client,
    plan: &ChromaPlan,
    collection: usize,
    queries: &[Query],
    tops: &mut [TopK],
) -> Result<(), MigrateError> {
    let target = &plan.targets[collection];
    let table = &plan.plan.tables[target.table].spec;
    let (id, column) = (&table.columns[0], &table.columns[1]);
    let dim = match column.pg_type {
        PgType::HalfVec(d) | PgType::Vector(d) => d,
        other => unreachable!("the vector column is {other}"),
    };
    let (col, op) = (quote_ident(&column.name), target.distance.operator());
    let distances: Vec<String> = (1..=queries.len())
        .map(|n| format!("{col} {op} ${n}"))
        .collect();
    let filter = match target.shared_name {
        Some(_) => format!(" WHERE collection_name = ${}", queries.len() + 1),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {}, {} FROM {}{filter}",
        quote_ident(&id.name),
        distances.join(", "),
        table.name
    );
    let vectors: Vec<VectorParam<'_>> = queries
        .iter()
        .map(|q| VectorParam {
            values: &q.vector,
            dim,
        })
        .collect();
    let mut params: Vec<&(dyn ToSql + Sync)> =
        vectors.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    if let Some(name) = &target.shared_name {
        params.push(name);
    }
    let context = || {
        format!(
            "ranking the rows of {} for the exact-neighbour check",
            table.name
        )
    };
    let rows = client
        .query_raw(&sql, params)
        .await
        .map_err(pg_error(context()))?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await.map_err(pg_error(context()))? {
        let item: &str = row.get(0);
        for (n, top) in tops.iter_mut().enumerate() {
            if let Some(d) = row.get::<_, Option<f64>>(n + 1).filter(|d| !d.is_nan()) {
                top.offer(d, item);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(items: &[(f64, &str)]) -> TopK {
        let mut top = TopK::default();
        for (d, id) in items {
            top.offer(*d, id);
        }
        top
    }

    #[test]
    fn top_k_keeps_the_closest_in_order() {
        let mut top = TopK::default();
        for i in (0..25).rev() {
            top.offer(f64::from(i), &format!("id{i}"));
        }
        assert_eq!(top.len(), K);
        assert_eq!(top.best[0].1, "id0");
        assert_eq!(top.worst(), Some(9.0));
    }

    fn ten(last: &str) -> Vec<(f64, String)> {
        let mut items: Vec<(f64, String)> = (0..9)
            .map(|i| (f64::from(i) / 10.0, format!("id{i}")))
            .collect();
        items.push((0.95, last.to_string()));
        items
    }

    fn as_top(items: &[(f64, String)]) -> TopK {
        top(&items
            .iter()
            .map(|(d, id)| (*d, id.as_str()))
            .collect::<Vec<_>>())
    }

    #[test]
    fn equal_distances_at_the_edge_may_be_exchanged() {
        let source = as_top(&ten("a"));
        let target = as_top(&ten("b"));
        assert_eq!(compare("q", &source, &target), None);
        let rounded: Vec<(f64, String)> =
            ten("a").into_iter().map(|(d, id)| (d + 1e-7, id)).collect();
        assert_eq!(compare("q", &source, &as_top(&rounded)), None);
    }

    #[test]
    fn a_missing_or_moved_neighbour_is_named_with_its_query() {
        let source = as_top(&ten("a"));
        let mut moved = ten("a");
        moved[3].0 = 0.31;
        let message = compare("q7", &source, &as_top(&moved)).unwrap();
        assert!(
            message.contains("\"q7\"") && message.contains("\"id3\"") && message.contains("0.31"),
            "{message}"
        );
        let mut replaced = ten("a");
        replaced[2] = (0.2, "intruder".into());
        let message = compare("q7", &source, &as_top(&replaced)).unwrap();
        assert!(message.contains("\"id2\""), "{message}");
        let message = compare("q7", &as_top(&replaced), &source).unwrap();
        assert!(message.contains("\"intruder\""), "{message}");
        let mut farther = ten("a");
        farther[9] = (0.99, "b".into());
        let message = compare("q7", &source, &as_top(&farther)).unwrap();
        assert!(
            message.contains("\"a\"") && message.contains("not PostgreSQL's"),
            "{message}"
        );
        let message = compare("q7", &source, &as_top(&ten("a")[..9])).unwrap();
        assert!(message.contains("finds 9 neighbours"), "{message}");
    }

    #[test]
    fn distances_match_pgvector_operators() {
        let q = Query::new("q", &[1.0, 0.0], false);
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

    #[test]
    fn half_precision_queries_hold_what_a_halfvec_column_holds() {
        let q = Query::new("q", &[0.1, 1.0 / 3.0], true);
        assert_eq!(q.vector(), [round_to_half(0.1), round_to_half(1.0 / 3.0)]);
        assert_ne!(q.vector()[0], 0.1);
    }
}
