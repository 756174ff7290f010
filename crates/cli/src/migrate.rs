//! `pgharbor migrate` and `pgharbor verify` for SQLite sources.

use crate::args::{MigrateArgs, NulChoice, Preset, SourceArgs, Utf8Choice, VerifyArgs};
use crate::{output, progress, Failure};
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::{InvalidUtf8Policy, NulPolicy, ValuePolicy};
use pgharbor_migrate::chroma::layout::Layout;
use pgharbor_migrate::existing::{self, ExistingOptions};
use pgharbor_migrate::presets::{OpenWebUi, VectorOutcome};
use pgharbor_migrate::sqlite::{self, MigrateOptions};
use pgharbor_migrate::Progress;
use pgharbor_sqlite::planner::PlanOptions;
use std::path::PathBuf;

/// The kinds of source the command line accepts.
enum Source {
    Sqlite(PathBuf),
}

fn parse_source(text: &str) -> Result<Source, Failure> {
    if let Some(path) = text.strip_prefix("sqlite:") {
        return Ok(Source::Sqlite(PathBuf::from(path)));
    }
    Ok(Source::Sqlite(PathBuf::from(text)))
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

fn policy(common: &SourceArgs) -> ValuePolicy {
    ValuePolicy {
        nul: match (common.nul, common.preset) {
            (Some(NulChoice::Error), _) | (None, None) => NulPolicy::Error,
            (Some(NulChoice::Strip), _) | (None, Some(Preset::OpenWebui)) => NulPolicy::Strip,
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
    target: Option<&ConnConfig>,
) -> Result<
    (
        pgharbor_sqlite::open::SourceSnapshot,
        pgharbor_core::plan::Plan,
    ),
    Failure,
> {
    let Source::Sqlite(path) = parse_source(&common.source)?;
    let options = PlanOptions {
        schema: target_schema(common, target),
        policy: policy(common),
    };
    let jobs = jobs(common);
    let planned = tokio::task::spawn_blocking(move || sqlite::plan_file(&path, &options, jobs))
        .await
        .map_err(anyhow::Error::from)?;
    Ok(planned?)
}

/// `pgharbor migrate --into-existing`.
async fn migrate_into_existing(args: &MigrateArgs) -> Result<u8, Failure> {
    let common = &args.common;
    let target = target_config(common.target.as_deref(), true)?.expect("required");
    let Source::Sqlite(path) = parse_source(&common.source)?;
    let open_webui = match common.preset {
        Some(Preset::OpenWebui) => Some(OpenWebUi::locate(&path).map_err(Failure::from_migrate)?),
        None => None,
    };
    let path = open_webui
        .as_ref()
        .map(|o| o.database.clone())
        .unwrap_or(path);
    let options = ExistingOptions {
        schema: target_schema(common, Some(&target)),
        policy: policy(common),
        jobs: jobs(common),
        verify: !args.no_verify,
        truncate: args.truncate,
        ignore_columns: args.ignore_columns.clone(),
        allow_version_mismatch: args.allow_version_mismatch,
        corresponding_revisions: args.corresponding_revisions.clone(),
        resume: args.resume,
    };
    let reporter = progress::Reporter::new(common.json);
    reporter.phase("inspecting");
    let jobs = options.jobs;
    let (snapshot, schema) = tokio::task::spawn_blocking(move || sqlite::inspect_file(&path, jobs))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(Failure::from_migrate)?;
    if args.dry_run {
        let client = pgharbor_migrate::target::connect(&target).await?;
        let plan = existing::plan_into_existing(&client, &snapshot, &schema, &options)
            .await
            .map_err(Failure::from_migrate)?;
        if common.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).map_err(anyhow::Error::from)?
            );
        } else {
            print!("{}", pgharbor_migrate::plan_text::render_existing(&plan));
        }
        return Ok(0);
    }
    let cancel = crate::interrupt::on_ctrl_c();
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
    let Some(open_webui) = open_webui else {
        output::print_report(&report, common.json)?;
        return Ok(exit_code(&report));
    };
    if !common.json {
        output::print_report(&report, false)?;
    }
    let vectors = match open_webui
        .chroma_store()
        .filter(|_| report.verified != Some(false))
    {
        Some(dir) if !args.vectors.skip_vectors => {
            let chroma = crate::chroma::options(
                args,
                &args.vectors,
                options.schema.clone(),
                options.policy,
                options.jobs,
                Layout::OpenWebUi,
            )?;
            let moved = crate::chroma::run(
                &dir.display().to_string(),
                dir,
                &target,
                &chroma,
                false,
                common.json,
            )
            .await
            .map_err(|f| {
                f.context("the database was moved and verified; moving vector_db/ failed")
            })?
            .expect("not a dry run");
            if !common.json {
                crate::chroma::print_report(&moved, false)?;
            }
            Some(moved)
        }
        _ => None,
    };
    if common.json {
        let both = serde_json::json!({ "database": &report, "vectors": &vectors });
        println!(
            "{}",
            serde_json::to_string_pretty(&both).map_err(anyhow::Error::from)?
        );
    }
    let code = exit_code(&report).max(vectors.as_ref().map_or(0, crate::chroma::exit_code));
    let outcome = match (&vectors, open_webui.chroma_store()) {
        (Some(moved), _) => VectorOutcome::Moved(moved.open_webui_env.clone()),
        (None, Some(_)) => VectorOutcome::Skipped,
        (None, None) => VectorOutcome::NoStore,
    };
    if code == 0 {
        let steps = open_webui.next_steps(&target, &outcome);
        if common.json {
            eprint!("{steps}");
        } else {
            print!("\n{steps}");
        }
    }
    Ok(code)
}

