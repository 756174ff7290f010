//! Comparing source and target table by table: counts, checksums, sample rows.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::load::{row_key, SourceUnit, UnitRange, UnitReader};
use crate::progress::Progress;
use crate::schedule::{execute, Progressed, Schedule};
use crate::stop::interrupted;
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::{Plan, RowKey, TablePlan};
use pgharbor_core::report::TableVerification;
use pgharbor_core::schema::{ArrayElement, PgType};
use pgharbor_verify::digest::{target_digest, RowFilter};
use pgharbor_verify::{RowHasher, RowMultiset, TableDigest};
use std::sync::Arc;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// How many differing rows a report names per table.
const SAMPLE_LIMIT: usize = 10;

/// Verify every table of `plan`, one worker per reader, on the run's one
/// pool of workers; `cancel` stops them (their queries too). Results are in
/// plan order.
pub async fn verify_all(
    target: &ConnConfig,
    plan: &Arc<Plan>,
    readers: Vec<Box<dyn UnitReader>>,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<Vec<TableVerification>, MigrateError> {
    progress.phase("verifying");
    let mut schedule = Schedule::default();
    for table in 0..plan.tables.len() {
        schedule.verify(table, Vec::new());
    }
    let progressed = Progressed::new(schedule, plan);
    let workers = readers.len();
    let executed = execute(
        progressed, target, plan, readers, workers, progress, false, cancel,
    )
    .await?;
    Ok(executed
        .verified
        .into_iter()
        .map(|r| r.expect("every table verified"))
        .collect())
}

/// The hasher of the plan's table `index`, for both sides and for the load.
pub(crate) fn row_hasher(plan: &Plan, index: usize) -> RowHasher {
    let table = &plan.tables[index];
    RowHasher::new(
        table.spec.columns.iter().map(|c| c.pg_type).collect(),
        plan.policy,
    )
    .tolerating(table.computed_by_target.clone())
}

/// Compare one table: digests of both sides, and when they differ, sample
/// keys of differing rows. Gives the reader back in every case.
///
/// `read_by_load` is the source side as the load read it (every row it
/// encoded, hashed from the same cells): used when it holds as many rows as
/// the source table has, instead of reading the source again. Differences
/// are always looked for in a new read of the source. A read of the source
/// ends early once `stop` is cancelled.
pub(crate) async fn verify_table(
    client: &Client,
    plan: &Arc<Plan>,
    index: usize,
    reader: Box<dyn UnitReader>,
    read_by_load: Option<TableDigest>,
    stop: &CancellationToken,
) -> (Box<dyn UnitReader>, Result<TableVerification, MigrateError>) {
    let table = &plan.tables[index];
    let hasher = row_hasher(plan, index);
    let columns: Vec<String> = table.spec.columns.iter().map(|c| c.name.clone()).collect();
    let (reader, source) = match read_by_load.filter(|d| d.rows == table.source_rows) {
        Some(digest) => (reader, Ok((digest, None))),
        None => source_pass(reader, plan.clone(), index, hasher.clone(), false, stop).await,
    };
    let target = target_digest(
        client,
        &table.spec.name,
        &columns,
        &hasher,
        RowFilter::All,
        None,
    )
    .await;
    let (source, target) = match (source, target) {
        (Ok((s, _)), Ok(t)) => (s, t),
        (Err(e), _) => return (reader, Err(e)),
        (_, Err(e)) => return (reader, Err(e.into())),
    };
    let mut result = TableVerification {
        source_rows: source.rows,
        target_rows: target.rows,
        source_checksum: source.hex(),
        target_checksum: target.hex(),
        matches: source == target,
        sample_differences: Vec::new(),
    };
    if result.matches {
        return (reader, Ok(result));
    }
    let (reader, detailed) =
        source_pass(reader, plan.clone(), index, hasher.clone(), true, stop).await;
    let mut multiset = match detailed {
        Ok((_, Some(m))) => m,
        Ok((_, None)) => RowMultiset::default(),
        Err(e) => return (reader, Err(e)),
    };
    let keys = key_columns(table);
    if let Err(e) = target_digest(
        client,
        &table.spec.name,
        &columns,
        &hasher,
        RowFilter::All,
        Some((&mut multiset, &keys)),
    )
    .await
    {
        return (reader, Err(e.into()));
    }
    result.sample_differences = multiset.differences(SAMPLE_LIMIT);
    (reader, Ok(result))
}

fn key_columns(table: &TablePlan) -> Vec<usize> {
    match &table.row_key {
        RowKey::Columns(cols) => cols.clone(),
        RowKey::Rowid => Vec::new(),
    }
}

/// Digest the source side on a blocking thread; with `detailed`, also count
/// rows by hash. Ends at the next row once `stop` is cancelled.
async fn source_pass(
    reader: Box<dyn UnitReader>,
    plan: Arc<Plan>,
    index: usize,
    mut hasher: RowHasher,
    detailed: bool,
    stop: &CancellationToken,
) -> (
    Box<dyn UnitReader>,
    Result<(TableDigest, Option<RowMultiset>), MigrateError>,
) {
    let stop = stop.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let table = &plan.tables[index];
        let mut digest = TableDigest::default();
        let mut multiset = detailed.then(RowMultiset::default);
        let whole = SourceUnit {
            table: index,
            range: UnitRange::WholeTable,
        };
        let outcome = reader.read(table, whole, &mut |rowid, cells| {
            if stop.is_cancelled() {
                return Err(interrupted().into());
            }
            let hash = hasher.hash_cells(cells).map_err(|e| {
                MigrateError::new(
                    MigrateErrorKind::Conversion,
                    format!(
                        "table {:?}, row {}, column {:?}: {}",
                        table.source_name,
                        row_key(table, rowid, cells),
                        table.spec.columns[e.column].name,
                        e.reason
                    ),
                )
            })?;
            digest.add(hash);
            if let Some(set) = multiset.as_mut() {
                set.add_source(hash, || row_key(table, rowid, cells));
            }
            Ok(())
        });
        let outcome = outcome.map_err(MigrateError::from);
        (reader, outcome.map(|_| (digest, multiset)))
    })
    .await;
    match joined {
        Ok(pair) => pair,
        Err(e) => panic!("verify reader thread panicked: {e}"),
    }
}

