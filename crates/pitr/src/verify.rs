//! [`verify_pitr`]: the proof that the archive restores. The newest base
//! backup's files are re-hashed, every archived WAL file it needs is
//! re-hashed against its index entry and the segments are checked for
//! gaps (each missing one named), then the base backup and all the WAL are
//! restored into a scratch data directory, started on a free port (a
//! private socket, no TCP, archiving off), replayed to the end, checked
//! with `pg_amcheck` when this PostgreSQL has it, its rows counted, and
//! stopped and deleted. The result is recorded next to the base backup
//! (`verification.json`), as a logical backup's verification is, so
//! `backups list`, `status --backups` and `/metrics` show it.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use pgharbor_backup::{
    BackupError, BackupErrorKind, Decryption, FileEntry, Manifest, Result, VerificationRecord,
    FORMAT, MANIFEST_NAME, VERIFICATION_NAME,
};
use pgharbor_conn::{connect, ConnConfig};
use pgharbor_objstore::Destination;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::lsn::{missing_segments, Segment};
use crate::restore::{choose_base, restore_to_point, PitrRestoreOptions};
use crate::target::RecoveryTarget;
use crate::walstore::{archived_names, entry, WAL_FOLDER};

/// How to verify.
#[derive(Debug, Clone)]
pub struct PitrVerifyOptions {
    /// Where the scratch data directory is made (and removed).
    pub scratch: PathBuf,
    /// The `restore_command` the scratch server runs.
    pub restore_command: String,
    /// The identities or passphrase of an encrypted archive.
    pub decryption: Option<Decryption>,
    /// The restored cluster's superuser to connect as (over the scratch
    /// server's private socket, trusted).
    pub user: String,
    /// The time to record; `None` is now.
    pub now: Option<DateTime<Utc>>,
}

/// What [`verify_pitr`] found.
#[derive(Debug, Clone, Serialize)]
pub struct PitrVerifyReport {
    /// The base backup verified.
    pub base_backup: String,
    /// Whether every check passed.
    pub passed: bool,
    /// WAL files checked against their index entries.
    pub wal_files_checked: usize,
    /// Whether the scratch copy was started and replayed to the end.
    pub replayed: bool,
    /// `pg_amcheck`'s verdict: `None` when this PostgreSQL has none.
    pub amcheck_passed: Option<bool>,
    /// Rows in every table of every database of the restored copy.
    pub rows: u64,
    /// Every problem, each naming the file, segment or check.
    pub problems: Vec<String>,
}

/// Verifies the point-in-time archive at `dest` (see the module overview).
pub async fn verify_pitr(
    dest: &Destination,
    options: &PitrVerifyOptions,
) -> Result<PitrVerifyReport> {
    let manifest = choose_base(dest, &RecoveryTarget::Latest).await?;
    let base = manifest.base()?.clone();
    let mut report = PitrVerifyReport {
        base_backup: manifest.id.clone(),
        passed: false,
        wal_files_checked: 0,
        replayed: false,
        amcheck_passed: None,
        rows: 0,
        problems: Vec::new(),
    };
    for file in &manifest.files {
        if let Some(problem) = check_stored(dest, &manifest.id, file).await? {
            report.problems.push(problem);
        }
    }
    let names = archived_names(dest).await?;
    let first = Segment::parse(&base.start_wal, base.wal_segment_size);
    for name in &names {
        let needed = match (Segment::parse(name, base.wal_segment_size), first) {
            (Some(s), Some(first)) => s.number >= first.number,
            _ => true,
        };
        if !needed {
            continue;
        }
        let Some(entry) = entry(dest, name).await? else {
            continue;
        };
        match check_stored(dest, WAL_FOLDER, &entry.file).await? {
            Some(problem) => report.problems.push(format!("WAL {problem}")),
            None => report.wal_files_checked += 1,
        }
    }
    for missing in missing_segments(&names, &base.start_wal, base.wal_segment_size) {
        report.problems.push(format!(
            "WAL segment {missing} is missing from the archive: a restore stops before it"
        ));
    }
    if report.problems.is_empty() {
        restore_and_check(dest, &manifest, options, &mut report).await?;
    }
    report.passed = report.problems.is_empty();
    record(dest, &manifest, &report, options.now).await?;
    Ok(report)
}

