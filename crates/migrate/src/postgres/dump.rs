//! Running `pg_dump` for the schema sections and splitting its plain-SQL
//! output into entries.
//!
//! `pg_dump --format=plain` writes one block per archive entry, each headed by
//! a comment naming it (`-- Name: t_pkey; Type: CONSTRAINT; Schema: public;
//! Owner: app`). Session settings (`SET …`) appear before the first entry and
//! between entries; they are tracked so an entry can be replayed on any
//! connection with the settings in force where it stood in the script.
//!
//! pgharbor's own journal schemas ([`crate::journal::SCHEMAS`]) are left out
//! of the dump: they record runs into the source database, not its data.
//! A cancelled run asks `pg_dump` to stop, which cancels its statement on
//! the server ([`pgharbor_pgtools::child::output_unless_cancelled`]).

use crate::error::{MigrateError, MigrateErrorKind};
use pgharbor_conn::ConnConfig;
use pgharbor_pgtools::Program;
use std::collections::BTreeMap;
use std::process::Stdio;
use tokio_util::sync::CancellationToken;

/// A section of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Everything needed before the data: types, tables, functions, views, …
    PreData,
    /// Everything built on the data: indexes, constraints, triggers, …
    PostData,
}

impl Section {
    fn flag(self) -> &'static str {
        match self {
            Section::PreData => "--section=pre-data",
            Section::PostData => "--section=post-data",
        }
    }
}

/// One archive entry of a plain dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name as the header gives it (`t t_pkey`, `TABLE t`).
    pub name: String,
    /// Its type (`TABLE`, `INDEX`, `FK CONSTRAINT`, `ACL`, …).
    pub kind: String,
    /// Its schema (`-` for none).
    pub schema: String,
    /// Its owner (empty or `-` for none).
    pub owner: String,
    /// The SQL of the entry.
    pub sql: String,
    /// Session settings in force where the entry stood, in order.
    pub settings: Vec<String>,
}

impl Entry {
    /// How the entry is named in messages: `VIEW public.w`.
    pub fn label(&self) -> String {
        let name = self.name.rsplit(' ').next().unwrap_or(&self.name);
        if self.schema.is_empty() || self.schema == "-" {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}.{}", self.kind, self.schema, name)
        }
    }

    /// The settings and the entry's SQL as one script.
    pub fn script(&self) -> String {
        let mut script = self.settings.join("\n");
        script.push('\n');
        script.push_str(&self.sql);
        script
    }
}

/// What controls the dump.
#[derive(Debug, Clone, Copy, Default)]
pub struct DumpOptions {
    /// Leave ownership out (`--no-owner`).
    pub no_owner: bool,
    /// Leave privileges out (`--no-privileges`).
    pub no_privileges: bool,
}

