//! [`ConnConfig`]: a fully resolved connection target.

use crate::encoding::{encode, encode_path};
use crate::env::Environment;
use crate::error::ConnError;
use crate::params::{
    check_channel_binding, check_port, check_single_host, check_sslmode, check_sslnegotiation,
    check_timeout, search_path_from_options, RawParams,
};
use crate::pgpass::{self, PgPassEntry};
use crate::secret::Secret;
use crate::sslmode::{ChannelBinding, SslMode, SslNegotiation};
use crate::{keyvalue, url};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The default PostgreSQL port.
pub const DEFAULT_PORT: u16 = 5432;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name or IP address, reached over TCP.
    Tcp(String),
    /// A directory holding the server's Unix socket (`.s.PGSQL.<port>`).
    Unix(PathBuf),
}

impl Host {
    /// Whether this is a Unix socket directory.
    pub fn is_unix(&self) -> bool {
        matches!(self, Host::Unix(_))
    }

    /// The host name or address, for TCP hosts.
    pub fn as_tcp(&self) -> Option<&str> {
        match self {
            Host::Tcp(h) => Some(h),
            Host::Unix(_) => None,
        }
    }

    /// The socket directory, for Unix-socket hosts.
    pub fn socket_dir(&self) -> Option<&Path> {
        match self {
            Host::Tcp(_) => None,
            Host::Unix(p) => Some(p),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Tcp(h) => f.write_str(h),
            Host::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Where the trusted root certificates for verifying the server come from
/// (libpq's `sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SslRootCert {
    /// A PEM file holding one or more CA certificates (a bundle is fine).
    File(PathBuf),
    /// The operating system's trusted roots (`sslrootcert=system`): the CA
    /// bundle of the OS, e.g. `/etc/ssl/certs` on Debian; `SSL_CERT_FILE`
    /// and `SSL_CERT_DIR` override where it is read from. As in libpq, this
    /// makes `verify-full` the default `sslmode` and refuses weaker ones.
    System,
}

impl SslRootCert {
    fn parse(value: &str) -> SslRootCert {
        if value == "system" {
            SslRootCert::System
        } else {
            SslRootCert::File(PathBuf::from(value))
        }
    }
}

impl fmt::Display for SslRootCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SslRootCert::File(p) => write!(f, "{}", p.display()),
            SslRootCert::System => f.write_str("system"),
        }
    }
}

/// libpq's default root certificate file, under `~/.postgresql/`.
pub(crate) const DEFAULT_ROOT_CERT: &str = "root.crt";
/// libpq's default client certificate file, under `~/.postgresql/`.
pub(crate) const DEFAULT_CLIENT_CERT: &str = "postgresql.crt";
/// libpq's default client key file, under `~/.postgresql/`.
pub(crate) const DEFAULT_CLIENT_KEY: &str = "postgresql.key";

/// Where the password of a [`ConnConfig`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// No password is known; the server may not need one.
    None,
    /// The connection string (`password=` or the URL's user info).
    ConnectionString,
    /// The `PGPASSWORD` environment variable.
    Environment,
    /// A password file (`~/.pgpass`, `PGPASSFILE` or `passfile=`).
    PasswordFile(PathBuf),
}

impl PasswordSource {
    /// Words for messages: "from PGPASSWORD", "from the password file …".
    pub(crate) fn describe(&self) -> Option<String> {
        match self {
            PasswordSource::None => None,
            PasswordSource::ConnectionString => Some("from the connection string".to_owned()),
            PasswordSource::Environment => Some("from PGPASSWORD".to_owned()),
            PasswordSource::PasswordFile(p) => {
                Some(format!("from the password file {}", p.display()))
            }
        }
    }
}

/// A password file kept so that [`ConnConfig::with_dbname`] can look again.
struct PgPassData {
    path: PathBuf,
    entries: Vec<PgPassEntry>,
}

