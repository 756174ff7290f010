//! Problem detection: what `status` lists first and the dashboard highlights.

use crate::duration::format_secs;
use crate::status::{PgStatus, Problem, RedisStatus, Severity, StatusOptions};

/// Transaction-ID age from which wraparound is critical.
pub const WRAPAROUND_CRITICAL: i64 = 1_500_000_000;
/// Share of `max_connections` in use from which connections are a warning / critical.
pub const CONNECTIONS_WARN_PCT: f64 = 80.0;
/// See [`CONNECTIONS_WARN_PCT`].
pub const CONNECTIONS_CRITICAL_PCT: f64 = 95.0;
/// Replica replay lag from which it is a warning, seconds.
pub const REPLICA_LAG_WARN_SECONDS: f64 = 300.0;
/// Cache hit ratio below which it is a warning (with enough reads to matter).
pub const CACHE_HIT_WARN: f64 = 0.90;

fn describe(s: &crate::status::Session) -> String {
    let who = if s.database.is_empty() {
        s.user.clone()
    } else {
        format!("{}@{}", s.user, s.database)
    };
    let app = if s.application_name.is_empty() {
        String::new()
    } else {
        format!(", {}", s.application_name)
    };
    format!("pid {} ({who}{app})", s.pid)
}

/// The problems in a PostgreSQL status, most severe first.
pub fn postgres(status: &PgStatus, options: &StatusOptions) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut add = |severity, section, message: String| {
        out.push(Problem {
            severity,
            section,
            message,
        })
    };
    if let Some(c) = &status.connections {
        if c.max_connections > 0 && c.used_pct >= CONNECTIONS_WARN_PCT {
            let sev = if c.used_pct >= CONNECTIONS_CRITICAL_PCT {
                Severity::Critical
            } else {
                Severity::Warning
            };
            add(
                sev,
                "connections",
                format!(
                    "{} of max_connections {} in use ({:.0}%); new sessions will soon be refused — use a connection pooler or raise max_connections",
                    c.total, c.max_connections, c.used_pct
                ),
            );
        }
    }
    let setting = |name: &str| {
        status
            .server
            .as_ref()
            .and_then(|server| server.settings.get(name))
            .map(String::as_str)
    };
    if setting("autovacuum") == Some("off") {
        add(
            Severity::Warning,
            "server",
            "autovacuum is off: dead rows accumulate, statistics go stale and transaction-ID age grows until a manual VACUUM; turn it on (ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf())".to_string(),
        );
    }
    if let Some(list) = &status.idle_in_transaction {
        for s in list {
            add(
                Severity::Warning,
                "sessions",
                format!(
                    "{} idle in transaction for {} (holds its locks and blocks vacuum); pgharbor kill --idle-in-transaction-over {} ends such sessions",
                    describe(s),
                    format_secs(s.state_seconds.unwrap_or(0.0)),
                    crate::duration::format(options.idle_in_transaction_over).replace(' ', "")
                ),
            );
        }
    }
    if let Some(list) = &status.long_running {
        for s in list {
            add(
                Severity::Warning,
                "sessions",
                format!(
                    "{} running one query for {}: {}",
                    describe(s),
                    format_secs(s.query_seconds.unwrap_or(0.0)),
                    one_line(&s.query, 80)
                ),
            );
        }
    }
    if let Some(locks) = &status.locks {
        for s in &locks.blocked {
            let by: Vec<String> = s.blocked_by.iter().map(|p| p.to_string()).collect();
            add(
                Severity::Warning,
                "locks",
                format!(
                    "{} blocked for {} ({}) by pid {}",
                    describe(s),
                    format_secs(s.state_seconds.unwrap_or(0.0)),
                    if s.wait.is_empty() { "lock" } else { &s.wait },
                    by.join(", ")
                ),
            );
        }
    }
    if let Some(r) = &status.replication {
        for slot in r
            .slots
            .iter()
            .filter(|s| s.wal_status.as_deref() == Some("lost"))
        {
            add(
                Severity::Critical,
                "replication",
                format!(
                    "replication slot {} is lost (wal_status = lost): the server removed WAL its consumer had not received — a WAL archive streamed over it has a gap (take a new base backup), a replica must be re-cloned",
                    slot.name
                ),
            );
        }
        for slot in r
            .slots
            .iter()
            .filter(|s| s.wal_status.as_deref() == Some("unreserved"))
        {
            add(
                Severity::Warning,
                "replication",
                format!(
                    "replication slot {} is over max_slot_wal_keep_size (wal_status = unreserved): the server removes the WAL it holds at the next checkpoint unless its consumer catches up first, and the slot is then lost",
                    slot.name
                ),
            );
        }
        for slot in r.slots.iter().filter(|s| !s.active) {
            let held = slot
                .retained_bytes
                .map(|b| format!(", holding {} of WAL", crate::human_bytes(b as f64)))
                .unwrap_or_default();
            add(
                Severity::Warning,
                "replication",
                format!(
                    "replication slot {} is inactive{held}; WAL piles up until it is consumed or dropped (SELECT pg_drop_replication_slot('{}'))",
                    slot.name, slot.name
                ),
            );
        }
        for rep in &r.replicas {
            if let Some(lag) = rep
                .replay_lag_seconds
                .filter(|l| *l >= REPLICA_LAG_WARN_SECONDS)
            {
                add(
                    Severity::Warning,
                    "replication",
                    format!(
                        "replica {} ({}) is {} behind",
                        rep.application_name,
                        rep.client_addr,
                        format_secs(lag)
                    ),
                );
            }
        }
    }
    if let Some(list) = &status.wraparound {
        for w in list {
            if w.xid_age >= WRAPAROUND_CRITICAL {
                add(
                    Severity::Critical,
                    "wraparound",
                    format!(
                        "database {} has transaction-ID age {} ({:.0}% of the limit); VACUUM FREEZE it now or the server stops accepting writes",
                        w.database, w.xid_age, w.pct_of_limit
                    ),
                );
            } else if w.xid_age >= options.wraparound_warn {
                add(
                    Severity::Warning,
                    "wraparound",
                    format!(
                        "database {} has transaction-ID age {} ({:.1}% of the limit); check that autovacuum completes (long transactions and inactive slots stop it)",
                        w.database, w.xid_age, w.pct_of_limit
                    ),
                );
            }
        }
    }
    if let Some(a) = &status.archiver {
        if a.failing {
            add(
                Severity::Critical,
                "archiver",
                format!(
                    "WAL archiving is failing: {} failures, last {} at {}; WAL accumulates in pg_wal until archive_command succeeds",
                    a.failed_count,
                    a.last_failed_wal.as_deref().unwrap_or("?"),
                    a.last_failed_at.as_deref().unwrap_or("?")
                ),
            );
        }
    }
    if let Some(c) = &status.cache_hit {
        for d in &c.databases {
            if let Some(r) = d.ratio {
                if r < CACHE_HIT_WARN && d.blocks_hit + d.blocks_read >= 100_000 {
                    add(
                        Severity::Warning,
                        "cache_hit",
                        format!(
                            "database {} cache hit ratio is {:.1}%; shared_buffers may be too small for the working set",
                            d.database,
                            r * 100.0
                        ),
                    );
                }
            }
        }
    }
    out.sort_by_key(|p| p.severity);
    out
}

