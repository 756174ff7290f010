//! The exact text forms pgharbor recognises when it gives a column a richer type.
//!
//! Planning uses these predicates to decide a type; the writer uses the same
//! functions to convert, so a planned type never meets a value it cannot carry.
//! Every parser is strict: a form it accepts converts without loss of information
//! (a timestamp with more than microsecond precision, say, is not accepted).

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashSet;

/// Days from 0001-01-01 (proleptic Gregorian) to 2000-01-01, PostgreSQL's epoch.
const DAYS_0001_TO_2000: i64 = 730_119;
/// Microseconds per day.
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `bytes` as UTF-8 text: the same answer as [`std::str::from_utf8`], found
/// with SIMD instructions (texts are validated on every row of a load, several
/// times over when verified); the position of an error comes from the standard
/// library.
pub fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    simdutf8::basic::from_utf8(bytes).or_else(|_| std::str::from_utf8(bytes))
}

/// Parse a boolean spelling: `0 1 t f true false y n yes no on off`, any case.
pub fn parse_bool(text: &[u8]) -> Option<bool> {
    let lower = text.to_ascii_lowercase();
    match lower.as_slice() {
        b"1" | b"t" | b"true" | b"y" | b"yes" | b"on" => Some(true),
        b"0" | b"f" | b"false" | b"n" | b"no" | b"off" => Some(false),
        _ => None,
    }
}

fn digits(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0u32, |acc, d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 0001-01-01 of a valid calendar date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - 1;
    let mut days = y * 365 + y / 4 - y / 100 + y / 400;
    for m in 1..month {
        days += i64::from(days_in_month(year, m));
    }
    days + i64::from(day) - 1
}

/// Parse `YYYY-MM-DD` (years 0001–9999) into days since 2000-01-01.
pub fn parse_date(text: &[u8]) -> Option<i32> {
    if text.len() != 10 || text[4] != b'-' || text[7] != b'-' {
        return None;
    }
    let year = i64::from(digits(&text[0..4])?);
    let month = digits(&text[5..7])?;
    let day = digits(&text[8..10])?;
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    i32::try_from(days_from_civil(year, month, day) - DAYS_0001_TO_2000).ok()
}

/// A parsed ISO-8601 timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedTimestamp {
    /// Microseconds since 2000-01-01 00:00:00 of the wall-clock time as written.
    pub local_micros: i64,
    /// The UTC offset in seconds, when the text carries one (`Z`, `+02:00`, …).
    pub offset_seconds: Option<i32>,
}

impl ParsedTimestamp {
    /// Microseconds since 2000-01-01 UTC (the offset applied, or none).
    pub fn utc_micros(&self) -> i64 {
        self.local_micros - i64::from(self.offset_seconds.unwrap_or(0)) * 1_000_000
    }
}

