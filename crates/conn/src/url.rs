//! `postgresql://` URLs, with detection of unencoded characters in the
//! user name or password.
//!
//! Parsing happens in two steps. First the URL is read strictly, as a
//! correctly percent-encoded URL: the authority ends at the first `/` or `?`,
//! it holds at most one `@`, the host and port are well formed, `#` appears
//! nowhere, and an `@` in the database name, in a query key, or in a query
//! value followed by a `/` is taken as a sign of a mis-split password. If
//! that fails, every `@` is tried as the real end of the user info, from
//! the last to the first (those that would put something like `?sslmode=`
//! into the password come last, since that `@` is more likely part of a
//! query value): the user name and password before it are
//! percent-encoded and the strict reader runs again. If one of them yields
//! a valid URL, the error explains which characters must be encoded and
//! shows that corrected URL with the password masked. The URL is never
//! accepted in its repaired form: a guess must not become a connection.

use crate::encoding::{decode, encode, is_escape_at};
use crate::error::{ConnError, ConnErrorKind};
use crate::params::{check_port, check_single_host, quoted, RawParams, SUPPORTED_PARAMS};
use crate::secret::Secret;

/// Characters that break the structure of a URL's user info.
const STRUCTURAL: &[char] = &['@', '#', '/', '?', ':'];

/// Splits `postgresql://rest` / `postgres://rest` (scheme matched without
/// regard to case). Returns the scheme as written and the rest.
pub(crate) fn split_scheme(input: &str) -> Option<(&str, &str)> {
    for scheme in ["postgresql", "postgres"] {
        if input.len() >= scheme.len() + 3
            && input.is_char_boundary(scheme.len() + 3)
            && input[..scheme.len()].eq_ignore_ascii_case(scheme)
            && &input[scheme.len()..scheme.len() + 3] == "://"
        {
            return Some((&input[..scheme.len()], &input[scheme.len() + 3..]));
        }
    }
    None
}

/// If `input` starts with some other `scheme://`, returns that scheme.
pub(crate) fn foreign_scheme(input: &str) -> Option<&str> {
    let colon = input.find("://")?;
    let scheme = &input[..colon];
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | ':'));
    valid.then_some(scheme)
}

/// Parses a URL whose scheme has been split off by [`split_scheme`].
pub(crate) fn parse(scheme: &str, rest: &str) -> Result<RawParams, ConnError> {
    match strict(rest) {
        Ok(params) => Ok(params),
        Err(strict_err) => match find_repair(rest) {
            Some(repair) => Err(repair.into_error(scheme)),
            None => Err(strict_err),
        },
    }
}

fn invalid_url(message: impl std::fmt::Display) -> ConnError {
    ConnError::invalid(format!("in the URL, {message}"))
}

/// Whether a raw (undecoded) host name uses only characters a host name or a
/// percent-encoded socket path can contain.
fn plausible_host(host: &str) -> bool {
    host.chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '%'))
}

