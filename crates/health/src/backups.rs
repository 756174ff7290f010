//! Backup destinations in `status --backups DEST` and `serve`'s
//! `[[backups]]`: the backups `pgharbor backup` wrote there, read the way
//! `pgharbor backups list` reads them (manifests, sizes, verification
//! records), summed up as the last good backup, the last verified one, the
//! number of backups in each state, and the problems an operator must see:
//! no restorable backup, the last good one older than allowed, the newest
//! one failed, a corrupt one, none ever verified.

use crate::duration::format_secs;
use crate::status::{Problem, Severity};
use chrono::{DateTime, Utc};
use pgharbor_backup::{BackupEntry, BackupKind, BackupState};
use pgharbor_objstore::{Destination, DestinationOptions};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The default for how old the last good backup may be: a daily backup
/// with two hours of slack.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(26 * 3600);

/// A backup without a manifest whose files were written this recently is
/// taken to be still running, not failed.
pub const RUNNING_GRACE: Duration = Duration::from_secs(600);

/// A backup destination to watch.
#[derive(Debug, Clone)]
pub struct BackupWatch {
    /// Name shown on the dashboard and in metric labels.
    pub name: String,
    /// The destination.
    pub dest: Arc<Destination>,
    /// How old the last good backup may be before it is a problem.
    pub max_age: Duration,
}

impl BackupWatch {
    /// Parses `dest` (a directory, `file://`, `s3://`, `az://`) with
    /// credentials and endpoints from `options`; nothing is contacted yet.
    pub fn parse(
        name: &str,
        dest: &str,
        options: &DestinationOptions,
        max_age: Duration,
    ) -> crate::Result<BackupWatch> {
        let dest = Destination::parse(dest, options).map_err(|e| {
            crate::HealthError::new(crate::HealthErrorKind::InvalidInput, "")
                .caused_by(e)
                .context(format!("backups {name:?}"))
        })?;
        Ok(BackupWatch {
            name: name.to_owned(),
            dest: Arc::new(dest),
            max_age,
        })
    }
}

/// One backup, as the dashboard and `status` show it.
#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    /// The id (its folder).
    pub id: String,
    /// `postgres` or `redis` (`unknown` without a readable manifest).
    pub kind: &'static str,
    /// `complete`, `verified`, `failed` or `corrupt`.
    pub state: BackupState,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// When it finished (Unix time): the manifest's time, else the last
    /// file written.
    pub finished_unix: f64,
    /// Seconds since it finished.
    pub age_seconds: f64,
    /// Bytes stored.
    pub size: u64,
    /// How long it took, from the manifest.
    pub duration_seconds: Option<f64>,
    /// The databases it holds.
    pub databases: Vec<String>,
    /// When its last verification passed (Unix time).
    pub verified_unix: Option<f64>,
    /// Why it is failed or corrupt.
    pub problem: Option<String>,
}

/// Backups per state.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct BackupCounts {
    /// Complete, not (successfully) verified.
    pub complete: usize,
    /// Complete and verified.
    pub verified: usize,
    /// Without a manifest (failed, killed or running).
    pub failed: usize,
    /// Unreadable manifest, missing or wrong-sized file, failed verification.
    pub corrupt: usize,
}

/// What could be read about one backup destination.
#[derive(Debug, Clone, Serialize)]
pub struct BackupView {
    /// Name (from the `serve` configuration) or the destination itself.
    pub name: String,
    /// The destination, without credentials.
    pub dest: String,
    /// Whether the destination could be listed.
    pub readable: bool,
    /// Why it could not.
    pub error: Option<String>,
    /// The allowed age of the last good backup, seconds.
    pub max_age_seconds: f64,
    /// Backups per state.
    pub counts: BackupCounts,
    /// The newest backup, whatever its state.
    pub newest: Option<BackupSummary>,
    /// The newest complete or verified backup: what a restore would use.
    pub last_good: Option<BackupSummary>,
    /// The newest verified backup.
    pub last_verified: Option<BackupSummary>,
    /// The point-in-time WAL archive (`wal/`), when the destination has one.
    pub wal: Option<WalArchiveView>,
    /// What is wrong, most severe first.
    pub problems: Vec<Problem>,
}

/// The WAL archive `pgharbor archive` keeps at a destination (`wal/`).
#[derive(Debug, Clone, Serialize)]
pub struct WalArchiveView {
    /// WAL files archived (with an index entry).
    pub files: usize,
    /// The newest one's name.
    pub last_archived: String,
    /// When it was archived (Unix time).
    pub last_archived_unix: f64,
    /// Seconds since then.
    pub age_seconds: f64,
    /// What the archiver last published (`wal/archiver.json`): its
    /// failures, whether it runs, whether its slot was lost.
    pub archiver: Option<pgharbor_pitr::ArchiverStatus>,
}

