//! `verify`: re-hash every file against the manifest and, optionally,
//! restore every database into a scratch database and compare row counts;
//! for Redis, re-check the snapshot's structure and key counts and,
//! optionally, restore it into a scratch Redis. The result is stored as
//! `<id>/verification.json`.

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use pgharbor_conn::ConnConfig;
use pgharbor_objstore::Destination;
use pgharbor_rdb::RedisUrl;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::encrypt::Decryption;
use crate::error::{BackupError, BackupErrorKind, Result};
use crate::list::{self, hex, BackupState};
use crate::manifest::{
    BackupKind, Manifest, VerificationRecord, FORMAT, MANIFEST_NAME, VERIFICATION_NAME,
};
use crate::pg;
use crate::redis::verify_snapshot;
use crate::restore::{drop_database, restore_database, RestoreOptions};

/// How to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The identities or passphrase of an encrypted backup (for a restore).
    pub decryption: Option<Decryption>,
    /// `pg_restore -j` for the test restore.
    pub jobs: usize,
    /// Where the test restore's temporary file goes (`$TMPDIR` when `None`).
    pub temp_dir: Option<std::path::PathBuf>,
    /// The time to record; `None` is now.
    pub now: Option<DateTime<Utc>>,
    /// For a Redis backup: a scratch Redis to restore into (flushed
    /// before and after: everything in it is lost), comparing its key
    /// counts with the manifest.
    pub redis_restore_to: Option<RedisUrl>,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The backup verified.
    pub id: String,
    /// Whether every check passed.
    pub passed: bool,
    /// Files whose checksum and size matched.
    pub files_checked: usize,
    /// Databases restored and compared (with a restore).
    pub databases_restored: usize,
    /// Every problem, each naming the file or table.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// `Ok(self)` when it passed, else an [`BackupErrorKind::Integrity`]
    /// error listing the problems.
    pub fn ensure_passed(self) -> Result<VerifyReport> {
        if self.passed {
            return Ok(self);
        }
        Err(BackupError::new(
            BackupErrorKind::Integrity,
            format!(
                "backup {} failed verification: {}",
                self.id,
                self.problems.join("; ")
            ),
        ))
    }
}

/// Verifies backup `id` (`None`: the newest backup with a manifest) at
/// `dest`; with `restore_to`, also restores each database into
/// `pgharbor_verify_<id>_<db>` on that server, compares the row counts and
/// drops it. A Redis backup's snapshot is also decrypted, decompressed and
/// structurally checked (RDB checksum, parse, keys per database against the
/// manifest) and, with [`VerifyOptions::redis_restore_to`], restored into
/// that server and compared. The result is recorded next to the backup,
/// where `list` reads it. A failed check is a report with
/// `passed == false`, not an error.
pub async fn verify(
    dest: &Destination,
    id: Option<&str>,
    restore_to: Option<&ConnConfig>,
    options: &VerifyOptions,
) -> Result<VerifyReport> {
    let id = match id {
        Some(id) => id.to_owned(),
        None => newest_with_manifest(dest).await?,
    };
    let manifest_bytes = dest
        .get_bytes(&format!("{id}/{MANIFEST_NAME}"))
        .await
        .map_err(|e| {
            BackupError::from(e).context(format!("backup {id} has no readable manifest"))
        })?;
    let manifest = Manifest::from_json(&manifest_bytes)?;
    let restored_to = target_of(&manifest, restore_to, options)?;
    let mut problems = Vec::new();
    let mut files_checked = 0;
    for file in &manifest.files {
        match check_file(dest, &id, &file.name, file.size, &file.sha256).await? {
            None => files_checked += 1,
            Some(problem) => problems.push(problem),
        }
    }
    let mut databases_restored = 0;
    if problems.is_empty() {
        databases_restored = match (manifest.kind, restore_to) {
            (BackupKind::Postgres, Some(target)) => {
                test_restore(dest, &manifest, target, options, &mut problems).await?
            }
            (BackupKind::Postgres, None) | (BackupKind::Base, _) => 0,
            (BackupKind::Redis, _) => {
                let decryption = options.decryption.as_ref();
                let target = options.redis_restore_to.as_ref();
                verify_snapshot(dest, &manifest, decryption, target, &mut problems).await?
            }
        };
    }
    let record = VerificationRecord {
        format: FORMAT,
        id: id.clone(),
        verified_at: options.now.unwrap_or_else(Utc::now),
        passed: problems.is_empty(),
        manifest_sha256: hex(&Sha256::digest(&manifest_bytes)),
        restored_to,
        problems: problems.clone(),
    };
    let json = serde_json::to_vec_pretty(&record).expect("a record always serializes");
    dest.put_bytes(&format!("{id}/{VERIFICATION_NAME}"), json)
        .await?;
    Ok(VerifyReport {
        id,
        passed: problems.is_empty(),
        files_checked,
        databases_restored,
        problems,
    })
}

