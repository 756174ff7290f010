//! Presets as data: `pgharbor presets`, `presets show`, each application's
//! data directory recognised by its preset's rules (tiny SQLite files with
//! the right tables), ambiguous and unknown directories, a user's own
//! `--preset FILE` moving an application pgharbor does not know, and the
//! version-mismatch message naming the older side and the app's command.

use crate::harness::{
    databases, migrate, migrate_with_preset, pgharbor, query, scalar, Run, Scratch, UNREACHABLE,
};
use pgharbor_testkit::{Flavor, TestDatabases};
use std::path::PathBuf;

const BUILT_IN: [&str; 4] = ["open-webui", "home-assistant", "n8n", "langflow"];

fn preset_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../presets")
        .join(format!("{name}.toml"))
}

/// A data directory holding `database` with `tables` (one row each), plus
/// `files` and `dirs`.
pub(crate) fn app_dir(
    scratch: &Scratch,
    name: &str,
    database: &str,
    tables: &[&str],
    files: &[&str],
    dirs: &[&str],
) -> PathBuf {
    let dir = scratch.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let conn = rusqlite::Connection::open(dir.join(database)).unwrap();
    for table in tables {
        conn.execute_batch(&format!(
            "CREATE TABLE \"{table}\" (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO \"{table}\" VALUES (1, 'one');"
        ))
        .unwrap();
    }
    for file in files {
        std::fs::write(dir.join(file), "{}").unwrap();
    }
    for sub in dirs {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    dir
}

/// Each built-in application's smallest recognisable data directory.
fn every_app(scratch: &Scratch) -> Vec<(&'static str, &'static str, PathBuf)> {
    vec![
        (
            "open-webui",
            "Open WebUI",
            app_dir(
                scratch,
                "owui",
                "webui.db",
                &["auth", "chat", "user"],
                &[],
                &["uploads"],
            ),
        ),
        (
            "home-assistant",
            "Home Assistant",
            app_dir(
                scratch,
                "ha",
                "home-assistant_v2.db",
                &["states", "events", "schema_changes"],
                &[],
                &[".storage"],
            ),
        ),
        (
            "n8n",
            "n8n",
            app_dir(
                scratch,
                "n8n",
                "database.sqlite",
                &["workflow_entity", "credentials_entity", "migrations"],
                &["config"],
                &[],
            ),
        ),
        (
            "langflow",
            "Langflow",
            app_dir(
                scratch,
                "langflow",
                "langflow.db",
                &["flow", "user", "alembic_version"],
                &[],
                &[],
            ),
        ),
    ]
}

#[test]
fn presets_lists_the_built_in_presets_with_their_tested_versions() {
    let text = pgharbor(&["presets"]).success();
    let json = pgharbor(&["presets", "--json"]).success();
    let listed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BUILT_IN);
    for preset in listed.as_array().unwrap() {
        let name = preset["name"].as_str().unwrap();
        let file = std::fs::read_to_string(preset_file(name)).unwrap();
        let tested = preset["tested"].as_array().unwrap();
        assert!(!tested.is_empty(), "{name}: no tested version");
        for version in tested {
            let (app, schema) = (
                version["app"].as_str().unwrap(),
                version["schema"].as_str().unwrap(),
            );
            assert!(
                file.contains(&format!("app = \"{app}\""))
                    && file.contains(&format!("schema = \"{schema}\"")),
                "{name}: {app}/{schema} is not what presets/{name}.toml says"
            );
            assert!(
                text.stdout.contains(&format!("{app}: {schema}")),
                "{}",
                text.stdout
            );
        }
        assert!(text.stdout.contains(name), "{}", text.stdout);
    }
}

