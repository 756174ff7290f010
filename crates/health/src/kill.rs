//! `pgharbor kill`: cancel or terminate sessions idle in a transaction or
//! running one query for too long — what operators otherwise type by hand
//! (`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE …`).
//!
//! [`find`] lists the sessions first; [`act`] then signals exactly those,
//! re-checking each one's condition in the same statement, so a session that
//! finished its transaction in between is left alone.

use crate::error::{HealthError, HealthErrorKind, Result};
use crate::query_text::QueryText;
use serde::Serialize;
use std::time::Duration;
use tokio_postgres::Client;

/// What to do to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillAction {
    /// `pg_cancel_backend`: stop the running query, keep the session.
    Cancel,
    /// `pg_terminate_backend`: end the session (its transaction rolls back).
    Terminate,
}

impl KillAction {
    fn function(self) -> &'static str {
        match self {
            KillAction::Cancel => "pg_cancel_backend",
            KillAction::Terminate => "pg_terminate_backend",
        }
    }

    /// `cancel` / `terminate`.
    pub fn verb(self) -> &'static str {
        match self {
            KillAction::Cancel => "cancel",
            KillAction::Terminate => "terminate",
        }
    }
}

/// Which sessions to pick.
#[derive(Debug, Clone, Default)]
pub struct KillOptions {
    /// Sessions idle in a transaction for longer than this.
    pub idle_in_transaction_over: Option<Duration>,
    /// Sessions running one query for longer than this.
    pub running_over: Option<Duration>,
    /// What to do; by default idle-in-transaction sessions are terminated
    /// (cancelling does nothing to them) and running queries cancelled.
    pub action: Option<KillAction>,
    /// Query texts normalised (the default) or whole.
    pub query_text: QueryText,
}

/// One session `kill` picked.
#[derive(Debug, Clone, Serialize)]
pub struct KillCandidate {
    /// Backend pid.
    pub pid: i32,
    /// Role.
    pub user: String,
    /// Database.
    pub database: String,
    /// `application_name`.
    pub application_name: String,
    /// Client address.
    pub client_addr: String,
    /// `active`, `idle in transaction`, …
    pub state: String,
    /// Seconds in that state (idle) or since the query started (active).
    pub seconds: f64,
    /// The query (first 200 characters), normalised unless
    /// [`KillOptions::query_text`] says whole.
    pub query: String,
    /// What will be (or was) done.
    pub action: KillAction,
    /// After [`act`]: whether the server signalled it.
    pub done: Option<bool>,
    /// After [`act`]: why not, when it was not.
    pub note: Option<String>,
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

const CONDITION: &str = "backend_type = 'client backend' AND pid <> pg_backend_pid() AND (
    ($1::float8 IS NOT NULL AND state IN ('idle in transaction', 'idle in transaction (aborted)')
        AND now() - state_change > make_interval(secs => $1::float8))
 OR ($2::float8 IS NOT NULL AND state = 'active'
        AND now() - query_start > make_interval(secs => $2::float8)))";

/// Lists the sessions matching `options` (never this session itself).
pub async fn find(client: &Client, options: &KillOptions) -> Result<Vec<KillCandidate>> {
    if options.idle_in_transaction_over.is_none() && options.running_over.is_none() {
        return Err(HealthError::new(
            HealthErrorKind::InvalidInput,
            "say which sessions: --idle-in-transaction-over DURATION and/or --running-over DURATION",
        ));
    }
    let sql = format!(
        "SELECT pid, coalesce(usename::text, ''), coalesce(datname::text, ''), coalesce(application_name, ''),
                coalesce(host(client_addr), ''), state,
                extract(epoch FROM now() - CASE WHEN state = 'active' THEN query_start ELSE state_change END)::float8,
                coalesce(left(query, 200), '')
         FROM pg_stat_activity WHERE {CONDITION} ORDER BY 7 DESC"
    );
    let rows = client
        .query(
            &sql,
            &[
                &secs(options.idle_in_transaction_over),
                &secs(options.running_over),
            ],
        )
        .await
        .map_err(|e| HealthError::postgres("listing sessions", e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let state: String = r.get(5);
            let action = options.action.unwrap_or(if state == "active" {
                KillAction::Cancel
            } else {
                KillAction::Terminate
            });
            KillCandidate {
                pid: r.get(0),
                user: r.get(1),
                database: r.get(2),
                application_name: r.get(3),
                client_addr: r.get(4),
                state,
                seconds: r.get(6),
                query: options.query_text.apply(r.get(7)),
                action,
                done: None,
                note: None,
            }
        })
        .collect())
}

/// Signals each candidate that still matches `options`; fills in `done` and `note`.
pub async fn act(client: &Client, options: &KillOptions, candidates: &mut [KillCandidate]) {
    for c in candidates.iter_mut() {
        let sql = format!(
            "SELECT {}(pid) FROM pg_stat_activity WHERE pid = $3 AND {CONDITION}",
            c.action.function()
        );
        let result = client
            .query_opt(
                &sql,
                &[
                    &secs(options.idle_in_transaction_over),
                    &secs(options.running_over),
                    &c.pid,
                ],
            )
            .await;
        match result {
            Ok(Some(row)) => {
                let ok: bool = row.get(0);
                c.done = Some(ok);
                if !ok {
                    c.note = Some(
                        "the server did not signal it (the process is gone, or not ours to signal)"
                            .to_owned(),
                    );
                }
            }
            Ok(None) => {
                c.done = Some(false);
                c.note = Some("no longer matches (finished or gone); left alone".to_owned());
            }
            Err(e) => {
                c.done = Some(false);
                let refused =
                    e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE);
                let mut note = crate::chain_text(&HealthError::postgres(c.action.verb(), e));
                if refused {
                    note.push_str("; a superuser, the session's own role, or a member of pg_signal_backend may do it");
                }
                c.note = Some(note);
            }
        }
    }
}
