//! The server's own sections: version and settings, database sizes,
//! transaction-ID wraparound, buffer cache hits, installed extensions.

use super::postgres::q;
use crate::error::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use tokio_postgres::Client;

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

/// One database's size.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseSize {
    /// Name.
    pub database: String,
    /// `pg_database_size`, or `None` when this user may not connect to it.
    pub size_bytes: Option<i64>,
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

pub(super) async fn server_info(c: &Client) -> Result<ServerInfo> {
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

pub(super) async fn databases(c: &Client) -> Result<Vec<DatabaseSize>> {
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

pub(super) async fn wraparound(c: &Client) -> Result<Vec<Wraparound>> {
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

pub(super) async fn cache_hit(c: &Client) -> Result<CacheHit> {
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

pub(super) async fn extensions(c: &Client, db: &str) -> Result<Extensions> {
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
