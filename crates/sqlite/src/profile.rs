//! What values a table actually holds, column by column.
//!
//! One aggregate scan per table counts storage classes, integer ranges and text
//! lengths in SQLite itself. Columns whose declared type promises a richer
//! PostgreSQL type (boolean, date, timestamp, JSON, UUID, numeric) get a second,
//! column-restricted pass in Rust through [`pgharbor_core::forms`], the same
//! functions the writer converts with.

use crate::error::{Result, SqliteError};
use pgharbor_core::cell::Cell;
use pgharbor_core::forms::{self, JsonForm};
use pgharbor_core::schema::quote_ident;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// Which form checks a column needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checks {
    /// Boolean spellings.
    pub boolean: bool,
    /// ISO dates and timestamps.
    pub temporal: bool,
    /// JSON validity and jsonb safety.
    pub json: bool,
    /// Canonical UUIDs.
    pub uuid: bool,
    /// Decimal digits and scale.
    pub decimal: bool,
}

impl Checks {
    fn any(&self) -> bool {
        self.boolean || self.temporal || self.json || self.uuid || self.decimal
    }
}

/// The result of the form checks over every non-null value of a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forms {
    /// Every value is a boolean spelling (or integer 0/1).
    pub all_bool: bool,
    /// Every text value is an ISO date.
    pub all_date: bool,
    /// Every text value is an ISO timestamp (or date) without offset.
    pub all_timestamp: bool,
    /// Every text value is an ISO timestamp with an offset.
    pub all_timestamptz: bool,
    /// The worst JSON form seen (numbers count as valid JSON).
    pub json: JsonForm,
    /// Every text value is a canonical UUID.
    pub all_uuid: bool,
    /// `(max digits before the point, max scale)` over all values when every
    /// value is a finite decimal number; `None` otherwise.
    pub decimal: Option<(i64, u32)>,
    /// A value that failed the check of the column's declared type, for reports.
    pub first_misfit: Option<String>,
}

impl Default for Forms {
    fn default() -> Self {
        Forms {
            all_bool: true,
            all_date: true,
            all_timestamp: true,
            all_timestamptz: true,
            json: JsonForm::JsonbSafe,
            all_uuid: true,
            decimal: Some((0, 0)),
            first_misfit: None,
        }
    }
}

/// Storage-class statistics of a column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnProfile {
    /// INTEGER values.
    pub ints: u64,
    /// REAL values.
    pub reals: u64,
    /// TEXT values.
    pub texts: u64,
    /// BLOB values.
    pub blobs: u64,
    /// Smallest integer.
    pub int_min: Option<i64>,
    /// Largest integer.
    pub int_max: Option<i64>,
    /// Longest text, in characters.
    pub max_chars: Option<i64>,
    /// Integers other than 0 and 1.
    pub non_bit_ints: u64,
    /// Form checks, when requested.
    pub forms: Option<Forms>,
}

impl ColumnProfile {
    /// Non-null values.
    pub fn values(&self) -> u64 {
        self.ints + self.reals + self.texts + self.blobs
    }
}

/// Profiles of every column, plus the row count, of one table.
#[derive(Debug, Clone)]
pub struct TableProfile {
    /// Rows.
    pub rows: u64,
    /// One per column, in column order.
    pub columns: Vec<ColumnProfile>,
}

/// Profile `columns` of `table`; `checks[i]` says which forms column `i` needs.
pub fn profile_table(
    conn: &Connection,
    table: &str,
    columns: &[&str],
    checks: &[Checks],
) -> Result<TableProfile> {
    let err = |e| SqliteError::from_sqlite(e, "profiling values").with_table(table);
    let mut exprs = vec!["count(*)".to_string()];
    for col in columns {
        let c = quote_ident(col);
        exprs.push(format!(
            "sum(typeof({c})='integer'), sum(typeof({c})='real'), sum(typeof({c})='text'), \
             sum(typeof({c})='blob'), min(CASE WHEN typeof({c})='integer' THEN {c} END), \
             max(CASE WHEN typeof({c})='integer' THEN {c} END), \
             max(CASE WHEN typeof({c})='text' THEN length({c}) END), \
             sum(typeof({c})='integer' AND {c} NOT IN (0, 1))"
        ));
    }
    let sql = format!("SELECT {} FROM {}", exprs.join(", "), quote_ident(table));
    let (rows, mut profiles) = conn
        .query_row(&sql, [], |r| {
            let rows: i64 = r.get(0)?;
            let mut profiles = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                let base = 1 + i * 8;
                let count = |k: usize| -> rusqlite::Result<u64> {
                    Ok(r.get::<_, Option<i64>>(base + k)?.unwrap_or(0) as u64)
                };
                profiles.push(ColumnProfile {
                    ints: count(0)?,
                    reals: count(1)?,
                    texts: count(2)?,
                    blobs: count(3)?,
                    int_min: r.get(base + 4)?,
                    int_max: r.get(base + 5)?,
                    max_chars: r.get(base + 6)?,
                    non_bit_ints: count(7)?,
                    forms: None,
                });
            }
            Ok((rows as u64, profiles))
        })
        .map_err(err)?;
    let checked: Vec<usize> = (0..columns.len()).filter(|i| checks[*i].any()).collect();
    if !checked.is_empty() {
        let names: Vec<&str> = checked.iter().map(|i| columns[*i]).collect();
        let forms = check_forms(
            conn,
            table,
            &names,
            &checked.iter().map(|i| checks[*i]).collect::<Vec<_>>(),
        )?;
        for (i, f) in checked.into_iter().zip(forms) {
            profiles[i].forms = Some(f);
        }
    }
    Ok(TableProfile {
        rows,
        columns: profiles,
    })
}

