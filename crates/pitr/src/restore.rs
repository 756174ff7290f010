//! [`restore_to_point`]: a new data directory from the base backup that
//! reaches the target, set up to replay the archived WAL up to it.
//!
//! The base backup's tar is downloaded, checked (SHA-256), decrypted and
//! decompressed and unpacked in one pass into a new directory (`0700`);
//! then `recovery.signal`, and in `postgresql.auto.conf` a
//! `restore_command` that runs `pgharbor restore-wal` (which fetches and
//! checks each WAL file from the archive: no credential is written into
//! the directory — the server inherits them from the environment it is
//! started in), the `recovery_target_*` setting, `recovery_target_action =
//! 'promote'` and the caller's settings (a port, say). With `start`, the
//! server is started with `pg_ctl` and the restore waits until recovery
//! has ended; otherwise the exact start command is returned.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pgharbor_backup::pipeline::read_stored;
use pgharbor_backup::{
    list, BackupError, BackupErrorKind, BackupKind, Decryption, Manifest, Result,
};
use pgharbor_objstore::Destination;
use serde::Serialize;

use crate::archive::create_private_dir;
use crate::lsn::Lsn;
use crate::target::RecoveryTarget;
use crate::walstore::private_file;

/// How to restore.
#[derive(Debug, Clone)]
pub struct PitrRestoreOptions {
    /// Where recovery stops.
    pub target: RecoveryTarget,
    /// The new data directory: must not exist, or be empty.
    pub data_dir: PathBuf,
    /// The identities or passphrase of an encrypted archive.
    pub decryption: Option<Decryption>,
    /// The `restore_command` to write (the caller knows how to run
    /// `pgharbor restore-wal` for this destination).
    pub restore_command: String,
    /// Further settings for `postgresql.auto.conf` (`port`, …), later ones winning.
    pub settings: Vec<(String, String)>,
    /// Start the server and wait for recovery to end.
    pub start: bool,
    /// The base backup to restore (its id); `None` chooses ([`choose_base`]).
    pub base_backup: Option<String>,
}

/// What [`restore_to_point`] did.
#[derive(Debug, Clone, Serialize)]
pub struct PitrRestoreReport {
    /// The base backup restored.
    pub base_backup: String,
    /// The target, described.
    pub target: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The server's log file (`pg_ctl -l`).
    pub log_file: PathBuf,
    /// The command that starts the server (run as the directory's owner).
    pub start_command: String,
    /// Whether the server was started and recovery has ended.
    pub started: bool,
    /// The base backup's PostgreSQL major version.
    pub major: u32,
    /// Why this base backup, when pgharbor could not know it reaches the
    /// target (a restore point, a transaction older base backups do not date).
    pub note: Option<String>,
}

/// The file name of the restored server's log, inside the data directory.
pub const LOG_NAME: &str = "pgharbor-restore.log";

/// Restores the archive at `dest` to `options.target` in `options.data_dir`.
/// A failure before the server starts removes what was written there.
pub async fn restore_to_point(
    dest: &Destination,
    options: &PitrRestoreOptions,
) -> Result<PitrRestoreReport> {
    let (manifest, note) = match &options.base_backup {
        Some(id) => (named_base(dest, id).await?, None),
        None => choose_base(dest, &options.target).await?,
    };
    let base = manifest.base()?.clone();
    let pg_ctl = pgharbor_pgtools::find_exact("pg_ctl", base.major)?;
    if options.start && rustix::process::geteuid().is_root() {
        return Err(invalid(
            "PostgreSQL refuses to run as root: run the restore as the user that will own the \
             server (e.g. `runuser -u postgres -- pgharbor restore …`), or leave out --start",
        ));
    }
    refuse_a_gap(dest, &base, options).await?;
    let dir = &options.data_dir;
    let made = prepare_empty_dir(dir)?;
    let filled = fill(dest, &manifest, options).await;
    if let Err(e) = filled {
        made.undo();
        return Err(e);
    }
    let log_file = dir.join(LOG_NAME);
    let start_command = format!(
        "{} -D {} -l {} start",
        shell_quote(&pg_ctl.path.display().to_string()),
        shell_quote(&dir.display().to_string()),
        shell_quote(&log_file.display().to_string())
    );
    if options.start {
        let controldata = pgharbor_pgtools::find_exact("pg_controldata", base.major)?;
        let started = start_and_wait(&pg_ctl.path, &controldata.path, dir, &log_file).await;
        started.map_err(|e| explain_unreached(e, &manifest.id, dest))?;
    }
    Ok(PitrRestoreReport {
        base_backup: manifest.id.clone(),
        target: options.target.describe(),
        data_dir: dir.clone(),
        log_file,
        start_command,
        started: options.start,
        major: base.major,
        note,
    })
}

