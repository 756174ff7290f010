//! `pgharbor base-backup`, `pgharbor archive`, `pgharbor restore DEST
//! --pgdata DIR --time …` and `pgharbor restore-wal`: the command line over
//! pgharbor-pitr (point-in-time recovery).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgharbor_backup::{Decryption, Encoding};
use pgharbor_pitr::{
    shell_quote, ArchiveOptions, ArchiveProgress, BaseBackupReport, BaseOptions, Fetched,
    PitrRestoreOptions, PitrVerifyOptions, RecoveryTarget, SharedProgress, SlotGuard,
};

use crate::args::{
    ArchiveArgs, BackupsVerifyArgs, BaseBackupArgs, CheckArgs, DecryptArgs, DestArgs, RestoreArgs,
    RestoreWalArgs,
};
use crate::backup::{decryption, destination, encryption_from, human_bytes, postgres_url};
use crate::Failure;
use pgharbor_health::check::ProbeResult;
use pgharbor_pitr::ArchiveHealth;

/// `pgharbor base-backup`: once, or on the `--every` schedule.
pub async fn base_backup(args: BaseBackupArgs) -> Result<u8, Failure> {
    let server = postgres_url(&args.url)?;
    let dest = destination(&args.to, &args.dest)?;
    let encoding = Encoding::new(args.compress_level, encryption_from(&args.encrypt)?)
        .map_err(Failure::usage_error)?;
    let options = BaseOptions {
        encoding,
        started_at: None,
        row_counts: !args.no_row_counts,
    };
    let Some(every) = &args.every else {
        let report = base_backup_once(&args, &server, &dest, &options).await?;
        print_base_backup(&report, args.json)?;
        return Ok(0);
    };
    let schedule = pgharbor_schedule::Schedule::parse(every, args.time_zone.as_deref())
        .map_err(Failure::usage_error)?;
    let mut runner =
        pgharbor_schedule::RunnerOptions::new(format!("{} base backup", server.endpoint()));
    if let Some(addr) = &args.listen {
        runner.metrics = Some(pgharbor_schedule::bind_metrics(addr).await?);
    }
    eprintln!("pgharbor: taking base backups on schedule {schedule}");
    let totals = pgharbor_schedule::run_forever(
        &schedule,
        || scheduled_base_backup(&args, &server, &dest, &options),
        runner,
        pgharbor_schedule::shutdown_signal(),
    )
    .await?;
    eprintln!(
        "pgharbor: stopped after {} run(s), {} failed, {} skipped",
        totals.runs, totals.failures, totals.skipped
    );
    Ok(0)
}

/// One base backup, then the retention policy when asked.
async fn base_backup_once(
    args: &BaseBackupArgs,
    server: &pgharbor_conn::ConnConfig,
    dest: &pgharbor_objstore::Destination,
    options: &BaseOptions,
) -> Result<BaseBackupReport, Failure> {
    let report = pgharbor_pitr::base_backup(server, dest, options).await?;
    if args.prune {
        let bases = pgharbor_backup::KindRetention {
            logical: None,
            base: Some(crate::backup::retention(&args.keep)),
        };
        let pruned = pgharbor_backup::prune_by_kind(dest, &bases, false).await?;
        pgharbor_pitr::prune_wal(dest, &pruned.removed, false).await?;
    }
    Ok(report)
}

async fn scheduled_base_backup(
    args: &BaseBackupArgs,
    server: &pgharbor_conn::ConnConfig,
    dest: &pgharbor_objstore::Destination,
    options: &BaseOptions,
) -> pgharbor_schedule::JobOutcome {
    let started = std::time::Instant::now();
    let (success, summary, size) = match base_backup_once(args, server, dest, options).await {
        Ok(report) => (
            true,
            format!(
                "base backup {} complete ({})",
                report.backup.id,
                human_bytes(report.backup.size)
            ),
            Some(report.backup.size),
        ),
        Err(failure) => (
            false,
            format!("base backup failed: {}", failure.message()),
            None,
        ),
    };
    eprintln!("pgharbor: {summary}");
    pgharbor_schedule::JobOutcome {
        success,
        duration: started.elapsed(),
        size_bytes: size,
        summary,
        details: serde_json::json!({ "destination": dest.to_string() }),
    }
}

