//! `pgharbor migrate` and `pgharbor verify` for SQLite sources.

use crate::args::{MigrateArgs, NulChoice, SourceArgs, Utf8Choice, VerifyArgs};
use crate::interrupt::Leftovers;
use crate::{progress, render, Failure};
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::{InvalidUtf8Policy, NulPolicy, ValuePolicy};
use pgharbor_migrate::chroma::layout::Layout;
use pgharbor_migrate::existing::{self, ExistingOptions};
use pgharbor_migrate::presets::{self, AppData, AppRun, NulRule, Preset};
use pgharbor_migrate::source_spec::{Command, GivenFlags, SourceSpec};
use pgharbor_migrate::sqlite::{self, MigrateOptions};
use pgharbor_migrate::uploads;
use pgharbor_migrate::Progress;
use pgharbor_sqlite::planner::PlanOptions;
use std::path::PathBuf;

/// SOURCE, parsed once by the library, or the usage error naming what is wrong.
fn detect(common: &SourceArgs) -> Result<SourceSpec, Failure> {
    let preset = common
        .preset
        .as_deref()
        .map(presets::resolve)
        .transpose()
        .map_err(Failure::from_migrate)?;
    SourceSpec::detect(&common.source, preset).map_err(Failure::from_migrate)
}

/// The options of `migrate` whose meaning depends on the kind of source.
fn migrate_flags(args: &MigrateArgs) -> GivenFlags {
    let common = &args.common;
    GivenFlags {
        into_existing: args.into_existing,
        truncate: args.truncate,
        resume: args.resume,
        drop_existing: args.drop_existing,
        ignore_columns: !args.ignore_columns.is_empty(),
        allow_version_mismatch: args.allow_version_mismatch,
        corresponding_revisions: !args.corresponding_revisions.is_empty(),
        preset: common.preset.is_some(),
        schema: common.schema.is_some(),
        nul: common.nul.is_some(),
    }
}

/// The options of `verify` whose meaning depends on the kind of source.
fn verify_flags(args: &VerifyArgs) -> GivenFlags {
    let common = &args.common;
    GivenFlags {
        into_existing: args.into_existing,
        ignore_columns: !args.ignore_columns.is_empty(),
        allow_version_mismatch: args.allow_version_mismatch,
        corresponding_revisions: !args.corresponding_revisions.is_empty(),
        preset: common.preset.is_some(),
        schema: common.schema.is_some(),
        nul: common.nul.is_some(),
        ..GivenFlags::default()
    }
}

/// Says on stderr that SOURCE was recognised as an application's data directory.
fn announce_app(source: &str, app: &AppData) {
    eprintln!(
        "pgharbor: {source} is {}'s data directory ({}): moving it as --preset {} does",
        app.preset.title,
        app.parts(),
        app.preset.name
    );
}

fn target_config(target: Option<&str>, required: bool) -> Result<Option<ConnConfig>, Failure> {
    let text = match target {
        Some(t) => t.to_string(),
        None => match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if required => return Err(Failure::usage("no TARGET given and DATABASE_URL is not set: pass a PostgreSQL URL as the second argument")),
            _ => return Ok(None),
        },
    };
    let config = ConnConfig::parse(&text).map_err(|e| Failure::usage(e.to_string()))?;
    Ok(Some(config))
}

/// The value rules; a preset's NUL rule holds unless `--nul` says otherwise.
fn policy(common: &SourceArgs, preset: Option<&Preset>) -> ValuePolicy {
    let preset_nul = preset.and_then(Preset::nul);
    ValuePolicy {
        nul: match (common.nul, preset_nul) {
            (Some(NulChoice::Error), _) | (None, None | Some(NulRule::Error)) => NulPolicy::Error,
            (Some(NulChoice::Strip), _) | (None, Some(NulRule::Strip)) => NulPolicy::Strip,
        },
        invalid_utf8: match common.invalid_utf8 {
            Utf8Choice::Error => InvalidUtf8Policy::Error,
            Utf8Choice::Replace => InvalidUtf8Policy::Replace,
        },
    }
}

