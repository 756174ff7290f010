//! Binary COPY encoding with pgharbor's conversion rules.
//!
//! | target            | accepted source values                                              |
//! |-------------------|---------------------------------------------------------------------|
//! | boolean           | integers 0/1; text `t f true false yes no on off 1 0` (any case)     |
//! | smallint/int/bigint | integers in range                                                 |
//! | double precision  | reals; integers within ±2^53                                        |
//! | numeric           | integers; finite reals by their shortest round-trip decimal; decimal text; NaN/±Infinity |
//! | text, varchar     | text (NUL and UTF-8 rules below); integers and reals as exact decimal text |
//! | json, jsonb       | JSON text; integers and finite reals as JSON numbers                |
//! | bytea             | blobs; text as its bytes; numbers as their decimal text             |
//! | date, timestamp   | ISO-8601 text (see [`pgharbor_core::forms`])                        |
//! | timestamptz       | ISO-8601 text; without an offset it is read as UTC                  |
//! | timestamp[tz]     | integers (target type says so): Unix epochs, unit by magnitude (s, ms, µs, ns) |
//! | uuid              | UUID text: canonical, upper-case, 32 hex digits without dashes      |
//! | interval          | integers, as microseconds (Django's DurationField); ISO date-time text as its distance from 1970-01-01 00:00:00 (SQLAlchemy's Interval) |
//! | text[], integer[], bigint[], boolean[], double precision[] | JSON arrays of matching elements |
//! | vector(n)         | vectors of at most n finite components, zero-padded to n (counted)  |
//! | halfvec(n)        | the same, each component rounded to the nearest half-precision value (counted); beyond ±65504 refused |
//!
//! Text that PostgreSQL cannot store is refused unless the user opted in:
//! NUL characters are stripped only under [`NulPolicy::Strip`], invalid UTF-8 is
//! replaced by U+FFFD only under [`InvalidUtf8Policy::Replace`]; each change is counted.

use crate::numeric::{self, Special};
use pgharbor_copy_binary::write::{write_field_count, write_null, OpenField};
use pgharbor_core::cell::Cell;
use pgharbor_core::forms;
use pgharbor_core::plan::{InvalidUtf8Policy, NulPolicy, ValuePolicy};
use pgharbor_core::report::LossyCounts;
use pgharbor_core::schema::{ArrayElement, PgType};
use std::borrow::Cow;
use std::ops::Range;

/// A value that cannot be carried into its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    /// Column position.
    pub column: usize,
    /// Why, including a preview of the value.
    pub reason: String,
}

/// Encodes rows of one table.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    types: Vec<PgType>,
    policy: ValuePolicy,
    lossy: LossyCounts,
}

impl RowEncoder {
    /// An encoder for columns of `types` under `policy`.
    pub fn new(types: Vec<PgType>, policy: ValuePolicy) -> Self {
        RowEncoder {
            types,
            policy,
            lossy: LossyCounts::default(),
        }
    }

    /// Lossy changes made so far.
    pub fn lossy(&self) -> LossyCounts {
        self.lossy
    }

