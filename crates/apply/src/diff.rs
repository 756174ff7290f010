//! Comparing the plan with the current state: the list of [`Change`]s, in
//! the order they must run, and what already matched.
//!
//! Everything that can be known to fail (an unavailable extension, a role
//! the connected user may not alter, a database that cannot be changed in
//! place) is an error here, before anything runs.

use crate::error::{ApplyError, Result};
use crate::password::{scram_sha_256, verifier_matches};
use crate::plan::{
    DatabaseSpec, ExtensionSpec, GrantSpec, Plan, RoleSpec, SchemaSpec, SettingValue,
};
use crate::report::{Change, ChangeKind, Unchanged};
use crate::sql::{grantee, ident, literal};
use crate::state::{InsideState, RoleState, Server, State};
use pgharbor_conn::Secret;
use std::collections::{BTreeMap, BTreeSet};

/// The changes to make and what already matched.
pub(crate) struct Planned {
    pub changes: Vec<Change>,
    pub unchanged: Unchanged,
}

/// Computes the changes that bring the server from `state` to `plan`.
/// `passwords` holds each role's resolved password.
pub(crate) fn plan_changes(
    plan: &Plan,
    state: &State,
    server: &Server,
    passwords: &BTreeMap<String, Secret>,
) -> Result<Planned> {
    let mut planner = Planner {
        state,
        server,
        passwords,
        changes: Vec::new(),
        unchanged: Unchanged::default(),
    };
    planner.check_extensions(plan)?;
    plan.databases
        .iter()
        .try_for_each(|db| planner.check_database(db))?;
    for role in &plan.roles {
        planner.role(role)?;
    }
    for role in &plan.roles {
        planner.memberships(role)?;
    }
    planner.owner_access(plan)?;
    for db in &plan.databases {
        planner.database(db);
        planner.inside(db);
    }
    Ok(Planned {
        changes: planner.changes,
        unchanged: planner.unchanged,
    })
}

struct Planner<'a> {
    state: &'a State,
    server: &'a Server,
    passwords: &'a BTreeMap<String, Secret>,
    changes: Vec<Change>,
    unchanged: Unchanged,
}

/// A role attribute: its keyword, the plan's value, the current value.
type Attribute = (&'static str, Option<bool>, bool);

fn attributes(spec: &RoleSpec, current: Option<&RoleState>) -> [Attribute; 7] {
    let cur = |f: fn(&RoleState) -> bool| current.is_some_and(f);
    [
        ("SUPERUSER", spec.superuser, cur(|r| r.superuser)),
        ("LOGIN", spec.login, cur(|r| r.login)),
        ("CREATEDB", spec.createdb, cur(|r| r.createdb)),
        ("CREATEROLE", spec.createrole, cur(|r| r.createrole)),
        ("INHERIT", spec.inherit, cur(|r| r.inherit)),
        ("REPLICATION", spec.replication, cur(|r| r.replication)),
        ("BYPASSRLS", spec.bypassrls, cur(|r| r.bypassrls)),
    ]
}

fn keyword(name: &str, on: bool) -> String {
    if on {
        name.to_owned()
    } else {
        format!("NO{name}")
    }
}

/// The stored `setconfig` value of `name`, if set.
fn stored_setting<'s>(settings: &'s [String], name: &str) -> Option<&'s str> {
    settings.iter().find_map(|entry| {
        let (n, v) = entry.split_once('=')?;
        n.eq_ignore_ascii_case(name).then_some(v)
    })
}