/// Everything needed to connect to one PostgreSQL database, resolved the way
/// libpq resolves it: the connection string first, then the `PG*`
/// environment variables, then the defaults (Unix socket directory, port
/// 5432, the OS user name, a database named like the user), and the password
/// file when no password was given.
///
/// `Display` renders a URL with the password replaced by `****`, fit for
/// logs; [`ConnConfig::to_url_with_password`] renders the full URL for other
/// programs. `Debug` never shows the password either.
///
/// ```
/// use pgharbor_conn::{ConnConfig, Environment, SslMode};
///
/// let env = Environment::empty().with_os_user("alice");
/// let cfg = ConnConfig::parse_with_env(
///     "postgresql://app:p%40ss@db.example.com/shop?sslmode=require",
///     &env,
/// )
/// .unwrap();
/// assert_eq!(cfg.user(), "app");
/// assert_eq!(cfg.password().unwrap().expose(), "p@ss");
/// assert_eq!(cfg.sslmode(), SslMode::Require);
/// assert_eq!(
///     cfg.to_string(),
///     "postgresql://app:****@db.example.com:5432/shop?sslmode=require"
/// );
/// ```
#[derive(Clone)]
pub struct ConnConfig {
    host: Host,
    port: u16,
    user: String,
    dbname: String,
    password: Option<Secret>,
    password_source: PasswordSource,
    sslmode: SslMode,
    ssl_root_cert: Option<SslRootCert>,
    ssl_cert: Option<PathBuf>,
    ssl_key: Option<PathBuf>,
    ssl_negotiation: SslNegotiation,
    channel_binding: ChannelBinding,
    /// `~/.postgresql`, where the default certificate files are looked for.
    ssl_dir: Option<PathBuf>,
    application_name: Option<String>,
    connect_timeout: Option<Duration>,
    options: Option<String>,
    search_path: Option<String>,
    /// `.pgpass` matches `localhost` for this host (a default socket dir).
    host_is_default_socket: bool,
    pgpass: Option<Arc<PgPassData>>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl ConnConfig {
    /// Parses a connection string (URL or `key=value`) with the process
    /// environment for defaults. An empty string means "everything from the
    /// environment", as in libpq.
    pub fn parse(conninfo: &str) -> Result<Self, ConnError> {
        Self::parse_with_env(conninfo, &Environment::from_process())
    }

    /// Like [`ConnConfig::parse`], with defaults from `env` instead of the
    /// process (for tests, or for callers that manage their own environment).
    pub fn parse_with_env(conninfo: &str, env: &Environment) -> Result<Self, ConnError> {
        let input = conninfo.trim();
        let raw = if let Some((scheme, rest)) = url::split_scheme(input) {
            url::parse(scheme, rest)?
        } else if let Some(scheme) = url::foreign_scheme(input) {
            let hint = if scheme.to_ascii_lowercase().starts_with("jdbc:") {
                "; drop the \"jdbc:\" prefix"
            } else {
                ""
            };
            return Err(ConnError::invalid(format!(
                "unsupported URL scheme \"{scheme}\"; a PostgreSQL URL starts with postgresql:// or postgres://{hint}"
            )));
        } else {
            keyvalue::parse(input)?
        };
        Self::resolve(raw, env)
    }

    /// Everything from the process environment (`PGHOST`, `PGUSER`, …).
    pub fn from_env() -> Result<Self, ConnError> {
        Self::parse("")
    }

    fn resolve(raw: RawParams, env: &Environment) -> Result<Self, ConnError> {
        const CONN_STRING: &str = "the connection string";
        let pick = |explicit: Option<String>, var: &'static str| match explicit {
            Some(v) => Some((v, CONN_STRING)),
            None => env.var(var).map(|v| (v.to_owned(), var)),
        };
        let invalid = ConnError::invalid;

        let host = pick(raw.host, "PGHOST");
        if let Some((h, origin)) = &host {
            check_single_host(h, origin, true).map_err(invalid)?;
        }
        let port = match pick(raw.port, "PGPORT") {
            Some((p, origin)) => check_port(&p, origin, true).map_err(invalid)?,
            None => None,
        }
        .unwrap_or(DEFAULT_PORT);
        let host = match non_empty(host.map(|(h, _)| h)) {
            Some(h) if h.starts_with('/') => Host::Unix(PathBuf::from(h)),
            Some(h) => Host::Tcp(h),
            None => Host::Unix(env.default_socket_dir(port)),
        };
        let host_is_default_socket = match &host {
            Host::Unix(dir) => env.is_default_socket_dir(dir),
            Host::Tcp(_) => false,
        };

        let user = non_empty(pick(raw.user, "PGUSER").map(|(u, _)| u))
            .or_else(|| env.os_user().map(str::to_owned))
            .ok_or_else(|| {
                ConnError::invalid(
                    "no user name given and the operating-system user name is unknown; set user= in the connection string or PGUSER",
                )
            })?;
        let dbname = non_empty(pick(raw.dbname, "PGDATABASE").map(|(d, _)| d))
            .unwrap_or_else(|| user.clone());

        let sslmode = match pick(raw.sslmode, "PGSSLMODE") {
            Some((m, origin)) => check_sslmode(&m, origin, true).map_err(invalid)?,
            None => None,
        };
        let path = |v: Option<(String, &'static str)>| non_empty(v.map(|(p, _)| p));
        let ssl_root_cert =
            path(pick(raw.sslrootcert, "PGSSLROOTCERT")).map(|v| SslRootCert::parse(&v));
        let ssl_cert = path(pick(raw.sslcert, "PGSSLCERT")).map(PathBuf::from);
        let ssl_key = path(pick(raw.sslkey, "PGSSLKEY")).map(PathBuf::from);
        let ssl_negotiation = match pick(raw.sslnegotiation, "PGSSLNEGOTIATION") {
            Some((n, origin)) => check_sslnegotiation(&n, origin, true).map_err(invalid)?,
            None => None,
        }
        .unwrap_or_default();
        let channel_binding = match pick(raw.channel_binding, "PGCHANNELBINDING") {
            Some((c, origin)) => check_channel_binding(&c, origin, true).map_err(invalid)?,
            None => None,
        }
        .unwrap_or_default();
        let sslmode = check_tls_combination(
            sslmode,
            ssl_root_cert.as_ref(),
            ssl_negotiation,
            channel_binding,
            &host,
        )?;
        let connect_timeout = match pick(raw.connect_timeout, "PGCONNECT_TIMEOUT") {
            Some((t, origin)) => check_timeout(&t, origin, true).map_err(invalid)?,
            None => None,
        };
        let application_name = non_empty(pick(raw.application_name, "PGAPPNAME").map(|(a, _)| a))
            .or_else(|| non_empty(raw.fallback_application_name));
        let options = non_empty(pick(raw.options, "PGOPTIONS").map(|(o, _)| o));
        let search_path = options.as_deref().and_then(search_path_from_options);

        let (password, password_source) = match raw.password.filter(|p| !p.is_empty()) {
            Some(p) => (Some(p), PasswordSource::ConnectionString),
            None => match env.var("PGPASSWORD").filter(|p| !p.is_empty()) {
                Some(p) => (Some(Secret::new(p)), PasswordSource::Environment),
                None => (None, PasswordSource::None),
            },
        };

        let mut config = ConnConfig {
            host,
            port,
            user,
            dbname,
            password,
            password_source,
            sslmode,
            ssl_root_cert,
            ssl_cert,
            ssl_key,
            ssl_negotiation,
            channel_binding,
            ssl_dir: env.home_dir().map(|h| h.join(".postgresql")),
            application_name,
            connect_timeout,
            options,
            search_path,
            host_is_default_socket,
            pgpass: None,
        };

        if config.password.is_none() {
            let passfile = non_empty(pick(raw.passfile, "PGPASSFILE").map(|(p, _)| p))
                .map(PathBuf::from)
                .or_else(|| env.home_dir().map(|h| h.join(".pgpass")));
            if let Some(path) = passfile {
                match pgpass::load(&path) {
                    pgpass::Loaded::Missing => {}
                    pgpass::Loaded::Ignored(reason) => tracing::warn!("{reason}; ignoring it"),
                    pgpass::Loaded::Entries(entries) => {
                        config.pgpass = Some(Arc::new(PgPassData { path, entries }));
                        config.lookup_pgpass();
                    }
                }
            }
        }
        Ok(config)
    }

    /// The host name `.pgpass` lines are matched against.
    fn pgpass_host(&self) -> String {
        match &self.host {
            Host::Tcp(h) => h.clone(),
            Host::Unix(_) if self.host_is_default_socket => "localhost".to_owned(),
            Host::Unix(dir) => dir.to_string_lossy().into_owned(),
        }
    }

    /// Sets the password from the kept password file, if a line matches.
    fn lookup_pgpass(&mut self) {
        let Some(data) = self.pgpass.clone() else {
            return;
        };
        let host = self.pgpass_host();
        match pgpass::lookup(&data.entries, &host, self.port, &self.dbname, &self.user) {
            Some(p) => {
                self.password = Some(p.clone());
                self.password_source = PasswordSource::PasswordFile(data.path.clone());
            }
            None => {
                self.password = None;
                self.password_source = PasswordSource::None;
            }
        }
    }

    /// The same target with another database, e.g. `postgres` to run
    /// `CREATE DATABASE` when the wanted one is missing. A password that
    /// came from the password file is looked up again for the new name.
    pub fn with_dbname(&self, dbname: impl Into<String>) -> Self {
        let mut config = self.clone();
        config.dbname = dbname.into();
        if matches!(
            config.password_source,
            PasswordSource::None | PasswordSource::PasswordFile(_)
        ) {
            config.lookup_pgpass();
        }
        config
    }

    /// The same target with `application_name` set to `name` unless the user
    /// set one (libpq's `fallback_application_name`).
    pub fn with_fallback_application_name(&self, name: impl Into<String>) -> Self {
        let mut config = self.clone();
        if config.application_name.is_none() {
            config.application_name = Some(name.into());
        }
        config
    }

    /// Where the server listens.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port (also selects the socket file for Unix sockets).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The password, if one is known.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// Where the password came from.
    pub fn password_source(&self) -> &PasswordSource {
        &self.password_source
    }

    /// The `sslmode`.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// The root certificates given with `sslrootcert` (or `PGSSLROOTCERT`).
    /// `None` means libpq's default, `~/.postgresql/root.crt`, used when it
    /// exists (see [`ConnConfig::default_ssl_root_cert`]).
    pub fn ssl_root_cert(&self) -> Option<&SslRootCert> {
        self.ssl_root_cert.as_ref()
    }

    /// The client certificate given with `sslcert` (or `PGSSLCERT`). `None`
    /// means `~/.postgresql/postgresql.crt`, used only when it exists.
    pub fn ssl_cert(&self) -> Option<&Path> {
        self.ssl_cert.as_deref()
    }

    /// The client key given with `sslkey` (or `PGSSLKEY`). `None` means
    /// `~/.postgresql/postgresql.key`.
    pub fn ssl_key(&self) -> Option<&Path> {
        self.ssl_key.as_deref()
    }

    /// How TLS is started (`sslnegotiation`).
    pub fn ssl_negotiation(&self) -> SslNegotiation {
        self.ssl_negotiation
    }

    /// Whether SCRAM authentication binds to the TLS channel
    /// (`channel_binding`).
    pub fn channel_binding(&self) -> ChannelBinding {
        self.channel_binding
    }

    /// libpq's default root certificate file, `~/.postgresql/root.crt`
    /// (whether or not it exists), when the home directory is known.
    pub fn default_ssl_root_cert(&self) -> Option<PathBuf> {
        self.ssl_default(DEFAULT_ROOT_CERT)
    }

    /// A file under `~/.postgresql/`.
    pub(crate) fn ssl_default(&self, name: &str) -> Option<PathBuf> {
        self.ssl_dir.as_ref().map(|d| d.join(name))
    }

    /// The `application_name` reported to the server.
    pub fn application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    /// The `connect_timeout` (None: wait as long as the OS does).
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The raw `options` string sent to the server.
    pub fn options(&self) -> Option<&str> {
        self.options.as_deref()
    }

    /// The `search_path` set through `options` (`-csearch_path=…`), if any.
    pub fn search_path(&self) -> Option<&str> {
        self.search_path.as_deref()
    }

    /// Whether the connection goes through a Unix socket.
    pub fn is_unix_socket(&self) -> bool {
        self.host.is_unix()
    }

    /// Where the server is, for messages: `host:port`, `[::1]:port`, or the
    /// socket file's path.
    pub fn endpoint(&self) -> String {
        match &self.host {
            Host::Tcp(h) if h.contains(':') => format!("[{h}]:{}", self.port),
            Host::Tcp(h) => format!("{h}:{}", self.port),
            Host::Unix(dir) => format!("{}", dir.join(format!(".s.PGSQL.{}", self.port)).display()),
        }
    }

    /// The full URL, password included and percent-encoded, for handing to
    /// another program (`psql`, `pg_dump`, an application's `DATABASE_URL`).
    /// Wrapped in a [`Secret`] so it is not printed by accident.
    pub fn to_url_with_password(&self) -> Secret {
        let password = self.password.as_ref().map(|p| encode(p.expose()));
        Secret::new(self.render(password.as_deref()))
    }

    fn render(&self, password: Option<&str>) -> String {
        let mut url = String::from("postgresql://");
        url.push_str(&encode(&self.user));
        if let Some(p) = password {
            url.push(':');
            url.push_str(p);
        }
        url.push('@');
        let mut query: Vec<(&str, String)> = Vec::new();
        match &self.host {
            Host::Tcp(h) if h.contains(':') => {
                url.push_str(&format!("[{}]:{}", h.replace('%', "%25"), self.port));
            }
            Host::Tcp(h) => url.push_str(&format!("{}:{}", encode(h), self.port)),
            Host::Unix(dir) => {
                query.push(("host", encode_path(&dir.to_string_lossy())));
                if self.port != DEFAULT_PORT {
                    query.push(("port", self.port.to_string()));
                }
            }
        }
        url.push('/');
        url.push_str(&encode(&self.dbname));
        if self.sslmode != SslMode::default() {
            query.push(("sslmode", self.sslmode.to_string()));
        }
        if let Some(r) = &self.ssl_root_cert {
            query.push(("sslrootcert", encode_path(&r.to_string())));
        }
        if let Some(c) = &self.ssl_cert {
            query.push(("sslcert", encode_path(&c.to_string_lossy())));
        }
        if let Some(k) = &self.ssl_key {
            query.push(("sslkey", encode_path(&k.to_string_lossy())));
        }
        if self.ssl_negotiation != SslNegotiation::default() {
            query.push(("sslnegotiation", self.ssl_negotiation.to_string()));
        }
        if self.channel_binding != ChannelBinding::default() {
            query.push(("channel_binding", self.channel_binding.to_string()));
        }
        if let Some(a) = &self.application_name {
            query.push(("application_name", encode(a)));
        }
        if let Some(t) = self.connect_timeout {
            query.push(("connect_timeout", t.as_secs().to_string()));
        }
        if let Some(o) = &self.options {
            query.push(("options", encode(o)));
        }
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(v);
        }
        url
    }

