//! Application knowledge as data: what `--preset NAME|FILE` means.
//!
//! A preset is a TOML file ([`format`]): how to recognise the application's
//! data directory ([`recognise`]), its SQLite file and other stores, how to
//! read its schema version, per-table rules, what to print at the end and the
//! application's own commands for what pgharbor cannot do. The presets in
//! the repository's `presets/` directory are built into the binary
//! ([`built_in`]); `--preset FILE` reads a user's own ([`resolve`]).
//!
//! The rules become [`ExistingOptions`] (the `--into-existing` machinery
//! does the work); what no rule can express is code behind a named
//! [`Hook`], run before the load or after it ([`app_run`]: n8n's credentials
//! checked to decrypt, [`n8n_credentials`]; Open WebUI's vectors moved).

pub mod app_run;
pub mod format;
mod n8n_cipher;
pub mod n8n_credentials;
pub mod recognise;

use crate::error::{MigrateError, MigrateErrorKind};
use crate::existing::{AppVersion, ExistingOptions, VersionOrder};
pub use app_run::{AppReport, AppRun, HookOutcome, VectorOutcome};
pub use format::{Hook, HookPoint, NulRule, Preset, PresetError, Seeded};
use pgharbor_conn::ConnConfig;
pub use recognise::AppData;
use std::path::Path;

/// The presets built into pgharbor: name and file text (`presets/NAME.toml`).
const BUILT_IN: [(&str, &str); 4] = [
    (
        "open-webui",
        include_str!("../../../../presets/open-webui.toml"),
    ),
    (
        "home-assistant",
        include_str!("../../../../presets/home-assistant.toml"),
    ),
    ("n8n", include_str!("../../../../presets/n8n.toml")),
    (
        "langflow",
        include_str!("../../../../presets/langflow.toml"),
    ),
];

/// Every built-in preset, parsed (each is checked by the crate's tests).
pub fn built_in() -> Vec<Preset> {
    BUILT_IN
        .iter()
        .map(|(name, text)| {
            Preset::parse(text, &format!("built-in preset {name}"))
                .unwrap_or_else(|e| panic!("a built-in preset is invalid: {e}"))
        })
        .collect()
}

/// The file text of the built-in preset `name`.
pub fn built_in_text(name: &str) -> Option<&'static str> {
    BUILT_IN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The names of the built-in presets.
pub fn built_in_names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|(n, _)| *n).collect()
}

/// `--preset NAME|FILE`: a built-in preset by name, else a preset file.
pub fn resolve(text: &str) -> Result<Preset, MigrateError> {
    if let Some(builtin) = built_in_text(text) {
        return Preset::parse(builtin, &format!("built-in preset {text}")).map_err(usage);
    }
    let path = Path::new(text);
    if !path.is_file() {
        return Err(MigrateError::new(
            MigrateErrorKind::Usage,
            format!(
                "preset {text:?}: no built-in preset has that name ({}) and there is no such file",
                built_in_names().join(", ")
            ),
        ));
    }
    let content = std::fs::read_to_string(path).map_err(|e| {
        MigrateError::new(
            MigrateErrorKind::Usage,
            format!("preset file {}: cannot be read", path.display()),
        )
        .caused_by(e)
    })?;
    Preset::parse(&content, &path.display().to_string()).map_err(usage)
}

fn usage(error: PresetError) -> MigrateError {
    MigrateError::new(MigrateErrorKind::Usage, error.to_string())
}

/// The placeholders a preset's texts may use.
pub const PLACEHOLDERS: [&str; 6] = ["url", "host", "port", "database", "user", "path"];

/// `template` with the target filled in — `{url}` (password shown as
/// `****`), `{host}`, `{port}`, `{database}`, `{user}` — and `{path}` (a
/// store's path). The password itself is never a placeholder.
pub fn fill(template: &str, target: &ConnConfig, path: Option<&Path>) -> String {
    let filled = template
        .replace("{url}", &target.to_string())
        .replace("{host}", &target.host().to_string())
        .replace("{port}", &target.port().to_string())
        .replace("{database}", target.dbname())
        .replace("{user}", target.user());
    match path {
        Some(p) => filled.replace("{path}", &p.display().to_string()),
        None => filled,
    }
}

impl Preset {
    /// The NUL rule in force unless `--nul` says otherwise.
    pub fn nul(&self) -> Option<NulRule> {
        self.values.nul
    }

