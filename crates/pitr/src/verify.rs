//! [`verify_pitr`]: the proof that the archive restores. The newest base
//! backup's files are re-hashed, every archived WAL file it needs is
//! re-hashed against its index entry and the segments are checked for
//! gaps (each missing one named), then the base backup and all the WAL are
//! restored into a scratch data directory, started on a free port (a
//! private socket, no TCP, archiving off). When the base backup has a
//! row-count marker ([`crate::marker`]) whose WAL is archived, recovery
//! first pauses at the marker's position and every table's rows are
//! compared with it, each difference named; then the copy is restarted
//! without the target, replayed to the end, checked with `pg_amcheck` when
//! this PostgreSQL has it, its rows counted, and stopped and deleted. The result is recorded next to the base backup
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
use crate::marker::{compare, MarkerComparison, RowCountMarker, MARKER_NAME};
use crate::restore::{
    append_settings, choose_base, log_tail, pg_ctl_start, restore_to_point, start_and_wait,
    stopped_early, PitrRestoreOptions, PitrRestoreReport,
};
use crate::target::RecoveryTarget;
use crate::walstore::{archived_names, entry, timeline_path, WAL_FOLDER};

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
    /// The row-count marker replayed to and compared, when there was one.
    pub marker: Option<MarkerCheck>,
    /// What was not checked, and why (no marker, a marker not exact).
    pub notes: Vec<String>,
    /// Checks that could not run though they should have (the marker's
    /// WAL not archived): the verification passes, with these shown.
    pub warnings: Vec<String>,
    /// Every problem, each naming the file, segment or check.
    pub problems: Vec<String>,
}

