//! [`backup_postgres`]: dump, compress, encrypt, hash and upload in one
//! streaming pass per database; the manifest last.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use pgharbor_conn::ConnConfig;
use pgharbor_objstore::{Destination, DestinationKind, ObjstoreErrorKind};
use pgharbor_pgtools::{clear_libpq_env, Program, Version};
use serde::Serialize;

use crate::encrypt::Encryption;
use crate::error::{BackupError, BackupErrorKind, Result};
use crate::id::format_id;
use crate::manifest::{
    BackupKind, Compression, DatabaseEntry, FileEntry, Manifest, PostgresContent, FORMAT,
    MANIFEST_NAME,
};
use crate::pg;
use crate::stream::{
    self, Encoding, ErrorSlot, Producer, COMPRESS_LEVELS, DEFAULT_COMPRESS_LEVEL, UPLOAD_STOPPED,
};

/// Which databases of a server to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// One database.
    One(String),
    /// Several databases.
    List(Vec<String>),
    /// Every database that accepts connections (not templates), plus the roles.
    All,
}

/// How to take a backup.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// Also back up the roles (always done for [`Selection::All`]).
    pub roles: bool,
    /// Include the roles' password hashes (needs a superuser: `pg_authid`).
    pub with_role_passwords: bool,
    /// Encrypt every file with age.
    pub encrypt: Option<Encryption>,
    /// The zstd level, 1 (fastest) to 19 (smallest); `None` is
    /// [`DEFAULT_COMPRESS_LEVEL`](crate::DEFAULT_COMPRESS_LEVEL).
    pub compress_level: Option<i32>,
    /// The start time to use (and so the id); `None` is now. For schedules
    /// and tests.
    pub started_at: Option<DateTime<Utc>>,
}

impl BackupOptions {
    /// Checks the encryption settings and the compression level; the start
    /// time and a clock started now.
    pub(crate) fn start(&self) -> Result<(DateTime<Utc>, Instant)> {
        if let Some(enc) = &self.encrypt {
            enc.validate()?;
        }
        if let Some(level) = self.compress_level.filter(|l| !COMPRESS_LEVELS.contains(l)) {
            return Err(pg::invalid(format!(
                "compression level {level} is out of range: zstd levels go from {} (fastest) to {} \
                 (smallest)",
                COMPRESS_LEVELS.start(),
                COMPRESS_LEVELS.end()
            )));
        }
        Ok((self.started_at.unwrap_or_else(Utc::now), Instant::now()))
    }

    /// How every file of the backup is compressed and encrypted.
    pub(crate) fn encoding(&self) -> Encoding {
        Encoding {
            level: self.compress_level.unwrap_or(DEFAULT_COMPRESS_LEVEL),
            encryption: self.encrypt.clone(),
        }
    }
}

/// What [`backup_postgres`] did.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The new backup's id.
    pub id: String,
    /// Its manifest, as stored.
    pub manifest: Manifest,
    /// Total stored bytes (files and manifest).
    pub size: u64,
}

/// The facts about the server shared by every database's dump.
struct Job<'a> {
    server: &'a ConnConfig,
    dest: &'a Destination,
    id: String,
    server_num: u32,
    pg_dump: Program,
    encoding: Encoding,
    suffix: &'static str,
}

/// Backs up `databases` of `server` to `dest` as a new backup
/// `<id>/…`: `pg_dump -Fc` of each database and, for [`Selection::All`] or
/// [`BackupOptions::roles`], `pg_dumpall --roles-only`, each compressed
/// with zstd (and encrypted with age when asked) while it is uploaded, then
/// `<id>/manifest.json`. On failure the parts are deleted (best effort) and
/// no manifest is written, so the backup never lists as good.
pub async fn backup_postgres(
    server: &ConnConfig,
    databases: Selection,
    dest: &Destination,
    options: &BackupOptions,
) -> Result<BackupReport> {
    let (started, clock) = options.start()?;
    let admin = pg::open(server).await?;
    let (server_num, server_version) = pg::server_version(&admin).await?;
    let major = Version::from_server_version_num(server_num).major;
    let pg_dump = pgharbor_pgtools::find("pg_dump", major)?;
    let names = match &databases {
        Selection::One(name) => vec![name.clone()],
        Selection::List(names) => names.clone(),
        Selection::All => pg::all_databases(&admin).await?,
    };
    if names.is_empty() {
        return Err(pg::invalid("no database to back up was given"));
    }
    drop(admin);
    let id = allocate_id(dest, started).await?;
    let job = Job {
        server,
        dest,
        id: id.clone(),
        server_num,
        pg_dump,
        encoding: options.encoding(),
        suffix: file_suffix(options.encrypt.as_ref()),
    };
    let roles = matches!(databases, Selection::All) || options.roles;
    let content = run(
        &job,
        &names,
        roles,
        options.with_role_passwords,
        server_version,
    )
    .await;
    let result = match content {
        Ok((postgres, files)) => {
            let mut manifest = new_manifest(
                BackupKind::Postgres,
                &id,
                (started, clock),
                files,
                &job.encoding,
            );
            manifest.postgres = Some(postgres);
            write_manifest(dest, manifest).await
        }
        Err(e) => Err(e),
    };
    removed_on_failure(dest, &id, result).await
}

