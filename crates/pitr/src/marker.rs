//! Row-count markers: the exact number of rows of every table of every
//! database, each database counted inside one repeatable-read transaction,
//! with the WAL position they hold at. A base backup writes one right after
//! it ends (`<id>/rowcounts.json`); `backups verify --pitr` replays the
//! archive to that position and compares the restored copy table by table
//! ([`compare`]).
//!
//! Why the comparison is exact: every database's snapshot is taken first
//! (the first statement of its transaction), then the WAL insert position
//! `L` is read, then the rows are counted under those snapshots. A
//! transaction visible to a snapshot had written and flushed its commit
//! record before the snapshot was taken, so before `L`: a recovery that
//! stops just before `L` (`recovery_target_inclusive = off`: every record
//! starting before `L` replayed, none at or after it) has it. A
//! transaction invisible to a snapshot
//! (running then, or begun after) may still have committed before `L` (its
//! commit record written between the snapshot and the reading of `L`):
//! the restored copy is asked which of those it holds as committed, and
//! when one is, the marker is reported as not exact for that database and
//! that database's differences are notes, not failures (the other
//! databases' differences stay failures). On a server not writing while
//! the marker is taken there is none.
//!
//! Unlogged tables are not counted (a base backup leaves them out and a
//! restore starts them empty); nor are tables the user may not read (named
//! in `not_counted`, and left out of the comparison: a base-backup user
//! with only `REPLICATION` reads none; grant it `pg_read_all_data`).

use chrono::{DateTime, Utc};
use pgharbor_backup::{BackupError, BackupErrorKind, Result};
use pgharbor_conn::{connect, ConnConfig};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::lsn::Lsn;

/// The marker's object in a base backup's folder.
pub const MARKER_NAME: &str = "rowcounts.json";
/// The marker format this version writes and reads.
pub const MARKER_FORMAT: u32 = 1;

/// Row counts of every table at one WAL position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCountMarker {
    /// Format ([`MARKER_FORMAT`]).
    pub format: u32,
    /// When the counts were taken.
    pub taken_at: DateTime<Utc>,
    /// The WAL insert position read after every snapshot was taken: a
    /// recovery stopping just before it (not inclusive) holds what the
    /// counts saw.
    pub lsn: String,
    /// Every database counted.
    pub databases: Vec<DatabaseCounts>,
}

/// One database's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseCounts {
    /// The database.
    pub name: String,
    /// Its transaction's snapshot (`txid_current_snapshot()`, `xmin:xmax:xip,…`).
    pub snapshot: String,
    /// Every permanent table, `schema.table` quoted as needed, sorted.
    pub tables: Vec<TableCount>,
    /// Tables the user may not read, left uncounted.
    #[serde(default)]
    pub not_counted: Vec<String>,
}

/// One table's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCount {
    /// `schema.table` (`format('%I.%I')`).
    pub table: String,
    /// Its rows (`count(*) FROM ONLY`).
    pub rows: u64,
}

/// The permanent tables of the current database with whether the user may read them.
const TABLES_SQL: &str = "SELECT format('%I.%I', n.nspname, c.relname), \
        has_table_privilege(c.oid, 'SELECT') \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' AND c.relpersistence = 'p' \
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
       AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' \
     ORDER BY 1";