    /// Put the preset's rules into `options` (for loading into `target`):
    /// columns left behind, tables skipped or replaced, corresponding
    /// revisions, the version rule and the schema command.
    pub fn apply(&self, options: &mut ExistingOptions, target: &ConnConfig) {
        for (table, rule) in &self.tables {
            options.preset_ignored_columns.extend(
                rule.ignore_columns
                    .iter()
                    .map(|column| format!("{table}.{column}")),
            );
            let why = rule.why.clone();
            match (rule.copy, rule.seeded) {
                (false, _) => options.skipped_tables.push((
                    table.clone(),
                    why.unwrap_or_else(|| format!("the {} preset never copies it", self.name)),
                )),
                (true, Seeded::KeepTarget) => options.skipped_tables.push((
                    table.clone(),
                    why.unwrap_or_else(|| {
                        format!("the rows {} seeded in the target are kept", self.title)
                    }),
                )),
                (true, Seeded::Replace) => options.replaced_tables.push(table.clone()),
                (true, Seeded::Refuse) => {}
            }
        }
        options.corresponding_revisions.extend(
            self.corresponding
                .iter()
                .map(|c| (c.sqlite.clone(), c.postgres.clone())),
        );
        let command = |c: &Option<String>| c.as_deref().map(|t| fill(t, target, None));
        options.create_schema = command(&self.commands.create_schema);
        options.app_version = self.schema_version.as_ref().map(|v| AppVersion {
            app: self.title.clone(),
            table: v.table.clone(),
            column: v.column.clone(),
            latest_by: v.latest_by.clone(),
            order: match v.order {
                format::VersionOrder::Number => VersionOrder::Number,
                format::VersionOrder::LatestBy => VersionOrder::LatestBy,
                format::VersionOrder::Tested => {
                    VersionOrder::Listed(self.tested.iter().map(|t| t.schema.clone()).collect())
                }
            },
            tested: self.tested.iter().map(|t| t.schema.clone()).collect(),
            upgrade_sqlite: command(&self.commands.upgrade_sqlite),
            upgrade_postgres: command(&self.commands.upgrade_postgres),
        });
    }
}

/// What `pgharbor presets` says of one preset.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// `--preset NAME`.
    pub name: String,
    /// The application.
    pub title: String,
    /// Its homepage.
    pub homepage: String,
    /// Its documentation on its database settings.
    pub docs: Option<String>,
    /// The SQLite database names (or globs) in its data directory.
    pub database: Vec<String>,
    /// Tables its database must have.
    pub tables: Vec<String>,
    /// Files and directories its data directory must have.
    pub requires: Vec<String>,
    /// Where its schema version is read, as `table.column`.
    pub schema_version: Option<String>,
    /// Versions the preset was tested with, oldest first.
    pub tested: Vec<format::Tested>,
    /// The hook it names.
    pub hook: Option<String>,
    /// When that hook runs (`before-load`, `after-load`).
    pub hook_runs: Option<HookPoint>,
}

impl Preset {
    /// What `pgharbor presets` says of it.
    pub fn summary(&self) -> Summary {
        Summary {
            name: self.name.clone(),
            title: self.title.clone(),
            homepage: self.homepage.clone(),
            docs: self.docs.clone(),
            database: self.data.database.clone(),
            tables: self.data.tables.clone(),
            requires: self
                .data
                .files
                .iter()
                .cloned()
                .chain(self.data.directories.iter().map(|d| format!("{d}/")))
                .collect(),
            schema_version: self
                .schema_version
                .as_ref()
                .map(|v| format!("{}.{}", v.table, v.column)),
            tested: self.tested.clone(),
            hook: self.hook.as_ref().map(|h| h.get_ref().clone()),
            hook_runs: self.hook().map(Hook::point),
        }
    }
}

/// `pgharbor presets show NAME|FILE`: the built-in preset's file, or a
/// preset file checked and returned as it is.
pub fn show(text: &str) -> Result<String, MigrateError> {
    if let Some(builtin) = built_in_text(text) {
        return Ok(builtin.to_string());
    }
    resolve(text)?;
    std::fs::read_to_string(text).map_err(|e| {
        MigrateError::new(
            MigrateErrorKind::Usage,
            format!("preset file {text}: cannot be read"),
        )
        .caused_by(e)
    })
}

#[cfg(test)]
mod tests;
