//! `pgharbor backup`, `pgharbor restore` and `pgharbor backups
//! list|verify|prune`: the command line over pgharbor-backup, with
//! pgharbor-schedule for `--every` and `--print-cronjob`.

use crate::args::{
    BackupArgs, BackupsCommand, BackupsListArgs, BackupsPruneArgs, BackupsVerifyArgs, DecryptArgs,
    DestArgs, EncryptArgs, KeepArgs, RestoreArgs,
};
use crate::Failure;
use pgharbor_backup::{
    BackupOptions, BackupReport, BackupState, Decryption, Encryption, Retention, Selection,
    VerifyOptions, VerifyReport,
};
use pgharbor_conn::{ConnConfig, Secret, SecretSource};
use pgharbor_objstore::{Destination, DestinationOptions};
use pgharbor_schedule::{JobOutcome, RunnerOptions, Schedule};
use std::time::Instant;

/// Parse a destination with the object-store options.
pub(crate) fn destination(dest: &str, store: &DestArgs) -> Result<Destination, Failure> {
    let mut options = DestinationOptions::from_env();
    if store.s3_endpoint.is_some() {
        options.s3_endpoint = store.s3_endpoint.clone();
    }
    if store.s3_path_style {
        options.s3_path_style = Some(true);
    }
    if store.s3_region.is_some() {
        options.s3_region = store.s3_region.clone();
    }
    if store.azure_endpoint.is_some() {
        options.azure_endpoint = store.azure_endpoint.clone();
    }
    Destination::parse(dest, &options).map_err(Failure::usage_error)
}

/// Whether a URL names a Redis server.
fn is_redis(url: &str) -> bool {
    url.starts_with("redis://") || url.starts_with("rediss://")
}

fn redis_url(url: &str) -> Result<pgharbor_rdb::RedisUrl, Failure> {
    pgharbor_rdb::RedisUrl::parse(url).map_err(Failure::usage_error)
}

/// `--restore-to` for verification: a PostgreSQL server (returned apart) or
/// a Redis server (in the options).
fn verify_options(
    restore_to: Option<&str>,
    decryption: Option<Decryption>,
    temp_dir: Option<std::path::PathBuf>,
) -> Result<(VerifyOptions, Option<ConnConfig>), Failure> {
    let mut options = VerifyOptions {
        decryption,
        jobs: jobs(None),
        temp_dir,
        ..VerifyOptions::default()
    };
    let postgres = match restore_to {
        Some(url) if is_redis(url) => {
            options.redis_restore_to = Some(redis_url(url)?);
            None
        }
        Some(url) => Some(postgres_url(url)?),
        None => None,
    };
    Ok((options, postgres))
}

pub(crate) fn postgres_url(url: &str) -> Result<ConnConfig, Failure> {
    ConnConfig::parse(url).map_err(Failure::usage_error)
}

fn secret_from(source: SecretSource, what: &str) -> Result<Secret, Failure> {
    source
        .resolve()
        .map_err(|e| Failure::usage(format!("{what}: {e}")))
}

fn encryption(args: &BackupArgs) -> Result<Option<Encryption>, Failure> {
    encryption_from(&EncryptArgs {
        encrypt_recipient: args.encrypt_recipient.clone(),
        encrypt_passphrase_env: args.encrypt_passphrase_env.clone(),
        encrypt_passphrase_file: args.encrypt_passphrase_file.clone(),
    })
}

/// The age encryption the options ask for, `None` for none.
pub(crate) fn encryption_from(args: &EncryptArgs) -> Result<Option<Encryption>, Failure> {
    let passphrase = match (&args.encrypt_passphrase_env, &args.encrypt_passphrase_file) {
        (Some(name), _) => Some(SecretSource::Env(name.clone())),
        (None, Some(path)) => Some(SecretSource::File(path.clone())),
        (None, None) => None,
    };
    match (passphrase, args.encrypt_recipient.is_empty()) {
        (Some(_), false) => Err(Failure::usage(
            "give age recipients or a passphrase, not both",
        )),
        (Some(source), true) => Ok(Some(Encryption::Passphrase(secret_from(
            source,
            "the encryption passphrase",
        )?))),
        (None, false) => Ok(Some(Encryption::Recipients(args.encrypt_recipient.clone()))),
        (None, true) => Ok(None),
    }
}

