//! A server process for tests ([`crate::S3Server`], [`crate::AzuriteServer`]):
//! started on a free port of `127.0.0.1` in a temporary directory, its
//! output in a log file there, awaited until it accepts connections, killed
//! on drop, and killed (its directory removed) by a watchdog shell process
//! if the test process dies first. Also a minimal HTTP/1.1 client for
//! setting the servers up.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process, killed on drop.
#[derive(Debug)]
pub(crate) struct Service {
    name: &'static str,
    port: u16,
    child: Child,
    watchdog: Option<Child>,
    dir: tempfile::TempDir,
}

impl Service {
    /// Runs `program` with the arguments `args(port, dir)` until it listens
    /// on its port; retries on another port when it exits early (a port
    /// taken meanwhile). Panics naming `name` and its log otherwise.
    pub(crate) fn start(
        name: &'static str,
        program: &Path,
        args: impl Fn(u16, &Path) -> Vec<String>,
    ) -> Service {
        assert!(
            program.exists(),
            "pgharbor-testkit: {} not found; run scripts/setup.sh (it installs {name})",
            program.display()
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("pgh-{name}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("pgharbor-testkit: tempdir for {name}: {e}"));
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = crate::free_port();
            match spawn(program, &args(port, dir.path()), dir.path(), port) {
                Ok(child) => {
                    let mut service = Service {
                        name,
                        port,
                        child,
                        watchdog: None,
                        dir,
                    };
                    service.spawn_watchdog();
                    return service;
                }
                Err(e) => last_error = e,
            }
        }
        panic!("pgharbor-testkit: {name} did not start: {last_error}");
    }

    fn spawn_watchdog(&mut self) {
        let script = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
kill -9 "$2" 2>/dev/null; sleep 1; rm -rf "$3""#;
        self.watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(format!("pgharbor-testkit-{}-watchdog", self.name))
            .arg(std::process::id().to_string())
            .arg(self.child.id().to_string())
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's output so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(log_path(self.dir.path())).unwrap_or_default()
    }

    /// One HTTP request to the server; panics on a transport failure.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http(self.port, method, path, headers, body).unwrap_or_else(|e| {
            panic!(
                "pgharbor-testkit: {method} {path} to {} failed: {e}\nlog:\n{}",
                self.name,
                crate::tail(&self.log(), 30)
            )
        })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("server.log")
}

fn spawn(program: &Path, args: &[String], dir: &Path, port: u16) -> Result<Child, String> {
    let log = std::fs::File::create(log_path(dir)).map_err(|e| e.to_string())?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| format!("run {}: {e}", program.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log_path(dir)).unwrap_or_default();
            return Err(format!("exited with {status}: {}", crate::tail(&log, 30)));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("did not listen within 60 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP response: status code and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// A minimal HTTP/1.1 request over plain TCP (`Connection: close`, the body
/// read to the end; enough for the servers' setup calls).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {}", crate::tail(&text, 5)))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok(Response { status, body })
}
