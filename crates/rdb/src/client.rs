//! A small Redis client: URLs, RESP2 over TCP or TLS, `AUTH`, `INFO`,
//! pipelining, and raw access to the byte stream for the replication
//! handshake. Shared by the health probes (pgharbor-health) and snapshots.
//!
//! Why our own client instead of the `redis` crate: pgharbor needs a handful
//! of commands, exact control over which reply maps to which result
//! (`-LOADING`, `-NOAUTH`, `-WRONGPASS`, …), the raw replication stream
//! (`SYNC` answers with a bare RDB payload, not a RESP reply), and TLS
//! through the same rustls setup as the PostgreSQL side. The `redis` crate
//! would bring its own TLS stack choice, a connection manager and many
//! dependencies for what is a few hundred lines here.

use crate::error::{RdbError, RdbErrorKind, Result};
use pgharbor_conn::Secret;
use rustls::pki_types::ServerName;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Default Redis port.
pub const DEFAULT_REDIS_PORT: u16 = 6379;

/// How the server's TLS certificate is checked (`rediss://` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTls {
    /// Plain TCP (`redis://`).
    Off,
    /// TLS, checking the chain and the host name against `roots` (a PEM
    /// file given with `?sslrootcert=FILE`) or the system's roots.
    Verify {
        /// A PEM file of trusted CA certificates; the system's when `None`.
        roots: Option<PathBuf>,
    },
    /// TLS without checking the certificate (`?sslmode=require`, libpq's
    /// meaning): encrypted, but the server is not authenticated.
    NoVerify,
}

/// A parsed `redis://` or `rediss://` URL:
/// `redis[s]://[[user]:password@]host[:port][/db][?sslrootcert=FILE&sslmode=require]`.
///
/// `Display` masks the password as `****`.
#[derive(Clone)]
pub struct RedisUrl {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<Secret>,
    db: u32,
    tls: RedisTls,
}

impl RedisUrl {
    /// Parses a Redis URL. Errors never contain the password.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |m: String| RdbError::new(RdbErrorKind::InvalidInput, m);
        let (tls, rest) = if let Some(rest) = url.strip_prefix("rediss://") {
            (RedisTls::Verify { roots: None }, rest)
        } else if let Some(rest) = url.strip_prefix("redis://") {
            (RedisTls::Off, rest)
        } else {
            return Err(bad(
                "a Redis URL starts with redis:// or rediss:// (TLS)".to_owned()
            ));
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pw) = match u.split_once(':') {
                    Some((user, pw)) => (user, Some(pw)),
                    None => (u, None),
                };
                let user = percent_decode(user)
                    .map_err(|e| bad(format!("invalid Redis URL: user name: {e}")))?;
                let pw = match pw {
                    Some(p) => Some(Secret::new(percent_decode(p).map_err(|e| {
                        bad(format!(
                            "invalid Redis URL: password: {e} (percent-encode it)"
                        ))
                    })?)),
                    None => None,
                };
                // redis://:password@host means the default user.
                let user = (!user.is_empty()).then_some(user);
                // redis://password@host (no colon) is what redis-cli's -u takes as a password.
                match (user, pw) {
                    (Some(u), None) => (None, Some(Secret::new(u))),
                    (u, p) => (u, p),
                }
            }
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, after) = h
                .split_once(']')
                .ok_or_else(|| bad("invalid Redis URL: unclosed [ in the host".to_owned()))?;
            (h.to_owned(), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("invalid Redis URL: no host".to_owned()));
        }
        let port = match port {
            None | Some("") => DEFAULT_REDIS_PORT,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                bad(format!(
                    "invalid Redis URL: port \"{p}\" is not a number from 1 to 65535"
                ))
            })?,
        };
        let db = match path.trim_end_matches('/') {
            "" => 0,
            d => d.parse::<u32>().map_err(|_| {
                bad(format!(
                    "invalid Redis URL: database \"{d}\" is not a number"
                ))
            })?,
        };
        let mut url = RedisUrl {
            host,
            port,
            user,
            password,
            db,
            tls,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).map_err(|e| bad(format!("invalid Redis URL: {k}: {e}")))?;
            match (k, &url.tls) {
                ("sslrootcert", RedisTls::Verify { .. }) => {
                    url.tls = RedisTls::Verify {
                        roots: Some(PathBuf::from(v)),
                    }
                }
                ("sslmode", RedisTls::Verify { .. } | RedisTls::NoVerify) => {
                    url.tls = match v.as_str() {
                        "require" => RedisTls::NoVerify,
                        "verify-full" => url.tls.clone(),
                        other => {
                            return Err(bad(format!(
                                "invalid Redis URL: sslmode={other}; use require (no certificate check) or verify-full"
                            )))
                        }
                    }
                }
                ("sslrootcert" | "sslmode", RedisTls::Off) => {
                    return Err(bad(format!(
                        "invalid Redis URL: {k} needs TLS; use rediss://"
                    )))
                }
                _ => {
                    return Err(bad(format!(
                        "invalid Redis URL: unknown parameter \"{k}\" (known: sslrootcert, sslmode)"
                    )))
                }
            }
        }
        Ok(url)
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ACL user, when one is given.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The password, when one is given.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// The same URL with `password` (from a secret source) when the URL has none.
    pub fn with_fallback_password(mut self, password: Secret) -> Self {
        if self.password.is_none() {
            self.password = Some(password);
        }
        self
    }

    /// The database number (`SELECT`ed after connecting when not 0).
    pub fn db(&self) -> u32 {
        self.db
    }

    /// The TLS setting.
    pub fn tls(&self) -> &RedisTls {
        &self.tls
    }

    /// `host:port`.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for RedisUrl {
    /// The URL with the password shown as `****`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls == RedisTls::Off {
            "redis"
        } else {
            "rediss"
        };
        write!(f, "{scheme}://")?;
        match (&self.user, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:****@")?,
            (Some(u), None) => write!(f, "{u}@")?,
            (None, Some(_)) => write!(f, ":****@")?,
            (None, None) => {}
        }
        write!(f, "{}", self.endpoint())?;
        if self.db != 0 {
            write!(f, "/{}", self.db)?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a % not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after percent-decoding".to_owned())
}

