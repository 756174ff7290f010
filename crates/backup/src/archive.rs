//! Reading `pg_dump`'s custom archive format as it streams, so a restore
//! can load the data while the dump is still being downloaded and
//! decompressed instead of after.
//!
//! The layout (`pg_backup_archiver.c`, `pg_backup_custom.c`): a header
//! (`PGDMP`, version, integer and offset sizes, format, compression,
//! creation time, database and version strings), the table of contents
//! (one entry per object: dump id, tag, kind, section, SQL, the `COPY`
//! statement of table data, …, and where its data is), then one block per
//! entry with data: a type byte, the dump id, and length-prefixed chunks
//! ending with a zero length. With `--compress=0` (how pgharbor dumps) a
//! chunk holds `COPY` text rows as the server sent them.
//!
//! Integers are a sign byte then `int_size` bytes, least significant first;
//! strings are an integer length (`-1` for none) then the bytes.
//!
//! Only what pgharbor writes is read this way: archive versions 1.12 to
//! 1.15 (`pg_dump` 11 to 16), uncompressed. Anything else is
//! [`Toc::streamable`] `false` and restored from a file by `pg_restore`.

use std::io::{self, Read};

/// The newest archive version read here (`pg_dump` 16).
const NEWEST: (u8, u8) = (1, 15);
/// The oldest: 1.12 (`pg_dump` 11) has every field read below.
const OLDEST: (u8, u8) = (1, 12);
/// A data block of table rows.
pub(crate) const BLOCK_DATA: u8 = 1;
/// `teSection` of table data and sequence values.
const SECTION_DATA: i64 = 3;

/// One table-of-contents entry (the fields a streamed restore needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TocEntry {
    /// The id data blocks refer to.
    pub dump_id: i64,
    /// The object's name.
    pub tag: String,
    /// Its kind: `TABLE DATA`, `SEQUENCE SET`, `ENCODING`, `INDEX`, …
    pub desc: String,
    /// `teSection`: 1 none, 2 pre-data, 3 data, 4 post-data.
    pub section: i64,
    /// Its SQL (`SET client_encoding = …`, `SELECT pg_catalog.setval(…)`).
    pub defn: Option<String>,
    /// For table data: `COPY schema.table (columns) FROM stdin;`.
    pub copy_stmt: Option<String>,
}

/// The header and table of contents of an archive.
#[derive(Debug, Clone)]
pub(crate) struct Toc {
    /// Archive format version (major, minor, revision).
    pub version: (u8, u8, u8),
    /// Whether data blocks are compressed (pgharbor's are not).
    pub compressed: bool,
    /// Every entry, in archive order.
    pub entries: Vec<TocEntry>,
}

impl Toc {
    /// Whether a streamed restore can load this archive's data: a version
    /// read here, uncompressed blocks, and nothing in the data section but
    /// table rows and sequence values (large objects go through
    /// `pg_restore`).
    pub fn streamable(&self) -> bool {
        let (major, minor, _) = self.version;
        (OLDEST..=NEWEST).contains(&(major, minor))
            && !self.compressed
            && self
                .entries
                .iter()
                .filter(|e| e.section == SECTION_DATA)
                .all(|e| {
                    (e.desc == "TABLE DATA" && e.copy_stmt.is_some()) || e.desc == "SEQUENCE SET"
                })
    }

    /// The entry with `dump_id`.
    pub fn entry(&self, dump_id: i64) -> Option<&TocEntry> {
        self.entries.iter().find(|e| e.dump_id == dump_id)
    }

    /// The entries of kind `desc`, in archive order.
    pub fn of_kind<'a>(&'a self, desc: &'a str) -> impl Iterator<Item = &'a TocEntry> + 'a {
        self.entries.iter().filter(move |e| e.desc == desc)
    }
}

/// Reads an archive from `inner`: [`read_toc`](ArchiveReader::read_toc)
/// first, then the data blocks one after the other.
pub(crate) struct ArchiveReader<R> {
    inner: R,
    int_size: usize,
    off_size: usize,
    /// Every byte read so far, while recording (the header and TOC).
    recorded: Option<Vec<u8>>,
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a pg_dump custom archive as expected: {what}"),
    )
}

impl<R: Read> ArchiveReader<R> {
    /// A reader that records what it reads until [`take_recorded`](Self::take_recorded).
    pub fn new(inner: R) -> Self {
        ArchiveReader {
            inner,
            int_size: 4,
            off_size: 8,
            recorded: Some(Vec::new()),
        }
    }

    /// The bytes read so far (the header and TOC after `read_toc`); stops recording.
    pub fn take_recorded(&mut self) -> Vec<u8> {
        self.recorded.take().unwrap_or_default()
    }

