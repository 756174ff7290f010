//! Quoting names and values into SQL text.

/// A double-quoted identifier: `"name"`, inner `"` doubled.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A grantee: `PUBLIC` for the pseudo-role, else a quoted identifier.
pub(crate) fn grantee(role: &str) -> String {
    if is_public(role) {
        "PUBLIC".to_owned()
    } else {
        ident(role)
    }
}

/// Whether a grantee names the `PUBLIC` pseudo-role.
pub(crate) fn is_public(role: &str) -> bool {
    role.eq_ignore_ascii_case("public")
}

/// A single-quoted string literal, inner `'` doubled. Backslashes are kept
/// as they are (`standard_conforming_strings` is on since PostgreSQL 9.1).
pub(crate) fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ident("my\"role"), "\"my\"\"role\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(grantee("Public"), "PUBLIC");
        assert_eq!(grantee("reader"), "\"reader\"");
    }
}
