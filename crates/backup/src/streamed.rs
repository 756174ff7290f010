//! The download side of a restore: the dump is downloaded, decrypted and
//! decompressed on a blocking thread and read as a custom archive while it
//! arrives ([`crate::archive`]).
//!
//! When the table of contents shows an archive whose data a streamed load
//! can take ([`Toc::streamable`]), the restore chooses: load the rows
//! straight from the stream over several connections ([`load_rows`]) while
//! `pg_restore` handles the schema from a file holding just the header and
//! TOC — no copy of the dump on disk, decompression overlapped with the
//! load — or have the whole dump written to a temporary file first (for
//! `clean` over an existing database, so that a backup that cannot be read
//! never costs it). Other archives always go to a file.

use std::path::Path;
use std::sync::mpsc as std_mpsc;

use bytes::Bytes;
use futures_util::SinkExt;
use pgharbor_conn::ConnConfig;
use tempfile::NamedTempFile;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Client;

use crate::archive::{ArchiveReader, Toc, BLOCK_DATA};
use crate::encrypt::Decryption;
use crate::error::{BackupError, BackupErrorKind, Result};
use crate::manifest::FileEntry;
use crate::pg;
use crate::stream::{bridge, decoder, CHUNK};

/// What the decoding thread found first.
pub(crate) enum Decoded {
    /// A streamable archive: its TOC, and a file holding the header and TOC
    /// (what `pg_restore` needs for the pre-data and post-data). The thread
    /// waits for a [`Decision`].
    Toc {
        toc: Toc,
        toc_file: NamedTempFile,
        decide: std_mpsc::Sender<Decision>,
    },
    /// Any other archive, already written whole to a temporary file.
    Whole(NamedTempFile),
}

/// What the decoding thread does after the TOC of a streamable archive.
pub(crate) enum Decision {
    /// Send the rows.
    Stream(mpsc::Sender<Piece>),
    /// Write the whole dump to a temporary file and return it.
    File,
}

/// A piece of the data section.
pub(crate) enum Piece {
    /// A table's rows begin (its dump id).
    Start(i64),
    /// Whole `COPY` text rows of the current table, about [`CHUNK`] bytes.
    Rows(Bytes),
    /// The current table's rows end.
    End,
}

/// A running decoding thread.
pub(crate) struct Decoding {
    /// What it found first.
    pub first: Decoded,
    /// The thread: the whole dump's file after [`Decision::File`].
    pub task: tokio::task::JoinHandle<Result<Option<NamedTempFile>>>,
}

/// Starts downloading the stored file `stored` of backup `id` and waits
/// for its TOC. Once everything is read, the file's SHA-256 is compared
/// with the manifest's (the thread ends with an error when it differs).
pub(crate) async fn start(
    dest: &pgharbor_objstore::Destination,
    id: &str,
    stored: FileEntry,
    decryption: Option<Decryption>,
    temp_dir: Option<&Path>,
) -> Result<Decoding> {
    let download = dest.get_stream(&format!("{id}/{}", stored.name)).await?;
    let bridged = bridge(download.into_reader());
    let temp_dir = temp_dir.map(Path::to_path_buf);
    let (first_tx, first_rx) = oneshot::channel();
    let task = tokio::task::spawn_blocking(move || {
        let decoded = decoder(bridged, decryption.as_ref()).and_then(|(plain, hash)| {
            match decode(plain, temp_dir.as_deref(), first_tx) {
                Ok(file) => hash.check(&stored).map(|()| file),
                // Loading failed and the rest was read: a damaged file is
                // the cause to report, if it is damaged.
                Err(e) if e.message() == STOPPED_LOADING => hash.check(&stored).and(Err(e)),
                Err(e) => Err(e),
            }
        });
        decoded.map_err(|e| match e.kind() {
            BackupErrorKind::Integrity => e,
            _ => e.context(format!("file {}", stored.name)),
        })
    });
    match first_rx.await {
        Ok(first) => Ok(Decoding { first, task }),
        Err(_) => Err(task_error(task.await)),
    }
}

