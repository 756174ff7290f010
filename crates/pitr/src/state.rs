//! The archive's health, as `check`, `status` and `/metrics` report it:
//! how far the archive is behind the server (bytes and seconds), what the
//! slot holds back and whether the server has invalidated it, how old the
//! newest archived file is, and the archiver's failures — the last from
//! `wal/archiver.json`, which the running archiver writes at every look
//! ([`ArchiverStatus`]).
//!
//! # Lag in seconds
//!
//! The archive's lag in seconds is the age of the oldest WAL the server
//! wrote that the archive does not hold: `now - t`, where `t` is when the
//! server wrote the first byte past the end of the newest archived segment.
//! No server keeps that time, so pgharbor bounds it from two facts, each a
//! moment at or after `t`, and takes the earlier:
//!
//! * when that segment was archived (its index entry): the archiver can
//!   only complete a segment once the server has written past its end;
//! * when the archiver first saw the server's position (`pg_current_wal_lsn()`,
//!   read at every look) past that end.
//!
//! So the figure is never more than the true lag, and falls short of it by
//! at most the time between two looks (10 s). After a restart the
//! archiver reads the previous one's last report (`wal/archiver.json`:
//! `looked_at`, `server_lsn`): when that look saw the server past the
//! archive's end, the lag runs from it; otherwise the server went past it
//! while no archiver looked, and the report's `updated_at` is taken as the
//! start — the figure is then an upper bound, flagged `lag_is_bound`, until
//! the archive catches up or a look finds the server not past it. It is 0
//! when the server has written nothing the archive lacks. A server that
//! writes a little and never fills its segment lags more and more: that is
//! the WAL a lost server would take with it (set `archive_timeout`).

use chrono::{DateTime, Utc};
use pgharbor_backup::{BackupError, BackupErrorKind, Result};
use pgharbor_conn::{connect, ConnConfig};
use pgharbor_objstore::Destination;
use serde::{Deserialize, Serialize};

use crate::lsn::Segment;
use crate::walstore::{archived_names, entry};

/// Where the running archiver publishes its state.
pub const ARCHIVER_STATUS: &str = "wal/archiver.json";
/// A published state older than this many looks means no archiver runs.
const STALE_LOOKS: f64 = 3.0;

/// What the archiver publishes at every look (`wal/archiver.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiverStatus {
    /// When it was written.
    pub updated_at: DateTime<Utc>,
    /// Seconds between two looks (and so two updates).
    pub look_every_seconds: f64,
    /// Whether the archiver was running (false once it stopped).
    pub running: bool,
    /// The replication slot it streams over.
    pub slot: String,
    /// WAL files archived since it started.
    pub files_archived: u64,
    /// Failures since it started.
    pub failures: u64,
    /// The last failure.
    pub last_failure: Option<String>,
    /// Whether the server has invalidated the slot (`wal_status = 'lost'`).
    pub slot_lost: bool,
    /// The end of the newest archived segment (a WAL position).
    pub archived_through: Option<String>,
    /// When the server was first seen past it (see the module overview).
    pub lag_since: Option<DateTime<Utc>>,
    /// The last look: when, and the server's WAL position then (what a
    /// restarted archiver measures the lag from).
    #[serde(default)]
    pub looked_at: Option<DateTime<Utc>>,
    /// The server's WAL position at the last look.
    #[serde(default)]
    pub server_lsn: Option<String>,
    /// WAL the server had written that the archive lacked, at the last look.
    #[serde(default)]
    pub lag_bytes: Option<u64>,
    /// The age of the oldest of it, at the last look.
    #[serde(default)]
    pub lag_seconds: Option<f64>,
    /// Whether that age is an upper bound (see the module overview).
    #[serde(default)]
    pub lag_is_bound: bool,
}

impl ArchiverStatus {
    /// Seconds since it was written.
    pub fn age_seconds(&self) -> f64 {
        seconds_since(self.updated_at, Utc::now())
    }

    /// Seconds since its last look, when it looked.
    pub fn look_age_seconds(&self) -> Option<f64> {
        self.looked_at.map(|t| seconds_since(t, Utc::now()))
    }

