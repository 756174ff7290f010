//! `pgharbor apply PLAN.toml`: converge the target server to the plan
//! (pgharbor-apply), then run the copies it names (pgharbor-migrate's
//! PostgreSQL copy), skipping those already finished and verified.

use crate::args::ApplyArgs;
use crate::interrupt::Leftovers;
use crate::{progress, render, Failure};
use pgharbor_apply::{ApplyOptions, Copy, Plan};
use pgharbor_migrate::postgres::{copy_database, CopyOptions, CopyReport};
use pgharbor_migrate::CancellationToken;

/// What happened to one copy of the plan.
#[derive(Debug, serde::Serialize)]
struct CopyOutcome {
    database: String,
    source: String,
    /// `copied`, `already copied` (skipped), or `would copy` (dry run).
    state: &'static str,
    report: Option<CopyReport>,
}

/// Run `pgharbor apply`.
pub async fn apply(args: ApplyArgs) -> Result<u8, Failure> {
    let plan = Plan::from_file(&args.plan).map_err(Failure::usage_error)?;
    for role in plan
        .roles
        .iter()
        .filter(|r| r.password.as_ref().is_some_and(|p| p.is_literal()))
    {
        eprintln!(
            "pgharbor: warning: the password of role {} is written in {}; prefer {{ env = \"…\" }} or {{ file = \"…\" }}",
            role.name,
            args.plan.display()
        );
    }
    let copies = plan.copies().map_err(Failure::usage_error)?;
    let skip = pgharbor_apply::skip_finished_copies(&copies, args.recopy, args.dry_run)
        .await
        .map_err(Failure::from_migrate)?;
    let report = pgharbor_apply::apply(
        &plan,
        &ApplyOptions {
            dry_run: args.dry_run,
        },
    )
    .await?;
    if !args.json {
        print!("{report}");
    }
    let mut outcomes = Vec::new();
    let cancel = crate::interrupt::on_ctrl_c(Leftovers::CopyJournal { rerun: true });
    for (copy, already) in copies.iter().zip(skip) {
        outcomes.push(run_copy(&args, copy, already, &cancel).await?);
    }
    if args.json {
        let doc = serde_json::json!({ "apply": report, "copies": outcomes });
        crate::render::print_json(&doc)?;
    }
    Ok(0)
}

async fn run_copy(
    args: &ApplyArgs,
    copy: &Copy,
    already: bool,
    cancel: &CancellationToken,
) -> Result<CopyOutcome, Failure> {
    let source = pgharbor_migrate::postgres::source_label(&copy.source);
    let outcome = |state, report| CopyOutcome {
        database: copy.database.clone(),
        source: source.clone(),
        state,
        report,
    };
    if already {
        if !args.json {
            println!(
                "copy {source} → {}: already copied and verified (--recopy to copy again)",
                copy.database
            );
        }
        return Ok(outcome("already copied", None));
    }
    if args.dry_run {
        if !args.json {
            println!("copy {source} → {}: would copy", copy.database);
        }
        return Ok(outcome("would copy", None));
    }
    if !args.json {
        println!("copy {source} → {}:", copy.database);
    }
    let options = CopyOptions {
        jobs: args.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        }),
        no_owner: args.no_owner,
        no_privileges: args.no_privileges,
        resume: pgharbor_apply::resumes_interrupted_copy(copy)
            .await
            .map_err(Failure::from_migrate)?,
        no_verify: args.no_verify,
        create_database: false,
        rerun_resumes: true,
    };
    let reporter = progress::Reporter::new(args.json);
    let report = copy_database(
        &copy.source,
        &copy.target,
        &options,
        reporter.clone(),
        cancel,
    )
    .await
    .map_err(|e| {
        Failure::from_migrate(e.context(format!("copying into database {}", copy.database)))
    })?;
    reporter.done();
    if !args.json {
        render::postgres::print_report(&report, false)?;
    }
    Ok(outcome("copied", Some(report)))
}
