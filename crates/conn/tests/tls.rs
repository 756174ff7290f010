//! TLS against real PostgreSQL servers, with a CA and certificates made in
//! the test: `verify-full`/`verify-ca` with the right and a wrong CA, host
//! names not in the certificate, expired certificates, servers without TLS,
//! client-certificate authentication, SCRAM with channel binding, MD5 and
//! plain passwords, and what every failure says.
//!
//! Three clusters are shared by the tests (started on first use, stopped by
//! the testkit's watchdog when the process ends):
//!
//! * `main`: TLS with a certificate for `localhost` and `127.0.0.1` signed by
//!   the test CA, listening on 127.0.0.1 and 127.0.0.2 (a loopback address
//!   that is not in the certificate), client certificates checked against
//!   the test CA, and one user per authentication method;
//! * `expired`: TLS with an expired certificate signed by the test CA;
//! * `plain`: no TLS.

use pgharbor_conn::{connect, ConnConfig, ConnError, ConnErrorKind, Environment};
use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

const SCRAM_PASSWORD: &str = "Scram-canary-7c1e!";
const MD5_PASSWORD: &str = "Md5-canary-41f0";
const PLAIN_PASSWORD: &str = "Plain-canary-9d2b";

/// A PEM certificate and its PEM key.
#[derive(Clone)]
struct Pair {
    cert: String,
    key: String,
}

/// Everything the tests need, made once per test process.
struct Pki {
    ca: String,
    other_ca: String,
    /// For `localhost` and `127.0.0.1`, signed by `ca`.
    server: Pair,
    /// Signed by `ca`, valid 2020-01-01 .. 2021-01-01.
    expired: Pair,
    /// CN=postgres, signed by `ca`.
    client: Pair,
    /// CN=postgres, signed by `other_ca`.
    client_unknown_ca: Pair,
    /// CN=other_user, signed by `ca`.
    client_other_user: Pair,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = KeyPair::generate().unwrap();
        let ca_p = ca_params("pgharbor test CA");
        let ca = ca_p.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca_p, ca_key);

        let other_key = KeyPair::generate().unwrap();
        let other_params = ca_params("pgharbor other CA");
        let other_ca = other_params.self_signed(&other_key).unwrap().pem();
        let other_issuer = Issuer::new(other_params, other_key);

        let leaf = |names: &[&str], cn: &str, issuer: &Issuer<'_, KeyPair>, expired: bool| {
            let mut params =
                CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            if expired {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, issuer).unwrap();
            Pair {
                cert: cert.pem(),
                key: key.serialize_pem(),
            }
        };
        Pki {
            server: leaf(&["localhost", "127.0.0.1"], "localhost", &issuer, false),
            expired: leaf(&["localhost", "127.0.0.1"], "localhost", &issuer, true),
            client: leaf(&[], "postgres", &issuer, false),
            client_unknown_ca: leaf(&[], "postgres", &other_issuer, false),
            client_other_user: leaf(&[], "other_user", &issuer, false),
            ca,
            other_ca,
        }
    })
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn tls_options(server: &Pair, hba: Option<Vec<String>>) -> ClusterOptions {
    let conf = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    ClusterOptions {
        extra_conf: vec![
            conf("ssl", "on"),
            conf("ssl_cert_file", "server.crt"),
            conf("ssl_key_file", "server.key"),
            conf("ssl_ca_file", "root.crt"),
            conf("listen_addresses", "127.0.0.1,127.0.0.2"),
        ],
        hba_lines: hba,
        data_files: vec![
            ("server.crt".to_owned(), server.cert.clone().into_bytes()),
            ("server.key".to_owned(), server.key.clone().into_bytes()),
            ("root.crt".to_owned(), pki().ca.clone().into_bytes()),
        ],
        ..Default::default()
    }
}