/// Whether `object` is an archived WAL file's index entry
/// (`wal/<24 hex digits>.json`, `wal/<8 hex digits>.history.json`), not
/// another file of the archive (`wal/cluster.json`).
fn is_wal_entry(object: &str) -> bool {
    let Some(name) = object
        .rsplit('/')
        .next()
        .and_then(|n| n.strip_suffix(".json"))
    else {
        return false;
    };
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    match name.strip_suffix(".history") {
        Some(timeline) => timeline.len() == 8 && hex(timeline),
        None => name.len() == 24 && hex(name),
    }
}

/// The WAL archive under `wal/` at `dest`, `None` when there is none.
async fn wal_archive(dest: &Destination, now: f64) -> Option<WalArchiveView> {
    let objects = dest.list("wal").await.ok()?;
    let entries: Vec<_> = objects.iter().filter(|o| is_wal_entry(&o.name)).collect();
    let newest = entries.iter().max_by(|a, b| a.name.cmp(&b.name))?;
    let archived = newest
        .last_modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let name = newest.name.rsplit('/').next().unwrap_or_default();
    let archiver = pgharbor_pitr::read_archiver_status(dest)
        .await
        .ok()
        .flatten();
    Some(WalArchiveView {
        files: entries.len(),
        last_archived: name.trim_end_matches(".json").to_owned(),
        last_archived_unix: archived,
        age_seconds: (now - archived).max(0.0),
        archiver,
    })
}

impl BackupView {
    /// `ok`, `warning` or `critical`: the worst problem.
    pub fn health(&self) -> &'static str {
        match self.problems.first().map(|p| p.severity) {
            None => "ok",
            Some(Severity::Warning) => "warning",
            Some(Severity::Critical) => "critical",
        }
    }
}

/// Lists the destination (bounded by `timeout`) and sums it up.
pub async fn inspect(watch: &BackupWatch, timeout: Duration) -> BackupView {
    let dest = watch.dest.to_string();
    let listed = match tokio::time::timeout(timeout, pgharbor_backup::list(&watch.dest)).await {
        Ok(Ok(entries)) => Ok(entries),
        Ok(Err(e)) => Err(pgharbor_backup::chain_text(&e)),
        Err(_) => Err(format!(
            "no answer within {}",
            format_secs(timeout.as_secs_f64())
        )),
    };
    let now = crate::status::now_unix();
    match listed {
        Ok(entries) => {
            let mut view = summarize(&watch.name, &dest, watch.max_age, &entries, now);
            let wal = tokio::time::timeout(timeout, wal_archive(&watch.dest, now)).await;
            view.wal = wal.ok().flatten();
            let has_base = entries.iter().any(|e| {
                e.manifest
                    .as_ref()
                    .is_some_and(|m| m.kind == BackupKind::Base)
            });
            view.problems.extend(wal_problems(&view, has_base));
            view.problems.sort_by_key(|p| p.severity);
            view
        }
        Err(error) => unreadable(watch, error),
    }
}

/// A destination with base backups needs a WAL archive that keeps up, and
/// an archiver that runs with its slot intact.
fn wal_problems(view: &BackupView, has_base: bool) -> Vec<Problem> {
    let problem = |severity: Severity, message: String| Problem {
        severity,
        section: "backups",
        message,
    };
    let mut problems = Vec::new();
    match &view.wal {
        None if has_base => problems.push(problem(
            Severity::Warning,
            format!(
                "{} has base backups but no archived WAL: is `pgharbor archive` running?",
                view.dest
            ),
        )),
        Some(wal) if wal.age_seconds > view.max_age_seconds => problems.push(problem(
            Severity::Warning,
            format!(
                "the newest archived WAL file at {}, {}, is {} old: is `pgharbor archive` running?",
                view.dest,
                wal.last_archived,
                format_secs(wal.age_seconds)
            ),
        )),
        _ => {}
    }
    let Some(archiver) = view.wal.as_ref().and_then(|w| w.archiver.as_ref()) else {
        return problems;
    };
    let last = archiver
        .last_failure
        .as_deref()
        .map(|f| format!(" (last failure: {f})"))
        .unwrap_or_default();
    if archiver.slot_lost {
        problems.push(problem(
            Severity::Critical,
            format!(
                "the WAL archiver of {} stopped: its replication slot \"{}\" is lost (the server \
                 removed WAL the archive had not received); take a new base backup and restart \
                 it with --recreate-lost-slot",
                view.dest, archiver.slot
            ),
        ));
    } else if !archiver.running {
        problems.push(problem(
            Severity::Warning,
            format!(
                "the WAL archiver of {} stopped {} ago{last}",
                view.dest,
                format_secs(archiver.age_seconds())
            ),
        ));
    } else if archiver.is_stale(chrono::Utc::now()) {
        problems.push(problem(
            Severity::Warning,
            format!(
                "the WAL archiver of {} last reported {} ago: is `pgharbor archive` running?{last}",
                view.dest,
                format_secs(archiver.age_seconds())
            ),
        ));
    }
    problems
}

