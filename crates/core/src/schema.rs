//! The PostgreSQL schema a source is planned into.

use serde::Serialize;
use std::fmt;

/// Quote an identifier for PostgreSQL: always double-quoted, embedded quotes doubled.
///
/// This is the only way pgharbor puts a name into SQL. NUL characters cannot be
/// part of a PostgreSQL identifier; callers reject such names before planning
/// (see [`check_ident`]).
pub fn quote_ident(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for ch in name.chars() {
        if ch == '"' {
            quoted.push('"');
        }
        quoted.push(ch);
    }
    quoted.push('"');
    quoted
}

/// Quote a string literal for PostgreSQL (standard-conforming strings).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Why a name cannot be used as a PostgreSQL identifier, if it cannot.
pub fn check_ident(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.contains('\0') {
        return Err("the name contains a NUL character".into());
    }
    if name.len() > 63 {
        return Err(format!(
            "the name is {} bytes long; PostgreSQL truncates identifiers to 63 bytes",
            name.len()
        ));
    }
    Ok(())
}

/// A schema-qualified table name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct QualifiedName {
    /// The PostgreSQL schema.
    pub schema: String,
    /// The table name.
    pub name: String,
}

impl QualifiedName {
    /// A name in `schema`.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for QualifiedName {
    /// Renders the quoted SQL form, `"schema"."name"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&self.name)
        )
    }
}

/// The PostgreSQL column types pgharbor writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PgType {
    /// `boolean`
    Boolean,
    /// `smallint`
    SmallInt,
    /// `integer`
    Integer,
    /// `bigint`
    BigInt,
    /// `double precision`
    Double,
    /// `numeric` or `numeric(p,s)`
    Numeric {
        /// Declared precision and scale, if any.
        precision_scale: Option<(u32, u32)>,
    },
    /// `text`
    Text,
    /// `character varying(n)`
    Varchar(u32),
    /// `character(n)` (`bpchar`): blank-padded to n characters, as PostgreSQL
    /// stores it (loading into an application's existing schema only).
    Char(u32),
    /// `bytea`
    Bytea,
    /// `date`
    Date,
    /// `timestamp without time zone`
    Timestamp,
    /// `timestamp with time zone`
    Timestamptz,
    /// `json` (text kept exactly)
    Json,
    /// `jsonb`
    Jsonb,
    /// `uuid`
    Uuid,
    /// `interval` (loaded from integer microseconds)
    Interval,
    /// A one-dimensional array (loaded from a JSON array).
    Array(ArrayElement),
    /// pgvector's `vector(n)` (single precision); 0 means any dimension
    /// (a column for a collection that holds no vector yet).
    Vector(u32),
    /// pgvector's `halfvec(n)` (half precision, for dimensions above the
    /// 2,000 that `vector` indexes support).
    HalfVec(u32),
}

/// Element types of arrays pgharbor loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrayElement {
    /// `text[]` (also `character varying[]`)
    Text,
    /// `integer[]`
    Integer,
    /// `bigint[]`
    BigInt,
    /// `boolean[]`
    Boolean,
    /// `double precision[]`
    Double,
}

impl ArrayElement {
    /// The element type's OID, as binary arrays carry it.
    pub fn oid(&self) -> u32 {
        match self {
            ArrayElement::Text => 25,
            ArrayElement::Integer => 23,
            ArrayElement::BigInt => 20,
            ArrayElement::Boolean => 16,
            ArrayElement::Double => 701,
        }
    }

    /// The SQL spelling of the element type.
    pub fn sql(&self) -> &'static str {
        match self {
            ArrayElement::Text => "text",
            ArrayElement::Integer => "integer",
            ArrayElement::BigInt => "bigint",
            ArrayElement::Boolean => "boolean",
            ArrayElement::Double => "double precision",
        }
    }
}