/// Verifies every backup at `dest` that has a manifest, newest first, each
/// as [`verify`] does and with its result recorded, so [`list`](crate::list)
/// shows a damaged one as corrupt. A test restore goes to `restore_to` for
/// PostgreSQL backups and to [`VerifyOptions::redis_restore_to`] for Redis
/// ones. A backup whose manifest cannot be read is a failed report naming
/// the problem; backups without a manifest (failed, or still running) are
/// not verified. A [`BackupErrorKind::NotFound`] error when no backup has a
/// manifest.
pub async fn verify_all(
    dest: &Destination,
    restore_to: Option<&ConnConfig>,
    options: &VerifyOptions,
) -> Result<Vec<VerifyReport>> {
    let mut reports = Vec::new();
    for entry in list::list(dest).await? {
        if entry.state == BackupState::Failed {
            continue;
        }
        let mut each = options.clone();
        let postgres = match entry.manifest.as_ref().map(|m| m.kind) {
            Some(BackupKind::Redis) => None,
            Some(BackupKind::Base) => {
                each.redis_restore_to = None;
                None
            }
            _ => {
                each.redis_restore_to = None;
                restore_to
            }
        };
        match verify(dest, Some(&entry.id), postgres, &each).await {
            Ok(report) => reports.push(report),
            Err(e) if e.kind() == BackupErrorKind::Integrity => reports.push(VerifyReport {
                id: entry.id,
                passed: false,
                files_checked: 0,
                databases_restored: 0,
                problems: vec![crate::chain_text(&e)],
            }),
            Err(e) => return Err(e.context(format!("verifying backup {}", entry.id))),
        }
    }
    if reports.is_empty() {
        return Err(no_manifest(dest));
    }
    Ok(reports)
}

fn no_manifest(dest: &Destination) -> BackupError {
    BackupError::new(
        BackupErrorKind::NotFound,
        format!("no backup with a manifest at {dest}"),
    )
}

/// The server a test restore goes to (no password), refusing a target of
/// the other kind.
fn target_of(
    manifest: &Manifest,
    restore_to: Option<&ConnConfig>,
    options: &VerifyOptions,
) -> Result<Option<String>> {
    let redis = options.redis_restore_to.as_ref();
    match (manifest.kind, restore_to, redis) {
        (BackupKind::Postgres, postgres, None) => Ok(postgres.map(ConnConfig::endpoint)),
        (BackupKind::Redis, None, redis) => Ok(redis.map(RedisUrl::endpoint)),
        (BackupKind::Base, None, None) => Ok(None),
        (BackupKind::Base, _, _) => Err(BackupError::new(
            BackupErrorKind::InvalidInput,
            format!(
                "backup {} is a base backup for point-in-time recovery: it is test-restored into \
                 a scratch data directory with `pgharbor backups verify DEST --pitr`, not into a \
                 database",
                manifest.id
            ),
        )),
        (kind, _, _) => Err(BackupError::new(
            BackupErrorKind::InvalidInput,
            format!(
                "backup {} is a {kind:?} backup: a test restore needs a {kind:?} server",
                manifest.id
            ),
        )),
    }
}

async fn newest_with_manifest(dest: &Destination) -> Result<String> {
    list::list(dest)
        .await?
        .into_iter()
        .find(|e| e.manifest.is_some())
        .map(|e| e.id)
        .ok_or_else(|| no_manifest(dest))
}

/// Streams `name` through SHA-256; a problem naming the file when it is
/// missing or differs.
async fn check_file(
    dest: &Destination,
    id: &str,
    name: &str,
    size: u64,
    sha256: &str,
) -> Result<Option<String>> {
    let mut stream = match dest.get_stream(&format!("{id}/{name}")).await {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Ok(Some(format!("file {name} is missing"))),
        Err(e) => return Err(e.into()),
    };
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        read += chunk.len() as u64;
        hasher.update(&chunk);
    }
    let digest = hex(&hasher.finalize());
    Ok(if read != size {
        Some(format!(
            "file {name} has {read} bytes, the manifest says {size}"
        ))
    } else if digest != sha256 {
        Some(format!(
            "file {name} is damaged: its SHA-256 is {digest}, the manifest says {sha256}"
        ))
    } else {
        None
    })
}

/// Restores every database into a scratch database, compares, drops it
/// (a failed restore drops it itself).
async fn test_restore(
    dest: &Destination,
    manifest: &Manifest,
    target: &ConnConfig,
    options: &VerifyOptions,
    problems: &mut Vec<String>,
) -> Result<usize> {
    let admin = pg::open(target).await?;
    let restore_options = RestoreOptions {
        clean: true,
        jobs: options.jobs,
        decryption: options.decryption.clone(),
        temp_dir: options.temp_dir.clone(),
        ..Default::default()
    };
    let mut restored = 0;
    for entry in &manifest.postgres()?.databases {
        let scratch = scratch_name(&manifest.id, &entry.name);
        let result = restore_database(
            dest,
            manifest,
            entry,
            &scratch,
            target,
            &admin,
            &restore_options,
        )
        .await;
        match result {
            Ok(_) => {
                restored += 1;
                drop_database(&admin, &scratch).await?;
            }
            // The scratch server went away: no verdict on the backup.
            Err(e) if e.kind() == BackupErrorKind::Connection => {
                return Err(e.followed_by(
                    "The backup was not judged: verify it again once the server is back",
                ))
            }
            // The scratch server's disk is full: no verdict on the backup either.
            Err(e) if e.kind() == BackupErrorKind::NoSpace => {
                return Err(e.followed_by(
                    "The backup was not judged: verify it again once the server has room",
                ))
            }
            // A failed restore dropped the scratch database it created, or
            // says it is left.
            Err(e) => problems.push(format!(
                "database {}: {}",
                entry.name,
                crate::chain_text(&e)
            )),
        }
    }
    Ok(restored)
}

/// `pgharbor_verify_<id>_<db>`, within PostgreSQL's 63 bytes.
fn scratch_name(id: &str, db: &str) -> String {
    let mut name = format!("pgharbor_verify_{}_{db}", id.to_ascii_lowercase());
    while name.len() > 63 {
        name.pop();
    }
    name
}
