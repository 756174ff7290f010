//! TLS client configurations with libpq's semantics.
//!
//! * Which roots are trusted: `sslrootcert=FILE` (PEM, one or more CA
//!   certificates), `sslrootcert=system` (the OS store, through
//!   `rustls-native-certs`), else `~/.postgresql/root.crt` when it exists.
//! * How much is verified ([`Verification`]): nothing for `allow`, `prefer`
//!   and `require` without a root file; the chain for `verify-ca` (and, as
//!   in libpq, for the weaker modes when a root file exists); the chain and
//!   the host name for `verify-full`. Host names are matched against the
//!   certificate's subjectAltName entries, and against its common name when
//!   it has no DNS or IP subjectAltName, as libpq does.
//! * Client certificates: `sslcert`/`sslkey`, else
//!   `~/.postgresql/postgresql.crt`/`.key` when the certificate exists. The
//!   key must not be readable by group or others (libpq's rule).
//!
//! The verifier remembers the certificate the server presented, so that
//! errors can name its subject, issuer and names ([`TlsContext`]).
//!
//! The parts, one module each:
//!
//! * [`roots`]: which roots are trusted, loaded from a PEM file or the OS store.
//! * [`client_cert`]: the client certificate and its key, and libpq's rule for
//!   the key's permissions.
//! * [`verifier`]: the rustls verifier that checks as much as [`Verification`]
//!   says, with libpq's common-name fallback.
//! * [`cert_info`]: what messages say about a certificate (names, dates).

mod cert_info;
mod client_cert;
mod roots;
mod verifier;

pub(crate) use cert_info::format_utc;
pub(crate) use client_cert::{client_cert_common_name, client_cert_in_use};

use crate::config::ConnConfig;
use crate::error::{ConnError, ConnErrorKind};
use crate::sslmode::{SslMode, SslNegotiation};
use cert_info::CertInfo;
use client_cert::{client_key_mismatch, load_client_cert};
use roots::{load_roots, RootsSource};
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use verifier::PgServerVerifier;

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verification {
    /// Nothing: the connection is encrypted but the server not authenticated.
    None,
    /// The chain up to a trusted root (`verify-ca`).
    Chain,
    /// The chain and the host name (`verify-full`).
    Full,
}

/// What a connection attempt trusted and presented, for wording errors.
#[derive(Debug, Clone)]
pub(crate) struct TlsContext {
    pub(crate) verification: Verification,
    pub(crate) roots: Option<RootsSource>,
    pub(crate) client_cert: Option<PathBuf>,
    presented: Arc<Mutex<Option<CertificateDer<'static>>>>,
}

impl TlsContext {
    /// The server's certificate, if the handshake got that far.
    pub(crate) fn presented(&self) -> Option<CertInfo> {
        let guard = self.presented.lock().ok()?;
        guard.as_ref().and_then(|der| CertInfo::parse(der))
    }
}

/// A rustls configuration and what it trusts.
pub(crate) struct TlsSetup {
    pub(crate) config: ClientConfig,
    pub(crate) context: TlsContext,
}

/// Builds the TLS configuration for `config`: loads the roots and the
/// client certificate, checks the key's permissions. Errors are
/// [`ConnErrorKind::TlsConfiguration`] and name the file and what to do.
pub(crate) fn setup(config: &ConnConfig) -> Result<TlsSetup, ConnError> {
    let mode = config.sslmode();
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let (roots, root_ders, roots_source) = load_roots(config)?;
    let verification = match (mode, &roots) {
        (SslMode::VerifyFull, _) => Verification::Full,
        (SslMode::VerifyCa, _) => Verification::Chain,
        (_, Some(_)) => Verification::Chain,
        (_, None) => Verification::None,
    };
    let presented = Arc::new(Mutex::new(None));
    let verifier = PgServerVerifier {
        provider: provider.clone(),
        roots: roots.map(Arc::new),
        root_ders,
        check_name: verification == Verification::Full,
        presented: presented.clone(),
    };

    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            ConnError::new(
                ConnErrorKind::Other,
                format!("could not set up TLS: {e}; this is a bug in pgharbor, please report it"),
            )
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));

    let client = load_client_cert(config)?;
    let client_cert = client.as_ref().map(|c| c.cert_path.clone());
    let mut tls = match client {
        None => builder.with_no_client_auth(),
        Some(c) => builder
            .with_client_auth_cert(c.chain, c.key)
            .map_err(|e| client_key_mismatch(&c.cert_path, &c.key_path, &e))?,
    };
    if config.ssl_negotiation() == SslNegotiation::Direct {
        // PostgreSQL 17 insists on ALPN for direct TLS.
        tls.alpn_protocols = vec![b"postgresql".to_vec()];
    }
    Ok(TlsSetup {
        config: tls,
        context: TlsContext {
            verification,
            roots: roots_source,
            client_cert,
            presented,
        },
    })
}

fn tls_file_error(message: String) -> ConnError {
    ConnError::new(ConnErrorKind::TlsConfiguration, message)
}

/// A TLS file that could not be read: `what` failed, the file system's
/// error being the cause.
fn tls_file_unreadable(what: String, e: std::io::Error) -> ConnError {
    ConnError::new(ConnErrorKind::TlsConfiguration, what)
        .with_cause(e.to_string())
        .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Environment;

    pub(super) fn cfg(s: &str, env: &Environment) -> ConnConfig {
        ConnConfig::parse_with_env(s, env).unwrap()
    }

    #[test]
    fn modes_without_roots_do_not_verify() {
        let home = tempfile::tempdir().unwrap();
        let env = Environment::empty()
            .with_os_user("me")
            .with_home_dir(home.path());
        for mode in ["allow", "prefer", "require"] {
            let s = setup(&cfg(&format!("host=h sslmode={mode}"), &env)).unwrap();
            assert_eq!(s.context.verification, Verification::None, "{mode}");
            assert!(s.context.roots.is_none());
            assert!(s.context.client_cert.is_none());
        }
    }

    #[test]
    fn direct_negotiation_offers_alpn() {
        let env = Environment::empty().with_os_user("me");
        let s = setup(&cfg("host=h sslmode=require sslnegotiation=direct", &env)).unwrap();
        assert_eq!(s.config.alpn_protocols, vec![b"postgresql".to_vec()]);
        let s = setup(&cfg("host=h sslmode=require", &env)).unwrap();
        assert!(s.config.alpn_protocols.is_empty());
    }
}