    /// Whether it is too old to come from a running archiver.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let age = (now - self.updated_at).num_milliseconds() as f64 / 1000.0;
        self.running && age > STALE_LOOKS * self.look_every_seconds.max(1.0)
    }
}

/// Writes `status` to `dest`.
pub(crate) async fn publish(dest: &Destination, status: &ArchiverStatus) -> Result<()> {
    let json = serde_json::to_vec_pretty(status).expect("a status always serializes");
    dest.put_bytes(ARCHIVER_STATUS, json).await?;
    Ok(())
}

/// The archiver's published state at `dest`, `None` when it never ran there.
pub async fn read_archiver_status(dest: &Destination) -> Result<Option<ArchiverStatus>> {
    match dest.get_bytes(ARCHIVER_STATUS).await {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            BackupError::new(
                BackupErrorKind::Integrity,
                format!("{ARCHIVER_STATUS} at {dest} is not readable"),
            )
            .caused_by(e)
        }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The newest archived segment: the highest number, on its newest timeline.
pub(crate) fn newest_segment(names: &[String], segment_size: u64) -> Option<(Segment, String)> {
    names
        .iter()
        .filter_map(|n| Some((Segment::parse(n, segment_size)?, n.clone())))
        .max_by_key(|(s, _)| (s.number, s.timeline))
}

/// The earlier of two moments known to be at or after the start of the lag.
pub(crate) fn lag_start(
    archived_at: Option<DateTime<Utc>>,
    first_seen_past: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (archived_at, first_seen_past) {
        (Some(a), Some(f)) => Some(a.min(f)),
        (a, f) => a.or(f),
    }
}

/// Seconds between `since` and `now`, never negative.
pub(crate) fn seconds_since(since: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    ((now - since).num_milliseconds() as f64 / 1000.0).max(0.0)
}

/// The replication slot, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotView {
    /// Its name.
    pub name: String,
    /// Whether a consumer streams over it.
    pub active: bool,
    /// WAL it makes the server keep (`pg_current_wal_lsn() - restart_lsn`).
    pub retained_bytes: u64,
    /// `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+).
    pub wal_status: Option<String>,
}

impl SlotView {
    /// Whether the server has invalidated it: WAL its consumer had not
    /// received is gone.
    pub fn is_lost(&self) -> bool {
        self.wal_status.as_deref() == Some("lost")
    }
}

/// The archive of one server, as `check` and `status` report it.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveHealth {
    /// The server's WAL position.
    pub server_lsn: String,
    /// The newest archived WAL segment.
    pub last_archived: Option<String>,
    /// When it was archived.
    pub last_archived_at: Option<DateTime<Utc>>,
    /// Seconds since then.
    pub last_archived_age_seconds: Option<f64>,
    /// WAL the server wrote that the archive does not hold.
    pub lag_bytes: u64,
    /// The age of the oldest of it (see the module overview); `None` when
    /// nothing was archived yet and no archiver has looked.
    pub lag_seconds: Option<f64>,
    /// The archiver's slot; `None` when the server has none of that name.
    pub slot: Option<SlotView>,
    /// The archiver's published state.
    pub archiver: Option<ArchiverStatus>,
    /// Whether that state is too old to come from a running archiver.
    pub archiver_stale: bool,
    /// Whether `lag_seconds` is an upper bound (it runs from a restarted
    /// archiver's predecessor's last report; see the module overview).
    pub lag_is_bound: bool,
}

