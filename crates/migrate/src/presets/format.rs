//! The preset file format (`presets/*.toml`): what pgharbor knows of one
//! application, as data. Read with [`Preset::parse`]; every key is
//! described in `docs/presets.md`. A file with an unknown key, a value of
//! the wrong kind or an unknown hook is refused, naming the file, line and
//! key.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use toml::Spanned;

/// One application's preset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// What `--preset NAME` calls it (`open-webui`).
    pub name: String,
    /// The application's name for people (`Open WebUI`).
    pub title: String,
    /// The application's homepage.
    pub homepage: String,
    /// The application's documentation on its database settings.
    #[serde(default)]
    pub docs: Option<String>,
    /// Code for what no rule can express (see [`Hook`]).
    #[serde(default)]
    pub hook: Option<Spanned<String>>,
    /// How the application's data directory is recognised.
    pub data: DataRules,
    /// Other stores in the data directory, by name.
    #[serde(default)]
    pub stores: BTreeMap<String, Store>,
    /// The application's migration history and how its version is read.
    #[serde(default)]
    pub schema_version: Option<SchemaVersion>,
    /// Versions the preset was tested with, oldest first.
    #[serde(default)]
    pub tested: Vec<Tested>,
    /// Value rules in force unless the command line says otherwise.
    #[serde(default)]
    pub values: Values,
    /// Rules per table, by the source table's name.
    #[serde(default)]
    pub tables: BTreeMap<String, TableRule>,
    /// Migration revisions that stand for the same application version.
    #[serde(default)]
    pub corresponding: Vec<Corresponding>,
    /// What the end of a verified run says.
    #[serde(default)]
    pub after: After,
    /// The application's own commands for what pgharbor cannot do.
    #[serde(default)]
    pub commands: Commands,
}

/// How the application's data directory is recognised.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRules {
    /// Where users find the data directory (for messages).
    #[serde(default)]
    pub directory: Option<String>,
    /// The SQLite database in the directory: names or globs (`*`, `?`),
    /// the first existing one is taken.
    pub database: Vec<String>,
    /// Tables the database must have.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Files that must exist in the directory (recognition only).
    #[serde(default)]
    pub files: Vec<String>,
    /// Directories that must exist in the directory (recognition only).
    #[serde(default)]
    pub directories: Vec<String>,
}

/// Another store in the data directory (vectors, uploads, keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// Its path in the data directory.
    pub path: String,
    /// A file that must be inside it for it to count as present.
    #[serde(default)]
    pub marker: Option<String>,
    /// What it is.
    #[serde(default)]
    pub about: Option<String>,
    /// The end of the run's sentence when it is present (`{path}`, `{url}`).
    #[serde(default)]
    pub present: Option<String>,
    /// The end of the run's sentence when it is missing (`{path}`, `{url}`).
    #[serde(default)]
    pub absent: Option<String>,
}

/// The application's migration history table and how its version is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaVersion {
    /// The table (never copied).
    pub table: String,
    /// The column naming the version.
    pub column: String,
    /// The row whose `column` is the current version: the highest of this
    /// column. Without it, every row is compared (Alembic's single row).
    #[serde(default)]
    pub latest_by: Option<String>,
    /// How to tell which side is older.
    #[serde(default)]
    pub order: VersionOrder,
}

/// How to tell which of two schema versions is older.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionOrder {
    /// The versions are numbers: the smaller is older.
    Number,
    /// The `latest_by` values are compared: the smaller is older
    /// (n8n's migration timestamps).
    LatestBy,
    /// The order of the `tested` list (oldest first); other versions
    /// cannot be placed.
    #[default]
    Tested,
}

/// A version the preset was tested with.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tested {
    /// The application's version.
    pub app: String,
    /// Its schema version, as `schema_version` reads it.
    pub schema: String,
}

/// Value rules in force unless the command line says otherwise.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Values {
    /// NUL characters in text (`--nul`).
    #[serde(default)]
    pub nul: Option<NulRule>,
}

/// What to do with NUL characters in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NulRule {
    /// Stop, naming table, row key and column.
    Error,
    /// Remove them and count every changed value.
    Strip,
}

/// Rules for one source table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRule {
    /// `false`: never copied (reported as skipped, not verified).
    #[serde(default = "yes")]
    pub copy: bool,
    /// Why (shown in the plan and the report).
    #[serde(default)]
    pub why: Option<String>,
    /// Rows the application's own migrations seeded in the target table.
    #[serde(default)]
    pub seeded: Seeded,
    /// Source columns the application no longer has: left behind.
    #[serde(default)]
    pub ignore_columns: Vec<String>,
}

fn yes() -> bool {
    true
}

/// What to do with rows already in the target table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Seeded {
    /// Stop unless `--truncate` (nothing is changed).
    #[default]
    Refuse,
    /// Empty the table before loading the source's rows.
    Replace,
    /// Keep the target's rows; the source's table is not copied.
    KeepTarget,
}

