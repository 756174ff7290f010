//! Open WebUI's uploaded files (`DATA_DIR/uploads/`), which are not in any
//! database: copied into another directory with their bytes proved.
//!
//! * Every file is streamed through SHA-256 into a new hidden partial file
//!   beside its destination (a short name unique to the process,
//!   `.pgharbor-PID-N.partial`, created exclusively: never an existing
//!   file), flushed to disk, read back and hashed again; only when both
//!   digests agree is it renamed into place (and the directory flushed). A
//!   crash leaves at most that partial file, never a half-written upload.
//! * Source files are opened with `O_NOFOLLOW`, and a directory under the
//!   destination that is a symbolic link is refused: nothing is read or
//!   written through a link.
//! * [`plan_uploads`] does every check (nesting, links, files with other
//!   bytes) without writing, so a run can refuse a bad destination before
//!   it moves anything.
//! * Files are created `0600` and the directories created `0700`, whatever
//!   the umask (uploads are users' private documents; Open WebUI, one user,
//!   only needs to own them). Modification times are kept.
//! * Resumable and idempotent: a file already at the destination with the
//!   same SHA-256 is skipped; one with other bytes is refused, naming it,
//!   before anything is copied, unless `overwrite` replaces it.
//! * Symbolic links and special files are refused, naming them: a link's
//!   target may be outside `uploads/`, and copying it would be a guess.
//!
//! Open WebUI opens an upload by the absolute path stored in its `file`
//! table (`LocalStorageProvider.get_file` returns `file.path` unchanged,
//! e.g. `/app/backend/data/uploads/<id>_<name>`), so the copy must be
//! mounted where those paths point: [`next_steps`] says so, with the
//! directories the database's paths actually name.

use crate::error::{MigrateError, MigrateErrorKind};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of every file written.
const FILE_MODE: u32 = 0o600;
/// The mode of every directory created.
const DIR_MODE: u32 = 0o700;
/// Starts the name of a file being written (`.pgharbor-PID-N.partial`).
const PARTIAL_PREFIX: &str = ".pgharbor-";
/// Read buffer.
const CHUNK: usize = 1 << 20;
/// Differing files named in a refusal.
const NAMED_CONFLICTS: usize = 10;

/// What a copy did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UploadsReport {
    /// `uploads/`.
    pub source: PathBuf,
    /// Where the files went.
    pub destination: PathBuf,
    /// Files in `uploads/`.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Files copied by this run (new or replaced).
    pub copied: u64,
    /// Bytes copied by this run.
    pub copied_bytes: u64,
    /// Files already at the destination with the same SHA-256 (skipped).
    pub identical: u64,
    /// Files at the destination with other bytes, replaced (`overwrite`).
    pub replaced: u64,
}

/// One file of `uploads/` and what to do with it.
#[derive(Debug)]
struct Entry {
    relative: PathBuf,
    size: u64,
    action: Action,
}

#[derive(Debug, PartialEq)]
enum Action {
    Copy,
    Skip,
    Replace,
}

fn io_error(doing: impl std::fmt::Display, path: &Path, e: std::io::Error) -> MigrateError {
    MigrateError::new(
        MigrateErrorKind::Source,
        format!("{doing} {}: {e}", path.display()),
    )
}

/// What a copy will do, checked without writing anything.
#[derive(Debug)]
pub struct UploadsPlan {
    entries: Vec<Entry>,
    report: UploadsReport,
}

/// Check that every file under `source` can go into `destination`: not
/// nested, no links, no file there with other bytes unless `overwrite`.
pub fn plan_uploads(
    source: &Path,
    destination: &Path,
    overwrite: bool,
) -> Result<UploadsPlan, MigrateError> {
    refuse_nested(source, destination)?;
    let mut entries = Vec::new();
    list_files(source, Path::new(""), &mut entries)?;
    let mut report = UploadsReport {
        source: source.to_path_buf(),
        destination: destination.to_path_buf(),
        ..UploadsReport::default()
    };
    let mut conflicts = Vec::new();
    for entry in &mut entries {
        report.files += 1;
        report.bytes += entry.size;
        refuse_linked_dirs(destination, &entry.relative)?;
        entry.action = compare(
            &source.join(&entry.relative),
            &destination.join(&entry.relative),
        )?;
        if entry.action == Action::Replace {
            conflicts.push(entry.relative.display().to_string());
        }
    }
    if !conflicts.is_empty() && !overwrite {
        return Err(MigrateError::new(
            MigrateErrorKind::TargetNotEmpty,
            format!(
                "{} already holds {} file(s) with other bytes than uploads/: {}{}; nothing was copied. Use --overwrite-uploads to replace them, or another directory",
                destination.display(),
                conflicts.len(),
                conflicts.iter().take(NAMED_CONFLICTS).cloned().collect::<Vec<_>>().join(", "),
                if conflicts.len() > NAMED_CONFLICTS { ", …" } else { "" }
            ),
        ));
    }
    Ok(UploadsPlan { entries, report })
}

