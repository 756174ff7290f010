//! `pgharbor migrate` for Chroma sources (and Open WebUI's vector_db/).

use crate::args::{IndexArg, LayoutChoice, MigrateArgs, RecallArgs, VectorArgs, VerifyArgs};
use crate::interrupt::Leftovers;
use crate::{progress, Failure};
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::ValuePolicy;
use pgharbor_migrate::chroma::layout::{self, Layout};
use pgharbor_migrate::chroma::pgcrypto::PgcryptoKey;
use pgharbor_migrate::chroma::{self, ChromaOptions, ChromaReport, IndexChoice, RecallOptions};
use pgharbor_migrate::Progress;
use pgharbor_pgwriter::pgvector::IndexMethod;
use std::path::Path;

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
        IndexArg::Auto if layout == Layout::OpenWebUi => open_webui_settings_index(),
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
        pgcrypto_key: pgcrypto_key(vectors.pgcrypto_key_file.as_deref())?,
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
        pgcrypto_key: pgcrypto_key(args.pgcrypto_key_file.as_deref())?,
    })
}

/// `--index auto` in Open WebUI's layout: the index Open WebUI's own
/// settings in pgharbor's environment name, read as Open WebUI 0.12 reads
/// them (`PGVECTOR_INDEX_METHOD` hnsw|ivfflat, `PGVECTOR_HNSW_M`,
/// `PGVECTOR_HNSW_EF_CONSTRUCTION`, `PGVECTOR_IVFFLAT_LISTS`; a value that is
/// not a number gives Open WebUI's default); without them, pgharbor's rule.
fn open_webui_settings_index() -> IndexChoice {
    let number = |name: &str, default: u32| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    };
    let method = std::env::var("PGVECTOR_INDEX_METHOD").unwrap_or_default();
    match method.trim().to_lowercase().as_str() {
        "hnsw" => IndexChoice::OpenWebUiSettings(IndexMethod::Hnsw {
            m: number("PGVECTOR_HNSW_M", 16),
            ef_construction: number("PGVECTOR_HNSW_EF_CONSTRUCTION", 64),
        }),
        "ivfflat" => IndexChoice::OpenWebUiSettings(IndexMethod::IvfFlat {
            lists: number("PGVECTOR_IVFFLAT_LISTS", 100),
        }),
        _ => IndexChoice::Auto,
    }
}

/// The key held by the key file `path`: its one non-empty line (without
/// the line ending). Refused, naming the file, when it is readable by
/// group or others (like a password file) or holds more than one line.
fn read_key_file(path: &Path) -> Result<String, Failure> {
    let refuse =
        |why: String| Failure::usage(format!("--pgcrypto-key-file {}: {why}", path.display()));
    let mut file =
        std::fs::File::open(path).map_err(|e| refuse(format!("cannot read it ({})", e.kind())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file
            .metadata()
            .map_err(|e| refuse(format!("cannot read it ({})", e.kind())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(refuse(format!(
                "has group or world access (mode {:04o}); a key file must be u=rw (0600) or less: chmod 600 {}",
                mode & 0o7777,
                path.display()
            )));
        }
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text)
        .map_err(|e| refuse(format!("cannot read it ({})", e.kind())))?;
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.is_empty());
    let key = lines.next().unwrap_or_default().to_string();
    if lines.next().is_some() {
        return Err(refuse(
            "holds more than one non-empty line; it must hold the key alone (Open WebUI's PGVECTOR_PGCRYPTO_KEY) on one line".into(),
        ));
    }
    Ok(key)
}

/// The environment variable Open WebUI reads its pgcrypto key from.
const PGCRYPTO_KEY_ENV: &str = "PGVECTOR_PGCRYPTO_KEY";

/// Open WebUI's pgcrypto key: the one line of `file` (a key file given
/// is always used), else `PGVECTOR_PGCRYPTO_KEY` when set. The key never
/// appears in a message: errors name the file only.
fn pgcrypto_key(file: Option<&Path>) -> Result<Option<PgcryptoKey>, Failure> {
    let (secret, origin, explicit) = match file {
        Some(path) => {
            let key = read_key_file(path)?;
            (key, format!("--pgcrypto-key-file {}", path.display()), true)
        }
        None => match std::env::var(PGCRYPTO_KEY_ENV) {
            Ok(key) if !key.is_empty() => {
                (key, format!("the environment's {PGCRYPTO_KEY_ENV}"), false)
            }
            _ => return Ok(None),
        },
    };
    PgcryptoKey::new(secret, origin, explicit)
        .map(Some)
        .map_err(Failure::from_migrate)
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
        print!("{}", crate::render::chroma::plan(&plan, &store));
        return Ok(None);
    }
    let cancel = crate::interrupt::on_ctrl_c(Leftovers::ChromaStore);
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
    let cancel = crate::interrupt::on_ctrl_c(Leftovers::Nothing);
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

/// Exit status: 1 when verification (counts, checksums, exact neighbours)
/// failed, or recall fell below an explicit `--min-recall`.
pub fn exit_code(report: &ChromaReport) -> u8 {
    u8::from(report.migration.verified == Some(false) || report.recall_passed == Some(false))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn key_file(dir: &Path, name: &str, contents: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_key_file_holds_one_line_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let crlf = key_file(dir.path(), "crlf.key", "s3cret key\r\n", 0o600);
        assert_eq!(read_key_file(&crlf).unwrap(), "s3cret key");
        let two = key_file(dir.path(), "two.key", "s3cret\nsomething else\n", 0o600);
        let refused = read_key_file(&two).unwrap_err().message();
        assert!(
            refused.contains("two.key") && refused.contains("more than one non-empty line"),
            "{refused}"
        );
        assert!(!refused.contains("s3cret"), "{refused}");
        let open = key_file(dir.path(), "open.key", "s3cret\n", 0o644);
        let refused = read_key_file(&open).unwrap_err().message();
        assert!(
            refused.contains("open.key")
                && refused.contains("mode 0644")
                && refused.contains("chmod 600"),
            "{refused}"
        );
    }
}
