//! The streaming passes: a client program's output → zstd (multithreaded)
//! → age (optional) → the destination's upload, and back: a download → age
//! → zstd → a file or a program's input. One pass, bounded memory.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::encrypt::{Decryption, Encryption};
use crate::error::{BackupError, BackupErrorKind, Result};
use crate::list::hex;
use crate::manifest::FileEntry;
use sha2::{Digest, Sha256};

/// The zstd level of every file unless the backup asks for another
/// ([`BackupOptions::compress_level`](crate::BackupOptions::compress_level)).
pub const DEFAULT_COMPRESS_LEVEL: i32 = 3;

/// The zstd levels a backup may ask for: 1 (fastest) to 19 (smallest).
pub const COMPRESS_LEVELS: std::ops::RangeInclusive<i32> = 1..=19;

/// How the stored bytes are made from the plain ones: zstd at `level`,
/// then age when `encryption` is given.
#[derive(Debug, Clone)]
pub struct Encoding {
    /// The zstd level.
    pub level: i32,
    /// Encrypt with age.
    pub encryption: Option<Encryption>,
}

/// Bytes handed to the uploader per message.
pub(crate) const CHUNK: usize = 1 << 20;

/// A running client program whose stdout is the data to store, with its
/// stderr collected by a thread.
pub(crate) struct Producer {
    /// What to call it in messages (`pg_dump of database "app"`).
    pub what: String,
    /// The child, with stdout piped.
    pub child: Child,
    /// Its stderr, read to the end (taken once the child has exited).
    pub stderr: Option<JoinHandle<String>>,
    /// Where its stderr is left once it has exited successfully, for
    /// callers that read what it reported (`pg_basebackup`'s WAL positions).
    pub transcript: Option<Arc<Mutex<String>>>,
}

impl Producer {
    /// Starts `command` with stdout and stderr piped.
    pub(crate) fn spawn(what: String, mut command: std::process::Command) -> Result<Producer> {
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().map_err(|e| {
            BackupError::new(BackupErrorKind::Tool, format!("starting {what}")).caused_by(e)
        })?;
        let stderr = collect_stderr(child.stderr.take());
        Ok(Producer {
            what,
            child,
            stderr: Some(stderr),
            transcript: None,
        })
    }
}

/// A producer dropped before [`pump`] waited for it (an error elsewhere
/// ended the backup) is killed and reaped, so no `pg_dump` outlives the
/// backup it was part of, nor stays behind as a zombie.
impl Drop for Producer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads a child's stderr to the end on a thread.
pub(crate) fn collect_stderr(stderr: Option<std::process::ChildStderr>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut text);
        }
        text
    })
}

/// The error for a program that exited with `status` and wrote `stderr`.
pub(crate) fn program_failed(what: &str, status: ExitStatus, stderr: &str) -> BackupError {
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = tail.len().saturating_sub(6);
    let message = format!("{what} failed ({status}): {}", tail[start..].join(" | "));
    if reports_disk_full(stderr) {
        let advice = crate::error::DISK_FULL_ADVICE;
        return BackupError::new(BackupErrorKind::NoSpace, format!("{message} — {advice}"));
    }
    BackupError::new(BackupErrorKind::Tool, message)
}

/// Whether a PostgreSQL tool's own error line (not a `CONTEXT:` or
/// `DETAIL:` line echoing row data) says a disk is full.
fn reports_disk_full(stderr: &str) -> bool {
    stderr.lines().any(|line| {
        let line = line.trim_start();
        let is_error = line.starts_with("ERROR:")
            || line.starts_with("FATAL:")
            || line
                .split_once(": error: ")
                .is_some_and(|(tool, _)| !tool.contains(' ') && tool.starts_with("pg_"))
            || line.starts_with("psql:");
        is_error && line.contains("No space left on device")
    })
}

/// Where the pump thread leaves its precise error, so the caller can report
/// it instead of the uploader's generic "reading the data failed".
pub(crate) type ErrorSlot = Arc<Mutex<Option<BackupError>>>;

