//! Errors whose message is their own context and whose cause is their
//! source: [`Explained`], a lower layer's error worded for the user, and
//! [`chain_text`], an error and its causes as one line, each said once (the
//! text reports keep; the CLI prints the same through
//! `crates/cli/src/render/error.rs`).

use std::error::Error as StdError;
use std::fmt;

/// A lower layer's error (the server, the file system, a client library) as
/// the user reads it: what it said, worded, and what to do about it. The
/// lower layer's own error, when it may be kept, is its source.
///
/// It ends a chain: its text explains it whole, so [`chain_text`] and the
/// CLI do not follow it to its source.
pub struct Explained {
    text: String,
    error: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl Explained {
    /// `text`, worded from `error`, which becomes the source.
    pub fn new(text: impl Into<String>, error: impl StdError + Send + Sync + 'static) -> Self {
        Explained {
            text: text.into(),
            error: Some(Box::new(error)),
        }
    }

    /// The same text with `error` as the source.
    pub fn with_error(self, error: impl StdError + Send + Sync + 'static) -> Self {
        Explained {
            text: self.text,
            error: Some(Box::new(error)),
        }
    }

    /// `text` alone: the lower layer's error is not kept (it may hold a
    /// secret, as a cloud client's error may name a signed URL).
    pub fn text_only(text: impl Into<String>) -> Self {
        Explained {
            text: text.into(),
            error: None,
        }
    }
}

impl fmt::Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Explained").field(&self.text).finish()
    }
}

impl StdError for Explained {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.error
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// Whether `error` is one of this crate's errors that says only its own
/// context and keeps its cause apart, as its source.
pub fn keeps_cause_apart(error: &(dyn StdError + 'static)) -> bool {
    error
        .downcast_ref::<crate::ConnError>()
        .is_some_and(crate::ConnError::keeps_cause_apart)
}

/// [`chain_text`] for this crate's errors: a [`crate::ConnError`] and its
/// cause, as one line.
pub fn conn_text(error: &crate::ConnError) -> String {
    chain_text(error, &keeps_cause_apart)
}

/// `error`, then each of its causes not already said, joined with `: `.
///
/// The chain is followed while the current error is one that
/// `keeps_cause_apart` accepts (its message is its context, its source the
/// cause); the first other error explains itself whole, so the walk ends
/// with it.
pub fn chain_text(
    error: &(dyn StdError + 'static),
    keeps_cause_apart: &dyn Fn(&(dyn StdError + 'static)) -> bool,
) -> String {
    chain_text_while(error, keeps_cause_apart)
}

/// [`chain_text`] with a `follow` that may also look at each error it is
/// asked about (every error of the chain said, in order, the last
/// included): `follow(current)` decides whether the walk goes on to
/// `current`'s source.
pub fn chain_text_while(
    error: &(dyn StdError + 'static),
    mut follow: impl FnMut(&(dyn StdError + 'static)) -> bool,
) -> String {
    let mut text = error.to_string();
    let mut current = error;
    while follow(current) {
        let Some(next) = current.source() else {
            break;
        };
        let said = next.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        current = next;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context-only error for the tests.
    #[derive(Debug)]
    struct Doing(&'static str, Explained);

    impl fmt::Display for Doing {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Doing {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn each_cause_is_said_once_and_the_explained_error_ends_the_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let err = Doing(
            "writing 'a'",
            Explained::new("disk full; free some space", io),
        );
        let is_doing = |e: &(dyn StdError + 'static)| e.is::<Doing>();
        assert_eq!(
            chain_text(&err, &is_doing),
            "writing 'a': disk full; free some space"
        );
        let cause = err.source().unwrap();
        let io = cause.source().unwrap().downcast_ref::<std::io::Error>();
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::StorageFull)
        );
        assert_eq!(chain_text(&err, &|_| false), "writing 'a'");
    }

    #[test]
    fn text_only_keeps_no_source() {
        let e = Explained::text_only("access denied");
        assert!(e.source().is_none());
        assert_eq!(format!("{e:?}"), "Explained(\"access denied\")");
    }
}
