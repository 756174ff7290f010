//! A small lexer for PostgreSQL's SQL, enough to find every literal in a
//! query text: [`Lexer`] splits text into [`Token`]s that cover it exactly,
//! byte for byte, so joining them gives the text back.
//!
//! It follows PostgreSQL's scanner (`scan.l`) where literals are concerned:
//!
//! * strings `'…'` with `''` for a quote; `E'…'` with backslash escapes
//!   too; `B'…'`, `X'…'`, `N'…'` and `U&'…'` (prefixes in any case);
//! * dollar-quoted strings `$$…$$` and `$tag$…$tag$` (a tag is an
//!   identifier without `$`), while `$1` is a parameter and `a$b` one
//!   identifier;
//! * numbers: `42`, `1_000`, `1.5`, `.5`, `1.`, `6.02e23`, `1E-3`, `0x1F`,
//!   `0o17`, `0b101`;
//! * comments `-- …` to the end of the line and `/* … */`, which nest;
//! * identifiers, keywords, and quoted identifiers `"…"` (`""` for a quote,
//!   `U&"…"` too).
//!
//! Texts cut short (`pg_stat_activity` keeps the first
//! `track_activity_query_size` bytes; `status` reads 300 characters) end
//! inside a string, comment or quoted identifier: that token runs to the
//! end of the text. Plain `'…'` strings follow `standard_conforming_strings
//! = on` (the default since PostgreSQL 9.1): a backslash does not escape.

/// What a [`Token`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Spaces, tabs, line breaks.
    Whitespace,
    /// `-- …` or `/* … */`.
    Comment,
    /// A quoted string constant of any kind (`'…'`, `E'…'`, `B'…'`, `X'…'`,
    /// `N'…'`, `U&'…'`).
    String,
    /// A dollar-quoted string constant.
    DollarString,
    /// A numeric constant.
    Number,
    /// A keyword or an unquoted identifier.
    Identifier,
    /// A double-quoted identifier.
    QuotedIdentifier,
    /// A parameter placeholder, `$1`.
    Parameter,
    /// Anything else: one operator or punctuation character.
    Other,
}

impl TokenKind {
    /// Whether the token is a constant: a string, dollar-quoted string or number.
    pub fn is_literal(self) -> bool {
        matches!(
            self,
            TokenKind::String | TokenKind::DollarString | TokenKind::Number
        )
    }
}

/// One token: its kind and its byte range in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
}

