//! The preset loader: the built-in presets parse, and a bad file is refused
//! naming the file, the line and the key.

use super::format::{Hook, HookPoint, Preset, PresetError};
use super::{built_in, built_in_names, resolve};
use crate::existing::{ExistingOptions, VersionOrder};
use crate::MigrateErrorKind;
use pgharbor_conn::ConnConfig;

/// A small valid preset; tests append or replace lines.
const MINIMAL: &str = r#"name = "notes"
title = "Notes"
homepage = "https://notes.example"

[data]
database = ["notes.db"]
tables = ["note"]
"#;

fn refused(text: &str) -> PresetError {
    Preset::parse(text, "my.toml").expect_err("refused")
}

#[test]
fn every_built_in_preset_parses_and_is_named_as_its_file() {
    let presets = built_in();
    let names: Vec<&str> = presets.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, built_in_names());
    assert_eq!(
        names,
        ["open-webui", "home-assistant", "n8n", "langflow"],
        "the four presets of issue 20"
    );
    for preset in &presets {
        assert!(
            !preset.tested.is_empty(),
            "{} names no tested version",
            preset.name
        );
        assert!(
            preset.commands.create_schema.is_some(),
            "{} does not say how the app creates its schema",
            preset.name
        );
        assert!(preset.schema_version.is_some(), "{}", preset.name);
    }
}

#[test]
fn a_minimal_preset_parses_with_defaults() {
    let preset = Preset::parse(MINIMAL, "my.toml").unwrap();
    assert_eq!(preset.name, "notes");
    assert!(preset.hook().is_none());
    assert!(preset.nul().is_none());
}

#[test]
fn bad_toml_is_named_with_file_and_line() {
    let e = refused(&format!("{MINIMAL}\n[tables.note\ncopy = false\n"));
    assert_eq!(e.origin, "my.toml");
    assert_eq!(e.line, Some(9), "{e}");
    assert!(e.to_string().starts_with("my.toml:9: "), "{e}");
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let e = refused(&format!(
        "{MINIMAL}\n[tables.note]\ncopy = false\nseeded_rows = \"replace\"\n"
    ));
    let text = e.to_string();
    assert!(text.starts_with("my.toml:11: "), "{text}");
    assert!(text.contains("seeded_rows"), "{text}");
}

#[test]
fn a_value_of_the_wrong_kind_names_the_choices() {
    let e = refused(&format!("{MINIMAL}\n[tables.note]\nseeded = \"merge\"\n"));
    let text = e.to_string();
    assert!(text.starts_with("my.toml:10: "), "{text}");
    assert!(
        text.contains("merge") && text.contains("keep-target"),
        "{text}"
    );
}

#[test]
fn an_unknown_hook_is_an_error_naming_it_and_the_known_ones() {
    let text = MINIMAL.replace(
        "homepage = \"https://notes.example\"\n",
        "homepage = \"https://notes.example\"\nhook = \"notes-search\"\n",
    );
    let e = refused(&text);
    assert_eq!(e.line, Some(4), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("unknown hook \"notes-search\"") && text.contains("open-webui-vectors"),
        "{text}"
    );
}

#[test]
fn a_hook_without_its_store_is_refused() {
    let text = MINIMAL.replace(
        "homepage = \"https://notes.example\"\n",
        "homepage = \"https://notes.example\"\nhook = \"open-webui-vectors\"\n",
    );
    let text = refused(&text).to_string();
    assert!(text.contains("[stores.vector_db]"), "{text}");
}

