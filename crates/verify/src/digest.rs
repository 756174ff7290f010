//! Row hashes, table digests and the multiset diff used to name differing rows.

use crate::canonical::canonical_json;
use crate::VerifyError;
use futures_util::StreamExt;
use pgharbor_copy_binary::{Field, Row, RowSplitter};
use pgharbor_core::cell::Cell;
use pgharbor_core::plan::ValuePolicy;
use pgharbor_core::schema::{quote_ident, quote_literal, PgType, QualifiedName};
use pgharbor_pgwriter::encode::{CellError, RowEncoder};
use std::collections::HashMap;
use std::ops::Range;
use tokio_postgres::Client;
use xxhash_rust::xxh3::Xxh3;

/// Row count and order-independent content checksum of a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableDigest {
    /// Rows.
    pub rows: u64,
    /// Wrapping sum of 128-bit row hashes.
    pub sum: u128,
}

impl TableDigest {
    /// Add one row's hash.
    pub fn add(&mut self, row_hash: u128) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(row_hash);
    }

    /// Combine with the digest of another part of the same table.
    pub fn merge(&mut self, other: TableDigest) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// The checksum as 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

/// What a source field the encoder refused is hashed as, where that is
/// tolerated: a length no PostgreSQL field has (NULL is -1, values are at
/// most 1 GB), so the row never matches a target row.
const REFUSED_FIELD: [u8; 4] = [0xff, 0xff, 0xff, 0xfe];

/// Hashes rows of one table the same way on both sides.
#[derive(Debug, Clone)]
pub struct RowHasher {
    types: Vec<PgType>,
    encoder: RowEncoder,
    scratch: Vec<u8>,
    tolerated: Vec<usize>,
}

/// Where one encoded source field lies in the scratch buffer.
enum Encoded {
    Null,
    At(Range<usize>),
    Refused,
}

impl RowHasher {
    /// A hasher for columns of `types`; `policy` must be the one the load used.
    pub fn new(types: Vec<PgType>, policy: ValuePolicy) -> Self {
        RowHasher {
            encoder: RowEncoder::new(types.clone(), policy),
            types,
            scratch: Vec::new(),
            tolerated: Vec::new(),
        }
    }

    /// Let the source values of `columns` that the encoder refuses make their
    /// row differ instead of failing: for columns the target computes itself,
    /// whose stored source values were never loaded.
    pub fn tolerating(mut self, columns: Vec<usize>) -> Self {
        self.tolerated = columns;
        self
    }

    /// Hash a row given as PostgreSQL binary fields.
    pub fn hash_fields<'a>(&self, fields: impl IntoIterator<Item = Field<'a>>) -> u128 {
        let mut h = Xxh3::new();
        for (field, pg_type) in fields.into_iter().zip(&self.types) {
            hash_field(&mut h, field, *pg_type);
        }
        h.digest128()
    }

    /// Hash a source row by encoding it exactly as the load does.
    pub fn hash_cells(&mut self, cells: &[Cell<'_>]) -> Result<u128, CellError> {
        self.scratch.clear();
        let mut encoded = Vec::with_capacity(cells.len());
        for (i, cell) in cells.iter().enumerate() {
            let start = self.scratch.len();
            encoded.push(
                match self.encoder.encode_field(i, *cell, &mut self.scratch) {
                    Ok(None) => Encoded::Null,
                    Ok(Some(value)) => Encoded::At(value),
                    Err(_) if self.tolerated.contains(&i) => {
                        self.scratch.truncate(start);
                        Encoded::Refused
                    }
                    Err(e) => return Err(e),
                },
            );
        }
        let mut h = Xxh3::new();
        for (field, pg_type) in encoded.iter().zip(&self.types) {
            match field {
                Encoded::Null => hash_field(&mut h, None, *pg_type),
                Encoded::At(value) => {
                    hash_field(&mut h, Some(&self.scratch[value.clone()]), *pg_type)
                }
                Encoded::Refused => h.update(&REFUSED_FIELD),
            }
        }
        Ok(h.digest128())
    }
}