fn main_cluster() -> &'static Cluster {
    static MAIN: OnceLock<Cluster> = OnceLock::new();
    MAIN.get_or_init(|| {
        let hba = [
            "local all all trust",
            "hostssl all postgres 127.0.0.0/8 cert",
            "hostssl all scram_user 127.0.0.0/8 scram-sha-256",
            "host all md5_user 127.0.0.0/8 md5",
            "host all pw_user 127.0.0.0/8 password",
            "hostssl all all 127.0.0.0/8 trust",
        ];
        let cluster = Cluster::start_with(
            Flavor::Pg15,
            tls_options(
                &pki().server,
                Some(hba.iter().map(|s| s.to_string()).collect()),
            ),
        );
        cluster.psql(
            "postgres",
            &format!(
                "CREATE ROLE scram_user LOGIN PASSWORD '{SCRAM_PASSWORD}';
                 SET password_encryption = 'md5';
                 CREATE ROLE md5_user LOGIN PASSWORD '{MD5_PASSWORD}';
                 RESET password_encryption;
                 CREATE ROLE pw_user LOGIN PASSWORD '{PLAIN_PASSWORD}';
                 CREATE ROLE tls_user LOGIN;
                 CREATE ROLE other_user LOGIN;"
            ),
        );
        cluster
    })
}

fn expired_cluster() -> &'static Cluster {
    static EXPIRED: OnceLock<Cluster> = OnceLock::new();
    EXPIRED.get_or_init(|| Cluster::start_with(Flavor::Pg15, tls_options(&pki().expired, None)))
}

fn plain_cluster() -> &'static Cluster {
    static PLAIN: OnceLock<Cluster> = OnceLock::new();
    PLAIN.get_or_init(|| Cluster::start(Flavor::Pg15))
}

/// Client-side files in a fresh directory that also serves as the home
/// directory (so `~/.postgresql` is under the test's control).
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let files = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        let p = pki();
        files.write("ca.crt", &p.ca, 0o644);
        files.write("other-ca.crt", &p.other_ca, 0o644);
        files.write("both-cas.crt", &format!("{}{}", p.other_ca, p.ca), 0o644);
        for (name, pair) in [
            ("client", &p.client),
            ("client-unknown-ca", &p.client_unknown_ca),
            ("client-other-user", &p.client_other_user),
        ] {
            files.write(&format!("{name}.crt"), &pair.cert, 0o644);
            files.write(&format!("{name}.key"), &pair.key, 0o600);
        }
        files
    }

    fn write(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn env(&self) -> Environment {
        Environment::empty()
            .with_os_user("postgres")
            .with_home_dir(self.dir.path())
    }

    fn config(&self, url: &str) -> ConnConfig {
        ConnConfig::parse_with_env(url, &self.env()).unwrap_or_else(|e| panic!("{url}: {e}"))
    }
}

/// `postgresql://USER@HOST:PORT/postgres?connect_timeout=20&PARAMS`.
/// verify-full as `postgres` to `localhost` with the client certificate `NAME.crt`/`NAME.key`.
fn client_cert_config(cluster: &Cluster, files: &Files, name: &str) -> ConnConfig {
    files.config(&url(
        cluster,
        "postgres",
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            files.path("ca.crt"),
            files.path(&format!("{name}.crt")),
            files.path(&format!("{name}.key"))
        ),
    ))
}

fn url(cluster: &Cluster, user: &str, host: &str, params: &str) -> String {
    format!(
        "postgresql://{user}@{host}:{}/postgres?connect_timeout=20&{params}",
        cluster.port()
    )
}

