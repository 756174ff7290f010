//! The error type of the SQLite source: the file, the table and what was
//! being done, with SQLite's own error (and what to do about it) as its
//! source.

use std::fmt;
use std::path::PathBuf;

/// What kind of problem occurred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqliteErrorKind {
    /// The file does not exist.
    NotFound,
    /// The file exists but is not an SQLite database (or is encrypted).
    NotSqlite,
    /// The database is damaged.
    Corrupt,
    /// The database is locked by another process for longer than the timeout.
    Locked,
    /// The file cannot be read.
    Io,
    /// Something in the schema cannot be migrated.
    Schema,
    /// Any other SQLite error.
    Other,
}

/// An error of the SQLite source, with the file and, where known, the table.
#[derive(Debug)]
pub struct SqliteError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: SqliteErrorKind,
    path: Option<PathBuf>,
    table: Option<String>,
    message: String,
    source: Option<SqliteFailure>,
}

/// What SQLite said, and what to do about it (a damaged file can be
/// recovered, a locked one read again shortly); rusqlite's error is its source.
#[derive(Debug)]
pub struct SqliteFailure {
    error: rusqlite::Error,
    hint: &'static str,
}

impl SqliteError {
    /// A new error.
    pub fn new(kind: SqliteErrorKind, message: impl Into<String>) -> Self {
        SqliteError(Box::new(Inner {
            kind,
            path: None,
            table: None,
            message: message.into(),
            source: None,
        }))
    }

    /// Attach the database file.
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.0.path = Some(path.into());
        self
    }

    /// Attach the table being read.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.0.table = Some(table.into());
        self
    }

    /// The kind of error.
    pub fn kind(&self) -> SqliteErrorKind {
        self.0.kind
    }

    /// Classify a rusqlite error.
    pub fn from_sqlite(err: rusqlite::Error, context: impl Into<String>) -> Self {
        let kind = match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => SqliteErrorKind::NotSqlite,
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => SqliteErrorKind::Corrupt,
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                SqliteErrorKind::Locked
            }
            Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::SystemIoFailure) => {
                SqliteErrorKind::Io
            }
            _ => SqliteErrorKind::Other,
        };
        let hint = match kind {
            SqliteErrorKind::NotSqlite => {
                " (not an SQLite database; an encrypted file must be decrypted first)"
            }
            SqliteErrorKind::Corrupt => {
                " (the database is damaged; try `sqlite3 FILE .recover` into a new file)"
            }
            SqliteErrorKind::Locked => " (another process holds a lock; try again shortly)",
            _ => "",
        };
        SqliteError(Box::new(Inner {
            kind,
            path: None,
            table: None,
            message: context.into(),
            source: Some(SqliteFailure { error: err, hint }),
        }))
    }
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.0.path {
            write!(f, "{}: ", path.display())?;
        }
        if let Some(table) = &self.0.table {
            write!(f, "table {table:?}: ")?;
        }
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for SqliteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.error, self.hint)
    }
}

impl std::error::Error for SqliteFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, SqliteError>;