/// Copy every file under `source` into `destination` (see the module
/// overview); `overwrite` replaces files there that differ.
pub fn copy_uploads(
    source: &Path,
    destination: &Path,
    overwrite: bool,
) -> Result<UploadsReport, MigrateError> {
    let UploadsPlan {
        entries,
        mut report,
    } = plan_uploads(source, destination, overwrite)?;
    create_private_dirs(destination)?;
    for entry in &entries {
        match entry.action {
            Action::Skip => report.identical += 1,
            Action::Copy | Action::Replace => {
                refuse_linked_dirs(destination, &entry.relative)?;
                copy_proved(
                    &source.join(&entry.relative),
                    &destination.join(&entry.relative),
                )?;
                report.copied += 1;
                report.copied_bytes += entry.size;
                report.replaced += u64::from(entry.action == Action::Replace);
            }
        }
    }
    Ok(report)
}

/// Refuse a directory between `destination` and the file `relative` that
/// is a symbolic link (or not a directory).
fn refuse_linked_dirs(destination: &Path, relative: &Path) -> Result<(), MigrateError> {
    let mut dir = destination.to_path_buf();
    for component in relative.parent().into_iter().flat_map(Path::components) {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error("reading", &dir, e)),
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) => {
                return Err(MigrateError::new(
                    MigrateErrorKind::TargetNotEmpty,
                    format!(
                        "{} is a {}, not a directory: pgharbor writes no upload through it; move it away",
                        dir.display(),
                        if meta.file_type().is_symlink() { "symbolic link" } else { "file" }
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// Refuse a destination inside `uploads/` (the copy would copy itself) or
/// holding it.
fn refuse_nested(source: &Path, destination: &Path) -> Result<(), MigrateError> {
    let source = fs::canonicalize(source).map_err(|e| io_error("reading", source, e))?;
    let mut existing = destination.to_path_buf();
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent.to_path_buf(),
            _ => {
                existing = PathBuf::from(".");
                break;
            }
        }
    }
    let resolved = fs::canonicalize(&existing).map_err(|e| io_error("reading", &existing, e))?;
    let resolved = resolved.join(destination.strip_prefix(&existing).unwrap_or(Path::new("")));
    if resolved.starts_with(&source) || source.starts_with(&resolved) {
        return Err(MigrateError::new(
            MigrateErrorKind::Usage,
            format!(
                "--uploads-to {} overlaps {}: give a directory outside uploads/ that does not contain it",
                destination.display(),
                source.display()
            ),
        ));
    }
    Ok(())
}

/// Every regular file under `root/relative`, sorted; links and special
/// files are refused.
fn list_files(root: &Path, relative: &Path, out: &mut Vec<Entry>) -> Result<(), MigrateError> {
    let dir = root.join(relative);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| io_error("listing", &dir, e))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| io_error("listing", &dir, e))?;
    names.sort();
    for name in names {
        let relative = relative.join(&name);
        let path = root.join(&relative);
        let meta = fs::symlink_metadata(&path).map_err(|e| io_error("reading", &path, e))?;
        if meta.is_dir() {
            list_files(root, &relative, out)?;
        } else if meta.is_file() {
            out.push(Entry {
                relative,
                size: meta.len(),
                action: Action::Copy,
            });
        } else {
            return Err(MigrateError::new(
                MigrateErrorKind::Source,
                format!(
                    "{} is a {}, not a file: uploads/ should hold only Open WebUI's files; copy it by hand if it belongs there",
                    path.display(),
                    if meta.file_type().is_symlink() { "symbolic link" } else { "special file" }
                ),
            ));
        }
    }
    Ok(())
}

