//! Reading an RDB snapshot as a stream: the header, every opcode, every value
//! type skipped exactly (never decoded), and the CRC64 at the end.
//!
//! Memory stays flat in the size of the file: values are either skipped in
//! buffer-sized pieces ([`check`]) or held one at a time
//! ([`RdbReader::next_key`]).

use crate::crc64::crc64;
use crate::error::{RdbError, RdbErrorKind, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The oldest RDB version read (Redis 1.x/2.0).
pub const MIN_VERSION: u32 = 1;
/// The newest RDB version read (Redis 7.4 and 8.0 write 12).
pub const MAX_VERSION: u32 = 12;

const OP_SLOT_INFO: u8 = 244;
const OP_FUNCTION2: u8 = 245;
const OP_FUNCTION_PRE_GA: u8 = 246;
const OP_MODULE_AUX: u8 = 247;
const OP_IDLE: u8 = 248;
const OP_FREQ: u8 = 249;
const OP_AUX: u8 = 250;
const OP_RESIZEDB: u8 = 251;
const OP_EXPIRETIME_MS: u8 = 252;
const OP_EXPIRETIME: u8 = 253;
const OP_SELECTDB: u8 = 254;
const OP_EOF: u8 = 255;

/// Module value opcodes (`RDB_MODULE_OPCODE_*`).
const MODULE_EOF: u64 = 0;
const MODULE_SINT: u64 = 1;
const MODULE_UINT: u64 = 2;
const MODULE_FLOAT: u64 = 3;
const MODULE_DOUBLE: u64 = 4;
const MODULE_STRING: u64 = 5;

/// String encodings (`RDB_ENC_*`).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// One key of a snapshot, with its value exactly as the file encodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The database number (`SELECT`).
    pub db: u64,
    /// The key, binary-safe.
    pub key: Vec<u8>,
    /// The absolute expiry in Unix milliseconds, when the key has one.
    pub expire_ms: Option<i64>,
    /// The serialized value: the type byte, then the encoded value.
    pub value: Vec<u8>,
}

impl KeyEntry {
    /// The RDB value type (`RDB_TYPE_*`, e.g. 0 for a string).
    pub fn value_type(&self) -> u8 {
        self.value[0]
    }

    /// The value as a `DUMP` payload (what `RESTORE` takes): the value, the
    /// RDB version as two little-endian bytes, and the CRC64 of both.
    pub fn dump_payload(&self, rdb_version: u16) -> Vec<u8> {
        let mut payload = Vec::with_capacity(self.value.len() + 10);
        payload.extend_from_slice(&self.value);
        payload.extend_from_slice(&rdb_version.to_le_bytes());
        let crc = crc64(0, &payload);
        payload.extend_from_slice(&crc.to_le_bytes());
        payload
    }

    /// The key for messages: printable ASCII as is, other bytes escaped.
    pub fn key_display(&self) -> String {
        self.key.escape_ascii().to_string()
    }
}

/// The snapshot's end-of-file checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// The CRC64 is present and matches the content.
    Verified(u64),
    /// The file was written with `rdbchecksum no` (a zero checksum).
    Disabled,
    /// RDB versions before 5 have no checksum.
    Absent,
}

/// Key counts of one database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbSummary {
    /// Keys.
    pub keys: u64,
    /// Keys with an expiry.
    pub expires: u64,
}

/// What a snapshot holds, complete once the whole file has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbSummary {
    /// The RDB format version (1–12).
    pub version: u32,
    /// The aux fields (`redis-ver`, `redis-bits`, `ctime`, `used-mem`, …),
    /// values shown lossily as UTF-8.
    pub aux: BTreeMap<String, String>,
    /// Key counts per database number; only databases with keys appear.
    pub databases: BTreeMap<u64, DbSummary>,
    /// Function libraries (`FUNCTION2`, Redis 7+).
    pub functions: u64,
    /// Module aux records (module data outside keys).
    pub module_aux: u64,
    /// The end-of-file checksum.
    pub checksum: Checksum,
    /// The file's size in bytes.
    pub size: u64,
}

impl RdbSummary {
    /// The version of Redis that wrote the snapshot (`redis-ver` aux field).
    pub fn redis_version(&self) -> Option<&str> {
        self.aux.get("redis-ver").map(String::as_str)
    }

    /// Keys in all databases.
    pub fn keys(&self) -> u64 {
        self.databases.values().map(|d| d.keys).sum()
    }