#[test]
fn a_hook_without_the_table_it_reads_is_refused_naming_its_line() {
    let text = MINIMAL.replace(
        "homepage = \"https://notes.example\"\n",
        "homepage = \"https://notes.example\"\nhook = \"n8n-credentials\"\n",
    ) + "[stores.config]\npath = \"config\"\n";
    let e = refused(&text);
    assert_eq!(e.line, Some(4), "{e}");
    assert!(
        e.to_string()
            .contains("hook \"n8n-credentials\" reads the table \"credentials_entity\": list it in data.tables"),
        "{e}"
    );
    let fixed = text.replace(
        "tables = [\"note\"]",
        "tables = [\"note\", \"credentials_entity\"]",
    );
    let preset = Preset::parse(&fixed, "my.toml").unwrap();
    assert_eq!(preset.hook(), Some(Hook::N8nCredentials));
}

#[test]
fn each_hook_says_when_it_runs() {
    let hooks: Vec<(String, Option<HookPoint>)> = built_in()
        .iter()
        .map(|p| (p.name.clone(), p.summary().hook_runs))
        .collect();
    assert_eq!(
        hooks,
        [
            ("open-webui".to_string(), Some(HookPoint::AfterLoad)),
            ("home-assistant".to_string(), None),
            ("n8n".to_string(), Some(HookPoint::BeforeLoad)),
            ("langflow".to_string(), None),
        ]
    );
}

#[test]
fn a_missing_required_key_is_named() {
    let text =
        refused("name = \"notes\"\ntitle = \"Notes\"\n[data]\ndatabase = [\"n.db\"]\n").to_string();
    assert!(text.contains("homepage"), "{text}");
}

#[test]
fn bad_names_and_rules_are_refused_naming_their_line() {
    let upper = refused(&MINIMAL.replace("name = \"notes\"", "name = \"My Notes\""));
    assert!(
        upper
            .to_string()
            .starts_with("my.toml:1: name \"My Notes\""),
        "{upper}"
    );
    assert!(upper.to_string().contains("lowercase"), "{upper}");
    let no_db = refused(&MINIMAL.replace("database = [\"notes.db\"]", "database = []"));
    assert!(
        no_db.to_string().starts_with("my.toml:6: data.database"),
        "{no_db}"
    );
    let latest = refused(&format!(
        "{MINIMAL}\n[schema_version]\ntable = \"v\"\ncolumn = \"n\"\norder = \"latest-by\"\n"
    ));
    assert!(latest.to_string().starts_with("my.toml:12: "), "{latest}");
    assert!(latest.to_string().contains("latest_by"), "{latest}");
    let dotted = refused(&format!(
        "{MINIMAL}\n[tables.note]\nignore_columns = [\n  \"body\",\n  \"note.old\",\n]\n"
    ));
    assert!(
        dotted
            .to_string()
            .starts_with("my.toml:12: tables.note.ignore_columns: \"note.old\""),
        "{dotted}"
    );
}

#[test]
fn a_placeholder_is_refused_where_it_means_nothing_naming_key_and_line() {
    let unknown = refused(&format!(
        "{MINIMAL}\n[after]\nintro = \"Next:\"\nenv = [\"A={{url}}\", \"B={{password}}\"]\n"
    ));
    assert!(
        unknown
            .to_string()
            .starts_with("my.toml:11: after.env: unknown placeholder {password}"),
        "{unknown}"
    );
    for (key, line) in [
        ("[after]\nenv = [\"DIR={path}\"]", "after.env"),
        ("[after]\nintro = \"In {path}:\"", "after.intro"),
        (
            "[commands]\ncreate_schema = \"app init {path}\"",
            "commands.create_schema",
        ),
    ] {
        let e = refused(&format!("{MINIMAL}\n{key}\n"));
        assert_eq!(e.line, Some(10), "{e}");
        assert!(
            e.message
                .starts_with(&format!("{line}: {{path}} is filled in only in")),
            "{e}"
        );
    }
    let allowed = format!(
        "{MINIMAL}\n[stores.keys]\npath = \"keys\"\npresent = \"Copy {{path}}\"\nabsent = \"No {{path}}\"\n\n[after]\nnotes = [\"Data in {{path}}\"]\n"
    );
    Preset::parse(&allowed, "my.toml").expect("{path} where a path is filled in");
}