/// The column types of a target table as pgharbor's [`PgType`]s, by column name.
///
/// Used by the standalone `verify`, which must hash with the types the target
/// actually has. Unsupported types are an error naming the column.
pub async fn target_column_types(
    client: &Client,
    table: &pgharbor_core::schema::QualifiedName,
) -> Result<Vec<(String, PgType)>, MigrateError> {
    let rows = client
        .query(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(|e| pgharbor_pgwriter::WriteError::from_pg(e, format!("reading the columns of {table}")))?;
    if rows.is_empty() {
        return Err(MigrateError::new(
            MigrateErrorKind::Verify,
            format!("table {table} does not exist in the target"),
        ));
    }
    rows.iter()
        .map(|r| {
            let name: String = r.get(0);
            let type_name: String = r.get(1);
            parse_type(&type_name)
                .map(|t| (name.clone(), t))
                .ok_or_else(|| MigrateError::new(MigrateErrorKind::Verify, format!("column {name:?} of {table} has type {type_name}, which pgharbor cannot verify")))
        })
        .collect()
}

/// Map `format_type` output to a [`PgType`].
pub fn parse_type(name: &str) -> Option<PgType> {
    let args = |s: &str| -> Vec<u32> {
        s.split_once('(')
            .and_then(|(_, r)| r.strip_suffix(')'))
            .map(|a| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_default()
    };
    Some(match name {
        "boolean" => PgType::Boolean,
        "smallint" => PgType::SmallInt,
        "integer" => PgType::Integer,
        "bigint" => PgType::BigInt,
        "double precision" => PgType::Double,
        "numeric" => PgType::Numeric {
            precision_scale: None,
        },
        "text" | "character varying" => PgType::Text,
        "bytea" => PgType::Bytea,
        "date" => PgType::Date,
        "timestamp without time zone" => PgType::Timestamp,
        "timestamp with time zone" => PgType::Timestamptz,
        "json" => PgType::Json,
        "jsonb" => PgType::Jsonb,
        "uuid" => PgType::Uuid,
        "interval" => PgType::Interval,
        "text[]" | "character varying[]" => PgType::Array(ArrayElement::Text),
        "integer[]" => PgType::Array(ArrayElement::Integer),
        "bigint[]" => PgType::Array(ArrayElement::BigInt),
        "boolean[]" => PgType::Array(ArrayElement::Boolean),
        "double precision[]" => PgType::Array(ArrayElement::Double),
        n if n.starts_with("numeric(") => match args(n).as_slice() {
            [p, s] => PgType::Numeric {
                precision_scale: Some((*p, *s)),
            },
            _ => return None,
        },
        n if n.starts_with("character varying(") => PgType::Varchar(*args(n).first()?),
        "character" => PgType::Char(1),
        n if n.starts_with("character(") => PgType::Char(*args(n).first()?),
        n if n.starts_with("timestamp(") => match n.split_once(") ")?.1 {
            "with time zone" => PgType::Timestamptz,
            "without time zone" => PgType::Timestamp,
            _ => return None,
        },
        n if n.starts_with("vector(") => PgType::Vector(*args(n).first()?),
        n if n.starts_with("halfvec(") => PgType::HalfVec(*args(n).first()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_with_a_precision_or_a_length_are_read() {
        assert_eq!(
            parse_type("timestamp(3) with time zone"),
            Some(PgType::Timestamptz)
        );
        assert_eq!(
            parse_type("timestamp(0) without time zone"),
            Some(PgType::Timestamp)
        );
        assert_eq!(parse_type("character(36)"), Some(PgType::Char(36)));
        assert_eq!(parse_type("timestamp(3) with local flavour"), None);
        assert_eq!(parse_type("character(x)"), None);
    }
}