/// Add one field to a row hash: its length (-1 for NULL) and bytes, `jsonb`
/// in canonical form.
fn hash_field(h: &mut Xxh3, field: Field<'_>, pg_type: PgType) {
    match field {
        None => h.update(&[0xff; 4]),
        Some(bytes) => {
            let canonical = (pg_type == PgType::Jsonb)
                .then(|| bytes.get(1..).and_then(canonical_json))
                .flatten();
            let bytes = canonical.as_deref().unwrap_or(bytes);
            h.update(&(bytes.len() as u32).to_be_bytes());
            h.update(bytes);
        }
    }
}

/// Render a binary field for a person (keys in reports).
pub fn render_field(field: Field<'_>, pg_type: PgType) -> String {
    match (field, pg_type) {
        (None, _) => "NULL".into(),
        (Some(b), PgType::BigInt) if b.len() == 8 => {
            i64::from_be_bytes(b.try_into().expect("8 bytes")).to_string()
        }
        (Some(b), PgType::Integer) if b.len() == 4 => {
            i32::from_be_bytes(b.try_into().expect("4 bytes")).to_string()
        }
        (Some(b), PgType::SmallInt) if b.len() == 2 => {
            i16::from_be_bytes(b.try_into().expect("2 bytes")).to_string()
        }
        (Some(b), t) if t.is_textual() => format!("{:?}", String::from_utf8_lossy(b)),
        (Some(b), _) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// Row hashes counted up on the source side and down on the target side.
#[derive(Debug, Default)]
pub struct RowMultiset {
    counts: HashMap<u128, (i64, String)>,
}

impl RowMultiset {
    /// Count a source row.
    pub fn add_source(&mut self, hash: u128, key: impl FnOnce() -> String) {
        let entry = self.counts.entry(hash).or_insert_with(|| (0, key()));
        entry.0 += 1;
    }

    /// Count a target row.
    pub fn add_target(&mut self, hash: u128, key: impl FnOnce() -> String) {
        let entry = self.counts.entry(hash).or_insert_with(|| (0, key()));
        entry.0 -= 1;
    }

    /// Up to `limit` differences, e.g. `missing in target: id=5`.
    pub fn differences(&self, limit: usize) -> Vec<String> {
        let mut out: Vec<String> = self
            .counts
            .values()
            .filter(|(n, _)| *n != 0)
            .map(|(n, key)| {
                if *n > 0 {
                    format!("missing or different in target: {key}")
                } else {
                    format!("extra or different in target: {key}")
                }
            })
            .collect();
        out.sort();
        out.truncate(limit);
        out
    }
}

/// Which rows of a target table to digest.
#[derive(Debug, Clone, Copy)]
pub enum RowFilter<'a> {
    /// Every row.
    All,
    /// Rows whose `column` equals `value` (one collection of a shared table).
    Equals {
        /// Column name.
        column: &'a str,
        /// Text value.
        value: &'a str,
    },
}

/// Digest `columns` of a target table (the rows `filter` selects); with
/// `multiset`, also count every row there, named by `key_columns` (indexes
/// into `columns`).
pub async fn target_digest(
    client: &Client,
    table: &QualifiedName,
    columns: &[String],
    hasher: &RowHasher,
    filter: RowFilter<'_>,
    mut multiset: Option<(&mut RowMultiset, &[usize])>,
) -> Result<TableDigest, VerifyError> {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let condition = match filter {
        RowFilter::All => String::new(),
        RowFilter::Equals { column, value } => {
            format!(" WHERE {} = {}", quote_ident(column), quote_literal(value))
        }
    };
    let sql = format!(
        "COPY (SELECT {} FROM {table}{condition}) TO STDOUT (FORMAT binary)",
        cols.join(", ")
    );
    let pg_err = |source| VerifyError::Target {
        table: table.to_string(),
        source,
    };
    let stream = client.copy_out(&sql).await.map_err(pg_err)?;
    futures_util::pin_mut!(stream);
    let malformed = |reason| VerifyError::Malformed {
        table: table.to_string(),
        reason,
    };
    let mut splitter = RowSplitter::new().expecting_fields(columns.len());
    let mut digest = TableDigest::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(pg_err)?;
        splitter
            .feed(&chunk, |row| {
                let hash = hasher.hash_fields(row.fields());
                digest.add(hash);
                if let Some((set, keys)) = multiset.as_mut() {
                    set.add_target(hash, || render_key(row, keys, columns, &hasher.types));
                }
            })
            .map_err(malformed)?;
    }
    splitter.finish().map_err(malformed)?;
    Ok(digest)
}

