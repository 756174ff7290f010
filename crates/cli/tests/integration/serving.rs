//! Shared helpers for `pgharbor serve`: a running server killed on drop
//! (its log kept in a file), raw HTTP/1.1 requests with any headers, and a
//! strict Prometheus text-format parser.

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

/// A response: the status, the headers (lower-case names; repeated ones
/// joined with `, `) and the body.
pub type Response = (u16, BTreeMap<String, String>, String);

/// Splits a raw HTTP/1.1 response into a [`Response`].
pub fn parse_response(raw: &str) -> Response {
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
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in lines.filter_map(|l| l.split_once(':')) {
        headers
            .entry(k.trim().to_ascii_lowercase())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(v.trim());
            })
            .or_insert_with(|| v.trim().to_owned());
    }
    (status, headers, body.to_owned())
}

/// The head of one request with `Connection: close`; `headers` may hold a
/// `Host` of their own, else the address is sent.
pub fn request_head(method: &str, path: &str, addr: &str, headers: &[(&str, &str)]) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    head
}

/// A running `pgharbor serve`, killed on drop.
pub struct Serve {
    child: Child,
    addr: String,
    scheme: &'static str,
    banner: String,
    secrets: Vec<String>,
    dir: tempfile::TempDir,
}

impl Serve {
    /// Starts `pgharbor serve` on `config` with `env`; no response and no
    /// line it prints may contain any of `secrets`.
    pub fn start(config: &str, env: &[(&str, &str)], secrets: &[&str]) -> Serve {
        let serve = Serve::try_start(config, env, "127.0.0.1:0").unwrap_or_else(|err| {
            panic!("pgharbor serve did not start: {err}");
        });
        serve.with_secrets(secrets)
    }

    /// Starts `pgharbor serve` on `config` with `env` and `--listen listen`;
    /// `Err` holds its exit status and what it printed when it stopped
    /// without serving. Its log goes to a file ([`Serve::log`]).
    pub fn try_start(config: &str, env: &[(&str, &str)], listen: &str) -> Result<Serve, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgharbor.toml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgharbor"))
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--listen", listen])
            .env_remove("DATABASE_URL")
            .env_remove("PGPASSWORD")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start pgharbor serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let status = child.wait().unwrap();
            let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
            return Err(format!("{status}: {log}"));
        }
        let (scheme, addr) = ["https", "http"]
            .into_iter()
            .find_map(|scheme| {
                let rest = line.split(&format!("{scheme}://")).nth(1)?;
                Some((scheme, rest.split_whitespace().next()?.to_owned()))
            })
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Ok(Serve {
            child,
            addr,
            scheme,
            banner: line,
            secrets: Vec::new(),
            dir,
        })
    }

    /// The same server, checking that no response and no line it printed
    /// contains any of `secrets`.
    pub fn with_secrets(mut self, secrets: &[&str]) -> Serve {
        self.secrets = secrets.iter().map(|s| (*s).to_owned()).collect();
        assert_no_secret(&self.banner, &self.secrets);
        self
    }

    /// The line it printed when it started.
    pub fn banner(&self) -> &str {
        &self.banner
    }

    /// `host:port` it listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// What it logged so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap()
    }

    /// One plain HTTP/1.1 request.
    pub fn request(&self, method: &str, path: &str) -> Response {
        self.request_with(method, path, &[])
    }

    /// One plain HTTP/1.1 request with `headers`.
    pub fn request_with(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut s = TcpStream::connect(&self.addr).expect("connect to serve");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(request_head(method, path, &self.addr, headers).as_bytes())
            .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read response");
        let response = parse_response(&raw);
        assert_no_secret(&response.2, &self.secrets);
        response
    }

    /// GET `path`, which must answer 200.
    pub fn get(&self, path: &str) -> String {
        self.get_with(path, &[])
    }

    /// GET `path` with `headers`, which must answer 200.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> String {
        let (status, _, body) = self.request_with("GET", path, headers);
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
