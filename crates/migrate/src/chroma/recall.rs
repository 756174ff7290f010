//! How well the approximate vector indexes (HNSW, IVFFlat) find the exact
//! neighbours: recall@10 of a collection's queries searched through its
//! table's index at the setting the check was given (`--probes`,
//! `--ef-search`) and at the setting a new session of the database gets (what
//! the application sees: pgvector's default unless the database or role sets
//! another). Where the latter finds less than 0.9, recall is also measured at
//! doubling settings until it reaches 0.99, giving the smallest measured
//! setting that reaches 0.9 and 0.99 — only there: one search of a small
//! collection through Open WebUI's shared index can cost as much as one of
//! the largest, and a sweep for each of dozens of collections would cost more
//! than the move.
//!
//! Recall is a property of the index, which pgvector builds with random
//! choices (IVFFlat's clustering, HNSW's levels): it is reported, and fails
//! the run only against an explicit `--min-recall`.

use super::layout::ChromaPlan;
use super::neighbours::{tolerance, Query, TopK, K};
use super::RecallOptions;
use crate::error::{pg_error, MigrateError};
use pgharbor_core::schema::{quote_ident, PgType, QualifiedName};
use pgharbor_pgwriter::pgvector::{VectorParam, Version};
use serde::Serialize;
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// Recall levels whose settings are measured.
pub const TARGETS: [f64; 2] = [0.9, 0.99];

/// Recall@10 of one collection through its table's index.
#[derive(Debug, Clone, Serialize)]
pub struct RecallReport {
    /// Queries run (stored vectors of the collection).
    pub queries: usize,
    /// The index searched (`hnsw`, `ivfflat`).
    pub index: String,
    /// Its search parameter (`hnsw.ef_search`, `ivfflat.probes`).
    pub parameter: String,
    /// The setting the check was given (`ivfflat.probes = 10`).
    pub setting: String,
    /// Mean share of the exact top 10 found at `setting`.
    pub recall_at_10: f64,
    /// What a new session of the database gets (the application's view).
    pub application: Measured,
    /// Every setting measured, with its recall: the given one, the
    /// database's own, and the doubling ones when the latter is below 0.9.
    pub measured: Vec<Measured>,
    /// The smallest measured setting reaching each of [`TARGETS`].
    pub reaches: Vec<Reach>,
    /// The first doubling setting left unmeasured because the sweep would
    /// then cost more than the exact-neighbour check.
    pub not_measured_from: Option<String>,
    /// The statement that gives the application the setting that reaches
    /// 0.9 here, when its own setting does not.
    pub suggestion: Option<String>,
    /// `--min-recall`, when given.
    pub min_recall: Option<f64>,
    /// At or above `min_recall` (always, without one).
    pub passed: bool,
}

/// Recall at one setting.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// `ivfflat.probes = 1`.
    pub setting: String,
    /// Recall@10 there.
    pub recall_at_10: f64,
}

impl Measured {
    fn at(parameter: &str, value: u32, recall_at_10: f64) -> Self {
        Measured {
            setting: format!("{parameter} = {value}"),
            recall_at_10,
        }
    }
}

/// Where recall reaches a level.
#[derive(Debug, Clone, Serialize)]
pub struct Reach {
    /// The level (0.9, 0.99).
    pub recall: f64,
    /// The smallest setting measured to reach it (`None`: not even the largest).
    pub setting: Option<String>,
    /// Its value.
    pub value: Option<u32>,
    /// The recall measured there (at the largest setting when not reached).
    pub recall_at_10: f64,
}

/// A collection's vector index, as the catalog has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorIndex {
    /// `hnsw` or `ivfflat`.
    pub method: String,
    /// IVFFlat's lists (the largest useful `probes`).
    pub lists: u32,
    /// HNSW's links per node.
    pub m: u32,
}

impl VectorIndex {
    fn parameter(&self) -> String {
        match self.method.as_str() {
            "ivfflat" => "ivfflat.probes".into(),
            _ => "hnsw.ef_search".into(),
        }
    }

    /// What one search at `value` in a table of `rows` rows costs, counted
    /// in distances of the exact-neighbour check: IVFFlat computes the
    /// distance of every row of `value` lists and sorts them (measured: 4
    /// of the check's distances per row probed, 1.3 s for 0.93 million
    /// rows against 0.5 s for 1.5 million distances), HNSW that of `value`
    /// candidates' 2·m links on the bottom layer.
    fn search_cost(&self, value: u32, rows: u64) -> u64 {
        match self.method.as_str() {
            "ivfflat" => 4 * u64::from(value) * rows / u64::from(self.lists.max(1)),
            _ => u64::from(value) * 2 * u64::from(self.m),
        }
    }