/// `column=value, …` of the `keys` (indexes into `columns`) of a target row.
fn render_key(row: Row<'_>, keys: &[usize], columns: &[String], types: &[PgType]) -> String {
    keys.iter()
        .map(|k| format!("{}={}", columns[*k], render_field(row.field(*k), types[*k])))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_and_binary_fields_hash_alike() {
        let types = vec![PgType::BigInt, PgType::Text, PgType::Jsonb];
        let mut hasher = RowHasher::new(types, ValuePolicy::default());
        let from_cells = hasher
            .hash_cells(&[Cell::Int(7), Cell::Null, Cell::Text(br#"{"b":1,"a":2}"#)])
            .unwrap();
        let jsonb = b"\x01{\"a\": 2, \"b\": 1}";
        let from_fields = hasher.hash_fields([Some(&7i64.to_be_bytes()[..]), None, Some(jsonb)]);
        assert_eq!(from_cells, from_fields);
        let changed = hasher.hash_fields([Some(&8i64.to_be_bytes()[..]), None, Some(jsonb)]);
        assert_ne!(from_cells, changed);
    }

    #[test]
    fn refused_values_of_tolerated_columns_make_the_row_differ() {
        let types = vec![
            PgType::BigInt,
            PgType::Numeric {
                precision_scale: Some((5, 2)),
            },
        ];
        let cells = [Cell::Int(1), Cell::Real(59.970_000_000_000_01)];
        let mut strict = RowHasher::new(types.clone(), ValuePolicy::default());
        assert!(strict.hash_cells(&cells).is_err());
        let mut tolerant = RowHasher::new(types, ValuePolicy::default()).tolerating(vec![1]);
        let refused = tolerant.hash_cells(&cells).unwrap();
        let fitting = tolerant
            .hash_cells(&[Cell::Int(1), Cell::Real(59.97)])
            .unwrap();
        assert_ne!(refused, fitting);
        assert_ne!(
            refused,
            tolerant.hash_cells(&[Cell::Int(1), Cell::Null]).unwrap()
        );
        assert!(
            tolerant
                .hash_cells(&[Cell::Text(b"x"), Cell::Null])
                .is_err(),
            "only the tolerated columns"
        );
    }

    #[test]
    fn null_differs_from_empty_text() {
        let hasher = RowHasher::new(vec![PgType::Text], ValuePolicy::default());
        assert_ne!(
            hasher.hash_fields([None]),
            hasher.hash_fields([Some(&b""[..])])
        );
    }

    #[test]
    fn multiset_names_one_sided_rows() {
        let mut set = RowMultiset::default();
        set.add_source(1, || "id=1".into());
        set.add_source(2, || "id=2".into());
        set.add_target(1, || "id=1".into());
        set.add_target(3, || "id=3".into());
        let diffs = set.differences(10);
        assert_eq!(diffs.len(), 2);
        assert!(diffs
            .iter()
            .any(|d| d.contains("missing") && d.contains("id=2")));
        assert!(diffs
            .iter()
            .any(|d| d.contains("extra") && d.contains("id=3")));
    }

    #[test]
    fn digests_ignore_order() {
        let mut a = TableDigest::default();
        let mut b = TableDigest::default();
        for h in [1u128, u128::MAX, 5] {
            a.add(h);
        }
        for h in [5u128, 1, u128::MAX] {
            b.add(h);
        }
        assert_eq!(a, b);
    }
}
