//! The `serve` configuration and the snapshot every endpoint renders.

use crate::auth::{Auth, AuthConfig};
use crate::backups::{BackupView, BackupWatch};
use crate::error::{HealthError, HealthErrorKind, Result};
use crate::query_text::QueryText;
use crate::redis::RedisUrl;
use crate::status::{self, PgStatus, RedisStatus, StatusOptions};
use crate::tls::TlsFiles;
use pgharbor_conn::{ConnConfig, Environment, SecretSource};
use pgharbor_objstore::DestinationOptions;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `serve` configuration file (TOML).
///
/// ```toml
/// listen = "0.0.0.0:8732"      # optional; --listen wins
/// refresh_seconds = 15          # optional: how old a snapshot may get (default 10)
/// show_query_text = false       # optional: query texts whole instead of normalised
/// allowed_hosts = ["pgharbor.example.com"]   # optional: Host header names besides addresses and localhost
///
/// [auth]                        # see crate::auth; required beyond loopback
/// token = { env = "PGHARBOR_TOKEN" }
///
/// [tls]                         # optional; see crate::tls
/// cert = "/etc/pgharbor/tls.crt"
/// key = "/etc/pgharbor/tls.key"
///
/// [thresholds]                  # optional
/// long_running = "5m"
/// idle_in_transaction = "1m"
/// wraparound_warn = 500000000
///
/// [[postgres]]
/// name = "main"
/// url = "postgresql://monitor@db:5432/postgres"   # or { env = "VAR" } / { file = "/run/secrets/x" }
/// password = { env = "MONITOR_PASSWORD" }          # optional
///
/// [[redis]]
/// name = "cache"
/// url = "redis://cache:6379"
/// password = { file = "/run/secrets/redis" }       # optional
///
/// [[backups]]
/// name = "nightly"
/// dest = "s3://bucket/pg"          # credentials from AWS_* / AZURE_STORAGE_* variables
/// max_age = "26h"                   # optional: older last good backup = problem (default 26h)
/// s3_endpoint = "http://minio:9000" # optional; also s3_region, azure_endpoint
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Maximum age of a snapshot before the next request collects a new one.
    pub refresh_seconds: Option<u64>,
    /// Per-server timeout for a collection.
    pub timeout_seconds: Option<u64>,
    /// Show query texts whole; by default they are normalised (literals
    /// replaced by `$1`, `$2`, …).
    #[serde(default)]
    pub show_query_text: bool,
    /// Host names a request's `Host` header may carry besides IP addresses,
    /// `localhost` and the listen address's name.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Credentials for the dashboard, `/api/status` and optionally `/metrics`.
    pub auth: Option<AuthConfig>,
    /// HTTPS.
    pub tls: Option<TlsFiles>,
    /// Problem thresholds.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// PostgreSQL servers.
    #[serde(default)]
    pub postgres: Vec<ServerEntry>,
    /// Redis servers.
    #[serde(default)]
    pub redis: Vec<ServerEntry>,
    /// Backup destinations.
    #[serde(default)]
    pub backups: Vec<BackupsEntry>,
}

/// `[thresholds]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Active queries longer than this are problems (`5m`).
    pub long_running: Option<String>,
    /// Sessions idle in a transaction longer than this are problems (`1m`).
    pub idle_in_transaction: Option<String>,
    /// Transaction-ID age from which a database is a warning.
    pub wraparound_warn: Option<i64>,
}

/// One `[[postgres]]` or `[[redis]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEntry {
    /// Name shown on the dashboard and in metric labels.
    pub name: String,
    /// The connection URL, literally or from `{ env = … }` / `{ file = … }`.
    pub url: SecretSource,
    /// A password kept out of the URL.
    pub password: Option<SecretSource>,
}

/// One `[[backups]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupsEntry {
    /// Name.
    pub name: String,
    /// Destination (`/dir`, `file://`, `s3://`, `az://`).
    pub dest: String,
    /// How old the last good backup may be (`26h`, the default).
    pub max_age: Option<String>,
    /// S3: the endpoint of an S3-compatible service.
    pub s3_endpoint: Option<String>,
    /// S3: the region.
    pub s3_region: Option<String>,
    /// Azure Blob: the blob endpoint.
    pub azure_endpoint: Option<String>,
}