/// Connects and returns (current_user, ssl in use, client DN).
async fn connect_ok(config: &ConnConfig) -> (String, bool, Option<String>) {
    let (client, _task) = connect(config)
        .await
        .unwrap_or_else(|e| panic!("{config}: {e} ({:?})", e.kind()));
    let row = client
        .query_one(
            "SELECT current_user::text, ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

async fn connect_err(config: &ConnConfig) -> ConnError {
    match connect(config).await {
        Ok(_) => panic!("{config}: connected, but should have failed"),
        Err(e) => {
            // Shown with --nocapture: what users would read.
            eprintln!("{:?}: {e}", e.kind());
            e
        }
    }
}

/// No password may appear anywhere in an error.
fn assert_no_password(e: &ConnError) {
    let all = format!("{e} | {e:?} | {:?}", std::error::Error::source(e));
    for pw in [SCRAM_PASSWORD, MD5_PASSWORD, PLAIN_PASSWORD, "canary"] {
        assert!(!all.contains(pw), "password in error: {all}");
    }
}

#[tokio::test]
async fn verify_full_succeeds_with_the_right_ca_and_host() {
    let c = main_cluster();
    let f = Files::new();
    for host in ["localhost", "127.0.0.1"] {
        let cfg = f.config(&url(
            c,
            "tls_user",
            host,
            &format!("sslmode=verify-full&sslrootcert={}", f.path("ca.crt")),
        ));
        let (user, ssl, _) = connect_ok(&cfg).await;
        assert_eq!((user.as_str(), ssl), ("tls_user", true), "{host}");
    }
    // A bundle holding several CAs works too.
    let cfg = f.config(&url(
        c,
        "tls_user",
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", f.path("both-cas.crt")),
    ));
    assert!(connect_ok(&cfg).await.1);
}

#[tokio::test]
async fn verify_full_names_the_host_and_the_certificate_names_on_mismatch() {
    let c = main_cluster();
    let f = Files::new();
    // 127.0.0.2 reaches the same server over loopback but is not in its
    // certificate.
    let cfg = f.config(&url(
        c,
        "tls_user",
        "127.0.0.2",
        &format!("sslmode=verify-full&sslrootcert={}", f.path("ca.crt")),
    ));
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind(), ConnErrorKind::TlsHostnameMismatch, "{e}");
    assert!(e.is_certificate_problem());
    let msg = pgharbor_conn::conn_text(&e);
    assert!(msg.contains("\"127.0.0.2\" you connected to"), "{msg}");
    assert!(msg.contains("DNS:localhost"), "{msg}");
    assert!(msg.contains("IP:127.0.0.1"), "{msg}");
    assert!(msg.contains("subjectAltName"), "{msg}");
}

#[tokio::test]
async fn verify_ca_accepts_a_host_not_in_the_certificate() {
    let c = main_cluster();
    let f = Files::new();
    let cfg = f.config(&url(
        c,
        "tls_user",
        "127.0.0.2",
        &format!("sslmode=verify-ca&sslrootcert={}", f.path("ca.crt")),
    ));
    let (user, ssl, _) = connect_ok(&cfg).await;
    assert_eq!((user.as_str(), ssl), ("tls_user", true));
}

#[tokio::test]
async fn unknown_ca_is_named() {
    let c = main_cluster();
    let f = Files::new();
    for mode in ["verify-full", "verify-ca"] {
        let cfg = f.config(&format!(
            "postgresql://scram_user:{SCRAM_PASSWORD}@localhost:{}/postgres?sslmode={mode}&sslrootcert={}&connect_timeout=20",
            c.port(),
            f.path("other-ca.crt")
        ));
        let e = connect_err(&cfg).await;
        assert_eq!(e.kind(), ConnErrorKind::TlsCertificateUntrusted, "{e}");
        let msg = pgharbor_conn::conn_text(&e);
        assert!(
            msg.contains(&format!(
                "is not signed by a CA in {}",
                f.path("other-ca.crt")
            )),
            "{msg}"
        );
        assert!(msg.contains("\"CN=pgharbor other CA\""), "{msg}");
        assert!(
            msg.contains("issued by \"CN=pgharbor test CA\" for \"CN=localhost\""),
            "{msg}"
        );
        assert!(msg.contains("sslrootcert"), "{msg}");
        assert_no_password(&e);
    }
}

#[tokio::test]
async fn system_roots_do_not_trust_a_private_ca() {
    let c = main_cluster();
    let f = Files::new();
    // sslrootcert=system makes verify-full the default.
    let cfg = f.config(&url(c, "tls_user", "localhost", "sslrootcert=system"));
    assert_eq!(cfg.sslmode(), pgharbor_conn::SslMode::VerifyFull);
    let e = connect_err(&cfg).await;
    if e.kind() == ConnErrorKind::TlsConfiguration {
        // A machine without a CA bundle: the message says how to get one.
        assert!(
            pgharbor_conn::conn_text(&e).contains("ca-certificates"),
            "{e}"
        );
        return;
    }
    assert_eq!(e.kind(), ConnErrorKind::TlsCertificateUntrusted, "{e}");
    let msg = pgharbor_conn::conn_text(&e);
    assert!(
        msg.contains("is not signed by a CA in the system's trusted roots"),
        "{msg}"
    );
    assert!(msg.contains("self-signed or from a private CA"), "{msg}");
}

#[tokio::test]
async fn require_works_without_a_ca_and_checks_the_chain_with_one() {
    let c = main_cluster();
    let f = Files::new();
    let cfg = f.config(&url(c, "tls_user", "127.0.0.2", "sslmode=require"));
    let (_, ssl, _) = connect_ok(&cfg).await;
    assert!(ssl);

    // As in libpq: with a root certificate file, require checks the chain
    // (but not the name) like verify-ca.
    let cfg = f.config(&url(
        c,
        "tls_user",
        "127.0.0.2",
        &format!("sslmode=require&sslrootcert={}", f.path("ca.crt")),
    ));
    assert!(connect_ok(&cfg).await.1);
    let cfg = f.config(&url(
        c,
        "tls_user",
        "localhost",
        &format!("sslmode=require&sslrootcert={}", f.path("other-ca.crt")),
    ));
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind(), ConnErrorKind::TlsCertificateUntrusted, "{e}");
}

