//! Who may read what `serve` serves: the `[auth]` section.
//!
//! ```toml
//! [auth]
//! token = { env = "PGHARBOR_TOKEN" }      # Authorization: Bearer <token>, or the password of Basic auth
//! user = "ops"                            # Basic auth: user name …
//! password = { file = "/run/secrets/pgharbor-password" }   # … and password (both or neither)
//! metrics = "protected"                   # /metrics: "protected" (the default) or "open"
//! healthz = "open"                        # /healthz: "open" (the default) or "protected"
//! metrics_token = { env = "SCRAPE_TOKEN" }   # optional: opens /metrics and /healthz only
//! ```
//!
//! The dashboard (`/`) and `/api/status` need the token or the user and
//! password whenever either is configured. Secrets come from the usual
//! secret sources and are kept only as SHA-256 digests; a presented
//! credential is hashed and compared with each digest in constant time, so
//! neither its content nor its length shows in the time an answer takes.
//! Nothing here logs a credential.

use crate::error::{HealthError, HealthErrorKind, Result};
use pgharbor_conn::{Secret, SecretSource};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::net::SocketAddr;
use subtle::{Choice, ConstantTimeEq as _};

/// The shortest token or password accepted: a guessable secret protects nothing.
pub const MIN_SECRET_CHARS: usize = 16;

/// Whether an endpoint asks for credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Anyone who can reach it may read it.
    Open,
    /// Only with the credentials of `[auth]`.
    Protected,
}

/// The `[auth]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The bearer token (also accepted as the password of Basic auth).
    pub token: Option<SecretSource>,
    /// Basic auth: the user name.
    pub user: Option<String>,
    /// Basic auth: the password.
    pub password: Option<SecretSource>,
    /// `/metrics`: protected unless `"open"`.
    pub metrics: Option<Access>,
    /// `/healthz`: open unless `"protected"`.
    pub healthz: Option<Access>,
    /// A token that opens `/metrics` and `/healthz` only (for a scraper).
    pub metrics_token: Option<SecretSource>,
}

impl AuthConfig {
    /// The settings whose secret is written in the file itself, for a
    /// warning (`{ env = … }` or `{ file = … }` keep it out).
    pub fn literal_secrets(&self) -> Vec<&'static str> {
        [
            ("token", &self.token),
            ("password", &self.password),
            ("metrics_token", &self.metrics_token),
        ]
        .into_iter()
        .filter(|(_, source)| source.as_ref().is_some_and(SecretSource::is_literal))
        .map(|(name, _)| name)
        .collect()
    }
}

/// What a request asks for, as far as credentials go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/`, `/api/status` and every other path.
    Dashboard,
    /// `/metrics`.
    Metrics,
    /// `/healthz`.
    Healthz,
}

impl Endpoint {
    /// The endpoint a request path belongs to.
    pub fn of_path(path: &str) -> Endpoint {
        match path {
            "/metrics" => Endpoint::Metrics,
            "/healthz" => Endpoint::Healthz,
            _ => Endpoint::Dashboard,
        }
    }
}

/// Why a request was let in or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It may read the endpoint.
    Allowed,
    /// It sent no credentials (or a scheme other than Bearer and Basic).
    Missing,
    /// It sent credentials that match nothing configured.
    Wrong,
}

type Digest = [u8; 32];

fn digest(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// Whether `presented` equals one of `expected`, in time independent of
/// where they differ (every digest is compared, none short-circuits).
fn matches_any<'a>(presented: &Digest, expected: impl IntoIterator<Item = &'a Digest>) -> Choice {
    expected
        .into_iter()
        .fold(Choice::from(0), |found, e| found | presented.ct_eq(e))
}

/// The credentials of `[auth]`, resolved and hashed.
#[derive(Debug, Clone)]
pub struct Auth {
    token: Option<Digest>,
    basic: Option<(Digest, Digest)>,
    metrics_token: Option<Digest>,
    metrics: Access,
    healthz: Access,
}

impl Auth {
    /// No credentials: every endpoint open (no `[auth]` section).
    pub fn none() -> Auth {
        Auth {
            token: None,
            basic: None,
            metrics_token: None,
            metrics: Access::Open,
            healthz: Access::Open,
        }
    }

