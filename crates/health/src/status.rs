//! `pgharbor status`: what a PostgreSQL or Redis server is doing, problems first.
//!
//! Every section is collected on its own: a section the user may not read
//! is `None` and listed in `not_visible` with the reason and the grant that
//! would show it, so `status` works as a non-superuser (best with
//! `pg_monitor`) and says what it could not see.

use crate::backups::{BackupView, BackupWatch};
use crate::error::{HealthError, HealthErrorKind, Result};
use crate::query_text::QueryText;
use crate::redis::{self, Info, RedisUrl};
use pgharbor_conn::ConnConfig;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres::Client;

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

/// Server facts.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// `version()`.
    pub version: String,
    /// `server_version_num`.
    pub version_num: i32,
    /// Seconds since the postmaster started.
    pub uptime_seconds: f64,
    /// When it started (server's text form).
    pub started_at: String,
    /// Whether the server is a standby in recovery.
    pub in_recovery: bool,
    /// The user we are connected as.
    pub current_user: String,
    /// Whether that user is a superuser.
    pub superuser: bool,
    /// Whether that user has `pg_monitor` (or `pg_read_all_stats`).
    pub monitor_role: bool,
    /// Notable settings, `name -> value with unit`.
    pub settings: BTreeMap<String, String>,
}

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

/// One database's size.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseSize {
    /// Name.
    pub database: String,
    /// `pg_database_size`, or `None` when this user may not connect to it.
    pub size_bytes: Option<i64>,
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

/// Transaction-ID age of one database.
#[derive(Debug, Clone, Serialize)]
pub struct Wraparound {
    /// Database.
    pub database: String,
    /// `age(datfrozenxid)`.
    pub xid_age: i64,
    /// `mxid_age(datminmxid)`.
    pub mxid_age: i64,
    /// `xid_age` as a percentage of the 2^31 limit.
    pub pct_of_limit: f64,
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

/// Buffer cache hit ratios.
#[derive(Debug, Clone, Serialize)]
pub struct CacheHit {
    /// Over all databases (`None` before any block was read).
    pub overall: Option<f64>,
    /// Per database.
    pub databases: Vec<DatabaseCacheHit>,
}

/// One database's cache hit ratio.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseCacheHit {
    /// Database.
    pub database: String,
    /// Blocks found in shared buffers.
    pub blocks_hit: i64,
    /// Blocks read from the OS.
    pub blocks_read: i64,
    /// `hit / (hit + read)`.
    pub ratio: Option<f64>,
}

/// One statement from `pg_stat_statements`.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// Normalised text (first 300 characters; constants `pg_stat_statements`
    /// leaves in, as in utility statements, replaced too unless
    /// [`StatusOptions::query_text`] says whole), or `<insufficient privilege>`.
    pub query: String,
    /// Executions.
    pub calls: i64,
    /// Total execution time, ms.
    pub total_ms: f64,
    /// Mean execution time, ms.
    pub mean_ms: f64,
    /// Rows returned or affected.
    pub rows: i64,
}

/// The slowest statements, or how to get them.
#[derive(Debug, Clone, Serialize)]
pub struct Statements {
    /// Whether `pg_stat_statements` is usable in the connected database.
    pub installed: bool,
    /// Top statements by total time.
    pub by_total_time: Vec<Statement>,
    /// Top statements by mean time.
    pub by_mean_time: Vec<Statement>,
    /// When not installed: how to enable it, including on managed services.
    pub how_to_enable: Option<String>,
}

/// One installed extension.
#[derive(Debug, Clone, Serialize)]
pub struct Extension {
    /// Name.
    pub name: String,
    /// Installed version.
    pub installed_version: String,
    /// Version `ALTER EXTENSION … UPDATE` would move to.
    pub default_version: String,
    /// Whether an update is available.
    pub update_available: bool,
}

/// Extensions in the connected database.
#[derive(Debug, Clone, Serialize)]
pub struct Extensions {
    /// The database they were read from (extensions are per database).
    pub database: String,
    /// Installed extensions.
    pub installed: Vec<Extension>,
}

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

/// Now, as Unix seconds.
pub(crate) fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

