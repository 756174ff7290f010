//! `status` for PostgreSQL: one session, every section collected on its
//! own (a section that cannot be read is listed as not visible), then the
//! problems and the backups.

use super::replication::{archiver, replication};
use super::server::{cache_hit, databases, extensions, server_info, wraparound};
use super::sessions::{connections, sessions};
use super::statements::statements;
use super::{
    now_unix, with_backups, Archiver, CacheHit, Connections, DatabaseSize, Extensions, Locks,
    NotVisible, Problem, Replication, ServerInfo, Session, Statements, StatusOptions, Wraparound,
};
use crate::backups::BackupView;
use crate::error::{HealthError, HealthErrorKind, Result};
use pgharbor_conn::ConnConfig;
use serde::Serialize;

/// Everything `status` knows about one PostgreSQL server.
#[derive(Debug, Clone, Serialize)]
pub struct PgStatus {
    /// The server, password masked.
    pub target: String,
    /// Unix time of the collection.
    pub collected_at: f64,
    /// Problems, most severe first.
    pub problems: Vec<Problem>,
    /// Sections that could not be read, and why.
    pub not_visible: Vec<NotVisible>,
    /// Version, uptime, recovery, settings.
    pub server: Option<ServerInfo>,
    /// Connections per database and state.
    pub connections: Option<Connections>,
    /// Database sizes, largest first.
    pub databases: Option<Vec<DatabaseSize>>,
    /// Active queries running longer than the threshold.
    pub long_running: Option<Vec<Session>>,
    /// Sessions idle in a transaction longer than the threshold.
    pub idle_in_transaction: Option<Vec<Session>>,
    /// Age of the oldest open transaction, seconds.
    pub longest_transaction_seconds: Option<f64>,
    /// The lock graph.
    pub locks: Option<Locks>,
    /// Replicas, slots, standby state.
    pub replication: Option<Replication>,
    /// Transaction-ID age per database, oldest first.
    pub wraparound: Option<Vec<Wraparound>>,
    /// WAL archiving.
    pub archiver: Option<Archiver>,
    /// Cache hit ratios.
    pub cache_hit: Option<CacheHit>,
    /// Slowest statements.
    pub statements: Option<Statements>,
    /// Installed extensions and available updates.
    pub extensions: Option<Extensions>,
    /// With `--backups DEST`.
    pub backups: Option<BackupView>,
}

