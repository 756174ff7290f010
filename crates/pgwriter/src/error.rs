//! The writer's error type: what was being done, and what the server said
//! (its message, detail and hint, and what to do) as its source.

use std::fmt;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteErrorKind {
    /// A value cannot be carried exactly into its target column.
    Conversion,
    /// The target disk is full.
    DiskFull,
    /// The target user lacks a privilege.
    PermissionDenied,
    /// A table already exists and was not to be replaced.
    AlreadyExists,
    /// The connection to the target broke.
    ConnectionLost,
    /// Any other error reported by PostgreSQL.
    Database,
    /// A source read failed while streaming.
    Source,
}

/// An error while writing: its message says what was being done (or, for
/// an error of the writer's own, what went wrong); the server's error is
/// its [`source`](std::error::Error::source), a [`ServerError`].
#[derive(Debug)]
pub struct WriteError {
    kind: WriteErrorKind,
    message: String,
    cause: Option<ServerError>,
}

/// What PostgreSQL (or the connection to it) said, as a person reads it:
/// the server's message with its detail and hint, then what to do. The
/// driver's error is its source.
#[derive(Debug)]
pub struct ServerError {
    text: String,
    error: tokio_postgres::Error,
}

impl WriteError {
    /// A new error.
    pub fn new(kind: WriteErrorKind, message: impl Into<String>) -> Self {
        WriteError {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    /// Classify a PostgreSQL error; `doing` says what was being done (e.g. `loading table "x"`).
    pub fn from_pg(err: tokio_postgres::Error, doing: impl fmt::Display) -> Self {
        let (kind, detail) = match err.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                let kind = match code {
                    "53100" => WriteErrorKind::DiskFull,
                    "42501" => WriteErrorKind::PermissionDenied,
                    "42P07" => WriteErrorKind::AlreadyExists,
                    _ if code.starts_with("08") || code.starts_with("57P") => {
                        WriteErrorKind::ConnectionLost
                    }
                    _ => WriteErrorKind::Database,
                };
                let mut detail = db.message().to_string();
                if let Some(d) = db.detail() {
                    detail.push_str(&format!(" ({d})"));
                }
                if let Some(h) = db.hint() {
                    detail.push_str(&format!("; hint: {h}"));
                }
                (kind, detail)
            }
            None if err.is_closed() => (
                WriteErrorKind::ConnectionLost,
                "the connection to the target was closed".to_string(),
            ),
            None => (WriteErrorKind::ConnectionLost, err.to_string()),
        };
        let advice = match kind {
            WriteErrorKind::DiskFull => {
                " — free space on the target server (or grow its volume) and run again"
            }
            WriteErrorKind::PermissionDenied => {
                " — grant the target user the needed privilege, or connect as the owner"
            }
            WriteErrorKind::ConnectionLost => " — check the target server is running",
            _ => "",
        };
        WriteError {
            kind,
            message: doing.to_string(),
            cause: Some(ServerError {
                text: format!("{detail}{advice}"),
                error: err,
            }),
        }
    }

    /// The kind.
    pub fn kind(&self) -> WriteErrorKind {
        self.kind
    }

    /// What the server said (with what to do), when the server's error is the cause.
    pub fn server_message(&self) -> Option<&str> {
        self.cause.as_ref().map(|c| c.text.as_str())
    }

    /// The same error as `kind`, with `sentence` on what to do after what
    /// the server said (or after the message, without a server error).
    pub fn advise(mut self, kind: WriteErrorKind, sentence: impl fmt::Display) -> Self {
        self.kind = kind;
        match &mut self.cause {
            Some(cause) => cause.text = format!("{}. {sentence}", cause.text),
            None => self.message = format!("{}. {sentence}", self.message),
        }
        self
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
