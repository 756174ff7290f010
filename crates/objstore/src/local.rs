//! A local directory as a destination.
//!
//! Every write goes to a hidden temporary file beside its target
//! (`.NAME.pgharbor-tmp.PID.N`), is fsynced, renamed over the target and the
//! directory fsynced: a reader sees the old object or the whole new one,
//! never a part, even after a crash. Listings skip the temporary files of
//! writes in progress, and show those of writers that are gone.
//!
//! Backups hold every row of a database: files are created `0600` and the
//! directories pgharbor creates `0700`, whatever the umask, from the moment
//! they exist ([`FILE_MODE`], [`DIR_MODE`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWriteExt};

use crate::error::{op_error, ObjstoreErrorKind as Kind, Op, Result};
use crate::object::{fill, Checksum, ObjectInfo, ObjectStream, Written};
use crate::ObjstoreError;

/// Marks temporary files; listings skip names containing it.
const TMP_MARKER: &str = ".pgharbor-tmp.";
/// Read and write buffer size.
const CHUNK: usize = 1024 * 1024;
/// The mode of every file written: the owner alone reads and writes it.
pub const FILE_MODE: u32 = 0o600;
/// The mode of every directory created: the owner alone enters it.
pub const DIR_MODE: u32 = 0o700;

/// A local directory.
#[derive(Debug)]
pub(crate) struct Local {
    root: PathBuf,
}

impl Local {
    pub(crate) fn new(root: PathBuf) -> Local {
        Local { root }
    }

    fn dest(&self) -> String {
        self.root.display().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Streams `reader` into `name` atomically.
    pub(crate) async fn put<R: AsyncRead + Unpin>(
        &self,
        name: &str,
        mut reader: R,
    ) -> Result<Written> {
        let target = self.path(name);
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        let op = Op::Write(name);
        let new_dirs = !tokio::fs::try_exists(&dir).await.unwrap_or(false);
        tokio::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&dir)
            .await
            .map_err(|e| self.io_error(op, &dir, e))?;
        let tmp = temp_path(&target);
        let result = self.write_temp(&tmp, name, &mut reader).await;
        let written = match result {
            Ok(w) => w,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        if let Err(e) = tokio::fs::rename(&tmp, &target).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(self.io_error(op, &target, e));
        }
        // The rename, and any directory created for it, survive a crash.
        let top = self.root.parent().unwrap_or(&self.root);
        let created = dir
            .ancestors()
            .skip(1)
            .take_while(|d| new_dirs && d.starts_with(top));
        for d in std::iter::once(dir.as_path()).chain(created) {
            sync_dir(d).await.map_err(|e| self.io_error(op, d, e))?;
        }
        Ok(written)
    }

    async fn write_temp<R: AsyncRead + Unpin>(
        &self,
        tmp: &Path,
        name: &str,
        reader: &mut R,
    ) -> Result<Written> {
        let op = Op::Write(name);
        let dest = self.dest();
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(tmp)
            .await
            .map_err(|e| self.io_error(op, tmp, e))?;
        let mut sum = Checksum::default();
        loop {
            let chunk = fill(reader, CHUNK, &mut sum, &dest, name).await?;
            if chunk.is_empty() {
                break;
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| self.io_error(op, tmp, e))?;
        }
        // ENOSPC may only show up when the data is flushed.
        file.sync_all()
            .await
            .map_err(|e| self.io_error(op, tmp, e))?;
        Ok(sum.finish())
    }

    pub(crate) async fn get(&self, name: &str) -> Result<ObjectStream> {
        let path = self.path(name);
        let op = Op::Read(name);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) => return Err(self.missing_or(op, &path, e).await),
        };
        let meta = file
            .metadata()
            .await
            .map_err(|e| self.io_error(op, &path, e))?;
        if meta.is_dir() {
            return Err(op_error(
                Kind::NotFound,
                &self.dest(),
                op,
                &format!("{} is a directory, not an object", path.display()),
                "list the destination to see the objects it holds",
            ));
        }
        let (dest, owned) = (self.dest(), name.to_owned());
        let stream = tokio_util::io::ReaderStream::with_capacity(file, CHUNK)
            .map(move |r| r.map_err(|e| io_error(&dest, Op::Read(&owned), &path, e)));
        Ok(ObjectStream::new(meta.len(), stream.boxed()))
    }

    pub(crate) async fn head(&self, name: &str) -> Result<Option<ObjectInfo>> {
        let path = self.path(name);
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(info(name.to_owned(), &meta))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(Op::Stat(name), &path, e)),
        }
    }

    /// Every object under `prefix/` (everything when `prefix` is empty), by name.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let op = Op::List(prefix);
        if let Err(e) = tokio::fs::metadata(&self.root).await {
            return Err(self.missing_or(op, &self.root, e).await);
        }
        let start = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path(prefix)
        };
        let mut out = Vec::new();
        let mut dirs = vec![start];
        while let Some(dir) = dirs.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(self.io_error(op, &dir, e)),
            };
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| self.io_error(op, &dir, e))?
            {
                let path = entry.path();
                let meta = match tokio::fs::metadata(&path).await {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // deleted meanwhile
                    Err(e) => return Err(self.io_error(op, &path, e)),
                };
                if meta.is_dir() {
                    dirs.push(path);
                } else if let Some(name) = self.object_name(&path) {
                    out.push(info(name, &meta));
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The object name of a file under the root: `None` for temporary files
    /// of writes in progress and names that are not valid object names. The
    /// temporary file of a writer that is gone (killed mid-write) is listed
    /// under its own name, so what it belongs to shows as incomplete and can
    /// be deleted.
    fn object_name(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?.to_str()?;
        let file = path.file_name()?.to_str()?;
        if file.contains(TMP_MARKER) {
            return (!writer_alive(file)).then(|| rel.to_owned());
        }
        crate::location::check_name(rel)
            .is_ok()
            .then(|| rel.to_owned())
    }

    pub(crate) async fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_error(Op::Delete(name), &path, e)),
        }
    }

    /// Deletes the directory `prefix` with everything in it (temporary files
    /// of interrupted writes too); returns how many objects it held.
    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        if prefix.is_empty() {
            let objects = self.list("").await?;
            for o in &objects {
                self.delete(&o.name).await?;
            }
            return Ok(objects.len() as u64);
        }
        let count = self.list(prefix).await?.len() as u64;
        let dir = self.path(prefix);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(count),
            Err(e) if is_missing(&e) => Ok(count),
            Err(e) => Err(self.io_error(Op::Delete(prefix), &dir, e)),
        }
    }

    fn io_error(&self, op: Op<'_>, path: &Path, e: io::Error) -> ObjstoreError {
        io_error(&self.dest(), op, path, e)
    }

    /// A `NotFound` error that says whether the directory itself is missing.
    async fn missing_or(&self, op: Op<'_>, path: &Path, e: io::Error) -> ObjstoreError {
        if e.kind() != io::ErrorKind::NotFound {
            return self.io_error(op, path, e);
        }
        if tokio::fs::metadata(&self.root).await.is_err() {
            return op_error(
                Kind::ContainerMissing,
                &self.dest(),
                op,
                &format!("the directory {} does not exist", self.root.display()),
                "check the path, or take a backup to it first",
            );
        }
        op_error(
            Kind::NotFound,
            &self.dest(),
            op,
            &format!("no such object ({} does not exist)", path.display()),
            "list the destination to see the objects it holds",
        )
    }
}

