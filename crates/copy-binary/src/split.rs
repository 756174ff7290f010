//! Splitting a binary COPY stream, received in chunks cut anywhere, into
//! complete rows.
//!
//! Rows inside a chunk are handed out straight from it. Only the start of a
//! row (or of the header) that continues in the next chunk is kept, and only
//! the bytes it still needs are copied from that chunk; so nothing is copied
//! when every chunk holds whole rows (PostgreSQL sends one row per
//! `CopyData` message), and memory is bounded by the largest row.

use crate::error::{CopyError, CopyErrorKind, Cut};
use crate::header;
use crate::row::{whole_row, Row, RowCursor, Scan};

/// The most capacity the buffer of a cut row keeps once it is empty.
const KEPT_CAPACITY: usize = 1 << 20;

/// Which part of the stream comes next.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Part {
    #[default]
    Header,
    Rows,
    Ended,
}

/// What the bytes at the start of a buffer hold.
enum Next<'a> {
    /// The header or the trailer, of this many bytes.
    Framing(usize),
    /// A row.
    Row(Row<'a>),
    /// The start of an item: `total` bytes in all are needed, and `cut`
    /// says where the data stops if no more come.
    Partial {
        /// Bytes needed, counted from the item's start.
        total: usize,
        /// Where the item is cut.
        cut: Cut,
    },
}

/// Splits a binary COPY stream into rows, chunk by chunk.
///
/// After an error the stream is malformed: stop feeding it.
#[derive(Debug, Default)]
pub struct RowSplitter {
    /// The start of the header or of a row continued in the next chunk.
    carry: Vec<u8>,
    part: Part,
    cursor: RowCursor,
    /// The stream offset of the first byte not yet handed out (the start
    /// of `carry` when it holds anything).
    position: u64,
    rows: u64,
    fields: Option<usize>,
}

impl RowSplitter {
    /// A splitter expecting the header.
    pub fn new() -> RowSplitter {
        RowSplitter::default()
    }

    /// Refuse rows that do not have `count` fields.
    pub fn expecting_fields(mut self, count: usize) -> RowSplitter {
        self.fields = Some(count);
        self
    }

