//! The SOURCE argument of `migrate` and `verify`, parsed once: what kind of
//! source it names ([`SourceSpec::detect`]), and which options go with that
//! kind ([`SourceSpec::check_flags`]).
//!
//! | SOURCE | kind |
//! |---|---|
//! | `postgres://…`, `postgresql://…` | [`SourceSpec::Postgres`] |
//! | `redis://…`, `rediss://…` | [`SourceSpec::Redis`] (refused by `migrate`/`verify`) |
//! | `chroma:DIR`, a directory holding `chroma.sqlite3`, a file named `chroma.sqlite3` | [`SourceSpec::Chroma`] |
//! | a directory a built-in preset recognises (Open WebUI's, Home Assistant's, n8n's, Langflow's data directory), or anything with `--preset NAME\|FILE` | [`SourceSpec::App`] |
//! | `sqlite:PATH`, any other file | [`SourceSpec::Sqlite`] |
//!
//! Everything else (a missing path, a file that is not SQLite, a directory
//! holding nothing pgharbor reads, another URL scheme) is refused with a
//! message naming the problem and what would work.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::presets::recognise::{self, Fit};
use crate::presets::{AppData, Preset};
use pgharbor_conn::ConnConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file a Chroma persistent directory keeps its catalog in.
const CHROMA_DB: &str = "chroma.sqlite3";
/// At most this many SQLite files are named when a directory is given.
const CANDIDATES_NAMED: usize = 5;

/// What SOURCE names.
#[derive(Debug)]
pub enum SourceSpec {
    /// An SQLite database file: a new schema is planned from it (or, with
    /// `--into-existing`, it is loaded into the application's schema).
    Sqlite(PathBuf),
    /// An application's data directory (or, with `--preset`, its database
    /// file): the database into the application's schema by its preset's
    /// rules, then the preset's hook (Open WebUI's `vector_db/`).
    App {
        /// The directory's parts, found by the preset.
        app: Box<AppData>,
        /// Recognised from the directory alone: `--preset` was not given.
        inferred: bool,
    },
    /// A Chroma persistent directory (or its `chroma.sqlite3`).
    Chroma(PathBuf),
    /// A PostgreSQL database: the whole database is copied.
    Postgres(Box<ConnConfig>),
    /// A Redis server (its URL, which may hold a password, is not kept).
    Redis,
}

/// The command SOURCE is given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `pgharbor migrate`.
    Migrate,
    /// `pgharbor verify`.
    Verify,
}

/// The options given on the command line whose meaning depends on the kind
/// of source (true: given).
#[derive(Debug, Clone, Copy, Default)]
pub struct GivenFlags {
    /// `--into-existing`.
    pub into_existing: bool,
    /// `--truncate`.
    pub truncate: bool,
    /// `--resume`.
    pub resume: bool,
    /// `--drop-existing`.
    pub drop_existing: bool,
    /// `--ignore-columns`.
    pub ignore_columns: bool,
    /// `--allow-version-mismatch`.
    pub allow_version_mismatch: bool,
    /// `--corresponding-revision`.
    pub corresponding_revisions: bool,
    /// `--preset`.
    pub preset: bool,
    /// `--schema`.
    pub schema: bool,
    /// `--nul`.
    pub nul: bool,
}

