//! `pgharbor migrate` for Chroma sources (and Open WebUI's vector_db/).

use crate::args::{IndexArg, LayoutChoice, MigrateArgs, VectorArgs};
use crate::{progress, Failure};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::ValuePolicy;
use pgharbor_migrate::chroma::layout::{self, Layout};
use pgharbor_migrate::chroma::{self, ChromaOptions, ChromaReport, IndexChoice, RecallOptions};
use pgharbor_migrate::Progress;
use pgharbor_pgwriter::pgvector::IndexMethod;
use std::path::{Path, PathBuf};

/// A Chroma directory given as `chroma:DIR`, a directory holding
/// `chroma.sqlite3`, or that file itself.
pub fn chroma_dir(source: &str) -> Option<PathBuf> {
    if let Some(dir) = source.strip_prefix("chroma:") {
        return Some(PathBuf::from(dir));
    }
    let path = Path::new(source);
    let is_store = (path.is_dir() && path.join("chroma.sqlite3").is_file())
        || path.file_name().is_some_and(|n| n == "chroma.sqlite3");
    is_store.then(|| path.to_path_buf())
}

/// Options from the command line.
pub fn options(
    args: &MigrateArgs,
    vectors: &VectorArgs,
    schema: String,
    policy: ValuePolicy,
    jobs: usize,
    default_layout: Layout,
) -> Result<ChromaOptions, Failure> {
    if !(0.0..=1.0).contains(&vectors.min_recall) {
        return Err(Failure::usage(format!(
            "--min-recall {} is not between 0 and 1",
            vectors.min_recall
        )));
    }
    let layout = match vectors.layout {
        Some(LayoutChoice::OpenWebui) => Layout::OpenWebUi,
        Some(LayoutChoice::Tables) => Layout::Tables,
        None => default_layout,
    };
    let index = match vectors.index {
        IndexArg::Auto => IndexChoice::Auto,
        IndexArg::None => IndexChoice::None,
        IndexArg::Hnsw => IndexChoice::Method(IndexMethod::Hnsw {
            m: vectors.hnsw_m,
            ef_construction: vectors.hnsw_ef_construction,
        }),
        IndexArg::Ivfflat => IndexChoice::Method(IndexMethod::IvfFlat {
            lists: vectors.ivfflat_lists,
        }),
    };
    Ok(ChromaOptions {
        layout,
        schema,
        dimension: vectors.dimension,
        index,
        jobs,
        verify: !args.no_verify,
        recall: RecallOptions {
            queries: vectors.recall_queries,
            min_recall: vectors.min_recall,
            ef_search: vectors.ef_search,
            probes: vectors.probes,
        },
        replace: args.drop_existing || args.truncate,
        create_database: !args.no_create_database,
        policy: layout::policy_for(layout, policy, args.common.nul.is_some()),
    })
}

/// Migrate (or with `--dry-run`, plan) the store at `dir`.
pub async fn run(
    source_label: &str,
    dir: &Path,
    target: &ConnConfig,
    options: &ChromaOptions,
    dry_run: bool,
    json: bool,
) -> Result<Option<ChromaReport>, Failure> {
    let reporter = progress::Reporter::new(json);
    reporter.phase("reading the Chroma store");
    let jobs = options.jobs;
    let path = dir.to_path_buf();
    let store = tokio::task::spawn_blocking(move || chroma::open_store(&path, jobs))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(Failure::from_migrate)?;
    if dry_run {
        let (_, plan, _) = chroma::prepare(&store, target, options, true)
            .await
            .map_err(Failure::from_migrate)?;
        reporter.done();
        print!("{}", chroma::render_plan(&plan, store.collections()));
        return Ok(None);
    }
    let report = chroma::migrate(source_label, store, target, options, reporter.clone())
        .await
        .map_err(Failure::from_migrate)?;
    reporter.done();
    Ok(Some(report))
}

/// Print the report on stdout (JSON, or a table per collection).
pub fn print_report(report: &ChromaReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
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
        "recall@10",
    ]);
    for c in &report.collections {
        let verified = match &c.verification {
            None => "skipped".to_string(),
            Some(v) if v.matches => format!("ok {}", &v.target_checksum[..8]),
            Some(v) => format!("MISMATCH {} / {} rows", v.source_rows, v.target_rows),
        };
        let recall = c.recall.as_ref().map_or("-".to_string(), |r| {
            format!(
                "{:.3}{}",
                r.recall_at_10,
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
    crate::output::print_phases(m);
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
        if let Some(r) = c.recall.as_ref().filter(|r| !r.passed) {
            println!(
                "recall@10 of collection {:?} is {:.3} with {} at {}: below --min-recall; raise the setting in your application, or rebuild with other index options",
                c.name, r.recall_at_10, r.index, r.setting
            );
        }
    }
    match m.verified {
        Some(true) => println!("verified: every collection matches (item counts and content checksums of ids, vectors, documents and metadata)"),
        Some(false) => println!("verification FAILED: see above"),
        None => println!("not verified (--no-verify)"),
    }
    Ok(())
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

/// Exit status: 1 when verification or the recall check failed.
pub fn exit_code(report: &ChromaReport) -> u8 {
    u8::from(report.migration.verified == Some(false) || report.recall_passed == Some(false))
}