    /// The settings tried: doubling from the smallest useful to the largest.
    fn ladder(&self) -> Vec<u32> {
        let (first, last) = match self.method.as_str() {
            "ivfflat" => (1, self.lists.max(1)),
            _ => (K as u32, 1000),
        };
        let mut values = vec![first];
        while let Some(&v) = values.last().filter(|v| **v < last) {
            values.push((v * 2).min(last));
        }
        values
    }
}

/// The HNSW or IVFFlat index on `table`, if any.
pub async fn vector_index(
    client: &Client,
    table: &QualifiedName,
) -> Result<Option<VectorIndex>, MigrateError> {
    let row = client
        .query_opt(
            "SELECT am.amname::text, coalesce((SELECT option_value FROM pg_options_to_table(ic.reloptions) \
             WHERE option_name = 'lists'), '100')::int, coalesce((SELECT option_value \
             FROM pg_options_to_table(ic.reloptions) WHERE option_name = 'm'), '16')::int \
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam \
             WHERE i.indrelid = $1::text::regclass AND am.amname IN ('hnsw', 'ivfflat') \
             ORDER BY ic.relname LIMIT 1",
            &[&table.to_string()],
        )
        .await
        .map_err(pg_error(format!("looking for the vector index of {table}")))?;
    Ok(row.map(|r| VectorIndex {
        method: r.get(0),
        lists: u32::try_from(r.get::<_, i32>(1)).unwrap_or(1),
        m: u32::try_from(r.get::<_, i32>(2)).unwrap_or(16),
    }))
}

/// Everything the searches need.
pub struct Searches<'a> {
    /// The table's index.
    pub index: &'a VectorIndex,
    /// Rows of the table and of the collection (the sweep's budget, see
    /// [`collection_recall`]).
    pub rows: (u64, u64),
    /// The target's pgvector version (iterative scans from 0.8).
    pub pgvector: Version,
    /// The check's options.
    pub options: &'a RecallOptions,
}

impl Searches<'_> {
    fn given(&self) -> u32 {
        match self.index.method.as_str() {
            "ivfflat" => self.options.probes,
            _ => self.options.ef_search,
        }
    }
}

/// Recall of `collection` (its queries `asked`, with the source's exact top
/// 10) at the given setting, at the database's own and, when that finds less
/// than 0.9, at doubling settings until 0.99 — as long as the sweep costs
/// less per query than the exact-neighbour check did (one distance per row
/// of the collection, see [`VectorIndex::search_cost`]); `database` names
/// the database in the suggestion.
pub async fn collection_recall(
    client: &Client,
    plan: &ChromaPlan,
    collection: usize,
    asked: &[(&Query, &TopK)],
    searches: &Searches<'_>,
    database: &str,
) -> Result<RecallReport, MigrateError> {
    let search = Search::new(plan, collection, asked, searches);
    let parameter = searches.index.parameter();
    let given = searches.given();
    let mut measured = BTreeMap::new();
    let (_, recall_at_10) = search.measure(client, Some(given)).await?;
    measured.insert(given, recall_at_10);
    let (own, own_recall) = search.measure(client, None).await?;
    measured.insert(own, own_recall);
    let mut not_measured_from = None;
    if own_recall < TARGETS[0] {
        let (table_rows, budget) = searches.rows;
        let mut spent = 0;
        for value in searches.index.ladder().into_iter().filter(|v| *v > own) {
            let r = match measured.get(&value) {
                Some(r) => *r,
                None => {
                    spent += searches.index.search_cost(value, table_rows);
                    if spent > budget {
                        not_measured_from = Some(format!("{parameter} = {value}"));
                        break;
                    }
                    search.measure(client, Some(value)).await?.1
                }
            };
            measured.insert(value, r);
            if r >= TARGETS[TARGETS.len() - 1] {
                break;
            }
        }
    }
    let reaches: Vec<Reach> = TARGETS
        .iter()
        .map(|t| reach(*t, &measured, &parameter))
        .collect();
    let suggestion = (own_recall < TARGETS[0])
        .then_some(reaches[0].value)
        .flatten()
        .map(|v| alter_database(database, &parameter, v));
    let min_recall = searches.options.min_recall;
    Ok(RecallReport {
        queries: search.asked.len(),
        index: searches.index.method.clone(),
        setting: format!("{parameter} = {given}"),
        recall_at_10,
        application: Measured::at(&parameter, own, own_recall),
        measured: measured
            .iter()
            .map(|(v, r)| Measured::at(&parameter, *v, *r))
            .collect(),
        reaches,
        not_measured_from,
        suggestion,
        min_recall,
        passed: min_recall.is_none_or(|m| recall_at_10 >= m),
        parameter,
    })
}