    /// Resolves `[auth]`'s secrets. Errors name the setting and where its
    /// secret was to come from, never the secret.
    pub fn from_config(config: &AuthConfig) -> Result<Auth> {
        let token = config
            .token
            .as_ref()
            .map(|s| resolve_token("token", s))
            .transpose()?;
        let metrics_token = config
            .metrics_token
            .as_ref()
            .map(|s| resolve_token("metrics_token", s))
            .transpose()?;
        let basic = resolve_basic(config)?;
        let dashboard_protected = token.is_some() || basic.is_some();
        let metrics = config.metrics.unwrap_or(Access::Protected);
        let healthz = config.healthz.unwrap_or(Access::Open);
        for (name, access) in [("metrics", config.metrics), ("healthz", config.healthz)] {
            if access == Some(Access::Protected) && !dashboard_protected && metrics_token.is_none()
            {
                return Err(invalid(format!(
                    "[auth] {name} = \"protected\" needs credentials: set token, user and password, or metrics_token"
                )));
            }
        }
        if !dashboard_protected {
            if metrics_token.is_some() {
                return Err(invalid(
                    "[auth] metrics_token is set but the dashboard has no credentials: set token, or user and password",
                ));
            }
            return Ok(Auth::none());
        }
        Ok(Auth {
            token,
            basic,
            metrics_token,
            metrics,
            healthz,
        })
    }

    /// Whether the dashboard and `/api/status` ask for credentials.
    pub fn protects_dashboard(&self) -> bool {
        self.token.is_some() || self.basic.is_some()
    }

    /// Whether `endpoint` asks for credentials.
    pub fn access(&self, endpoint: Endpoint) -> Access {
        let configured = match endpoint {
            Endpoint::Dashboard => Access::Protected,
            Endpoint::Metrics => self.metrics,
            Endpoint::Healthz => self.healthz,
        };
        if self.protects_dashboard() {
            configured
        } else {
            Access::Open
        }
    }

    /// Whether a request for `endpoint` carrying the `Authorization` header
    /// `authorization` may be answered.
    pub fn check(&self, endpoint: Endpoint, authorization: Option<&[u8]>) -> Verdict {
        if self.access(endpoint) == Access::Open {
            return Verdict::Allowed;
        }
        let Some(presented) = authorization.and_then(Credentials::parse) else {
            return Verdict::Missing;
        };
        let scrape_only = endpoint != Endpoint::Dashboard;
        let tokens = self
            .token
            .iter()
            .chain(self.metrics_token.iter().filter(|_| scrape_only));
        let accepted = match presented {
            Credentials::Bearer(token) => matches_any(&digest(&token), tokens),
            Credentials::Basic { user, password } => {
                let password = digest(&password);
                let as_user = self.basic.as_ref().map_or(Choice::from(0), |(u, p)| {
                    digest(&user).ct_eq(u) & password.ct_eq(p)
                });
                as_user | matches_any(&password, tokens)
            }
        };
        if bool::from(accepted) {
            Verdict::Allowed
        } else {
            Verdict::Wrong
        }
    }
}

/// Credentials from an `Authorization` header.
enum Credentials {
    Bearer(Vec<u8>),
    Basic { user: Vec<u8>, password: Vec<u8> },
}

impl Credentials {
    /// `Bearer <token>` or `Basic <base64 of user:password>` (scheme in any
    /// case); `None` for anything else, including malformed Basic.
    fn parse(header: &[u8]) -> Option<Credentials> {
        use base64::Engine as _;
        let text = std::str::from_utf8(header).ok()?.trim();
        let (scheme, value) = text.split_once(' ')?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(Credentials::Bearer(value.as_bytes().to_vec()));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?;
        let colon = decoded.iter().position(|&b| b == b':')?;
        Some(Credentials::Basic {
            user: decoded[..colon].to_vec(),
            password: decoded[colon + 1..].to_vec(),
        })
    }
}

fn invalid(message: impl Into<String>) -> HealthError {
    HealthError::new(HealthErrorKind::InvalidInput, message)
}

