//! A small lexer for PostgreSQL's SQL, enough to find every literal in a
//! query text: [`Lexer`] splits text into [`Token`]s that cover it exactly,
//! byte for byte, so joining them gives the text back.
//!
//! It follows PostgreSQL's scanner (`scan.l`) where literals are concerned:
//!
//! * strings `'…'` with `''` for a quote; `E'…'` with backslash escapes
//!   too; `U&'…'` and `N'…'` like `'…'`; `B'…'` and `X'…'`, which end at
//!   the first quote (prefixes in any case);
//! * a string continued by another after whitespace holding a line break
//!   (`'a'` newline `'b'`; `--` comments may come in between, `/* */` may
//!   not) is one constant, read all along as its first part is (an `E'…'`
//!   stays in escape mode);
//! * dollar-quoted strings `$$…$$` and `$tag$…$tag$` (a tag is an
//!   identifier without `$`), while `$1` is a parameter and `a$b` one
//!   identifier;
//! * numbers: `42`, `1_000`, `1.5`, `.5`, `1.`, `6.02e23`, `1E-3`, `0x1F`,
//!   `0o17`, `0b101`;
//! * comments `-- …` to the end of the line (`\n` or `\r`) and `/* … */`,
//!   which nest;
//! * whitespace is only ASCII space, tab, `\n`, `\r`, form feed and vertical
//!   tab; every character beyond ASCII (a no-break space included) may be
//!   part of an identifier;
//! * identifiers, keywords, and quoted identifiers `"…"` (`""` for a quote,
//!   `U&"…"` too).
//!
//! Texts cut short (`pg_stat_activity` keeps the first
//! `track_activity_query_size` bytes; `status` reads 300 characters) end
//! inside a string, comment or quoted identifier: that token runs to the
//! end of the text.
//!
//! Where a string ends can depend on what the text does not tell: the
//! server's `standard_conforming_strings` (when off, a backslash escapes in
//! `'…'` too, so `'a\' b'` is one string) and its version (PostgreSQL 16
//! made the vertical tab whitespace; before, it is not, so it cannot join
//! continued strings). A string is read every way; when the readings end
//! it at different places, it runs to the end of the text, so under no
//! reading does a part of a constant fall outside a string token.

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
    /// `quote`): with `doubled`, a doubled quote continues it; with
    /// `backslash`, a backslash escapes the next character. Unterminated:
    /// the end of the text.
    fn end_of_quoted(&self, from: usize, quote: char, doubled: bool, backslash: bool) -> usize {
        let mut chars = self.text[from..].char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if backslash && c == '\\' {
                chars.next();
            } else if c == quote {
                if doubled && chars.peek().is_some_and(|&(_, next)| next == quote) {
                    chars.next();
                } else {
                    return from + i + c.len_utf8();
                }
            }
        }
        self.text.len()
    }

    /// The end of the string whose text starts at `body` (just past its
    /// opening quote), continuations included, when every [`Reading`]
    /// agrees on it; else the end of the text.
    fn end_of_string(&self, body: usize, mode: StringMode) -> usize {
        let mut ends = Reading::all().map(|reading| self.end_of_string_read(body, mode, reading));
        let first = ends.next().expect("at least one reading");
        if ends.all(|end| end == first) {
            first
        } else {
            self.text.len()
        }
    }

    /// The end of the string whose text starts at `body`, read as `reading` does.
    fn end_of_string_read(&self, mut body: usize, mode: StringMode, reading: Reading) -> usize {
        let backslash = match mode {
            StringMode::Plain => !reading.standard_conforming_strings,
            StringMode::Escape => true,
            StringMode::Unicode | StringMode::Bits => false,
        };
        let doubled = mode != StringMode::Bits;
        loop {
            let closed = self.end_of_quoted(body, '\'', doubled, backslash);
            match self.continuation(closed, reading) {
                Some(next_body) => body = next_body,
                None => return closed,
            }
        }
    }

    /// Where the text of a continuation starts when a string closed at
    /// `at` goes on (`scan.l`'s `{quotecontinue}`): spaces and `--` comments
    /// up to a line break, then any whitespace and `--` comments, then a
    /// quote.
    fn continuation(&self, at: usize, reading: Reading) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let line_break = self.skip_spaces_and_comments(at, |b| reading.is_horizontal_space(b));
        if !matches!(bytes.get(line_break), Some(b'\n' | b'\r')) {
            return None;
        }
        let quote = self.skip_spaces_and_comments(line_break + 1, |b| reading.is_space(b));
        (bytes.get(quote) == Some(&b'\'')).then_some(quote + 1)
    }

    /// The offset past the run of `space` bytes and `--` comments from `at`.
    fn skip_spaces_and_comments(&self, mut at: usize, space: impl Fn(u8) -> bool) -> usize {
        let bytes = self.text.as_bytes();
        loop {
            match &bytes[at..] {
                [b, ..] if space(*b) => at += 1,
                [b'-', b'-', ..] => at = self.end_of_line_comment(at),
                _ => return at,
            }
        }
    }

    /// The end of the `-- …` comment at `from`: the next `\n` or `\r`
    /// (not included), or the end of the text.
    fn end_of_line_comment(&self, from: usize) -> usize {
        self.text[from..]
            .find(['\n', '\r'])
            .map_or(self.text.len(), |i| from + i)
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
            c if is_space(c) => (TokenKind::Whitespace, self.end_of_run(self.at, is_space)),
            '-' if next == Some('-') => (TokenKind::Comment, self.end_of_line_comment(self.at)),
            '/' if next == Some('*') => (TokenKind::Comment, self.end_of_block_comment()),
            '\'' => (
                TokenKind::String,
                self.end_of_string(after_prefix(1), StringMode::Plain),
            ),
            '"' => (
                TokenKind::QuotedIdentifier,
                self.end_of_quoted(after_prefix(1), '"', true, false),
            ),
            'e' | 'E' | 'n' | 'N' | 'b' | 'B' | 'x' | 'X' if next == Some('\'') => (
                TokenKind::String,
                self.end_of_string(after_prefix(2), StringMode::of_prefix(c)),
            ),
            'u' | 'U' if next == Some('&') && self.peek(2) == Some('\'') => (
                TokenKind::String,
                self.end_of_string(after_prefix(3), StringMode::Unicode),
            ),
            'u' | 'U' if next == Some('&') && self.peek(2) == Some('"') => (
                TokenKind::QuotedIdentifier,
                self.end_of_quoted(after_prefix(3), '"', true, false),
            ),
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

/// How the text of a `'…'` string is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringMode {
    /// `'…'` and `N'…'`: `''` is a quote; a backslash escapes only when
    /// `standard_conforming_strings` is off.
    Plain,
    /// `E'…'`: `''` is a quote and a backslash escapes.
    Escape,
    /// `U&'…'`: `''` is a quote; its backslashes are Unicode escapes,
    /// read after the string has ended.
    Unicode,
    /// `B'…'` and `X'…'`: the first quote ends it.
    Bits,
}