/// The statement giving every new session of `database` the setting.
pub fn alter_database(database: &str, parameter: &str, value: u32) -> String {
    format!(
        "ALTER DATABASE {} SET {parameter} = {value}",
        quote_ident(database)
    )
}

/// One statement per search parameter for the whole database: the largest
/// of the collections' suggested settings (one setting serves them all).
pub fn database_suggestions(database: &str, reports: &[&RecallReport]) -> Vec<String> {
    let mut largest: BTreeMap<&str, u32> = BTreeMap::new();
    for r in reports.iter().filter(|r| r.suggestion.is_some()) {
        if let Some(v) = r.reaches[0].value {
            let entry = largest.entry(&r.parameter).or_default();
            *entry = (*entry).max(v);
        }
    }
    largest
        .into_iter()
        .map(|(parameter, v)| alter_database(database, parameter, v))
        .collect()
}

/// The smallest measured value reaching `level`, or the largest measured.
fn reach(level: f64, measured: &BTreeMap<u32, f64>, parameter: &str) -> Reach {
    match measured.iter().find(|(_, r)| **r >= level) {
        Some((v, r)) => Reach {
            recall: level,
            setting: Some(format!("{parameter} = {v}")),
            value: Some(*v),
            recall_at_10: *r,
        },
        None => Reach {
            recall: level,
            setting: None,
            value: None,
            recall_at_10: measured.values().last().copied().unwrap_or(0.0),
        },
    }
}

/// One collection's searches through its table's index.
struct Search<'a> {
    sql: String,
    parameter: String,
    iterative_scan: Option<String>,
    shared_name: Option<&'a str>,
    asked: Vec<(&'a TopK, VectorParam<'a>)>,
}

impl<'a> Search<'a> {
    fn new(
        plan: &'a ChromaPlan,
        collection: usize,
        asked: &[(&'a Query, &'a TopK)],
        searches: &Searches<'_>,
    ) -> Self {
        let target = &plan.targets[collection];
        let table = &plan.plan.tables[target.table].spec;
        let column = &table.columns[1];
        let dim = match column.pg_type {
            PgType::HalfVec(d) | PgType::Vector(d) => d,
            other => unreachable!("the vector column is {other}"),
        };
        let (col, op) = (quote_ident(&column.name), target.distance.operator());
        let shared_name = target.shared_name.as_deref();
        let shared = shared_name.is_some();
        let filter = if shared {
            " WHERE collection_name = $2"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {col} {op} $1 FROM {} {filter} ORDER BY {col} {op} $1 LIMIT {K}",
            table.name
        );
        // Open WebUI turns iterative scans on for its filtered searches
        // (pgvector 0.8+): without them a search of a small collection in the
        // shared table finds fewer than 10 rows.
        let iterative_scan = (shared && searches.pgvector >= (0, 8, 0)).then(|| {
            format!(
                "SET LOCAL {}.iterative_scan = relaxed_order",
                searches.index.method
            )
        });
        let asked = asked
            .iter()
            .filter(|(_, exact)| !exact.is_empty())
            .map(|(query, exact)| {
                let values = query.vector();
                (*exact, VectorParam { values, dim })
            })
            .collect();
        Search {
            sql,
            parameter: searches.index.parameter(),
            iterative_scan,
            shared_name,
            asked,
        }
    }

    /// Recall with the parameter at `value`, or at the session's own value
    /// (`None`); returns the value searched with.
    async fn measure(
        &self,
        client: &Client,
        value: Option<u32>,
    ) -> Result<(u32, f64), MigrateError> {
        client
            .batch_execute("BEGIN")
            .await
            .map_err(pg_error("starting the recall check"))?;
        let searched = self.search_all(client, value).await;
        if searched.is_err() {
            // The search's error is the one to report; the session must not
            // stay inside the failed transaction.
            let _ = client.batch_execute("ROLLBACK").await;
        }
        let (used, answers) = searched?;
        client
            .batch_execute("COMMIT")
            .await
            .map_err(pg_error("ending the recall check"))?;
        let used = used.parse().map_err(|_| {
            MigrateError::new(
                crate::error::MigrateErrorKind::Verify,
                format!("{} is {used:?}, not a number", self.parameter),
            )
        })?;
        let found = self.asked.iter().zip(&answers).map(|((exact, _), rows)| {
            let worst = exact.worst().expect("filtered above");
            let hits = rows
                .iter()
                .filter(|r| r.get::<_, f64>(0) <= worst + tolerance(worst))
                .count()
                .min(exact.len());
            hits as f64 / exact.len() as f64
        });
        let total: f64 = found.sum();
        let recall = if self.asked.is_empty() {
            1.0
        } else {
            total / self.asked.len() as f64
        };
        Ok((used, recall))
    }