pub(crate) fn decryption(args: &DecryptArgs) -> Result<Option<Decryption>, Failure> {
    if let Some(path) = &args.decrypt_key_file {
        let key = secret_from(SecretSource::File(path.clone()), "the age identity file")?;
        return Ok(Some(Decryption::Identities(key)));
    }
    let passphrase = match (&args.decrypt_passphrase_env, &args.decrypt_passphrase_file) {
        (Some(name), _) => SecretSource::Env(name.clone()),
        (None, Some(path)) => SecretSource::File(path.clone()),
        (None, None) => return Ok(None),
    };
    Ok(Some(Decryption::Passphrase(secret_from(
        passphrase,
        "the backup's passphrase",
    )?)))
}

pub(crate) fn retention(keep: &KeepArgs) -> Retention {
    Retention {
        keep_last: keep.keep_last as usize,
        keep_daily: keep.keep_daily as usize,
        keep_weekly: keep.keep_weekly as usize,
        keep_monthly: keep.keep_monthly as usize,
        utc_offset: None,
    }
}

/// Base backups' rules: their own `--base-keep-*` when one is given, else `--keep-*`.
fn base_retention(keep: &KeepArgs, base: &crate::args::BaseKeepArgs) -> Retention {
    let own = [
        base.base_keep_last,
        base.base_keep_daily,
        base.base_keep_weekly,
        base.base_keep_monthly,
    ];
    if own.iter().all(Option::is_none) {
        return retention(keep);
    }
    let count = |n: Option<u32>| n.unwrap_or(0) as usize;
    Retention {
        keep_last: count(base.base_keep_last),
        keep_daily: count(base.base_keep_daily),
        keep_weekly: count(base.base_keep_weekly),
        keep_monthly: count(base.base_keep_monthly),
        utc_offset: None,
    }
}

fn jobs(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    })
}

/// `pgharbor backup`.
pub async fn backup(args: BackupArgs) -> Result<u8, Failure> {
    if args.print_cronjob {
        return print_cronjob(&args);
    }
    let dest = destination(&args.to, &args.dest)?;
    match &args.every {
        None => {
            let report = backup_once(&args, &dest).await?;
            print_backup(&report, args.json)?;
            Ok(0)
        }
        Some(every) => backup_on_schedule(&args, &dest, every).await,
    }
}

/// One backup, then the optional verification and pruning.
async fn backup_once(args: &BackupArgs, dest: &Destination) -> Result<BackupReport, Failure> {
    let options = BackupOptions {
        roles: args.roles,
        with_role_passwords: args.with_role_passwords,
        encrypt: encryption(args)?,
        compress_level: args.compress_level,
        started_at: None,
    };
    let report = if is_redis(&args.url) {
        pgharbor_backup::backup_redis(&redis_url(&args.url)?, dest, &options).await?
    } else {
        backup_databases(args, dest, &options).await?
    };
    if args.verify_after {
        let (verify, restore_to) =
            verify_options(args.restore_to.as_deref(), None, args.temp_dir.clone())?;
        pgharbor_backup::verify(dest, Some(&report.id), restore_to.as_ref(), &verify)
            .await?
            .ensure_passed()?;
    }
    if args.prune {
        let logical = pgharbor_backup::KindRetention {
            logical: Some(retention(&args.keep)),
            base: None,
        };
        pgharbor_backup::prune_by_kind(dest, &logical, false).await?;
    }
    Ok(report)
}

async fn backup_databases(
    args: &BackupArgs,
    dest: &Destination,
    options: &BackupOptions,
) -> Result<BackupReport, Failure> {
    let server = postgres_url(&args.url)?;
    let selection = if args.all {
        Selection::All
    } else if args.database.is_empty() {
        Selection::One(server.dbname().to_string())
    } else {
        Selection::List(args.database.clone())
    };
    Ok(pgharbor_backup::backup_postgres(&server, selection, dest, options).await?)
}

