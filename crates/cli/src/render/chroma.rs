//! What a Chroma move prints: the plan (`--dry-run`) and the report (a
//! table per collection, the conversions, the recall findings), or JSON.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use pgharbor_core::schema::quote_ident;
use pgharbor_migrate::chroma::layout::{self, ChromaPlan, Layout};
use pgharbor_migrate::chroma::recall::{self, RecallReport};
use pgharbor_migrate::chroma::{ChromaReport, Store};

/// The plan for people (`--dry-run`): tables, columns, where each collection
/// goes and from which files, indexes and notes.
pub fn plan(plan: &ChromaPlan, store: &Store) -> String {
    let collections = store.collections();
    let mut out = String::new();
    let layout = match plan.layout {
        Layout::OpenWebUi => "open-webui (Open WebUI's document_chunk)",
        Layout::Tables => "tables (one table per collection, catalog chroma_collections)",
    };
    out.push_str(&format!(
        "layout: {layout}
"
    ));
    for table in &plan.plan.tables {
        let columns: Vec<String> = table
            .spec
            .columns
            .iter()
            .map(|c| format!("{} {}", quote_ident(&c.name), c.pg_type))
            .collect();
        let how = if plan.reuse_existing {
            "existing"
        } else {
            "create"
        };
        out.push_str(&format!(
            "  {how} {} ({})
",
            table.spec.name,
            columns.join(", ")
        ));
    }
    if !plan.reuse_existing {
        out.push_str("  rows that fit in a page are written whole, uncompressed (toast_tuple_target = 8160 during the load, reset after it)\n");
    }
    out.push_str(
        "collections:
",
    );
    for (c, target) in collections.iter().zip(&plan.targets) {
        out.push_str(&format!(
            "  {} [{}, {} dims, {} items: {} vectors from the HNSW files, {} from the log] -> {}
",
            layout::display_name(c),
            layout::space_name(c.space),
            c.dimension.map_or("no".into(), |d| d.to_string()),
            c.count,
            c.sources.from_hnsw,
            c.sources.from_log,
            plan.plan.tables[target.table].spec.name
        ));
    }
    for ix in plan.vector_indexes.iter().filter(|ix| !ix.existing) {
        out.push_str(&format!(
            "after the load: {}\n",
            plan.vector_index_sql(ix).0
        ));
    }
    for note in &plan.notes {
        out.push_str(&format!(
            "note: {note}
"
        ));
    }
    out
}

/// Print the report on stdout (JSON, or a table per collection).
pub fn print_report(report: &ChromaReport, json: bool) -> anyhow::Result<()> {
    if json {
        crate::render::print_json(report)?;
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "collection",
        "space",
        "dim",
        "items",
        "from HNSW / log",
        "table",
        "verified",
        "exact top 10",
        "index recall@10: given / database's",
    ]);
    for c in &report.collections {
        let verified = match &c.verification {
            None => "skipped".to_string(),
            Some(v) if v.matches => format!("ok {}", &v.target_checksum[..8]),
            Some(v) => format!("MISMATCH {} / {} rows", v.source_rows, v.target_rows),
        };
        let exact = match &c.exact_neighbours {
            None => "skipped".to_string(),
            Some(e) if e.ok => format!("ok ({} queries)", e.queries),
            Some(_) => "DIFFERS".to_string(),
        };
        let recall = c.recall.as_ref().map_or("-".to_string(), |r| {
            format!(
                "{:.3} / {:.3}{}",
                r.recall_at_10,
                r.application.recall_at_10,
                if r.passed { "" } else { " LOW" }
            )
        });
        table.add_row(vec![
            layout::display_name_parts(&c.tenant, &c.database, &c.name),
            c.space.clone(),
            c.dimension.map_or("-".into(), |d| d.to_string()),
            c.items.to_string(),
            format!("{} / {}", c.vectors_from_hnsw, c.vectors_from_log),
            c.table.clone(),
            verified,
            exact,
            recall,
        ]);
    }
    println!("{table}");
    let m = &report.migration;
    println!(
        "{} items, {:.1} MB in {:.2} s from {} to {} ({} layout)",
        m.total_rows,
        m.total_bytes as f64 / 1e6,
        m.seconds,
        m.source,
        m.target,
        report.layout
    );
    crate::render::migration::print_phases(m);
    lines("vector columns", &report.vector_columns);
    lines("keys and indexes built", &report.indexes);
    let changes = &report.metadata_changes;
    let lossy = &m.lossy;
    let conversions = [
        (
            lossy.vectors_padded,
            "vector(s) zero-padded to the column's dimension",
        ),
        (
            lossy.vectors_rounded_to_half,
            "vector(s) rounded to half precision (halfvec)",
        ),
        (lossy.nul_stripped, "value(s) NUL-stripped"),
        (lossy.utf8_replaced, "value(s) with invalid UTF-8 replaced"),
        (
            changes.lists_as_text,
            "metadata list(s) stored as Python text (Open WebUI's rule)",
        ),
        (
            changes.dropped_keys,
            "metadata key(s) dropped (Open WebUI's rule: null values and loader keys)",
        ),
    ];
    let converted: Vec<String> = conversions
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    lines("converted by documented rules", &converted);
    lines("notes", &report.notes);
    for c in &report.collections {
        if let Some(v) = c.verification.as_ref().filter(|v| !v.matches) {
            println!("verification FAILED for collection {:?}:", c.name);
            for d in &v.sample_differences {
                println!("  {d}");
            }
        }
        if let Some(e) = c.exact_neighbours.as_ref().filter(|e| !e.ok) {
            println!(
                "exact-neighbour check FAILED for collection {:?} (PostgreSQL's exact top 10, no index, against the source's):",
                c.name
            );
            for d in &e.differences {
                println!("  {d}");
            }
        }
    }
    print_recall(report);
    match m.verified {
        Some(true) => println!("verified: every collection matches (item counts, content checksums of ids, vectors, documents and metadata, and the exact top 10 of its query vectors)"),
        Some(false) => println!("verification FAILED: see above"),
        None => println!("not verified (--no-verify)"),
    }
    Ok(())
}

