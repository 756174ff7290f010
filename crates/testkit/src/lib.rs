//! Throwaway PostgreSQL clusters (and Redis servers, [`RedisServer`]; S3
//! and Azure Blob servers, [`S3Server`] and [`AzuriteServer`]) for
//! pgharbor's integration tests.
//!
//! [`Cluster::start`] runs `initdb` into a fresh temporary directory, picks a
//! free TCP port on `127.0.0.1`, puts the unix socket in the same temporary
//! directory and starts the server with `pg_ctl -w start`. Dropping the
//! [`Cluster`] stops the server (`-m immediate`) and removes the directory.
//! Any number of clusters, of either [`Flavor`], can run at once.
//!
//! ```no_run
//! use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};
//!
//! # async fn demo() {
//! // A PostgreSQL 15 server with trust authentication.
//! let pg15 = Cluster::start(Flavor::Pg15);
//! pg15.create_database("app");
//! assert_eq!(pg15.psql("app", "SELECT 1 + 1"), "2");
//!
//! // A PostgreSQL 16 server with pgvector, where TCP connections need a password.
//! let pg16 = Cluster::start_with(
//!     Flavor::Pg16Vector,
//!     ClusterOptions { password_auth: true, ..Default::default() },
//! );
//! let client = pg16.client("postgres").await;
//! client.batch_execute("CREATE EXTENSION vector").await.unwrap();
//! // Hand the URL to the code under test: postgresql://postgres:PW@127.0.0.1:PORT/postgres
//! let _url = pg16.url("postgres");
//! # }
//! ```
//!
//! # Binaries
//!
//! | flavor | looked up in, first match wins |
//! | --- | --- |
//! | [`Flavor::Pg15`] | `$PGHARBOR_PG15_BIN`, `/usr/lib/postgresql/15/bin` |
//! | [`Flavor::Pg16Vector`] | `$PGHARBOR_PG16_BIN`, `/opt/pgharbor/pg16/bin`, `<workspace>/.venv/lib/python3*/site-packages/pgserver/pginstall/bin` |
//!
//! `scripts/setup.sh` installs all of them (Debian's `postgresql-15`, the PyPI
//! package `pgserver` for PostgreSQL 16.2 with pgvector). When the binaries
//! are missing, [`Cluster::start`] panics and says so.
//!
//! # Root
//!
//! `initdb` and `postgres` refuse to run as root. When the tests run as root,
//! every server command runs as the `postgres` user through `runuser`, and the
//! temporary directory is handed to that user. The temporary directory is
//! created under `$PGHARBOR_TEST_TMPDIR`, else the system temp dir (`$TMPDIR`,
//! `/tmp`); as root, the `postgres` user must be able to reach it.
//!
//! # Authentication
//!
//! The superuser is always `postgres`. By default every connection is
//! trusted. With [`ClusterOptions::password_auth`], the superuser gets a
//! password and TCP connections (`127.0.0.1`, `::1`) require
//! `scram-sha-256`; the **unix socket stays `trust`**, so [`Cluster::psql`]
//! and other administrative helpers keep working. [`ClusterOptions::hba_lines`]
//! replaces `pg_hba.conf` completely (for TLS or certificate tests).
//!
//! # Leaks
//!
//! Each cluster has a small watchdog shell process that stops the server and
//! removes its directory once the test process is gone, so clusters kept in
//! a `static` (never dropped) or left behind by a killed test process do not
//! outlive the test run.
//!
//! # Shared servers
//!
//! [`TestDatabases`] gives a test fresh, uniquely named databases on one
//! server per flavour shared by the whole run (started by the
//! `pgharbor-test-servers` binary, which `scripts/test.sh` runs), or on a
//! cluster of its own when no shared server was announced.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

mod azurite;
mod files;
mod redis;
mod s3;
mod service;
mod shared;
pub use azurite::{AzuriteServer, AZURITE_ACCOUNT, AZURITE_KEY};
pub use files::copy_dir;
pub use redis::{RedisOptions, RedisServer};
pub use s3::S3Server;
pub use shared::TestDatabases;

/// Name of the bootstrap superuser in every cluster.
pub const SUPERUSER: &str = "postgres";

