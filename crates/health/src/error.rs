//! [`HealthError`]: one error type with a kind and a message saying what
//! was being done; the lower layer's error (a connection, the server's
//! message, Redis, a file) is its source.

use std::error::Error as StdError;
use std::fmt;

use pgharbor_conn::Explained;

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

/// The lower layer's error that a [`HealthError`] keeps as its source.
type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// An error from a probe, a status collection, `kill` or `serve`.
///
/// Its message is what was being done (context first); the lower layer's
/// error that caused it is its [`source`](StdError::source), never copied
/// into the message; a wrapped error with no context of its own displays as
/// its cause. [`chain_text`] gives the whole line. It never contains a
/// password: targets are always shown through their masked form.
pub struct HealthError {
    kind: HealthErrorKind,
    message: String,
    cause: Option<Cause>,
}

impl HealthError {
    /// A new error of `kind`.
    pub fn new(kind: HealthErrorKind, message: impl Into<String>) -> Self {
        HealthError {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    /// `cause` with no context of its own (displayed as the cause).
    fn wrapping(kind: HealthErrorKind, cause: impl StdError + Send + Sync + 'static) -> Self {
        HealthError::new(kind, "").caused_by(cause)
    }

    /// The same error with `cause` as its source.
    pub fn caused_by(mut self, cause: impl StdError + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> HealthErrorKind {
        self.kind
    }

    /// The message: what was being done, without the cause ([`chain_text`]
    /// gives the whole line).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` put in front (`context: message`).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = if self.message.is_empty() {
            context.to_string()
        } else {
            format!("{context}: {}", self.message)
        };
        self
    }

    /// A PostgreSQL query error met while doing `what`: the server's message
    /// and SQLSTATE as the source.
    pub(crate) fn postgres(what: &str, e: tokio_postgres::Error) -> Self {
        let said = match e.as_db_error() {
            Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        let kind = match e.code() {
            Some(c) if c == &tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE => {
                HealthErrorKind::Refused
            }
            Some(_) => HealthErrorKind::Query,
            None if e.is_closed() => HealthErrorKind::Unreachable,
            None => HealthErrorKind::Query,
        };
        HealthError::new(kind, what).caused_by(Explained::new(said, e))
    }
}

impl fmt::Display for HealthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(cause) if self.message.is_empty() => fmt::Display::fmt(cause, f),
            _ => f.write_str(&self.message),
        }
    }
}

impl fmt::Debug for HealthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HealthError({:?}: {}", self.kind, self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, "; caused by {cause:?}")?;
        }
        f.write_str(")")
    }
}

impl StdError for HealthError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn StdError + 'static))
    }
}

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
        HealthError::wrapping(kind, e)
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
        HealthError::wrapping(kind, e)
    }
}

/// Whether `error` is one of the errors a probe meets that say only their
/// own context and keep their cause as their source: this crate's and
/// those of the backups it looks at (see [`pgharbor_backup::keeps_cause_apart`]).
pub fn keeps_cause_apart(error: &(dyn StdError + 'static)) -> bool {
    error.is::<HealthError>() || pgharbor_backup::keeps_cause_apart(error)
}

/// `error` and its causes, each said once: the line a report keeps (a
/// problem, a failed check) and the CLI prints.
pub fn chain_text(error: &(dyn StdError + 'static)) -> String {
    pgharbor_backup::chain_text_following(error, &keeps_cause_apart)
}

/// Result alias for this crate.
pub type Result<T, E = HealthError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_the_source_said_once_with_its_kind_kept() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("postgresql://u:Health-pw-7@127.0.0.1:{port}/db?sslmode=disable");
        let config = pgharbor_conn::ConnConfig::parse(&url).unwrap();
        let conn = match pgharbor_conn::connect(&config).await {
            Ok(_) => panic!("nothing listens on port {port}"),
            Err(e) => e,
        };
        let e = HealthError::from(conn).context(config.to_string());
        assert_eq!(e.kind(), HealthErrorKind::Unreachable);
        assert_eq!(e.to_string(), config.to_string());
        assert!(e
            .source()
            .is_some_and(|s| s.is::<pgharbor_conn::ConnError>()));
        let text = chain_text(&e);
        let endpoint = format!("could not connect to the server at 127.0.0.1:{port}: ");
        assert_eq!(text.matches(&endpoint).count(), 1, "{text}");
        assert_eq!(text.matches("Connection refused").count(), 1, "{text}");
        assert!(!format!("{text} {e:?}").contains("Health-pw-7"), "{text}");
    }

    #[test]
    fn a_redis_error_keeps_its_kind_and_is_the_source() {
        let rdb = pgharbor_rdb::RedisUrl::parse("http://nowhere").unwrap_err();
        let said = rdb.to_string();
        let e = HealthError::from(rdb);
        assert_eq!(e.kind(), HealthErrorKind::InvalidInput);
        assert_eq!(e.to_string(), said);
        assert_eq!(chain_text(&e), said);
        assert!(e.source().is_some_and(|s| s.is::<pgharbor_rdb::RdbError>()));
    }
}
