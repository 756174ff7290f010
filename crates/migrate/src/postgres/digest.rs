//! Content checksums of COPY streams, the same on both sides: binary COPY
//! rows hashed field by field, text COPY rows hashed line by line (both
//! sessions use the same output settings, see [`super::Session`]).

use pgharbor_verify::copyout::CopyParser;
use pgharbor_verify::TableDigest;
use xxhash_rust::xxh3::Xxh3;

/// Digest of a COPY stream fed in chunks.
#[derive(Debug)]
pub enum StreamDigest {
    /// `FORMAT binary`.
    Binary(CopyParser, TableDigest),
    /// `FORMAT text`: a partial last line carried between chunks.
    Text(Vec<u8>, TableDigest),
}

impl StreamDigest {
    /// A digest for a stream in binary (`true`) or text format.
    pub fn new(binary: bool) -> StreamDigest {
        if binary {
            StreamDigest::Binary(CopyParser::new(), TableDigest::default())
        } else {
            StreamDigest::Text(Vec::new(), TableDigest::default())
        }
    }

    /// Feed the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        match self {
            StreamDigest::Binary(parser, digest) => parser.feed(chunk, |fields| {
                let mut h = Xxh3::new();
                for field in fields {
                    match field {
                        None => h.update(&[0xff; 4]),
                        Some(bytes) => {
                            h.update(&(bytes.len() as u32).to_be_bytes());
                            h.update(bytes);
                        }
                    }
                }
                digest.add(h.digest128());
            }),
            StreamDigest::Text(carry, digest) => {
                let mut rest = chunk;
                while let Some(end) = rest.iter().position(|b| *b == b'\n') {
                    let line = &rest[..end];
                    if carry.is_empty() {
                        digest.add(xxhash_rust::xxh3::xxh3_128(line));
                    } else {
                        carry.extend_from_slice(line);
                        digest.add(xxhash_rust::xxh3::xxh3_128(carry));
                        carry.clear();
                    }
                    rest = &rest[end + 1..];
                }
                carry.extend_from_slice(rest);
                Ok(())
            }
        }
    }

    /// The digest of everything fed; an incomplete stream is an error.
    pub fn finish(self) -> Result<TableDigest, String> {
        match self {
            StreamDigest::Binary(parser, digest) if parser.finished() => Ok(digest),
            StreamDigest::Binary(..) => Err("the COPY stream ended without its trailer".into()),
            StreamDigest::Text(carry, digest) if carry.is_empty() => Ok(digest),
            StreamDigest::Text(..) => Err("the COPY stream ended inside a row".into()),
        }
    }
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
}
