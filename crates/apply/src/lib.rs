//! Converging a PostgreSQL server to a declared plan: the convergence half
//! of `pgharbor apply PLAN.toml`.
//!
//! A [`Plan`] declares roles (attributes, passwords, memberships, settings),
//! databases (owner, encoding and locale, template, connection options,
//! settings), and inside each database its schemas, extensions and grants.
//! [`apply`] reads the server's catalogs, computes the [`Change`]s that
//! differ, and runs only those, in dependency order: roles, memberships,
//! then each database (created outside a transaction) with its schemas,
//! extensions, grants and settings. A second run reports no changes. With
//! [`ApplyOptions::dry_run`] nothing runs and the [`Report`] lists the exact
//! statements, passwords shown as `'****'`.
//!
//! Nothing is ever dropped or revoked: roles, memberships, privileges and
//! settings that the plan does not mention are left as they are.
//!
//! # Passwords
//!
//! Passwords come from the environment, a file or the plan itself
//! ([`pgharbor_conn::SecretSource`]) and are sent to the server as a
//! SCRAM-SHA-256 verifier computed here ([`password::scram_sha_256`]), the
//! way libpq's `PQencryptPasswordConn` does, so the plain password never
//! appears in SQL text or server logs. When the connected user can read
//! `pg_authid` (a superuser), the stored verifier is recomputed from the
//! plan's password with its own salt and iteration count, and an unchanged
//! password is not set again. Otherwise (managed services, an administrator
//! with `CREATEROLE`) it is set on every run and reported as
//! "password set (not compared: cannot read pg_authid)". No error, report,
//! `Debug` output or log contains a password.
//!
//! # Without a superuser
//!
//! An administrator with `CREATEROLE` and `CREATEDB` is enough. To create a
//! database or schema for an owner and manage what it owns, the
//! administrator grants itself membership in that owner first (a change in
//! the report, `WITH INHERIT TRUE, SET TRUE` on PostgreSQL 16). A role the
//! administrator may not alter (since PostgreSQL 16: one it holds no
//! `ADMIN OPTION` on) and an extension that needs a superuser are errors
//! that name the role or extension, raised before any change.
//!
//! # The plan
//!
//! ```toml
//! [target]
//! url = "postgresql://admin@shared-postgres:5432/postgres"  # or { env = "…" } / { file = "…" }
//! password = { env = "ADMIN_PASSWORD" }                       # optional
//!
//! [[role]]
//! name = "mealie"
//! login = true
//! password = { env = "MEALIE_DB_PASSWORD" }   # or { file = "/run/secrets/mealie" } or a literal
//! connection_limit = 20
//! valid_until = "infinity"
//! member_of = ["app_readers"]
//! settings = { search_path = "app, public", statement_timeout = "30s" }
//! # also: superuser, createdb, createrole, inherit, replication, bypassrls
//!
//! [[role]]
//! name = "app_readers"
//!
//! [[database]]
//! name = "mealie"
//! owner = "mealie"
//! encoding = "UTF8"
//! locale = "C.UTF-8"           # or lc_collate / lc_ctype; locale_provider = "icu" + icu_locale
//! template = "template0"       # the default when encoding or locale is set
//! connection_limit = 50
//! allow_connections = true
//! extensions = ["uuid-ossp", { name = "vector", version = "0.6.2", schema = "public" }]
//! grants = [{ role = "app_readers", privileges = ["CONNECT", "TEMPORARY"] }]
//! settings = { work_mem = "16MB" }
//! copy_from = "postgresql://mealie@old-mealie-db:5432/mealie"   # run by the caller
//!
//! [[database.schema]]
//! name = "app"
//! owner = "mealie"
//! grants = [{ role = "app_readers", privileges = ["USAGE"] }]
//! ```
//!
//! The copies (`copy_from`) are run by the caller with pgharbor-migrate's
//! PostgreSQL copy; [`skip_finished_copies`] (before the plan is applied) and
//! [`resumes_interrupted_copy`] (before each copy) decide, from the copy's
//! journal in its target database, which are skipped, copied again
//! (`--recopy` drops the database first) or continued.
//!
//! Unknown keys are errors that name the key; parse errors give the file,
//! line and column and never quote the line, which may hold a password.
//!
//! ```no_run
//! use pgharbor_apply::{apply, ApplyOptions, Plan};
//!
//! # async fn run() -> Result<(), pgharbor_apply::ApplyError> {
//! let plan = Plan::from_file("plan.toml")?;
//! let report = apply(&plan, &ApplyOptions { dry_run: true }).await?;
//! print!("{report}");
//! for copy in plan.copies()? {
//!     println!("then copy {} into {}", copy.source, copy.target);
//! }
//! # Ok(())
//! # }
//! ```

mod copies;
mod diff;
mod error;
pub mod password;
mod plan;
mod report;
mod run;
mod sql;
mod state;

pub use copies::{resumes_interrupted_copy, skip_finished_copies};
pub use error::{ApplyError, Result};
pub use plan::{
    Copy, DatabaseSpec, ExtensionSpec, GrantSpec, LocaleProvider, Plan, RoleSpec, SchemaSpec,
    SettingValue, Target,
};
pub use report::{Change, ChangeKind, Report, Unchanged};
pub use run::{apply, apply_to, ApplyOptions};
