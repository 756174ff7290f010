//! `pgharbor status`: what a PostgreSQL or Redis server is doing, problems first.
//!
//! Every section is collected on its own: a section the user may not read
//! is `None` and listed in `not_visible` with the reason and the grant that
//! would show it, so `status` works as a non-superuser (best with
//! `pg_monitor`) and says what it could not see.
//!
//! * `postgres`: the collection, section by section, into a [`PgStatus`];
//!   the sections are read by `server` (version, settings, sizes,
//!   wraparound, cache hits, extensions), `sessions` (connections, long
//!   and idle-in-transaction sessions, the lock graph), `replication`
//!   (replicas, slots, the standby, WAL archiving) and `statements`
//!   (`pg_stat_statements`).
//! * `redis_info`: a Redis server's `INFO`, into a [`RedisStatus`].
//!
//! The problems shown first are picked by [`crate::problems`].

mod postgres;
mod redis_info;
mod replication;
mod server;
mod sessions;
mod statements;

pub use postgres::{collect_postgres, PgStatus};
pub use redis_info::{
    collect_redis, RedisClients, RedisKeyspace, RedisMemory, RedisPersistence, RedisReplication,
    RedisStatus,
};
pub use replication::{Archiver, Replica, Replication, Slot};
pub use server::{
    CacheHit, DatabaseCacheHit, DatabaseSize, Extension, Extensions, ServerInfo, Wraparound,
};
pub use sessions::{Connections, DatabaseConnections, Locks, Session};
pub use statements::{Statement, Statements, ENABLE_PG_STAT_STATEMENTS};

use crate::backups::{BackupView, BackupWatch};
use crate::query_text::QueryText;
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Thresholds and extras for a status collection.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// Active queries running longer than this are listed (default 5 min).
    pub long_running_over: Duration,
    /// Sessions idle in a transaction longer than this are listed (default 1 min).
    pub idle_in_transaction_over: Duration,
    /// Transaction-ID age from which a database is a warning (default 500 million;
    /// critical from 1.5 billion, of the 2.1 billion limit).
    pub wraparound_warn: i64,
    /// A backup destination to report on (`--backups DEST`).
    pub backups: Option<BackupWatch>,
    /// How many statements to list by total and by mean time (default 5).
    pub top_statements: i64,
    /// Upper bound for connecting and for each query.
    pub timeout: Duration,
    /// Query texts normalised (the default) or whole.
    pub query_text: QueryText,
}

impl Default for StatusOptions {
    fn default() -> Self {
        StatusOptions {
            long_running_over: Duration::from_secs(300),
            idle_in_transaction_over: Duration::from_secs(60),
            wraparound_warn: 500_000_000,
            backups: None,
            top_statements: 5,
            timeout: Duration::from_secs(10),
            query_text: QueryText::Normalised,
        }
    }
}

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Needs attention now (server down, archiving failing, wraparound near).
    Critical,
    /// Worth a look (long transactions, blocked sessions, inactive slots).
    Warning,
}

/// Something `status` highlights, listed before everything else.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// How bad it is.
    pub severity: Severity,
    /// The section it comes from (`connections`, `locks`, `wraparound`, …).
    pub section: &'static str,
    /// One line saying what is wrong and, where it helps, what to do.
    pub message: String,
}

/// A section that could not be read, and why.
#[derive(Debug, Clone, Serialize)]
pub struct NotVisible {
    /// The section.
    pub section: &'static str,
    /// Why, and what would show it.
    pub reason: String,
}

/// Now, as Unix seconds.
pub(crate) fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The `--backups` destination's view, its problems added to `problems`.
async fn with_backups(problems: &mut Vec<Problem>, options: &StatusOptions) -> Option<BackupView> {
    let watch = options.backups.as_ref()?;
    let view = crate::backups::inspect(watch, options.timeout).await;
    problems.extend(view.problems.iter().cloned());
    problems.sort_by_key(|p| p.severity);
    Some(view)
}
