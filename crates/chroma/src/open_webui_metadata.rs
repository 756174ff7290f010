//! Open WebUI's own rules for chunk metadata, so `document_chunk.vmetadata`
//! holds exactly what Open WebUI's pgvector client would have written.
//!
//! Open WebUI (0.12, `open_webui/retrieval/vector/utils.py: process_metadata`)
//! drops a few large loader keys and `None` values, turns lists and dicts into
//! their Python `str()` text, removes NUL characters from strings, and keeps
//! numbers and booleans. Chroma can hold strings, numbers, booleans and (1.5+)
//! lists of them, so applying the rule to what Chroma holds is the identity for
//! everything Open WebUI wrote itself, and the documented conversion otherwise.

use serde_json::{Map, Number, Value};

/// Keys Open WebUI never stores in chunk metadata (`KEYS_TO_EXCLUDE`).
const EXCLUDED_KEYS: &[&str] = &[
    "content",
    "pages",
    "tables",
    "paragraphs",
    "sections",
    "figures",
    "documents",
    "keyValuePairs",
    "styles",
    "languages",
];

/// What applying the rule changed in one item's metadata.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MetadataChanges {
    /// Keys dropped (excluded names, nulls).
    pub dropped_keys: u64,
    /// Lists turned into their Python text.
    pub lists_as_text: u64,
    /// Strings from which NUL characters were removed.
    pub nul_stripped: u64,
}

/// Apply Open WebUI's metadata rule; counts what changed into `changes`.
pub fn process_metadata(
    metadata: &Map<String, Value>,
    changes: &mut MetadataChanges,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in metadata {
        if EXCLUDED_KEYS.contains(&key.as_str()) || value.is_null() {
            changes.dropped_keys += 1;
            continue;
        }
        let value = match value {
            Value::Array(_) | Value::Object(_) => {
                changes.lists_as_text += 1;
                Value::String(strip_nuls(python_str(value), changes))
            }
            Value::String(s) => Value::String(strip_nuls(s.clone(), changes)),
            other => other.clone(),
        };
        out.insert(key.clone(), value);
    }
    out
}

fn strip_nuls(text: String, changes: &mut MetadataChanges) -> String {
    if text.contains('\0') {
        changes.nul_stripped += 1;
        text.replace('\0', "")
    } else {
        text
    }
}

/// Python's `str()` of a JSON value as the `json` module would have decoded it.
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// Python's `repr()` of a JSON-decoded value.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => python_number(n),
        Value::String(s) => python_string_repr(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", python_string_repr(k), python_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

fn python_number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    python_float_repr(f)
}

/// `repr(float)`: the shortest round-trip digits, in scientific notation when
/// the exponent is below -4 or at least 16, always with a `.0` or exponent.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("integer exponent");
    if (-4..16).contains(&exponent) {
        let plain = format!("{f}");
        if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// `repr(str)`: single quotes unless the text has one and no double quote,
/// backslash escapes for the quote, backslash and control characters.
fn python_string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_become_python_text_and_scalars_stay() {
        let meta = json!({
            "tags": ["t0", "it's"],
            "ints": [0, 1],
            "mixed": [true, null, 1.5, 1e16],
            "page": 3,
            "score": 0.1001,
            "flag": false,
            "content": "dropped",
            "name": "a\u{0}b",
        });
        let mut changes = MetadataChanges::default();
        let out = process_metadata(meta.as_object().unwrap(), &mut changes);
        assert_eq!(out["tags"], json!(r#"['t0', "it's"]"#));
        assert_eq!(out["ints"], json!("[0, 1]"));
        assert_eq!(out["mixed"], json!("[True, None, 1.5, 1e+16]"));
        assert_eq!(out["page"], json!(3));
        assert_eq!(out["score"], json!(0.1001));
        assert_eq!(out["flag"], json!(false));
        assert_eq!(out["name"], json!("ab"));
        assert!(!out.contains_key("content"));
        assert_eq!(
            changes,
            MetadataChanges {
                dropped_keys: 1,
                lists_as_text: 3,
                nul_stripped: 1
            }
        );
    }

    #[test]
    fn floats_print_like_python() {
        for (f, text) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1e15, "1000000000000000.0"),
            (-2.5e-7, "-2.5e-07"),
        ] {
            assert_eq!(python_float_repr(f), text);
        }
    }

    #[test]
    fn strings_escape_like_python() {
        assert_eq!(python_string_repr("a\\b\n"), r"'a\\b\n'");
        assert_eq!(python_string_repr("both ' and \""), r#"'both \' and "'"#);
        assert_eq!(python_string_repr("東京 🚀"), "'東京 🚀'");
    }
}
