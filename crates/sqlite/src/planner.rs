//! From inspected schema and value profiles to a [`Plan`].
//!
//! Each column gets the narrowest PostgreSQL type that holds every stored value
//! exactly, using the declared type as the hint. When the values do not fit the
//! declaration the column is widened (never truncated, never reinterpreted) and
//! the decision carries the reason.

use crate::defaults;
use crate::error::{Result, SqliteError, SqliteErrorKind};
use crate::inspect::{IndexOrigin, SourceIndex, SourceSchema, SourceTable};
use crate::open::SourceSnapshot;
use crate::profile::{self, Checks, ColumnProfile, TableProfile};
use crate::read::{self, RowRange};
use crate::sqltext;
use pgharbor_core::forms::JsonForm;
use pgharbor_core::plan::{ColumnDecision, Plan, ReportedObject, RowKey, TablePlan, ValuePolicy};
use pgharbor_core::schema::{
    check_ident, quote_ident, ColumnSpec, ForeignKeySpec, Identity, IndexSpec, PgType,
    QualifiedName, TableSpec, ViewSpec,
};
use rusqlite::Connection;
use std::sync::Mutex;

/// Options that shape the plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Target schema.
    pub schema: String,
    /// Lossy rules in force.
    pub policy: ValuePolicy,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            schema: "public".into(),
            policy: ValuePolicy::default(),
        }
    }
}

/// What a declared type suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// INT, INTEGER, BIGINT, …; `small` for SMALLINT/TINYINT/INT2.
    Integer {
        /// Declared as a small integer.
        small: bool,
    },
    /// REAL, FLOAT, DOUBLE.
    Real,
    /// NUMERIC, DECIMAL, optionally with precision and scale.
    Numeric(Option<(u32, u32)>),
    /// BOOLEAN, BOOL.
    Boolean,
    /// DATE.
    Date,
    /// DATETIME, TIMESTAMP; `tz` when declared with a time zone.
    Timestamp {
        /// Declared with a time zone.
        tz: bool,
    },
    /// JSON, JSONB.
    Json,
    /// UUID, GUID.
    Uuid,
    /// TEXT, CHAR, VARCHAR(n), CLOB.
    Text(Option<u32>),
    /// BLOB.
    Blob,
    /// No type, or one nobody recognises: decided by the values.
    None,
}