/// Copy a missing file, skip an identical one, replace one with other bytes.
fn compare(source: &Path, destination: &Path) -> Result<Action, MigrateError> {
    match fs::symlink_metadata(destination) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Action::Copy),
        Err(e) => Err(io_error("reading", destination, e)),
        Ok(meta) if !meta.is_file() => Err(MigrateError::new(
            MigrateErrorKind::TargetNotEmpty,
            format!(
                "{} exists and is not a file; move it away",
                destination.display()
            ),
        )),
        Ok(_) if sha256_of(source)? == sha256_of(destination)? => Ok(Action::Skip),
        Ok(_) => Ok(Action::Replace),
    }
}

/// The SHA-256 of a file's bytes.
pub fn sha256_of(path: &Path) -> Result<[u8; 32], MigrateError> {
    let mut file = File::open(path).map_err(|e| io_error("reading", path, e))?;
    hash_stream(&mut file, None).map_err(|e| io_error("reading", path, e))
}

/// Hash what `reader` yields, writing it to `copy` as well.
fn hash_stream(reader: &mut impl Read, mut copy: Option<&mut File>) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; CHUNK];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buffer[..n]);
        if let Some(file) = copy.as_deref_mut() {
            file.write_all(&buffer[..n])?;
        }
    }
}

/// Create `dir` and its missing ancestors `0700` (existing ones are left as they are).
fn create_private_dirs(dir: &Path) -> Result<(), MigrateError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dirs(parent)?;
    }
    fs::DirBuilder::new()
        .mode(DIR_MODE)
        .create(dir)
        .and_then(|_| fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)))
        .map_err(|e| io_error("creating the directory", dir, e))
}

/// Copy `source` to `destination` through a partial file that is read back
/// and must hash as the source's bytes did before it takes the name.
fn copy_proved(source: &Path, destination: &Path) -> Result<(), MigrateError> {
    let dir = destination.parent().expect("a file inside the destination");
    create_private_dirs(dir)?;
    let (partial, sent) = write_partial(source, dir)?;
    let proved = sha256_of(&partial).and_then(|stored| {
        if stored == sent {
            Ok(())
        } else {
            Err(MigrateError::new(
                MigrateErrorKind::Write,
                format!(
                    "{} reads back with SHA-256 {} but {} had {}: the copy does not hold the bytes read; nothing was renamed",
                    partial.display(),
                    hex(&stored),
                    source.display(),
                    hex(&sent)
                ),
            ))
        }
    });
    if let Err(e) = proved {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    fs::rename(&partial, destination)
        .map_err(|e| io_error("renaming into place", destination, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("flushing the directory", dir, e))
}

/// Stream `source` into a new partial file in `dir` (0600, flushed, the
/// source's modification time); returns its path and the SHA-256 of the
/// bytes read. The partial file is removed again when the copy fails.
fn write_partial(source: &Path, dir: &Path) -> Result<(PathBuf, [u8; 32]), MigrateError> {
    let mut input = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(source)
        .map_err(|e| io_error("reading", source, e))?;
    let (partial, mut output) = create_partial(dir)?;
    let written = stream_into(source, &mut input, &partial, &mut output);
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written.map(|sent| (partial, sent))
}

/// A new file in `dir` with a name no other file has
/// (`.pgharbor-PID-N.partial`), mode 0600.
fn create_partial(dir: &Path) -> Result<(PathBuf, File), MigrateError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let partial = dir.join(format!(
            "{PARTIAL_PREFIX}{}-{n}.partial",
            std::process::id()
        ));
        let created = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&partial);
        match created {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error("creating", &partial, e)),
            Ok(file) => {
                file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
                    .map_err(|e| io_error("setting the mode of", &partial, e))?;
                return Ok((partial, file));
            }
        }
    }
}