impl StringMode {
    /// The mode of a string with the one-letter `prefix` (`E`, `N`, `B`, `X`).
    fn of_prefix(prefix: char) -> StringMode {
        match prefix.to_ascii_uppercase() {
            'E' => StringMode::Escape,
            'B' | 'X' => StringMode::Bits,
            _ => StringMode::Plain,
        }
    }
}

/// One way a server may read a string, as far as a query text cannot tell.
#[derive(Debug, Clone, Copy)]
struct Reading {
    /// The server's `standard_conforming_strings` (off: a backslash escapes in `'…'`).
    standard_conforming_strings: bool,
    /// What a vertical tab is between continued strings.
    vertical_tab: VerticalTab,
}

/// What a vertical tab is to a server's scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VerticalTab {
    /// Up to PostgreSQL 15: not whitespace.
    NotSpace,
    /// Whitespace, but not in the run before the line break of a continuation.
    Space,
    /// Whitespace everywhere.
    HorizontalSpace,
}

impl Reading {
    /// Every reading a server may make.
    fn all() -> impl Iterator<Item = Reading> {
        [true, false]
            .into_iter()
            .flat_map(|standard_conforming_strings| {
                [
                    VerticalTab::NotSpace,
                    VerticalTab::Space,
                    VerticalTab::HorizontalSpace,
                ]
                .into_iter()
                .map(move |vertical_tab| Reading {
                    standard_conforming_strings,
                    vertical_tab,
                })
            })
    }

