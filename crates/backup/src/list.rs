//! [`list`]: the backups at a destination and their state, from one
//! listing plus each manifest and verification record.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pgharbor_objstore::{Destination, ObjectInfo};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::id::parse_id;
use crate::manifest::{Manifest, VerificationRecord, MANIFEST_NAME, VERIFICATION_NAME};

/// The state of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupState {
    /// The manifest is there and every file it lists has its size.
    Complete,
    /// Complete, and the last verification of this manifest passed.
    Verified,
    /// Parts without a manifest: the backup failed, was killed, or is still
    /// running. Never restorable.
    Failed,
    /// The manifest is unreadable, a file is missing or has the wrong size,
    /// or the last verification failed.
    Corrupt,
}

impl BackupState {
    /// Complete or verified: restorable.
    pub fn is_good(self) -> bool {
        matches!(self, BackupState::Complete | BackupState::Verified)
    }

    /// Its name, as in JSON: `complete`, `verified`, `failed`, `corrupt`.
    pub fn name(self) -> &'static str {
        match self {
            BackupState::Complete => "complete",
            BackupState::Verified => "verified",
            BackupState::Failed => "failed",
            BackupState::Corrupt => "corrupt",
        }
    }
}

/// One backup at a destination.
#[derive(Debug, Clone, Serialize)]
pub struct BackupEntry {
    /// The id (the folder name).
    pub id: String,
    /// When it started (from the manifest, else from the id).
    pub time: DateTime<Utc>,
    /// Seconds between `time` and the listing.
    pub age_seconds: i64,
    /// The databases it holds (empty without a manifest).
    pub databases: Vec<String>,
    /// Bytes stored under the id.
    pub size: u64,
    /// Its state.
    pub state: BackupState,
    /// Why it is failed or corrupt.
    pub problem: Option<String>,
    /// When its last verification passed, for a verified backup.
    pub verified_at: Option<DateTime<Utc>>,
    /// When any of its files was last written: recent for a backup that is
    /// still running.
    pub last_written: Option<DateTime<Utc>>,
    /// The manifest, when it is readable.
    #[serde(skip)]
    pub manifest: Option<Manifest>,
}

/// Every backup at `dest`, newest first.
pub async fn list(dest: &Destination) -> Result<Vec<BackupEntry>> {
    list_at(dest, Utc::now()).await
}

/// [`list`] with the ages computed against `now`.
pub async fn list_at(dest: &Destination, now: DateTime<Utc>) -> Result<Vec<BackupEntry>> {
    let mut groups: BTreeMap<String, Vec<ObjectInfo>> = BTreeMap::new();
    for object in dest.list("").await? {
        if let Some((id, _)) = object.name.split_once('/') {
            if parse_id(id).is_some() {
                groups.entry(id.to_owned()).or_default().push(object);
            }
        }
    }
    let mut entries = Vec::with_capacity(groups.len());
    for (id, objects) in groups {
        entries.push(entry(dest, id, &objects, now).await?);
    }
    entries.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
    Ok(entries)
}

/// The entry of the backup with `id`, or `None` when nothing is stored under it.
pub(crate) async fn find(dest: &Destination, id: &str) -> Result<Option<BackupEntry>> {
    let objects = dest.list(id).await?;
    if objects.is_empty() || parse_id(id).is_none() {
        return Ok(None);
    }
    Ok(Some(
        entry(dest, id.to_owned(), &objects, Utc::now()).await?,
    ))
}

async fn entry(
    dest: &Destination,
    id: String,
    objects: &[ObjectInfo],
    now: DateTime<Utc>,
) -> Result<BackupEntry> {
    let id_time = parse_id(&id).expect("only ids are grouped");
    let size = objects.iter().map(|o| o.size).sum();
    let has = |name: &str| objects.iter().any(|o| o.name == format!("{id}/{name}"));
    let mut entry = BackupEntry {
        id: id.clone(),
        time: id_time,
        age_seconds: 0,
        databases: Vec::new(),
        size,
        state: BackupState::Failed,
        problem: Some("no manifest: the backup failed, was interrupted, or is running".into()),
        verified_at: None,
        last_written: objects
            .iter()
            .map(|o| DateTime::<Utc>::from(o.last_modified))
            .max(),
        manifest: None,
    };
    if has(MANIFEST_NAME) {
        let bytes = match dest.get_bytes(&format!("{id}/{MANIFEST_NAME}")).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(finish(entry, now)),
            Err(e) => return Err(e.into()),
        };
        judge(dest, &mut entry, objects, &bytes, has(VERIFICATION_NAME)).await?;
    }
    Ok(finish(entry, now))
}

fn finish(mut entry: BackupEntry, now: DateTime<Utc>) -> BackupEntry {
    entry.age_seconds = (now - entry.time).num_seconds();
    entry
}

/// Fills in the state from the manifest, the listing's sizes and the
/// verification record.
async fn judge(
    dest: &Destination,
    entry: &mut BackupEntry,
    objects: &[ObjectInfo],
    manifest_bytes: &[u8],
    verified: bool,
) -> Result<()> {
    let manifest = match Manifest::from_json(manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            entry.state = BackupState::Corrupt;
            entry.problem = Some(crate::chain_text(&e));
            return Ok(());
        }
    };
    entry.time = manifest.started;
    entry.databases = manifest.database_names();
    entry.state = BackupState::Complete;
    entry.problem = file_problem(&entry.id, &manifest, objects);
    if entry.problem.is_some() {
        entry.state = BackupState::Corrupt;
    } else if verified {
        let record = read_verification(dest, &entry.id).await?;
        let digest = hex(&Sha256::digest(manifest_bytes));
        match record {
            Some(r) if r.manifest_sha256 == digest && r.passed => {
                entry.state = BackupState::Verified;
                entry.verified_at = Some(r.verified_at);
            }
            Some(r) if r.manifest_sha256 == digest => {
                entry.state = BackupState::Corrupt;
                entry.problem = Some(format!("verification failed: {}", r.problems.join("; ")));
            }
            _ => {}
        }
    }
    entry.manifest = Some(manifest);
    Ok(())
}

/// The first file of the manifest that is missing or has another size.
fn file_problem(id: &str, manifest: &Manifest, objects: &[ObjectInfo]) -> Option<String> {
    manifest.files.iter().find_map(|f| {
        let full = format!("{id}/{}", f.name);
        match objects.iter().find(|o| o.name == full) {
            None => Some(format!("file {} is missing", f.name)),
            Some(o) if o.size != f.size => Some(format!(
                "file {} has {} bytes, the manifest says {}",
                f.name, o.size, f.size
            )),
            Some(_) => None,
        }
    })
}

/// The verification record of `id`, `None` when it is absent or unreadable.
async fn read_verification(dest: &Destination, id: &str) -> Result<Option<VerificationRecord>> {
    match dest.get_bytes(&format!("{id}/{VERIFICATION_NAME}")).await {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
