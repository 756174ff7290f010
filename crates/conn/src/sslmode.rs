//! The `sslmode`, `sslnegotiation` and `channel_binding` connection parameters.

use std::fmt;
use std::str::FromStr;

/// libpq's `sslmode`: whether and how the connection uses TLS.
///
/// All six libpq values parse, and [`connect`](crate::connect) honours all
/// of them with libpq's semantics:
///
/// | mode | encrypted | server authenticated |
/// | --- | --- | --- |
/// | `disable` | never | no |
/// | `allow`, `prefer` | if the server offers TLS | only if a root certificate file exists (`sslrootcert` or `~/.postgresql/root.crt`) |
/// | `require` | always | only if a root certificate file exists (then like `verify-ca`) |
/// | `verify-ca` | always | certificate chain checked against `sslrootcert` |
/// | `verify-full` | always | chain checked, and the certificate must name the host |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// libpq tries plain first; pgharbor treats it like `prefer` (TLS if the
    /// server offers it, plain otherwise).
    Allow,
    /// Use TLS if the server supports it, plain otherwise (the default).
    #[default]
    Prefer,
    /// Always use TLS, but do not verify the server's certificate (unless a
    /// root certificate file exists: then the chain is checked, as in
    /// `verify-ca`).
    Require,
    /// Use TLS and verify the certificate chain against trusted roots.
    VerifyCa,
    /// Use TLS, verify the chain and that the certificate names the host.
    VerifyFull,
}

impl SslMode {
    /// Every mode, in libpq's order from weakest to strongest.
    pub const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The libpq spelling (`disable`, `verify-full`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether [`connect`](crate::connect) can use this mode. Every mode is
    /// supported since certificate verification landed; kept for callers
    /// written against earlier releases.
    pub fn is_supported(self) -> bool {
        true
    }

    /// Whether this mode always verifies the server's certificate chain
    /// (`verify-ca`, `verify-full`).
    pub fn verifies_certificate(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// Whether the connection must be encrypted (fails if the server has no TLS).
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a string is not one of libpq's six `sslmode` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSslMode(pub String);

impl fmt::Display for InvalidSslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid sslmode \"{}\"; use one of disable, allow, prefer, require, verify-ca, verify-full",
            self.0
        )
    }
}

impl std::error::Error for InvalidSslMode {}

impl FromStr for SslMode {
    type Err = InvalidSslMode;

    /// Parses the libpq spelling. Like libpq, the match is case-sensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SslMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| InvalidSslMode(s.to_owned()))
    }
}

/// libpq's `sslnegotiation`: how TLS is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslNegotiation {
    /// Ask with PostgreSQL's `SSLRequest` message first, then start TLS if
    /// the server agrees (every server version; the default).
    #[default]
    Postgres,
    /// Start the TLS handshake at once, without `SSLRequest`, saving a round
    /// trip (ALPN `postgresql`). Needs PostgreSQL 17 or later, and `sslmode`
    /// `require`, `verify-ca` or `verify-full`.
    Direct,
}

impl SslNegotiation {
    /// The libpq spelling (`postgres`, `direct`).
    pub fn as_str(self) -> &'static str {
        match self {
            SslNegotiation::Postgres => "postgres",
            SslNegotiation::Direct => "direct",
        }
    }
}

impl fmt::Display for SslNegotiation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslNegotiation {
    type Err = String;

    /// Parses `postgres` or `direct` (case-sensitive, as libpq).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "postgres" => Ok(SslNegotiation::Postgres),
            "direct" => Ok(SslNegotiation::Direct),
            _ => Err(format!(
                "invalid sslnegotiation \"{s}\"; use postgres or direct"
            )),
        }
    }
}

/// libpq's `channel_binding`: whether SCRAM authentication binds itself to
/// the TLS channel (`SCRAM-SHA-256-PLUS`), which defeats a man in the middle
/// even when the server's certificate is not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChannelBinding {
    /// Never use channel binding.
    Disable,
    /// Use it when the connection is encrypted and the server offers it
    /// (the default).
    #[default]
    Prefer,
    /// Insist on it: the connection fails unless the server authenticates
    /// with SCRAM over TLS with channel binding. Rules out `trust`,
    /// `password`, `md5` and certificate-only authentication.
    Require,
}

impl ChannelBinding {
    /// The libpq spelling (`disable`, `prefer`, `require`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelBinding::Disable => "disable",
            ChannelBinding::Prefer => "prefer",
            ChannelBinding::Require => "require",
        }
    }
}

impl fmt::Display for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelBinding {
    type Err = String;

    /// Parses `disable`, `prefer` or `require` (case-sensitive, as libpq).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disable" => Ok(ChannelBinding::Disable),
            "prefer" => Ok(ChannelBinding::Prefer),
            "require" => Ok(ChannelBinding::Require),
            _ => Err(format!(
                "invalid channel_binding \"{s}\"; use disable, prefer or require"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_six_values_and_round_trips() {
        for mode in SslMode::ALL {
            assert_eq!(mode.as_str().parse::<SslMode>().unwrap(), mode);
            assert_eq!(mode.to_string(), mode.as_str());
        }
        assert_eq!(
            "verify-full".parse::<SslMode>().unwrap(),
            SslMode::VerifyFull
        );
        assert_eq!("verify-ca".parse::<SslMode>().unwrap(), SslMode::VerifyCa);
    }

    #[test]
    fn rejects_unknown_and_wrong_case() {
        for bad in ["", "REQUIRE", "verify_full", "true", "on", "required"] {
            let err = bad.parse::<SslMode>().unwrap_err();
            assert!(err.to_string().contains("invalid sslmode"), "{err}");
        }
    }

    #[test]
    fn support_and_strength() {
        assert_eq!(SslMode::default(), SslMode::Prefer);
        assert!(SslMode::ALL.iter().all(|m| m.is_supported()));
        assert!(SslMode::VerifyCa.verifies_certificate());
        assert!(SslMode::VerifyFull.verifies_certificate());
        assert!(!SslMode::Require.verifies_certificate());
        assert!(SslMode::Require.requires_tls());
        assert!(!SslMode::Prefer.requires_tls());
        assert!(!SslMode::Allow.requires_tls());
    }

    #[test]
    fn negotiation_and_channel_binding_parse() {
        assert_eq!(SslNegotiation::default(), SslNegotiation::Postgres);
        for n in [SslNegotiation::Postgres, SslNegotiation::Direct] {
            assert_eq!(n.as_str().parse::<SslNegotiation>().unwrap(), n);
            assert_eq!(n.to_string(), n.as_str());
        }
        assert!("Direct"
            .parse::<SslNegotiation>()
            .unwrap_err()
            .contains("use postgres or direct"));
        assert_eq!(ChannelBinding::default(), ChannelBinding::Prefer);
        for c in [
            ChannelBinding::Disable,
            ChannelBinding::Prefer,
            ChannelBinding::Require,
        ] {
            assert_eq!(c.as_str().parse::<ChannelBinding>().unwrap(), c);
            assert_eq!(c.to_string(), c.as_str());
        }
        assert!("on"
            .parse::<ChannelBinding>()
            .unwrap_err()
            .contains("invalid channel_binding"));
    }
}
