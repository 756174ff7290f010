//! # pgharbor-pgtools
//!
//! pgharbor uses PostgreSQL's own `pg_dump` (and `pg_restore`) wherever
//! full schema fidelity matters: they know every object type of every
//! server version. A `pg_dump` can read servers of its own major version and
//! older ones, never newer ones, so the program has to be chosen by version:
//!
//! * [`find`] looks for a program whose major version is at least the
//!   server's, in `$PGHARBOR_PG_BIN`, then each `$PATH` directory, then
//!   Debian's and the PGDG packages' `/usr/lib/postgresql/*/bin`, and picks
//!   the newest. When none fits, the error lists what was found and says
//!   exactly what to install.
//! * [`libpq_env`] turns a [`ConnConfig`] into the `PG*` environment the
//!   programs read, so passwords travel in the child's environment and never
//!   on a command line (`ps` shows command lines to every user).
//! * [`compat`] filters what a `pg_dump` wrote that the target server does
//!   not accept (column attribute options of other builds), exactly and
//!   counted.
//! * [`child`] starts them so that none outlives pgharbor, even a
//!   `kill -9`ed one, and stops them (their statements on the server too)
//!   when a run is cancelled.

pub mod child;
pub mod compat;

pub use child::child_command;
pub use compat::AttributeOptionFilter;

use pgharbor_conn::{ConnConfig, Host};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming a directory of PostgreSQL programs to use
/// first.
pub const PG_BIN_ENV: &str = "PGHARBOR_PG_BIN";

/// A PostgreSQL client program found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Absolute path of the executable.
    pub path: PathBuf,
    /// Its version (`pg_dump --version`).
    pub version: Version,
}

impl Program {
    /// A command running this program, with no arguments yet, as a child
    /// that does not outlive pgharbor ([`child_command`]).
    pub fn command(&self) -> Command {
        child_command(&self.path)
    }
}

/// A PostgreSQL version as the programs print it (`16.4`, `15.19`, `9.6.24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major version (`16`; `9.6` is 906 in the server's numbering, here 9).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl Version {
    /// Parse the output of `pg_dump --version`, e.g.
    /// `pg_dump (PostgreSQL) 16.4 (Debian 16.4-1.pgdg120+1)`.
    pub fn parse_program_output(text: &str) -> Option<Version> {
        let after = text.split(')').nth(1)?.trim_start();
        let number: String = after
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = number.split('.').map(|p| p.parse::<u32>());
        let major = parts.next()?.ok()?;
        let minor = parts.next().and_then(Result::ok).unwrap_or(0);
        Some(Version { major, minor })
    }

    /// From the server's `server_version_num` (`160004` → 16.4).
    pub fn from_server_version_num(num: u32) -> Version {
        if num >= 100_000 {
            Version {
                major: num / 10_000,
                minor: num % 10_000,
            }
        } else {
            Version {
                major: num / 10_000,
                minor: (num / 100) % 100,
            }
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// No suitable program was found.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    message: String,
}

/// Find the newest `name` (e.g. `pg_dump`) whose major version is at least
/// `min_major`, searching the directories described in the crate overview.
///
/// A fitting program in `$PGHARBOR_PG_BIN` is taken as it is, without
/// looking further: that directory is the user's explicit choice (and
/// probing every other installation costs a process start each, a Perl
/// start for Debian's `pg_wrapper`).
pub fn find(name: &str, min_major: u32) -> Result<Program, ToolError> {
    if let Some(dir) = std::env::var_os(PG_BIN_ENV) {
        if let Some(chosen) = fitting_in(name, min_major, Path::new(&dir)) {
            return Ok(chosen);
        }
    }
    find_in(name, min_major, &candidate_dirs())
}

/// `dir/name` when it runs and its major version is at least `min_major`.
fn fitting_in(name: &str, min_major: u32, dir: &Path) -> Option<Program> {
    let path = dir.join(name);
    let version = program_version(&path)?;
    (version.major >= min_major).then_some(Program { path, version })
}

/// [`find`] over an explicit list of directories (in order of preference
/// for equal versions).
pub fn find_in(name: &str, min_major: u32, dirs: &[PathBuf]) -> Result<Program, ToolError> {
    let found = programs_in(name, dirs);
    let best = found
        .iter()
        .filter(|p| p.version.major >= min_major)
        .max_by(|a, b| a.version.cmp(&b.version));
    match best {
        Some(program) => Ok(program.clone()),
        None => Err(not_found(name, min_major, &found, dirs)),
    }
}

/// Find `name` of exactly major version `major` (`pg_ctl` and `postgres`
/// run a data directory only of their own major version), in
/// `$PGHARBOR_PG_BIN` first, then the directories [`find`] searches.
pub fn find_exact(name: &str, major: u32) -> Result<Program, ToolError> {
    let dirs = candidate_dirs();
    let found = programs_in(name, &dirs);
    match found.iter().find(|p| p.version.major == major) {
        Some(program) => Ok(program.clone()),
        None => {
            let seen: Vec<String> = found
                .iter()
                .map(|p| format!("{} {}", p.path.display(), p.version))
                .collect();
            Err(ToolError {
                message: format!(
                    "{name} of PostgreSQL {major} is needed (a PostgreSQL {major} data directory \
                     runs only under PostgreSQL {major}), but found {}. Install PostgreSQL \
                     {major}'s server programs (Debian/Ubuntu: `apt install postgresql-{major}`) \
                     or point {PG_BIN_ENV} at their directory",
                    if seen.is_empty() {
                        "none".to_owned()
                    } else {
                        seen.join(", ")
                    }
                ),
            })
        }
    }
}

/// The directories searched, in order.
pub fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(PG_BIN_ENV) {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.extend(versioned_dirs(Path::new("/usr/lib/postgresql")));
    dirs.extend(versioned_dirs(Path::new("/usr/pgsql")));
    dirs
}

/// `BASE/*/bin`, newest version first.
fn versioned_dirs(base: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut dirs: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, dir)| dir).collect()
}