    /// Append one binary COPY row made of the fields `columns` (positions in
    /// `cells`, in COPY order) to `out`: field count, then each field.
    ///
    /// On error `out` may hold a partial row; the caller abandons the stream.
    pub fn encode_row(
        &mut self,
        cells: &[Cell<'_>],
        columns: &[usize],
        out: &mut Vec<u8>,
    ) -> Result<(), CellError> {
        write_field_count(out, columns.len());
        for &column in columns {
            self.encode_field(column, cells[column], out)?;
        }
        Ok(())
    }

    /// Append one binary COPY field (length and bytes, or NULL) to `out`;
    /// returns where its value lies in `out` (`None` for NULL).
    pub fn encode_field(
        &mut self,
        column: usize,
        cell: Cell<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Option<Range<usize>>, CellError> {
        if cell == Cell::Null {
            write_null(out);
            return Ok(None);
        }
        let field = OpenField::begin(out);
        let pg_type = self.types[column];
        self.encode_value(cell, pg_type, out)
            .map_err(|why| refused(column, cell, pg_type, why))?;
        let value = field
            .end(out)
            .map_err(|e| refused(column, cell, pg_type, e.to_string()))?;
        Ok(Some(value))
    }

    fn encode_value(
        &mut self,
        cell: Cell<'_>,
        pg_type: PgType,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match pg_type {
            PgType::Boolean => {
                let b = match cell {
                    Cell::Int(0) => false,
                    Cell::Int(1) => true,
                    Cell::Text(t) => forms::parse_bool(t).ok_or("not a boolean spelling")?,
                    _ => return Err("not 0, 1 or a boolean spelling".into()),
                };
                out.push(u8::from(b));
            }
            PgType::SmallInt => out.extend_from_slice(
                &i16::try_from(int(cell)?)
                    .map_err(|_| "out of smallint range")?
                    .to_be_bytes(),
            ),
            PgType::Integer => out.extend_from_slice(
                &i32::try_from(int(cell)?)
                    .map_err(|_| "out of integer range")?
                    .to_be_bytes(),
            ),
            PgType::BigInt => out.extend_from_slice(&int(cell)?.to_be_bytes()),
            PgType::Double => {
                let v = match cell {
                    Cell::Real(r) => r,
                    Cell::Int(i) if i.unsigned_abs() <= 1 << 53 => i as f64,
                    Cell::Int(_) => {
                        return Err("integer too large for a double to hold exactly".into())
                    }
                    _ => return Err("not a number".into()),
                };
                out.extend_from_slice(&v.to_bits().to_be_bytes());
            }
            PgType::Numeric { precision_scale } => encode_numeric(cell, precision_scale, out)?,
            PgType::Text => self.encode_text(cell, out)?,
            PgType::Varchar(limit) => {
                let start = out.len();
                self.encode_text(cell, out)?;
                let chars = String::from_utf8_lossy(&out[start..]).chars().count();
                if chars > limit as usize {
                    return Err(format!(
                        "{chars} characters do not fit character varying({limit})"
                    ));
                }
            }
            PgType::Char(length) => {
                let start = out.len();
                self.encode_text(cell, out)?;
                blank_pad(out, start, length)?;
            }
            PgType::Json => self.encode_json(cell, false, out)?,
            PgType::Jsonb => {
                out.push(1);
                self.encode_json(cell, true, out)?;
            }
            PgType::Bytea => match cell {
                Cell::Blob(b) | Cell::Text(b) => out.extend_from_slice(b),
                Cell::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
                Cell::Real(r) => out.extend_from_slice(forms::format_real(r).as_bytes()),
                Cell::Vector(_) => return Err("a vector is not binary data".into()),
                Cell::Null => unreachable!("NULL handled by encode_field"),
            },
            PgType::Date => {
                let days = forms::parse_date(text(cell)?).ok_or("not an ISO date (YYYY-MM-DD)")?;
                out.extend_from_slice(&days.to_be_bytes());
            }
            PgType::Timestamp | PgType::Timestamptz if matches!(cell, Cell::Int(_)) => {
                out.extend_from_slice(&epoch_micros(int(cell)?)?.to_be_bytes());
            }
            PgType::Timestamp => {
                let t = text(cell)?;
                let micros = match forms::parse_timestamp(t) {
                    Some(p) if p.offset_seconds.is_none() => p.local_micros,
                    Some(_) => {
                        return Err("carries a UTC offset; the column has no time zone".into())
                    }
                    None => {
                        i64::from(forms::parse_date(t).ok_or("not an ISO timestamp")?)
                            * 86_400_000_000
                    }
                };
                out.extend_from_slice(&micros.to_be_bytes());
            }
            PgType::Timestamptz => {
                // SQLite has no time zones: text without an offset is UTC, as
                // the applications that write it (Django, SQLAlchemy) store it.
                let t = text(cell)?;
                let micros = match forms::parse_timestamp(t) {
                    Some(p) => p.utc_micros(),
                    None => {
                        i64::from(forms::parse_date(t).ok_or("not an ISO timestamp")?)
                            * 86_400_000_000
                    }
                };
                out.extend_from_slice(&micros.to_be_bytes());
            }
            PgType::Uuid => {
                out.extend_from_slice(&forms::parse_uuid_any(text(cell)?).ok_or("not a UUID")?)
            }
            PgType::Array(element) => encode_array(text(cell)?, element, out)?,
            PgType::Interval => {
                out.extend_from_slice(&interval_micros(cell)?.to_be_bytes());
                out.extend_from_slice(&0i32.to_be_bytes());
                out.extend_from_slice(&0i32.to_be_bytes());
            }
            PgType::Vector(dim) => self.encode_vector(cell, dim, false, out)?,
            PgType::HalfVec(dim) => self.encode_vector(cell, dim, true, out)?,
        }
        Ok(())
    }

    /// pgvector's binary form: dimension and a zero word as int16, then each
    /// component (float4, or IEEE half for `halfvec`), zero-padded to `dim`.
    fn encode_vector(
        &mut self,
        cell: Cell<'_>,
        dim: u32,
        half: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let Cell::Vector(values) = cell else {
            return Err("not a vector".into());
        };
        let rounded = write_vector(values, dim, half, out)?;
        self.lossy.vectors_padded += u64::from(values.len() < dim as usize);
        self.lossy.vectors_rounded_to_half += u64::from(rounded);
        Ok(())
    }

    fn encode_text(&mut self, cell: Cell<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        match cell {
            Cell::Text(t) => {
                let clean = self.clean_text(t)?;
                out.extend_from_slice(&clean);
            }
            Cell::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Cell::Real(r) => out.extend_from_slice(forms::format_real(r).as_bytes()),
            Cell::Blob(_) => return Err("binary data is not text".into()),
            Cell::Vector(_) => return Err("a vector is not text".into()),
            Cell::Null => unreachable!("NULL handled by encode_field"),
        }
        Ok(())
    }

    /// JSON text; a NUL written as `\u0000` inside it is stripped under
    /// [`NulPolicy::Strip`] (jsonb cannot hold it at all, and json values holding
    /// it cannot be read as text), and refused for jsonb otherwise.
    fn encode_json(
        &mut self,
        cell: Cell<'_>,
        binary: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match cell {
            Cell::Real(r) if !r.is_finite() => Err("JSON has no NaN or Infinity".into()),
            Cell::Text(t) => {
                let clean = self.clean_text(t)?;
                if forms::check_json(&clean) == forms::JsonForm::Invalid {
                    return Err("not valid JSON".into());
                }
                let stripped = match self.policy.nul {
                    NulPolicy::Strip => forms::strip_json_nuls(&clean),
                    NulPolicy::Error if binary && forms::strip_json_nuls(&clean).is_some() => {
                        return Err("holds a \\u0000 escape (a NUL character), which jsonb cannot store (use --nul strip to remove NULs)".into())
                    }
                    NulPolicy::Error => None,
                };
                match stripped {
                    Some(json) => {
                        self.lossy.nul_stripped += 1;
                        out.extend_from_slice(&json);
                    }
                    None => out.extend_from_slice(&clean),
                }
                Ok(())
            }
            _ => self.encode_text(cell, out),
        }
    }

    /// Apply the NUL and UTF-8 rules to text.
    fn clean_text<'a>(&mut self, t: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
        let mut text: Cow<'a, [u8]> = Cow::Borrowed(t);
        if let Err(e) = forms::utf8(t) {
            match self.policy.invalid_utf8 {
                InvalidUtf8Policy::Error => {
                    return Err(format!(
                    "invalid UTF-8 at byte {} (use --invalid-utf8 replace to substitute U+FFFD)",
                    e.valid_up_to()
                ))
                }
                InvalidUtf8Policy::Replace => {
                    self.lossy.utf8_replaced += 1;
                    text = Cow::Owned(String::from_utf8_lossy(t).into_owned().into_bytes());
                }
            }
        }
        if let Some(at) = text.iter().position(|b| *b == 0) {
            match self.policy.nul {
                NulPolicy::Error => {
                    return Err(format!(
                        "contains a NUL character at byte {at}, which PostgreSQL text cannot hold (use --nul strip to remove NULs)"
                    ))
                }
                NulPolicy::Strip => {
                    self.lossy.nul_stripped += 1;
                    text = Cow::Owned(text.iter().copied().filter(|b| *b != 0).collect());
                }
            }
        }
        Ok(text)
    }
}

/// Why `cell` cannot be stored in `column` of type `pg_type`, with a
/// preview of the value.
#[cold]
fn refused(column: usize, cell: Cell<'_>, pg_type: PgType, why: String) -> CellError {
    CellError {
        column,
        reason: format!(
            "{} {} cannot be stored as {pg_type}: {why}",
            cell.class_name(),
            cell.preview()
        ),
    }
}

/// pgvector's binary form of `values` (`halfvec` when `half`), zero-padded
/// to `dim`: dimension and a zero word as int16, then each component as a
/// big-endian float4 or IEEE half. Returns whether any component was rounded
/// to half precision; refuses vectors longer than `dim` and non-finite or
/// (for halves) out-of-range components.
pub fn write_vector(
    values: &[f32],
    dim: u32,
    half: bool,
    out: &mut impl Extend<u8>,
) -> Result<bool, String> {
    if values.len() > dim as usize {
        return Err(format!(
            "{} dimensions do not fit {dim}; cutting a vector short would destroy the embedding",
            values.len()
        ));
    }
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "component {at} is {}, which pgvector refuses",
            values[at]
        ));
    }
    out.extend((dim as i16).to_be_bytes());
    out.extend(0i16.to_be_bytes());
    let mut rounded = false;
    for v in values {
        if half {
            let h = half::f16::from_f32(*v);
            if h.is_infinite() {
                return Err(format!("component {v} is beyond half precision's ±65504"));
            }
            rounded |= h.to_f32() != *v;
            out.extend(h.to_bits().to_be_bytes());
        } else {
            out.extend(v.to_bits().to_be_bytes());
        }
    }
    let pad_bytes = (dim as usize - values.len()) * if half { 2 } else { 4 };
    out.extend(std::iter::repeat_n(0u8, pad_bytes));
    Ok(rounded)
}

