//! libpq's `key=value` connection strings.

use crate::error::ConnError;
use crate::params::RawParams;

fn is_space(c: char) -> bool {
    // C isspace() in the "C" locale.
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Parses `host=h port=5432 password='it''s'`-style strings exactly as
/// libpq's `conninfo_parse` does: blanks around `=` are allowed, a value is
/// either bare (ends at whitespace, `\` escapes the next character) or in
/// single quotes (`\'` and `\\` escape). Later duplicates win.
pub(crate) fn parse(input: &str) -> Result<RawParams, ConnError> {
    let mut params = RawParams::default();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    // Whether the previous value was an unquoted password: a stray word
    // after it is most likely the rest of a password with a space in it.
    let mut after_bare_password = false;

    while i < chars.len() {
        if is_space(chars[i]) {
            i += 1;
            continue;
        }
        // Key: up to '=' or whitespace.
        let key_start = i;
        while i < chars.len() && chars[i] != '=' && !is_space(chars[i]) {
            i += 1;
        }
        let key: String = chars[key_start..i].iter().collect();
        while i < chars.len() && is_space(chars[i]) {
            i += 1;
        }
        if i >= chars.len() || chars[i] != '=' {
            if after_bare_password {
                return Err(ConnError::invalid(
                    "a word without \"=\" follows the password; if the password contains spaces, quote it: password='...'",
                ));
            }
            if key.contains(['@', ':', '/']) {
                // Probably a URL without its scheme: may hold a password.
                return Err(ConnError::invalid(
                    "the connection string is neither key=value pairs nor a URL; a URL must start with postgresql:// or postgres://",
                ));
            }
            return Err(ConnError::invalid(format!(
                "missing \"=\" after \"{key}\"; write parameters as key=value separated by spaces"
            )));
        }
        i += 1; // '='
        while i < chars.len() && is_space(chars[i]) {
            i += 1;
        }

        let mut value = String::new();
        let quoted = i < chars.len() && chars[i] == '\'';
        if quoted {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(ConnError::invalid(format!(
                            "unterminated quoted value for \"{key}\"; close it with a single quote (write a quote inside the value as \\')"
                        )))
                    }
                    Some('\\') => {
                        i += 1;
                        if let Some(&c) = chars.get(i) {
                            value.push(c);
                            i += 1;
                        }
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() {
                let c = chars[i];
                if is_space(c) {
                    i += 1;
                    break;
                }
                if c == '\\' {
                    i += 1;
                    if let Some(&c) = chars.get(i) {
                        value.push(c);
                        i += 1;
                    }
                } else {
                    value.push(c);
                    i += 1;
                }
            }
        }
        after_bare_password = key == "password" && !quoted;
        params.set(&key, value, true)?;
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ConnErrorKind;

    #[test]
    fn bare_and_quoted_values() {
        let p = parse(
            "host=db.example port = 5433 dbname='my db' user=bob password='it\\'s a \\\\ secret' sslmode=require",
        )
        .unwrap();
        assert_eq!(p.host.as_deref(), Some("db.example"));
        assert_eq!(p.port.as_deref(), Some("5433"));
        assert_eq!(p.dbname.as_deref(), Some("my db"));
        assert_eq!(p.user.as_deref(), Some("bob"));
        assert_eq!(p.password.as_ref().unwrap().expose(), "it's a \\ secret");
        assert_eq!(p.sslmode.as_deref(), Some("require"));
    }

    #[test]
    fn backslash_escapes_in_bare_values_and_empty_values() {
        let p = parse(r"password=a\ b\\c user= dbname=''").unwrap();
        assert_eq!(p.password.as_ref().unwrap().expose(), r"a b\c");
        // libpq skips blanks after '=', so user's value is the next word.
        assert_eq!(p.user.as_deref(), Some("dbname=''"));
        let p = parse("user='' dbname=''").unwrap();
        assert_eq!(p.user.as_deref(), Some(""));
        assert_eq!(p.dbname.as_deref(), Some(""));
    }

    #[test]
    fn quoted_value_may_be_followed_directly_by_next_key() {
        let p = parse("dbname='a'user=b").unwrap();
        assert_eq!(p.dbname.as_deref(), Some("a"));
        assert_eq!(p.user.as_deref(), Some("b"));
    }

    #[test]
    fn later_duplicates_win_and_empty_string_is_fine() {
        let p = parse("port=1 port=2").unwrap();
        assert_eq!(p.port.as_deref(), Some("2"));
        assert!(parse("").unwrap().host.is_none());
        assert!(parse("   \t\n").unwrap().host.is_none());
    }

    #[test]
    fn options_with_search_path() {
        let p = parse("options='-c search_path=app,public'").unwrap();
        assert_eq!(p.options.as_deref(), Some("-c search_path=app,public"));
    }

    #[test]
    fn errors() {
        let e = parse("host").unwrap_err();
        assert_eq!(e.kind(), ConnErrorKind::InvalidConnectionString);
        assert!(
            e.to_string().contains("missing \"=\" after \"host\""),
            "{e}"
        );

        let e = parse("dbname='abc").unwrap_err();
        assert!(e.to_string().contains("unterminated quoted value"), "{e}");

        let e = parse("bogus=1").unwrap_err();
        assert!(e.to_string().contains("unknown parameter \"bogus\""), "{e}");

        let e = parse("port=abc").unwrap_err();
        assert!(e.to_string().contains("invalid port number \"abc\""), "{e}");
    }

    #[test]
    fn url_without_scheme_is_not_echoed() {
        let e = parse("bob:hunter2@db/app").unwrap_err();
        assert!(e.to_string().contains("postgresql://"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn password_with_unquoted_space_is_not_echoed() {
        let e = parse("user=bob password=correct horse battery").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("quote it"), "{msg}");
        assert!(!msg.contains("horse"), "{msg}");
        assert!(!msg.contains("correct"), "{msg}");
    }
}