const SETTINGS: &[&str] = &[
    "max_connections",
    "superuser_reserved_connections",
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "effective_cache_size",
    "max_wal_size",
    "wal_level",
    "archive_mode",
    "max_wal_senders",
    "max_replication_slots",
    "autovacuum",
    "autovacuum_freeze_max_age",
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "shared_preload_libraries",
    "ssl",
];

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

/// The `--backups` destination's view, its problems added to `problems`.
async fn with_backups(problems: &mut Vec<Problem>, options: &StatusOptions) -> Option<BackupView> {
    let watch = options.backups.as_ref()?;
    let view = crate::backups::inspect(watch, options.timeout).await;
    problems.extend(view.problems.iter().cloned());
    problems.sort_by_key(|p| p.severity);
    Some(view)
}

fn seen<T>(nv: &mut Vec<NotVisible>, section: &'static str, r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            let mut reason = e.to_string();
            if e.kind() == HealthErrorKind::Refused {
                reason.push_str("; GRANT pg_monitor TO the monitoring user to see it");
            }
            nv.push(NotVisible { section, reason });
            None
        }
    }
}

fn q(what: &'static str) -> impl Fn(tokio_postgres::Error) -> HealthError {
    move |e| HealthError::postgres(what, &e)
}

async fn server_info(c: &Client) -> Result<ServerInfo> {
    let r = c
        .query_one(
            "SELECT version(), current_setting('server_version_num')::int,
                    extract(epoch FROM now() - pg_postmaster_start_time())::float8,
                    pg_postmaster_start_time()::text, pg_is_in_recovery(), current_user::text,
                    coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false),
                    pg_has_role('pg_monitor', 'MEMBER') OR pg_has_role('pg_read_all_stats', 'MEMBER')",
            &[],
        )
        .await
        .map_err(q("reading the server's version"))?;
    let names: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
    let rows = c
        .query(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY($1) ORDER BY name",
            &[&names],
        )
        .await
        .map_err(q("reading settings"))?;
    let mut settings: BTreeMap<String, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    // The raw numbers, for arithmetic.
    for key in ["max_connections", "superuser_reserved_connections"] {
        if let Ok(r) = c
            .query_one("SELECT setting FROM pg_settings WHERE name = $1", &[&key])
            .await
        {
            settings.insert(key.to_owned(), r.get(0));
        }
    }
    Ok(ServerInfo {
        version: r.get(0),
        version_num: r.get(1),
        uptime_seconds: r.get(2),
        started_at: r.get(3),
        in_recovery: r.get(4),
        current_user: r.get(5),
        superuser: r.get(6),
        monitor_role: r.get(7),
        settings,
    })
}

struct SeenSession {
    session: Session,
    is_self: bool,
}