#[test]
fn resolve_takes_a_built_in_name_or_a_file_and_names_both_when_neither() {
    assert_eq!(resolve("n8n").unwrap().title, "n8n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.toml");
    std::fs::write(&file, MINIMAL).unwrap();
    assert_eq!(resolve(file.to_str().unwrap()).unwrap().name, "notes");
    let e = resolve("wordpress").expect_err("unknown");
    assert_eq!(e.kind(), MigrateErrorKind::Usage);
    let text = e.to_string();
    assert!(
        text.contains("preset \"wordpress\"")
            && text.contains("open-webui, home-assistant, n8n, langflow"),
        "{text}"
    );
    std::fs::write(&file, "name = \"notes\"\nfoo = 1\n").unwrap();
    let text = resolve(file.to_str().unwrap())
        .expect_err("bad file")
        .to_string();
    assert!(
        text.starts_with(&format!("{}:2: ", file.display())),
        "{text}"
    );
}

#[test]
fn the_rules_become_into_existing_options() {
    let text = format!(
        r#"{MINIMAL}
[schema_version]
table = "history"
column = "version"
latest_by = "id"
order = "number"

[[corresponding]]
sqlite = "7"
postgres = "7pg"

[tables.history_old]
copy = false
why = "the app rebuilds it"

[tables.settings]
seeded = "keep-target"

[tables.roles]
seeded = "replace"

[tables.note]
ignore_columns = ["legacy"]

[commands]
create_schema = "notes migrate --db {{url}}"
upgrade_sqlite = "notes upgrade"
"#
    );
    let preset = Preset::parse(&text, "my.toml").unwrap();
    let target = ConnConfig::parse("postgresql://app:s3cret@db.example/notes").unwrap();
    let mut options = ExistingOptions::default();
    preset.apply(&mut options, &target);
    assert_eq!(options.preset_ignored_columns, ["note.legacy"]);
    assert!(options.ignore_columns.is_empty(), "only --ignore-columns");
    assert_eq!(options.replaced_tables, ["roles"]);
    assert_eq!(options.skipped("history_old"), Some("the app rebuilds it"));
    assert!(options.skipped("settings").unwrap().contains("kept"));
    assert_eq!(options.skipped("note"), None);
    assert_eq!(
        options.corresponding_revisions,
        [("7".to_string(), "7pg".to_string())]
    );
    let create = options.create_schema.unwrap();
    assert!(
        create.starts_with("notes migrate --db postgresql://app:"),
        "{create}"
    );
    assert!(!create.contains("s3cret"), "password shown: {create}");
    let version = options.app_version.unwrap();
    assert_eq!(
        (version.table.as_str(), version.latest_by.as_deref()),
        ("history", Some("id"))
    );
    assert!(matches!(version.order, VersionOrder::Number));
    assert_eq!(version.upgrade_sqlite.as_deref(), Some("notes upgrade"));
    assert_eq!(version.upgrade_postgres, None);
}

#[test]
fn texts_are_filled_from_the_target_and_unknown_placeholders_refused() {
    let target = ConnConfig::parse("postgresql://n8n:s3cret@db.example:5433/flows").unwrap();
    let filled = super::fill(
        "{host} {port} {database} {user} {url} {path}",
        &target,
        Some(std::path::Path::new("/data/config")),
    );
    assert!(
        filled.starts_with("db.example 5433 flows n8n postgresql://n8n:")
            && filled.ends_with(" /data/config")
            && !filled.contains("s3cret"),
        "{filled}"
    );
    let text = refused(&format!(
        "{MINIMAL}\n[after]\nenv = [\"APP_DB_PASSWORD={{password}}\"]\n"
    ))
    .to_string();
    assert!(
        text.contains("after.env: unknown placeholder {password}") && text.contains("{url}"),
        "{text}"
    );
}