/// Compresses (and encrypts) `producer`'s output on a blocking thread.
/// Returns the stored bytes as an [`AsyncRead`] for the upload, and the
/// thread, which ends once the producer has exited; the reader fails
/// (before its end) when the producer fails, so nothing incomplete is stored.
pub(crate) fn encode(
    producer: Producer,
    encoding: Encoding,
    slot: ErrorSlot,
) -> (
    impl AsyncRead + Send + Unpin + 'static,
    tokio::task::JoinHandle<()>,
) {
    encode_with(slot, move |out| pump(producer, &encoding, out))
}

/// [`encode`] of any byte source, e.g. a download bridged with [`bridge`].
/// The source ending early is not detected here: the caller, who feeds
/// it, must fail the backup then.
pub(crate) fn encode_reader(
    input: impl Read + Send + 'static,
    what: String,
    encoding: Encoding,
    slot: ErrorSlot,
) -> (
    impl AsyncRead + Send + Unpin + 'static,
    tokio::task::JoinHandle<()>,
) {
    encode_with(slot, move |out| {
        compress(input, &encoding, out).map_err(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                BackupError::new(BackupErrorKind::Io, UPLOAD_STOPPED)
            } else {
                BackupError::io(format!("compressing {what}"), e)
            }
        })
    })
}

/// Runs `pump` on a blocking thread, its output going to the returned
/// reader; a pump error lands in `slot` and fails the reader.
fn encode_with(
    slot: ErrorSlot,
    pump: impl FnOnce(ChannelWriter) -> Result<()> + Send + 'static,
) -> (
    impl AsyncRead + Send + Unpin + 'static,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let task = tokio::task::spawn_blocking(move || {
        let sender = ChannelWriter { tx: tx.clone() };
        if let Err(e) = pump(sender) {
            let message = crate::chain_text(&e);
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            let _ = tx.blocking_send(Err(io::Error::other(message)));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (StreamReader::new(stream), task)
}

fn pump(mut producer: Producer, encoding: &Encoding, out: ChannelWriter) -> Result<()> {
    let stdout = producer.child.stdout.take().expect("stdout is piped");
    let copied = compress(stdout, encoding, out);
    if copied.is_err() {
        // The upload stopped (or compression failed): stop the producer too.
        let _ = producer.child.kill();
    }
    let status = producer.child.wait().map_err(|e| {
        BackupError::new(
            BackupErrorKind::Tool,
            format!("waiting for {}", producer.what),
        )
        .caused_by(e)
    })?;
    let stderr = producer
        .stderr
        .take()
        .and_then(|t| t.join().ok())
        .unwrap_or_default();
    if let Err(e) = &copied {
        if e.kind() == io::ErrorKind::BrokenPipe {
            // The upload failed: its error is the one to report.
            return Err(BackupError::new(BackupErrorKind::Io, UPLOAD_STOPPED));
        }
    }
    if !status.success() {
        return Err(program_failed(&producer.what, status, &stderr));
    }
    if let Some(transcript) = &producer.transcript {
        *transcript.lock().unwrap_or_else(|p| p.into_inner()) = stderr;
    }
    copied.map_err(|e| {
        BackupError::new(
            BackupErrorKind::Io,
            format!("compressing the output of {}", producer.what),
        )
        .caused_by(e)
    })
}

/// The pump's error when the upload stopped first.
pub(crate) const UPLOAD_STOPPED: &str = "the upload stopped";

/// zstd at the encoding's level (one worker per core), then age when asked.
fn compress(mut input: impl Read, encoding: &Encoding, out: ChannelWriter) -> io::Result<()> {
    let out = BufWriter::with_capacity(CHUNK, out);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    match &encoding.encryption {
        None => {
            let mut z = zstd::Encoder::new(out, encoding.level)?;
            z.multithread(workers)?;
            io::copy(&mut input, &mut z)?;
            z.finish()?.flush()
        }
        Some(enc) => {
            let encryptor = enc
                .encryptor()
                .map_err(|e| io::Error::other(crate::chain_text(&e)))?;
            let mut z = zstd::Encoder::new(encryptor.wrap_output(out)?, encoding.level)?;
            z.multithread(workers)?;
            io::copy(&mut input, &mut z)?;
            z.finish()?.finish()?.flush()
        }
    }
}

/// Sends what is written to the uploader.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decrypts (when `decryption` is given) and decompresses `download` into
/// `out`, on the calling (blocking) thread; `download` must have been
/// bridged in the runtime ([`bridge`]). Returns the bytes written.
pub(crate) fn decode_into(
    download: SyncIoBridge<Box<dyn AsyncRead + Send + Unpin>>,
    decryption: Option<&Decryption>,
    out: &mut dyn Write,
    stored: &FileEntry,
) -> Result<u64> {
    let (mut z, hash) = decoder(download, decryption)?;
    let written = io::copy(&mut z, out).map_err(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            BackupError::new(BackupErrorKind::Tool, "the restore program stopped reading")
        } else {
            BackupError::io("decompressing", e)
        }
    })?;
    hash.check(stored)?;
    Ok(written)
}

