//! One server per flavour for a whole test run, and a fresh set of databases
//! on it for each test: [`TestDatabases`].
//!
//! `scripts/test.sh` starts one cluster per [`Flavor`] with the
//! `pgharbor-test-servers` binary of this crate and exports their base URLs
//! in `$PGHARBOR_TEST_PG15_URL` and `$PGHARBOR_TEST_PG16_URL`
//! ([`Flavor::shared_url_var`]). A test that does not need a server of its
//! own asks for [`TestDatabases::on`] a flavour: every database name it uses
//! (`url("app")`, `psql("app", …)`) is mapped to a name no other test uses
//! (`t<pid><random>_app`), so two tests running at once never see each
//! other's databases, and the test cannot name a database it did not make
//! its own. When the test ends without panicking, its databases are dropped;
//! when it fails, they are kept on the server for a look (the server itself
//! goes away at the end of the run) and their names are printed.
//!
//! When the variable of the flavour is not set (`cargo nextest run` without
//! `scripts/test.sh`), [`TestDatabases::on`] starts a [`Cluster`] of its own
//! instead, so every test runs anywhere.

use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{clear_pg_env, percent_encode, Cluster, Flavor};

/// PostgreSQL's limit on a database name, in bytes.
const MAX_NAME_BYTES: usize = 63;

/// The databases of one test on a server of one flavour: the run's shared
/// server when there is one, else a cluster of the test's own. Every name
/// passed in is this test's own (see the module overview).
#[derive(Debug)]
pub struct TestDatabases {
    flavor: Flavor,
    server: Server,
    prefix: String,
}

#[derive(Debug)]
enum Server {
    /// The run's server: its base URL (`postgresql://postgres@HOST:PORT`)
    /// and the flavour's `psql`.
    Shared { base_url: String, psql: PathBuf },
    /// Started for this test alone (no shared server was announced).
    Own(Box<Cluster>),
}

impl Flavor {
    /// Environment variable holding the base URL of the run's shared server
    /// of this flavour (`postgresql://postgres@127.0.0.1:PORT`, no database).
    pub fn shared_url_var(self) -> &'static str {
        match self {
            Flavor::Pg15 => "PGHARBOR_TEST_PG15_URL",
            Flavor::Pg16Vector => "PGHARBOR_TEST_PG16_URL",
        }
    }
}

impl TestDatabases {
    /// This test's databases on the shared server of `flavor`, or on a
    /// cluster started for it when no shared server was announced.
    pub fn on(flavor: Flavor) -> TestDatabases {
        let shared = std::env::var(flavor.shared_url_var())
            .ok()
            .filter(|v| !v.is_empty());
        let server = match shared {
            Some(base_url) => Server::Shared {
                base_url: base_url.trim_end_matches('/').to_string(),
                psql: flavor
                    .bin_dir()
                    .unwrap_or_else(|e| panic!("pgharbor-testkit: {e}"))
                    .join("psql"),
            },
            None => Server::Own(Box::new(Cluster::start(flavor))),
        };
        TestDatabases {
            flavor,
            server,
            prefix: unique_prefix(),
        }
    }

    /// The flavour of the server.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Whether the databases live on the run's shared server.
    pub fn is_shared(&self) -> bool {
        matches!(self.server, Server::Shared { .. })
    }

    /// The server-side name of this test's database `name`.
    pub fn name(&self, name: &str) -> String {
        let real = format!("{}{name}", self.prefix);
        assert!(
            real.len() <= MAX_NAME_BYTES,
            "pgharbor-testkit: database name {real:?} is longer than PostgreSQL's {MAX_NAME_BYTES} bytes; use a shorter name than {name:?}"
        );
        real
    }

    /// A connection URL for this test's database `name` as the superuser.
    pub fn url(&self, name: &str) -> String {
        let real = self.name(name);
        match &self.server {
            Server::Shared { base_url, .. } => format!("{base_url}/{}", percent_encode(&real)),
            Server::Own(cluster) => cluster.url(&real),
        }
    }

    /// `CREATE DATABASE` for this test's database `name`.
    pub fn create_database(&self, name: &str) {
        let real = crate::quote_ident(&self.name(name));
        self.admin(&format!("CREATE DATABASE {real}"));
    }

    /// `CREATE DATABASE to TEMPLATE from`: a copy of this test's database
    /// `from` (nobody may be connected to it) as its database `to`.
    pub fn copy_database(&self, from: &str, to: &str) {
        let source = crate::quote_ident(&self.name(from));
        let copy = crate::quote_ident(&self.name(to));
        self.admin(&format!("CREATE DATABASE {copy} TEMPLATE {source}"));
    }

