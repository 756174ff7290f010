//! Reading the schema of an SQLite database.

use crate::error::{Result, SqliteError, SqliteErrorKind};
use pgharbor_core::schema::quote_ident;
use rusqlite::Connection;
use std::collections::HashMap;

/// A column as SQLite declares it.
#[derive(Debug, Clone)]
pub struct SourceColumn {
    /// Name.
    pub name: String,
    /// Declared type, as written (may be empty).
    pub declared: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// Default expression as written in the schema.
    pub default_sql: Option<String>,
    /// 1-based position in the primary key, 0 if not part of it.
    pub pk_position: usize,
    /// Generated column: `Some("VIRTUAL")` or `Some("STORED")`.
    pub generated: Option<&'static str>,
}

/// How an index came to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexOrigin {
    /// `CREATE INDEX`.
    Created,
    /// A `UNIQUE` constraint in `CREATE TABLE`.
    UniqueConstraint,
}

/// An index of a table.
#[derive(Debug, Clone)]
pub struct SourceIndex {
    /// Name (`sqlite_autoindex_…` for constraint indexes).
    pub name: String,
    /// Unique.
    pub unique: bool,
    /// How it was made.
    pub origin: IndexOrigin,
    /// Key columns: `(name, descending, collation)`; `None` name = expression.
    pub columns: Vec<(Option<String>, bool, String)>,
    /// Has a `WHERE` clause.
    pub partial: bool,
    /// The `CREATE INDEX` statement, for expression and partial indexes.
    pub sql: Option<String>,
}

/// A foreign key.
#[derive(Debug, Clone)]
pub struct SourceForeignKey {
    /// Referencing columns.
    pub columns: Vec<String>,
    /// Parent table.
    pub parent: String,
    /// Parent columns (empty = the parent's primary key).
    pub parent_columns: Vec<String>,
    /// `ON DELETE` action.
    pub on_delete: String,
    /// `ON UPDATE` action.
    pub on_update: String,
}

/// An ordinary table.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// Name.
    pub name: String,
    /// Columns, generated ones included.
    pub columns: Vec<SourceColumn>,
    /// Declared `WITHOUT ROWID`.
    pub without_rowid: bool,
    /// Index of the `INTEGER PRIMARY KEY` column that aliases the rowid.
    pub rowid_alias: Option<usize>,
    /// Declared `AUTOINCREMENT`.
    pub autoincrement: bool,
    /// `sqlite_sequence` value, if any.
    pub sequence: Option<i64>,
    /// Indexes and unique constraints (not the primary key).
    pub indexes: Vec<SourceIndex>,
    /// Foreign keys.
    pub foreign_keys: Vec<SourceForeignKey>,
    /// The `CREATE TABLE` statement.
    pub sql: String,
}

impl SourceTable {
    /// Primary key columns in key order.
    pub fn primary_key(&self) -> Vec<usize> {
        let mut pk: Vec<(usize, usize)> = self
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.pk_position > 0)
            .map(|(i, c)| (c.pk_position, i))
            .collect();
        pk.sort();
        pk.into_iter().map(|(_, i)| i).collect()
    }
}

/// A non-table object: view, trigger, virtual table or its internal table.
#[derive(Debug, Clone)]
pub struct SourceObject {
    /// Name.
    pub name: String,
    /// Its SQL.
    pub sql: String,
}

/// Everything in the database.
#[derive(Debug, Clone, Default)]
pub struct SourceSchema {
    /// Ordinary tables.
    pub tables: Vec<SourceTable>,
    /// Views.
    pub views: Vec<SourceObject>,
    /// Triggers.
    pub triggers: Vec<SourceObject>,
    /// Virtual tables (FTS, R*Tree, …).
    pub virtual_tables: Vec<SourceObject>,
    /// Internal (shadow) tables of virtual tables, with their owner.
    pub shadow_tables: Vec<(String, String)>,
}

fn sql_err(context: String) -> impl FnOnce(rusqlite::Error) -> SqliteError {
    move |e| SqliteError::from_sqlite(e, context)
}

/// Read the whole schema through `conn`.
pub fn inspect(conn: &Connection) -> Result<SourceSchema> {
    let mut schema = SourceSchema::default();
    let sequences = read_sequences(conn)?;
    let sqls = read_master_sql(conn)?;
    let mut stmt = conn
        .prepare("SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' ORDER BY name")
        .map_err(sql_err("listing tables".into()))?;
    let listed: Vec<(String, String, bool)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(sql_err("listing tables".into()))?;
    let virtual_names: Vec<String> = listed
        .iter()
        .filter(|(_, kind, _)| kind == "virtual")
        .map(|(n, _, _)| n.clone())
        .collect();
    for (name, kind, without_rowid) in listed {
        let sql = sqls.get(&name).cloned().unwrap_or_default();
        match kind.as_str() {
            "table" if name.starts_with("sqlite_") => {}
            "table" => schema
                .tables
                .push(read_table(conn, name, without_rowid, sql, &sequences)?),
            "virtual" => schema.virtual_tables.push(SourceObject { name, sql }),
            "shadow" => {
                let owner = virtual_names
                    .iter()
                    .filter(|v| name.starts_with(&format!("{v}_")))
                    .max_by_key(|v| v.len())
                    .cloned()
                    .unwrap_or_default();
                schema.shadow_tables.push((name, owner));
            }
            _ => {}
        }
    }
    let mut objects = conn
        .prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_master WHERE type IN ('view', 'trigger') ORDER BY name")
        .map_err(sql_err("listing views and triggers".into()))?;
    let rows: Vec<(String, String, String)> = objects
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(sql_err("listing views and triggers".into()))?;
    for (kind, name, sql) in rows {
        let object = SourceObject { name, sql };
        if kind == "view" {
            schema.views.push(object);
        } else {
            schema.triggers.push(object);
        }
    }
    Ok(schema)
}

