//! The roots a connection trusts: `sslrootcert=FILE` (PEM, one or more CA
//! certificates), `sslrootcert=system` (the OS store, through
//! `rustls-native-certs`), else `~/.postgresql/root.crt` when it exists;
//! and where they came from ([`RootsSource`]), for messages.

use super::cert_info::CertInfo;
use super::tls_file_error;
use crate::config::{ConnConfig, SslRootCert, DEFAULT_ROOT_CERT};
use crate::error::ConnError;
use crate::sslmode::SslMode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the trusted roots came from, for messages.
#[derive(Debug, Clone)]
pub(crate) enum RootsSource {
    /// A PEM file, given with `sslrootcert` or found at the default path.
    File {
        path: PathBuf,
        explicit: bool,
        subjects: Vec<String>,
    },
    /// The operating system's store.
    System { count: usize },
}

impl fmt::Display for RootsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootsSource::File { path, .. } => write!(f, "{}", path.display()),
            RootsSource::System { .. } => f.write_str("the system's trusted roots"),
        }
    }
}

impl RootsSource {
    /// "sslrootcert" or "the default root certificate file": how the user
    /// chose these roots.
    pub(crate) fn origin(&self) -> &'static str {
        match self {
            RootsSource::File { explicit: true, .. } => "sslrootcert",
            RootsSource::File {
                explicit: false, ..
            } => "the default root certificate file",
            RootsSource::System { .. } => "sslrootcert=system",
        }
    }

    /// What the roots hold: `"CN=My CA"`, or a count.
    pub(crate) fn contents(&self) -> String {
        match self {
            RootsSource::File { subjects, .. } => {
                let shown: Vec<String> = subjects
                    .iter()
                    .take(3)
                    .map(|s| format!("\"{s}\""))
                    .collect();
                let more = subjects.len().saturating_sub(3);
                let mut text = shown.join(", ");
                if more > 0 {
                    text.push_str(&format!(" and {more} more"));
                }
                text
            }
            RootsSource::System { count } => format!("{count} certificates"),
        }
    }
    pub(crate) fn is_system(&self) -> bool {
        matches!(self, RootsSource::System { .. })
    }
}

type LoadedRoots = (
    Option<RootCertStore>,
    Vec<CertificateDer<'static>>,
    Option<RootsSource>,
);

/// The trusted roots: the explicit `sslrootcert`, else the default file
/// when it exists. `None` when there are none and the mode does not need
/// them; an error when a verifying mode has none.
pub(super) fn load_roots(config: &ConnConfig) -> Result<LoadedRoots, ConnError> {
    let mode = config.sslmode();
    match config.ssl_root_cert() {
        Some(SslRootCert::System) => {
            let loaded = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let why = loaded
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(tls_file_error(format!(
                    "sslrootcert=system, but no trusted root certificates were found in the operating system's store{why}; install the CA bundle (Debian and Ubuntu: apt-get install ca-certificates; Alpine: apk add ca-certificates), point SSL_CERT_FILE at a PEM bundle, or give the CA file with sslrootcert=FILE"
                )));
            }
            Ok((
                Some(store),
                Vec::new(),
                Some(RootsSource::System { count: added }),
            ))
        }
        Some(SslRootCert::File(path)) => {
            let (store, ders, subjects) = load_root_file(path, true, mode)?;
            Ok((
                Some(store),
                ders,
                Some(RootsSource::File {
                    path: path.clone(),
                    explicit: true,
                    subjects,
                }),
            ))
        }
        None => {
            let default = config.default_ssl_root_cert();
            match default.as_ref().filter(|p| p.exists()) {
                Some(path) => {
                    let (store, ders, subjects) = load_root_file(path, false, mode)?;
                    Ok((
                        Some(store),
                        ders,
                        Some(RootsSource::File {
                            path: path.clone(),
                            explicit: false,
                            subjects,
                        }),
                    ))
                }
                None if mode.verifies_certificate() => {
                    let where_ = match &default {
                        Some(p) => format!("the default file {} does not exist", p.display()),
                        None => format!(
                            "the home directory is unknown, so the default file ~/.postgresql/{DEFAULT_ROOT_CERT} cannot be used"
                        ),
                    };
                    Err(tls_file_error(format!(
                        "sslmode={mode} needs the CA certificate that signed the server's certificate, but no sslrootcert was given and {where_}; give the CA file with sslrootcert=/path/to/ca.crt (or PGSSLROOTCERT), use sslrootcert=system for a server whose certificate comes from a public CA, or use sslmode=require to encrypt without authenticating the server"
                    )))
                }
                None => Ok((None, Vec::new(), None)),
            }
        }
    }
}

