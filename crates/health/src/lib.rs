//! Health checks, status, `kill`, Prometheus metrics and a dashboard for
//! the PostgreSQL and Redis servers self-hosted applications run on.
//!
//! * [`check`](check::check): a probe with `pg_isready`'s exit statuses
//!   (0 accepting, 1 rejecting, 2 no response, 3 bad parameters) for
//!   `postgresql://` and `redis://`/`rediss://` targets, with stricter
//!   optional probes (a query, connection headroom, writable).
//! * [`status`]: every section an operator looks at — server, connections,
//!   sizes, long and idle-in-transaction sessions, the lock graph,
//!   replication and slots, wraparound, archiver, cache hits, slow
//!   statements, extension updates — each saying what it could not see and
//!   why; [`problems`] picks what to show first. Redis: `INFO`.
//! * [`backups`]: a backup destination's last good and last verified
//!   backup, counts per state and problems (stale, failed, corrupt, never
//!   verified), for `status --backups` and `serve`.
//! * [`kill`]: list, then cancel or terminate sessions over a threshold.
//! * [`progress`]: a running migration's progress as metrics
//!   (`migrate --listen`).
//! * [`monitor`]: the `serve` configuration and snapshots;
//!   [`metrics`] renders them for Prometheus, [`dashboard`] as one HTML
//!   page, and [`server`] serves both over HTTP or HTTPS ([`tls`]), behind
//!   the credentials of [`auth`] and the browser defences of [`browser`].
//! * [`query_text`]: query texts normalised (constants replaced by `$n`,
//!   found by the [`sql_lexer`]) unless shown whole on request.
//!
//! Passwords never appear in output: PostgreSQL targets are shown through
//! `ConnConfig`'s masked `Display`, Redis targets through [`RedisUrl`]'s.

pub mod auth;
pub mod backups;
pub mod browser;
pub mod check;
pub mod dashboard;
pub mod duration;
mod error;
pub mod kill;
pub mod metrics;
pub mod monitor;
pub mod problems;
pub mod progress;
pub mod query_text;
pub mod redis;
pub mod server;
pub mod sql_lexer;
pub mod status;
pub mod tls;

pub use check::{check, CheckOptions, CheckReport, Readiness};
pub use error::{chain_text, keeps_cause_apart, HealthError, HealthErrorKind, Result};
pub use redis::RedisUrl;

/// `1.5 GiB`-style sizes.
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes;
    let mut i = 0;
    while v.abs() >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", UNITS[0])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Masks a password in any `scheme://user:password@host…` string (backup
/// destinations, Redis URLs that failed to parse); PostgreSQL connection
/// strings in both libpq forms go through `pgharbor_conn::mask_password`.
pub fn mask_any(s: &str) -> String {
    if let Some(m) = pgharbor_conn::mask_password(s) {
        return m;
    }
    let Some(scheme_end) = s.find("://") else {
        return s.to_owned();
    };
    let rest = &s[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}://{}:****{}",
                    &s[..scheme_end],
                    &userinfo[..colon],
                    &rest[at..]
                ),
                None => s.to_owned(),
            }
        }
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking() {
        assert_eq!(
            mask_any("s3://key:secret@bucket/pg"),
            "s3://key:****@bucket/pg"
        );
        assert_eq!(mask_any("/var/backups"), "/var/backups");
        assert!(!mask_any("postgresql://u:hunter2@h/db").contains("hunter2"));
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
    }
}