/// One RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR …`: the error line.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$n` bulk string (`None` for the null bulk string).
    Bulk(Option<Vec<u8>>),
    /// `*n` array (`None` for the null array).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text, for simple and bulk strings.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// The error line, when this is an error reply.
    pub fn error(&self) -> Option<&str> {
        match self {
            Reply::Error(e) => Some(e),
            _ => None,
        }
    }
}

/// A TCP or TLS byte stream.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The read buffer: large enough that a snapshot streams in big chunks.
const READ_BUFFER: usize = 64 * 1024;

/// An open connection to a Redis server.
pub struct RedisConn {
    stream: BufReader<Box<dyn Stream>>,
}

/// The largest bulk string accepted (an `INFO` reply is a few KiB).
const MAX_BULK: usize = 64 * 1024 * 1024;

impl RedisConn {
    /// Opens a TCP (and, for `rediss://`, TLS) connection. No command is sent.
    pub async fn connect(url: &RedisUrl) -> Result<Self> {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| {
                RdbError::io(
                    RdbErrorKind::Unreachable,
                    format!("cannot connect to {}", url.endpoint()),
                    e,
                )
            })?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &url.tls {
            RedisTls::Off => Box::new(tcp),
            tls => {
                let config = crate::tls::config(tls)?;
                let name = ServerName::try_from(url.host.clone()).map_err(|_| {
                    RdbError::new(
                        RdbErrorKind::InvalidInput,
                        format!("\"{}\" is not a valid TLS server name", url.host),
                    )
                })?;
                let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
                let stream = connector.connect(name, tcp).await.map_err(|e| {
                    RdbError::io(
                        RdbErrorKind::Unreachable,
                        format!("TLS handshake with {} failed", url.endpoint()),
                        e,
                    )
                })?;
                Box::new(stream)
            }
        };
        Ok(RedisConn {
            stream: BufReader::with_capacity(READ_BUFFER, stream),
        })
    }

    /// Sends one command and reads its reply (error replies are `Ok(Reply::Error)`).
    pub async fn command(&mut self, args: &[&[u8]]) -> Result<Reply> {
        let mut buf = Vec::with_capacity(64);
        encode_command(&mut buf, args);
        self.send(&buf).await?;
        self.read_reply().await
    }

    /// Writes already encoded commands (see [`encode_command`]) without
    /// reading replies: the first half of a pipeline.
    pub async fn send(&mut self, encoded: &[u8]) -> Result<()> {
        let io = |e| RdbError::io(RdbErrorKind::Unreachable, "connection to Redis lost", e);
        self.stream.get_mut().write_all(encoded).await.map_err(io)?;
        self.stream.get_mut().flush().await.map_err(io)
    }

    /// Reads the next reply: the second half of a pipeline.
    pub async fn read_reply(&mut self) -> Result<Reply> {
        Box::pin(read_reply(&mut self.stream)).await
    }

    /// The buffered byte stream, for the replication handshake's raw payload.
    pub(crate) fn stream(&mut self) -> &mut BufReader<Box<dyn Stream>> {
        &mut self.stream
    }

    /// `AUTH [user] password`. `Ok(None)` when accepted, `Ok(Some(error line))` when refused.
    pub async fn auth(&mut self, user: Option<&str>, password: &Secret) -> Result<Option<String>> {
        let reply = match user {
            Some(u) => {
                self.command(&[b"AUTH", u.as_bytes(), password.expose().as_bytes()])
                    .await?
            }
            None => {
                self.command(&[b"AUTH", password.expose().as_bytes()])
                    .await?
            }
        };
        Ok(reply.error().map(str::to_owned))
    }

    /// `INFO` (all default sections), parsed into `section -> key -> value`.
    pub async fn info(&mut self) -> Result<Info> {
        let reply = self.command(&[b"INFO"]).await?;
        match reply {
            Reply::Bulk(Some(b)) => Ok(Info::parse(&String::from_utf8_lossy(&b))),
            Reply::Error(e) => Err(RdbError::new(
                RdbErrorKind::Query,
                format!("INFO failed: {e}"),
            )),
            other => Err(RdbError::new(
                RdbErrorKind::Protocol,
                format!("unexpected reply to INFO: {other:?}"),
            )),
        }
    }
}

