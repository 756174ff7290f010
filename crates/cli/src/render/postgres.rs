//! What a PostgreSQL → PostgreSQL copy prints: the plan (`--dry-run`) and
//! the report (per table rows and verification, then totals), or JSON.

use pgharbor_migrate::postgres::{CopyPlan, CopyReport};

pub fn print_plan(plan: &CopyPlan, json: bool) -> anyhow::Result<()> {
    if json {
        crate::render::print_json(plan)?;
        return Ok(());
    }
    println!("source: PostgreSQL {}", plan.source_version);
    println!(
        "schema: {} (pre-data before the rows, post-data after)",
        plan.pg_dump
    );
    println!("extensions: {}", plan.extensions.join(", "));
    for schema in &plan.journal_left_out {
        println!("{}", journal_left_out(schema));
    }
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
        crate::render::print_json(report)?;
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
    for schema in &report.journal_left_out {
        println!("  {}", journal_left_out(schema));
    }
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

/// The line saying a journal schema of the source is not copied.
fn journal_left_out(schema: &str) -> String {
    format!(
        "schema {schema} left out: pgharbor's journal of the runs into the source database, not its data"
    )
}

fn human_bytes(bytes: i64) -> String {
    pgharbor_health::human_bytes(bytes as f64)
}
