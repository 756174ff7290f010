//! [`ConnError`]: what was being done (which server, which user), with what
//! went wrong and what to do about it as its source.

use crate::chain::Explained;
use std::error::Error as StdError;
use std::fmt;

/// The category of a [`ConnError`]; match on it to decide what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnErrorKind {
    /// The connection string or an environment variable is malformed
    /// (syntax, unknown parameter, bad port, …).
    InvalidConnectionString,
    /// The user name or password in a URL contains characters (`@ # / ? :`
    /// or a stray `%`) that must be percent-encoded; the URL would otherwise be
    /// split in the wrong place. See [`ConnError::corrected_url`].
    UnencodedCharacterInPassword,
    /// No server answered: connection refused, timed out, name resolution
    /// failed, no Unix socket, or the connection dropped during start-up.
    Unreachable,
    /// The server rejected the credentials (SQLSTATE 28P01 or 28000), or it
    /// asked for a password and none was available.
    AuthenticationFailed,
    /// The database does not exist (SQLSTATE 3D000).
    DatabaseMissing,
    /// The user may not do this (SQLSTATE 42501, e.g. no `CONNECT` privilege),
    /// or the Unix socket is not accessible.
    PermissionDenied,
    /// `sslmode` demands TLS and the server does not offer it (or, with
    /// `sslnegotiation=direct`, the server does not speak direct TLS).
    TlsNotSupportedByServer,
    /// The `sslmode` is valid but not supported by this release. No longer
    /// produced: every `sslmode` is supported now.
    TlsModeNotSupported,
    /// A local TLS file is missing, unreadable, malformed or unsafe: the
    /// root certificates (`sslrootcert`, `~/.postgresql/root.crt`, the
    /// system store), the client certificate or its key (including a key
    /// readable by group or others, or one encrypted with a passphrase).
    TlsConfiguration,
    /// The server's certificate is not signed by a trusted CA (unknown CA,
    /// bad signature, or not meant for a TLS server).
    TlsCertificateUntrusted,
    /// The server's certificate does not name the host connected to
    /// (`sslmode=verify-full`).
    TlsHostnameMismatch,
    /// The server's certificate has expired or is not valid yet.
    TlsCertificateExpired,
    /// The server rejected the client certificate, or requires one and none
    /// was sent, or it does not authenticate the user.
    TlsClientCertificateRejected,
    /// Anything else; the message carries the details.
    Other,
}

/// An error from parsing a connection string or connecting.
///
/// Its message says what failed (connecting to which server, as which
/// user); when a lower layer's error caused it (the socket, the server's
/// message, TLS), that error, worded with what to do, is its
/// [`source`](StdError::source), an [`Explained`] whose own source is the
/// driver's error. A message the server's error is rephrased into whole
/// (a missing database, a certificate not trusted) keeps the driver's error
/// as its source directly; [`crate::chain_text`] with
/// [`crate::keeps_cause_apart`] then stops at it. It never contains a
/// password.
pub struct ConnError {
    kind: ConnErrorKind,
    message: String,
    sqlstate: Option<String>,
    corrected_url: Option<String>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl ConnError {
    pub(crate) fn new(kind: ConnErrorKind, message: impl Into<String>) -> Self {
        ConnError {
            kind,
            message: message.into(),
            sqlstate: None,
            corrected_url: None,
            source: None,
        }
    }

    /// An [`ConnErrorKind::InvalidConnectionString`] error.
    pub(crate) fn invalid(message: impl fmt::Display) -> Self {
        ConnError::new(
            ConnErrorKind::InvalidConnectionString,
            format!("invalid connection string: {message}"),
        )
    }

    /// The same error with what the lower layer said (and what to do) shown
    /// after its message; the lower layer's error is added by
    /// [`ConnError::with_source`].
    pub(crate) fn with_cause(mut self, said: impl Into<String>) -> Self {
        self.source = Some(Box::new(Explained::text_only(said)));
        self
    }

    /// The same error with `source`, the lower layer's error, as its cause
    /// (under the words [`ConnError::with_cause`] gave it, if any).
    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        let worded = self
            .source
            .take()
            .and_then(|s| s.downcast::<Explained>().ok());
        self.source = Some(match worded {
            Some(worded) => Box::new((*worded).with_error(source)),
            None => Box::new(source),
        });
        self
    }

    pub(crate) fn with_sqlstate(mut self, code: impl Into<String>) -> Self {
        self.sqlstate = Some(code.into());
        self
    }

