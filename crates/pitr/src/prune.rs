//! [`prune_wal`]: WAL retention without gaps. Base backups are pruned by
//! the backups' own rules (`pgharbor_backup::prune`); then the archived WAL
//! segments older than the first segment the oldest remaining base backup
//! needs go — never one a remaining base backup needs, and nothing at all
//! while no base backup is left (the WAL may be all there is). Timeline
//! history files are tiny and always kept.

use pgharbor_backup::{list, BackupKind, Manifest, Result};
use pgharbor_objstore::Destination;
use serde::Serialize;

use crate::lsn::Segment;
use crate::walstore::{archived_names, WAL_FOLDER};

/// What [`prune_wal`] did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct WalPruneReport {
    /// The first segment kept: the oldest remaining base backup's first.
    pub kept_from: Option<String>,
    /// The WAL files deleted (or to be deleted).
    pub removed: Vec<String>,
    /// Whether nothing was deleted.
    pub dry_run: bool,
}

/// Deletes the WAL no base backup at `dest` needs, counting those in
/// `removed_backups` (being pruned) as gone.
pub async fn prune_wal(
    dest: &Destination,
    removed_backups: &[String],
    dry_run: bool,
) -> Result<WalPruneReport> {
    let bases: Vec<Manifest> = list(dest)
        .await?
        .into_iter()
        .filter(|e| !removed_backups.contains(&e.id))
        .filter_map(|e| e.manifest)
        .filter(|m| m.kind == BackupKind::Base)
        .collect();
    let oldest = bases
        .iter()
        .filter_map(|m| m.base.as_ref())
        .filter_map(|b| Some((Segment::parse(&b.start_wal, b.wal_segment_size)?, b)))
        .min_by_key(|(segment, _)| segment.number);
    let Some((first, base)) = oldest else {
        return Ok(WalPruneReport {
            kept_from: None,
            removed: Vec::new(),
            dry_run,
        });
    };
    let removed: Vec<String> = archived_names(dest)
        .await?
        .into_iter()
        .filter(|name| {
            Segment::parse(name, base.wal_segment_size).is_some_and(|s| s.number < first.number)
        })
        .collect();
    if !dry_run {
        for name in &removed {
            // The index entry first: a file without one is not archived,
            // so an interrupted prune never leaves an entry without its file.
            // Deleting a missing object is no error: both endings are tried.
            dest.delete(&format!("{WAL_FOLDER}/{name}.json")).await?;
            for ending in [".zst", ".zst.age"] {
                dest.delete(&format!("{WAL_FOLDER}/{name}{ending}")).await?;
            }
        }
    }
    Ok(WalPruneReport {
        kept_from: Some(base.start_wal.clone()),
        removed,
        dry_run,
    })
}