/// Reads a correctly encoded URL (the part after `scheme://`).
fn strict(rest: &str) -> Result<RawParams, ConnError> {
    let last_at = rest.rfind('@');
    // A fragment may be quoted in a message only if no '@' follows it:
    // everything before the last '@' might be part of a password.
    let echo_at = |pos: usize| last_at.is_none_or(|a| pos > a);
    let hint =
        "; if the user name or password contains special characters, they must be percent-encoded";

    if rest.contains('#') {
        return Err(invalid_url(
            "an unencoded '#' starts a URL fragment and cuts the URL short; write '#' as %23",
        ));
    }

    let mut params = RawParams::default();
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];

    let (host_start, hostport) = match authority.find('@') {
        Some(at) => {
            if authority[at + 1..].contains('@') {
                return Err(invalid_url(
                    "the part before the host contains more than one '@'; an '@' inside the user name or password must be written %40",
                ));
            }
            let (user, password) = match authority[..at].split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (&authority[..at], None),
            };
            let user = decode(user).map_err(|e| {
                invalid_url(format!(
                    "the user name is not valid percent-encoding: {}",
                    e.describe()
                ))
            })?;
            if !user.is_empty() {
                params.user = Some(user);
            }
            if let Some(password) = password {
                let password = decode(password).map(Secret::new).map_err(|e| {
                    invalid_url(format!(
                        "the password is not valid percent-encoding: {}",
                        e.describe()
                    ))
                })?;
                if !password.is_empty() {
                    params.password = Some(password);
                }
            }
            (at + 1, &authority[at + 1..])
        }
        None => (0, authority),
    };

    let echo_host = echo_at(host_start);
    let (host_raw, port_raw) = if let Some(inner) = hostport.strip_prefix('[') {
        let close = inner.find(']').ok_or_else(|| {
            invalid_url(format!("an IPv6 address is missing its closing ']'{hint}"))
        })?;
        let host = &inner[..close];
        if host.is_empty() {
            return Err(invalid_url("the IPv6 address between '[' and ']' is empty"));
        }
        let after = &inner[close + 1..];
        if after.is_empty() {
            (host, None)
        } else if let Some(port) = after.strip_prefix(':') {
            (host, Some(port))
        } else if after.starts_with(',') {
            return Err(invalid_url(
                "several hosts are listed, which pgharbor does not support; give exactly one host",
            ));
        } else {
            return Err(invalid_url(format!(
                "unexpected text after the IPv6 address; expected ':port', '/' or '?'{hint}"
            )));
        }
    } else {
        if hostport.contains(',') {
            return Err(invalid_url(
                "several hosts are listed, which pgharbor does not support; give exactly one host",
            ));
        }
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if !hostport.starts_with('[') && !plausible_host(host_raw) {
        return Err(invalid_url(format!(
            "the host name {} contains characters a host name cannot have{hint}",
            quoted(host_raw, echo_host)
        )));
    }
    let host = decode(host_raw).map_err(|e| {
        invalid_url(format!(
            "the host name is not valid percent-encoding: {}",
            e.describe()
        ))
    })?;
    if !host.is_empty() {
        check_single_host(&host, "the host", echo_host).map_err(invalid_url)?;
        params.host = Some(host);
    }
    if let Some(port_raw) = port_raw {
        // A non-numeric "port" is often the start of a password whose '@'
        // went missing or came later: never quote it.
        let echo = false;
        let port = decode(port_raw).map_err(|e| {
            invalid_url(format!(
                "the port is not valid percent-encoding: {}",
                e.describe()
            ))
        })?;
        if !port.is_empty() {
            check_port(&port, "the URL", echo)
                .map_err(|m| ConnError::invalid(format!("{m}{hint}")))?;
            params.port = Some(port);
        }
    }

    let mut pos = auth_end;
    if rest[pos..].starts_with('/') {
        let path_end = rest[pos..].find('?').map_or(rest.len(), |i| pos + i);
        let raw_db = &rest[pos + 1..path_end];
        if raw_db.contains('@') {
            return Err(invalid_url(format!(
                "the database name contains an unencoded '@' (write it as %40){hint}"
            )));
        }
        let db = decode(raw_db).map_err(|e| {
            invalid_url(format!(
                "the database name is not valid percent-encoding: {}",
                e.describe()
            ))
        })?;
        if !db.is_empty() {
            params.dbname = Some(db);
        }
        pos = path_end;
    }

    if rest[pos..].starts_with('?') {
        let mut offset = pos + 1;
        let mut after_password = false;
        for segment in rest[pos + 1..].split('&') {
            let seg_start = offset;
            offset += segment.len() + 1;
            if segment.is_empty() {
                continue;
            }
            let echo = echo_at(seg_start) && !after_password;
            let Some((key_raw, value_raw)) = segment.split_once('=') else {
                if after_password {
                    return Err(invalid_url(
                        "a query parameter without '=' follows the password; an '&' inside the password must be written %26",
                    ));
                }
                return Err(invalid_url(format!(
                    "the query parameter {} has no '='; write parameters as ?key=value&key2=value2{hint}",
                    quoted(segment, echo)
                )));
            };
            if key_raw.contains('@')
                || value_raw
                    .find('@')
                    .is_some_and(|i| value_raw[i..].contains('/'))
            {
                return Err(invalid_url(format!(
                    "a query parameter contains an unencoded '@' (write it as %40){hint}"
                )));
            }
            let key = decode(key_raw).map_err(|e| {
                invalid_url(format!(
                    "a query parameter name is not valid percent-encoding: {}",
                    e.describe()
                ))
            })?;
            let value = decode(value_raw).map_err(|e| {
                invalid_url(format!(
                    "the value of query parameter {} is not valid percent-encoding: {}",
                    quoted(&key, echo),
                    e.describe()
                ))
            })?;
            after_password = key == "password";
            if key == "ssl" {
                // libpq's JDBC-compatible spelling.
                if value == "true" {
                    params.sslmode = Some("require".to_owned());
                    continue;
                }
                return Err(invalid_url(format!(
                    "ssl={} is not understood (only ssl=true is); use sslmode=disable|allow|prefer|require",
                    quoted(&value, echo).trim_matches('"')
                )));
            }
            params.set(&key, value, echo)?;
        }
    }
    Ok(params)
}