/// The secret of setting `name` (wiped from memory when dropped; only its
/// digest is kept), refused when shorter than [`MIN_SECRET_CHARS`]. The
/// error names the setting and where the secret came from, not its length.
fn resolve(name: &str, source: &SecretSource) -> Result<Secret> {
    let secret = source
        .resolve()
        .map_err(|e| invalid(format!("[auth] {name}: {e}")))?;
    if secret.expose().chars().count() < MIN_SECRET_CHARS {
        return Err(invalid(format!(
            "[auth] {name} from the {} has fewer than {MIN_SECRET_CHARS} characters; use at least \
             {MIN_SECRET_CHARS} (e.g. openssl rand -hex 32)",
            source.describe()
        )));
    }
    Ok(secret)
}

/// The digests of `user` and `password`, both set or neither.
fn resolve_basic(config: &AuthConfig) -> Result<Option<(Digest, Digest)>> {
    match (&config.user, &config.password) {
        (Some(user), Some(password)) => {
            if user.is_empty() || user.contains(':') {
                return Err(invalid(
                    "[auth] user must not be empty or contain ':' (Basic auth separates user and password with it)",
                ));
            }
            let password = resolve("password", password)?;
            Ok(Some((
                digest(user.as_bytes()),
                digest(password.expose().as_bytes()),
            )))
        }
        (None, None) => Ok(None),
        (Some(_), None) => Err(invalid("[auth] user is set without password")),
        (None, Some(_)) => Err(invalid("[auth] password is set without user")),
    }
}

fn resolve_token(name: &str, source: &SecretSource) -> Result<Digest> {
    Ok(digest(resolve(name, source)?.expose().as_bytes()))
}

/// Refuses to serve the dashboard without credentials beyond loopback.
///
/// `addrs` are the addresses the listen address resolves to; any that is
/// not loopback (`0.0.0.0` and `::` included) means others can connect.
/// `insecure_no_auth` is the explicit `--insecure-no-auth`, for setups where
/// something in front (a reverse proxy) authenticates.
pub fn check_exposure(
    listen: &str,
    addrs: &[SocketAddr],
    auth: &Auth,
    insecure_no_auth: bool,
) -> Result<()> {
    let exposed = addrs.iter().any(beyond_loopback);
    if !exposed || auth.protects_dashboard() || insecure_no_auth {
        return Ok(());
    }
    Err(invalid(format!(
        "refusing to serve on {listen} without authentication: anyone who can reach it would read query texts, users, \
         client addresses and database names. Add an [auth] section with token = {{ env = \"PGHARBOR_TOKEN\" }} \
         (or user and password) to the configuration, listen on 127.0.0.1, or pass --insecure-no-auth when \
         something in front (a reverse proxy) authenticates"
    )))
}

/// Whether others than this machine can connect to `addr`: it is not
/// loopback (`0.0.0.0` and `::` are not; `::ffff:127.0.0.1` is).
pub fn beyond_loopback(addr: &SocketAddr) -> bool {
    !addr.ip().to_canonical().is_loopback()
}