/// Microseconds from the Unix epoch (1970-01-01) to PostgreSQL's (2000-01-01).
const UNIX_TO_2000_MICROS: i64 = 946_684_800_000_000;

/// Microseconds since 2000-01-01 of a Unix epoch integer whose unit is read
/// from its size: seconds below 10^11 (until the year 5138), milliseconds below
/// 10^14, microseconds below 10^17, nanoseconds above (only whole microseconds).
fn epoch_micros(epoch: i64) -> Result<i64, String> {
    let value = i128::from(epoch);
    let magnitude = value.unsigned_abs();
    let unix_micros = if magnitude < 100_000_000_000 {
        value * 1_000_000
    } else if magnitude < 100_000_000_000_000 {
        value * 1_000
    } else if magnitude < 100_000_000_000_000_000 {
        value
    } else if value % 1_000 == 0 {
        value / 1_000
    } else {
        return Err(
            "an epoch in nanoseconds with sub-microsecond digits cannot be stored exactly".into(),
        );
    };
    i64::try_from(unix_micros - i128::from(UNIX_TO_2000_MICROS))
        .map_err(|_| "epoch out of range".to_string())
}

/// Microseconds of a duration as SQLite applications store one: an integer
/// is microseconds (Django's `DurationField`); an ISO date-time text is the
/// instant minus 1970-01-01 00:00:00 (SQLAlchemy's `Interval`, which SQLite
/// lacks, stored as a DATETIME relative to the epoch: `1970-01-03 04:00:00`
/// is 2 days 4 hours, a date before 1970 a negative duration).
fn interval_micros(cell: Cell<'_>) -> Result<i64, String> {
    match cell {
        Cell::Int(micros) => Ok(micros),
        Cell::Text(t) => match forms::parse_timestamp(t) {
            Some(p) if p.offset_seconds.is_none() => Ok(p.local_micros + UNIX_TO_2000_MICROS),
            Some(_) => Err("carries a UTC offset; a duration stored as a date-time counts from 1970-01-01 00:00:00 without one".into()),
            None => Err("neither microseconds nor a date-time counted from 1970-01-01 (YYYY-MM-DD HH:MM:SS[.ffffff])".into()),
        },
        _ => Err("not an integer (microseconds) or a date-time counted from 1970-01-01".into()),
    }
}

