//! A preset's rules at their edges, with the user's Notes preset
//! (`presets.rs`): the latest version read by the history column's own type
//! (13 rows, ids past 9), every-row versions sorted alike whatever the
//! target's collation, columns a preset leaves behind reported (and refused
//! when the target has them), and `--preset` refusing a database that lacks
//! the tables the preset requires or cannot be read.

use crate::harness::{migrate, migrate_with_preset, query, Scratch, UNREACHABLE};
use crate::presets::{app_dir, Notes, NOTES_PRESET};

/// History rows `(id, version)` for ids 1..=13, versions 30..=42: the
/// latest by id is 42, by the id's text ("9" > "13") it would be 38.
fn thirteen_history_rows() -> String {
    (1..=13)
        .map(|id| format!("({id}, '{}')", 29 + id))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn the_latest_version_is_the_row_with_the_highest_id_as_a_number_on_both_sides() {
    let notes = Notes::new();
    let history = format!(
        "DELETE FROM history; INSERT INTO history VALUES {};",
        thirteen_history_rows()
    );
    notes.sqlite().execute_batch(&history).unwrap();
    let url = notes.target("thirteen", "3");
    notes.pg.psql("thirteen", &history);
    let run = notes.migrate(&url, &[]).success();
    assert!(
        run.stdout
            .contains("migration bookkeeping history: not copied; versions match: 42"),
        "{}",
        run.all()
    );
}

#[test]
fn every_row_versions_compare_alike_whatever_the_targets_collation() {
    let notes = Notes::new();
    let every_row = NOTES_PRESET.replace("latest_by = \"id\"\norder = \"number\"\n", "");
    assert_ne!(every_row, NOTES_PRESET);
    std::fs::write(
        &notes.preset,
        every_row.replace("schema = \"3\"", "schema = \"B, a\""),
    )
    .unwrap();
    notes
        .sqlite()
        .execute_batch("DELETE FROM history; INSERT INTO history VALUES (1, 'a'), (2, 'B');")
        .unwrap();
    let url = notes.target("heads", "3");
    notes.pg.psql(
        "heads",
        "ALTER TABLE history ALTER COLUMN version TYPE text COLLATE \"und-x-icu\";
         DELETE FROM history; INSERT INTO history (version) VALUES ('a'), ('B');",
    );
    assert_eq!(
        query(&notes.pg, "heads", "SELECT version FROM history ORDER BY 1"),
        ["a", "B"],
        "the target's collation sorts otherwise than SQLite's"
    );
    let run = notes.migrate(&url, &[]).success();
    assert!(
        run.stdout
            .contains("migration bookkeeping history: not copied; versions match: B, a"),
        "{}",
        run.all()
    );
}

#[test]
fn a_column_the_preset_leaves_behind_is_reported_and_refused_when_the_target_has_it() {
    let notes = Notes::new();
    let url = notes.target("left", "3");
    let entry =
        "column note.legacy: left behind, not copied, not verified: the preset's ignore_columns";
    let run = notes.migrate(&url, &[]).success();
    assert!(run.stdout.contains(entry), "{}", run.all());
    let json = notes.migrate(&url, &["--truncate", "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let reported = report["database"]["reported"].as_array().unwrap();
    assert!(
        reported.iter().any(|r| r["kind"] == "column"
            && r["name"] == "note.legacy"
            && r["note"] == "left behind, not copied, not verified: the preset's ignore_columns"),
        "{}",
        json.stdout
    );

    let newer = notes.target("newer_app", "3");
    notes
        .pg
        .psql("newer_app", "ALTER TABLE note ADD COLUMN legacy text;");
    notes.migrate(&newer, &[]).fails_with(
        2,
        &[
            "column note.legacy: the preset leaves it behind (its ignore_columns) but the target table \"note\" has it",
            "the preset was written for another version of the application",
            "--ignore-columns note.legacy leaves it behind anyway",
        ],
    );
    assert_eq!(
        query(&notes.pg, "newer_app", "SELECT count(*) FROM note"),
        ["0"],
        "nothing loaded"
    );
    let run = notes
        .migrate(&newer, &["--ignore-columns", "note.legacy"])
        .success();
    assert!(
        run.stdout.contains(
            "column note.legacy: left behind, not copied, not verified: --ignore-columns"
        ),
        "{}",
        run.all()
    );
    assert_eq!(
        query(
            &notes.pg,
            "newer_app",
            "SELECT count(*) FROM note WHERE legacy IS NULL"
        ),
        ["2"]
    );
}

#[test]
fn an_explicit_preset_refuses_a_database_without_its_tables_or_unreadable() {
    let scratch = Scratch::new();
    let dir = app_dir(
        &scratch,
        "owui",
        "webui.db",
        &["auth", "user"],
        &[],
        &["uploads"],
    );
    let lacking =
        "is not Open WebUI's database (it has no chat table), which the open-webui preset requires";
    migrate_with_preset(&dir, UNREACHABLE, "open-webui", &[]).fails_with(2, &[lacking]);
    let file = dir.join("webui.db");
    migrate_with_preset(&file, UNREACHABLE, "open-webui", &[]).fails_with(2, &[lacking]);

    let garbled = scratch.path("garbled");
    std::fs::create_dir_all(garbled.join(".storage")).unwrap();
    std::fs::write(
        garbled.join("home-assistant_v2.db"),
        "not a database\n".repeat(4),
    )
    .unwrap();
    migrate(&garbled, UNREACHABLE, &[]).fails_with(
        1,
        &[
            "is not Home Assistant's database (it cannot be read: ",
            "not an SQLite database",
        ],
    );
    migrate_with_preset(&garbled, UNREACHABLE, "home-assistant", &[]).fails_with(
        2,
        &["is not Home Assistant's database (it cannot be read: "],
    );
}
