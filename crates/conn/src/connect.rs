//! Connecting: TLS choice, timeouts, and turning failures into [`ConnError`]s.

use crate::config::ConnConfig;
use crate::error::{ConnError, ConnErrorKind};
use crate::sslmode::SslMode;
use crate::tls;
use std::collections::HashSet;
use std::error::Error as StdError;
use std::io;
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The background task driving a connection. It ends when the [`Client`] is
/// dropped (with `Ok`) or the connection fails (with the error). Dropping
/// the handle does not stop the connection.
pub type ConnectionTask = JoinHandle<Result<(), tokio_postgres::Error>>;

/// Connects to the server `config` names and spawns the connection task on
/// the current Tokio runtime.
///
/// * Unix sockets and `sslmode=disable` connect without TLS.
/// * `prefer` and `allow` try TLS and fall back to a plain connection if the
///   server does not offer TLS or the handshake fails.
/// * `require` insists on TLS but does not verify the certificate (as libpq
///   without a root certificate); a warning says so once per server.
/// * `verify-ca` and `verify-full` fail with
///   [`ConnErrorKind::TlsModeNotSupported`] before any network traffic.
/// * `connect_timeout` bounds the whole attempt, including TLS and
///   authentication.
///
/// Must be called within a Tokio runtime.
pub async fn connect(config: &ConnConfig) -> Result<(Client, ConnectionTask), ConnError> {
    let mode = config.sslmode();
    if !mode.is_supported() {
        return Err(tls::tls_mode_not_supported(mode));
    }
    let attempt = connect_inner(config, mode);
    match config.connect_timeout() {
        Some(limit) => match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => Err(timeout_error(config, limit)),
        },
        None => attempt.await,
    }
}

async fn connect_inner(
    config: &ConnConfig,
    mode: SslMode,
) -> Result<(Client, ConnectionTask), ConnError> {
    let mut pg = config.to_tokio_postgres();
    let map = |e: tokio_postgres::Error| ConnError::from_postgres(e, config);

    if config.is_unix_socket() || mode == SslMode::Disable {
        pg.ssl_mode(PgSslMode::Disable);
        return start(&pg, NoTls).await.map_err(map);
    }

    let tls = MakeRustlsConnect::new(tls::client_config(mode)?);
    if mode == SslMode::Require {
        warn_unauthenticated_once(config);
        pg.ssl_mode(PgSslMode::Require);
        return start(&pg, tls).await.map_err(map);
    }

    // prefer / allow
    pg.ssl_mode(PgSslMode::Prefer);
    match start(&pg, tls).await {
        Err(e) if is_tls_error(&e) => {
            tracing::debug!(
                endpoint = %config.endpoint(),
                error = %error_chain(&e),
                "TLS handshake failed with sslmode={mode}; retrying without TLS"
            );
            pg.ssl_mode(PgSslMode::Disable);
            start(&pg, NoTls).await.map_err(map)
        }
        other => other.map_err(map),
    }
}

async fn start<T>(
    pg: &tokio_postgres::Config,
    tls: T,
) -> Result<(Client, ConnectionTask), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = pg.connect(tls).await?;
    let task = tokio::spawn(async move {
        let result = connection.await;
        if let Err(e) = &result {
            tracing::debug!(error = %error_chain(e), "PostgreSQL connection ended with an error");
        }
        result
    });
    Ok((client, task))
}

fn warn_unauthenticated_once(config: &ConnConfig) {
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let endpoint = config.endpoint();
    let first = WARNED
        .lock()
        .map(|mut set| {
            set.get_or_insert_with(HashSet::new)
                .insert(endpoint.clone())
        })
        .unwrap_or(true);
    if first {
        tracing::warn!(
            "sslmode=require: the connection to {endpoint} is encrypted but the server's certificate is not verified, so the server is not authenticated"
        );
    }
}

/// `error performing TLS handshake` is how tokio-postgres reports TLS errors
/// (its error kinds are private).
fn is_tls_error(e: &tokio_postgres::Error) -> bool {
    e.to_string().starts_with("error performing TLS handshake")
}

/// `outer: cause: cause` for an error and its sources.
fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn find_io_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a io::Error> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io);
        }
        current = err.source();
    }
    None
}

pub(crate) fn timeout_error(config: &ConnConfig, limit: Duration) -> ConnError {
    ConnError::new(
        ConnErrorKind::Unreachable,
        format!(
            "no answer from the server at {} within {}s (connect_timeout); check that the server is running and the host and port are right, or raise connect_timeout",
            config.endpoint(),
            limit.as_secs()
        ),
    )
}

impl ConnError {
    /// Classifies an error tokio-postgres returned for `config` (by SQLSTATE,
    /// by I/O error kind, or by tokio-postgres' own category) and words it
    /// as a one-line cause plus what to do. Also useful for errors from the
    /// first statements run on a new connection.
    pub fn from_postgres(err: tokio_postgres::Error, config: &ConnConfig) -> ConnError {
        classify(&err, config).with_source(err)
    }
}

