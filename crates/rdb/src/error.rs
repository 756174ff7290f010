//! [`RdbError`]: one error type with a kind, a one-line message and, for
//! damaged files, the byte offset.

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
/// It displays as one line (context first, then the cause) and never
/// contains a password: servers are always shown through
/// [`RedisUrl`](crate::RedisUrl)'s masked form.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RdbError {
    kind: RdbErrorKind,
    message: String,
    offset: Option<u64>,
    #[source]
    source: Option<std::io::Error>,
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

    /// An I/O error met while doing `what`, of `kind`.
    pub(crate) fn io(kind: RdbErrorKind, what: impl std::fmt::Display, e: std::io::Error) -> Self {
        let mut err = RdbError::new(kind, format!("{what}: {e}"));
        err.source = Some(e);
        err
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

    /// The one-line message.
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

/// Result alias for this crate.
pub type Result<T, E = RdbError> = std::result::Result<T, E>;
