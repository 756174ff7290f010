//! Client sessions: connections by state and database, and each session's
//! query, transaction and wait, from which `status` lists long-running and
//! idle-in-transaction sessions and the lock graph.

use super::postgres::q;
use crate::error::Result;
use crate::query_text::QueryText;
use serde::Serialize;
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// Client connections against `max_connections`.
#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    /// `max_connections`.
    pub max_connections: i64,
    /// `superuser_reserved_connections`.
    pub superuser_reserved: i64,
    /// Client backends now (including this one).
    pub total: i64,
    /// `total / max_connections * 100`.
    pub used_pct: f64,
    /// Counts per state (`active`, `idle`, `idle in transaction`, … and
    /// `hidden` for sessions whose state this user may not see).
    pub by_state: BTreeMap<String, i64>,
    /// Counts per database and state.
    pub by_database: Vec<DatabaseConnections>,
}

/// Connections to one database in one state.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseConnections {
    /// Database name.
    pub database: String,
    /// Session state.
    pub state: String,
    /// How many.
    pub count: i64,
}

/// One client session.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// Backend process id.
    pub pid: i32,
    /// Role.
    pub user: String,
    /// Database.
    pub database: String,
    /// `application_name`.
    pub application_name: String,
    /// Client address (empty for Unix sockets).
    pub client_addr: String,
    /// `active`, `idle in transaction`, …; `None` when hidden from this user.
    pub state: Option<String>,
    /// Seconds since the current query started.
    pub query_seconds: Option<f64>,
    /// Seconds since the transaction started.
    pub transaction_seconds: Option<f64>,
    /// Seconds in the current state.
    pub state_seconds: Option<f64>,
    /// What it waits for (`Lock:transactionid`), empty when not waiting.
    pub wait: String,
    /// The query (its first 300 characters, normalised unless
    /// [`StatusOptions::query_text`] says whole), or why it is hidden.
    pub query: String,
    /// Sessions blocking this one (`pg_blocking_pids`).
    pub blocked_by: Vec<i32>,
}

/// Blocked sessions and the sessions blocking them.
#[derive(Debug, Clone, Serialize)]
pub struct Locks {
    /// Sessions waiting for a lock another session holds.
    pub blocked: Vec<Session>,
    /// Sessions holding locks others wait for.
    pub blocking: Vec<Session>,
}

/// A session, and whether it is the one `status` itself opened.
pub(super) struct SeenSession {
    pub(super) session: Session,
    pub(super) is_self: bool,
}

pub(super) async fn sessions(c: &Client, query_text: QueryText) -> Result<Vec<SeenSession>> {
    let rows = c
        .query(
            "SELECT pid, coalesce(usename::text, ''), coalesce(datname::text, ''), coalesce(application_name, ''),
                    coalesce(host(client_addr), ''), state,
                    extract(epoch FROM now() - query_start)::float8,
                    extract(epoch FROM now() - xact_start)::float8,
                    extract(epoch FROM now() - state_change)::float8,
                    coalesce(wait_event_type || ':' || wait_event, ''),
                    coalesce(left(query, 300), ''), pg_blocking_pids(pid), pid = pg_backend_pid()
             FROM pg_stat_activity
             -- Other users' sessions show no backend_type to a user without pg_monitor;
             -- those with a database are counted as clients (state hidden).
             WHERE backend_type = 'client backend' OR (backend_type IS NULL AND datid IS NOT NULL)
             ORDER BY pid",
            &[],
        )
        .await
        .map_err(q("reading pg_stat_activity"))?;
    Ok(rows
        .iter()
        .map(|r| SeenSession {
            session: Session {
                pid: r.get(0),
                user: r.get(1),
                database: r.get(2),
                application_name: r.get(3),
                client_addr: r.get(4),
                state: r.get(5),
                query_seconds: r.get(6),
                transaction_seconds: r.get(7),
                state_seconds: r.get(8),
                wait: r.get(9),
                query: query_text.apply(r.get(10)),
                blocked_by: r.get(11),
            },
            is_self: r.get(12),
        })
        .collect())
}

pub(super) fn connections(all: &[SeenSession], max: i64, reserved: i64) -> Connections {
    let mut by_state: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_db: BTreeMap<(String, String), i64> = BTreeMap::new();
    for s in all {
        let state = s
            .session
            .state
            .clone()
            .unwrap_or_else(|| "hidden".to_owned());
        *by_state.entry(state.clone()).or_default() += 1;
        *by_db
            .entry((s.session.database.clone(), state))
            .or_default() += 1;
    }
    let total = all.len() as i64;
    Connections {
        max_connections: max,
        superuser_reserved: reserved,
        total,
        used_pct: if max > 0 {
            total as f64 * 100.0 / max as f64
        } else {
            0.0
        },
        by_state,
        by_database: by_db
            .into_iter()
            .map(|((database, state), count)| DatabaseConnections {
                database,
                state,
                count,
            })
            .collect(),
    }
}