fn classify(err: &tokio_postgres::Error, config: &ConnConfig) -> ConnError {
    if let Some(db) = err.as_db_error() {
        return from_server(db.code().code(), db.message(), config);
    }
    let endpoint = config.endpoint();
    let text = err.to_string();
    let cause = err.source().map(error_chain).unwrap_or_default();
    if is_tls_error(err) {
        if cause.contains("server does not support TLS") {
            return ConnError::new(
                ConnErrorKind::TlsNotSupportedByServer,
                format!(
                    "the server at {endpoint} does not support TLS, but sslmode={} requires it; enable ssl on the server, or use sslmode=prefer (encrypt when possible) or sslmode=disable",
                    config.sslmode()
                ),
            );
        }
        return ConnError::new(
            ConnErrorKind::Other,
            format!(
                "the TLS handshake with {endpoint} failed: {cause}; check the server's TLS settings (ssl_cert_file, ssl_min_protocol_version)"
            ),
        );
    }
    // tokio-postgres reports a password request it cannot answer as an
    // "invalid configuration: password missing" error.
    if cause == "password missing" {
        return ConnError::new(
            ConnErrorKind::AuthenticationFailed,
            format!(
                "the server at {endpoint} asks for a password for user \"{}\" but none was given; put it in the connection URL, in PGPASSWORD or in ~/.pgpass",
                config.user()
            ),
        );
    }
    if text.starts_with("authentication error") {
        return ConnError::new(
            ConnErrorKind::AuthenticationFailed,
            format!(
                "authentication of user \"{}\" at {endpoint} failed: {cause}; check the password and the authentication method the server's pg_hba.conf sets for this user",
                config.user()
            ),
        );
    }
    if let Some(io) = find_io_error(err) {
        return from_io(io, config);
    }
    if err.is_closed() {
        return ConnError::new(
            ConnErrorKind::Unreachable,
            format!(
                "the server at {endpoint} closed the connection during start-up; check the server log, and that it is a PostgreSQL server"
            ),
        );
    }
    let detail = if cause.is_empty() {
        text
    } else {
        format!("{text}: {cause}")
    };
    ConnError::new(
        ConnErrorKind::Other,
        format!("could not connect to {endpoint}: {detail}"),
    )
}

/// Words an error the server reported (SQLSTATE `code`, message `message`).
pub(crate) fn from_server(code: &str, message: &str, config: &ConnConfig) -> ConnError {
    let endpoint = config.endpoint();
    let user = config.user();
    let (kind, text) = match code {
        "28P01" => {
            let what = match config.password_source().describe() {
                Some(source) => format!("check the password (it came {source})"),
                None => "no password was given: put it in the connection URL, in PGPASSWORD or in ~/.pgpass".to_owned(),
            };
            (
                ConnErrorKind::AuthenticationFailed,
                format!(
                    "authentication failed for user \"{user}\" at {endpoint}: {message}; {what}, and the server's pg_hba.conf rules for this user and address"
                ),
            )
        }
        "28000" => (
            ConnErrorKind::AuthenticationFailed,
            format!(
                "the server at {endpoint} refused user \"{user}\": {message}; check the user name, and that the server's pg_hba.conf allows this user, database and client address"
            ),
        ),
        "3D000" => (
            ConnErrorKind::DatabaseMissing,
            format!(
                "database \"{}\" does not exist on {endpoint}; create it first (CREATE DATABASE) or check the database name",
                config.dbname()
            ),
        ),
        "42501" => (
            ConnErrorKind::PermissionDenied,
            format!(
                "user \"{user}\" lacks a privilege at {endpoint}: {message}; grant it (for example GRANT CONNECT ON DATABASE) or connect as a user who has it"
            ),
        ),
        "53300" => (
            ConnErrorKind::Other,
            format!(
                "the server at {endpoint} has no free connection slots: {message}; close idle connections or raise max_connections"
            ),
        ),
        "57P03" => (
            ConnErrorKind::Other,
            format!(
                "the server at {endpoint} is not accepting connections yet: {message}; wait until it has finished starting up or recovering"
            ),
        ),
        _ => (
            ConnErrorKind::Other,
            format!("the server at {endpoint} reported an error: {message} (SQLSTATE {code})"),
        ),
    };
    ConnError::new(kind, text).with_sqlstate(code)
}

