//! The slot guard: how much WAL the archiver's replication slot makes the
//! server keep, how far the archive is behind the server, how much waits
//! in the spool — and what to do when the slot holds back too much. A
//! slot that holds WAL forever (pg_receivewal failing to connect, say)
//! fills the server's `pg_wal` until PostgreSQL stops; an alert threshold
//! logs and counts it, and only with an explicit threshold of its own is
//! the slot dropped, which keeps the server running at the price of a gap
//! in the archive (a new base backup starts a new restorable range). A
//! slot the server has invalidated (`wal_status = 'lost'`, over
//! `max_slot_wal_keep_size`) is reported as such: the archiver stops,
//! unless told to re-create it.

use std::path::Path;

use pgharbor_backup::{BackupError, Result};
use pgharbor_conn::{connect, ConnConfig};
use serde::Serialize;

use chrono::{DateTime, Utc};

use crate::archive::{ArchiveProgress, SharedProgress};
use crate::lsn::Segment;
use crate::state::{lag_start, seconds_since, slot_view};

/// The thresholds (bytes of WAL the slot holds back).
#[derive(Debug, Clone, Copy, Default)]
pub struct SlotGuard {
    /// Log an error and count an alert above this.
    pub alert_bytes: Option<u64>,
    /// Drop the slot above this (explicit; the archive gets a gap).
    pub drop_bytes: Option<u64>,
}

/// What a look at the server found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SlotState {
    /// WAL the slot makes the server keep (`pg_current_wal_lsn() - restart_lsn`).
    pub retained_bytes: u64,
    /// WAL written by the server and not yet in the archive.
    pub lag_bytes: u64,
    /// Bytes waiting in the spool.
    pub spool_bytes: u64,
    /// The age of the oldest WAL not yet archived ([`crate::state`]).
    pub lag_seconds: Option<f64>,
    /// The slot's `wal_status` (PostgreSQL 13+).
    pub wal_status: Option<String>,
}

/// What the archiver must do after a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardAction {
    /// Nothing.
    Continue,
    /// Drop the slot (over [`SlotGuard::drop_bytes`]).
    DropSlot,
    /// The server has invalidated the slot: WAL the archive lacks is gone.
    SlotLost,
}

/// Reads the slot's state, records it in `progress` and applies `guard`.
pub(crate) async fn look(
    server: &ConnConfig,
    slot: &str,
    spool: &Path,
    segment_size: u64,
    guard: SlotGuard,
    progress: &SharedProgress,
) -> Result<GuardAction> {
    let (client, _task) = connect(server).await?;
    let row = client
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint",
            &[],
        )
        .await
        .map_err(|e| BackupError::postgres("reading the server's WAL position", e))?;
    let current = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
    let Some(view) = slot_view(&client, slot).await? else {
        return Ok(GuardAction::Continue);
    };
    let retained = view.retained_bytes;
    let now = Utc::now();
    let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
    let archived_through = p
        .last_archived
        .as_deref()
        .and_then(|name| Segment::parse(name, segment_size))
        .map(|s| (s.number + 1) * segment_size);
    let lag_seconds = note_position(&mut p, archived_through, current, now);
    let was_unreserved = p
        .slot
        .as_ref()
        .is_some_and(|s| s.wal_status.as_deref() == Some("unreserved"));
    if view.wal_status.as_deref() == Some("unreserved") && !was_unreserved {
        tracing::warn!(
            "replication slot \"{slot}\" holds back {retained} bytes of WAL, over \
             max_slot_wal_keep_size (wal_status = unreserved): the server removes that WAL at its \
             next checkpoint unless the archiver catches up first, and the archive then has a gap"
        );
    }
    p.slot = Some(SlotState {
        retained_bytes: retained,
        lag_bytes: archived_through.map_or(retained, |through| current.saturating_sub(through)),
        spool_bytes: spool_bytes(spool),
        lag_seconds,
        wal_status: view.wal_status.clone(),
    });
    if view.is_lost() {
        return Ok(GuardAction::SlotLost);
    }
    if guard.drop_bytes.is_some_and(|limit| retained > limit) {
        return Ok(GuardAction::DropSlot);
    }
    if guard.alert_bytes.is_some_and(|limit| retained > limit) {
        p.guard_alerts += 1;
        tracing::error!(
            "replication slot \"{slot}\" holds back {retained} bytes of WAL on the server, over the \
             alert threshold: its pg_wal grows until the archiver catches up"
        );
    }
    Ok(GuardAction::Continue)
}