/// The result of a finished decoding task: the whole dump's file after
/// [`Decision::File`], or its error.
pub(crate) fn finished(
    joined: std::result::Result<Result<Option<NamedTempFile>>, tokio::task::JoinError>,
) -> Result<Option<NamedTempFile>> {
    joined.map_err(|e| {
        BackupError::new(BackupErrorKind::Io, "the download task failed").caused_by(e)
    })?
}

/// The error a decoding thread ended with before saying anything.
fn task_error(
    joined: std::result::Result<Result<Option<NamedTempFile>>, tokio::task::JoinError>,
) -> BackupError {
    match finished(joined) {
        Err(e) => e,
        Ok(_) => BackupError::new(BackupErrorKind::Io, "the download ended early"),
    }
}

/// What the decoding thread ends with when the restore stopped taking
/// what it sends (it refused the target, or loading failed): never the
/// cause of a failure.
const STOPPED_READING: &str = "the restore stopped reading the dump";

/// What the decoding thread ends with when loading failed: it read the
/// rest of the download, so that its checksum can say whether the file
/// was damaged (garbage rows that broke a `COPY`).
const STOPPED_LOADING: &str = "the restore stopped reading the dump (loading failed)";

/// The restore stopped reading (see [`STOPPED_READING`]).
fn abandoned() -> BackupError {
    BackupError::new(BackupErrorKind::Io, STOPPED_READING)
}

/// Loading stopped; `archive` is read to its end (see [`STOPPED_LOADING`]).
fn loading_stopped(archive: &mut ArchiveReader<Box<dyn std::io::Read + Send>>) -> BackupError {
    match archive.drain() {
        Ok(_) => BackupError::new(BackupErrorKind::Io, STOPPED_LOADING),
        Err(_) => abandoned(),
    }
}

/// The cause of a failed streamed load, from what the decoding thread and
/// the loaders ended with: the thread's error (a damaged or truncated
/// download) unless it only saw the loaders stop.
pub(crate) fn load_result(
    decoded: Result<Option<NamedTempFile>>,
    loaded: Result<u64>,
) -> Result<u64> {
    match (decoded, loaded) {
        (Err(d), Err(l)) if d.message().contains(STOPPED_READING) => Err(l),
        (Err(d), _) => Err(d),
        (Ok(_), loaded) => loaded,
    }
}

/// The decoding thread.
fn decode(
    plain: Box<dyn std::io::Read + Send>,
    temp_dir: Option<&Path>,
    first: oneshot::Sender<Decoded>,
) -> Result<Option<NamedTempFile>> {
    // Rows are read a few bytes at a time (a length, then the row): a
    // buffer in front of zstd keeps those reads out of the decompressor.
    let plain: Box<dyn std::io::Read + Send> =
        Box::new(std::io::BufReader::with_capacity(CHUNK, plain));
    let mut archive = ArchiveReader::new(plain);
    let toc = archive
        .read_toc()
        .map_err(|e| BackupError::io("reading the dump", e))?;
    let head = archive.take_recorded();
    let Some(toc) = toc.filter(Toc::streamable) else {
        let file = whole_file(&head, archive.into_inner(), temp_dir)?;
        let _ = first.send(Decoded::Whole(file));
        return Ok(None);
    };
    let mut toc_file = crate::tempfiles::temp_file(temp_dir, "pgharbor-toc-", ".dump")?;
    std::io::Write::write_all(toc_file.as_file_mut(), &head)
        .map_err(|e| BackupError::io("writing the table of contents", e))?;
    let (decide, decision) = std_mpsc::channel();
    if first
        .send(Decoded::Toc {
            toc,
            toc_file,
            decide,
        })
        .is_err()
    {
        return Err(abandoned());
    }
    match decision.recv() {
        Ok(Decision::Stream(pieces)) => {
            send_rows(&mut archive, &pieces)?;
            Ok(None)
        }
        Ok(Decision::File) => whole_file(&head, archive.into_inner(), temp_dir).map(Some),
        Err(_) => Err(abandoned()),
    }
}

