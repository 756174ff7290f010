//! TLS client configurations for each `sslmode`.
//!
//! `prefer`, `allow` and `require` encrypt without authenticating the server,
//! as libpq does when no root certificate is configured. `verify-ca` and
//! `verify-full` will get their own verifiers here (a webpki verifier with
//! the configured roots; for `verify-ca` one that skips the name check).

use crate::error::{ConnError, ConnErrorKind};
use crate::sslmode::SslMode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// Accepts any certificate chain (the server is not authenticated) but still
/// checks the handshake signatures, so the session is bound to the key in
/// the certificate the server presented.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls configuration for `mode`. The crypto provider is chosen
/// explicitly (ring), so this works whatever other crates in the process
/// install as the default provider.
pub(crate) fn client_config(mode: SslMode) -> Result<ClientConfig, ConnError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match mode {
        SslMode::Disable | SslMode::Allow | SslMode::Prefer | SslMode::Require => {
            let config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| {
                    ConnError::new(
                        ConnErrorKind::Other,
                        format!("could not set up TLS: {e}; this is a bug in pgharbor, please report it"),
                    )
                })?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
                .with_no_client_auth();
            Ok(config)
        }
        SslMode::VerifyCa | SslMode::VerifyFull => Err(tls_mode_not_supported(mode)),
    }
}

/// The error for an `sslmode` this release cannot honour.
pub(crate) fn tls_mode_not_supported(mode: SslMode) -> ConnError {
    ConnError::new(
        ConnErrorKind::TlsModeNotSupported,
        format!(
            "sslmode={mode} is not supported yet: certificate verification arrives in a later release of pgharbor; \
             for now use sslmode=require (encrypted, but the server is not authenticated)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_build_for_supported_modes() {
        for mode in [SslMode::Allow, SslMode::Prefer, SslMode::Require] {
            assert!(client_config(mode).is_ok(), "{mode}");
        }
    }

    #[test]
    fn verify_modes_are_rejected() {
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let e = client_config(mode).unwrap_err();
            assert_eq!(e.kind(), ConnErrorKind::TlsModeNotSupported);
            assert!(e.to_string().contains("later release"), "{e}");
            assert!(e.to_string().contains(mode.as_str()), "{e}");
        }
    }

    #[test]
    fn verifier_offers_the_providers_schemes() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let v = AcceptAnyCertificate { provider };
        let schemes = v.supported_verify_schemes();
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP256_SHA256));
        assert!(schemes.contains(&SignatureScheme::RSA_PSS_SHA256));
        assert!(schemes.contains(&SignatureScheme::ED25519));
    }
}