/// Run `pg_dump` for one section of `source` in `snapshot` and split it;
/// `cancel` stops `pg_dump` (the run's interruption is returned).
pub async fn dump_section(
    pg_dump: &Program,
    source: &ConnConfig,
    snapshot: Option<&str>,
    section: Section,
    options: DumpOptions,
    cancel: &CancellationToken,
) -> Result<Vec<Entry>, MigrateError> {
    let mut command = tokio::process::Command::from(pg_dump.command());
    pgharbor_pgtools::clear_libpq_env(command.as_std_mut(), source);
    command
        .args(["--format=plain", "--no-sync", section.flag()])
        .args(
            crate::journal::SCHEMAS
                .iter()
                .map(|schema| format!("--exclude-schema={schema}")),
        )
        .stdin(Stdio::null());
    if let Some(id) = snapshot {
        command.arg(format!("--snapshot={id}"));
    }
    if options.no_owner {
        command.arg("--no-owner");
    }
    if options.no_privileges {
        command.arg("--no-privileges");
    }
    let output = pgharbor_pgtools::child::output_unless_cancelled(command, cancel)
        .await
        .map_err(|e| {
            MigrateError::new(
                MigrateErrorKind::Source,
                format!("running {}: {e}", pg_dump.path.display()),
            )
        })?
        .ok_or_else(crate::stop::interrupted)?;
    if !output.status.success() {
        return Err(MigrateError::new(
            MigrateErrorKind::Source,
            format!(
                "{} {} failed ({}): {}",
                pg_dump.path.display(),
                section.flag(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    }
    let text = String::from_utf8(output.stdout).map_err(|_| {
        MigrateError::new(
            MigrateErrorKind::Source,
            "pg_dump wrote a schema that is not UTF-8 (a database in another encoding): \
             copying it is not supported",
        )
    })?;
    Ok(split_entries(&text))
}

/// Split a plain dump into entries (see the module overview).
pub fn split_entries(script: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut settings = Settings::default();
    let mut current: Option<Entry> = None;
    let mut scanner = Scanner::default();
    let lines: Vec<&str> = script.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let between_statements = scanner.between_statements();
        if !between_statements {
            scanner.feed(line);
            if let Some(entry) = current.as_mut() {
                entry.sql.push_str(line);
                entry.sql.push('\n');
            }
            i += 1;
            continue;
        }
        if let Some(header) = entry_header(&lines, i) {
            entries.extend(current.take());
            let mut entry = header;
            entry.settings = settings.in_force();
            current = Some(entry);
            i += 3;
            continue;
        }
        if is_psql_meta_command(line) || line.starts_with("--") {
            i += 1;
            continue;
        }
        if let Some((name, statement)) = session_setting(line) {
            settings.set(name, statement);
            i += 1;
            continue;
        }
        scanner.feed(line);
        if let Some(entry) = current.as_mut() {
            if !(line.is_empty() && entry.sql.is_empty()) {
                entry.sql.push_str(line);
                entry.sql.push('\n');
            }
        }
        i += 1;
    }
    entries.extend(current);
    for entry in entries.iter_mut().filter(|e| e.kind == "SCHEMA") {
        // The schema may exist already (declared by `apply`, or `public`).
        entry.sql = entry
            .sql
            .replacen("CREATE SCHEMA ", "CREATE SCHEMA IF NOT EXISTS ", 1);
    }
    for entry in &mut entries {
        let trimmed = entry.sql.trim_end().len();
        entry.sql.truncate(trimmed);
        entry.sql.push('\n');
    }
    entries
}

/// Tracks quoting across lines, so that only lines between statements are
/// read as headers, comments or settings (a function body may hold any of
/// them).
#[derive(Debug, Default)]
struct Scanner {
    state: Quoting,
    /// The last significant character outside quotes was `;` (or nothing yet).
    ended: bool,
    started: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum Quoting {
    #[default]
    None,
    Single {
        backslash_escapes: bool,
    },
    Double,
    Dollar(String),
}

impl Scanner {
    fn between_statements(&self) -> bool {
        self.state == Quoting::None && (self.ended || !self.started)
    }

    fn feed(&mut self, line: &str) {
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            match &self.state {
                Quoting::None => {
                    if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
                        break;
                    }
                    if !c.is_ascii_whitespace() {
                        self.started = true;
                        self.ended = c == b';';
                    }
                    match c {
                        b'\'' => {
                            let e = i > 0 && matches!(bytes[i - 1], b'E' | b'e');
                            self.state = Quoting::Single {
                                backslash_escapes: e,
                            };
                        }
                        b'"' => self.state = Quoting::Double,
                        b'$' => {
                            if let Some(tag) = dollar_tag(&line[i..]) {
                                i += tag.len() - 1;
                                self.state = Quoting::Dollar(tag);
                            }
                        }
                        _ => {}
                    }
                }
                Quoting::Single { backslash_escapes } => {
                    if *backslash_escapes && c == b'\\' {
                        i += 1;
                    } else if c == b'\'' {
                        if bytes.get(i + 1) == Some(&b'\'') {
                            i += 1;
                        } else {
                            self.state = Quoting::None;
                        }
                    }
                }
                Quoting::Double => {
                    if c == b'"' {
                        self.state = Quoting::None;
                    }
                }
                Quoting::Dollar(tag) => {
                    if line[i..].starts_with(tag.as_str()) {
                        i += tag.len() - 1;
                        self.state = Quoting::None;
                    }
                }
            }
            i += 1;
        }
    }
}

/// `$tag$` at the start of `text` (a dollar quote opener), if it is one.
fn dollar_tag(text: &str) -> Option<String> {
    let rest = &text[1..];
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let valid = tag
        .chars()
        .enumerate()
        .all(|(k, c)| c == '_' || c.is_alphabetic() || (k > 0 && c.is_ascii_digit()));
    valid.then(|| format!("${tag}$"))
}

/// `--\n-- Name: …; Type: …; Schema: …; Owner: …\n--` at `lines[i]`.
fn entry_header(lines: &[&str], i: usize) -> Option<Entry> {
    if lines.get(i) != Some(&"--") || lines.get(i + 2) != Some(&"--") {
        return None;
    }
    let body = lines.get(i + 1)?.strip_prefix("-- ")?;
    let body = body.strip_prefix("Data for ").unwrap_or(body);
    let mut fields = BTreeMap::new();
    for part in body.split("; ") {
        let (key, value) = part.split_once(": ")?;
        fields.insert(key, value);
    }
    Some(Entry {
        name: fields.get("Name")?.to_string(),
        kind: fields.get("Type")?.to_string(),
        schema: fields.get("Schema").unwrap_or(&"-").to_string(),
        owner: fields.get("Owner").unwrap_or(&"").trim().to_string(),
        sql: String::new(),
        settings: Vec::new(),
    })
}

/// psql meta-commands pg_dump writes (`\connect`, and `\restrict` /
/// `\unrestrict` since 17.6/16.10): they are for psql, not the server.
fn is_psql_meta_command(line: &str) -> bool {
    line.starts_with('\\')
}

/// A top-level session setting: `SET name = value;` or
/// `SELECT pg_catalog.set_config('name', …);`.
fn session_setting(line: &str) -> Option<(String, String)> {
    if let Some(rest) = line.strip_prefix("SET ") {
        let name = rest.split([' ', '=']).next()?.to_string();
        return line.ends_with(';').then(|| (name, line.to_string()));
    }
    let rest = line.strip_prefix("SELECT pg_catalog.set_config('")?;
    let name = rest.split('\'').next()?.to_string();
    Some((name, line.to_string()))
}

/// Settings seen so far, latest value per name, in first-seen order.
#[derive(Debug, Default)]
struct Settings {
    order: Vec<String>,
    statements: BTreeMap<String, String>,
}

impl Settings {
    fn set(&mut self, name: String, statement: String) {
        if !self.statements.contains_key(&name) {
            self.order.push(name.clone());
        }
        self.statements.insert(name, statement);
    }

    fn in_force(&self) -> Vec<String> {
        self.order
            .iter()
            .map(|n| self.statements[n].clone())
            .collect()
    }
}

/// The name a `SET` statement sets (for filtering settings a server lacks).
pub fn setting_name(statement: &str) -> Option<String> {
    session_setting(statement).map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\
SET statement_timeout = 0;\nSET transaction_timeout = 0;\n\
SELECT pg_catalog.set_config('search_path', '', false);\n\n\
--\n-- Name: vector; Type: EXTENSION; Schema: -; Owner: -\n--\n\n\
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;\n\n\
SET default_tablespace = '';\n\n\
--\n-- Name: t; Type: TABLE; Schema: public; Owner: app\n--\n\n\
CREATE TABLE public.t (\n    id integer NOT NULL\n);\n\n\n\
ALTER TABLE public.t OWNER TO app;\n\n\
--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n";

    #[test]
    fn entries_carry_their_settings_and_sql() {
        let entries = split_entries(SCRIPT);
        assert_eq!(entries.len(), 2, "{entries:#?}");
        assert_eq!(entries[0].kind, "EXTENSION");
        assert_eq!(
            entries[0].sql,
            "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;\n"
        );
        assert_eq!(entries[0].settings.len(), 3);
        assert_eq!(entries[1].label(), "TABLE public.t");
        assert_eq!(entries[1].owner, "app");
        assert!(entries[1].sql.starts_with("CREATE TABLE public.t ("));
        assert!(entries[1].sql.ends_with("OWNER TO app;\n"));
        assert!(entries[1]
            .settings
            .iter()
            .any(|s| s.contains("default_tablespace")));
        assert!(!entries[1].script().contains("restrict"));
    }

    #[test]
    fn function_bodies_are_kept_whole() {
        let script = "--\n-- Name: f(); Type: FUNCTION; Schema: public; Owner: app\n--\n\n\
CREATE FUNCTION public.f() RETURNS void\n    LANGUAGE plpgsql\n    AS $_$\nbegin\n\
-- a comment in the body\nSET search_path = x;\nperform 'it''s; $1';\nend\n$_$;\n\n\
SET default_tablespace = '';\n";
        let entries = split_entries(script);
        assert_eq!(entries.len(), 1);
        assert!(entries[0]
            .sql
            .contains("-- a comment in the body\nSET search_path = x;\n"));
        assert!(entries[0].sql.trim_end().ends_with("$_$;"));
        assert!(!entries[0].sql.contains("default_tablespace"));
    }

    #[test]
    fn setting_names() {
        assert_eq!(
            setting_name("SET transaction_timeout = 0;").as_deref(),
            Some("transaction_timeout")
        );
        assert_eq!(
            setting_name("SELECT pg_catalog.set_config('search_path', '', false);").as_deref(),
            Some("search_path")
        );
        assert_eq!(setting_name("CREATE TABLE t ();"), None);
    }
}