    /// Rows handed out so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Take the next chunk and call `on_row` for every row it completes.
    pub fn feed(&mut self, chunk: &[u8], mut on_row: impl FnMut(Row<'_>)) -> Result<(), CopyError> {
        let mut chunk = chunk;
        if !self.carry.is_empty() {
            match self.complete_carried(chunk, &mut on_row)? {
                Some(used) => chunk = &chunk[used..],
                None => return Ok(()),
            }
        }
        let used = self.split(chunk, &mut on_row)?;
        self.carry.extend_from_slice(&chunk[used..]);
        Ok(())
    }

    /// The number of rows, once the whole stream was fed: an error if it
    /// ended inside the header or a row, or without the trailer.
    pub fn finish(mut self) -> Result<u64, CopyError> {
        let end = self.position + self.carry.len() as u64;
        match self.part {
            Part::Ended => Ok(self.rows),
            Part::Rows if self.carry.is_empty() => Err(CopyError::new(
                end,
                CopyErrorKind::NoTrailer { rows: self.rows },
            )),
            Part::Header | Part::Rows => {
                let carry = std::mem::take(&mut self.carry);
                match self.next(&carry)? {
                    Next::Partial { cut, .. } => {
                        Err(CopyError::new(end, CopyErrorKind::Truncated(cut)))
                    }
                    Next::Framing(_) | Next::Row(_) => {
                        unreachable!("the carry holds only the start of an item")
                    }
                }
            }
        }
    }

    /// Hand out every complete item at the start of `buf`; the bytes used.
    fn split(&mut self, buf: &[u8], on_row: &mut impl FnMut(Row<'_>)) -> Result<usize, CopyError> {
        let mut used = 0;
        while used < buf.len() {
            match self.next(&buf[used..])? {
                Next::Framing(length) => used += length,
                Next::Row(row) => {
                    used += row.bytes().len();
                    on_row(row);
                }
                Next::Partial { .. } => break,
            }
        }
        Ok(used)
    }

    /// Complete the carried item with the bytes it still needs from `chunk`
    /// and hand it out: the bytes of `chunk` used, or `None` when all of
    /// `chunk` went into the carry.
    fn complete_carried(
        &mut self,
        chunk: &[u8],
        on_row: &mut impl FnMut(Row<'_>),
    ) -> Result<Option<usize>, CopyError> {
        let mut carry = std::mem::take(&mut self.carry);
        let mut used = 0;
        loop {
            match self.next(&carry)? {
                Next::Partial { total, .. } => {
                    let take = (total - carry.len()).min(chunk.len() - used);
                    carry.extend_from_slice(&chunk[used..used + take]);
                    used += take;
                    if carry.len() < total {
                        self.carry = carry;
                        return Ok(None);
                    }
                }
                Next::Framing(_) => break,
                Next::Row(row) => {
                    on_row(row);
                    break;
                }
            }
        }
        carry.clear();
        if carry.capacity() > KEPT_CAPACITY {
            carry = Vec::new();
        }
        self.carry = carry;
        Ok(Some(used))
    }

    /// Read the item at the start of `buf` and move past it if complete.
    #[inline]
    fn next<'a>(&mut self, buf: &'a [u8]) -> Result<Next<'a>, CopyError> {
        if self.part == Part::Rows {
            if let Some(row) = whole_row(buf, self.fields) {
                self.cursor = RowCursor::default();
                self.rows += 1;
                self.position += row.bytes().len() as u64;
                return Ok(Next::Row(row));
            }
        }
        let next = match self.part {
            Part::Header => match header::scan(buf, self.position)? {
                Scan::Complete(length) => {
                    self.part = Part::Rows;
                    Next::Framing(length)
                }
                Scan::Partial { total, cut } => Next::Partial { total, cut },
            },
            Part::Rows => match self
                .cursor
                .scan(buf, self.rows + 1, self.position, self.fields)?
            {
                Scan::Complete(Some(row)) => {
                    self.rows += 1;
                    Next::Row(row)
                }
                Scan::Complete(None) => {
                    self.part = Part::Ended;
                    Next::Framing(crate::TRAILER.len())
                }
                Scan::Partial { total, cut } => Next::Partial { total, cut },
            },
            Part::Ended => {
                return Err(CopyError::new(
                    self.position,
                    CopyErrorKind::AfterTrailer { bytes: buf.len() },
                ))
            }
        };
        self.position += match &next {
            Next::Framing(length) => *length as u64,
            Next::Row(row) => row.bytes().len() as u64,
            Next::Partial { .. } => 0,
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Cut;
    use crate::write::write_row;
    use crate::{Field, HEADER, TRAILER};

    type Owned = Vec<Option<Vec<u8>>>;

    fn stream(rows: &[&[Field<'_>]]) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        for row in rows {
            write_row(&mut out, row).unwrap();
        }
        out.extend_from_slice(TRAILER);
        out
    }

    fn owned(row: Row<'_>) -> Owned {
        row.fields().map(|f| f.map(<[u8]>::to_vec)).collect()
    }

    /// The rows of `chunks`, or the first error.
    fn split_chunks<'a>(
        splitter: &mut RowSplitter,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<Owned>, CopyError> {
        let mut rows = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk, |row| rows.push(owned(row)))?;
        }
        Ok(rows)
    }

    fn sample() -> Vec<u8> {
        stream(&[
            &[Some(b"alpha"), None],
            &[Some(b""), Some(&7i64.to_be_bytes())],
            &[None, Some(b"omega")],
        ])
    }

    #[test]
    fn rows_come_out_alike_wherever_the_stream_is_cut() {
        let data = sample();
        let mut whole = RowSplitter::new();
        let expected = split_chunks(&mut whole, [&data[..]]).unwrap();
        assert_eq!(expected.len(), 3);
        assert_eq!(expected[0], vec![Some(b"alpha".to_vec()), None]);
        assert_eq!(whole.finish().unwrap(), 3);
        for cut in 0..=data.len() {
            for second in cut..=data.len() {
                let mut splitter = RowSplitter::new();
                let chunks = [&data[..cut], &data[cut..second], &data[second..]];
                let rows = split_chunks(&mut splitter, chunks).unwrap();
                assert_eq!(rows, expected, "cut at {cut} and {second}");
                assert_eq!(splitter.finish().unwrap(), 3);
            }
        }
        let mut bytewise = RowSplitter::new();
        assert_eq!(
            split_chunks(&mut bytewise, data.chunks(1)).unwrap(),
            expected
        );
        assert_eq!(bytewise.rows(), 3);
    }

    #[test]
    fn chunks_of_whole_rows_are_never_copied() {
        let data = sample();
        let mut splitter = RowSplitter::new();
        let mut at = HEADER.len();
        splitter.feed(&data[..at], |_| {}).unwrap();
        for row in [15, 18, 15] {
            splitter.feed(&data[at..at + row], |_| {}).unwrap();
            at += row;
            assert_eq!(splitter.carry.capacity(), 0);
        }
        splitter.feed(&data[at..], |_| {}).unwrap();
        assert_eq!(splitter.carry.capacity(), 0);
        assert_eq!(splitter.finish().unwrap(), 3);
    }

    #[test]
    fn a_cut_row_copies_only_its_own_bytes_and_a_large_buffer_is_released() {
        let big = vec![7u8; 3 << 20];
        let data = stream(&[&[Some(&big)], &[Some(b"next")]]);
        let mut splitter = RowSplitter::new();
        let half = HEADER.len() + big.len() / 2;
        let mut lengths = Vec::new();
        splitter
            .feed(&data[..half], |row| lengths.push(row.bytes().len()))
            .unwrap();
        assert_eq!(splitter.carry.len(), half - HEADER.len());
        splitter
            .feed(&data[half..], |row| lengths.push(row.bytes().len()))
            .unwrap();
        assert_eq!(lengths, [2 + 4 + big.len(), 2 + 4 + 4]);
        assert!(splitter.carry.capacity() <= KEPT_CAPACITY);
        assert_eq!(splitter.finish().unwrap(), 2);
    }

    fn error_of(data: &[u8], chunks: usize) -> CopyError {
        let mut splitter = RowSplitter::new();
        match split_chunks(&mut splitter, data.chunks(chunks)) {
            Err(e) => e,
            Ok(_) => splitter.finish().unwrap_err(),
        }
    }

    #[test]
    fn a_truncated_header_is_named() {
        for chunk in [1, 4, 100] {
            let err = error_of(&HEADER[..10], chunk);
            assert_eq!(
                err.kind(),
                &CopyErrorKind::Truncated(Cut::Header {
                    needed: 19,
                    available: 10
                })
            );
            assert_eq!(
                err.to_string(),
                "the data ends inside the header (10 of its 19 bytes) (at byte 10)"
            );
        }
        assert_eq!(
            error_of(b"", 1).to_string(),
            "the data ends before the header (at byte 0)"
        );
    }

    #[test]
    fn a_wrong_signature_is_found_in_the_first_bytes() {
        let mut splitter = RowSplitter::new();
        let err = splitter.feed(b"PGCOPX", |_| {}).unwrap_err();
        assert_eq!(err.kind(), &CopyErrorKind::Signature);
        assert_eq!(err.offset(), 5);
        let mut text = b"1\tone\n2\ttwo\n".to_vec();
        text.resize(40, b'x');
        assert_eq!(error_of(&text, 7).kind(), &CopyErrorKind::Signature);
    }

    #[test]
    fn a_trailer_in_the_middle_is_refused_with_what_follows_it() {
        let mut data = stream(&[&[Some(b"a")]]);
        let trailer_end = data.len();
        write_row(&mut data, &[Some(b"b")]).unwrap();
        data.extend_from_slice(TRAILER);
        for chunk in [1, 3, 64] {
            let err = error_of(&data, chunk);
            assert_eq!(err.offset(), trailer_end as u64, "chunks of {chunk}");
            assert!(
                matches!(err.kind(), CopyErrorKind::AfterTrailer { bytes } if *bytes >= 1),
                "{err}"
            );
        }
        let err = error_of(&data, 64);
        assert_eq!(
            err.to_string(),
            format!("9 bytes follow the trailer, which must end the data (at byte {trailer_end})")
        );
    }

    #[test]
    fn negative_lengths_are_refused_with_row_field_and_offset() {
        let mut data = sample();
        // Row 2 starts after the header and row 1 (2 + 4+5 + 4 bytes).
        let length_at = HEADER.len() + 15 + 2 + 4;
        data[length_at..length_at + 4].copy_from_slice(&(-3i32).to_be_bytes());
        for chunk in [1, 5, 100] {
            let err = error_of(&data, chunk);
            assert_eq!(
                err.kind(),
                &CopyErrorKind::FieldLength {
                    row: 2,
                    field: 2,
                    length: -3
                }
            );
            assert_eq!(err.offset(), length_at as u64);
        }
        let mut count = sample();
        count[HEADER.len() + 15..HEADER.len() + 17].copy_from_slice(&(-7i16).to_be_bytes());
        assert_eq!(
            error_of(&count, 100).to_string(),
            "row 2 has field count -7; only -1 (the trailer) may be negative (at byte 34)"
        );
    }

    #[test]
    fn a_stream_cut_inside_a_row_names_the_row_and_field() {
        let data = sample();
        let cut = HEADER.len() + 15 + 2 + 4 + 4 + 3;
        for chunk in [1, 4, 100] {
            let err = error_of(&data[..cut], chunk);
            assert_eq!(
                err.kind(),
                &CopyErrorKind::Truncated(Cut::FieldValue {
                    row: 2,
                    field: 2,
                    length: 8,
                    available: 3
                })
            );
            assert_eq!(err.offset(), cut as u64);
        }
    }

    #[test]
    fn a_stream_without_its_trailer_is_an_error() {
        let data = sample();
        let err = error_of(&data[..data.len() - 2], 10);
        assert_eq!(err.kind(), &CopyErrorKind::NoTrailer { rows: 3 });
        assert_eq!(
            err.to_string(),
            format!(
                "the data ends after 3 rows without the trailer (at byte {})",
                data.len() - 2
            )
        );
        let err = error_of(&data[..data.len() - 1], 10);
        assert_eq!(
            err.kind(),
            &CopyErrorKind::Truncated(Cut::FieldCount { row: 4 })
        );
    }

    #[test]
    fn rows_with_another_field_count_are_refused_when_one_is_expected() {
        let data = sample();
        let mut two = RowSplitter::new().expecting_fields(2);
        split_chunks(&mut two, [&data[..]]).unwrap();
        assert_eq!(two.finish().unwrap(), 3);
        let mut three = RowSplitter::new().expecting_fields(3);
        let err = split_chunks(&mut three, [&data[..]]).unwrap_err();
        assert_eq!(
            err.kind(),
            &CopyErrorKind::UnexpectedFieldCount {
                row: 1,
                expected: 3,
                found: 2
            }
        );
    }

    #[test]
    fn a_header_extension_is_skipped_even_when_cut() {
        let mut data = crate::SIGNATURE.to_vec();
        data.extend_from_slice(&0u32.to_be_bytes());
        data.extend_from_slice(&5u32.to_be_bytes());
        data.extend_from_slice(b"12345");
        write_row(&mut data, &[Some(b"x")]).unwrap();
        data.extend_from_slice(TRAILER);
        for chunk in [1, 2, 20, 100] {
            let mut splitter = RowSplitter::new();
            let rows = split_chunks(&mut splitter, data.chunks(chunk)).unwrap();
            assert_eq!(rows, vec![vec![Some(b"x".to_vec())]]);
            assert_eq!(splitter.finish().unwrap(), 1);
        }
    }
}
