//! The slot guard: how much WAL the archiver's replication slot makes the
//! server keep, how far the archive is behind the server, how much waits
//! in the spool — and what to do when the slot holds back too much. A
//! slot that holds WAL forever (pg_receivewal failing to connect, say)
//! fills the server's `pg_wal` until PostgreSQL stops; an alert threshold
//! logs and counts it, and only with an explicit threshold of its own is
//! the slot dropped, which keeps the server running at the price of a gap
//! in the archive (a new base backup starts a new restorable range).

use std::path::Path;

use pgharbor_backup::{BackupError, Result};
use pgharbor_conn::{connect, ConnConfig};
use serde::Serialize;

use crate::archive::SharedProgress;
use crate::lsn::Segment;

/// The thresholds (bytes of WAL the slot holds back).
#[derive(Debug, Clone, Copy, Default)]
pub struct SlotGuard {
    /// Log an error and count an alert above this.
    pub alert_bytes: Option<u64>,
    /// Drop the slot above this (explicit; the archive gets a gap).
    pub drop_bytes: Option<u64>,
}

/// What a look at the server found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SlotState {
    /// WAL the slot makes the server keep (`pg_current_wal_lsn() - restart_lsn`).
    pub retained_bytes: u64,
    /// WAL written by the server and not yet in the archive.
    pub lag_bytes: u64,
    /// Bytes waiting in the spool.
    pub spool_bytes: u64,
}

/// What the archiver must do after a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardAction {
    /// Nothing.
    Continue,
    /// Drop the slot (over [`SlotGuard::drop_bytes`]).
    DropSlot,
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
        .query_opt(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, \
                    pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|e| BackupError::postgres(format!("reading replication slot \"{slot}\""), &e))?;
    let Some(row) = row else {
        return Ok(GuardAction::Continue);
    };
    let retained = u64::try_from(row.get::<_, Option<i64>>(0).unwrap_or(0)).unwrap_or(0);
    let current = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
    let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
    let archived_through = p
        .last_archived
        .as_deref()
        .and_then(|name| Segment::parse(name, segment_size))
        .map(|s| (s.number + 1) * segment_size);
    p.slot = Some(SlotState {
        retained_bytes: retained,
        lag_bytes: archived_through.map_or(retained, |through| current.saturating_sub(through)),
        spool_bytes: spool_bytes(spool),
    });
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

/// Drops `slot` (the receiver must be stopped first); the archive has a
/// gap from here on.
pub(crate) async fn drop_slot(server: &ConnConfig, slot: &str) -> Result<()> {
    let (client, _task) = connect(server).await?;
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(|e| BackupError::postgres(format!("dropping replication slot \"{slot}\""), &e))?;
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
