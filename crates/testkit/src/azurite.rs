//! Throwaway Azure Blob servers: [`AzuriteServer::start`] runs Azurite's
//! blob service (`azurite-blob`, npm `azurite`) on a free port of
//! `127.0.0.1`, storing into a temporary directory; dropping it kills the
//! server. Requests need the well-known development account's shared key
//! ([`AZURITE_ACCOUNT`], [`AZURITE_KEY`]); anything else is rejected.
//!
//! ```no_run
//! use pgharbor_testkit::AzuriteServer;
//!
//! let az = AzuriteServer::start();
//! az.create_container("backups");
//! // az.endpoint() is http://127.0.0.1:PORT/devstoreaccount1 (path-style);
//! // az.connection_string() holds the same as a connection string.
//! ```
//!
//! The binary is `$PGHARBOR_AZURITE_BLOB`, else
//! `<workspace>/.cache/azurite/node_modules/.bin/azurite-blob` (scripts/setup.sh installs it).

use std::path::PathBuf;

use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};

use crate::service::Service;

/// Azurite's development account name.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";

/// Azurite's development account key (public, documented by Microsoft).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The service version sent by [`AzuriteServer::create_container`].
const API_VERSION: &str = "2021-08-06";

/// A running Azurite blob service, killed on drop.
#[derive(Debug)]
pub struct AzuriteServer {
    service: Service,
}

impl AzuriteServer {
    /// Starts a server. Panics when `azurite-blob` is missing or does not start.
    pub fn start() -> AzuriteServer {
        let program = std::env::var_os("PGHARBOR_AZURITE_BLOB")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                crate::workspace_root().join(".cache/azurite/node_modules/.bin/azurite-blob")
            });
        let service = Service::start("azurite", &program, |port, dir| {
            vec![
                "--blobHost".into(),
                "127.0.0.1".into(),
                "--blobPort".into(),
                port.to_string(),
                "--location".into(),
                dir.join("data").display().to_string(),
                "--skipApiVersionCheck".into(),
                "--disableTelemetry".into(),
            ]
        });
        AzuriteServer { service }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.service.port()
    }

    /// The account's blob endpoint, `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port())
    }

    /// The account name, [`AZURITE_ACCOUNT`].
    pub fn account(&self) -> &'static str {
        AZURITE_ACCOUNT
    }

    /// The account key, [`AZURITE_KEY`].
    pub fn key(&self) -> &'static str {
        AZURITE_KEY
    }

    /// `DefaultEndpointsProtocol=http;AccountName=…;AccountKey=…;BlobEndpoint=…;`
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={};",
            self.endpoint()
        )
    }

    /// The temporary directory (data and log live here).
    pub fn dir(&self) -> &std::path::Path {
        self.service.dir()
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        self.service.log()
    }

    /// A service SAS token for `container` with `permissions` (e.g.
    /// `racwdl`), valid until 2099: `sv=…&sr=c&sp=…&se=…&sig=…`.
    pub fn container_sas(&self, container: &str, permissions: &str) -> String {
        const VERSION: &str = "2020-12-06";
        const EXPIRY: &str = "2099-01-01T00:00:00Z";
        // Permissions, start, expiry, resource, identifier, IP, protocol,
        // version, resource type, snapshot time, encryption scope, and five
        // response headers.
        let to_sign = format!(
            "{permissions}\n\n{EXPIRY}\n/blob/{AZURITE_ACCOUNT}/{container}\n\n\n\n{VERSION}\nc\n\n\n\n\n\n\n"
        );
        format!(
            "sv={VERSION}&sr=c&sp={permissions}&se={}&sig={}",
            crate::percent_encode(EXPIRY),
            crate::percent_encode(&sign(&to_sign))
        )
    }

    /// Creates a container, signed with the account's shared key. Panics
    /// when Azurite refuses.
    pub fn create_container(&self, name: &str) {
        let path = format!("/{AZURITE_ACCOUNT}/{name}");
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        // Create Container: VERB, eleven empty standard headers, the
        // x-ms-* headers, then the canonical resource with the query.
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{API_VERSION}\n\
             /{AZURITE_ACCOUNT}{path}\nrestype:container"
        );
        let auth = format!("SharedKey {AZURITE_ACCOUNT}:{}", sign(&to_sign));
        let r = self.service.request(
            "PUT",
            &format!("{path}?restype=container"),
            &[
                ("x-ms-date", &date),
                ("x-ms-version", API_VERSION),
                ("Authorization", &auth),
            ],
            b"",
        );
        assert_eq!(
            r.status, 201,
            "pgharbor-testkit: Azurite create container {name}: {}",
            r.body
        );
    }
}

/// Base64 HMAC-SHA256 of `text` with the account key.
fn sign(text: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(AZURITE_KEY).expect("the Azurite key is base64");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(text.as_bytes());
    b64.encode(mac.finalize().into_bytes())
}