/// What `serve` warns about once it listens on `local`: a dashboard open
/// to the network (only with `--insecure-no-auth`, [`check_exposure`]
/// refuses it otherwise), and credentials sent over the network without
/// `tls`.
pub fn exposure_warnings(local: &SocketAddr, auth: &Auth, tls: bool) -> Vec<String> {
    if !beyond_loopback(local) {
        return Vec::new();
    }
    if !auth.protects_dashboard() {
        return vec![format!(
            "--insecure-no-auth: the dashboard and /api/status are open to anyone who can reach {local}"
        )];
    }
    if tls {
        return Vec::new();
    }
    vec![format!(
        "{local} is not loopback and there is no [tls] section: tokens and passwords cross the network in clear \
         unless a TLS-terminating proxy is in front; add [tls] cert and key to serve HTTPS"
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const TOKEN: &str = "tok-0123456789abcdef";

    fn parse(text: &str) -> Result<Auth> {
        #[derive(Deserialize)]
        struct File {
            auth: AuthConfig,
        }
        let file: File = toml::from_str(text).expect("TOML");
        Auth::from_config(&file.auth)
    }

    fn basic(user: &str, password: &str) -> Vec<u8> {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}").into_bytes()
    }

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    #[test]
    fn token_opens_everything_in_either_scheme() {
        let auth = parse(&format!("[auth]\ntoken = \"{TOKEN}\"")).unwrap();
        for endpoint in [Endpoint::Dashboard, Endpoint::Metrics] {
            assert_eq!(auth.check(endpoint, None), Verdict::Missing);
            assert_eq!(auth.check(endpoint, Some(&bearer(TOKEN))), Verdict::Allowed);
            assert_eq!(
                auth.check(endpoint, Some(format!("bEaReR  {TOKEN} ").as_bytes())),
                Verdict::Allowed
            );
            assert_eq!(
                auth.check(endpoint, Some(&basic("anyone", TOKEN))),
                Verdict::Allowed
            );
            assert_eq!(
                auth.check(endpoint, Some(&bearer("tok-0123456789abcdeX"))),
                Verdict::Wrong
            );
            assert_eq!(
                auth.check(endpoint, Some(&bearer(&TOKEN[..10]))),
                Verdict::Wrong
            );
            assert_eq!(
                auth.check(endpoint, Some(&basic(TOKEN, "x"))),
                Verdict::Wrong
            );
            assert_eq!(auth.check(endpoint, Some(b"Digest abc")), Verdict::Missing);
            assert_eq!(
                auth.check(endpoint, Some(b"Basic not-base64!")),
                Verdict::Missing
            );
        }
        assert_eq!(
            auth.check(Endpoint::Healthz, None),
            Verdict::Allowed,
            "open by default"
        );
    }

    #[test]
    fn literal_secrets_are_named_for_a_warning() {
        let config: AuthConfig = toml::from_str(&format!(
            "token = \"{TOKEN}\"\nuser = \"ops\"\npassword = {{ env = \"X\" }}\nmetrics_token = \"{TOKEN}\""
        ))
        .unwrap();
        assert_eq!(config.literal_secrets(), ["token", "metrics_token"]);
        assert!(AuthConfig::default().literal_secrets().is_empty());
    }

    #[test]
    fn user_and_password_must_both_match() {
        let auth = parse("[auth]\nuser = \"ops\"\npassword = \"pw-Ä1-0123456789\"").unwrap();
        let dash = Endpoint::Dashboard;
        assert_eq!(
            auth.check(dash, Some(&basic("ops", "pw-Ä1-0123456789"))),
            Verdict::Allowed
        );
        assert_eq!(
            auth.check(dash, Some(&basic("ops", "pw-Ä2-0123456789"))),
            Verdict::Wrong
        );
        assert_eq!(
            auth.check(dash, Some(&basic("opz", "pw-Ä1-0123456789"))),
            Verdict::Wrong
        );
        assert_eq!(
            auth.check(dash, Some(&bearer("pw-Ä1-0123456789"))),
            Verdict::Wrong
        );
    }

    #[test]
    fn metrics_token_opens_only_metrics_and_healthz() {
        let auth = parse(&format!(
            "[auth]\ntoken = \"{TOKEN}\"\nhealthz = \"protected\"\nmetrics_token = \"scrape-0123456789abcdef\""
        ))
        .unwrap();
        let scrape = bearer("scrape-0123456789abcdef");
        assert_eq!(
            auth.check(Endpoint::Metrics, Some(&scrape)),
            Verdict::Allowed
        );
        assert_eq!(
            auth.check(Endpoint::Healthz, Some(&scrape)),
            Verdict::Allowed
        );
        assert_eq!(auth.check(Endpoint::Healthz, None), Verdict::Missing);
        assert_eq!(
            auth.check(Endpoint::Dashboard, Some(&scrape)),
            Verdict::Wrong
        );
    }

    #[test]
    fn open_metrics_and_no_auth_at_all() {
        let auth = parse(&format!("[auth]\ntoken = \"{TOKEN}\"\nmetrics = \"open\"")).unwrap();
        assert_eq!(auth.check(Endpoint::Metrics, None), Verdict::Allowed);
        assert_eq!(auth.check(Endpoint::Dashboard, None), Verdict::Missing);
        let none = Auth::none();
        assert!(!none.protects_dashboard());
        assert_eq!(none.check(Endpoint::Dashboard, None), Verdict::Allowed);
    }

    #[test]
    fn configuration_errors_name_the_setting_not_the_secret() {
        for (text, needle) in [
            (
                "[auth]\ntoken = \"short-secret\"",
                "token from the literal value has fewer than 16 characters; use at least 16",
            ),
            (
                "[auth]\nuser = \"ops\"\npassword = \"short-secret\"",
                "password from the literal value has fewer than 16 characters; use at least 16",
            ),
            ("[auth]\nuser = \"ops\"", "user is set without password"),
            ("[auth]\npassword = \"x\"", "password is set without user"),
            (
                "[auth]\nuser = \"a:b\"\npassword = \"x\"",
                "must not be empty or contain ':'",
            ),
            (
                "[auth]\nmetrics = \"protected\"",
                "metrics = \"protected\" needs credentials",
            ),
            (
                "[auth]\nmetrics_token = \"scrape-0123456789abcdef\"",
                "metrics_token is set but the dashboard has no credentials",
            ),
            (
                "[auth]\ntoken = { env = \"PGH_TEST_SURELY_UNSET\" }",
                "[auth] token: the environment variable PGH_TEST_SURELY_UNSET is not set",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(
                !err.contains("short-secret") && !err.contains("scrape-0123"),
                "{err}"
            );
            assert!(!err.contains("12"), "the secret's length shows: {err}");
        }
    }

    #[test]
    fn exposure_beyond_loopback_needs_auth_or_the_explicit_flag() {
        let any: SocketAddr = "0.0.0.0:8732".parse().unwrap();
        let v6_any: SocketAddr = "[::]:8732".parse().unwrap();
        let loopback: Vec<SocketAddr> = vec![
            "127.0.0.1:8732".parse().unwrap(),
            "[::1]:8732".parse().unwrap(),
            "[::ffff:127.0.0.1]:8732".parse().unwrap(),
        ];
        let none = Auth::none();
        assert!(check_exposure("localhost:8732", &loopback, &none, false).is_ok());
        for addr in [any, v6_any] {
            let err = check_exposure("x:8732", &[addr], &none, false)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("refusing to serve on x:8732 without authentication"),
                "{err}"
            );
            assert!(err.contains("--insecure-no-auth"), "{err}");
            assert!(check_exposure("x:8732", &[addr], &none, true).is_ok());
        }
        // A name that resolves to loopback and to another address is exposed.
        let both = [loopback[0], "192.0.2.10:8732".parse().unwrap()];
        let err = check_exposure("dual.example:8732", &both, &none, false).unwrap_err();
        assert!(
            err.to_string()
                .contains("refusing to serve on dual.example:8732 without authentication"),
            "{err}"
        );
        let auth = parse(&format!("[auth]\ntoken = \"{TOKEN}\"")).unwrap();
        assert!(check_exposure("0.0.0.0:8732", &[any], &auth, false).is_ok());
    }

    #[test]
    fn credentials_in_clear_beyond_loopback_are_warned_about() {
        let auth = parse(&format!("[auth]\ntoken = \"{TOKEN}\"")).unwrap();
        let lan: SocketAddr = "192.0.2.10:8732".parse().unwrap();
        let any: SocketAddr = "[::]:8732".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:8732".parse().unwrap();
        for local in [lan, any] {
            let warnings = exposure_warnings(&local, &auth, false);
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            for needle in [
                "cross the network in clear",
                "TLS-terminating proxy",
                "[tls]",
                &local.to_string(),
            ] {
                assert!(warnings[0].contains(needle), "{needle} not in {warnings:?}");
            }
            assert!(exposure_warnings(&local, &auth, true).is_empty());
        }
        assert!(exposure_warnings(&loopback, &auth, false).is_empty());
        let open = exposure_warnings(&lan, &Auth::none(), false);
        assert_eq!(open.len(), 1, "{open:?}");
        assert!(
            open[0].contains("--insecure-no-auth: the dashboard and /api/status are open"),
            "{open:?}"
        );
        assert!(exposure_warnings(&loopback, &Auth::none(), false).is_empty());
    }
}