/// The problems in a Redis status, most severe first.
pub fn redis(status: &RedisStatus) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut add = |severity, section, message: String| {
        out.push(Problem {
            severity,
            section,
            message,
        })
    };
    if let Some(m) = &status.memory {
        if let Some(pct) = m.used_pct.filter(|p| *p >= 90.0) {
            let sev = if m.eviction_policy == "noeviction" {
                Severity::Critical
            } else {
                Severity::Warning
            };
            add(
                sev,
                "memory",
                format!(
                    "memory {:.0}% of maxmemory ({} of {}), eviction policy {}{}",
                    pct,
                    crate::human_bytes(m.used_bytes),
                    crate::human_bytes(m.max_bytes),
                    m.eviction_policy,
                    if m.eviction_policy == "noeviction" {
                        ": writes will fail when it is full"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    if let Some(p) = &status.persistence {
        if p.last_bgsave_status == "err" {
            add(
                Severity::Critical,
                "persistence",
                "the last background save (BGSAVE) failed; snapshots are not being written (see the Redis log)".to_owned(),
            );
        }
        if p.aof_enabled
            && (p.aof_last_write_status == "err" || p.aof_last_bgrewrite_status == "err")
        {
            add(
                Severity::Critical,
                "persistence",
                "append-only file writes or rewrites are failing (see the Redis log)".to_owned(),
            );
        }
        if p.loading {
            add(
                Severity::Warning,
                "persistence",
                "the dataset is still being loaded".to_owned(),
            );
        }
    }
    if let Some(r) = &status.replication {
        if r.role == "slave" && r.master_link_status.as_deref() != Some("up") {
            add(
                Severity::Critical,
                "replication",
                format!(
                    "replica of {} with the link to its master {}",
                    r.master.as_deref().unwrap_or("?"),
                    r.master_link_status.as_deref().unwrap_or("unknown")
                ),
            );
        }
    }
    out.sort_by_key(|p| p.severity);
    out
}

/// The first `max` characters of `text` on one line.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}
