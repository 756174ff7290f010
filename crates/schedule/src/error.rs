//! [`ScheduleError`]: what was wrong, named in one line.

use std::fmt;

/// The category of a [`ScheduleError`]; match on it to decide what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScheduleErrorKind {
    /// A cron expression is malformed; the message names the field.
    InvalidSchedule,
    /// A time zone name is not a known IANA name.
    InvalidTimeZone,
    /// Another option is malformed (a webhook URL, a CronJob field).
    InvalidInput,
    /// The schedule has no time left to run at.
    Exhausted,
    /// A socket could not be bound or served.
    Io,
    /// A webhook could not be delivered after every try.
    Notify,
}

/// An error from parsing a schedule, building a webhook or CronJob, or
/// running jobs.
///
/// It displays as one line, context first, and never contains a webhook
/// URL's credentials, path or query: webhooks are only ever shown masked.
#[derive(thiserror::Error)]
#[error("{message}")]
pub struct ScheduleError {
    kind: ScheduleErrorKind,
    message: String,
}

impl ScheduleError {
    /// A new error of `kind`.
    pub fn new(kind: ScheduleErrorKind, message: impl Into<String>) -> Self {
        ScheduleError {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ScheduleErrorKind {
        self.kind
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` put in front (`context: message`).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// An [`ScheduleErrorKind::InvalidInput`] error.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ScheduleError::new(ScheduleErrorKind::InvalidInput, message)
    }
}

impl fmt::Debug for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScheduleError({:?}: {})", self.kind, self.message)
    }
}

/// Result alias for this crate.
pub type Result<T, E = ScheduleError> = std::result::Result<T, E>;