/// Which PostgreSQL build a [`Cluster`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Debian's PostgreSQL 15 (`/usr/lib/postgresql/15/bin`). No pgvector.
    Pg15,
    /// PostgreSQL 16 from the PyPI package `pgserver`, with the `vector`
    /// extension (pgvector) available to `CREATE EXTENSION`.
    Pg16Vector,
}

impl Flavor {
    /// Environment variable that overrides where this flavor's binaries are.
    pub fn env_var(self) -> &'static str {
        match self {
            Flavor::Pg15 => "PGHARBOR_PG15_BIN",
            Flavor::Pg16Vector => "PGHARBOR_PG16_BIN",
        }
    }

    /// Directories searched for this flavor's binaries, in order (the
    /// environment override first, when set).
    pub fn candidate_dirs(self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(dir) = std::env::var_os(self.env_var()).filter(|v| !v.is_empty()) {
            dirs.push(PathBuf::from(dir));
        }
        match self {
            Flavor::Pg15 => dirs.push(PathBuf::from("/usr/lib/postgresql/15/bin")),
            Flavor::Pg16Vector => {
                dirs.push(PathBuf::from("/opt/pgharbor/pg16/bin"));
                let venv_lib = workspace_root().join(".venv/lib");
                if let Ok(entries) = fs::read_dir(&venv_lib) {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok())
                        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
                        .map(|e| e.path().join("site-packages/pgserver/pginstall/bin"))
                        .collect();
                    found.sort();
                    dirs.extend(found);
                }
            }
        }
        dirs
    }

    /// The directory holding this flavor's `initdb`, `pg_ctl`, `postgres` and
    /// `psql`, or an error naming where it looked and what to run.
    pub fn bin_dir(self) -> Result<PathBuf, String> {
        let candidates = self.candidate_dirs();
        let env_set = std::env::var_os(self.env_var()).is_some_and(|v| !v.is_empty());
        for (i, dir) in candidates.iter().enumerate() {
            if ["initdb", "pg_ctl", "postgres", "psql"]
                .iter()
                .all(|b| is_executable(&dir.join(b)))
            {
                return Ok(fs::canonicalize(dir).unwrap_or_else(|_| dir.clone()));
            }
            if i == 0 && env_set {
                return Err(format!(
                    "${} is set to {}, which lacks initdb/pg_ctl/postgres/psql \
                     (unset it to use the binaries scripts/setup.sh installs)",
                    self.env_var(),
                    dir.display()
                ));
            }
        }
        let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
        Err(format!(
            "{self:?} PostgreSQL binaries not found (looked in: {}). \
             Run scripts/setup.sh, or set ${} to a directory with initdb, pg_ctl, postgres and psql",
            looked.join(", "),
            self.env_var()
        ))
    }

    /// Whether this flavor's binaries can be found (see [`Flavor::bin_dir`]).
    pub fn available(self) -> bool {
        self.bin_dir().is_ok()
    }
}

/// Settings for [`Cluster::start_with`]. `ClusterOptions::default()` gives a
/// trust-authenticated server with the test settings only.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// Give the superuser a password and require `scram-sha-256` on TCP
    /// connections. The unix socket stays `trust`.
    pub password_auth: bool,
    /// The superuser's password when `password_auth` is on; a random
    /// alphanumeric one is generated when `None`. Any characters are allowed
    /// ([`Cluster::url`] percent-encodes it).
    pub password: Option<String>,
    /// Settings appended to `postgresql.conf` as `name = 'value'` (the value
    /// is quoted and escaped here, so pass it bare: `("work_mem", "64MB")`).
    /// They come after the harness's own settings and so win over them.
    pub extra_conf: Vec<(String, String)>,
    /// When set, `pg_hba.conf` consists of exactly these lines (the password
    /// rules above no longer apply). Keep a `local all all trust` line if you
    /// want [`Cluster::psql`] to keep working.
    pub hba_lines: Option<Vec<String>>,
    /// Files written into the data directory before the server starts,
    /// owned by the server's user with mode `0600`: `(relative path, contents)`.
    /// For TLS: write `server.crt`/`server.key` here and add
    /// `ssl = on`, `ssl_cert_file = server.crt`, `ssl_key_file = server.key`
    /// to `extra_conf` (relative paths resolve against the data directory).
    pub data_files: Vec<(String, Vec<u8>)>,
    /// Run the binaries of this directory instead of the flavor's own (a
    /// build of the same major version with other extensions, e.g.
    /// `fixtures/openwebui/pg16-pgcrypto.sh`'s pgvector 0.8 + pgcrypto).
    pub bin_dir: Option<PathBuf>,
}

