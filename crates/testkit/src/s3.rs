//! Throwaway S3 servers: [`S3Server::start`] runs moto's S3 server
//! (`moto_server`, PyPI `moto[server]`) on a free port of `127.0.0.1` in a
//! temporary directory; dropping it kills the server.
//!
//! Authentication is enforced, as on AWS: the harness creates an IAM user
//! allowed `s3:*`, hands out its access key ([`S3Server::access_key_id`],
//! [`S3Server::secret_access_key`]), then switches moto's IAM checks on, so
//! a wrong key id or secret is rejected (`InvalidAccessKeyId`,
//! `SignatureDoesNotMatch`).
//!
//! ```no_run
//! use pgharbor_testkit::S3Server;
//!
//! let s3 = S3Server::start();
//! s3.create_bucket("backups");
//! // Hand s3.endpoint() (http://127.0.0.1:PORT, path-style), s3.region()
//! // and the key pair to the code under test.
//! ```
//!
//! The binary is `$PGHARBOR_MOTO_SERVER`, else `<workspace>/.cache/moto/bin/moto_server`
//! (scripts/setup.sh installs it).

use std::path::PathBuf;

use crate::service::Service;

/// A running moto S3 server with IAM authentication on, killed on drop.
#[derive(Debug)]
pub struct S3Server {
    service: Service,
    access_key_id: String,
    secret_access_key: String,
}

impl S3Server {
    /// Starts a server and creates its user. Panics when `moto_server` is
    /// missing or does not start.
    pub fn start() -> S3Server {
        let program = std::env::var_os("PGHARBOR_MOTO_SERVER")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::workspace_root().join(".cache/moto/bin/moto_server"));
        let service = Service::start("moto", &program, |port, _dir| {
            vec![
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ]
        });
        let (access_key_id, secret_access_key) = create_user(&service);
        let server = S3Server {
            service,
            access_key_id,
            secret_access_key,
        };
        server.set_auth(true);
        server
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.service.port()
    }

    /// `http://127.0.0.1:PORT`; use path-style requests.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// The region to sign for.
    pub fn region(&self) -> &'static str {
        "us-east-1"
    }

    /// The access key id of the user allowed `s3:*`.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// That user's secret access key.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The temporary directory (the log lives here).
    pub fn dir(&self) -> &std::path::Path {
        self.service.dir()
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        self.service.log()
    }

    /// Creates a bucket (IAM checks are off for that one request, so no
    /// signing is needed here). Panics when moto refuses.
    pub fn create_bucket(&self, name: &str) {
        self.set_auth(false);
        let r = self.service.request("PUT", &format!("/{name}"), &[], b"");
        self.set_auth(true);
        assert_eq!(
            r.status, 200,
            "pgharbor-testkit: create bucket {name}: {}",
            r.body
        );
    }

    /// Turns moto's IAM checks on or off (`/moto-api/reset-auth`).
    fn set_auth(&self, on: bool) {
        let body: &[u8] = if on { b"0" } else { b"inf" };
        let r = self.service.request(
            "POST",
            "/moto-api/reset-auth",
            &[("Content-Type", "text/plain")],
            body,
        );
        assert_eq!(
            r.status, 200,
            "pgharbor-testkit: moto reset-auth: {}",
            r.body
        );
    }
}

/// Creates the IAM user `pgharbor` with an `s3:*` policy and an access key;
/// returns the key pair. Runs before IAM checks are on: the `Authorization`
/// header only routes the request to moto's IAM service.
fn create_user(service: &Service) -> (String, String) {
    const ROUTE: &str = "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, \
                         SignedHeaders=host, Signature=0";
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    let iam = |params: &str| {
        let r = service.request(
            "POST",
            "/",
            &[
                ("Authorization", ROUTE),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            format!("{params}&Version=2010-05-08").as_bytes(),
        );
        assert_eq!(
            r.status, 200,
            "pgharbor-testkit: moto IAM {params}: {}",
            r.body
        );
        r.body
    };
    iam("Action=CreateUser&UserName=pgharbor");
    iam(&format!(
        "Action=PutUserPolicy&UserName=pgharbor&PolicyName=s3-all&PolicyDocument={}",
        crate::percent_encode(policy)
    ));
    let key = iam("Action=CreateAccessKey&UserName=pgharbor");
    (
        xml_field(&key, "AccessKeyId"),
        xml_field(&key, "SecretAccessKey"),
    )
}

fn xml_field(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("pgharbor-testkit: no <{tag}> in moto's answer: {xml}"))
        + open.len();
    let end = xml[start..]
        .find('<')
        .map(|e| start + e)
        .unwrap_or(xml.len());
    xml[start..end].to_owned()
}
