//! [`ApplyError`]: everything that can stop a plan from being read or
//! applied, with the file, role, database or extension it concerns.

use std::path::PathBuf;

/// Shorthand for results in this crate.
pub type Result<T, E = ApplyError> = std::result::Result<T, E>;

/// Why a plan could not be read, checked or applied.
///
/// Each variant names what it concerns (the plan file, a role, a database,
/// an extension, a change). No message ever contains a password: secrets are
/// described by where they come from, SQL is shown with passwords masked, and
/// plan parse errors give a position and a message, never the offending line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The plan file could not be read.
    #[error("cannot read the plan {}", path.display())]
    ReadPlan {
        /// The plan file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The plan is not valid TOML, or has a key or value of the wrong kind
    /// (an unknown key is named in `message`).
    #[error("{file}:{line}:{column}: {message}")]
    ParsePlan {
        /// The plan file (or the origin given to [`crate::Plan::parse`]).
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong; never quotes the line itself.
        message: String,
    },
    /// The plan parsed but says something impossible (a duplicate name, an
    /// unknown privilege, a role that is a member of itself, …).
    #[error("{file}: {message}")]
    InvalidPlan {
        /// The plan file (or origin).
        file: String,
        /// What is wrong, naming the role or database.
        message: String,
    },
    /// A password or URL named in the plan could not be read.
    #[error("{what}")]
    Secret {
        /// What the secret is for, e.g. `the password of role mealie`.
        what: String,
        /// Why it could not be read (names the variable or file only).
        source: pgharbor_conn::SecretSourceError,
    },
    /// A URL in the plan is not a valid connection string, or a server could
    /// not be reached or refused the connection.
    #[error("{what}")]
    Connection {
        /// Which connection, e.g. `the target` or `database mealie`.
        what: String,
        /// The connection error (passwords masked).
        source: pgharbor_conn::ConnError,
    },
    /// A catalog query used to read the server's current state failed.
    #[error("reading {what}: {message}")]
    Inspect {
        /// What was being read.
        what: String,
        /// The server's message (with SQLSTATE).
        message: String,
    },
    /// An extension the plan asks for is not available on the server (or
    /// not in the requested version). Raised before any change is made.
    #[error(
        "extension {extension}{} for database {database} is not available on the server: {}",
        requested.as_ref().map(|v| format!(" version {v}")).unwrap_or_default(),
        offered_text(offered)
    )]
    ExtensionUnavailable {
        /// The extension.
        extension: String,
        /// The database that wants it.
        database: String,
        /// The version asked for, if any.
        requested: Option<String>,
        /// The versions the server offers (empty: not installed at all).
        offered: Vec<String>,
    },
    /// An extension that is not trusted needs a superuser to install, and
    /// the connected user is not one. Raised before any change is made.
    #[error(
        "extension {extension} in database {database} can only be installed by a superuser \
         (it is not marked trusted) and {user} is not one; install it as a superuser or \
         ask the provider to allow it"
    )]
    ExtensionNeedsSuperuser {
        /// The extension.
        extension: String,
        /// The database.
        database: String,
        /// The connected user.
        user: String,
    },
    /// A role must change but the connected user may not alter it. Raised
    /// before any change is made.
    #[error("role {role} cannot be changed by {user}: {missing}")]
    RoleNotManageable {
        /// The role.
        role: String,
        /// The connected user.
        user: String,
        /// The missing privilege and how to get it.
        missing: String,
    },
    /// An existing database differs from the plan in a way PostgreSQL cannot
    /// change in place (encoding, collation, character type, locale
    /// provider). Raised before any change is made.
    #[error("database {database} exists with {property} {current} but the plan asks for {wanted}; it cannot be changed in place (dump, recreate and restore it)")]
    DatabaseConflict {
        /// The database.
        database: String,
        /// The property, e.g. `encoding`.
        property: &'static str,
        /// Its current value.
        current: String,
        /// The value in the plan.
        wanted: String,
    },
    /// The operating system's random number generator failed (needed for
    /// the salt of a password verifier).
    #[error("cannot generate a password salt: {0}")]
    NoRandomness(String),
    /// A change failed on the server. Changes before it were applied.
    #[error("{object}: {description} failed: {message} (running: {sql}; {applied} earlier change(s) were applied)")]
    ChangeFailed {
        /// The object, e.g. `role mealie`.
        object: String,
        /// What the change was doing.
        description: String,
        /// The SQL, passwords masked.
        sql: String,
        /// The server's message (with SQLSTATE).
        message: String,
        /// How many changes were applied before this one.
        applied: usize,
    },
}

fn offered_text(offered: &[String]) -> String {
    if offered.is_empty() {
        "the server has no such extension installed (pg_available_extensions)".to_owned()
    } else {
        format!("the server offers version(s) {}", offered.join(", "))
    }
}

/// A server error as one line: the message, and the SQLSTATE when known.
pub(crate) fn server_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// An [`ApplyError::Inspect`] for a failed catalog query.
pub(crate) fn inspect_error(
    what: impl Into<String>,
) -> impl FnOnce(tokio_postgres::Error) -> ApplyError {
    let what = what.into();
    move |e| ApplyError::Inspect {
        what,
        message: server_message(&e),
    }
}
