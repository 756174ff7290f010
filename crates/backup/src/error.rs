//! [`BackupError`]: one error type with a kind and a message naming the
//! backup, database or file and what was being done; the lower layer's
//! error (the server, the connection, the destination, a file) is its
//! source, and [`chain_text`] puts the line together, each cause once.

use std::error::Error as StdError;
use std::fmt;

use pgharbor_conn::Explained;
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

/// The lower layer's error that a [`BackupError`] keeps as its source.
type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// An error from a backup, list, verify, restore or prune.
///
/// Its message is what was being done (and, for an error of its own, what
/// went wrong); the lower layer's error is its
/// [`source`](std::error::Error::source), never copied into the message. A
/// wrapped error with no context of its own displays as its cause.
/// Sentences on what the failure left and what to do
/// ([`BackupError::followed_by`]) come after the whole chain: [`chain_text`]
/// puts it together. Never contains a password, an age identity or a
/// passphrase.
pub struct BackupError {
    kind: BackupErrorKind,
    message: String,
    cause: Option<Cause>,
    afterwards: Vec<String>,
}

impl BackupError {
    /// A new error of `kind`.
    pub fn new(kind: BackupErrorKind, message: impl Into<String>) -> Self {
        BackupError {
            kind,
            message: message.into(),
            cause: None,
            afterwards: Vec::new(),
        }
    }

    /// `cause` with no context of its own (displayed as the cause).
    fn wrapping(kind: BackupErrorKind, cause: impl StdError + Send + Sync + 'static) -> Self {
        BackupError::new(kind, "").caused_by(cause)
    }

    /// The same error with `cause` as its source.
    pub fn caused_by(mut self, cause: impl StdError + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// A local file or stream failed while doing `what`: `what`, with the
    /// I/O error as its source.
    pub fn io(what: impl fmt::Display, e: std::io::Error) -> Self {
        BackupError::new(BackupErrorKind::Io, what.to_string()).caused_by(e)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> BackupErrorKind {
        self.kind
    }

    /// The message: what was being done, without the cause or the
    /// sentences after it ([`chain_text`] gives the whole line).
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

    /// The same error with the sentence `then` after it (what the failure
    /// left and what to do), said after the whole chain of causes.
    pub fn followed_by(mut self, then: impl fmt::Display) -> Self {
        self.afterwards.push(then.to_string());
        self
    }

    /// A PostgreSQL query error met while doing `what`: the server's message
    /// and SQLSTATE (with what to do when its disk is full) as the source.
    pub fn postgres(what: impl fmt::Display, e: tokio_postgres::Error) -> Self {
        let said = match e.as_db_error() {
            Some(db) if db.code().code() == DISK_FULL => format!(
                "{} (SQLSTATE {DISK_FULL}) — {DISK_FULL_ADVICE}",
                db.message()
            ),
            Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            None if e.is_closed() => {
                "the server closed the connection (did it stop or crash?)".to_owned()
            }
            None => e.to_string(),
        };
        let kind = if connection_lost(&e) {
            BackupErrorKind::Connection
        } else if e.code().is_some_and(|c| c.code() == DISK_FULL) {
            BackupErrorKind::NoSpace
        } else {
            BackupErrorKind::Query
        };
        BackupError::new(kind, what.to_string()).caused_by(Explained::new(said, e))
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

impl fmt::Display for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(cause) if self.message.is_empty() => fmt::Display::fmt(cause, f),
            _ => f.write_str(&self.message),
        }
    }
}

impl fmt::Debug for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("BackupError");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(cause) = &self.cause {
            d.field("cause", cause);
        }
        d.field("afterwards", &self.afterwards).finish()
    }
}

impl StdError for BackupError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn StdError + 'static))
    }
}

impl From<ObjstoreError> for BackupError {
    fn from(e: ObjstoreError) -> Self {
        let kind = match e.kind() {
            ObjstoreErrorKind::NoSpace => BackupErrorKind::NoSpace,
            ObjstoreErrorKind::NotFound => BackupErrorKind::NotFound,
            _ => BackupErrorKind::Storage,
        };
        BackupError::wrapping(kind, e)
    }
}

impl From<pgharbor_conn::ConnError> for BackupError {
    fn from(e: pgharbor_conn::ConnError) -> Self {
        BackupError::wrapping(BackupErrorKind::Connection, e)
    }
}