/// The stored file's SHA-256 and size against `file`; a problem naming it.
async fn check_stored(
    dest: &Destination,
    folder: &str,
    file: &FileEntry,
) -> Result<Option<String>> {
    let name = format!("{folder}/{}", file.name);
    let mut stream = match dest.get_stream(&name).await {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Ok(Some(format!("file {name} is missing"))),
        Err(e) => return Err(e.into()),
    };
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        read += chunk.len() as u64;
        hasher.update(&chunk);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(if read != file.size || digest != file.sha256 {
        Some(format!(
            "file {name} is damaged: {read} bytes with SHA-256 {digest}, the index says {} bytes \
             with {}",
            file.size, file.sha256
        ))
    } else {
        None
    })
}

/// Restores into the scratch directory, replays to the end, checks,
/// counts, stops and removes it.
async fn restore_and_check(
    dest: &Destination,
    manifest: &Manifest,
    options: &PitrVerifyOptions,
    report: &mut PitrVerifyReport,
) -> Result<()> {
    crate::archive::create_private_dir(&options.scratch)?;
    let data_dir = options.scratch.join(format!(
        "pgharbor-verify-{}",
        manifest.id.to_ascii_lowercase()
    ));
    let hba = options.scratch.join("pgharbor-verify-hba.conf");
    std::fs::write(&hba, "local all all trust\n").map_err(|e| {
        BackupError::new(
            BackupErrorKind::Io,
            format!("writing {}: {e}", hba.display()),
        )
    })?;
    let port = free_port()?;
    let socket_dir = options.scratch.display().to_string();
    let restore = PitrRestoreOptions {
        target: RecoveryTarget::Latest,
        data_dir: data_dir.clone(),
        decryption: options.decryption.clone(),
        restore_command: options.restore_command.clone(),
        settings: vec![
            ("port".to_owned(), port.to_string()),
            ("listen_addresses".to_owned(), String::new()),
            ("unix_socket_directories".to_owned(), socket_dir.clone()),
            ("hba_file".to_owned(), hba.display().to_string()),
            ("archive_mode".to_owned(), "off".to_owned()),
        ],
        start: true,
    };
    let restored = restore_to_point(dest, &restore).await;
    let result = match restored {
        Ok(_) => {
            report.replayed = true;
            let config = ConnConfig::parse(&format!(
                "postgresql://{}@/postgres?host={socket_dir}&port={port}",
                options.user
            ))
            .map_err(|e| BackupError::new(BackupErrorKind::InvalidInput, e.to_string()))?;
            check_copy(&config, manifest, report).await
        }
        Err(e) => {
            report.problems.push(format!(
                "the restore did not replay to the end: {}",
                e.message()
            ));
            Ok(())
        }
    };
    stop_and_remove(manifest, &data_dir).await;
    let _ = std::fs::remove_file(&hba);
    result
}

fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BackupError::new(BackupErrorKind::Io, format!("finding a free port: {e}")))
}

