//! The error type of the Chroma source: the collection, the file and what
//! was being done, the lower layer's error (SQLite, I/O) as its source.

use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of problem occurred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The path does not exist.
    NotFound,
    /// The path exists but is not a Chroma persistent directory.
    NotChroma,
    /// A file of the store is damaged, truncated or inconsistent.
    Corrupt,
    /// The store uses something this reader does not handle.
    Unsupported,
    /// Chroma changed the store on disk after it was opened.
    Changed,
    /// An error reported by SQLite on `chroma.sqlite3`.
    Sqlite,
    /// A file cannot be read.
    Io,
    /// The caller used the API wrongly (e.g. more readers than reserved).
    Usage,
}

/// An error reading a Chroma store, with the file and the collection it concerns.
#[derive(Debug)]
pub struct ChromaError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    file: Option<PathBuf>,
    collection: Option<(String, String)>,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ChromaError {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ChromaError(Box::new(Inner {
            kind,
            file: None,
            collection: None,
            message: message.into(),
            source: None,
        }))
    }

    /// Wrap a rusqlite error met while doing `context`.
    pub(crate) fn sqlite(err: rusqlite::Error, context: &str) -> Self {
        let kind = match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => ErrorKind::Corrupt,
            Some(rusqlite::ErrorCode::NotADatabase) => ErrorKind::NotChroma,
            _ => ErrorKind::Sqlite,
        };
        let mut e = ChromaError::new(kind, context);
        e.0.source = Some(Box::new(err));
        e
    }

    /// Wrap an I/O error met while doing `context` on `file`.
    pub(crate) fn io(err: std::io::Error, context: &str, file: &Path) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::UnexpectedEof => ErrorKind::Corrupt,
            _ => ErrorKind::Io,
        };
        let mut e = ChromaError::new(kind, context).with_file(file);
        e.0.source = Some(Box::new(err));
        e
    }

    /// The same error with `cause` as its source.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(cause));
        self
    }

    /// Attach the file concerned (kept if one is already attached).
    pub fn with_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.0.file.get_or_insert(file.into());
        self
    }

    /// Attach the collection concerned (kept if one is already attached).
    pub fn with_collection(mut self, name: &str, id: &str) -> Self {
        self.0
            .collection
            .get_or_insert_with(|| (name.to_string(), id.to_string()));
        self
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The file concerned, if known.
    pub fn file(&self) -> Option<&Path> {
        self.0.file.as_deref()
    }

    /// The collection concerned (name, id), if known.
    pub fn collection(&self) -> Option<(&str, &str)> {
        self.0
            .collection
            .as_ref()
            .map(|(n, i)| (n.as_str(), i.as_str()))
    }
}

impl fmt::Display for ChromaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((name, id)) = &self.0.collection {
            write!(f, "collection {name:?} ({id}): ")?;
        }
        if let Some(file) = &self.0.file {
            write!(f, "{}: ", file.display())?;
        }
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for ChromaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|e| e.as_ref() as &(dyn std::error::Error + 'static))
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, ChromaError>;

/// Attach a collection to the error of a result.
pub(crate) trait ResultExt<T> {
    /// Name the collection in the error, if any.
    fn in_collection(self, name: &str, id: &str) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn in_collection(self, name: &str, id: &str) -> Result<T> {
        self.map_err(|e| e.with_collection(name, id))
    }
}