impl BackupsEntry {
    fn watch(&self) -> Result<BackupWatch> {
        let max_age = match &self.max_age {
            Some(text) => crate::duration::parse(text)
                .map_err(|e| e.context(format!("[[backups]] {} max_age", self.name)))?,
            None => crate::backups::DEFAULT_MAX_AGE,
        };
        let mut options = DestinationOptions::from_env();
        if self.s3_endpoint.is_some() {
            options.s3_endpoint = self.s3_endpoint.clone();
        }
        if self.s3_region.is_some() {
            options.s3_region = self.s3_region.clone();
        }
        if self.azure_endpoint.is_some() {
            options.azure_endpoint = self.azure_endpoint.clone();
        }
        BackupWatch::parse(&self.name, &self.dest, &options, max_age)
    }
}

/// A PostgreSQL server ready to be watched.
#[derive(Debug, Clone)]
pub struct PgWatch {
    /// Name.
    pub name: String,
    /// Parsed connection settings.
    pub config: ConnConfig,
}

/// A Redis server ready to be watched.
#[derive(Debug, Clone)]
pub struct RedisWatch {
    /// Name.
    pub name: String,
    /// Parsed URL.
    pub url: RedisUrl,
}

/// The configuration with every secret resolved and every URL parsed.
#[derive(Debug)]
pub struct Watchlist {
    /// Listen address from the file.
    pub listen: Option<String>,
    /// Snapshot lifetime.
    pub refresh: Duration,
    /// Status options (thresholds, timeout).
    pub options: StatusOptions,
    /// PostgreSQL servers.
    pub postgres: Vec<PgWatch>,
    /// Redis servers.
    pub redis: Vec<RedisWatch>,
    /// Backup destinations.
    pub backups: Vec<BackupWatch>,
    /// Credentials, hashed.
    pub auth: Auth,
    /// Host names allowed in the `Host` header (see [`crate::browser::HostPolicy`]).
    pub allowed_hosts: Vec<String>,
    /// HTTPS certificate and key.
    pub tls: Option<TlsFiles>,
    /// `[auth]` settings whose secret is written in the file (to warn about).
    pub literal_auth_secrets: Vec<&'static str>,
}

