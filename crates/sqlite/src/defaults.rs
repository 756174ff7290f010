//! Translating SQLite column defaults into PostgreSQL expressions.
//!
//! SQLite's `CURRENT_TIMESTAMP` and `datetime('now')` give UTC text
//! (`YYYY-MM-DD HH:MM:SS`); the translation keeps that meaning for each target
//! type. Anything not understood is reported by the caller and left out, never
//! copied verbatim into DDL that would fail.

use pgharbor_core::forms;
use pgharbor_core::schema::{quote_literal, PgType};

const UTC_NOW: &str = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')";

/// Translate `sql` (as written in SQLite's schema) for a column of `pg_type`.
///
/// `Ok(None)` means "no default" (e.g. `NULL`); `Err` carries the reason it
/// could not be translated.
pub fn translate(sql: &str, pg_type: PgType) -> Result<Option<String>, String> {
    let expr = strip_parens(sql.trim());
    let upper = expr.to_ascii_uppercase();
    let compact: String = upper.chars().filter(|c| !c.is_whitespace()).collect();
    if upper == "NULL" {
        return Ok(None);
    }
    if let Some(now) = now_kind(&compact) {
        return now_default(now, pg_type)
            .ok_or_else(|| format!("{expr} has no {pg_type} equivalent"));
    }
    if upper == "TRUE" || upper == "FALSE" {
        return literal_default(if upper == "TRUE" { "1" } else { "0" }, pg_type, expr);
    }
    if let Some(text) = unquote(expr) {
        return literal_default(&text, pg_type, expr);
    }
    if forms::parse_decimal(expr.as_bytes()).is_some() {
        return literal_default(expr, pg_type, expr);
    }
    Err(format!(
        "default {expr} is an SQLite expression pgharbor does not translate"
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Now {
    Timestamp,
    Date,
    Time,
    Epoch,
    Format(&'static str),
}

fn now_kind(compact: &str) -> Option<Now> {
    Some(match compact {
        "CURRENT_TIMESTAMP" | "DATETIME('NOW')" | "DATETIME(\"NOW\")" => Now::Timestamp,
        "CURRENT_DATE" | "DATE('NOW')" => Now::Date,
        "CURRENT_TIME" | "TIME('NOW')" => Now::Time,
        "STRFTIME('%S','NOW')" | "UNIXEPOCH()" | "UNIXEPOCH('NOW')" => Now::Epoch,
        "STRFTIME('%Y-%M-%D%H:%M:%S','NOW')" => Now::Timestamp,
        "STRFTIME('%Y-%M-%DT%H:%M:%S','NOW')" => Now::Format("YYYY-MM-DD\"T\"HH24:MI:SS"),
        "STRFTIME('%Y-%M-%D%H:%M:%F','NOW')" => Now::Format("YYYY-MM-DD HH24:MI:SS.MS"),
        "STRFTIME('%Y-%M-%DT%H:%M:%FZ','NOW')" => Now::Format("YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\""),
        "STRFTIME('%Y-%M-%DT%H:%M:%SZ','NOW')" => Now::Format("YYYY-MM-DD\"T\"HH24:MI:SS\"Z\""),
        "STRFTIME('%Y-%M-%D','NOW')" => Now::Date,
        _ => return None,
    })
}

fn now_default(now: Now, pg_type: PgType) -> Option<Option<String>> {
    let text = |fmt: &str| format!("to_char({UTC_NOW}, '{fmt}')");
    let expr = match (now, pg_type) {
        (Now::Timestamp | Now::Format(_), PgType::Timestamp) => UTC_NOW.to_string(),
        (Now::Timestamp | Now::Format(_), PgType::Timestamptz) => "CURRENT_TIMESTAMP".to_string(),
        (Now::Date, PgType::Date) => format!("({UTC_NOW})::date"),
        (Now::Timestamp, t) if t.is_textual() => text("YYYY-MM-DD HH24:MI:SS"),
        (Now::Format(fmt), t) if t.is_textual() => text(fmt),
        (Now::Date, t) if t.is_textual() => text("YYYY-MM-DD"),
        (Now::Time, t) if t.is_textual() => text("HH24:MI:SS"),
        (Now::Epoch, PgType::BigInt | PgType::Numeric { .. } | PgType::Double) => {
            "(extract(epoch FROM CURRENT_TIMESTAMP))::bigint".to_string()
        }
        (Now::Epoch, t) if t.is_textual() => {
            "((extract(epoch FROM CURRENT_TIMESTAMP))::bigint)::text".to_string()
        }
        _ => return None,
    };
    Some(Some(expr))
}

fn literal_default(text: &str, pg_type: PgType, original: &str) -> Result<Option<String>, String> {
    let bytes = text.as_bytes();
    let fits = match pg_type {
        PgType::Boolean => {
            return forms::parse_bool(bytes)
                .map(|b| Some(b.to_string()))
                .ok_or_else(|| format!("default {original} is not a boolean"))
        }
        PgType::SmallInt | PgType::Integer | PgType::BigInt => text.parse::<i64>().is_ok(),
        PgType::Double | PgType::Numeric { .. } => forms::parse_decimal(bytes).is_some(),
        PgType::Date => forms::parse_date(bytes).is_some(),
        PgType::Timestamp | PgType::Timestamptz => {
            forms::parse_timestamp(bytes).is_some() || forms::parse_date(bytes).is_some()
        }
        PgType::Json | PgType::Jsonb => forms::check_json(bytes) != forms::JsonForm::Invalid,
        PgType::Uuid => forms::parse_uuid(bytes).is_some(),
        PgType::Varchar(n) => text.chars().count() <= n as usize,
        PgType::Text | PgType::Bytea => true,
        // The planner never gives a SQLite column these types.
        PgType::Interval
        | PgType::Char(_)
        | PgType::Array(_)
        | PgType::Vector(_)
        | PgType::HalfVec(_) => false,
    };
    if !fits {
        return Err(format!("default {original} is not a valid {pg_type} value"));
    }
    Ok(Some(match pg_type {
        PgType::SmallInt
        | PgType::Integer
        | PgType::BigInt
        | PgType::Double
        | PgType::Numeric { .. } => quote_literal(text) + "::" + &pg_type.sql(),
        _ => format!("{}::{}", quote_literal(text), pg_type.sql()),
    }))
}

fn strip_parens(mut expr: &str) -> &str {
    while expr.starts_with('(') && expr.ends_with(')') && balanced(&expr[1..expr.len() - 1]) {
        expr = expr[1..expr.len() - 1].trim();
    }
    expr
}

fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// The text of a single- or double-quoted SQLite string literal.
fn unquote(expr: &str) -> Option<String> {
    let quote = expr.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    if expr.len() < 2 || !expr.ends_with(quote) {
        return None;
    }
    let inner = &expr[1..expr.len() - 1];
    let doubled = format!("{quote}{quote}");
    if inner.replace(&doubled, "").contains(quote) {
        return None;
    }
    Some(inner.replace(&doubled, &quote.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_forms_follow_the_target_type() {
        assert_eq!(
            translate("CURRENT_TIMESTAMP", PgType::Timestamp)
                .unwrap()
                .unwrap(),
            UTC_NOW
        );
        assert_eq!(
            translate("(datetime('now'))", PgType::Timestamptz)
                .unwrap()
                .unwrap(),
            "CURRENT_TIMESTAMP"
        );
        assert!(translate("datetime('now')", PgType::Text)
            .unwrap()
            .unwrap()
            .starts_with("to_char("));
        assert!(translate("strftime('%s','now')", PgType::BigInt)
            .unwrap()
            .unwrap()
            .contains("epoch"));
        assert!(translate("CURRENT_TIMESTAMP", PgType::Boolean).is_err());
    }

    #[test]
    fn literals_are_checked_against_the_type() {
        assert_eq!(translate("NULL", PgType::Text).unwrap(), None);
        assert_eq!(translate("0", PgType::Boolean).unwrap().unwrap(), "false");
        assert_eq!(
            translate("-5", PgType::BigInt).unwrap().unwrap(),
            "'-5'::bigint"
        );
        assert_eq!(
            translate("'it''s'", PgType::Text).unwrap().unwrap(),
            "'it''s'::text"
        );
        assert_eq!(
            translate("'null'", PgType::Jsonb).unwrap().unwrap(),
            "'null'::jsonb"
        );
        assert!(translate("'null'", PgType::BigInt).is_err());
        assert!(translate("'abc'", PgType::Varchar(2)).is_err());
        assert!(translate("random()", PgType::BigInt)
            .unwrap_err()
            .contains("random()"));
        assert_eq!(
            translate("\"x\"", PgType::Text).unwrap().unwrap(),
            "'x'::text"
        );
    }
}
