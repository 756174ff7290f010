//! `pgharbor check`: a probe with `pg_isready`'s exit statuses.
//!
//! | status | meaning | PostgreSQL | Redis |
//! |---|---|---|---|
//! | 0 | accepting connections | connected; or the server answered with an error about us (password, database, permissions), as `pg_isready` reports it | `PONG`; or the server refused our password |
//! | 1 | rejecting connections | SQLSTATE 57P03 (starting up, shutting down, recovery without hot standby) or 53300 (too many connections); a stricter probe failed | `-LOADING`, `-BUSY`, `-MASTERDOWN`, …; a stricter probe failed |
//! | 2 | no response | refused, timed out, name not resolved, TLS failed | the same |
//! | 3 | bad parameters | the URL does not parse | the same |
//!
//! One deliberate difference from `pg_isready`: it reports a server that is
//! out of connection slots (53300) as accepting; a server that admits no new
//! session is not ready, so `check` says 1.

use crate::error::{HealthError, HealthErrorKind};
use crate::redis::{self, RedisUrl};
use pgharbor_conn::{ConnConfig, ConnErrorKind};
use serde::Serialize;
use std::time::{Duration, Instant};

/// The outcome of a probe, with `pg_isready`'s exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// 0: the server accepts connections.
    Accepting,
    /// 1: the server is up but rejects connections (or a stricter probe failed).
    Rejecting,
    /// 2: no response.
    NoResponse,
    /// 3: the parameters are wrong (e.g. an unparseable URL); nothing was attempted.
    BadParameters,
}

impl Readiness {
    /// The exit status `pg_isready` uses for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            Readiness::Accepting => 0,
            Readiness::Rejecting => 1,
            Readiness::NoResponse => 2,
            Readiness::BadParameters => 3,
        }
    }

    /// Words for the one-line output, as `pg_isready` prints them.
    pub fn describe(self) -> &'static str {
        match self {
            Readiness::Accepting => "accepting connections",
            Readiness::Rejecting => "rejecting connections",
            Readiness::NoResponse => "no response",
            Readiness::BadParameters => "bad parameters",
        }
    }
}

/// What `check` should test beyond "the server answers".
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Upper bound for the whole probe (`pg_isready`'s default is 3 s).
    pub timeout: Duration,
    /// Run this query (PostgreSQL) and require it to succeed; for Redis, any
    /// value makes a refused `AUTH` a failure.
    pub query: Option<String>,
    /// Fail when at least this percentage of `max_connections` (Redis:
    /// `maxclients`) is in use.
    pub max_connections_used: Option<f64>,
    /// Fail when the server is a read-only standby (PostgreSQL: in recovery
    /// or `transaction_read_only`; Redis: a replica).
    pub writable: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            timeout: Duration::from_secs(3),
            query: None,
            max_connections_used: None,
            writable: false,
        }
    }
}

impl CheckOptions {
    fn strict(&self) -> bool {
        self.query.is_some() || self.max_connections_used.is_some() || self.writable
    }
}

/// One stricter probe and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    /// `query`, `max_connections_used` or `writable`.
    pub probe: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// The result of [`check`].
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// `postgresql` or `redis`.
    pub kind: &'static str,
    /// The target, password masked (or the raw input when it did not parse,
    /// with anything that looks like a password masked).
    pub target: String,
    /// The outcome.
    pub readiness: Readiness,
    /// The exit status for it.
    pub exit_code: u8,
    /// Why, in a few words.
    pub message: String,
    /// The stricter probes that ran.
    pub probes: Vec<ProbeResult>,
    /// How long the probe took, in milliseconds.
    pub elapsed_ms: f64,
}

impl CheckReport {
    /// The one line `check` prints: `TARGET: accepting connections (…)`.
    pub fn line(&self) -> String {
        if self.message.is_empty() {
            format!("{}: {}", self.target, self.readiness.describe())
        } else {
            format!(
                "{}: {} ({})",
                self.target,
                self.readiness.describe(),
                self.message
            )
        }
    }
}

/// Probes `target`, a PostgreSQL connection string (URL or `key=value`) or a
/// `redis://`/`rediss://` URL. Never fails: every problem is a [`Readiness`].
pub async fn check(target: &str, options: &CheckOptions) -> CheckReport {
    let started = Instant::now();
    let trimmed = target.trim();
    let mut report = if trimmed.starts_with("redis://") || trimmed.starts_with("rediss://") {
        check_redis(trimmed, options).await
    } else {
        check_postgres(trimmed, options).await
    };
    report.exit_code = report.readiness.exit_code();
    report.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    report
}