/// Looks at `server`, its slot `slot` and the archive at `dest`.
pub async fn archive_health(
    server: &ConnConfig,
    dest: &Destination,
    slot: &str,
) -> Result<ArchiveHealth> {
    let now = Utc::now();
    let (client, _task) = connect(server).await?;
    let row = client
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint, \
                    pg_current_wal_insert_lsn()::text, \
                    (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')",
            &[],
        )
        .await
        .map_err(|e| BackupError::postgres("reading the server's WAL position", e))?;
    let current = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
    let segment_size = u64::try_from(row.get::<_, i64>(2)).unwrap_or(16 << 20);
    let slot = slot_view(&client, slot).await?;
    let names = archived_names(dest).await?;
    let newest = newest_segment(&names, segment_size);
    let archived_at = match &newest {
        Some((_, name)) => entry(dest, name).await?.map(|e| e.archived_at),
        None => None,
    };
    let through = newest.as_ref().map(|(s, _)| (s.number + 1) * segment_size);
    let archiver = read_archiver_status(dest).await?;
    let archiver_stale = archiver.as_ref().is_some_and(|a| a.is_stale(now));
    let lag_bytes = current.saturating_sub(through.unwrap_or(0));
    let matching = archiver
        .as_ref()
        .filter(|a| !archiver_stale && a.archived_through.is_some())
        .filter(|a| {
            a.archived_through
                .as_deref()
                .and_then(crate::lsn::Lsn::parse)
                == through.map(crate::lsn::Lsn)
        });
    let seen_past = matching.and_then(|a| a.lag_since);
    let lag_is_bound = lag_bytes > 0 && matching.is_some_and(|a| a.lag_is_bound);
    let lag_seconds = if lag_bytes == 0 {
        Some(0.0)
    } else {
        lag_start(archived_at, seen_past).map(|t| seconds_since(t, now))
    };
    Ok(ArchiveHealth {
        server_lsn: row.get(1),
        last_archived: newest.map(|(_, name)| name),
        last_archived_at: archived_at,
        last_archived_age_seconds: archived_at.map(|t| seconds_since(t, now)),
        lag_bytes,
        lag_seconds,
        slot,
        archiver,
        archiver_stale,
        lag_is_bound,
    })
}

/// The slot `name` on the server, `None` when there is none.
pub(crate) async fn slot_view(
    client: &tokio_postgres::Client,
    name: &str,
) -> Result<Option<SlotView>> {
    // wal_status through to_jsonb: a column PostgreSQL 12 and older lack.
    let row = client
        .query_opt(
            "SELECT active, \
                    coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, \
                    to_jsonb(s) ->> 'wal_status' \
             FROM pg_replication_slots s WHERE slot_name = $1",
            &[&name],
        )
        .await
        .map_err(|e| BackupError::postgres(format!("reading replication slot \"{name}\""), e))?;
    Ok(row.map(|row| SlotView {
        name: name.to_owned(),
        active: row.get(0),
        retained_bytes: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
        wal_status: row.get(2),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_lag_starts_at_the_earlier_of_the_archiving_and_the_first_look_past_it() {
        assert_eq!(lag_start(Some(at(10)), Some(at(30))), Some(at(10)));
        assert_eq!(lag_start(Some(at(50)), Some(at(30))), Some(at(30)));
        assert_eq!(lag_start(None, Some(at(30))), Some(at(30)));
        assert_eq!(lag_start(None, None), None);
        assert_eq!(seconds_since(at(10), at(42)), 32.0);
        assert_eq!(seconds_since(at(50), at(42)), 0.0);
    }

    #[test]
    fn the_newest_segment_is_the_highest_number_on_its_newest_timeline() {
        let names: Vec<String> = [
            "000000010000000000000004",
            "00000002.history",
            "000000020000000000000004",
            "000000010000000000000003",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (segment, name) = newest_segment(&names, 16 << 20).unwrap();
        assert_eq!(name, "000000020000000000000004");
        assert_eq!(segment.number, 4);
        assert!(newest_segment(&[], 16 << 20).is_none());
    }

    #[test]
    fn a_status_is_stale_after_three_looks_unless_the_archiver_stopped() {
        let status = ArchiverStatus {
            updated_at: at(0),
            look_every_seconds: 10.0,
            running: true,
            slot: "pgharbor".to_owned(),
            files_archived: 0,
            failures: 0,
            last_failure: None,
            slot_lost: false,
            archived_through: None,
            lag_since: None,
            looked_at: None,
            server_lsn: None,
            lag_bytes: None,
            lag_seconds: None,
            lag_is_bound: false,
        };
        assert!(!status.is_stale(at(29)));
        assert!(status.is_stale(at(31)));
        let stopped = ArchiverStatus {
            running: false,
            ..status
        };
        assert!(!stopped.is_stale(at(3600)));
    }
}