/// Connects to `config` and collects every section. Fails only when no
/// session can be opened; everything later is per section.
pub async fn collect_postgres(config: &ConnConfig, options: &StatusOptions) -> Result<PgStatus> {
    let shown = config.to_string();
    let config = config.with_fallback_application_name("pgharbor status");
    let (client, _task) = tokio::time::timeout(options.timeout, pgharbor_conn::connect(&config))
        .await
        .map_err(|_| {
            HealthError::new(
                HealthErrorKind::Unreachable,
                format!(
                    "{}: no answer within {}",
                    shown,
                    crate::duration::format(options.timeout)
                ),
            )
        })?
        .map_err(|e| HealthError::from(e).context(&shown))?;
    let mut nv = Vec::new();
    // Settings first, before this session changes its own.
    let server = seen(&mut nv, "server", server_info(&client).await);
    let timeout_ms = options.timeout.as_millis().max(1);
    // Bounded, and never waiting behind the locks we are here to report.
    let _ = client
        .batch_execute(&format!(
            "SET statement_timeout = {timeout_ms}; SET lock_timeout = 1000; SET idle_in_transaction_session_timeout = 0"
        ))
        .await;

    let mut status = PgStatus {
        target: shown,
        collected_at: now_unix(),
        problems: Vec::new(),
        not_visible: Vec::new(),
        server,
        connections: None,
        databases: None,
        long_running: None,
        idle_in_transaction: None,
        longest_transaction_seconds: None,
        locks: None,
        replication: None,
        wraparound: None,
        archiver: None,
        cache_hit: None,
        statements: None,
        extensions: None,
        backups: None,
    };
    let (monitor, superuser, user) = status
        .server
        .as_ref()
        .map(|s| (s.monitor_role, s.superuser, s.current_user.clone()))
        .unwrap_or((false, false, config.user().to_owned()));
    if !monitor && !superuser {
        nv.push(NotVisible {
            section: "sessions",
            reason: format!(
                "the state, query and wait event of other users' sessions are hidden from {user} (not a superuser, not in pg_monitor); \
                 connection counts still include them. To see them: GRANT pg_monitor TO {user}"
            ),
        });
    }
    let sessions = seen(
        &mut nv,
        "sessions",
        sessions(&client, options.query_text).await,
    );
    if let Some(all) = &sessions {
        let (max, reserved) = status
            .server
            .as_ref()
            .map(|s| {
                let get = |k: &str| {
                    s.settings
                        .get(k)
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0)
                };
                (
                    get("max_connections"),
                    get("superuser_reserved_connections"),
                )
            })
            .unwrap_or((0, 0));
        status.connections = Some(connections(all, max, reserved));
        let long = options.long_running_over.as_secs_f64();
        let idle = options.idle_in_transaction_over.as_secs_f64();
        let others = || all.iter().filter(|s| !s.is_self);
        status.long_running = Some(
            others()
                .filter(|s| s.session.state.as_deref() == Some("active"))
                .filter(|s| s.session.query_seconds.is_some_and(|q| q >= long))
                .map(|s| s.session.clone())
                .collect(),
        );
        status.idle_in_transaction = Some(
            others()
                .filter(|s| {
                    s.session
                        .state
                        .as_deref()
                        .is_some_and(|st| st.starts_with("idle in transaction"))
                })
                .filter(|s| s.session.state_seconds.is_some_and(|q| q >= idle))
                .map(|s| s.session.clone())
                .collect(),
        );
        status.longest_transaction_seconds = others()
            .filter_map(|s| s.session.transaction_seconds)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let blocked: Vec<Session> = others()
            .filter(|s| !s.session.blocked_by.is_empty())
            .map(|s| s.session.clone())
            .collect();
        let blocking_pids: std::collections::BTreeSet<i32> = blocked
            .iter()
            .flat_map(|s| s.blocked_by.iter().copied())
            .collect();
        let blocking = all
            .iter()
            .filter(|s| blocking_pids.contains(&s.session.pid))
            .map(|s| s.session.clone())
            .collect();
        status.locks = Some(Locks { blocked, blocking });
    }
    status.databases = seen(&mut nv, "databases", databases(&client).await);
    status.replication = seen(&mut nv, "replication", replication(&client).await);
    status.wraparound = seen(&mut nv, "wraparound", wraparound(&client).await);
    status.archiver = seen(&mut nv, "archiver", archiver(&client).await);
    status.cache_hit = seen(&mut nv, "cache_hit", cache_hit(&client).await);
    let version_num = status.server.as_ref().map_or(150000, |s| s.version_num);
    status.statements = seen(
        &mut nv,
        "statements",
        statements(&client, version_num, options, config.dbname()).await,
    );
    status.extensions = seen(
        &mut nv,
        "extensions",
        extensions(&client, config.dbname()).await,
    );
    status.not_visible = nv;
    status.problems = crate::problems::postgres(&status, options);
    status.backups = with_backups(&mut status.problems, options).await;
    Ok(status)
}

fn seen<T>(nv: &mut Vec<NotVisible>, section: &'static str, r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            let mut reason = crate::chain_text(&e);
            if e.kind() == HealthErrorKind::Refused {
                reason.push_str("; GRANT pg_monitor TO the monitoring user to see it");
            }
            nv.push(NotVisible { section, reason });
            None
        }
    }
}

pub(super) fn q(what: &'static str) -> impl Fn(tokio_postgres::Error) -> HealthError {
    move |e| HealthError::postgres(what, e)
}