/// A recovery that ended before its target: says what to do.
fn explain_unreached(e: BackupError, id: &str, dest: &Destination) -> BackupError {
    if !pgharbor_backup::chain_text(&e).contains("before configured recovery target was reached") {
        return e;
    }
    e.followed_by(format!(
        "The target is older than base backup {id}'s end, or past the end of the archive: \
         restore from an older base backup with --base-backup ID (`pgharbor backups list \
         {dest}`), or to a later target"
    ))
}

/// The complete base backup `id` at `dest`.
async fn named_base(dest: &Destination, id: &str) -> Result<Manifest> {
    let bases = complete_bases(dest).await?;
    bases.into_iter().find(|m| m.id == id).ok_or_else(|| {
        BackupError::new(
            BackupErrorKind::NotFound,
            format!(
                "no complete base backup {id} at {dest}: `pgharbor backups list {dest}` shows \
                 them (as `(whole cluster)`)"
            ),
        )
    })
}

/// `--latest` through a gap in the archive would end at the gap and
/// promote there, as if it were the end: refused, naming the missing
/// segments. (A target past a gap makes PostgreSQL stop with "recovery
/// ended before configured recovery target was reached".)
async fn refuse_a_gap(
    dest: &Destination,
    base: &pgharbor_backup::BaseContent,
    options: &PitrRestoreOptions,
) -> Result<()> {
    if !matches!(options.target, RecoveryTarget::Latest) {
        return Ok(());
    }
    let names = crate::walstore::archived_names(dest).await?;
    let (path, mut problems) =
        crate::walstore::timeline_path(dest, base.timeline, &names, options.decryption.as_ref())
            .await?;
    let missing =
        crate::lsn::missing_segments(&names, &base.start_wal, base.wal_segment_size, &path);
    if !missing.is_empty() {
        problems.push(format!("{} missing", missing.join(", ")));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(invalid(format!(
        "the WAL archive at {dest} has a gap after the base backup: {}; so a restore to the \
         latest state would stop before it and pass for complete; restore to a --time or --lsn \
         before the gap, or find the missing files",
        problems.join("; ")
    )))
}

fn invalid(message: impl Into<String>) -> BackupError {
    BackupError::new(BackupErrorKind::InvalidInput, message)
}

/// The complete base backups at `dest`, newest first — also those whose
/// last `verify --pitr` failed, which is most often for a gap in the WAL
/// after them: what they hold is checked again as it downloads.
async fn complete_bases(dest: &Destination) -> Result<Vec<Manifest>> {
    Ok(list(dest)
        .await?
        .into_iter()
        .filter(|e| {
            e.state.is_good()
                || e.problem
                    .as_deref()
                    .is_some_and(|p| p.starts_with("verification failed"))
        })
        .filter_map(|e| e.manifest)
        .filter(|m| m.kind == BackupKind::Base && m.base.is_some())
        .collect())
}

/// Whether base backup `m` reaches `target`: `Some(true)` when it ended
/// before it, `Some(false)` when it ended after, `None` when that cannot
/// be known (a restore point; a transaction and a backup that recorded no
/// transaction id).
fn reaches(m: &Manifest, target: &RecoveryTarget) -> Option<bool> {
    let base = m.base.as_ref()?;
    match target {
        RecoveryTarget::Time(_) => target.time().map(|t| m.finished <= t),
        RecoveryTarget::Lsn(lsn) => Lsn::parse(&base.end_lsn).map(|end| end <= *lsn),
        RecoveryTarget::Xid(xid) => base.next_xid.map(|next| full_xid(*xid, next) >= next),
        RecoveryTarget::Name(_) => None,
        RecoveryTarget::Latest => Some(true),
    }
}

/// `xid` with the epoch of `next` when it has none (below 2³²): the ids
/// `txid_current()` and `pg_current_xact_id()` give carry theirs.
fn full_xid(xid: u64, next: u64) -> u64 {
    if xid >> 32 == 0 {
        (next & !0xFFFF_FFFF) | xid
    } else {
        xid
    }
}

/// The newest base backup that ends before the target, and a note when
/// that cannot be known (then the newest whose end is not known to be past
/// it). See [`reaches`].
pub async fn choose_base(
    dest: &Destination,
    target: &RecoveryTarget,
) -> Result<(Manifest, Option<String>)> {
    let bases = complete_bases(dest).await?;
    if bases.is_empty() {
        return Err(BackupError::new(
            BackupErrorKind::NotFound,
            format!(
                "no complete base backup at {dest}: take one with `pgharbor base-backup URL --to \
                 {dest}` (with the WAL archiver running) first"
            ),
        ));
    }
    for m in &bases {
        match reaches(m, target) {
            Some(true) => return Ok((m.clone(), None)),
            Some(false) => continue,
            None => {
                let note = format!(
                    "pgharbor cannot know whether {} comes after base backup {} ended: it is \
                     used; if the target is older, PostgreSQL stops saying the target was not \
                     reached — then name an older base backup with --base-backup ID",
                    target.describe(),
                    m.id
                );
                return Ok((m.clone(), Some(note)));
            }
        }
    }
    let oldest = bases.last().expect("not empty");
    Err(BackupError::new(
        BackupErrorKind::NotFound,
        format!(
            "no base backup at {dest} ends before {}: the oldest, {}, ended at {} (WAL position \
             {}{}); a restore can only go forward from a base backup",
            target.describe(),
            oldest.id,
            oldest.finished.format("%Y-%m-%d %H:%M:%S%.3f+00"),
            oldest.base.as_ref().map_or("?", |b| b.end_lsn.as_str()),
            oldest
                .base
                .as_ref()
                .and_then(|b| b.next_xid)
                .map(|x| format!(", next transaction {x}"))
                .unwrap_or_default()
        ),
    ))
}

/// What a restore made, and so what a failed one removes: never a
/// directory that was there before it.
#[derive(Debug)]
enum Made {
    /// The data directory existed (empty): only what was put in it.
    Contents(PathBuf),
    /// The data directory (and maybe parents) were made: the topmost one made.
    Tree(PathBuf),
}

impl Made {
    fn undo(&self) {
        match self {
            Made::Contents(dir) => {
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for entry in entries.flatten() {
                        let path = entry.path();
                        let removed = if path.is_dir() && !path.is_symlink() {
                            std::fs::remove_dir_all(&path)
                        } else {
                            std::fs::remove_file(&path)
                        };
                        if let Err(e) = removed {
                            tracing::warn!("removing {}: {e}", path.display());
                        }
                    }
                }
            }
            Made::Tree(top) => {
                if let Err(e) = std::fs::remove_dir_all(top) {
                    tracing::warn!("removing {}: {e}", top.display());
                }
            }
        }
    }
}