#[tokio::test]
async fn default_root_file_in_home_is_used() {
    let c = main_cluster();
    let f = Files::new();
    let cfg = f.config(&url(c, "tls_user", "localhost", "sslmode=verify-full"));
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind(), ConnErrorKind::TlsConfiguration, "{e}");
    let msg = pgharbor_conn::conn_text(&e);
    assert!(msg.contains(".postgresql/root.crt does not exist"), "{msg}");
    assert!(msg.contains("sslrootcert=/path/to/ca.crt"), "{msg}");
    assert!(e.is_bad_parameters());

    f.write(".postgresql/root.crt", &pki().ca, 0o644);
    let (_, ssl, _) = connect_ok(&cfg).await;
    assert!(ssl);

    f.write(".postgresql/root.crt", &pki().other_ca, 0o644);
    let cfg = f.config(&url(c, "tls_user", "localhost", "sslmode=require"));
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind(), ConnErrorKind::TlsCertificateUntrusted, "{e}");
    assert!(
        pgharbor_conn::conn_text(&e).contains("the default root certificate file"),
        "{e}"
    );
}

#[tokio::test]
async fn prefer_verifies_with_a_root_file_and_falls_back_like_libpq() {
    let c = main_cluster();
    let f = Files::new();
    let params = |root: &str| format!("sslmode=prefer&sslrootcert={}", f.path(root));
    let with = |root: &str| {
        f.config(&format!(
            "postgresql://md5_user:{MD5_PASSWORD}@localhost:{}/postgres?connect_timeout=20&{}",
            c.port(),
            params(root)
        ))
    };
    assert!(connect_ok(&with("ca.crt")).await.1);
    // The certificate is not trusted: prefer goes on without TLS.
    assert!(!connect_ok(&with("other-ca.crt")).await.1);
}

#[tokio::test]
async fn expired_certificate_says_when() {
    let c = expired_cluster();
    let f = Files::new();
    let cfg = f.config(&url(
        c,
        "postgres",
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", f.path("ca.crt")),
    ));
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind(), ConnErrorKind::TlsCertificateExpired, "{e}");
    let msg = pgharbor_conn::conn_text(&e);
    assert!(msg.contains("expired on 2021-01-01 00:00:00 UTC"), "{msg}");
    assert!(msg.contains("\"CN=localhost\""), "{msg}");

    // Without verification the expiry does not matter (as in libpq).
    let cfg = f.config(&url(c, "postgres", "localhost", "sslmode=require"));
    assert!(connect_ok(&cfg).await.1);
}