/// A running throwaway PostgreSQL server. Stopped and deleted on drop.
///
/// All methods panic with a descriptive message when something goes wrong:
/// this type is for tests.
#[derive(Debug)]
pub struct Cluster {
    flavor: Flavor,
    bin_dir: PathBuf,
    major_version: u32,
    port: u16,
    password: Option<String>,
    /// `Some((uid, gid))` of `postgres` when we are root and run the server as it.
    run_as: Option<(u32, u32)>,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    state: Mutex<State>,
    // Last field: dropped after `Drop::drop` has stopped the server.
    dir: TempDir,
}

#[derive(Debug)]
struct State {
    running: bool,
    watchdog: Option<Child>,
}

impl Cluster {
    /// Start a cluster of `flavor` with default options (trust authentication).
    pub fn start(flavor: Flavor) -> Cluster {
        Cluster::start_with(flavor, ClusterOptions::default())
    }

    /// Start a cluster of `flavor` with `options`.
    pub fn start_with(flavor: Flavor, options: ClusterOptions) -> Cluster {
        let bin_dir = match &options.bin_dir {
            Some(dir) => dir.clone(),
            None => flavor
                .bin_dir()
                .unwrap_or_else(|e| panic!("pgharbor-testkit: {e}")),
        };
        let major_version = read_major_version(&bin_dir.join("postgres"));

        let base = std::env::var_os("PGHARBOR_TEST_TMPDIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        fs::create_dir_all(&base)
            .unwrap_or_else(|e| panic!("pgharbor-testkit: create {}: {e}", base.display()));
        let dir = tempfile::Builder::new()
            .prefix("pgh-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("pgharbor-testkit: tempdir in {}: {e}", base.display()));
        let root = dir.path().to_path_buf();
        let is_root = fs::metadata(&root).map(|m| m.uid() == 0).unwrap_or(false);
        let run_as = is_root.then(postgres_ids);

        let data_dir = root.join("data");
        let socket_dir = root.join("sock");
        let log_file = root.join("server.log");
        // Unix socket paths are limited to 107 bytes.
        let socket_len = socket_dir.as_os_str().len() + "/.s.PGSQL.65535".len();
        assert!(
            socket_len < 100,
            "pgharbor-testkit: socket path under {} is too long for a unix socket; \
             set PGHARBOR_TEST_TMPDIR to a short directory such as /tmp",
            root.display()
        );
        fs::create_dir(&socket_dir).expect("create socket dir");

        let password = options.password_auth.then(|| {
            options
                .password
                .clone()
                .unwrap_or_else(|| format!("pgh{}", random_hex()))
        });
        let pwfile = root.join("pwfile");
        if let Some(pw) = &password {
            fs::write(&pwfile, format!("{pw}\n")).expect("write pwfile");
            fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600)).expect("chmod pwfile");
        }
        if let Some((uid, gid)) = run_as {
            for p in [&root, &socket_dir, &pwfile] {
                if p.exists() {
                    std::os::unix::fs::chown(p, Some(uid), Some(gid))
                        .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", p.display()));
                }
            }
        }

        let mut cluster = Cluster {
            flavor,
            bin_dir,
            major_version,
            port: 0,
            password,
            run_as,
            data_dir,
            socket_dir,
            log_file,
            state: Mutex::new(State {
                running: false,
                watchdog: None,
            }),
            dir,
        };
        // From here on, an abandoned cluster (a panic in another thread that
        // ends the process, a killed test) is cleaned up by the watchdog.
        cluster.spawn_watchdog();

        // initdb
        let mut initdb = cluster.server_command("initdb");
        initdb
            .arg("-D")
            .arg(&cluster.data_dir)
            .args([
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .arg("--auth-local=trust")
            .arg(if cluster.password.is_some() {
                "--auth-host=scram-sha-256"
            } else {
                "--auth-host=trust"
            });
        if cluster.password.is_some() {
            initdb.arg(format!("--pwfile={}", pwfile.display()));
        }
        let out = run(&mut initdb);
        if !out.status.success() {
            let hint = if run_as.is_some() {
                format!(
                    "\n(running as root: initdb ran as user postgres, which must be able to reach {}; \
                     set PGHARBOR_TEST_TMPDIR to move it)",
                    cluster.dir.path().display()
                )
            } else {
                String::new()
            };
            panic!(
                "pgharbor-testkit: initdb ({}) failed: {}\n{}{}{hint}",
                cluster.bin_dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = fs::remove_file(&pwfile);

        cluster.write_config(&options);
        cluster.start_on_free_port();
        cluster
    }

    fn write_config(&self, options: &ClusterOptions) {
        let mut conf = String::from("\n# --- pgharbor-testkit ---\n");
        let socket = self.socket_dir.to_str().expect("socket dir is UTF-8");
        let settings: Vec<(&str, &str)> = vec![
            ("listen_addresses", "127.0.0.1"),
            ("unix_socket_directories", socket),
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("shared_buffers", "32MB"),
            ("max_connections", "50"),
            ("max_wal_size", "1GB"),
            ("password_encryption", "scram-sha-256"),
            ("logging_collector", "off"),
        ];
        for (k, v) in settings {
            let _ = writeln!(conf, "{k} = {}", quote_conf(v));
        }
        for (k, v) in &options.extra_conf {
            let _ = writeln!(conf, "{k} = {}", quote_conf(v));
        }
        let conf_path = self.data_dir.join("postgresql.conf");
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&conf_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", conf_path.display()));
        f.write_all(conf.as_bytes())
            .expect("append postgresql.conf");

        let hba = match &options.hba_lines {
            Some(lines) => lines.join("\n") + "\n",
            None => {
                let method = if self.password.is_some() {
                    "scram-sha-256"
                } else {
                    "trust"
                };
                format!(
                    "# pgharbor-testkit\n\
                     local all all trust\n\
                     local replication all trust\n\
                     host all all 127.0.0.1/32 {method}\n\
                     host all all ::1/128 {method}\n\
                     host replication all 127.0.0.1/32 {method}\n"
                )
            }
        };
        // Truncate in place so ownership and mode stay those initdb gave it.
        fs::write(self.data_dir.join("pg_hba.conf"), hba).expect("write pg_hba.conf");

        for (rel, contents) in &options.data_files {
            let path = self.data_dir.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).expect("create data file dir");
            }
            fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod data file");
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown data file");
            }
        }
    }

    fn start_on_free_port(&mut self) {
        let mut last_log = String::new();
        for _ in 0..10 {
            let port = free_port();
            match self.pg_ctl_start(port) {
                Ok(()) => {
                    self.port = port;
                    self.state().running = true;
                    return;
                }
                Err(log) => {
                    let lower = log.to_lowercase();
                    let port_taken = lower.contains("could not bind")
                        || lower.contains("address already in use")
                        || lower.contains("could not create any tcp/ip sockets")
                        || lower.contains("is another postmaster already running on port");
                    last_log = log;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!(
            "pgharbor-testkit: {:?} server did not start ({}).\n{last_log}",
            self.flavor,
            self.bin_dir.display()
        );
    }

    /// `pg_ctl start` on `port`; on failure, the tail of the server log and
    /// pg_ctl's output.
    fn pg_ctl_start(&self, port: u16) -> Result<(), String> {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&self.log_file)
            .args(["-w", "-t", "60", "-o", &format!("-p {port}"), "start"]);
        let out = run(&mut cmd);
        if out.status.success() {
            return Ok(());
        }
        // Make sure nothing is left half-started before trying again.
        let _ = run(self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "stop"]));
        Err(format!(
            "pg_ctl: {}{}\n--- server log (tail) ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&fs::read_to_string(&self.log_file).unwrap_or_default(), 40)
        ))
    }

    fn spawn_watchdog(&self) {
        // Stops the server and removes the directory once the test process is
        // gone without having dropped the cluster (statics, killed processes).
        let script = r#"pid=$1; dir=$2; data=$3; shift 3
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
"$@" -D "$data" -m immediate -w stop >/dev/null 2>&1
rm -rf "$dir""#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg("pgharbor-testkit-watchdog")
            .arg(std::process::id().to_string())
            .arg(self.dir.path())
            .arg(&self.data_dir);
        if self.run_as.is_some() {
            cmd.arg(runuser_path()).args(["-u", "postgres", "--"]);
        }
        cmd.arg(self.bin_dir.join("pg_ctl"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Without a watchdog the cluster is still stopped on drop.
        if let Ok(child) = cmd.spawn() {
            self.state().watchdog = Some(child);
        }
    }

    /// A command for one of the server binaries, run as `postgres` when we are
    /// root, with the caller's `PG*` environment removed.
    fn server_command(&self, bin: &str) -> Command {
        let mut cmd = if self.run_as.is_some() {
            let mut c = Command::new(runuser_path());
            c.args(["-u", "postgres", "--"]).arg(self.bin_dir.join(bin));
            c
        } else {
            Command::new(self.bin_dir.join(bin))
        };
        clear_pg_env(&mut cmd);
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// The mutable state; a panic while it was held does not matter to us.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The flavor this cluster was started with.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The TCP port the server listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TCP host: always `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The directory holding the server's unix socket (`.s.PGSQL.<port>`);
    /// usable as a libpq `host`.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The superuser's name (always [`SUPERUSER`], `postgres`).
    pub fn superuser(&self) -> &'static str {
        SUPERUSER
    }

    /// The superuser's password, when the cluster uses password authentication.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// A TCP connection URL for database `db` as the superuser:
    /// `postgresql://postgres[:password]@127.0.0.1:PORT/db`, with user,
    /// password and database percent-encoded.
    pub fn url(&self, db: &str) -> String {
        let mut url = format!("postgresql://{}", percent_encode(SUPERUSER));
        if let Some(pw) = &self.password {
            url.push(':');
            url.push_str(&percent_encode(pw));
        }
        let _ = write!(url, "@{}:{}/{}", self.host(), self.port, percent_encode(db));
        url
    }

    /// The directory holding this cluster's binaries (`psql`, `pg_dump`, …).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The path of one of this cluster's binaries, e.g. `bin("pg_dump")`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// The server's major version (15, 16, …), read from `postgres --version`.
    pub fn major_version(&self) -> u32 {
        self.major_version
    }

    /// Whether the server is running (false after [`Cluster::stop`]).
    pub fn is_running(&self) -> bool {
        self.state().running
    }

    /// `CREATE DATABASE "name"` (owned by the superuser).
    pub fn create_database(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {}", quote_ident(name)),
        );
    }

    /// Stop the server cleanly (`pg_ctl stop -m fast`: sessions are ended,
    /// everything committed is kept), for tests that need an unreachable
    /// server. The port is then free; [`Cluster::restart`] starts it again.
    /// Does nothing when already stopped.
    pub fn stop(&self) {
        self.stop_mode("fast");
    }

    /// Ask for a smart shutdown and return at once (`pg_ctl stop -m smart
    /// -W`): the server then refuses new sessions with "the database system
    /// is shutting down" (SQLSTATE 57P03) and stops when its last session
    /// ends. Dropping the cluster still cleans up.
    pub fn begin_smart_shutdown(&self) {
        let out = run(self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "smart", "-W", "stop"]));
        assert!(
            out.status.success(),
            "pgharbor-testkit: pg_ctl stop -m smart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kill the server without a shutdown checkpoint (`pg_ctl stop -m
    /// immediate`), like a crash: [`Cluster::restart`] then runs crash
    /// recovery. With the harness's `synchronous_commit = off`, the last few
    /// hundred milliseconds of commits may be lost.
    pub fn crash(&self) {
        self.stop_mode("immediate");
    }

    fn stop_mode(&self, mode: &str) {
        let mut state = self.state();
        if !state.running {
            return;
        }
        let out = run(self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", mode, "-w", "-t", "30", "stop"]));
        if !out.status.success() {
            // Last resort: kill the postmaster named in postmaster.pid.
            if let Ok(pidfile) = fs::read_to_string(self.data_dir.join("postmaster.pid")) {
                if let Some(pid) = pidfile.lines().next().map(str::trim) {
                    let _ = Command::new("kill")
                        .args(["-KILL", pid])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        state.running = false;
    }

    /// Start the server again after [`Cluster::stop`] or [`Cluster::crash`],
    /// on the same port (stopping it first if it is running).
    pub fn restart(&self) {
        self.stop();
        let mut state = self.state();
        if let Err(log) = self.pg_ctl_start(self.port) {
            panic!(
                "pgharbor-testkit: restart on port {} failed:\n{log}",
                self.port
            );
        }
        state.running = true;
    }

    /// The server log written so far (useful in assertion messages).
    pub fn server_log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// A `tokio_postgres` configuration for database `db` over TCP as the
    /// superuser (with the password when there is one).
    pub fn tokio_config(&self, db: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(self.host())
            .port(self.port)
            .user(SUPERUSER)
            .dbname(db)
            .application_name("pgharbor-testkit")
            .connect_timeout(Duration::from_secs(10));
        if let Some(pw) = &self.password {
            config.password(pw.as_bytes());
        }
        config
    }

    /// Connect to database `db` over TCP as the superuser; the connection
    /// task is spawned on the current tokio runtime. Panics on failure.
    pub async fn client(&self, db: &str) -> tokio_postgres::Client {
        let (client, connection) = self
            .tokio_config(db)
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("pgharbor-testkit: connect to {}: {e}", self.url(db)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("pgharbor-testkit: connection error: {e}");
            }
        });
        client
    }

    /// Run `sql` (one or more statements) in database `db` with the
    /// cluster's own `psql` over the unix socket, stopping at the first
    /// error. Returns the output unaligned, tuples only (`-At`), without the
    /// trailing newline: `psql("postgres", "SELECT 1, 2")` gives `"1|2"`.
    /// Panics when psql fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("pgharbor-testkit: psql failed in {db}: {e}\nSQL: {sql}"))
    }

    /// Like [`Cluster::psql`], but returns psql's error output instead of
    /// panicking when it fails.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new(self.bin("psql"));
        clear_pg_env(&mut cmd);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                db,
                "-f",
                "-",
            ])
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGAPPNAME", "pgharbor-testkit")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(pw) = &self.password {
            cmd.env("PGPASSWORD", pw);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("pgharbor-testkit: run {}: {e}", self.bin("psql").display())
        });
        {
            let mut stdin = child.stdin.take().expect("psql stdin");
            // psql may exit early on error; a broken pipe is reported below.
            let _ = stdin.write_all(sql.as_bytes());
        }
        let out = child.wait_with_output().expect("wait for psql");
        if out.status.success() {
            let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
            while s.ends_with('\n') {
                s.pop();
            }
            Ok(s)
        } else {
            Err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            ))
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.crash();
        if let Some(mut child) = self.state().watchdog.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // `dir` (TempDir) is dropped next and removes everything.
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn runuser_path() -> PathBuf {
    [
        "/usr/sbin/runuser",
        "/sbin/runuser",
        "/usr/bin/runuser",
        "/bin/runuser",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| is_executable(p))
    .unwrap_or_else(|| PathBuf::from("runuser"))
}