/// Parse `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]][Z|±HH[:MM]|±HHMM]`.
///
/// At most six fractional digits (PostgreSQL's precision); more is not exact
/// and is rejected.
pub fn parse_timestamp(text: &[u8]) -> Option<ParsedTimestamp> {
    if text.len() < 16 || !(text[10] == b' ' || text[10] == b'T') {
        return None;
    }
    let days = i64::from(parse_date(&text[..10])?);
    let rest = &text[11..];
    if rest.len() < 5 || rest[2] != b':' {
        return None;
    }
    let hour = digits(&rest[0..2])?;
    let minute = digits(&rest[3..5])?;
    let mut pos = 5;
    let mut second = 0;
    let mut micros = 0u32;
    if rest.len() > pos && rest[pos] == b':' {
        second = digits(rest.get(pos + 1..pos + 3)?)?;
        pos += 3;
        if rest.len() > pos && rest[pos] == b'.' {
            let start = pos + 1;
            let mut end = start;
            while end < rest.len() && rest[end].is_ascii_digit() {
                end += 1;
            }
            let frac = &rest[start..end];
            if frac.is_empty() || frac.len() > 6 {
                return None;
            }
            micros = digits(frac)? * 10u32.pow(6 - frac.len() as u32);
            pos = end;
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let offset_seconds = parse_offset(&rest[pos..])?;
    let local_micros = days * MICROS_PER_DAY
        + (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * 1_000_000
        + i64::from(micros);
    Some(ParsedTimestamp {
        local_micros,
        offset_seconds,
    })
}

/// `Some(None)` for no offset, `Some(Some(s))` for a valid one, `None` for junk.
fn parse_offset(text: &[u8]) -> Option<Option<i32>> {
    match text {
        [] => Some(None),
        [b'Z'] | [b'z'] => Some(Some(0)),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (hours, minutes) = match rest {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                _ => return None,
            };
            if hours > 15 || minutes > 59 {
                return None;
            }
            let seconds = (hours * 3600 + minutes * 60) as i32;
            Some(Some(if *sign == b'-' { -seconds } else { seconds }))
        }
        _ => None,
    }
}

/// Parse a canonical lowercase hyphenated UUID (the form PostgreSQL prints back).
pub fn parse_uuid(text: &[u8]) -> Option<[u8; 16]> {
    if text.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nibbles = 0;
    for (i, &c) in text.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        out[nibbles / 2] |= if nibbles % 2 == 0 { v << 4 } else { v };
        nibbles += 1;
    }
    Some(out)
}

/// Parse any UUID spelling a database may hold — canonical, upper-case, or 32
/// hex digits without dashes (Django on SQLite), optionally in braces — into
/// its 16 bytes. Used only where the target column already is `uuid`.
pub fn parse_uuid_any(text: &[u8]) -> Option<[u8; 16]> {
    let trimmed = text
        .strip_prefix(b"{")
        .and_then(|t| t.strip_suffix(b"}"))
        .unwrap_or(text);
    let hex: Vec<u8> = match trimmed.len() {
        36 if [8, 13, 18, 23].iter().all(|i| trimmed[*i] == b'-') => {
            trimmed.iter().copied().filter(|c| *c != b'-').collect()
        }
        32 => trimmed.to_vec(),
        _ => return None,
    };
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// A decimal number: `(-1)^negative × digits × 10^exponent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    /// Sign.
    pub negative: bool,
    /// Decimal digits (ASCII), without leading zeros; empty means zero.
    pub digits: Vec<u8>,
    /// Power of ten applied to `digits`.
    pub exponent: i32,
}

impl Decimal {
    /// Digits after the decimal point as written (PostgreSQL's display scale).
    pub fn scale(&self) -> u32 {
        u32::try_from(-self.exponent.min(0)).unwrap_or(0)
    }

    /// Digits before the decimal point.
    pub fn integer_digits(&self) -> i64 {
        (self.digits.len() as i64 + i64::from(self.exponent)).max(0)
    }
}

/// Parse `-?digits[.digits][e[+-]digits]` (also `.5`, `5.`).
pub fn parse_decimal(text: &[u8]) -> Option<Decimal> {
    let (negative, body) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    let (mantissa, exp_part) = match body.iter().position(|c| *c == b'e' || *c == b'E') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.iter().position(|c| *c == b'.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, &mantissa[mantissa.len()..]),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.iter().chain(frac_part).all(u8::is_ascii_digit) {
        return None;
    }
    let mut exponent: i32 = match exp_part {
        None => 0,
        Some(e) => {
            let (neg, d) = match e {
                [b'-', d @ ..] => (true, d),
                [b'+', d @ ..] => (false, d),
                d => (false, d),
            };
            let v = i32::try_from(digits(d)?).ok()?;
            if v > 100_000 {
                return None;
            }
            if neg {
                -v
            } else {
                v
            }
        }
    };
    exponent -= i32::try_from(frac_part.len()).ok()?;
    let mut all: Vec<u8> = int_part.iter().chain(frac_part).copied().collect();
    let leading = all.iter().take_while(|d| **d == b'0').count();
    all.drain(..leading);
    Some(Decimal {
        negative: negative && !all.is_empty(),
        digits: all,
        exponent,
    })
}

/// Render a double so that it reads back as the same double (shortest form).
pub fn format_real(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "Infinity".into()
    } else if value == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        format!("{value:?}")
    }
}