fn read_sequences(conn: &Connection) -> Result<HashMap<String, i64>> {
    let exists: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'sqlite_sequence'",
            [],
            |r| r.get(0),
        )
        .map_err(sql_err("looking for sqlite_sequence".into()))?;
    if !exists {
        return Ok(HashMap::new());
    }
    let mut stmt = conn
        .prepare("SELECT name, seq FROM sqlite_sequence")
        .map_err(sql_err("reading sqlite_sequence".into()))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(sql_err("reading sqlite_sequence".into()))?;
    Ok(rows.into_iter().collect())
}

fn read_master_sql(conn: &Connection) -> Result<HashMap<String, String>> {
    let mut stmt = conn
        .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master")
        .map_err(sql_err("reading sqlite_master".into()))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(sql_err("reading sqlite_master".into()))?;
    Ok(rows.into_iter().collect())
}

fn read_table(
    conn: &Connection,
    name: String,
    without_rowid: bool,
    sql: String,
    sequences: &HashMap<String, i64>,
) -> Result<SourceTable> {
    let ctx = |what: &str| format!("reading {what} of table {name:?}");
    let mut stmt = conn
        .prepare("SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")
        .map_err(sql_err(ctx("columns")))?;
    let columns: Vec<SourceColumn> = stmt
        .query_map([&name], |r| {
            let hidden: i64 = r.get(5)?;
            Ok(SourceColumn {
                name: r.get(0)?,
                declared: r.get(1)?,
                not_null: r.get(2)?,
                default_sql: r.get(3)?,
                pk_position: r.get::<_, i64>(4)? as usize,
                generated: match hidden {
                    2 => Some("VIRTUAL"),
                    3 => Some("STORED"),
                    _ => None,
                },
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(sql_err(ctx("columns")))?;
    if columns.is_empty() {
        return Err(SqliteError::new(SqliteErrorKind::Schema, "has no columns").with_table(&name));
    }
    let pk: Vec<&SourceColumn> = columns.iter().filter(|c| c.pk_position > 0).collect();
    let rowid_alias =
        if !without_rowid && pk.len() == 1 && pk[0].declared.eq_ignore_ascii_case("INTEGER") {
            columns.iter().position(|c| c.pk_position > 0)
        } else {
            None
        };
    let autoincrement = sql.to_ascii_uppercase().contains("AUTOINCREMENT");
    let indexes = read_indexes(conn, &name)?;
    let foreign_keys = read_foreign_keys(conn, &name)?;
    Ok(SourceTable {
        sequence: sequences.get(&name).copied(),
        name,
        columns,
        without_rowid,
        rowid_alias,
        autoincrement,
        indexes,
        foreign_keys,
        sql,
    })
}

fn read_indexes(conn: &Connection, table: &str) -> Result<Vec<SourceIndex>> {
    let ctx = || format!("reading indexes of table {table:?}");
    let mut stmt = conn
        .prepare("SELECT il.name, il.\"unique\", il.origin, il.partial, coalesce(m.sql, '') FROM pragma_index_list(?1) il LEFT JOIN sqlite_master m ON m.name = il.name ORDER BY il.name")
        .map_err(sql_err(ctx()))?;
    let listed: Vec<(String, bool, String, bool, String)> = stmt
        .query_map([table], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(sql_err(ctx()))?;
    let mut indexes = Vec::new();
    for (name, unique, origin, partial, sql) in listed {
        let origin = match origin.as_str() {
            "pk" => continue,
            "u" => IndexOrigin::UniqueConstraint,
            _ => IndexOrigin::Created,
        };
        let mut cols = conn
            .prepare("SELECT name, \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno")
            .map_err(sql_err(ctx()))?;
        let columns = cols
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(sql_err(ctx()))?;
        indexes.push(SourceIndex {
            name,
            unique,
            origin,
            columns,
            partial,
            sql: (!sql.is_empty()).then_some(sql),
        });
    }
    Ok(indexes)
}

fn read_foreign_keys(conn: &Connection, table: &str) -> Result<Vec<SourceForeignKey>> {
    let ctx = || format!("reading foreign keys of table {table:?}");
    let mut stmt = conn
        .prepare("SELECT id, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq")
        .map_err(sql_err(ctx()))?;
    type FkRow = (i64, String, String, Option<String>, String, String);
    let rows: Vec<FkRow> = stmt
        .query_map([table], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(sql_err(ctx()))?;
    let mut fks: Vec<(i64, SourceForeignKey)> = Vec::new();
    for (id, parent, from, to, on_update, on_delete) in rows {
        if fks.last().map(|(last, _)| *last) != Some(id) {
            fks.push((
                id,
                SourceForeignKey {
                    columns: Vec::new(),
                    parent,
                    parent_columns: Vec::new(),
                    on_delete,
                    on_update,
                },
            ));
        }
        let fk = &mut fks.last_mut().expect("pushed above").1;
        fk.columns.push(from);
        if let Some(to) = to {
            fk.parent_columns.push(to);
        }
    }
    Ok(fks.into_iter().map(|(_, fk)| fk).collect())
}

/// `SELECT` list naming `columns` of `table`, quoted.
pub fn select_list(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}
