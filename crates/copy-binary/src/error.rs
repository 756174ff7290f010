//! What can be wrong with binary COPY data, and where it was found.

use std::fmt;

/// Malformed binary COPY data: what is wrong ([`CopyErrorKind`]) and the
/// byte offset where it was found, counted from the start of the stream (or
/// of the buffer given to [`Row::parse`](crate::Row::parse)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyError {
    offset: u64,
    kind: CopyErrorKind,
}

impl CopyError {
    pub(crate) fn new(offset: u64, kind: CopyErrorKind) -> CopyError {
        CopyError { offset, kind }
    }

    /// The byte offset where the problem was found.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What is wrong.
    pub fn kind(&self) -> &CopyErrorKind {
        &self.kind
    }
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.kind, self.offset)
    }
}

impl std::error::Error for CopyError {}

/// What is wrong with binary COPY data. Rows and fields are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CopyErrorKind {
    /// The data does not start with the binary COPY signature.
    Signature,
    /// The header sets critical flags (bits 16-31) this reader does not know;
    /// bit 16 announces OIDs, which PostgreSQL 12 and later never send.
    CriticalFlags {
        /// The header's flags word.
        flags: u32,
    },
    /// A field count below -1 (-1 marks the trailer).
    FieldCount {
        /// The row.
        row: u64,
        /// The count read.
        count: i16,
    },
    /// A row whose field count is not the one the reader expects.
    UnexpectedFieldCount {
        /// The row.
        row: u64,
        /// Fields expected.
        expected: usize,
        /// Fields the row has.
        found: u16,
    },
    /// A field length below -1 (-1 marks NULL).
    FieldLength {
        /// The row.
        row: u64,
        /// The field.
        field: u16,
        /// The length read.
        length: i32,
    },
    /// The trailer where a row was expected.
    UnexpectedTrailer {
        /// The row expected.
        row: u64,
    },
    /// Bytes after the end of the one row a buffer was to hold.
    AfterRow {
        /// The row.
        row: u64,
        /// Bytes left over.
        bytes: usize,
    },
    /// Bytes after the trailer, which must end the data.
    AfterTrailer {
        /// Bytes that follow it.
        bytes: usize,
    },
    /// The data ends inside the header or a row.
    Truncated(Cut),
    /// The data ends after whole rows, without the trailer.
    NoTrailer {
        /// Rows read.
        rows: u64,
    },
}

impl fmt::Display for CopyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyErrorKind::Signature => f.write_str(
                "not binary COPY data: the signature PGCOPY\\n\\377\\r\\n\\0 is missing",
            ),
            CopyErrorKind::CriticalFlags { flags } => write!(
                f,
                "the header sets flags {flags:#010x}, critical ones this reader does not know"
            ),
            CopyErrorKind::FieldCount { row, count } => write!(
                f,
                "row {row} has field count {count}; only -1 (the trailer) may be negative"
            ),
            CopyErrorKind::UnexpectedFieldCount {
                row,
                expected,
                found,
            } => write!(f, "row {row} has {found} fields, {expected} were expected"),
            CopyErrorKind::FieldLength { row, field, length } => write!(
                f,
                "field {field} of row {row} has length {length}; only -1 (NULL) may be negative"
            ),
            CopyErrorKind::UnexpectedTrailer { row } => {
                write!(f, "the trailer stands where row {row} was expected")
            }
            CopyErrorKind::AfterRow { row, bytes } => {
                write!(f, "{bytes} bytes follow the end of row {row}")
            }
            CopyErrorKind::AfterTrailer { bytes } => write!(
                f,
                "{bytes} bytes follow the trailer, which must end the data"
            ),
            CopyErrorKind::Truncated(cut) => cut.fmt(f),
            CopyErrorKind::NoTrailer { rows } => {
                write!(f, "the data ends after {rows} rows without the trailer")
            }
        }
    }
}

/// Where data that ends too soon was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Inside the header.
    Header {
        /// The header's length, once known (19 bytes plus its extension).
        needed: usize,
        /// Bytes of it there.
        available: usize,
    },
    /// Inside a row's field count.
    FieldCount {
        /// The row.
        row: u64,
    },
    /// Inside a field's length.
    FieldLength {
        /// The row.
        row: u64,
        /// The field.
        field: u16,
    },
    /// Inside a field's value.
    FieldValue {
        /// The row.
        row: u64,
        /// The field.
        field: u16,
        /// The length the field declares.
        length: usize,
        /// Bytes of the value there.
        available: usize,
    },
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cut::Header { available: 0, .. } => f.write_str("the data ends before the header"),
            Cut::Header { needed, available } => write!(
                f,
                "the data ends inside the header ({available} of its {needed} bytes)"
            ),
            Cut::FieldCount { row } => {
                write!(f, "the data ends inside the field count of row {row}")
            }
            Cut::FieldLength { row, field } => write!(
                f,
                "the data ends inside the length of field {field} of row {row}"
            ),
            Cut::FieldValue {
                row,
                field,
                length,
                available,
            } => write!(
                f,
                "field {field} of row {row} declares {length} bytes, but the data ends after {available} of them"
            ),
        }
    }
}

/// A value longer than a binary COPY field's 32-bit length can announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldTooLong {
    /// The value's length in bytes.
    pub length: usize,
}

impl fmt::Display for FieldTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a value of {} bytes is longer than a binary COPY field can carry ({} bytes at most)",
            self.length,
            i32::MAX
        )
    }
}

impl std::error::Error for FieldTooLong {}