impl Planner<'_> {
    fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    fn not_manageable(&self, role: &str, missing: String) -> ApplyError {
        ApplyError::RoleNotManageable {
            role: role.to_owned(),
            user: self.server.user.clone(),
            missing,
        }
    }

    /// Fails unless the connected user may create roles (and this one).
    fn check_can_create(&self, spec: &RoleSpec) -> Result<()> {
        if self.server.superuser {
            return Ok(());
        }
        if spec.superuser == Some(true) {
            return Err(self.not_manageable(
                &spec.name,
                "only a superuser can create a superuser".to_owned(),
            ));
        }
        if !self.server.createrole {
            return Err(self.not_manageable(
                &spec.name,
                "creating roles needs the CREATEROLE attribute (ALTER ROLE … CREATEROLE as a superuser)".to_owned(),
            ));
        }
        Ok(())
    }

    /// Fails unless the connected user may alter the existing role `name`.
    fn check_can_alter(&self, name: &str, current: &RoleState) -> Result<()> {
        let server = self.server;
        if server.superuser {
            return Ok(());
        }
        let missing = if current.superuser {
            "it is a superuser, and only a superuser can alter a superuser".to_owned()
        } else if !server.createrole {
            "altering roles needs the CREATEROLE attribute".to_owned()
        } else if server.pg16() && !current.admin {
            format!(
                "ADMIN OPTION on role {name} (since PostgreSQL 16, CREATEROLE only manages roles one \
                 created or was granted WITH ADMIN OPTION); as a superuser run: GRANT {} TO {} WITH ADMIN OPTION",
                ident(name),
                ident(&server.user)
            )
        } else {
            return Ok(());
        };
        Err(self.not_manageable(name, missing))
    }

    fn role(&mut self, spec: &RoleSpec) -> Result<()> {
        match self.state.roles.get(&spec.name) {
            None => self.create_role(spec)?,
            Some(current) => self.alter_role(spec, current)?,
        }
        self.role_settings(spec)
    }

    fn create_role(&mut self, spec: &RoleSpec) -> Result<()> {
        self.check_can_create(spec)?;
        let mut options: Vec<String> = attributes(spec, None)
            .iter()
            .filter_map(|(name, wanted, _)| wanted.map(|w| keyword(name, w)))
            .collect();
        if let Some(limit) = spec.connection_limit {
            options.push(format!("CONNECTION LIMIT {limit}"));
        }
        if let Some(until) = &spec.valid_until {
            options.push(format!("VALID UNTIL {}", literal(until)));
        }
        let shown = options.join(" ");
        let with = |tail: &str| {
            let all = [shown.as_str(), tail].join(" ");
            format!("CREATE ROLE {} {}", ident(&spec.name), all.trim())
                .trim_end()
                .to_owned()
        };
        let object = format!("role {}", spec.name);
        let description = match shown.is_empty() {
            true => "create role".to_owned(),
            false => format!("create role ({shown})"),
        };
        let change = match self.passwords.get(&spec.name) {
            Some(password) => {
                let verifier = verifier(password)?;
                let execute =
                    Secret::new(with(&format!("PASSWORD {}", literal(verifier.expose()))));
                let description = format!("{description}, password set");
                Change::secret(
                    ChangeKind::CreateRole,
                    object,
                    description,
                    with("PASSWORD '****'"),
                    execute,
                )
            }
            None => Change::new(ChangeKind::CreateRole, object, description, with("")),
        };
        self.push(change);
        Ok(())
    }

    fn alter_role(&mut self, spec: &RoleSpec, current: &RoleState) -> Result<()> {
        let mut set = Vec::new();
        let mut was = Vec::new();
        for (name, wanted, now) in attributes(spec, Some(current)) {
            if let Some(w) = wanted.filter(|w| *w != now) {
                set.push(keyword(name, w));
                was.push(format!("{} (was {})", keyword(name, w), keyword(name, now)));
            }
        }
        if let Some(limit) = spec
            .connection_limit
            .filter(|l| *l != current.connection_limit)
        {
            set.push(format!("CONNECTION LIMIT {limit}"));
            was.push(format!(
                "connection limit {limit} (was {})",
                current.connection_limit
            ));
        }
        let wanted_until = self.state.valid_until.get(&spec.name);
        if let Some(until) = wanted_until.filter(|u| current.valid_until.as_ref() != Some(*u)) {
            let raw = spec.valid_until.as_deref().unwrap_or(until);
            set.push(format!("VALID UNTIL {}", literal(raw)));
            let before = current.valid_until.as_deref().unwrap_or("never set");
            was.push(format!("valid until {until} (was {before})"));
        }
        if set.is_empty() {
            self.unchanged.roles += 1;
        } else {
            self.check_can_alter(&spec.name, current)?;
            let sql = format!("ALTER ROLE {} WITH {}", ident(&spec.name), set.join(" "));
            let object = format!("role {}", spec.name);
            self.push(Change::new(
                ChangeKind::AlterRole,
                object,
                was.join(", "),
                sql,
            ));
        }
        self.password(spec, current)
    }

    fn password(&mut self, spec: &RoleSpec, current: &RoleState) -> Result<()> {
        let Some(password) = self.passwords.get(&spec.name) else {
            return Ok(());
        };
        let description = if !self.server.reads_authid {
            "password set (not compared: cannot read pg_authid)"
        } else {
            let stored = current.verifier.as_ref();
            match stored.and_then(|v| verifier_matches(v.expose(), &spec.name, password)) {
                Some(true) => {
                    self.unchanged.passwords += 1;
                    return Ok(());
                }
                Some(false) => "password changed",
                None => "password set (none stored before)",
            }
        };
        self.check_can_alter(&spec.name, current)?;
        let verifier = verifier(password)?;
        let sql = |v: &str| format!("ALTER ROLE {} PASSWORD {}", ident(&spec.name), literal(v));
        let execute = Secret::new(sql(verifier.expose()));
        self.push(Change::secret(
            ChangeKind::SetPassword,
            format!("role {}", spec.name),
            description.to_owned(),
            sql("****"),
            execute,
        ));
        Ok(())
    }

    fn role_settings(&mut self, spec: &RoleSpec) -> Result<()> {
        let current = self.state.roles.get(&spec.name);
        for (name, value) in &spec.settings {
            let stored = current.and_then(|r| stored_setting(&r.settings, name));
            if stored.is_some_and(|s| value.matches_stored(name, s)) {
                self.unchanged.role_settings += 1;
                continue;
            }
            if let Some(current) = current {
                self.check_can_alter(&spec.name, current)?;
            }
            let sql = format!(
                "ALTER ROLE {} SET {} = {}",
                ident(&spec.name),
                name.to_ascii_lowercase(),
                value.to_sql(name)
            );
            let description = setting_description(name, value, stored);
            self.push(Change::new(
                ChangeKind::RoleSetting,
                format!("role {}", spec.name),
                description,
                sql,
            ));
        }
        Ok(())
    }

    fn memberships(&mut self, spec: &RoleSpec) -> Result<()> {
        let current = self.state.roles.get(&spec.name);
        for group in &spec.member_of {
            if current.is_some_and(|r| r.member_of.contains(group)) {
                self.unchanged.memberships += 1;
                continue;
            }
            if let Some(g) = self.state.roles.get(group) {
                self.check_can_alter(group, g)?;
            }
            let sql = format!("GRANT {} TO {}", ident(group), ident(&spec.name));
            let description = format!("make it a member of {group}");
            self.push(Change::new(
                ChangeKind::GrantMembership,
                format!("role {}", spec.name),
                description,
                sql,
            ));
        }
        Ok(())
    }

    /// A user that is not a superuser can only create a database or schema
    /// for an owner, and manage what that owner owns, when it can act as
    /// that role: grant it that membership first.
    fn owner_access(&mut self, plan: &Plan) -> Result<()> {
        if self.server.superuser {
            return Ok(());
        }
        let owners: BTreeSet<&str> = plan
            .databases
            .iter()
            .flat_map(|d| {
                d.owner
                    .iter()
                    .chain(d.schemas.iter().flat_map(|s| s.owner.iter()))
            })
            .map(String::as_str)
            .filter(|o| *o != self.server.user)
            .collect();
        for owner in owners {
            let current = self.state.roles.get(owner);
            if current.is_some_and(|r| r.acts_as) {
                continue;
            }
            if let Some(current) = current {
                self.check_can_alter(owner, current)?;
            }
            let options = if self.server.pg16() {
                " WITH INHERIT TRUE, SET TRUE"
            } else {
                ""
            };
            let sql = format!(
                "GRANT {} TO {}{options}",
                ident(owner),
                ident(&self.server.user)
            );
            let description = format!(
                "let {} act as {owner} (needed to give {owner} ownership and manage what it owns)",
                self.server.user
            );
            self.push(Change::new(
                ChangeKind::GrantMembership,
                format!("role {owner}"),
                description,
                sql,
            ));
        }
        Ok(())
    }

    fn check_extensions(&self, plan: &Plan) -> Result<()> {
        for db in &plan.databases {
            let inside = self.state.insides.get(&db.name);
            for ext in &db.extensions {
                let installed = inside.is_some_and(|i| i.extensions.contains_key(&ext.name));
                self.check_extension(&db.name, ext, installed)?;
            }
        }
        Ok(())
    }

    fn check_extension(&self, database: &str, ext: &ExtensionSpec, installed: bool) -> Result<()> {
        let versions = self
            .state
            .available
            .get(&ext.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let chosen = versions.iter().find(|v| match &ext.version {
            Some(wanted) => v.version == *wanted,
            None => v.default,
        });
        let Some(chosen) = chosen else {
            return Err(ApplyError::ExtensionUnavailable {
                extension: ext.name.clone(),
                database: database.to_owned(),
                requested: ext.version.clone(),
                offered: versions.iter().map(|v| v.version.clone()).collect(),
            });
        };
        if !installed && !self.server.superuser && chosen.superuser && !chosen.trusted {
            return Err(ApplyError::ExtensionNeedsSuperuser {
                extension: ext.name.clone(),
                database: database.to_owned(),
                user: self.server.user.clone(),
            });
        }
        Ok(())
    }

    fn check_database(&self, spec: &DatabaseSpec) -> Result<()> {
        let Some(current) = self.state.databases.get(&spec.name) else {
            return Ok(());
        };
        let conflict = |property, current: &str, wanted: &str| ApplyError::DatabaseConflict {
            database: spec.name.clone(),
            property,
            current: current.to_owned(),
            wanted: wanted.to_owned(),
        };
        if let Some(e) = spec
            .encoding
            .as_deref()
            .filter(|e| !e.eq_ignore_ascii_case(&current.encoding))
        {
            return Err(conflict("encoding", &current.encoding, e));
        }
        let collate = spec.lc_collate.as_ref().or(spec.locale.as_ref());
        if let Some(c) = collate.filter(|c| !same_locale(c, &current.collate)) {
            return Err(conflict("lc_collate", &current.collate, c));
        }
        let ctype = spec.lc_ctype.as_ref().or(spec.locale.as_ref());
        if let Some(c) = ctype.filter(|c| !same_locale(c, &current.ctype)) {
            return Err(conflict("lc_ctype", &current.ctype, c));
        }
        if let Some(p) = spec
            .locale_provider
            .filter(|p| p.code() != current.provider)
        {
            return Err(conflict("locale_provider", &current.provider, p.keyword()));
        }
        let icu = current.icu_locale.as_deref().unwrap_or("");
        if let Some(l) = spec.icu_locale.as_deref().filter(|l| !same_locale(l, icu)) {
            return Err(conflict("icu_locale", icu, l));
        }
        Ok(())
    }

    fn database(&mut self, spec: &DatabaseSpec) {
        let object = format!("database {}", spec.name);
        match self.state.databases.get(&spec.name) {
            None => {
                let (sql, description) = create_database(spec);
                self.push(Change::new(
                    ChangeKind::CreateDatabase,
                    object,
                    description,
                    sql,
                ));
            }
            Some(current) => {
                let mut changed = false;
                if let Some(owner) = spec.owner.as_ref().filter(|o| **o != current.owner) {
                    let sql = format!(
                        "ALTER DATABASE {} OWNER TO {}",
                        ident(&spec.name),
                        ident(owner)
                    );
                    let description = format!("owner {owner} (was {})", current.owner);
                    self.push(Change::new(
                        ChangeKind::AlterDatabase,
                        object.clone(),
                        description,
                        sql,
                    ));
                    changed = true;
                }
                let mut set = Vec::new();
                let mut was = Vec::new();
                if let Some(l) = spec
                    .connection_limit
                    .filter(|l| *l != current.connection_limit)
                {
                    set.push(format!("CONNECTION LIMIT {l}"));
                    was.push(format!(
                        "connection limit {l} (was {})",
                        current.connection_limit
                    ));
                }
                if let Some(a) = spec
                    .allow_connections
                    .filter(|a| *a != current.allow_connections)
                {
                    set.push(format!("ALLOW_CONNECTIONS {a}"));
                    was.push(format!(
                        "allow connections {a} (was {})",
                        current.allow_connections
                    ));
                }
                if !set.is_empty() {
                    let sql = format!(
                        "ALTER DATABASE {} WITH {}",
                        ident(&spec.name),
                        set.join(" ")
                    );
                    self.push(Change::new(
                        ChangeKind::AlterDatabase,
                        object,
                        was.join(", "),
                        sql,
                    ));
                    changed = true;
                }
                if !changed {
                    self.unchanged.databases += 1;
                }
            }
        }
    }

    /// The owner `spec` will have once the database exists.
    fn database_owner(&self, spec: &DatabaseSpec) -> String {
        let current = self
            .state
            .databases
            .get(&spec.name)
            .map(|d| d.owner.clone());
        spec.owner
            .clone()
            .or(current)
            .unwrap_or_else(|| self.server.user.clone())
    }

    /// Schemas, extensions, grants and settings of one database.
    fn inside(&mut self, spec: &DatabaseSpec) {
        let empty = InsideState::default();
        let inside = self.state.insides.get(&spec.name).unwrap_or(&empty);
        for schema in &spec.schemas {
            self.schema(spec, schema, inside);
        }
        for ext in &spec.extensions {
            self.extension(spec, ext, inside);
        }
        self.database_grants(spec);
        for schema in &spec.schemas {
            self.schema_grants(spec, schema, inside);
        }
        self.database_settings(spec);
    }

    fn schema(&mut self, db: &DatabaseSpec, spec: &SchemaSpec, inside: &InsideState) {
        let object = format!("schema {} in database {}", spec.name, db.name);
        let change = match (inside.schemas.get(&spec.name), &spec.owner) {
            (None, owner) => {
                let authorization = owner
                    .as_ref()
                    .map(|o| format!(" AUTHORIZATION {}", ident(o)));
                let sql = format!(
                    "CREATE SCHEMA {}{}",
                    ident(&spec.name),
                    authorization.unwrap_or_default()
                );
                let description = owner.as_ref().map_or("create schema".to_owned(), |o| {
                    format!("create schema owned by {o}")
                });
                Change::new(ChangeKind::CreateSchema, object, description, sql)
            }
            (Some((current, _)), Some(owner)) if current != owner => {
                let sql = format!(
                    "ALTER SCHEMA {} OWNER TO {}",
                    ident(&spec.name),
                    ident(owner)
                );
                let description = format!("owner {owner} (was {current})");
                Change::new(ChangeKind::AlterSchema, object, description, sql)
            }
            _ => {
                self.unchanged.schemas += 1;
                return;
            }
        };
        self.push(change.in_database(&db.name));
    }

    fn extension(&mut self, db: &DatabaseSpec, spec: &ExtensionSpec, inside: &InsideState) {
        let object = format!("extension {} in database {}", spec.name, db.name);
        let name = ident(&spec.name);
        let Some((version, schema)) = inside.extensions.get(&spec.name) else {
            let mut sql = format!("CREATE EXTENSION {name}");
            let mut what = vec![];
            if let Some(s) = &spec.schema {
                sql.push_str(&format!(" SCHEMA {}", ident(s)));
                what.push(format!("in schema {s}"));
            }
            if let Some(v) = &spec.version {
                sql.push_str(&format!(" VERSION {}", literal(v)));
                what.push(format!("version {v}"));
            }
            sql.push_str(" CASCADE");
            let description = ["create extension".to_owned()]
                .into_iter()
                .chain(what)
                .collect::<Vec<_>>()
                .join(" ");
            let change = Change::new(ChangeKind::CreateExtension, object, description, sql);
            self.push(change.in_database(&db.name));
            return;
        };
        let mut changed = false;
        if let Some(v) = spec.version.as_ref().filter(|v| *v != version) {
            let sql = format!("ALTER EXTENSION {name} UPDATE TO {}", literal(v));
            let description = format!("update to version {v} (was {version})");
            let change = Change::new(ChangeKind::AlterExtension, object.clone(), description, sql);
            self.push(change.in_database(&db.name));
            changed = true;
        }
        if let Some(s) = spec.schema.as_ref().filter(|s| *s != schema) {
            let sql = format!("ALTER EXTENSION {name} SET SCHEMA {}", ident(s));
            let description = format!("move to schema {s} (was {schema})");
            let change = Change::new(ChangeKind::AlterExtension, object, description, sql);
            self.push(change.in_database(&db.name));
            changed = true;
        }
        if !changed {
            self.unchanged.extensions += 1;
        }
    }

    fn database_grants(&mut self, spec: &DatabaseSpec) {
        let owner = self.database_owner(spec);
        let acl = match self.state.databases.get(&spec.name) {
            Some(current) => current.acl.clone(),
            None => default_database_acl(&owner),
        };
        for grant in &spec.grants {
            let missing =
                missing_privileges(&acl, &owner, grant, DatabaseSpec::grant_privileges(grant));
            let on = format!("DATABASE {}", ident(&spec.name));
            self.grant(format!("database {}", spec.name), None, &on, grant, missing);
        }
    }

    fn schema_grants(&mut self, db: &DatabaseSpec, spec: &SchemaSpec, inside: &InsideState) {
        let current = inside.schemas.get(&spec.name);
        let owner = spec
            .owner
            .clone()
            .or_else(|| current.map(|(o, _)| o.clone()))
            .unwrap_or_else(|| self.server.user.clone());
        let acl = current.map(|(_, acl)| acl.clone()).unwrap_or_default();
        for grant in &spec.grants {
            let missing =
                missing_privileges(&acl, &owner, grant, SchemaSpec::grant_privileges(grant));
            let on = format!("SCHEMA {}", ident(&spec.name));
            let object = format!("schema {} in database {}", spec.name, db.name);
            self.grant(object, Some(&db.name), &on, grant, missing);
        }
    }

    fn grant(
        &mut self,
        object: String,
        database: Option<&str>,
        on: &str,
        grant: &GrantSpec,
        missing: Vec<&str>,
    ) {
        if missing.is_empty() {
            self.unchanged.grants += 1;
            return;
        }
        let privileges = missing.join(", ");
        let sql = format!("GRANT {privileges} ON {on} TO {}", grantee(&grant.role));
        let description = format!("grant {privileges} to {}", grant.role);
        let change = Change::new(ChangeKind::Grant, object, description, sql);
        self.push(match database {
            Some(db) => change.in_database(db),
            None => change,
        });
    }

    fn database_settings(&mut self, spec: &DatabaseSpec) {
        let current = self.state.databases.get(&spec.name);
        for (name, value) in &spec.settings {
            let stored = current.and_then(|d| stored_setting(&d.settings, name));
            if stored.is_some_and(|s| value.matches_stored(name, s)) {
                self.unchanged.database_settings += 1;
                continue;
            }
            let sql = format!(
                "ALTER DATABASE {} SET {} = {}",
                ident(&spec.name),
                name.to_ascii_lowercase(),
                value.to_sql(name)
            );
            let description = setting_description(name, value, stored);
            self.push(Change::new(
                ChangeKind::DatabaseSetting,
                format!("database {}", spec.name),
                description,
                sql,
            ));
        }
    }
}