    /// The tokio-postgres configuration, without the TLS mode (the caller
    /// decides that).
    pub(crate) fn to_tokio_postgres(&self) -> tokio_postgres::Config {
        let mut pg = tokio_postgres::Config::new();
        pg.user(&self.user).dbname(&self.dbname).port(self.port);
        match &self.host {
            Host::Tcp(h) => {
                pg.host(h);
            }
            #[cfg(unix)]
            Host::Unix(dir) => {
                pg.host_path(dir);
            }
            #[cfg(not(unix))]
            Host::Unix(dir) => {
                pg.host(dir.to_string_lossy().as_ref());
            }
        }
        if let Some(p) = &self.password {
            pg.password(p.expose());
        }
        if let Some(a) = &self.application_name {
            pg.application_name(a);
        }
        if let Some(o) = &self.options {
            pg.options(o);
        }
        if let Some(t) = self.connect_timeout {
            pg.connect_timeout(t);
        }
        pg.channel_binding(match self.channel_binding {
            ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
            ChannelBinding::Prefer => tokio_postgres::config::ChannelBinding::Prefer,
            ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
        });
        pg.ssl_negotiation(match self.ssl_negotiation {
            SslNegotiation::Postgres => tokio_postgres::config::SslNegotiation::Postgres,
            SslNegotiation::Direct => tokio_postgres::config::SslNegotiation::Direct,
        });
        pg
    }
}

