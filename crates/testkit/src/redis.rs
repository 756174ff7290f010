//! Throwaway Redis servers: [`RedisServer::start`] runs `redis-server` on a
//! free port of `127.0.0.1`, persisting nothing, in a temporary directory;
//! dropping it kills the server. Optional `requirepass`, an ACL user and TLS.
//!
//! ```no_run
//! use pgharbor_testkit::{RedisOptions, RedisServer};
//!
//! let plain = RedisServer::start();
//! let url = plain.url(); // redis://127.0.0.1:PORT
//! let guarded = RedisServer::start_with(RedisOptions {
//!     requirepass: Some("s3cret".into()),
//!     acl_user: Some(("app".into(), "apppw".into())),
//!     ..Default::default()
//! });
//! assert!(guarded.url().contains(":s3cret@"));
//! ```
//!
//! The binary is `$PGHARBOR_REDIS_SERVER`, else `/usr/bin/redis-server`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Settings for [`RedisServer::start_with`].
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    /// `requirepass`: the default user needs this password.
    pub requirepass: Option<String>,
    /// An ACL user `(name, password)` allowed every command and key.
    pub acl_user: Option<(String, String)>,
    /// TLS only (no plain port): the server's certificate and key, PEM.
    pub tls: Option<(String, String)>,
    /// Extra `--name value` settings, e.g. `("maxmemory", "10mb")`.
    pub extra: Vec<(String, String)>,
}

/// A running throwaway Redis server, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    options: RedisOptions,
    child: Child,
    watchdog: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A server without password or TLS.
    pub fn start() -> RedisServer {
        RedisServer::start_with(RedisOptions::default())
    }

    /// A server with `options`. Panics when `redis-server` is missing or does not start.
    pub fn start_with(options: RedisOptions) -> RedisServer {
        let bin = std::env::var_os("PGHARBOR_REDIS_SERVER")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/redis-server"));
        assert!(
            bin.exists(),
            "pgharbor-testkit: {} not found; install Debian's redis-server (scripts/setup.sh does)",
            bin.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("pgh-redis-")
            .tempdir()
            .expect("tempdir for redis");
        let mut last_error = String::new();
        for _ in 0..10 {
            let port = crate::free_port();
            match spawn(&bin, dir.path(), port, &options) {
                Ok(child) => {
                    let mut server = RedisServer {
                        port,
                        options: options.clone(),
                        child,
                        watchdog: None,
                        dir,
                    };
                    server.spawn_watchdog();
                    return server;
                }
                Err(e) => last_error = e,
            }
        }
        panic!("pgharbor-testkit: redis-server did not start: {last_error}");
    }

    fn spawn_watchdog(&mut self) {
        let script =
            r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -9 "$2" 2>/dev/null"#;
        self.watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("pgharbor-testkit-redis-watchdog")
            .arg(std::process::id().to_string())
            .arg(self.child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
    }

    /// The TCP port (the TLS port when TLS is on).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://[:requirepass@]127.0.0.1:PORT` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        match &self.options.requirepass {
            Some(pw) => format!("{scheme}://:{pw}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// The URL without any password.
    pub fn url_without_password(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The temporary directory (certificates and the log live here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Runs one command over plain TCP (as the default user, authenticating
    /// with `requirepass` when set) and returns the raw reply. Not for TLS servers.
    pub fn command(&self, args: &[&str]) -> String {
        assert!(
            self.options.tls.is_none(),
            "command() speaks plain TCP only"
        );
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut send = |parts: &[&str]| {
            let mut buf = format!("*{}\r\n", parts.len());
            for p in parts {
                buf.push_str(&format!("${}\r\n{p}\r\n", p.len()));
            }
            s.write_all(buf.as_bytes()).expect("write to redis");
            let mut out = vec![0u8; 64 * 1024];
            let n = s.read(&mut out).expect("read from redis");
            String::from_utf8_lossy(&out[..n]).into_owned()
        };
        if let Some(pw) = &self.options.requirepass {
            let r = send(&["AUTH", pw]);
            assert!(r.starts_with("+OK"), "AUTH failed: {r}");
        }
        send(args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

fn spawn(bin: &Path, dir: &Path, port: u16, o: &RedisOptions) -> Result<Child, String> {
    let mut cmd = Command::new(bin);
    cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .args(["--daemonize", "no", "--protected-mode", "no"]);
    if let Some((cert, key)) = &o.tls {
        std::fs::write(dir.join("server.crt"), cert).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("server.key"), key).map_err(|e| e.to_string())?;
        cmd.args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(dir.join("server.crt"))
            .arg("--tls-key-file")
            .arg(dir.join("server.key"))
            .args(["--tls-auth-clients", "no"]);
    } else {
        cmd.args(["--port", &port.to_string()]);
    }
    if let Some(pw) = &o.requirepass {
        cmd.args(["--requirepass", pw]);
    }
    if let Some((user, pw)) = &o.acl_user {
        cmd.args(["--user", user, "on", &format!(">{pw}"), "~*", "&*", "+@all"]);
    }
    for (k, v) in &o.extra {
        cmd.arg(format!("--{k}")).arg(v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("run {}: {e}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
            return Err(format!("exited with {status}: {log}"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // Listening; with TLS the port answering is all we check here.
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("did not listen within 20 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
