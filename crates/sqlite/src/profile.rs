//! What values a table actually holds, column by column.
//!
//! One pass over the rows counts storage classes and integer ranges of every
//! column; columns whose declared type promises a richer PostgreSQL type
//! (boolean, date, timestamp, JSON, UUID, numeric, a length) are also checked
//! through [`pgharbor_core::forms`], the same functions the writer converts with.
//! Large tables are profiled in rowid ranges on several threads and merged.

use crate::error::{Result, SqliteError};
use crate::read::RowRange;
use pgharbor_core::cell::Cell;
use pgharbor_core::forms::{self, JsonForm};
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
    /// Longest text in characters (for declared lengths).
    pub length: bool,
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
#[derive(Debug, Clone, Default)]
pub struct TableProfile {
    /// Rows.
    pub rows: u64,
    /// One per column, in column order.
    pub columns: Vec<ColumnProfile>,
}

impl TableProfile {
    /// Combine with the profile of another part (row range) of the same table.
    pub fn merge(&mut self, other: TableProfile) {
        if self.columns.is_empty() {
            *self = other;
            return;
        }
        self.rows += other.rows;
        for (a, b) in self.columns.iter_mut().zip(other.columns) {
            a.merge(b);
        }
    }
}

impl ColumnProfile {
    fn merge(&mut self, b: ColumnProfile) {
        self.ints += b.ints;
        self.reals += b.reals;
        self.texts += b.texts;
        self.blobs += b.blobs;
        self.non_bit_ints += b.non_bit_ints;
        self.int_min = min_opt(self.int_min, b.int_min);
        self.int_max = self.int_max.max(b.int_max);
        self.max_chars = self.max_chars.max(b.max_chars);
        self.forms = match (self.forms.take(), b.forms) {
            (Some(mut x), Some(y)) => {
                x.all_bool &= y.all_bool;
                x.all_date &= y.all_date;
                x.all_timestamp &= y.all_timestamp;
                x.all_timestamptz &= y.all_timestamptz;
                x.all_uuid &= y.all_uuid;
                x.json = worst(x.json, y.json);
                x.decimal = match (x.decimal, y.decimal) {
                    (Some((i1, s1)), Some((i2, s2))) => Some((i1.max(i2), s1.max(s2))),
                    _ => None,
                };
                x.first_misfit = x.first_misfit.or(y.first_misfit);
                Some(x)
            }
            (x, y) => x.or(y),
        };
    }

    fn observe(&mut self, cell: Cell<'_>, checks: Checks) {
        match cell {
            Cell::Null => return,
            Cell::Int(i) => {
                self.ints += 1;
                self.non_bit_ints += u64::from(i != 0 && i != 1);
                self.int_min = min_opt(self.int_min, Some(i));
                self.int_max = self.int_max.max(Some(i));
            }
            Cell::Real(_) => self.reals += 1,
            Cell::Text(t) => {
                self.texts += 1;
                if checks.length {
                    let chars = String::from_utf8_lossy(t).chars().count() as i64;
                    self.max_chars = self.max_chars.max(Some(chars));
                }
            }
            Cell::Blob(_) | Cell::Vector(_) => self.blobs += 1,
        }
        if checks.any() {
            observe(self.forms.get_or_insert_with(Forms::default), cell, checks);
        }
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Profile `columns` of `table` (the rows in `range`) in one pass;
/// `checks[i]` says which forms column `i` needs.
pub fn profile_table(
    conn: &Connection,
    table: &str,
    columns: &[&str],
    checks: &[Checks],
    range: RowRange,
) -> Result<TableProfile> {
    let mut profile = TableProfile {
        rows: 0,
        columns: vec![ColumnProfile::default(); columns.len()],
    };
    crate::read::read_rows(conn, table, columns, false, range, |_, cells| {
        profile.rows += 1;
        for ((column, cell), check) in profile.columns.iter_mut().zip(cells).zip(checks) {
            column.observe(*cell, *check);
        }
        Ok::<(), SqliteError>(())
    })?;
    Ok(profile)
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
        Cell::Blob(_) | Cell::Vector(_) => {
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