/// `--schema`, else the first schema of the target's search_path, else `public`.
fn target_schema(common: &SourceArgs, target: Option<&ConnConfig>) -> String {
    let from_url = target
        .and_then(|t| t.search_path())
        .and_then(|p| {
            p.split(',')
                .map(|s| s.trim().trim_matches('"'))
                .find(|s| !s.is_empty() && *s != "$user")
        })
        .map(str::to_string);
    common
        .schema
        .clone()
        .or(from_url)
        .unwrap_or_else(|| "public".into())
}

pub(crate) fn jobs(common: &SourceArgs) -> usize {
    common
        .jobs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
        .max(1)
}

async fn plan(
    common: &SourceArgs,
    path: PathBuf,
    target: Option<&ConnConfig>,
) -> Result<
    (
        pgharbor_sqlite::open::SourceSnapshot,
        pgharbor_core::plan::Plan,
    ),
    Failure,
> {
    let options = PlanOptions {
        schema: target_schema(common, target),
        policy: policy(common, None),
    };
    let jobs = jobs(common);
    let planned = tokio::task::spawn_blocking(move || {
        pgharbor_sqlite::source::plan_file(&path, &options, jobs)
    })
    .await
    .map_err(anyhow::Error::from)?;
    Ok(planned?)
}

/// `pgharbor migrate --into-existing` (and an application's data directory,
/// whose database is `path`, by its preset's rules).
async fn migrate_into_existing(
    args: &MigrateArgs,
    path: PathBuf,
    app: Option<AppData>,
) -> Result<u8, Failure> {
    let common = &args.common;
    let target = target_config(common.target.as_deref(), true)?.expect("required");
    let preset = app.as_ref().map(|a| a.preset.as_ref());
    let mut options = ExistingOptions {
        schema: target_schema(common, Some(&target)),
        policy: policy(common, preset),
        jobs: jobs(common),
        verify: !args.no_verify,
        truncate: args.truncate,
        ignore_columns: args.ignore_columns.clone(),
        allow_version_mismatch: args.allow_version_mismatch,
        corresponding_revisions: args.corresponding_revisions.clone(),
        resume: args.resume,
        ..ExistingOptions::default()
    };
    if let Some(preset) = preset {
        preset.apply(&mut options, &target);
    }
    let reporter = progress::Reporter::new(common.json);
    reporter.phase("inspecting");
    let jobs = options.jobs;
    let (snapshot, schema) =
        tokio::task::spawn_blocking(move || pgharbor_sqlite::source::inspect_file(&path, jobs))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(|e| Failure::from_migrate(e.into()))?;
    if args.dry_run {
        let client = pgharbor_migrate::target::connect(&target).await?;
        let plan = existing::plan_into_existing(&client, &snapshot, &schema, &options)
            .await
            .map_err(Failure::from_migrate)?;
        if common.json {
            crate::render::print_json(&plan)?;
        } else {
            print!("{}", render::plan::render_existing(&plan));
        }
        return Ok(0);
    }
    let cancel = crate::interrupt::on_ctrl_c(match &app {
        Some(app) if app.preset.hook().is_some() => Leftovers::AppWithVectors,
        _ => Leftovers::LoadJournal,
    });
    let Some(app) = app else {
        let report = existing::migrate_into_existing(
            &common.source,
            snapshot,
            schema,
            &target,
            &options,
            reporter.clone(),
            &cancel,
        )
        .await
        .map_err(Failure::from_migrate)?;
        reporter.done();
        render::migration::print_report(&report, common.json)?;
        return Ok(exit_code(&report));
    };
    check_uploads_to(args, &app)?;
    let vectors = match args.vectors.skip_vectors || !is_open_webui(&app) {
        true => None,
        false => Some(crate::chroma::options(
            args,
            &args.vectors,
            options.schema.clone(),
            options.policy,
            options.jobs,
            Layout::OpenWebUi,
        )?),
    };
    let run = AppRun {
        app: &app,
        source_label: &common.source,
        target: &target,
        database: &options,
        vectors: vectors.as_ref(),
        cancel: &cancel,
    };
    let mut printed = Ok(());
    let report = run
        .run(snapshot, schema, reporter.clone(), |database| {
            reporter.done();
            if !common.json {
                printed = render::migration::print_report(database, false);
            }
        })
        .await
        .map_err(Failure::from_migrate)?;
    printed?;
    reporter.done();
    let (uploads, uploads_failed) =
        open_webui_uploads(args, &app, report.next_steps.is_some()).await?;
    render::app::print_report(&report, &uploads, common.json)?;
    if let Some(failure) = uploads_failed {
        return Err(failure);
    }
    Ok(
        exit_code(&report.database)
            .max(report.vectors.as_ref().map_or(0, crate::chroma::exit_code)),
    )
}

