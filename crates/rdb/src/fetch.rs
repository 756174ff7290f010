//! Fetching a snapshot over the network the way `redis-cli --rdb` does: the
//! replication handshake (`REPLCONF capa eof`, `SYNC`), then the RDB
//! payload in either framing — `$<length>` after a BGSAVE to disk, or
//! `$EOF:<mark>` … `<mark>` when the master streams it diskless — written to
//! an `AsyncWrite` piece by piece while its SHA-256 and size are computed.
//! The connection is closed right after the payload, before any replication
//! stream.

use crate::client::{self, read_line, RedisConn, RedisUrl, Stream};
use crate::error::{RdbError, RdbErrorKind, Result};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The size of the end-of-snapshot mark of a diskless transfer.
const EOF_MARK_LEN: usize = 40;

/// Timeouts of [`fetch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOptions {
    /// Connecting, TLS and `AUTH`.
    pub connect_timeout: Duration,
    /// The longest silence accepted once `SYNC` is sent. While the master
    /// runs its BGSAVE it sends a newline every second, so this only
    /// expires when the master is stuck or gone.
    pub idle_timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// How the master framed the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `$<length>`: the master saved to disk first.
    Sized,
    /// `$EOF:<mark>`: the master streamed it diskless (`repl-diskless-sync yes`).
    Diskless,
}

/// What [`fetch`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// The snapshot's size in bytes.
    pub bytes: u64,
    /// The snapshot's SHA-256.
    pub sha256: [u8; 32],
    /// How the master sent it.
    pub framing: Framing,
}

impl FetchReport {
    /// The SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Fetches an RDB snapshot from the server at `url` into `out`. Every error
/// names the server (its password masked).
pub async fn fetch<W: AsyncWrite + Unpin>(
    url: &RedisUrl,
    out: &mut W,
    options: &FetchOptions,
) -> Result<FetchReport> {
    fetch_from(url, out, options)
        .await
        .map_err(|e| e.context(url))
}

/// [`fetch`] into the file `path` (created `0600` whatever the umask — a
/// snapshot holds every key — or truncated, synced to disk); on failure the
/// partial file is removed.
pub async fn fetch_to_file(
    url: &RedisUrl,
    path: &Path,
    options: &FetchOptions,
) -> Result<FetchReport> {
    let io =
        |what: &str, e| RdbError::io(RdbErrorKind::Io, format!("{what} {}", path.display()), e);
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(|e| io("cannot create", e))?;
    // `mode` applies to a new file only: an existing one is made private
    // before a key is written into it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .await
        .map_err(|e| io("cannot make private", e))?;
    let fetched = fetch(url, &mut file, options).await;
    let synced = match &fetched {
        Ok(_) => file.sync_all().await.map_err(|e| io("cannot sync", e)),
        Err(_) => Ok(()),
    };
    if fetched.is_err() || synced.is_err() {
        drop(file);
        let _ = tokio::fs::remove_file(path).await;
    }
    synced?;
    fetched
}

async fn fetch_from<W: AsyncWrite + Unpin>(
    url: &RedisUrl,
    out: &mut W,
    options: &FetchOptions,
) -> Result<FetchReport> {
    let mut conn = client::open_authenticated(url, options.connect_timeout).await?;
    handshake(&mut conn).await?;
    let stream = conn.stream();
    let framing = payload_header(stream, options.idle_timeout).await?;
    let mut sink = Sink {
        out,
        sha: Sha256::new(),
        bytes: 0,
    };
    match &framing {
        Header::Sized(len) => copy_sized(stream, &mut sink, *len, options.idle_timeout).await?,
        Header::Diskless(mark) => {
            copy_until_mark(stream, &mut sink, mark, options.idle_timeout).await?
        }
    }
    sink.out
        .flush()
        .await
        .map_err(|e| RdbError::io(RdbErrorKind::Io, "writing the snapshot", e))?;
    Ok(FetchReport {
        bytes: sink.bytes,
        sha256: sink.sha.finalize().into(),
        framing: match framing {
            Header::Sized(_) => Framing::Sized,
            Header::Diskless(_) => Framing::Diskless,
        },
    })
}

/// Declares the capabilities of `redis-cli --rdb` and sends `SYNC`.
async fn handshake(conn: &mut RedisConn) -> Result<()> {
    let reply = conn
        .command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])
        .await?;
    if let Some(line) = reply.error() {
        return Err(refusal("REPLCONF", line));
    }
    // Redis 7+: a replica that only wants the snapshot, not the stream after
    // it. Older servers answer with an error, which changes nothing.
    conn.command(&[b"REPLCONF", b"rdb-only", b"1"]).await?;
    let mut sync = Vec::new();
    client::encode_command(&mut sync, &[b"SYNC"]);
    conn.send(&sync).await
}

/// The error for a refused replication command, saying what is needed.
fn refusal(command: &str, line: &str) -> RdbError {
    let refused = |m: String| RdbError::new(RdbErrorKind::Refused, m);
    if line.starts_with("NOAUTH") {
        refused(format!(
            "{command} refused: {line}; the server needs a password: put it in the URL (redis://:PASSWORD@host or redis://USER:PASSWORD@host)"
        ))
    } else if line.starts_with("NOPERM") {
        refused(format!(
            "{command} refused: {line}; fetching a snapshot needs an ACL user allowed to run REPLCONF, SYNC and PSYNC (ACL SETUSER <user> +replconf +sync +psync, or +@admin)"
        ))
    } else if line.contains("replication")
        || line.contains("not allowed")
        || line.contains("unknown command")
    {
        refused(format!(
            "{command} refused: {line}; this server does not let clients replicate from it (managed Redis services often disable SYNC), so a snapshot cannot be fetched over the network"
        ))
    } else {
        RdbError::new(RdbErrorKind::Query, format!("{command} failed: {line}"))
    }
}