#[tokio::test]
async fn server_without_tls_is_named() {
    let c = plain_cluster();
    let f = Files::new();
    for params in [
        "sslmode=require".to_owned(),
        format!("sslmode=verify-full&sslrootcert={}", f.path("ca.crt")),
    ] {
        let cfg = f.config(&url(c, "postgres", "127.0.0.1", &params));
        let e = connect_err(&cfg).await;
        assert_eq!(e.kind(), ConnErrorKind::TlsNotSupportedByServer, "{e}");
        let msg = pgharbor_conn::conn_text(&e);
        assert!(msg.contains("does not support TLS"), "{msg}");
        assert!(msg.contains(&format!("127.0.0.1:{}", c.port())), "{msg}");
    }
    // prefer falls back to a plain connection.
    let cfg = f.config(&url(c, "postgres", "127.0.0.1", "sslmode=prefer"));
    assert!(!connect_ok(&cfg).await.1);
}

#[tokio::test]
async fn client_certificate_authentication_works() {
    let c = main_cluster();
    let f = Files::new();
    let cfg = client_cert_config(c, &f, "client");
    let (user, ssl, dn) = connect_ok(&cfg).await;
    assert_eq!((user.as_str(), ssl), ("postgres", true));
    assert!(dn.unwrap_or_default().contains("CN=postgres"));

    // libpq's default files, ~/.postgresql/postgresql.crt and .key.
    f.write(".postgresql/postgresql.crt", &pki().client.cert, 0o644);
    f.write(".postgresql/postgresql.key", &pki().client.key, 0o600);
    let cfg = f.config(&url(
        c,
        "postgres",
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", f.path("ca.crt")),
    ));
    assert_eq!(connect_ok(&cfg).await.0, "postgres");
}

#[tokio::test]
async fn missing_client_certificate_is_rejected() {
    let c = main_cluster();
    let f = Files::new();
    let cfg = f.config(&url(
        c,
        "postgres",
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", f.path("ca.crt")),
    ));
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind(), ConnErrorKind::TlsClientCertificateRejected, "{e}");
    let msg = pgharbor_conn::conn_text(&e);
    assert!(msg.contains("requires a client certificate"), "{msg}");
    assert!(msg.contains("none was sent"), "{msg}");
    assert!(msg.contains("sslcert=FILE"), "{msg}");
}

#[tokio::test]
async fn client_certificate_from_an_unknown_ca_is_rejected() {
    let c = main_cluster();
    let f = Files::new();
    let cfg = client_cert_config(c, &f, "client-unknown-ca");
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind(), ConnErrorKind::TlsClientCertificateRejected, "{e}");
    let msg = pgharbor_conn::conn_text(&e);
    assert!(
        msg.contains(&format!(
            "rejected the client certificate {}",
            f.path("client-unknown-ca.crt")
        )),
        "{msg}"
    );
    assert!(
        msg.contains("not signed by a CA the server trusts"),
        "{msg}"
    );
}

#[tokio::test]
async fn client_certificate_for_another_user_is_rejected() {
    let c = main_cluster();
    let f = Files::new();
    let cfg = client_cert_config(c, &f, "client-other-user");
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind(), ConnErrorKind::TlsClientCertificateRejected, "{e}");
    let msg = pgharbor_conn::conn_text(&e);
    assert!(msg.contains("its common name is \"other_user\""), "{msg}");
    assert!(msg.contains("for user \"postgres\""), "{msg}");
    assert!(msg.contains("pg_ident.conf"), "{msg}");
}

#[tokio::test]
async fn readable_client_key_is_refused_before_connecting() {
    let c = main_cluster();
    let f = Files::new();
    let key = f.write("loose.key", &pki().client.key, 0o644);
    let cfg = f.config(&url(
        c,
        "postgres",
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            f.path("ca.crt"),
            f.path("client.crt"),
            key.display()
        ),
    ));
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind(), ConnErrorKind::TlsConfiguration, "{e}");
    let msg = pgharbor_conn::conn_text(&e);
    assert!(msg.contains("loose.key has group or world access"), "{msg}");
    assert!(msg.contains("chmod 600"), "{msg}");
}

