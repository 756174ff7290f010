//! The storage pipeline for other kinds of backup built on this crate
//! (`pgharbor-pitr`'s base backups and WAL archive): a program's output or
//! a local file → zstd → age → SHA-256 → the destination in one pass, the
//! way logical backups are stored, and back: a stored file → SHA-256 check
//! → age → zstd → whatever reads it. Also the manifest and id helpers, so
//! such backups list, verify and prune with the others.

use std::io::{self, Read};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use pgharbor_objstore::Destination;

use crate::backup::{self, BackupReport};
use crate::encrypt::{Decryption, Encryption};
use crate::error::{BackupError, BackupErrorKind, Result};
use crate::manifest::{BackupKind, FileEntry, Manifest};
use crate::stream::{self, Encoding, ErrorSlot, Producer, COMPRESS_LEVELS, DEFAULT_COMPRESS_LEVEL};

impl Encoding {
    /// zstd at `level` (`None`: [`DEFAULT_COMPRESS_LEVEL`]), then age with
    /// `encryption`; an error for a level outside [`COMPRESS_LEVELS`] or
    /// recipients that are not age keys.
    pub fn new(level: Option<i32>, encryption: Option<Encryption>) -> Result<Encoding> {
        let level = level.unwrap_or(DEFAULT_COMPRESS_LEVEL);
        if !COMPRESS_LEVELS.contains(&level) {
            return Err(BackupError::new(
                BackupErrorKind::InvalidInput,
                format!("compression level {level} is out of range: zstd levels go from 1 to 19"),
            ));
        }
        if let Some(enc) = &encryption {
            enc.validate()?;
        }
        Ok(Encoding { level, encryption })
    }

    /// The ending of a stored file: `.zst`, or `.zst.age` when encrypted.
    pub fn suffix(&self) -> &'static str {
        backup::file_suffix(self.encryption.as_ref())
    }
}

/// Runs `command`, storing its standard output as `<folder>/<file>` at
/// `dest` through `encoding` while it runs; returns the stored file and
/// what the program wrote on stderr. A program that fails stores nothing
/// and its error quotes the end of its stderr.
pub async fn store_program_output(
    dest: &Destination,
    folder: &str,
    file: &str,
    what: String,
    command: Command,
    encoding: &Encoding,
) -> Result<(FileEntry, String)> {
    let mut producer = Producer::spawn(what, command)?;
    let transcript = Arc::new(Mutex::new(String::new()));
    producer.transcript = Some(transcript.clone());
    let slot: ErrorSlot = Arc::new(Mutex::new(None));
    let encoded = stream::encode(producer, encoding.clone(), slot.clone());
    let stored = backup::upload(dest, folder, file, encoded, slot).await?;
    let stderr = std::mem::take(&mut *transcript.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((stored, stderr))
}

/// Stores the local file `path` as `<folder>/<file>` at `dest` through `encoding`.
pub async fn store_local_file(
    dest: &Destination,
    folder: &str,
    file: &str,
    path: &Path,
    encoding: &Encoding,
) -> Result<FileEntry> {
    let input = std::fs::File::open(path).map_err(|e| {
        BackupError::new(BackupErrorKind::Io, format!("opening {}", path.display())).caused_by(e)
    })?;
    let slot: ErrorSlot = Arc::new(Mutex::new(None));
    let encoded = stream::encode_reader(
        input,
        path.display().to_string(),
        encoding.clone(),
        slot.clone(),
    );
    backup::upload(dest, folder, file, encoded, slot).await
}

/// Downloads `<folder>/<stored.name>` and hands its plain bytes (decrypted
/// with `decryption`, decompressed) to `consume` on a blocking thread; what
/// `consume` leaves unread is read too, and the stored bytes' SHA-256 is
/// checked against `stored` at the end: an error names a damaged file, so
/// the caller must not keep what `consume` wrote unless this returns `Ok`.
pub async fn read_stored<T: Send + 'static>(
    dest: &Destination,
    folder: &str,
    stored: &FileEntry,
    decryption: Option<&Decryption>,
    consume: impl FnOnce(&mut dyn Read) -> io::Result<T> + Send + 'static,
) -> Result<T> {
    let name = format!("{folder}/{}", stored.name);
    let download = dest
        .get_stream(&name)
        .await
        .map_err(|e| BackupError::from(e).context(format!("reading {name} at {dest}")))?;
    let download = stream::bridge(download.into_reader());
    let decryption = decryption.cloned();
    let stored = stored.clone();
    let task = tokio::task::spawn_blocking(move || {
        let (mut plain, hash) = stream::decoder(download, decryption.as_ref())?;
        let consumed = consume(&mut plain);
        let drained = io::copy(&mut plain, &mut io::sink());
        // A damaged download explains a failed consumer better than its own error.
        let checked = drained
            .map_err(|e| {
                BackupError::new(BackupErrorKind::Io, format!("{}: reading", stored.name))
                    .caused_by(e)
            })
            .and_then(|_| hash.check(&stored));
        match (consumed, checked) {
            (_, Err(e)) => Err(e),
            (Err(e), Ok(())) => {
                Err(BackupError::new(BackupErrorKind::Io, stored.name.clone()).caused_by(e))
            }
            (Ok(value), Ok(())) => Ok(value),
        }
    });
    task.await.map_err(|e| {
        BackupError::new(
            BackupErrorKind::Io,
            format!("reading {name}: the task failed"),
        )
        .caused_by(e)
    })?
}

/// The first free backup id at `dest` for a backup started at `started`.
pub async fn allocate_id(dest: &Destination, started: DateTime<Utc>) -> Result<String> {
    backup::allocate_id(dest, started).await
}

/// A manifest of `kind` for backup `id` started at `started` (`clock`
/// running since), finished now, without its kind's section.
pub fn new_manifest(
    kind: BackupKind,
    id: &str,
    started: (DateTime<Utc>, Instant),
    files: Vec<FileEntry>,
    encoding: &Encoding,
) -> Manifest {
    backup::new_manifest(kind, id, started, files, encoding)
}

/// Stores `manifest` last and atomically: the backup becomes complete.
pub async fn write_manifest(dest: &Destination, manifest: Manifest) -> Result<BackupReport> {
    backup::write_manifest(dest, manifest).await
}

/// `result`, or its error once the backup's parts are deleted.
pub async fn removed_on_failure(
    dest: &Destination,
    id: &str,
    result: Result<BackupReport>,
) -> Result<BackupReport> {
    backup::removed_on_failure(dest, id, result).await
}
