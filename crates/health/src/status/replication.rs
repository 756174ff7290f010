//! Replication and WAL: replicas streaming from this server, replication
//! slots, this server's own standby state, and WAL archiving.

use super::postgres::q;
use crate::error::Result;
use serde::Serialize;
use tokio_postgres::Client;

/// One replica streaming from this server.
#[derive(Debug, Clone, Serialize)]
pub struct Replica {
    /// `application_name`.
    pub application_name: String,
    /// Address.
    pub client_addr: String,
    /// `streaming`, `catchup`, …
    pub state: Option<String>,
    /// `async`, `sync`, …
    pub sync_state: Option<String>,
    /// `replay_lag` in seconds.
    pub replay_lag_seconds: Option<f64>,
    /// Bytes of WAL not yet replayed.
    pub lag_bytes: Option<i64>,
}

/// One replication slot.
#[derive(Debug, Clone, Serialize)]
pub struct Slot {
    /// Slot name.
    pub name: String,
    /// `physical` or `logical`.
    pub slot_type: String,
    /// Whether a consumer is connected.
    pub active: bool,
    /// Database of a logical slot.
    pub database: Option<String>,
    /// WAL held back by the slot, in bytes.
    pub retained_bytes: Option<i64>,
    /// `reserved`, `extended`, `unreserved`, `lost`.
    pub wal_status: Option<String>,
}

/// Replication from this server, and of this server when it is a standby.
#[derive(Debug, Clone, Serialize)]
pub struct Replication {
    /// Replicas connected to this server.
    pub replicas: Vec<Replica>,
    /// Replication slots.
    pub slots: Vec<Slot>,
    /// When this server is a standby: seconds since the last replayed
    /// transaction was committed on the primary.
    pub standby_replay_delay_seconds: Option<f64>,
    /// When this server is a standby: the WAL receiver's status.
    pub standby_receiver_status: Option<String>,
}

/// WAL archiving.
#[derive(Debug, Clone, Serialize)]
pub struct Archiver {
    /// `archive_mode`.
    pub archive_mode: String,
    /// Segments archived since the statistics were reset.
    pub archived_count: i64,
    /// Failed attempts.
    pub failed_count: i64,
    /// Last archived segment.
    pub last_archived_wal: Option<String>,
    /// When.
    pub last_archived_at: Option<String>,
    /// Last segment that failed.
    pub last_failed_wal: Option<String>,
    /// When.
    pub last_failed_at: Option<String>,
    /// The last attempt failed (a failure later than the last success).
    pub failing: bool,
}

pub(super) async fn replication(c: &Client) -> Result<Replication> {
    let replicas = c
        .query(
            "SELECT coalesce(application_name, ''), coalesce(host(client_addr), ''), state, sync_state,
                    extract(epoch FROM replay_lag)::float8,
                    CASE WHEN pg_is_in_recovery() THEN NULL
                         ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint END
             FROM pg_stat_replication ORDER BY 1",
            &[],
        )
        .await
        .map_err(q("reading pg_stat_replication"))?
        .iter()
        .map(|r| Replica {
            application_name: r.get(0),
            client_addr: r.get(1),
            state: r.get(2),
            sync_state: r.get(3),
            replay_lag_seconds: r.get(4),
            lag_bytes: r.get(5),
        })
        .collect();
    let slots = c
        .query(
            "SELECT slot_name::text, slot_type, active, database::text,
                    CASE WHEN pg_is_in_recovery() OR restart_lsn IS NULL THEN NULL
                         ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint END,
                    wal_status
             FROM pg_replication_slots ORDER BY 1",
            &[],
        )
        .await
        .map_err(q("reading pg_replication_slots"))?
        .iter()
        .map(|r| Slot {
            name: r.get(0),
            slot_type: r.get(1),
            active: r.get(2),
            database: r.get(3),
            retained_bytes: r.get(4),
            wal_status: r.get(5),
        })
        .collect();
    let standby = c
        .query_one(
            "SELECT CASE WHEN pg_is_in_recovery() THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END,
                    (SELECT status FROM pg_stat_wal_receiver LIMIT 1)",
            &[],
        )
        .await
        .map_err(q("reading the standby's state"))?;
    Ok(Replication {
        replicas,
        slots,
        standby_replay_delay_seconds: standby.get(0),
        standby_receiver_status: standby.get(1),
    })
}

pub(super) async fn archiver(c: &Client) -> Result<Archiver> {
    let r = c
        .query_one(
            "SELECT current_setting('archive_mode'), archived_count, failed_count, last_archived_wal,
                    last_archived_time::text, last_failed_wal, last_failed_time::text,
                    coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false)
             FROM pg_stat_archiver",
            &[],
        )
        .await
        .map_err(q("reading pg_stat_archiver"))?;
    Ok(Archiver {
        archive_mode: r.get(0),
        archived_count: r.get(1),
        failed_count: r.get(2),
        last_archived_wal: r.get(3),
        last_archived_at: r.get(4),
        last_failed_wal: r.get(5),
        last_failed_at: r.get(6),
        failing: r.get(7),
    })
}