/// Words a socket-level failure.
pub(crate) fn from_io(err: &io::Error, config: &ConnConfig) -> ConnError {
    let endpoint = config.endpoint();
    if err.kind() == io::ErrorKind::PermissionDenied {
        return ConnError::new(
            ConnErrorKind::PermissionDenied,
            format!(
                "permission denied connecting to {endpoint}: {err}; check that this user may access the socket (for Unix sockets, the directory's permissions)"
            ),
        );
    }
    let message = if config.is_unix_socket() {
        format!(
            "could not connect to the server through the Unix socket {endpoint}: {err}; check that the server is running on this machine with port {}, or give its socket directory or a TCP host with host=",
            config.port()
        )
    } else {
        format!(
            "could not connect to the server at {endpoint}: {err}; check that the server is running, that the host name and port are right, and that no firewall blocks the port"
        )
    };
    ConnError::new(ConnErrorKind::Unreachable, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Environment;

    fn cfg(s: &str) -> ConnConfig {
        ConnConfig::parse_with_env(s, &Environment::empty().with_os_user("me")).unwrap()
    }

    #[test]
    fn server_errors_by_sqlstate() {
        let c = cfg("postgresql://bob:hunter2@db.example:5433/shop");
        let e = from_server(
            "28P01",
            "password authentication failed for user \"bob\"",
            &c,
        );
        assert!(e.is_authentication_failed());
        assert_eq!(e.sqlstate(), Some("28P01"));
        let msg = e.to_string();
        assert!(msg.contains("user \"bob\""), "{msg}");
        assert!(msg.contains("db.example:5433"), "{msg}");
        assert!(msg.contains("pg_hba.conf"), "{msg}");
        assert!(msg.contains("from the connection string"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");

        let e = from_server("28000", "role \"bob\" does not exist", &c);
        assert!(e.is_authentication_failed());
        assert!(e.to_string().contains("pg_hba.conf"));

        let e = from_server("3D000", "database \"shop\" does not exist", &c);
        assert!(e.is_database_missing());
        assert!(e
            .to_string()
            .contains("database \"shop\" does not exist on db.example:5433"));

        let e = from_server("42501", "permission denied for database \"shop\"", &c);
        assert!(e.is_permission_denied());

        let e = from_server("53300", "sorry, too many clients already", &c);
        assert_eq!(e.kind(), ConnErrorKind::Other);
        assert!(e.to_string().contains("max_connections"));

        let e = from_server("XX000", "boom", &c);
        assert_eq!(e.kind(), ConnErrorKind::Other);
        assert!(e.to_string().contains("SQLSTATE XX000"));
    }

    #[test]
    fn auth_failure_without_password_says_how_to_give_one() {
        let c = cfg("postgresql://bob@db.example/shop");
        let e = from_server(
            "28P01",
            "password authentication failed for user \"bob\"",
            &c,
        );
        assert!(e.to_string().contains("PGPASSWORD"), "{e}");
    }

    #[test]
    fn io_errors() {
        let c = cfg("postgresql://db.example:6000/x");
        let e = from_io(&io::Error::from(io::ErrorKind::ConnectionRefused), &c);
        assert!(e.is_unreachable());
        let msg = e.to_string();
        assert!(msg.contains("db.example:6000"), "{msg}");
        assert!(msg.contains("server is running"), "{msg}");

        let e = from_io(&io::Error::from(io::ErrorKind::TimedOut), &c);
        assert!(e.is_unreachable());

        let dns =
            io::Error::other("failed to lookup address information: Name or service not known");
        let e = from_io(&dns, &c);
        assert!(e.is_unreachable());
        assert!(e.to_string().contains("failed to lookup address"), "{e}");

        let e = from_io(&io::Error::from(io::ErrorKind::PermissionDenied), &c);
        assert!(e.is_permission_denied());

        let unix = cfg("host=/srv/pg port=5444 user=u");
        let e = from_io(&io::Error::from(io::ErrorKind::NotFound), &unix);
        assert!(e.is_unreachable());
        assert!(e.to_string().contains("/srv/pg/.s.PGSQL.5444"), "{e}");
        assert!(e.to_string().contains("Unix socket"), "{e}");
    }

    #[test]
    fn timeout_message() {
        let c = cfg("postgresql://db.example/x?connect_timeout=3");
        let e = timeout_error(&c, c.connect_timeout().unwrap());
        assert!(e.is_unreachable());
        assert!(e.to_string().contains("within 3s"), "{e}");
    }

    #[tokio::test]
    async fn verify_modes_fail_before_any_network_traffic() {
        for mode in ["verify-ca", "verify-full"] {
            // Port 1 on loopback: were the check missing, this would fail
            // as Unreachable instead.
            let c = cfg(&format!("postgresql://u@127.0.0.1:1/db?sslmode={mode}"));
            let Err(e) = connect(&c).await else {
                panic!("{mode} must fail")
            };
            assert_eq!(e.kind(), ConnErrorKind::TlsModeNotSupported);
            assert!(e.to_string().contains("later release"), "{e}");
            assert!(e.is_bad_parameters());
        }
    }

    #[test]
    fn error_chain_joins_sources() {
        let inner = io::Error::other("inner");
        let outer = ConnError::new(ConnErrorKind::Other, "outer").with_source(inner);
        assert_eq!(error_chain(&outer), "outer: inner");
        assert!(find_io_error(&outer).is_some());
    }
}