fn verifier(password: &Secret) -> Result<Secret> {
    scram_sha_256(password).map_err(|e| ApplyError::NoRandomness(e.to_string()))
}

fn setting_description(name: &str, value: &SettingValue, stored: Option<&str>) -> String {
    match stored {
        Some(before) => format!("set {name} = {value} (was {before})"),
        None => format!("set {name} = {value}"),
    }
}

/// Locale names compare without case and without the codeset's hyphen
/// (`en_US.UTF-8` is `en_US.utf8`).
fn same_locale(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.to_ascii_lowercase().replace("utf-8", "utf8");
    norm(a) == norm(b)
}

fn create_database(spec: &DatabaseSpec) -> (String, String) {
    let mut options = Vec::new();
    let mut push = |keyword: &str, value: Option<String>| {
        if let Some(v) = value {
            options.push(format!("{keyword} {v}"));
        }
    };
    let template = spec
        .template
        .clone()
        .or_else(|| spec.sets_locale().then(|| "template0".to_owned()));
    push("OWNER", spec.owner.as_deref().map(ident));
    push("TEMPLATE", template.as_deref().map(ident));
    push("ENCODING", spec.encoding.as_deref().map(literal));
    push("LOCALE", spec.locale.as_deref().map(literal));
    push("LC_COLLATE", spec.lc_collate.as_deref().map(literal));
    push("LC_CTYPE", spec.lc_ctype.as_deref().map(literal));
    push(
        "LOCALE_PROVIDER",
        spec.locale_provider.map(|p| p.keyword().to_owned()),
    );
    push("ICU_LOCALE", spec.icu_locale.as_deref().map(literal));
    push(
        "CONNECTION LIMIT",
        spec.connection_limit.map(|l| l.to_string()),
    );
    push(
        "ALLOW_CONNECTIONS",
        spec.allow_connections.map(|a| a.to_string()),
    );
    let sql = match options.is_empty() {
        true => format!("CREATE DATABASE {}", ident(&spec.name)),
        false => format!(
            "CREATE DATABASE {} WITH {}",
            ident(&spec.name),
            options.join(" ")
        ),
    };
    let description = match &spec.owner {
        Some(owner) => format!("create database owned by {owner}"),
        None => "create database".to_owned(),
    };
    (sql, description)
}

/// A new database's ACL (`acldefault('d', owner)`): everything for the
/// owner, `CONNECT` and `TEMPORARY` for PUBLIC.
fn default_database_acl(owner: &str) -> BTreeSet<(String, String)> {
    let mut acl: BTreeSet<(String, String)> = ["CONNECT", "CREATE", "TEMPORARY"]
        .into_iter()
        .map(|p| (owner.to_owned(), p.to_owned()))
        .collect();
    acl.insert(("public".to_owned(), "CONNECT".to_owned()));
    acl.insert(("public".to_owned(), "TEMPORARY".to_owned()));
    acl
}

/// The privileges of `grant` not held yet; the owner holds them all.
fn missing_privileges<'p>(
    acl: &BTreeSet<(String, String)>,
    owner: &str,
    grant: &GrantSpec,
    privileges: Vec<&'p str>,
) -> Vec<&'p str> {
    let who = if crate::sql::is_public(&grant.role) {
        "public"
    } else {
        grant.role.as_str()
    };
    if who == owner {
        return Vec::new();
    }
    privileges
        .into_iter()
        .filter(|p| !acl.contains(&(who.to_owned(), (*p).to_owned())))
        .collect()
}
