//! Building connection URLs from their parts ([`UrlParts`]) and explaining
//! a connection string ([`inspect_url`]), with the password masked.

use crate::config::{ConnConfig, Host, PasswordSource, DEFAULT_PORT};
use crate::encoding::{decode, encode};
use crate::env::Environment;
use crate::error::{ConnError, ConnErrorKind};
use crate::params::RawParams;
use crate::secret::Secret;
use crate::sslmode::SslMode;
use crate::{keyvalue, url};
use serde::Serialize;
use std::net::IpAddr;

/// Parameters that [`UrlParts`] sets from its own fields, and the field (and
/// `pgharbor url build` flag) to use instead.
const DEDICATED: &[(&str, &str)] = &[
    ("host", "host (--host)"),
    ("port", "port (--port)"),
    ("user", "user (--user)"),
    ("dbname", "database (--database)"),
    (
        "password",
        "password (--password-stdin; never on a command line)",
    ),
    ("sslmode", "sslmode (--sslmode)"),
];

/// The parts of a `postgresql://` URL, for [`UrlParts::build`].
///
/// ```
/// use pgharbor_conn::{ConnConfig, Secret, SslMode, UrlParts};
///
/// let parts = UrlParts {
///     host: "db.example.com".into(),
///     user: "pgadmin".into(),
///     database: Some("openwebui".into()),
///     password: Some(Secret::new("Abc123XYZ!@#")),
///     sslmode: Some(SslMode::Require),
///     ..UrlParts::default()
/// };
/// let url = parts.build().unwrap();
/// assert_eq!(
///     url.expose(),
///     "postgresql://pgadmin:Abc123XYZ%21%40%23@db.example.com:5432/openwebui?sslmode=require"
/// );
/// let parsed = ConnConfig::parse(url.expose()).unwrap();
/// assert_eq!(parsed.password().unwrap().expose(), "Abc123XYZ!@#");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlParts {
    /// A host name, an IP address (IPv6 with or without brackets), or a
    /// Unix socket directory (starting with `/`, written as `?host=`).
    pub host: String,
    /// The port; `None` writes 5432 for TCP hosts and nothing for sockets.
    pub port: Option<u16>,
    /// The user name.
    pub user: String,
    /// The database; `None` leaves it out (the server's default: the user name).
    pub database: Option<String>,
    /// The password, if any.
    pub password: Option<Secret>,
    /// The `sslmode`, if any.
    pub sslmode: Option<SslMode>,
    /// Other connection parameters (`application_name`, `connect_timeout`,
    /// …), in order. They are checked by parsing the result.
    pub params: Vec<(String, String)>,
}