/// Percent-encodes the characters that break a URL's user info, keeping
/// valid `%XX` escapes.
fn encode_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        if (c == '%' && !is_escape_at(s, i)) || STRUCTURAL.contains(&c) {
            out.push_str(&encode(c.encode_utf8(&mut [0; 4])));
        } else {
            out.push(c);
        }
    }
    out
}

/// The characters of `s` that [`encode_userinfo`] would encode, in a fixed
/// order, without duplicates.
fn offending_chars(s: &str) -> Vec<char> {
    let stray_percent = s
        .char_indices()
        .any(|(i, c)| c == '%' && !is_escape_at(s, i));
    let mut chars: Vec<char> = STRUCTURAL
        .iter()
        .copied()
        .filter(|c| s.contains(*c))
        .collect();
    if stray_percent {
        chars.push('%');
    }
    chars
}

/// A way to read a URL with unencoded characters in its user info.
struct Repair {
    user_raw: String,
    password_raw: Option<String>,
    after: String,
}

/// Whether `s` contains `?name=` or `&name=` for a connection parameter:
/// text that reads like a URL query rather than like part of a password.
fn contains_query_parameter(s: &str) -> bool {
    s.match_indices(['?', '&']).any(|(i, _)| {
        let tail = &s[i + 1..];
        SUPPORTED_PARAMS
            .iter()
            .chain(&["ssl", "requiressl"])
            .any(|name| tail.strip_prefix(name).is_some_and(|t| t.starts_with('=')))
    })
}

fn find_repair(rest: &str) -> Option<Repair> {
    let ats: Vec<usize> = rest.match_indices('@').map(|(i, _)| i).collect();
    // The real split is the last '@' before the host, but an '@' may also sit
    // in a query value (application_name=me@home). A candidate whose user
    // info contains "?sslmode=" or the like has swallowed the query: try
    // those only when nothing else works.
    let (plain, swallowing): (Vec<usize>, Vec<usize>) = ats
        .iter()
        .rev()
        .partition(|&&at| !contains_query_parameter(&rest[..at]));
    plain.into_iter().chain(swallowing).find_map(|at| {
        let (user, password) = match rest[..at].split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (&rest[..at], None),
        };
        let enc_user = encode_userinfo(user);
        let enc_password = password.map(encode_userinfo);
        if enc_user == user && enc_password.as_deref() == password {
            return None; // nothing to encode: this '@' does not explain the failure
        }
        let after = &rest[at + 1..];
        let candidate = match &enc_password {
            Some(p) => format!("{enc_user}:{p}@{after}"),
            None => format!("{enc_user}@{after}"),
        };
        strict(&candidate).is_ok().then(|| Repair {
            user_raw: user.to_owned(),
            password_raw: password.map(str::to_owned),
            after: after.to_owned(),
        })
    })
}

/// Replaces the values of `password=` query parameters with `****`.
pub(crate) fn mask_query_passwords(after: &str) -> String {
    let Some(q) = after.find('?') else {
        return after.to_owned();
    };
    let masked: Vec<String> = after[q + 1..]
        .split('&')
        .map(|seg| match seg.split_once('=') {
            Some((k, _)) if decode(k).is_ok_and(|k| k == "password") => format!("{k}=****"),
            _ => seg.to_owned(),
        })
        .collect();
    format!("{}?{}", &after[..q], masked.join("&"))
}