/// Appends `args` as one RESP command (an array of bulk strings) to `buf`.
pub fn encode_command(buf: &mut Vec<u8>, args: &[&[u8]]) {
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

pub(crate) async fn read_line<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Result<String> {
    let mut line = Vec::new();
    let n = r
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| RdbError::io(RdbErrorKind::Unreachable, "connection to Redis lost", e))?;
    if n == 0 {
        return Err(RdbError::new(
            RdbErrorKind::Unreachable,
            "the Redis server closed the connection",
        ));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

async fn read_reply<R: AsyncBufReadExt + Unpin + Send>(r: &mut R) -> Result<Reply> {
    let line = read_line(r).await?;
    let protocol = |m: String| RdbError::new(RdbErrorKind::Protocol, m);
    let (tag, rest) = line.split_at(line.chars().next().map_or(0, char::len_utf8));
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| protocol(format!("not a RESP reply: {line:?}")))
    };
    Ok(match tag {
        "+" => Reply::Simple(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Integer(number()?),
        "$" => {
            let n = number()?;
            if n < 0 {
                Reply::Bulk(None)
            } else {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n > MAX_BULK {
                    return Err(protocol(format!("bulk reply of {n} bytes is too large")));
                }
                let mut buf = vec![0u8; n + 2];
                r.read_exact(&mut buf).await.map_err(|e| {
                    RdbError::io(RdbErrorKind::Unreachable, "connection to Redis lost", e)
                })?;
                buf.truncate(n);
                Reply::Bulk(Some(buf))
            }
        }
        "*" => {
            let n = number()?;
            if n < 0 {
                Reply::Array(None)
            } else {
                let mut items = Vec::new();
                for _ in 0..n.min(1 << 20) {
                    items.push(Box::pin(read_reply(r)).await?);
                }
                Reply::Array(Some(items))
            }
        }
        _ => {
            // Not RESP: e.g. an HTTP or TLS server on that port.
            return Err(protocol(format!(
                "the server did not answer in the Redis protocol (first line {:?})",
                line.chars().take(40).collect::<String>()
            )));
        }
    })
}

/// A parsed `INFO` reply: `section -> key -> value` (section names lower case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    /// The sections, e.g. `server`, `memory`, `keyspace`.
    pub sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Info {
    /// Parses `# Section` headers and `key:value` lines.
    pub fn parse(text: &str) -> Info {
        let mut info = Info::default();
        let mut section = String::from("default");
        for line in text.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('#') {
                section = name.trim().to_ascii_lowercase();
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                info.sections
                    .entry(section.clone())
                    .or_default()
                    .insert(k.to_owned(), v.to_owned());
            }
        }
        info
    }

    /// A value by key, from any section.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.sections
            .values()
            .find_map(|s| s.get(key))
            .map(String::as_str)
    }

    /// A numeric value by key.
    pub fn num(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.parse().ok())
    }
}

