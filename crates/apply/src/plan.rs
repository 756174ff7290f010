//! The plan file: what the server should hold.
//!
//! See the crate documentation for a complete example. Every table rejects
//! keys it does not know, naming them; errors give the file, line and column
//! and never quote the line (it may hold a literal password).

use crate::error::{ApplyError, Result};
use crate::sql;
use pgharbor_conn::{ConnConfig, Environment, Secret, SecretSource};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// A parsed and checked plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The server to converge.
    pub target: Target,
    /// Roles, in `[[role]]` tables.
    #[serde(default, rename = "role")]
    pub roles: Vec<RoleSpec>,
    /// Databases, in `[[database]]` tables.
    #[serde(default, rename = "database")]
    pub databases: Vec<DatabaseSpec>,
    /// Where the plan came from, for messages.
    #[serde(skip)]
    origin: String,
}

/// `[target]`: the server to converge, connected to as an administrator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// A PostgreSQL URL or `key=value` string, written in the plan or read
    /// from `{ env = … }` / `{ file = … }`. Its database is the one the
    /// administrative connection uses (`postgres` if in doubt).
    pub url: SecretSource,
    /// The password, when not in the URL (the URL's password wins, as with
    /// `PGPASSWORD`).
    pub password: Option<SecretSource>,
}

/// `[[role]]`: a role and the attributes the plan manages. Attributes left
/// out are not touched on an existing role and get PostgreSQL's defaults on
/// a new one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// The role's name.
    pub name: String,
    /// `LOGIN` / `NOLOGIN`.
    pub login: Option<bool>,
    /// `SUPERUSER` / `NOSUPERUSER`; a role is only ever made a superuser
    /// when the plan says `superuser = true`.
    pub superuser: Option<bool>,
    /// `CREATEDB` / `NOCREATEDB`.
    pub createdb: Option<bool>,
    /// `CREATEROLE` / `NOCREATEROLE`.
    pub createrole: Option<bool>,
    /// `INHERIT` / `NOINHERIT`.
    pub inherit: Option<bool>,
    /// `REPLICATION` / `NOREPLICATION`.
    pub replication: Option<bool>,
    /// `BYPASSRLS` / `NOBYPASSRLS`.
    pub bypassrls: Option<bool>,
    /// `CONNECTION LIMIT` (`-1`: no limit).
    pub connection_limit: Option<i32>,
    /// `VALID UNTIL`: a timestamp PostgreSQL accepts, or `infinity`.
    pub valid_until: Option<String>,
    /// The password: a literal, `{ env = … }` or `{ file = … }`.
    pub password: Option<SecretSource>,
    /// Roles this role is a member of (`GRANT group TO role`).
    #[serde(default)]
    pub member_of: Vec<String>,
    /// Per-role settings (`ALTER ROLE … SET name = value`).
    #[serde(default)]
    pub settings: BTreeMap<String, SettingValue>,
}

/// `[[database]]`: a database, what is inside it, and where its data comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    /// The database's name.
    pub name: String,
    /// Its owner.
    pub owner: Option<String>,
    /// The template it is created from (creation only). When the plan sets
    /// an encoding or locale and no template, `template0` is used, since
    /// `template1` only allows its own.
    pub template: Option<String>,
    /// `ENCODING`, e.g. `UTF8` (creation only; a different existing value is an error).
    pub encoding: Option<String>,
    /// `LOCALE`: sets both `lc_collate` and `lc_ctype` (creation only).
    pub locale: Option<String>,
    /// `LC_COLLATE` (creation only).
    pub lc_collate: Option<String>,
    /// `LC_CTYPE` (creation only).
    pub lc_ctype: Option<String>,
    /// `LOCALE_PROVIDER`: `libc` or `icu` (PostgreSQL 15 and later; creation only).
    pub locale_provider: Option<LocaleProvider>,
    /// `ICU_LOCALE` (PostgreSQL 15 and later; creation only).
    pub icu_locale: Option<String>,
    /// `CONNECTION LIMIT` (`-1`: no limit).
    pub connection_limit: Option<i32>,
    /// `ALLOW_CONNECTIONS`.
    pub allow_connections: Option<bool>,
    /// Extensions: `"name"` or `{ name, version, schema }`.
    #[serde(default)]
    pub extensions: Vec<ExtensionSpec>,
    /// Schemas, in `[[database.schema]]` tables.
    #[serde(default, rename = "schema")]
    pub schemas: Vec<SchemaSpec>,
    /// Privileges on the database: `CONNECT`, `CREATE`, `TEMPORARY`.
    #[serde(default)]
    pub grants: Vec<GrantSpec>,
    /// Per-database settings (`ALTER DATABASE … SET name = value`).
    #[serde(default)]
    pub settings: BTreeMap<String, SettingValue>,
    /// A server to copy this database's contents from, after convergence
    /// (run by the caller; see [`Plan::copies`]).
    pub copy_from: Option<SecretSource>,
}

