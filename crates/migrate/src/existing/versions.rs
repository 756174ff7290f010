//! The application's migration bookkeeping (Alembic, Django, Prisma, …):
//! compared between source and target, never copied.

use super::matching::TargetColumn;
use super::{usage, ExistingOptions};
use crate::error::{pg_error, MigrateError};
use pgharbor_core::plan::ReportedObject;
use pgharbor_core::schema::{quote_ident, QualifiedName};
use pgharbor_sqlite::inspect::SourceSchema;
use pgharbor_sqlite::open::SourceSnapshot;
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// Tables that record which schema migrations ran, with the columns naming a
/// migration; compared, never copied.
pub const BOOKKEEPING: &[(&str, &[&str])] = &[
    ("alembic_version", &["version_num"]),
    ("migratehistory", &["name"]),
    ("django_migrations", &["app", "name"]),
    ("_prisma_migrations", &["migration_name"]),
    ("schema_migrations", &["version"]),
];

pub(super) fn is_bookkeeping(table: &str) -> bool {
    BOOKKEEPING.iter().any(|(t, _)| *t == table)
}

pub(super) fn bookkeeping_columns(table: &str) -> &'static [&'static str] {
    BOOKKEEPING
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, c)| *c)
        .unwrap_or(&[])
}

/// Compare migration bookkeeping rows on both sides, the source's rows taken
/// through the declared corresponding revisions.
pub(super) fn compare_versions(
    snapshot: &SourceSnapshot,
    schema: &SourceSchema,
    target_versions: &BTreeMap<String, Vec<String>>,
    options: &ExistingOptions,
) -> Result<Vec<ReportedObject>, MigrateError> {
    let mut reported = Vec::new();
    for table in schema.tables.iter().filter(|t| is_bookkeeping(&t.name)) {
        let source = source_rows_as_text(snapshot, &table.name)?;
        let Some(target) = target_versions.get(&table.name) else {
            return Err(usage(format!(
                "the source has migration table {:?} but the target does not: the target schema was not created by the same application (start the application once against the empty PostgreSQL database so its migrations run, then stop it)",
                table.name
            )));
        };
        let pairs: Vec<(String, String)> = source
            .iter()
            .map(|row| {
                let declared = options
                    .corresponding_revisions
                    .iter()
                    .find(|(sqlite, _)| sqlite == row);
                (
                    row.clone(),
                    declared.map_or(row, |(_, postgres)| postgres).clone(),
                )
            })
            .collect();
        let mut corresponding: Vec<String> = pairs.iter().map(|(_, c)| c.clone()).collect();
        corresponding.sort();
        let same = &corresponding == target;
        if !same && !options.allow_version_mismatch {
            return Err(usage(version_mismatch(&table.name, &pairs, target)));
        }
        let state = match (same, corresponding == source) {
            (true, true) => "match",
            (true, false) => "correspond (declared)",
            (false, _) => "DIFFER (allowed)",
        };
        reported.push(ReportedObject {
            kind: "migration bookkeeping".into(),
            name: table.name.clone(),
            note: format!("not copied; versions {state}: {}", shown(target)),
            sql: None,
        });
    }
    Ok(reported)
}

/// Why the run stops when the migration versions differ, with both sides'
/// differing revision ids and the ways on.
pub(super) fn version_mismatch(
    table: &str,
    pairs: &[(String, String)],
    target: &[String],
) -> String {
    let only_source: Vec<String> = pairs
        .iter()
        .filter(|(_, corresponding)| !target.contains(corresponding))
        .map(|(sqlite, _)| sqlite.clone())
        .collect();
    let only_target: Vec<String> = target
        .iter()
        .filter(|t| !pairs.iter().any(|(_, corresponding)| corresponding == *t))
        .cloned()
        .collect();
    let declare = match (only_source.as_slice(), only_target.as_slice()) {
        ([sqlite], [postgres]) => format!("--corresponding-revision {sqlite}={postgres}"),
        _ => "--corresponding-revision SQLITE_ID=POSTGRESQL_ID (once per pair)".into(),
    };
    format!(
        "migration versions differ in {table:?}: the SQLite file has {} where PostgreSQL has {}. \
         Some applications keep a separate migration history per database kind, so their revision ids differ between SQLite and PostgreSQL at the same application version: \
         if both sides run the same application version, declare which revisions correspond with {declare}, or proceed with --allow-version-mismatch. \
         Otherwise run the same application version on both sides: if the source is older, start that version once on the SQLite file so it migrates it; if the target is older, start the newer version against PostgreSQL",
        shown(&only_source),
        shown(&only_target)
    )
}

