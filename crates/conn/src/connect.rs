//! Connecting: TLS choice, timeouts, and turning failures into [`ConnError`]s.

use crate::config::ConnConfig;
use crate::error::{ConnError, ConnErrorKind};
use crate::sslmode::{SslMode, SslNegotiation};
use crate::tls::{self, TlsContext, Verification};
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
///   without a root certificate); a warning says so once per server. As in
///   libpq, when a root certificate file exists (`sslrootcert=FILE`, or
///   `~/.postgresql/root.crt`), `require` (and `prefer`/`allow`) check the
///   chain like `verify-ca`.
/// * `verify-ca` checks the chain against the trusted roots, `verify-full`
///   also that the certificate names the host. Without `sslrootcert` and
///   without `~/.postgresql/root.crt` they fail before any network traffic
///   ([`ConnErrorKind::TlsConfiguration`]).
/// * A client certificate (`sslcert`/`sslkey`, or
///   `~/.postgresql/postgresql.crt`/`.key` when present) is offered to the
///   server.
/// * SCRAM-SHA-256 authentication binds to the TLS channel when the server
///   offers it (`channel_binding=prefer`, the default; `require` insists).
/// * `connect_timeout` bounds the whole attempt, including TLS and
///   authentication.
///
/// Failures name what went wrong: [`ConnErrorKind::TlsCertificateUntrusted`],
/// [`ConnErrorKind::TlsHostnameMismatch`] (with the host and the names in
/// the certificate), [`ConnErrorKind::TlsCertificateExpired`] (with the
/// date), [`ConnErrorKind::TlsNotSupportedByServer`] and
/// [`ConnErrorKind::TlsClientCertificateRejected`].
///
/// Must be called within a Tokio runtime.
pub async fn connect(config: &ConnConfig) -> Result<(Client, ConnectionTask), ConnError> {
    let attempt = connect_inner(config, config.sslmode());
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
    let plain = |e: tokio_postgres::Error| ConnError::from_postgres(e, config);

    if config.is_unix_socket() || mode == SslMode::Disable {
        pg.ssl_mode(PgSslMode::Disable);
        return start(&pg, NoTls).await.map_err(plain);
    }

    let setup = tls::setup(config)?;
    let context = setup.context.clone();
    let map = |e: tokio_postgres::Error| classify(&e, config, Some(&context)).with_source(e);
    let tls = MakeRustlsConnect::new(setup.config);
    if mode.requires_tls() {
        if context.verification == Verification::None {
            warn_unauthenticated_once(config);
        }
        pg.ssl_mode(PgSslMode::Require);
        return start(&pg, tls).await.map_err(map);
    }

    // prefer / allow
    pg.ssl_mode(PgSslMode::Prefer);
    match start(&pg, tls).await {
        Err(e) if is_tls_error(&e) => {
            if let Some(rustls::Error::InvalidCertificate(_)) = find_rustls_error(&e) {
                // A root file exists (libpq then verifies even for prefer)
                // and the server's certificate failed the check.
                tracing::warn!(
                    "sslmode={mode}: the server certificate of {} was not trusted ({}); connecting without TLS, as libpq does",
                    config.endpoint(),
                    crate::conn_text(&classify(&e, config, Some(&context)))
                );
            } else {
                tracing::debug!(
                    endpoint = %config.endpoint(),
                    error = %error_chain(&e),
                    "TLS handshake failed with sslmode={mode}; retrying without TLS"
                );
            }
            pg.ssl_mode(PgSslMode::Disable);
            start(&pg, NoTls).await.map_err(plain)
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
            "sslmode=require: the connection to {endpoint} is encrypted but the server's certificate is not verified, so the server is not authenticated (use sslmode=verify-full with sslrootcert to authenticate it)"
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

/// The rustls error behind `e`, looking inside I/O errors too (rustls'
/// errors reach tokio-postgres wrapped in an `io::Error`, whose `source`
/// skips the wrapped error itself).
fn find_rustls_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            let inner: &(dyn StdError + 'static) = inner;
            if let Some(r) = find_rustls_error(inner) {
                return Some(r);
            }
        }
        current = err.source();
    }
    None
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
        classify(&err, config, None).with_source(err)
    }
}