fn print_base_backup(full: &BaseBackupReport, json: bool) -> Result<(), Failure> {
    if json {
        crate::render::print_json(full)?;
        return Ok(());
    }
    let report = &full.backup;
    let manifest = &report.manifest;
    let base = manifest.base()?;
    println!(
        "base backup {} complete: {}, {:.1}s, PostgreSQL {}, timeline {}, WAL {} to {}",
        report.id,
        human_bytes(report.size),
        manifest.duration_seconds,
        base.server_version,
        base.timeline,
        base.start_lsn,
        base.end_lsn
    );
    for file in &manifest.files {
        println!(
            "  {}  {}  sha256 {}",
            file.name,
            human_bytes(file.size),
            file.sha256
        );
    }
    if let Some(marker) = &full.marker {
        println!(
            "  row-count marker at WAL position {}: {} table(s) in {} database(s){}",
            marker.lsn,
            marker.tables,
            marker.databases,
            match marker.not_counted {
                0 => String::new(),
                n => format!(
                    ", {n} table(s) this user may not read left out (GRANT pg_read_all_data)"
                ),
            }
        );
    }
    if let Some(problem) = &full.marker_problem {
        println!("  no row-count marker: {problem}");
    }
    Ok(())
}

/// `pgharbor archive`: runs until SIGTERM or Ctrl-C.
pub async fn archive(args: ArchiveArgs) -> Result<u8, Failure> {
    let server = postgres_url(&args.url)?;
    let dest = destination(&args.to, &args.dest)?;
    let encoding = Encoding::new(args.compress_level, encryption_from(&args.encrypt)?)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let options = ArchiveOptions {
        spool: args.spool.clone(),
        slot: args.slot.clone(),
        encoding,
        poll: Duration::from_millis(500),
        restart_delay: Duration::from_secs(5),
        guard_every: Duration::from_secs(10),
        guard: SlotGuard {
            alert_bytes: args.alert_slot_wal,
            drop_bytes: args.drop_slot_over,
        },
        recreate_lost_slot: args.recreate_lost_slot,
    };
    let progress: SharedProgress = Arc::new(Mutex::new(ArchiveProgress::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(addr) = &args.listen {
        let listener = pgharbor_schedule::bind_metrics(addr).await?;
        let shown = progress.clone();
        let mut stopped = stop_rx.clone();
        tokio::spawn(pgharbor_health::server::serve_metrics(
            listener,
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
            move || render_metrics(&shown),
        ));
    }
    let shutdown = async move {
        pgharbor_schedule::shutdown_signal().await;
        let _ = stop_tx.send(true);
    };
    eprintln!(
        "pgharbor: archiving the WAL of {} to {} (slot {}, spool {})",
        server.endpoint(),
        dest,
        args.slot,
        args.spool.display()
    );
    let done = pgharbor_pitr::run_archiver(&server, &dest, &options, progress, shutdown).await?;
    eprintln!(
        "pgharbor: stopped after archiving {} WAL file(s){}; {} failure(s)",
        done.files_archived,
        done.last_archived
            .map(|name| format!(", the last {name}"))
            .unwrap_or_default(),
        done.failures
    );
    Ok(0)
}

/// The archiver's `/metrics`.
fn render_metrics(progress: &SharedProgress) -> String {
    let p = progress.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let last = p
        .last_archived_at
        .map(|t| t.timestamp_millis() as f64 / 1000.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let age = last.map(|t| (now - t).max(0.0));
    let slot = p.slot.clone().unwrap_or_default();
    let mut text = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(value) = value {
            text.push_str(&format!(
                "# HELP pgharbor_wal_archive_{name} {help}\n# TYPE pgharbor_wal_archive_{name} {kind}\n\
                 pgharbor_wal_archive_{name} {value}\n"
            ));
        }
    };
    let known = |v: u64| p.slot.as_ref().map(|_| v as f64);
    metric(
        "files_total",
        "counter",
        "WAL files archived since the archiver started.",
        Some(p.files_archived as f64),
    );
    metric(
        "failures_total",
        "counter",
        "Failed uploads, pg_receivewal stops and slot drops since the archiver started.",
        Some(p.failures as f64),
    );
    metric(
        "last_success_timestamp_seconds",
        "gauge",
        "When the last WAL file was archived.",
        last,
    );
    metric(
        "last_archived_age_seconds",
        "gauge",
        "Seconds since the last WAL file was archived.",
        age,
    );
    metric(
        "lag_bytes",
        "gauge",
        "WAL the server wrote that is not in the archive yet.",
        known(slot.lag_bytes),
    );
    metric(
        "lag_seconds",
        "gauge",
        "Age of the oldest WAL the server wrote that is not in the archive (0: none; at most one \
         look, 10 s, short).",
        slot.lag_seconds,
    );
    metric(
        "slot_lost",
        "gauge",
        "1 when the server has invalidated the slot (wal_status = lost): the archive has a gap.",
        Some(f64::from(u8::from(p.slot_lost))),
    );
    metric(
        "slot_retained_bytes",
        "gauge",
        "WAL the replication slot makes the server keep in pg_wal.",
        known(slot.retained_bytes),
    );
    metric(
        "spool_bytes",
        "gauge",
        "Bytes waiting in the spool directory.",
        known(slot.spool_bytes),
    );
    metric(
        "guard_alerts_total",
        "counter",
        "Looks that found the slot over --alert-slot-wal.",
        Some(p.guard_alerts as f64),
    );
    metric(
        "slot_drops_total",
        "counter",
        "Times the slot was dropped over --drop-slot-over (each a gap).",
        Some(p.slot_drops as f64),
    );
    text
}

/// `check --archive DEST`: the archive's probes, each failing past its limit.
pub async fn archive_probes(target: &str, dest: &str, args: &CheckArgs) -> Vec<ProbeResult> {
    let probe = |probe: &'static str, ok: bool, detail: String| ProbeResult { probe, ok, detail };
    let looked = async {
        let server = postgres_url(target)?;
        let dest = destination(dest, &args.store)?;
        let health = pgharbor_pitr::archive_health(&server, &dest, &args.slot).await?;
        Ok::<_, Failure>((dest, health))
    };
    let (dest, health) =
        match tokio::time::timeout(args.timeout.max(Duration::from_secs(10)), looked).await {
            Ok(Ok(looked)) => looked,
            Ok(Err(e)) => return vec![probe("archive", false, e.message())],
            Err(_) => return vec![probe("archive", false, "no answer in time".to_owned())],
        };
    vec![
        slot_probe(&health, &args.slot, args.max_slot_wal),
        lag_probe(&health, args),
        archived_age_probe(&health, &dest, args.max_archived_age),
        archiver_probe(&health, &dest),
    ]
}

fn slot_probe(health: &ArchiveHealth, name: &str, limit: Option<u64>) -> ProbeResult {
    let (ok, detail) = match &health.slot {
        None => (
            false,
            format!("the server has no replication slot \"{name}\": is `pgharbor archive` set up?"),
        ),
        Some(slot) if slot.is_lost() => (
            false,
            format!(
                "replication slot \"{name}\" is lost (wal_status = lost): the server removed WAL \
                 the archive had not received; take a new base backup and restart the archiver \
                 with --recreate-lost-slot"
            ),
        ),
        Some(slot) => {
            let over = limit.filter(|l| slot.retained_bytes > *l);
            (
                over.is_none(),
                format!(
                    "replication slot \"{name}\" {}, holds {} of WAL on the server{}",
                    if slot.active { "active" } else { "inactive" },
                    human_bytes(slot.retained_bytes),
                    over.map(|l| format!(", over the limit of {}", human_bytes(l)))
                        .unwrap_or_default()
                ),
            )
        }
    };
    ProbeResult {
        probe: "archive_slot",
        ok,
        detail,
    }
}

fn lag_probe(health: &ArchiveHealth, args: &CheckArgs) -> ProbeResult {
    let max_seconds = args.max_archive_lag_time.as_secs_f64();
    let over_time = health.lag_seconds.is_some_and(|s| s > max_seconds);
    let over_bytes = args.max_archive_lag.is_some_and(|l| health.lag_bytes > l);
    let seconds = health.lag_seconds.map_or_else(
        || "an unknown time".to_owned(),
        |s| match health.lag_is_bound {
            true => format!(
                "at most {s:.0} s (the archiver restarted: counted from its previous report)"
            ),
            false => format!("{s:.0} s"),
        },
    );
    let mut detail = format!(
        "the archive lacks {} of WAL, the oldest written {seconds} ago (server at {})",
        human_bytes(health.lag_bytes),
        health.server_lsn
    );
    if over_time {
        detail.push_str(&format!(", over the limit of {max_seconds:.0} s"));
    }
    if let Some(limit) = args.max_archive_lag.filter(|_| over_bytes) {
        detail.push_str(&format!(", over the limit of {}", human_bytes(limit)));
    }
    ProbeResult {
        probe: "archive_lag",
        ok: !over_time && !over_bytes,
        detail,
    }
}

fn archived_age_probe(
    health: &ArchiveHealth,
    dest: &pgharbor_objstore::Destination,
    limit: Option<Duration>,
) -> ProbeResult {
    let (ok, detail) = match (&health.last_archived, health.last_archived_age_seconds) {
        (Some(name), Some(age)) => {
            let over = limit.filter(|l| age > l.as_secs_f64());
            (
                over.is_none(),
                format!(
                    "the newest archived WAL file, {name}, was archived {age:.0} s ago{}",
                    over.map(|l| format!(", over the limit of {} s", l.as_secs()))
                        .unwrap_or_default()
                ),
            )
        }
        _ => (false, format!("no WAL file is archived at {dest}")),
    };
    ProbeResult {
        probe: "archived_age",
        ok,
        detail,
    }
}

fn archiver_probe(health: &ArchiveHealth, dest: &pgharbor_objstore::Destination) -> ProbeResult {
    let (ok, detail) = match &health.archiver {
        None => (
            false,
            format!(
                "no archiver has reported to {dest} ({})",
                pgharbor_pitr::ARCHIVER_STATUS
            ),
        ),
        Some(a) => {
            let failures = match (&a.last_failure, a.failures) {
                (_, 0) | (None, _) => "no failure".to_owned(),
                (Some(last), n) => format!("{n} failure(s), the last: {last}"),
            };
            let age = a.age_seconds().round();
            if health.archiver_stale {
                (
                    false,
                    format!("the archiver last reported {age} s ago: is `pgharbor archive` running? ({failures})"),
                )
            } else if !a.running {
                (
                    false,
                    format!("the archiver stopped {age} s ago ({failures})"),
                )
            } else {
                (true, format!("the archiver reported {age} s ago, {} file(s) archived since it started, {failures}", a.files_archived))
            }
        }
    };
    ProbeResult {
        probe: "archiver",
        ok,
        detail,
    }
}

/// A size as PostgreSQL writes one: `8GB`, `512MB`, `64kB`, `1TB` (powers
/// of 1024) or a number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| {
        format!("'{text}' is not a size: write it as 8GB, 512MB or a number of bytes")
    })?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        "tb" => 1 << 40,
        other => return Err(format!("'{text}': unknown unit '{other}' (kB, MB, GB, TB)")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// `pgharbor restore DEST --pgdata DIR …`.
pub async fn restore(args: RestoreArgs) -> Result<u8, Failure> {
    let data_dir = args.pgdata.clone().expect("--pgdata is given");
    let target = recovery_target(&args)?;
    let dest = destination(&args.backup, &args.dest)?;
    let mut settings = Vec::new();
    if let Some(port) = args.port {
        settings.push(("port".to_owned(), port.to_string()));
    }
    for item in &args.settings {
        let (name, value) = item.split_once('=').ok_or_else(|| {
            Failure::usage(format!("--set {item}: expected NAME=VALUE, e.g. port=5433"))
        })?;
        settings.push((name.trim().to_owned(), value.to_owned()));
    }
    let options = PitrRestoreOptions {
        target,
        data_dir: absolute(&data_dir)?,
        decryption: decryption(&args.decrypt)?,
        restore_command: restore_command(&args.backup, &args.decrypt, &args.dest)?,
        settings,
        start: args.start,
        base_backup: args.base_backup.clone(),
    };
    let report = pgharbor_pitr::restore_to_point(&dest, &options).await?;
    if args.json {
        crate::render::print_json(&report)?;
        return Ok(0);
    }
    println!(
        "restored base backup {} into {}, replaying WAL to {}",
        report.base_backup,
        report.data_dir.display(),
        report.target
    );
    if let Some(note) = &report.note {
        println!("  note: {note}");
    }
    if report.started {
        println!(
            "  the server is running: recovery has ended and it accepts writes (log: {})",
            report.log_file.display()
        );
    } else {
        if rustix::process::geteuid().is_root() {
            println!(
                "  PostgreSQL refuses to run as root: hand the directory to its user first, e.g. \
                 chown -R postgres: {}",
                shell_quote(&report.data_dir.display().to_string())
            );
        }
        println!(
            "  start it as the directory's owner, with the same environment (the object store's \
             credentials, a passphrase variable) as this restore:\n  {}",
            report.start_command
        );
    }
    Ok(0)
}

fn recovery_target(args: &RestoreArgs) -> Result<RecoveryTarget, Failure> {
    let usage = Failure::usage_error;
    Ok(if let Some(time) = &args.time {
        RecoveryTarget::parse_time(time).map_err(usage)?
    } else if let Some(lsn) = &args.lsn {
        RecoveryTarget::parse_lsn(lsn).map_err(usage)?
    } else if let Some(xid) = args.xid {
        RecoveryTarget::Xid(xid)
    } else if let Some(name) = &args.name {
        RecoveryTarget::Name(name.clone())
    } else if args.latest {
        RecoveryTarget::Latest
    } else {
        return Err(Failure::usage(
            "--pgdata needs a recovery target: --time, --lsn, --xid, --name or --latest",
        ));
    })
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()?.join(path))
}

