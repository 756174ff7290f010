//! The private temporary files of a restore (`pgharbor-toc-…`,
//! `pgharbor-restore-…`, `pgharbor-pre-data-…`): created 0600 whatever the
//! umask, named with the pid of the process that owns them, locked
//! (`flock`) by it for as long as it holds them, and swept when the next one
//! is created: a file whose process is gone (a `kill -9`, the OOM killer) is
//! a leftover holding a copy of a backup's rows, removed then.
//!
//! A file is removed only when both say its owner is gone: no process of its
//! pid here, and its lock is free. The pid alone would not do where two
//! containers share a temporary directory (each sees the other's pids as
//! ended); the lock alone would not keep a file of an older pgharbor that
//! did not lock it.

use std::path::Path;

use tempfile::NamedTempFile;

use crate::error::{BackupError, BackupErrorKind, Result};

/// The prefixes of every temporary file a restore creates.
const PREFIXES: [&str; 3] = ["pgharbor-toc-", "pgharbor-restore-", "pgharbor-pre-data-"];

/// A new temporary file `PREFIX<pid>-<random>SUFFIX` in `dir` (`$TMPDIR`
/// when `None`), readable by its owner alone, after removing the files of
/// `PREFIXES` in that directory whose process no longer runs.
pub(crate) fn temp_file(dir: Option<&Path>, prefix: &str, suffix: &str) -> Result<NamedTempFile> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
    remove_stale(&dir);
    let prefix = format!("{prefix}{}-", std::process::id());
    let failed = |e: std::io::Error| {
        BackupError::new(
            BackupErrorKind::Io,
            format!("creating a temporary file in {}", dir.display()),
        )
        .caused_by(e)
    };
    let file = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(suffix)
        .permissions(std::fs::Permissions::from_mode(
            pgharbor_objstore::FILE_MODE,
        ))
        .tempfile_in(&dir)
        .map_err(failed)?;
    rustix::fs::flock(file.as_file(), rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| failed(e.into()))?;
    Ok(file)
}

/// Removes this user's temporary files of `PREFIXES` in `dir` whose owning
/// process is gone and whose lock is free; every other file (another
/// user's, one without a pid in its name, one of a running process, one
/// still locked) is left alone. Best effort: a file that cannot be removed
/// stays for a later sweep.
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if is_running(pid) || !owned_file(&entry, me) {
            continue;
        }
        let path = entry.path();
        if lock_is_free(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Whether nobody holds `path`'s lock: taken without waiting (and let go
/// when the file closes), not following a link.
fn lock_is_free(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt as _;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
    else {
        return false;
    };
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// The pid in a temporary file's name `PREFIX<pid>-…`, for the names of
/// `PREFIXES` alone.
fn owner_pid(name: &str) -> Option<i32> {
    let rest = PREFIXES.iter().find_map(|p| name.strip_prefix(p))?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok().filter(|pid| *pid > 0)
}

/// Whether process `pid` exists (signal 0; a process of another user
/// answers `EPERM`, and runs too).
fn is_running(pid: i32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// A regular file (not a link) owned by the user `uid`.
fn owned_file(entry: &std::fs::DirEntry, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    entry
        .metadata()
        .is_ok_and(|m| m.file_type().is_file() && m.uid() == uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// The table of contents and decompressed dumps of a restore (from a
    /// local directory, S3 or Azure alike), and the pre-data script, are
    /// private from creation under the usual umask 022, and named with the
    /// pid of their process.
    #[test]
    fn temporary_files_are_private_and_named_with_their_pid() {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
        let dir = tempfile::tempdir().unwrap();
        let file = temp_file(Some(dir.path()), "pgharbor-toc-", ".dump").unwrap();
        let mode = file.as_file().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        let name = file.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(owner_pid(name), Some(std::process::id() as i32), "{name}");
        let e = temp_file(Some(&dir.path().join("missing")), "x", ".dump").unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    /// A file of an ended process is removed by the next temporary file's
    /// creation; a running process's, one without a pid and another
    /// program's are kept.
    #[test]
    fn files_of_ended_processes_are_removed_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut ended = std::process::Command::new("true").spawn().unwrap();
        let ended_pid = ended.id();
        ended.wait().unwrap();
        let stale = dir
            .path()
            .join(format!("pgharbor-restore-{ended_pid}-abc.dump"));
        let stale_toc = dir
            .path()
            .join(format!("pgharbor-toc-{ended_pid}-abc.dump"));
        let live = dir
            .path()
            .join(format!("pgharbor-restore-{}-abc.dump", std::process::id()));
        let unnamed = dir.path().join("pgharbor-restore-abc.dump");
        let other = dir.path().join(format!("other-{ended_pid}-abc.dump"));
        for path in [&stale, &stale_toc, &live, &unnamed, &other] {
            std::fs::write(path, b"rows").unwrap();
        }
        let _file = temp_file(Some(dir.path()), "pgharbor-pre-data-", ".sql").unwrap();
        assert!(!stale.exists() && !stale_toc.exists());
        assert!(live.exists() && unnamed.exists() && other.exists());
    }

    /// A file whose pid is not a process here but whose lock is held (its
    /// owner runs in another PID namespace sharing the directory) is kept,
    /// and removed once the lock is let go.
    #[test]
    fn a_locked_file_of_an_unknown_pid_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut ended = std::process::Command::new("true").spawn().unwrap();
        let ended_pid = ended.id();
        ended.wait().unwrap();
        let foreign = dir
            .path()
            .join(format!("pgharbor-restore-{ended_pid}-abc.dump"));
        std::fs::write(&foreign, b"rows").unwrap();
        let holder = std::fs::File::open(&foreign).unwrap();
        rustix::fs::flock(&holder, rustix::fs::FlockOperation::LockExclusive).unwrap();
        let _first = temp_file(Some(dir.path()), "pgharbor-toc-", ".dump").unwrap();
        assert!(foreign.exists(), "a locked file was removed");
        drop(holder);
        let _second = temp_file(Some(dir.path()), "pgharbor-toc-", ".dump").unwrap();
        assert!(!foreign.exists(), "a file nobody holds was kept");
    }

    /// The file a restore holds is locked: another sweep cannot take it.
    #[test]
    fn a_held_temporary_file_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let file = temp_file(Some(dir.path()), "pgharbor-restore-", ".dump").unwrap();
        assert!(!lock_is_free(file.path()));
        let path = file.path().to_path_buf();
        drop(file);
        assert!(!path.exists());
    }
}