/// `pgharbor migrate chroma:DIR TARGET`.
async fn migrate_chroma(args: &MigrateArgs, dir: &std::path::Path) -> Result<u8, Failure> {
    let common = &args.common;
    if args.into_existing
        || args.resume
        || args.allow_version_mismatch
        || !args.corresponding_revisions.is_empty()
        || !args.ignore_columns.is_empty()
    {
        return Err(Failure::usage("--into-existing, --resume, --allow-version-mismatch, --corresponding-revision and --ignore-columns are for SQLite sources; a Chroma source takes --layout"));
    }
    let target = target_config(common.target.as_deref(), true)?.expect("required");
    let options = crate::chroma::options(
        args,
        &args.vectors,
        target_schema(common, Some(&target)),
        policy(common),
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
    crate::chroma::print_report(&report, common.json)?;
    Ok(crate::chroma::exit_code(&report))
}

/// `pgharbor migrate`.
pub async fn migrate(args: MigrateArgs) -> Result<u8, Failure> {
    if let Some(addr) = &args.listen {
        progress::serve_metrics(addr, &args.common.source).await?;
    }
    if let Some(dir) =
        crate::chroma::chroma_dir(&args.common.source).filter(|_| args.common.preset.is_none())
    {
        return migrate_chroma(&args, &dir).await;
    }
    if crate::postgres::is_postgres_source(&args.common.source) {
        let target = target_config(args.common.target.as_deref(), !args.dry_run)?;
        return crate::postgres::migrate(&args, target).await;
    }
    if args.into_existing || args.common.preset.is_some() {
        return migrate_into_existing(&args).await;
    }
    if args.truncate
        || args.resume
        || args.allow_version_mismatch
        || !args.corresponding_revisions.is_empty()
        || !args.ignore_columns.is_empty()
    {
        return Err(Failure::usage(
            "--truncate, --resume, --allow-version-mismatch, --corresponding-revision and --ignore-columns go with --into-existing (or --preset)",
        ));
    }
    let common = &args.common;
    let target = target_config(common.target.as_deref(), !args.dry_run)?;
    let reporter = progress::Reporter::new(common.json);
    reporter.phase("planning");
    let (snapshot, plan) = plan(common, target.as_ref()).await?;
    if args.dry_run {
        if common.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).map_err(anyhow::Error::from)?
            );
        } else {
            print!("{}", pgharbor_migrate::plan_text::render(&plan));
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
    let cancel = crate::interrupt::on_ctrl_c();
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
    output::print_report(&report, common.json)?;
    Ok(exit_code(&report))
}

/// `pgharbor verify`.
pub async fn verify(args: VerifyArgs) -> Result<u8, Failure> {
    let common = &args.common;
    let target = target_config(common.target.as_deref(), true)?.expect("required");
    if crate::postgres::is_postgres_source(&common.source) {
        return crate::postgres::verify(common, &target).await;
    }
    if let Some(dir) = crate::chroma::chroma_dir(&common.source).filter(|_| common.preset.is_none())
    {
        return verify_chroma(&args, &dir, &target).await;
    }
    if args.into_existing || common.preset.is_some() {
        return verify_into_existing(&args, &target).await;
    }
    let reporter = progress::Reporter::new(common.json);
    reporter.phase("planning");
    let (snapshot, plan) = plan(common, Some(&target)).await?;
    let cancel = crate::interrupt::on_ctrl_c();
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
    output::print_report(&report, common.json)?;
    Ok(exit_code(&report))
}

/// `pgharbor verify chroma:DIR TARGET`.
async fn verify_chroma(
    args: &VerifyArgs,
    dir: &std::path::Path,
    target: &ConnConfig,
) -> Result<u8, Failure> {
    let common = &args.common;
    if args.into_existing || args.allow_version_mismatch || !args.ignore_columns.is_empty() {
        return Err(Failure::usage("--into-existing, --allow-version-mismatch and --ignore-columns are for SQLite sources; a Chroma source takes --layout"));
    }
    let options = crate::chroma::verify_options(
        args,
        target_schema(common, Some(target)),
        policy(common),
        jobs(common),
    )?;
    let report = crate::chroma::verify(&common.source, dir, target, &options, common.json).await?;
    crate::chroma::print_report(&report, common.json)?;
    Ok(crate::chroma::exit_code(&report))
}

/// `pgharbor verify --into-existing`.
async fn verify_into_existing(args: &VerifyArgs, target: &ConnConfig) -> Result<u8, Failure> {
    let common = &args.common;
    let Source::Sqlite(path) = parse_source(&common.source)?;
    let path = match common.preset {
        Some(Preset::OpenWebui) => {
            OpenWebUi::locate(&path)
                .map_err(Failure::from_migrate)?
                .database
        }
        None => path,
    };
    let options = ExistingOptions {
        schema: target_schema(common, Some(target)),
        policy: policy(common),
        jobs: jobs(common),
        verify: true,
        ignore_columns: args.ignore_columns.clone(),
        allow_version_mismatch: args.allow_version_mismatch,
        corresponding_revisions: args.corresponding_revisions.clone(),
        ..ExistingOptions::default()
    };
    let reporter = progress::Reporter::new(common.json);
    let jobs = options.jobs;
    let (snapshot, schema) = tokio::task::spawn_blocking(move || sqlite::inspect_file(&path, jobs))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(Failure::from_migrate)?;
    let cancel = crate::interrupt::on_ctrl_c();
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
    output::print_report(&report, common.json)?;
    Ok(exit_code(&report))
}

fn exit_code(report: &pgharbor_core::report::MigrationReport) -> u8 {
    if report.verified == Some(false) {
        1
    } else {
        0
    }
}