impl PgType {
    /// The SQL spelling of the type.
    pub fn sql(&self) -> String {
        match self {
            PgType::Boolean => "boolean".into(),
            PgType::SmallInt => "smallint".into(),
            PgType::Integer => "integer".into(),
            PgType::BigInt => "bigint".into(),
            PgType::Double => "double precision".into(),
            PgType::Numeric {
                precision_scale: Some((p, s)),
            } => format!("numeric({p},{s})"),
            PgType::Numeric {
                precision_scale: None,
            } => "numeric".into(),
            PgType::Text => "text".into(),
            PgType::Varchar(n) => format!("character varying({n})"),
            PgType::Char(n) => format!("character({n})"),
            PgType::Bytea => "bytea".into(),
            PgType::Date => "date".into(),
            PgType::Timestamp => "timestamp without time zone".into(),
            PgType::Timestamptz => "timestamp with time zone".into(),
            PgType::Json => "json".into(),
            PgType::Jsonb => "jsonb".into(),
            PgType::Uuid => "uuid".into(),
            PgType::Interval => "interval".into(),
            PgType::Array(element) => format!("{}[]", element.sql()),
            PgType::Vector(0) => "vector".into(),
            PgType::Vector(n) => format!("vector({n})"),
            PgType::HalfVec(n) => format!("halfvec({n})"),
        }
    }

    /// Whether values of this type are textual (NUL and UTF-8 rules apply).
    pub fn is_textual(&self) -> bool {
        matches!(
            self,
            PgType::Text | PgType::Varchar(_) | PgType::Char(_) | PgType::Json | PgType::Jsonb
        )
    }
}

impl fmt::Display for PgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// How a column's values are generated by the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// `GENERATED BY DEFAULT AS IDENTITY`; after the load the sequence
    /// continues above `start_after`.
    ByDefault {
        /// The highest key ever handed out by the source (e.g. `sqlite_sequence`).
        source_high_water: Option<i64>,
    },
}

/// A column of a target table.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnSpec {
    /// Name, exactly as in the source.
    pub name: String,
    /// The planned type.
    pub pg_type: PgType,
    /// `NOT NULL` when false.
    pub nullable: bool,
    /// Default expression in PostgreSQL SQL.
    pub default: Option<String>,
    /// Identity column settings.
    pub identity: Option<Identity>,
}

/// A target index (also used for unique constraints built after the load).
#[derive(Debug, Clone, Serialize)]
pub struct IndexSpec {
    /// Index name.
    pub name: String,
    /// Key elements in SQL: quoted column names or expressions, with ordering.
    pub elements: Vec<String>,
    /// `UNIQUE`.
    pub unique: bool,
    /// Access method when not btree (e.g. `gin`).
    pub method: Option<String>,
    /// Partial index predicate.
    pub predicate: Option<String>,
    /// True when the definition came from expressions or a predicate in source SQL
    /// (it may not be valid PostgreSQL; failures are reported, not fatal).
    pub translated: bool,
}

/// A foreign key, added after the load.
#[derive(Debug, Clone, Serialize)]
pub struct ForeignKeySpec {
    /// Constraint name.
    pub name: String,
    /// Referencing columns.
    pub columns: Vec<String>,
    /// Referenced table.
    pub ref_table: QualifiedName,
    /// Referenced columns.
    pub ref_columns: Vec<String>,
    /// `ON DELETE` action in SQL, if not NO ACTION.
    pub on_delete: Option<String>,
    /// `ON UPDATE` action in SQL, if not NO ACTION.
    pub on_update: Option<String>,
    /// `DEFERRABLE INITIALLY DEFERRED` in the source.
    pub deferred: bool,
}

/// A table of the target schema.
#[derive(Debug, Clone, Serialize)]
pub struct TableSpec {
    /// Qualified name.
    pub name: QualifiedName,
    /// Columns in source order.
    pub columns: Vec<ColumnSpec>,
    /// Primary key columns, built after the load.
    pub primary_key: Option<Vec<String>>,
    /// Indexes and unique constraints, built after the load.
    pub indexes: Vec<IndexSpec>,
    /// Foreign keys, added after every table is loaded.
    pub foreign_keys: Vec<ForeignKeySpec>,
}