impl UrlParts {
    /// Renders the URL with every part percent-encoded, and checks that
    /// [`ConnConfig::parse`] reads back exactly these parts. The URL holds the
    /// password, so it comes wrapped in a [`Secret`].
    pub fn build(&self) -> Result<Secret, ConnError> {
        let invalid = ConnError::invalid;
        if self.user.is_empty() {
            return Err(invalid("the user name is empty"));
        }
        let host = self.host.trim();
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        if self.user.contains('\0')
            || host.contains('\0')
            || self.database.as_deref().is_some_and(|d| d.contains('\0'))
        {
            return Err(invalid("a NUL character cannot be part of a connection"));
        }
        if let Some(p) = &self.password {
            if p.expose().contains('\0') {
                return Err(invalid(
                    "the password contains a NUL character, which PostgreSQL cannot accept",
                ));
            }
        }
        if self.database.as_deref() == Some("") {
            return Err(invalid("the database name is empty"));
        }
        for (key, _) in &self.params {
            if key.is_empty() {
                return Err(invalid("a parameter has an empty name; write key=value"));
            }
            if let Some((_, instead)) = DEDICATED.iter().find(|(k, _)| k == key) {
                return Err(ConnError::invalid(format!(
                    "\"{key}\" cannot be given as an extra parameter; set the {instead}"
                )));
            }
        }

        let host = if host.starts_with('[') && host.ends_with(']') {
            &host[1..host.len() - 1]
        } else {
            host
        };
        let unix = host.starts_with('/');
        let mut out = String::from("postgresql://");
        out.push_str(&encode(&self.user));
        if let Some(p) = &self.password {
            out.push(':');
            out.push_str(&encode(p.expose()));
        }
        out.push('@');
        let mut query: Vec<(String, String)> = Vec::new();
        if unix {
            query.push(("host".into(), encode(host)));
            if let Some(port) = self.port {
                query.push(("port".into(), port.to_string()));
            }
        } else {
            let port = self.port.unwrap_or(DEFAULT_PORT);
            if host.contains(':') {
                out.push_str(&format!("[{}]:{port}", host.replace('%', "%25")));
            } else {
                out.push_str(&format!("{}:{port}", encode(host)));
            }
        }
        if let Some(db) = &self.database {
            out.push('/');
            out.push_str(&encode(db));
        }
        if let Some(mode) = self.sslmode {
            query.push(("sslmode".into(), mode.as_str().into()));
        }
        for (k, v) in &self.params {
            query.push((encode(k), encode(v)));
        }
        for (i, (k, v)) in query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        let url = Secret::new(out);

        // The parser is the judge: unknown parameters and bad values fail
        // here with its message, and what it reads must be what was given.
        let env = Environment::empty().with_os_user(self.user.clone());
        let parsed = ConnConfig::parse_with_env(url.expose(), &env)?;
        let expected_host = if unix {
            Host::Unix(host.into())
        } else {
            Host::Tcp(host.to_owned())
        };
        let same = parsed.host() == &expected_host
            && parsed.port() == self.port.unwrap_or(DEFAULT_PORT)
            && parsed.user() == self.user
            && parsed.dbname() == self.database.as_deref().unwrap_or(&self.user)
            && parsed.password() == self.password.as_ref()
            && parsed.sslmode() == self.sslmode.unwrap_or_default();
        if !same {
            return Err(ConnError::new(
                ConnErrorKind::Other,
                "the URL built does not read back as the parts given (a bug in pgharbor; please report it)",
            ));
        }
        Ok(url)
    }
}

/// A remark about a connection string that parses but may not do what its
/// author wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UrlWarning {
    /// A stable identifier: `insecure-sslmode`, `server-not-authenticated`,
    /// `database-defaulted`.
    pub code: &'static str,
    /// One line saying what is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

/// A connection string that does not parse, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UrlProblem {
    /// `unencoded-character` or `invalid-connection-string`.
    pub code: &'static str,
    /// The parser's message (it never contains the password).
    pub message: String,
    /// For unencoded characters: the corrected URL, password shown as `****`.
    pub fix: Option<String>,
}

impl From<ConnError> for UrlProblem {
    fn from(e: ConnError) -> Self {
        let code = match e.kind() {
            ConnErrorKind::UnencodedCharacterInPassword => "unencoded-character",
            _ => "invalid-connection-string",
        };
        UrlProblem {
            code,
            message: e.message().to_owned(),
            fix: e.corrected_url().map(str::to_owned),
        }
    }
}

/// One connection parameter as written (other than host, port, user,
/// password, database and sslmode, which have their own fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UrlParam {
    /// The parameter's name.
    pub name: String,
    /// Its value, decoded.
    pub value: String,
}

/// What a connection string means once parsed and completed like libpq
/// does; the password is never included, only whether there is one and
/// where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UrlInspection {
    /// The host name or address, or the socket directory.
    pub host: String,
    /// `tcp` or `unix-socket`.
    pub host_kind: &'static str,
    /// Where the host came from: `connection string`, `PGHOST` or `default`.
    pub host_from: &'static str,
    /// The port.
    pub port: u16,
    /// The user name.
    pub user: String,
    /// Where the user came from: `connection string`, `PGUSER` or
    /// `operating-system user`.
    pub user_from: &'static str,
    /// The database.
    pub database: String,
    /// Where the database came from: `connection string`, `PGDATABASE` or
    /// `user name` (defaulted).
    pub database_from: &'static str,
    /// The `sslmode` in force.
    pub sslmode: String,
    /// Where it came from: `connection string`, `PGSSLMODE` or `default`.
    pub sslmode_from: &'static str,
    /// `****` when a password is known, else `None`.
    pub password: Option<&'static str>,
    /// Where the password came from: `connection string`, `PGPASSWORD`,
    /// `password file` or `none`.
    pub password_from: &'static str,
    /// The password file, when the password came from one.
    pub password_file: Option<String>,
    /// Other parameters as written.
    pub params: Vec<UrlParam>,
    /// Remarks; the string is still usable.
    pub warnings: Vec<UrlWarning>,
}