fn describe_chars(chars: &[char]) -> (String, String) {
    let names: Vec<String> = chars.iter().map(|c| format!("'{c}'")).collect();
    let list = match names.len() {
        0 => String::new(),
        1 => names[0].clone(),
        n => format!("{} and {}", names[..n - 1].join(", "), names[n - 1]),
    };
    let mapping: Vec<String> = chars
        .iter()
        .map(|c| format!("'{c}' as {}", encode(c.encode_utf8(&mut [0; 4]))))
        .collect();
    (list, mapping.join(", "))
}

impl Repair {
    fn into_error(self, scheme: &str) -> ConnError {
        let user_chars = offending_chars(&self.user_raw);
        let password_chars = self
            .password_raw
            .as_deref()
            .map(offending_chars)
            .unwrap_or_default();
        let subject = match (user_chars.is_empty(), password_chars.is_empty()) {
            (false, false) => "the user name and the password in the connection URL contain",
            (false, true) => "the user name in the connection URL contains",
            _ => "the password in the connection URL contains",
        };
        let mut all = user_chars;
        for c in password_chars {
            if !all.contains(&c) {
                all.push(c);
            }
        }
        let (list, mapping) = describe_chars(&all);
        let password_part = match self.password_raw.as_deref() {
            Some(p) if !p.is_empty() => ":****",
            _ => "",
        };
        let corrected = format!(
            "{scheme}://{}{password_part}@{}",
            encode_userinfo(&self.user_raw),
            mask_query_passwords(&self.after)
        );
        let message = format!(
            "{subject} {list}, which must be percent-encoded ({mapping}), otherwise the URL is split in the wrong place; \
             corrected URL with the password hidden: {corrected} \
             (or leave the password out of the URL and set PGPASSWORD or use ~/.pgpass)"
        );
        ConnError::new(ConnErrorKind::UnencodedCharacterInPassword, message)
            .with_corrected_url(corrected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Result<RawParams, ConnError> {
        let (scheme, rest) = split_scheme(s).expect("postgres scheme");
        parse(scheme, rest)
    }

    fn pw(p: &RawParams) -> Option<&str> {
        p.password.as_ref().map(Secret::expose)
    }

    #[test]
    fn scheme_detection() {
        assert_eq!(split_scheme("postgresql://h"), Some(("postgresql", "h")));
        assert_eq!(split_scheme("postgres://h"), Some(("postgres", "h")));
        assert_eq!(split_scheme("PostgreSQL://h"), Some(("PostgreSQL", "h")));
        assert_eq!(split_scheme("postgresql:/h"), None);
        assert_eq!(split_scheme("host=x"), None);
        assert_eq!(split_scheme("postgresé"), None);
        assert_eq!(foreign_scheme("mysql://u:p@h/db"), Some("mysql"));
        assert_eq!(
            foreign_scheme("jdbc:postgresql://h/db"),
            Some("jdbc:postgresql")
        );
        assert_eq!(foreign_scheme("host=x"), None);
    }

    #[test]
    fn full_url() {
        let p = url("postgresql://bob:s3cret@db.example.com:6543/shop?sslmode=require&application_name=etl&connect_timeout=7").unwrap();
        assert_eq!(p.user.as_deref(), Some("bob"));
        assert_eq!(pw(&p), Some("s3cret"));
        assert_eq!(p.host.as_deref(), Some("db.example.com"));
        assert_eq!(p.port.as_deref(), Some("6543"));
        assert_eq!(p.dbname.as_deref(), Some("shop"));
        assert_eq!(p.sslmode.as_deref(), Some("require"));
        assert_eq!(p.application_name.as_deref(), Some("etl"));
        assert_eq!(p.connect_timeout.as_deref(), Some("7"));
    }

    #[test]
    fn minimal_and_empty_parts() {
        let p = url("postgresql://").unwrap();
        assert!(p.host.is_none() && p.user.is_none() && p.dbname.is_none());
        let p = url("postgres://h").unwrap();
        assert_eq!(p.host.as_deref(), Some("h"));
        let p = url("postgresql://h/").unwrap();
        assert!(p.dbname.is_none(), "empty path leaves dbname unset");
        let p = url("postgresql://@h:/db").unwrap();
        assert!(p.user.is_none() && p.port.is_none());
        let p = url("postgresql://u:@h").unwrap();
        assert!(p.password.is_none(), "empty password is no password");
        let p = url("postgresql://:pw@h").unwrap();
        assert!(p.user.is_none());
        assert_eq!(pw(&p), Some("pw"));
    }

    #[test]
    fn percent_decoding_everywhere() {
        let p =
            url("postgresql://us%65r:p%40ss%23w%2Fo%3Fr%3Ad%25@h/my%20db?application_name=a%26b")
                .unwrap();
        assert_eq!(p.user.as_deref(), Some("user"));
        assert_eq!(pw(&p), Some("p@ss#w/o?r:d%"));
        assert_eq!(p.dbname.as_deref(), Some("my db"));
        assert_eq!(p.application_name.as_deref(), Some("a&b"));
    }

    #[test]
    fn socket_hosts() {
        let p = url("postgresql:///mydb?host=/var/run/postgresql").unwrap();
        assert_eq!(p.host.as_deref(), Some("/var/run/postgresql"));
        assert_eq!(p.dbname.as_deref(), Some("mydb"));
        let p = url("postgresql://%2Fvar%2Frun%2Fpostgresql/mydb").unwrap();
        assert_eq!(p.host.as_deref(), Some("/var/run/postgresql"));
        let p = url("postgresql://%2ftmp:5433/db").unwrap();
        assert_eq!(p.host.as_deref(), Some("/tmp"));
        assert_eq!(p.port.as_deref(), Some("5433"));
        let p = url("postgresql://user@/db?host=%2Ftmp&port=5433").unwrap();
        assert_eq!(p.host.as_deref(), Some("/tmp"));
        assert_eq!(p.user.as_deref(), Some("user"));
    }

    #[test]
    fn ipv6_hosts() {
        let p = url("postgresql://[::1]:5433/db").unwrap();
        assert_eq!(p.host.as_deref(), Some("::1"));
        assert_eq!(p.port.as_deref(), Some("5433"));
        let p = url("postgresql://u:p@[2001:db8::7]/db").unwrap();
        assert_eq!(p.host.as_deref(), Some("2001:db8::7"));
        assert!(url("postgresql://[::1/db").is_err());
        assert!(url("postgresql://[]/db").is_err());
        assert!(url("postgresql://[::1]x/db").is_err());
    }

    #[test]
    fn query_overrides_and_options() {
        let p = url("postgresql://h1:1/db1?host=h2&port=2&dbname=db2&user=u2").unwrap();
        assert_eq!(p.host.as_deref(), Some("h2"));
        assert_eq!(p.port.as_deref(), Some("2"));
        assert_eq!(p.dbname.as_deref(), Some("db2"));
        assert_eq!(p.user.as_deref(), Some("u2"));
        // Unlike libpq we accept an unencoded '=' inside a value.
        let p = url("postgresql://h/db?options=-csearch_path=app").unwrap();
        assert_eq!(p.options.as_deref(), Some("-csearch_path=app"));
        let p = url("postgresql://h/db?options=-c%20search_path%3Dapp%2Cpublic").unwrap();
        assert_eq!(p.options.as_deref(), Some("-c search_path=app,public"));
        let p = url("postgresql://h/db?ssl=true").unwrap();
        assert_eq!(p.sslmode.as_deref(), Some("require"));
        let p = url("postgresql://h/db?&sslmode=disable&").unwrap();
        assert_eq!(p.sslmode.as_deref(), Some("disable"));
        let p = url("postgresql://h/db?password=a%26b").unwrap();
        assert_eq!(pw(&p), Some("a&b"));
        // An email address as user in the query is fine.
        let p = url("postgresql://h:5432/db?user=me@corp.example").unwrap();
        assert_eq!(p.user.as_deref(), Some("me@corp.example"));
    }

    #[test]
    fn plain_errors() {
        let e = url("postgresql://h/db?sslmod=require").unwrap_err();
        assert_eq!(e.kind(), ConnErrorKind::InvalidConnectionString);
        assert!(
            e.to_string().contains("unknown parameter \"sslmod\""),
            "{e}"
        );
        let e = url("postgresql://h/db?search_path=app").unwrap_err();
        assert!(e.to_string().contains("options=-csearch_path=app"), "{e}");
        let e = url("postgresql://h:54x2/db").unwrap_err();
        assert!(e.to_string().contains("invalid port number"), "{e}");
        assert!(!e.to_string().contains("54x2"), "{e}");
        let e = url("postgresql://h:99999/db").unwrap_err();
        assert!(e.to_string().contains("invalid port"), "{e}");
        let e = url("postgresql://h/db?sslmode=verify").unwrap_err();
        assert!(e.to_string().contains("invalid sslmode \"verify\""), "{e}");
        let e = url("postgresql://h1,h2/db").unwrap_err();
        assert!(e.to_string().contains("several hosts"), "{e}");
        let e = url("postgresql://h1:1,h2:2/db").unwrap_err();
        assert!(e.to_string().contains("several hosts"), "{e}");
        let e = url("postgresql://h/db?host=a,b").unwrap_err();
        assert!(e.to_string().contains("several hosts"), "{e}");
        let e = url("postgresql://h/db?sslmode").unwrap_err();
        assert!(e.to_string().contains("has no '='"), "{e}");
        let e = url("postgresql://h/db?ssl=1").unwrap_err();
        assert!(e.to_string().contains("only ssl=true"), "{e}");
        let e = url("postgresql://h/my%zzdb").unwrap_err();
        assert!(e.to_string().contains("%25"), "{e}");
        let e = url("postgresql://h/db#frag").unwrap_err();
        assert!(e.to_string().contains("%23"), "{e}");
        assert_eq!(e.kind(), ConnErrorKind::InvalidConnectionString);
    }

    #[test]
    fn password_with_ampersand_in_query_is_not_echoed() {
        let e = url("postgresql://h/db?password=abc&defg").unwrap_err();
        assert!(e.to_string().contains("%26"), "{e}");
        assert!(!e.to_string().contains("defg"), "{e}");
    }

    #[test]
    fn colon_in_password_is_fine_like_libpq() {
        let p = url("postgresql://u:pa:ss@h/db").unwrap();
        assert_eq!(p.user.as_deref(), Some("u"));
        assert_eq!(pw(&p), Some("pa:ss"));
    }

    #[test]
    fn mask_query_passwords_masks_only_password() {
        assert_eq!(mask_query_passwords("h/db"), "h/db");
        assert_eq!(
            mask_query_passwords("h/db?user=a&password=secret&x=1"),
            "h/db?user=a&password=****&x=1"
        );
    }

    fn unencoded(s: &str) -> ConnError {
        let e = url(s).unwrap_err();
        assert_eq!(e.kind(), ConnErrorKind::UnencodedCharacterInPassword, "{e}");
        e
    }

    #[test]
    fn field_report_example() {
        let e = unencoded("postgresql://pgadmin:Abc123XYZ!@#@host:5432/openwebui?sslmode=require");
        let msg = e.to_string();
        assert!(msg.contains("'@' as %40"), "{msg}");
        assert!(msg.contains("'#' as %23"), "{msg}");
        assert!(
            msg.contains("postgresql://pgadmin:****@host:5432/openwebui?sslmode=require"),
            "{msg}"
        );
        assert!(!msg.contains("Abc123XYZ"), "{msg}");
        assert!(!msg.contains('\n'));
        assert_eq!(
            e.corrected_url(),
            Some("postgresql://pgadmin:****@host:5432/openwebui?sslmode=require")
        );
        assert!(!format!("{e:?}").contains("Abc123XYZ"));
    }

    #[test]
    fn each_special_character() {
        let cases = [
            ("postgresql://u:se@cret@h/db", "'@' as %40"),
            ("postgresql://u:se#cret@h/db", "'#' as %23"),
            ("postgresql://u:se/cret@h/db", "'/' as %2F"),
            ("postgresql://u:se?cret@h/db", "'?' as %3F"),
            ("postgresql://u:se:c/ret@h/db", "':' as %3A"),
            ("postgresql://u:se%cret@h/db", "'%' as %25"),
            ("postgres://u:12/34@h:5432/db", "'/' as %2F"),
            ("postgresql://u:12?sslmode=require@h/db", "'?' as %3F"),
            ("postgresql://u:5432?x@h/db", "'?' as %3F"),
            ("postgresql://u:1/2@h", "'/' as %2F"),
        ];
        for (input, expect) in cases {
            let e = unencoded(input);
            let msg = e.to_string();
            assert!(msg.contains(expect), "{input}: {msg}");
            let corrected = e.corrected_url().unwrap();
            assert!(corrected.contains("u:****@h"), "{input}: {corrected}");
            for secret in [
                "se@cret",
                "se#cret",
                "cret",
                "12/34",
                "5432?x",
                "sslmode=require@",
            ] {
                assert!(!msg.contains(secret), "{input} leaked {secret}: {msg}");
            }
        }
    }

    #[test]
    fn correction_reparses_cleanly() {
        for input in [
            "postgresql://pgadmin:Abc123XYZ!@#@host:5432/openwebui?sslmode=require",
            "postgresql://u:a/b?c#d@e:f@h:1/db?application_name=x",
            "postgres://me@srv:p@ss@h/db",
        ] {
            let e = unencoded(input);
            let corrected = e.corrected_url().unwrap().replace("****", "x");
            let (scheme, rest) = split_scheme(&corrected).unwrap();
            assert!(parse(scheme, rest).is_ok(), "{corrected}");
        }
    }

    #[test]
    fn all_at_signs_go_to_the_password() {
        let e = unencoded("postgresql://u:a@b@c@host/db");
        assert_eq!(e.corrected_url(), Some("postgresql://u:****@host/db"));
    }

    #[test]
    fn at_sign_in_user_name_azure_style() {
        let e = unencoded("postgresql://admin@myserver:pw@myserver.postgres.example.com:5432/db");
        assert!(
            e.to_string()
                .contains("the user name in the connection URL contains '@'"),
            "{e}"
        );
        assert_eq!(
            e.corrected_url(),
            Some("postgresql://admin%40myserver:****@myserver.postgres.example.com:5432/db")
        );
    }

    #[test]
    fn password_with_slash_and_at_and_no_port() {
        let e = unencoded("postgresql://u:p/w@rd@db.internal/app");
        assert_eq!(
            e.corrected_url(),
            Some("postgresql://u:****@db.internal/app")
        );
        assert!(e.to_string().contains("'@' and '/'"), "{e}");
    }

    #[test]
    fn query_value_with_at_and_slash_is_suspicious() {
        // Strictly read, this would be host "u", port 123 and an application
        // name of "a@host/db": a password "123?application_name=a" mis-split.
        let e = unencoded("postgresql://u:123?application_name=a@host/db");
        assert_eq!(e.corrected_url(), Some("postgresql://u:****@host/db"));
    }

    #[test]
    fn at_sign_in_query_value_does_not_attract_the_split() {
        let e = unencoded("postgresql://u:p@ss@h:1/db?application_name=me@home");
        assert_eq!(
            e.corrected_url(),
            Some("postgresql://u:****@h:1/db?application_name=me@home")
        );
        assert!(e.to_string().contains("contains '@',"), "{e}");
        // A password that itself contains "?sslmode=" is still repaired.
        let e = unencoded("postgresql://u:12?sslmode=require@h/db");
        assert_eq!(e.corrected_url(), Some("postgresql://u:****@h/db"));
    }

    #[test]
    fn no_repair_means_plain_error_without_echo() {
        let e = url("postgresql://u:pw9x@ss@h!st/db").unwrap_err();
        assert_eq!(e.kind(), ConnErrorKind::InvalidConnectionString);
        assert!(!e.to_string().contains("pw9x"), "{e}");
        assert!(!e.to_string().contains("ss@"), "{e}");
        let e = url("postgresql://user:hunter2/db").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn masked_query_password_in_correction() {
        let e = unencoded("postgresql://u:p@ss@h/db?password=other");
        assert_eq!(
            e.corrected_url(),
            Some("postgresql://u:****@h/db?password=****")
        );
    }
}