/// Interpret a declared type the way a person reading the schema would.
pub fn hint(declared: &str) -> Hint {
    let upper = declared.trim().to_ascii_uppercase();
    let has = |s: &str| upper.contains(s);
    let args = || -> Vec<u32> {
        upper
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(inner, _)| {
                inner
                    .split(',')
                    .filter_map(|a| a.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    if upper.is_empty() {
        Hint::None
    } else if has("BOOL") {
        Hint::Boolean
    } else if has("DATETIME") || has("TIMESTAMP") {
        Hint::Timestamp {
            tz: has("TZ") || has("WITH TIME ZONE"),
        }
    } else if upper == "DATE" {
        Hint::Date
    } else if has("JSON") {
        Hint::Json
    } else if has("UUID") || has("GUID") {
        Hint::Uuid
    } else if has("INT") {
        Hint::Integer {
            small: has("SMALLINT") || has("TINYINT") || upper == "INT2",
        }
    } else if has("CHAR") || has("CLOB") || has("TEXT") || has("STRING") {
        Hint::Text(
            args()
                .first()
                .copied()
                .filter(|n| *n > 0 && *n <= 10_485_760),
        )
    } else if has("BLOB") || has("BINARY") || has("BYTEA") {
        Hint::Blob
    } else if has("REAL") || has("FLOA") || has("DOUB") {
        Hint::Real
    } else if has("NUMERIC") || has("DECIMAL") || has("NUMBER") || has("MONEY") {
        let a = args();
        Hint::Numeric(match a.as_slice() {
            [p] if *p >= 1 && *p <= 1000 => Some((*p, 0)),
            [p, s] if *p >= 1 && *p <= 1000 && s <= p => Some((*p, *s)),
            _ => None,
        })
    } else {
        Hint::None
    }
}

fn checks_for(hint: Hint) -> Checks {
    Checks {
        boolean: hint == Hint::Boolean,
        temporal: matches!(hint, Hint::Date | Hint::Timestamp { .. }),
        json: hint == Hint::Json,
        uuid: hint == Hint::Uuid,
        decimal: matches!(hint, Hint::Numeric(_)),
        length: matches!(hint, Hint::Text(Some(_))),
    }
}

fn natural_type(hint: Hint) -> PgType {
    match hint {
        Hint::Integer { small: true } => PgType::SmallInt,
        Hint::Integer { small: false } => PgType::BigInt,
        Hint::Real => PgType::Double,
        Hint::Numeric(ps) => PgType::Numeric {
            precision_scale: ps,
        },
        Hint::Boolean => PgType::Boolean,
        Hint::Date => PgType::Date,
        Hint::Timestamp { tz: false } => PgType::Timestamp,
        Hint::Timestamp { tz: true } => PgType::Timestamptz,
        Hint::Json => PgType::Jsonb,
        Hint::Uuid => PgType::Uuid,
        Hint::Text(Some(n)) => PgType::Varchar(n),
        Hint::Text(None) | Hint::None => PgType::Text,
        Hint::Blob => PgType::Bytea,
    }
}

const EXACT_DOUBLE_INT: i64 = 1 << 53;

/// Decide the type of one column from its declaration and its values.
pub fn decide(declared: &str, p: &ColumnProfile) -> (PgType, String) {
    let h = hint(declared);
    let shown = if declared.is_empty() {
        "no type".to_string()
    } else {
        declared.to_string()
    };
    if p.values() == 0 {
        return (
            natural_type(h),
            format!("declared {shown}; no values to contradict it"),
        );
    }
    if p.blobs > 0 {
        return if p.blobs == p.values() {
            (
                PgType::Bytea,
                format!("declared {shown}; every value is a blob"),
            )
        } else {
            (
                PgType::Bytea,
                format!(
                    "declared {shown}; {} blob(s) mixed with {} other value(s): text kept as its UTF-8 bytes, numbers as their decimal text",
                    p.blobs,
                    p.values() - p.blobs
                ),
            )
        };
    }
    let misfit = || {
        p.forms
            .as_ref()
            .and_then(|f| f.first_misfit.clone())
            .map(|v| format!(", e.g. {v}"))
            .unwrap_or_default()
    };
    let numbers_only = p.texts == 0;
    let ints_only = numbers_only && p.reals == 0;
    let forms = p.forms.clone().unwrap_or_default();
    let fits = |t: PgType, why: &str| Some((t, format!("declared {shown}; {why}")));
    let decided = match h {
        Hint::Integer { small } if ints_only => {
            let in_small = p.int_min.unwrap_or(0) >= i64::from(i16::MIN) && p.int_max.unwrap_or(0) <= i64::from(i16::MAX);
            if small && in_small {
                fits(PgType::SmallInt, "every value is an integer in range")
            } else {
                fits(PgType::BigInt, "every value is a 64-bit integer")
            }
        }
        Hint::Real if numbers_only && ints_within_double(p) => fits(PgType::Double, "every value is a number a double holds exactly"),
        Hint::Numeric(Some((prec, scale))) => match forms.decimal {
            Some((int_digits, s)) if s <= scale && int_digits <= i64::from(prec - scale) => {
                fits(PgType::Numeric { precision_scale: Some((prec, scale)) }, "every value fits its precision and scale")
            }
            Some(_) => fits(PgType::Numeric { precision_scale: None }, "some values exceed the declared precision or scale: unconstrained numeric keeps them exactly"),
            None => None,
        },
        Hint::Numeric(None) if forms.decimal.is_some() => fits(PgType::Numeric { precision_scale: None }, "every value is a decimal number"),
        Hint::Boolean if forms.all_bool => fits(PgType::Boolean, "every value is a boolean spelling (0/1, t/f, true/false)"),
        Hint::Date if numbers_only => None,
        Hint::Date if forms.all_date && p.ints + p.reals == 0 => fits(PgType::Date, "every value is an ISO date"),
        Hint::Timestamp { .. } if p.ints + p.reals == 0 && forms.all_timestamp => fits(PgType::Timestamp, "every value is an ISO timestamp without offset"),
        Hint::Timestamp { .. } if p.ints + p.reals == 0 && forms.all_timestamptz => fits(PgType::Timestamptz, "every value is an ISO timestamp with a UTC offset"),
        Hint::Json => match forms.json {
            JsonForm::JsonbSafe => fits(PgType::Jsonb, "every value is JSON"),
            JsonForm::JsonOnly => Some((PgType::Json, format!("declared {shown}; every value is JSON, but some have duplicate keys or \\u0000 escapes that jsonb would not keep: json keeps the text exactly"))),
            JsonForm::Invalid => None,
        },
        Hint::Uuid if p.ints + p.reals == 0 && forms.all_uuid => fits(PgType::Uuid, "every value is a canonical UUID"),
        Hint::Text(Some(n)) if p.ints + p.reals == 0 => {
            if p.max_chars.unwrap_or(0) <= i64::from(n) {
                fits(PgType::Varchar(n), "every value fits the declared length")
            } else {
                Some((PgType::Text, format!("declared {shown}; holds values of {} characters, longer than {n}: widened to text, nothing truncated", p.max_chars.unwrap_or(0))))
            }
        }
        Hint::Text(None) | Hint::Blob | Hint::None if p.ints + p.reals == 0 => fits(PgType::Text, "every value is text"),
        _ => None,
    };
    if let Some(d) = decided {
        return d;
    }
    by_values(&shown, p, h, &misfit())
}

fn ints_within_double(p: &ColumnProfile) -> bool {
    p.ints == 0
        || (p.int_min.unwrap_or(0).unsigned_abs() <= EXACT_DOUBLE_INT as u64
            && p.int_max.unwrap_or(0).unsigned_abs() <= EXACT_DOUBLE_INT as u64)
}

/// The fallback when values contradict the declaration: no blobs here.
fn by_values(shown: &str, p: &ColumnProfile, h: Hint, misfit: &str) -> (PgType, String) {
    let temporal = matches!(h, Hint::Date | Hint::Timestamp { .. });
    if p.texts == 0 && p.reals == 0 {
        let note = if temporal {
            "holds integers (epoch values): kept as bigint, never reinterpreted as dates"
        } else {
            "every value is an integer"
        };
        return (PgType::BigInt, format!("declared {shown}; {note}"));
    }
    if p.texts == 0 {
        return if ints_within_double(p) {
            (PgType::Double, format!("declared {shown}; holds integers and reals: double precision holds all exactly"))
        } else {
            (PgType::Numeric { precision_scale: None }, format!("declared {shown}; holds reals and integers beyond 2^53: numeric holds all exactly"))
        };
    }
    let mix = format!("{} text, {} integer, {} real", p.texts, p.ints, p.reals);
    (PgType::Text, format!("declared {shown}; values do not all fit ({mix}{misfit}): widened to text, numbers kept as their exact decimal text"))
}

/// Rowid spans above this are profiled in parallel ranges.
const PROFILE_SPLIT_ROWIDS: i64 = 100_000;

/// Plan every table, index, key and view of `schema`, profiling values on
/// `threads` connections of `snapshot` in parallel.
pub fn plan(
    snapshot: &SourceSnapshot,
    schema: &SourceSchema,
    options: &PlanOptions,
    threads: usize,
) -> Result<Plan> {
    let mut reported = report_unplanned(schema);
    for table in &schema.tables {
        check_ident(&table.name).map_err(|why| {
            SqliteError::new(
                SqliteErrorKind::Schema,
                format!("cannot be a PostgreSQL table name: {why}"),
            )
            .with_table(&table.name)
        })?;
        for c in &table.columns {
            check_ident(&c.name).map_err(|why| {
                SqliteError::new(
                    SqliteErrorKind::Schema,
                    format!(
                        "column {:?} cannot be a PostgreSQL column name: {why}",
                        c.name
                    ),
                )
                .with_table(&table.name)
            })?;
        }
    }
    let profiles = profile_all(snapshot, schema, threads)?;
    let mut tables: Vec<TablePlan> = schema
        .tables
        .iter()
        .zip(&profiles)
        .map(|(table, profile)| plan_table(table, profile, options, &mut reported))
        .collect();
    resolve_foreign_keys(&mut tables, schema, &options.schema, &mut reported);
    tables.sort_by(|a, b| {
        b.source_rows
            .cmp(&a.source_rows)
            .then(a.source_name.cmp(&b.source_name))
    });
    let booleans = unambiguous_boolean_columns(&tables);
    let booleans: Vec<&str> = booleans.iter().map(String::as_str).collect();
    let mut views = Vec::new();
    for v in &schema.views {
        let select = sqltext::view_select(&v.sql)
            .ok_or_else(|| "its SELECT could not be found".to_string())
            .and_then(|select| sqltext::translate_fragment(&select));
        match select {
            Ok(select_sql) => views.push(ViewSpec {
                name: QualifiedName::new(&options.schema, &v.name),
                select_sql: boolean_literals(&select_sql, &booleans),
            }),
            Err(why) => reported.push(ReportedObject {
                kind: "view".into(),
                name: v.name.clone(),
                note: format!("not recreated: {why}"),
                sql: Some(v.sql.clone()),
            }),
        }
    }
    Ok(Plan {
        target_schema: options.schema.clone(),
        tables,
        views,
        reported,
        policy: options.policy,
    })
}

/// Profile every table, large ones in rowid ranges, on `threads` threads.
fn profile_all(
    snapshot: &SourceSnapshot,
    schema: &SourceSchema,
    threads: usize,
) -> Result<Vec<TableProfile>> {
    let mut work: Vec<(usize, RowRange)> = Vec::new();
    for (i, table) in schema.tables.iter().enumerate() {
        let bounds = if table.without_rowid {
            None
        } else {
            read::rowid_bounds(snapshot.connection(), &table.name)?
        };
        match bounds {
            Some((min, max)) if threads > 1 && max.saturating_sub(min) > PROFILE_SPLIT_ROWIDS => {
                for (first, last) in read::split_range(min, max, threads) {
                    work.push((i, RowRange::Rowids { first, last }));
                }
            }
            _ => work.push((i, RowRange::All)),
        }
    }
    let queue = Mutex::new(work);
    let results = Mutex::new(vec![TableProfile::default(); schema.tables.len()]);
    let readers = snapshot.take_readers(threads.max(1))?;
    let outcome: Vec<(Connection, Result<()>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = readers
            .into_iter()
            .map(|conn| {
                let (queue, results) = (&queue, &results);
                scope.spawn(move || {
                    let outcome = (|| {
                        while let Some((i, range)) = queue.lock().expect("profile queue").pop() {
                            let table = &schema.tables[i];
                            let names: Vec<&str> =
                                table.columns.iter().map(|c| c.name.as_str()).collect();
                            let checks: Vec<Checks> = table
                                .columns
                                .iter()
                                .map(|c| checks_for(hint(&c.declared)))
                                .collect();
                            let part =
                                profile::profile_table(&conn, &table.name, &names, &checks, range)?;
                            results.lock().expect("profile results")[i].merge(part);
                        }
                        Ok(())
                    })();
                    (conn, outcome)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("profile thread panicked"))
            .collect()
    });
    let mut connections = Vec::new();
    for (conn, result) in outcome {
        connections.push(conn);
        result?;
    }
    snapshot.return_readers(connections);
    let mut profiles = results.into_inner().expect("profile results");
    for (profile, table) in profiles.iter_mut().zip(&schema.tables) {
        if profile.columns.is_empty() {
            profile.columns = vec![ColumnProfile::default(); table.columns.len()];
        }
    }
    Ok(profiles)
}

fn report_unplanned(schema: &SourceSchema) -> Vec<ReportedObject> {
    let mut reported = Vec::new();
    for v in &schema.virtual_tables {
        reported.push(ReportedObject {
            kind: "virtual table".into(),
            name: v.name.clone(),
            note: "not copied: virtual tables (FTS, R*Tree, …) are SQLite modules; recreate the search with PostgreSQL full-text search or an extension".into(),
            sql: Some(v.sql.clone()),
        });
    }
    for (shadow, owner) in &schema.shadow_tables {
        reported.push(ReportedObject {
            kind: "internal table".into(),
            name: shadow.clone(),
            note: format!("not copied: internal storage of virtual table {owner:?}"),
            sql: None,
        });
    }
    for t in &schema.triggers {
        reported.push(ReportedObject {
            kind: "trigger".into(),
            name: t.name.clone(),
            note: "not copied: SQLite trigger bodies are not PostgreSQL; rewrite it as a PL/pgSQL trigger function if the application needs it".into(),
            sql: Some(t.sql.clone()),
        });
    }
    reported
}

fn plan_table(
    table: &SourceTable,
    profile: &TableProfile,
    options: &PlanOptions,
    reported: &mut Vec<ReportedObject>,
) -> TablePlan {
    let mut columns = Vec::new();
    let mut decisions = Vec::new();
    for (i, col) in table.columns.iter().enumerate() {
        let (pg_type, reason) = decide(&col.declared, &profile.columns[i]);
        let widened = pg_type != natural_type(hint(&col.declared));
        let mut default = None;
        if let Some(sql) = &col.default_sql {
            match defaults::translate(sql, pg_type) {
                Ok(d) => default = d,
                Err(why) => reported.push(ReportedObject {
                    kind: "default".into(),
                    name: format!("{}.{}", table.name, col.name),
                    note: format!("not carried: {why}"),
                    sql: Some(sql.clone()),
                }),
            }
        }
        if let Some(kind) = col.generated {
            reported.push(ReportedObject {
                kind: "generated column".into(),
                name: format!("{}.{}", table.name, col.name),
                note: format!(
                    "{kind} generated column: its computed values are stored as a plain column"
                ),
                sql: None,
            });
        }
        let identity = (table.rowid_alias == Some(i)
            && matches!(pg_type, PgType::BigInt | PgType::SmallInt))
        .then_some(Identity::ByDefault {
            source_high_water: table.sequence,
        });
        columns.push(ColumnSpec {
            name: col.name.clone(),
            pg_type,
            nullable: !col.not_null,
            default: if identity.is_some() { None } else { default },
            identity,
        });
        decisions.push(ColumnDecision {
            name: col.name.clone(),
            declared: col.declared.clone(),
            pg_type,
            reason,
            widened,
        });
    }
    let pk = table.primary_key();
    let primary_key =
        (!pk.is_empty()).then(|| pk.iter().map(|i| table.columns[*i].name.clone()).collect());
    let booleans: Vec<&str> = columns
        .iter()
        .filter(|c| c.pg_type == PgType::Boolean)
        .map(|c| c.name.as_str())
        .collect();
    let indexes = table
        .indexes
        .iter()
        .filter_map(|idx| plan_index(table, idx, reported))
        .map(|mut idx| {
            if idx.translated {
                idx.elements = idx
                    .elements
                    .iter()
                    .map(|e| boolean_literals(e, &booleans))
                    .collect();
                idx.predicate = idx.predicate.map(|p| boolean_literals(&p, &booleans));
            }
            idx
        })
        .collect();
    let row_key = if pk.is_empty() {
        RowKey::Rowid
    } else {
        RowKey::Columns(pk)
    };
    TablePlan {
        source_name: table.name.clone(),
        spec: TableSpec {
            name: QualifiedName::new(&options.schema, &table.name),
            columns,
            primary_key,
            indexes,
            foreign_keys: Vec::new(),
        },
        decisions,
        row_key,
        source_rows: profile.rows,
        sequence_floor: table.sequence,
        splittable: !table.without_rowid,
        source_columns: table.columns.iter().map(|c| c.name.clone()).collect(),
        computed_by_target: Vec::new(),
    }
}

fn plan_index(
    table: &SourceTable,
    idx: &SourceIndex,
    reported: &mut Vec<ReportedObject>,
) -> Option<IndexSpec> {
    let has_expression = idx.columns.iter().any(|(name, _, _)| name.is_none());
    if has_expression || idx.partial {
        let sql = idx.sql.clone()?;
        let translated = sqltext::split_index(&sql)
            .ok_or_else(|| "its SQL could not be read".to_string())
            .and_then(|(elements, predicate)| {
                let elements = sqltext::translate_fragment(&elements)?;
                let predicate = predicate
                    .map(|p| sqltext::translate_fragment(&p))
                    .transpose()?;
                Ok((elements, predicate))
            });
        return match translated {
            Ok((elements, predicate)) => Some(IndexSpec {
                name: idx.name.clone(),
                elements: vec![elements],
                unique: idx.unique,
                method: None,
                predicate,
                translated: true,
            }),
            Err(why) => {
                reported.push(ReportedObject {
                    kind: "index".into(),
                    name: idx.name.clone(),
                    note: format!("not created: {why}"),
                    sql: Some(sql),
                });
                None
            }
        };
    }
    let mut elements = Vec::new();
    for (name, desc, coll) in &idx.columns {
        let name = name.as_ref()?;
        if !coll.eq_ignore_ascii_case("BINARY") {
            reported.push(ReportedObject {
                kind: "collation".into(),
                name: format!("{}.{}", table.name, name),
                note: format!(
                    "index {:?} uses SQLite collation {coll} on this column; built with PostgreSQL's default (case-sensitive) ordering",
                    idx.name
                ),
                sql: idx.sql.clone(),
            });
        }
        elements.push(format!(
            "{}{}",
            quote_ident(name),
            if *desc { " DESC" } else { "" }
        ));
    }
    let name = match idx.origin {
        IndexOrigin::UniqueConstraint => {
            let cols: Vec<&str> = idx
                .columns
                .iter()
                .filter_map(|(n, _, _)| n.as_deref())
                .collect();
            format!("{}_{}_key", table.name, cols.join("_"))
        }
        IndexOrigin::Created => idx.name.clone(),
    };
    Some(IndexSpec {
        name,
        elements,
        unique: idx.unique,
        method: None,
        predicate: None,
        translated: false,
    })
}

fn resolve_foreign_keys(
    tables: &mut [TablePlan],
    schema: &SourceSchema,
    target_schema: &str,
    reported: &mut Vec<ReportedObject>,
) {
    for source in &schema.tables {
        let mut fks = Vec::new();
        for fk in &source.foreign_keys {
            let Some(parent) = schema
                .tables
                .iter()
                .find(|t| t.name == fk.parent || t.name.eq_ignore_ascii_case(&fk.parent))
            else {
                reported.push(ReportedObject {
                    kind: "foreign key".into(),
                    name: format!("{}({})", source.name, fk.columns.join(", ")),
                    note: format!(
                        "not created: it references table {:?}, which does not exist in the source",
                        fk.parent
                    ),
                    sql: None,
                });
                continue;
            };
            let ref_columns = if fk.parent_columns.is_empty() {
                parent
                    .primary_key()
                    .iter()
                    .map(|i| parent.columns[*i].name.clone())
                    .collect()
            } else {
                fk.parent_columns.clone()
            };
            let action =
                |a: &str| (!a.eq_ignore_ascii_case("NO ACTION")).then(|| a.to_ascii_uppercase());
            fks.push(ForeignKeySpec {
                name: format!("{}_{}_fkey", source.name, fk.columns.join("_")),
                columns: fk.columns.clone(),
                ref_table: QualifiedName::new(target_schema, &parent.name),
                ref_columns,
                on_delete: action(&fk.on_delete),
                on_update: action(&fk.on_update),
                deferred: false,
            });
        }
        if let Some(t) = tables.iter_mut().find(|t| t.source_name == source.name) {
            t.spec.foreign_keys = fks;
        }
    }
}

/// Column names that are boolean wherever they occur in the plan.
fn unambiguous_boolean_columns(tables: &[TablePlan]) -> Vec<String> {
    let columns = || tables.iter().flat_map(|t| t.spec.columns.iter());
    let mut names: Vec<String> = columns()
        .filter(|c| c.pg_type == PgType::Boolean)
        .map(|c| c.name.clone())
        .filter(|n| columns().all(|c| &c.name != n || c.pg_type == PgType::Boolean))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// SQLite compares booleans with 0 and 1; PostgreSQL needs `false` and `true`.
/// Rewrites `col = 1`, `"col" != 0`, `col == 1`, `col <> 0` for the given boolean columns.
fn boolean_literals(sql: &str, booleans: &[&str]) -> String {
    if booleans.is_empty() {
        return sql.to_string();
    }
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < chars.len() {
        let (ident, end) = read_ident(&chars, i);
        let Some(ident) = ident else {
            out.push(chars[i]);
            i += 1;
            continue;
        };
        out.extend(&chars[i..end]);
        i = end;
        if !booleans.contains(&ident.as_str()) {
            continue;
        }
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        let op: String = chars[j..].iter().take(2).collect();
        let (op_sql, op_len) = match op.as_str() {
            "==" => ("=", 2),
            "!=" | "<>" => ("<>", 2),
            _ if op.starts_with('=') => ("=", 1),
            _ => continue,
        };
        let mut k = j + op_len;
        while k < chars.len() && chars[k].is_whitespace() {
            k += 1;
        }
        let digit = chars.get(k).copied();
        let followed = chars
            .get(k + 1)
            .is_some_and(|c| c.is_alphanumeric() || *c == '.' || *c == '_');
        let literal = match digit {
            Some('1') if !followed => "true",
            Some('0') if !followed => "false",
            _ => continue,
        };
        out.push_str(&format!(" {op_sql} {literal}"));
        i = k + 1;
    }
    out
}

/// An identifier starting at `i` (bare word or double-quoted), with its end.
fn read_ident(chars: &[char], i: usize) -> (Option<String>, usize) {
    let c = chars[i];
    let starts_word =
        i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == '.');
    if c == '"' {
        let mut name = String::new();
        let mut j = i + 1;
        while j < chars.len() {
            if chars[j] == '"' {
                if chars.get(j + 1) == Some(&'"') {
                    name.push('"');
                    j += 2;
                    continue;
                }
                return (Some(name), j + 1);
            }
            name.push(chars[j]);
            j += 1;
        }
        return (None, i + 1);
    }
    if (c.is_alphabetic() || c == '_') && (starts_word || chars[i - 1] == '.') {
        let mut j = i;
        while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        return (Some(chars[i..j].iter().collect()), j);
    }
    (None, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(ints: u64, reals: u64, texts: u64) -> ColumnProfile {
        ColumnProfile {
            ints,
            reals,
            texts,
            int_min: Some(0),
            int_max: Some(100),
            ..Default::default()
        }
    }

    #[test]
    fn hints_read_like_a_person_would() {
        assert_eq!(hint("VARCHAR(255)"), Hint::Text(Some(255)));
        assert_eq!(hint("UNSIGNED BIG INT"), Hint::Integer { small: false });
        assert_eq!(hint(""), Hint::None);
        assert_eq!(hint("NUMERIC(10,2)"), Hint::Numeric(Some((10, 2))));
        assert_eq!(hint("DOUBLE PRECISION"), Hint::Real);
        assert_eq!(hint("datetime"), Hint::Timestamp { tz: false });
        assert_eq!(hint("BOOLEAN"), Hint::Boolean);
        assert_eq!(hint("JSON"), Hint::Json);
    }

    #[test]
    fn text_in_an_integer_column_widens_to_text() {
        let (t, why) = decide("INTEGER", &profile(5, 0, 2));
        assert_eq!(t, PgType::Text);
        assert!(why.contains("widened"), "{why}");
    }

    #[test]
    fn epoch_integers_in_datetime_stay_integers() {
        let (t, why) = decide("DATETIME", &profile(5, 0, 0));
        assert_eq!(t, PgType::BigInt);
        assert!(why.contains("never reinterpreted"), "{why}");
    }

    #[test]
    fn long_text_widens_varchar() {
        let mut p = profile(0, 0, 3);
        p.max_chars = Some(25);
        assert_eq!(decide("VARCHAR(20)", &p).0, PgType::Text);
        p.max_chars = Some(20);
        assert_eq!(decide("VARCHAR(20)", &p).0, PgType::Varchar(20));
    }

    #[test]
    fn mixed_blobs_become_bytea() {
        let mut p = profile(0, 0, 1);
        p.blobs = 1;
        let (t, why) = decide("BLOB", &p);
        assert_eq!(t, PgType::Bytea);
        assert!(why.contains("mixed"));
    }

    #[test]
    fn huge_integers_with_reals_use_numeric() {
        let mut p = profile(1, 1, 0);
        p.int_max = Some(i64::MAX);
        assert_eq!(
            decide("", &p).0,
            PgType::Numeric {
                precision_scale: None
            }
        );
    }

    #[test]
    fn boolean_comparisons_become_boolean_literals() {
        assert_eq!(
            boolean_literals("active = 1 AND n = 1", &["active"]),
            "active = true AND n = 1"
        );
        assert_eq!(
            boolean_literals("\"active\"!=0 OR active==1", &["active"]),
            "\"active\" <> false OR active = true"
        );
        assert_eq!(boolean_literals("active = 10", &["active"]), "active = 10");
        assert_eq!(
            boolean_literals("t.active = 0", &["active"]),
            "t.active = false"
        );
        assert_eq!(
            boolean_literals("inactive = 1", &["active"]),
            "inactive = 1"
        );
    }
}