fn report(
    kind: &'static str,
    target: String,
    readiness: Readiness,
    message: String,
) -> CheckReport {
    CheckReport {
        kind,
        target,
        readiness,
        exit_code: readiness.exit_code(),
        message,
        probes: Vec::new(),
        elapsed_ms: 0.0,
    }
}

fn masked_input(input: &str) -> String {
    pgharbor_conn::mask_password(input).unwrap_or_else(|| input.to_owned())
}

async fn check_postgres(target: &str, options: &CheckOptions) -> CheckReport {
    const KIND: &str = "postgresql";
    let config = match ConnConfig::parse(target) {
        Ok(c) => c,
        Err(e) => {
            return report(
                KIND,
                masked_input(target),
                Readiness::BadParameters,
                pgharbor_conn::conn_text(&e),
            )
        }
    };
    let shown = config.to_string();
    let deadline = Instant::now() + options.timeout;
    let connected = tokio::time::timeout(options.timeout, pgharbor_conn::connect(&config)).await;
    let (client, _task) = match connected {
        Err(_) => {
            return report(
                KIND,
                shown,
                Readiness::NoResponse,
                format!(
                    "no answer within {}",
                    crate::duration::format(options.timeout)
                ),
            )
        }
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let state = e.sqlstate().map(str::to_owned);
            let readiness = match (e.kind(), state.as_deref()) {
                (
                    ConnErrorKind::InvalidConnectionString
                    | ConnErrorKind::UnencodedCharacterInPassword
                    | ConnErrorKind::TlsConfiguration,
                    _,
                ) => Readiness::BadParameters,
                (_, Some("57P03" | "53300")) => Readiness::Rejecting,
                // Any other answer from the server means it is up (pg_isready's rule),
                // unless a stricter probe needed a session.
                (_, Some(_)) | (ConnErrorKind::AuthenticationFailed, None) => {
                    if options.strict() {
                        Readiness::Rejecting
                    } else {
                        Readiness::Accepting
                    }
                }
                _ => Readiness::NoResponse,
            };
            let mut message = pgharbor_conn::conn_text(&e);
            if readiness == Readiness::Accepting {
                message = format!("the server answered: {message}");
            }
            return report(KIND, shown, readiness, message);
        }
    };
    let mut out = report(KIND, shown, Readiness::Accepting, String::new());
    let left = || deadline.saturating_duration_since(Instant::now());
    let probes = async {
        let mut results = Vec::new();
        if let Some(sql) = &options.query {
            results.push(match client.simple_query(sql).await {
                Ok(_) => ProbeResult {
                    probe: "query",
                    ok: true,
                    detail: "the query succeeded".to_owned(),
                },
                Err(e) => ProbeResult {
                    probe: "query",
                    ok: false,
                    detail: crate::chain_text(&HealthError::postgres("the query failed", e)),
                },
            });
        }
        if options.writable {
            let row = client
                .query_one(
                    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'",
                    &[],
                )
                .await;
            results.push(match row {
                Ok(r) => {
                    let (recovery, read_only): (bool, bool) = (r.get(0), r.get(1));
                    let detail = if recovery {
                        "the server is in recovery (a read-only standby)".to_owned()
                    } else if read_only {
                        "transactions are read-only (default_transaction_read_only is on)"
                            .to_owned()
                    } else {
                        "the server accepts writes".to_owned()
                    };
                    ProbeResult {
                        probe: "writable",
                        ok: !recovery && !read_only,
                        detail,
                    }
                }
                Err(e) => ProbeResult {
                    probe: "writable",
                    ok: false,
                    detail: crate::chain_text(&HealthError::postgres("cannot tell", e)),
                },
            });
        }
        if let Some(limit) = options.max_connections_used {
            let row = client
                .query_one(
                    "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' OR (backend_type IS NULL AND datid IS NOT NULL)), current_setting('max_connections')::bigint",
                    &[],
                )
                .await;
            results.push(match row {
                Ok(r) => {
                    let (used, max): (i64, i64) = (r.get(0), r.get(1));
                    let pct = used as f64 * 100.0 / max.max(1) as f64;
                    ProbeResult {
                        probe: "max_connections_used",
                        ok: pct < limit,
                        detail: format!(
                            "{used} of max_connections {max} in use ({pct:.0}%, limit {limit}%)"
                        ),
                    }
                }
                Err(e) => ProbeResult {
                    probe: "max_connections_used",
                    ok: false,
                    detail: crate::chain_text(&HealthError::postgres(
                        "cannot count connections",
                        e,
                    )),
                },
            });
        }
        results
    };
    match tokio::time::timeout(left(), probes).await {
        Ok(results) => out.probes = results,
        Err(_) => {
            out.readiness = Readiness::Rejecting;
            out.message = format!(
                "connected, but the probes did not finish within {}",
                crate::duration::format(options.timeout)
            );
            return out;
        }
    }
    finish_probes(&mut out);
    out
}

