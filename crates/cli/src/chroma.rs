//! `pgharbor migrate` for Chroma sources (and Open WebUI's vector_db/).

use crate::args::{IndexArg, LayoutChoice, MigrateArgs, RecallArgs, VectorArgs, VerifyArgs};
use crate::{progress, Failure};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::ValuePolicy;
use pgharbor_migrate::chroma::layout::{self, Layout};
use pgharbor_migrate::chroma::recall::{self, RecallReport};
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
    let layout = layout_of(vectors.layout, default_layout);
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
        recall: recall_options(&vectors.recall)?,
        replace: args.drop_existing || args.truncate,
        create_database: !args.no_create_database,
        policy: layout::policy_for(layout, policy, args.common.nul.is_some()),
    })
}

/// Options of `pgharbor verify chroma:DIR`: the move's layout (its default,
/// tables) and checks; nothing is created or built.
pub fn verify_options(
    args: &VerifyArgs,
    schema: String,
    policy: ValuePolicy,
    jobs: usize,
) -> Result<ChromaOptions, Failure> {
    let layout = layout_of(args.layout, Layout::Tables);
    Ok(ChromaOptions {
        layout,
        schema,
        dimension: None,
        index: IndexChoice::None,
        jobs,
        verify: true,
        recall: recall_options(&args.recall)?,
        replace: false,
        create_database: false,
        policy: layout::policy_for(layout, policy, args.common.nul.is_some()),
    })
}

fn layout_of(choice: Option<LayoutChoice>, default: Layout) -> Layout {
    match choice {
        Some(LayoutChoice::OpenWebui) => Layout::OpenWebUi,
        Some(LayoutChoice::Tables) => Layout::Tables,
        None => default,
    }
}

fn recall_options(args: &RecallArgs) -> Result<RecallOptions, Failure> {
    if let Some(min) = args.min_recall.filter(|m| !(0.0..=1.0).contains(m)) {
        return Err(Failure::usage(format!(
            "--min-recall {min} is not between 0 and 1"
        )));
    }
    Ok(RecallOptions {
        queries: args.recall_queries,
        min_recall: args.min_recall,
        ef_search: args.ef_search,
        probes: args.probes,
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
    let store = open_store(&reporter, dir, options.jobs).await?;
    if dry_run {
        let (_, plan, _) = chroma::prepare(&store, target, options, true)
            .await
            .map_err(Failure::from_migrate)?;
        reporter.done();
        print!("{}", chroma::render_plan(&plan, store.collections()));
        return Ok(None);
    }
    let cancel = crate::interrupt::on_ctrl_c();
    let report = chroma::migrate(
        source_label,
        store,
        target,
        options,
        reporter.clone(),
        &cancel,
    )
    .await
    .map_err(Failure::from_migrate)?;
    reporter.done();
    Ok(Some(report))
}

/// Verify the store at `dir` against what `target` holds (`pgharbor verify
/// chroma:DIR`): nothing is written.
pub async fn verify(
    source_label: &str,
    dir: &Path,
    target: &ConnConfig,
    options: &ChromaOptions,
    json: bool,
) -> Result<ChromaReport, Failure> {
    let reporter = progress::Reporter::new(json);
    let store = open_store(&reporter, dir, options.jobs).await?;
    let cancel = crate::interrupt::on_ctrl_c();
    let report = chroma::verify_only(
        source_label,
        store,
        target,
        options,
        reporter.clone(),
        &cancel,
    )
    .await
    .map_err(Failure::from_migrate)?;
    reporter.done();
    Ok(report)
}

async fn open_store(
    reporter: &progress::Reporter,
    dir: &Path,
    jobs: usize,
) -> Result<chroma::Store, Failure> {
    reporter.phase("reading the Chroma store");
    let path = dir.to_path_buf();
    tokio::task::spawn_blocking(move || chroma::open_store(&path, jobs))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(Failure::from_migrate)
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

/// Exit status: 1 when verification (counts, checksums, exact neighbours)
/// failed, or recall fell below an explicit `--min-recall`.
pub fn exit_code(report: &ChromaReport) -> u8 {
    u8::from(report.migration.verified == Some(false) || report.recall_passed == Some(false))
}
