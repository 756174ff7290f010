//! The end-of-run summary (a table for people, JSON for scripts).

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use pgharbor_core::report::MigrationReport;

/// Print the report on stdout.
pub fn print_report(report: &MigrationReport, json: bool) -> anyhow::Result<()> {
    if json {
        crate::render::print_json(report)?;
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec!["table", "rows", "MB", "seconds", "verified"]);
    for t in &report.tables {
        let verified = match &t.verification {
            None => "skipped".to_string(),
            Some(v) if v.matches => format!("ok {}", &v.target_checksum[..8]),
            Some(v) => format!(
                "MISMATCH source {} rows, target {} rows",
                v.source_rows, v.target_rows
            ),
        };
        table.add_row(vec![
            t.source.clone(),
            t.rows.to_string(),
            format!("{:.1}", t.bytes as f64 / 1e6),
            format!("{:.2}", t.load_seconds),
            verified,
        ]);
    }
    if let Some(statement) = &report.earlier_run_restored {
        println!("{statement}");
    }
    println!("{table}");
    println!(
        "{} rows, {:.1} MB in {:.2} s from {} to {}",
        report.total_rows,
        report.total_bytes as f64 / 1e6,
        report.seconds,
        report.source,
        report.target
    );
    print_phases(report);
    if report.indexes_rebuilt > 0 {
        println!(
            "{} index(es) of the application's tables dropped for the load and rebuilt after it",
            report.indexes_rebuilt
        );
    }
    if !report.lossy.is_zero() {
        println!("changed by the rules you chose: {} value(s) NUL-stripped, {} value(s) with invalid UTF-8 replaced", report.lossy.nul_stripped, report.lossy.utf8_replaced);
    }
    section(
        "widened columns (values did not fit the declared type; nothing lost)",
        report.widened_columns.iter().cloned(),
    );
    section(
        "reported, not copied",
        report
            .reported
            .iter()
            .map(|r| format!("{} {}: {}", r.kind, r.name, r.note)),
    );
    section(
        "foreign keys left NOT VALID because rows have no parent",
        report.orphans.iter().map(|o| {
            format!(
                "{} on {}: {} orphan row(s), e.g. {}",
                o.constraint,
                o.table,
                o.orphan_rows,
                o.sample_keys.join("; ")
            )
        }),
    );
    section(
        "not built after the load",
        report
            .finish_issues
            .iter()
            .map(|i| format!("{} {}: {} — SQL: {}", i.kind, i.name, i.error, i.sql)),
    );
    for t in &report.tables {
        if let Some(v) = t.verification.as_ref().filter(|v| !v.matches) {
            println!(
                "verification FAILED for {}: source {} rows / {}, target {} rows / {}",
                t.source, v.source_rows, v.source_checksum, v.target_rows, v.target_checksum
            );
            for d in &v.sample_differences {
                println!("  {d}");
            }
        }
    }
    if report.source_changed_during_run {
        println!("the source changed while it was copied: the target holds {} as it was when the run started (the verification compares that moment); stop the application and run again with --drop-existing (into an application's own tables: --into-existing --truncate) to include the later writes", report.source);
    }
    match report.verified {
        Some(true) => println!("verified: every table matches (row counts and content checksums)"),
        Some(false) => println!("verification FAILED: see the tables above"),
        None => println!("not verified (--no-verify)"),
    }
    Ok(())
}

/// The time each phase took, on one line.
pub fn print_phases(report: &MigrationReport) {
    if report.phases.is_empty() {
        return;
    }
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|p| format!("{} {:.2} s", p.phase, p.seconds))
        .collect();
    println!("phases: {}", phases.join(" · "));
}

fn section(title: &str, lines: impl Iterator<Item = String>) {
    let lines: Vec<String> = lines.collect();
    if lines.is_empty() {
        return;
    }
    println!("{title}:");
    for line in lines {
        println!("  - {line}");
    }
}