/// Copy `input` (`source`) into `output` (`partial`) with the source's
/// modification time, flushed; the SHA-256 of the bytes read.
fn stream_into(
    source: &Path,
    input: &mut File,
    partial: &Path,
    output: &mut File,
) -> Result<[u8; 32], MigrateError> {
    let sent = hash_stream(input, Some(output))
        .map_err(|e| io_error(format!("copying {} to", source.display()), partial, e))?;
    let modified = input
        .metadata()
        .and_then(|m| m.modified())
        .map_err(|e| io_error("reading", source, e))?;
    output
        .set_modified(modified)
        .and_then(|_| output.sync_all())
        .map_err(|e| io_error("flushing", partial, e))?;
    Ok(sent)
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the `file` table of Open WebUI's `webui.db` says its uploads are:
/// each directory its `path` values name, with how many rows name it, and
/// the rows whose file is not in `uploads` (by file name).
#[derive(Debug, Default)]
pub struct ReferencedUploads {
    /// Directory → rows.
    pub directories: Vec<(String, u64)>,
    /// Rows whose file `uploads/` lacks (their paths, the first few).
    pub missing: Vec<String>,
    /// How many rows that is.
    pub missing_count: u64,
}

/// Read `file.path` of `database` (read-only; none without a `file` table)
/// against the files of `uploads`.
pub fn referenced_uploads(
    database: &Path,
    uploads: Option<&Path>,
) -> Result<ReferencedUploads, MigrateError> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let read = || -> rusqlite::Result<Vec<String>> {
        let conn = rusqlite::Connection::open_with_flags(database, flags)?;
        let has_file_table: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'file'",
            [],
            |r| r.get(0),
        )?;
        if !has_file_table {
            return Ok(Vec::new());
        }
        let mut statement = conn
            .prepare("SELECT path FROM file WHERE path IS NOT NULL AND path <> '' ORDER BY path")?;
        let rows = statement.query_map([], |r| r.get(0))?;
        rows.collect()
    };
    let paths = read().map_err(|e| {
        MigrateError::new(
            MigrateErrorKind::Source,
            format!(
                "{}: reading the file table's paths: {e}",
                database.display()
            ),
        )
    })?;
    let mut found = ReferencedUploads::default();
    for path in paths {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        match found.directories.iter_mut().find(|(d, _)| d == dir) {
            Some((_, n)) => *n += 1,
            None => found.directories.push((dir.to_string(), 1)),
        }
        if uploads.is_none_or(|u| !u.join(name).is_file()) {
            found.missing_count += 1;
            if found.missing.len() < NAMED_CONFLICTS {
                found.missing.push(format!("{path:?}"));
            }
        }
    }
    Ok(found)
}