/// Connects, authenticates when the URL carries a password and selects the database.
/// Returns the connection, and the error line of a refused `AUTH`/`SELECT`.
pub async fn open(url: &RedisUrl, timeout: Duration) -> Result<(RedisConn, Option<String>)> {
    let attempt = async {
        let mut conn = RedisConn::connect(url).await?;
        let mut refused = None;
        if let Some(pw) = &url.password {
            refused = conn.auth(url.user.as_deref(), pw).await?;
        }
        if refused.is_none() && url.db != 0 {
            let reply = conn
                .command(&[b"SELECT", url.db.to_string().as_bytes()])
                .await?;
            refused = reply.error().map(str::to_owned);
        }
        Ok((conn, refused))
    };
    tokio::time::timeout(timeout, attempt).await.map_err(|_| {
        RdbError::new(
            RdbErrorKind::Unreachable,
            format!(
                "no answer from {} within {}s",
                url.endpoint(),
                timeout.as_secs_f64()
            ),
        )
    })?
}

/// Like [`open`], but a refused `AUTH` or `SELECT` is an error of kind
/// [`Refused`](RdbErrorKind::Refused).
pub async fn open_authenticated(url: &RedisUrl, timeout: Duration) -> Result<RedisConn> {
    let (conn, refused) = open(url, timeout).await?;
    match refused {
        None => Ok(conn),
        Some(line) => Err(RdbError::new(
            RdbErrorKind::Refused,
            format!("the server refused the login: {line}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = RedisUrl::parse("redis://:s%40cret@cache:6380/2").unwrap();
        assert_eq!(
            (u.host(), u.port(), u.db(), u.user()),
            ("cache", 6380, 2, None)
        );
        assert_eq!(u.password().unwrap().expose(), "s@cret");
        assert_eq!(u.to_string(), "redis://:****@cache:6380/2");
        let u = RedisUrl::parse("rediss://app:pw@cache?sslmode=require").unwrap();
        assert_eq!(u.tls(), &RedisTls::NoVerify);
        assert_eq!(u.to_string(), "rediss://app:****@cache:6379");
        let u = RedisUrl::parse("redis://justapassword@h").unwrap();
        assert_eq!(u.password().unwrap().expose(), "justapassword");
        assert!(!format!("{u:?}").contains("justapassword"));
        for bad in [
            "http://x",
            "redis://",
            "redis://h:0",
            "redis://h:99999",
            "redis://h/x",
            "redis://h?sslmode=require",
            "redis://:%zz@h",
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            assert_eq!(e.kind(), RdbErrorKind::InvalidInput, "{bad}");
        }
        let e = RedisUrl::parse("redis://:%zzhunter@h").unwrap_err();
        assert!(!e.to_string().contains("hunter"));
    }

    #[test]
    fn info_parses() {
        let info = Info::parse("# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n");
        assert_eq!(info.get("redis_version"), Some("7.0.15"));
        assert_eq!(
            info.sections["keyspace"]["db0"],
            "keys=3,expires=0,avg_ttl=0"
        );
    }

    #[tokio::test]
    async fn replies_parse() {
        let input: &[u8] = b"+PONG\r\n-ERR x\r\n:5\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n$1\r\nz\r\n";
        let mut r = BufReader::new(input);
        assert_eq!(
            read_reply(&mut r).await.unwrap(),
            Reply::Simple("PONG".into())
        );
        assert_eq!(
            read_reply(&mut r).await.unwrap(),
            Reply::Error("ERR x".into())
        );
        assert_eq!(read_reply(&mut r).await.unwrap(), Reply::Integer(5));
        assert_eq!(
            read_reply(&mut r).await.unwrap(),
            Reply::Bulk(Some(b"abc".to_vec()))
        );
        assert_eq!(read_reply(&mut r).await.unwrap(), Reply::Bulk(None));
        assert_eq!(
            read_reply(&mut r).await.unwrap(),
            Reply::Array(Some(vec![
                Reply::Integer(1),
                Reply::Bulk(Some(b"z".to_vec()))
            ]))
        );
    }
}
