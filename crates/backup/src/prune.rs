//! `prune`: grandfather-father-son retention that never deletes the
//! newest verified (else newest complete) backup. Logical backups and
//! physical base backups at one destination are planned apart, each kind by
//! its own rules ([`KindRetention`]): a run of nightly logical backups never
//! pushes out the base backups a point-in-time restore needs, nor the other
//! way round. A backup without a manifest yet is of the kind its files say
//! (`base.tar…`: a base backup), and is kept while it is newer than the
//! newest good backup of its kind: it may still be running (a backup writes
//! its manifest last); once a later backup of its kind has finished, it is
//! a failed one.

use std::collections::HashSet;

use chrono::{Datelike, FixedOffset};
use pgharbor_objstore::Destination;
use serde::Serialize;

use crate::error::{BackupError, BackupErrorKind, Result};
use crate::list::{self, BackupEntry, BackupState};
use crate::manifest::MANIFEST_NAME;

/// The bucket (day, week, month) a backup's local time falls in.
type BucketKey = fn(chrono::DateTime<FixedOffset>) -> (i32, u32);

/// What to keep. Good (complete or verified) backups are kept when they
/// are among the newest `keep_last`, or the newest of one of the newest
/// `keep_daily` days, `keep_weekly` ISO weeks or `keep_monthly` months that
/// have a backup (like restic and borg).
#[derive(Debug, Clone, Default)]
pub struct Retention {
    /// The newest N good backups.
    pub keep_last: usize,
    /// The newest good backup of each of the last D days with one.
    pub keep_daily: usize,
    /// The newest good backup of each of the last W weeks with one.
    pub keep_weekly: usize,
    /// The newest good backup of each of the last M months with one.
    pub keep_monthly: usize,
    /// The time zone days, weeks and months are counted in; `None` is UTC.
    pub utc_offset: Option<FixedOffset>,
}

/// One backup kept, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    /// The backup.
    pub id: String,
    /// The rules keeping it (`last`, `daily`, `weekly`, `monthly`,
    /// `newest good`, `newer than the newest good`).
    pub reasons: Vec<String>,
}

/// What `prune` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    /// Backups kept.
    pub kept: Vec<Kept>,
    /// Backups removed (or to be removed).
    pub removed: Vec<String>,
    /// Whether nothing was deleted.
    pub dry_run: bool,
}

/// Each kind of backup's rules; a kind without is left alone.
#[derive(Debug, Clone, Default)]
pub struct KindRetention {
    /// Logical backups (PostgreSQL dumps, Redis snapshots) and backups
    /// whose manifest is unreadable.
    pub logical: Option<Retention>,
    /// Physical base backups (point-in-time recovery).
    pub base: Option<Retention>,
}

impl KindRetention {
    /// The same rules for both kinds, each planned on its own.
    pub fn both(policy: &Retention) -> KindRetention {
        KindRetention {
            logical: Some(policy.clone()),
            base: Some(policy.clone()),
        }
    }
}

/// Whether `entry` is a base backup: by its manifest, or, without one (a
/// base backup still running, or interrupted), by its files.
async fn is_base(dest: &Destination, entry: &BackupEntry) -> Result<bool> {
    if let Some(manifest) = &entry.manifest {
        return Ok(manifest.kind == crate::manifest::BackupKind::Base);
    }
    let objects = dest.list(&entry.id).await?;
    Ok(objects.iter().any(|o| {
        o.name
            .rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with("base.tar"))
    }))
}

/// Applies `policy` to each kind of backup at `dest` on its own; with
/// `dry_run` only reports.
pub async fn prune(dest: &Destination, policy: &Retention, dry_run: bool) -> Result<PruneReport> {
    prune_by_kind(dest, &KindRetention::both(policy), dry_run).await
}

