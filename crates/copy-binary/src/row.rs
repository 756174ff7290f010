//! Reading rows: a complete [`Row`], its [`Fields`], and the scanner that
//! finds where a row ends, resumable when its bytes arrive in pieces.

use crate::error::{CopyError, CopyErrorKind, Cut};

/// One field of a row: its bytes, or `None` for NULL.
pub type Field<'a> = Option<&'a [u8]>;

/// The field length that marks NULL.
pub(crate) const NULL_LENGTH: i32 = -1;

/// The field count that marks the trailer.
const TRAILER_COUNT: i16 = -1;

/// A complete row: its field count and fields, as they were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row<'a> {
    bytes: &'a [u8],
    fields: u16,
}

impl<'a> Row<'a> {
    /// The row that `buf` holds, nothing before or after it. Errors count
    /// it as row 1 and name offsets from the start of `buf`.
    pub fn parse(buf: &'a [u8]) -> Result<Row<'a>, CopyError> {
        const ROW: u64 = 1;
        match RowCursor::default().scan(buf, ROW, 0, None)? {
            Scan::Complete(Some(row)) if row.bytes.len() == buf.len() => Ok(row),
            Scan::Complete(Some(row)) => Err(CopyError::new(
                row.bytes.len() as u64,
                CopyErrorKind::AfterRow {
                    row: ROW,
                    bytes: buf.len() - row.bytes.len(),
                },
            )),
            Scan::Complete(None) => Err(CopyError::new(
                0,
                CopyErrorKind::UnexpectedTrailer { row: ROW },
            )),
            Scan::Partial { cut, .. } => Err(CopyError::new(
                buf.len() as u64,
                CopyErrorKind::Truncated(cut),
            )),
        }
    }

    /// The row as it was sent: field count, then each field's length and
    /// bytes. Equal rows have equal bytes.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Its number of fields.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.fields)
    }

    /// Whether it has no fields (a table without columns).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.fields == 0
    }

    /// Its fields in order.
    #[inline]
    pub fn fields(&self) -> Fields<'a> {
        Fields {
            rest: &self.bytes[2..],
            left: self.fields,
        }
    }

    /// The field at `index` (from 0).
    ///
    /// # Panics
    ///
    /// If `index` is not below [`Row::len`], as slice indexing does.
    pub fn field(&self, index: usize) -> Field<'a> {
        match self.fields().nth(index) {
            Some(field) => field,
            None => panic!("field index {index} out of a row of {} fields", self.len()),
        }
    }
}

/// The fields of a [`Row`], read one after the other without copying.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    #[inline]
    fn next(&mut self) -> Option<Field<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The scanner checked every length against the row's bytes.
        let (length, rest) = self.rest.split_first_chunk::<4>()?;
        let length = i32::from_be_bytes(*length);
        if length == NULL_LENGTH {
            self.rest = rest;
            return Some(None);
        }
        let (value, rest) = rest.split_at(length as usize);
        self.rest = rest;
        Some(Some(value))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(self.left), Some(usize::from(self.left)))
    }
}

impl ExactSizeIterator for Fields<'_> {}

/// The complete, well-formed row at the start of `buf`, with `expected`
/// fields if given: the common case, checked in one tight pass. `None` for
/// anything else (part of a row, the trailer, a malformed row), which
/// [`RowCursor::scan`] then reads and names.
#[inline]
pub(crate) fn whole_row(buf: &[u8], expected: Option<usize>) -> Option<Row<'_>> {
    let fields = u16::try_from(i16::from_be_bytes(*buf.first_chunk::<2>()?)).ok()?;
    if expected.is_some_and(|expected| expected != usize::from(fields)) {
        return None;
    }
    let mut end = 2;
    for _ in 0..fields {
        let length = i32::from_be_bytes(*buf.get(end..)?.first_chunk::<4>()?);
        end += 4;
        match usize::try_from(length) {
            Ok(value) => end += value,
            Err(_) if length == NULL_LENGTH => {}
            Err(_) => return None,
        }
    }
    let bytes = buf.get(..end)?;
    Some(Row { bytes, fields })
}

