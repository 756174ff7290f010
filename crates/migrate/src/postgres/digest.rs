//! Content checksums of COPY streams, the same on both sides: each binary
//! COPY row's bytes (field count, then each field's length and bytes — a
//! canonical encoding) hashed in one call, text COPY rows hashed line by line
//! (both sessions use the same output settings, see [`super::Session`]).
//! Rows are hashed straight from the received chunks; only a row split
//! across two chunks is copied. Binary streams are split into rows by
//! `pgharbor-copy-binary`.

use pgharbor_copy_binary::RowSplitter;
use pgharbor_verify::TableDigest;
use xxhash_rust::xxh3::xxh3_128;

/// Digest of a COPY stream fed in chunks.
#[derive(Debug)]
pub struct StreamDigest {
    rows: Rows,
    digest: TableDigest,
}

/// How the stream is cut into rows.
#[derive(Debug)]
enum Rows {
    Binary(RowSplitter),
    /// Text lines; the bytes of an incomplete line carried to the next chunk.
    Text(Vec<u8>),
}

impl StreamDigest {
    /// A digest for a stream in binary (`true`) or text format.
    pub fn new(binary: bool) -> StreamDigest {
        StreamDigest {
            rows: if binary {
                Rows::Binary(RowSplitter::new())
            } else {
                Rows::Text(Vec::new())
            },
            digest: TableDigest::default(),
        }
    }

    /// Feed the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        let digest = &mut self.digest;
        match &mut self.rows {
            Rows::Binary(splitter) => splitter
                .feed(chunk, |row| digest.add(xxh3_128(row.bytes())))
                .map_err(|e| e.to_string()),
            Rows::Text(carry) => {
                feed_lines(carry, chunk, digest);
                Ok(())
            }
        }
    }

    /// The digest of everything fed; an incomplete stream is an error.
    pub fn finish(self) -> Result<TableDigest, String> {
        match self.rows {
            Rows::Binary(splitter) => {
                splitter.finish().map_err(|e| e.to_string())?;
            }
            Rows::Text(carry) if !carry.is_empty() => {
                return Err("the COPY stream ended inside a row".into())
            }
            Rows::Text(_) => {}
        }
        Ok(self.digest)
    }
}

/// Hash every line `chunk` completes, keeping an unfinished one in `carry`.
fn feed_lines(carry: &mut Vec<u8>, chunk: &[u8], digest: &mut TableDigest) {
    let mut rest = chunk;
    if !carry.is_empty() {
        let Some(end) = line_end(rest) else {
            carry.extend_from_slice(rest);
            return;
        };
        carry.extend_from_slice(&rest[..end]);
        digest.add(xxh3_128(carry));
        carry.clear();
        rest = &rest[end..];
    }
    while let Some(end) = line_end(rest) {
        digest.add(xxh3_128(&rest[..end]));
        rest = &rest[end..];
    }
    carry.extend_from_slice(rest);
}

/// The length of the line at the start of `data`, newline included, if it
/// is complete.
fn line_end(data: &[u8]) -> Option<usize> {
    data.iter().position(|b| *b == b'\n').map(|p| p + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgharbor_copy_binary::{write, Field, HEADER, TRAILER};

    #[test]
    fn text_rows_split_across_chunks_hash_like_whole_ones() {
        let mut whole = StreamDigest::new(false);
        whole.feed(b"1\ta\n2\tb\n").unwrap();
        let mut split = StreamDigest::new(false);
        split.feed(b"2\t").unwrap();
        split.feed(b"b\n1\ta").unwrap();
        split.feed(b"\n").unwrap();
        assert_eq!(whole.finish().unwrap(), split.finish().unwrap());
        let mut other = StreamDigest::new(false);
        other.feed(b"1\ta\n2\tc\n").unwrap();
        let mut again = StreamDigest::new(false);
        again.feed(b"1\ta\n2\tb\n").unwrap();
        assert_ne!(other.finish().unwrap(), again.finish().unwrap());
    }

    #[test]
    fn an_unfinished_stream_is_an_error() {
        let mut d = StreamDigest::new(false);
        d.feed(b"1\ta").unwrap();
        assert!(d.finish().is_err());
        let mut b = StreamDigest::new(true);
        b.feed(HEADER).unwrap();
        let err = b.finish().unwrap_err();
        assert!(err.contains("without the trailer"), "{err}");
    }

    #[test]
    fn a_malformed_binary_stream_is_an_error_naming_the_row() {
        let mut stream = binary_stream(&[Some(b"alpha"), Some(b"omega")]);
        let second_length = HEADER.len() + 11 + 2;
        stream[second_length..second_length + 4].copy_from_slice(&(-4i32).to_be_bytes());
        let mut d = StreamDigest::new(true);
        let err = d.feed(&stream).unwrap_err();
        assert!(
            err.contains("field 1 of row 2 has length -4") && err.contains("at byte 32"),
            "{err}"
        );
    }

    fn binary_stream(values: &[Field<'_>]) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        for value in values {
            write::write_row(&mut out, &[*value]).unwrap();
        }
        out.extend_from_slice(TRAILER);
        out
    }

    #[test]
    fn binary_rows_hash_alike_however_the_stream_is_cut() {
        let stream = binary_stream(&[Some(b"alpha"), None, Some(b""), Some(b"omega")]);
        let mut whole = StreamDigest::new(true);
        whole.feed(&stream).unwrap();
        let whole = whole.finish().unwrap();
        assert_eq!(whole.rows, 4);
        for cut in 1..stream.len() {
            let mut split = StreamDigest::new(true);
            split.feed(&stream[..cut]).unwrap();
            split.feed(&stream[cut..]).unwrap();
            assert_eq!(split.finish().unwrap(), whole, "cut at {cut}");
        }
        let mut other = StreamDigest::new(true);
        other
            .feed(&binary_stream(&[
                Some(b"alpha"),
                Some(b""),
                Some(b""),
                Some(b"omega"),
            ]))
            .unwrap();
        assert_ne!(other.finish().unwrap(), whole, "NULL differs from empty");
    }

    #[test]
    fn a_binary_row_hashes_as_its_bytes_on_the_wire() {
        let mut d = StreamDigest::new(true);
        d.feed(&binary_stream(&[Some(b"alpha")])).unwrap();
        let mut row = Vec::new();
        write::write_row(&mut row, &[Some(b"alpha")]).unwrap();
        let mut expected = TableDigest::default();
        expected.add(xxh3_128(&row));
        assert_eq!(d.finish().unwrap(), expected);
    }
}