/// Takes a marker of every database of `server` that the user may connect to.
pub async fn take_marker(server: &ConnConfig) -> Result<RowCountMarker> {
    let (client, _task) = connect(server).await?;
    let names: Vec<String> = client
        .query(
            "SELECT datname::text FROM pg_database WHERE datallowconn AND NOT datistemplate \
               AND has_database_privilege(datname, 'CONNECT') ORDER BY datname",
            &[],
        )
        .await
        .map_err(|e| BackupError::postgres("listing the databases to count", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut open = Vec::new();
    for name in names {
        let (db, task) = connect(&server.with_dbname(&name)).await?;
        let snapshot = begin_snapshot(&db, &name).await?;
        open.push((name, db, task, snapshot));
    }
    let row = client
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .map_err(|e| BackupError::postgres("reading the WAL position of the row counts", e))?;
    let lsn: String = row.get(0);
    let taken_at = Utc::now();
    let mut databases = Vec::new();
    for (name, db, _task, snapshot) in open {
        let (tables, not_counted) = count_tables(&db, &name).await?;
        db.batch_execute("COMMIT")
            .await
            .map_err(|e| BackupError::postgres(format!("ending the count of {name}"), e))?;
        databases.push(DatabaseCounts {
            name,
            snapshot,
            tables,
            not_counted,
        });
    }
    Ok(RowCountMarker {
        format: MARKER_FORMAT,
        taken_at,
        lsn,
        databases,
    })
}

/// Opens a repeatable-read, read-only transaction and fixes its snapshot.
async fn begin_snapshot(db: &Client, name: &str) -> Result<String> {
    db.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| BackupError::postgres(format!("starting the count of {name}"), e))?;
    let row = db
        .query_one("SELECT txid_current_snapshot()::text", &[])
        .await
        .map_err(|e| BackupError::postgres(format!("taking the snapshot of {name}"), e))?;
    Ok(row.get(0))
}

/// Counts the rows of every readable permanent table (the other names apart).
pub(crate) async fn count_tables(
    db: &Client,
    database: &str,
) -> Result<(Vec<TableCount>, Vec<String>)> {
    let listed = db
        .query(TABLES_SQL, &[])
        .await
        .map_err(|e| BackupError::postgres(format!("listing the tables of {database}"), e))?;
    let mut tables = Vec::new();
    let mut not_counted = Vec::new();
    for row in listed {
        let table: String = row.get(0);
        if !row.get::<_, bool>(1) {
            not_counted.push(table);
            continue;
        }
        let count = db
            .query_one(&format!("SELECT count(*) FROM ONLY {table}"), &[])
            .await
            .map_err(|e| BackupError::postgres(format!("counting {database}: {table}"), e))?;
        tables.push(TableCount {
            table,
            rows: u64::try_from(count.get::<_, i64>(0)).unwrap_or(0),
        });
    }
    Ok((tables, not_counted))
}

impl RowCountMarker {
    /// Its WAL position.
    pub fn position(&self) -> Result<Lsn> {
        Lsn::parse(&self.lsn).ok_or_else(|| {
            BackupError::new(
                BackupErrorKind::Integrity,
                format!(
                    "the row-count marker's WAL position '{}' is not one",
                    self.lsn
                ),
            )
        })
    }

    /// Tables counted, over every database.
    pub fn table_count(&self) -> usize {
        self.databases.iter().map(|d| d.tables.len()).sum()
    }
}

/// How a restored copy's counts compare with a marker's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MarkerComparison {
    /// Tables compared.
    pub tables_compared: usize,
    /// Each table whose rows differ, missing or extra, named
    /// (`shop: public.item has 95 rows, the marker 96`), in the databases
    /// whose marker is exact: failures.
    pub differences: Vec<String>,
    /// Databases whose marker is not exact: a transaction the snapshot did
    /// not see had committed before the marker's position (named with it).
    pub inexact: Vec<String>,
    /// The differences in those databases: notes, not failures.
    pub inexact_differences: Vec<String>,
    /// Tables left out: the backup user could not read them when the
    /// marker was taken (`database: schema.table`).
    pub not_counted: Vec<String>,
}

/// Compares the restored copy (connected through `config`, paused at the
/// marker's position) with `marker`, database by database.
pub async fn compare(config: &ConnConfig, marker: &RowCountMarker) -> Result<MarkerComparison> {
    let mut comparison = MarkerComparison::default();
    for counted in &marker.databases {
        let (db, _task) = match connect(&config.with_dbname(&counted.name)).await {
            Ok(connected) => connected,
            Err(e) => {
                comparison.differences.push(format!(
                    "{}: the database is missing from the restored copy ({})",
                    counted.name,
                    pgharbor_conn::conn_text(&e)
                ));
                continue;
            }
        };
        let unseen = committed_unseen(&db, &counted.snapshot, &counted.name).await?;
        let (restored, _) = count_tables(&db, &counted.name).await?;
        comparison.tables_compared += counted.tables.len();
        comparison.not_counted.extend(
            counted
                .not_counted
                .iter()
                .map(|table| format!("{}: {table}", counted.name)),
        );
        let differences = restored_differences(counted, restored);
        comparison.add_database(&counted.name, unseen, differences);
    }
    Ok(comparison)
}

impl MarkerComparison {
    /// Adds one database's `differences`: failures, or notes when the
    /// transactions `unseen` by its snapshot had committed before the
    /// marker's position (that database's only).
    fn add_database(&mut self, name: &str, unseen: Option<String>, differences: Vec<String>) {
        match unseen {
            Some(xids) => {
                self.inexact.push(format!(
                    "{name}: transaction(s) {xids} committed between its snapshot and the \
                     marker's position"
                ));
                self.inexact_differences.extend(differences);
            }
            None => self.differences.extend(differences),
        }
    }
}