/// Two migration revisions that stand for the same application version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Corresponding {
    /// The revision as the SQLite side records it.
    pub sqlite: String,
    /// The revision as the PostgreSQL side records it.
    pub postgres: String,
}

/// What the end of a verified run says (`{url}`: the target, password masked).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct After {
    /// The sentence before the settings.
    #[serde(default)]
    pub intro: Option<String>,
    /// Settings the application needs next, one per line.
    #[serde(default)]
    pub env: Vec<String>,
    /// Sentences after the settings and the hook's.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The application's own commands for the steps pgharbor cannot do
/// (`{url}`: the target, password masked).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commands {
    /// How to let the application create its PostgreSQL schema.
    #[serde(default)]
    pub create_schema: Option<String>,
    /// How to upgrade the SQLite side.
    #[serde(default)]
    pub upgrade_sqlite: Option<String>,
    /// How to upgrade the PostgreSQL side.
    #[serde(default)]
    pub upgrade_postgres: Option<String>,
}

/// Code for what a rule cannot express, named by a preset's `hook`. Each
/// hook runs at its own [`HookPoint`] of the application's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Open WebUI's Chroma store (the `vector_db` store) into `document_chunk`.
    OpenWebUiVectors,
    /// n8n's credentials (`credentials_entity`) checked to decrypt with the
    /// instance's key (`N8N_ENCRYPTION_KEY`, else the `config` store's).
    N8nCredentials,
}

/// When a hook runs in an application's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookPoint {
    /// After the source's snapshot is taken, before anything is written:
    /// a refusal leaves the target untouched.
    BeforeLoad,
    /// Once the database is loaded and verified.
    AfterLoad,
}

impl Hook {
    /// Every hook, by the name a preset gives it.
    pub const ALL: [(&'static str, Hook); 2] = [
        ("open-webui-vectors", Hook::OpenWebUiVectors),
        ("n8n-credentials", Hook::N8nCredentials),
    ];

    /// When it runs.
    pub fn point(self) -> HookPoint {
        match self {
            Hook::OpenWebUiVectors => HookPoint::AfterLoad,
            Hook::N8nCredentials => HookPoint::BeforeLoad,
        }
    }

    /// The store the hook reads, which the preset must declare.
    pub fn store(self) -> &'static str {
        match self {
            Hook::OpenWebUiVectors => "vector_db",
            Hook::N8nCredentials => "config",
        }
    }

    /// The table of the database the hook reads, which the preset's
    /// `data.tables` must require.
    pub fn table(self) -> Option<&'static str> {
        match self {
            Hook::OpenWebUiVectors => None,
            Hook::N8nCredentials => Some(super::n8n_credentials::TABLE),
        }
    }
}

/// A preset file that cannot be used: where, and why.
#[derive(Debug)]
pub struct PresetError {
    /// The file (or `built-in NAME`).
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PresetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for PresetError {}

/// A text a preset fills in: where it is, and whether `{path}` means
/// something there.
struct Template<'a> {
    /// Its key, dotted (`after.env`).
    key: Vec<String>,
    /// Its place in the key's list, for lists.
    index: Option<usize>,
    text: &'a str,
    /// `{path}` is filled in (a store's path, or the data directory).
    path: bool,
}

/// The template `text` at `key`, if the preset has it.
fn one<'a>(key: &[&str], text: &'a Option<String>, path: bool) -> Option<Template<'a>> {
    text.as_deref().map(|text| Template {
        key: key.iter().map(|k| k.to_string()).collect(),
        index: None,
        text,
        path,
    })
}

/// The templates of the list `texts` at `key`.
fn each<'a>(key: &[&str], texts: &'a [String], path: bool) -> Vec<Template<'a>> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| Template {
            key: key.iter().map(|k| k.to_string()).collect(),
            index: Some(i),
            text: text.as_str(),
            path,
        })
        .collect()
}

impl Template<'_> {
    fn shown_key(&self) -> String {
        self.key.join(".")
    }
}

