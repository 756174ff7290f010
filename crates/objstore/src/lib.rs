//! Backup destinations: where `pgharbor backup --to DEST` writes, and where
//! `backups list|verify|prune` and `restore` read.
//!
//! A [`Destination`] is parsed from DEST — a local directory, `file:///path`,
//! `s3://bucket/prefix` (AWS or any S3-compatible endpoint) or
//! `az://container/prefix` (Azure Blob, or Azurite) — with
//! [`DestinationOptions`] (endpoints, path-style addressing, region and
//! credentials, usually [`DestinationOptions::from_env`]). Its operations
//! take object names relative to the prefix (`2026-01-01T020000Z/app.dump`):
//!
//! * [`Destination::put_stream`] uploads with bounded memory (multipart on
//!   S3, staged blocks on Azure) and returns the size and SHA-256 computed
//!   while uploading; [`Destination::put_bytes`] writes a small object such
//!   as a manifest. Both are atomic: readers see the whole object or none.
//!   On a local directory that is a temporary file, `fsync`, `rename` and an
//!   `fsync` of the directory.
//! * [`Destination::get_stream`] / [`Destination::get_bytes`],
//!   [`Destination::list`], [`Destination::exists`], [`Destination::delete`]
//!   and [`Destination::delete_prefix`].
//!
//! ```no_run
//! use pgharbor_objstore::{Destination, DestinationOptions};
//!
//! # async fn demo() -> pgharbor_objstore::Result<()> {
//! // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, …
//! let mut options = DestinationOptions::from_env();
//! options.s3_endpoint = Some("http://127.0.0.1:9000".into()); // --s3-endpoint
//! let dest = Destination::parse("s3://backups/pg", &options)?;
//!
//! let dump = tokio::fs::File::open("app.dump").await.expect("open");
//! let written = dest.put_stream("2026-01-01T020000Z/app.dump", dump).await?;
//! println!("{} bytes, sha256 {}", written.size, written.sha256);
//! dest.put_bytes("2026-01-01T020000Z/manifest.json", r#"{"state":"complete"}"#).await?;
//! for object in dest.list("2026-01-01T020000Z").await? {
//!     println!("{} {}", object.name, object.size);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Errors ([`ObjstoreError`]) name the destination, the object and what to
//! do, with a kind to match on: wrong credentials, a missing bucket or
//! container, no space left on the device, permission denied, …
//! Credentials never appear in `Display`, `Debug` or errors.
//!
//! S3 and Azure Blob go through the `object_store` crate over rustls with
//! the `ring` provider (see the `cloud` module); local directories use
//! `tokio::fs` directly, for the `fsync`s and clear `ENOSPC` errors.

mod azure;
mod cloud;
mod error;
mod local;
mod location;
mod object;
mod options;

use std::fmt;

use bytes::Bytes;
use tokio::io::AsyncRead;

pub use cloud::PARTS_IN_FLIGHT;
pub use error::{keeps_cause_apart, ObjstoreError, ObjstoreErrorKind, Result};
pub use object::{ObjectInfo, ObjectStream, Written};
pub use options::{
    AzureCredentials, DestinationOptions, S3Credentials, DEFAULT_PART_SIZE, MIN_PART_SIZE,
};

use cloud::{Cloud, Service};
use local::Local;
pub use local::{DIR_MODE, FILE_MODE};
use location::{valid_name, valid_prefix, Location};

/// What kind of storage a [`Destination`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationKind {
    /// A local directory (a path or `file://`).
    Local,
    /// An S3 bucket (AWS or S3-compatible).
    S3,
    /// An Azure Blob container.
    Azure,
}

/// A place backups are written to and read from.
///
/// Displays as its canonical form: the absolute directory, `s3://bucket/prefix`
/// or `az://container/prefix`; never with credentials.
#[derive(Debug)]
pub struct Destination {
    location: Location,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Local(Local),
    Cloud(Cloud),
}

