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

use crate::config::{
    ConnConfig, SslRootCert, DEFAULT_CLIENT_CERT, DEFAULT_CLIENT_KEY, DEFAULT_ROOT_CERT,
};
use crate::error::{ConnError, ConnErrorKind};
use crate::sslmode::{SslMode, SslNegotiation};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

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

/// The parts of a certificate that messages mention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertInfo {
    pub(crate) subject: String,
    pub(crate) issuer: String,
    /// `DNS:name` and `IP:addr` subjectAltName entries.
    pub(crate) alt_names: Vec<String>,
    /// The subject's common names.
    pub(crate) common_names: Vec<String>,
    pub(crate) not_before: u64,
    pub(crate) not_after: u64,
}

impl CertInfo {
    pub(crate) fn parse(der: &[u8]) -> Option<CertInfo> {
        let cert = Certificate::from_der(der).ok()?;
        let tbs = &cert.tbs_certificate;
        let mut alt_names = Vec::new();
        if let Ok(Some((_, san))) = tbs.get::<SubjectAltName>() {
            for name in san.0 {
                match name {
                    GeneralName::DnsName(d) => alt_names.push(format!("DNS:{}", d.as_str())),
                    GeneralName::IpAddress(ip) => {
                        let b = ip.as_bytes();
                        let addr = match b.len() {
                            4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
                            _ => None,
                        };
                        if let Some(addr) = addr {
                            alt_names.push(format!("IP:{addr}"));
                        }
                    }
                    _ => {}
                }
            }
        }
        let common_names = tbs
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .filter(|atv| atv.oid == x509_cert::der::oid::db::rfc4519::CN)
            .filter_map(|atv| atv.to_string().strip_prefix("CN=").map(str::to_owned))
            .collect();
        Some(CertInfo {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            alt_names,
            common_names,
            not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
        })
    }

