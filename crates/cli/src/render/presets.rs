//! `pgharbor presets`: the built-in presets as a table (or JSON).

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use pgharbor_migrate::presets::Summary;

/// The table of presets: name, application, what recognises its data
/// directory, where its version is read, and the tested versions.
pub fn render(presets: &[Summary]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "preset",
        "application",
        "recognised by",
        "schema version",
        "tested (app: schema)",
    ]);
    for p in presets {
        let mut recognised = p.database.join(" or ");
        if !p.tables.is_empty() {
            recognised.push_str(&format!(" with tables {}", p.tables.join(", ")));
        }
        if !p.requires.is_empty() {
            recognised.push_str(&format!("; {}", p.requires.join(", ")));
        }
        let tested: Vec<String> = p
            .tested
            .iter()
            .map(|t| format!("{}: {}", t.app, t.schema))
            .collect();
        table.add_row([
            p.name.clone(),
            format!("{}\n{}", p.title, p.homepage),
            recognised,
            p.schema_version.clone().unwrap_or_else(|| "-".into()),
            tested.join("\n"),
        ]);
    }
    format!(
        "{table}\n`pgharbor presets show NAME` prints a preset; `--preset FILE` takes your own (docs/presets.md).\n"
    )
}
