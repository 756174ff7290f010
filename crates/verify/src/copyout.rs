//! Parsing a binary COPY stream into rows of fields.

/// Incrementally splits a binary COPY byte stream into rows.
#[derive(Debug, Default)]
pub struct CopyParser {
    buffer: Vec<u8>,
    header_done: bool,
    finished: bool,
}

/// The most capacity the buffer of a split row keeps once it is empty.
const KEPT_CAPACITY: usize = 1 << 20;

/// One field of a row: `None` is NULL.
pub type Field<'a> = Option<&'a [u8]>;

impl CopyParser {
    /// A parser expecting the COPY header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed `data`; calls `on_row` for every complete row now available.
    ///
    /// Rows are read from `data` itself; only the part of a row that
    /// continues in the next chunk is kept. PostgreSQL sends a row per
    /// message, so a huge value is not copied here (and what a row split
    /// across chunks needed is given back once it is complete).
    pub fn feed(
        &mut self,
        data: &[u8],
        mut on_row: impl FnMut(&[Field<'_>]),
    ) -> Result<(), String> {
        if self.buffer.is_empty() {
            let used = self.rows(data, &mut on_row)?;
            self.buffer.extend_from_slice(&data[used..]);
            return Ok(());
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.extend_from_slice(data);
        let used = self.rows(&buffer, &mut on_row)?;
        buffer.drain(..used);
        if buffer.is_empty() && buffer.capacity() > KEPT_CAPACITY {
            buffer = Vec::new();
        }
        self.buffer = buffer;
        Ok(())
    }

    /// Calls `on_row` for every complete row at the start of `buf` (after
    /// the header, when it has not been read yet); the bytes used.
    fn rows(&mut self, buf: &[u8], on_row: &mut impl FnMut(&[Field<'_>])) -> Result<usize, String> {
        let mut pos = 0;
        if !self.header_done {
            if buf.len() < 19 {
                return Ok(0);
            }
            if &buf[..11] != b"PGCOPY\n\xff\r\n\0" {
                return Err("missing binary COPY signature".into());
            }
            let ext = u32::from_be_bytes(buf[15..19].try_into().expect("4 bytes")) as usize;
            if buf.len() < 19 + ext {
                return Ok(0);
            }
            pos = 19 + ext;
            self.header_done = true;
        }
        let mut fields: Vec<Field<'_>> = Vec::new();
        loop {
            if buf.len() < pos + 2 {
                break;
            }
            let count = i16::from_be_bytes([buf[pos], buf[pos + 1]]);
            if count == -1 {
                self.finished = true;
                pos += 2;
                break;
            }
            let mut p = pos + 2;
            fields.clear();
            let mut complete = true;
            for _ in 0..count {
                if buf.len() < p + 4 {
                    complete = false;
                    break;
                }
                let len = i32::from_be_bytes(buf[p..p + 4].try_into().expect("4 bytes"));
                p += 4;
                if len < 0 {
                    fields.push(None);
                    continue;
                }
                let len = len as usize;
                if buf.len() < p + len {
                    complete = false;
                    break;
                }
                fields.push(Some(&buf[p..p + len]));
                p += len;
            }
            if !complete {
                break;
            }
            on_row(&fields);
            pos = p;
        }
        Ok(pos)
    }

    /// Whether the trailer was seen.
    pub fn finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_across_chunks() {
        let mut stream = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        for v in [1i64, 2] {
            stream.extend_from_slice(&2i16.to_be_bytes());
            stream.extend_from_slice(&8i32.to_be_bytes());
            stream.extend_from_slice(&v.to_be_bytes());
            stream.extend_from_slice(&(-1i32).to_be_bytes());
        }
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        let mut parser = CopyParser::new();
        let mut rows = Vec::new();
        for chunk in stream.chunks(5) {
            parser
                .feed(chunk, |f| {
                    rows.push((f[0].map(|b| b.to_vec()), f[1].is_none()))
                })
                .unwrap();
        }
        assert!(parser.finished());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].0.as_deref(), Some(&2i64.to_be_bytes()[..]));

        let mut whole = CopyParser::new();
        let mut again = Vec::new();
        whole
            .feed(&stream, |f| {
                again.push((f[0].map(|b| b.to_vec()), f[1].is_none()))
            })
            .unwrap();
        assert!(whole.finished());
        assert_eq!(again, rows, "read from the chunk itself, the same rows");
        assert!(whole.buffer.is_empty());
    }
}