/// What a scan of the bytes at the start of a buffer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan<T> {
    /// A complete item.
    Complete(T),
    /// Only the start of one: `total` bytes in all are needed to go on,
    /// and `cut` says where the data stops if no more come.
    Partial {
        /// Bytes needed, counted from the item's start.
        total: usize,
        /// Where the item is cut.
        cut: Cut,
    },
}

/// How far the scan of one row got: scanning again after more bytes
/// arrived goes on from there, so a row received in many pieces is read once.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RowCursor {
    /// The field count, once read.
    fields: Option<u16>,
    /// Bytes of the row known to be complete fields (and the count).
    scanned: usize,
    /// Fields scanned.
    done: u16,
}

impl RowCursor {
    /// Scan the row (or the trailer, `Complete(None)`) at the start of `buf`:
    /// row number `row`, at stream offset `offset`, with `expected` fields
    /// if the caller knows how many. `buf` must start with the same bytes as
    /// on the previous call, until a complete row resets the cursor.
    pub(crate) fn scan<'a>(
        &mut self,
        buf: &'a [u8],
        row: u64,
        offset: u64,
        expected: Option<usize>,
    ) -> Result<Scan<Option<Row<'a>>>, CopyError> {
        let fields = match self.fields {
            Some(fields) => fields,
            None => {
                let Some(word) = buf.get(..2) else {
                    return Ok(Scan::Partial {
                        total: 2,
                        cut: Cut::FieldCount { row },
                    });
                };
                let count = i16::from_be_bytes([word[0], word[1]]);
                if count == TRAILER_COUNT {
                    return Ok(Scan::Complete(None));
                }
                let fields = u16::try_from(count).map_err(|_| {
                    CopyError::new(offset, CopyErrorKind::FieldCount { row, count })
                })?;
                if let Some(expected) = expected.filter(|e| *e != usize::from(fields)) {
                    return Err(CopyError::new(
                        offset,
                        CopyErrorKind::UnexpectedFieldCount {
                            row,
                            expected,
                            found: fields,
                        },
                    ));
                }
                self.fields = Some(fields);
                self.scanned = 2;
                fields
            }
        };
        let (mut scanned, mut done) = (self.scanned, self.done);
        while done < fields {
            let field = done + 1;
            let Some(word) = buf.get(scanned..scanned + 4) else {
                (self.scanned, self.done) = (scanned, done);
                return Ok(Scan::Partial {
                    total: scanned + 4,
                    cut: Cut::FieldLength { row, field },
                });
            };
            let length = i32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            let value = match usize::try_from(length) {
                Ok(value) => value,
                Err(_) if length == NULL_LENGTH => 0,
                Err(_) => {
                    return Err(CopyError::new(
                        offset + scanned as u64,
                        CopyErrorKind::FieldLength { row, field, length },
                    ))
                }
            };
            let end = scanned + 4 + value;
            if buf.len() < end {
                (self.scanned, self.done) = (scanned, done);
                return Ok(Scan::Partial {
                    total: end,
                    cut: Cut::FieldValue {
                        row,
                        field,
                        length: value,
                        available: buf.len() - scanned - 4,
                    },
                });
            }
            scanned = end;
            done = field;
        }
        let row = Row {
            bytes: &buf[..scanned],
            fields,
        };
        *self = RowCursor::default();
        Ok(Scan::Complete(Some(row)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::write_row;

    fn encoded(fields: &[Field<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        write_row(&mut out, fields).unwrap();
        out
    }

    #[test]
    fn fields_come_back_in_order_with_nulls_and_empties() {
        let bytes = encoded(&[Some(b"ab"), None, Some(b""), Some(&7i64.to_be_bytes())]);
        let row = Row::parse(&bytes).unwrap();
        assert_eq!(row.len(), 4);
        assert_eq!(row.bytes(), &bytes[..]);
        let fields: Vec<Field<'_>> = row.fields().collect();
        assert_eq!(
            fields,
            vec![
                Some(&b"ab"[..]),
                None,
                Some(&b""[..]),
                Some(&7i64.to_be_bytes()[..])
            ]
        );
        assert_eq!(row.fields().len(), 4);
        assert_eq!(row.field(1), None);
        assert_eq!(row.field(3), Some(&7i64.to_be_bytes()[..]));
    }

    #[test]
    fn a_row_without_fields() {
        let row = Row::parse(&[0, 0]).unwrap();
        assert!(row.is_empty());
        assert_eq!(row.fields().next(), None);
    }

    #[test]
    #[should_panic(expected = "field index 2 out of a row of 2 fields")]
    fn a_field_past_the_end_panics_like_a_slice() {
        let bytes = encoded(&[None, None]);
        Row::parse(&bytes).unwrap().field(2);
    }

    #[test]
    fn a_field_length_beyond_the_buffer_is_named() {
        let mut bytes = encoded(&[Some(b"abc"), Some(b"0123456789")]);
        bytes.truncate(bytes.len() - 4);
        let err = Row::parse(&bytes).unwrap_err();
        assert_eq!(
            err.kind(),
            &CopyErrorKind::Truncated(Cut::FieldValue {
                row: 1,
                field: 2,
                length: 10,
                available: 6
            })
        );
        assert_eq!(err.offset(), bytes.len() as u64);
        assert_eq!(
            err.to_string(),
            "field 2 of row 1 declares 10 bytes, but the data ends after 6 of them (at byte 19)"
        );
    }

    #[test]
    fn a_cut_inside_a_length_or_the_count_is_named() {
        let bytes = encoded(&[Some(b"abc"), None]);
        let err = Row::parse(&bytes[..11]).unwrap_err();
        assert_eq!(
            err.kind(),
            &CopyErrorKind::Truncated(Cut::FieldLength { row: 1, field: 2 })
        );
        let err = Row::parse(&bytes[..1]).unwrap_err();
        assert_eq!(
            err.kind(),
            &CopyErrorKind::Truncated(Cut::FieldCount { row: 1 })
        );
    }

    #[test]
    fn negative_lengths_other_than_null_are_refused() {
        for length in [-2i32, i32::MIN] {
            let mut bytes = encoded(&[None, None]);
            bytes[6..10].copy_from_slice(&length.to_be_bytes());
            let err = Row::parse(&bytes).unwrap_err();
            assert_eq!(
                err.kind(),
                &CopyErrorKind::FieldLength {
                    row: 1,
                    field: 2,
                    length
                }
            );
            assert_eq!(err.offset(), 6, "the offset of the length word");
            assert!(
                err.to_string().contains("only -1 (NULL) may be negative"),
                "{err}"
            );
        }
    }

    #[test]
    fn negative_field_counts_other_than_the_trailer_are_refused() {
        let err = Row::parse(&(-2i16).to_be_bytes()).unwrap_err();
        assert_eq!(err.kind(), &CopyErrorKind::FieldCount { row: 1, count: -2 });
        let err = Row::parse(&[0xff, 0xff]).unwrap_err();
        assert_eq!(err.kind(), &CopyErrorKind::UnexpectedTrailer { row: 1 });
    }

    #[test]
    fn bytes_after_the_row_are_refused() {
        let mut bytes = encoded(&[Some(b"x")]);
        let end = bytes.len();
        bytes.extend_from_slice(&[0, 0, 0]);
        let err = Row::parse(&bytes).unwrap_err();
        assert_eq!(err.kind(), &CopyErrorKind::AfterRow { row: 1, bytes: 3 });
        assert_eq!(err.offset(), end as u64);
    }

    #[test]
    fn a_resumed_scan_ends_where_a_whole_one_does() {
        let bytes = encoded(&[Some(b"alpha"), None, Some(b"omega")]);
        let mut cursor = RowCursor::default();
        let mut ends = Vec::new();
        for end in 0..bytes.len() {
            match cursor.scan(&bytes[..end], 1, 0, None).unwrap() {
                Scan::Partial { total, .. } => {
                    assert!(total > end, "asks for more than it has");
                    ends.push(total);
                }
                Scan::Complete(row) => panic!("complete at {end}: {row:?}"),
            }
        }
        assert_eq!(ends.last(), Some(&bytes.len()));
        assert!(matches!(
            cursor.scan(&bytes, 1, 0, None).unwrap(),
            Scan::Complete(Some(row)) if row.bytes() == &bytes[..]
        ));
    }

    #[test]
    fn an_unexpected_field_count_is_named() {
        let bytes = encoded(&[None, None]);
        let err = RowCursor::default()
            .scan(&bytes, 7, 100, Some(3))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "row 7 has 2 fields, 3 were expected (at byte 100)"
        );
    }
}