impl Preset {
    /// Every text that is filled in.
    fn templates(&self) -> Vec<Template<'_>> {
        let mut texts: Vec<Template<'_>> = Vec::new();
        texts.extend(one(&["after", "intro"], &self.after.intro, false));
        texts.extend(each(&["after", "env"], &self.after.env, false));
        texts.extend(each(&["after", "notes"], &self.after.notes, true));
        for (name, store) in &self.stores {
            texts.extend(one(&["stores", name, "present"], &store.present, true));
            texts.extend(one(&["stores", name, "absent"], &store.absent, true));
        }
        texts.extend(one(
            &["commands", "create_schema"],
            &self.commands.create_schema,
            false,
        ));
        texts.extend(one(
            &["commands", "upgrade_sqlite"],
            &self.commands.upgrade_sqlite,
            false,
        ));
        texts.extend(one(
            &["commands", "upgrade_postgres"],
            &self.commands.upgrade_postgres,
            false,
        ));
        texts
    }

    /// The first text using a placeholder it may not: unknown, or `{path}`
    /// where no path is filled in; with why.
    fn misplaced_placeholder(&self) -> Option<(Template<'_>, String)> {
        self.templates().into_iter().find_map(|template| {
            let word = placeholders(template.text).find(|word| {
                !super::PLACEHOLDERS.contains(word) || (*word == "path" && !template.path)
            })?;
            let why = if super::PLACEHOLDERS.contains(&word) {
                format!(
                    "{}: {{path}} is filled in only in [stores.NAME] present/absent (the store's path) and after.notes (the data directory)",
                    template.shown_key()
                )
            } else {
                format!(
                    "{}: unknown placeholder {{{word}}} (known: {})",
                    template.shown_key(),
                    super::PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            Some((template, why))
        })
    }
}

/// The `{word}`s of a text.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(word, _)| word))
        .filter(|word| {
            !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// The 1-based line where the value at `key` (its `index`th item, for a
/// list) is written in the preset's `text`.
fn line_at(text: &str, key: &[impl AsRef<str>], index: Option<usize>) -> Option<usize> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut value: Option<&Spanned<toml::de::DeValue<'_>>> = None;
    let mut span = root.span();
    for (depth, part) in key.iter().enumerate() {
        let found = if depth == 0 {
            root.get_ref().get(part.as_ref())
        } else {
            value?.get_ref().get(part.as_ref())
        }?;
        span = found.span();
        value = Some(found);
    }
    if let Some(i) = index {
        span = value?.get_ref().get(i)?.span();
    }
    Some(line_of(text, span.start))
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Preset {
    /// Read a preset from `text`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Preset, PresetError> {
        let preset: Preset = toml::from_str(text).map_err(|e| PresetError {
            origin: origin.to_string(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        preset.validate(text, origin)?;
        Ok(preset)
    }

    /// The hook the preset names, if any.
    pub fn hook(&self) -> Option<Hook> {
        let name = self.hook.as_ref()?;
        Hook::ALL
            .iter()
            .find(|(n, _)| *n == name.get_ref())
            .map(|(_, h)| *h)
    }

    /// Checks serde cannot make: names, hooks, references between keys.
    fn validate(&self, text: &str, origin: &str) -> Result<(), PresetError> {
        let fail = |line: Option<usize>, message: String| PresetError {
            origin: origin.to_string(),
            line,
            message,
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(fail(
                line_at(text, &["name"], None),
                format!(
                    "name {:?}: a preset's name is lowercase letters, digits and '-'",
                    self.name
                ),
            ));
        }
        if let Some(hook) = &self.hook {
            let line = Some(line_of(text, hook.span().start));
            let Some(known) = self.hook() else {
                let known: Vec<&str> = Hook::ALL.iter().map(|(n, _)| *n).collect();
                return Err(fail(
                    line,
                    format!(
                        "unknown hook {:?} (pgharbor's hooks: {})",
                        hook.get_ref(),
                        known.join(", ")
                    ),
                ));
            };
            if !self.stores.contains_key(known.store()) {
                return Err(fail(
                    line,
                    format!(
                        "hook {:?} reads the store named {:?}: declare [stores.{}]",
                        hook.get_ref(),
                        known.store(),
                        known.store()
                    ),
                ));
            }
            if let Some(table) = known
                .table()
                .filter(|t| !self.data.tables.iter().any(|have| have == t))
            {
                return Err(fail(
                    line,
                    format!(
                        "hook {:?} reads the table {table:?}: list it in data.tables",
                        hook.get_ref()
                    ),
                ));
            }
        }
        if self.data.database.is_empty() {
            return Err(fail(
                line_at(text, &["data", "database"], None),
                "data.database: name at least one SQLite file".into(),
            ));
        }
        if let Some(version) = &self.schema_version {
            if version.order == VersionOrder::LatestBy && version.latest_by.is_none() {
                return Err(fail(
                    line_at(text, &["schema_version", "order"], None),
                    "schema_version.order = \"latest-by\" needs schema_version.latest_by".into(),
                ));
            }
        }
        if let Some((template, why)) = self.misplaced_placeholder() {
            return Err(fail(line_at(text, &template.key, template.index), why));
        }
        for (table, rule) in &self.tables {
            if let Some((i, column)) = rule
                .ignore_columns
                .iter()
                .enumerate()
                .find(|(_, c)| c.contains('.'))
            {
                return Err(fail(
                    line_at(text, &["tables", table, "ignore_columns"], Some(i)),
                    format!("tables.{table}.ignore_columns: {column:?}: give the column's name alone (the table is {table})"),
                ));
            }
        }
        Ok(())
    }
}
