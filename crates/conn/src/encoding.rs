//! Percent-encoding as libpq does it (RFC 3986 `%XX`, no `+` for space).

use std::fmt::Write as _;

/// Why a percent-encoded string could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// A `%` not followed by two hexadecimal digits.
    BadEscape,
    /// `%00`, which libpq forbids.
    Nul,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl DecodeError {
    /// What went wrong, without quoting the input (it may be a password).
    pub(crate) fn describe(self) -> &'static str {
        match self {
            DecodeError::BadEscape => {
                "a '%' is not followed by two hexadecimal digits (a literal '%' must be written %25)"
            }
            DecodeError::Nul => "%00 is not allowed",
            DecodeError::NotUtf8 => "the percent-encoded bytes are not valid UTF-8",
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes.
pub(crate) fn decode(s: &str) -> Result<String, DecodeError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex);
            let lo = bytes.get(i + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(hi), Some(lo)) => {
                    let b = (hi << 4) | lo;
                    if b == 0 {
                        return Err(DecodeError::Nul);
                    }
                    out.push(b);
                    i += 3;
                }
                _ => return Err(DecodeError::BadEscape),
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)
}

/// Whether `s[i..]` starts with a valid `%XX` escape.
pub(crate) fn is_escape_at(s: &str, i: usize) -> bool {
    let b = s.as_bytes();
    b.get(i) == Some(&b'%')
        && b.get(i + 1).copied().and_then(hex).is_some()
        && b.get(i + 2).copied().and_then(hex).is_some()
}

/// Percent-encodes every byte outside RFC 3986's unreserved set
/// (`A-Z a-z 0-9 - . _ ~`). The result is safe in any URL component.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Like [`encode`] but leaves `/` alone; for socket paths in `?host=`, which
/// libpq reads fine and people read more easily.
pub(crate) fn encode_path(s: &str) -> String {
    encode(s).replace("%2F", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_keeps_plain_text() {
        assert_eq!(decode("plain").unwrap(), "plain");
        assert_eq!(decode("p%40ss%23w%2Fo%3Fr%3Ad").unwrap(), "p@ss#w/o?r:d");
        assert_eq!(decode("%2fvar%2Frun").unwrap(), "/var/run");
        assert_eq!(decode("a+b").unwrap(), "a+b", "'+' is not a space in libpq");
        assert_eq!(decode("%C3%A9").unwrap(), "é");
    }

    #[test]
    fn rejects_bad_escapes() {
        assert_eq!(decode("50%off"), Err(DecodeError::BadEscape));
        assert_eq!(decode("abc%"), Err(DecodeError::BadEscape));
        assert_eq!(decode("abc%4"), Err(DecodeError::BadEscape));
        assert_eq!(decode("a%00b"), Err(DecodeError::Nul));
        assert_eq!(decode("%FF"), Err(DecodeError::NotUtf8));
        for e in [
            DecodeError::BadEscape,
            DecodeError::Nul,
            DecodeError::NotUtf8,
        ] {
            assert!(!e.describe().is_empty());
        }
    }

    #[test]
    fn encodes_everything_but_unreserved() {
        assert_eq!(encode("Abc123-._~"), "Abc123-._~");
        assert_eq!(encode("a@b#c/d?e:f g%h"), "a%40b%23c%2Fd%3Fe%3Af%20g%25h");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(encode_path("/var/run/postgresql"), "/var/run/postgresql");
        assert_eq!(encode_path("/tmp/a b"), "/tmp/a%20b");
        for s in ["Abc123XYZ!@#", "p:w/d?x#y@z%", "ünïcødé 🐘"] {
            assert_eq!(decode(&encode(s)).unwrap(), s);
        }
    }

    #[test]
    fn escape_detection() {
        assert!(is_escape_at("%41", 0));
        assert!(is_escape_at("x%4a", 1));
        assert!(!is_escape_at("%4", 0));
        assert!(!is_escape_at("%zz", 0));
        assert!(!is_escape_at("a", 0));
    }
}
