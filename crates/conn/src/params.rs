//! Raw parameters as written in a connection string, before defaults.

use crate::error::ConnError;
use crate::secret::Secret;
use crate::sslmode::{ChannelBinding, SslMode, SslNegotiation};
use std::time::Duration;

/// libpq parameters that pgharbor understands but does not support yet.
const UNSUPPORTED_LIBPQ_PARAMS: &[&str] = &[
    "service",
    "hostaddr",
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslcompression",
    "sslcertmode",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "require_auth",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "replication",
    "target_session_attrs",
    "load_balance_hosts",
];

/// The parameters pgharbor accepts in a connection string.
pub const SUPPORTED_PARAMS: &[&str] = &[
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslnegotiation",
    "channel_binding",
    "application_name",
    "fallback_application_name",
    "connect_timeout",
    "options",
];

/// Parameters given explicitly in a connection string. `Some("")` is an
/// explicit empty value: it blocks the environment fallback, as in libpq.
#[derive(Default, Debug)]
pub(crate) struct RawParams {
    pub host: Option<String>,
    pub port: Option<String>,
    pub dbname: Option<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub passfile: Option<String>,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    pub sslnegotiation: Option<String>,
    pub channel_binding: Option<String>,
    pub application_name: Option<String>,
    pub fallback_application_name: Option<String>,
    pub connect_timeout: Option<String>,
    pub options: Option<String>,
}

/// Quotes `s` for a message if `echo` allows it, else a neutral phrase.
pub(crate) fn quoted(s: &str, echo: bool) -> String {
    if echo {
        format!("\"{s}\"")
    } else {
        "(not shown, it may be part of a password)".to_owned()
    }
}

