//! `/metrics`: a [`Snapshot`] in the Prometheus text exposition format (0.0.4).
//!
//! Names follow postgres_exporter where one exists (`pg_up`,
//! `pg_database_size_bytes`, …); every PostgreSQL series carries a
//! `server` label with the configured name, never the URL.

use crate::backups::{BackupSummary, BackupView};
use crate::monitor::Snapshot;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family: its help text, type and samples.
struct Family {
    help: &'static str,
    kind: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// Metric families in the order they were first added, rendered in the
/// text exposition format; the scheduler's metrics are rendered by it too.
#[derive(Default)]
pub struct Families {
    order: Vec<&'static str>,
    map: BTreeMap<&'static str, Family>,
}

impl Families {
    /// Adds one sample of `name` (a `kind` such as `gauge` or `counter`,
    /// described by `help` the first time the name is seen).
    pub fn add(
        &mut self,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        labels: Vec<(&'static str, String)>,
        value: f64,
    ) {
        if !self.map.contains_key(name) {
            self.order.push(name);
        }
        self.map
            .entry(name)
            .or_insert_with(|| Family {
                help,
                kind,
                samples: Vec::new(),
            })
            .samples
            .push((labels, value));
    }

    /// The families as exposition text, `# HELP` and `# TYPE` before each.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for name in &self.order {
            let f = &self.map[name];
            let _ = writeln!(out, "# HELP {name} {}", f.help);
            let _ = writeln!(out, "# TYPE {name} {}", f.kind);
            for (labels, value) in &f.samples {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", format_value(*value));
            }
        }
        out
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn b(x: bool) -> f64 {
    if x {
        1.0
    } else {
        0.0
    }
}

/// Renders every metric of `snap`.
pub fn render(snap: &Snapshot) -> String {
    let mut m = Families::default();
    let g = "gauge";
    for p in &snap.postgres {
        let s = || vec![("server", p.name.clone())];
        m.add(
            "pg_up",
            g,
            "Whether the PostgreSQL server could be reached and queried (1) or not (0).",
            s(),
            b(p.up),
        );
        m.add(
            "pg_scrape_duration_seconds",
            g,
            "Time taken to collect the server's status.",
            s(),
            p.scrape_seconds,
        );
        let Some(st) = &p.status else { continue };
        if let Some(srv) = &st.server {
            m.add(
                "pg_in_recovery",
                g,
                "Whether the server is a standby in recovery.",
                s(),
                b(srv.in_recovery),
            );
            m.add(
                "pg_postmaster_uptime_seconds",
                g,
                "Seconds since the server started.",
                s(),
                srv.uptime_seconds,
            );
            m.add(
                "pg_server_version_num",
                g,
                "server_version_num.",
                s(),
                f64::from(srv.version_num),
            );
        }
        if let Some(c) = &st.connections {
            m.add(
                "pg_max_connections",
                g,
                "The max_connections setting.",
                s(),
                c.max_connections as f64,
            );
            m.add(
                "pg_connections_total",
                g,
                "Client connections now.",
                s(),
                c.total as f64,
            );
            for d in &c.by_database {
                let mut l = s();
                l.push(("database", d.database.clone()));
                l.push(("state", d.state.clone()));
                m.add("pg_connections", g, "Client connections by database and state (hidden: state not visible to the monitoring user).", l, d.count as f64);
            }
        }
        if let Some(dbs) = &st.databases {
            for d in dbs {
                if let Some(size) = d.size_bytes {
                    let mut l = s();
                    l.push(("database", d.database.clone()));
                    m.add(
                        "pg_database_size_bytes",
                        g,
                        "Disk space used by the database.",
                        l,
                        size as f64,
                    );
                }
            }
        }
        m.add(
            "pg_longest_transaction_seconds",
            g,
            "Age of the oldest open transaction (0 when none).",
            s(),
            st.longest_transaction_seconds.unwrap_or(0.0),
        );
        if let Some(list) = &st.idle_in_transaction {
            m.add(
                "pg_idle_in_transaction_sessions",
                g,
                "Sessions idle in a transaction longer than the threshold.",
                s(),
                list.len() as f64,
            );
        }
        if let Some(list) = &st.long_running {
            m.add(
                "pg_long_running_queries",
                g,
                "Queries running longer than the threshold.",
                s(),
                list.len() as f64,
            );
        }
        if let Some(l) = &st.locks {
            m.add(
                "pg_blocked_sessions",
                g,
                "Sessions waiting for a lock held by another session.",
                s(),
                l.blocked.len() as f64,
            );
        }
        if let Some(ws) = &st.wraparound {
            for w in ws {
                let mut l = s();
                l.push(("database", w.database.clone()));
                m.add(
                    "pg_database_xid_age",
                    g,
                    "Transaction-ID age of the database (age(datfrozenxid)); wraparound at 2^31.",
                    l.clone(),
                    w.xid_age as f64,
                );
                m.add(
                    "pg_database_mxid_age",
                    g,
                    "Multixact-ID age of the database (mxid_age(datminmxid)).",
                    l,
                    w.mxid_age as f64,
                );
            }
        }
        if let Some(r) = &st.replication {
            for rep in &r.replicas {
                let mut l = s();
                l.push(("replica", rep.application_name.clone()));
                l.push(("client_addr", rep.client_addr.clone()));
                if let Some(lag) = rep.replay_lag_seconds {
                    m.add(
                        "pg_replication_lag_seconds",
                        g,
                        "Replay lag of a replica.",
                        l.clone(),
                        lag,
                    );
                }
                if let Some(bytes) = rep.lag_bytes {
                    m.add(
                        "pg_replication_lag_bytes",
                        g,
                        "WAL bytes a replica has not replayed yet.",
                        l,
                        bytes as f64,
                    );
                }
            }
            if let Some(d) = r.standby_replay_delay_seconds {
                m.add("pg_standby_replay_delay_seconds", g, "On a standby: seconds since the last replayed transaction was committed on the primary.", s(), d);
            }
            for slot in &r.slots {
                let mut l = s();
                l.push(("slot", slot.name.clone()));
                l.push(("slot_type", slot.slot_type.clone()));
                m.add(
                    "pg_replication_slot_active",
                    g,
                    "Whether a consumer is connected to the slot.",
                    l.clone(),
                    b(slot.active),
                );
                m.add(
                    "pg_replication_slot_lost",
                    g,
                    "1 when the server has invalidated the slot (wal_status = lost).",
                    l.clone(),
                    b(slot.wal_status.as_deref() == Some("lost")),
                );
                if let Some(bytes) = slot.retained_bytes {
                    m.add(
                        "pg_replication_slot_retained_bytes",
                        g,
                        "WAL held back by the slot.",
                        l,
                        bytes as f64,
                    );
                }
            }
        }
        if let Some(a) = &st.archiver {
            m.add(
                "pg_archiver_archived_count",
                "counter",
                "WAL segments archived.",
                s(),
                a.archived_count as f64,
            );
            m.add(
                "pg_archiver_failed_count",
                "counter",
                "Failed WAL archiving attempts.",
                s(),
                a.failed_count as f64,
            );
            m.add(
                "pg_archiver_failing",
                g,
                "Whether the last archiving attempt failed.",
                s(),
                b(a.failing),
            );
        }
        if let Some(c) = &st.cache_hit {
            for d in &c.databases {
                if let Some(r) = d.ratio {
                    let mut l = s();
                    l.push(("database", d.database.clone()));
                    m.add(
                        "pg_cache_hit_ratio",
                        g,
                        "Share of blocks found in shared buffers.",
                        l,
                        r,
                    );
                }
            }
        }
        for sev in ["critical", "warning"] {
            let n = st
                .problems
                .iter()
                .filter(|pr| format!("{:?}", pr.severity).eq_ignore_ascii_case(sev))
                .count();
            let mut l = s();
            l.push(("severity", sev.to_owned()));
            m.add(
                "pg_problems",
                g,
                "Problems status would highlight, by severity.",
                l,
                n as f64,
            );
        }
    }
    for r in &snap.redis {
        let s = || vec![("server", r.name.clone())];
        m.add(
            "redis_up",
            g,
            "Whether the Redis server answered and accepted the credentials.",
            s(),
            b(r.up),
        );
        m.add(
            "redis_scrape_duration_seconds",
            g,
            "Time taken to collect the server's status.",
            s(),
            r.scrape_seconds,
        );
        let Some(st) = &r.status else { continue };
        if let Some(u) = st.uptime_seconds {
            m.add(
                "redis_uptime_seconds",
                g,
                "Seconds since the server started.",
                s(),
                u,
            );
        }
        if let Some(mem) = &st.memory {
            m.add(
                "redis_memory_used_bytes",
                g,
                "used_memory.",
                s(),
                mem.used_bytes,
            );
            m.add(
                "redis_memory_max_bytes",
                g,
                "maxmemory (0: no limit).",
                s(),
                mem.max_bytes,
            );
        }
        if let Some(c) = &st.clients {
            m.add(
                "redis_connected_clients",
                g,
                "connected_clients.",
                s(),
                c.connected,
            );
            m.add(
                "redis_blocked_clients",
                g,
                "blocked_clients.",
                s(),
                c.blocked,
            );
        }
        if let Some(p) = &st.persistence {
            if let Some(t) = p.last_save_unix {
                m.add(
                    "redis_rdb_last_save_timestamp_seconds",
                    g,
                    "Unix time of the last successful RDB save.",
                    s(),
                    t,
                );
            }
            m.add(
                "redis_rdb_last_bgsave_ok",
                g,
                "Whether the last BGSAVE succeeded.",
                s(),
                b(p.last_bgsave_status == "ok"),
            );
            m.add(
                "redis_aof_enabled",
                g,
                "Whether the append-only file is on.",
                s(),
                b(p.aof_enabled),
            );
        }
        if let Some(rep) = &st.replication {
            m.add(
                "redis_connected_replicas",
                g,
                "connected_slaves.",
                s(),
                rep.connected_replicas,
            );
            m.add(
                "redis_is_replica",
                g,
                "Whether the server is a replica.",
                s(),
                b(rep.role == "slave"),
            );
        }
        for k in &st.keyspace {
            let mut l = s();
            l.push(("db", k.db.clone()));
            m.add("redis_db_keys", g, "Keys per database.", l, k.keys as f64);
        }
        m.add(
            "redis_problems",
            g,
            "Problems status would highlight.",
            s(),
            st.problems.len() as f64,
        );
    }
    backup_metrics(&mut m, &snap.backups);
    m.add(
        "pgharbor_problems",
        g,
        "All problems on the dashboard, including servers that are down.",
        vec![],
        snap.problem_count as f64,
    );
    m.add(
        "pgharbor_snapshot_timestamp_seconds",
        g,
        "Unix time the snapshot was collected.",
        vec![],
        snap.generated_at,
    );
    m.render()
}

/// Per `[[backups]]` destination, labelled `backup` (its name). Timestamps
/// are 0 while there is no such backup, so an alert on their age fires.
fn backup_metrics(m: &mut Families, backups: &[BackupView]) {
    let g = "gauge";
    let unix_or_zero = |b: Option<&BackupSummary>, f: fn(&BackupSummary) -> Option<f64>| {
        b.and_then(f).unwrap_or(0.0)
    };
    for bk in backups {
        let l = || vec![("backup", bk.name.clone())];
        let mut info = l();
        info.push(("dest", bk.dest.clone()));
        info.push(("health", bk.health().to_owned()));
        m.add(
            "pgharbor_backup_info",
            g,
            "A watched backup destination; health is ok, warning or critical.",
            info,
            1.0,
        );
        m.add(
            "pgharbor_backup_destination_up",
            g,
            "Whether the destination could be listed (1) or not (0).",
            l(),
            if bk.readable { 1.0 } else { 0.0 },
        );
        let good = bk.last_good.as_ref();
        m.add(
            "pgharbor_backup_last_success_timestamp_seconds",
            g,
            "When the newest complete or verified backup finished (Unix time; 0 when there is none).",
            l(),
            unix_or_zero(good, |b| Some(b.finished_unix)),
        );
        m.add(
            "pgharbor_backup_last_verified_timestamp_seconds",
            g,
            "When the newest verified backup's verification passed (Unix time; 0 when there is none).",
            l(),
            unix_or_zero(bk.last_verified.as_ref(), |b| b.verified_unix),
        );
        if let Some(good) = good {
            m.add(
                "pgharbor_backup_last_size_bytes",
                g,
                "Bytes stored by the newest complete or verified backup.",
                l(),
                good.size as f64,
            );
            if let Some(d) = good.duration_seconds {
                m.add(
                    "pgharbor_backup_last_duration_seconds",
                    g,
                    "How long the newest complete or verified backup took.",
                    l(),
                    d,
                );
            }
        }
        for (state, n) in [
            ("complete", bk.counts.complete),
            ("verified", bk.counts.verified),
            ("failed", bk.counts.failed),
            ("corrupt", bk.counts.corrupt),
        ] {
            let mut labels = l();
            labels.push(("state", state.to_owned()));
            m.add(
                "pgharbor_backups",
                g,
                "Backups at the destination per state.",
                labels,
                n as f64,
            );
        }
        if let Some(wal) = &bk.wal {
            m.add(
                "pgharbor_backup_wal_files",
                g,
                "WAL files in the destination's point-in-time archive.",
                l(),
                wal.files as f64,
            );
            m.add(
                "pgharbor_backup_wal_last_archived_timestamp_seconds",
                g,
                "When the newest WAL file was archived (Unix time).",
                l(),
                wal.last_archived_unix,
            );
            if let Some(archiver) = &wal.archiver {
                m.add(
                    "pgharbor_backup_wal_archiver_failures",
                    g,
                    "Failures the WAL archiver reported since it started.",
                    l(),
                    archiver.failures as f64,
                );
                if let Some(lag) = archiver.lag_bytes {
                    m.add(
                        "pgharbor_backup_wal_lag_bytes",
                        g,
                        "WAL the server had written that the archive lacked, at the archiver's last look.",
                        l(),
                        lag as f64,
                    );
                }
                if let Some(lag) = archiver.lag_seconds {
                    m.add(
                        "pgharbor_backup_wal_lag_seconds",
                        g,
                        "Age of the oldest WAL the archive lacked, at the archiver's last look (an upper bound when pgharbor_backup_wal_lag_is_bound is 1).",
                        l(),
                        lag,
                    );
                }
                m.add(
                    "pgharbor_backup_wal_lag_is_bound",
                    g,
                    "1 when the lag in seconds counts from a restarted archiver's previous report (an upper bound).",
                    l(),
                    f64::from(u8::from(archiver.lag_is_bound)),
                );
                m.add(
                    "pgharbor_backup_wal_slot_lost",
                    g,
                    "1 when the WAL archiver's replication slot was lost (the archive has a gap).",
                    l(),
                    f64::from(u8::from(archiver.slot_lost)),
                );
            }
        }
        m.add(
            "pgharbor_backup_problems",
            g,
            "Problems with the destination's backups (stale, failed, corrupt, never verified, unreadable).",
            l(),
            bk.problems.len() as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_labels() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