async fn sessions(c: &Client, query_text: QueryText) -> Result<Vec<SeenSession>> {
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

fn connections(all: &[SeenSession], max: i64, reserved: i64) -> Connections {
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

async fn databases(c: &Client) -> Result<Vec<DatabaseSize>> {
    let rows = c
        .query(
            "SELECT datname::text,
                    CASE WHEN has_database_privilege(oid, 'CONNECT') OR pg_has_role('pg_read_all_stats', 'MEMBER')
                         THEN pg_database_size(oid) END
             FROM pg_database WHERE NOT datistemplate
             ORDER BY 2 DESC NULLS LAST, 1",
            &[],
        )
        .await
        .map_err(q("reading database sizes"))?;
    Ok(rows
        .iter()
        .map(|r| DatabaseSize {
            database: r.get(0),
            size_bytes: r.get(1),
        })
        .collect())
}

async fn replication(c: &Client) -> Result<Replication> {
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

async fn wraparound(c: &Client) -> Result<Vec<Wraparound>> {
    let rows = c
        .query(
            "SELECT datname::text, age(datfrozenxid)::bigint, mxid_age(datminmxid)::bigint
             FROM pg_database ORDER BY 2 DESC, 1",
            &[],
        )
        .await
        .map_err(q("reading transaction-ID ages"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let age: i64 = r.get(1);
            Wraparound {
                database: r.get(0),
                xid_age: age,
                mxid_age: r.get(2),
                pct_of_limit: age as f64 * 100.0 / 2_147_483_648.0,
            }
        })
        .collect())
}

async fn archiver(c: &Client) -> Result<Archiver> {
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

async fn cache_hit(c: &Client) -> Result<CacheHit> {
    let rows = c
        .query(
            "SELECT datname::text, blks_hit, blks_read FROM pg_stat_database
             WHERE datname IS NOT NULL ORDER BY 1",
            &[],
        )
        .await
        .map_err(q("reading pg_stat_database"))?;
    let ratio = |hit: i64, read: i64| (hit + read > 0).then(|| hit as f64 / (hit + read) as f64);
    let databases: Vec<DatabaseCacheHit> = rows
        .iter()
        .map(|r| {
            let (hit, read): (i64, i64) = (r.get(1), r.get(2));
            DatabaseCacheHit {
                database: r.get(0),
                blocks_hit: hit,
                blocks_read: read,
                ratio: ratio(hit, read),
            }
        })
        .collect();
    let hit = databases.iter().map(|d| d.blocks_hit).sum();
    let read = databases.iter().map(|d| d.blocks_read).sum();
    Ok(CacheHit {
        overall: ratio(hit, read),
        databases,
    })
}

/// How to turn on `pg_stat_statements`, self-hosted and on managed services.
pub const ENABLE_PG_STAT_STATEMENTS: &str = "pg_stat_statements is not installed in this database. Self-hosted: add it to shared_preload_libraries in postgresql.conf (or ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'), restart the server, then CREATE EXTENSION pg_stat_statements; \
Azure Database for PostgreSQL flexible server: it is preloaded; allow it in the azure.extensions server parameter, then CREATE EXTENSION pg_stat_statements; \
Amazon RDS / Aurora: preloaded by default (else add it to shared_preload_libraries in the DB parameter group and reboot), then CREATE EXTENSION pg_stat_statements; \
Google Cloud SQL: CREATE EXTENSION pg_stat_statements; \
DigitalOcean and most others: CREATE EXTENSION pg_stat_statements as the admin user";

/// The top statements by total and by mean time (`options.top_statements`
/// of each), their texts as `options.query_text` says.
async fn statements(
    c: &Client,
    version_num: i32,
    options: &StatusOptions,
    db: &str,
) -> Result<Statements> {
    let (top, query_text) = (options.top_statements, options.query_text);
    let installed = c
        .query_opt(
            "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'",
            &[],
        )
        .await
        .map_err(q("looking for pg_stat_statements"))?;
    let Some(schema) = installed.map(|r| r.get::<_, String>(0)) else {
        let preloaded = c
            .query_one(
                "SELECT current_setting('shared_preload_libraries') ~ 'pg_stat_statements'",
                &[],
            )
            .await
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false);
        let how = if preloaded {
            format!("pg_stat_statements is loaded but not created in database {db}: CREATE EXTENSION pg_stat_statements;")
        } else {
            ENABLE_PG_STAT_STATEMENTS.to_owned()
        };
        return Ok(Statements {
            installed: false,
            by_total_time: Vec::new(),
            by_mean_time: Vec::new(),
            how_to_enable: Some(how),
        });
    };
    let (total, mean) = if version_num >= 130000 {
        ("total_exec_time", "mean_exec_time")
    } else {
        ("total_time", "mean_time")
    };
    let schema = schema.replace('"', "\"\"");
    let mut lists = Vec::new();
    for order in [total, mean] {
        let sql = format!(
            "SELECT coalesce(left(query, 300), '<insufficient privilege>'), calls, {total}, {mean}, rows
             FROM \"{schema}\".pg_stat_statements ORDER BY {order} DESC LIMIT $1"
        );
        let rows = c.query(&sql, &[&top]).await.map_err(|e| {
            let mut err = HealthError::postgres("reading pg_stat_statements", &e);
            if e.as_db_error().is_some_and(|d| d.message().contains("must be loaded")) {
                err = err.context("pg_stat_statements is created but not in shared_preload_libraries; add it there and restart");
            }
            err
        })?;
        lists.push(
            rows.iter()
                .map(|r| Statement {
                    query: query_text.apply(r.get(0)),
                    calls: r.get(1),
                    total_ms: r.get(2),
                    mean_ms: r.get(3),
                    rows: r.get(4),
                })
                .collect::<Vec<_>>(),
        );
    }
    let by_mean_time = lists.pop().unwrap_or_default();
    let by_total_time = lists.pop().unwrap_or_default();
    Ok(Statements {
        installed: true,
        by_total_time,
        by_mean_time,
        how_to_enable: None,
    })
}

async fn extensions(c: &Client, db: &str) -> Result<Extensions> {
    let rows = c
        .query(
            "SELECT name::text, installed_version, coalesce(default_version, installed_version)
             FROM pg_available_extensions WHERE installed_version IS NOT NULL ORDER BY 1",
            &[],
        )
        .await
        .map_err(q("reading pg_available_extensions"))?;
    Ok(Extensions {
        database: db.to_owned(),
        installed: rows
            .iter()
            .map(|r| {
                let (installed, default): (String, String) = (r.get(1), r.get(2));
                Extension {
                    name: r.get(0),
                    update_available: installed != default,
                    installed_version: installed,
                    default_version: default,
                }
            })
            .collect(),
    })
}

/// Everything `status` knows about one Redis server.
#[derive(Debug, Clone, Serialize)]
pub struct RedisStatus {
    /// The server, password masked.
    pub target: String,
    /// Unix time of the collection.
    pub collected_at: f64,
    /// Problems, most severe first.
    pub problems: Vec<Problem>,
    /// Sections that could not be read, and why.
    pub not_visible: Vec<NotVisible>,
    /// `redis_version`.
    pub version: Option<String>,
    /// `redis_mode` (standalone, cluster, sentinel).
    pub mode: Option<String>,
    /// Seconds since start.
    pub uptime_seconds: Option<f64>,
    /// Memory.
    pub memory: Option<RedisMemory>,
    /// Clients.
    pub clients: Option<RedisClients>,
    /// RDB and AOF persistence.
    pub persistence: Option<RedisPersistence>,
    /// Replication.
    pub replication: Option<RedisReplication>,
    /// Keys per database.
    pub keyspace: Vec<RedisKeyspace>,
    /// With `--backups DEST`.
    pub backups: Option<BackupView>,
}

/// Redis memory use.
#[derive(Debug, Clone, Serialize)]
pub struct RedisMemory {
    /// `used_memory`.
    pub used_bytes: f64,
    /// `maxmemory` (0: no limit).
    pub max_bytes: f64,
    /// `used / max * 100` when there is a limit.
    pub used_pct: Option<f64>,
    /// `maxmemory_policy`.
    pub eviction_policy: String,
    /// `mem_fragmentation_ratio`.
    pub fragmentation_ratio: Option<f64>,
}

/// Redis clients.
#[derive(Debug, Clone, Serialize)]
pub struct RedisClients {
    /// `connected_clients`.
    pub connected: f64,
    /// `blocked_clients`.
    pub blocked: f64,
    /// `maxclients`, when INFO reports it.
    pub max: Option<f64>,
}

/// Redis persistence.
#[derive(Debug, Clone, Serialize)]
pub struct RedisPersistence {
    /// Unix time of the last successful RDB save.
    pub last_save_unix: Option<f64>,
    /// `rdb_changes_since_last_save`.
    pub changes_since_last_save: Option<f64>,
    /// `rdb_last_bgsave_status` (`ok`/`err`).
    pub last_bgsave_status: String,
    /// Whether AOF is on.
    pub aof_enabled: bool,
    /// `aof_last_write_status`.
    pub aof_last_write_status: String,
    /// `aof_last_bgrewrite_status`.
    pub aof_last_bgrewrite_status: String,
    /// Whether a dataset is being loaded.
    pub loading: bool,
}

/// Redis replication.
#[derive(Debug, Clone, Serialize)]
pub struct RedisReplication {
    /// `master` or `slave`.
    pub role: String,
    /// `connected_slaves`.
    pub connected_replicas: f64,
    /// On a replica: `master_link_status` (`up`/`down`).
    pub master_link_status: Option<String>,
    /// On a replica: `master_host:master_port`.
    pub master: Option<String>,
}

/// Keys in one Redis database.
#[derive(Debug, Clone, Serialize)]
pub struct RedisKeyspace {
    /// `db0`, `db1`, …
    pub db: String,
    /// Keys.
    pub keys: i64,
    /// Keys with an expiry.
    pub expires: i64,
}

/// Connects to a Redis server and reads `INFO`.
pub async fn collect_redis(url: &RedisUrl, options: &StatusOptions) -> Result<RedisStatus> {
    let (mut conn, refused) = redis::open(url, options.timeout)
        .await
        .map_err(|e| e.context(url))?;
    if let Some(error) = refused {
        return Err(HealthError::new(
            HealthErrorKind::Refused,
            format!("{url}: authentication failed: {error}"),
        ));
    }
    let mut status = RedisStatus {
        target: url.to_string(),
        collected_at: now_unix(),
        problems: Vec::new(),
        not_visible: Vec::new(),
        version: None,
        mode: None,
        uptime_seconds: None,
        memory: None,
        clients: None,
        persistence: None,
        replication: None,
        keyspace: Vec::new(),
        backups: None,
    };
    let info = match tokio::time::timeout(options.timeout, conn.info()).await {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => {
            let e = HealthError::from(e);
            if e.kind() == HealthErrorKind::Unreachable {
                return Err(e.context(url));
            }
            status.not_visible.push(NotVisible {
                section: "info",
                reason: format!("{e} (an ACL user needs +info)"),
            });
            status.problems = crate::problems::redis(&status);
            status.backups = with_backups(&mut status.problems, options).await;
            return Ok(status);
        }
        Err(_) => {
            return Err(HealthError::new(
                HealthErrorKind::Unreachable,
                format!(
                    "{url}: INFO did not answer within {}",
                    crate::duration::format(options.timeout)
                ),
            ))
        }
    };
    fill_redis(&mut status, &info);
    status.problems = crate::problems::redis(&status);
    status.backups = with_backups(&mut status.problems, options).await;
    Ok(status)
}

fn fill_redis(status: &mut RedisStatus, info: &Info) {
    let text = |k: &str| info.get(k).map(str::to_owned);
    status.version = text("redis_version");
    status.mode = text("redis_mode");
    status.uptime_seconds = info.num("uptime_in_seconds");
    if let Some(used) = info.num("used_memory") {
        let max = info.num("maxmemory").unwrap_or(0.0);
        status.memory = Some(RedisMemory {
            used_bytes: used,
            max_bytes: max,
            used_pct: (max > 0.0).then(|| used * 100.0 / max),
            eviction_policy: text("maxmemory_policy").unwrap_or_default(),
            fragmentation_ratio: info.num("mem_fragmentation_ratio"),
        });
    }
    if let Some(connected) = info.num("connected_clients") {
        status.clients = Some(RedisClients {
            connected,
            blocked: info.num("blocked_clients").unwrap_or(0.0),
            max: info.num("maxclients"),
        });
    }
    if info.sections.contains_key("persistence") {
        status.persistence = Some(RedisPersistence {
            last_save_unix: info.num("rdb_last_save_time"),
            changes_since_last_save: info.num("rdb_changes_since_last_save"),
            last_bgsave_status: text("rdb_last_bgsave_status").unwrap_or_default(),
            aof_enabled: info.get("aof_enabled") == Some("1"),
            aof_last_write_status: text("aof_last_write_status").unwrap_or_default(),
            aof_last_bgrewrite_status: text("aof_last_bgrewrite_status").unwrap_or_default(),
            loading: info.get("loading") == Some("1"),
        });
    }
    if let Some(role) = text("role") {
        status.replication = Some(RedisReplication {
            connected_replicas: info.num("connected_slaves").unwrap_or(0.0),
            master_link_status: text("master_link_status"),
            master: match (info.get("master_host"), info.get("master_port")) {
                (Some(h), Some(p)) => Some(format!("{h}:{p}")),
                _ => None,
            },
            role,
        });
    }
    if let Some(keyspace) = info.sections.get("keyspace") {
        for (db, value) in keyspace {
            let field = |name: &str| {
                value
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            status.keyspace.push(RedisKeyspace {
                db: db.clone(),
                keys: field("keys"),
                expires: field("expires"),
            });
        }
    }
}