fn print_backup(report: &BackupReport, json: bool) -> anyhow::Result<()> {
    if json {
        crate::render::print_json(report)?;
        return Ok(());
    }
    let manifest = &report.manifest;
    println!(
        "backup {} complete: {} file(s), {}, {:.1}s",
        report.id,
        manifest.files.len(),
        human_bytes(report.size),
        manifest.duration_seconds
    );
    for file in &manifest.files {
        println!(
            "  {}  {}  sha256 {}",
            file.name,
            human_bytes(file.size),
            file.sha256
        );
    }
    Ok(())
}

/// `--every`: a long-lived process (a container's main process).
async fn backup_on_schedule(
    args: &BackupArgs,
    dest: &Destination,
    every: &str,
) -> Result<u8, Failure> {
    let schedule = Schedule::parse(every, args.time_zone.as_deref())
        .map_err(|e| Failure::usage(e.to_string()))?;
    let mut options = RunnerOptions::new(job_name(args));
    if let Some(url) = &args.notify {
        options.webhook = Some(
            pgharbor_schedule::Webhook::new(url, args.notify_success)
                .map_err(|e| Failure::usage(e.to_string()))?,
        );
    }
    if let Some(addr) = &args.listen {
        options.metrics = Some(pgharbor_schedule::bind_metrics(addr).await?);
    }
    eprintln!("pgharbor: backing up on schedule {schedule}");
    let totals = pgharbor_schedule::run_forever(
        &schedule,
        || scheduled_run(args, dest),
        options,
        pgharbor_schedule::shutdown_signal(),
    )
    .await?;
    eprintln!(
        "pgharbor: stopped after {} run(s), {} failed, {} skipped",
        totals.runs, totals.failures, totals.skipped
    );
    Ok(0)
}

async fn scheduled_run(args: &BackupArgs, dest: &Destination) -> JobOutcome {
    let started = Instant::now();
    match backup_once(args, dest).await {
        Ok(report) => {
            let summary = format!(
                "backup {} complete ({})",
                report.id,
                human_bytes(report.size)
            );
            eprintln!("pgharbor: {summary}");
            JobOutcome {
                success: true,
                duration: started.elapsed(),
                size_bytes: Some(report.size),
                summary,
                details: serde_json::json!({ "id": report.id, "destination": dest.to_string() }),
            }
        }
        Err(failure) => {
            let summary = failure.message();
            eprintln!("pgharbor: backup failed: {summary}");
            JobOutcome {
                success: false,
                duration: started.elapsed(),
                size_bytes: None,
                summary,
                details: serde_json::json!({ "destination": dest.to_string() }),
            }
        }
    }
}

fn job_name(args: &BackupArgs) -> String {
    if is_redis(&args.url) {
        return redis_url(&args.url)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| "redis".into());
    }
    match postgres_url(&args.url) {
        Ok(config) => format!("{}/{}", config.endpoint(), config.dbname()),
        Err(_) => "backup".into(),
    }
}

/// `--print-cronjob`: the same command as a Kubernetes CronJob (one backup
/// per Job; `--every` itself becomes the CronJob's schedule).
fn print_cronjob(args: &BackupArgs) -> Result<u8, Failure> {
    let every = args.every.as_deref().expect("clap requires --every");
    Schedule::parse(every, args.time_zone.as_deref()).map_err(|e| Failure::usage(e.to_string()))?;
    let mut spec = pgharbor_schedule::CronJobSpec::new(&args.name, every, &args.image);
    spec.namespace = args.namespace.clone();
    spec.time_zone = args.time_zone.clone();
    spec.args = cronjob_args();
    for item in &args.secret_env {
        spec.env_from_secret.push(secret_env(item)?);
    }
    let yaml =
        pgharbor_schedule::cronjob_manifest(&spec).map_err(|e| Failure::usage(e.to_string()))?;
    print!("{yaml}");
    Ok(0)
}

/// This process's arguments without the scheduling and printing options.
fn cronjob_args() -> Vec<String> {
    const DROP_WITH_VALUE: &[&str] = &[
        "--every",
        "--time-zone",
        "--image",
        "--name",
        "--namespace",
        "--secret-env",
        "--listen",
    ];
    const DROP: &[&str] = &["--print-cronjob"];
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1).peekable();
    while let Some(arg) = args.next() {
        let flag = arg.split('=').next().unwrap_or(&arg).to_string();
        if DROP.contains(&flag.as_str()) {
            continue;
        }
        if DROP_WITH_VALUE.contains(&flag.as_str()) {
            if !arg.contains('=') {
                args.next();
            }
            continue;
        }
        out.push(arg);
    }
    out
}

