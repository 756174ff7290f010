//! The SQLite file as the pipeline's row source: planning it
//! ([`plan_file`], [`inspect_file`]), its work units (rowid ranges of large
//! tables) and readers inside the shared snapshot ([`SqliteSource`]), and
//! whether the application wrote to it while it was read.

use crate::error::{Result, SqliteError};
use crate::inspect::{self, SourceSchema};
use crate::open::SourceSnapshot;
use crate::planner::{self, PlanOptions};
use crate::read::{self, RowRange};
use pgharbor_core::plan::{Plan, TablePlan};
use pgharbor_source::{RowSink, RowSource, SourceError, SourceUnit, UnitRange, UnitReader};
use std::path::Path;
use std::sync::Arc;

/// Tables with at least this many rows are split into rowid ranges.
const SPLIT_MIN_ROWS: u64 = 200_000;

/// Open `path` read-only with a reader connection for each of `jobs` workers
/// (shared by profiling, loading and verifying), inspect it and plan the migration.
pub fn plan_file(
    path: &Path,
    options: &PlanOptions,
    jobs: usize,
) -> Result<(SourceSnapshot, Plan)> {
    let (snapshot, schema) = inspect_file(path, jobs)?;
    let plan =
        planner::plan(&snapshot, &schema, options, jobs.max(1)).map_err(|e| e.with_path(path))?;
    Ok((snapshot, plan))
}

/// Open `path` read-only with a reader for each of `jobs` workers and inspect it
/// (for `--into-existing`, where the target decides the types).
pub fn inspect_file(path: &Path, jobs: usize) -> Result<(SourceSnapshot, SourceSchema)> {
    let snapshot = SourceSnapshot::open(path, jobs.max(1))?;
    let schema = inspect::inspect(snapshot.connection()).map_err(|e| e.with_path(path))?;
    Ok((snapshot, schema))
}

impl From<SqliteError> for SourceError {
    fn from(err: SqliteError) -> Self {
        SourceError::read(err)
    }
}

/// Reads SQLite rows inside the shared snapshot.
struct SqliteReader {
    conn: rusqlite::Connection,
}

impl UnitReader for SqliteReader {
    fn read(
        &mut self,
        table: &TablePlan,
        unit: SourceUnit,
        on_row: &mut RowSink<'_>,
    ) -> std::result::Result<(), SourceError> {
        let columns: Vec<&str> = table.source_columns.iter().map(String::as_str).collect();
        let range = match unit.range {
            UnitRange::WholeTable => RowRange::All,
            UnitRange::Rowids { first, last } => RowRange::Rowids { first, last },
        };
        read::read_rows(
            &self.conn,
            &table.source_name,
            &columns,
            table.splittable,
            range,
            |rowid, cells| on_row(rowid, cells),
        )
    }
}

/// `count` readers inside `snapshot`, one per worker.
pub fn readers(snapshot: &SourceSnapshot, count: usize) -> Result<Vec<Box<dyn UnitReader>>> {
    Ok(snapshot
        .take_readers(count)?
        .into_iter()
        .map(|conn| Box::new(SqliteReader { conn }) as Box<dyn UnitReader>)
        .collect())
}

/// Split the plan into units: large rowid tables into ranges, largest first.
pub fn work_units(snapshot: &SourceSnapshot, plan: &Plan, jobs: usize) -> Result<Vec<SourceUnit>> {
    let mut units = Vec::new();
    for (i, table) in plan.tables.iter().enumerate() {
        let bounds = if jobs > 1 && table.splittable && table.source_rows >= SPLIT_MIN_ROWS {
            read::rowid_bounds(snapshot.connection(), &table.source_name)?
        } else {
            None
        };
        match bounds {
            Some((min, max)) => {
                let parts =
                    (table.source_rows / (SPLIT_MIN_ROWS / 2)).clamp(2, jobs as u64 * 4) as usize;
                units.extend(read::split_range(min, max, parts).into_iter().map(
                    |(first, last)| SourceUnit {
                        table: i,
                        range: UnitRange::Rowids { first, last },
                    },
                ));
            }
            None => units.push(SourceUnit {
                table: i,
                range: UnitRange::WholeTable,
            }),
        }
    }
    Ok(units)
}

