//! How much of a query's text `status`, `kill` and `serve` show.
//!
//! Query texts carry secrets and personal data (`ALTER ROLE … PASSWORD
//! '…'`, tokens and e-mail addresses in literals), so by default they are
//! shown [`normalised`](normalise): every constant replaced by `$1`, `$2`, …
//! as `pg_stat_statements` does, comments removed, identifiers and
//! keywords kept. [`QueryText::Full`] shows them as the server has them.

use crate::sql_lexer::{Lexer, Token, TokenKind};
use std::fmt::Write as _;

/// Whether query texts are shown normalised (the default) or whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueryText {
    /// Constants replaced by `$n`, comments removed.
    #[default]
    Normalised,
    /// As the server has them (`show_query_text = true`, `--show-query-text`).
    Full,
}

impl QueryText {
    /// `Full` when `show` is set, else `Normalised`.
    pub fn shown_whole(show: bool) -> QueryText {
        if show {
            QueryText::Full
        } else {
            QueryText::Normalised
        }
    }

    /// `text` as this policy shows it.
    pub fn apply(self, text: &str) -> String {
        match self {
            QueryText::Normalised => normalise(text),
            QueryText::Full => text.to_owned(),
        }
    }
}

/// `text` with every constant (string, dollar-quoted string, number)
/// replaced by a placeholder and every comment by a space.
///
/// Placeholders continue after the highest `$n` the text already has, as
/// `pg_stat_statements` numbers them: `select $1, 'x'` becomes
/// `select $1, $2`. Quoted identifiers, keywords and operators are kept.
///
/// ```
/// use pgharbor_health::query_text::normalise;
/// assert_eq!(
///     normalise("select pg_sleep(8), 'secret-token-abc123' as t"),
///     "select pg_sleep($1), $2 as t"
/// );
/// ```
pub fn normalise(text: &str) -> String {
    let tokens: Vec<Token> = Lexer::new(text).collect();
    let mut placeholder = tokens
        .iter()
        .filter(|t| t.kind == TokenKind::Parameter)
        .filter_map(|t| text[t.start + 1..t.end].parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let mut out = String::with_capacity(text.len());
    for t in &tokens {
        match t.kind {
            kind if kind.is_literal() => {
                placeholder = placeholder.saturating_add(1);
                let _ = write!(out, "${placeholder}");
            }
            TokenKind::Comment => {
                if !out.is_empty() && !out.ends_with(char::is_whitespace) {
                    out.push(' ');
                }
            }
            _ => out.push_str(&text[t.start..t.end]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_of_every_kind_become_placeholders() {
        let cases = [
            (
                "select pg_sleep(8), 'secret-token-abc123' as t",
                "select pg_sleep($1), $2 as t",
            ),
            (
                "ALTER ROLE app PASSWORD 'hunter2'",
                "ALTER ROLE app PASSWORD $1",
            ),
            (
                r"select E'it\'s \\ a secret', 'a''b', e'\''",
                "select $1, $2, $3",
            ),
            (
                "select $tag$ secret $ not the end $tag$, $$x$$ || $a$y$a$",
                "select $1, $2 || $3",
            ),
            (
                "select B'101', X'1F', N'nation', U&'d\\0061t\\+000061' UESCAPE '!'",
                "select $1, $2, $3, $4 UESCAPE $5",
            ),
            (
                "select 1.5e-3, .5, 0x1F, 1_000, 42::int, -7, t1.c2 from t1",
                "select $1, $2, $3, $4, $5::int, -$6, t1.c2 from t1",
            ),
            (
                "update t set v = v + 2 where id = 1 and d = date '2024-01-31' and i = interval '1 day'",
                "update t set v = v + $1 where id = $2 and d = date $3 and i = interval $4",
            ),
            (
                "select 'žluťoučký kůň', \"čaj\" from ünïcode",
                "select $1, \"čaj\" from ünïcode",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(normalise(text), want, "{text}");
        }
    }

    #[test]
    fn identifiers_parameters_and_operators_are_kept() {
        for text in [
            r#"select "col 'x'", "a""b", U&"d\0061t" from "t$1" where a$b = $1"#,
            "<insufficient privilege>",
            "SELECT * FROM t WHERE a >= $2 AND b <> $1 AND c::text ~~ $3",
            "",
        ] {
            assert_eq!(normalise(text), text);
        }
    }

    #[test]
    fn placeholders_continue_after_the_highest_parameter() {
        assert_eq!(
            normalise("select $3, 'x' from t where a = $1 and b = 5"),
            "select $3, $4 from t where a = $1 and b = $5"
        );
    }

    #[test]
    fn comments_are_removed_whatever_they_hold() {
        assert_eq!(
            normalise(
                "select 1 -- token 'abc'\n, /* 'x' /* nested */ 'y' */ 2 /*traceparent='00-abc'*/"
            ),
            "select $1 \n,  $2 "
        );
        assert_eq!(normalise("select/*x*/1"), "select $1");
    }

    #[test]
    fn texts_cut_short_inside_a_literal_or_comment_lose_the_rest() {
        for (text, want) in [
            (
                "insert into t values ('secret-tok",
                "insert into t values ($1",
            ),
            (
                r"insert into t values (E'secret\'s",
                "insert into t values ($1",
            ),
            ("do $body$ begin perform 'secret'", "do $1"),
            ("select 1 /* secret", "select $1 "),
        ] {
            assert_eq!(normalise(text), want, "{text}");
        }
    }

    #[test]
    fn no_part_of_a_literal_survives() {
        let secret = "s3cr3t-Ü'\"\\$x$-- /*";
        let quoted = secret.replace('\'', "''");
        let forms = [
            format!("select '{quoted}'"),
            format!("select E'{}'", quoted.replace('\\', "\\\\")),
            format!("select $q${secret}$q$"),
            format!("insert into t values (1, '{quoted}', 2)"),
            // A continuation after a line break stays in escape mode.
            "select E'x'\n'\\' s3cr3t, '".to_owned(),
            "select E'x' -- c\r\n'\\' s3cr3t, '".to_owned(),
            // -- ends at \r too.
            "select 1 -- x\r'abc\ns3cr3t'".to_owned(),
            // U+3000 is no whitespace: \u{3000}E is an identifier, '\\' a plain string.
            "select x\u{3000}E'\\' , 's3cr3t'".to_owned(),
            "select 1,\u{3000}E'\\' , 's3cr3t'".to_owned(),
            // standard_conforming_strings off.
            "select 'a\\' s3cr3t'".to_owned(),
            "select N'a\\' s3cr3t', 1".to_owned(),
            // A vertical tab before the line break (whitespace for some versions).
            "select E'a'\x0b\n'\\' s3cr3t, '".to_owned(),
        ];
        // Each form alone, after other statements and followed by more.
        let leaks: Vec<String> = forms
            .iter()
            .flat_map(|form| {
                [
                    form.clone(),
                    format!("select 1; /* c */ {form}"),
                    format!("{form}\n;\tselect 2, 'x'"),
                ]
            })
            .filter_map(|text| {
                let shown = normalise(&text);
                shown
                    .contains("s3cr3t")
                    .then(|| format!("{text:?} -> {shown:?}"))
            })
            .collect();
        assert!(leaks.is_empty(), "{leaks:#?}");
    }

    #[test]
    fn placeholders_stop_at_the_largest_number() {
        assert_eq!(
            normalise("select $18446744073709551615, 'x'"),
            "select $18446744073709551615, $18446744073709551615"
        );
    }

    #[test]
    fn full_shows_the_text_as_it_is() {
        let text = "select 'secret'";
        assert_eq!(QueryText::Full.apply(text), text);
        assert_eq!(QueryText::default().apply(text), "select $1");
        assert_eq!(QueryText::shown_whole(true), QueryText::Full);
        assert_eq!(QueryText::shown_whole(false), QueryText::Normalised);
    }
}