/// Applies each kind's rules to its backups at `dest` (a kind without rules
/// is kept whole); with `dry_run` only reports.
pub async fn prune_by_kind(
    dest: &Destination,
    policies: &KindRetention,
    dry_run: bool,
) -> Result<PruneReport> {
    let entries = list::list(dest).await?;
    let mut kinds = Vec::with_capacity(entries.len());
    for entry in &entries {
        kinds.push(is_base(dest, entry).await?);
    }
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for (base, policy) in [(false, &policies.logical), (true, &policies.base)] {
        let Some(policy) = policy else { continue };
        let of_kind: Vec<BackupEntry> = entries
            .iter()
            .zip(&kinds)
            .filter(|(_, is_base)| **is_base == base)
            .map(|(e, _)| e.clone())
            .collect();
        let (k, r) = plan(&of_kind, policy)?;
        kept.extend(k);
        removed.extend(r);
    }
    if !dry_run {
        for id in &removed {
            // The manifest first: an interrupted prune leaves a failed
            // backup, never a complete-looking one with missing files.
            dest.delete(&format!("{id}/{MANIFEST_NAME}"))
                .await
                .map_err(|e| BackupError::from(e).context(format!("pruning backup {id}")))?;
            dest.delete_prefix(id).await.map_err(|e| {
                BackupError::from(e)
                    .context(format!("pruning backup {id}"))
                    .followed_by(
                        "Its manifest was deleted first, so what is left of it is no complete \
                         backup; run the same prune again to remove the rest",
                    )
            })?;
        }
    }
    Ok(PruneReport {
        kept,
        removed,
        dry_run,
    })
}

/// Decides what to keep and remove from `entries` (newest first).
pub fn plan(entries: &[BackupEntry], policy: &Retention) -> Result<(Vec<Kept>, Vec<String>)> {
    if policy.keep_last + policy.keep_daily + policy.keep_weekly + policy.keep_monthly == 0 {
        return Err(BackupError::new(
            BackupErrorKind::InvalidInput,
            "a retention policy needs at least one of keep-last, keep-daily, keep-weekly, keep-monthly",
        ));
    }
    let offset = policy
        .utc_offset
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"));
    let good: Vec<&BackupEntry> = entries.iter().filter(|e| e.state.is_good()).collect();
    let protected = good
        .iter()
        .find(|e| e.state == BackupState::Verified)
        .or_else(|| good.first())
        .map(|e| e.id.clone());
    let newest_good = good.first().map(|e| e.time);
    let mut reasons: Vec<(String, Vec<String>)> =
        entries.iter().map(|e| (e.id.clone(), Vec::new())).collect();
    let mut add = |id: &str, why: &str| {
        if let Some((_, r)) = reasons.iter_mut().find(|(i, _)| i == id) {
            r.push(why.to_owned());
        }
    };
    for e in good.iter().take(policy.keep_last) {
        add(&e.id, "last");
    }
    let buckets: [(&str, usize, BucketKey); 3] = [
        ("daily", policy.keep_daily, |t| (t.year(), t.ordinal())),
        ("weekly", policy.keep_weekly, |t| {
            (t.iso_week().year(), t.iso_week().week())
        }),
        ("monthly", policy.keep_monthly, |t| (t.year(), t.month())),
    ];
    for (why, count, key) in buckets {
        let mut seen = HashSet::new();
        for e in &good {
            if seen.len() >= count {
                break;
            }
            if seen.insert(key(e.time.with_timezone(&offset))) {
                add(&e.id, why);
            }
        }
    }
    if let Some(id) = &protected {
        add(id, "newest good");
    }
    for e in entries.iter().filter(|e| !e.state.is_good()) {
        if newest_good.is_none_or(|t| e.time > t) {
            add(&e.id, "newer than the newest good");
        }
    }
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for (id, why) in reasons {
        if why.is_empty() {
            removed.push(id);
        } else {
            kept.push(Kept { id, reasons: why });
        }
    }
    Ok((kept, removed))
}