impl fmt::Display for ConnConfig {
    /// The URL with the password shown as `****`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(self.password.as_ref().map(|_| "****")))
    }
}

impl fmt::Debug for ConnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("dbname", &self.dbname)
            .field("password", &self.password)
            .field("password_source", &self.password_source)
            .field("sslmode", &self.sslmode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("ssl_cert", &self.ssl_cert)
            .field("ssl_key", &self.ssl_key)
            .field("ssl_negotiation", &self.ssl_negotiation)
            .field("channel_binding", &self.channel_binding)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("options", &self.options)
            .field("search_path", &self.search_path)
            .finish()
    }
}

/// Applies libpq's rules that tie the TLS parameters together and returns
/// the effective `sslmode`:
///
/// * `sslrootcert=system` makes `verify-full` the default and refuses any
///   other mode (the system's roots vouch for every name they signed, so only
///   the host-name check authenticates the server);
/// * `sslnegotiation=direct` cannot fall back to plain text, so it needs
///   `require` or stronger;
/// * `channel_binding=require` needs TLS.
fn check_tls_combination(
    sslmode: Option<SslMode>,
    root: Option<&SslRootCert>,
    negotiation: SslNegotiation,
    channel_binding: ChannelBinding,
    host: &Host,
) -> Result<SslMode, ConnError> {
    let mode = match (root, sslmode) {
        (Some(SslRootCert::System), None) => SslMode::VerifyFull,
        (Some(SslRootCert::System), Some(m)) if m != SslMode::VerifyFull => {
            return Err(ConnError::invalid(format!(
                "sslmode={m} may not be used with sslrootcert=system: the system's trusted roots vouch for every host name they have signed, so only sslmode=verify-full authenticates the server; use sslmode=verify-full (the default with sslrootcert=system)"
            )));
        }
        (_, m) => m.unwrap_or_default(),
    };
    if negotiation == SslNegotiation::Direct && !mode.requires_tls() {
        return Err(ConnError::invalid(format!(
            "sslnegotiation=direct may not be used with sslmode={mode}: direct TLS cannot fall back to an unencrypted connection; use sslmode=require, verify-ca or verify-full"
        )));
    }
    if channel_binding == ChannelBinding::Require {
        if mode == SslMode::Disable {
            return Err(ConnError::invalid(
                "channel_binding=require needs an encrypted connection, but sslmode=disable; use sslmode=require or stronger",
            ));
        }
        if host.is_unix() {
            return Err(ConnError::invalid(
                "channel_binding=require needs TLS, which is never used over a Unix socket; give a TCP host (host=NAME)",
            ));
        }
    }
    Ok(mode)
}

impl FromStr for ConnConfig {
    type Err = ConnError;

    /// Same as [`ConnConfig::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnConfig::parse(s)
    }
}
