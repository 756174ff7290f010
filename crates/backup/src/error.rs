//! [`BackupError`]: one error type with a kind and a one-line message that
//! names the backup, database or file and what to do.

use std::fmt;

use pgharbor_objstore::{ObjstoreError, ObjstoreErrorKind};

/// The category of a [`BackupError`]; match on it to decide what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackupErrorKind {
    /// An argument is malformed: an unknown backup id, a bad recipient key,
    /// a database that the backup does not hold.
    InvalidInput,
    /// The PostgreSQL server could not be reached or refused the connection,
    /// or the connection was lost (the server restarted, the session was
    /// terminated).
    Connection,
    /// A query failed on a reachable server (including the server going
    /// away in the middle of a backup).
    Query,
    /// A PostgreSQL client program (`pg_dump`, `pg_dumpall`, `pg_restore`)
    /// is missing, too old, or failed.
    Tool,
    /// The server refused something for lack of privileges.
    Refused,
    /// The destination failed (unreachable, credentials, permissions).
    Storage,
    /// The destination's file system is full, or the disk of the server
    /// restored into (SQLSTATE 53100, or `pg_restore` meeting `ENOSPC`).
    NoSpace,
    /// A file does not match its manifest (checksum, size), is missing, or a
    /// restored database does not have the manifest's row counts.
    Integrity,
    /// The backup (or its manifest) does not exist.
    NotFound,
    /// The target database is not empty and `clean` was not asked for.
    TargetNotEmpty,
    /// Encryption or decryption failed (wrong key or passphrase, damaged
    /// age header).
    Encryption,
    /// A local file or stream failed.
    Io,
}

/// An error from a backup, list, verify, restore or prune.
///
/// One line, context first; never contains a password, an age identity or a
/// passphrase.
#[derive(thiserror::Error)]
#[error("{message}")]
pub struct BackupError {
    kind: BackupErrorKind,
    message: String,
}

impl BackupError {
    /// A new error of `kind`.
    pub fn new(kind: BackupErrorKind, message: impl Into<String>) -> Self {
        BackupError {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> BackupErrorKind {
        self.kind
    }

    /// The one-line message (the same text as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` put in front (`context: message`).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The same error with the sentence `then` after its message (what the
    /// failure left and what to do).
    pub fn followed_by(mut self, then: impl fmt::Display) -> Self {
        self.message = format!("{}. {then}", self.message);
        self
    }

    /// A PostgreSQL query error, with the server's message and SQLSTATE.
    pub fn postgres(what: impl fmt::Display, e: &tokio_postgres::Error) -> Self {
        let message = match e.as_db_error() {
            Some(db) if db.code().code() == DISK_FULL => format!(
                "{what}: {} (SQLSTATE {DISK_FULL}) — {DISK_FULL_ADVICE}",
                db.message()
            ),
            Some(db) => format!("{what}: {} (SQLSTATE {})", db.message(), db.code().code()),
            None if e.is_closed() => {
                format!("{what}: the server closed the connection (did it stop or crash?)")
            }
            None => format!("{what}: {e}"),
        };
        let kind = if connection_lost(e) {
            BackupErrorKind::Connection
        } else if e.code().is_some_and(|c| c.code() == DISK_FULL) {
            BackupErrorKind::NoSpace
        } else {
            BackupErrorKind::Query
        };
        BackupError::new(kind, message)
    }
}

/// SQLSTATE `disk_full`: the server could not extend a file.
const DISK_FULL: &str = "53100";

/// What to do when the server's disk is full (after its SQLSTATE, or after
/// a client program's "No space left on device").
pub(crate) const DISK_FULL_ADVICE: &str =
    "free space on the server's disk (or grow its volume) and run again";

/// Whether `e` is the connection going away (the server restarted or shut
/// down, the session was terminated) rather than a query the server refused.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("57P") || code.starts_with("08")
        }
        None => e.is_closed(),
    }
}

impl fmt::Debug for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl From<ObjstoreError> for BackupError {
    fn from(e: ObjstoreError) -> Self {
        let kind = match e.kind() {
            ObjstoreErrorKind::NoSpace => BackupErrorKind::NoSpace,
            ObjstoreErrorKind::NotFound => BackupErrorKind::NotFound,
            _ => BackupErrorKind::Storage,
        };
        BackupError::new(kind, e.message())
    }
}

impl From<pgharbor_conn::ConnError> for BackupError {
    fn from(e: pgharbor_conn::ConnError) -> Self {
        BackupError::new(BackupErrorKind::Connection, e.message())
    }
}

impl From<pgharbor_pgtools::ToolError> for BackupError {
    fn from(e: pgharbor_pgtools::ToolError) -> Self {
        BackupError::new(BackupErrorKind::Tool, e.to_string())
    }
}

/// Result alias for this crate.
pub type Result<T, E = BackupError> = std::result::Result<T, E>;