/// Creates `dir` `0700`, refusing one that holds anything; says what it made.
fn prepare_empty_dir(dir: &Path) -> Result<Made> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(invalid(format!(
                "{} is not empty: a restore goes into a new or empty directory, never over an \
                 existing one",
                dir.display()
            )));
        }
        create_private_dir(dir)?;
        return Ok(Made::Contents(dir.to_path_buf()));
    }
    let mut top = dir.to_path_buf();
    for ancestor in dir.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() || ancestor.symlink_metadata().is_ok() {
            break;
        }
        top = ancestor.to_path_buf();
    }
    create_private_dir(dir)?;
    Ok(Made::Tree(top))
}

/// Unpacks the base backup and writes the recovery settings.
async fn fill(dest: &Destination, manifest: &Manifest, options: &PitrRestoreOptions) -> Result<()> {
    let base = manifest.base()?;
    let stored = manifest.file(&base.file).cloned().ok_or_else(|| {
        BackupError::new(
            BackupErrorKind::Integrity,
            format!(
                "the manifest of base backup {} lists no file {}",
                manifest.id, base.file
            ),
        )
    })?;
    let dir = options.data_dir.clone();
    read_stored(
        dest,
        &manifest.id,
        &stored,
        options.decryption.as_ref(),
        move |plain| {
            let mut archive = tar::Archive::new(plain);
            archive.set_preserve_permissions(true);
            archive.set_overwrite(false);
            archive.unpack(&dir)
        },
    )
    .await
    .map_err(|e| e.context(format!("restoring base backup {}", manifest.id)))?;
    write_recovery_settings(options, &manifest.id)
}

/// `recovery.signal` and the settings appended to `postgresql.auto.conf`.
fn write_recovery_settings(options: &PitrRestoreOptions, id: &str) -> Result<()> {
    let dir = &options.data_dir;
    let io = |what: &str, e: std::io::Error| {
        BackupError::new(BackupErrorKind::Io, format!("{what} in {}", dir.display())).caused_by(e)
    };
    private_file(&dir.join("recovery.signal")).map_err(|e| io("writing recovery.signal", e))?;
    let mut settings: Vec<(String, String)> = vec![
        (
            "restore_command".to_owned(),
            options.restore_command.clone(),
        ),
        ("recovery_target_action".to_owned(), "promote".to_owned()),
        ("recovery_target_timeline".to_owned(), "latest".to_owned()),
        // The copy must not push its new timeline into the archive the
        // source writes to (a `--set archive_mode=on` later wins).
        ("archive_mode".to_owned(), "off".to_owned()),
    ];
    if let Some((name, value)) = options.target.setting() {
        settings.push((name.to_owned(), value));
    }
    settings.extend(options.settings.iter().cloned());
    let header = format!(
        "pgharbor restore: base backup {id}, replaying WAL to {}",
        options.target.describe()
    );
    append_settings(dir, &header, &settings)
}