/// The differences between `counted` and the restored copy's tables,
/// leaving out those the backup user could not read when the marker was
/// taken (the restored copy is counted as its superuser, which reads all).
fn restored_differences(counted: &DatabaseCounts, restored: Vec<TableCount>) -> Vec<String> {
    let restored: Vec<TableCount> = restored
        .into_iter()
        .filter(|t| !counted.not_counted.contains(&t.table))
        .collect();
    table_differences(&counted.name, &counted.tables, &restored)
}

/// The transactions the marker's `snapshot` did not see that the restored
/// copy holds as committed, listed; `None` when there is none.
async fn committed_unseen(db: &Client, snapshot: &str, name: &str) -> Result<Option<String>> {
    let row = db
        .query_one(
            "WITH s AS (SELECT $1::text::txid_snapshot AS marker, txid_current_snapshot() AS here) \
             SELECT string_agg(x::text, ', ' ORDER BY x) FROM s, LATERAL ( \
               SELECT txid_snapshot_xip(marker) AS x \
               UNION ALL \
               SELECT generate_series(txid_snapshot_xmax(marker), txid_snapshot_xmax(here) - 1) \
             ) unseen \
             WHERE txid_visible_in_snapshot(x, here) AND txid_status(x) = 'committed'",
            &[&snapshot],
        )
        .await
        .map_err(|e| {
            BackupError::postgres(
                format!("comparing {name}'s transactions with the marker's snapshot"),
                e,
            )
        })?;
    Ok(row.get(0))
}

/// Each table of `expected` whose rows differ in `restored`, or missing
/// from it, and each table only `restored` has.
pub fn table_differences(
    database: &str,
    expected: &[TableCount],
    restored: &[TableCount],
) -> Vec<String> {
    let mut differences = Vec::new();
    for table in expected {
        match restored.iter().find(|t| t.table == table.table) {
            Some(found) if found.rows == table.rows => {}
            Some(found) => differences.push(format!(
                "{database}: {} has {} rows, the marker {}",
                table.table, found.rows, table.rows
            )),
            None => differences.push(format!(
                "{database}: {} is missing (the marker counted {} rows)",
                table.table, table.rows
            )),
        }
    }
    for table in restored {
        if !expected.iter().any(|t| t.table == table.table) {
            differences.push(format!(
                "{database}: {} ({} rows) is not in the marker",
                table.table, table.rows
            ));
        }
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(list: &[(&str, u64)]) -> Vec<TableCount> {
        list.iter()
            .map(|(table, rows)| TableCount {
                table: (*table).to_owned(),
                rows: *rows,
            })
            .collect()
    }

    #[test]
    fn every_differing_missing_or_extra_table_is_named() {
        let expected = counts(&[("public.a", 3), ("public.b", 5), ("public.c", 1)]);
        let restored = counts(&[("public.a", 3), ("public.b", 4), ("public.d", 2)]);
        assert_eq!(
            table_differences("shop", &expected, &restored),
            vec![
                "shop: public.b has 4 rows, the marker 5",
                "shop: public.c is missing (the marker counted 1 rows)",
                "shop: public.d (2 rows) is not in the marker",
            ]
        );
        assert!(table_differences("shop", &expected, &expected).is_empty());
    }

    #[test]
    fn only_the_inexact_databases_differences_become_notes() {
        let mut comparison = MarkerComparison::default();
        comparison.add_database("shop", None, vec!["shop: public.a has 2 rows".to_owned()]);
        comparison.add_database(
            "busy",
            Some("812".to_owned()),
            vec!["busy: public.b has 9 rows".to_owned()],
        );
        assert_eq!(comparison.differences, ["shop: public.a has 2 rows"]);
        assert_eq!(
            comparison.inexact_differences,
            ["busy: public.b has 9 rows"]
        );
        assert_eq!(comparison.inexact.len(), 1);
        assert!(comparison.inexact[0].starts_with("busy: transaction(s) 812"));
    }

    #[test]
    fn tables_the_backup_user_could_not_read_are_left_out() {
        let counted = DatabaseCounts {
            name: "shop".to_owned(),
            snapshot: "10:10:".to_owned(),
            tables: counts(&[("public.a", 3)]),
            not_counted: vec!["public.secret".to_owned()],
        };
        let restored = counts(&[("public.a", 3), ("public.secret", 7)]);
        assert!(restored_differences(&counted, restored.clone()).is_empty());
        let extra = counts(&[("public.a", 3), ("public.new", 1)]);
        assert_eq!(
            restored_differences(&counted, extra),
            vec!["shop: public.new (1 rows) is not in the marker"]
        );
    }
}