impl RawParams {
    /// Stores `key = value`, validating the key and the values that have a
    /// fixed syntax. `echo` says whether `key` and `value` may be quoted in
    /// an error message (they might be fragments of a mis-split password).
    pub(crate) fn set(&mut self, key: &str, value: String, echo: bool) -> Result<(), ConnError> {
        // libpq's backwards-compatible spelling.
        if key == "requiressl" {
            let mode = if value.starts_with('1') {
                "require"
            } else {
                "prefer"
            };
            self.sslmode = Some(mode.to_owned());
            return Ok(());
        }
        let check = |ok: Result<(), String>| ok.map_err(ConnError::invalid);
        match key {
            "host" => {
                check(check_single_host(&value, "host", echo))?;
                self.host = Some(value);
            }
            "port" => {
                check(check_port(&value, "port", echo).map(|_| ()))?;
                self.port = Some(value);
            }
            "dbname" => self.dbname = Some(value),
            "user" => self.user = Some(value),
            "password" => self.password = Some(Secret::new(value)),
            "passfile" => self.passfile = Some(value),
            "sslmode" => {
                check(check_sslmode(&value, "sslmode", echo).map(|_| ()))?;
                self.sslmode = Some(value);
            }
            "sslrootcert" => self.sslrootcert = Some(value),
            "sslcert" => self.sslcert = Some(value),
            "sslkey" => self.sslkey = Some(value),
            "sslnegotiation" => {
                check(check_sslnegotiation(&value, "sslnegotiation", echo).map(|_| ()))?;
                self.sslnegotiation = Some(value);
            }
            "channel_binding" => {
                check(check_channel_binding(&value, "channel_binding", echo).map(|_| ()))?;
                self.channel_binding = Some(value);
            }
            "application_name" => self.application_name = Some(value),
            "fallback_application_name" => self.fallback_application_name = Some(value),
            "connect_timeout" => {
                check(check_timeout(&value, "connect_timeout", echo).map(|_| ()))?;
                self.connect_timeout = Some(value);
            }
            "options" => self.options = Some(value),
            "search_path" => {
                let hint = if echo && !value.is_empty() {
                    format!("options=-csearch_path={value}")
                } else {
                    "options=-csearch_path=SCHEMA".to_owned()
                };
                return Err(ConnError::invalid(format!(
                    "\"search_path\" is not a connection parameter; set it through options, e.g. {hint} (in a URL: options=-csearch_path%3DSCHEMA)"
                )));
            }
            _ if UNSUPPORTED_LIBPQ_PARAMS.contains(&key) => {
                return Err(ConnError::invalid(format!(
                    "parameter \"{key}\" is valid for libpq but not supported by pgharbor yet; remove it from the connection string"
                )));
            }
            _ => {
                return Err(ConnError::invalid(format!(
                    "unknown parameter {}; supported parameters are {}",
                    quoted(key, echo),
                    SUPPORTED_PARAMS.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Rejects lists of hosts (`a,b`), which this release does not support.
pub(crate) fn check_single_host(value: &str, what: &str, echo: bool) -> Result<(), String> {
    if value.contains(',') {
        return Err(format!(
            "{what} {} lists several hosts, which pgharbor does not support; give exactly one host",
            quoted(value, echo)
        ));
    }
    Ok(())
}

/// Parses a port: an integer from 1 to 65535 (an empty value means unset).
pub(crate) fn check_port(value: &str, what: &str, echo: bool) -> Result<Option<u16>, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.contains(',') {
        return Err(format!(
            "{what} {} lists several ports, which pgharbor does not support; give exactly one port",
            quoted(value, echo)
        ));
    }
    match trimmed.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(Some(p as u16)),
        _ => Err(format!(
            "invalid port number {} in {what}; use a number from 1 to 65535",
            quoted(value, echo)
        )),
    }
}

/// Parses an `sslmode` (an empty value means unset).
pub(crate) fn check_sslmode(
    value: &str,
    what: &str,
    echo: bool,
) -> Result<Option<SslMode>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    value.parse::<SslMode>().map(Some).map_err(|_| {
        format!(
            "invalid sslmode {} in {what}; use one of disable, allow, prefer, require, verify-ca, verify-full",
            quoted(value, echo)
        )
    })
}

/// Parses an `sslnegotiation` (an empty value means unset).
pub(crate) fn check_sslnegotiation(
    value: &str,
    what: &str,
    echo: bool,
) -> Result<Option<SslNegotiation>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    value.parse::<SslNegotiation>().map(Some).map_err(|_| {
        format!(
            "invalid sslnegotiation {} in {what}; use postgres or direct",
            quoted(value, echo)
        )
    })
}

/// Parses a `channel_binding` (an empty value means unset).
pub(crate) fn check_channel_binding(
    value: &str,
    what: &str,
    echo: bool,
) -> Result<Option<ChannelBinding>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    value.parse::<ChannelBinding>().map(Some).map_err(|_| {
        format!(
            "invalid channel_binding {} in {what}; use disable, prefer or require",
            quoted(value, echo)
        )
    })
}

/// Parses `connect_timeout` like libpq: whole seconds; zero or negative means
/// no timeout; 1 is raised to 2 (libpq's minimum).
pub(crate) fn check_timeout(
    value: &str,
    what: &str,
    echo: bool,
) -> Result<Option<Duration>, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    match trimmed.parse::<i32>() {
        Ok(n) if n <= 0 => Ok(None),
        Ok(1) => Ok(Some(Duration::from_secs(2))),
        Ok(n) => Ok(Some(Duration::from_secs(n as u64))),
        Err(_) => Err(format!(
            "invalid connect_timeout {} in {what}; use a whole number of seconds",
            quoted(value, echo)
        )),
    }
}

/// Extracts `search_path` from a libpq `options` string (`-c search_path=x`,
/// `-csearch_path=x` or `--search_path=x`; the last one wins). Splits words
/// like the server does: on whitespace, with `\` escaping the next character.
pub(crate) fn search_path_from_options(options: &str) -> Option<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            if in_word {
                words.push(std::mem::take(&mut word));
                in_word = false;
            }
        } else if c == '\\' {
            if let Some(next) = chars.next() {
                word.push(next);
            }
            in_word = true;
        } else {
            word.push(c);
            in_word = true;
        }
    }
    if in_word {
        words.push(word);
    }

    let mut found = None;
    let mut iter = words.iter();
    while let Some(w) = iter.next() {
        let setting = if w == "-c" {
            iter.next().map(String::as_str)
        } else {
            w.strip_prefix("--").or_else(|| w.strip_prefix("-c"))
        };
        if let Some((name, value)) = setting.and_then(|s| s.split_once('=')) {
            if name.to_ascii_lowercase().replace('-', "_") == "search_path" {
                found = Some(value.to_owned());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ConnErrorKind;

    #[test]
    fn unknown_and_unsupported_parameters_are_named() {
        let mut p = RawParams::default();
        let e = p.set("sslmod", "require".into(), true).unwrap_err();
        assert_eq!(e.kind(), ConnErrorKind::InvalidConnectionString);
        assert!(
            e.to_string().contains("unknown parameter \"sslmod\""),
            "{e}"
        );

        let e = p.set("sslcrl", "/x".into(), true).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"sslcrl\" is valid for libpq but not supported"),
            "{e}"
        );

        for (k, v) in [
            ("sslrootcert", "/x"),
            ("sslcert", "/c"),
            ("sslkey", "/k"),
            ("sslnegotiation", "direct"),
            ("channel_binding", "require"),
        ] {
            p.set(k, v.into(), true).unwrap();
        }
        assert_eq!(p.sslrootcert.as_deref(), Some("/x"));
        assert_eq!(p.channel_binding.as_deref(), Some("require"));
        let e = p.set("sslnegotiation", "fast".into(), true).unwrap_err();
        assert!(e.to_string().contains("use postgres or direct"), "{e}");
        let e = p
            .set("channel_binding", "s3cr3t".into(), false)
            .unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");

        let e = p.set("search_path", "app".into(), true).unwrap_err();
        assert!(e.to_string().contains("options=-csearch_path=app"), "{e}");

        let e = p.set("s3cr3tfragment", "x".into(), false).unwrap_err();
        assert!(!e.to_string().contains("s3cr3tfragment"), "{e}");
    }

    #[test]
    fn requiressl_is_translated() {
        let mut p = RawParams::default();
        p.set("requiressl", "1".into(), true).unwrap();
        assert_eq!(p.sslmode.as_deref(), Some("require"));
        p.set("requiressl", "0".into(), true).unwrap();
        assert_eq!(p.sslmode.as_deref(), Some("prefer"));
    }

    #[test]
    fn value_checks() {
        assert_eq!(check_port("5432", "port", true), Ok(Some(5432)));
        assert_eq!(check_port(" 6543 ", "port", true), Ok(Some(6543)));
        assert_eq!(check_port("", "port", true), Ok(None));
        for bad in ["0", "65536", "54x2", "-1", "5432,5433"] {
            assert!(check_port(bad, "port", true).is_err(), "{bad}");
        }
        assert!(check_port("hunter2", "port", false)
            .unwrap_err()
            .contains("not shown"));

        assert_eq!(
            check_timeout("10", "t", true),
            Ok(Some(Duration::from_secs(10)))
        );
        assert_eq!(
            check_timeout("1", "t", true),
            Ok(Some(Duration::from_secs(2)))
        );
        assert_eq!(check_timeout("0", "t", true), Ok(None));
        assert_eq!(check_timeout("-5", "t", true), Ok(None));
        assert!(check_timeout("1.5", "t", true).is_err());
        assert!(check_timeout("soon", "t", true).is_err());

        assert_eq!(
            check_sslmode("require", "s", true),
            Ok(Some(SslMode::Require))
        );
        assert_eq!(check_sslmode("", "s", true), Ok(None));
        assert!(check_sslmode("yes", "s", true).is_err());

        assert!(check_single_host("a,b", "host", true).is_err());
        assert!(check_single_host("a", "host", true).is_ok());
    }

    #[test]
    fn search_path_extraction() {
        assert_eq!(
            search_path_from_options("-csearch_path=app"),
            Some("app".into())
        );
        assert_eq!(
            search_path_from_options("-c search_path=app,public"),
            Some("app,public".into())
        );
        assert_eq!(
            search_path_from_options("--search_path=x"),
            Some("x".into())
        );
        assert_eq!(
            search_path_from_options("--search-path=x"),
            Some("x".into())
        );
        assert_eq!(
            search_path_from_options("-c SEARCH_PATH=x"),
            Some("x".into())
        );
        assert_eq!(
            search_path_from_options("-c statement_timeout=5s -csearch_path=a -c search_path=b"),
            Some("b".into())
        );
        assert_eq!(
            search_path_from_options(r"-csearch_path=my\ schema,public"),
            Some("my schema,public".into())
        );
        assert_eq!(search_path_from_options("-c statement_timeout=5s"), None);
        assert_eq!(search_path_from_options(""), None);
    }
}
