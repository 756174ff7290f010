//! [`Change`]s and the [`Report`] of a run.

use pgharbor_conn::Secret;
use serde::Serialize;
use std::fmt;

/// What a [`Change`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// `CREATE ROLE`.
    CreateRole,
    /// `ALTER ROLE … WITH` attributes.
    AlterRole,
    /// `ALTER ROLE … PASSWORD`.
    SetPassword,
    /// `ALTER ROLE … SET`.
    RoleSetting,
    /// `GRANT role TO role`.
    GrantMembership,
    /// `CREATE DATABASE`.
    CreateDatabase,
    /// `ALTER DATABASE` owner, connection limit or `ALLOW_CONNECTIONS`.
    AlterDatabase,
    /// `ALTER DATABASE … SET`.
    DatabaseSetting,
    /// `CREATE SCHEMA`.
    CreateSchema,
    /// `ALTER SCHEMA … OWNER TO`.
    AlterSchema,
    /// `CREATE EXTENSION`.
    CreateExtension,
    /// `ALTER EXTENSION … UPDATE TO` or `SET SCHEMA`.
    AlterExtension,
    /// `GRANT … ON DATABASE` or `ON SCHEMA`.
    Grant,
}

/// One statement that brings the server closer to the plan.
///
/// `sql` is for display (passwords shown as `'****'`); the statement that
/// runs is [`Change::execute_sql`], which may hold a password verifier and
/// is never serialised or shown by `Debug`.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// What kind of change this is.
    pub kind: ChangeKind,
    /// The object changed, e.g. `role mealie`, `extension vector in database immich`.
    pub object: String,
    /// The database the statement runs in; `None`: the target's own database.
    pub database: Option<String>,
    /// What changes, in words.
    pub description: String,
    /// The statement, with passwords masked.
    pub sql: String,
    #[serde(skip)]
    execute: Secret,
}

impl Change {
    /// A change whose statement holds no secret.
    pub(crate) fn new(kind: ChangeKind, object: String, description: String, sql: String) -> Self {
        Change {
            kind,
            object,
            database: None,
            description,
            execute: Secret::new(sql.clone()),
            sql,
        }
    }

    /// A change whose statement holds a secret: `masked` is shown, `execute` runs.
    pub(crate) fn secret(
        kind: ChangeKind,
        object: String,
        description: String,
        masked: String,
        execute: Secret,
    ) -> Self {
        Change {
            execute,
            ..Change::new(kind, object, description, masked)
        }
    }

    /// The same change, run inside `database`.
    pub(crate) fn in_database(mut self, database: &str) -> Self {
        self.database = Some(database.to_owned());
        self
    }

    /// The statement to run. It may contain a password verifier: never log
    /// or print it; show [`Change::sql`] instead.
    pub fn execute_sql(&self) -> &str {
        self.execute.expose()
    }
}

/// How many declared items already matched the plan, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Unchanged {
    /// Roles whose existence and attributes matched.
    pub roles: usize,
    /// Passwords whose stored verifier matched.
    pub passwords: usize,
    /// Role memberships already granted.
    pub memberships: usize,
    /// Role settings already set.
    pub role_settings: usize,
    /// Databases whose existence, owner and options matched.
    pub databases: usize,
    /// Database settings already set.
    pub database_settings: usize,
    /// Schemas that existed with the right owner.
    pub schemas: usize,
    /// Extensions installed in the right version and schema.
    pub extensions: usize,
    /// Grant entries whose privileges were all held already.
    pub grants: usize,
}

impl Unchanged {
    /// The sum of all counts.
    pub fn total(&self) -> usize {
        self.roles
            + self.passwords
            + self.memberships
            + self.role_settings
            + self.databases
            + self.database_settings
            + self.schemas
            + self.extensions
            + self.grants
    }

    fn parts(&self) -> Vec<String> {
        [
            (self.roles, "role"),
            (self.passwords, "password"),
            (self.memberships, "membership"),
            (self.role_settings, "role setting"),
            (self.databases, "database"),
            (self.database_settings, "database setting"),
            (self.schemas, "schema"),
            (self.extensions, "extension"),
            (self.grants, "grant"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
        .collect()
    }
}

/// The outcome of [`crate::apply`]: the changes made (or, in a dry run,
/// those that would be made), in the order they run, and what was already
/// as planned. Serialisable for `--json`; `Display` renders it for people.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The target, password masked.
    pub target: String,
    /// Whether this was a dry run (nothing was changed).
    pub dry_run: bool,
    /// The user the changes were (or would be) made as.
    pub user: String,
    /// Whether that user is a superuser.
    pub superuser: bool,
    /// Whether stored passwords could be compared (`pg_authid` readable).
    pub passwords_compared: bool,
    /// The changes, in execution order.
    pub changes: Vec<Change>,
    /// What already matched.
    pub unchanged: Unchanged,
}

impl Report {
    /// Whether the server already matched the plan.
    pub fn is_converged(&self) -> bool {
        self.changes.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        };
        writeln!(f, "apply to {} as {}{mode}", self.target, self.user)?;
        for change in &self.changes {
            let place = change
                .database
                .as_ref()
                .map(|db| format!(" [in {db}]"))
                .unwrap_or_default();
            writeln!(f, "  {}: {}{place}", change.object, change.description)?;
            writeln!(f, "      {}", change.sql)?;
        }
        let verb = if self.dry_run { "planned" } else { "applied" };
        let n = self.changes.len();
        write!(f, "{n} change{} {verb}", if n == 1 { "" } else { "s" })?;
        let parts = self.unchanged.parts();
        if !parts.is_empty() {
            write!(f, "; unchanged: {}", parts.join(", "))?;
        }
        writeln!(f)
    }
}