    /// Search every query at `value` (or the session's own) inside the
    /// caller's transaction; returns the parameter's value and the answers.
    async fn search_all(
        &self,
        client: &Client,
        value: Option<u32>,
    ) -> Result<(String, Vec<Vec<tokio_postgres::Row>>), MigrateError> {
        // Plan each search for its own values, as the application's literal
        // queries are: a generic plan would pick a plan for an average collection.
        let mut settings = vec!["SET LOCAL plan_cache_mode = force_custom_plan".to_string()];
        settings.extend(value.map(|v| format!("SET LOCAL {} = {v}", self.parameter)));
        settings.extend(self.iterative_scan.clone());
        client
            .batch_execute(&settings.join("; "))
            .await
            .map_err(pg_error("setting up the recall check's searches"))?;
        let statement = client
            .prepare(&self.sql)
            .await
            .map_err(pg_error("preparing the recall query"))?;
        let searches = self.asked.iter().map(|(_, vector)| async {
            match self.shared_name {
                Some(name) => client.query(&statement, &[vector, &name]).await,
                None => client.query(&statement, &[vector]).await,
            }
        });
        let answers = futures_util::future::try_join_all(searches)
            .await
            .map_err(pg_error("searching through the vector index"))?;
        let used: String = client
            .query_one("SELECT current_setting($1)", &[&self.parameter])
            .await
            .map_err(pg_error(format!("reading {}", self.parameter)))?
            .get(0);
        Ok((used, answers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_double_up_to_the_largest_useful() {
        let ivfflat = VectorIndex {
            method: "ivfflat".into(),
            lists: 100,
            m: 16,
        };
        assert_eq!(ivfflat.ladder(), [1, 2, 4, 8, 16, 32, 64, 100]);
        let hnsw = VectorIndex {
            method: "hnsw".into(),
            lists: 100,
            m: 16,
        };
        assert_eq!(hnsw.ladder(), [10, 20, 40, 80, 160, 320, 640, 1000]);
        assert_eq!(ivfflat.search_cost(4, 100_000), 16_000);
        assert_eq!(hnsw.search_cost(40, 100_000), 1_280);
    }

    #[test]
    fn the_smallest_setting_measured_to_reach_a_level_is_reported() {
        let measured = BTreeMap::from([(1, 0.3), (2, 0.5), (4, 0.91), (8, 0.97), (16, 0.995)]);
        let at = reach(0.9, &measured, "ivfflat.probes");
        assert_eq!(at.setting.as_deref(), Some("ivfflat.probes = 4"));
        assert_eq!(at.recall_at_10, 0.91);
        let at = reach(0.99, &measured, "ivfflat.probes");
        assert_eq!(at.setting.as_deref(), Some("ivfflat.probes = 16"));
        let short = BTreeMap::from([(1, 0.3), (2, 0.5)]);
        let at = reach(0.9, &short, "ivfflat.probes");
        assert_eq!((at.setting, at.recall_at_10), (None, 0.5));
    }

    fn report(own: f64, reaches_at: Option<u32>) -> RecallReport {
        let parameter = "ivfflat.probes";
        RecallReport {
            queries: 32,
            index: "ivfflat".into(),
            parameter: parameter.into(),
            setting: format!("{parameter} = 10"),
            recall_at_10: 0.95,
            application: Measured::at(parameter, 1, own),
            measured: Vec::new(),
            reaches: vec![Reach {
                recall: 0.9,
                setting: reaches_at.map(|v| format!("{parameter} = {v}")),
                value: reaches_at,
                recall_at_10: 0.93,
            }],
            not_measured_from: None,
            suggestion: (own < 0.9).then(|| "ALTER DATABASE …".to_string()),
            min_recall: None,
            passed: true,
        }
    }

    #[test]
    fn the_database_gets_the_largest_setting_its_low_collections_need() {
        let reports = [
            report(0.3, Some(8)),
            report(0.95, Some(1)),
            report(0.5, Some(16)),
            report(0.2, None),
        ];
        let settings = database_suggestions("app db", &reports.iter().collect::<Vec<_>>());
        assert_eq!(
            settings,
            ["ALTER DATABASE \"app db\" SET ivfflat.probes = 16"]
        );
        assert!(database_suggestions("app db", &[&reports[1]]).is_empty());
    }
}
