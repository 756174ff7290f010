//! The `sslmode` connection parameter.

use std::fmt;
use std::str::FromStr;

/// libpq's `sslmode`: whether and how the connection uses TLS.
///
/// All six libpq values parse. [`connect`](crate::connect) supports
/// `disable`, `allow`, `prefer` and `require` today; `verify-ca` and
/// `verify-full` are rejected with
/// [`ConnErrorKind::TlsModeNotSupported`](crate::ConnErrorKind::TlsModeNotSupported)
/// until certificate verification lands.
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
    /// Always use TLS, but do not verify the server's certificate.
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

    /// Whether [`connect`](crate::connect) can use this mode in this release.
    pub fn is_supported(self) -> bool {
        !matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
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
        assert!(SslMode::Require.is_supported());
        assert!(!SslMode::VerifyCa.is_supported());
        assert!(!SslMode::VerifyFull.is_supported());
        assert!(SslMode::Require.requires_tls());
        assert!(!SslMode::Prefer.requires_tls());
        assert!(!SslMode::Allow.requires_tls());
    }
}