    pub(crate) fn with_corrected_url(mut self, url: String) -> Self {
        self.corrected_url = Some(url);
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ConnErrorKind {
        self.kind
    }

    /// The message: what failed, without its cause (the same text as
    /// `Display`; [`crate::chain_text`] gives the whole line).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the cause is kept apart, as the source, rather than said in
    /// the message (see [`crate::keeps_cause_apart`]).
    pub(crate) fn keeps_cause_apart(&self) -> bool {
        self.source.as_deref().is_some_and(|s| s.is::<Explained>())
    }

    /// The server's SQLSTATE code, when the server reported the error.
    pub fn sqlstate(&self) -> Option<&str> {
        self.sqlstate.as_deref()
    }

    /// For [`ConnErrorKind::UnencodedCharacterInPassword`]: the URL as it
    /// should have been written, with the password shown as `****`.
    pub fn corrected_url(&self) -> Option<&str> {
        self.corrected_url.as_deref()
    }

    /// The database named in the connection does not exist (SQLSTATE 3D000).
    pub fn is_database_missing(&self) -> bool {
        self.kind == ConnErrorKind::DatabaseMissing
    }

    /// The server rejected the credentials or needed a password.
    pub fn is_authentication_failed(&self) -> bool {
        self.kind == ConnErrorKind::AuthenticationFailed
    }

    /// No server could be reached.
    pub fn is_unreachable(&self) -> bool {
        self.kind == ConnErrorKind::Unreachable
    }

    /// The user lacks a privilege (or the socket is not accessible).
    pub fn is_permission_denied(&self) -> bool {
        self.kind == ConnErrorKind::PermissionDenied
    }

    /// The server's TLS certificate could not be trusted: unknown CA, host
    /// name not in the certificate, or expired.
    pub fn is_certificate_problem(&self) -> bool {
        matches!(
            self.kind,
            ConnErrorKind::TlsCertificateUntrusted
                | ConnErrorKind::TlsHostnameMismatch
                | ConnErrorKind::TlsCertificateExpired
        )
    }

    /// The error lies in what the user supplied (connection string, URL
    /// encoding, environment, an `sslmode` this release cannot honour, or a
    /// missing or unusable certificate or key file), not in the server:
    /// retrying cannot help. `pg_isready` reports these
    /// as "bad parameters" (exit code 3).
    pub fn is_bad_parameters(&self) -> bool {
        matches!(
            self.kind,
            ConnErrorKind::InvalidConnectionString
                | ConnErrorKind::UnencodedCharacterInPassword
                | ConnErrorKind::TlsModeNotSupported
                | ConnErrorKind::TlsConfiguration
        )
    }
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ConnError");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(code) = &self.sqlstate {
            d.field("sqlstate", code);
        }
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl StdError for ConnError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_and_helpers() {
        let e = ConnError::new(
            ConnErrorKind::DatabaseMissing,
            "database \"x\" does not exist",
        )
        .with_sqlstate("3D000");
        assert!(e.is_database_missing());
        assert!(!e.is_unreachable());
        assert!(!e.is_bad_parameters());
        assert_eq!(e.sqlstate(), Some("3D000"));
        assert_eq!(e.to_string(), "database \"x\" does not exist");
        assert_eq!(e.message(), e.to_string());
        assert!(format!("{e:?}").contains("DatabaseMissing"));

        let e = ConnError::invalid("bad port");
        assert_eq!(e.kind(), ConnErrorKind::InvalidConnectionString);
        assert!(e.is_bad_parameters());
        assert_eq!(e.to_string(), "invalid connection string: bad port");

        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = ConnError::new(ConnErrorKind::Unreachable, "x").with_source(io);
        assert!(e.source().is_some());
        assert!(e.is_unreachable());
    }

    #[test]
    fn the_cause_is_kept_apart_as_the_source_and_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = ConnError::new(
            ConnErrorKind::Unreachable,
            "could not connect to the server at db:5432",
        )
        .with_cause("refused; check that the server is running")
        .with_source(io);
        assert_eq!(e.to_string(), "could not connect to the server at db:5432");
        assert_eq!(e.kind(), ConnErrorKind::Unreachable);
        assert!(crate::keeps_cause_apart(&e));
        let text = crate::conn_text(&e);
        assert_eq!(
            text,
            "could not connect to the server at db:5432: refused; check that the server is running"
        );
        assert_eq!(text.matches("refused").count(), 1, "{text}");
        let cause = e.source().expect("a source");
        assert!(cause.is::<Explained>());
        let io = cause
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the I/O error under the cause");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn a_message_that_rephrases_its_cause_is_said_whole() {
        let io = std::io::Error::other("database \"x\" does not exist");
        let e = ConnError::new(
            ConnErrorKind::DatabaseMissing,
            "database \"x\" does not exist on db:5432; create it first",
        )
        .with_source(io);
        assert!(!crate::keeps_cause_apart(&e));
        assert_eq!(crate::conn_text(&e), e.to_string());
        assert!(e.source().is_some_and(|s| s.is::<std::io::Error>()));
    }
}
