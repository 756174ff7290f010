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

/// A table that records the migrations run: a known bookkeeping table,
/// or the one a preset names.
pub(super) fn is_bookkeeping(table: &str, options: &ExistingOptions) -> bool {
    BOOKKEEPING.iter().any(|(t, _)| *t == table) || is_app_history(table, options)
}

fn is_app_history(table: &str, options: &ExistingOptions) -> bool {
    options
        .app_version
        .as_ref()
        .is_some_and(|rule| rule.table == table)
}

/// An application's migration history as its preset reads it: the current
/// version is one column of the latest row (or of every row).
#[derive(Debug, Clone)]
pub struct AppVersion {
    /// The application, for messages (`Home Assistant`).
    pub app: String,
    /// The history table (never copied).
    pub table: String,
    /// The column naming the version.
    pub column: String,
    /// The latest row is the one with the highest value of this column;
    /// without it every row is compared (Alembic's single row).
    pub latest_by: Option<String>,
    /// How to tell which side is older.
    pub order: VersionOrder,
    /// The schema versions the preset was tested with.
    pub tested: Vec<String>,
    /// The application's own command to upgrade the SQLite side.
    pub upgrade_sqlite: Option<String>,
    /// The application's own command to upgrade the PostgreSQL side.
    pub upgrade_postgres: Option<String>,
}

/// How to tell which of two versions is older.
#[derive(Debug, Clone)]
pub enum VersionOrder {
    /// Versions are numbers.
    Number,
    /// The `latest_by` values are compared (timestamps).
    LatestBy,
    /// Known versions, oldest first; others cannot be placed.
    Listed(Vec<String>),
}

/// One side's version: the version, and the latest row's `latest_by` value.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct VersionRead {
    version: String,
    latest: Option<String>,
}

