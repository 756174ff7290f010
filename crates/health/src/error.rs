//! [`HealthError`]: one error type with a kind and a one-line message.

use std::fmt;

/// The category of a [`HealthError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HealthErrorKind {
    /// A URL, option or configuration value is malformed.
    InvalidInput,
    /// The server could not be reached (refused, timed out, TLS failed).
    Unreachable,
    /// The server answered but refused us (authentication, permissions).
    Refused,
    /// A query or command failed on a reachable server.
    Query,
    /// The server sent something this client does not understand.
    Protocol,
    /// A local file or socket could not be used.
    Io,
}

/// An error from a probe, a status collection, `kill` or `serve`.
///
/// It displays as one line (context first, then the cause) and never
/// contains a password: targets are always shown through their masked form.
pub struct HealthError {
    kind: HealthErrorKind,
    message: String,
}

impl HealthError {
    /// A new error of `kind`.
    pub fn new(kind: HealthErrorKind, message: impl Into<String>) -> Self {
        HealthError {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> HealthErrorKind {
        self.kind
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` put in front (`context: message`).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// A PostgreSQL query error, with the server's message and SQLSTATE.
    pub(crate) fn postgres(what: &str, e: &tokio_postgres::Error) -> Self {
        let message = match e.as_db_error() {
            Some(db) => format!("{what}: {} (SQLSTATE {})", db.message(), db.code().code()),
            None => format!("{what}: {e}"),
        };
        let kind = match e.code() {
            Some(c) if c == &tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE => {
                HealthErrorKind::Refused
            }
            Some(_) => HealthErrorKind::Query,
            None if e.is_closed() => HealthErrorKind::Unreachable,
            None => HealthErrorKind::Query,
        };
        HealthError::new(kind, message)
    }
}

impl fmt::Display for HealthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for HealthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HealthError({:?}: {})", self.kind, self.message)
    }
}

impl std::error::Error for HealthError {}

impl From<pgharbor_conn::ConnError> for HealthError {
    fn from(e: pgharbor_conn::ConnError) -> Self {
        use pgharbor_conn::ConnErrorKind as K;
        let kind = match e.kind() {
            K::InvalidConnectionString | K::UnencodedCharacterInPassword | K::TlsConfiguration => {
                HealthErrorKind::InvalidInput
            }
            K::AuthenticationFailed | K::PermissionDenied | K::DatabaseMissing => {
                HealthErrorKind::Refused
            }
            _ if e.sqlstate().is_some() => HealthErrorKind::Refused,
            _ => HealthErrorKind::Unreachable,
        };
        HealthError::new(kind, e.message().to_owned())
    }
}

impl From<pgharbor_rdb::RdbError> for HealthError {
    fn from(e: pgharbor_rdb::RdbError) -> Self {
        use pgharbor_rdb::RdbErrorKind as K;
        let kind = match e.kind() {
            K::InvalidInput => HealthErrorKind::InvalidInput,
            K::Unreachable => HealthErrorKind::Unreachable,
            K::Refused | K::NotEmpty => HealthErrorKind::Refused,
            K::Query => HealthErrorKind::Query,
            K::Io => HealthErrorKind::Io,
            _ => HealthErrorKind::Protocol,
        };
        HealthError::new(kind, e.message().to_owned())
    }
}

/// Result alias for this crate.
pub type Result<T, E = HealthError> = std::result::Result<T, E>;