/// `head` and the rest of `rest` in a temporary file.
fn whole_file(
    head: &[u8],
    mut rest: Box<dyn std::io::Read + Send>,
    temp_dir: Option<&Path>,
) -> Result<NamedTempFile> {
    use std::io::Write as _;
    let mut file = crate::tempfiles::temp_file(temp_dir, "pgharbor-restore-", ".dump")?;
    let mut out = std::io::BufWriter::with_capacity(CHUNK, file.as_file_mut());
    out.write_all(head)
        .and_then(|()| std::io::copy(&mut rest, &mut out).map(|_| ()))
        .and_then(|()| out.flush())
        .map_err(|e| BackupError::io("writing the dump to a temporary file", e))?;
    drop(out);
    Ok(file)
}

/// Sends the data blocks as pieces of about [`CHUNK`] bytes of whole rows.
/// When the loaders stop taking them, reads the rest of the download
/// ([`loading_stopped`]).
fn send_rows(
    archive: &mut ArchiveReader<Box<dyn std::io::Read + Send>>,
    pieces: &mpsc::Sender<Piece>,
) -> Result<()> {
    let read = |e: std::io::Error| BackupError::io("reading the dump", e);
    let send = |piece: Piece| pieces.blocking_send(piece).is_ok();
    while let Some((kind, dump_id)) = archive.next_block().map_err(read)? {
        if kind != BLOCK_DATA {
            return Err(BackupError::new(
                BackupErrorKind::Integrity,
                format!("the dump has a data block of type {kind} (dump id {dump_id}) where table rows were expected"),
            ));
        }
        if !send(Piece::Start(dump_id)) {
            return Err(loading_stopped(archive));
        }
        let mut rows = Vec::with_capacity(CHUNK + 64 * 1024);
        while archive.next_chunk(&mut rows).map_err(read)? {
            if rows.len() >= CHUNK {
                let full = std::mem::replace(&mut rows, Vec::with_capacity(CHUNK + 64 * 1024));
                if !send(Piece::Rows(Bytes::from(full))) {
                    return Err(loading_stopped(archive));
                }
            }
        }
        if (!rows.is_empty() && !send(Piece::Rows(Bytes::from(rows)))) || !send(Piece::End) {
            return Err(loading_stopped(archive));
        }
    }
    Ok(())
}

/// A loader connection's instructions.
enum Work {
    /// Start `COPY … FROM STDIN` with this statement.
    Copy(String),
    /// Rows for the current `COPY`.
    Rows(Bytes),
    /// End the current `COPY`; the row count goes back.
    Finish(oneshot::Sender<u64>),
}

/// The session `pg_restore` sets up for loading data: the archive's
/// encoding, string and search-path settings (its `ENCODING`, `STDSTRINGS`
/// and `SEARCHPATH` entries), no timeouts, XML as content, no row security.
fn session_setup(toc: &Toc) -> String {
    let mut sql = String::from(
        "SET statement_timeout = 0; SET lock_timeout = 0; \
         SET idle_in_transaction_session_timeout = 0; SET xmloption = content; \
         SET row_security = off; SET check_function_bodies = false;\n",
    );
    for kind in ["ENCODING", "STDSTRINGS", "SEARCHPATH"] {
        for entry in toc.of_kind(kind) {
            if let Some(defn) = &entry.defn {
                sql.push_str(defn);
                sql.push('\n');
            }
        }
    }
    sql
}

/// One loader connection: runs `COPY`s as told until the channel closes,
/// then hands its client back.
async fn loader(client: Client, mut work: mpsc::Receiver<Work>) -> Result<Client> {
    let copy_error = |e: tokio_postgres::Error| BackupError::postgres("loading rows", e);
    while let Some(Work::Copy(statement)) = work.recv().await {
        let sink = client.copy_in(&statement).await.map_err(copy_error)?;
        futures_util::pin_mut!(sink);
        loop {
            match work.recv().await {
                Some(Work::Rows(rows)) => sink.send(rows).await.map_err(copy_error)?,
                Some(Work::Finish(done)) => {
                    let _ = done.send(sink.as_mut().finish().await.map_err(copy_error)?);
                    break;
                }
                Some(Work::Copy(_)) | None => {
                    return Err(BackupError::new(
                        BackupErrorKind::Io,
                        "a table's rows ended early",
                    ))
                }
            }
        }
    }
    Ok(client)
}

