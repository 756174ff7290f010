//! A canonical rendering of JSON: sorted keys, no whitespace, numbers by value.

use pgharbor_core::forms::parse_decimal;
use serde_json::Value;

/// Render JSON text canonically, or `None` if it is not JSON.
///
/// Object keys are sorted, whitespace removed, strings re-escaped uniformly and
/// numbers written as `[-]digits e exponent` with trailing zeros removed, so
/// `1.50`, `1.5` and `15e-1` are the same number, as `jsonb` considers them.
pub fn canonical_json(text: &[u8]) -> Option<Vec<u8>> {
    let value: Value = serde_json::from_slice(text).ok()?;
    let mut out = Vec::with_capacity(text.len());
    write_value(&value, &mut out);
    Some(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write_number(&n.to_string(), out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(&map[key], out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(
        serde_json::to_string(s)
            .expect("strings always serialise")
            .as_bytes(),
    );
}

fn write_number(text: &str, out: &mut Vec<u8>) {
    match parse_decimal(text.as_bytes()) {
        Some(mut d) => {
            while d.digits.last() == Some(&b'0') {
                d.digits.pop();
                d.exponent += 1;
            }
            if d.digits.is_empty() {
                out.push(b'0');
                return;
            }
            if d.negative {
                out.push(b'-');
            }
            out.extend_from_slice(&d.digits);
            out.extend_from_slice(format!("e{}", d.exponent).as_bytes());
        }
        None => out.extend_from_slice(text.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_documents_render_equally() {
        let a = canonical_json(br#"{"b": [1.50, 2], "a": "x\u00e9"}"#).unwrap();
        let b = canonical_json(r#"{"a":"xé","b":[15e-1,2.0]}"#.as_bytes()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn different_documents_differ() {
        assert_ne!(canonical_json(b"[1]"), canonical_json(b"[2]"));
        assert_ne!(
            canonical_json(br#"{"a":"1"}"#),
            canonical_json(br#"{"a":1}"#)
        );
        assert_eq!(canonical_json(b"{x"), None);
    }
}