fn finish_probes(out: &mut CheckReport) {
    let failed: Vec<String> = out
        .probes
        .iter()
        .filter(|p| !p.ok)
        .map(|p| format!("{}: {}", p.probe, p.detail))
        .collect();
    if failed.is_empty() {
        out.message = out
            .probes
            .iter()
            .map(|p| p.detail.clone())
            .collect::<Vec<_>>()
            .join("; ");
    } else {
        out.readiness = Readiness::Rejecting;
        out.message = failed.join("; ");
    }
}

async fn check_redis(target: &str, options: &CheckOptions) -> CheckReport {
    const KIND: &str = "redis";
    let url = match RedisUrl::parse(target) {
        Ok(u) => u,
        Err(e) => {
            let shown = target.split('@').next_back().unwrap_or(target);
            return report(
                KIND,
                format!("redis://…@{shown}"),
                Readiness::BadParameters,
                crate::chain_text(&e),
            );
        }
    };
    let shown = url.to_string();
    let deadline = Instant::now() + options.timeout;
    let (mut conn, refused) = match redis::open(&url, options.timeout).await {
        Ok(c) => c,
        Err(e) => {
            let readiness = if e.kind() == HealthErrorKind::InvalidInput {
                Readiness::BadParameters
            } else {
                Readiness::NoResponse
            };
            return report(KIND, shown, readiness, crate::chain_text(&e));
        }
    };
    if let Some(error) = refused {
        let readiness = if options.strict() {
            Readiness::Rejecting
        } else {
            Readiness::Accepting
        };
        return report(
            KIND,
            shown,
            readiness,
            format!("the server answered: authentication failed: {error}"),
        );
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let work = async {
        let ping = conn.command(&[b"PING"]).await?;
        let mut out = report(KIND, shown.clone(), Readiness::Accepting, String::new());
        match ping {
            Reply::Simple(s) if s == "PONG" => out.message = "PONG".to_owned(),
            Reply::Error(e) if e.starts_with("NOAUTH") => {
                out.message = format!("the server answered: {e}");
                if options.strict() {
                    out.readiness = Readiness::Rejecting;
                }
                return Ok(out);
            }
            Reply::Error(e) => {
                out.readiness = Readiness::Rejecting;
                out.message = e;
                return Ok(out);
            }
            other => {
                out.readiness = Readiness::Rejecting;
                out.message = format!("unexpected reply to PING: {other:?}");
                return Ok(out);
            }
        }
        if options.writable || options.max_connections_used.is_some() {
            let info = conn.info().await?;
            if options.writable {
                let role = info.get("role").unwrap_or("unknown").to_owned();
                out.probes.push(ProbeResult {
                    probe: "writable",
                    ok: role == "master",
                    detail: format!("role: {role}"),
                });
            }
            if let Some(limit) = options.max_connections_used {
                let used = info.num("connected_clients").unwrap_or(0.0);
                out.probes.push(match info.num("maxclients") {
                    Some(max) => {
                        let pct = used * 100.0 / max.max(1.0);
                        ProbeResult {
                            probe: "max_connections_used",
                            ok: pct < limit,
                            detail: format!(
                                "{used} of maxclients {max} in use ({pct:.0}%, limit {limit}%)"
                            ),
                        }
                    }
                    None => ProbeResult {
                        probe: "max_connections_used",
                        ok: false,
                        detail: "INFO does not report maxclients".to_owned(),
                    },
                });
            }
        }
        if options.query.is_some() {
            out.probes.push(ProbeResult {
                probe: "query",
                ok: true,
                detail: "authenticated PING succeeded".to_owned(),
            });
        }
        Ok::<_, HealthError>(out)
    };
    match tokio::time::timeout(left, work).await {
        Ok(Ok(mut out)) => {
            if !out.probes.is_empty() {
                let pong = out.message.clone();
                finish_probes(&mut out);
                if out.readiness == Readiness::Accepting {
                    out.message = format!("{pong}; {}", out.message);
                }
            }
            out
        }
        Ok(Err(e)) => report(KIND, shown, Readiness::NoResponse, crate::chain_text(&e)),
        Err(_) => report(
            KIND,
            shown,
            Readiness::NoResponse,
            format!(
                "no answer within {}",
                crate::duration::format(options.timeout)
            ),
        ),
    }
}

use crate::redis::Reply;