/// Verifies the point-in-time archive at `dest` (see the module overview).
pub async fn verify_pitr(
    dest: &Destination,
    options: &PitrVerifyOptions,
) -> Result<PitrVerifyReport> {
    let (manifest, _) = choose_base(dest, &RecoveryTarget::Latest).await?;
    let base = manifest.base()?.clone();
    let mut report = PitrVerifyReport {
        base_backup: manifest.id.clone(),
        passed: false,
        wal_files_checked: 0,
        replayed: false,
        amcheck_passed: None,
        rows: 0,
        marker: None,
        notes: Vec::new(),
        warnings: Vec::new(),
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
    let (path, timeline_problems) =
        timeline_path(dest, base.timeline, &names, options.decryption.as_ref()).await?;
    report.problems.extend(timeline_problems);
    for missing in missing_segments(&names, &base.start_wal, base.wal_segment_size, &path) {
        report.problems.push(format!(
            "WAL segment {missing} is missing from the archive: a restore stops before it"
        ));
    }
    if report.problems.is_empty() {
        let marker = reachable_marker(dest, &manifest, &names, &mut report).await?;
        restore_and_check(dest, &manifest, marker, options, &mut report).await?;
    }
    report.passed = report.problems.is_empty();
    record(dest, &manifest, &report, options.now).await?;
    Ok(report)
}

/// The row-count marker compared at its position.
#[derive(Debug, Clone, Serialize)]
pub struct MarkerCheck {
    /// Its WAL position.
    pub lsn: String,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// The comparison.
    #[serde(flatten)]
    pub comparison: MarkerComparison,
}

/// The base backup's marker when the archive holds the WAL up to its
/// position; otherwise a note (no marker) or a warning (its WAL not
/// archived) saying why none is compared.
async fn reachable_marker(
    dest: &Destination,
    manifest: &Manifest,
    names: &[String],
    report: &mut PitrVerifyReport,
) -> Result<Option<RowCountMarker>> {
    let bytes = match dest
        .get_bytes(&format!("{}/{MARKER_NAME}", manifest.id))
        .await
    {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => {
            report.notes.push(format!(
                "base backup {} has no row-count marker (taken with --no-row-counts, or by an \
                 older pgharbor): rows were counted, not compared",
                manifest.id
            ));
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let marker: RowCountMarker = serde_json::from_slice(&bytes).map_err(|e| {
        BackupError::new(
            BackupErrorKind::Integrity,
            format!(
                "the row-count marker of base backup {} is not readable",
                manifest.id
            ),
        )
        .caused_by(e)
    })?;
    let base = manifest.base()?;
    let position = marker.position()?;
    let segment = position.segment_name(base.timeline, base.wal_segment_size);
    let number = Segment::parse(&segment, base.wal_segment_size).map(|s| s.number);
    let archived = names
        .iter()
        .any(|name| Segment::parse(name, base.wal_segment_size).map(|s| s.number) == number);
    if archived {
        return Ok(Some(marker));
    }
    report.warnings.push(format!(
        "the row-count marker at WAL position {} is not archived yet (its segment {segment} is \
         still being written; it is archived when it fills, at archive_timeout or \
         pg_switch_wal()): rows were counted, not compared",
        marker.lsn
    ));
    Ok(None)
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

/// Restores into the scratch directory, pauses at the marker and compares
/// (when there is one), replays to the end, checks, counts, stops and
/// removes it.
async fn restore_and_check(
    dest: &Destination,
    manifest: &Manifest,
    marker: Option<RowCountMarker>,
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
        BackupError::new(BackupErrorKind::Io, format!("writing {}", hba.display())).caused_by(e)
    })?;
    let port = free_port()?;
    let socket_dir = options.scratch.display().to_string();
    let mut settings = vec![
        ("port".to_owned(), port.to_string()),
        ("listen_addresses".to_owned(), String::new()),
        ("unix_socket_directories".to_owned(), socket_dir.clone()),
        ("hba_file".to_owned(), hba.display().to_string()),
        ("archive_mode".to_owned(), "off".to_owned()),
    ];
    let target = match &marker {
        Some(marker) => {
            settings.push(("recovery_target_action".to_owned(), "pause".to_owned()));
            // Stop before the record at the marker's position: it was
            // written after the snapshots (see crate::marker).
            settings.push(("recovery_target_inclusive".to_owned(), "off".to_owned()));
            settings.push(("hot_standby".to_owned(), "on".to_owned()));
            RecoveryTarget::Lsn(marker.position()?)
        }
        None => RecoveryTarget::Latest,
    };
    let restore = PitrRestoreOptions {
        target,
        data_dir: data_dir.clone(),
        decryption: options.decryption.clone(),
        restore_command: options.restore_command.clone(),
        settings,
        start: marker.is_none(),
        base_backup: Some(manifest.id.clone()),
    };
    let config = ConnConfig::parse(&format!(
        "postgresql://{}@/postgres?host={socket_dir}&port={port}",
        options.user
    ))
    .map_err(|e| BackupError::new(BackupErrorKind::InvalidInput, pgharbor_conn::conn_text(&e)))?;
    let replayed = match restore_to_point(dest, &restore).await {
        Ok(restored) => match &marker {
            Some(marker) => compare_then_replay(&restored, &config, marker, report).await,
            None => Ok(()),
        },
        Err(e) => Err(e),
    };
    let result = match replayed {
        Ok(()) => {
            report.replayed = true;
            check_copy(&config, manifest, report).await
        }
        Err(e) => {
            report.problems.push(format!(
                "the restore did not replay to the end: {}",
                pgharbor_backup::chain_text(&e)
            ));
            Ok(())
        }
    };
    stop_and_remove(manifest, &data_dir).await;
    let _ = std::fs::remove_file(&hba);
    result
}

/// Starts the restored copy paused at the marker's position, compares its
/// rows with the marker, then restarts it without the target: it replays
/// to the end of the archive and promotes.
async fn compare_then_replay(
    restored: &PitrRestoreReport,
    config: &ConnConfig,
    marker: &RowCountMarker,
    report: &mut PitrVerifyReport,
) -> Result<()> {
    let major = restored.major;
    let pg_ctl = pgharbor_pgtools::find_exact("pg_ctl", major)?;
    let dir = &restored.data_dir;
    pg_ctl_start(&pg_ctl.path, dir, &restored.log_file).await;
    wait_paused(config, dir, &restored.log_file).await?;
    let comparison = compare(config, marker).await?;
    let check = MarkerCheck {
        lsn: marker.lsn.clone(),
        taken_at: marker.taken_at,
        comparison,
    };
    let at = format!("at the row-count marker (WAL position {})", marker.lsn);
    let comparison = &check.comparison;
    for difference in &comparison.differences {
        report
            .problems
            .push(format!("rows differ {at}: {difference}"));
    }
    for difference in &comparison.inexact_differences {
        report.notes.push(format!(
            "rows differ {at}, in a database where it is not exact ({}): {difference}",
            comparison.inexact.join("; ")
        ));
    }
    if !comparison.not_counted.is_empty() {
        report.notes.push(format!(
            "not counted: the backup user cannot read them; grant pg_read_all_data for a \
             row-count check: {}",
            comparison.not_counted.join(", ")
        ));
    }
    report.marker = Some(check);
    pg_ctl_stop(&pg_ctl.path, dir, "fast").await;
    append_settings(
        dir,
        "pgharbor verify: the marker compared, replaying to the end",
        &[
            ("recovery_target_lsn".to_owned(), String::new()),
            ("recovery_target_inclusive".to_owned(), "on".to_owned()),
            ("recovery_target_action".to_owned(), "promote".to_owned()),
        ],
    )?;
    let controldata = pgharbor_pgtools::find_exact("pg_controldata", major)?;
    start_and_wait(&pg_ctl.path, &controldata.path, dir, &restored.log_file).await
}

/// How long recovery may go without replaying anything before
/// [`wait_paused`] gives up.
const PAUSE_STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Waits until recovery has paused at its target; an error quoting the
/// log when the server stops instead (the target not reached) or replays
/// nothing for [`PAUSE_STALL_LIMIT`].
async fn wait_paused(
    config: &ConnConfig,
    dir: &std::path::Path,
    log_file: &std::path::Path,
) -> Result<()> {
    let mut replayed: Option<String> = None;
    let mut progress_at = std::time::Instant::now();
    loop {
        if !dir.join("postmaster.pid").exists() {
            return Err(stopped_early(log_file));
        }
        if let Ok((client, _task)) = connect(config).await {
            let state = client
                .query_one(
                    "SELECT pg_is_in_recovery() AND pg_is_wal_replay_paused(), \
                            pg_last_wal_replay_lsn()::text",
                    &[],
                )
                .await;
            if let Ok(row) = state {
                if row.get::<_, bool>(0) {
                    return Ok(());
                }
                let now_at: Option<String> = row.get(1);
                if now_at != replayed {
                    replayed = now_at;
                    progress_at = std::time::Instant::now();
                }
            }
        }
        if progress_at.elapsed() > PAUSE_STALL_LIMIT {
            return Err(BackupError::new(
                BackupErrorKind::Tool,
                format!(
                    "the restored copy did not pause at the row-count marker: nothing replayed \
                     for {} s (last replayed WAL position {}); its log ends: {}",
                    PAUSE_STALL_LIMIT.as_secs(),
                    replayed.as_deref().unwrap_or("none"),
                    log_tail(log_file)
                ),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `pg_ctl stop` in `mode`, waiting.
async fn pg_ctl_stop(pg_ctl: &std::path::Path, dir: &std::path::Path, mode: &str) {
    let _ = tokio::process::Command::new(pg_ctl)
        .arg("-D")
        .arg(dir)
        .args(["-m", mode, "-w", "stop"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
}

fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BackupError::new(BackupErrorKind::Io, "finding a free port").caused_by(e))
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
                BackupError::new(BackupErrorKind::Tool, "running pg_amcheck").caused_by(e)
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
            .map_err(|e| BackupError::postgres("asking the restored copy", e))?;
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
        .map_err(|e| BackupError::postgres("listing the restored databases", e))?
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
            .map_err(|e| BackupError::postgres(format!("listing the tables of {name}"), e))?;
        for table in tables {
            let qualified: String = table.get(0);
            let row = db
                .query_one(&format!("SELECT count(*) FROM ONLY {qualified}"), &[])
                .await
                .map_err(|e| BackupError::postgres(format!("counting {name}: {qualified}"), e))?;
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
        pg_ctl_stop(&pg_ctl.path, data_dir, "immediate").await;
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
        restored_to: report.replayed.then(|| match &report.marker {
            Some(marker) => format!(
                "a scratch data directory, paused at the row-count marker (WAL position {}) and \
                 compared table by table ({} tables), then replayed to the end of the WAL archive",
                marker.lsn, marker.comparison.tables_compared
            ),
            None => "a scratch data directory, replayed to the end of the WAL archive".to_owned(),
        }),
        problems: report.problems.clone(),
    };
    let json = serde_json::to_vec_pretty(&record).expect("a record always serializes");
    dest.put_bytes(&format!("{}/{VERIFICATION_NAME}", manifest.id), json)
        .await?;
    Ok(())
}