/// `result`, or its error after the backup's parts were deleted, so a
/// failed backup leaves nothing behind; when deleting fails too, the error
/// says so and how to remove them later.
pub(crate) async fn removed_on_failure(
    dest: &Destination,
    id: &str,
    result: Result<BackupReport>,
) -> Result<BackupReport> {
    match result {
        Ok(report) => Ok(report),
        Err(e) => match dest.delete_prefix(id).await {
            Ok(_) => Err(e.context(format!(
                "backup {id} to {dest} failed (its parts were removed)"
            ))),
            Err(cleanup) => Err(e
                .context(format!("backup {id} to {dest} failed"))
                .followed_by(format!(
                    "Removing its parts failed too ({cleanup}). What is left of it is no backup: \
                     `pgharbor backups list {dest}` shows it as failed and `pgharbor backups \
                     prune {dest}` removes it; back up again once the destination answers"
                ))),
        },
    }
}

/// The ending of every file: `.zst`, or `.zst.age` when encrypted.
pub(crate) fn file_suffix(encryption: Option<&Encryption>) -> &'static str {
    if encryption.is_some() {
        ".zst.age"
    } else {
        ".zst"
    }
}

/// The first free id for `started`: the time, then `-1`, `-2`, …
pub(crate) async fn allocate_id(dest: &Destination, started: DateTime<Utc>) -> Result<String> {
    for suffix in 0..1000 {
        let id = format_id(started, suffix);
        match dest.list(&id).await {
            Ok(objects) if objects.is_empty() => return Ok(id),
            Ok(_) => {}
            // A first backup creates the directory.
            Err(e)
                if e.kind() == ObjstoreErrorKind::ContainerMissing
                    && dest.kind() == DestinationKind::Local =>
            {
                return Ok(id)
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(pg::invalid(format!(
        "too many backups started at {started} exist at {dest}"
    )))
}

async fn run(
    job: &Job<'_>,
    names: &[String],
    roles: bool,
    with_passwords: bool,
    server_version: String,
) -> Result<(PostgresContent, Vec<FileEntry>)> {
    let mut files = Vec::new();
    let mut databases = Vec::new();
    let mut used = HashSet::new();
    for name in names {
        let file = format!("{}.dump{}", unique_stem(name, &mut used), job.suffix);
        let (entry, stored) = dump_database(job, name, file).await?;
        databases.push(entry);
        files.push(stored);
    }
    let roles_file = if roles {
        let stored = dump_roles(job, with_passwords).await?;
        let name = stored.name.clone();
        files.push(stored);
        Some(name)
    } else {
        None
    };
    let content = PostgresContent {
        server_version,
        pg_dump_version: job.pg_dump.version.to_string(),
        pg_dump_major: job.pg_dump.version.major,
        databases,
        roles_file,
        role_passwords: roles && with_passwords,
    };
    Ok((content, files))
}

/// A file-name stem for a database name: safe characters only, unique.
fn unique_stem(name: &str, used: &mut HashSet<String>) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = if safe.is_empty() || safe == "roles" {
        format!("db_{safe}")
    } else {
        safe
    };
    let mut stem = safe.clone();
    let mut n = 1;
    while !used.insert(stem.clone()) {
        n += 1;
        stem = format!("{safe}_{n}");
    }
    stem
}

/// One database: a REPEATABLE READ transaction exports its snapshot,
/// `pg_dump --snapshot` streams through zstd into the upload while the same
/// transaction counts the rows of every table.
async fn dump_database(
    job: &Job<'_>,
    name: &str,
    file: String,
) -> Result<(DatabaseEntry, FileEntry)> {
    let config = job.server.with_dbname(name);
    let client = pg::open(&config).await?;
    let what = format!("backing up database \"{name}\"");
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(|e| BackupError::postgres(&what, e))?;
    let snapshot: String = client
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(|e| BackupError::postgres(&what, e))?
        .get(0);
    let mut entry = pg::database_entry(&client, job.server_num).await?;
    let tables = pg::tables(&client).await?;

    let mut command = job.pg_dump.command();
    clear_libpq_env(&mut command, &config);
    command.args(["--format=custom", "--compress=0", "--no-password"]);
    command.arg(format!("--snapshot={snapshot}"));
    let producer = Producer::spawn(format!("pg_dump of database \"{name}\""), command)?;
    let counting = async {
        let counts = pg::count_rows(&client, &tables).await?;
        Ok::<_, BackupError>((counts, pg::large_objects(&client).await?))
    };
    let (stored, counted) = tokio::join!(store(job, &file, producer), counting);
    let stored = stored?;
    let (counts, large_objects) = counted?;
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| BackupError::postgres(&what, e))?;
    entry.tables = counts;
    entry.large_objects = large_objects;
    entry.file = file;
    Ok((entry, stored))
}

/// `pg_dumpall --roles-only`, stored as `roles.sql.zst[.age]`.
async fn dump_roles(job: &Job<'_>, with_passwords: bool) -> Result<FileEntry> {
    let major = Version::from_server_version_num(job.server_num).major;
    let pg_dumpall = pgharbor_pgtools::find("pg_dumpall", major)?;
    let mut command = pg_dumpall.command();
    clear_libpq_env(&mut command, job.server);
    command.args(["--roles-only", "--no-password", "-l", job.server.dbname()]);
    if !with_passwords {
        command.arg("--no-role-passwords");
    }
    let file = format!("roles.sql{}", job.suffix);
    let producer = Producer::spawn("pg_dumpall --roles-only".to_owned(), command)?;
    store(job, &file, producer).await.map_err(|e| {
        if with_passwords && crate::chain_text(&e).contains("pg_authid") {
            BackupError::new(
                BackupErrorKind::Refused,
                format!(
                    "the role passwords cannot be backed up: user \"{}\" may not read pg_authid \
                     (only a superuser may; managed services do not allow it). Back up the roles \
                     without passwords, or connect as a superuser",
                    job.server.user()
                ),
            )
        } else {
            e
        }
    })
}

/// Streams `producer`'s output through zstd (and age) into `file`.
async fn store(job: &Job<'_>, file: &str, producer: Producer) -> Result<FileEntry> {
    let slot: ErrorSlot = Arc::new(Mutex::new(None));
    let encoded = stream::encode(producer, job.encoding.clone(), slot.clone());
    upload(job.dest, &job.id, file, encoded, slot).await
}

/// Uploads the output of a pump ([`stream::encode`],
/// [`stream::encode_reader`]) as `<id>/<file>`; the pump's own error, left
/// in `slot`, wins over the upload's.
pub(crate) async fn upload(
    dest: &Destination,
    id: &str,
    file: &str,
    (reader, pump): (
        impl tokio::io::AsyncRead + Send + Unpin + 'static,
        tokio::task::JoinHandle<()>,
    ),
    slot: ErrorSlot,
) -> Result<FileEntry> {
    let name = format!("{id}/{file}");
    let put = dest.put_stream(&name, reader).await;
    let _ = pump.await;
    let pump_error = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    match (put, pump_error) {
        (Err(e), Some(pump)) if pump.message() == UPLOAD_STOPPED => Err(e.into()),
        (_, Some(e)) => {
            let _ = dest.delete(&name).await;
            Err(e)
        }
        (Err(e), None) => Err(e.into()),
        (Ok(written), None) => Ok(FileEntry {
            name: file.to_owned(),
            size: written.size,
            sha256: written.sha256,
        }),
    }
}

/// A manifest for backup `id` of `kind` started at `started` (`clock`
/// running since), finished now, without its kind's section.
pub(crate) fn new_manifest(
    kind: BackupKind,
    id: &str,
    (started, clock): (DateTime<Utc>, Instant),
    files: Vec<FileEntry>,
    encoding: &Encoding,
) -> Manifest {
    let finished = started + chrono::Duration::from_std(clock.elapsed()).unwrap_or_default();
    Manifest {
        format: FORMAT,
        kind,
        id: id.to_owned(),
        started,
        finished,
        duration_seconds: (finished - started).num_milliseconds() as f64 / 1000.0,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        files,
        compression: Compression {
            algorithm: "zstd".to_owned(),
            level: encoding.level,
        },
        encryption: encoding.encryption.as_ref().map(Encryption::kind),
        postgres: None,
        redis: None,
        base: None,
    }
}

/// Stores `manifest` (last, atomically): the backup becomes complete.
pub(crate) async fn write_manifest(dest: &Destination, manifest: Manifest) -> Result<BackupReport> {
    let written = dest
        .put_bytes(
            &format!("{}/{MANIFEST_NAME}", manifest.id),
            manifest.to_json(),
        )
        .await?;
    let size = manifest.files.iter().map(|f| f.size).sum::<u64>() + written.size;
    Ok(BackupReport {
        id: manifest.id.clone(),
        manifest,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compression_level_out_of_range_is_refused_naming_the_range() {
        for level in [0, 20, -5] {
            let options = BackupOptions {
                compress_level: Some(level),
                ..BackupOptions::default()
            };
            let e = options.start().unwrap_err();
            assert_eq!(e.kind(), BackupErrorKind::InvalidInput);
            assert!(
                e.to_string().contains(&format!(
                    "compression level {level} is out of range: zstd levels go from 1 (fastest) to 19"
                )),
                "{e}"
            );
        }
        let chosen = BackupOptions {
            compress_level: Some(19),
            ..BackupOptions::default()
        };
        assert!(chosen.start().is_ok());
        assert_eq!(chosen.encoding().level, 19);
        assert_eq!(
            BackupOptions::default().encoding().level,
            DEFAULT_COMPRESS_LEVEL
        );
    }
}