/// The SHA-256 of the stored bytes a [`decoder`] has read, to compare
/// with the manifest once everything is read.
pub(crate) struct DownloadHash(Arc<Mutex<Sha256>>);

impl DownloadHash {
    /// An error unless the bytes read are `stored`'s (its SHA-256 in the
    /// manifest): a damaged file must not restore as if it were good.
    pub(crate) fn check(&self, stored: &FileEntry) -> Result<()> {
        let digest = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .finalize();
        if hex(&digest) == stored.sha256 {
            return Ok(());
        }
        Err(BackupError::new(
            BackupErrorKind::Integrity,
            format!(
                "{}: the downloaded file's SHA-256 differs from the manifest's: the backup is damaged \
                 (pgharbor backups verify names every damaged file)",
                stored.name
            ),
        ))
    }
}

/// Hashes what is read through it.
struct Hashing<R> {
    inner: R,
    hasher: Arc<Mutex<Sha256>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .update(&buf[..n]);
        Ok(n)
    }
}

/// The plain bytes of `download`: decrypted when `decryption` is given,
/// decompressed; read on a blocking thread. The stored bytes are hashed on
/// the way ([`DownloadHash::check`] once the reader is at its end).
pub(crate) fn decoder(
    download: SyncIoBridge<Box<dyn AsyncRead + Send + Unpin>>,
    decryption: Option<&Decryption>,
) -> Result<(Box<dyn Read + Send>, DownloadHash)> {
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let hashed = Hashing {
        inner: download,
        hasher: hasher.clone(),
    };
    let buffered = BufReader::with_capacity(CHUNK, hashed);
    let plain: Box<dyn Read + Send> = match decryption {
        Some(d) => d.decrypt(buffered)?,
        None => Box::new(buffered),
    };
    let z = zstd::Decoder::new(plain).map_err(|e| BackupError::io("starting zstd", e))?;
    Ok((Box::new(z), DownloadHash(hasher)))
}

/// The manifest's entry for `file`, the stored file a restore reads.
pub(crate) fn stored_file(manifest: &crate::manifest::Manifest, file: &str) -> Result<FileEntry> {
    manifest.file(file).cloned().ok_or_else(|| {
        BackupError::new(
            BackupErrorKind::Integrity,
            format!(
                "the manifest of backup {} lists no file {file}",
                manifest.id
            ),
        )
    })
}

/// A download made usable from a blocking thread; call inside the runtime.
pub(crate) fn bridge(
    reader: impl AsyncRead + Send + Unpin + 'static,
) -> SyncIoBridge<Box<dyn AsyncRead + Send + Unpin>> {
    SyncIoBridge::new(Box::new(reader) as Box<dyn AsyncRead + Send + Unpin>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_is_read_from_error_lines_and_not_from_echoed_rows() {
        let full = "pg_restore: error: could not execute query: ERROR:  could not extend file \"base/1/2\": No space left on device\nHINT:  Check free disk space.";
        assert!(reports_disk_full(full));
        assert!(reports_disk_full(
            "ERROR:  could not write to file \"x\": No space left on device"
        ));
        let echoed = "pg_restore: error: COPY failed for table \"notes\": ERROR:  invalid input\nCONTEXT:  COPY notes, line 3: \"No space left on device\"";
        assert!(!reports_disk_full(echoed));
    }
}
