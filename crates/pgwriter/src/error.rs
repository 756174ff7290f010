//! The writer's error type.

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

/// An error while writing, with the table and what was being done.
#[derive(Debug)]
pub struct WriteError {
    kind: WriteErrorKind,
    message: String,
    source: Option<tokio_postgres::Error>,
}

impl WriteError {
    /// A new error.
    pub fn new(kind: WriteErrorKind, message: impl Into<String>) -> Self {
        WriteError {
            kind,
            message: message.into(),
            source: None,
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
            message: format!("{doing}: {detail}{advice}"),
            source: Some(err),
        }
    }

    /// The kind.
    pub fn kind(&self) -> WriteErrorKind {
        self.kind
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