impl SourceSpec {
    /// Parse SOURCE; `preset` is `--preset`, which makes any path the
    /// application's data directory (or its database file).
    pub fn detect(text: &str, preset: Option<Preset>) -> Result<SourceSpec, MigrateError> {
        match url_scheme(text).map(str::to_ascii_lowercase).as_deref() {
            Some("postgres" | "postgresql") => {
                let config = ConnConfig::parse(text).map_err(usage)?;
                return Ok(SourceSpec::Postgres(Box::new(config)));
            }
            Some("redis" | "rediss") => return Ok(SourceSpec::Redis),
            _ => {}
        }
        if let Some(scheme) = url_scheme(text) {
            return Err(MigrateError::new(
                MigrateErrorKind::Usage,
                format!("{scheme}:// is not a source pgharbor reads: give an SQLite file (PATH or sqlite:PATH), a Chroma directory (chroma:DIR), Open WebUI's data directory, or a PostgreSQL URL (postgresql://…)"),
            ));
        }
        if let Some(preset) = preset {
            let path = text.strip_prefix("sqlite:").unwrap_or(text);
            let app = AppData::locate(Arc::new(preset), Path::new(path))?;
            return Ok(SourceSpec::App {
                app: Box::new(app),
                inferred: false,
            });
        }
        if let Some(dir) = text.strip_prefix("chroma:") {
            return chroma(Path::new(dir));
        }
        if let Some(path) = text.strip_prefix("sqlite:") {
            return sqlite(Path::new(path));
        }
        let path = Path::new(text);
        if path.is_dir() {
            return directory(path);
        }
        if path.file_name().is_some_and(|n| n == CHROMA_DB) && path.is_file() {
            return Ok(SourceSpec::Chroma(path.to_path_buf()));
        }
        sqlite(path)
    }

    /// Refuse options that do not go with this kind of source under
    /// `command`, naming them and what they are for.
    pub fn check_flags(&self, command: Command, given: &GivenFlags) -> Result<(), MigrateError> {
        let refused = match (self, command) {
            (SourceSpec::Chroma(_), Command::Migrate) => (given.into_existing
                || given.resume
                || given.allow_version_mismatch
                || given.corresponding_revisions
                || given.ignore_columns)
                .then(|| "--into-existing, --resume, --allow-version-mismatch, --corresponding-revision and --ignore-columns are for SQLite sources; a Chroma source takes --layout".to_string()),
            (SourceSpec::Chroma(_), Command::Verify) => (given.into_existing
                || given.allow_version_mismatch
                || given.ignore_columns)
                .then(|| "--into-existing, --allow-version-mismatch and --ignore-columns are for SQLite sources; a Chroma source takes --layout".to_string()),
            (SourceSpec::Postgres(_), Command::Migrate) => postgres_misplaced(given).map(|flag| {
                format!("{flag} does not apply to a PostgreSQL source (the copy keeps the source's schema as pg_dump describes it)")
            }),
            (SourceSpec::Sqlite(_), Command::Migrate) if !given.into_existing => (given.truncate
                || given.resume
                || given.allow_version_mismatch
                || given.corresponding_revisions
                || given.ignore_columns)
                .then(|| "--truncate, --resume, --allow-version-mismatch, --corresponding-revision and --ignore-columns go with --into-existing (or --preset)".to_string()),
            (SourceSpec::Redis, _) => Some(
                "a Redis server is not a source migrate and verify read: back it up with `pgharbor backup redis://… --to DEST` (restore with `pgharbor restore`)".to_string(),
            ),
            _ => None,
        };
        match refused {
            Some(message) => Err(MigrateError::new(MigrateErrorKind::Usage, message)),
            None => Ok(()),
        }
    }
}

/// The first option given that a PostgreSQL source does not take.
fn postgres_misplaced(given: &GivenFlags) -> Option<&'static str> {
    let misplaced = [
        (given.into_existing, "--into-existing"),
        (given.truncate, "--truncate"),
        (given.drop_existing, "--drop-existing"),
        (given.ignore_columns, "--ignore-columns"),
        (given.allow_version_mismatch, "--allow-version-mismatch"),
        (given.corresponding_revisions, "--corresponding-revision"),
        (given.preset, "--preset"),
        (given.schema, "--schema"),
        (given.nul, "--nul"),
    ];
    misplaced
        .iter()
        .find(|(flag_given, _)| *flag_given)
        .map(|(_, flag)| *flag)
}

/// The scheme of a URL (`mysql` of `mysql://…`), as written.
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let is_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then_some(scheme)
}

fn usage(error: impl Into<MigrateError>) -> MigrateError {
    let mut error = error.into();
    error.set_kind(MigrateErrorKind::Usage);
    error
}

