//! Restoring a snapshot into a running Redis key by key: `RESTORE key ttl
//! payload ABSTTL` with the value as a `DUMP` payload, `SELECT` per
//! database, pipelined in batches; keys already expired are skipped;
//! function libraries are loaded at the end with `FUNCTION LOAD REPLACE`.

use crate::client::{self, encode_command, Info, RedisConn, RedisUrl, Reply};
use crate::error::{RdbError, RdbErrorKind, Result};
use crate::reader::{open_file, KeyEntry, RdbReader};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncRead;

/// A batch is sent once its commands reach this many bytes, whatever their number.
const BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Settings of [`restore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreOptions {
    /// `FLUSHALL` a target that holds keys instead of refusing it.
    pub flush: bool,
    /// Commands per pipelined batch.
    pub batch: usize,
    /// Connecting, and waiting for each batch's replies.
    pub timeout: Duration,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            flush: false,
            batch: 500,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What [`restore`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Keys restored.
    pub restored: u64,
    /// Keys skipped because they had expired by the time of the restore.
    pub expired: u64,
    /// Keys restored per database number.
    pub databases: BTreeMap<u64, u64>,
    /// Function libraries loaded.
    pub functions: u64,
    /// Whether the target was flushed first.
    pub flushed: bool,
}

/// Restores every key `reader` yields into the server at `url`. The target
/// must hold no keys unless `options.flush` is set, and must read the
/// snapshot's RDB version. Every error names the server (password masked)
/// and, for a value, the key.
pub async fn restore<R: AsyncRead + Unpin>(
    reader: &mut RdbReader<R>,
    url: &RedisUrl,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    restore_into(reader, url, options)
        .await
        .map_err(|e| e.context(url))
}

/// [`restore`] of the snapshot file `path`.
pub async fn restore_file(
    path: &Path,
    url: &RedisUrl,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let mut reader = open_file(path).await?;
    restore(&mut reader, url, options).await
}

async fn restore_into<R: AsyncRead + Unpin>(
    reader: &mut RdbReader<R>,
    url: &RedisUrl,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let mut conn = client::open_authenticated(url, options.timeout).await?;
    let info = conn
        .info()
        .await
        .map_err(|e| e.context("reading INFO (an ACL user needs +info)"))?;
    let target = Target::from_info(&info);
    target.check_reads(reader.version(), reader.summary().redis_version())?;
    let mut report = RestoreReport::default();
    let used = target.used_databases();
    if !used.is_empty() {
        if !options.flush {
            return Err(RdbError::new(
                RdbErrorKind::NotEmpty,
                format!(
                    "the target is not empty ({}); restoring needs an empty server, or ask to flush it (FLUSHALL) first",
                    used.join(", ")
                ),
            ));
        }
        expect_ok(conn.command(&[b"FLUSHALL"]).await?, "FLUSHALL")?;
        report.flushed = true;
    }
    let mut batch = Batch::new(reader.version(), target);
    while let Some(entry) = reader.next_key().await? {
        if entry.expire_ms.is_some_and(|at| at <= now_ms()) {
            report.expired += 1;
            continue;
        }
        batch.add(&entry);
        *report.databases.entry(entry.db).or_default() += 1;
        report.restored += 1;
        if batch.pending.len() >= options.batch.max(1) || batch.buf.len() >= BATCH_BYTES {
            batch.run(&mut conn, options.timeout).await?;
        }
    }
    batch.run(&mut conn, options.timeout).await?;
    for code in reader.functions() {
        let reply = conn
            .command(&[b"FUNCTION", b"LOAD", b"REPLACE", code])
            .await?;
        expect_ok(reply, "FUNCTION LOAD")?;
        report.functions += 1;
    }
    Ok(report)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn expect_ok(reply: Reply, command: &str) -> Result<()> {
    match reply.error() {
        None => Ok(()),
        Some(e) => Err(RdbError::new(
            RdbErrorKind::Query,
            format!("{command} failed: {e}"),
        )),
    }
}

/// What the target server is, from its `INFO`.
#[derive(Debug, Clone)]
struct Target {
    version: String,
    /// The newest RDB version it reads, when its version is known.
    reads: Option<u32>,
    keyspace: BTreeMap<String, String>,
}

impl Target {
    fn from_info(info: &Info) -> Target {
        let version = info.get("redis_version").unwrap_or("unknown").to_owned();
        Target {
            reads: rdb_version_read_by(&version),
            version,
            keyspace: info.sections.get("keyspace").cloned().unwrap_or_default(),
        }
    }

    /// Refuses a snapshot newer than the target reads (and targets without `RESTORE … ABSTTL`).
    fn check_reads(&self, rdb_version: u32, written_by: Option<&str>) -> Result<()> {
        let Some(reads) = self.reads else {
            return Ok(());
        };
        let by = written_by.map_or(String::new(), |v| format!(", written by Redis {v}"));
        if reads < 9 {
            return Err(RdbError::new(
                RdbErrorKind::Unsupported,
                format!(
                    "the target runs Redis {}; restoring with TTLs needs Redis 5.0 or newer (RESTORE … ABSTTL)",
                    self.version
                ),
            ));
        }
        if rdb_version > reads {
            return Err(RdbError::new(
                RdbErrorKind::Unsupported,
                format!(
                    "the snapshot is RDB version {rdb_version}{by}, but the target runs Redis {}, which reads RDB versions up to {reads}; restore into Redis {} or newer",
                    self.version,
                    redis_reading(rdb_version)
                ),
            ));
        }
        Ok(())
    }

    /// `db0 has 3 keys`-style descriptions of the databases holding keys.
    fn used_databases(&self) -> Vec<String> {
        self.keyspace
            .iter()
            .filter_map(|(db, v)| {
                let keys = v
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("keys="))
                    .and_then(|n| n.parse::<u64>().ok())?;
                (keys > 0).then(|| format!("{db} has {keys} keys"))
            })
            .collect()
    }
}

/// The newest RDB version a Redis version reads (`RDB_VERSION` in its rdb.h).
fn rdb_version_read_by(redis_version: &str) -> Option<u32> {
    let mut parts = redis_version.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    Some(match (major, minor) {
        (0..=1, _) | (2, 0..=5) => 4,
        (2, _) | (3, 0..=1) => 6,
        (3, _) => 7,
        (4, _) => 8,
        (5 | 6, _) => 9,
        (7, 0..=1) => 10,
        (7, 2..=3) => 11,
        _ => 12,
    })
}

/// The first Redis version that reads an RDB version.
fn redis_reading(rdb_version: u32) -> &'static str {
    match rdb_version {
        0..=6 => "2.6",
        7 => "3.2",
        8 => "4.0",
        9 => "5.0",
        10 => "7.0",
        11 => "7.2",
        _ => "7.4",
    }
}

/// A command sent in a batch, for naming it when its reply is an error.
enum Pending {
    Select(u64),
    Restore(String),
}

/// Pipelined commands not yet sent.
struct Batch {
    rdb_version: u32,
    target: Target,
    db: Option<u64>,
    buf: Vec<u8>,
    pending: Vec<Pending>,
}

impl Batch {
    fn new(rdb_version: u32, target: Target) -> Batch {
        Batch {
            rdb_version,
            target,
            db: None,
            buf: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn add(&mut self, entry: &KeyEntry) {
        if self.db != Some(entry.db) {
            encode_command(&mut self.buf, &[b"SELECT", entry.db.to_string().as_bytes()]);
            self.pending.push(Pending::Select(entry.db));
            self.db = Some(entry.db);
        }
        let version = u16::try_from(self.rdb_version).unwrap_or(u16::MAX);
        let payload = entry.dump_payload(version);
        let ttl = entry.expire_ms.unwrap_or(0).to_string();
        encode_command(
            &mut self.buf,
            &[b"RESTORE", &entry.key, ttl.as_bytes(), &payload, b"ABSTTL"],
        );
        self.pending.push(Pending::Restore(format!(
            "key \"{}\" (database {})",
            entry.key_display(),
            entry.db
        )));
    }

    /// Sends the batch and checks every reply.
    async fn run(&mut self, conn: &mut RedisConn, timeout: Duration) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let exchange = async {
            conn.send(&self.buf).await?;
            let mut replies = Vec::with_capacity(self.pending.len());
            for _ in 0..self.pending.len() {
                replies.push(conn.read_reply().await?);
            }
            Ok::<_, RdbError>(replies)
        };
        let replies = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                RdbError::new(
                    RdbErrorKind::Unreachable,
                    format!(
                        "no answer to a batch of RESTORE commands within {}s",
                        timeout.as_secs_f64()
                    ),
                )
            })??;
        for (pending, reply) in self.pending.iter().zip(&replies) {
            if let Some(line) = reply.error() {
                return Err(self.failure(pending, line));
            }
        }
        self.buf.clear();
        self.pending.clear();
        Ok(())
    }

    fn failure(&self, pending: &Pending, line: &str) -> RdbError {
        match pending {
            Pending::Select(db) => {
                let hint = if line.contains("out of range") {
                    " (the target has fewer databases than the snapshot uses: raise its `databases` setting)"
                } else {
                    ""
                };
                RdbError::new(RdbErrorKind::Query, format!("SELECT {db} failed: {line}{hint}"))
            }
            Pending::Restore(key) if line.starts_with("BUSYKEY") => RdbError::new(
                RdbErrorKind::NotEmpty,
                format!("{key}: already exists on the target (was it written to during the restore?): {line}"),
            ),
            Pending::Restore(key) if line.contains("payload version") => RdbError::new(
                RdbErrorKind::Unsupported,
                format!(
                    "{key}: the target (Redis {}) refused a value of RDB version {}: {line}",
                    self.target.version, self.rdb_version
                ),
            ),
            Pending::Restore(key) => {
                RdbError::new(RdbErrorKind::Query, format!("{key}: RESTORE failed: {line}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read() {
        assert_eq!(rdb_version_read_by("7.0.15"), Some(10));
        assert_eq!(rdb_version_read_by("7.2.4"), Some(11));
        assert_eq!(rdb_version_read_by("7.4.1"), Some(12));
        assert_eq!(rdb_version_read_by("6.2.14"), Some(9));
        assert_eq!(rdb_version_read_by("8.0.0"), Some(12));
        assert_eq!(rdb_version_read_by("x"), None);
        assert_eq!(redis_reading(12), "7.4");
    }

    #[test]
    fn target_checks() {
        let info = Info::parse(
            "# Server\r\nredis_version:7.0.15\r\n# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\ndb2:keys=0,expires=0,avg_ttl=0\r\n",
        );
        let t = Target::from_info(&info);
        assert_eq!(t.used_databases(), ["db0 has 3 keys"]);
        assert!(t.check_reads(10, None).is_ok());
        let e = t.check_reads(12, Some("7.4.0")).unwrap_err();
        assert_eq!(e.kind(), RdbErrorKind::Unsupported);
        assert!(e.to_string().contains("RDB version 12"), "{e}");
        assert!(e.to_string().contains("up to 10"), "{e}");
    }
}
