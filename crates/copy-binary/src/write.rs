//! Writing binary COPY rows into a byte buffer.
//!
//! A row is [`write_field_count`] followed by each field: [`write_null`],
//! [`write_field`] for bytes at hand, or an [`OpenField`] for a value encoded
//! straight into the buffer, whose length is filled in afterwards. Nothing
//! here allocates beyond growing the caller's buffer.

use crate::error::FieldTooLong;
use crate::row::{Field, NULL_LENGTH};
use std::ops::Range;

/// Append the field count that starts a row.
///
/// # Panics
///
/// If `count` is above 32767, the most a binary COPY row can announce
/// (PostgreSQL rows have at most 1600 columns).
#[inline]
pub fn write_field_count(out: &mut Vec<u8>, count: usize) {
    let Ok(count) = i16::try_from(count) else {
        panic!(
            "a binary COPY row holds at most {} fields, not {count}",
            i16::MAX
        );
    };
    out.extend_from_slice(&count.to_be_bytes());
}

/// Append a NULL field.
#[inline]
pub fn write_null(out: &mut Vec<u8>) {
    out.extend_from_slice(&NULL_LENGTH.to_be_bytes());
}

/// Append a field holding `value`.
#[inline]
pub fn write_field(out: &mut Vec<u8>, value: &[u8]) -> Result<(), FieldTooLong> {
    let Ok(length) = i32::try_from(value.len()) else {
        return Err(too_long(value.len()));
    };
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// The error for a value of `length` bytes, off the hot path.
#[cold]
fn too_long(length: usize) -> FieldTooLong {
    FieldTooLong { length }
}

/// Append a whole row of `fields`.
pub fn write_row(out: &mut Vec<u8>, fields: &[Field<'_>]) -> Result<(), FieldTooLong> {
    write_field_count(out, fields.len());
    for field in fields {
        match field {
            None => write_null(out),
            Some(value) => write_field(out, value)?,
        }
    }
    Ok(())
}

/// A field whose value is being appended to the buffer:
/// [`OpenField::begin`] reserves its length, [`OpenField::end`] fills it in.
///
/// ```
/// use pgharbor_copy_binary::write::OpenField;
///
/// let mut out = Vec::new();
/// let field = OpenField::begin(&mut out);
/// out.extend_from_slice(&42i32.to_be_bytes());
/// assert_eq!(field.end(&mut out).unwrap(), 4..8);
/// assert_eq!(out, [0, 0, 0, 4, 0, 0, 0, 42]);
/// ```
#[derive(Debug)]
#[must_use = "a field left open has no length"]
pub struct OpenField {
    length_at: usize,
}

impl OpenField {
    /// Start a field at the end of `out`.
    #[inline]
    pub fn begin(out: &mut Vec<u8>) -> OpenField {
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        OpenField { length_at }
    }

    /// Close the field over everything appended to `out` since
    /// [`OpenField::begin`]; returns where its value lies in `out`.
    #[inline]
    pub fn end(self, out: &mut [u8]) -> Result<Range<usize>, FieldTooLong> {
        let value = self.length_at + 4..out.len();
        let Ok(length) = i32::try_from(value.len()) else {
            return Err(too_long(value.len()));
        };
        out[self.length_at..value.start].copy_from_slice(&length.to_be_bytes());
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_its_count_then_length_prefixed_fields() {
        let mut out = Vec::new();
        write_row(&mut out, &[Some(b"hi"), None, Some(b"")]).unwrap();
        assert_eq!(
            out,
            [
                &[0, 3][..],
                &[0, 0, 0, 2],
                b"hi",
                &[0xff, 0xff, 0xff, 0xff],
                &[0, 0, 0, 0]
            ]
            .concat()
        );
    }

    #[test]
    fn an_open_field_is_framed_like_a_written_one() {
        let mut written = vec![9];
        write_field(&mut written, b"value").unwrap();
        let mut opened = vec![9];
        let field = OpenField::begin(&mut opened);
        opened.extend_from_slice(b"val");
        opened.extend_from_slice(b"ue");
        assert_eq!(field.end(&mut opened).unwrap(), 5..10);
        assert_eq!(opened, written);
        let mut empty = Vec::new();
        let field = OpenField::begin(&mut empty);
        assert_eq!(field.end(&mut empty).unwrap(), 4..4);
        assert_eq!(empty, [0, 0, 0, 0]);
    }

    #[test]
    #[should_panic(expected = "at most 32767 fields, not 32768")]
    fn too_many_fields_is_a_bug_of_the_caller() {
        write_field_count(&mut Vec::new(), 32768);
    }

    #[test]
    fn too_long_values_are_named() {
        let text = FieldTooLong { length: 1 << 31 }.to_string();
        assert_eq!(
            text,
            "a value of 2147483648 bytes is longer than a binary COPY field can carry (2147483647 bytes at most)"
        );
    }
}
