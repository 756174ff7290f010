//! `pgharbor migrate postgres://… postgres://…`: copying a PostgreSQL
//! database to another server.

use crate::args::{MigrateArgs, SourceArgs};
use crate::interrupt::Leftovers;
use crate::{progress, Failure};
use pgharbor_conn::ConnConfig;
use pgharbor_migrate::postgres::{self, CopyOptions};

/// Copy one database; prints the report.
pub async fn migrate(
    args: &MigrateArgs,
    source: ConnConfig,
    target: Option<ConnConfig>,
) -> Result<u8, Failure> {
    let common = &args.common;
    let jobs = crate::migrate::jobs(common);
    if args.dry_run {
        let plan = postgres::plan_copy(&source, jobs)
            .await
            .map_err(Failure::from_migrate)?;
        crate::render::postgres::print_plan(&plan, common.json)?;
        return Ok(0);
    }
    let target = target.expect("required unless --dry-run");
    let options = CopyOptions {
        jobs,
        no_owner: args.no_owner,
        no_privileges: args.no_privileges,
        resume: args.resume,
        no_verify: args.no_verify,
        create_database: !args.no_create_database,
        rerun_resumes: false,
    };
    let reporter = progress::Reporter::new(common.json);
    let cancel = crate::interrupt::on_ctrl_c(Leftovers::CopyJournal { rerun: false });
    let report = postgres::copy_database(&source, &target, &options, reporter.clone(), &cancel)
        .await
        .map_err(Failure::from_migrate)?;
    reporter.done();
    crate::render::postgres::print_report(&report, common.json)?;
    Ok(0)
}

/// `pgharbor verify postgres://… postgres://…`: compare every table of the
/// source database (in one snapshot) with the target, without copying.
pub async fn verify(
    common: &SourceArgs,
    source: &ConnConfig,
    target: &ConnConfig,
) -> Result<u8, Failure> {
    let reporter = progress::Reporter::new(common.json);
    let cancel = crate::interrupt::on_ctrl_c(Leftovers::Nothing);
    let checks = postgres::readback::compare_databases(
        source,
        target,
        crate::migrate::jobs(common),
        reporter.clone(),
        &cancel,
    )
    .await
    .map_err(Failure::from_migrate)?;
    reporter.done();
    if common.json {
        crate::render::print_json(&checks)?;
        return Ok(0);
    }
    for check in &checks {
        println!("  {}: {} rows, verified", check.table, check.source_rows);
    }
    println!(
        "{} tables: counts and checksums equal on both sides",
        checks.len()
    );
    Ok(0)
}