#[test]
fn presets_show_prints_the_built_in_file_and_checks_a_users_file() {
    for name in BUILT_IN {
        let shown = pgharbor(&["presets", "show", name]).success();
        assert_eq!(
            shown.stdout,
            std::fs::read_to_string(preset_file(name)).unwrap(),
            "{name}"
        );
    }
    pgharbor(&["presets", "show", "wordpress"]).fails_with(
        2,
        &[
            "preset \"wordpress\"",
            "open-webui, home-assistant, n8n, langflow",
        ],
    );
    let scratch = Scratch::new();
    let bad = scratch.path("bad.toml");
    let text = std::fs::read_to_string(preset_file("langflow"))
        .unwrap()
        .replace("[data]\n", "[data]\nglob = true\n");
    std::fs::write(&bad, text).unwrap();
    let refused = pgharbor(&["presets", "show", bad.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.all());
    assert!(
        refused.stderr.contains(&format!("{}:", bad.display())) && refused.stderr.contains("glob"),
        "{}",
        refused.stderr
    );
    let line: usize = refused
        .stderr
        .split(&format!("{}:", bad.display()))
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let file = std::fs::read_to_string(&bad).unwrap();
    assert_eq!(
        file.lines().nth(line - 1),
        Some("glob = true"),
        "line {line} named"
    );
}

#[test]
fn each_apps_data_directory_is_recognised_and_an_empty_target_gets_the_apps_schema_command() {
    let scratch = Scratch::new();
    let pg = databases(Flavor::Pg15);
    for (name, title, dir) in every_app(&scratch) {
        let db = name.replace('-', "_");
        pg.create_database(&db);
        let run = migrate(&dir, &pg.url(&db), &["--dry-run"]);
        assert!(
            run.stderr.contains(&format!(
                "pgharbor: {} is {title}'s data directory (",
                dir.display()
            )) && run
                .stderr
                .contains(&format!("moving it as --preset {name} does")),
            "{name}: {}",
            run.stderr
        );
        assert_eq!(run.code, 2, "{name}: {}", run.all());
        let file = std::fs::read_to_string(preset_file(name)).unwrap();
        let command = file
            .lines()
            .find_map(|l| l.strip_prefix("create_schema = \""))
            .unwrap()
            .split('{')
            .next()
            .unwrap()
            .to_string();
        assert!(
            run.stderr.contains("has no tables") && run.stderr.contains(&command),
            "{name}: the app's own schema command ({command:?}) is not in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn a_directory_two_presets_recognise_is_refused_naming_both() {
    let scratch = Scratch::new();
    let dir = app_dir(
        &scratch,
        "both",
        "webui.db",
        &["auth", "chat", "user"],
        &[],
        &[],
    );
    let conn = rusqlite::Connection::open(dir.join("langflow.db")).unwrap();
    conn.execute_batch("CREATE TABLE flow (id TEXT); CREATE TABLE user (id TEXT); CREATE TABLE alembic_version (version_num TEXT);")
        .unwrap();
    drop(conn);
    migrate(&dir, UNREACHABLE, &[]).fails_with(
        2,
        &[
            "matches more than one preset",
            "open-webui (Open WebUI) and langflow (Langflow)",
            "--preset NAME",
        ],
    );
}

#[test]
fn skip_vectors_is_refused_for_a_preset_without_vectors() {
    let scratch = Scratch::new();
    let dir = app_dir(
        &scratch,
        "langflow",
        "langflow.db",
        &["flow", "user", "alembic_version"],
        &[],
        &[],
    );
    migrate(&dir, UNREACHABLE, &["--skip-vectors"])
        .fails_with(2, &["--skip-vectors: the langflow preset moves no vectors"]);
}

#[test]
fn a_directory_nothing_recognises_lists_what_pgharbor_looked_for() {
    let scratch = Scratch::new();
    let dir = scratch.path("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let run = migrate(&dir, UNREACHABLE, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    for looked_for in [
        "webui.db (Open WebUI's data directory)",
        "chroma.sqlite3 (a Chroma store)",
        "home-assistant_v2.db (Home Assistant's data directory)",
        "database.sqlite (n8n's data directory)",
        "langflow.db (Langflow's data directory)",
    ] {
        assert!(
            run.stderr.contains(looked_for),
            "{looked_for:?} not in {}",
            run.stderr
        );
    }
    let n8n = app_dir(
        &scratch,
        "n8n",
        "database.sqlite",
        &["workflow_entity", "credentials_entity", "migrations"],
        &[],
        &[],
    );
    migrate(&n8n, UNREACHABLE, &[]).fails_with(
        1,
        &[
            "holds n8n's database (database.sqlite) but no config file",
            "--preset n8n",
        ],
    );
    let other = app_dir(
        &scratch,
        "other",
        "home-assistant_v2.db",
        &["states"],
        &[],
        &[".storage"],
    );
    migrate(&other, UNREACHABLE, &[]).fails_with(
        1,
        &["is not Home Assistant's database (it has no events, schema_changes table)"],
    );
}

/// A preset for an application pgharbor does not know, written by a user.
pub(crate) const NOTES_PRESET: &str = r#"# Notes: a user's own preset.
name = "notes"
title = "Notes"
homepage = "https://notes.example"

[data]
database = ["notes-*.db"]
tables = ["note", "history"]
directories = ["attachments"]

[stores.attachments]
path = "attachments"
present = "Copy {path} next to the new installation."

[schema_version]
table = "history"
column = "version"
latest_by = "id"
order = "number"

[[tested]]
app = "1.0"
schema = "3"

[values]
nul = "strip"

[tables.cache]
copy = false
why = "Notes rebuilds its cache"

[tables.roles]
seeded = "replace"

[tables.settings]
seeded = "keep-target"

[tables.note]
ignore_columns = ["legacy"]

[after]
intro = "Next, start Notes with:"
env = ["NOTES_DB={url}"]

[commands]
create_schema = "notes db create --url {url}"
upgrade_sqlite = "notes db upgrade --sqlite"
upgrade_postgres = "notes db upgrade --url {url}"
"#;

const NOTES_SQLITE: &str = "
CREATE TABLE history (id INTEGER PRIMARY KEY, version TEXT);
INSERT INTO history VALUES (1, '1'), (2, '3');
CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT, legacy TEXT, role_id INTEGER);
INSERT INTO note VALUES (1, 'first', 'x', 1), (2, 'with' || char(0) || 'nul', 'y', 2);
CREATE TABLE roles (id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO roles VALUES (1, 'admin'), (2, 'writer');
CREATE TABLE cache (k TEXT PRIMARY KEY, v TEXT);
INSERT INTO cache VALUES ('a', 'b');
CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT);
INSERT INTO settings VALUES ('theme', 'dark');
";

/// The schema Notes creates in PostgreSQL, with what it seeds, at `version`.
fn notes_schema(version: &str) -> String {
    format!(
        "CREATE TABLE history (id serial PRIMARY KEY, version text);
         INSERT INTO history (version) VALUES ('1'), ('{version}');
         CREATE TABLE roles (id integer PRIMARY KEY, name text);
         CREATE TABLE note (id serial PRIMARY KEY, body text, role_id integer REFERENCES roles (id));
         INSERT INTO roles VALUES (1, 'seeded-admin');
         CREATE TABLE cache (k text PRIMARY KEY, v text);
         CREATE TABLE settings (k text PRIMARY KEY, v text);
         INSERT INTO settings VALUES ('theme', 'light');"
    )
}

/// Notes in a test: its data directory and the user's preset file in a
/// scratch directory, and the test's databases for its targets.
pub(crate) struct Notes {
    /// Where `dir` and `preset` are, kept for as long as they are used.
    _scratch: Scratch,
    /// The data directory: `notes-main.db` and `attachments/`.
    pub dir: PathBuf,
    /// [`NOTES_PRESET`], written to a file.
    pub preset: PathBuf,
    /// The test's databases (PostgreSQL 15).
    pub pg: TestDatabases,
}

impl Notes {
    pub(crate) fn new() -> Notes {
        let scratch = Scratch::new();
        let dir = scratch.path("notes");
        std::fs::create_dir_all(dir.join("attachments")).unwrap();
        let conn = rusqlite::Connection::open(dir.join("notes-main.db")).unwrap();
        conn.execute_batch(NOTES_SQLITE).unwrap();
        let preset = scratch.path("notes.toml");
        std::fs::write(&preset, NOTES_PRESET).unwrap();
        Notes {
            _scratch: scratch,
            dir,
            preset,
            pg: databases(Flavor::Pg15),
        }
    }

    /// The SQLite database of [`Notes::dir`], open.
    pub(crate) fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.join("notes-main.db")).unwrap()
    }

    /// Database `db`, holding the schema Notes creates at `version`; its URL.
    pub(crate) fn target(&self, db: &str, version: &str) -> String {
        self.pg.create_database(db);
        self.pg.psql(db, &notes_schema(version));
        self.pg.url(db)
    }

    /// `pgharbor migrate DIR URL --preset FILE EXTRA…`.
    pub(crate) fn migrate(&self, url: &str, extra: &[&str]) -> Run {
        migrate_with_preset(&self.dir, url, self.preset.to_str().unwrap(), extra)
    }
}

