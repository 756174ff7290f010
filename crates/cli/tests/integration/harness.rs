//! Shared helpers: running the binary, building SQLite files, querying targets.
//!
//! # Servers
//!
//! A test that needs nothing server-wide (no roles, restarts, settings,
//! killed sessions, full disks or lists of databases) takes
//! [`databases`]`(flavor)`: fresh, uniquely named databases on the one server
//! of that flavour `scripts/test.sh` starts for the whole run
//! (`$PGHARBOR_TEST_PG15_URL`, `$PGHARBOR_TEST_PG16_URL`), dropped when the
//! test passes and kept for a look when it fails. `pg.url("app")` and
//! `pg.psql("app", …)` name the test's own `app` (`t<pid>…_app` on the
//! server), so concurrent tests never meet; assertions on a message that
//! names the database use `pg.name("app")`. Without the variables (a plain
//! `cargo nextest run`), each such test starts a cluster of its own, as
//! [`cluster`] always does for the tests that need one.

use pgharbor_testkit::{Cluster, Flavor, TestDatabases};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A finished run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Wait for a run started with [`pgharbor_started`].
    pub fn finished(child: std::process::Child) -> Run {
        Run::from(child.wait_with_output().expect("wait for pgharbor"))
    }

    /// Everything the run printed.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panic with the output unless the run exited 0.
    pub fn success(self) -> Run {
        assert_eq!(self.code, 0, "pgharbor failed:\n{}", self.all());
        self
    }

    /// Panic unless the run exited with `code` and its stderr names every
    /// one of `needles`.
    pub fn fails_with(self, code: i32, needles: &[&str]) -> Run {
        assert_eq!(self.code, code, "{}", self.all());
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "{needle:?} not in:\n{}",
                self.stderr
            );
        }
        self
    }
}

/// The `pgharbor` binary with `args`, and no DATABASE_URL or PGPASSWORD
/// from the test's environment.
pub fn pgharbor_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pgharbor"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PGPASSWORD");
    command
}

/// Run `pgharbor` with `args` and no DATABASE_URL.
pub fn pgharbor(args: &[&str]) -> Run {
    Run::from(pgharbor_command(args).output().expect("run pgharbor"))
}

/// A target URL nothing listens on, for runs refused before they connect.
pub const UNREACHABLE: &str = "postgresql://nobody@127.0.0.1:1/x";

/// `pgharbor migrate SOURCE TARGET EXTRA…`.
pub fn migrate(source: &Path, target: &str, extra: &[&str]) -> Run {
    let args = [&["migrate", source.to_str().unwrap(), target][..], extra].concat();
    pgharbor(&args)
}

/// `pgharbor migrate SOURCE TARGET --preset PRESET EXTRA…`.
pub fn migrate_with_preset(source: &Path, target: &str, preset: &str, extra: &[&str]) -> Run {
    migrate(source, target, &[&["--preset", preset][..], extra].concat())
}

/// Start pgharbor in the background (stdout and stderr captured), for tests
/// that watch the target while it runs; [`Run::finished`] collects it.
pub fn pgharbor_started(args: &[&str]) -> std::process::Child {
    pgharbor_command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pgharbor")
}

/// A throwaway directory that lives as long as the value.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A SQLite file built by running `sql`.
    pub fn sqlite(&self, name: &str, sql: &str) -> PathBuf {
        let path = self.path(name);
        let conn = rusqlite::Connection::open(&path).expect("create sqlite");
        conn.execute_batch(sql).expect("fixture SQL");
        path
    }
}

/// A PostgreSQL 15 cluster of the test's own, for tests that change the
/// server (see the overview; the others take [`databases`]).
pub fn cluster() -> Cluster {
    Cluster::start(Flavor::Pg15)
}

/// This test's fresh databases on the run's shared server of `flavor`, or on
/// a cluster of its own when no shared server runs (see the overview).
pub fn databases(flavor: Flavor) -> TestDatabases {
    TestDatabases::on(flavor)
}

/// Where [`query`] and [`scalar`] connect: a cluster of the test's own, or
/// the test's databases on a shared server.
pub trait Target {
    /// How to reach database `db` (as the test names it) as the superuser,
    /// as the session `pgharbor-testkit`.
    fn config_of(&self, db: &str) -> tokio_postgres::Config;
}

impl Target for Cluster {
    fn config_of(&self, db: &str) -> tokio_postgres::Config {
        self.tokio_config(db)
    }
}

impl Target for TestDatabases {
    fn config_of(&self, db: &str) -> tokio_postgres::Config {
        let url = self.url(db);
        let mut config: tokio_postgres::Config =
            url.parse().unwrap_or_else(|e| panic!("URL {url}: {e}"));
        config
            .application_name("pgharbor-testkit")
            .connect_timeout(std::time::Duration::from_secs(10));
        config
    }
}

/// Run a query in `db` and return every row as a `|`-joined string of text values.
pub fn query(target: &impl Target, db: &str, sql: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = target.config_of(db);
    rt.block_on(async {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to database {db}: {e}"));
        tokio::spawn(connection);
        let rows = client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("query {sql}: {e:?}"));
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
                _ => None,
            })
            .collect()
    })
}

