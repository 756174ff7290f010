//! `pgharbor migrate postgres://… postgres://…`: copying a PostgreSQL
//! database to another server.

use crate::args::{MigrateArgs, SourceArgs};
use crate::{progress, Failure};
use pgharbor_conn::ConnConfig;
use pgharbor_migrate::postgres::{self, CopyOptions, CopyReport};

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
        print_plan(&plan, common.json)?;
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
    let report = postgres::copy_database(&source, &target, &options, reporter.clone())
        .await
        .map_err(Failure::from_migrate)?;
    reporter.done();
    print_report(&report, common.json)?;
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
    let checks = postgres::verify::compare_databases(
        source,
        target,
        crate::migrate::jobs(common),
        reporter.clone(),
    )
    .await
    .map_err(Failure::from_migrate)?;
    reporter.done();
    if common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&checks).map_err(anyhow::Error::from)?
        );
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

fn print_plan(plan: &postgres::CopyPlan, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(plan)?);
        return Ok(());
    }
    println!("source: PostgreSQL {}", plan.source_version);
    println!(
        "schema: {} (pre-data before the rows, post-data after)",
        plan.pg_dump
    );
    println!("extensions: {}", plan.extensions.join(", "));
    println!("tables ({}), largest first:", plan.tables.len());
    for (name, bytes, parts) in &plan.tables {
        let split = if *parts > 1 {
            format!(", in {parts} parts")
        } else {
            String::new()
        };
        println!("  {name}: {}{split}", human_bytes(*bytes));
    }
    Ok(())
}

/// Print what a copy did: per table rows and verification, then totals.
pub fn print_report(report: &CopyReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    println!(
        "copied PostgreSQL {} → {} ({}{})",
        report.source_version,
        report.target_version,
        if report.database_created {
            "database created"
        } else {
            "existing database"
        },
        if report.resumed { ", resumed" } else { "" }
    );
    println!(
        "schema: {} objects by {}",
        report.schema_objects, report.pg_dump
    );
    for name in &report.adaptations.settings_skipped {
        println!("  setting {name} left out: the target server does not know it");
    }
    for option in &report.adaptations.attribute_options_skipped {
        println!("  column option {option} left out: the target server does not recognise it");
    }
    for change in &report.adaptations.extension_versions {
        println!("  extension {change}: the target does not offer the source's version");
    }
    let verified = report.tables.iter().all(|t| t.target_rows.is_some());
    for table in &report.tables {
        let check = match table.target_rows {
            Some(_) if table.matches() => "verified",
            Some(_) => "MISMATCH",
            None => "not verified",
        };
        println!("  {}: {} rows, {check}", table.table, table.source_rows);
    }
    println!(
        "{} tables, {} rows, {} sequences, {} large objects{}",
        report.tables.len(),
        report.rows(),
        report.sequences,
        report.large_objects,
        if verified {
            ": counts and checksums equal on both sides"
        } else {
            ""
        }
    );
    let s = &report.seconds;
    println!(
        "time: schema {:.1}s, data {:.1}s, indexes and constraints {:.1}s, verify {:.1}s, total {:.1}s",
        s.schema, s.data, s.post_data, s.verify, s.total
    );
    Ok(())
}

fn human_bytes(bytes: i64) -> String {
    pgharbor_health::human_bytes(bytes as f64)
}