/// Parses `conninfo` (a URL or `key=value` string) with the process
/// environment (`PG*` variables, `~/.pgpass`), as `pgharbor migrate` would,
/// and explains it. See [`inspect_url_with_env`].
pub fn inspect_url(conninfo: &str) -> Result<UrlInspection, UrlProblem> {
    inspect_url_with_env(conninfo, &Environment::from_process())
}

/// Parses `conninfo` with defaults from `env` and explains it: each part
/// and where it came from, the password masked, and warnings for a weak
/// `sslmode` to a remote host and a database left to default. A string that
/// does not parse gives a [`UrlProblem`] (with the corrected URL for
/// unencoded characters in the password).
///
/// ```
/// use pgharbor_conn::{inspect_url_with_env, Environment};
///
/// let env = Environment::empty();
/// let problem = inspect_url_with_env(
///     "postgresql://pgadmin:Abc123XYZ!@#@host:5432/openwebui?sslmode=require",
///     &env,
/// )
/// .unwrap_err();
/// assert_eq!(
///     problem.fix.as_deref(),
///     Some("postgresql://pgadmin:****@host:5432/openwebui?sslmode=require")
/// );
///
/// let ok = inspect_url_with_env("postgresql://app:pw@db.example.com/shop", &env).unwrap();
/// assert_eq!((ok.password, ok.password_from), (Some("****"), "connection string"));
/// assert_eq!(ok.warnings[0].code, "insecure-sslmode");
/// ```
pub fn inspect_url_with_env(
    conninfo: &str,
    env: &Environment,
) -> Result<UrlInspection, UrlProblem> {
    let config = ConnConfig::parse_with_env(conninfo, env)?;
    let input = conninfo.trim();
    let (raw, query) = match url::split_scheme(input) {
        Some((scheme, rest)) => (url::parse(scheme, rest)?, query_params(rest)),
        None => {
            let raw = keyvalue::parse(input)?;
            let query = keyvalue_params(&raw);
            (raw, query)
        }
    };
    let from = |explicit: &Option<String>, var: &'static str, default: &'static str| {
        if explicit.as_deref().is_some_and(|v| !v.is_empty()) {
            "connection string"
        } else if explicit.is_none() && env.var(var).is_some_and(|v| !v.is_empty()) {
            var
        } else {
            default
        }
    };

    let (host, host_kind) = match config.host() {
        Host::Tcp(h) => (h.clone(), "tcp"),
        Host::Unix(dir) => (dir.display().to_string(), "unix-socket"),
    };
    let (password_from, password_file) = match config.password_source() {
        PasswordSource::None => ("none", None),
        PasswordSource::ConnectionString => ("connection string", None),
        PasswordSource::Environment => ("PGPASSWORD", None),
        PasswordSource::PasswordFile(p) => ("password file", Some(p.display().to_string())),
    };
    let mut report = UrlInspection {
        host,
        host_kind,
        host_from: from(&raw.host, "PGHOST", "default"),
        port: config.port(),
        user: config.user().to_owned(),
        user_from: from(&raw.user, "PGUSER", "operating-system user"),
        database: config.dbname().to_owned(),
        database_from: from(&raw.dbname, "PGDATABASE", "user name"),
        sslmode: config.sslmode().to_string(),
        sslmode_from: from(&raw.sslmode, "PGSSLMODE", "default"),
        password: config.password().map(|_| "****"),
        password_from,
        password_file,
        params: query,
        warnings: Vec::new(),
    };
    report.warnings = warnings(&config, &report);
    Ok(report)
}

/// If `text` looks like a connection string with a password in it (a
/// URL's user info or a `password=` parameter), returns it with the password
/// replaced by `****`; `None` when there is nothing to hide.
///
/// A purely textual masking for echoing what a user typed (for example in a
/// command-line error): it does not parse, and when unsure it hides more.
///
/// ```
/// use pgharbor_conn::mask_password;
///
/// assert_eq!(
///     mask_password("postgresql://app:p@ss/w@db:5432/x?sslmode=require").as_deref(),
///     Some("postgresql://app:****@db:5432/x?sslmode=require")
/// );
/// assert_eq!(
///     mask_password("host=db password='a b' user=app").as_deref(),
///     Some("host=db password=**** user=app")
/// );
/// assert_eq!(mask_password("postgresql://app@db/x"), None);
/// ```
pub fn mask_password(text: &str) -> Option<String> {
    let mut out = text.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        // The user info ends at the last '@' (an unencoded '@' may be part
        // of the password; hiding too much is the safe error).
        if let Some(at) = out[start..].rfind('@').map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, "****");
            }
        }
        out = mask_query_password(&out);
    } else {
        out = mask_keyvalue_password(&out);
    }
    (out != text).then_some(out)
}