/// Appends `settings` to the data directory's `postgresql.auto.conf`
/// under a comment (later lines win over earlier ones).
pub(crate) fn append_settings(
    dir: &Path,
    header: &str,
    settings: &[(String, String)],
) -> Result<()> {
    let io = |what: &str, e: std::io::Error| {
        BackupError::new(BackupErrorKind::Io, format!("{what} in {}", dir.display())).caused_by(e)
    };
    let mut text = format!("\n# {header}\n");
    for (name, value) in settings {
        text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
    }
    let auto = dir.join("postgresql.auto.conf");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&auto)
        .map_err(|e| io("opening postgresql.auto.conf", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("writing postgresql.auto.conf", e))
}

/// `pg_ctl start`, then waits until recovery has ended; an error quoting the server's log when it
/// stops instead (a target past the archive's end, a missing WAL file).
pub(crate) async fn start_and_wait(
    pg_ctl: &Path,
    pg_controldata: &Path,
    dir: &Path,
    log_file: &Path,
) -> Result<()> {
    let started = pg_ctl_start(pg_ctl, dir, log_file).await;
    loop {
        if started && in_production(pg_controldata, dir).await {
            return Ok(());
        }
        if !dir.join("postmaster.pid").exists() {
            return Err(stopped_early(log_file));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The error for a server that stopped during recovery, quoting its log.
pub(crate) fn stopped_early(log_file: &Path) -> BackupError {
    BackupError::new(
        BackupErrorKind::Tool,
        format!(
            "the restored server stopped before recovery ended: {}",
            log_tail(log_file)
        ),
    )
}

/// `pg_ctl -w start`: whether it says the server started.
pub(crate) async fn pg_ctl_start(pg_ctl: &Path, dir: &Path, log_file: &Path) -> bool {
    let status = tokio::process::Command::new(pg_ctl)
        .arg("-D")
        .arg(dir)
        .arg("-l")
        .arg(log_file)
        .args(["-w", "-t", "86400", "start"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .await;
    status.is_ok_and(|s| s.success())
}

/// Whether recovery has ended: `pg_controldata` (in the C locale, whose
/// words are stable) says the cluster is `in production`.
async fn in_production(pg_controldata: &Path, dir: &Path) -> bool {
    let output = tokio::process::Command::new(pg_controldata)
        .arg("-D")
        .arg(dir)
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    output.is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with("Database cluster state:") && l.ends_with("in production"))
    })
}

/// The server log's last lines, joined.
pub(crate) fn log_tail(log_file: &Path) -> String {
    let text = std::fs::read_to_string(log_file).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(6)..].join(" | ")
}

/// `text` quoted for a POSIX shell when it needs it.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:=@%+,".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_keeps_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("/usr/bin/pg_ctl"), "/usr/bin/pg_ctl");
        assert_eq!(shell_quote("s3://b/p"), "s3://b/p");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn a_failed_restore_removes_only_what_it_made() {
        let scratch = tempfile::tempdir().unwrap();
        let existing = scratch.path().join("mounted");
        std::fs::create_dir(&existing).unwrap();
        let made = prepare_empty_dir(&existing).unwrap();
        std::fs::create_dir_all(existing.join("base/1")).unwrap();
        std::fs::write(existing.join("PG_VERSION"), "16").unwrap();
        made.undo();
        assert!(existing.is_dir(), "the directory that was there is kept");
        assert_eq!(std::fs::read_dir(&existing).unwrap().count(), 0);

        let nested = scratch.path().join("new/deeper/data");
        let made = prepare_empty_dir(&nested).unwrap();
        std::fs::write(nested.join("PG_VERSION"), "16").unwrap();
        made.undo();
        assert!(!scratch.path().join("new").exists(), "what it made is gone");
        assert!(scratch.path().is_dir());
    }

    #[test]
    fn a_transaction_is_reached_by_a_base_backup_that_ended_before_it_began() {
        assert_eq!(full_xid(7311, (3 << 32) | 9000), (3 << 32) | 7311);
        assert_eq!(full_xid((2 << 32) | 5, (3 << 32) | 9000), (2 << 32) | 5);
    }
}
