//! Reading SQL text from SQLite's schema safely.
//!
//! Expression indexes, partial-index predicates and view bodies are the only
//! places where SQL written in SQLite is carried into PostgreSQL. This module
//! walks that text with SQLite's quoting rules (`'string'`, `"name"`, `[name]`,
//! `` `name` ``), re-quotes every quoted identifier with
//! [`quote_ident`](pgharbor_core::schema::quote_ident), and refuses anything
//! that could end one statement and start another.

use pgharbor_core::schema::quote_ident;

/// A piece of SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// A string literal, quotes included, as written (same syntax in PostgreSQL).
    Literal(String),
    /// A quoted identifier, unquoted.
    Quoted(String),
    /// Any other character.
    Char(char),
}

fn pieces(sql: &str) -> Result<Vec<Piece>, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let close = match c {
            '\'' | '"' | '`' => Some(c),
            '[' => Some(']'),
            _ => None,
        };
        let Some(close) = close else {
            out.push(Piece::Char(c));
            i += 1;
            continue;
        };
        let mut text = String::new();
        let mut j = i + 1;
        loop {
            let Some(&d) = chars.get(j) else {
                return Err(format!("unterminated {c} quote in SQL"));
            };
            if d == close {
                // Doubling escapes the quote, except inside [brackets].
                if close != ']' && chars.get(j + 1) == Some(&close) {
                    text.push(d);
                    j += 2;
                    continue;
                }
                break;
            }
            text.push(d);
            j += 1;
        }
        out.push(if c == '\'' {
            Piece::Literal(format!("'{}'", text.replace('\'', "''")))
        } else {
            Piece::Quoted(text)
        });
        i = j + 1;
    }
    Ok(out)
}

/// Translate a SQL fragment (an expression list, a predicate, a SELECT) from
/// SQLite's quoting to PostgreSQL's. A `;` outside quotes, or a comment, is an
/// error: a fragment is never more than one statement.
pub fn translate_fragment(sql: &str) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let parts = pieces(sql)?;
    for (k, piece) in parts.iter().enumerate() {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Quoted(name) => out.push_str(&quote_ident(name)),
            Piece::Char(';') => return Err("the SQL holds a ';' outside quotes".into()),
            Piece::Char('-') if parts.get(k + 1) == Some(&Piece::Char('-')) => {
                return Err("the SQL holds a -- comment".into())
            }
            Piece::Char('/') if parts.get(k + 1) == Some(&Piece::Char('*')) => {
                return Err("the SQL holds a /* comment".into())
            }
            Piece::Char(c) => out.push(*c),
        }
    }
    Ok(out.trim().to_string())
}

/// Split `CREATE INDEX … ON t (elements) [WHERE predicate]` into its SQLite
/// text parts (still to be translated), respecting quotes.
pub fn split_index(sql: &str) -> Option<(String, Option<String>)> {
    let parts = pieces(sql).ok()?;
    let open = parts.iter().position(|p| *p == Piece::Char('('))?;
    let mut depth = 0;
    let mut close = None;
    for (k, p) in parts.iter().enumerate().skip(open) {
        match p {
            Piece::Char('(') => depth += 1,
            Piece::Char(')') => {
                depth -= 1;
                if depth == 0 {
                    close = Some(k);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let elements = render_sqlite(&parts[open + 1..close]);
    let rest = render_sqlite(&parts[close + 1..]);
    let rest = rest.trim();
    let predicate = rest
        .get(..5)
        .filter(|w| w.eq_ignore_ascii_case("WHERE"))
        .map(|_| rest[5..].trim().to_string());
    Some((elements.trim().to_string(), predicate))
}

/// The SELECT of `CREATE VIEW name [(columns)] AS select`, in SQLite text.
pub fn view_select(sql: &str) -> Option<String> {
    let parts = pieces(sql).ok()?;
    let mut depth = 0;
    for k in 0..parts.len() {
        match parts[k] {
            Piece::Char('(') => depth += 1,
            Piece::Char(')') => depth -= 1,
            Piece::Char(c) if depth == 0 && (c == 'A' || c == 'a') => {
                let is_as = matches!(parts.get(k + 1), Some(Piece::Char('S' | 's')));
                let before = k.checked_sub(1).map(|b| &parts[b]);
                let after = parts.get(k + 2);
                let boundary = |p: Option<&Piece>| match p {
                    None => true,
                    Some(Piece::Char(c)) => c.is_whitespace() || *c == ')',
                    Some(_) => true,
                };
                if is_as && boundary(before) && boundary(after) {
                    let rest = render_sqlite(&parts[k + 2..]);
                    return Some(rest.trim().trim_end_matches(';').trim().to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// Render pieces back in SQLite syntax (identifiers in double quotes).
fn render_sqlite(parts: &[Piece]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Piece::Literal(s) => s.clone(),
            Piece::Quoted(name) => quote_ident(name),
            Piece::Char(c) => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_quoting_becomes_postgres_quoting() {
        assert_eq!(translate_fragment("[a] = '[b]'").unwrap(), "\"a\" = '[b]'");
        assert_eq!(translate_fragment("lower(`x`)").unwrap(), "lower(\"x\")");
        assert_eq!(translate_fragment("[x\"]").unwrap(), "\"x\"\"\"");
        assert_eq!(translate_fragment("'it''s'").unwrap(), "'it''s'");
    }

    #[test]
    fn statement_breaks_and_comments_are_refused() {
        assert!(translate_fragment("a); DROP TABLE victim").is_err());
        assert!(translate_fragment("a -- x").is_err());
        assert!(translate_fragment("a /* x */").is_err());
        assert!(translate_fragment("'a;b' || \"c;d\"").is_ok());
        assert!(translate_fragment("'unterminated").is_err());
    }

    #[test]
    fn index_parts_respect_quotes() {
        let (e, p) =
            split_index("CREATE INDEX i ON \"t(\" (lower(email), [x]) WHERE archived = 0").unwrap();
        assert_eq!(e, "lower(email), \"x\"");
        assert_eq!(p.as_deref(), Some("archived = 0"));
        let (e, _) =
            split_index("CREATE INDEX e ON t (lower([x\"]), lower(((\"x\"\"), lower(((\"))))")
                .unwrap();
        assert_eq!(e, "lower(\"x\"\"\"), lower(((\"x\"\"), lower(((\")))");
    }

    #[test]
    fn view_bodies() {
        assert_eq!(
            view_select("CREATE VIEW v AS SELECT 1;").unwrap(),
            "SELECT 1"
        );
        assert_eq!(
            view_select("CREATE VIEW \"has as\"(a) AS\nSELECT a FROM t").unwrap(),
            "SELECT a FROM t"
        );
        assert_eq!(
            view_select("CREATE VIEW [as] AS SELECT 'as' AS x").unwrap(),
            "SELECT 'as' AS x"
        );
    }
}