fn secret_env(item: &str) -> Result<pgharbor_schedule::SecretEnv, Failure> {
    let bad = || Failure::usage(format!("--secret-env {item:?}: expected ENV=SECRET:KEY"));
    let (env, rest) = item.split_once('=').ok_or_else(bad)?;
    let (secret, key) = rest.split_once(':').ok_or_else(bad)?;
    Ok(pgharbor_schedule::SecretEnv {
        env: env.to_string(),
        secret: secret.to_string(),
        key: key.to_string(),
    })
}

/// Split `DEST/ID` into the destination and the id (`latest` allowed).
fn split_backup(backup: &str) -> Result<(&str, &str), Failure> {
    let trimmed = backup.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((dest, id)) if id == "latest" || pgharbor_backup::parse_id(id).is_some() => {
            Ok((dest, id))
        }
        _ => Err(Failure::usage(format!(
            "{backup}: expected DEST/ID (e.g. s3://bucket/pg/20261126T020000Z) or DEST/latest; \
             `pgharbor backups list DEST` shows the ids"
        ))),
    }
}

/// `pgharbor restore`.
pub async fn restore(args: RestoreArgs) -> Result<u8, Failure> {
    if args.pgdata.is_some() {
        return crate::pitr::restore(args).await;
    }
    let target_url = args.target.clone().unwrap_or_default();
    let (dest, id) = split_backup(&args.backup)?;
    let dest = destination(dest, &args.dest)?;
    if is_redis(&target_url) {
        return restore_redis(&args, &dest, id, &target_url).await;
    }
    let target = postgres_url(&target_url)?;
    let options = pgharbor_backup::RestoreOptions {
        database: args.database.clone(),
        as_name: args.as_name.clone(),
        clean: args.clean,
        jobs: jobs(args.jobs),
        temp_dir: args.temp_dir.clone(),
        roles: args.roles,
        decryption: decryption(&args.decrypt)?,
    };
    let report = pgharbor_backup::restore(&dest, id, &target, &options).await?;
    if args.json {
        crate::render::print_json(&report)?;
        return Ok(0);
    }
    println!("restored backup {}", report.id);
    for db in &report.databases {
        println!(
            "  {} → {}: {} tables, {} rows, row counts equal to the backup's{}",
            db.source,
            db.target,
            db.tables,
            db.rows,
            if db.missing_roles.is_empty() {
                String::new()
            } else {
                format!(
                    " (owners not kept: roles missing on the target: {})",
                    db.missing_roles.join(", ")
                )
            }
        );
    }
    Ok(0)
}

/// `pgharbor restore DEST/ID redis://…`.
async fn restore_redis(
    args: &RestoreArgs,
    dest: &Destination,
    id: &str,
    target: &str,
) -> Result<u8, Failure> {
    let options = pgharbor_backup::RedisRestoreOptions {
        flush: args.flush,
        decryption: decryption(&args.decrypt)?,
    };
    let report = pgharbor_backup::restore_redis(dest, id, &redis_url(target)?, &options).await?;
    if args.json {
        crate::render::print_json(&report)?;
        return Ok(0);
    }
    println!(
        "restored backup {}: {} keys with their TTLs ({} already expired, skipped){}",
        report.id,
        report.keys_restored,
        report.keys_expired,
        if report.flushed {
            ", after emptying the target"
        } else {
            ""
        }
    );
    Ok(0)
}

/// `pgharbor backups …`.
pub async fn backups(command: BackupsCommand) -> Result<u8, Failure> {
    match command {
        BackupsCommand::List(args) => list(args).await,
        BackupsCommand::Verify(args) => verify(args).await,
        BackupsCommand::Prune(args) => prune(args).await,
    }
}