/// Recall of one collection at the database's own setting and the given
/// one, and the measured settings reaching 0.9 and 0.99.
fn recall_line(r: &RecallReport) -> String {
    let reaches: Vec<String> = r
        .reaches
        .iter()
        .map(|reach| match &reach.setting {
            Some(setting) => format!(
                "{} from {setting} ({:.3})",
                reach.recall, reach.recall_at_10
            ),
            None => format!(
                "{} not reached ({:.3} at the largest setting measured)",
                reach.recall, reach.recall_at_10
            ),
        })
        .collect();
    let limit = r.not_measured_from.as_ref().map_or(String::new(), |from| {
        format!(" ({from} and above not measured: more than the exact-neighbour check costs)")
    });
    format!(
        "{:.3} at {} (the database's own setting), {:.3} at {}; {}{limit}",
        r.application.recall_at_10,
        r.application.setting,
        r.recall_at_10,
        r.setting,
        reaches.join(", ")
    )
}

/// Recall below an explicit `--min-recall` (a failure), then a warning for
/// the collections whose searches at the database's own setting (what the
/// application gets) find less than 0.9 of the exact top 10, with the
/// measured setting that fixes it for all of them.
fn print_recall(report: &ChromaReport) {
    let with_recall = || {
        report
            .collections
            .iter()
            .filter_map(|c| c.recall.as_ref().map(|r| (c, r)))
    };
    for (c, r) in with_recall().filter(|(_, r)| !r.passed) {
        println!(
            "recall@10 of collection {:?} through the {} index is {:.3} at {}: below --min-recall {}",
            c.name,
            r.index,
            r.recall_at_10,
            r.setting,
            r.min_recall.unwrap_or_default(),
        );
    }
    let low: Vec<_> = with_recall()
        .filter(|(_, r)| r.application.recall_at_10 < recall::TARGETS[0])
        .collect();
    if low.is_empty() {
        return;
    }
    println!(
        "warning: searches through the vector index (approximate; apart from the data proof) at the database's own setting, which the application gets, find less than {} of the exact top 10 in {} collection(s):",
        recall::TARGETS[0],
        low.len()
    );
    for (c, r) in &low {
        println!("  - {:?} ({}): {}", c.name, r.index, recall_line(r));
    }
    if report.index_settings.is_empty() {
        println!("  no setting measured reaches it: rebuild the index with more lists (IVFFlat) or a larger m / ef_construction (HNSW)");
    } else {
        println!(
            "  to give the application {} in every collection: {} (or ALTER ROLE <the application's role> SET …)",
            recall::TARGETS[0],
            report.index_settings.join("; ")
        );
    }
}

fn lines(title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    println!("{title}:");
    for line in lines {
        println!("  - {line}");
    }
}