    /// Keys with an expiry in all databases.
    pub fn expires(&self) -> u64 {
        self.databases.values().map(|d| d.expires).sum()
    }
}

/// A length, or the special encoding of a string (`11xxxxxx`).
enum Len {
    Plain(u64),
    Encoded(u8),
}

/// A streaming reader of one RDB snapshot.
///
/// [`next_key`](Self::next_key) yields the keys in file order; when it
/// returns `None` the checksum has been verified and
/// [`summary`](Self::summary) is complete.
pub struct RdbReader<R> {
    input: BufReader<R>,
    name: Option<String>,
    offset: u64,
    crc: u64,
    capture: Option<Vec<u8>>,
    db: u64,
    finished: bool,
    functions: Vec<Vec<u8>>,
    summary: RdbSummary,
}

impl<R: AsyncRead + Unpin> RdbReader<R> {
    /// Reads the header (`REDIS` and the version) of the snapshot `input`.
    pub async fn new(input: R) -> Result<Self> {
        Self::start(input, None).await
    }

    /// Like [`new`](Self::new), with `name` (a file, a URL) put in front of every error.
    pub async fn with_name(input: R, name: impl Into<String>) -> Result<Self> {
        Self::start(input, Some(name.into())).await
    }

    async fn start(input: R, name: Option<String>) -> Result<Self> {
        let mut reader = RdbReader {
            input: BufReader::with_capacity(256 * 1024, input),
            name,
            offset: 0,
            crc: 0,
            capture: None,
            db: 0,
            finished: false,
            functions: Vec::new(),
            summary: RdbSummary {
                version: 0,
                aux: BTreeMap::new(),
                databases: BTreeMap::new(),
                functions: 0,
                module_aux: 0,
                checksum: Checksum::Absent,
                size: 0,
            },
        };
        let version = reader.header().await.map_err(|e| reader.named(e))?;
        reader.summary.version = version;
        Ok(reader)
    }

    /// The RDB format version.
    pub fn version(&self) -> u32 {
        self.summary.version
    }

    /// The summary so far (complete after `next_key` returned `None`).
    pub fn summary(&self) -> &RdbSummary {
        &self.summary
    }

    /// The summary, consuming the reader.
    pub fn into_summary(self) -> RdbSummary {
        self.summary
    }

    /// The code of the function libraries met so far (`FUNCTION LOAD` takes it).
    pub fn functions(&self) -> &[Vec<u8>] {
        &self.functions
    }

    /// The next key with its value, or `None` at the end of a valid file.
    pub async fn next_key(&mut self) -> Result<Option<KeyEntry>> {
        let next = self.next_entry(true).await;
        next.map_err(|e| self.named(e))
    }

    /// Reads the rest of the file without keeping values, verifying the checksum.
    pub async fn finish(&mut self) -> Result<()> {
        while self
            .next_entry(false)
            .await
            .map_err(|e| self.named(e))?
            .is_some()
        {}
        Ok(())
    }

    fn named(&self, e: RdbError) -> RdbError {
        match &self.name {
            Some(name) => e.context(name),
            None => e,
        }
    }

