//! The human-readable plan of an SQLite move printed by `--dry-run` (a new
//! schema, or `--into-existing`'s mapping).

use pgharbor_core::plan::Plan;
use pgharbor_pgwriter::ddl;
use std::fmt::Write;

/// Render the complete plan: DDL, every type decision with its reason, load
/// order, what is built after the load, and what is reported instead of copied.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- pgharbor plan: {} table(s) into schema {:?}",
        plan.tables.len(),
        plan.target_schema
    );
    let _ = writeln!(
        out,
        "-- value rules: NUL characters → {:?}, invalid UTF-8 → {:?}",
        plan.policy.nul, plan.policy.invalid_utf8
    );
    let _ = writeln!(out, "\n-- Load order (largest first; rows in the source):");
    for (i, t) in plan.tables.iter().enumerate() {
        let _ = writeln!(
            out,
            "--   {:>3}. {} ({} rows)",
            i + 1,
            t.source_name,
            t.source_rows
        );
    }
    for t in &plan.tables {
        let _ = writeln!(out, "\n-- Table {:?}: column types", t.source_name);
        for d in &t.decisions {
            let mark = if d.widened { " [WIDENED]" } else { "" };
            let _ = writeln!(out, "--   {} → {}{mark}: {}", d.name, d.pg_type, d.reason);
        }
        let _ = writeln!(out, "{};", ddl::create_table(&t.spec));
    }
    let _ = writeln!(out, "\n-- After the load: keys and indexes");
    for t in &plan.tables {
        if let Some(pk) = &t.spec.primary_key {
            let _ = writeln!(out, "{};", ddl::primary_key_index(&t.spec.name, pk));
            let _ = writeln!(out, "{};", ddl::attach_primary_key(&t.spec.name));
        }
        for index in &t.spec.indexes {
            let _ = writeln!(out, "{};", ddl::create_index(&t.spec.name, index));
        }
    }
    let _ = writeln!(
        out,
        "\n-- After the load: foreign keys (validated; orphan rows are reported)"
    );
    for t in &plan.tables {
        for fk in &t.spec.foreign_keys {
            let _ = writeln!(out, "{};", ddl::add_foreign_key(&t.spec.name, fk));
        }
    }
    let _ = writeln!(
        out,
        "\n-- After the load: identity sequences continue above max(id) and sqlite_sequence"
    );
    for t in &plan.tables {
        for c in t.spec.columns.iter().filter(|c| c.identity.is_some()) {
            let _ = writeln!(
                out,
                "--   {}.{} (sqlite_sequence: {})",
                t.source_name,
                c.name,
                t.sequence_floor.map_or("none".into(), |s| s.to_string())
            );
        }
    }
    if !plan.views.is_empty() {
        let _ = writeln!(
            out,
            "\n-- Views (recreated if PostgreSQL accepts their SQL, otherwise reported)"
        );
        for v in &plan.views {
            let _ = writeln!(out, "{};", ddl::create_view(v));
        }
    }
    if !plan.reported.is_empty() {
        let _ = writeln!(out, "\n-- Reported, not copied:");
        for r in &plan.reported {
            let _ = writeln!(out, "--   {} {:?}: {}", r.kind, r.name, r.note);
        }
    }
    let widened = plan.widened_columns();
    let _ = writeln!(out, "\n-- Warnings: {} widened column(s)", widened.len());
    for w in widened {
        let _ = writeln!(out, "--   {w}");
    }
    out
}

/// Render a plan for loading into existing tables: the table and column
/// mapping with target types, load order, and what is reported.
pub fn render_existing(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- pgharbor plan: load {} table(s) into the existing tables of schema {:?}",
        plan.tables.len(),
        plan.target_schema
    );
    let _ = writeln!(
        out,
        "-- value rules: NUL characters → {:?}, invalid UTF-8 → {:?}",
        plan.policy.nul, plan.policy.invalid_utf8
    );
    for t in &plan.tables {
        let _ = writeln!(
            out,
            "\n-- {} ({} rows) → {}",
            t.source_name, t.source_rows, t.spec.name
        );
        for (d, source) in t.decisions.iter().zip(&t.source_columns) {
            let _ = writeln!(
                out,
                "--   {source} ({}) → {}",
                if d.declared.is_empty() {
                    "no type"
                } else {
                    &d.declared
                },
                d.reason.trim_start_matches("the target column ")
            );
        }
    }
    if !plan.reported.is_empty() {
        let _ = writeln!(out, "\n-- Not copied:");
        for r in &plan.reported {
            let _ = writeln!(out, "--   {} {:?}: {}", r.kind, r.name, r.note);
        }
    }
    out
}