/// Every `name` in `dirs` that runs and prints a version (duplicates by
/// resolved path removed).
fn programs_in(name: &str, dirs: &[PathBuf]) -> Vec<Program> {
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for dir in dirs {
        let path = dir.join(name);
        let Ok(real) = path.canonicalize() else {
            continue;
        };
        if seen.contains(&real) {
            continue;
        }
        seen.push(real);
        if let Some(version) = program_version(&path) {
            found.push(Program { path, version });
        }
    }
    found
}

fn program_version(path: &Path) -> Option<Version> {
    let output = Command::new(path).arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    Version::parse_program_output(&String::from_utf8_lossy(&output.stdout))
}

fn not_found(name: &str, min_major: u32, found: &[Program], dirs: &[PathBuf]) -> ToolError {
    let seen = if found.is_empty() {
        "none was found".to_string()
    } else {
        let list: Vec<String> = found
            .iter()
            .map(|p| format!("{} {}", p.path.display(), p.version))
            .collect();
        format!("found only {}", list.join(", "))
    };
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    ToolError {
        message: format!(
            "{name} {min_major} or newer is needed for a PostgreSQL {min_major} server ({name} \
             cannot read servers newer than itself), but {seen}. Install the client programs of \
             version {min_major} or newer — Debian/Ubuntu: `apt install postgresql-client-{min_major}` \
             (from apt.postgresql.org when your release lacks it); RHEL/Fedora: \
             `dnf install postgresql{min_major}`; macOS: `brew install postgresql@{min_major}`; or \
             run pgharbor in the `postgres:{min_major}` container image — or point {PG_BIN_ENV} at \
             a directory holding {name}. Searched: {}",
            searched.join(":")
        ),
    }
}

