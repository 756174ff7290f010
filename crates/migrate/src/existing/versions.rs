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