/// A database's locale provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocaleProvider {
    /// The C library's locales.
    Libc,
    /// ICU collations.
    Icu,
}

impl LocaleProvider {
    /// The keyword in `CREATE DATABASE … LOCALE_PROVIDER`.
    pub fn keyword(self) -> &'static str {
        match self {
            LocaleProvider::Libc => "libc",
            LocaleProvider::Icu => "icu",
        }
    }

    /// The code `pg_database.datlocprovider` stores.
    pub(crate) fn code(self) -> &'static str {
        match self {
            LocaleProvider::Libc => "c",
            LocaleProvider::Icu => "i",
        }
    }
}

/// An extension in a database: `"uuid-ossp"` or
/// `{ name = "vector", version = "0.6.2", schema = "public" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionSpec {
    /// The extension's name.
    pub name: String,
    /// The version to install or update to; the server's default when absent.
    pub version: Option<String>,
    /// The schema to install it in (or move it to, when relocatable).
    pub schema: Option<String>,
}

/// `[[database.schema]]`: a schema inside a database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSpec {
    /// The schema's name.
    pub name: String,
    /// Its owner.
    pub owner: Option<String>,
    /// Privileges on the schema: `USAGE`, `CREATE`.
    #[serde(default)]
    pub grants: Vec<GrantSpec>,
}

/// `{ role = "reader", privileges = ["CONNECT"] }`: privileges given to a
/// role (or `PUBLIC`). Nothing is ever revoked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    /// The grantee; `public` means every role.
    pub role: String,
    /// The privileges, case-insensitive; `ALL` means every privilege the
    /// object has, `TEMP` is `TEMPORARY`.
    pub privileges: Vec<String>,
}

/// The value of a setting: a string, a number, a boolean, or a list of
/// strings (for list settings such as `search_path`; a string with commas
/// is split for those too).
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    /// `"app"`, `"64MB"`.
    Text(String),
    /// `100`.
    Integer(i64),
    /// `0.5`.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `["app", "public"]`.
    List(Vec<String>),
}

/// A copy the plan asks for: the caller runs it after [`crate::apply`].
#[derive(Debug, Clone)]
pub struct Copy {
    /// The database on the target, created and owned as the plan says.
    pub database: String,
    /// Where to copy from (password masked in `Display` and `Debug`).
    pub source: ConnConfig,
    /// Where to copy to: the target, with `database` as the database.
    pub target: ConnConfig,
    /// The role that should own what is copied (the database's `owner`),
    /// when the plan names one.
    pub owner: Option<String>,
}

const DATABASE_PRIVILEGES: &[&str] = &["CONNECT", "CREATE", "TEMPORARY"];
const SCHEMA_PRIVILEGES: &[&str] = &["USAGE", "CREATE"];