/// What a JSON check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonForm {
    /// Not valid JSON.
    Invalid,
    /// Valid JSON, but `jsonb` would change its meaning (duplicate object keys,
    /// or a `\u0000` escape that `jsonb` rejects): keep it as `json`.
    JsonOnly,
    /// Valid JSON that `jsonb` stores faithfully.
    JsonbSafe,
}

/// Check whether text is JSON, and whether `jsonb` can hold it faithfully.
pub fn check_json(text: &[u8]) -> JsonForm {
    let mut de = serde_json::Deserializer::from_slice(text);
    let mut dup = false;
    let ok = de.deserialize_any(DupCheck { dup: &mut dup }).is_ok() && de.end().is_ok();
    if !ok {
        return JsonForm::Invalid;
    }
    if dup || memchr_subslice(text, b"\\u0000") {
        JsonForm::JsonOnly
    } else {
        JsonForm::JsonbSafe
    }
}

/// If the JSON text holds a NUL character (written as a `\u0000` escape) in a
/// string or key, the document with every NUL removed; `None` when it holds
/// none (or is not JSON). Literal text such as `\\u0000` is not a NUL and
/// stays untouched. Re-serialising sorts object keys, which `jsonb` does anyway.
pub fn strip_json_nuls(text: &[u8]) -> Option<Vec<u8>> {
    if !memchr_subslice(text, b"\\u0000") {
        return None;
    }
    let mut value: serde_json::Value = serde_json::from_slice(text).ok()?;
    if !strip_value(&mut value) {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

fn strip_value(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => {
            s.retain(|c| c != '\0');
            true
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| strip_value(v) | changed),
        Value::Object(map) => {
            let mut changed = false;
            if map.keys().any(|k| k.contains('\0')) {
                let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
                for (k, v) in entries {
                    map.insert(k.replace('\0', ""), v);
                }
                changed = true;
            }
            map.values_mut()
                .fold(changed, |changed, v| strip_value(v) | changed)
        }
        _ => false,
    }
}

fn memchr_subslice(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

struct DupCheck<'a> {
    dup: &'a mut bool,
}

impl<'de> de::DeserializeSeed<'de> for DupCheck<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DupCheck<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(DupCheck { dup: self.dup })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = SeenKeys::default();
        while let Some(ObjectKey(key)) = map.next_key()? {
            if key.starts_with("$serde_json::private::Number") {
                // arbitrary_precision represents numbers as a one-key map.
                map.next_value::<IgnoredAny>()?;
                return Ok(());
            }
            if !seen.insert(key) {
                *self.dup = true;
            }
            map.next_value_seed(DupCheck { dup: self.dup })?;
        }
        Ok(())
    }
}

/// An object key, borrowed from the input when it holds no escape.
struct ObjectKey<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for ObjectKey<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(ObjectKeyVisitor)
    }
}

struct ObjectKeyVisitor;

impl<'de> Visitor<'de> for ObjectKeyVisitor {
    type Value = ObjectKey<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(ObjectKey(Cow::Borrowed(key)))
    }
    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(ObjectKey(Cow::Owned(key.to_owned())))
    }
    fn visit_string<E>(self, key: String) -> Result<Self::Value, E> {
        Ok(ObjectKey(Cow::Owned(key)))
    }
}

/// The keys of one object seen so far: a list while there are few (most
/// objects), a hash set beyond.
#[derive(Default)]
struct SeenKeys<'de> {
    few: Vec<Cow<'de, str>>,
    many: HashSet<Cow<'de, str>>,
}