/// `pg_amcheck --all` when available, then the rows of every table.
async fn check_copy(
    config: &ConnConfig,
    manifest: &Manifest,
    report: &mut PitrVerifyReport,
) -> Result<()> {
    let major = manifest.base()?.major;
    let has_amcheck = wait_out_of_recovery(config).await?;
    let program = pgharbor_pgtools::find_exact("pg_amcheck", major).ok();
    if let Some(amcheck) = program.filter(|_| has_amcheck) {
        let mut command = amcheck.command();
        pgharbor_pgtools::clear_libpq_env(&mut command, config);
        command.args(["--all", "--install-missing", "--no-password"]);
        let output = tokio::process::Command::from(command)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| {
                BackupError::new(BackupErrorKind::Tool, format!("running pg_amcheck: {e}"))
            })?;
        let passed = output.status.success();
        report.amcheck_passed = Some(passed);
        if !passed {
            let text = String::from_utf8_lossy(&output.stdout).to_string()
                + &String::from_utf8_lossy(&output.stderr);
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.contains("password file"))
                .take(6)
                .collect();
            report.problems.push(format!(
                "pg_amcheck found corruption: {}",
                lines.join(" | ")
            ));
        }
    }
    report.rows = count_rows(config).await?;
    Ok(())
}

/// Waits until the promoted copy takes writes (`pg_amcheck` installs its
/// extension); whether the server has the `amcheck` extension.
async fn wait_out_of_recovery(config: &ConnConfig) -> Result<bool> {
    let (client, _task) = connect(config).await?;
    loop {
        let row = client
            .query_one(
                "SELECT pg_is_in_recovery(), \
                        EXISTS (SELECT FROM pg_available_extensions WHERE name = 'amcheck')",
                &[],
            )
            .await
            .map_err(|e| BackupError::postgres("asking the restored copy", &e))?;
        if !row.get::<_, bool>(0) {
            return Ok(row.get(1));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Rows in every table of every database that accepts connections.
async fn count_rows(config: &ConnConfig) -> Result<u64> {
    let (client, _task) = connect(config).await?;
    let databases: Vec<String> = client
        .query(
            "SELECT datname::text FROM pg_database WHERE datallowconn ORDER BY datname",
            &[],
        )
        .await
        .map_err(|e| BackupError::postgres("listing the restored databases", &e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut total = 0u64;
    for name in databases {
        let (db, _task) = connect(&config.with_dbname(&name)).await?;
        let tables = db
            .query(
                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                 AND n.nspname NOT LIKE 'pg_toast%'",
                &[],
            )
            .await
            .map_err(|e| BackupError::postgres(format!("listing the tables of {name}"), &e))?;
        for table in tables {
            let qualified: String = table.get(0);
            let row = db
                .query_one(&format!("SELECT count(*) FROM ONLY {qualified}"), &[])
                .await
                .map_err(|e| BackupError::postgres(format!("counting {name}: {qualified}"), &e))?;
            total += u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
        }
    }
    Ok(total)
}

/// Stops the scratch server (when it runs) and deletes its directory.
async fn stop_and_remove(manifest: &Manifest, data_dir: &std::path::Path) {
    let pg_ctl = manifest
        .base()
        .ok()
        .and_then(|b| pgharbor_pgtools::find_exact("pg_ctl", b.major).ok());
    if let Some(pg_ctl) = pg_ctl {
        let _ = tokio::process::Command::new(&pg_ctl.path)
            .arg("-D")
            .arg(data_dir)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
    }
    let _ = std::fs::remove_dir_all(data_dir);
}

/// Records the verdict next to the base backup.
async fn record(
    dest: &Destination,
    manifest: &Manifest,
    report: &PitrVerifyReport,
    now: Option<DateTime<Utc>>,
) -> Result<()> {
    let manifest_bytes = dest
        .get_bytes(&format!("{}/{MANIFEST_NAME}", manifest.id))
        .await?;
    let record = VerificationRecord {
        format: FORMAT,
        id: manifest.id.clone(),
        verified_at: now.unwrap_or_else(Utc::now),
        passed: report.passed,
        manifest_sha256: Sha256::digest(&manifest_bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        restored_to: report
            .replayed
            .then(|| "a scratch data directory, replayed to the end of the WAL archive".to_owned()),
        problems: report.problems.clone(),
    };
    let json = serde_json::to_vec_pretty(&record).expect("a record always serializes");
    dest.put_bytes(&format!("{}/{VERIFICATION_NAME}", manifest.id), json)
        .await?;
    Ok(())
}