impl Plan {
    /// Reads and checks the plan in `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Plan> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ApplyError::ReadPlan {
            path: path.to_owned(),
            source,
        })?;
        Plan::parse(&text, &path.display().to_string())
    }

    /// Parses and checks plan text; `origin` (a file name) goes into errors.
    pub fn parse(text: &str, origin: &str) -> Result<Plan> {
        let mut plan: Plan = toml::from_str(text).map_err(|e| parse_error(text, origin, &e))?;
        plan.origin = origin.to_owned();
        plan.check()?;
        Ok(plan)
    }

    /// Where the plan came from (the file name given to [`Plan::parse`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The target's connection settings, with secrets read from the
    /// environment or files.
    pub fn target_config(&self) -> Result<ConnConfig> {
        let url = resolve(&self.target.url, "the target url")?;
        let mut env = Environment::from_process();
        if let Some(password) = &self.target.password {
            let password = resolve(password, "the target password")?;
            env = env.with_var("PGPASSWORD", password.expose());
        }
        ConnConfig::parse_with_env(url.expose(), &env)
            .map(|c| c.with_fallback_application_name("pgharbor apply"))
            .map_err(|source| ApplyError::Connection {
                what: "the target url".to_owned(),
                source,
            })
    }

    /// The copies the plan names (`copy_from`), in plan order, for the caller
    /// to run once [`crate::apply`] has converged the target. This crate
    /// never copies data itself.
    pub fn copies(&self) -> Result<Vec<Copy>> {
        let target = self.target_config()?;
        self.databases
            .iter()
            .filter_map(|db| db.copy_from.as_ref().map(|from| (db, from)))
            .map(|(db, from)| {
                let what = format!("copy_from of database {}", db.name);
                let url = resolve(from, &what)?;
                let source = ConnConfig::parse(url.expose())
                    .map_err(|source| ApplyError::Connection { what, source })?;
                Ok(Copy {
                    database: db.name.clone(),
                    source,
                    target: target.with_dbname(&db.name),
                    owner: db.owner.clone(),
                })
            })
            .collect()
    }

    fn invalid(&self, message: String) -> ApplyError {
        ApplyError::InvalidPlan {
            file: self.origin.clone(),
            message,
        }
    }

    /// Checks what the types cannot: unique names, known privileges,
    /// setting names. [`Plan::parse`] runs it; [`crate::apply`] runs it
    /// again for plans built or changed in code.
    pub fn check(&self) -> Result<()> {
        let names = self.roles.iter().map(|r| r.name.as_str());
        unique(names, "role").map_err(|m| self.invalid(m))?;
        let names = self.databases.iter().map(|d| d.name.as_str());
        unique(names, "database").map_err(|m| self.invalid(m))?;
        for role in &self.roles {
            role.check()
                .map_err(|m| self.invalid(format!("role {}: {m}", role.name)))?;
        }
        for db in &self.databases {
            db.check()
                .map_err(|m| self.invalid(format!("database {}: {m}", db.name)))?;
        }
        Ok(())
    }
}

fn resolve(source: &SecretSource, what: &str) -> Result<Secret> {
    source.resolve().map_err(|source| ApplyError::Secret {
        what: what.to_owned(),
        source,
    })
}

/// A parse error with position, never quoting the line (the toml crate's
/// `Display` does, and the line may hold a literal password).
fn parse_error(text: &str, origin: &str, e: &toml::de::Error) -> ApplyError {
    let offset = e.span().map_or(0, |s| s.start.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    ApplyError::ParsePlan {
        file: origin.to_owned(),
        line,
        column,
        message: redact_strings(e.message()),
    }
}

/// Serde's "invalid type: string \"…\"" quotes the value, which may be a
/// password written in the wrong place: keep the type, drop the value.
fn redact_strings(message: &str) -> String {
    const MARK: &str = "string \"";
    let Some(start) = message.find(MARK) else {
        return message.to_owned();
    };
    let rest = &message[start + MARK.len()..];
    let end = rest.rfind('"').unwrap_or(rest.len());
    let tail = rest.get(end + 1..).unwrap_or("");
    format!("{}string{tail}", &message[..start])
}

fn unique<'a>(names: impl Iterator<Item = &'a str>, what: &str) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for name in names {
        if name.is_empty() {
            return Err(format!("a {what} has an empty name"));
        }
        if !seen.insert(name) {
            return Err(format!("the {what} {name} is listed twice"));
        }
    }
    Ok(())
}