async fn list(args: BackupsListArgs) -> Result<u8, Failure> {
    let dest = destination(&args.dest, &args.store)?;
    let entries = pgharbor_backup::list(&dest).await?;
    if args.json {
        crate::render::print_json(&entries)?;
        return Ok(0);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["id", "time", "databases", "size", "state", "age"]);
    for entry in &entries {
        table.add_row([
            entry.id.clone(),
            entry.time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            entry.databases.join(","),
            human_bytes(entry.size),
            state_text(entry.state, entry.problem.as_deref()),
            pgharbor_health::duration::format_secs(entry.age_seconds.max(0) as f64),
        ]);
    }
    println!("{table}");
    Ok(0)
}

fn state_text(state: BackupState, problem: Option<&str>) -> String {
    match problem {
        Some(problem) => format!("{}: {problem}", state.name()),
        None => state.name().to_owned(),
    }
}

async fn verify(args: BackupsVerifyArgs) -> Result<u8, Failure> {
    if args.pitr {
        return crate::pitr::verify(args).await;
    }
    let dest = destination(&args.dest, &args.store)?;
    let (options, restore_to) = verify_options(
        args.restore_to.as_deref(),
        decryption(&args.decrypt)?,
        args.temp_dir.clone(),
    )?;
    if args.all {
        let reports = pgharbor_backup::verify_all(&dest, restore_to.as_ref(), &options).await?;
        return verified_all(&dest, &reports, args.json);
    }
    let report =
        pgharbor_backup::verify(&dest, args.id.as_deref(), restore_to.as_ref(), &options).await?;
    if args.json {
        crate::render::print_json(&report)?;
    } else if report.passed {
        println!("{}", verified_text(&report));
    }
    report.ensure_passed()?;
    Ok(0)
}

/// `backup ID: N file(s) intact[, N database(s) restored …]`, or what is
/// damaged.
fn verified_text(report: &VerifyReport) -> String {
    if !report.passed {
        return format!(
            "backup {}: damaged: {}",
            report.id,
            report.problems.join("; ")
        );
    }
    let restored = if report.databases_restored > 0 {
        format!(
            ", {} database(s) restored and row counts equal to the manifest",
            report.databases_restored
        )
    } else {
        String::new()
    };
    format!(
        "backup {}: {} file(s) intact{restored}",
        report.id, report.files_checked
    )
}

/// Prints `backups verify --all`'s reports; an error naming every damaged
/// backup (exit 1) when there is one.
fn verified_all(dest: &Destination, reports: &[VerifyReport], json: bool) -> Result<u8, Failure> {
    if json {
        crate::render::print_json(reports)?;
    } else {
        for report in reports {
            println!("{}", verified_text(report));
        }
    }
    let damaged: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{} ({})", r.id, r.problems.join("; ")))
        .collect();
    if damaged.is_empty() {
        if !json {
            println!(
                "{} backup(s) at {dest} verified, none damaged",
                reports.len()
            );
        }
        return Ok(0);
    }
    Err(Failure::from(anyhow::anyhow!(
        "{} of {} backup(s) at {dest} are damaged: {}",
        damaged.len(),
        reports.len(),
        damaged.join("; ")
    )))
}

async fn prune(args: BackupsPruneArgs) -> Result<u8, Failure> {
    let dest = destination(&args.dest, &args.store)?;
    let policies = pgharbor_backup::KindRetention {
        logical: Some(retention(&args.keep)),
        base: Some(base_retention(&args.keep, &args.base_keep)),
    };
    let report = pgharbor_backup::prune_by_kind(&dest, &policies, args.dry_run).await?;
    let wal = pgharbor_pitr::prune_wal(&dest, &report.removed, args.dry_run).await?;
    if args.json {
        let mut shown = serde_json::to_value(&report).map_err(anyhow::Error::from)?;
        shown["wal"] = serde_json::to_value(&wal).map_err(anyhow::Error::from)?;
        crate::render::print_json(&shown)?;
        return Ok(0);
    }
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for kept in &report.kept {
        println!("keep   {}  ({})", kept.id, kept.reasons.join(", "));
    }
    for id in &report.removed {
        println!("{verb} {id}");
    }
    if let (Some(first), false) = (&wal.kept_from, wal.removed.is_empty()) {
        println!(
            "{verb} {} WAL file(s) older than {first}, the first the oldest base backup kept needs",
            wal.removed.len()
        );
    }
    Ok(0)
}

pub(crate) fn human_bytes(bytes: u64) -> String {
    pgharbor_health::human_bytes(bytes as f64)
}
