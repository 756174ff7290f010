//! [`Environment`]: the `PG*` variables, user name, home directory and socket
//! directories that fill in what a connection string leaves out.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variables libpq (and so pgharbor) consults.
pub const PG_ENV_VARS: &[&str] = &[
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLNEGOTIATION",
    "PGCHANNELBINDING",
    "PGPASSFILE",
    "PGAPPNAME",
    "PGCONNECT_TIMEOUT",
    "PGOPTIONS",
];

/// The Unix socket directories tried, in order, when no host is given.
pub const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/tmp"];

/// Where the defaults come from: environment variables, the OS user name,
/// the home directory (for `~/.pgpass`) and the default socket directories.
///
/// [`Environment::from_process`] reads the real process environment;
/// tests build one by hand so that nothing global is mutated:
///
/// ```
/// use pgharbor_conn::{ConnConfig, Environment};
///
/// let env = Environment::empty()
///     .with_var("PGHOST", "db.internal")
///     .with_var("PGUSER", "app")
///     .with_os_user("alice");
/// let cfg = ConnConfig::parse_with_env("dbname=shop", &env).unwrap();
/// assert_eq!(cfg.user(), "app");
/// assert_eq!(cfg.to_string(), "postgresql://app@db.internal:5432/shop");
/// ```
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    os_user: Option<String>,
    home_dir: Option<PathBuf>,
    socket_dirs: Vec<PathBuf>,
}

impl Environment {
    /// Nothing set: no variables, no OS user, no home directory; the socket
    /// directories are [`DEFAULT_SOCKET_DIRS`].
    pub fn empty() -> Self {
        Environment {
            socket_dirs: DEFAULT_SOCKET_DIRS.iter().map(PathBuf::from).collect(),
            ..Environment::default()
        }
    }

    /// The current process: the `PG*` variables in [`PG_ENV_VARS`] (others
    /// are not copied), the effective OS user name, and `$HOME` (or the
    /// home directory from the password database when `HOME` is unset).
    pub fn from_process() -> Self {
        let mut env = Environment::empty();
        for name in PG_ENV_VARS {
            if let Ok(value) = std::env::var(name) {
                env.vars.insert((*name).to_owned(), value);
            }
        }
        env.os_user = whoami::username().ok().filter(|u| !u.is_empty());
        env.home_dir = match std::env::var_os("HOME") {
            Some(h) if !h.is_empty() => Some(PathBuf::from(h)),
            _ => std::env::home_dir(),
        };
        env
    }

    /// Sets an environment variable (builder style).
    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Sets the OS user name, the last fallback for the user.
    pub fn with_os_user(mut self, name: impl Into<String>) -> Self {
        self.os_user = Some(name.into());
        self
    }

    /// Sets the home directory, where `.pgpass` and `.postgresql/` (default
    /// root and client certificates) are looked for.
    pub fn with_home_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.home_dir = Some(dir.into());
        self
    }

    /// Replaces the candidate default socket directories.
    pub fn with_socket_dirs<I, P>(mut self, dirs: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.socket_dirs = dirs.into_iter().map(Into::into).collect();
        self
    }

    /// The value of a variable, if set.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The OS user name, if known.
    pub fn os_user(&self) -> Option<&str> {
        self.os_user.as_deref()
    }

    /// The home directory, if known.
    pub fn home_dir(&self) -> Option<&Path> {
        self.home_dir.as_deref()
    }

    /// The candidate default socket directories, in order.
    pub fn socket_dirs(&self) -> &[PathBuf] {
        &self.socket_dirs
    }

    /// The socket directory used when no host is given: the first candidate
    /// holding a socket for `port`, else the first that exists, else the
    /// first candidate (or `/tmp` when the list is empty).
    pub fn default_socket_dir(&self, port: u16) -> PathBuf {
        let socket = format!(".s.PGSQL.{port}");
        self.socket_dirs
            .iter()
            .find(|d| d.join(&socket).exists())
            .or_else(|| self.socket_dirs.iter().find(|d| d.is_dir()))
            .or_else(|| self.socket_dirs.first())
            .cloned()
            .unwrap_or_else(|| PathBuf::from("/tmp"))
    }

    /// Whether `dir` is one of the default socket directories (libpq then
    /// looks for `localhost` in `.pgpass`).
    pub fn is_default_socket_dir(&self, dir: &Path) -> bool {
        let trimmed = |p: &Path| p.to_string_lossy().trim_end_matches('/').to_owned();
        self.socket_dirs.iter().any(|d| trimmed(d) == trimmed(dir))
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may hold a password (PGPASSWORD): show names only.
        f.debug_struct("Environment")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("os_user", &self.os_user)
            .field("home_dir", &self.home_dir)
            .field("socket_dirs", &self.socket_dirs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_not_values() {
        let env = Environment::empty().with_var("PGPASSWORD", "env-secret-value");
        let dbg = format!("{env:?}");
        assert!(dbg.contains("PGPASSWORD"));
        assert!(!dbg.contains("env-secret-value"));
    }

    #[test]
    fn default_socket_dir_prefers_dir_with_socket_then_existing() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let missing = a.path().join("does-not-exist");
        std::fs::write(b.path().join(".s.PGSQL.5433"), b"").unwrap();
        let env = Environment::empty().with_socket_dirs([
            missing.clone(),
            a.path().to_path_buf(),
            b.path().to_path_buf(),
        ]);
        assert_eq!(env.default_socket_dir(5433), b.path());
        assert_eq!(env.default_socket_dir(5432), a.path());
        let env = Environment::empty().with_socket_dirs([missing.clone()]);
        assert_eq!(env.default_socket_dir(5432), missing);
        let env = Environment::empty().with_socket_dirs(Vec::<PathBuf>::new());
        assert_eq!(env.default_socket_dir(5432), PathBuf::from("/tmp"));
    }

    #[test]
    fn default_socket_dir_matching_ignores_trailing_slash() {
        let env = Environment::empty();
        assert!(env.is_default_socket_dir(Path::new("/var/run/postgresql/")));
        assert!(env.is_default_socket_dir(Path::new("/tmp")));
        assert!(!env.is_default_socket_dir(Path::new("/srv/pg")));
    }
}
