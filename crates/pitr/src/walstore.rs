//! The WAL archive at a destination: under `wal/`, each WAL file stored
//! through the backups' pipeline (`<name>.zst`, `<name>.zst.age`) and,
//! written after it, its index entry `<name>.json` ([`WalEntry`]: the
//! stored file's size and SHA-256, when it was archived). A file without
//! its entry is not archived (an upload cut short); a restore fetches only
//! files with an entry and checks them against it. `wal/cluster.json`
//! names the cluster the archive belongs to ([`claim`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use pgharbor_backup::pipeline::{read_stored, store_local_file};
use pgharbor_backup::{BackupError, BackupErrorKind, Decryption, Encoding, FileEntry, Result};
use pgharbor_objstore::{Destination, ObjstoreErrorKind};
use serde::{Deserialize, Serialize};

use crate::lsn::{history_name, is_archived_name, newer_timelines, TimelinePath};

/// The folder of the WAL archive at a destination.
pub const WAL_FOLDER: &str = "wal";
/// The index entry format this version writes and reads.
pub const WAL_FORMAT: u32 = 1;

/// One archived WAL file's index entry (`wal/<name>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalEntry {
    /// Entry format ([`WAL_FORMAT`]).
    pub format: u32,
    /// The WAL file's name (`000000010000000000000003`, `00000002.history`).
    pub name: String,
    /// The stored file (`000000010000000000000003.zst`) with its size and SHA-256.
    pub file: FileEntry,
    /// When it was archived.
    pub archived_at: DateTime<Utc>,
}

/// The object naming the cluster an archive belongs to.
const CLUSTER_FILE: &str = "wal/cluster.json";

/// Which cluster's WAL and base backups a destination holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ClusterClaim {
    /// `pg_control_system()`'s system identifier.
    system_identifier: String,
}

