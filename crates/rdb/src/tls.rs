//! The rustls client configuration for `rediss://` URLs.

use crate::client::RedisTls;
use crate::error::{RdbError, RdbErrorKind, Result};
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;

/// The TLS client configuration for `tls` (not [`RedisTls::Off`]).
pub(crate) fn config(tls: &RedisTls) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RdbError::new(RdbErrorKind::InvalidInput, format!("TLS: {e}")))?;
    let config = match tls {
        RedisTls::Off => unreachable!("no TLS config for plain connections"),
        RedisTls::Verify { roots } => {
            let mut store = rustls::RootCertStore::empty();
            match roots {
                Some(path) => {
                    use rustls::pki_types::pem::PemObject as _;
                    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                        .and_then(|it| it.collect::<std::result::Result<_, _>>())
                        .map_err(|e| {
                            RdbError::new(
                                RdbErrorKind::InvalidInput,
                                format!(
                                    "cannot read the root certificates {}: {e}",
                                    path.display()
                                ),
                            )
                        })?;
                    if certs.is_empty() {
                        return Err(RdbError::new(
                            RdbErrorKind::InvalidInput,
                            format!("no certificate in {}", path.display()),
                        ));
                    }
                    for c in certs {
                        store.add(c).map_err(|e| {
                            RdbError::new(
                                RdbErrorKind::InvalidInput,
                                format!("bad root certificate in {}: {e}", path.display()),
                            )
                        })?;
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    for c in found.certs {
                        let _ = store.add(c);
                    }
                }
            }
            builder.with_root_certificates(store).with_no_client_auth()
        }
        RedisTls::NoVerify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerifier(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// `sslmode=require`: accept any certificate (libpq's `require` without roots).
#[derive(Debug)]
struct NoVerifier(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