/// The SQLite file as a run's [`RowSource`]: one snapshot, a plan.
pub struct SqliteSource {
    snapshot: SourceSnapshot,
    plan: Arc<Plan>,
}

impl SqliteSource {
    /// `plan` (of the file `snapshot` holds open) as a source.
    pub fn new(snapshot: SourceSnapshot, plan: Arc<Plan>) -> Self {
        SqliteSource { snapshot, plan }
    }
}

impl RowSource for SqliteSource {
    fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    fn work_units(&self, jobs: usize) -> std::result::Result<Vec<SourceUnit>, SourceError> {
        Ok(work_units(&self.snapshot, &self.plan, jobs)?)
    }

    fn readers(&self, count: usize) -> std::result::Result<Vec<Box<dyn UnitReader>>, SourceError> {
        Ok(readers(&self.snapshot, count)?)
    }

    fn changed_since_taken(&self) -> std::result::Result<bool, SourceError> {
        Ok(self.snapshot.changed_since_taken()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgharbor_source::SourceErrorKind;

    /// A file with one table of `rows` rows, planned for `jobs` workers.
    fn planned(dir: &Path, rows: i64, jobs: usize) -> SqliteSource {
        let path = dir.join("app.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)")
            .unwrap();
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO note SELECT i, 'note ' || i FROM n",
            [rows],
        )
        .unwrap();
        drop(conn);
        let (snapshot, plan) = plan_file(&path, &PlanOptions::default(), jobs).unwrap();
        SqliteSource::new(snapshot, Arc::new(plan))
    }

    #[test]
    fn a_large_table_is_split_into_ranges_covering_every_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let source = planned(dir.path(), 400_000, 2);
        let units = source.work_units(2).unwrap();
        assert!(units.len() > 1, "{units:?}");
        let mut reader = source.readers(1).unwrap().pop().unwrap();
        let table = &source.plan().tables[0];
        let mut seen = 0u64;
        for unit in units {
            reader
                .read(table, unit, &mut |_, _| {
                    seen += 1;
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(seen, 400_000);
        assert!(!source.changed_since_taken().unwrap());
    }

    #[test]
    fn the_sinks_error_comes_back_out_of_the_reader_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let source = planned(dir.path(), 10, 1);
        let units = source.work_units(1).unwrap();
        assert_eq!(
            units,
            [SourceUnit {
                table: 0,
                range: UnitRange::WholeTable
            }]
        );
        let mut reader = source.readers(1).unwrap().pop().unwrap();
        let mut rows = 0;
        let err = reader
            .read(&source.plan().tables[0], units[0], &mut |_, _| {
                rows += 1;
                Err(SourceError::from_sink(std::io::Error::other("target full")))
            })
            .unwrap_err();
        assert_eq!(rows, 1, "the read stops at the sink's error");
        assert_eq!(err.kind(), SourceErrorKind::Sink);
        let cause = err.into_cause().unwrap();
        assert_eq!(cause.to_string(), "target full");
    }

    #[test]
    fn a_read_failure_keeps_sqlites_error_as_its_source_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let source = planned(dir.path(), 10, 1);
        let mut table = source.plan().tables[0].clone();
        table.source_name = "gone".into();
        let mut reader = source.readers(1).unwrap().pop().unwrap();
        let whole = SourceUnit {
            table: 0,
            range: UnitRange::WholeTable,
        };
        let err = reader.read(&table, whole, &mut |_, _| Ok(())).unwrap_err();
        assert_eq!(err.kind(), SourceErrorKind::Read);
        assert_eq!(err.to_string(), "table \"gone\": reading rows");
        let sqlite = std::error::Error::source(&err).expect("SQLite's error is the source");
        assert!(sqlite.to_string().contains("no such table"), "{sqlite}");
        assert!(!err.to_string().contains("no such table"));
    }
}