impl Watchlist {
    /// Reads and checks a configuration file. Errors name the file and entry,
    /// never a secret (TOML errors are reported without the offending line).
    pub fn load(path: &Path) -> Result<Watchlist> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            HealthError::new(
                HealthErrorKind::Io,
                format!("cannot read {}", path.display()),
            )
            .caused_by(e)
        })?;
        Watchlist::parse(&text).map_err(|e| e.context(path.display()))
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Watchlist> {
        let bad = |m: String| HealthError::new(HealthErrorKind::InvalidInput, m);
        let config: ServeConfig = toml::from_str(text).map_err(|e| {
            // The toml crate quotes the offending line, which may hold a password.
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            bad(format!("invalid configuration{at}: {}", e.message()))
        })?;
        if config.postgres.is_empty() && config.redis.is_empty() && config.backups.is_empty() {
            return Err(bad(
                "the configuration lists nothing to watch: add [[postgres]], [[redis]] or [[backups]] entries".to_owned(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for n in config
            .postgres
            .iter()
            .chain(&config.redis)
            .map(|e| &e.name)
            .chain(config.backups.iter().map(|b| &b.name))
        {
            if n.trim().is_empty() {
                return Err(bad("an entry has an empty name".to_owned()));
            }
            if !names.insert(n.clone()) {
                return Err(bad(format!("the name \"{n}\" is used twice")));
            }
        }
        let mut options = StatusOptions::default();
        if let Some(d) = &config.thresholds.long_running {
            options.long_running_over = crate::duration::parse(d)?;
        }
        if let Some(d) = &config.thresholds.idle_in_transaction {
            options.idle_in_transaction_over = crate::duration::parse(d)?;
        }
        if let Some(w) = config.thresholds.wraparound_warn {
            options.wraparound_warn = w;
        }
        if let Some(t) = config.timeout_seconds {
            options.timeout = Duration::from_secs(t.max(1));
        }
        options.query_text = QueryText::shown_whole(config.show_query_text);
        let auth = match &config.auth {
            Some(section) => Auth::from_config(section)?,
            None => Auth::none(),
        };
        let mut postgres = Vec::new();
        for e in &config.postgres {
            let ctx = |err: HealthError| err.context(format!("[[postgres]] {}", e.name));
            let url = e
                .url
                .resolve()
                .map_err(|err| ctx(bad(format!("url: {err}"))))?;
            let mut env = Environment::from_process();
            if let Some(pw) = &e.password {
                let pw = pw
                    .resolve()
                    .map_err(|err| ctx(bad(format!("password: {err}"))))?;
                env = env.with_var("PGPASSWORD", pw.expose());
            }
            let config = ConnConfig::parse_with_env(url.expose(), &env)
                .map_err(|err| ctx(bad(pgharbor_conn::conn_text(&err))))?;
            postgres.push(PgWatch {
                name: e.name.clone(),
                config,
            });
        }
        let mut redis = Vec::new();
        for e in &config.redis {
            let ctx = |err: HealthError| err.context(format!("[[redis]] {}", e.name));
            let url = e
                .url
                .resolve()
                .map_err(|err| ctx(bad(format!("url: {err}"))))?;
            let mut url = RedisUrl::parse(url.expose()).map_err(|err| ctx(err.into()))?;
            if let Some(pw) = &e.password {
                let pw = pw
                    .resolve()
                    .map_err(|err| ctx(bad(format!("password: {err}"))))?;
                url = url.with_fallback_password(pw);
            }
            redis.push(RedisWatch {
                name: e.name.clone(),
                url,
            });
        }
        Ok(Watchlist {
            listen: config.listen,
            refresh: Duration::from_secs(config.refresh_seconds.unwrap_or(10).max(1)),
            options,
            postgres,
            redis,
            backups: config
                .backups
                .iter()
                .map(BackupsEntry::watch)
                .collect::<Result<_>>()?,
            auth,
            literal_auth_secrets: config
                .auth
                .as_ref()
                .map(AuthConfig::literal_secrets)
                .unwrap_or_default(),
            allowed_hosts: config.allowed_hosts,
            tls: config.tls,
        })
    }
}

/// One monitored server in a [`Snapshot`], with its kind's status.
#[derive(Debug, Clone, Serialize)]
pub struct Target<S> {
    /// Name from the configuration.
    pub name: String,
    /// URL, password masked.
    pub target: String,
    /// Whether it answered (a session could be opened and queried, the
    /// credentials were accepted).
    pub up: bool,
    /// Why not, when down.
    pub error: Option<String>,
    /// How long the collection took.
    pub scrape_seconds: f64,
    /// The status, when up.
    pub status: Option<S>,
}

/// One PostgreSQL server in a [`Snapshot`].
pub type PgTarget = Target<PgStatus>;

/// One Redis server in a [`Snapshot`].
pub type RedisTarget = Target<RedisStatus>;

/// Everything the endpoints show, collected at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Unix time of the collection.
    pub generated_at: f64,
    /// Seconds after which the next request collects again.
    pub refresh_seconds: u64,
    /// Number of problems (including servers that are down), critical ones first.
    pub problem_count: usize,
    /// PostgreSQL servers.
    pub postgres: Vec<PgTarget>,
    /// Redis servers.
    pub redis: Vec<RedisTarget>,
    /// Backup destinations.
    pub backups: Vec<BackupView>,
}

impl Snapshot {
    /// All problems as `(server name, problem)`, a down server first.
    pub fn problems(&self) -> Vec<(String, status::Problem)> {
        let mut out = Vec::new();
        for p in &self.postgres {
            if !p.up {
                out.push((
                    p.name.clone(),
                    status::Problem {
                        severity: status::Severity::Critical,
                        section: "server",
                        message: format!("down: {}", p.error.as_deref().unwrap_or("no answer")),
                    },
                ));
            }
            for pr in p.status.iter().flat_map(|s| &s.problems) {
                out.push((p.name.clone(), pr.clone()));
            }
        }
        for r in &self.redis {
            if !r.up {
                out.push((
                    r.name.clone(),
                    status::Problem {
                        severity: status::Severity::Critical,
                        section: "server",
                        message: format!("down: {}", r.error.as_deref().unwrap_or("no answer")),
                    },
                ));
            }
            for pr in r.status.iter().flat_map(|s| &s.problems) {
                out.push((r.name.clone(), pr.clone()));
            }
        }
        for b in &self.backups {
            for pr in &b.problems {
                out.push((b.name.clone(), pr.clone()));
            }
        }
        out.sort_by_key(|(_, p)| p.severity);
        out
    }
}

/// Collects snapshots, at most once per refresh interval however many
/// requests arrive (concurrent requests wait for the same collection).
pub struct Monitor {
    watch: Watchlist,
    cache: tokio::sync::Mutex<Option<(Instant, Arc<Snapshot>)>>,
}

impl Monitor {
    /// A monitor over `watch`.
    pub fn new(watch: Watchlist) -> Monitor {
        Monitor {
            watch,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// The configuration being watched.
    pub fn watchlist(&self) -> &Watchlist {
        &self.watch
    }

    /// The current snapshot, collecting a new one when the last is older
    /// than the refresh interval.
    pub async fn snapshot(&self) -> Arc<Snapshot> {
        let mut cache = self.cache.lock().await;
        if let Some((at, snap)) = cache.as_ref() {
            if at.elapsed() < self.watch.refresh {
                return snap.clone();
            }
        }
        let snap = Arc::new(self.collect().await);
        *cache = Some((Instant::now(), snap.clone()));
        snap
    }

    /// Collects from every server now, concurrently.
    pub async fn collect(&self) -> Snapshot {
        let options = self.watch.options.clone();
        let pg_tasks: Vec<_> = self
            .watch
            .postgres
            .iter()
            .cloned()
            .map(|w| {
                let options = options.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = status::collect_postgres(&w.config, &options).await;
                    let scrape_seconds = started.elapsed().as_secs_f64();
                    match result {
                        Ok(s) => PgTarget {
                            name: w.name,
                            target: w.config.to_string(),
                            up: true,
                            error: None,
                            scrape_seconds,
                            status: Some(s),
                        },
                        Err(e) => PgTarget {
                            name: w.name,
                            target: w.config.to_string(),
                            up: false,
                            error: Some(crate::chain_text(&e)),
                            scrape_seconds,
                            status: None,
                        },
                    }
                })
            })
            .collect();
        let redis_tasks: Vec<_> = self
            .watch
            .redis
            .iter()
            .cloned()
            .map(|w| {
                let options = options.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = status::collect_redis(&w.url, &options).await;
                    let scrape_seconds = started.elapsed().as_secs_f64();
                    let (up, error, status) = match result {
                        Ok(s) => (true, None, Some(s)),
                        Err(e) => (false, Some(crate::chain_text(&e)), None),
                    };
                    RedisTarget {
                        name: w.name,
                        target: w.url.to_string(),
                        up,
                        error,
                        scrape_seconds,
                        status,
                    }
                })
            })
            .collect();
        let mut postgres = Vec::new();
        for (t, w) in pg_tasks.into_iter().zip(&self.watch.postgres) {
            postgres.push(t.await.unwrap_or_else(|e| PgTarget {
                name: w.name.clone(),
                target: w.config.to_string(),
                up: false,
                error: Some(format!("collection failed: {e}")),
                scrape_seconds: 0.0,
                status: None,
            }));
        }
        let mut redis = Vec::new();
        for (t, w) in redis_tasks.into_iter().zip(&self.watch.redis) {
            redis.push(t.await.unwrap_or_else(|e| RedisTarget {
                name: w.name.clone(),
                target: w.url.to_string(),
                up: false,
                error: Some(format!("collection failed: {e}")),
                scrape_seconds: 0.0,
                status: None,
            }));
        }
        let backup_tasks: Vec<_> = self
            .watch
            .backups
            .iter()
            .cloned()
            .map(|w| {
                let timeout = options.timeout;
                tokio::spawn(async move { crate::backups::inspect(&w, timeout).await })
            })
            .collect();
        let mut backups = Vec::new();
        for (t, w) in backup_tasks.into_iter().zip(&self.watch.backups) {
            backups.push(t.await.unwrap_or_else(|e| {
                crate::backups::unreadable(w, format!("collection failed: {e}"))
            }));
        }
        let mut snap = Snapshot {
            generated_at: status::now_unix(),
            refresh_seconds: self.watch.refresh.as_secs(),
            problem_count: 0,
            postgres,
            redis,
            backups,
        };
        snap.problem_count = snap.problems().len();
        snap
    }
}
