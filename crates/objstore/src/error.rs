//! [`ObjstoreError`]: which destination and which object, with what went
//! wrong and what to do about it as its source.

use std::fmt;

use pgharbor_conn::Explained;

/// The category of an [`ObjstoreError`]; match on it to decide what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjstoreErrorKind {
    /// The destination string or an option is malformed (unknown scheme,
    /// missing bucket, credentials written into the URL, bad endpoint).
    InvalidDestination,
    /// An object name is not a clean relative path (`..`, empty segments,
    /// a leading `/`).
    InvalidName,
    /// No credentials were given, or the service rejected them (unknown
    /// access key, wrong secret, bad signature, expired token or SAS).
    Credentials,
    /// The credentials are valid but may not do this, or a local file or
    /// directory is not writable (including a read-only file system).
    PermissionDenied,
    /// The bucket, container or local directory itself does not exist.
    ContainerMissing,
    /// The object does not exist.
    NotFound,
    /// The local file system is full (`ENOSPC`) or out of quota (`EDQUOT`).
    NoSpace,
    /// The service could not be reached (connection refused, DNS, timeout).
    Unreachable,
    /// Any other failure reported by the service or the file system.
    Other,
}

/// An error from parsing a destination or from an operation on it.
///
/// Its message names the destination and what was being done with which
/// object; the cause and what to do are its
/// [`source`](std::error::Error::source), an [`Explained`] (whose own
/// source is the file system's error, for a local directory). It never
/// contains an access key secret, an account key, a session token or a SAS
/// token: causes reported by the cloud clients are scrubbed of every secret
/// the destination holds, and their errors are not kept.
#[derive(thiserror::Error)]
#[error("{message}")]
pub struct ObjstoreError {
    kind: ObjstoreErrorKind,
    message: String,
    #[source]
    cause: Option<Explained>,
}

impl ObjstoreError {
    /// A new error of `kind` with a finished message.
    pub(crate) fn new(kind: ObjstoreErrorKind, message: impl Into<String>) -> Self {
        ObjstoreError {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    /// The same error with the file system's error `e` under its cause.
    pub(crate) fn with_io(mut self, e: std::io::Error) -> Self {
        self.cause = self.cause.map(|cause| cause.with_error(e));
        self
    }

    /// An [`ObjstoreErrorKind::InvalidDestination`] error about `dest`.
    pub(crate) fn invalid(dest: &str, problem: impl fmt::Display) -> Self {
        ObjstoreError::new(
            ObjstoreErrorKind::InvalidDestination,
            format!("invalid backup destination '{dest}': {problem}"),
        )
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ObjstoreErrorKind {
        self.kind
    }

    /// The message: the destination and what was being done, without the
    /// cause (the same text as `Display`; `pgharbor_conn::chain_text` gives
    /// the whole line).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The object does not exist (its bucket, container or directory does:
    /// a missing one of those is [`ObjstoreErrorKind::ContainerMissing`]).
    pub fn is_not_found(&self) -> bool {
        self.kind == ObjstoreErrorKind::NotFound
    }
}

impl fmt::Debug for ObjstoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjstoreError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("cause", &self.cause)
            .finish()
    }
}

/// Result alias for this crate.
pub type Result<T, E = ObjstoreError> = std::result::Result<T, E>;

/// What an operation was doing, for the error message: `writing 'a/b'`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op<'a> {
    Write(&'a str),
    Read(&'a str),
    Stat(&'a str),
    List(&'a str),
    Delete(&'a str),
}

impl fmt::Display for Op<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Write(name) => write!(f, "writing '{name}'"),
            Op::Read(name) => write!(f, "reading '{name}'"),
            Op::Stat(name) => write!(f, "looking up '{name}'"),
            Op::List("") => f.write_str("listing objects"),
            Op::List(p) => write!(f, "listing objects under '{p}'"),
            Op::Delete(name) => write!(f, "deleting '{name}'"),
        }
    }
}

impl Op<'_> {
    /// The object name, or prefix, the operation is about.
    pub(crate) fn object(&self) -> &str {
        match self {
            Op::Write(n) | Op::Read(n) | Op::Stat(n) | Op::List(n) | Op::Delete(n) => n,
        }
    }
}

/// The error for `op` on `dest` of `kind`: `backup destination DEST: OP`,
/// caused by `CAUSE; HINT`.
pub(crate) fn op_error(
    kind: ObjstoreErrorKind,
    dest: &str,
    op: Op<'_>,
    cause: &str,
    hint: &str,
) -> ObjstoreError {
    let mut said = cause.to_owned();
    if !hint.is_empty() {
        said.push_str("; ");
        said.push_str(hint);
    }
    let mut error = ObjstoreError::new(kind, format!("backup destination {dest}: {op}"));
    error.cause = Some(Explained::text_only(said));
    error
}

/// Whether `error` is this crate's error, which says only its own context
/// and keeps its cause as its source.
pub fn keeps_cause_apart(error: &(dyn std::error::Error + 'static)) -> bool {
    error.is::<ObjstoreError>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_destination_object_and_hint() {
        let e = op_error(
            ObjstoreErrorKind::NotFound,
            "s3://b/p",
            Op::Read("m.json"),
            "no such object",
            "list the destination to see what it holds",
        );
        assert_eq!(
            e.to_string(),
            "backup destination s3://b/p: reading 'm.json'"
        );
        assert_eq!(
            pgharbor_conn::chain_text(&e, &keeps_cause_apart),
            "backup destination s3://b/p: reading 'm.json': no such object; \
             list the destination to see what it holds"
        );
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(
            cause.as_deref(),
            Some("no such object; list the destination to see what it holds")
        );
        assert!(e.is_not_found());
        assert_eq!(e.kind(), ObjstoreErrorKind::NotFound);
        assert!(format!("{e:?}").contains("NotFound"));
        assert_eq!(Op::List("").to_string(), "listing objects");
        assert_eq!(Op::List("x").object(), "x");
    }
}