/// What Open WebUI needs for its uploads, after a run that found
/// `uploads` (or none) and, with `--uploads-to`, `copied` them.
pub fn next_steps(
    uploads: Option<&Path>,
    copied: Option<&UploadsReport>,
    referenced: &ReferencedUploads,
) -> String {
    let mut out = String::new();
    match (uploads, copied) {
        (_, Some(r)) => out.push_str(&format!(
            "Uploads: {} file(s), {} bytes, in {}: {} copied ({} bytes{}), {} already there with the same SHA-256; every copy read back and checked (SHA-256), files 0600, new directories 0700 (chown them to the user Open WebUI runs as if it is another).\n",
            r.files,
            r.bytes,
            r.destination.display(),
            r.copied,
            r.copied_bytes,
            if r.replaced > 0 { format!(", {} replaced", r.replaced) } else { String::new() },
            r.identical
        )),
        (Some(dir), None) => out.push_str(&format!(
            "Uploaded files are not in the database: copy {} with --uploads-to DIR (checked, resumable), or by hand.\n",
            dir.display()
        )),
        (None, None) => out.push_str("No uploads/ directory was found next to the database.\n"),
    }
    let dirs: Vec<String> = referenced
        .directories
        .iter()
        .map(|(d, n)| format!("{d}/ ({n} row(s))"))
        .collect();
    if !dirs.is_empty() {
        out.push_str(&format!(
            "Open WebUI opens each upload by the absolute path in its file table ({}): mount the copy there in every replica (the same DATA_DIR; a ReadWriteMany volume for several replicas). STORAGE_PROVIDER=s3/gcs/azure would need the files in the bucket and file.path rewritten to the bucket's URLs, which pgharbor does not do.\n",
            dirs.join(", ")
        ));
    }
    if referenced.missing_count > 0 {
        out.push_str(&format!(
            "{} file row(s) name a file that uploads/ does not hold (Open WebUI cannot open them there either): {}{}\n",
            referenced.missing_count,
            referenced.missing.join(", "),
            if referenced.missing_count > referenced.missing.len() as u64 { ", …" } else { "" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, files: &[(&str, &[u8])]) {
        for (name, bytes) in files {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
    }

    #[test]
    fn a_second_copy_skips_identical_files_and_refuses_different_ones() {
        let scratch = tempfile::tempdir().unwrap();
        let (source, destination) = (
            scratch.path().join("uploads"),
            scratch.path().join("copy/uploads"),
        );
        tree(
            &source,
            &[("a_x.pdf", b"%PDF"), ("sub/b c.md", "数据".as_bytes())],
        );
        let first = copy_uploads(&source, &destination, false).unwrap();
        assert_eq!((first.files, first.copied, first.identical), (2, 2, 0));
        assert_eq!(
            fs::read(destination.join("sub/b c.md")).unwrap(),
            "数据".as_bytes()
        );
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&destination.join("a_x.pdf")), 0o600);
        assert_eq!(mode(&destination.join("sub")), 0o700);
        let again = copy_uploads(&source, &destination, false).unwrap();
        assert_eq!((again.copied, again.identical), (0, 2));
        fs::write(destination.join("a_x.pdf"), b"other").unwrap();
        let refused = copy_uploads(&source, &destination, false).unwrap_err();
        assert!(
            refused.to_string().contains("a_x.pdf")
                && refused.to_string().contains("--overwrite-uploads"),
            "{refused}"
        );
        let replaced = copy_uploads(&source, &destination, true).unwrap();
        assert_eq!(
            (replaced.copied, replaced.replaced, replaced.identical),
            (1, 1, 1)
        );
        assert_eq!(fs::read(destination.join("a_x.pdf")).unwrap(), b"%PDF");
    }

    #[test]
    fn links_and_a_destination_inside_uploads_are_refused() {
        let scratch = tempfile::tempdir().unwrap();
        let source = scratch.path().join("uploads");
        tree(&source, &[("a", b"1")]);
        let inside = copy_uploads(&source, &source.join("copy"), false).unwrap_err();
        assert!(inside.to_string().contains("overlaps"), "{inside}");
        std::os::unix::fs::symlink("/etc/passwd", source.join("link")).unwrap();
        let link = copy_uploads(&source, &scratch.path().join("copy"), false).unwrap_err();
        assert!(
            link.to_string().contains("symbolic link") && link.to_string().contains("link"),
            "{link}"
        );
    }

    #[test]
    fn longest_names_and_names_like_partial_files_are_copied() {
        let scratch = tempfile::tempdir().unwrap();
        let (source, destination) = (scratch.path().join("uploads"), scratch.path().join("copy"));
        let longest = "n".repeat(255);
        let files: [(&str, &[u8]); 3] = [
            (&longest, b"longest"),
            ("a.pdf", b"the file"),
            (".a.pdf.pgharbor-partial", b"a file so named"),
        ];
        tree(&source, &files);
        let report = copy_uploads(&source, &destination, false).unwrap();
        assert_eq!(report.copied, 3);
        for (name, bytes) in files {
            assert_eq!(fs::read(destination.join(name)).unwrap(), bytes, "{name}");
        }
        let left: Vec<_> = fs::read_dir(&destination)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(PARTIAL_PREFIX))
            .collect();
        assert!(left.is_empty(), "partial files left: {left:?}");
    }

    #[test]
    fn a_linked_directory_in_the_destination_is_refused_before_writing() {
        let scratch = tempfile::tempdir().unwrap();
        let (source, destination) = (scratch.path().join("uploads"), scratch.path().join("copy"));
        let elsewhere = scratch.path().join("elsewhere");
        tree(&source, &[("sub/a.pdf", b"1"), ("b.pdf", b"2")]);
        fs::create_dir_all(&destination).unwrap();
        fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, destination.join("sub")).unwrap();
        let refused = plan_uploads(&source, &destination, true)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("symbolic link") && refused.contains("sub"),
            "{refused}"
        );
        copy_uploads(&source, &destination, true).unwrap_err();
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        assert!(
            !destination.join("b.pdf").exists(),
            "written before refusing"
        );
    }
}