pub(super) fn shown(rows: &[String]) -> String {
    if rows.is_empty() {
        "(empty)".into()
    } else {
        rows.join(", ")
    }
}

pub(super) fn source_rows_as_text(
    snapshot: &SourceSnapshot,
    table: &str,
) -> Result<Vec<String>, MigrateError> {
    let columns = bookkeeping_columns(table);
    let sql = format!(
        "SELECT {} FROM {}",
        pgharbor_sqlite::inspect::select_list(columns),
        quote_ident(table)
    );
    let err = |e| {
        MigrateError::from(pgharbor_sqlite::SqliteError::from_sqlite(
            e,
            format!("reading {table}"),
        ))
    };
    let mut stmt = snapshot.connection().prepare(&sql).map_err(err)?;
    let mut rows: Vec<String> = stmt
        .query_map([], |r| {
            (0..columns.len())
                .map(|i| {
                    r.get_ref(i).map(|v| match v {
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        other => String::from_utf8_lossy(other.as_bytes().unwrap_or_default())
                            .into_owned(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.join("/"))
        })
        .and_then(|rows| rows.collect())
        .map_err(err)?;
    rows.sort();
    Ok(rows)
}

pub(super) async fn target_bookkeeping(
    client: &Client,
    schema: &str,
    tables: &BTreeMap<String, Vec<TargetColumn>>,
) -> Result<BTreeMap<String, Vec<String>>, MigrateError> {
    let mut out = BTreeMap::new();
    for (name, columns) in BOOKKEEPING.iter().filter(|(n, _)| tables.contains_key(*n)) {
        let key: Vec<String> = columns
            .iter()
            .map(|c| format!("{}::text", quote_ident(c)))
            .collect();
        let sql = format!(
            "SELECT concat_ws('/', {}) FROM {}",
            key.join(", "),
            QualifiedName::new(schema, *name)
        );
        let rows = client
            .query(sql.as_str(), &[])
            .await
            .map_err(pg_error(format!("reading {name}")))?;
        let mut values: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        values.sort();
        out.insert(name.to_string(), values);
    }
    Ok(out)
}

/// A migration-history table compared by its latest migration only, never
/// copied: for applications whose history holds other migrations per database
/// kind but ends at the same one on the same version (n8n's `migrations`: 137
/// rows on SQLite, 143 on PostgreSQL for n8n 2.8.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestMigration {
    /// The table (`migrations`).
    pub table: String,
    /// The column naming a migration (`name`).
    pub name_column: String,
    /// The column ordering migrations, the latest highest (`timestamp`).
    pub order_column: String,
}

/// One side's latest migration: its name and ordering value as text.
type Latest = Option<(String, String)>;

/// Compare the latest migration of both sides; a difference stops the run
/// naming the side that is behind.
pub(super) async fn compare_latest_migration(
    client: &Client,
    snapshot: &SourceSnapshot,
    schema: &str,
    history: &LatestMigration,
) -> Result<ReportedObject, MigrateError> {
    let source = source_latest(snapshot, history)?;
    let sql = format!(
        "SELECT {name}::text, {order}::text FROM {table} ORDER BY {order} DESC LIMIT 1",
        name = quote_ident(&history.name_column),
        order = quote_ident(&history.order_column),
        table = QualifiedName::new(schema, &history.table)
    );
    let target: Latest = match client.query_opt(sql.as_str(), &[]).await {
        Ok(row) => row.map(|r| (r.get(0), r.get(1))),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            return Err(usage(format!(
                "the target has no migration table {:?}: the application has not created its schema there (start it once against the empty PostgreSQL database so its migrations run, then stop it)",
                history.table
            )))
        }
        Err(e) => return Err(pg_error(format!("reading {}", history.table))(e)),
    };
    let name = |side: &Latest| {
        side.as_ref()
            .map_or("(none)".to_string(), |(n, _)| n.clone())
    };
    if source.as_ref().map(|(n, _)| n) != target.as_ref().map(|(n, _)| n) {
        return Err(usage(latest_mismatch(&history.table, &source, &target)));
    }
    Ok(ReportedObject {
        kind: "migration history".into(),
        name: history.table.clone(),
        note: format!(
            "not copied; latest migration the same on both sides: {}",
            name(&target)
        ),
        sql: None,
    })
}

/// Why the run stops when the latest migrations differ: which side is behind.
fn latest_mismatch(table: &str, source: &Latest, target: &Latest) -> String {
    let behind = match (source, target) {
        (None, _) => "the SQLite file has no migrations: it was not written by this application",
        (_, None) => "PostgreSQL has none: let the application create its schema there first (start it once against the empty database, then stop it)",
        (Some((_, s)), Some((_, t))) if order_value(s) < order_value(t) => {
            "the SQLite file is behind: start the application's newer version once on the SQLite data so it migrates it, then run again"
        }
        _ => "PostgreSQL is behind: create the schema with the same application version that wrote the SQLite file (start that version once against an empty database)",
    };
    let shown = |side: &Latest| side.as_ref().map_or("(none)".into(), |(n, _)| n.clone());
    format!(
        "the latest migration in {table:?} differs: the SQLite file's is {}, PostgreSQL's is {}; {behind}",
        shown(source),
        shown(target)
    )
}

/// Orders numbers numerically and anything else as text.
fn order_value(text: &str) -> (Option<i128>, &str) {
    (text.parse().ok(), text)
}

fn source_latest(
    snapshot: &SourceSnapshot,
    history: &LatestMigration,
) -> Result<Latest, MigrateError> {
    let sql = format!(
        "SELECT CAST({name} AS TEXT), CAST({order} AS TEXT) FROM {table} ORDER BY {order} DESC LIMIT 1",
        name = quote_ident(&history.name_column),
        order = quote_ident(&history.order_column),
        table = quote_ident(&history.table)
    );
    let err = |e| {
        MigrateError::from(pgharbor_sqlite::SqliteError::from_sqlite(
            e,
            format!("reading {}", history.table),
        ))
    };
    let mut stmt = snapshot.connection().prepare(&sql).map_err(err)?;
    let mut rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(err)?;
    rows.next().transpose().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(name: &str, order: &str) -> Latest {
        Some((name.into(), order.into()))
    }

    #[test]
    fn a_differing_latest_migration_names_the_side_that_is_behind() {
        let older = at("AddStoredAtToExecutionEntity1768557000000", "1768557000000");
        let newer = at("AddWorkflowUnpublishScope1769900001000", "1769900001000");
        let sqlite_behind = latest_mismatch("migrations", &older, &newer);
        assert!(
            sqlite_behind.contains("the SQLite file is behind"),
            "{sqlite_behind}"
        );
        assert!(sqlite_behind.contains("AddStoredAtToExecutionEntity1768557000000"));
        let pg_behind = latest_mismatch("migrations", &newer, &older);
        assert!(pg_behind.contains("PostgreSQL is behind"), "{pg_behind}");
        assert!(latest_mismatch("migrations", &newer, &None).contains("PostgreSQL has none"));
        // Numbers compare as numbers: 9 is before 10.
        assert!(
            latest_mismatch("m", &at("a", "9"), &at("b", "10")).contains("SQLite file is behind")
        );
    }
}
