//! The error of a source: what was being done, the lower layer's error
//! that caused it as its [`source`](std::error::Error::source), and a kind.

use std::error::Error;
use std::fmt;

/// A lower layer's error (SQLite, a Chroma store, the sink's own error).
type Cause = Box<dyn Error + Send + Sync>;

/// Kinds of source failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceErrorKind {
    /// The source could not be read (opened, planned, split or streamed).
    Read,
    /// The [`RowSink`](crate::RowSink) stopped the read with its own error
    /// (the cause), which the source passed back unchanged.
    Sink,
}

/// An error of a source.
///
/// Its message is what was being done; the error that caused it is its
/// source, never copied into the message. Without a message of its own it
/// is transparent: it displays as its cause, whose source is its source.
#[derive(Debug)]
pub struct SourceError {
    kind: SourceErrorKind,
    message: String,
    cause: Option<Cause>,
}

impl SourceError {
    /// A new error with a message of its own.
    pub fn new(kind: SourceErrorKind, message: impl Into<String>) -> Self {
        SourceError {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    /// The source could not be read because of `cause` (transparent: shown
    /// as `cause`).
    pub fn read(cause: impl Error + Send + Sync + 'static) -> Self {
        SourceError {
            kind: SourceErrorKind::Read,
            message: String::new(),
            cause: Some(Box::new(cause)),
        }
    }

    /// The sink's own error, to pass back through the reader unchanged
    /// (get it back with [`SourceError::into_cause`]).
    pub fn from_sink(cause: impl Error + Send + Sync + 'static) -> Self {
        SourceError {
            kind: SourceErrorKind::Sink,
            message: String::new(),
            cause: Some(Box::new(cause)),
        }
    }

    /// The same error with `cause` as its source.
    pub fn caused_by(mut self, cause: impl Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// The kind.
    pub fn kind(&self) -> SourceErrorKind {
        self.kind
    }

    /// The error's own message (empty for a transparent one).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The cause.
    pub fn cause(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.cause.as_deref()
    }

    /// The cause, taken out (the sink's error, for a [`SourceErrorKind::Sink`] one).
    pub fn into_cause(self) -> Option<Cause> {
        self.cause
    }

    fn is_transparent(&self) -> bool {
        self.message.is_empty() && self.cause.is_some()
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(cause) if self.message.is_empty() => fmt::Display::fmt(cause, f),
            _ => f.write_str(&self.message),
        }
    }
}

impl Error for SourceError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        let cause = self.cause.as_deref()?;
        if self.is_transparent() {
            return cause.source();
        }
        Some(cause as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied")
    }

    #[test]
    fn context_is_the_message_and_the_cause_is_the_source() {
        let err = SourceError::new(SourceErrorKind::Read, "reading table \"t\"").caused_by(io());
        assert_eq!(err.to_string(), "reading table \"t\"");
        assert_eq!(err.source().unwrap().to_string(), "permission denied");
        assert_eq!(err.kind(), SourceErrorKind::Read);
    }

    #[test]
    fn without_context_it_shows_as_its_cause() {
        let err = SourceError::read(io());
        assert_eq!(err.to_string(), "permission denied");
        assert!(err.source().is_none(), "the cause is not said twice");
    }

    #[test]
    fn the_sinks_error_comes_back_unchanged() {
        let err = SourceError::from_sink(io());
        assert_eq!(err.kind(), SourceErrorKind::Sink);
        let back = err
            .into_cause()
            .unwrap()
            .downcast::<std::io::Error>()
            .unwrap();
        assert_eq!(back.kind(), std::io::ErrorKind::PermissionDenied);
    }
}