type RootFile = (RootCertStore, Vec<CertificateDer<'static>>, Vec<String>);

fn load_root_file(path: &Path, explicit: bool, mode: SslMode) -> Result<RootFile, ConnError> {
    let origin = if explicit {
        "root certificate file (sslrootcert)"
    } else {
        "default root certificate file"
    };
    let bytes = std::fs::read(path).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist".to_owned()
        } else {
            format!("cannot be read: {e}")
        };
        tls_file_error(format!(
            "the {origin} {} {what}; give the path of the PEM file holding the CA certificate that signed the server's certificate (sslrootcert=FILE, or PGSSLROOTCERT), or sslrootcert=system for the operating system's trusted roots{}",
            path.display(),
            if mode.verifies_certificate() { "" } else { ", or remove sslrootcert to skip verification" }
        ))
    })?;
    let ders = read_pem_certs(&bytes).map_err(|e| {
        tls_file_error(format!(
            "the {origin} {} is not a valid PEM file: {e}",
            path.display()
        ))
    })?;
    if ders.is_empty() {
        return Err(tls_file_error(format!(
            "the {origin} {} holds no PEM certificate (a \"-----BEGIN CERTIFICATE-----\" block); a DER file can be converted with: openssl x509 -inform der -in FILE -out FILE.pem",
            path.display()
        )));
    }
    let mut store = RootCertStore::empty();
    let mut subjects = Vec::new();
    for (i, der) in ders.iter().enumerate() {
        store.add(der.clone()).map_err(|e| {
            tls_file_error(format!(
                "certificate {} in the {origin} {} cannot be used as a trusted root: {e}",
                i + 1,
                path.display()
            ))
        })?;
        if let Some(info) = CertInfo::parse(der) {
            subjects.push(info.subject);
        }
    }
    Ok((store, ders, subjects))
}

pub(super) fn read_pem_certs(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::setup;
    use super::super::tests::cfg;
    use super::*;
    use crate::env::Environment;
    use crate::error::ConnErrorKind;
    use crate::tls::Verification;

    #[test]
    fn verify_modes_without_roots_say_how_to_give_them() {
        let home = tempfile::tempdir().unwrap();
        let env = Environment::empty()
            .with_os_user("me")
            .with_home_dir(home.path());
        for mode in ["verify-ca", "verify-full"] {
            let Err(e) = setup(&cfg(&format!("host=h sslmode={mode}"), &env)) else {
                panic!("{mode} without roots must fail")
            };
            assert_eq!(e.kind(), ConnErrorKind::TlsConfiguration);
            let msg = crate::conn_text(&e);
            assert!(msg.contains(&format!("sslmode={mode}")), "{msg}");
            assert!(msg.contains(".postgresql/root.crt does not exist"), "{msg}");
            assert!(msg.contains("sslrootcert=/path/to/ca.crt"), "{msg}");
            assert!(msg.contains("sslrootcert=system"), "{msg}");
        }
        let env = Environment::empty().with_os_user("me");
        let Err(e) = setup(&cfg("host=h sslmode=verify-full", &env)) else {
            panic!("must fail")
        };
        assert!(
            crate::conn_text(&e).contains("home directory is unknown"),
            "{e}"
        );
    }

    #[test]
    fn system_roots_come_from_the_os_store() {
        let env = Environment::empty().with_os_user("me");
        match setup(&cfg("host=db.example sslrootcert=system", &env)) {
            Ok(s) => {
                assert_eq!(s.context.verification, Verification::Full);
                let Some(RootsSource::System { count }) = s.context.roots else {
                    panic!("system roots expected")
                };
                assert!(count > 0);
            }
            // A machine without a CA bundle.
            Err(e) => {
                assert_eq!(e.kind(), ConnErrorKind::TlsConfiguration);
                assert!(crate::conn_text(&e).contains("ca-certificates"), "{e}");
            }
        }
    }

    #[test]
    fn root_file_problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let env = Environment::empty().with_os_user("me");
        let missing = dir.path().join("nope.crt");
        let Err(e) = setup(&cfg(
            &format!(
                "host=h sslmode=verify-full sslrootcert={}",
                missing.display()
            ),
            &env,
        )) else {
            panic!("must fail")
        };
        assert_eq!(e.kind(), ConnErrorKind::TlsConfiguration);
        assert!(crate::conn_text(&e).contains("nope.crt"), "{e}");
        assert!(crate::conn_text(&e).contains("does not exist"), "{e}");
        assert!(e.is_bad_parameters());

        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let Err(e) = setup(&cfg(
            &format!("host=h sslmode=require sslrootcert={}", empty.display()),
            &env,
        )) else {
            panic!("must fail")
        };
        assert!(
            crate::conn_text(&e).contains("holds no PEM certificate"),
            "{e}"
        );
    }

    #[test]
    fn default_root_file_turns_on_chain_verification() {
        let home = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        std::fs::create_dir(home.path().join(".postgresql")).unwrap();
        std::fs::write(
            home.path().join(".postgresql/root.crt"),
            ca.cert.pem().as_bytes(),
        )
        .unwrap();
        let env = Environment::empty()
            .with_os_user("me")
            .with_home_dir(home.path());
        let s = setup(&cfg("host=h sslmode=require", &env)).unwrap();
        assert_eq!(s.context.verification, Verification::Chain);
        let Some(RootsSource::File {
            explicit, subjects, ..
        }) = &s.context.roots
        else {
            panic!("roots expected")
        };
        assert!(!explicit);
        assert_eq!(subjects.len(), 1);
        let s = setup(&cfg("host=h sslmode=verify-full", &env)).unwrap();
        assert_eq!(s.context.verification, Verification::Full);
    }
}
