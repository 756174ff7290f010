//! What operations return: [`Written`], [`ObjectInfo`], [`ObjectStream`];
//! and the SHA-256 computed while data goes by.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{ObjstoreError, ObjstoreErrorKind, Result};

/// What an upload stored: its size and SHA-256, computed from the bytes as
/// they were sent (no second pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Bytes stored.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The name relative to the destination's prefix (`a/b.dump`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// When the object was last written.
    pub last_modified: SystemTime,
}

/// A download: a [`Stream`] of [`Bytes`] chunks, or an [`AsyncRead`]
/// through [`ObjectStream::into_reader`]. Memory stays bounded whatever the
/// object's size.
pub struct ObjectStream {
    size: u64,
    inner: BoxStream<'static, Result<Bytes>>,
}

impl ObjectStream {
    pub(crate) fn new(size: u64, inner: BoxStream<'static, Result<Bytes>>) -> Self {
        ObjectStream { size, inner }
    }

    /// The object's size in bytes, as the destination reported it when the
    /// download started.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The download as an [`AsyncRead`]; failures surface as
    /// [`std::io::Error`]s wrapping the [`ObjstoreError`].
    pub fn into_reader(self) -> impl AsyncRead + Send + Unpin + 'static {
        tokio_util::io::StreamReader::new(self.inner.map_err(std::io::Error::other))
    }

    /// Reads the whole object into memory (for small objects).
    pub async fn collect(mut self) -> Result<Bytes> {
        let mut out = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        while let Some(chunk) = self.inner.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }
}

impl std::fmt::Debug for ObjectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStream")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Stream for ObjectStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// SHA-256 and byte count of everything passed through [`Checksum::update`].
#[derive(Default)]
pub(crate) struct Checksum {
    hasher: Sha256,
    size: u64,
}

impl Checksum {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.size += data.len() as u64;
    }

    pub(crate) fn finish(self) -> Written {
        let digest = self.hasher.finalize();
        let sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
        Written {
            size: self.size,
            sha256,
        }
    }
}

/// Reads from `reader` until `buf` holds `limit` bytes or the input ends,
/// adding what was read to `sum`. An error is about the data source, not
/// the destination, and says so.
pub(crate) async fn fill<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
    sum: &mut Checksum,
    dest: &str,
    name: &str,
) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(limit);
    while buf.len() < limit {
        let start = buf.len();
        let mut take = (&mut *reader).take((limit - start) as u64);
        match take.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(_) => sum.update(&buf[start..]),
            Err(e) => return Err(source_error(dest, name, &e)),
        }
    }
    Ok(buf)
}

/// The data being uploaded could not be read (a dump process failed, …).
pub(crate) fn source_error(dest: &str, name: &str, e: &std::io::Error) -> ObjstoreError {
    ObjstoreError::new(
        ObjstoreErrorKind::Other,
        format!(
            "backup destination {dest}: writing '{name}': reading the data to upload failed: {e}; \
             nothing was stored under '{name}'"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checksum_of_known_input() {
        let mut sum = Checksum::default();
        let mut input: &[u8] = b"abc";
        let buf = fill(&mut input, 1024, &mut sum, "d", "n").await.unwrap();
        assert_eq!(buf, b"abc");
        let w = sum.finish();
        assert_eq!(w.size, 3);
        assert_eq!(
            w.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn fill_stops_at_the_limit() {
        let mut sum = Checksum::default();
        let mut input: &[u8] = &[7u8; 10];
        assert_eq!(
            fill(&mut input, 4, &mut sum, "d", "n").await.unwrap().len(),
            4
        );
        assert_eq!(
            fill(&mut input, 4, &mut sum, "d", "n").await.unwrap().len(),
            4
        );
        assert_eq!(
            fill(&mut input, 4, &mut sum, "d", "n").await.unwrap().len(),
            2
        );
        assert!(fill(&mut input, 4, &mut sum, "d", "n")
            .await
            .unwrap()
            .is_empty());
        assert_eq!(sum.finish().size, 10);
    }
}