/// A session of the test's own, open (with its transaction and locks)
/// until dropped: to make a run wait at a lock for as long as the test says.
pub struct Session {
    client: tokio_postgres::Client,
    runtime: tokio::runtime::Runtime,
}

impl Session {
    /// Connect to database `db` of `target`.
    pub fn open(target: &impl Target, db: &str) -> Session {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let config = target.config_of(db);
        let client = runtime.block_on(async {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connect to database {db}: {e}"));
            tokio::spawn(connection);
            client
        });
        Session { client, runtime }
    }

    /// Run `sql` (one or more statements).
    pub fn run(&self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }
}

/// Wait until `query` (one row, one column) returns something other than
/// `nothing`, and return it; panics when `child` (the run the test waits
/// for, if any) ends first, or after a minute.
pub fn wait_for_value(
    target: &impl Target,
    db: &str,
    query: &str,
    nothing: &str,
    mut child: Option<&mut std::process::Child>,
) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let value = scalar(target, db, query);
        if value != nothing {
            return value;
        }
        if let Some(status) = child
            .as_mut()
            .and_then(|c| c.try_wait().expect("poll pgharbor"))
        {
            panic!("pgharbor ended ({status}) before {query} returned anything but {nothing}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{query} still returns {nothing}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The single value of a one-row, one-column query.
pub fn scalar(target: &impl Target, db: &str, sql: &str) -> String {
    let rows = query(target, db, sql);
    assert_eq!(rows.len(), 1, "{sql} returned {rows:?}");
    rows.into_iter().next().expect("one row")
}

/// Every index of database `db`'s public schema, one line each: table,
/// name, tablespace (`-` for the default) and definition.
pub fn index_definitions(target: &impl Target, db: &str) -> Vec<String> {
    query(
        target,
        db,
        "SELECT tablename || ' ' || indexname || ' ' || coalesce(tablespace, '-') || ' ' || indexdef \
         FROM pg_indexes WHERE schemaname = 'public' ORDER BY tablename, indexname",
    )
}

/// Contents of a database file and its `-wal` (the `-shm` index is shared memory readers may touch).
pub fn fingerprint(path: &Path) -> Vec<(String, usize, Vec<usize>)> {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            std::fs::read(&p).ok().map(|b| {
                // Length plus the positions of non-zero bytes' checksum per 4 KiB page keeps failures readable.
                let pages = b
                    .chunks(4096)
                    .map(|page| {
                        page.iter()
                            .fold(0usize, |h, x| h.wrapping_mul(31).wrapping_add(*x as usize))
                    })
                    .collect();
                (suffix.to_string(), b.len(), pages)
            })
        })
        .collect()
}

/// Run `pgharbor` with `args`, no DATABASE_URL or PGPASSWORD unless `env`
/// sets them, the variables in `env`, and `stdin` as standard input.
pub fn pgharbor_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    use std::io::Write as _;
    let mut cmd = pgharbor_command(args);
    cmd.envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run pgharbor");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    Run::from(child.wait_with_output().expect("wait for pgharbor"))
}

/// [`pgharbor_with`] (no standard input) started by a shell that first sets
/// `umask`, e.g. `022`, under which new files are readable by everyone
/// unless created with a mode that says otherwise.
pub fn pgharbor_under_umask(umask: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new("sh")
        .args(["-c", "umask \"$0\" && exec \"$@\"", umask])
        .arg(env!("CARGO_BIN_EXE_pgharbor"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PGPASSWORD")
        .envs(env.iter().copied())
        .output()
        .expect("run pgharbor through sh");
    Run::from(output)
}

/// A small tmpfs for a test cluster's tablespace, unmounted on drop: a real
/// full disk (`ENOSPC` from the kernel, SQLSTATE 53100 from PostgreSQL) for
/// a few megabytes of memory. Mounting needs root, which the harness runs as.
pub struct SmallDisk {
    pub path: std::path::PathBuf,
}

impl SmallDisk {
    pub fn mount(path: std::path::PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0777"),
                "tmpfs",
            ])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a small tmpfs needs root (the test harness runs as root)"
        );
        // The server runs as `postgres` and must own its tablespace directory.
        let owned = std::process::Command::new("chown")
            .arg("postgres:postgres")
            .arg(&path)
            .status()
            .expect("run chown");
        assert!(owned.success(), "chown of the tmpfs to postgres failed");
        SmallDisk { path }
    }

    /// Grow the volume to `size` (`64M`), as a full disk's message asks.
    pub fn grow(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(status.success(), "remounting {}", self.path.display());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `run` failed (exit 1) to reach a server at 127.0.0.1:`port`, saying
/// where once and the refusal once.
pub fn assert_refused_once(run: &Run, port: u16) {
    assert_eq!(run.code, 1, "{}", run.all());
    let endpoint = format!("could not connect to the server at 127.0.0.1:{port}: ");
    assert_eq!(run.stderr.matches(&endpoint).count(), 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("Connection refused").count(),
        1,
        "{}",
        run.stderr
    );
}
