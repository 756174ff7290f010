//! Shared helpers for `pgharbor serve`: a running server killed on drop,
//! raw HTTP/1.1 requests, and a strict Prometheus text-format parser.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One `GET path` to `addr` (`host:port`); the raw response, head and body.
pub fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    raw
}

fn assert_no_secret(text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(!text.contains(secret.as_str()), "a secret leaked: {text}");
    }
}

/// A running `pgharbor serve`, killed on drop.
pub struct Serve {
    child: Child,
    addr: String,
    secrets: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// Starts `pgharbor serve` on `config` with `env`; no response and no
    /// line it prints may contain any of `secrets`.
    pub fn start(config: &str, env: &[(&str, &str)], secrets: &[&str]) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgharbor.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgharbor"))
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("DATABASE_URL")
            .env_remove("PGPASSWORD")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pgharbor serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("pgharbor serve did not start: {err}");
        }
        let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
        assert_no_secret(&line, &secrets);
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Serve {
            child,
            addr,
            secrets,
            _dir: dir,
        }
    }

    /// The URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// One HTTP/1.1 request; returns the status, the headers (lower-case names) and the body.
    pub fn request(&self, method: &str, path: &str) -> (u16, BTreeMap<String, String>, String) {
        let mut s = TcpStream::connect(&self.addr).expect("connect to serve");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read response");
        let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        assert_no_secret(body, &self.secrets);
        (status, headers, body.to_owned())
    }

    /// GET `path`, which must answer 200.
    pub fn get(&self, path: &str) -> String {
        let (status, _, body) = self.request("GET", path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed sample: name, labels, value.
pub type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the Prometheus text format strictly enough to catch malformed output:
/// every sample's family has `# HELP` and `# TYPE` lines before it.
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut typed = std::collections::BTreeSet::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            typed.insert(parts.next().unwrap().to_owned());
            assert!(matches!(parts.next(), Some("gauge" | "counter")), "{line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.insert(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "unexpected line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name {name}"
        );
        assert!(
            typed.contains(name) && helped.contains(name),
            "{name} has no TYPE/HELP"
        );
        let mut map = BTreeMap::new();
        let mut rest = labels;
        while !rest.is_empty() {
            let (k, after) = rest.split_once("=\"").expect("label=\"");
            let mut value = String::new();
            let mut chars = after.char_indices();
            let mut end = after.len();
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        let (_, e) = chars.next().unwrap();
                        value.push(if e == 'n' { '\n' } else { e });
                    }
                    '"' => {
                        end = i;
                        break;
                    }
                    c => value.push(c),
                }
            }
            map.insert(k.to_owned(), value);
            rest = after[end + 1..].trim_start_matches(',');
        }
        out.push((name.to_owned(), map, value));
    }
    out
}

/// The value of the first sample of `name` carrying `labels`.
pub fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}