/// A JSON array into PostgreSQL's binary array format, exactly as the server
/// sends it back (one dimension, lower bound 1; `[]` has no dimensions).
fn encode_array(json: &[u8], element: ArrayElement, out: &mut Vec<u8>) -> Result<(), String> {
    let items: Vec<serde_json::Value> =
        serde_json::from_slice(json).map_err(|_| "not a JSON array")?;
    let has_null = items.iter().any(serde_json::Value::is_null);
    let ndim: i32 = if items.is_empty() { 0 } else { 1 };
    out.extend_from_slice(&ndim.to_be_bytes());
    out.extend_from_slice(&i32::from(has_null).to_be_bytes());
    out.extend_from_slice(&element.oid().to_be_bytes());
    if items.is_empty() {
        return Ok(());
    }
    out.extend_from_slice(&(items.len() as i32).to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    for item in &items {
        if item.is_null() {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            continue;
        }
        let bytes: Vec<u8> = match (element, item) {
            (ArrayElement::Text, serde_json::Value::String(s)) if !s.contains('\0') => {
                s.as_bytes().to_vec()
            }
            (ArrayElement::Integer, v) => i32::try_from(json_int(v)?)
                .map_err(|_| "array element out of integer range")?
                .to_be_bytes()
                .to_vec(),
            (ArrayElement::BigInt, v) => json_int(v)?.to_be_bytes().to_vec(),
            (ArrayElement::Boolean, serde_json::Value::Bool(b)) => vec![u8::from(*b)],
            (ArrayElement::Double, serde_json::Value::Number(n)) => {
                let text = n.to_string();
                let v: f64 = text.parse().map_err(|_| "array element is not a number")?;
                if forms::format_real(v).parse::<f64>().ok() != Some(v) || !v.is_finite() {
                    return Err("array element is not an exact double".into());
                }
                v.to_bits().to_be_bytes().to_vec()
            }
            _ => return Err(format!("array element {item} is not {}", element.sql())),
        };
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(())
}

fn json_int(value: &serde_json::Value) -> Result<i64, String> {
    match value {
        serde_json::Value::Number(n) => n
            .to_string()
            .parse()
            .map_err(|_| format!("array element {n} is not an integer")),
        other => Err(format!("array element {other} is not an integer")),
    }
}

/// Make the text encoded at `out[start..]` what PostgreSQL stores in a
/// `character(length)` column: padded with blanks to `length` characters;
/// longer text loses trailing blanks beyond `length` (as PostgreSQL's own
/// input does) and is refused when anything else is beyond it.
fn blank_pad(out: &mut Vec<u8>, start: usize, length: u32) -> Result<(), String> {
    let length = length as usize;
    let text = String::from_utf8_lossy(&out[start..]).into_owned();
    let chars = text.chars().count();
    if chars > length {
        let kept: String = text.chars().take(length).collect();
        if text[kept.len()..].bytes().any(|b| b != b' ') {
            return Err(format!("{chars} characters do not fit character({length})"));
        }
        out.truncate(start + kept.len());
    } else {
        out.resize(out.len() + (length - chars), b' ');
    }
    Ok(())
}

fn int(cell: Cell<'_>) -> Result<i64, String> {
    match cell {
        Cell::Int(i) => Ok(i),
        _ => Err("not an integer".into()),
    }
}

fn text<'a>(cell: Cell<'a>) -> Result<&'a [u8], String> {
    match cell {
        Cell::Text(t) => Ok(t),
        _ => Err("not text".into()),
    }
}