impl<'de> SeenKeys<'de> {
    /// Keys kept in the list before switching to the set.
    const FEW: usize = 16;

    /// Add `key`; false when it was already there.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        if self.many.is_empty() {
            if self.few.contains(&key) {
                return false;
            }
            if self.few.len() < Self::FEW {
                self.few.push(key);
                return true;
            }
            self.many.extend(self.few.drain(..));
        }
        self.many.insert(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// Arbitrary bytes, and text with one byte changed (invalid UTF-8 in
        /// the middle of long valid text, where the SIMD path works in blocks).
        #[test]
        fn utf8_answers_as_the_standard_library(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            text in "[a-zé€😀 ]{0,200}",
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut changed = text.clone().into_bytes();
            if !changed.is_empty() {
                let i = at.index(changed.len());
                changed[i] = byte;
            }
            for input in [&bytes[..], text.as_bytes(), &changed[..]] {
                let ours = utf8(input);
                let std = std::str::from_utf8(input);
                prop_assert_eq!(ours, std);
            }
        }
    }

    #[test]
    fn booleans() {
        for t in ["1", "t", "TRUE", "yes", "On"] {
            assert_eq!(parse_bool(t.as_bytes()), Some(true), "{t}");
        }
        for f in ["0", "f", "False", "no", "off"] {
            assert_eq!(parse_bool(f.as_bytes()), Some(false), "{f}");
        }
        assert_eq!(parse_bool(b"2"), None);
        assert_eq!(parse_bool(b" true"), None);
    }

    #[test]
    fn dates_count_days_from_2000() {
        assert_eq!(parse_date(b"2000-01-01"), Some(0));
        assert_eq!(parse_date(b"2000-03-01"), Some(60));
        assert_eq!(parse_date(b"1999-12-31"), Some(-1));
        assert_eq!(parse_date(b"2024-02-29"), Some(8825));
        assert_eq!(parse_date(b"2023-02-29"), None);
        assert_eq!(parse_date(b"0000-01-01"), None);
        assert_eq!(parse_date(b"2024-1-01"), None);
        assert_eq!(parse_date(b"1700000000"), None);
    }

    #[test]
    fn timestamps() {
        let t = parse_timestamp(b"2000-01-01 00:00:01").unwrap();
        assert_eq!(t.local_micros, 1_000_000);
        assert_eq!(t.offset_seconds, None);
        let t = parse_timestamp(b"2000-01-01T01:00:00.5+01:00").unwrap();
        assert_eq!(t.utc_micros(), 500_000);
        assert_eq!(
            parse_timestamp(b"2000-01-01T00:00Z")
                .unwrap()
                .offset_seconds,
            Some(0)
        );
        assert!(parse_timestamp(b"2000-01-01 00:00:00.1234567").is_none());
        assert!(parse_timestamp(b"2000-01-01 24:00:00").is_none());
        assert!(parse_timestamp(b"2000-01-01 10:00:00 junk").is_none());
        assert!(parse_timestamp(b"2000-01-01").is_none());
    }

    #[test]
    fn uuids_must_be_canonical() {
        let u = parse_uuid(b"123e4567-e89b-12d3-a456-426614174000").unwrap();
        assert_eq!(u[0], 0x12);
        assert_eq!(u[15], 0x00);
        assert!(parse_uuid(b"123E4567-E89B-12D3-A456-426614174000").is_none());
        assert!(parse_uuid(b"123e4567e89b12d3a456426614174000").is_none());
    }

    #[test]
    fn any_uuid_spelling_for_uuid_columns() {
        let canonical = parse_uuid(b"0cc668a1-f606-4ff8-aebd-78411346a6da").unwrap();
        assert_eq!(
            parse_uuid_any(b"0cc668a1f6064ff8aebd78411346a6da"),
            Some(canonical)
        );
        assert_eq!(
            parse_uuid_any(b"0CC668A1-F606-4FF8-AEBD-78411346A6DA"),
            Some(canonical)
        );
        assert_eq!(
            parse_uuid_any(b"{0cc668a1-f606-4ff8-aebd-78411346a6da}"),
            Some(canonical)
        );
        assert_eq!(parse_uuid_any(b"0cc668a1f6064ff8aebd78411346a6dz"), None);
        assert_eq!(parse_uuid_any(b"0cc668a1-f6064ff8aebd-78411346a6da"), None);
    }

    #[test]
    fn decimals() {
        let d = parse_decimal(b"-12.50").unwrap();
        assert!(d.negative);
        assert_eq!(d.digits, b"1250");
        assert_eq!(d.exponent, -2);
        assert_eq!(d.scale(), 2);
        assert_eq!(d.integer_digits(), 2);
        let d = parse_decimal(b"1.5e1").unwrap();
        assert_eq!((d.digits.as_slice(), d.exponent), (&b"15"[..], 0));
        assert!(!parse_decimal(b"-0").unwrap().negative);
        assert!(parse_decimal(b"1.2.3").is_none());
        assert!(parse_decimal(b"abc").is_none());
        assert!(parse_decimal(b".").is_none());
    }

    #[test]
    fn reals_round_trip() {
        for v in [0.1, 1.0, -0.0, 5e-324, f64::MAX, f64::MIN_POSITIVE, 1e300] {
            let s = format_real(v);
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{s}");
        }
        assert_eq!(format_real(f64::INFINITY), "Infinity");
    }

    #[test]
    fn json_nuls_are_stripped_but_literal_escapes_are_not() {
        assert_eq!(
            strip_json_nuls(br#"{"a":"x\u0000y","n":1.50}"#).unwrap(),
            br#"{"a":"xy","n":1.50}"#.to_vec()
        );
        assert_eq!(strip_json_nuls(br#"{"a":"literal \\u0000 text"}"#), None);
        assert_eq!(strip_json_nuls(br#"{"a":"clean"}"#), None);
        assert_eq!(
            strip_json_nuls(br#"["\u0000"]"#).unwrap(),
            br#"[""]"#.to_vec()
        );
    }

    #[test]
    fn json_forms() {
        assert_eq!(
            check_json(br#"{"a":[1,2.5e3,{"b":null}]}"#),
            JsonForm::JsonbSafe
        );
        assert_eq!(check_json(b"null"), JsonForm::JsonbSafe);
        assert_eq!(check_json(b"400"), JsonForm::JsonbSafe);
        assert_eq!(check_json(br#"{"a":1,"a":2}"#), JsonForm::JsonOnly);
        assert_eq!(check_json(br#"{"a":"x\u0000y"}"#), JsonForm::JsonOnly);
        assert_eq!(check_json(b"{oops}"), JsonForm::Invalid);
        assert_eq!(check_json(b"[1] [2]"), JsonForm::Invalid);
        assert_eq!(check_json(b""), JsonForm::Invalid);
    }

    #[test]
    fn duplicate_keys_are_found_however_many_keys_and_however_written() {
        let object = |keys: &[String]| {
            let members: Vec<String> = keys.iter().map(|k| format!(r#""{k}":1"#)).collect();
            format!("{{{}}}", members.join(","))
        };
        let distinct: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        assert_eq!(
            check_json(object(&distinct).as_bytes()),
            JsonForm::JsonbSafe
        );
        for repeated in [0, 15, 16, 39] {
            let mut keys = distinct.clone();
            keys.push(format!("k{repeated}"));
            assert_eq!(
                check_json(object(&keys).as_bytes()),
                JsonForm::JsonOnly,
                "k{repeated} twice"
            );
        }
        assert_eq!(check_json(br#"{"a":1,"\u0061":2}"#), JsonForm::JsonOnly);
        assert_eq!(
            check_json(br#"{"a":{"a":1},"b":[{"a":2}]}"#),
            JsonForm::JsonbSafe
        );
    }
}