enum Header {
    Sized(u64),
    Diskless(Vec<u8>),
}

/// Reads the payload's `$` line, skipping the newlines the master sends as
/// keep-alives while its BGSAVE runs.
async fn payload_header(stream: &mut BufReader<Box<dyn Stream>>, idle: Duration) -> Result<Header> {
    loop {
        let line = tokio::time::timeout(idle, read_line(stream))
            .await
            .map_err(|_| silence(idle, "while waiting for the snapshot to start"))?
            .map_err(|e| {
                e.context("waiting for the snapshot (did the server's BGSAVE fail? see its log)")
            })?;
        if line.is_empty() || line.starts_with("+FULLRESYNC") || line.starts_with("+CONTINUE") {
            continue;
        }
        if let Some(error) = line.strip_prefix('-') {
            return Err(refusal("SYNC", error));
        }
        if let Some(mark) = line.strip_prefix("$EOF:") {
            if mark.len() != EOF_MARK_LEN {
                return Err(RdbError::new(
                    RdbErrorKind::Protocol,
                    format!(
                        "diskless snapshot with an end mark of {} bytes instead of {EOF_MARK_LEN}",
                        mark.len()
                    ),
                ));
            }
            return Ok(Header::Diskless(mark.as_bytes().to_vec()));
        }
        return match line.strip_prefix('$').and_then(|n| n.parse::<u64>().ok()) {
            Some(len) => Ok(Header::Sized(len)),
            None => Err(RdbError::new(
                RdbErrorKind::Protocol,
                format!(
                    "unexpected answer to SYNC: {:?}",
                    line.chars().take(60).collect::<String>()
                ),
            )),
        };
    }
}

fn silence(idle: Duration, when: &str) -> RdbError {
    RdbError::new(
        RdbErrorKind::Unreachable,
        format!("no data from the server for {}s {when}", idle.as_secs_f64()),
    )
}

/// Where the payload goes: the output, the hash and the byte count.
struct Sink<'a, W> {
    out: &'a mut W,
    sha: Sha256,
    bytes: u64,
}

impl<W: AsyncWrite + Unpin> Sink<'_, W> {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.sha.update(data);
        self.out
            .write_all(data)
            .await
            .map_err(|e| RdbError::io(RdbErrorKind::Io, "writing the snapshot", e))?;
        self.bytes += data.len() as u64;
        Ok(())
    }
}

/// The next buffered piece of the stream; empty when the server closed it.
async fn piece(stream: &mut BufReader<Box<dyn Stream>>, idle: Duration) -> Result<&[u8]> {
    tokio::time::timeout(idle, stream.fill_buf())
        .await
        .map_err(|_| silence(idle, "in the middle of the snapshot"))?
        .map_err(|e| {
            RdbError::io(
                RdbErrorKind::Unreachable,
                "connection lost during the snapshot transfer",
                e,
            )
        })
}

async fn copy_sized<W: AsyncWrite + Unpin>(
    stream: &mut BufReader<Box<dyn Stream>>,
    sink: &mut Sink<'_, W>,
    len: u64,
    idle: Duration,
) -> Result<()> {
    while sink.bytes < len {
        let buf = piece(stream, idle).await?;
        if buf.is_empty() {
            return Err(RdbError::new(
                RdbErrorKind::Unreachable,
                format!(
                    "the server closed the connection after {} of the snapshot's {len} bytes",
                    sink.bytes
                ),
            ));
        }
        let k = buf
            .len()
            .min(usize::try_from(len - sink.bytes).unwrap_or(usize::MAX));
        sink.write(&buf[..k]).await?;
        stream.consume(k);
    }
    Ok(())
}

/// Copies a diskless payload up to its end mark. The last `mark.len() - 1`
/// bytes seen are held back, as they may be the start of the mark.
async fn copy_until_mark<W: AsyncWrite + Unpin>(
    stream: &mut BufReader<Box<dyn Stream>>,
    sink: &mut Sink<'_, W>,
    mark: &[u8],
    idle: Duration,
) -> Result<()> {
    let finder = memchr::memmem::Finder::new(mark);
    let mut held: Vec<u8> = Vec::new();
    loop {
        let buf = piece(stream, idle).await?;
        if buf.is_empty() {
            return Err(RdbError::new(
                RdbErrorKind::Unreachable,
                format!(
                    "the server closed the connection after {} bytes of a diskless snapshot (repl-diskless-sync yes), before its end mark",
                    sink.bytes + held.len() as u64
                ),
            ));
        }
        let read = buf.len();
        let before = held.len();
        let mut window = std::mem::take(&mut held);
        window.extend_from_slice(buf);
        if let Some(at) = finder.find(&window) {
            sink.write(&window[..at]).await?;
            stream.consume(at + mark.len() - before);
            return Ok(());
        }
        let keep = window.len().min(mark.len() - 1);
        let (done, rest) = window.split_at(window.len() - keep);
        sink.write(done).await?;
        held = rest.to_vec();
        stream.consume(read);
    }
}