impl VersionRead {
    /// The rows a version query returned: (version, `latest_by`), latest
    /// first; without `latest_by` every row, sorted here (not by the
    /// database, whose collation may differ between the two sides).
    fn from_rows(mut rows: Vec<(String, Option<String>)>, rule: &AppVersion) -> VersionRead {
        if rule.latest_by.is_none() {
            rows.sort();
        }
        VersionRead {
            version: rows
                .iter()
                .map(|(v, _)| v.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            latest: rows.into_iter().next().and_then(|(_, latest)| latest),
        }
    }
}

impl AppVersion {
    /// The query reading the version from `table` (quoted): the latest
    /// row's version and `latest_by` value, or every row's version; `cast`
    /// makes both text (`::text` on PostgreSQL). The outputs are aliased
    /// and the order names the table's column, so the latest row is found
    /// by the column's own type, never by its text.
    fn query(&self, table: &str, cast: &str) -> String {
        let column = quote_ident(&self.column);
        match &self.latest_by {
            Some(latest) => format!(
                "SELECT history.{column}{cast} AS version, history.{0}{cast} AS latest FROM {table} AS history \
                 ORDER BY history.{0} DESC NULLS LAST LIMIT 1",
                quote_ident(latest)
            ),
            None => format!(
                "SELECT history.{column}{cast} AS version, NULL{cast} AS latest FROM {table} AS history"
            ),
        }
    }
}

/// What the target's migration bookkeeping holds.
#[derive(Debug, Default)]
pub(super) struct TargetVersions {
    /// Every row of each known bookkeeping table, as text.
    bookkeeping: BTreeMap<String, Vec<String>>,
    /// The application's version (a preset's rule), `None` when the target
    /// lacks the table.
    app: Option<VersionRead>,
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
    target_versions: &TargetVersions,
    options: &ExistingOptions,
) -> Result<Vec<ReportedObject>, MigrateError> {
    let mut reported = Vec::new();
    if let Some(rule) = &options.app_version {
        reported.push(compare_app_version(
            snapshot,
            schema,
            target_versions.app.as_ref(),
            rule,
            options,
        )?);
    }
    let known = schema
        .tables
        .iter()
        .filter(|t| is_bookkeeping(&t.name, options) && !is_app_history(&t.name, options));
    for table in known {
        let source = source_rows_as_text(snapshot, &table.name)?;
        let Some(target) = target_versions.bookkeeping.get(&table.name) else {
            return Err(usage(format!(
                "the source has migration table {:?} but the target does not: the target schema was not created by the same application{}",
                table.name,
                options.create_schema_hint()
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
    options: &ExistingOptions,
) -> Result<TargetVersions, MigrateError> {
    let app = match &options.app_version {
        Some(rule) if tables.contains_key(&rule.table) => {
            Some(target_app_version(client, schema, rule).await?)
        }
        _ => None,
    };
    let mut out = BTreeMap::new();
    let known = BOOKKEEPING
        .iter()
        .filter(|(n, _)| tables.contains_key(*n) && !is_app_history(n, options));
    for (name, columns) in known {
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
    Ok(TargetVersions {
        bookkeeping: out,
        app,
    })
}

/// The application's version in the target (its history table exists).
async fn target_app_version(
    client: &Client,
    schema: &str,
    rule: &AppVersion,
) -> Result<VersionRead, MigrateError> {
    let table = QualifiedName::new(schema, &rule.table);
    let sql = rule.query(&table.to_string(), "::text");
    let rows = client
        .query(sql.as_str(), &[])
        .await
        .map_err(pg_error(format!(
            "reading {}'s version from {table}",
            rule.app
        )))?;
    Ok(VersionRead::from_rows(
        rows.iter()
            .map(|r| (r.get::<_, Option<String>>(0).unwrap_or_default(), r.get(1)))
            .collect(),
        rule,
    ))
}

/// The application's version in the SQLite file, `None` when it lacks the table.
fn source_app_version(
    snapshot: &SourceSnapshot,
    schema: &SourceSchema,
    rule: &AppVersion,
) -> Result<Option<VersionRead>, MigrateError> {
    if !schema.tables.iter().any(|t| t.name == rule.table) {
        return Ok(None);
    }
    let sql = rule.query(&quote_ident(&rule.table), "");
    let err = |e| {
        MigrateError::from(pgharbor_sqlite::SqliteError::from_sqlite(
            e,
            format!("reading {}'s version from {}", rule.app, rule.table),
        ))
    };
    let mut stmt = snapshot.connection().prepare(&sql).map_err(err)?;
    let rows: Vec<(String, Option<String>)> = stmt
        .query_map([], |r| {
            Ok((value_text(r.get_ref(0)?), nullable_text(r.get_ref(1)?)))
        })
        .and_then(|rows| rows.collect())
        .map_err(err)?;
    Ok(Some(VersionRead::from_rows(rows, rule)))
}

fn value_text(value: rusqlite::types::ValueRef<'_>) -> String {
    match value {
        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
        rusqlite::types::ValueRef::Real(x) => x.to_string(),
        other => String::from_utf8_lossy(other.as_bytes().unwrap_or_default()).into_owned(),
    }
}

fn nullable_text(value: rusqlite::types::ValueRef<'_>) -> Option<String> {
    (!matches!(value, rusqlite::types::ValueRef::Null)).then(|| value_text(value))
}

/// Compare the application's version on both sides (a preset's rule).
fn compare_app_version(
    snapshot: &SourceSnapshot,
    schema: &SourceSchema,
    target: Option<&VersionRead>,
    rule: &AppVersion,
    options: &ExistingOptions,
) -> Result<ReportedObject, MigrateError> {
    let Some(target) = target else {
        return Err(usage(format!(
            "the target has no {:?} table ({}'s migration history): {}'s schema is not there{}",
            rule.table,
            rule.app,
            rule.app,
            options.create_schema_hint()
        )));
    };
    let untested = if rule.tested.is_empty() || rule.tested.contains(&target.version) {
        String::new()
    } else {
        format!(
            " (not a version the preset was tested with: {})",
            rule.tested.join(", ")
        )
    };
    let reported = |state: &str| ReportedObject {
        kind: "migration bookkeeping".into(),
        name: rule.table.clone(),
        note: format!("not copied; versions {state}: {}{untested}", target.version),
        sql: None,
    };
    let Some(source) = source_app_version(snapshot, schema, rule)? else {
        if options.allow_version_mismatch {
            return Ok(reported(
                "not compared (the SQLite file has no such table; allowed)",
            ));
        }
        return Err(usage(format!(
            "the SQLite file has no {:?} table ({}'s migration history): it is not {}'s database, or its migrations never ran; --allow-version-mismatch loads it without comparing versions",
            rule.table, rule.app, rule.app
        )));
    };
    let declared = options
        .corresponding_revisions
        .iter()
        .find(|(sqlite, _)| *sqlite == source.version)
        .map(|(_, postgres)| postgres.clone());
    let corresponding = declared.clone().unwrap_or_else(|| source.version.clone());
    match (corresponding == target.version, declared.is_some()) {
        (true, false) => Ok(reported("match")),
        (true, true) => Ok(reported("correspond (declared)")),
        (false, _) if options.allow_version_mismatch => Ok(reported("DIFFER (allowed)")),
        (false, _) => Err(usage(app_version_mismatch(rule, &source, target))),
    }
}

/// Which side is older, when the rule can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Older {
    Sqlite,
    Postgres,
}

fn older_side(rule: &AppVersion, source: &VersionRead, target: &VersionRead) -> Option<Older> {
    let ordering = match &rule.order {
        VersionOrder::Number => compare_numbers(&source.version, &target.version),
        VersionOrder::LatestBy => {
            compare_latest(source.latest.as_deref()?, target.latest.as_deref()?)
        }
        VersionOrder::Listed(known) => {
            let position = |v: &str| known.iter().position(|k| k == v);
            Some(position(&source.version)?.cmp(&position(&target.version)?))
        }
    }?;
    match ordering {
        std::cmp::Ordering::Less => Some(Older::Sqlite),
        std::cmp::Ordering::Greater => Some(Older::Postgres),
        std::cmp::Ordering::Equal => None,
    }
}

/// Two whole numbers; anything else (`1.10`, `r7`) cannot be placed (`None`).
fn compare_numbers(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    match (a.trim().parse::<i128>(), b.trim().parse::<i128>()) {
        (Ok(x), Ok(y)) => Some(x.cmp(&y)),
        _ => None,
    }
}

/// Two `latest_by` values: whole numbers, or timestamps written alike
/// (texts of equal length, `2026-01-02 10:00:00`).
fn compare_latest(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    compare_numbers(a, b).or_else(|| (a.len() == b.len()).then(|| a.cmp(b)))
}

/// Why the run stops when the application's versions differ: which side is
/// older, which to upgrade, and the application's own command for it.
fn app_version_mismatch(rule: &AppVersion, source: &VersionRead, target: &VersionRead) -> String {
    let app = &rule.app;
    let head = format!(
        "{app}'s schema versions differ ({}.{}): the SQLite file is at {}, PostgreSQL at {}.",
        rule.table, rule.column, source.version, target.version
    );
    let command = |c: &Option<String>| {
        c.clone().unwrap_or_else(|| {
            format!("run the newer {app} version on it once so its migrations run")
        })
    };
    let way = match older_side(rule, source, target) {
        Some(Older::Sqlite) => format!(
            " The SQLite side is older: upgrade it to PostgreSQL's version first ({}), then run pgharbor again; or create the PostgreSQL schema with the {app} version of the SQLite file.",
            command(&rule.upgrade_sqlite)
        ),
        Some(Older::Postgres) => format!(
            " The PostgreSQL side is older: upgrade the PostgreSQL side ({}), then run pgharbor again.",
            command(&rule.upgrade_postgres)
        ),
        None => format!(
            " pgharbor cannot tell which side is older from these versions: run the same {app} version on both sides (SQLite side: {}; PostgreSQL side: {}).",
            command(&rule.upgrade_sqlite),
            command(&rule.upgrade_postgres)
        ),
    };
    format!(
        "{head}{way} If both sides do run the same {app} version, declare it with --corresponding-revision {}={}, or proceed with --allow-version-mismatch",
        source.version, target.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(order: VersionOrder) -> AppVersion {
        AppVersion {
            app: "App".into(),
            table: "history".into(),
            column: "name".into(),
            latest_by: Some("timestamp".into()),
            order,
            tested: Vec::new(),
            upgrade_sqlite: Some("app upgrade --sqlite".into()),
            upgrade_postgres: None,
        }
    }

    fn read(version: &str, latest: &str) -> VersionRead {
        VersionRead {
            version: version.into(),
            latest: Some(latest.into()),
        }
    }

    #[test]
    fn the_older_side_is_told_by_number_timestamp_or_the_tested_list() {
        let number = rule(VersionOrder::Number);
        assert_eq!(
            older_side(&number, &read("9", ""), &read("42", "")),
            Some(Older::Sqlite)
        );
        let by_time = rule(VersionOrder::LatestBy);
        let (a, b) = (
            read("AddB1769900001000", "1769900001000"),
            read("AddA1690000000000", "1690000000000"),
        );
        assert_eq!(older_side(&by_time, &a, &b), Some(Older::Postgres));
        let listed = rule(VersionOrder::Listed(vec!["r1".into(), "r2".into()]));
        assert_eq!(
            older_side(&listed, &read("r1", ""), &read("r2", "")),
            Some(Older::Sqlite)
        );
        assert_eq!(older_side(&listed, &read("r1", ""), &read("r9", "")), None);
    }

    #[test]
    fn numbers_are_whole_numbers_and_anything_else_cannot_be_placed() {
        let number = rule(VersionOrder::Number);
        assert_eq!(
            older_side(&number, &read("10", ""), &read("9", "")),
            Some(Older::Postgres)
        );
        assert_eq!(
            older_side(&number, &read("1.10", ""), &read("1.9", "")),
            None,
            "a dotted version is not a number"
        );
        assert_eq!(
            older_side(&number, &read("abc", ""), &read("abd", "")),
            None
        );
        let by_time = rule(VersionOrder::LatestBy);
        assert_eq!(
            older_side(&by_time, &read("a", "2026-01-02"), &read("b", "2025-12-31")),
            Some(Older::Postgres)
        );
        assert_eq!(older_side(&number, &read("1e3", ""), &read("20", "")), None);
    }

    #[test]
    fn every_row_is_sorted_by_pgharbor_not_the_databases_collation() {
        let mut every_row = rule(VersionOrder::Number);
        every_row.latest_by = None;
        let rows = vec![
            ("b2".to_string(), None),
            ("B1".to_string(), None),
            ("a3".to_string(), None),
        ];
        assert_eq!(
            VersionRead::from_rows(rows, &every_row).version,
            "B1, a3, b2"
        );
        assert!(!every_row.query("t", "").contains("ORDER BY"));
    }

    #[test]
    fn the_mismatch_message_says_what_to_upgrade_with_which_command() {
        let number = rule(VersionOrder::Number);
        let text = app_version_mismatch(&number, &read("41", ""), &read("42", ""));
        assert!(
            text.contains("The SQLite side is older") && text.contains("(app upgrade --sqlite)"),
            "{text}"
        );
        let text = app_version_mismatch(&number, &read("43", ""), &read("42", ""));
        assert!(
            text.contains("The PostgreSQL side is older")
                && text.contains("run the newer App version on it once"),
            "{text}"
        );
        let listed = rule(VersionOrder::Listed(Vec::new()));
        let text = app_version_mismatch(&listed, &read("abc", ""), &read("def", ""));
        assert!(text.contains("cannot tell which side is older"), "{text}");
        assert!(text.contains("--corresponding-revision abc=def"), "{text}");
    }
}