/// The application's store `--uploads-to` copies: Open WebUI's `uploads/`.
const UPLOADS_STORE: &str = "uploads";

/// Open WebUI's uploads matter to this run: its preset's hook is Open
/// WebUI's code (other applications' files are named by their presets).
fn is_open_webui(app: &AppData) -> bool {
    app.preset.hook() == Some(presets::Hook::OpenWebUiVectors)
}

/// Refuse `--uploads-to` for another application, or without `uploads/`.
fn check_uploads_to(args: &MigrateArgs, app: &AppData) -> Result<(), Failure> {
    let Some(to) = &args.uploads_to else {
        return Ok(());
    };
    if !is_open_webui(app) {
        return Err(Failure::usage(format!(
            "--uploads-to copies Open WebUI's uploads/; {} is {}'s data",
            app.dir.display(),
            app.preset.title
        )));
    }
    let Some(from) = app.store_dir(UPLOADS_STORE) else {
        return Err(Failure::usage(format!(
            "--uploads-to {}: there is no uploads/ directory beside {} to copy",
            to.display(),
            app.database.display()
        )));
    };
    uploads::plan_uploads(from, to, args.overwrite_uploads)
        .map(|_| ())
        .map_err(|e| {
            Failure::usage(format!(
                "--uploads-to {}: {}; nothing was moved",
                to.display(),
                crate::render::error::explain(&e)
            ))
        })
}

/// Open WebUI's uploads: copied with `--uploads-to` once everything else
/// verified (`passed`), and what Open WebUI needs to find them; with the
/// failure to return once the report is printed when the copy failed.
async fn open_webui_uploads(
    args: &MigrateArgs,
    app: &AppData,
    passed: bool,
) -> Result<(render::app::Uploads, Option<Failure>), Failure> {
    if !is_open_webui(app) {
        return Ok((render::app::Uploads::default(), None));
    }
    let found = app.store_dir(UPLOADS_STORE).map(PathBuf::from);
    let mut not_copied = None;
    let mut failed = None;
    let copied = match (&args.uploads_to, &found) {
        (Some(to), Some(_)) if !passed => {
            not_copied = Some(format!(
                "uploads not copied to {}: verification failed",
                to.display()
            ));
            None
        }
        (Some(to), Some(from)) => {
            let (from, to, overwrite) = (from.clone(), to.clone(), args.overwrite_uploads);
            let copying =
                tokio::task::spawn_blocking(move || uploads::copy_uploads(&from, &to, overwrite))
                    .await
                    .map_err(anyhow::Error::from)?;
            match copying {
                Ok(report) => Some(report),
                Err(e) => {
                    failed = Some(Failure::from(anyhow::anyhow!(
                        "the database and vectors were moved and verified (see the steps above); copying uploads/ failed: {}",
                        crate::render::error::explain(&e)
                    )));
                    None
                }
            }
        }
        _ => None,
    };
    // What the file table says only adds advice: a failure to read it is told, not fatal.
    let steps = match uploads::referenced_uploads(&app.database, found.as_deref()) {
        Ok(referenced) => uploads::next_steps(found.as_deref(), copied.as_ref(), &referenced),
        Err(e) => format!(
            "{}(Where Open WebUI looks for its uploads could not be read: {}.)\n",
            uploads::next_steps(found.as_deref(), copied.as_ref(), &Default::default()),
            crate::render::error::explain(&e)
        ),
    };
    let uploads = render::app::Uploads {
        copied,
        steps,
        not_copied,
    };
    Ok((uploads, failed))
}