/// uid and gid of the `postgres` user, from /etc/passwd.
fn postgres_ids() -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 4 && fields[0] == "postgres" {
            if let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse()) {
                return (uid, gid);
            }
        }
    }
    panic!(
        "pgharbor-testkit: running as root, so clusters run as user 'postgres', \
         but there is no such user; run scripts/setup.sh (it installs postgresql-15)"
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("pgharbor-testkit: run {cmd:?}: {e}"))
}

fn clear_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("PG") && !key.starts_with("PGHARBOR") {
            cmd.env_remove(key.as_ref());
        }
    }
}

fn read_major_version(postgres: &Path) -> u32 {
    let out = Command::new(postgres)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "pgharbor-testkit: run {} --version: {e}",
                postgres.display()
            )
        });
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("(PostgreSQL)")
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "pgharbor-testkit: cannot read a version from `{} --version`: {text:?}",
                postgres.display()
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("pgharbor-testkit: bind 127.0.0.1:0 to find a free port")
}

fn random_hex() -> String {
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u32(std::process::id());
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        let _ = write!(out, "{:016x}", h.finish());
    }
    out
}

fn quote_conf(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("p@ss:w/rd é"), "p%40ss%3Aw%2Frd%20%C3%A9");
        assert_eq!(percent_encode("plain-1.2_~"), "plain-1.2_~");
    }

    #[test]
    fn conf_quoting() {
        assert_eq!(quote_conf("64MB"), "'64MB'");
        assert_eq!(quote_conf("it's"), "'it''s'");
    }

    #[test]
    fn random_passwords_differ() {
        assert_ne!(random_hex(), random_hex());
        assert_eq!(random_hex().len(), 32);
    }
}