/// The tokens of a text, in order.
pub struct Lexer<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer over `text`.
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer { text, at: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn peek(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    /// The byte offset where the run of characters matching `keep`, starting
    /// at `from`, ends.
    fn end_of_run(&self, from: usize, keep: impl Fn(char) -> bool) -> usize {
        self.text[from..]
            .char_indices()
            .find(|&(_, c)| !keep(c))
            .map_or(self.text.len(), |(i, _)| from + i)
    }

    /// The end of a quoted run opened at `from` (just past the opening
    /// `quote`): a doubled quote continues it; with `backslash`, a backslash
    /// escapes the next character. Unterminated: the end of the text.
    fn end_of_quoted(&self, from: usize, quote: char, backslash: bool) -> usize {
        let mut chars = self.text[from..].char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if backslash && c == '\\' {
                chars.next();
            } else if c == quote {
                if chars.peek().is_some_and(|&(_, next)| next == quote) {
                    chars.next();
                } else {
                    return from + i + c.len_utf8();
                }
            }
        }
        self.text.len()
    }

    /// The end of a `/* … */` comment starting at the current position.
    fn end_of_block_comment(&self) -> usize {
        let mut depth = 0usize;
        let bytes = self.text.as_bytes();
        let mut i = self.at;
        while i + 1 < bytes.len() {
            match (bytes[i], bytes[i + 1]) {
                (b'/', b'*') => {
                    depth += 1;
                    i += 2;
                }
                (b'*', b'/') => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        return i;
                    }
                }
                _ => i += 1,
            }
        }
        self.text.len()
    }

    /// A dollar quote's tag at the current `$` (`$$` or `$tag$`), if one starts here.
    fn dollar_tag(&self) -> Option<&'a str> {
        let rest = self.rest();
        let after = &rest[1..];
        let tag_len = after
            .char_indices()
            .find(|&(i, c)| !(is_ident_start(c) || (i > 0 && is_ident_char(c) && c != '$')))
            .map_or(after.len(), |(i, _)| i);
        after[tag_len..]
            .starts_with('$')
            .then(|| &rest[..tag_len + 2])
    }

    /// The end of the number starting at the current position.
    fn end_of_number(&self) -> usize {
        let rest = self.rest().as_bytes();
        let digits = |from: usize, ok: fn(u8) -> bool| {
            from + rest[from..]
                .iter()
                .take_while(|&&b| ok(b) || b == b'_')
                .count()
        };
        if rest.len() > 2 && rest[0] == b'0' {
            let radix_digit: Option<fn(u8) -> bool> = match rest[1] {
                b'x' | b'X' => Some(|b| b.is_ascii_hexdigit()),
                b'o' | b'O' => Some(|b| (b'0'..=b'7').contains(&b)),
                b'b' | b'B' => Some(|b| b == b'0' || b == b'1'),
                _ => None,
            };
            if let Some(ok) = radix_digit.filter(|ok| ok(rest[2])) {
                return self.at + digits(2, ok);
            }
        }
        let decimal = |b: u8| b.is_ascii_digit();
        let mut end = digits(0, decimal);
        if rest.get(end) == Some(&b'.') && rest.get(end + 1) != Some(&b'.') {
            end = digits(end + 1, decimal);
        }
        if matches!(rest.get(end), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(rest.get(end + 1), Some(b'+' | b'-')));
            if rest.get(end + 1 + sign).is_some_and(u8::is_ascii_digit) {
                end = digits(end + 1 + sign, decimal);
            }
        }
        self.at + end
    }

    /// The kind and end of the token starting at the current position.
    fn next_token(&self) -> (TokenKind, usize) {
        let c = self.peek(0).expect("not at the end");
        let next = self.peek(1);
        let after_prefix = |len: usize| self.at + len;
        match c {
            c if c.is_whitespace() => (
                TokenKind::Whitespace,
                self.end_of_run(self.at, char::is_whitespace),
            ),
            '-' if next == Some('-') => {
                (TokenKind::Comment, self.end_of_run(self.at, |c| c != '\n'))
            }
            '/' if next == Some('*') => (TokenKind::Comment, self.end_of_block_comment()),
            '\'' => (
                TokenKind::String,
                self.end_of_quoted(after_prefix(1), '\'', false),
            ),
            '"' => (
                TokenKind::QuotedIdentifier,
                self.end_of_quoted(after_prefix(1), '"', false),
            ),
            'e' | 'E' if next == Some('\'') => (
                TokenKind::String,
                self.end_of_quoted(after_prefix(2), '\'', true),
            ),
            'b' | 'B' | 'x' | 'X' | 'n' | 'N' if next == Some('\'') => (
                TokenKind::String,
                self.end_of_quoted(after_prefix(2), '\'', false),
            ),
            'u' | 'U' if next == Some('&') && matches!(self.peek(2), Some('\'' | '"')) => {
                let quote = self.peek(2).expect("just matched");
                let kind = if quote == '\'' {
                    TokenKind::String
                } else {
                    TokenKind::QuotedIdentifier
                };
                (kind, self.end_of_quoted(after_prefix(3), quote, false))
            }
            '$' if next.is_some_and(|d| d.is_ascii_digit()) => (
                TokenKind::Parameter,
                self.end_of_run(after_prefix(1), |d| d.is_ascii_digit()),
            ),
            '$' => match self.dollar_tag() {
                Some(tag) => {
                    let body = after_prefix(tag.len());
                    let end = self.text[body..]
                        .find(tag)
                        .map_or(self.text.len(), |i| body + i + tag.len());
                    (TokenKind::DollarString, end)
                }
                None => (TokenKind::Other, after_prefix(1)),
            },
            '0'..='9' => (TokenKind::Number, self.end_of_number()),
            '.' if next.is_some_and(|d| d.is_ascii_digit()) => {
                (TokenKind::Number, self.end_of_number())
            }
            c if is_ident_start(c) => (
                TokenKind::Identifier,
                self.end_of_run(self.at, is_ident_char),
            ),
            c => (TokenKind::Other, after_prefix(c.len_utf8())),
        }
    }
}

