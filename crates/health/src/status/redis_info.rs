//! `status` for Redis: what `INFO` says about memory, clients,
//! persistence, replication and keys.

use super::{now_unix, with_backups, NotVisible, Problem, StatusOptions};
use crate::backups::BackupView;
use crate::error::{HealthError, HealthErrorKind, Result};
use crate::redis::{self, Info, RedisUrl};
use serde::Serialize;

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
                reason: format!("{} (an ACL user needs +info)", crate::chain_text(&e)),
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