/// Records the server's position `current` seen at `now` and returns the
/// archive's lag in seconds ([`crate::state`]): from the earlier of when
/// the newest archived segment was archived and the first look that saw
/// the server past its end (`archived_through`); 0 when the server is not
/// past it; `None` before anything is archived (from the first look then).
fn note_position(
    p: &mut ArchiveProgress,
    archived_through: Option<u64>,
    current: u64,
    now: DateTime<Utc>,
) -> Option<f64> {
    p.last_look = Some((now, current));
    p.positions_seen.push((now, current));
    if let Some(through) = archived_through {
        // Positions only grow: what is left is the looks past the end.
        p.positions_seen.retain(|(_, lsn)| *lsn > through);
    }
    if p.positions_seen.len() > MAX_POSITIONS {
        p.positions_seen.remove(1);
    }
    if archived_through.is_some_and(|through| current <= through) {
        // Not past the end: a bound seeded at a restart is dropped too.
        p.positions_seen.clear();
        p.seeded_bound = None;
        p.lag_is_bound = false;
        p.lag_since = None;
        return Some(0.0);
    }
    p.lag_is_bound =
        p.seeded_bound.is_some() && p.positions_seen.first() == p.seeded_bound.as_ref();
    let first_seen_past = p.positions_seen.first().map(|(t, _)| *t);
    p.lag_since = lag_start(p.last_archived_at, first_seen_past);
    p.lag_since.map(|t| seconds_since(t, now))
}

/// Looks remembered while the archive is behind (the first one is kept).
const MAX_POSITIONS: usize = 100_000;

/// Drops `slot` (the receiver must be stopped first); the archive has a
/// gap from here on.
pub(crate) async fn drop_slot(server: &ConnConfig, slot: &str) -> Result<()> {
    let (client, _task) = connect(server).await?;
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(|e| BackupError::postgres(format!("dropping replication slot \"{slot}\""), e))?;
    Ok(())
}

/// The bytes of every file in the spool.
fn spool_bytes(spool: &Path) -> u64 {
    std::fs::read_dir(spool)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Removes the partial segment from the spool: after a drop, the server no
/// longer has the WAL it continues.
pub(crate) fn clear_partial(spool: &Path) {
    if let Ok(entries) = std::fs::read_dir(spool) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".partial") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_lag_runs_from_the_first_look_past_the_archive_until_it_catches_up() {
        let mut p = ArchiveProgress::default();
        let segment = 16 << 20;
        // Archived through segment 1; the server still inside it: no lag.
        assert_eq!(
            note_position(&mut p, Some(2 * segment), segment, at(0)),
            Some(0.0)
        );
        // Past it from the look at 10 s on (nothing says when it was archived).
        assert_eq!(
            note_position(&mut p, Some(2 * segment), 2 * segment + 5, at(10)),
            Some(0.0)
        );
        assert_eq!(
            note_position(&mut p, Some(2 * segment), 3 * segment, at(40)),
            Some(30.0)
        );
        // The segment archived at 25 s: the server was past it by then.
        p.last_archived_at = Some(at(25));
        assert_eq!(
            note_position(&mut p, Some(3 * segment), 3 * segment + 9, at(50)),
            Some(25.0)
        );
        // Caught up: 0, and the looks before are forgotten.
        assert_eq!(
            note_position(&mut p, Some(4 * segment), 4 * segment, at(60)),
            Some(0.0)
        );
        assert!(p.positions_seen.is_empty() && p.lag_since.is_none());
    }

    fn report(updated: i64, looked: Option<(i64, u64)>) -> crate::state::ArchiverStatus {
        crate::state::ArchiverStatus {
            updated_at: at(updated),
            look_every_seconds: 10.0,
            running: false,
            slot: "pgharbor".to_owned(),
            files_archived: 0,
            failures: 0,
            last_failure: None,
            slot_lost: false,
            archived_through: None,
            lag_since: None,
            looked_at: looked.map(|(t, _)| at(t)),
            server_lsn: looked.map(|(_, lsn)| crate::lsn::Lsn(lsn).to_string()),
            lag_bytes: None,
            lag_seconds: None,
            lag_is_bound: false,
        }
    }

    #[test]
    fn after_a_restart_the_lag_runs_from_the_previous_archivers_last_report() {
        let segment = 16u64 << 20;
        let through = 2 * segment;
        // The previous archiver saw the server past the archive at 10 s:
        // the lag runs from then, not from the first look after the restart.
        let mut p = ArchiveProgress::default();
        crate::archive::seed_positions(&mut p, &report(12, Some((10, through + 7))), through);
        assert_eq!(
            note_position(&mut p, Some(through), through + 99, at(100)),
            Some(90.0)
        );
        assert!(!p.lag_is_bound);
        // It last saw the server inside the archive (at 10 s, reported at
        // 12 s): the lag runs from its report, flagged as a bound.
        let mut p = ArchiveProgress::default();
        crate::archive::seed_positions(&mut p, &report(12, Some((10, through - 5))), through);
        assert_eq!(
            note_position(&mut p, Some(through), through + 99, at(100)),
            Some(88.0)
        );
        assert!(p.lag_is_bound);
        // A look finding the server not past the end drops the bound.
        let mut p = ArchiveProgress::default();
        crate::archive::seed_positions(&mut p, &report(12, None), through);
        assert_eq!(
            note_position(&mut p, Some(through), through, at(100)),
            Some(0.0)
        );
        assert_eq!(
            note_position(&mut p, Some(through), through + 1, at(110)),
            Some(0.0)
        );
        assert_eq!(
            note_position(&mut p, Some(through), through + 9, at(130)),
            Some(20.0)
        );
        assert!(!p.lag_is_bound);
    }
}