fn encode_numeric(
    cell: Cell<'_>,
    precision_scale: Option<(u32, u32)>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let rendered;
    let text: &[u8] = match cell {
        Cell::Int(i) => {
            rendered = i.to_string();
            rendered.as_bytes()
        }
        Cell::Real(r) if r.is_nan() => {
            numeric::write_special(out, Special::NaN);
            return Ok(());
        }
        Cell::Real(r) if r.is_infinite() => {
            if precision_scale.is_some() {
                return Err("infinity does not fit a numeric with precision".into());
            }
            numeric::write_special(
                out,
                if r > 0.0 {
                    Special::PosInf
                } else {
                    Special::NegInf
                },
            );
            return Ok(());
        }
        Cell::Real(r) => {
            rendered = forms::format_real(r);
            rendered.as_bytes()
        }
        Cell::Text(t) => t,
        Cell::Blob(_) | Cell::Vector(_) | Cell::Null => return Err("not a number".into()),
    };
    let d = forms::parse_decimal(text).ok_or("not a decimal number")?;
    let dscale = match precision_scale {
        Some((p, s)) => {
            if d.scale() > s || d.integer_digits() > i64::from(p - s) {
                return Err(format!("does not fit numeric({p},{s})"));
            }
            s
        }
        None => d.scale(),
    };
    numeric::write_decimal(out, &d, dscale);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(cell: Cell<'_>, t: PgType, policy: ValuePolicy) -> Result<Vec<u8>, CellError> {
        let mut enc = RowEncoder::new(vec![t], policy);
        let mut out = Vec::new();
        enc.encode_field(0, cell, &mut out)?;
        Ok(out[4..].to_vec())
    }

    #[test]
    fn vectors_are_padded_and_never_cut() {
        let p = ValuePolicy::default();
        let mut enc = RowEncoder::new(vec![PgType::Vector(3)], p);
        let mut out = Vec::new();
        enc.encode_field(0, Cell::Vector(&[1.5, -2.0]), &mut out)
            .unwrap();
        let mut expected = vec![0, 0, 0, 16, 0, 3, 0, 0];
        for v in [1.5f32, -2.0, 0.0] {
            expected.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(out, expected);
        assert_eq!(enc.lossy().vectors_padded, 1);
        let err = field(Cell::Vector(&[1.0; 4]), PgType::Vector(3), p).unwrap_err();
        assert!(
            err.reason.contains("4 dimensions do not fit 3"),
            "{}",
            err.reason
        );
        let err = field(Cell::Vector(&[f32::NAN]), PgType::Vector(1), p).unwrap_err();
        assert!(err.reason.contains("NaN"), "{}", err.reason);
    }

    #[test]
    fn halfvec_rounds_and_counts_and_refuses_overflow() {
        let p = ValuePolicy::default();
        let mut enc = RowEncoder::new(vec![PgType::HalfVec(2)], p);
        let mut out = Vec::new();
        enc.encode_field(0, Cell::Vector(&[0.5, 0.1]), &mut out)
            .unwrap();
        assert_eq!(&out[4..8], &[0, 2, 0, 0]);
        assert_eq!(
            &out[8..10],
            &half::f16::from_f32(0.5).to_bits().to_be_bytes()
        );
        assert_eq!(enc.lossy().vectors_rounded_to_half, 1);
        let err = field(Cell::Vector(&[70000.0]), PgType::HalfVec(1), p).unwrap_err();
        assert!(err.reason.contains("65504"), "{}", err.reason);
    }

    #[test]
    fn integers_and_booleans() {
        let p = ValuePolicy::default();
        assert_eq!(
            field(Cell::Int(-2), PgType::BigInt, p).unwrap(),
            (-2i64).to_be_bytes()
        );
        assert_eq!(
            field(Cell::Text(b"TRUE"), PgType::Boolean, p).unwrap(),
            vec![1]
        );
        assert!(field(Cell::Int(70000), PgType::SmallInt, p).is_err());
        assert!(field(Cell::Int(2), PgType::Boolean, p).is_err());
    }

    #[test]
    fn nul_is_refused_unless_stripping() {
        let err = field(Cell::Text(b"a\0b"), PgType::Text, ValuePolicy::default()).unwrap_err();
        assert!(err.reason.contains("NUL"), "{}", err.reason);
        let strip = ValuePolicy {
            nul: NulPolicy::Strip,
            ..Default::default()
        };
        let mut enc = RowEncoder::new(vec![PgType::Text], strip);
        let mut out = Vec::new();
        enc.encode_field(0, Cell::Text(b"a\0b"), &mut out).unwrap();
        assert_eq!(&out[4..], b"ab");
        assert_eq!(enc.lossy().nul_stripped, 1);
    }

    #[test]
    fn invalid_utf8_is_refused_unless_replacing() {
        assert!(
            field(Cell::Text(b"a\xffb"), PgType::Text, ValuePolicy::default())
                .unwrap_err()
                .reason
                .contains("UTF-8")
        );
        let replace = ValuePolicy {
            invalid_utf8: InvalidUtf8Policy::Replace,
            ..Default::default()
        };
        assert_eq!(
            field(Cell::Text(b"a\xffb"), PgType::Text, replace).unwrap(),
            "a\u{FFFD}b".as_bytes()
        );
    }

    #[test]
    fn varchar_and_char_lengths_are_checked() {
        let p = ValuePolicy::default();
        assert_eq!(
            field(Cell::Text("héllo".as_bytes()), PgType::Varchar(5), p).unwrap(),
            "héllo".as_bytes()
        );
        assert_eq!(
            field(Cell::Text("é".as_bytes()), PgType::Char(3), p).unwrap(),
            "é  ".as_bytes(),
            "blank-padded as PostgreSQL stores character(n)"
        );
        assert_eq!(
            field(Cell::Text(b"ab   "), PgType::Char(3), p).unwrap(),
            b"ab ",
            "trailing blanks beyond the length are dropped"
        );
        assert!(field(Cell::Text(b"abcd"), PgType::Char(3), p)
            .unwrap_err()
            .reason
            .contains("4 characters do not fit character(3)"));
        assert!(field(Cell::Text(b"toolong"), PgType::Varchar(5), p)
            .unwrap_err()
            .reason
            .contains("7 characters"));
    }

    #[test]
    fn numbers_as_text_are_exact() {
        let p = ValuePolicy::default();
        assert_eq!(field(Cell::Real(0.1), PgType::Text, p).unwrap(), b"0.1");
        assert_eq!(
            field(Cell::Int(i64::MIN), PgType::Text, p).unwrap(),
            i64::MIN.to_string().as_bytes()
        );
        assert_eq!(
            field(Cell::Real(f64::NEG_INFINITY), PgType::Text, p).unwrap(),
            b"-Infinity"
        );
    }

    #[test]
    fn jsonb_gets_a_version_byte_and_json_is_checked() {
        let p = ValuePolicy::default();
        assert_eq!(
            field(Cell::Text(b"{}"), PgType::Jsonb, p).unwrap(),
            b"\x01{}"
        );
        assert_eq!(field(Cell::Int(400), PgType::Json, p).unwrap(), b"400");
        assert!(field(Cell::Text(b"{x"), PgType::Json, p).is_err());
    }

    #[test]
    fn json_nul_escapes_follow_the_nul_policy() {
        let doc: &[u8] = br#"{"a":"x\u0000y"}"#;
        assert!(
            field(Cell::Text(doc), PgType::Jsonb, ValuePolicy::default())
                .unwrap_err()
                .reason
                .contains("jsonb cannot store")
        );
        assert_eq!(
            field(Cell::Text(doc), PgType::Json, ValuePolicy::default()).unwrap(),
            doc
        );
        let strip = ValuePolicy {
            nul: NulPolicy::Strip,
            ..Default::default()
        };
        assert_eq!(
            field(Cell::Text(doc), PgType::Jsonb, strip).unwrap(),
            b"\x01{\"a\":\"xy\"}".to_vec()
        );
    }

    #[test]
    fn epochs_into_timestamps_by_magnitude() {
        let p = ValuePolicy::default();
        let second = field(Cell::Int(946_684_801), PgType::Timestamptz, p).unwrap();
        assert_eq!(second, 1_000_000i64.to_be_bytes());
        assert_eq!(
            field(Cell::Int(946_684_801_000), PgType::Timestamp, p).unwrap(),
            second
        );
        assert_eq!(
            field(Cell::Int(946_684_801_000_000), PgType::Timestamp, p).unwrap(),
            second
        );
        assert_eq!(
            field(Cell::Int(946_684_801_000_000_000), PgType::Timestamp, p).unwrap(),
            second
        );
        assert!(field(Cell::Int(946_684_801_000_000_001), PgType::Timestamp, p).is_err());
    }

    #[test]
    fn temporal_values() {
        let p = ValuePolicy::default();
        assert_eq!(
            field(Cell::Text(b"2000-01-02"), PgType::Date, p).unwrap(),
            1i32.to_be_bytes()
        );
        assert_eq!(
            field(Cell::Text(b"2000-01-01 00:00:01"), PgType::Timestamp, p).unwrap(),
            1_000_000i64.to_be_bytes()
        );
    }

    #[test]
    fn intervals_from_microseconds_and_from_datetimes_counted_from_1970() {
        let p = ValuePolicy::default();
        let interval = |micros: i64| [micros.to_be_bytes(), [0; 8]].concat();
        let cases: &[(Cell<'_>, i64)] = &[
            (Cell::Int(-90_000_000), -90_000_000),
            (Cell::Text(b"1970-01-01 00:00:00.000000"), 0),
            (Cell::Text(b"1970-01-01 00:00:00.252330"), 252_330),
            (Cell::Text(b"1970-01-01T00:00:00.25"), 250_000),
            (
                Cell::Text(b"1970-01-03 04:00:00"),
                (2 * 86_400 + 4 * 3_600) * 1_000_000,
            ),
            (Cell::Text(b"1969-12-31 23:59:59.999999"), -1),
            (Cell::Text(b"1969-12-30T22:00:00"), -26 * 3_600 * 1_000_000),
        ];
        for (cell, micros) in cases {
            assert_eq!(
                field(*cell, PgType::Interval, p).unwrap(),
                interval(*micros),
                "{cell:?}"
            );
        }
        let offset = field(
            Cell::Text(b"1970-01-01 00:00:01+01:00"),
            PgType::Interval,
            p,
        );
        assert!(
            offset.unwrap_err().reason.contains("UTC offset"),
            "an offset is refused"
        );
        let junk = field(Cell::Text(b"2 days"), PgType::Interval, p).unwrap_err();
        assert!(
            junk.reason.contains("text '2 days'") && junk.reason.contains("1970-01-01"),
            "{}",
            junk.reason
        );
    }

    #[test]
    fn numeric_respects_declared_scale() {
        let p = ValuePolicy::default();
        let ps = PgType::Numeric {
            precision_scale: Some((10, 2)),
        };
        let out = field(Cell::Real(1.5), ps, p).unwrap();
        assert_eq!(
            u16::from_be_bytes([out[6], out[7]]),
            2,
            "dscale follows the column"
        );
        assert!(field(Cell::Real(1.234), ps, p).is_err());
    }
}