/// Loads every table's rows from `pieces` over `connections` connections
/// to `config` (each piece of a table goes to the next connection, so one
/// large table is loaded on all of them at once), then sets the sequences.
/// Returns the rows loaded.
pub(crate) async fn load_rows(
    config: &ConnConfig,
    toc: &Toc,
    mut pieces: mpsc::Receiver<Piece>,
    connections: usize,
) -> Result<u64> {
    let setup = session_setup(toc);
    let mut senders = Vec::new();
    let mut loaders = Vec::new();
    for _ in 0..connections.max(1) {
        let client = pg::open(config).await?;
        client
            .batch_execute(&setup)
            .await
            .map_err(|e| BackupError::postgres("setting up a loading session", e))?;
        let (tx, rx) = mpsc::channel(4);
        senders.push(tx);
        loaders.push(tokio::spawn(loader(client, rx)));
    }
    let result = route(toc, &mut pieces, &senders).await;
    drop(senders);
    let mut clients = Vec::new();
    for task in loaders {
        match task.await {
            Ok(Ok(client)) => clients.push(client),
            Ok(Err(e)) => return Err(e),
            Err(e) => {
                return Err(
                    BackupError::new(BackupErrorKind::Io, "a loader task failed").caused_by(e),
                )
            }
        }
    }
    let rows = result?;
    for entry in toc.of_kind("SEQUENCE SET") {
        if let Some(defn) = &entry.defn {
            clients[0]
                .batch_execute(defn)
                .await
                .map_err(|e| BackupError::postgres(format!("setting sequence {}", entry.tag), e))?;
        }
    }
    Ok(rows)
}

/// Hands the pieces to the loaders, round robin.
async fn route(
    toc: &Toc,
    pieces: &mut mpsc::Receiver<Piece>,
    loaders: &[mpsc::Sender<Work>],
) -> Result<u64> {
    let stopped = || BackupError::new(BackupErrorKind::Io, "a loader stopped");
    let mut counts = Vec::new();
    let mut next = 0;
    while let Some(piece) = pieces.recv().await {
        match piece {
            Piece::Start(dump_id) => {
                let statement = toc
                    .entry(dump_id)
                    .and_then(|e| e.copy_stmt.as_deref())
                    .ok_or_else(|| {
                        BackupError::new(
                            BackupErrorKind::Integrity,
                            format!("the dump has rows for dump id {dump_id}, which has no COPY statement"),
                        )
                    })?;
                let statement = statement.trim().trim_end_matches(';').to_owned();
                for loader in loaders {
                    loader
                        .send(Work::Copy(statement.clone()))
                        .await
                        .map_err(|_| stopped())?;
                }
            }
            Piece::Rows(rows) => {
                loaders[next % loaders.len()]
                    .send(Work::Rows(rows))
                    .await
                    .map_err(|_| stopped())?;
                next += 1;
            }
            Piece::End => {
                // No wait for the commits: each loader goes on to the next
                // table as soon as its own part is in.
                for loader in loaders {
                    let (tx, rx) = oneshot::channel();
                    loader.send(Work::Finish(tx)).await.map_err(|_| stopped())?;
                    counts.push(rx);
                }
            }
        }
    }
    let mut total = 0;
    for count in counts {
        total += count.await.map_err(|_| stopped())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(message: &str) -> BackupError {
        BackupError::new(BackupErrorKind::Io, message)
    }

    #[test]
    fn the_cause_of_a_failed_load_is_reported() {
        let copy_failed = || Err(error("loading rows: invalid input syntax"));
        let damaged = || Err(error("app.dump.zst: the downloaded file's SHA-256 differs"));
        let stopped = || Err(abandoned().context("file app.dump.zst"));
        let message = |r: Result<u64>| r.unwrap_err().message().to_owned();
        assert!(message(load_result(stopped(), copy_failed())).contains("invalid input syntax"));
        assert!(message(load_result(damaged(), copy_failed())).contains("SHA-256 differs"));
        assert!(message(load_result(damaged(), Ok(5))).contains("SHA-256 differs"));
        assert!(message(load_result(Ok(None), copy_failed())).contains("invalid input syntax"));
        assert_eq!(load_result(Ok(None), Ok(5)).unwrap(), 5);
    }
}