/// The `restore_command`: this pgharbor's `restore-wal` for `dest` with
/// the same decryption and object-store options — file names and variable
/// names only, never a secret. `%` in them is doubled (PostgreSQL expands
/// `%f`, `%p` and `%%`).
fn restore_command(dest: &str, decrypt: &DecryptArgs, store: &DestArgs) -> Result<String, Failure> {
    let exe = std::env::current_exe()?;
    let dest = if dest.contains("://") && !dest.starts_with("file://") {
        dest.to_owned()
    } else {
        absolute(Path::new(dest.trim_start_matches("file://")))?
            .display()
            .to_string()
    };
    let mut words = vec![exe.display().to_string(), "restore-wal".to_owned(), dest];
    let mut option = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            words.push(name.to_owned());
            words.push(value);
        }
    };
    let path = |p: &Option<PathBuf>| -> Result<Option<String>, Failure> {
        p.as_deref()
            .map(|p| absolute(p).map(|p| p.display().to_string()))
            .transpose()
    };
    option("--decrypt-key-file", path(&decrypt.decrypt_key_file)?);
    option(
        "--decrypt-passphrase-env",
        decrypt.decrypt_passphrase_env.clone(),
    );
    option(
        "--decrypt-passphrase-file",
        path(&decrypt.decrypt_passphrase_file)?,
    );
    option("--s3-endpoint", store.s3_endpoint.clone());
    option("--s3-region", store.s3_region.clone());
    option("--azure-endpoint", store.azure_endpoint.clone());
    if store.s3_path_style {
        words.push("--s3-path-style".to_owned());
    }
    let mut command: Vec<String> = words
        .iter()
        .map(|w| shell_quote(w).replace('%', "%%"))
        .collect();
    command.insert(3, "%f".to_owned());
    command.insert(4, "%p".to_owned());
    Ok(command.join(" "))
}

