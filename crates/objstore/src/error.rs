//! [`ObjstoreError`]: which destination, which object, what went wrong and
//! what to do about it.

use std::fmt;

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
/// It displays as one line naming the destination and the object, the
/// cause, and what to do. It never contains an access key secret, an
/// account key, a session token or a SAS token: causes reported by the
/// underlying clients are scrubbed of every secret the destination holds
/// before they are put into the message, and no source error is kept.
#[derive(thiserror::Error)]
#[error("{message}")]
pub struct ObjstoreError {
    kind: ObjstoreErrorKind,
    message: String,
}

impl ObjstoreError {
    /// A new error of `kind` with a finished message.
    pub(crate) fn new(kind: ObjstoreErrorKind, message: impl Into<String>) -> Self {
        ObjstoreError {
            kind,
            message: message.into(),
        }
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

    /// The one-line message (the same text as `Display`).
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

/// The error for `op` on `dest` of `kind`: `backup destination DEST: OP: CAUSE; HINT`.
pub(crate) fn op_error(
    kind: ObjstoreErrorKind,
    dest: &str,
    op: Op<'_>,
    cause: &str,
    hint: &str,
) -> ObjstoreError {
    let mut message = format!("backup destination {dest}: {op}: {cause}");
    if !hint.is_empty() {
        message.push_str("; ");
        message.push_str(hint);
    }
    ObjstoreError::new(kind, message)
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
            "backup destination s3://b/p: reading 'm.json': no such object; \
             list the destination to see what it holds"
        );
        assert!(e.is_not_found());
        assert_eq!(e.kind(), ObjstoreErrorKind::NotFound);
        assert!(format!("{e:?}").contains("NotFound"));
        assert_eq!(Op::List("").to_string(), "listing objects");
        assert_eq!(Op::List("x").object(), "x");
    }
}