/// Masks the values of `password=` query parameters.
fn mask_query_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("password=") {
        let before = rest[..i].chars().last();
        out.push_str(&rest[..i + "password=".len()]);
        rest = &rest[i + "password=".len()..];
        if matches!(before, Some('?') | Some('&')) {
            let end = rest.find('&').unwrap_or(rest.len());
            out.push_str("****");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// Masks the value of `password = value` in a libpq `key=value` string
/// (bare or single-quoted).
fn mask_keyvalue_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("password") {
        let starts_word = rest[..i].chars().last().is_none_or(char::is_whitespace);
        out.push_str(&rest[..i + "password".len()]);
        rest = &rest[i + "password".len()..];
        let after_key = rest.trim_start();
        if !starts_word || !after_key.starts_with('=') {
            continue;
        }
        out.push('=');
        let value = after_key[1..].trim_start();
        let end = if let Some(quoted) = value.strip_prefix('\'') {
            let mut escaped = false;
            quoted
                .char_indices()
                .find(|&(_, c)| {
                    let close = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    close
                })
                .map_or(value.len(), |(j, _)| j + 2)
        } else {
            let mut escaped = false;
            value
                .char_indices()
                .find(|&(_, c)| {
                    let space = c.is_whitespace() && !escaped;
                    escaped = c == '\\' && !escaped;
                    space
                })
                .map_or(value.len(), |(j, _)| j)
        };
        out.push_str("****");
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// Whether a TCP host is this machine.
fn is_local(host: &str) -> bool {
    let lower = host.to_ascii_lowercase();
    lower == "localhost"
        || lower.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn warnings(config: &ConnConfig, report: &UrlInspection) -> Vec<UrlWarning> {
    let mut out = Vec::new();
    if let Host::Tcp(h) = config.host() {
        if !is_local(h) {
            let mode = config.sslmode();
            let default = if report.sslmode_from == "default" {
                " (the default when none is given)"
            } else {
                ""
            };
            let fix = "use sslmode=verify-full (with sslrootcert=PATH for a private CA, or sslrootcert=system), or at least sslmode=require".to_owned();
            match mode {
                SslMode::Disable => out.push(UrlWarning {
                    code: "insecure-sslmode",
                    message: format!(
                        "sslmode=disable to {h}: the connection, password included, crosses the network unencrypted"
                    ),
                    fix,
                }),
                SslMode::Allow | SslMode::Prefer => out.push(UrlWarning {
                    code: "insecure-sslmode",
                    message: format!(
                        "sslmode={mode}{default} to {h}: TLS is used only if the server offers it, so anyone on the path can turn it off, and the server's certificate is not checked"
                    ),
                    fix,
                }),
                SslMode::Require | SslMode::VerifyCa => out.push(UrlWarning {
                    code: "server-not-authenticated",
                    message: if mode == SslMode::Require {
                        format!("sslmode=require to {h} encrypts but does not check the server's certificate: the server is not authenticated")
                    } else {
                        format!("sslmode=verify-ca to {h} checks the certificate chain but not that the certificate names {h}")
                    },
                    fix: "use sslmode=verify-full (with sslrootcert=PATH for a private CA, or sslrootcert=system)".to_owned(),
                }),
                SslMode::VerifyFull => {}
            }
        }
    }
    if report.database_from == "user name" {
        out.push(UrlWarning {
            code: "database-defaulted",
            message: format!(
                "no database is named; it defaults to the user name \"{}\"",
                report.user
            ),
            fix: "name the database in the URL (postgresql://user@host/DATABASE) or set PGDATABASE"
                .to_owned(),
        });
    }
    out
}

/// Parameters with their own field in [`UrlInspection`].
fn is_dedicated(name: &str) -> bool {
    matches!(
        name,
        "host" | "port" | "user" | "dbname" | "password" | "sslmode" | "ssl" | "requiressl"
    )
}

/// The query parameters of a URL that parsed, decoded, minus the dedicated ones.
fn query_params(rest: &str) -> Vec<UrlParam> {
    let Some(q) = rest.find('?') else {
        return Vec::new();
    };
    rest[q + 1..]
        .split('&')
        .filter_map(|seg| seg.split_once('='))
        .filter_map(|(k, v)| Some((decode(k).ok()?, decode(v).ok()?)))
        .filter(|(k, _)| !is_dedicated(k))
        .map(|(name, value)| UrlParam { name, value })
        .collect()
}

/// The non-dedicated parameters of a `key=value` string.
fn keyvalue_params(raw: &RawParams) -> Vec<UrlParam> {
    [
        ("passfile", &raw.passfile),
        ("application_name", &raw.application_name),
        ("fallback_application_name", &raw.fallback_application_name),
        ("connect_timeout", &raw.connect_timeout),
        ("options", &raw.options),
    ]
    .into_iter()
    .filter_map(|(name, value)| {
        value.as_ref().map(|v| UrlParam {
            name: name.to_owned(),
            value: v.clone(),
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CANARY: &str = "Pw_CANARY_91b7!@#";

    fn parts(password: &str) -> UrlParts {
        UrlParts {
            host: "db.example.com".into(),
            port: Some(6432),
            user: "app".into(),
            database: Some("shop".into()),
            password: Some(Secret::new(password)),
            sslmode: Some(SslMode::Require),
            params: vec![("application_name".into(), "etl & co".into())],
        }
    }

    fn roundtrip(p: &UrlParts) -> ConnConfig {
        let url = p.build().unwrap_or_else(|e| panic!("{p:?}: {e}"));
        ConnConfig::parse_with_env(url.expose(), &Environment::empty().with_os_user("nobody"))
            .unwrap_or_else(|e| panic!("{p:?}: {e}"))
    }

    #[test]
    fn builds_an_encoded_url() {
        let url = parts("p@ss#w/o?r:d% é").build().unwrap();
        assert_eq!(
            url.expose(),
            "postgresql://app:p%40ss%23w%2Fo%3Fr%3Ad%25%20%C3%A9@db.example.com:6432/shop?sslmode=require&application_name=etl%20%26%20co"
        );
        assert_eq!(format!("{url:?}"), "[REDACTED]");
        let cfg = roundtrip(&parts("p@ss#w/o?r:d% é"));
        assert_eq!(cfg.password().unwrap().expose(), "p@ss#w/o?r:d% é");
        assert_eq!(cfg.application_name(), Some("etl & co"));
    }

    #[test]
    fn passwords_with_every_awkward_character_round_trip() {
        for pw in [
            CANARY,
            "@#/?:% ",
            "a b\tc",
            "%41%",
            "&=+;,",
            "[::1]",
            "ünïcødé 🐘 密码",
            "\\'\"`$",
            "Abc123XYZ!@#",
        ] {
            let cfg = roundtrip(&parts(pw));
            assert_eq!(cfg.password().unwrap().expose(), pw);
            assert_eq!(cfg.user(), "app");
            assert_eq!(cfg.dbname(), "shop");
            assert_eq!(cfg.port(), 6432);
        }
    }

    #[test]
    fn socket_ipv6_and_defaults() {
        let p = UrlParts {
            host: "/var/run/postgresql".into(),
            user: "postgres".into(),
            database: Some("app".into()),
            ..Default::default()
        };
        let url = p.build().unwrap();
        assert_eq!(
            url.expose(),
            "postgresql://postgres@/app?host=%2Fvar%2Frun%2Fpostgresql"
        );
        let cfg = roundtrip(&p);
        assert_eq!(cfg.host(), &Host::Unix("/var/run/postgresql".into()));

        let p = UrlParts {
            port: Some(5433),
            host: "/tmp/my sockets".into(),
            ..p
        };
        assert_eq!(
            p.build().unwrap().expose(),
            "postgresql://postgres@/app?host=%2Ftmp%2Fmy%20sockets&port=5433"
        );
        assert_eq!(roundtrip(&p).port(), 5433);

        for host in ["::1", "[::1]", "fe80::1%eth0"] {
            let p = UrlParts {
                host: host.into(),
                user: "u".into(),
                ..Default::default()
            };
            let cfg = roundtrip(&p);
            assert_eq!(
                cfg.host().as_tcp(),
                Some(host.trim_start_matches('[').trim_end_matches(']'))
            );
            assert_eq!(cfg.dbname(), "u");
        }
        let p = UrlParts {
            host: "h".into(),
            user: "u".into(),
            ..Default::default()
        };
        assert_eq!(p.build().unwrap().expose(), "postgresql://u@h:5432");
    }

    #[test]
    fn bad_parts_are_refused() {
        let mut p = parts("x");
        p.params = vec![("sslmod".into(), "require".into())];
        let e = p.build().unwrap_err();
        assert!(e.to_string().contains("unknown parameter"), "{e}");

        p.params = vec![("password".into(), CANARY.into())];
        let e = p.build().unwrap_err();
        assert!(e.to_string().contains("--password-stdin"), "{e}");
        assert!(!e.to_string().contains("CANARY"));

        p.params = vec![("connect_timeout".into(), "soon".into())];
        assert!(p.build().is_err());

        let mut p = parts("a\0b");
        assert!(p.build().unwrap_err().to_string().contains("NUL"));
        p.password = None;
        p.user = String::new();
        assert!(p.build().is_err());
        let p = UrlParts {
            host: " ".into(),
            user: "u".into(),
            ..Default::default()
        };
        assert!(p.build().is_err());
    }

    #[test]
    fn inspect_shows_parts_and_sources_without_the_password() {
        let env = Environment::empty().with_os_user("alice");
        let url = parts(CANARY).build().unwrap();
        let r = inspect_url_with_env(url.expose(), &env).unwrap();
        assert_eq!(r.host, "db.example.com");
        assert_eq!(r.host_kind, "tcp");
        assert_eq!(r.port, 6432);
        assert_eq!((r.user.as_str(), r.user_from), ("app", "connection string"));
        assert_eq!(r.database, "shop");
        assert_eq!(r.sslmode, "require");
        assert_eq!(r.password, Some("****"));
        assert_eq!(r.password_from, "connection string");
        assert_eq!(
            r.params,
            vec![UrlParam {
                name: "application_name".into(),
                value: "etl & co".into()
            }]
        );
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].code, "server-not-authenticated");
        assert!(!format!("{r:?}").contains("CANARY"));
    }

    #[test]
    fn inspect_reports_environment_sources_and_defaults() {
        let env = Environment::empty()
            .with_os_user("alice")
            .with_var("PGPASSWORD", CANARY)
            .with_var("PGSSLMODE", "verify-full");
        let r = inspect_url_with_env("postgresql://db.internal", &env).unwrap();
        assert_eq!(
            (r.user.as_str(), r.user_from),
            ("alice", "operating-system user")
        );
        assert_eq!(
            (r.database.as_str(), r.database_from),
            ("alice", "user name")
        );
        assert_eq!(r.password_from, "PGPASSWORD");
        assert_eq!(r.sslmode_from, "PGSSLMODE");
        let codes: Vec<_> = r.warnings.iter().map(|w| w.code).collect();
        assert_eq!(codes, ["database-defaulted"]);

        let r = inspect_url_with_env(
            "host=/tmp dbname=x user=u sslmode=disable application_name=a",
            &env,
        )
        .unwrap();
        assert_eq!(r.host_kind, "unix-socket");
        assert!(
            r.warnings.is_empty(),
            "local sockets need no TLS: {:?}",
            r.warnings
        );
        assert_eq!(r.params[0].name, "application_name");

        let r = inspect_url_with_env("postgresql://u@localhost/x?sslmode=disable", &env).unwrap();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let r = inspect_url_with_env("postgresql://u@10.0.0.5/x?sslmode=disable", &env).unwrap();
        assert_eq!(r.warnings[0].code, "insecure-sslmode");
        assert!(r.warnings[0].message.contains("unencrypted"));
        let r = inspect_url_with_env("postgresql://u@db/x", &Environment::empty()).unwrap();
        assert_eq!(r.sslmode_from, "default");
        assert!(
            r.warnings[0].message.contains("the default"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn inspect_explains_what_does_not_parse() {
        let env = Environment::empty().with_os_user("alice");
        let p = inspect_url_with_env(
            "postgresql://pgadmin:Abc123XYZ!@#@host:5432/openwebui?sslmode=require",
            &env,
        )
        .unwrap_err();
        assert_eq!(p.code, "unencoded-character");
        assert_eq!(
            p.fix.as_deref(),
            Some("postgresql://pgadmin:****@host:5432/openwebui?sslmode=require")
        );
        assert!(!p.message.contains("Abc123XYZ"), "{}", p.message);

        let p = inspect_url_with_env("postgresql://u@h/db?sslmod=require", &env).unwrap_err();
        assert_eq!(p.code, "invalid-connection-string");
        assert!(
            p.message.contains("unknown parameter \"sslmod\""),
            "{}",
            p.message
        );
        assert!(p.fix.is_none());
    }

    #[test]
    fn masking_typed_connection_strings() {
        let cases = [
            (
                "postgresql://u:Pw_CANARY_91b7!@#@h:5432/d",
                Some("postgresql://u:****@h:5432/d"),
            ),
            (
                "postgres://u:Pw%40CANARY@h/d?password=CANARY2&sslmode=require",
                Some("postgres://u:****@h/d?password=****&sslmode=require"),
            ),
            (
                "postgresql://h/d?application_name=x&password=CANARY",
                Some("postgresql://h/d?application_name=x&password=****"),
            ),
            ("postgresql://u@h/d", None),
            ("postgresql://h/d?application_name=me@home", None),
            (
                "host=h password=CANARY user=u",
                Some("host=h password=**** user=u"),
            ),
            (
                "password = 'CAN\\'ARY x' user=u",
                Some("password=**** user=u"),
            ),
            (
                "password=CANARY\\ more user=u",
                Some("password=**** user=u"),
            ),
            ("password='CANARY", Some("password=****")),
            ("mypassword=x", None),
            ("a.db", None),
        ];
        for (input, expected) in cases {
            let got = mask_password(input);
            assert_eq!(got.as_deref(), expected, "{input}");
            if let Some(g) = got {
                assert!(!g.contains("CANARY"), "{g}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn built_urls_parse_back_to_the_same_parts(
            password in "[^\u{0}]{1,40}",
            user in "[^\u{0}]{1,20}",
            database in proptest::option::of("[^\u{0}]{1,20}"),
            host in prop_oneof![
                "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,5}){0,2}",
                "/[a-zA-Z0-9 _./-]{0,30}",
                Just("::1".to_owned()),
                Just("192.0.2.7".to_owned()),
            ],
            port in proptest::option::of(1u16..),
            sslmode in proptest::option::of(proptest::sample::select(SslMode::ALL.to_vec())),
            app in proptest::option::of("[^\u{0}]{0,20}"),
        ) {
            let p = UrlParts {
                host: host.clone(),
                port,
                user: user.clone(),
                database: database.clone(),
                password: Some(Secret::new(password.clone())),
                sslmode,
                params: app.clone().map(|a| vec![("application_name".to_owned(), a)]).unwrap_or_default(),
            };
            let cfg = roundtrip(&p);
            prop_assert_eq!(cfg.password().map(Secret::expose), Some(password.as_str()));
            let url = p.build().unwrap();
            let prefix = format!("postgresql://{}:{}@", encode(&user), encode(&password));
            prop_assert!(url.expose().starts_with(&prefix));
            let expected = format!("postgresql://{}:****@{}", encode(&user), &url.expose()[prefix.len()..]);
            prop_assert_eq!(mask_password(url.expose()), Some(expected));
            prop_assert_eq!(cfg.user(), user.as_str());
            prop_assert_eq!(cfg.dbname(), database.as_deref().unwrap_or(&user));
            prop_assert_eq!(cfg.port(), port.unwrap_or(DEFAULT_PORT));
            prop_assert_eq!(cfg.sslmode(), sslmode.unwrap_or_default());
            prop_assert_eq!(cfg.application_name(), app.as_deref().filter(|a| !a.is_empty()));
            if host.starts_with('/') {
                // Surrounding blanks are trimmed from the host.
                prop_assert_eq!(cfg.host(), &Host::Unix(host.trim().into()));
            } else {
                prop_assert_eq!(cfg.host().as_tcp(), Some(host.as_str()));
            }
        }
    }
}
