//! [`RdbError`]: one error type with a kind, a message saying what was
//! being done (with the I/O or TLS error that caused it as its source) and,
//! for damaged files, the byte offset.

/// The category of an [`RdbError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RdbErrorKind {
    /// A URL, option or argument is malformed.
    InvalidInput,
    /// The server could not be reached, did not answer in time, or the
    /// connection was lost (also in the middle of a transfer).
    Unreachable,
    /// The server answered but refused us: authentication, an ACL
    /// permission, replication not allowed.
    Refused,
    /// A command failed on a reachable server.
    Query,
    /// The server sent something this client does not understand.
    Protocol,
    /// The snapshot is structurally damaged (a bad opcode, length or type).
    Corrupt,
    /// The snapshot ends before its end-of-file marker or checksum.
    Truncated,
    /// The snapshot's CRC64 does not match its content.
    Checksum,
    /// A valid snapshot that uses something this crate or the target server
    /// does not handle (an RDB version, a pre-release type).
    Unsupported,
    /// The restore target already holds keys and flushing was not asked for.
    NotEmpty,
    /// A local file or output could not be used.
    Io,
}

/// An error fetching, checking or restoring a Redis snapshot, or talking to
/// a Redis server.
///
/// Its message says what was being done (context first); the lower
/// layer's error (a socket's, a file's, TLS') is its
/// [`source`](std::error::Error::source), never copied into the message.
/// It never contains a password: servers are always shown through
/// [`RedisUrl`](crate::RedisUrl)'s masked form.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RdbError {
    kind: RdbErrorKind,
    message: String,
    offset: Option<u64>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl RdbError {
    /// A new error of `kind`.
    pub fn new(kind: RdbErrorKind, message: impl Into<String>) -> Self {
        RdbError {
            kind,
            message: message.into(),
            offset: None,
            source: None,
        }
    }

    /// An I/O error met while doing `what`, of `kind`: `what`, with the
    /// I/O error as its source.
    pub(crate) fn io(kind: RdbErrorKind, what: impl std::fmt::Display, e: std::io::Error) -> Self {
        RdbError::new(kind, what.to_string()).caused_by(e)
    }

    /// The same error with `cause` as its source.
    pub(crate) fn caused_by(
        mut self,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(cause));
        self
    }

    /// A damaged-snapshot error of `kind` at byte `offset` of the snapshot.
    pub(crate) fn at(kind: RdbErrorKind, offset: u64, message: impl std::fmt::Display) -> Self {
        let mut err = RdbError::new(kind, format!("at byte {offset}: {message}"));
        err.offset = Some(offset);
        err
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> RdbErrorKind {
        self.kind
    }

    /// The message: what was being done, without the cause (the chain
    /// printers add it: `pgharbor_conn::chain_text`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For a damaged snapshot: the byte offset where the problem was found.
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// The same error with `context` put in front (`context: message`).
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

/// Whether `error` is this crate's error, which says only its own context
/// and keeps its cause (an I/O or TLS error) as its source.
pub fn keeps_cause_apart(error: &(dyn std::error::Error + 'static)) -> bool {
    error.is::<RdbError>()
}

/// Result alias for this crate.
pub type Result<T, E = RdbError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_is_the_source_not_the_message() {
        let lost = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let e = RdbError::io(RdbErrorKind::Unreachable, "connection to Redis lost", lost)
            .context("redis://db:6379");
        assert_eq!(e.kind(), RdbErrorKind::Unreachable);
        assert_eq!(e.to_string(), "redis://db:6379: connection to Redis lost");
        let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionReset)
        );
        let text = pgharbor_conn::chain_text(&e, &keeps_cause_apart);
        assert_eq!(
            text,
            "redis://db:6379: connection to Redis lost: reset by peer"
        );
    }
}