/// The `PG*` environment for a client program connecting like `config`,
/// including `PGPASSWORD` when the configuration holds a password. Values the
/// program should not inherit from pgharbor's own environment (other `PG*`
/// variables) must be removed by the caller with [`clear_libpq_env`].
pub fn libpq_env(config: &ConnConfig) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("PGHOST", host_value(config.host())),
        ("PGPORT", config.port().to_string()),
        ("PGUSER", config.user().to_string()),
        ("PGDATABASE", config.dbname().to_string()),
        ("PGSSLMODE", config.sslmode().as_str().to_string()),
        ("PGPASSFILE", "/dev/null".to_string()),
    ];
    if let Some(password) = config.password() {
        env.push(("PGPASSWORD", password.expose().to_string()));
    }
    if let Some(root) = config.ssl_root_cert() {
        env.push(("PGSSLROOTCERT", root.to_string()));
    }
    if let Some(cert) = config.ssl_cert() {
        env.push(("PGSSLCERT", cert.display().to_string()));
    }
    if let Some(key) = config.ssl_key() {
        env.push(("PGSSLKEY", key.display().to_string()));
    }
    if let Some(name) = config.application_name() {
        env.push(("PGAPPNAME", name.to_string()));
    }
    if let Some(timeout) = config.connect_timeout() {
        env.push(("PGCONNECT_TIMEOUT", timeout.as_secs().max(1).to_string()));
    }
    if let Some(options) = config.options() {
        env.push(("PGOPTIONS", options.to_string()));
    }
    env
}

fn host_value(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.clone(),
        Host::Unix(dir) => dir.display().to_string(),
    }
}

/// Remove every inherited libpq variable from `command`'s environment, then
/// set those of `config`.
pub fn clear_libpq_env(command: &mut Command, config: &ConnConfig) {
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("PG")) {
            command.env_remove(name);
        }
    }
    command.envs(libpq_env(config));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn versions_parse() {
        let v =
            Version::parse_program_output("pg_dump (PostgreSQL) 16.4 (Debian 16.4-1.pgdg120+1)\n");
        assert_eq!(
            v,
            Some(Version {
                major: 16,
                minor: 4
            })
        );
        let v = Version::parse_program_output("pg_dump (PostgreSQL) 9.6.24\n");
        assert_eq!(v, Some(Version { major: 9, minor: 6 }));
        assert_eq!(Version::parse_program_output("garbage"), None);
        assert_eq!(
            Version::from_server_version_num(150019),
            Version {
                major: 15,
                minor: 19
            }
        );
    }

    fn fake_program(dir: &Path, name: &str, version: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho '{name} (PostgreSQL) {version}'\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn the_newest_sufficient_program_is_chosen() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("15"), tmp.path().join("17"));
        fake_program(&a, "pg_dump", "15.19");
        fake_program(&b, "pg_dump", "17.2");
        let found = find_in("pg_dump", 15, &[a.clone(), b.clone()]).unwrap();
        assert_eq!(found.path, b.join("pg_dump"));
        assert_eq!(found.version.major, 17);
    }

    #[test]
    fn the_chosen_directory_is_used_when_it_fits() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, new) = (tmp.path().join("15"), tmp.path().join("16"));
        fake_program(&old, "pg_dump", "15.19");
        fake_program(&new, "pg_dump", "16.2");
        assert_eq!(
            fitting_in("pg_dump", 15, &old).unwrap().path,
            old.join("pg_dump")
        );
        assert!(fitting_in("pg_dump", 16, &old).is_none(), "too old");
        assert!(fitting_in("pg_restore", 15, &old).is_none(), "absent");
    }

    #[test]
    fn a_missing_version_says_what_to_install() {
        let tmp = tempfile::tempdir().unwrap();
        fake_program(tmp.path(), "pg_dump", "15.19");
        let err = find_in("pg_dump", 16, &[tmp.path().to_path_buf()]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("pg_dump 16 or newer"), "{text}");
        assert!(text.contains("15.19"), "{text}");
        assert!(text.contains("postgresql-client-16"), "{text}");
        assert!(text.contains(PG_BIN_ENV), "{text}");
    }

    #[test]
    fn the_password_goes_to_the_environment_only() {
        let config =
            ConnConfig::parse("postgresql://app:s3cret@db.example:6543/shop?sslmode=require")
                .unwrap();
        let env = libpq_env(&config);
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PGHOST"), Some("db.example"));
        assert_eq!(get("PGPORT"), Some("6543"));
        assert_eq!(get("PGDATABASE"), Some("shop"));
        assert_eq!(get("PGSSLMODE"), Some("require"));
        assert_eq!(get("PGPASSWORD"), Some("s3cret"));
    }
}