/// Claims `dest` for the cluster `system_identifier`, or refuses when it
/// holds another cluster's archive: WAL file names repeat from cluster to
/// cluster, so a second one archiving there would overwrite the first's
/// segments and break its base backups' chains.
pub async fn claim(dest: &Destination, system_identifier: &str) -> Result<()> {
    let ours = ClusterClaim {
        system_identifier: system_identifier.to_owned(),
    };
    match dest.get_bytes(CLUSTER_FILE).await {
        Ok(bytes) => {
            let theirs: ClusterClaim = serde_json::from_slice(&bytes).map_err(|e| {
                BackupError::new(
                    BackupErrorKind::Integrity,
                    format!("{CLUSTER_FILE} at {dest} is not readable"),
                )
                .caused_by(e)
            })?;
            if theirs == ours {
                return Ok(());
            }
            Err(BackupError::new(
                BackupErrorKind::InvalidInput,
                format!(
                    "{dest} holds the archive of another PostgreSQL cluster (system identifier {}; \
                     this server's is {system_identifier}): WAL file names repeat between clusters, \
                     so archiving here would overwrite its WAL; give this server a destination of \
                     its own",
                    theirs.system_identifier
                ),
            ))
        }
        Err(e) if e.is_not_found() || e.kind() == ObjstoreErrorKind::ContainerMissing => {
            let json = serde_json::to_vec_pretty(&ours).expect("a claim always serializes");
            dest.put_bytes(CLUSTER_FILE, json).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn entry_name(name: &str) -> String {
    format!("{WAL_FOLDER}/{name}.json")
}

/// Archives the local WAL file `path` (named `name`): the file, then its
/// index entry. Archiving a file again (after a restart) writes the same.
pub async fn archive_file(
    dest: &Destination,
    name: &str,
    path: &Path,
    encoding: &Encoding,
) -> Result<WalEntry> {
    let stored_name = format!("{name}{}", encoding.suffix());
    let file = store_local_file(dest, WAL_FOLDER, &stored_name, path, encoding).await?;
    let entry = WalEntry {
        format: WAL_FORMAT,
        name: name.to_owned(),
        file,
        archived_at: Utc::now(),
    };
    let json = serde_json::to_vec_pretty(&entry).expect("a WAL entry always serializes");
    dest.put_bytes(&entry_name(name), json).await?;
    Ok(entry)
}

/// The index entry of `name`, `None` when it is not archived.
pub async fn entry(dest: &Destination, name: &str) -> Result<Option<WalEntry>> {
    let bytes = match dest.get_bytes(&entry_name(name)).await {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let entry: WalEntry = serde_json::from_slice(&bytes).map_err(|e| {
        BackupError::new(
            BackupErrorKind::Integrity,
            format!("the WAL index entry {} is not readable", entry_name(name)),
        )
        .caused_by(e)
    })?;
    Ok(Some(entry))
}

/// The names of every archived WAL file (those with an index entry), sorted.
pub async fn archived_names(dest: &Destination) -> Result<Vec<String>> {
    let objects = match dest.list(WAL_FOLDER).await {
        Ok(objects) => objects,
        Err(e) if e.is_not_found() || e.kind() == ObjstoreErrorKind::ContainerMissing => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e.into()),
    };
    let mut names: Vec<String> = objects
        .iter()
        .filter_map(|o| {
            let base = o.name.rsplit('/').next()?;
            let name = base.strip_suffix(".json")?;
            is_archived_name(name).then(|| name.to_owned())
        })
        .collect();
    names.sort();
    Ok(names)
}

/// What [`fetch`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// The file was written, this many bytes.
    Written(u64),
    /// The archive does not hold it (PostgreSQL asks for files that may not
    /// exist: the next segment, a newer timeline's history).
    NotArchived,
}

/// Fetches WAL file `name` into `path` (what `restore_command`'s `%f` and
/// `%p` say): downloaded, checked against its index entry, decrypted and
/// decompressed into a private temporary file beside `path`, renamed into
/// place only when whole and checked.
pub async fn fetch(
    dest: &Destination,
    name: &str,
    path: &Path,
    decryption: Option<&Decryption>,
) -> Result<Fetched> {
    if !is_archived_name(name) {
        return Ok(Fetched::NotArchived);
    }
    let Some(entry) = entry(dest, name).await? else {
        return Ok(Fetched::NotArchived);
    };
    let temp = temp_path(path, name);
    let writing = temp.clone();
    let result = read_stored(dest, WAL_FOLDER, &entry.file, decryption, move |plain| {
        let mut out = private_file(&writing)?;
        let written = std::io::copy(plain, &mut out)?;
        out.flush()?;
        out.sync_all()?;
        Ok(written)
    })
    .await;
    match result {
        Ok(written) => {
            std::fs::rename(&temp, path).map_err(|e| {
                BackupError::new(
                    BackupErrorKind::Io,
                    format!("moving WAL file {name} to {}", path.display()),
                )
                .caused_by(e)
            })?;
            Ok(Fetched::Written(written))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e.context(format!("fetching WAL file {name} from {dest}")))
        }
    }
}

/// The contents of archived WAL file `name` (a history file: small),
/// checked against its index entry; `None` when it is not archived.
pub async fn fetch_bytes(
    dest: &Destination,
    name: &str,
    decryption: Option<&Decryption>,
) -> Result<Option<Vec<u8>>> {
    let Some(entry) = entry(dest, name).await? else {
        return Ok(None);
    };
    let bytes = read_stored(dest, WAL_FOLDER, &entry.file, decryption, |plain| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(plain, &mut bytes)?;
        Ok(bytes)
    })
    .await
    .map_err(|e| e.context(format!("fetching WAL file {name} from {dest}")))?;
    Ok(Some(bytes))
}

/// The timelines a recovery from a base backup on `base` follows through
/// the archive (`names`): to the newest timeline whose history file is
/// archived and descends from `base`. Each newer timeline whose segments
/// are archived without its history file is a problem, named: recovery
/// cannot follow it.
pub async fn timeline_path(
    dest: &Destination,
    base: u32,
    names: &[String],
    decryption: Option<&Decryption>,
) -> Result<(TimelinePath, Vec<String>)> {
    let mut problems = Vec::new();
    for timeline in newer_timelines(names, base) {
        let history = history_name(timeline);
        let Some(bytes) = fetch_bytes(dest, &history, decryption).await? else {
            problems.push(format!(
                "timeline history file {history} is missing from the archive: recovery cannot \
                 follow timeline {timeline}, whose WAL segments are archived"
            ));
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        if let Some(path) = TimelinePath::from_history(base, timeline, &text) {
            return Ok((path, problems));
        }
    }
    Ok((TimelinePath::single(base), problems))
}

fn temp_path(path: &Path, name: &str) -> PathBuf {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    dir.join(format!(".{name}.pgharbor-{}", std::process::id()))
}

/// A new file readable by its owner only, whatever the umask.
pub(crate) fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}