/// An SQLite file, checked the way the SQLite source checks it (it exists,
/// is a file, starts with SQLite's header).
fn sqlite(path: &Path) -> Result<SourceSpec, MigrateError> {
    pgharbor_sqlite::open::check_file(path)?;
    Ok(SourceSpec::Sqlite(path.to_path_buf()))
}

/// `chroma:DIR`: a directory holding `chroma.sqlite3`, or that file.
fn chroma(dir: &Path) -> Result<SourceSpec, MigrateError> {
    if dir.is_file() || dir.join(CHROMA_DB).is_file() {
        return Ok(SourceSpec::Chroma(dir.to_path_buf()));
    }
    let problem = if !dir.exists() {
        "no such directory".to_string()
    } else {
        format!("not a Chroma persistent directory: no {CHROMA_DB} in it (expected the directory given to chromadb.PersistentClient(path=...))")
    };
    let hint = match app_candidates(dir)?.first() {
        Some(fit) => format!(
            "; it is {}'s data directory: give it without chroma: (database and vectors), or chroma:{} for the vectors alone",
            fit.preset().title,
            dir.join("vector_db").display()
        ),
        None => String::new(),
    };
    Err(MigrateError::new(
        MigrateErrorKind::Source,
        format!("{}: {problem}{hint}", dir.display()),
    ))
}

/// The built-in presets measured against `dir` (those whose database file is there).
fn app_candidates(dir: &Path) -> Result<Vec<Fit>, MigrateError> {
    let presets: Vec<Arc<Preset>> = crate::presets::built_in()
        .into_iter()
        .map(Arc::new)
        .collect();
    recognise::recognise(dir, &presets)
}

/// A directory: a Chroma store, a data directory a built-in preset
/// recognises, or refused with what pgharbor looked for and the SQLite
/// files it holds named.
fn directory(dir: &Path) -> Result<SourceSpec, MigrateError> {
    let chroma = dir.join(CHROMA_DB).is_file();
    let fits = app_candidates(dir)?;
    if let (true, Some(fit)) = (chroma, fits.first()) {
        let preset = fit.preset();
        return Err(MigrateError::new(
            MigrateErrorKind::Usage,
            format!(
                "{0}: holds both {1} ({2}'s database) and {CHROMA_DB} (a Chroma store): say which to move, `--preset {3}` for {2}'s data or chroma:{0} for the Chroma store",
                dir.display(),
                preset.data.database[0],
                preset.title,
                preset.name
            ),
        ));
    }
    if chroma {
        return Ok(SourceSpec::Chroma(dir.to_path_buf()));
    }
    let whole: Vec<&AppData> = fits
        .iter()
        .filter_map(|f| match f {
            Fit::Whole(app) => Some(app),
            Fit::Partial { .. } => None,
        })
        .collect();
    match whole.as_slice() {
        [app] => {
            return Ok(SourceSpec::App {
                app: Box::new((*app).clone()),
                inferred: true,
            })
        }
        [] => {}
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|a| format!("{} ({})", a.preset.name, a.preset.title))
                .collect();
            return Err(MigrateError::new(
                MigrateErrorKind::Usage,
                format!(
                    "{}: matches more than one preset: {}; say which with --preset NAME (e.g. --preset {})",
                    dir.display(),
                    names.join(" and "),
                    several[0].preset.name
                ),
            ));
        }
    }
    if let Some(Fit::Partial {
        preset,
        database,
        missing,
        lacks_tables,
    }) = fits.first()
    {
        let message = if *lacks_tables {
            format!(
                "{}: is not {}'s database ({missing}): give the file itself as SOURCE to move it as an SQLite database",
                database.display(),
                preset.title,
            )
        } else {
            format!(
                "{}: holds {}'s database ({}) but {missing}, which {}'s data directory has: give --preset {} to move it as {}'s anyway, or the file itself as SOURCE to move it as an SQLite database",
                dir.display(),
                preset.title,
                database.file_name().unwrap_or_default().to_string_lossy(),
                preset.title,
                preset.name,
                preset.title
            )
        };
        return Err(MigrateError::new(MigrateErrorKind::Source, message));
    }
    Err(MigrateError::new(
        MigrateErrorKind::Source,
        format!(
            "{}: is a directory, not an SQLite database file, and holds {}{}",
            dir.display(),
            looked_for(),
            sqlite_files_hint(dir)
        ),
    ))
}