    async fn header(&mut self) -> Result<u32> {
        let magic: [u8; 5] = self.array().await?;
        let not_rdb = || {
            RdbError::at(
                RdbErrorKind::Corrupt,
                0,
                "not an RDB file (it does not start with REDIS and a 4-digit version)",
            )
        };
        if &magic != b"REDIS" {
            return Err(not_rdb());
        }
        let digits: [u8; 4] = self.array().await?;
        let version = std::str::from_utf8(&digits)
            .ok()
            .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(not_rdb)?;
        if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
            return Err(RdbError::at(
                RdbErrorKind::Unsupported,
                5,
                format!("RDB version {version} is not supported (versions {MIN_VERSION} to {MAX_VERSION}: Redis 2.x to 7.4)"),
            ));
        }
        Ok(version)
    }

    async fn next_entry(&mut self, keep: bool) -> Result<Option<KeyEntry>> {
        if self.finished {
            return Ok(None);
        }
        let mut expire_ms = None;
        loop {
            let at = self.offset;
            let op = self.u8().await?;
            match op {
                OP_EOF => {
                    self.end().await?;
                    return Ok(None);
                }
                OP_SELECTDB => self.db = self.length().await?,
                OP_EXPIRETIME => {
                    let secs = u32::from_le_bytes(self.array().await?);
                    expire_ms = Some(i64::from(secs) * 1000);
                }
                OP_EXPIRETIME_MS => expire_ms = Some(i64::from_le_bytes(self.array().await?)),
                OP_RESIZEDB => {
                    self.length().await?;
                    self.length().await?;
                }
                OP_AUX => {
                    let key = self.string().await?;
                    let value = self.string().await?;
                    self.summary.aux.insert(
                        String::from_utf8_lossy(&key).into_owned(),
                        String::from_utf8_lossy(&value).into_owned(),
                    );
                }
                OP_FREQ => self.skip(1).await?,
                OP_IDLE => {
                    self.length().await?;
                }
                OP_MODULE_AUX => self.module_aux(at).await?,
                OP_FUNCTION2 => {
                    let code = self.string().await?;
                    self.functions.push(code);
                    self.summary.functions += 1;
                }
                OP_FUNCTION_PRE_GA => {
                    return Err(RdbError::at(
                        RdbErrorKind::Unsupported,
                        at,
                        "a function library in the Redis 7.0 release-candidate format (opcode 246); save it again with Redis 7.0 or newer",
                    ))
                }
                OP_SLOT_INFO => {
                    for _ in 0..3 {
                        self.length().await?;
                    }
                }
                t if is_object_type(t) => {
                    return self.key(t, expire_ms, keep).await.map(Some);
                }
                other => {
                    return Err(RdbError::at(
                        RdbErrorKind::Corrupt,
                        at,
                        format!("unknown opcode or value type {other}"),
                    ))
                }
            }
        }
    }

    async fn key(
        &mut self,
        value_type: u8,
        expire_ms: Option<i64>,
        keep: bool,
    ) -> Result<KeyEntry> {
        let key = self.string().await?;
        let db = self.db;
        let shown = || format!("key \"{}\" (database {db})", key.escape_ascii());
        if keep {
            self.capture = Some(vec![value_type]);
        }
        let skipped = self.skip_value(value_type).await;
        let value = self.capture.take().unwrap_or_default();
        skipped.map_err(|e| e.context(shown()))?;
        let db = self.summary.databases.entry(self.db).or_default();
        db.keys += 1;
        db.expires += u64::from(expire_ms.is_some());
        Ok(KeyEntry {
            db: self.db,
            key,
            expire_ms,
            value,
        })
    }

    async fn end(&mut self) -> Result<()> {
        let computed = self.crc;
        if self.summary.version >= 5 {
            let stored = u64::from_le_bytes(self.array().await?);
            self.summary.checksum = match stored {
                0 => Checksum::Disabled,
                s if s == computed => Checksum::Verified(s),
                s => {
                    return Err(RdbError::new(
                        RdbErrorKind::Checksum,
                        format!(
                            "checksum mismatch: the file's CRC64 is {s:#018x} but its first {} bytes give {computed:#018x}; the snapshot is damaged",
                            self.offset - 8
                        ),
                    ))
                }
            };
        }
        let trailing = self
            .input
            .fill_buf()
            .await
            .map_err(|e| RdbError::io(RdbErrorKind::Io, "reading the snapshot", e))?
            .len();
        if trailing > 0 {
            return Err(RdbError::at(
                RdbErrorKind::Corrupt,
                self.offset,
                "data after the end of the snapshot",
            ));
        }
        self.summary.size = self.offset;
        self.finished = true;
        Ok(())
    }

    async fn module_aux(&mut self, at: u64) -> Result<()> {
        self.length().await?; // the module id
        let when_opcode = self.length().await?;
        if when_opcode != MODULE_UINT {
            return Err(RdbError::at(
                RdbErrorKind::Corrupt,
                at,
                format!(
                    "module aux record with 'when' opcode {when_opcode} instead of {MODULE_UINT}"
                ),
            ));
        }
        self.length().await?; // when
        self.skip_module_value().await?;
        self.summary.module_aux += 1;
        Ok(())
    }

    async fn skip_value(&mut self, value_type: u8) -> Result<()> {
        match value_type {
            // A string; the single-blob encodings (zipmap, ziplists, intset, listpacks).
            0 | 9..=13 | 16 | 17 | 20 | 23 => self.skip_string().await,
            // A linked list or a set: strings; quicklist: ziplists.
            1 | 2 | 14 => {
                for _ in 0..self.length().await? {
                    self.skip_string().await?;
                }
                Ok(())
            }
            3 => {
                for _ in 0..self.length().await? {
                    self.skip_string().await?;
                    self.skip_text_double().await?;
                }
                Ok(())
            }
            4 => {
                for _ in 0..self.length().await? {
                    self.skip_string().await?;
                    self.skip_string().await?;
                }
                Ok(())
            }
            5 => {
                for _ in 0..self.length().await? {
                    self.skip_string().await?;
                    self.skip(8).await?;
                }
                Ok(())
            }
            6 => Err(RdbError::at(
                RdbErrorKind::Unsupported,
                self.offset,
                "a module value in the pre-release format (type 6) cannot be read without its module",
            )),
            7 => {
                self.length().await?; // the module id
                self.skip_module_value().await
            }
            // Quicklist 2: (container kind, listpack or plain node) pairs.
            18 => {
                for _ in 0..self.length().await? {
                    self.length().await?;
                    self.skip_string().await?;
                }
                Ok(())
            }
            15 | 19 | 21 => self.skip_stream(value_type).await,
            // Hashes with field TTLs (Redis 7.4): [min expiry], then (ttl, field, value).
            22 | 24 => {
                if value_type == 24 {
                    self.skip(8).await?;
                }
                for _ in 0..self.length().await? {
                    self.length().await?;
                    self.skip_string().await?;
                    self.skip_string().await?;
                }
                Ok(())
            }
            25 => {
                self.skip(8).await?;
                self.skip_string().await
            }
            other => Err(RdbError::at(
                RdbErrorKind::Unsupported,
                self.offset,
                format!("value type {other} is not known to this reader (RDB versions up to {MAX_VERSION})"),
            )),
        }
    }

    async fn skip_stream(&mut self, value_type: u8) -> Result<()> {
        let v2 = value_type >= 19;
        let v3 = value_type >= 21;
        for _ in 0..self.length().await? {
            self.skip_string().await?; // the node key (a stream ID)
            self.skip_string().await?; // the listpack
        }
        // Length, last ID; v2: first ID, max deleted ID, entries added.
        let counters = if v2 { 8 } else { 3 };
        for _ in 0..counters {
            self.length().await?;
        }
        for _ in 0..self.length().await? {
            self.skip_string().await?; // the group name
            self.length().await?; // last delivered ID
            self.length().await?;
            if v2 {
                self.length().await?; // entries read
            }
            for _ in 0..self.length().await? {
                self.skip(16 + 8).await?; // the entry ID and the delivery time
                self.length().await?; // the delivery count
            }
            for _ in 0..self.length().await? {
                self.skip_string().await?; // the consumer name
                self.skip(if v3 { 16 } else { 8 }).await?; // seen (and active) time
                for _ in 0..self.length().await? {
                    self.skip(16).await?;
                }
            }
        }
        Ok(())
    }

    async fn skip_module_value(&mut self) -> Result<()> {
        loop {
            let at = self.offset;
            match self.length().await? {
                MODULE_EOF => return Ok(()),
                MODULE_SINT | MODULE_UINT => {
                    self.length().await?;
                }
                MODULE_FLOAT => self.skip(4).await?,
                MODULE_DOUBLE => self.skip(8).await?,
                MODULE_STRING => self.skip_string().await?,
                other => {
                    return Err(RdbError::at(
                        RdbErrorKind::Corrupt,
                        at,
                        format!("unknown module value opcode {other}"),
                    ))
                }
            }
        }
    }

    /// A score of the old sorted-set type: a length byte, or 253–255 for NaN and ±inf.
    async fn skip_text_double(&mut self) -> Result<()> {
        match self.u8().await? {
            253..=255 => Ok(()),
            n => self.skip(u64::from(n)).await,
        }
    }

    async fn length_or_encoding(&mut self) -> Result<Len> {
        let at = self.offset;
        let first = self.u8().await?;
        Ok(match first >> 6 {
            0 => Len::Plain(u64::from(first & 0x3f)),
            1 => Len::Plain((u64::from(first & 0x3f) << 8) | u64::from(self.u8().await?)),
            3 => Len::Encoded(first & 0x3f),
            _ => match first {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.array().await?))),
                0x81 => Len::Plain(u64::from_be_bytes(self.array().await?)),
                other => {
                    return Err(RdbError::at(
                        RdbErrorKind::Corrupt,
                        at,
                        format!("invalid length byte {other:#04x}"),
                    ))
                }
            },
        })
    }

    async fn length(&mut self) -> Result<u64> {
        let at = self.offset;
        match self.length_or_encoding().await? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(e) => Err(RdbError::at(
                RdbErrorKind::Corrupt,
                at,
                format!("expected a length, found string encoding {e}"),
            )),
        }
    }

    async fn skip_string(&mut self) -> Result<()> {
        let at = self.offset;
        match self.length_or_encoding().await? {
            Len::Plain(n) => self.skip(n).await,
            Len::Encoded(ENC_INT8) => self.skip(1).await,
            Len::Encoded(ENC_INT16) => self.skip(2).await,
            Len::Encoded(ENC_INT32) => self.skip(4).await,
            Len::Encoded(ENC_LZF) => {
                let compressed = self.length().await?;
                self.length().await?;
                self.skip(compressed).await
            }
            Len::Encoded(e) => Err(unknown_encoding(at, e)),
        }
    }

    /// A string's content: integers as decimal text, LZF decompressed.
    async fn string(&mut self) -> Result<Vec<u8>> {
        let at = self.offset;
        match self.length_or_encoding().await? {
            Len::Plain(n) => self.bytes(n).await,
            Len::Encoded(ENC_INT8) => Ok(i8::from_le_bytes(self.array().await?)
                .to_string()
                .into_bytes()),
            Len::Encoded(ENC_INT16) => Ok(i16::from_le_bytes(self.array().await?)
                .to_string()
                .into_bytes()),
            Len::Encoded(ENC_INT32) => Ok(i32::from_le_bytes(self.array().await?)
                .to_string()
                .into_bytes()),
            Len::Encoded(ENC_LZF) => {
                let compressed = self.length().await?;
                let len = self.length().await?;
                let data = self.bytes(compressed).await?;
                usize::try_from(len)
                    .ok()
                    .and_then(|len| crate::lzf::decompress(&data, len))
                    .ok_or_else(|| {
                        RdbError::at(
                            RdbErrorKind::Corrupt,
                            at,
                            "LZF-compressed string does not decompress",
                        )
                    })
            }
            Len::Encoded(e) => Err(unknown_encoding(at, e)),
        }
    }

    async fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>().await?[0])
    }

    async fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        let mut filled = 0;
        self.take(N as u64, |piece| {
            out[filled..filled + piece.len()].copy_from_slice(piece);
            filled += piece.len();
        })
        .await?;
        Ok(out)
    }

    async fn bytes(&mut self, n: u64) -> Result<Vec<u8>> {
        // Capacity grows with the data actually read, not with a length that may be damaged.
        let mut out = Vec::with_capacity(usize::try_from(n.min(1 << 20)).unwrap_or(0));
        self.take(n, |piece| out.extend_from_slice(piece)).await?;
        Ok(out)
    }

    async fn skip(&mut self, n: u64) -> Result<()> {
        self.take(n, |_| {}).await
    }

    /// Reads `n` bytes, feeding the checksum, the value being captured, and `f`.
    async fn take(&mut self, n: u64, mut f: impl FnMut(&[u8])) -> Result<()> {
        let mut left = n;
        while left > 0 {
            let buf = match self.input.fill_buf().await {
                Ok(buf) => buf,
                Err(e) => {
                    let what = format!("reading the snapshot at byte {}", self.offset);
                    return Err(RdbError::io(RdbErrorKind::Io, what, e));
                }
            };
            if buf.is_empty() {
                return Err(RdbError::at(
                    RdbErrorKind::Truncated,
                    self.offset,
                    format!(
                        "the snapshot is truncated: it ends {left} bytes short of this element"
                    ),
                ));
            }
            let k = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let piece = &buf[..k];
            self.crc = crc64(self.crc, piece);
            if let Some(value) = &mut self.capture {
                value.extend_from_slice(piece);
            }
            f(piece);
            self.input.consume(k);
            self.offset += k as u64;
            left -= k as u64;
        }
        Ok(())
    }
}

