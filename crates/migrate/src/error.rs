//! The pipeline's error type.

use std::fmt;

/// Kinds of failure, used by the CLI for exit codes and by tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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

/// The error of a lower layer (SQLite, Chroma, connection, writer,
/// verification) that a pipeline error wraps.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// An error of the pipeline.
///
/// Its message is what was being done (and, for an error of the pipeline's
/// own, what went wrong); the lower layer's error that caused it is its
/// [`source`](std::error::Error::source), never copied into the message.
/// A wrapped error with no context of its own is transparent: it displays
/// as its cause, whose source is its source. Sentences on what was done
/// after the failure ([`MigrateError::also`]) come after the whole chain:
/// [`explain`] puts it together, once.
#[derive(Debug)]
pub struct MigrateError {
    kind: MigrateErrorKind,
    /// What was being done, outermost first, then the error's own text.
    message: String,
    cause: Option<Cause>,
    /// What was done after the failure, in order.
    afterwards: Vec<String>,
}

impl MigrateError {
    /// A new error.
    pub fn new(kind: MigrateErrorKind, message: impl Into<String>) -> Self {
        MigrateError {
            kind,
            message: message.into(),
            cause: None,
            afterwards: Vec::new(),
        }
    }

    /// The same error with `cause` as its source.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// The kind.
    pub fn kind(&self) -> MigrateErrorKind {
        self.kind
    }

    /// Change the kind (e.g. a PostgreSQL error met on the source side).
    pub fn set_kind(&mut self, kind: MigrateErrorKind) {
        self.kind = kind;
    }

    /// The finer kind of a write to the target that failed (disk full,
    /// permission denied, connection lost, …), when that is the cause.
    pub fn write_kind(&self) -> Option<pgharbor_pgwriter::WriteErrorKind> {
        self.cause
            .as_deref()
            .and_then(|c| c.downcast_ref::<pgharbor_pgwriter::WriteError>())
            .map(pgharbor_pgwriter::WriteError::kind)
    }

    /// Add a sentence on what was done after the failure (kind and cause kept).
    pub fn also(mut self, sentence: impl fmt::Display) -> Self {
        self.afterwards.push(sentence.to_string());
        self
    }

    /// Prefix the message with what was being done.
    pub fn context(mut self, doing: impl fmt::Display) -> Self {
        self.message = if self.message.is_empty() {
            doing.to_string()
        } else {
            format!("{doing}: {}", self.message)
        };
        self
    }

    /// The sentences [`MigrateError::also`] added, in order.
    pub fn afterwards(&self) -> &[String] {
        &self.afterwards
    }

    /// Wrapping a cause with no context of its own: shown as the cause.
    fn is_transparent(&self) -> bool {
        self.message.is_empty() && self.cause.is_some()
    }
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(cause) if self.message.is_empty() => fmt::Display::fmt(cause, f),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for MigrateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let cause = self.cause.as_deref()?;
        if self.is_transparent() {
            return cause.source();
        }
        Some(cause as &(dyn std::error::Error + 'static))
    }
}

/// `error` and its causes, each said once, then what was done after the
/// failure: the text the CLI prints. The chain is followed through the
/// errors that keep their cause apart, as their source (the pipeline's and
/// its lower layers': see [`keeps_cause_apart`]); the first other error
/// explains itself whole (a driver's error, an I/O error, the server's
/// message with advice), so the walk ends with it. A cause whose text is
/// already there is not repeated.
pub fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    explain_following(error, &|_| false)
}

