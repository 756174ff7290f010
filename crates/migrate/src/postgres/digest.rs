//! Content checksums of COPY streams, the same on both sides: each binary
//! COPY row's bytes (field count, then each field's length and bytes — a
//! canonical encoding) hashed in one call, text COPY rows hashed line by line
//! (both sessions use the same output settings, see [`super::Session`]).
//! Rows are hashed straight from the received chunks; only a row split
//! across two chunks is copied.

use pgharbor_verify::TableDigest;
use xxhash_rust::xxh3::xxh3_128;

/// The binary COPY header: signature, flags, header extension length.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Digest of a COPY stream fed in chunks.
#[derive(Debug)]
pub struct StreamDigest {
    binary: bool,
    /// Bytes of an incomplete row (or header) carried to the next chunk.
    carry: Vec<u8>,
    header_done: bool,
    trailer_seen: bool,
    digest: TableDigest,
}

impl StreamDigest {
    /// A digest for a stream in binary (`true`) or text format.
    pub fn new(binary: bool) -> StreamDigest {
        StreamDigest {
            binary,
            carry: Vec::new(),
            header_done: !binary,
            trailer_seen: false,
            digest: TableDigest::default(),
        }
    }

    /// Feed the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        if self.carry.is_empty() {
            let used = self.consume(chunk)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(chunk);
            let used = self.consume(&joined)?;
            joined.drain(..used);
            self.carry = joined;
        }
        Ok(())
    }

    /// Hash every complete row at the start of `data`; returns the bytes used.
    fn consume(&mut self, data: &[u8]) -> Result<usize, String> {
        let mut pos = 0;
        if !self.header_done {
            match header_length(data)? {
                Some(len) => {
                    pos = len;
                    self.header_done = true;
                }
                None => return Ok(0),
            }
        }
        while let Some(end) = self.row_end(&data[pos..])? {
            let row = &data[pos..pos + end];
            pos += end;
            if self.binary && row == [0xff, 0xff] {
                self.trailer_seen = true;
                continue;
            }
            self.digest.add(xxh3_128(row));
        }
        Ok(pos)
    }

    /// The length of the complete row at the start of `data` (including a
    /// text row's newline), if it is complete.
    fn row_end(&self, data: &[u8]) -> Result<Option<usize>, String> {
        if !self.binary {
            return Ok(data.iter().position(|b| *b == b'\n').map(|p| p + 1));
        }
        if data.len() < 2 {
            return Ok(None);
        }
        let count = i16::from_be_bytes([data[0], data[1]]);
        if count == -1 {
            return Ok(Some(2));
        }
        if count < 0 {
            return Err(format!("malformed binary COPY row (field count {count})"));
        }
        let mut p = 2;
        for _ in 0..count {
            let Some(len) = data.get(p..p + 4) else {
                return Ok(None);
            };
            let len = i32::from_be_bytes(len.try_into().expect("4 bytes"));
            p += 4 + len.max(0) as usize;
            if p > data.len() {
                return Ok(None);
            }
        }
        Ok(Some(p))
    }

    /// The digest of everything fed; an incomplete stream is an error.
    pub fn finish(self) -> Result<TableDigest, String> {
        if !self.carry.is_empty() {
            return Err("the COPY stream ended inside a row".into());
        }
        if self.binary && !self.trailer_seen {
            return Err("the COPY stream ended without its trailer".into());
        }
        Ok(self.digest)
    }
}

/// The header's length once `data` holds all of it.
fn header_length(data: &[u8]) -> Result<Option<usize>, String> {
    if data.len() < 19 {
        return Ok(None);
    }
    if &data[..11] != SIGNATURE {
        return Err("missing binary COPY signature".into());
    }
    let extension = u32::from_be_bytes(data[15..19].try_into().expect("4 bytes")) as usize;
    Ok((data.len() >= 19 + extension).then_some(19 + extension))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        b.feed(b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0").unwrap();
        assert!(b.finish().is_err());
    }

    fn binary_stream(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        for value in values {
            out.extend_from_slice(&1i16.to_be_bytes());
            match value {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    out.extend_from_slice(v);
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
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
}