/// The view of a destination that could not be listed.
pub(crate) fn unreadable(watch: &BackupWatch, error: String) -> BackupView {
    let dest = watch.dest.to_string();
    BackupView {
        name: watch.name.clone(),
        readable: false,
        problems: vec![Problem {
            severity: Severity::Critical,
            section: "backups",
            message: format!("cannot read the backups at {dest}: {error}"),
        }],
        dest,
        error: Some(error),
        max_age_seconds: watch.max_age.as_secs_f64(),
        counts: BackupCounts::default(),
        newest: None,
        last_good: None,
        last_verified: None,
        wal: None,
    }
}

/// Sums up `entries` (newest first, as [`pgharbor_backup::list`] returns
/// them) as seen at `now` (Unix time).
pub fn summarize(
    name: &str,
    dest: &str,
    max_age: Duration,
    entries: &[BackupEntry],
    now: f64,
) -> BackupView {
    let mut counts = BackupCounts::default();
    for e in entries {
        match e.state {
            BackupState::Complete => counts.complete += 1,
            BackupState::Verified => counts.verified += 1,
            BackupState::Failed => counts.failed += 1,
            BackupState::Corrupt => counts.corrupt += 1,
        }
    }
    let summary = |e: &BackupEntry| summary(e, now);
    let mut view = BackupView {
        name: name.to_owned(),
        dest: dest.to_owned(),
        readable: true,
        error: None,
        max_age_seconds: max_age.as_secs_f64(),
        counts,
        newest: entries.first().map(summary),
        last_good: entries.iter().find(|e| e.state.is_good()).map(summary),
        last_verified: entries
            .iter()
            .find(|e| e.state == BackupState::Verified)
            .map(summary),
        wal: None,
        problems: Vec::new(),
    };
    view.problems = problems(&view, entries);
    view
}

fn unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn summary(e: &BackupEntry, now: f64) -> BackupSummary {
    let finished_unix = match (&e.manifest, e.last_written) {
        (Some(m), _) => unix(m.finished),
        (None, Some(written)) => unix(written),
        (None, None) => unix(e.time),
    };
    BackupSummary {
        id: e.id.clone(),
        kind: match e.manifest.as_ref().map(|m| m.kind) {
            Some(BackupKind::Postgres) => "postgres",
            Some(BackupKind::Redis) => "redis",
            Some(BackupKind::Base) => "base",
            None => "unknown",
        },
        state: e.state,
        started: e.time.to_rfc3339(),
        finished_unix,
        age_seconds: (now - finished_unix).max(0.0),
        size: e.size,
        duration_seconds: e.manifest.as_ref().map(|m| m.duration_seconds),
        databases: e.databases.clone(),
        verified_unix: e.verified_at.map(unix),
        problem: e.problem.clone(),
    }
}