/// [`explain`], also following the chain through the errors `also_apart`
/// accepts (other crates' errors that keep their cause as their source).
pub fn explain_following(
    error: &(dyn std::error::Error + 'static),
    also_apart: &dyn Fn(&(dyn std::error::Error + 'static)) -> bool,
) -> String {
    let mut afterwards = Vec::new();
    let mut text = pgharbor_conn::chain_text_while(error, |current| {
        if let Some(layer) = current.downcast_ref::<MigrateError>() {
            afterwards.extend(layer.afterwards.iter().cloned());
        }
        let shown = shown_as(current);
        keeps_cause_apart(shown) || also_apart(shown)
    });
    for sentence in afterwards {
        text = format!("{text}. {sentence}");
    }
    text
}

/// The error whose text `error` shows: the cause of a wrapper with no
/// context of its own (whose source is then its cause's source).
fn shown_as<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> &'a (dyn std::error::Error + 'static) {
    if let Some(own) = error.downcast_ref::<MigrateError>() {
        if let (true, Some(cause)) = (own.is_transparent(), own.cause.as_deref()) {
            return shown_as(cause);
        }
    }
    if let Some(source) = error.downcast_ref::<pgharbor_source::SourceError>() {
        if let (true, Some(cause)) = (source.message().is_empty(), source.cause()) {
            return shown_as(cause);
        }
    }
    error
}

/// Whether `error` is one of the pipeline's errors (or its lower layers')
/// that say only their own context and keep their cause as their source.
pub fn keeps_cause_apart(error: &(dyn std::error::Error + 'static)) -> bool {
    error.is::<MigrateError>()
        || error.is::<pgharbor_source::SourceError>()
        || error.is::<pgharbor_pgwriter::WriteError>()
        || error.is::<pgharbor_sqlite::SqliteError>()
        || error.is::<pgharbor_chroma::ChromaError>()
        || error.is::<pgharbor_verify::VerifyError>()
        || pgharbor_conn::keeps_cause_apart(error)
}

impl MigrateError {
    /// `cause` with no context of its own (shown as the cause).
    fn wrapping(kind: MigrateErrorKind, cause: Cause) -> Self {
        MigrateError {
            kind,
            message: String::new(),
            cause: Some(cause),
            afterwards: Vec::new(),
        }
    }
}

macro_rules! from_error {
    ($ty:ty, $kind:expr) => {
        impl From<$ty> for MigrateError {
            fn from(err: $ty) -> Self {
                MigrateError::wrapping($kind, Box::new(err))
            }
        }
    };
}

from_error!(pgharbor_sqlite::SqliteError, MigrateErrorKind::Source);

impl From<pgharbor_source::SourceError> for MigrateError {
    /// A source's error, kind `Source`; the sink's own error that a reader
    /// passed back ([`pgharbor_source::SourceErrorKind::Sink`]) is that
    /// error again, its kind kept.
    fn from(err: pgharbor_source::SourceError) -> Self {
        if err.kind() == pgharbor_source::SourceErrorKind::Sink {
            match err
                .into_cause()
                .map(|cause| cause.downcast::<MigrateError>())
            {
                Some(Ok(own)) => return *own,
                Some(Err(other)) => return MigrateError::wrapping(MigrateErrorKind::Source, other),
                None => return MigrateError::new(MigrateErrorKind::Source, "the read stopped"),
            }
        }
        MigrateError::wrapping(MigrateErrorKind::Source, Box::new(err))
    }
}

impl From<MigrateError> for pgharbor_source::SourceError {
    /// The pipeline's error raised inside a [`crate::load::RowSink`] (or a
    /// reader of this crate's), passed back through the source unchanged.
    fn from(err: MigrateError) -> Self {
        pgharbor_source::SourceError::from_sink(err)
    }
}
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

#[cfg(test)]
mod tests {
    use super::*;
    use pgharbor_pgwriter::{WriteError, WriteErrorKind};
    use std::error::Error as _;

    fn disk_full() -> WriteError {
        WriteError::new(
            WriteErrorKind::DiskFull,
            "loading table \"payload\": could not extend file — free space on the target server (or grow its volume) and run again",
        )
    }

    #[test]
    fn a_wrapped_cause_is_its_source_and_said_once_after_the_context() {
        let err = MigrateError::from(disk_full()).context("copying into database app");
        assert_eq!(err.to_string(), "copying into database app");
        let source = err.source().expect("the cause is the source");
        assert!(source.downcast_ref::<WriteError>().is_some());
        let text = explain(&err);
        assert_eq!(
            text,
            format!("copying into database app: {}", disk_full()),
            "context, then the cause, once"
        );
        assert_eq!(text.matches("free space on the target").count(), 1);
    }

    #[test]
    fn a_sinks_error_comes_back_through_a_source_with_its_kind() {
        let text = "table \"t\", row id=1, column \"c\": too long";
        let own = MigrateError::new(MigrateErrorKind::Conversion, text);
        let back = MigrateError::from(pgharbor_source::SourceError::from(own));
        assert_eq!(back.kind(), MigrateErrorKind::Conversion);
        assert_eq!(back.to_string(), text);
    }

    #[test]
    fn a_source_error_has_the_source_kind_and_each_cause_is_said_once() {
        let io = std::io::Error::other("disk I/O error");
        let err = MigrateError::from(pgharbor_source::SourceError::read(io))
            .context("reading table \"t\"");
        assert_eq!(err.kind(), MigrateErrorKind::Source);
        assert_eq!(err.to_string(), "reading table \"t\"");
        assert_eq!(explain(&err), "reading table \"t\": disk I/O error");
        let bare = MigrateError::from(pgharbor_source::SourceError::read(std::io::Error::other(
            "disk I/O error",
        )));
        assert_eq!(explain(&bare), "disk I/O error");
    }

    #[test]
    fn a_verification_error_says_its_table_then_what_was_wrong_once() {
        let reason = pgharbor_copy_binary::Row::parse(&[0, 5]).unwrap_err();
        let err = MigrateError::from(pgharbor_verify::VerifyError::Malformed {
            table: "\"t\"".into(),
            reason: reason.clone(),
        });
        assert_eq!(
            err.to_string(),
            "verifying table \"t\": malformed COPY data from the target"
        );
        assert_eq!(
            explain(&err),
            format!("verifying table \"t\": malformed COPY data from the target: {reason}")
        );
    }

    #[test]
    fn without_context_the_error_shows_as_its_cause() {
        let err = MigrateError::from(disk_full());
        assert_eq!(err.to_string(), disk_full().to_string());
        assert_eq!(explain(&err), disk_full().to_string());
        assert_eq!(err.kind(), MigrateErrorKind::Write);
    }

    #[test]
    fn the_disk_full_kind_of_the_cause_stays_visible() {
        let err = MigrateError::from(disk_full()).context("loading");
        assert_eq!(err.write_kind(), Some(WriteErrorKind::DiskFull));
        assert_eq!(
            MigrateError::new(MigrateErrorKind::Usage, "bad").write_kind(),
            None
        );
    }

    #[test]
    fn what_was_done_afterwards_comes_after_the_whole_chain() {
        let err = MigrateError::from(disk_full())
            .also("Nothing was kept")
            .context("copying into database app")
            .also("The same command can be run again");
        assert_eq!(
            explain(&err),
            format!(
                "copying into database app: {}. Nothing was kept. The same command can be run again",
                disk_full()
            )
        );
        let own = MigrateError::new(MigrateErrorKind::Conversion, "table \"t\": value too long")
            .also("The tables were restored");
        assert_eq!(
            explain(&own),
            "table \"t\": value too long. The tables were restored"
        );
    }
}