fn is_object_type(t: u8) -> bool {
    t <= 7 || (9..=25).contains(&t)
}

fn unknown_encoding(at: u64, e: u8) -> RdbError {
    RdbError::at(
        RdbErrorKind::Corrupt,
        at,
        format!("unknown string encoding {e}"),
    )
}

/// Reads a whole snapshot without keeping values: the structure of every
/// key is walked and the checksum verified.
pub async fn check<R: AsyncRead + Unpin>(input: R) -> Result<RdbSummary> {
    let mut reader = RdbReader::new(input).await?;
    reader.finish().await?;
    Ok(reader.into_summary())
}

/// Opens the snapshot file `path`; every error names the file.
pub async fn open_file(path: &Path) -> Result<RdbReader<tokio::fs::File>> {
    let file = tokio::fs::File::open(path).await.map_err(|e| {
        RdbError::io(
            RdbErrorKind::Io,
            format!("cannot open {}", path.display()),
            e,
        )
    })?;
    RdbReader::with_name(file, path.display().to_string()).await
}

/// [`check`] for a file; every error names the file.
pub async fn check_file(path: &Path) -> Result<RdbSummary> {
    let mut reader = open_file(path).await?;
    reader.finish().await?;
    Ok(reader.into_summary())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-10 file: aux, one database, an int-encoded string key with an
    /// expiry, a raw string, then EOF and the CRC64.
    fn sample() -> Vec<u8> {
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(&[OP_AUX, 9]);
        f.extend_from_slice(b"redis-ver");
        f.extend_from_slice(&[6]);
        f.extend_from_slice(b"7.0.15");
        f.extend_from_slice(&[OP_SELECTDB, 3, OP_RESIZEDB, 2, 1]);
        f.push(OP_EXPIRETIME_MS);
        f.extend_from_slice(&1_900_000_000_000_i64.to_le_bytes());
        f.extend_from_slice(&[0, 0xc1, 0x39, 0x30, 0xc0, 7]); // key 12345 = int 7
        f.extend_from_slice(&[0, 1, b'k', 3, b'a', 0, 0xff]); // k = "a\0\xff"
        f.push(OP_EOF);
        let crc = crc64(0, &f);
        f.extend_from_slice(&crc.to_le_bytes());
        f
    }

    #[tokio::test]
    async fn reads_keys_and_verifies() {
        let file = sample();
        let mut r = RdbReader::new(&file[..]).await.unwrap();
        let first = r.next_key().await.unwrap().unwrap();
        assert_eq!((first.db, &first.key[..]), (3, &b"12345"[..]));
        assert_eq!(first.expire_ms, Some(1_900_000_000_000));
        assert_eq!(first.value, [0, 0xc0, 7]);
        let second = r.next_key().await.unwrap().unwrap();
        assert_eq!(second.value, [0, 3, b'a', 0, 0xff]);
        assert!(r.next_key().await.unwrap().is_none());
        let s = r.into_summary();
        assert_eq!(s.redis_version(), Some("7.0.15"));
        assert_eq!(
            s.databases[&3],
            DbSummary {
                keys: 2,
                expires: 1
            }
        );
        assert!(matches!(s.checksum, Checksum::Verified(_)));
        assert_eq!(s.size, file.len() as u64);
    }

    #[tokio::test]
    async fn damage_is_reported() {
        let file = sample();
        let mut bad = file.clone();
        bad[file.len() - 12] ^= 0x20; // inside the last value
        let e = check(&bad[..]).await.unwrap_err();
        assert_eq!(e.kind(), RdbErrorKind::Checksum, "{e}");
        let e = check(&file[..file.len() - 3]).await.unwrap_err();
        assert_eq!(e.kind(), RdbErrorKind::Truncated, "{e}");
        let e = check(&file[..46]).await.unwrap_err();
        assert_eq!(e.kind(), RdbErrorKind::Truncated, "{e}");
        assert!(e.to_string().contains("key \"12345\""), "{e}");
        let e = check(&b"REDIS0013"[..]).await.unwrap_err();
        assert_eq!(e.kind(), RdbErrorKind::Unsupported, "{e}");
        let e = check(&b"PK\x03\x04 zip"[..]).await.unwrap_err();
        assert_eq!(e.kind(), RdbErrorKind::Corrupt, "{e}");
    }

    #[test]
    fn dump_payload_layout() {
        let entry = KeyEntry {
            db: 0,
            key: b"k".to_vec(),
            expire_ms: None,
            value: vec![0, 1, b'v'],
        };
        let p = entry.dump_payload(10);
        assert_eq!(&p[..5], &[0, 1, b'v', 10, 0]);
        assert_eq!(p[5..], crc64(0, &p[..5]).to_le_bytes());
    }
}