fn problems(view: &BackupView, entries: &[BackupEntry]) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut add = |severity, message: String| {
        out.push(Problem {
            severity,
            section: "backups",
            message,
        })
    };
    let dest = &view.dest;
    match &view.last_good {
        None if entries.is_empty() => add(Severity::Critical, format!("no backup at {dest}")),
        None => add(
            Severity::Critical,
            format!(
                "no restorable backup at {dest}: {} failed, {} corrupt",
                view.counts.failed, view.counts.corrupt
            ),
        ),
        Some(good) if good.age_seconds > view.max_age_seconds => add(
            Severity::Critical,
            format!(
                "the last good backup {} finished {} ago, more than the allowed {}",
                good.id,
                format_secs(good.age_seconds),
                format_secs(view.max_age_seconds)
            ),
        ),
        Some(_) => {}
    }
    if let Some(newest) = &view.newest {
        let running =
            newest.state == BackupState::Failed && newest.age_seconds < RUNNING_GRACE.as_secs_f64();
        if !newest.state.is_good() && !running && view.last_good.is_some() {
            add(
                Severity::Warning,
                format!(
                    "the newest backup {} is {}: {}",
                    newest.id,
                    newest.state.name(),
                    newest.problem.as_deref().unwrap_or("no reason recorded")
                ),
            );
        }
    }
    let newest_id = view.newest.as_ref().map(|n| n.id.as_str());
    let corrupt: Vec<String> = entries
        .iter()
        .filter(|e| e.state == BackupState::Corrupt && Some(e.id.as_str()) != newest_id)
        .map(|e| format!("{} ({})", e.id, e.problem.as_deref().unwrap_or("corrupt")))
        .collect();
    if !corrupt.is_empty() {
        add(
            Severity::Warning,
            format!("corrupt backups at {dest}: {}", corrupt.join("; ")),
        );
    }
    if let (Some(good), None) = (&view.last_good, &view.last_verified) {
        let how = if good.kind == "base" {
            "--pitr"
        } else {
            "--restore-to URL"
        };
        add(
            Severity::Warning,
            format!(
                "no backup at {dest} has been verified: run pgharbor backups verify {dest} {how}"
            ),
        );
    }
    out.sort_by_key(|p| p.severity);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wal_index_entries_count_as_archived_files() {
        assert!(is_wal_entry("wal/000000010000000000000003.json"));
        assert!(is_wal_entry("prefix/wal/00000002.history.json"));
        assert!(!is_wal_entry("wal/cluster.json"));
        assert!(!is_wal_entry("wal/000000010000000000000003.zst"));
    }

    const HOUR: f64 = 3600.0;

    /// A backup without a manifest, its files last written `written_ago` before `now`.
    fn entry(id: &str, state: BackupState, now: f64, written_ago: f64) -> BackupEntry {
        let at = |unix: f64| DateTime::<Utc>::from_timestamp(unix as i64, 0).unwrap();
        BackupEntry {
            id: id.to_owned(),
            time: at(now - written_ago),
            age_seconds: written_ago as i64,
            databases: vec!["app".to_owned()],
            size: 1000,
            state,
            problem: (!state.is_good()).then(|| format!("{id} is bad")),
            verified_at: (state == BackupState::Verified).then(|| at(now - written_ago)),
            last_written: Some(at(now - written_ago)),
            manifest: None,
        }
    }

    fn messages(view: &BackupView) -> Vec<String> {
        view.problems.iter().map(|p| p.message.clone()).collect()
    }

    #[test]
    fn an_empty_destination_is_critical() {
        let view = summarize("b", "/srv/b", DEFAULT_MAX_AGE, &[], 1e9);
        assert_eq!(messages(&view), ["no backup at /srv/b"]);
        assert_eq!(view.health(), "critical");
    }

    #[test]
    fn a_fresh_verified_backup_is_ok_and_a_stale_one_critical() {
        let now = 1e9;
        let fresh = [entry("1", BackupState::Verified, now, HOUR)];
        let view = summarize("b", "/srv/b", DEFAULT_MAX_AGE, &fresh, now);
        assert!(view.problems.is_empty(), "{:?}", messages(&view));
        assert_eq!(view.last_verified.as_ref().unwrap().id, "1");
        let stale = [entry("1", BackupState::Verified, now, 30.0 * HOUR)];
        let view = summarize("b", "/srv/b", DEFAULT_MAX_AGE, &stale, now);
        assert_eq!(view.health(), "critical");
        assert!(messages(&view)[0].contains("finished 1d 6h ago, more than the allowed 1d 2h"));
    }

    #[test]
    fn a_running_backup_is_not_a_failure_until_it_goes_quiet() {
        let now = 1e9;
        let good = entry("1", BackupState::Verified, now, 2.0 * HOUR);
        let running = [entry("2", BackupState::Failed, now, 60.0), good.clone()];
        let view = summarize("b", "/srv/b", DEFAULT_MAX_AGE, &running, now);
        assert!(view.problems.is_empty(), "{:?}", messages(&view));
        let quiet = [entry("2", BackupState::Failed, now, HOUR), good];
        let view = summarize("b", "/srv/b", DEFAULT_MAX_AGE, &quiet, now);
        assert_eq!(messages(&view), ["the newest backup 2 is failed: 2 is bad"]);
        assert_eq!(view.health(), "warning");
    }

    #[test]
    fn corrupt_and_unverified_backups_are_warnings_and_nothing_good_is_critical() {
        let now = 1e9;
        let entries = [
            entry("3", BackupState::Complete, now, HOUR),
            entry("2", BackupState::Corrupt, now, 2.0 * HOUR),
        ];
        let view = summarize("b", "/srv/b", DEFAULT_MAX_AGE, &entries, now);
        assert_eq!(view.counts.corrupt, 1);
        assert_eq!(
            messages(&view),
            [
                "corrupt backups at /srv/b: 2 (2 is bad)",
                "no backup at /srv/b has been verified: run pgharbor backups verify /srv/b --restore-to URL"
            ]
        );
        let bad = [
            entry("2", BackupState::Corrupt, now, HOUR),
            entry("1", BackupState::Failed, now, 2.0 * HOUR),
        ];
        let view = summarize("b", "/srv/b", DEFAULT_MAX_AGE, &bad, now);
        assert_eq!(view.health(), "critical");
        assert_eq!(
            messages(&view)[0],
            "no restorable backup at /srv/b: 1 failed, 1 corrupt"
        );
    }
}