impl RoleSpec {
    fn check(&self) -> Result<(), String> {
        if self.member_of.contains(&self.name) {
            return Err("a role cannot be a member of itself".to_owned());
        }
        if self.member_of.iter().any(|g| sql::is_public(g)) {
            return Err("public is not a role one can be a member of".to_owned());
        }
        unique(self.member_of.iter().map(String::as_str), "member_of role")?;
        check_settings(&self.settings)
    }
}

impl DatabaseSpec {
    fn check(&self) -> Result<(), String> {
        unique(self.extensions.iter().map(|e| e.name.as_str()), "extension")?;
        unique(self.schemas.iter().map(|s| s.name.as_str()), "schema")?;
        if self.icu_locale.is_some() && self.locale_provider != Some(LocaleProvider::Icu) {
            return Err("icu_locale needs locale_provider = \"icu\"".to_owned());
        }
        for grant in &self.grants {
            grant.privileges_in(DATABASE_PRIVILEGES, "a database")?;
        }
        for schema in &self.schemas {
            for grant in &schema.grants {
                grant
                    .privileges_in(SCHEMA_PRIVILEGES, "a schema")
                    .map_err(|m| format!("schema {}: {m}", schema.name))?;
            }
        }
        check_settings(&self.settings)
    }

    /// The privileges of `grants` entries, normalised (see [`GrantSpec`]).
    pub(crate) fn grant_privileges(grant: &GrantSpec) -> Vec<&'static str> {
        grant
            .privileges_in(DATABASE_PRIVILEGES, "a database")
            .expect("Plan::check runs before changes are computed")
    }

    /// Whether the plan asks for a locale or encoding other than the template's.
    pub(crate) fn sets_locale(&self) -> bool {
        self.encoding.is_some()
            || self.locale.is_some()
            || self.lc_collate.is_some()
            || self.lc_ctype.is_some()
            || self.locale_provider.is_some()
    }
}

impl SchemaSpec {
    /// The privileges of a schema grant, normalised.
    pub(crate) fn grant_privileges(grant: &GrantSpec) -> Vec<&'static str> {
        grant
            .privileges_in(SCHEMA_PRIVILEGES, "a schema")
            .expect("Plan::check runs before changes are computed")
    }
}

