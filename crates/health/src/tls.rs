//! HTTPS for `serve`: the `[tls]` section's certificate and key, reloaded
//! when the files change.
//!
//! ```toml
//! [tls]
//! cert = "/etc/pgharbor/tls/tls.crt"   # PEM: the server certificate, then its intermediates
//! key = "/etc/pgharbor/tls/tls.key"    # PEM: PKCS#8, PKCS#1 or SEC1
//! ```
//!
//! Both files are read at start (a problem there stops `serve`), and again
//! at the first handshake after either file's modification time or size
//! changed — a renewal by certbot or cert-manager, or a Kubernetes secret
//! update, is picked up without a restart. A pair that cannot be used (a
//! key that does not match, a file written halfway) is logged once and the
//! previous pair stays in use until the files change again. rustls with
//! the workspace's ring provider, TLS 1.2 and 1.3.

use crate::error::{HealthError, HealthErrorKind, Result};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The `[tls]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// What identifies one version of a file: modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> HealthError {
    HealthError::new(
        HealthErrorKind::Io,
        format!("[tls] {what} {}: {e}", path.display()),
    )
}

impl TlsFiles {
    fn stamps(&self) -> (Stamp, Stamp) {
        (stamp(&self.cert), stamp(&self.key))
    }

    /// Reads and checks the pair: PEM that parses, at least one
    /// certificate, a key the provider can use and that matches the
    /// certificate.
    fn load(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| io_error("cert", &self.cert, e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| io_error("cert", &self.cert, e))?;
        if chain.is_empty() {
            return Err(io_error(
                "cert",
                &self.cert,
                "no CERTIFICATE block in the file",
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| {
            io_error(
                "key",
                &self.key,
                format!("{e} (a PEM private key is expected)"),
            )
        })?;
        let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
            io_error(
                "key",
                &self.key,
                format!("{e} (does it belong to {}?)", self.cert.display()),
            )
        })?;
        Ok(Arc::new(certified))
    }

    /// A rustls server configuration serving this pair, reloaded on change;
    /// fails when the files cannot be used now.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = ReloadingCert::new(self.clone(), provider.clone())?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HealthError::new(HealthErrorKind::InvalidInput, format!("[tls]: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The pair in use, and the file versions it came from.
#[derive(Debug)]
struct Loaded {
    stamps: (Stamp, Stamp),
    key: Arc<CertifiedKey>,
}

/// Serves the loaded pair, reloading it when the files' stamps change.
#[derive(Debug)]
struct ReloadingCert {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    loaded: Mutex<Loaded>,
}

impl ReloadingCert {
    fn new(files: TlsFiles, provider: Arc<CryptoProvider>) -> Result<ReloadingCert> {
        let stamps = files.stamps();
        let key = files.load(&provider)?;
        Ok(ReloadingCert {
            files,
            provider,
            loaded: Mutex::new(Loaded { stamps, key }),
        })
    }

    /// The pair to present: reloaded first when the files changed since
    /// the last attempt. A failed reload keeps the old pair and is not
    /// retried until the files change again.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let stamps = self.files.stamps();
        if stamps != loaded.stamps {
            loaded.stamps = stamps;
            match self.files.load(&self.provider) {
                Ok(key) => {
                    tracing::info!(
                        "[tls] reloaded {} and {}",
                        self.files.cert.display(),
                        self.files.key.display()
                    );
                    loaded.key = key;
                }
                Err(e) => tracing::warn!("{e}; still serving the previous certificate"),
            }
        }
        loaded.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(dir: &Path, name: &str) -> TlsFiles {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let files = TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    fn end_entity(k: &CertifiedKey) -> Vec<u8> {
        k.cert[0].to_vec()
    }

    #[test]
    fn a_changed_pair_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let files = self_signed(dir.path(), "one.test");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = ReloadingCert::new(files.clone(), provider).unwrap();
        let first = end_entity(&resolver.current());

        let other = self_signed(dir.path(), "two.test");
        // Distinct modification times: two writes can fall in the same clock tick.
        let replace = |from: &Path, to: &Path, seconds_later: u64| {
            std::fs::copy(from, to).unwrap();
            let later = SystemTime::now() + std::time::Duration::from_secs(seconds_later);
            std::fs::File::options()
                .write(true)
                .open(to)
                .unwrap()
                .set_modified(later)
                .unwrap();
        };
        replace(&other.cert, &files.cert, 1);
        // Only the certificate was replaced: the key no longer matches it.
        assert_eq!(
            end_entity(&resolver.current()),
            first,
            "a mismatched pair is not served"
        );

        replace(&other.key, &files.key, 2);
        let second = end_entity(&resolver.current());
        let pem = std::fs::read(&other.cert).unwrap();
        let wanted = CertificateDer::pem_slice_iter(&pem)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(second, wanted.to_vec());
        assert_ne!(second, first);
    }

    #[test]
    fn unusable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = self_signed(dir.path(), "good.test");
        let provider = rustls::crypto::ring::default_provider();
        let missing = TlsFiles {
            cert: dir.path().join("nope.crt"),
            key: good.key.clone(),
        };
        let err = missing.load(&provider).unwrap_err().to_string();
        assert!(
            err.contains("[tls] cert") && err.contains("nope.crt"),
            "{err}"
        );

        let other = self_signed(dir.path(), "other.test");
        let mismatched = TlsFiles {
            cert: good.cert.clone(),
            key: other.key.clone(),
        };
        let err = mismatched.load(&provider).unwrap_err().to_string();
        assert!(
            err.contains("[tls] key") && err.contains("does it belong to"),
            "{err}"
        );

        let not_pem = TlsFiles {
            cert: good.cert.clone(),
            key: good.cert.clone(),
        };
        let err = not_pem.load(&provider).unwrap_err().to_string();
        assert!(err.contains("a PEM private key is expected"), "{err}");
    }
}