    /// The underlying reader, positioned after what was read.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        if let Some(r) = &mut self.recorded {
            r.extend_from_slice(buf);
        }
        Ok(())
    }

    fn byte(&mut self) -> io::Result<u8> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b)?;
        Ok(b[0])
    }

    fn int(&mut self) -> io::Result<i64> {
        let negative = self.byte()? != 0;
        let mut bytes = vec![0u8; self.int_size];
        self.read_exact(&mut bytes)?;
        let value = bytes
            .iter()
            .rev()
            .fold(0i64, |acc, b| (acc << 8) | i64::from(*b));
        Ok(if negative { -value } else { value })
    }

    fn string(&mut self) -> io::Result<Option<String>> {
        let len = self.int()?;
        if len < 0 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| malformed("string length"))?;
        if len > 1 << 30 {
            return Err(malformed("string longer than 1 GiB"));
        }
        let mut bytes = vec![0u8; len];
        self.read_exact(&mut bytes)?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| malformed("a TOC string is not UTF-8"))
    }

    /// Reads the header and the table of contents. `Ok(None)` for an
    /// archive version outside what is read here (the caller restores
    /// from a file then).
    pub fn read_toc(&mut self) -> io::Result<Option<Toc>> {
        let mut magic = [0u8; 5];
        self.read_exact(&mut magic)?;
        if &magic != b"PGDMP" {
            return Err(malformed("no PGDMP header"));
        }
        let version = (self.byte()?, self.byte()?, self.byte()?);
        if !(OLDEST..=NEWEST).contains(&(version.0, version.1)) {
            return Ok(None);
        }
        self.int_size = usize::from(self.byte()?);
        self.off_size = usize::from(self.byte()?);
        if !(1..=8).contains(&self.int_size) || !(1..=8).contains(&self.off_size) {
            return Err(malformed("integer sizes"));
        }
        let _format = self.byte()?;
        let compressed = if version.1 >= 15 {
            self.byte()? != 0
        } else {
            self.int()? != 0
        };
        for _ in 0..7 {
            self.int()?; // creation time: sec, min, hour, mday, mon, year, isdst
        }
        for _ in 0..3 {
            self.string()?; // database name, server version, pg_dump version
        }
        let count = self.int()?;
        let count = usize::try_from(count).map_err(|_| malformed("TOC size"))?;
        let mut entries = Vec::with_capacity(count.min(100_000));
        for _ in 0..count {
            entries.push(self.entry(version)?);
        }
        Ok(Some(Toc {
            version,
            compressed,
            entries,
        }))
    }

    fn entry(&mut self, version: (u8, u8, u8)) -> io::Result<TocEntry> {
        let dump_id = self.int()?;
        let _had_dumper = self.int()?;
        let _table_oid = self.string()?;
        let _oid = self.string()?;
        let tag = self.string()?.unwrap_or_default();
        let desc = self.string()?.unwrap_or_default();
        let section = self.int()?;
        let defn = self.string()?;
        let _drop = self.string()?;
        let copy_stmt = self.string()?;
        let _namespace = self.string()?;
        let _tablespace = self.string()?;
        if version.1 >= 14 {
            let _table_am = self.string()?;
        }
        let _owner = self.string()?;
        let _with_oids = self.string()?;
        while self.string()?.is_some() {} // dependencies, ended by a null string
        let _data_state = self.byte()?; // custom format: where the data is
        let mut offset = vec![0u8; self.off_size];
        self.read_exact(&mut offset)?;
        Ok(TocEntry {
            dump_id,
            tag,
            desc,
            section,
            defn,
            copy_stmt: copy_stmt.filter(|s| !s.is_empty()),
        })
    }

    /// The next data block's type and dump id; `None` at the end of the archive.
    pub fn next_block(&mut self) -> io::Result<Option<(u8, i64)>> {
        let mut kind = [0u8; 1];
        if self.inner.read(&mut kind)? == 0 {
            return Ok(None);
        }
        let id = self.int()?;
        Ok(Some((kind[0], id)))
    }

    /// Reads everything left, discarding it; the bytes read.
    pub fn drain(&mut self) -> io::Result<u64> {
        io::copy(&mut self.inner, &mut io::sink())
    }

    /// Appends the next chunk of the current block to `out`; `false` at
    /// the block's end.
    pub fn next_chunk(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let len = self.int()?;
        if len == 0 {
            return Ok(false);
        }
        let len = usize::try_from(len).map_err(|_| malformed("chunk length"))?;
        let start = out.len();
        out.resize(start + len, 0);
        self.inner.read_exact(&mut out[start..])?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes archives the way `pg_dump` does (4-byte integers, 8-byte offsets).
    #[derive(Default)]
    struct Writer(Vec<u8>);

    impl Writer {
        fn int(&mut self, v: i64) -> &mut Self {
            self.0.push(u8::from(v < 0));
            self.0
                .extend_from_slice(&(v.unsigned_abs() as u32).to_le_bytes());
            self
        }
        fn str(&mut self, s: Option<&str>) -> &mut Self {
            match s {
                None => self.int(-1),
                Some(s) => {
                    self.int(s.len() as i64);
                    self.0.extend_from_slice(s.as_bytes());
                    self
                }
            }
        }
        fn header(&mut self, minor: u8, compression: u8) -> &mut Self {
            self.0.extend_from_slice(b"PGDMP");
            self.0.extend_from_slice(&[1, minor, 0, 4, 8, 1]);
            if minor >= 15 {
                self.0.push(compression);
            } else {
                self.int(i64::from(compression));
            }
            for v in [1, 2, 3, 4, 5, 126, 0] {
                self.int(v);
            }
            self.str(Some("shop")).str(Some("16.2")).str(Some("16.2"))
        }
        fn entry(&mut self, id: i64, desc: &str, section: i64, copy: Option<&str>) -> &mut Self {
            self.int(id).int(i64::from(copy.is_some()));
            self.str(Some("0")).str(Some("0"));
            self.str(Some("t")).str(Some(desc)).int(section);
            self.str(Some("-- defn")).str(Some("")).str(copy);
            self.str(Some("public")).str(Some("")).str(Some("heap"));
            self.str(Some("owner")).str(Some("false"));
            self.str(Some("1")).str(None); // one dependency
            self.0.push(if copy.is_some() { 1 } else { 3 });
            self.0.extend_from_slice(&[0; 8]);
            self
        }
    }

    fn archive(minor: u8, compression: u8, data_desc: &str) -> Vec<u8> {
        let mut w = Writer::default();
        w.header(minor, compression).int(3);
        w.entry(1, "ENCODING", 2, None);
        w.entry(2, "TABLE", 2, None);
        w.entry(3, data_desc, 3, Some("COPY public.t (id) FROM stdin;\n"));
        w.0.push(BLOCK_DATA);
        w.int(3);
        for row in ["1\n", "2\n", "3\n"] {
            w.int(row.len() as i64);
            w.0.extend_from_slice(row.as_bytes());
        }
        w.int(0);
        w.0
    }

    #[test]
    fn the_toc_then_the_rows_of_each_block() {
        let bytes = archive(15, 0, "TABLE DATA");
        let mut reader = ArchiveReader::new(bytes.as_slice());
        let toc = reader.read_toc().unwrap().unwrap();
        let head = reader.take_recorded();
        assert_eq!(&head[..5], b"PGDMP");
        assert_eq!(toc.entries.len(), 3);
        assert!(toc.streamable());
        assert_eq!(
            toc.entry(3).unwrap().copy_stmt.as_deref(),
            Some("COPY public.t (id) FROM stdin;\n")
        );
        assert_eq!(toc.of_kind("ENCODING").count(), 1);
        assert_eq!(reader.next_block().unwrap(), Some((BLOCK_DATA, 3)));
        let mut rows = Vec::new();
        while reader.next_chunk(&mut rows).unwrap() {}
        assert_eq!(rows, b"1\n2\n3\n");
        assert_eq!(reader.next_block().unwrap(), None);
        assert_eq!(head.len() + 1 + 5 + 3 * (5 + 2) + 5, bytes.len());
    }

    #[test]
    fn only_uncompressed_table_rows_of_known_versions_stream() {
        let older = archive(14, 0, "TABLE DATA");
        assert!(ArchiveReader::new(older.as_slice())
            .read_toc()
            .unwrap()
            .unwrap()
            .streamable());
        let compressed = archive(15, 1, "TABLE DATA");
        let toc = ArchiveReader::new(compressed.as_slice())
            .read_toc()
            .unwrap();
        assert!(!toc.unwrap().streamable(), "gzip inside");
        let blobs = archive(15, 0, "BLOBS");
        let toc = ArchiveReader::new(blobs.as_slice()).read_toc().unwrap();
        assert!(!toc.unwrap().streamable(), "large objects");
        let mut newer = archive(15, 0, "TABLE DATA");
        newer[6] = 16;
        assert!(ArchiveReader::new(newer.as_slice())
            .read_toc()
            .unwrap()
            .is_none());
        let err = ArchiveReader::new(&b"PGDMQ"[..]).read_toc().unwrap_err();
        assert!(err.to_string().contains("no PGDMP header"), "{err}");
    }

    #[test]
    fn a_truncated_archive_is_an_error_not_an_end() {
        let bytes = archive(15, 0, "TABLE DATA");
        let cut = &bytes[..bytes.len() - 6];
        let mut reader = ArchiveReader::new(cut);
        reader.read_toc().unwrap().unwrap();
        reader.next_block().unwrap().unwrap();
        let mut rows = Vec::new();
        let ended = loop {
            match reader.next_chunk(&mut rows) {
                Ok(true) => {}
                Ok(false) => break None,
                Err(e) => break Some(e),
            }
        };
        assert_eq!(ended.unwrap().kind(), io::ErrorKind::UnexpectedEof);
    }
}