impl TableSpec {
    /// Position of a column by exact name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// A view to recreate.
#[derive(Debug, Clone, Serialize)]
pub struct ViewSpec {
    /// Qualified name.
    pub name: QualifiedName,
    /// The SELECT statement from the source.
    pub select_sql: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_quotes_and_keeps_everything_else() {
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("has\"quote"), "\"has\"\"quote\"");
        assert_eq!(quote_ident("a; DROP TABLE x;--"), "\"a; DROP TABLE x;--\"");
        assert_eq!(quote_ident("Mixed Case ü"), "\"Mixed Case ü\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn quoted_identifiers_round_trip_through_a_tokenizer() {
        // Property: for any name, un-quoting the quoted form gives the name back
        // and the quoted form contains no unescaped quote.
        let names = [
            "",
            "\"",
            "\"\"",
            "a\"b\"c",
            "semi;colon",
            "back\\slash",
            "ünï",
            "emoji 🎉",
            "x\ny",
        ];
        for name in names {
            let q = quote_ident(name);
            let inner = &q[1..q.len() - 1];
            assert_eq!(inner.replace("\"\"", "\""), name);
            assert!(!inner.replace("\"\"", "").contains('"'));
        }
    }

    #[test]
    fn nul_and_long_names_are_rejected() {
        assert!(check_ident("a\0b").unwrap_err().contains("NUL"));
        assert!(check_ident(&"x".repeat(64)).unwrap_err().contains("63"));
        assert!(check_ident("ok").is_ok());
    }

    #[test]
    fn types_render_as_sql() {
        assert_eq!(
            PgType::Numeric {
                precision_scale: Some((10, 2))
            }
            .sql(),
            "numeric(10,2)"
        );
        assert_eq!(PgType::Varchar(20).sql(), "character varying(20)");
        assert_eq!(PgType::Char(1).sql(), "character(1)");
    }
}

#[cfg(test)]
mod quote_ident_properties {
    use super::quote_ident;
    use proptest::prelude::*;

    /// Reads a quoted identifier back as PostgreSQL's lexer does: one `"`,
    /// then any characters with `""` standing for `"`, then one `"` that
    /// ends the token. `None` if the text is not exactly one such token.
    fn unquote(quoted: &str) -> Option<String> {
        let mut chars = quoted.strip_prefix('"')?.chars().peekable();
        let mut out = String::new();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    // The closing quote must be the last character.
                    return chars.next().is_none().then_some(out);
                }
            } else {
                out.push(c);
            }
        }
        None
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn quoting_round_trips_any_name_without_nul(name in "[^\u{0}]*") {
            let quoted = quote_ident(&name);
            prop_assert_eq!(unquote(&quoted), Some(name));
        }

        #[test]
        fn hostile_names_stay_one_token(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("\"".to_owned()), Just("\"\"".to_owned()), Just(";".to_owned()),
                    Just("\\".to_owned()), Just("'".to_owned()), Just("--".to_owned()),
                    Just("/*".to_owned()), Just("*/".to_owned()), Just("$1".to_owned()),
                    Just("$$".to_owned()), Just("U&".to_owned()), Just("\n".to_owned()),
                    Just(" DROP TABLE victim".to_owned()), Just("select".to_owned()),
                    Just("é🐘".to_owned()), Just("\u{202e}".to_owned()), "[^\u{0}]{0,3}",
                ],
                0..12,
            )
        ) {
            let name = parts.concat();
            let quoted = quote_ident(&name);
            prop_assert_eq!(unquote(&quoted), Some(name));
        }
    }

    #[test]
    fn unquote_rejects_what_is_not_one_token() {
        assert_eq!(unquote("\"a\"\"b\""), Some("a\"b".to_owned()));
        assert_eq!(unquote("\"a\"b\""), None);
        assert_eq!(unquote("\"a\" ; x"), None);
        assert_eq!(unquote("a"), None);
        assert_eq!(unquote("\"a"), None);
    }
}