    /// Whitespace before the line break of a continuation (`scan.l`'s `{horiz_space}`).
    fn is_horizontal_space(self, b: u8) -> bool {
        matches!(b, b' ' | b'\t' | 0x0c)
            || (b == 0x0b && self.vertical_tab == VerticalTab::HorizontalSpace)
    }

    /// Whitespace (`scan.l`'s `{space}`).
    fn is_space(self, b: u8) -> bool {
        matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
            || (b == 0x0b && self.vertical_tab != VerticalTab::NotSpace)
    }
}

/// Whitespace to the lexer: ASCII space, tab, line feed, carriage return,
/// form feed and vertical tab; nothing beyond ASCII.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c' | '\x0b')
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
        // A doubled backslash ends the string at the same quote whatever
        // standard_conforming_strings is.
        assert_eq!(kinds(r"'a\\' b"), [(String, r"'a\\'"), (Identifier, "b")]);
        // B'…' and X'…' end at the first quote: a quote after it opens a string.
        assert_eq!(
            kinds("B'1''0' X'F''x'"),
            [
                (String, "B'1'"),
                (String, "'0'"),
                (String, "X'F'"),
                (String, "'x'"),
            ]
        );
        // A prefix letter inside a longer word is part of the identifier.
        assert_eq!(kinds("type'x'"), [(Identifier, "type"), (String, "'x'")]);
    }

    #[test]
    fn a_string_continued_after_a_line_break_is_one_constant() {
        use TokenKind::*;
        // The continuation stays in escape mode: \\' is a quote inside the constant.
        assert_eq!(
            kinds("select E'x'\n'\\' secret, ' from t"),
            [
                (Identifier, "select"),
                (String, "E'x'\n'\\' secret, '"),
                (Identifier, "from"),
                (Identifier, "t"),
            ]
        );
        assert_eq!(
            kinds("'a' -- c\r\n  -- d\n\t'b'\r'c' x"),
            [
                (String, "'a' -- c\r\n  -- d\n\t'b'\r'c'"),
                (Identifier, "x")
            ]
        );
        assert_eq!(kinds("B'1'\n'0'"), [(String, "B'1'\n'0'")]);
        // Without a line break, or with a /* */ comment, they are two.
        assert_eq!(kinds("'a' 'b'"), [(String, "'a'"), (String, "'b'")]);
        assert_eq!(
            kinds("'a' /* c */\n'b'"),
            [(String, "'a'"), (Comment, "/* c */"), (String, "'b'")]
        );
        assert_eq!(kinds("'a'\n-- c"), [(String, "'a'"), (Comment, "-- c")]);
    }

    #[test]
    fn where_readings_differ_the_string_runs_to_the_end() {
        use TokenKind::*;
        // standard_conforming_strings off: one string 'a\' secret'.
        assert_eq!(kinds(r"'a\' secret' x"), [(String, r"'a\' secret' x")]);
        assert_eq!(kinds(r"N'a\' secret' x"), [(String, r"N'a\' secret' x")]);
        // A vertical tab joins continued strings only for some versions.
        assert_eq!(kinds("E'a'\x0b\n'b' x"), [(String, "E'a'\x0b\n'b' x")]);
        // E'…' and U&'…' read the same under every setting.
        assert_eq!(
            kinds(r"E'a\'' x U&'b\' y"),
            [
                (String, r"E'a\''"),
                (Identifier, "x"),
                (String, r"U&'b\'"),
                (Identifier, "y"),
            ]
        );
    }

    #[test]
    fn only_ascii_whitespace_separates() {
        use TokenKind::*;
        // U+3000 and U+00A0 are identifier characters, so E here is no prefix.
        assert_eq!(
            kinds("(\u{3000}E'a' b\u{a0}c,\u{a0}1"),
            [
                (Other, "("),
                (Identifier, "\u{3000}E"),
                (String, "'a'"),
                (Identifier, "b\u{a0}c"),
                (Other, ","),
                (Identifier, "\u{a0}1"),
            ]
        );
        assert_eq!(
            kinds("a\x0bb\x0cc"),
            [(Identifier, "a"), (Identifier, "b"), (Identifier, "c")]
        );
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
            kinds("a -- 'x'\rz -- 'w'\nb /* 1 /* 'y' */ 2 */ c /* open"),
            [
                (Identifier, "a"),
                (Comment, "-- 'x'"),
                (Identifier, "z"),
                (Comment, "-- 'w'"),
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
