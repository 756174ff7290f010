//! The server certificate verifier for every mode: the chain up to a
//! trusted root, and for `verify-full` the host name, matched against the
//! certificate's subjectAltName entries, or against its common name when it
//! has no DNS or IP subjectAltName, as libpq does. It remembers the
//! certificate the server presented, so that errors can name it.

use super::cert_info::CertInfo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The server certificate verifier for every mode. Handshake signatures
/// are always checked, so the session is bound to the key in the
/// certificate the server presented; the certificate itself is checked as
/// far as [`Verification`](super::Verification) says.
#[derive(Debug)]
pub(super) struct PgServerVerifier {
    pub(super) provider: Arc<CryptoProvider>,
    /// `None`: accept any certificate (the server is not authenticated).
    pub(super) roots: Option<Arc<RootCertStore>>,
    /// The root file's certificates as given, to accept a self-signed
    /// server certificate that is itself listed as trusted.
    pub(super) root_ders: Vec<CertificateDer<'static>>,
    pub(super) check_name: bool,
    pub(super) presented: Arc<Mutex<Option<CertificateDer<'static>>>>,
}

impl ServerCertVerifier for PgServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut slot) = self.presented.lock() {
            *slot = Some(end_entity.clone().into_owned());
        }
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        if self
            .root_ders
            .iter()
            .any(|r| r.as_ref() == end_entity.as_ref())
        {
            // The server's own (self-signed) certificate is in sslrootcert,
            // as PostgreSQL's documentation suggests for self-signed setups:
            // trusted as it is (OpenSSL does the same), within its validity.
            check_validity(end_entity, now)?;
        } else {
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        if self.check_name {
            check_host_name(&cert, end_entity, server_name)?;
        }
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

/// The validity period, for a certificate trusted directly.
fn check_validity(der: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    let info = CertInfo::parse(der).ok_or(rustls::Error::InvalidCertificate(
        CertificateError::BadEncoding,
    ))?;
    let secs = now.as_secs();
    if secs > info.not_after {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: now,
                not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    info.not_after,
                )),
            },
        ));
    }
    if secs < info.not_before {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYetContext {
                time: now,
                not_before: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    info.not_before,
                )),
            },
        ));
    }
    Ok(())
}

/// `verify-full`'s name check: the subjectAltName entries (rustls), else,
/// when the certificate has no DNS or IP subjectAltName, its common name, as
/// libpq does.
fn check_host_name(
    cert: &ParsedCertificate<'_>,
    der: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
) -> Result<(), rustls::Error> {
    let err = match verify_server_name(cert, server_name) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let is_name_error = matches!(
        err,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    );
    let Some(info) = CertInfo::parse(der) else {
        return Err(err);
    };
    if !is_name_error {
        return Err(err);
    }
    if info.alt_names.is_empty() {
        let host = server_name_text(server_name);
        if info
            .common_names
            .iter()
            .any(|cn| host_matches_pattern(&host, cn))
        {
            return Ok(());
        }
    }
    Err(rustls::Error::InvalidCertificate(
        CertificateError::NotValidForNameContext {
            expected: server_name.to_owned(),
            presented: if info.alt_names.is_empty() {
                info.common_names
                    .iter()
                    .map(|c| format!("CN={c}"))
                    .collect()
            } else {
                info.alt_names
            },
        },
    ))
}

fn server_name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_owned(),
        ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// libpq's common-name match: case-insensitive, with a leading `*.`
/// matching exactly one label. IP addresses only match literally.
fn host_matches_pattern(host: &str, pattern: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    if host == pattern {
        return true;
    }
    if host.parse::<IpAddr>().is_ok() {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_matching() {
        assert!(host_matches_pattern("db.example.com", "DB.example.com"));
        assert!(host_matches_pattern("db.example.com", "*.example.com"));
        assert!(!host_matches_pattern("a.db.example.com", "*.example.com"));
        assert!(!host_matches_pattern("example.com", "*.example.com"));
        assert!(host_matches_pattern("127.0.0.1", "127.0.0.1"));
        assert!(!host_matches_pattern("127.0.0.1", "*.0.0.1"));
    }

    fn verifier(roots: &[&CertificateDer<'static>], check_name: bool) -> PgServerVerifier {
        let mut store = RootCertStore::empty();
        for r in roots {
            store.add((*r).clone()).unwrap();
        }
        PgServerVerifier {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            roots: Some(Arc::new(store)),
            root_ders: roots.iter().map(|r| (*r).clone()).collect(),
            check_name,
            presented: Arc::default(),
        }
    }

    fn verify(
        v: &PgServerVerifier,
        cert: &CertificateDer<'_>,
        host: &str,
    ) -> Result<ServerCertVerified, rustls::Error> {
        v.verify_server_cert(
            cert,
            &[],
            &ServerName::try_from(host.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
    }

    #[test]
    fn self_signed_server_certificate_listed_as_root_is_trusted() {
        // PostgreSQL's documentation makes a self-signed server certificate
        // (which OpenSSL marks CA:TRUE) and copies it to the client's root.crt.
        let mut params = rcgen::CertificateParams::new(vec!["db.test".to_owned()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().clone();
        let v = verifier(&[&der], true);
        assert!(verify(&v, &der, "db.test").is_ok());
        let e = verify(&v, &der, "other.test").unwrap_err();
        assert!(
            matches!(
                &e,
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. })
                    if presented == &vec!["DNS:db.test".to_owned()]
            ),
            "{e:?}"
        );
        // The presented certificate is remembered for messages.
        let presented = v.presented.lock().unwrap().clone().unwrap();
        assert_eq!(presented.as_ref(), der.as_ref());
        // verify-ca does not check the name.
        assert!(verify(&verifier(&[&der], false), &der, "other.test").is_ok());
    }

    #[test]
    fn common_name_is_used_when_there_is_no_subject_alt_name() {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "CN-only CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, "db.example.com");
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let v = verifier(&[ca.der()], true);
        assert!(verify(&v, leaf.der(), "DB.example.com").is_ok());
        let e = verify(&v, leaf.der(), "other.example.com").unwrap_err();
        assert!(
            matches!(
                &e,
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. })
                    if presented == &vec!["CN=db.example.com".to_owned()]
            ),
            "{e:?}"
        );
        // An unrelated root: unknown issuer, whatever the name.
        let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        let e = verify(
            &verifier(&[other.cert.der()], true),
            leaf.der(),
            "db.example.com",
        )
        .unwrap_err();
        assert_eq!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
    }

    #[test]
    fn verifier_offers_the_providers_schemes() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let v = PgServerVerifier {
            provider,
            roots: None,
            root_ders: Vec::new(),
            check_name: false,
            presented: Arc::default(),
        };
        let schemes = v.supported_verify_schemes();
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP256_SHA256));
        assert!(schemes.contains(&SignatureScheme::RSA_PSS_SHA256));
        assert!(schemes.contains(&SignatureScheme::ED25519));
    }
}