#[test]
fn a_users_preset_file_moves_an_app_pgharbor_does_not_know_by_its_rules() {
    let notes = Notes::new();
    let (dir, pg) = (&notes.dir, &notes.pg);
    let url = notes.target("notes", "3");
    let run = notes.migrate(&url, &[]).success();
    assert!(run.stdout.contains("every table matches"), "{}", run.stdout);
    assert!(
        run.stdout.contains("1 value(s) NUL-stripped"),
        "the preset's nul rule: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("table cache: skipped, not copied and not verified: Notes rebuilds its cache")
            && run.stdout.contains("table settings: skipped, not copied and not verified: the rows Notes seeded in the target are kept")
            && run.stdout.contains("migration bookkeeping history: not copied; versions match: 3"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("Next, start Notes with:\n  NOTES_DB=postgresql://")
            && run.stdout.contains(&format!(
                "Copy {} next to the new installation.",
                dir.join("attachments").display()
            )),
        "{}",
        run.stdout
    );
    assert_eq!(
        query(pg, "notes", "SELECT name FROM roles ORDER BY id"),
        ["admin", "writer"],
        "seeded rows replaced"
    );
    assert_eq!(
        query(pg, "notes", "SELECT v FROM settings"),
        ["light"],
        "the target's seeded rows kept"
    );
    assert_eq!(scalar(pg, "notes", "SELECT count(*) FROM cache"), "0");
    assert_eq!(
        scalar(pg, "notes", "SELECT body FROM note WHERE id = 2"),
        "withnul"
    );
    assert_eq!(
        query(pg, "notes", "SELECT version FROM history ORDER BY id"),
        ["1", "3"],
        "history never copied"
    );
    let json = notes.migrate(&url, &["--truncate", "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["preset"], "notes", "{}", json.stdout);
    assert_eq!(report["database"]["verified"], true, "{}", json.stdout);
    assert!(
        json.stderr.contains("NOTES_DB=postgresql://"),
        "the end on stderr: {}",
        json.stderr
    );
    let verify = pgharbor(&[
        "verify",
        dir.to_str().unwrap(),
        &url,
        "--preset",
        notes.preset.to_str().unwrap(),
    ])
    .success();
    assert!(
        verify.stdout.contains("every table matches"),
        "{}",
        verify.all()
    );
}

#[test]
fn a_version_mismatch_names_the_older_side_and_the_apps_own_command() {
    let notes = Notes::new();
    let newer = notes.target("newer", "4");
    notes.migrate(&newer, &[]).fails_with(
        2,
        &[
            "Notes's schema versions differ (history.version): the SQLite file is at 3, PostgreSQL at 4.",
            "The SQLite side is older: upgrade it to PostgreSQL's version first (notes db upgrade --sqlite)",
            "--allow-version-mismatch",
        ],
    );
    let older = notes.target("older", "2");
    let run = notes.migrate(&older, &[]).fails_with(
        2,
        &["The PostgreSQL side is older: upgrade the PostgreSQL side (notes db upgrade --url postgresql://"],
    );
    assert_eq!(
        scalar(&notes.pg, "older", "SELECT count(*) FROM note"),
        "0",
        "nothing loaded: {}",
        run.all()
    );
    notes
        .migrate(&older, &["--allow-version-mismatch"])
        .success();
}

#[test]
fn a_target_without_the_apps_history_table_gets_the_apps_schema_command() {
    let notes = Notes::new();
    notes.pg.create_database("partial");
    notes.pg.psql(
        "partial",
        "CREATE TABLE note (id serial PRIMARY KEY, body text);",
    );
    notes.migrate(&notes.pg.url("partial"), &[]).fails_with(
        2,
        &[
            "the target has no \"history\" table (Notes's migration history)",
            "notes db create --url postgresql://",
        ],
    );
    assert!(notes.dir.join("notes-main.db").is_file());
}