/// Classifies `err`; `tls` is what the attempt trusted and sent, when it
/// used TLS.
fn classify(
    err: &tokio_postgres::Error,
    config: &ConnConfig,
    tls: Option<&TlsContext>,
) -> ConnError {
    if let Some(db) = err.as_db_error() {
        return from_server(db.code().code(), db.message(), config);
    }
    let endpoint = config.endpoint();
    let text = err.to_string();
    let cause = err.source().map(error_chain).unwrap_or_default();
    if let Some(r) = find_rustls_error(err) {
        return from_rustls(r, config, tls);
    }
    if is_tls_error(err) {
        if cause.contains("server does not support TLS") {
            return ConnError::new(
                ConnErrorKind::TlsNotSupportedByServer,
                format!(
                    "the server at {endpoint} does not support TLS, but sslmode={} requires it; enable ssl on the server (ssl = on, with ssl_cert_file and ssl_key_file), or use sslmode=prefer (encrypt when possible) or sslmode=disable",
                    config.sslmode()
                ),
            );
        }
        if config.ssl_negotiation() == SslNegotiation::Direct {
            return ConnError::new(
                ConnErrorKind::TlsNotSupportedByServer,
                format!(
                    "sslnegotiation=direct: the server at {endpoint} did not complete a direct TLS handshake ({cause}); direct TLS needs PostgreSQL 17 or later (and proxies that support it): use sslnegotiation=postgres, the default, for this server"
                ),
            );
        }
        return ConnError::new(
            ConnErrorKind::Other,
            format!("the TLS handshake with {endpoint} failed"),
        )
        .with_cause(format!(
            "{cause}; check the server's TLS settings (ssl_cert_file, ssl_min_protocol_version)"
        ));
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
    if cause == "server did not use channel binding" {
        return ConnError::new(
            ConnErrorKind::AuthenticationFailed,
            format!(
                "channel_binding=require, but the server at {endpoint} did not authenticate user \"{}\" with SCRAM channel binding; channel binding needs TLS and scram-sha-256 authentication in the server's pg_hba.conf (trust, password, md5 and cert cannot bind the channel), or use channel_binding=prefer",
                config.user()
            ),
        );
    }
    if text.starts_with("authentication error") {
        return ConnError::new(
            ConnErrorKind::AuthenticationFailed,
            format!(
                "authentication of user \"{}\" at {endpoint} failed",
                config.user()
            ),
        )
        .with_cause(format!(
            "{cause}; check the password and the authentication method the server's pg_hba.conf sets for this user"
        ));
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
        format!("could not connect to {endpoint}"),
    )
    .with_cause(detail)
}

/// Words a TLS failure rustls reported: the server's certificate was not
/// trusted, or the server rejected ours.
fn from_rustls(err: &rustls::Error, config: &ConnConfig, tls: Option<&TlsContext>) -> ConnError {
    use rustls::CertificateError as CE;
    let endpoint = config.endpoint();
    let presented = tls.and_then(TlsContext::presented);
    let subject = presented
        .as_ref()
        .map(|c| format!(" (\"{}\")", c.subject))
        .unwrap_or_default();
    let roots = tls.and_then(|t| t.roots.as_ref());
    match err {
        rustls::Error::InvalidCertificate(cert_err) => match cert_err {
            CE::UnknownIssuer | CE::BadSignature => {
                let issued = presented
                    .as_ref()
                    .map(|c| format!(" it was issued by \"{}\" for \"{}\";", c.issuer, c.subject))
                    .unwrap_or_default();
                let (where_, holds, hint) = match roots {
                    Some(r) if r.is_system() => (
                        format!("{r}"),
                        format!(" ({})", r.contents()),
                        "the certificate is probably self-signed or from a private CA: give that CA's certificate with sslrootcert=FILE (and sslmode=verify-full)".to_owned(),
                    ),
                    Some(r) => (
                        format!("{r}"),
                        format!(" ({}, which holds {})", r.origin(), r.contents()),
                        "put the CA certificate that signed the server's certificate in sslrootcert (a PEM file may hold several CAs)".to_owned(),
                    ),
                    None => (
                        "the trusted roots".to_owned(),
                        String::new(),
                        "give the CA certificate that signed it with sslrootcert=FILE".to_owned(),
                    ),
                };
                let what = if matches!(cert_err, CE::BadSignature) {
                    "has a signature that does not verify against"
                } else {
                    "is not signed by a CA in"
                };
                ConnError::new(
                    ConnErrorKind::TlsCertificateUntrusted,
                    format!(
                        "the server certificate of {endpoint} {what} {where_}{holds}:{issued} {hint}"
                    ),
                )
            }
            CE::NotValidForName | CE::NotValidForNameContext { .. } => {
                let host = config.host().to_string();
                let names = match cert_err {
                    CE::NotValidForNameContext { presented: names, .. } if !names.is_empty() => {
                        names.join(", ")
                    }
                    _ => presented
                        .as_ref()
                        .map(|c| c.names_for_message())
                        .unwrap_or_else(|| "other names".to_owned()),
                };
                ConnError::new(
                    ConnErrorKind::TlsHostnameMismatch,
                    format!(
                        "the server certificate of {endpoint}{subject} is not valid for the host name \"{host}\" you connected to: it names {names}; connect with one of those names, or have the certificate reissued with \"{host}\" in its subjectAltName (sslmode=verify-ca would check the CA but not the name)"
                    ),
                )
            }
            CE::Expired | CE::ExpiredContext { .. } => {
                let when = match cert_err {
                    CE::ExpiredContext { time, not_after } => format!(
                        " on {} (it is now {})",
                        tls::format_utc(not_after.as_secs()),
                        tls::format_utc(time.as_secs())
                    ),
                    _ => presented
                        .as_ref()
                        .map(|c| format!(" on {}", tls::format_utc(c.not_after)))
                        .unwrap_or_default(),
                };
                ConnError::new(
                    ConnErrorKind::TlsCertificateExpired,
                    format!(
                        "the server certificate of {endpoint}{subject} expired{when}; renew the server's certificate (ssl_cert_file) and reload the server, or check this machine's clock"
                    ),
                )
            }
            CE::NotValidYet | CE::NotValidYetContext { .. } => {
                let when = match cert_err {
                    CE::NotValidYetContext { time, not_before } => format!(
                        " until {} (it is now {})",
                        tls::format_utc(not_before.as_secs()),
                        tls::format_utc(time.as_secs())
                    ),
                    _ => String::new(),
                };
                ConnError::new(
                    ConnErrorKind::TlsCertificateExpired,
                    format!(
                        "the server certificate of {endpoint}{subject} is not valid yet{when}; check the clocks of this machine and of the server"
                    ),
                )
            }
            CE::InvalidPurpose | CE::InvalidPurposeContext { .. } => ConnError::new(
                ConnErrorKind::TlsCertificateUntrusted,
                format!(
                    "the server certificate of {endpoint}{subject} is not meant for a TLS server (its extended key usage lacks serverAuth); have it reissued for server use"
                ),
            ),
            other => ConnError::new(
                ConnErrorKind::TlsCertificateUntrusted,
                format!("the server certificate of {endpoint}{subject} was rejected"),
            )
            .with_cause(format!(
                "{}; check the certificate the server uses (ssl_cert_file)",
                rustls::Error::InvalidCertificate(other.clone())
            )),
        },
        rustls::Error::AlertReceived(alert) => {
            use rustls::AlertDescription as A;
            let client_cert = tls.and_then(|t| t.client_cert.as_ref());
            match (alert, client_cert) {
                (A::CertificateRequired, None) => client_cert_missing(config),
                (
                    A::UnknownCA
                    | A::BadCertificate
                    | A::CertificateUnknown
                    | A::UnsupportedCertificate
                    | A::CertificateExpired
                    | A::CertificateRevoked
                    | A::AccessDenied
                    | A::DecryptError,
                    Some(path),
                ) => {
                    let why = match alert {
                        A::UnknownCA => "it is not signed by a CA the server trusts (the server's ssl_ca_file)",
                        A::CertificateExpired => "it has expired",
                        A::CertificateRevoked => "it has been revoked (the server's ssl_crl_file)",
                        _ => "the server could not verify it",
                    };
                    ConnError::new(
                        ConnErrorKind::TlsClientCertificateRejected,
                        format!(
                            "the server at {endpoint} rejected the client certificate {} (TLS alert {}): {why}; use a certificate signed by a CA in the server's ssl_ca_file, with its key (sslcert=FILE, sslkey=FILE)",
                            path.display(),
                            alert_name(*alert)
                        ),
                    )
                }
                _ => ConnError::new(
                    ConnErrorKind::Other,
                    format!(
                        "the TLS handshake with {endpoint} failed: the server sent the alert {}; check the server's TLS settings and its log",
                        alert_name(*alert)
                    ),
                ),
            }
        }
        other => ConnError::new(
            ConnErrorKind::Other,
            format!("the TLS handshake with {endpoint} failed"),
        )
        .with_cause(format!(
            "{other}; check the server's TLS settings (ssl_cert_file, ssl_min_protocol_version)"
        )),
    }
}

/// A TLS alert as the standard spells it (`unknown_ca`).
fn alert_name(alert: rustls::AlertDescription) -> String {
    let debug = format!("{alert:?}");
    match debug.as_str() {
        "UnknownCA" => "unknown_ca".to_owned(),
        "DecryptError" => "decrypt_error".to_owned(),
        _ => {
            let mut out = String::new();
            for (i, c) in debug.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        }
    }
}

/// The server wants a client certificate and none was sent.
fn client_cert_missing(config: &ConnConfig) -> ConnError {
    ConnError::new(
        ConnErrorKind::TlsClientCertificateRejected,
        format!(
            "the server at {} requires a client certificate for user \"{}\" and none was sent; give one with sslcert=FILE and sslkey=FILE (or PGSSLCERT and PGSSLKEY), or put them in ~/.postgresql/postgresql.crt and ~/.postgresql/postgresql.key",
            config.endpoint(),
            config.user()
        ),
    )
}

/// Words an error the server reported (SQLSTATE `code`, message `message`).
pub(crate) fn from_server(code: &str, message: &str, config: &ConnConfig) -> ConnError {
    let endpoint = config.endpoint();
    let user = config.user();
    if message.contains("requires a valid client certificate") {
        return client_cert_missing(config).with_sqlstate(code);
    }
    if message.starts_with("certificate authentication failed")
        || message.starts_with("certificate validation (clientcert=verify-full) failed")
    {
        let (cert, cn) = match tls::client_cert_in_use(config) {
            Some(path) => {
                let cn = tls::client_cert_common_name(&path)
                    .map(|cn| format!(" (its common name is \"{cn}\")"))
                    .unwrap_or_default();
                (format!("the client certificate {}", path.display()), cn)
            }
            None => ("the client certificate".to_owned(), String::new()),
        };
        return ConnError::new(
            ConnErrorKind::TlsClientCertificateRejected,
            format!("the server at {endpoint} did not accept {cert}{cn} for user \"{user}\""),
        )
        .with_cause(format!(
            "{message}; the certificate's common name (CN) must be the user name, or be mapped to it in the server's pg_ident.conf"
        ))
        .with_sqlstate(code);
    }
    let said = |advice: &str| Some(format!("{message}; {advice}"));
    let (kind, context, cause) = match code {
        "28P01" => {
            let what = match config.password_source().describe() {
                Some(source) => format!("check the password (it came {source})"),
                None => "no password was given: put it in the connection URL, in PGPASSWORD or in ~/.pgpass".to_owned(),
            };
            (
                ConnErrorKind::AuthenticationFailed,
                format!("authentication failed for user \"{user}\" at {endpoint}"),
                said(&format!(
                    "{what}, and the server's pg_hba.conf rules for this user and address"
                )),
            )
        }
        "28000" => (
            ConnErrorKind::AuthenticationFailed,
            format!("the server at {endpoint} refused user \"{user}\""),
            said("check the user name, and that the server's pg_hba.conf allows this user, database and client address"),
        ),
        "3D000" => (
            ConnErrorKind::DatabaseMissing,
            format!(
                "database \"{}\" does not exist on {endpoint}; create it first (CREATE DATABASE) or check the database name",
                config.dbname()
            ),
            None,
        ),
        "42501" => (
            ConnErrorKind::PermissionDenied,
            format!("user \"{user}\" lacks a privilege at {endpoint}"),
            said("grant it (for example GRANT CONNECT ON DATABASE) or connect as a user who has it"),
        ),
        "53300" => (
            ConnErrorKind::Other,
            format!("the server at {endpoint} has no free connection slots"),
            said("close idle connections or raise max_connections"),
        ),
        "57P03" => (
            ConnErrorKind::Other,
            format!("the server at {endpoint} is not accepting connections yet"),
            said("wait until it has finished starting up or recovering"),
        ),
        _ => (
            ConnErrorKind::Other,
            format!("the server at {endpoint} reported an error"),
            Some(format!("{message} (SQLSTATE {code})")),
        ),
    };
    let error = ConnError::new(kind, context).with_sqlstate(code);
    match cause {
        Some(cause) => error.with_cause(cause),
        None => error,
    }
}

/// Words a socket-level failure.
pub(crate) fn from_io(err: &io::Error, config: &ConnConfig) -> ConnError {
    let endpoint = config.endpoint();
    if err.kind() == io::ErrorKind::PermissionDenied {
        return ConnError::new(
            ConnErrorKind::PermissionDenied,
            format!("permission denied connecting to {endpoint}"),
        )
        .with_cause(format!(
            "{err}; check that this user may access the socket (for Unix sockets, the directory's permissions)"
        ));
    }
    let (context, advice) = if config.is_unix_socket() {
        (
            format!("could not connect to the server through the Unix socket {endpoint}"),
            format!(
                "check that the server is running on this machine with port {}, or give its socket directory or a TCP host with host=",
                config.port()
            ),
        )
    } else {
        (
            format!("could not connect to the server at {endpoint}"),
            "check that the server is running, that the host name and port are right, and that no firewall blocks the port".to_owned(),
        )
    };
    ConnError::new(ConnErrorKind::Unreachable, context).with_cause(format!("{err}; {advice}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn_text;
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
        let msg = conn_text(&e);
        assert!(msg.contains("user \"bob\""), "{msg}");
        assert!(msg.contains("db.example:5433"), "{msg}");
        assert!(msg.contains("pg_hba.conf"), "{msg}");
        assert!(msg.contains("from the connection string"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");

        let e = from_server("28000", "role \"bob\" does not exist", &c);
        assert!(e.is_authentication_failed());
        assert!(conn_text(&e).contains("pg_hba.conf"));

        let e = from_server("3D000", "database \"shop\" does not exist", &c);
        assert!(e.is_database_missing());
        assert!(conn_text(&e).contains("database \"shop\" does not exist on db.example:5433"));

        let e = from_server("42501", "permission denied for database \"shop\"", &c);
        assert!(e.is_permission_denied());

        let e = from_server("53300", "sorry, too many clients already", &c);
        assert_eq!(e.kind(), ConnErrorKind::Other);
        assert!(conn_text(&e).contains("max_connections"));

        let e = from_server("XX000", "boom", &c);
        assert_eq!(e.kind(), ConnErrorKind::Other);
        assert!(conn_text(&e).contains("SQLSTATE XX000"));
    }

    #[test]
    fn auth_failure_without_password_says_how_to_give_one() {
        let c = cfg("postgresql://bob@db.example/shop");
        let e = from_server(
            "28P01",
            "password authentication failed for user \"bob\"",
            &c,
        );
        assert!(conn_text(&e).contains("PGPASSWORD"), "{e}");
    }

    #[test]
    fn io_errors() {
        let c = cfg("postgresql://db.example:6000/x");
        let e = from_io(&io::Error::from(io::ErrorKind::ConnectionRefused), &c);
        assert!(e.is_unreachable());
        let msg = conn_text(&e);
        assert!(msg.contains("db.example:6000"), "{msg}");
        assert!(msg.contains("server is running"), "{msg}");

        let e = from_io(&io::Error::from(io::ErrorKind::TimedOut), &c);
        assert!(e.is_unreachable());

        let dns =
            io::Error::other("failed to lookup address information: Name or service not known");
        let e = from_io(&dns, &c);
        assert!(e.is_unreachable());
        assert!(conn_text(&e).contains("failed to lookup address"), "{e}");

        let e = from_io(&io::Error::from(io::ErrorKind::PermissionDenied), &c);
        assert!(e.is_permission_denied());

        let unix = cfg("host=/srv/pg port=5444 user=u");
        let e = from_io(&io::Error::from(io::ErrorKind::NotFound), &unix);
        assert!(e.is_unreachable());
        assert!(conn_text(&e).contains("/srv/pg/.s.PGSQL.5444"), "{e}");
        assert!(conn_text(&e).contains("Unix socket"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_server_with_the_socket_error_as_its_cause() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = cfg(&format!(
            "postgresql://u:hunter2@127.0.0.1:{port}/db?sslmode=disable"
        ));
        let Err(e) = connect(&c).await else {
            panic!("nothing listens on port {port}")
        };
        assert!(e.is_unreachable(), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("could not connect to the server at 127.0.0.1:{port}")
        );
        let text = conn_text(&e);
        assert_eq!(
            text.matches(&format!("127.0.0.1:{port}")).count(),
            1,
            "{text}"
        );
        assert_eq!(text.matches("Connection refused").count(), 1, "{text}");
        assert!(
            text.contains("; check that the server is running"),
            "{text}"
        );
        let io = find_io_error(&e).expect("the socket's error in the chain");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
        assert!(!format!("{text} {e:?}").contains("hunter2"));
    }

    #[test]
    fn timeout_message() {
        let c = cfg("postgresql://db.example/x?connect_timeout=3");
        let e = timeout_error(&c, c.connect_timeout().unwrap());
        assert!(e.is_unreachable());
        assert!(conn_text(&e).contains("within 3s"), "{e}");
    }

    #[tokio::test]
    async fn verify_modes_without_roots_fail_before_any_network_traffic() {
        for mode in ["verify-ca", "verify-full"] {
            // Port 1 on loopback: were the check missing, this would fail
            // as Unreachable instead. The empty environment has no home
            // directory, so there is no default root certificate file.
            let c = cfg(&format!("postgresql://u@127.0.0.1:1/db?sslmode={mode}"));
            let Err(e) = connect(&c).await else {
                panic!("{mode} must fail")
            };
            assert_eq!(e.kind(), ConnErrorKind::TlsConfiguration);
            assert!(conn_text(&e).contains("sslrootcert="), "{e}");
            assert!(e.is_bad_parameters());
        }
    }

    #[test]
    fn rustls_errors_are_found_inside_io_errors() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = io::Error::new(io::ErrorKind::InvalidData, inner);
        let outer = ConnError::new(ConnErrorKind::Other, "outer").with_source(io);
        assert!(matches!(
            find_rustls_error(&outer),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ));
    }

    #[test]
    fn certificate_errors_are_classified() {
        use rustls::pki_types::{ServerName, UnixTime};
        use rustls::CertificateError as CE;
        use std::time::Duration as D;
        let c = cfg("postgresql://u:hunter2@db.example:5433/x?sslmode=verify-full");
        let e = from_rustls(
            &rustls::Error::InvalidCertificate(CE::UnknownIssuer),
            &c,
            None,
        );
        assert_eq!(e.kind(), ConnErrorKind::TlsCertificateUntrusted);
        assert!(e.is_certificate_problem());
        assert!(!format!("{e} {e:?}").contains("hunter2"));
        assert!(conn_text(&e).contains("is not signed by a CA in"), "{e}");

        let e = from_rustls(
            &rustls::Error::InvalidCertificate(CE::NotValidForNameContext {
                expected: ServerName::try_from("db.example").unwrap(),
                presented: vec!["DNS:other.example".into(), "IP:10.0.0.1".into()],
            }),
            &c,
            None,
        );
        assert_eq!(e.kind(), ConnErrorKind::TlsHostnameMismatch);
        let msg = conn_text(&e);
        assert!(msg.contains("\"db.example\" you connected to"), "{msg}");
        assert!(msg.contains("DNS:other.example, IP:10.0.0.1"), "{msg}");

        let e = from_rustls(
            &rustls::Error::InvalidCertificate(CE::ExpiredContext {
                time: UnixTime::since_unix_epoch(D::from_secs(1_700_000_000)),
                not_after: UnixTime::since_unix_epoch(D::from_secs(951_782_400)),
            }),
            &c,
            None,
        );
        assert_eq!(e.kind(), ConnErrorKind::TlsCertificateExpired);
        assert!(
            conn_text(&e).contains("expired on 2000-02-29 00:00:00 UTC"),
            "{e}"
        );

        let e = from_rustls(
            &rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
            &c,
            None,
        );
        assert_eq!(e.kind(), ConnErrorKind::TlsClientCertificateRejected);
        assert!(conn_text(&e).contains("sslcert=FILE"), "{e}");

        assert!(!format!("{e} {e:?}").contains("hunter2"));
        assert_eq!(
            alert_name(rustls::AlertDescription::UnknownCA),
            "unknown_ca"
        );
        assert_eq!(
            alert_name(rustls::AlertDescription::CertificateRequired),
            "certificate_required"
        );
    }

    #[test]
    fn client_certificate_server_errors() {
        let c = cfg("postgresql://bob@db.example/x?sslmode=require");
        let e = from_server(
            "28000",
            "connection requires a valid client certificate",
            &c,
        );
        assert_eq!(e.kind(), ConnErrorKind::TlsClientCertificateRejected);
        assert!(conn_text(&e).contains("none was sent"), "{e}");
        let e = from_server(
            "28000",
            "certificate authentication failed for user \"bob\"",
            &c,
        );
        assert_eq!(e.kind(), ConnErrorKind::TlsClientCertificateRejected);
        assert!(conn_text(&e).contains("pg_ident.conf"), "{e}");
    }

    #[test]
    fn error_chain_joins_sources() {
        let inner = io::Error::other("inner");
        let outer = ConnError::new(ConnErrorKind::Other, "outer").with_source(inner);
        assert_eq!(error_chain(&outer), "outer: inner");
        assert!(find_io_error(&outer).is_some());
    }
}