    /// The names a host is matched against, for messages: the
    /// subjectAltName entries, or the common name when there are none.
    pub(crate) fn names_for_message(&self) -> String {
        if !self.alt_names.is_empty() {
            return self.alt_names.join(", ");
        }
        if self.common_names.is_empty() {
            return "no host names at all (no subjectAltName, no common name)".to_owned();
        }
        let cns: Vec<String> = self
            .common_names
            .iter()
            .map(|c| format!("CN={c}"))
            .collect();
        format!("{} (no subjectAltName)", cns.join(", "))
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

type LoadedRoots = (
    Option<RootCertStore>,
    Vec<CertificateDer<'static>>,
    Option<RootsSource>,
);

/// The trusted roots: the explicit `sslrootcert`, else the default file
/// when it exists. `None` when there are none and the mode does not need
/// them; an error when a verifying mode has none.
fn load_roots(config: &ConnConfig) -> Result<LoadedRoots, ConnError> {
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

fn read_pem_certs(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

struct ClientCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// The client certificate: `sslcert` (which must exist) or the default
/// `~/.postgresql/postgresql.crt` (used only if it exists), with its key.
fn load_client_cert(config: &ConnConfig) -> Result<Option<ClientCert>, ConnError> {
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
        tls_file_error(format!(
            "the client certificate file {} cannot be read: {e}",
            cert_path.display()
        ))
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
        tls_file_error(format!(
            "the client key file {} cannot be read: {e}",
            key_path.display()
        ))
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

fn client_key_mismatch(cert: &Path, key: &Path, e: &rustls::Error) -> ConnError {
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
        tls_file_error(format!(
            "the client key file {} cannot be read: {e}",
            path.display()
        ))
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

/// The server certificate verifier for every mode. Handshake signatures
/// are always checked, so the session is bound to the key in the
/// certificate the server presented; the certificate itself is checked as
/// far as [`Verification`] says.
#[derive(Debug)]
struct PgServerVerifier {
    provider: Arc<CryptoProvider>,
    /// `None`: accept any certificate (the server is not authenticated).
    roots: Option<Arc<RootCertStore>>,
    /// The root file's certificates as given, to accept a self-signed
    /// server certificate that is itself listed as trusted.
    root_ders: Vec<CertificateDer<'static>>,
    check_name: bool,
    presented: Arc<Mutex<Option<CertificateDer<'static>>>>,
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

/// `2024-05-01 12:00:00 UTC` for seconds since the Unix epoch.
pub(crate) fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

impl RootsSource {
    pub(crate) fn is_system(&self) -> bool {
        matches!(self, RootsSource::System { .. })
    }
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
    use super::*;
    use crate::env::Environment;

    fn cfg(s: &str, env: &Environment) -> ConnConfig {
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
            let msg = e.to_string();
            assert!(msg.contains(&format!("sslmode={mode}")), "{msg}");
            assert!(msg.contains(".postgresql/root.crt does not exist"), "{msg}");
            assert!(msg.contains("sslrootcert=/path/to/ca.crt"), "{msg}");
            assert!(msg.contains("sslrootcert=system"), "{msg}");
        }
        let env = Environment::empty().with_os_user("me");
        let Err(e) = setup(&cfg("host=h sslmode=verify-full", &env)) else {
            panic!("must fail")
        };
        assert!(e.to_string().contains("home directory is unknown"), "{e}");
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
                assert!(e.to_string().contains("ca-certificates"), "{e}");
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
        assert!(e.to_string().contains("nope.crt"), "{e}");
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(e.is_bad_parameters());

        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let Err(e) = setup(&cfg(
            &format!("host=h sslmode=require sslrootcert={}", empty.display()),
            &env,
        )) else {
            panic!("must fail")
        };
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
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
        let msg = e.to_string();
        assert!(msg.contains("group or world access (mode 0644)"), "{msg}");
        assert!(msg.contains("chmod 600"), "{msg}");
        set_mode(&key, 0o600);

        let Err(e) = setup(&cfg(
            &format!("host=h sslmode=require sslcert={}", crt.display()),
            &env,
        )) else {
            panic!("missing key must fail")
        };
        assert!(e.to_string().contains("has no private key"), "{e}");
        assert!(e.to_string().contains(".postgresql/postgresql.key"), "{e}");

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
            e.to_string().contains("gone.crt (sslcert) does not exist"),
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
            e.to_string().contains("does not belong to the certificate"),
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
        assert!(e.to_string().contains("encrypted with a passphrase"), "{e}");

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

    #[test]
    fn direct_negotiation_offers_alpn() {
        let env = Environment::empty().with_os_user("me");
        let s = setup(&cfg("host=h sslmode=require sslnegotiation=direct", &env)).unwrap();
        assert_eq!(s.config.alpn_protocols, vec![b"postgresql".to_vec()]);
        let s = setup(&cfg("host=h sslmode=require", &env)).unwrap();
        assert!(s.config.alpn_protocols.is_empty());
    }

    #[test]
    fn common_name_matching() {
        assert!(host_matches_pattern("db.example.com", "DB.example.com"));
        assert!(host_matches_pattern("db.example.com", "*.example.com"));
        assert!(!host_matches_pattern("a.db.example.com", "*.example.com"));
        assert!(!host_matches_pattern("example.com", "*.example.com"));
        assert!(host_matches_pattern("127.0.0.1", "127.0.0.1"));
        assert!(!host_matches_pattern("127.0.0.1", "*.0.0.1"));
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn cert_info_reads_names_and_dates() {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pg.test");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let info = CertInfo::parse(cert.der()).unwrap();
        assert_eq!(info.alt_names, vec!["DNS:localhost", "IP:127.0.0.1"]);
        assert_eq!(info.common_names, vec!["pg.test"]);
        assert!(info.subject.contains("CN=pg.test"), "{}", info.subject);
        assert!(info.not_after > info.not_before);
        assert_eq!(info.names_for_message(), "DNS:localhost, IP:127.0.0.1");
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