/// What a directory is looked at for: `neither webui.db (Open WebUI's data
/// directory) nor chroma.sqlite3 (a Chroma store) nor …`, every built-in
/// preset's database named.
fn looked_for() -> String {
    let apps: Vec<String> = crate::presets::built_in()
        .iter()
        .map(|p| {
            format!(
                "{} ({}'s data directory)",
                p.data.database.join(" or "),
                p.title
            )
        })
        .collect();
    let mut parts = apps.iter();
    let first = parts.next().cloned().unwrap_or_default();
    let rest: Vec<String> = parts.cloned().collect();
    let mut text = format!("neither {first} nor {CHROMA_DB} (a Chroma store)");
    for other in rest {
        text.push_str(&format!(" nor {other}"));
    }
    text
}

/// `; SQLite databases in it: a.db, b.sqlite (give one as SOURCE)`, or
/// nothing when the directory holds none.
fn sqlite_files_hint(dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return String::new();
    };
    let mut found: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && pgharbor_sqlite::open::check_file(p).is_ok())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if found.is_empty() {
        return String::new();
    }
    found.sort();
    let more = found.len().saturating_sub(CANDIDATES_NAMED);
    found.truncate(CANDIDATES_NAMED);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "; SQLite databases in it: {}{more} (give one of them as SOURCE)",
        found.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = b"SQLite format 3\0";

    fn sqlite_file(path: &Path) {
        let mut bytes = HEADER.to_vec();
        bytes.resize(4096, 0);
        std::fs::write(path, bytes).unwrap();
    }

    fn sqlite_with_tables(path: &Path, tables: &[&str]) {
        let conn = rusqlite::Connection::open(path).unwrap();
        for table in tables {
            conn.execute_batch(&format!(
                "CREATE TABLE \"{table}\" (id INTEGER PRIMARY KEY)"
            ))
            .unwrap();
        }
    }

    fn detect(path: &Path) -> Result<SourceSpec, MigrateError> {
        SourceSpec::detect(path.to_str().unwrap(), None)
    }

    fn refused(path: &Path) -> MigrateError {
        detect(path).expect_err("refused")
    }

    #[test]
    fn a_file_with_the_sqlite_header_is_sqlite_with_or_without_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        sqlite_file(&db);
        assert!(matches!(detect(&db).unwrap(), SourceSpec::Sqlite(p) if p == db));
        let prefixed = format!("sqlite:{}", db.display());
        assert!(
            matches!(SourceSpec::detect(&prefixed, None).unwrap(), SourceSpec::Sqlite(p) if p == db)
        );
    }

    #[test]
    fn a_missing_path_is_named_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone.db");
        let e = refused(&missing);
        assert_eq!(e.kind(), MigrateErrorKind::Source);
        let text = e.to_string();
        assert!(
            text.contains("gone.db") && text.contains("no such file"),
            "{text}"
        );
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let notes = dir.path().join("notes.txt");
        std::fs::write(&notes, "plain text, long enough to fill a header").unwrap();
        let text = refused(&notes).to_string();
        assert!(
            text.contains("notes.txt") && text.contains("not an SQLite database"),
            "{text}"
        );
    }

    #[test]
    fn a_directory_with_nothing_recognisable_names_what_it_lacks_and_the_sqlite_files_in_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("readme.txt"), "hello").unwrap();
        let text = refused(dir.path()).to_string();
        assert!(
            text.contains("is a directory, not an SQLite database file")
                && text.contains("webui.db")
                && text.contains("chroma.sqlite3")
                && !text.contains("SQLite databases in it"),
            "{text}"
        );
        sqlite_file(&dir.path().join("b.sqlite"));
        sqlite_file(&dir.path().join("a.db"));
        let text = refused(dir.path()).to_string();
        assert!(
            text.contains("SQLite databases in it: a.db, b.sqlite (give one of them as SOURCE)"),
            "{text}"
        );
    }

    #[test]
    fn a_directory_holding_webui_db_is_open_webui_inferred() {
        let dir = tempfile::tempdir().unwrap();
        sqlite_with_tables(
            &dir.path().join("webui.db"),
            &["auth", "chat", "user", "file"],
        );
        std::fs::create_dir(dir.path().join("vector_db")).unwrap();
        match detect(dir.path()).unwrap() {
            SourceSpec::App { app, inferred } => {
                assert!(inferred);
                assert_eq!(app.preset.name, "open-webui");
                assert_eq!(app.database, dir.path().join("webui.db"));
                assert_eq!(
                    app.store_dir("vector_db"),
                    Some(dir.path().join("vector_db").as_path())
                );
                assert_eq!(app.store("vector_db"), None, "no chroma.sqlite3 in it");
            }
            other => panic!("not Open WebUI: {other:?}"),
        }
    }

    #[test]
    fn a_webui_db_without_open_webuis_tables_is_refused_naming_what_it_lacks() {
        let dir = tempfile::tempdir().unwrap();
        sqlite_with_tables(&dir.path().join("webui.db"), &["chat", "notes"]);
        let e = refused(dir.path());
        assert_eq!(e.kind(), MigrateErrorKind::Source);
        let text = e.to_string();
        assert!(text.contains("is not Open WebUI's database"), "{text}");
        assert!(text.contains("no auth, user table"), "{text}");
        assert!(text.contains("give the file itself as SOURCE"), "{text}");
    }

    #[test]
    fn a_url_scheme_is_read_whatever_its_case() {
        let spec = SourceSpec::detect("PostgreSQL://u@localhost/app", None).unwrap();
        assert!(matches!(spec, SourceSpec::Postgres(_)));
        let spec = SourceSpec::detect("Redis://:secret@cache", None).unwrap();
        assert!(!format!("{spec:?}").contains("secret"));
    }

    #[test]
    fn the_preset_makes_webui_db_or_its_directory_open_webui_given() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("webui.db");
        sqlite_file(&db);
        let open_webui = || crate::presets::resolve("open-webui").unwrap();
        let refused = |db: &Path| {
            let e = SourceSpec::detect(db.to_str().unwrap(), Some(open_webui()))
                .expect_err("not Open WebUI's database");
            assert_eq!(e.kind(), MigrateErrorKind::Usage);
            e.to_string()
        };
        let text = refused(&db);
        assert!(
            text.contains("is not Open WebUI's database (it cannot be read: "),
            "{text}"
        );
        std::fs::remove_file(&db).unwrap();
        sqlite_with_tables(&db, &["chat"]);
        let text = refused(dir.path());
        assert!(
            text.contains("is not Open WebUI's database (it has no auth, user table), which the open-webui preset requires"),
            "{text}"
        );
        std::fs::remove_file(&db).unwrap();
        sqlite_with_tables(&db, &["auth", "chat", "user"]);
        let spec = SourceSpec::detect(db.to_str().unwrap(), Some(open_webui())).unwrap();
        assert!(matches!(
            spec,
            SourceSpec::App {
                inferred: false,
                ..
            }
        ));
        let empty = tempfile::tempdir().unwrap();
        let e = SourceSpec::detect(empty.path().to_str().unwrap(), Some(open_webui()))
            .expect_err("no webui.db");
        assert_eq!(e.kind(), MigrateErrorKind::Usage);
        assert!(e.to_string().contains("no Open WebUI database here"), "{e}");
    }

    #[test]
    fn chroma_stores_are_recognised_by_prefix_directory_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("chroma.sqlite3");
        sqlite_file(&db);
        assert!(matches!(detect(dir.path()).unwrap(), SourceSpec::Chroma(p) if p == dir.path()));
        assert!(matches!(detect(&db).unwrap(), SourceSpec::Chroma(p) if p == db));
        let prefixed = format!("chroma:{}", dir.path().display());
        assert!(matches!(
            SourceSpec::detect(&prefixed, None).unwrap(),
            SourceSpec::Chroma(_)
        ));
    }

    #[test]
    fn a_chroma_directory_without_chroma_sqlite3_is_named_with_what_was_expected() {
        let dir = tempfile::tempdir().unwrap();
        let e = SourceSpec::detect(&format!("chroma:{}", dir.path().display()), None)
            .expect_err("no chroma.sqlite3");
        let text = e.to_string();
        assert!(
            text.contains("no chroma.sqlite3 in it") && text.contains("PersistentClient"),
            "{text}"
        );
        sqlite_file(&dir.path().join("webui.db"));
        let text = SourceSpec::detect(&format!("chroma:{}", dir.path().display()), None)
            .expect_err("Open WebUI's directory")
            .to_string();
        assert!(
            text.contains("Open WebUI's data directory") && text.contains("vector_db"),
            "{text}"
        );
        let missing = dir.path().join("nowhere");
        let text = SourceSpec::detect(&format!("chroma:{}", missing.display()), None)
            .expect_err("missing")
            .to_string();
        assert!(text.contains("nowhere: no such directory"), "{text}");
    }

    #[test]
    fn a_directory_holding_both_stores_asks_which() {
        let dir = tempfile::tempdir().unwrap();
        sqlite_file(&dir.path().join("webui.db"));
        sqlite_file(&dir.path().join("chroma.sqlite3"));
        let e = refused(dir.path());
        assert_eq!(e.kind(), MigrateErrorKind::Usage);
        let text = e.to_string();
        assert!(
            text.contains("--preset open-webui") && text.contains("chroma:"),
            "{text}"
        );
    }

    #[test]
    fn urls_are_told_apart_and_unknown_schemes_refused() {
        let pg = SourceSpec::detect("postgresql://app@db.example/shop", None).unwrap();
        assert!(matches!(pg, SourceSpec::Postgres(_)));
        let redis = SourceSpec::detect("rediss://cache.example:6380", None).unwrap();
        assert!(matches!(redis, SourceSpec::Redis));
        let e = SourceSpec::detect("mysql://root@db/shop", None).expect_err("mysql");
        assert_eq!(e.kind(), MigrateErrorKind::Usage);
        assert!(
            e.to_string()
                .starts_with("mysql:// is not a source pgharbor reads"),
            "{e}"
        );
        let bad =
            SourceSpec::detect("postgresql://db.example:notaport/x", None).expect_err("bad port");
        assert_eq!(bad.kind(), MigrateErrorKind::Usage);
    }

    #[test]
    fn flags_are_checked_per_kind() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        sqlite_file(&db);
        let sqlite = detect(&db).unwrap();
        let truncate = GivenFlags {
            truncate: true,
            ..GivenFlags::default()
        };
        let e = sqlite
            .check_flags(Command::Migrate, &truncate)
            .expect_err("--truncate alone");
        assert!(e.to_string().contains("go with --into-existing"), "{e}");
        let into_existing = GivenFlags {
            into_existing: true,
            ..truncate
        };
        sqlite
            .check_flags(Command::Migrate, &into_existing)
            .unwrap();
        let pg = SourceSpec::detect("postgresql://app@db.example/shop", None).unwrap();
        let schema = GivenFlags {
            schema: true,
            ..GivenFlags::default()
        };
        let e = pg
            .check_flags(Command::Migrate, &schema)
            .expect_err("--schema");
        assert!(
            e.to_string()
                .starts_with("--schema does not apply to a PostgreSQL source"),
            "{e}"
        );
        pg.check_flags(Command::Verify, &schema).unwrap();
        let chroma = SourceSpec::Chroma(dir.path().to_path_buf());
        let resume = GivenFlags {
            resume: true,
            ..GivenFlags::default()
        };
        assert!(chroma.check_flags(Command::Migrate, &resume).is_err());
        chroma.check_flags(Command::Verify, &resume).unwrap();
        let redis = SourceSpec::Redis;
        let e = redis
            .check_flags(Command::Migrate, &GivenFlags::default())
            .expect_err("redis");
        assert!(e.to_string().contains("pgharbor backup"), "{e}");
    }
}