impl From<pgharbor_pgtools::ToolError> for BackupError {
    fn from(e: pgharbor_pgtools::ToolError) -> Self {
        BackupError::wrapping(BackupErrorKind::Tool, e)
    }
}

/// Whether `error` is one of the errors a backup meets that say only their
/// own context and keep their cause as their source: this crate's, the
/// destination's, Redis', a connection's.
pub fn keeps_cause_apart(error: &(dyn StdError + 'static)) -> bool {
    error.is::<BackupError>()
        || pgharbor_objstore::keeps_cause_apart(error)
        || pgharbor_rdb::keeps_cause_apart(error)
        || pgharbor_conn::keeps_cause_apart(error)
}

/// `text` (the chain of `error`, said by [`chain_text`] or the CLI), then
/// the sentences the [`BackupError`]s of that chain say after it
/// ([`BackupError::followed_by`]), outermost first.
pub fn with_afterwards(text: String, error: &(dyn StdError + 'static)) -> String {
    let mut text = text;
    let mut current = Some(error);
    while let Some(layer) = current {
        if let Some(own) = layer.downcast_ref::<BackupError>() {
            for sentence in &own.afterwards {
                text = format!("{text}. {sentence}");
            }
        }
        current = layer.source();
    }
    text
}

/// `error` and its causes, each said once, then what the failure left
/// ([`with_afterwards`]): the one line reports keep and the CLI prints.
pub fn chain_text(error: &(dyn StdError + 'static)) -> String {
    chain_text_following(error, &keeps_cause_apart)
}

/// [`chain_text`], following the chain through the errors `keeps_apart`
/// accepts (a caller's own errors as well as those of [`keeps_cause_apart`]).
pub fn chain_text_following(
    error: &(dyn StdError + 'static),
    keeps_apart: &dyn Fn(&(dyn StdError + 'static)) -> bool,
) -> String {
    with_afterwards(pgharbor_conn::chain_text(error, keeps_apart), error)
}

/// Result alias for this crate.
pub type Result<T, E = BackupError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The error connecting to a port nothing listens on.
    async fn refused_connection() -> pgharbor_conn::ConnError {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("postgresql://app:Backup-pw-9@127.0.0.1:{port}/shop?sslmode=disable");
        let config = pgharbor_conn::ConnConfig::parse(&url).unwrap();
        match pgharbor_conn::connect(&config).await {
            Ok(_) => panic!("nothing listens on port {port}"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn a_connection_error_is_the_source_and_its_cause_is_said_once() {
        let conn = refused_connection().await;
        let conn_text = pgharbor_conn::conn_text(&conn);
        let e = BackupError::from(conn).context("backup of shop");
        assert_eq!(e.kind(), BackupErrorKind::Connection);
        assert_eq!(e.to_string(), "backup of shop");
        let source = e
            .source()
            .and_then(|s| s.downcast_ref::<pgharbor_conn::ConnError>());
        assert!(source.is_some_and(pgharbor_conn::ConnError::is_unreachable));
        let text = chain_text(&e);
        assert_eq!(text, format!("backup of shop: {conn_text}"));
        assert_eq!(text.matches("Connection refused").count(), 1, "{text}");
        assert!(!format!("{text} {e:?}").contains("Backup-pw-9"), "{text}");
    }

    #[test]
    fn an_io_error_is_the_source_and_what_the_failure_left_comes_after_the_chain() {
        let full = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left");
        let e = BackupError::io("writing the dump to a temporary file", full)
            .context("backup 20260101T000000Z")
            .followed_by("Nothing was stored");
        assert_eq!(
            e.to_string(),
            "backup 20260101T000000Z: writing the dump to a temporary file"
        );
        assert_eq!(
            chain_text(&e),
            "backup 20260101T000000Z: writing the dump to a temporary file: no space left. \
             Nothing was stored"
        );
        let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::StorageFull)
        );
        assert_eq!(e.kind(), BackupErrorKind::Io);
    }

    #[test]
    fn a_wrapped_error_without_context_shows_as_its_cause_and_keeps_its_kind() {
        let tool = pgharbor_pgtools::find_in("pg_dump", 99, &[]).unwrap_err();
        let said = tool.to_string();
        let e = BackupError::from(tool);
        assert_eq!(e.kind(), BackupErrorKind::Tool);
        assert_eq!(e.to_string(), said);
        assert_eq!(chain_text(&e), said);
        assert!(e
            .source()
            .is_some_and(|s| s.is::<pgharbor_pgtools::ToolError>()));
    }
}