#[tokio::test]
async fn scram_with_channel_binding_over_tls() {
    let c = main_cluster();
    let f = Files::new();
    for params in [
        format!(
            "sslmode=verify-full&sslrootcert={}&channel_binding=require",
            f.path("ca.crt")
        ),
        // Channel binding also protects an unverified connection.
        "sslmode=require&channel_binding=require".to_owned(),
        "sslmode=require&channel_binding=disable".to_owned(),
        "sslmode=require".to_owned(),
    ] {
        let cfg = f.config(&format!(
            "postgresql://scram_user:{SCRAM_PASSWORD}@localhost:{}/postgres?connect_timeout=20&{params}",
            c.port()
        ));
        let (user, ssl, _) = connect_ok(&cfg).await;
        assert_eq!((user.as_str(), ssl), ("scram_user", true), "{params}");
    }

    // A wrong password is an authentication failure without the password.
    let cfg = f.config(&format!(
        "postgresql://scram_user:wrong-canary@localhost:{}/postgres?sslmode=require&channel_binding=require&connect_timeout=20",
        c.port()
    ));
    let e = connect_err(&cfg).await;
    assert!(e.is_authentication_failed(), "{e}");
    assert!(!format!("{e} {e:?}").contains("wrong-canary"), "{e}");
}

#[tokio::test]
async fn channel_binding_require_refuses_methods_that_cannot_bind() {
    let c = main_cluster();
    let f = Files::new();
    for (user, password) in [("tls_user", ""), ("md5_user", MD5_PASSWORD)] {
        let auth = if password.is_empty() {
            user.to_owned()
        } else {
            format!("{user}:{password}")
        };
        let cfg = f.config(&format!(
            "postgresql://{auth}@localhost:{}/postgres?sslmode=require&channel_binding=require&connect_timeout=20",
            c.port()
        ));
        let e = connect_err(&cfg).await;
        assert!(e.is_authentication_failed(), "{user}: {e}");
        let msg = pgharbor_conn::conn_text(&e);
        assert!(msg.contains("channel_binding=require"), "{msg}");
        assert!(msg.contains("SCRAM channel binding"), "{msg}");
        assert_no_password(&e);
    }
}

#[tokio::test]
async fn md5_and_plain_password_authentication_still_work() {
    let c = main_cluster();
    let f = Files::new();
    for (user, password) in [("md5_user", MD5_PASSWORD), ("pw_user", PLAIN_PASSWORD)] {
        for mode in ["disable", "require"] {
            let cfg = f.config(&format!(
                "postgresql://{user}:{password}@127.0.0.1:{}/postgres?sslmode={mode}&connect_timeout=20",
                c.port()
            ));
            let (got, ssl, _) = connect_ok(&cfg).await;
            assert_eq!((got.as_str(), ssl), (user, mode == "require"));
        }
        let cfg = f.config(&format!(
            "postgresql://{user}:bad-canary@127.0.0.1:{}/postgres?sslmode=require&connect_timeout=20",
            c.port()
        ));
        let e = connect_err(&cfg).await;
        assert!(e.is_authentication_failed(), "{e}");
        assert!(!format!("{e} {e:?}").contains("bad-canary"), "{e}");
    }
}

#[tokio::test]
async fn direct_tls_negotiation_needs_postgres_17() {
    let c = main_cluster();
    let f = Files::new();
    let cfg = f.config(&url(
        c,
        "tls_user",
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}&sslnegotiation=direct",
            f.path("ca.crt")
        ),
    ));
    if c.major_version() >= 17 {
        assert!(connect_ok(&cfg).await.1);
        return;
    }
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind(), ConnErrorKind::TlsNotSupportedByServer, "{e}");
    let msg = pgharbor_conn::conn_text(&e);
    assert!(msg.contains("sslnegotiation=direct"), "{msg}");
    assert!(msg.contains("PostgreSQL 17"), "{msg}");
    assert!(msg.contains("sslnegotiation=postgres"), "{msg}");
}