    /// `ALTER DATABASE <this test's name> <clause>`, e.g.
    /// `alter_database("app", "SET timezone = 'UTC'")`.
    pub fn alter_database(&self, name: &str, clause: &str) {
        let real = crate::quote_ident(&self.name(name));
        self.admin(&format!("ALTER DATABASE {real} {clause}"));
    }

    /// Run `sql` in this test's database `name` with `psql`, as
    /// [`Cluster::psql`] does (unaligned, tuples only, no trailing newline).
    pub fn psql(&self, name: &str, sql: &str) -> String {
        let real = self.name(name);
        self.psql_in(&real, sql)
            .unwrap_or_else(|e| panic!("pgharbor-testkit: psql failed in {real}: {e}\nSQL: {sql}"))
    }

    /// Like [`TestDatabases::psql`], but returns psql's error output
    /// instead of panicking when it fails.
    pub fn try_psql(&self, name: &str, sql: &str) -> Result<String, String> {
        self.psql_in(&self.name(name), sql)
    }

    /// Run `sql` in the maintenance database `postgres` (creating, altering
    /// and dropping this test's databases).
    fn admin(&self, sql: &str) -> String {
        self.psql_in("postgres", sql).unwrap_or_else(|e| {
            panic!("pgharbor-testkit: psql failed in postgres: {e}\nSQL: {sql}")
        })
    }

    fn psql_in(&self, real: &str, sql: &str) -> Result<String, String> {
        let (base_url, psql) = match &self.server {
            Server::Own(cluster) => return cluster.try_psql(real, sql),
            Server::Shared { base_url, psql } => (base_url, psql),
        };
        let mut cmd = Command::new(psql);
        clear_pg_env(&mut cmd);
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            "-",
            "-d",
        ])
        .arg(format!("{base_url}/{}", percent_encode(real)))
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", "pgharbor-testkit")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("pgharbor-testkit: run {}: {e}", psql.display()));
        {
            let mut stdin = child.stdin.take().expect("psql stdin");
            // psql may exit early on error; the error is reported below.
            let _ = stdin.write_all(sql.as_bytes());
        }
        let out = child.wait_with_output().expect("wait for psql");
        if out.status.success() {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            while text.ends_with('\n') {
                text.pop();
            }
            Ok(text)
        } else {
            Err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            ))
        }
    }

    /// The names of this test's databases on the server, created by the
    /// test or by the code under test.
    fn existing(&self) -> Result<Vec<String>, String> {
        let sql = format!(
            "SELECT datname FROM pg_database WHERE left(datname, {}) = '{}' ORDER BY 1",
            self.prefix.len(),
            self.prefix
        );
        let names = self.psql_in("postgres", &sql)?;
        Ok(names
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// After a failed test: say which databases stay for a look. Never
    /// panics (a second panic would abort the test process).
    fn keep_for_a_look(&self) {
        match self.existing() {
            Ok(names) if names.is_empty() => {}
            Ok(names) => eprintln!(
                "pgharbor-testkit: the test failed; its databases stay on the shared {:?} server until the run ends: {}",
                self.flavor,
                names.join(", ")
            ),
            Err(e) => eprintln!(
                "pgharbor-testkit: the test failed; listing its databases (prefix {}) failed too: {e}",
                self.prefix
            ),
        }
    }

    /// After a passed test: drop its databases; a failure to do so fails
    /// the test.
    fn drop_all(&self) {
        let names = self
            .existing()
            .unwrap_or_else(|e| panic!("pgharbor-testkit: listing this test's databases: {e}"));
        for name in names {
            let quoted = crate::quote_ident(&name);
            self.admin(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"));
        }
    }
}

impl Drop for TestDatabases {
    fn drop(&mut self) {
        if !self.is_shared() {
            // The test's own cluster goes away with it.
        } else if std::thread::panicking() {
            self.keep_for_a_look();
        } else {
            self.drop_all();
        }
    }
}

/// `t<pid in hex><4 random hex digits><sequence>_`: unique among the
/// processes of a run and within one, and not reused when a pid is.
fn unique_prefix() -> String {
    static SEQUENCE: AtomicU32 = AtomicU32::new(0);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!(
        "t{:x}{:04x}{sequence}_",
        std::process::id(),
        hasher.finish() & 0xffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_differ_and_are_lowercase_identifiers() {
        let (a, b) = (unique_prefix(), unique_prefix());
        assert_ne!(a, b);
        for p in [a, b] {
            assert!(p.starts_with('t') && p.ends_with('_'), "{p}");
            assert!(
                p.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || c == '_'),
                "{p}"
            );
        }
    }
}
