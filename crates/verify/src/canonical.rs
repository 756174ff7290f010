//! A canonical rendering of JSON: sorted keys, no whitespace, numbers by value.
//!
//! Written as a single pass over the text (no `serde_json::Value` tree): the
//! verification hashes every `jsonb` value on both sides, so this runs once
//! per row and side.

use pgharbor_core::forms::parse_decimal;
use std::borrow::Cow;
use std::ops::Range;

/// Nesting deeper than this is not rendered (as `serde_json` refuses it).
const MAX_DEPTH: usize = 128;

/// Render JSON text canonically, or `None` if it is not JSON.
///
/// Object keys are sorted (by their characters; of repeated keys the last
/// wins, as in `jsonb`), whitespace removed, strings re-escaped uniformly
/// (only `"`, `\` and control characters escaped) and numbers written as
/// `[-]digits e exponent` with trailing zeros removed, so `1.50`, `1.5` and
/// `15e-1` are the same number, as `jsonb` considers them. Numbers keep every
/// digit written (`jsonb` stores them as `numeric`, exactly).
pub fn canonical_json(text: &[u8]) -> Option<Vec<u8>> {
    let mut parser = Parser { text, at: 0 };
    let mut out = Vec::with_capacity(text.len());
    parser.value(&mut out, 0)?;
    parser.skip_whitespace();
    (parser.at == text.len()).then_some(out)
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    /// Consume `byte` (after whitespace) or fail.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.text.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    /// Consume `close` (after whitespace) if it comes next.
    fn closes(&mut self, close: u8) -> bool {
        self.skip_whitespace();
        self.eat(close)
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        self.skip_whitespace();
        match *self.text.get(self.at)? {
            b'{' if depth < MAX_DEPTH => self.object(out, depth + 1),
            b'[' if depth < MAX_DEPTH => self.array(out, depth + 1),
            b'"' => {
                let string = self.string()?;
                write_string(&string, out);
                Some(())
            }
            b't' => self.literal(b"true", out),
            b'f' => self.literal(b"false", out),
            b'n' => self.literal(b"null", out),
            b'-' | b'0'..=b'9' => self.number(out),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Option<()> {
        self.text[self.at..].starts_with(word).then(|| {
            self.at += word.len();
            out.extend_from_slice(word);
        })
    }

    fn array(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        self.at += 1;
        if self.closes(b']') {
            out.extend_from_slice(b"[]");
            return Some(());
        }
        out.push(b'[');
        loop {
            self.value(out, depth)?;
            if self.closes(b']') {
                break;
            }
            self.expect(b',')?;
            out.push(b',');
        }
        out.push(b']');
        Some(())
    }

    /// An object, rendered straight into `out` in the order written, then
    /// rewritten in key order only when it is not in key order already: a
    /// document is held once more at most (while its least nested unsorted
    /// object is rewritten), never once per level of nesting.
    fn object(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        self.at += 1;
        out.push(b'{');
        if self.closes(b'}') {
            out.push(b'}');
            return Some(());
        }
        let first = out.len();
        // Members as (key, range of its rendered `"key":value` in `out`).
        let mut members: Vec<(Cow<'a, str>, Range<usize>)> = Vec::new();
        loop {
            self.skip_whitespace();
            if self.text.get(self.at) != Some(&b'"') {
                return None;
            }
            let key = self.string()?;
            self.expect(b':')?;
            if !members.is_empty() {
                out.push(b',');
            }
            let start = out.len();
            write_string(&key, out);
            out.push(b':');
            self.value(out, depth)?;
            members.push((key, start..out.len()));
            if self.closes(b'}') {
                break;
            }
            self.expect(b',')?;
        }
        if !members.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            sort_members(out, first, &mut members);
        }
        out.push(b'}');
        Some(())
    }

    /// A string literal's characters: borrowed when it has no escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at;
        self.at += 1;
        let mut escaped = false;
        loop {
            match *self.text.get(self.at)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.at += 2;
                }
                0x00..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        let literal = self.text.get(start..self.at)?;
        if escaped {
            serde_json::from_slice::<String>(literal)
                .ok()
                .map(Cow::Owned)
        } else {
            pgharbor_core::forms::utf8(&literal[1..literal.len() - 1])
                .ok()
                .map(Cow::Borrowed)
        }
    }

    /// A number as JSON spells it: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let start = self.at;
        self.eat(b'-');
        match self.text.get(self.at)? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.') {
            self.required_digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            self.required_digits()?;
        }
        write_number(&self.text[start..self.at], out);
        Some(())
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.text.get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn digits(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
    }

    fn required_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

/// Rewrites the members of an object rendered into `out` from `first` on
/// (each at its range in `members`) in key order; of repeated keys only the
/// last written stays, as in `jsonb`.
fn sort_members(out: &mut Vec<u8>, first: usize, members: &mut [(Cow<'_, str>, Range<usize>)]) {
    let rendered = out.split_off(first);
    // Stable: of equal keys the last one written comes last, and wins.
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let mut written = false;
    for (i, (key, range)) in members.iter().enumerate() {
        if members.get(i + 1).is_some_and(|next| next.0 == *key) {
            continue;
        }
        if written {
            out.push(b',');
        }
        written = true;
        out.extend_from_slice(&rendered[range.start - first..range.end - first]);
    }
}

/// `s` as a JSON string literal: only `"`, `\` and control characters escaped.
fn write_string(s: &str, out: &mut Vec<u8>) {
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    serde_json::to_writer(&mut *out, s).expect("strings always serialise");
}

fn write_number(text: &[u8], out: &mut Vec<u8>) {
    match parse_decimal(text) {
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
            out.push(b'e');
            out.extend_from_slice(d.exponent.to_string().as_bytes());
        }
        None => out.extend_from_slice(text),
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

    fn rendered(text: &str) -> String {
        String::from_utf8(canonical_json(text.as_bytes()).expect("valid JSON")).unwrap()
    }

    #[test]
    fn keys_sort_by_character_and_the_last_repeated_key_wins() {
        assert_eq!(
            rendered(r#"{"b":1,"a":{"y":[],"x":{}},"b":3}"#),
            r#"{"a":{"x":{},"y":[]},"b":3e0}"#
        );
        assert_eq!(
            rendered(r#"{"é":1,"z":2,"Z":3}"#),
            r#"{"Z":3e0,"z":2e0,"é":1e0}"#
        );
    }

    #[test]
    fn escapes_are_decoded_and_written_one_way() {
        assert_eq!(
            rendered(r#" { "k\u0065y" : "a\"b\\c\n\u00e9\/" } "#),
            r#"{"key":"a\"b\\c\né/"}"#
        );
        assert_eq!(rendered(r#"["\u0000"]"#), r#"["\u0000"]"#);
        assert_eq!(canonical_json(br#"["\ud800"]"#), None);
    }

    #[test]
    fn numbers_keep_every_digit_and_compare_by_value() {
        assert_eq!(
            rendered("[-0, 0.0, 100, 1e2, 1E+2, 0.10, 1e400]"),
            "[0,0,1e2,1e2,1e2,1e-1,1e400]"
        );
        assert_ne!(
            canonical_json(b"123456789012345678901234567890"),
            canonical_json(b"123456789012345678901234567891")
        );
    }

    #[test]
    fn what_is_not_json_is_refused() {
        for bad in [
            "",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "tru",
            "[1] x",
            "\"open",
            "\"tab\there\"",
            "{1:2}",
            "[1 2]",
            "nul",
        ] {
            assert_eq!(canonical_json(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(canonical_json(b"\"\xff\""), None);
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(canonical_json(deep.as_bytes()), None);
        let nested = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(rendered(&nested), nested);
    }

    /// The rendering `serde_json::Value` gives (numbers through f64), which
    /// this one must match wherever a number fits a double exactly.
    fn through_serde(text: &str) -> String {
        fn write(value: &serde_json::Value, out: &mut String) {
            use serde_json::Value;
            match value {
                Value::Number(n) => {
                    let mut v = Vec::new();
                    write_number(n.to_string().as_bytes(), &mut v);
                    out.push_str(std::str::from_utf8(&v).unwrap());
                }
                Value::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        write(item, out);
                    }
                    out.push(']');
                }
                Value::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    out.push('{');
                    for (i, key) in keys.into_iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&serde_json::to_string(key).unwrap());
                        out.push(':');
                        write(&map[key], out);
                    }
                    out.push('}');
                }
                other => out.push_str(&serde_json::to_string(other).unwrap()),
            }
        }
        let mut out = String::new();
        write(&serde_json::from_str(text).unwrap(), &mut out);
        out
    }

    #[test]
    fn renders_as_a_parsed_value_would() {
        for doc in [
            r#"{"file_id":"f-1","page":3,"score":0.25,"tags":["a","b"],"ok":true,"none":null}"#,
            r#"{"embedding_config":"{\"engine\": \"\", \"model\": \"x\"}","start_index":-12}"#,
            r#"[{"b":{"d":1,"c":2}},{"a":[1.5e3,-2.25,1e-7]},"\u001f\t\r"]"#,
            r#"{"name":"Ünïcödé 文字 😀","source":"C:\\docs\\a.pdf","x":"\u2028"}"#,
            "  [ 1 , 2 ,\n\t3 ]  ",
            "\"just a string\"",
            "42",
        ] {
            assert_eq!(rendered(doc), through_serde(doc), "{doc}");
        }
    }
}