/// `pgharbor migrate chroma:DIR TARGET`.
async fn migrate_chroma(args: &MigrateArgs, dir: &std::path::Path) -> Result<u8, Failure> {
    let common = &args.common;
    let target = target_config(common.target.as_deref(), true)?.expect("required");
    let options = crate::chroma::options(
        args,
        &args.vectors,
        target_schema(common, Some(&target)),
        policy(common, None),
        jobs(common),
        Layout::Tables,
    )?;
    let report = crate::chroma::run(
        &common.source,
        dir,
        &target,
        &options,
        args.dry_run,
        common.json,
    )
    .await?;
    let Some(report) = report else {
        return Ok(0);
    };
    render::chroma::print_report(&report, common.json)?;
    Ok(crate::chroma::exit_code(&report))
}

/// `pgharbor migrate`.
pub async fn migrate(args: MigrateArgs) -> Result<u8, Failure> {
    if let Some(addr) = &args.listen {
        progress::serve_metrics(addr, &args.common.source).await?;
    }
    let spec = detect(&args.common)?;
    spec.check_flags(Command::Migrate, &migrate_flags(&args))
        .map_err(Failure::from_migrate)?;
    if args.uploads_to.is_some() && !matches!(spec, SourceSpec::App { .. }) {
        return Err(Failure::usage(
            "--uploads-to copies Open WebUI's uploads/: give Open WebUI's data directory (or --preset open-webui) as SOURCE",
        ));
    }
    match spec {
        SourceSpec::Chroma(dir) => migrate_chroma(&args, &dir).await,
        SourceSpec::Postgres(source) => {
            let target = target_config(args.common.target.as_deref(), !args.dry_run)?;
            crate::postgres::migrate(&args, *source, target).await
        }
        SourceSpec::App { app, inferred } => {
            if inferred {
                announce_app(&args.common.source, &app);
            }
            if args.vectors.skip_vectors && !is_open_webui(&app) {
                return Err(Failure::usage(format!(
                    "--skip-vectors: the {} preset moves no vectors (it is for open-webui's vector_db/)",
                    app.preset.name
                )));
            }
            migrate_into_existing(&args, app.database.clone(), Some(*app)).await
        }
        SourceSpec::Sqlite(path) if args.into_existing => {
            migrate_into_existing(&args, path, None).await
        }
        SourceSpec::Sqlite(path) => migrate_sqlite(&args, path).await,
        SourceSpec::Redis => unreachable!("check_flags refuses a Redis source"),
    }
}

/// `pgharbor migrate FILE TARGET`: a new schema planned from the SQLite file.
async fn migrate_sqlite(args: &MigrateArgs, path: PathBuf) -> Result<u8, Failure> {
    let common = &args.common;
    let target = target_config(common.target.as_deref(), !args.dry_run)?;
    let reporter = progress::Reporter::new(common.json);
    reporter.phase("planning");
    let (snapshot, plan) = plan(common, path, target.as_ref()).await?;
    if args.dry_run {
        if common.json {
            crate::render::print_json(&plan)?;
        } else {
            print!("{}", render::plan::render(&plan));
        }
        return Ok(0);
    }
    let target = target.expect("required unless --dry-run");
    let options = MigrateOptions {
        jobs: jobs(common),
        drop_existing: args.drop_existing,
        verify: !args.no_verify,
        create_database: !args.no_create_database,
    };
    let cancel = crate::interrupt::on_ctrl_c(Leftovers::CreatedTables);
    let report = sqlite::migrate(
        &common.source,
        snapshot,
        plan,
        &target,
        &options,
        reporter.clone(),
        &cancel,
    )
    .await
    .map_err(Failure::from_migrate)?;
    reporter.done();
    render::migration::print_report(&report, common.json)?;
    Ok(exit_code(&report))
}