fn check_forms(
    conn: &Connection,
    table: &str,
    columns: &[&str],
    checks: &[Checks],
) -> Result<Vec<Forms>> {
    let err = |e| SqliteError::from_sqlite(e, "checking value forms").with_table(table);
    let sql = format!(
        "SELECT {} FROM {}",
        crate::inspect::select_list(columns),
        quote_ident(table)
    );
    let mut stmt = conn.prepare(&sql).map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    let mut forms = vec![Forms::default(); columns.len()];
    while let Some(row) = rows.next().map_err(err)? {
        for (i, f) in forms.iter_mut().enumerate() {
            let cell = crate::read::cell(row.get_ref(i).map_err(err)?);
            observe(f, cell, checks[i]);
        }
    }
    Ok(forms)
}

fn observe(f: &mut Forms, cell: Cell<'_>, checks: Checks) {
    let mut misfit = false;
    match cell {
        Cell::Null => return,
        Cell::Int(i) => {
            f.all_bool &= i == 0 || i == 1;
            f.all_uuid = false;
            if checks.decimal {
                merge_decimal(f, forms::parse_decimal(i.to_string().as_bytes()));
            }
        }
        Cell::Real(r) => {
            f.all_bool = false;
            f.all_uuid = false;
            if checks.decimal {
                let parsed = r
                    .is_finite()
                    .then(|| forms::parse_decimal(forms::format_real(r).as_bytes()))
                    .flatten();
                merge_decimal(f, parsed);
            }
            if !r.is_finite() {
                f.json = JsonForm::Invalid;
            }
        }
        Cell::Text(t) => {
            if checks.boolean && forms::parse_bool(t).is_none() {
                f.all_bool = false;
                misfit = true;
            }
            if checks.temporal {
                let date = forms::parse_date(t).is_some();
                let ts = forms::parse_timestamp(t);
                f.all_date &= date;
                f.all_timestamp &= date || ts.is_some_and(|p| p.offset_seconds.is_none());
                f.all_timestamptz &= ts.is_some_and(|p| p.offset_seconds.is_some());
                misfit |= !date && ts.is_none();
            }
            if checks.json {
                let form = forms::check_json(t);
                f.json = worst(f.json, form);
                misfit |= form == JsonForm::Invalid;
            }
            if checks.uuid && forms::parse_uuid(t).is_none() {
                f.all_uuid = false;
                misfit = true;
            }
            if checks.decimal {
                merge_decimal(f, forms::parse_decimal(t));
            }
        }
        Cell::Blob(_) => {
            f.all_bool = false;
            f.all_uuid = false;
            f.json = JsonForm::Invalid;
            f.decimal = None;
            misfit = true;
        }
    }
    if misfit && f.first_misfit.is_none() {
        f.first_misfit = Some(cell.preview());
    }
}

fn worst(a: JsonForm, b: JsonForm) -> JsonForm {
    use JsonForm::*;
    match (a, b) {
        (Invalid, _) | (_, Invalid) => Invalid,
        (JsonOnly, _) | (_, JsonOnly) => JsonOnly,
        _ => JsonbSafe,
    }
}

fn merge_decimal(f: &mut Forms, parsed: Option<forms::Decimal>) {
    f.decimal = match (f.decimal, parsed) {
        (Some((int_digits, scale)), Some(d)) => {
            Some((int_digits.max(d.integer_digits()), scale.max(d.scale())))
        }
        _ => None,
    };
}

/// Convert a rusqlite value to a cell (shared with [`crate::read`]).
pub(crate) fn to_cell(value: ValueRef<'_>) -> Cell<'_> {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(r) => Cell::Real(r),
        ValueRef::Text(t) => Cell::Text(t),
        ValueRef::Blob(b) => Cell::Blob(b),
    }
}