/// The exit status of `restore-wal` when a file cannot be fetched intact:
/// above 125, which PostgreSQL takes for a failed command rather than a
/// file missing from the archive, so recovery stops there instead of
/// ending early at an earlier point and promoting.
const RECOVERY_MUST_STOP: u8 = 255;

/// `pgharbor restore-wal DEST NAME PATH`: exit 0 with the file written, 1
/// when the archive does not hold it (PostgreSQL then goes on: the end of
/// the archive), [`RECOVERY_MUST_STOP`] when it cannot be fetched intact
/// (unreachable store, credentials, a checksum or key that does not match).
pub async fn restore_wal(args: RestoreWalArgs) -> Result<u8, Failure> {
    match fetch_wal(&args).await {
        Ok(code) => Ok(code),
        Err(failure) => {
            eprintln!(
                "pgharbor: error: {} (recovery stops here rather than end early)",
                failure.message()
            );
            Ok(RECOVERY_MUST_STOP)
        }
    }
}

async fn fetch_wal(args: &RestoreWalArgs) -> Result<u8, Failure> {
    let dest = destination(&args.dest, &args.dest_options)?;
    let decryption: Option<Decryption> = decryption(&args.decrypt)?;
    match pgharbor_pitr::fetch(&dest, &args.name, &args.path, decryption.as_ref()).await? {
        Fetched::Written(_) => Ok(0),
        Fetched::NotArchived => {
            eprintln!("pgharbor: {} is not in the archive at {dest}", args.name);
            Ok(1)
        }
    }
}