/// `pgharbor verify`.
pub async fn verify(args: VerifyArgs) -> Result<u8, Failure> {
    let common = &args.common;
    let target = target_config(common.target.as_deref(), true)?.expect("required");
    let spec = detect(common)?;
    spec.check_flags(Command::Verify, &verify_flags(&args))
        .map_err(Failure::from_migrate)?;
    let path = match spec {
        SourceSpec::Postgres(source) => {
            return crate::postgres::verify(common, &source, &target).await
        }
        SourceSpec::Chroma(dir) => return verify_chroma(&args, &dir, &target).await,
        SourceSpec::App { app, inferred } => {
            if inferred {
                announce_app(&common.source, &app);
            }
            let path = app.database.clone();
            return verify_into_existing(&args, path, Some(&app.preset), &target).await;
        }
        SourceSpec::Sqlite(path) if args.into_existing => {
            return verify_into_existing(&args, path, None, &target).await
        }
        SourceSpec::Sqlite(path) => path,
        SourceSpec::Redis => unreachable!("check_flags refuses a Redis source"),
    };
    let reporter = progress::Reporter::new(common.json);
    reporter.phase("planning");
    let (snapshot, plan) = plan(common, path, Some(&target)).await?;
    let cancel = crate::interrupt::on_ctrl_c(Leftovers::Nothing);
    let report = sqlite::verify_only(
        &common.source,
        snapshot,
        plan,
        &target,
        jobs(common),
        reporter.clone(),
        &cancel,
    )
    .await
    .map_err(Failure::from_migrate)?;
    reporter.done();
    render::migration::print_report(&report, common.json)?;
    Ok(exit_code(&report))
}

/// `pgharbor verify chroma:DIR TARGET`.
async fn verify_chroma(
    args: &VerifyArgs,
    dir: &std::path::Path,
    target: &ConnConfig,
) -> Result<u8, Failure> {
    let common = &args.common;
    let options = crate::chroma::verify_options(
        args,
        target_schema(common, Some(target)),
        policy(common, None),
        jobs(common),
    )?;
    let report = crate::chroma::verify(&common.source, dir, target, &options, common.json).await?;
    render::chroma::print_report(&report, common.json)?;
    Ok(crate::chroma::exit_code(&report))
}

/// `pgharbor verify --into-existing` (and an application's database,
/// `path`, by its preset's rules).
async fn verify_into_existing(
    args: &VerifyArgs,
    path: PathBuf,
    preset: Option<&Preset>,
    target: &ConnConfig,
) -> Result<u8, Failure> {
    let common = &args.common;
    let mut options = ExistingOptions {
        schema: target_schema(common, Some(target)),
        policy: policy(common, preset),
        jobs: jobs(common),
        verify: true,
        ignore_columns: args.ignore_columns.clone(),
        allow_version_mismatch: args.allow_version_mismatch,
        corresponding_revisions: args.corresponding_revisions.clone(),
        ..ExistingOptions::default()
    };
    if let Some(preset) = preset {
        preset.apply(&mut options, target);
    }
    let reporter = progress::Reporter::new(common.json);
    let jobs = options.jobs;
    let (snapshot, schema) =
        tokio::task::spawn_blocking(move || pgharbor_sqlite::source::inspect_file(&path, jobs))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(|e| Failure::from_migrate(e.into()))?;
    let cancel = crate::interrupt::on_ctrl_c(Leftovers::Nothing);
    let report = existing::verify_existing(
        &common.source,
        snapshot,
        schema,
        target,
        &options,
        reporter.clone(),
        &cancel,
    )
    .await
    .map_err(Failure::from_migrate)?;
    reporter.done();
    render::migration::print_report(&report, common.json)?;
    Ok(exit_code(&report))
}

fn exit_code(report: &pgharbor_core::report::MigrationReport) -> u8 {
    if report.verified == Some(false) {
        1
    } else {
        0
    }
}