impl GrantSpec {
    fn privileges_in(
        &self,
        allowed: &[&'static str],
        on: &str,
    ) -> Result<Vec<&'static str>, String> {
        if self.role.is_empty() {
            return Err("a grant has an empty role".to_owned());
        }
        let mut out = Vec::new();
        for privilege in &self.privileges {
            let upper = privilege.to_ascii_uppercase();
            let upper = if upper == "TEMP" {
                "TEMPORARY".to_owned()
            } else {
                upper
            };
            if upper == "ALL" || upper == "ALL PRIVILEGES" {
                out.extend_from_slice(allowed);
            } else if let Some(p) = allowed.iter().find(|p| **p == upper) {
                out.push(p);
            } else {
                return Err(format!(
                    "grant to {}: {privilege:?} is not a privilege on {on}; use {}",
                    self.role,
                    allowed.join(", ")
                ));
            }
        }
        if out.is_empty() {
            return Err(format!("grant to {} lists no privileges", self.role));
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

fn check_settings(settings: &BTreeMap<String, SettingValue>) -> Result<(), String> {
    for (name, value) in settings {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid {
            return Err(format!("{name:?} is not a setting name"));
        }
        if matches!(value, SettingValue::List(l) if l.is_empty()) {
            return Err(format!("setting {name}: an empty list cannot be set"));
        }
    }
    Ok(())
}

/// Settings whose list elements PostgreSQL stores as quoted identifiers
/// (`GUC_LIST_QUOTE`): a string value is split at commas for these.
const LIST_QUOTE_SETTINGS: &[&str] = &[
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "local_preload_libraries",
];

impl SettingValue {
    /// The elements to send, as SQL literals joined by `, `.
    pub(crate) fn elements(&self, name: &str) -> Vec<String> {
        match self {
            SettingValue::Text(s) if is_list_quote(name) => s
                .split(',')
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect(),
            SettingValue::Text(s) => vec![s.clone()],
            SettingValue::Integer(i) => vec![i.to_string()],
            SettingValue::Float(f) => vec![f.to_string()],
            SettingValue::Bool(b) => vec![b.to_string()],
            SettingValue::List(items) => items.clone(),
        }
    }

    /// The value part of `SET name = …`.
    pub(crate) fn to_sql(&self, name: &str) -> String {
        let literals: Vec<String> = self
            .elements(name)
            .iter()
            .map(|e| sql::literal(e))
            .collect();
        literals.join(", ")
    }

    /// Whether `stored` (the part after `name=` in `setconfig`) is this value.
    pub(crate) fn matches_stored(&self, name: &str, stored: &str) -> bool {
        if is_list_quote(name) {
            split_quoted_list(stored) == self.elements(name)
        } else {
            stored == self.elements(name).join(", ")
        }
    }
}

fn is_list_quote(name: &str) -> bool {
    LIST_QUOTE_SETTINGS.contains(&name)
}

/// Splits a stored `GUC_LIST_QUOTE` value (`app, "$user", public`) into
/// its elements, removing identifier quotes.
fn split_quoted_list(stored: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = stored.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut current).trim().to_owned()),
            _ => current.push(c),
        }
    }
    items.push(current.trim().to_owned());
    items.retain(|i| !i.is_empty());
    items
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingValue::Text(s) => f.write_str(s),
            SettingValue::Integer(i) => write!(f, "{i}"),
            SettingValue::Float(x) => write!(f, "{x}"),
            SettingValue::Bool(b) => write!(f, "{b}"),
            SettingValue::List(items) => f.write_str(&items.join(", ")),
        }
    }
}

struct SettingVisitor;

impl<'de> Visitor<'de> for SettingVisitor {
    type Value = SettingValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number, a boolean or a list of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<SettingValue, E> {
        Ok(SettingValue::Text(v.to_owned()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<SettingValue, E> {
        Ok(SettingValue::Integer(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<SettingValue, E> {
        Ok(SettingValue::Float(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<SettingValue, E> {
        Ok(SettingValue::Bool(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SettingValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            items.push(item);
        }
        Ok(SettingValue::List(items))
    }
}

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SettingVisitor)
    }
}

/// Reads an extension as a bare name or as a table; the table form keeps
/// `deny_unknown_fields`, so an unknown key is named.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtensionTable {
    name: String,
    version: Option<String>,
    schema: Option<String>,
}

struct ExtensionVisitor;

impl<'de> Visitor<'de> for ExtensionVisitor {
    type Value = ExtensionSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an extension name or a table { name, version, schema }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ExtensionSpec, E> {
        Ok(ExtensionSpec {
            name: v.to_owned(),
            version: None,
            schema: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ExtensionSpec, A::Error> {
        let t = ExtensionTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(ExtensionSpec {
            name: t.name,
            version: t.version,
            schema: t.schema,
        })
    }
}

impl<'de> Deserialize<'de> for ExtensionSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExtensionVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_lists_split_like_postgresql_stores_them() {
        assert_eq!(
            split_quoted_list("app, \"$user\", public"),
            ["app", "$user", "public"]
        );
        assert_eq!(split_quoted_list("\"a,\"\"b\""), ["a,\"b"]);
        let v = SettingValue::Text("app, public".into());
        assert_eq!(v.to_sql("search_path"), "'app', 'public'");
        assert!(v.matches_stored("search_path", "app, public"));
        assert_eq!(v.to_sql("application_name"), "'app, public'");
        assert!(SettingValue::Integer(64).matches_stored("work_mem", "64"));
    }

    #[test]
    fn string_values_are_redacted_from_messages() {
        assert_eq!(
            redact_strings("invalid type: string \"hunter2\", expected a boolean"),
            "invalid type: string, expected a boolean"
        );
        assert_eq!(redact_strings("unknown field `x`"), "unknown field `x`");
    }
}
