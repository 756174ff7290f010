//! The pipeline's error type.

use std::fmt;

/// Kinds of failure, used by the CLI for exit codes and by tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateErrorKind {
    /// The source could not be read.
    Source,
    /// The target could not be reached or logged into.
    Connect,
    /// A value cannot be carried exactly (names table, row key, column).
    Conversion,
    /// The target already has tables the run would create.
    TargetNotEmpty,
    /// Writing to the target failed.
    Write,
    /// Verification could not run.
    Verify,
    /// Bad arguments or unsupported input.
    Usage,
    /// The user interrupted the run (Ctrl-C).
    Interrupted,
    /// The target cannot take what the source holds (a missing extension,
    /// an object an older server cannot represent); nothing was copied.
    Incompatible,
}

/// An error of the pipeline, carrying a complete one-line explanation.
#[derive(Debug)]
pub struct MigrateError {
    kind: MigrateErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl MigrateError {
    /// A new error.
    pub fn new(kind: MigrateErrorKind, message: impl Into<String>) -> Self {
        MigrateError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The kind.
    pub fn kind(&self) -> MigrateErrorKind {
        self.kind
    }

    /// Change the kind (e.g. a PostgreSQL error met on the source side).
    pub fn set_kind(&mut self, kind: MigrateErrorKind) {
        self.kind = kind;
    }

    /// Add a sentence on what was done after the failure (kind and cause kept).
    pub fn also(mut self, sentence: impl fmt::Display) -> Self {
        self.message = format!("{}. {sentence}", self.message);
        self
    }

    /// Prefix the message with what was being done.
    pub fn context(mut self, doing: impl fmt::Display) -> Self {
        self.message = format!("{doing}: {}", self.message);
        self
    }
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MigrateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

macro_rules! from_error {
    ($ty:ty, $kind:expr) => {
        impl From<$ty> for MigrateError {
            fn from(err: $ty) -> Self {
                MigrateError {
                    kind: $kind,
                    message: err.to_string(),
                    source: Some(Box::new(err)),
                }
            }
        }
    };
}

from_error!(pgharbor_sqlite::SqliteError, MigrateErrorKind::Source);
from_error!(pgharbor_chroma::ChromaError, MigrateErrorKind::Source);
from_error!(pgharbor_conn::ConnError, MigrateErrorKind::Connect);
from_error!(pgharbor_pgwriter::WriteError, MigrateErrorKind::Write);
from_error!(pgharbor_verify::VerifyError, MigrateErrorKind::Verify);

/// Map a PostgreSQL error met while `doing` something into a [`MigrateError`].
pub(crate) fn pg_error(
    doing: impl fmt::Display,
) -> impl FnOnce(tokio_postgres::Error) -> MigrateError {
    move |e| pgharbor_pgwriter::WriteError::from_pg(e, doing).into()
}

/// Wait for every worker of `set`; the first error (or crash, reported as
/// `kind` naming the `workers`) wins.
pub(crate) async fn join_workers(
    mut set: tokio::task::JoinSet<Result<(), MigrateError>>,
    kind: MigrateErrorKind,
    workers: &str,
) -> Result<(), MigrateError> {
    while let Some(joined) = set.join_next().await {
        joined
            .map_err(|e| MigrateError::new(kind, format!("a {workers} worker crashed: {e}")))??;
    }
    Ok(())
}