impl Destination {
    /// Parses DEST and prepares a client; nothing is contacted yet.
    ///
    /// DEST is a directory (relative paths are made absolute),
    /// `file:///abs/path`, `s3://bucket[/prefix]` or `az://container[/prefix]`.
    /// Credentials in the URL (`s3://key:secret@…`) are refused: they come
    /// from `options`.
    pub fn parse(dest: &str, options: &DestinationOptions) -> Result<Destination> {
        let location = Location::parse(dest)?;
        let display = location.to_string();
        let backend = match &location {
            Location::Local(root) => Backend::Local(Local::new(root.clone())),
            Location::S3 { bucket, prefix } => {
                Backend::Cloud(Cloud::open(Service::S3, display, bucket, prefix, options)?)
            }
            Location::Azure { container, prefix } => Backend::Cloud(Cloud::open(
                Service::Azure,
                display,
                container,
                prefix,
                options,
            )?),
        };
        Ok(Destination { location, backend })
    }

    /// What kind of storage this is.
    pub fn kind(&self) -> DestinationKind {
        match self.location {
            Location::Local(_) => DestinationKind::Local,
            Location::S3 { .. } => DestinationKind::S3,
            Location::Azure { .. } => DestinationKind::Azure,
        }
    }

    /// Uploads everything `reader` yields as `name`, with bounded memory,
    /// and returns its size and SHA-256. The object appears only once the
    /// upload is complete; a failed upload leaves nothing under `name` (and
    /// an earlier object of that name untouched).
    pub async fn put_stream<R>(&self, name: &str, reader: R) -> Result<Written>
    where
        R: AsyncRead + Unpin + Send,
    {
        valid_name(&self.location, name)?;
        match &self.backend {
            Backend::Local(l) => l.put(name, reader).await,
            Backend::Cloud(c) => c.put_stream(name, reader).await,
        }
    }

    /// Writes a small object (a manifest) atomically in one request; returns
    /// its size and SHA-256.
    pub async fn put_bytes(&self, name: &str, data: impl Into<Bytes>) -> Result<Written> {
        valid_name(&self.location, name)?;
        let data = data.into();
        match &self.backend {
            Backend::Local(l) => l.put(name, data.as_ref()).await,
            Backend::Cloud(c) => c.put_bytes(name, data).await,
        }
    }

    /// Starts downloading `name`. An [`ObjstoreErrorKind::NotFound`] error
    /// when it does not exist.
    pub async fn get_stream(&self, name: &str) -> Result<ObjectStream> {
        valid_name(&self.location, name)?;
        match &self.backend {
            Backend::Local(l) => l.get(name).await,
            Backend::Cloud(c) => c.get(name).await,
        }
    }

    /// Reads all of `name` into memory (for small objects).
    pub async fn get_bytes(&self, name: &str) -> Result<Bytes> {
        self.get_stream(name).await?.collect().await
    }

    /// Every object under `prefix` (a directory-like prefix: `a/b` lists
    /// `a/b/…`; empty lists everything), sorted by name.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let prefix = valid_prefix(&self.location, prefix)?;
        match &self.backend {
            Backend::Local(l) => l.list(prefix).await,
            Backend::Cloud(c) => c.list(prefix).await,
        }
    }

    /// Whether `name` exists.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.stat(name).await?.is_some())
    }

    /// Size and time of `name`, `None` when it does not exist.
    pub async fn stat(&self, name: &str) -> Result<Option<ObjectInfo>> {
        valid_name(&self.location, name)?;
        match &self.backend {
            Backend::Local(l) => l.head(name).await,
            Backend::Cloud(c) => c.head(name).await,
        }
    }

    /// Deletes `name`; deleting a missing object is not an error.
    pub async fn delete(&self, name: &str) -> Result<()> {
        valid_name(&self.location, name)?;
        match &self.backend {
            Backend::Local(l) => l.delete(name).await,
            Backend::Cloud(c) => c.delete(name).await,
        }
    }

    /// Deletes every object under `prefix` (as [`Destination::list`] finds
    /// them); returns how many there were. On a local directory, leftovers
    /// of interrupted writes under the prefix go too.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let prefix = valid_prefix(&self.location, prefix)?;
        match &self.backend {
            Backend::Local(l) => l.delete_prefix(prefix).await,
            Backend::Cloud(c) => c.delete_prefix(prefix).await,
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.location.fmt(f)
    }
}