/// `pgharbor backups verify DEST --pitr`: exit 1 when a check failed.
pub async fn verify(args: BackupsVerifyArgs) -> Result<u8, Failure> {
    let dest = destination(&args.dest, &args.store)?;
    // A private directory of this run's own inside the one given (or
    // $TMPDIR): the given directory's permissions are left as they are.
    let scratch = match &args.scratch_dir {
        Some(dir) => absolute(dir)?,
        None => std::env::temp_dir(),
    }
    .join(format!("pgharbor-verify-{}", std::process::id()));
    let options = PitrVerifyOptions {
        scratch: scratch.clone(),
        restore_command: restore_command(&args.dest, &args.decrypt, &args.store)?,
        decryption: decryption(&args.decrypt)?,
        user: args.user.clone(),
        now: None,
    };
    let verified = pgharbor_pitr::verify_pitr(&dest, &options).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let report = verified?;
    if args.json {
        crate::render::print_json(&report)?;
    } else if report.passed {
        println!(
            "base backup {}: verified — {} WAL file(s) checked, no gap, replayed to the end in a \
             scratch copy, pg_amcheck {}, {} rows",
            report.base_backup,
            report.wal_files_checked,
            match report.amcheck_passed {
                Some(true) => "passed",
                Some(false) => "failed",
                None => "not available",
            },
            report.rows
        );
        if let Some(marker) = &report.marker {
            print_marker(marker);
        }
        for warning in &report.warnings {
            println!("  WARNING: {warning}");
        }
        for note in &report.notes {
            println!("  note: {note}");
        }
    } else {
        println!("base backup {}: FAILED verification", report.base_backup);
        for problem in &report.problems {
            println!("  {problem}");
        }
        for warning in &report.warnings {
            println!("  WARNING: {warning}");
        }
        for note in &report.notes {
            println!("  note: {note}");
        }
    }
    Ok(u8::from(!report.passed))
}

/// The marker's comparison in a verification that passed: what was equal,
/// and what was left out or demoted to notes.
fn print_marker(marker: &pgharbor_pitr::MarkerCheck) {
    let comparison = &marker.comparison;
    let mut summary = format!(
        "  row counts at the marker (WAL position {}, taken {}): {} table(s) compared",
        marker.lsn,
        marker.taken_at.format("%Y-%m-%d %H:%M:%S UTC"),
        comparison.tables_compared
    );
    if comparison.inexact_differences.is_empty() {
        summary.push_str(", all equal");
    } else {
        summary.push_str(&format!(
            ", {} difference(s) in database(s) where the marker is not exact (notes below)",
            comparison.inexact_differences.len()
        ));
    }
    if !comparison.not_counted.is_empty() {
        summary.push_str(&format!(
            ", {} table(s) not counted (notes below)",
            comparison.not_counted.len()
        ));
    }
    println!("{summary}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_postgresql_settings() {
        assert_eq!(parse_size("8GB"), Ok(8 << 30));
        assert_eq!(parse_size("512MB"), Ok(512 << 20));
        assert_eq!(parse_size("64kB"), Ok(64 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert!(parse_size("5 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
    }
}
