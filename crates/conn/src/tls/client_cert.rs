//! The client certificate a connection offers: `sslcert`/`sslkey`, else
//! `~/.postgresql/postgresql.crt`/`.key` when the certificate exists. The
//! key must not be readable by group or others (libpq's rule).

use super::cert_info::CertInfo;
use super::roots::read_pem_certs;
use super::{tls_file_error, tls_file_unreadable};
use crate::config::{ConnConfig, DEFAULT_CLIENT_CERT, DEFAULT_CLIENT_KEY};
use crate::error::ConnError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

/// A client certificate chain and its private key, with their files.
pub(super) struct ClientCert {
    pub(super) cert_path: PathBuf,
    pub(super) key_path: PathBuf,
    pub(super) chain: Vec<CertificateDer<'static>>,
    pub(super) key: PrivateKeyDer<'static>,
}

/// The client certificate: `sslcert` (which must exist) or the default
/// `~/.postgresql/postgresql.crt` (used only if it exists), with its key.
pub(super) fn load_client_cert(config: &ConnConfig) -> Result<Option<ClientCert>, ConnError> {
    let cert_path = match config.ssl_cert() {
        Some(p) => {
            if !p.exists() {
                return Err(tls_file_error(format!(
                    "the client certificate file {} (sslcert) does not exist; give the path of the PEM certificate the server should accept (sslcert=FILE and sslkey=FILE), or remove sslcert",
                    p.display()
                )));
            }
            p.to_path_buf()
        }
        None => match config
            .ssl_default(DEFAULT_CLIENT_CERT)
            .filter(|p| p.exists())
        {
            Some(p) => p,
            None => {
                if let Some(key) = config.ssl_key() {
                    tracing::warn!(
                        "sslkey={} is set but there is no client certificate (sslcert), so no client certificate is sent",
                        key.display()
                    );
                }
                return Ok(None);
            }
        },
    };
    let key_path = match config.ssl_key() {
        Some(p) => p.to_path_buf(),
        None => config
            .ssl_default(DEFAULT_CLIENT_KEY)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CLIENT_KEY)),
    };

    let cert_bytes = std::fs::read(&cert_path).map_err(|e| {
        tls_file_unreadable(
            format!(
                "the client certificate file {} cannot be read",
                cert_path.display()
            ),
            e,
        )
    })?;
    let chain = read_pem_certs(&cert_bytes).map_err(|e| {
        tls_file_error(format!(
            "the client certificate file {} is not a valid PEM file: {e}",
            cert_path.display()
        ))
    })?;
    if chain.is_empty() {
        return Err(tls_file_error(format!(
            "the client certificate file {} holds no PEM certificate (a \"-----BEGIN CERTIFICATE-----\" block)",
            cert_path.display()
        )));
    }

    if !key_path.exists() {
        return Err(tls_file_error(format!(
            "the client certificate {} has no private key: {} does not exist; give the key with sslkey=FILE (or PGSSLKEY)",
            cert_path.display(),
            key_path.display()
        )));
    }
    check_key_permissions(&key_path)?;
    let key_bytes = std::fs::read(&key_path).map_err(|e| {
        tls_file_unreadable(
            format!("the client key file {} cannot be read", key_path.display()),
            e,
        )
    })?;
    if is_encrypted_key(&key_bytes) {
        return Err(tls_file_error(format!(
            "the client key file {} is encrypted with a passphrase, which pgharbor does not support (sslpassword); store it decrypted with mode 0600: openssl pkey -in {} -out decrypted.key",
            key_path.display(),
            key_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        tls_file_error(format!(
            "the client key file {} holds no usable private key ({e}); it must be a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\"",
            key_path.display()
        ))
    })?;
    Ok(Some(ClientCert {
        cert_path,
        key_path,
        chain,
        key,
    }))
}

fn is_encrypted_key(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

pub(super) fn client_key_mismatch(cert: &Path, key: &Path, e: &rustls::Error) -> ConnError {
    let why = match e {
        rustls::Error::InconsistentKeys(_) => {
            "the key does not belong to the certificate".to_owned()
        }
        other => other.to_string(),
    };
    tls_file_error(format!(
        "the client certificate {} and key {} cannot be used together: {why}; check that sslcert and sslkey name a matching pair",
        cert.display(),
        key.display()
    ))
}

/// libpq's rule for private keys: a key owned by the current user must not
/// be accessible to group or others (0600 or less); a key owned by root may
/// be readable by the group (0640 or less). It must be a regular file.
#[cfg(unix)]
pub(crate) fn check_key_permissions(path: &Path) -> Result<(), ConnError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        tls_file_unreadable(
            format!("the client key file {} cannot be read", path.display()),
            e,
        )
    })?;
    if !meta.is_file() {
        return Err(tls_file_error(format!(
            "the client key file {} is not a regular file",
            path.display()
        )));
    }
    let mode = meta.mode() & 0o777;
    let euid = rustix::process::geteuid().as_raw();
    let too_open =
        (meta.uid() == euid && mode & 0o077 != 0) || (meta.uid() == 0 && mode & 0o037 != 0);
    if too_open {
        return Err(tls_file_error(format!(
            "the client key file {} has group or world access (mode {mode:04o}); a private key must have permissions u=rw (0600) or less if owned by the current user, or u=rw,g=r (0640) or less if owned by root: chmod 600 {}",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Permissions are not checked where there are no Unix modes.
#[cfg(not(unix))]
pub(crate) fn check_key_permissions(_path: &Path) -> Result<(), ConnError> {
    Ok(())
}

/// The client certificate a connection with `config` offers: `sslcert`, or
/// the default file when it exists.
pub(crate) fn client_cert_in_use(config: &ConnConfig) -> Option<PathBuf> {
    match config.ssl_cert() {
        Some(p) => Some(p.to_path_buf()),
        None => config
            .ssl_default(DEFAULT_CLIENT_CERT)
            .filter(|p| p.exists()),
    }
}

/// The common name of the first certificate in a PEM file.
pub(crate) fn client_cert_common_name(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let first = read_pem_certs(&bytes).ok()?.into_iter().next()?;
    CertInfo::parse(&first)?.common_names.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::super::setup;
    use super::super::tests::cfg;
    use super::*;
    use crate::env::Environment;
    use crate::error::ConnErrorKind;

    #[test]
    fn client_cert_rules() {
        let dir = tempfile::tempdir().unwrap();
        let env = Environment::empty()
            .with_os_user("me")
            .with_home_dir(dir.path());
        let cert = rcgen::generate_simple_self_signed(vec!["me".into()]).unwrap();
        let crt = dir.path().join("me.crt");
        let key = dir.path().join("me.key");
        std::fs::write(&crt, cert.cert.pem()).unwrap();
        std::fs::write(&key, cert.signing_key.serialize_pem()).unwrap();
        set_mode(&key, 0o600);
        let conn = format!(
            "host=h sslmode=require sslcert={} sslkey={}",
            crt.display(),
            key.display()
        );
        let s = setup(&cfg(&conn, &env)).unwrap();
        assert_eq!(s.context.client_cert.as_deref(), Some(crt.as_path()));

        set_mode(&key, 0o644);
        let Err(e) = setup(&cfg(&conn, &env)) else {
            panic!("world-readable key must be refused")
        };
        assert_eq!(e.kind(), ConnErrorKind::TlsConfiguration);
        let msg = crate::conn_text(&e);
        assert!(msg.contains("group or world access (mode 0644)"), "{msg}");
        assert!(msg.contains("chmod 600"), "{msg}");
        set_mode(&key, 0o600);

        let Err(e) = setup(&cfg(
            &format!("host=h sslmode=require sslcert={}", crt.display()),
            &env,
        )) else {
            panic!("missing key must fail")
        };
        assert!(crate::conn_text(&e).contains("has no private key"), "{e}");
        assert!(
            crate::conn_text(&e).contains(".postgresql/postgresql.key"),
            "{e}"
        );

        let Err(e) = setup(&cfg(
            &format!(
                "host=h sslmode=require sslcert={}",
                dir.path().join("gone.crt").display()
            ),
            &env,
        )) else {
            panic!("missing cert must fail")
        };
        assert!(
            crate::conn_text(&e).contains("gone.crt (sslcert) does not exist"),
            "{e}"
        );

        let other = rcgen::generate_simple_self_signed(vec!["other".into()]).unwrap();
        let other_key = dir.path().join("other.key");
        std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
        set_mode(&other_key, 0o600);
        let Err(e) = setup(&cfg(
            &format!(
                "host=h sslmode=require sslcert={} sslkey={}",
                crt.display(),
                other_key.display()
            ),
            &env,
        )) else {
            panic!("mismatched key must fail")
        };
        assert!(
            crate::conn_text(&e).contains("does not belong to the certificate"),
            "{e}"
        );

        let enc = dir.path().join("enc.key");
        std::fs::write(
            &enc,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        set_mode(&enc, 0o600);
        let Err(e) = setup(&cfg(
            &format!(
                "host=h sslmode=require sslcert={} sslkey={}",
                crt.display(),
                enc.display()
            ),
            &env,
        )) else {
            panic!("encrypted key must fail")
        };
        assert!(
            crate::conn_text(&e).contains("encrypted with a passphrase"),
            "{e}"
        );

        // Default files are used when they exist.
        std::fs::create_dir(dir.path().join(".postgresql")).unwrap();
        std::fs::copy(&crt, dir.path().join(".postgresql/postgresql.crt")).unwrap();
        std::fs::copy(&key, dir.path().join(".postgresql/postgresql.key")).unwrap();
        set_mode(&dir.path().join(".postgresql/postgresql.key"), 0o600);
        let s = setup(&cfg("host=h sslmode=require", &env)).unwrap();
        assert!(s
            .context
            .client_cert
            .unwrap()
            .ends_with(".postgresql/postgresql.crt"));
    }

    #[cfg(unix)]
    fn set_mode(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}