/// A character that may start an identifier: a letter, `_`, or any non-ASCII character.
fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

/// A character that may continue an identifier: those, digits and `$`.
fn is_ident_char(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '$'
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        if self.at >= self.text.len() {
            return None;
        }
        let start = self.at;
        let (kind, end) = self.next_token();
        self.at = end;
        Some(Token { kind, start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(TokenKind, &str)> {
        Lexer::new(text)
            .map(|t| (t.kind, &text[t.start..t.end]))
            .filter(|(k, _)| *k != TokenKind::Whitespace)
            .collect()
    }

    #[test]
    fn tokens_cover_the_text_exactly() {
        let text = "SELECT E'a\\'b', $q$ x $q$, \"Ä\"\"b\", 1.5e-3 -- c\n/* a /* b */ c */ ž$1 FROM t WHERE x = 'unterminated";
        let joined: String = Lexer::new(text).map(|t| &text[t.start..t.end]).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn strings_of_every_kind() {
        use TokenKind::*;
        assert_eq!(
            kinds(r"'a''b' E'it\'s' e'\\' B'101' x'1F' N'n' U&'d\0061t' u&'x'"),
            [
                (String, "'a''b'"),
                (String, r"E'it\'s'"),
                (String, r"e'\\'"),
                (String, "B'101'"),
                (String, "x'1F'"),
                (String, "N'n'"),
                (String, r"U&'d\0061t'"),
                (String, "u&'x'"),
            ]
        );
        // Without the prefix a backslash does not escape: the string ends at the second quote.
        assert_eq!(kinds(r"'a\' b"), [(String, r"'a\'"), (Identifier, "b")]);
        // A prefix letter inside a longer word is part of the identifier.
        assert_eq!(kinds("type'x'"), [(Identifier, "type"), (String, "'x'")]);
    }

    #[test]
    fn dollar_quotes_parameters_and_identifiers_with_dollars() {
        use TokenKind::*;
        assert_eq!(
            kinds("$$a 'b' $x$ c$$ $fn$ $$ $fn$ $1 $12 a$b tab$1 $"),
            [
                (DollarString, "$$a 'b' $x$ c$$"),
                (DollarString, "$fn$ $$ $fn$"),
                (Parameter, "$1"),
                (Parameter, "$12"),
                (Identifier, "a$b"),
                (Identifier, "tab$1"),
                (Other, "$"),
            ]
        );
        assert_eq!(
            kinds("$a$ never closed"),
            [(DollarString, "$a$ never closed")]
        );
    }

    #[test]
    fn numbers() {
        use TokenKind::*;
        assert_eq!(
            kinds("42 1_000 1.5 .5 1. 6.02e23 1E-3 2e+4 0x1F 0o17 0b101 1..2 t1.c2"),
            [
                (Number, "42"),
                (Number, "1_000"),
                (Number, "1.5"),
                (Number, ".5"),
                (Number, "1."),
                (Number, "6.02e23"),
                (Number, "1E-3"),
                (Number, "2e+4"),
                (Number, "0x1F"),
                (Number, "0o17"),
                (Number, "0b101"),
                (Number, "1"),
                (Other, "."),
                (Number, ".2"),
                (Identifier, "t1"),
                (Other, "."),
                (Identifier, "c2"),
            ]
        );
    }

    #[test]
    fn comments_nest_and_run_to_the_end_of_the_line() {
        use TokenKind::*;
        assert_eq!(
            kinds("a -- 'x'\nb /* 1 /* 'y' */ 2 */ c /* open"),
            [
                (Identifier, "a"),
                (Comment, "-- 'x'"),
                (Identifier, "b"),
                (Comment, "/* 1 /* 'y' */ 2 */"),
                (Identifier, "c"),
                (Comment, "/* open"),
            ]
        );
    }

    #[test]
    fn quoted_identifiers_keep_quotes_and_literal_looking_text() {
        use TokenKind::*;
        assert_eq!(
            kinds(r#""col 'x' 1" "a""b" U&"d\0061t" "open"#),
            [
                (QuotedIdentifier, r#""col 'x' 1""#),
                (QuotedIdentifier, r#""a""b""#),
                (QuotedIdentifier, r#"U&"d\0061t""#),
                (QuotedIdentifier, r#""open"#),
            ]
        );
    }
}