fn info(name: String, meta: &std::fs::Metadata) -> ObjectInfo {
    ObjectInfo {
        name,
        size: meta.len(),
        last_modified: meta.modified().unwrap_or(std::time::UNIX_EPOCH),
    }
}

/// The path, or a directory on it, does not exist (or is a file).
fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// A unique hidden name beside `target`.
/// Whether the process that wrote temporary file `file`
/// (`.NAME.pgharbor-tmp.PID.N`) still runs on this machine.
fn writer_alive(file: &str) -> bool {
    let pid = file
        .rsplit_once(TMP_MARKER)
        .and_then(|(_, rest)| rest.split('.').next())
        .and_then(|pid| pid.parse::<u32>().ok());
    match pid {
        Some(pid) => Path::new(&format!("/proc/{pid}")).exists(),
        None => true,
    }
}

fn temp_path(target: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let file = target
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{file}{TMP_MARKER}{}.{n}", std::process::id()))
}

/// fsync a directory so a rename in it is durable.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

/// Turns an I/O error into one that names the destination, the object, the
/// file and what to do.
fn io_error(dest: &str, op: Op<'_>, path: &Path, e: io::Error) -> ObjstoreError {
    let object = op.object();
    let path = path.display();
    let (kind, cause, hint) = match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::StorageFull, _) | (_, Some(28)) => (
            Kind::NoSpace,
            format!("no space left on device (ENOSPC) writing {path}"),
            format!(
                "free space on that file system or choose another destination; \
                 the partial file was removed and nothing was stored under '{object}'"
            ),
        ),
        (io::ErrorKind::QuotaExceeded, _) | (_, Some(122)) => (
            Kind::NoSpace,
            format!("disk quota exceeded (EDQUOT) writing {path}"),
            "raise the quota or free space; nothing was stored".to_owned(),
        ),
        (io::ErrorKind::PermissionDenied, _) => (
            Kind::PermissionDenied,
            format!("permission denied on {path}"),
            "make the directory writable (and readable) by the user running pgharbor".to_owned(),
        ),
        (io::ErrorKind::ReadOnlyFilesystem, _) => (
            Kind::PermissionDenied,
            format!("{path} is on a read-only file system"),
            "choose a writable destination".to_owned(),
        ),
        (io::ErrorKind::NotFound, _) => (
            Kind::NotFound,
            format!("{path} does not exist"),
            String::new(),
        ),
        _ => (Kind::Other, format!("{e} ({path})"), String::new()),
    };
    op_error(kind, dest, op, &cause, &hint).with_io(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_hidden_and_unique() {
        let a = temp_path(Path::new("/d/x.json"));
        let b = temp_path(Path::new("/d/x.json"));
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".x.json") && name.contains(TMP_MARKER));
    }

    #[test]
    fn enospc_is_named() {
        let e = io::Error::from_raw_os_error(28);
        let err = io_error("/b", Op::Write("m"), Path::new("/b/m"), e);
        assert_eq!(err.kind(), Kind::NoSpace);
        assert_eq!(err.to_string(), "backup destination /b: writing 'm'");
        let text = pgharbor_conn::chain_text(&err, &crate::keeps_cause_apart);
        assert_eq!(
            text.matches("no space left on device (ENOSPC)").count(),
            1,
            "{text}"
        );
        let cause = std::error::Error::source(&err).unwrap();
        let io = cause.source().and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(io.and_then(io::Error::raw_os_error), Some(28));
        let e = io::Error::from_raw_os_error(13);
        let err = io_error("/b", Op::Write("m"), Path::new("/b/m"), e);
        assert_eq!(err.kind(), Kind::PermissionDenied);
    }
}
