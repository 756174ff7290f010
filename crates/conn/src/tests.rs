//! Tests of parsing as a whole: forms, environment fallbacks, the password
//! file, rendering, and that passwords never leak.

use crate::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn env() -> Environment {
    // A socket directory that does not exist keeps the default host fixed
    // whatever this machine has.
    Environment::empty()
        .with_os_user("osuser")
        .with_socket_dirs(["/nonexistent/pg-socket-dir"])
}

fn parse(s: &str) -> ConnConfig {
    ConnConfig::parse_with_env(s, &env()).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn parse_env(s: &str, env: &Environment) -> ConnConfig {
    ConnConfig::parse_with_env(s, env).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn err(s: &str) -> ConnError {
    ConnConfig::parse_with_env(s, &env()).expect_err(s)
}

#[cfg(unix)]
fn write_pgpass(dir: &Path, content: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("pgpass");
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn defaults_like_libpq() {
    let c = parse("");
    assert_eq!(c.host(), &Host::Unix("/nonexistent/pg-socket-dir".into()));
    assert_eq!(c.port(), 5432);
    assert_eq!(c.user(), "osuser");
    assert_eq!(c.dbname(), "osuser", "dbname defaults to the user");
    assert_eq!(c.sslmode(), SslMode::Prefer);
    assert!(c.password().is_none());
    assert_eq!(c.password_source(), &PasswordSource::None);
    assert!(c.connect_timeout().is_none());
    assert!(c.is_unix_socket());
    assert_eq!(
        c.to_string(),
        "postgresql://osuser@/osuser?host=/nonexistent/pg-socket-dir"
    );
}

#[test]
fn default_socket_dir_is_the_one_with_the_socket() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::write(b.path().join(".s.PGSQL.6001"), b"").unwrap();
    let e = Environment::empty()
        .with_os_user("u")
        .with_socket_dirs([a.path(), b.path()]);
    assert_eq!(
        parse_env("port=6001", &e).host(),
        &Host::Unix(b.path().into())
    );
    assert_eq!(
        parse_env("port=6002", &e).host(),
        &Host::Unix(a.path().into())
    );
}

#[test]
fn dbname_defaults_to_the_resolved_user() {
    assert_eq!(parse("user=alice").dbname(), "alice");
    let e = env().with_var("PGUSER", "bob");
    assert_eq!(parse_env("", &e).dbname(), "bob");
}

#[test]
fn environment_fallbacks() {
    let e = env()
        .with_var("PGHOST", "db.internal")
        .with_var("PGPORT", "6432")
        .with_var("PGUSER", "envuser")
        .with_var("PGPASSWORD", "envpass")
        .with_var("PGDATABASE", "envdb")
        .with_var("PGSSLMODE", "require")
        .with_var("PGAPPNAME", "envapp")
        .with_var("PGCONNECT_TIMEOUT", "9")
        .with_var("PGOPTIONS", "-c search_path=envschema");
    let c = parse_env("", &e);
    assert_eq!(c.host(), &Host::Tcp("db.internal".into()));
    assert_eq!(c.port(), 6432);
    assert_eq!(c.user(), "envuser");
    assert_eq!(c.password().unwrap().expose(), "envpass");
    assert_eq!(c.password_source(), &PasswordSource::Environment);
    assert_eq!(c.dbname(), "envdb");
    assert_eq!(c.sslmode(), SslMode::Require);
    assert_eq!(c.application_name(), Some("envapp"));
    assert_eq!(c.connect_timeout(), Some(Duration::from_secs(9)));
    assert_eq!(c.search_path(), Some("envschema"));

    // Explicit values win over the environment, in both forms.
    for s in [
        "host=h port=1 user=u password=p dbname=d sslmode=disable application_name=a connect_timeout=3 options=-csearch_path=s",
        "postgresql://u:p@h:1/d?sslmode=disable&application_name=a&connect_timeout=3&options=-csearch_path%3Ds",
    ] {
        let c = parse_env(s, &e);
        assert_eq!(c.host(), &Host::Tcp("h".into()), "{s}");
        assert_eq!(c.port(), 1);
        assert_eq!(c.user(), "u");
        assert_eq!(c.password().unwrap().expose(), "p");
        assert_eq!(c.password_source(), &PasswordSource::ConnectionString);
        assert_eq!(c.dbname(), "d");
        assert_eq!(c.sslmode(), SslMode::Disable);
        assert_eq!(c.application_name(), Some("a"));
        assert_eq!(c.connect_timeout(), Some(Duration::from_secs(3)));
        assert_eq!(c.search_path(), Some("s"));
    }
}

#[test]
fn url_parts_left_out_fall_back_to_environment() {
    let e = env()
        .with_var("PGDATABASE", "envdb")
        .with_var("PGPORT", "6543");
    let c = parse_env("postgresql://h", &e);
    assert_eq!(c.dbname(), "envdb");
    assert_eq!(c.port(), 6543);
    let c = parse_env("postgresql://h/", &e);
    assert_eq!(
        c.dbname(),
        "envdb",
        "an empty path does not block PGDATABASE"
    );
}

#[test]
fn explicit_empty_value_blocks_environment_like_libpq() {
    let e = env()
        .with_var("PGHOST", "db.internal")
        .with_var("PGDATABASE", "envdb");
    let c = parse_env("host='' dbname=''", &e);
    assert!(c.is_unix_socket(), "empty host means the default socket");
    assert_eq!(c.dbname(), "osuser");
}

#[test]
fn invalid_environment_values_name_the_variable() {
    let cases = [
        ("PGPORT", "abc", "PGPORT"),
        ("PGSSLMODE", "sometimes", "PGSSLMODE"),
        ("PGCONNECT_TIMEOUT", "soon", "PGCONNECT_TIMEOUT"),
        ("PGHOST", "a,b", "several hosts"),
    ];
    for (var, value, expect) in cases {
        let e = ConnConfig::parse_with_env("", &env().with_var(var, value)).unwrap_err();
        assert_eq!(e.kind(), ConnErrorKind::InvalidConnectionString);
        assert!(crate::conn_text(&e).contains(expect), "{var}: {e}");
    }
}

#[test]
fn missing_user_name_is_an_error() {
    let e = ConnConfig::parse_with_env("host=h", &Environment::empty()).unwrap_err();
    assert!(crate::conn_text(&e).contains("PGUSER"), "{e}");
}

#[test]
fn fallback_application_name() {
    assert_eq!(
        parse("fallback_application_name=fb").application_name(),
        Some("fb")
    );
    assert_eq!(
        parse("application_name=app fallback_application_name=fb").application_name(),
        Some("app")
    );
    let c = parse("host=h");
    assert_eq!(
        c.with_fallback_application_name("pgharbor")
            .application_name(),
        Some("pgharbor")
    );
    let c = parse("host=h application_name=mine");
    assert_eq!(
        c.with_fallback_application_name("pgharbor")
            .application_name(),
        Some("mine")
    );
}

#[test]
fn socket_hosts_in_every_spelling() {
    for s in [
        "host=/var/run/postgresql",
        "postgresql:///db?host=/var/run/postgresql",
        "postgresql://%2Fvar%2Frun%2Fpostgresql/db",
        "postgresql://user@%2fvar%2frun%2fpostgresql:5432/db",
    ] {
        let c = parse(s);
        assert_eq!(c.host(), &Host::Unix("/var/run/postgresql".into()), "{s}");
        assert!(c.is_unix_socket());
        assert_eq!(c.endpoint(), "/var/run/postgresql/.s.PGSQL.5432");
    }
    let e = env().with_var("PGHOST", "/tmp");
    assert_eq!(parse_env("", &e).host(), &Host::Unix("/tmp".into()));
}

#[test]
fn tcp_endpoints() {
    assert_eq!(
        parse("host=db.example port=6000").endpoint(),
        "db.example:6000"
    );
    assert_eq!(parse("postgresql://[::1]:6000/x").endpoint(), "[::1]:6000");
    assert_eq!(parse("host=127.0.0.1").endpoint(), "127.0.0.1:5432");
}

#[test]
fn sslmode_values() {
    for mode in SslMode::ALL {
        assert_eq!(parse(&format!("host=h sslmode={mode}")).sslmode(), mode);
        assert_eq!(
            parse(&format!("postgresql://h/?sslmode={mode}")).sslmode(),
            mode
        );
    }
    assert_eq!(
        parse("postgresql://h/?ssl=true").sslmode(),
        SslMode::Require
    );
    assert_eq!(parse("host=h requiressl=1").sslmode(), SslMode::Require);
    let e = err("host=h sslmode=on");
    assert!(
        crate::conn_text(&e).contains("invalid sslmode \"on\""),
        "{e}"
    );
}

#[test]
fn connect_timeout_rules() {
    assert_eq!(
        parse("connect_timeout=1").connect_timeout(),
        Some(Duration::from_secs(2))
    );
    assert_eq!(parse("connect_timeout=0").connect_timeout(), None);
    assert_eq!(parse("connect_timeout=-3").connect_timeout(), None);
    assert_eq!(
        parse("connect_timeout=' 10 '").connect_timeout(),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn foreign_schemes_are_named() {
    let e = err("mysql://u:secretpw@h/db");
    assert!(
        crate::conn_text(&e).contains("unsupported URL scheme \"mysql\""),
        "{e}"
    );
    assert!(!crate::conn_text(&e).contains("secretpw"));
    let e = err("jdbc:postgresql://h/db");
    assert!(crate::conn_text(&e).contains("jdbc:"), "{e}");
}

#[test]
fn display_masks_the_password_and_to_url_encodes_it() {
    let c = parse("postgresql://pgadmin:Abc123XYZ%21%40%23@host:5432/openwebui?sslmode=require");
    assert_eq!(c.password().unwrap().expose(), "Abc123XYZ!@#");
    assert_eq!(
        c.to_string(),
        "postgresql://pgadmin:****@host:5432/openwebui?sslmode=require"
    );
    let full = c.to_url_with_password();
    assert_eq!(format!("{full:?}"), "[REDACTED]");
    assert_eq!(
        full.expose(),
        "postgresql://pgadmin:Abc123XYZ%21%40%23@host:5432/openwebui?sslmode=require"
    );
    // The full URL parses back to the same password.
    let back = parse(full.expose());
    assert_eq!(back.password().unwrap().expose(), "Abc123XYZ!@#");
}

#[test]
fn to_url_round_trips_everything() {
    let tricky = "p@ss:w/o?r#d% &=+'\"\\ é";
    let mut s = String::from(
        "host=db.example port=6000 user='we ird@user' dbname='my/db?' sslmode=require ",
    );
    s.push_str(
        "application_name='etl job' connect_timeout=5 options='-c search_path=a,b' password='",
    );
    s.push_str(&tricky.replace('\\', "\\\\").replace('\'', "\\'"));
    s.push('\'');
    let c = parse(&s);
    assert_eq!(c.password().unwrap().expose(), tricky);
    let url = c.to_url_with_password();
    let back = parse(url.expose());
    assert_eq!(back.password().unwrap().expose(), tricky);
    assert_eq!(back.user(), "we ird@user");
    assert_eq!(back.dbname(), "my/db?");
    assert_eq!(back.host(), c.host());
    assert_eq!(back.port(), 6000);
    assert_eq!(back.sslmode(), SslMode::Require);
    assert_eq!(back.application_name(), Some("etl job"));
    assert_eq!(back.connect_timeout(), Some(Duration::from_secs(5)));
    assert_eq!(back.search_path(), Some("a,b"));
    // Display is the same URL with the password masked.
    assert_eq!(
        c.to_string(),
        url.expose()
            .replace(&crate::encoding::encode(tricky), "****")
    );
}

#[test]
fn to_url_for_sockets_and_ipv6() {
    let c = parse("host=/tmp port=5433 user=u dbname=d password=pw");
    assert_eq!(c.to_string(), "postgresql://u:****@/d?host=/tmp&port=5433");
    let back = parse(c.to_url_with_password().expose());
    assert_eq!(back.host(), &Host::Unix("/tmp".into()));
    assert_eq!(back.port(), 5433);
    let c = parse("postgresql://u@[fe80::1%25eth0]:5432/d");
    assert_eq!(c.host(), &Host::Tcp("fe80::1%eth0".into()));
    assert_eq!(c.to_string(), "postgresql://u@[fe80::1%25eth0]:5432/d");
    assert_eq!(parse(&c.to_string()).host(), c.host());
}

#[test]
fn with_dbname_changes_only_the_database() {
    let c = parse("postgresql://u:pw@h:6000/app?sslmode=require&application_name=x");
    let admin = c.with_dbname("postgres");
    assert_eq!(admin.dbname(), "postgres");
    assert_eq!(admin.user(), "u");
    assert_eq!(admin.password().unwrap().expose(), "pw");
    assert_eq!(admin.host(), c.host());
    assert_eq!(admin.port(), 6000);
    assert_eq!(admin.sslmode(), SslMode::Require);
    assert_eq!(admin.application_name(), Some("x"));
    assert_eq!(c.dbname(), "app");
}

#[cfg(unix)]
#[test]
fn pgpass_supplies_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pgpass(
        dir.path(),
        "db.example:5432:app:u:app-pw\n\
         db.example:5432:postgres:u:admin-pw\n\
         localhost:5432:*:u:socket-pw\n\
         /srv/pg:5432:*:u:custom-socket-pw\n",
        0o600,
    );
    let e = env().with_var("PGPASSFILE", path.to_str().unwrap());

    let c = parse_env("postgresql://u@db.example/app", &e);
    assert_eq!(c.password().unwrap().expose(), "app-pw");
    assert_eq!(
        c.password_source(),
        &PasswordSource::PasswordFile(path.clone())
    );
    assert_eq!(c.to_string(), "postgresql://u:****@db.example:5432/app");

    // with_dbname looks the password up again for the new database.
    let admin = c.with_dbname("postgres");
    assert_eq!(admin.password().unwrap().expose(), "admin-pw");
    assert!(c.with_dbname("other").password().is_none());

    // "localhost" matches default-socket connections (and TCP localhost).
    let sock = Environment::empty()
        .with_os_user("u")
        .with_socket_dirs(["/var/run/postgresql"])
        .with_var("PGPASSFILE", path.to_str().unwrap());
    assert_eq!(
        parse_env("", &sock).password().unwrap().expose(),
        "socket-pw"
    );
    assert_eq!(
        parse_env("host=/var/run/postgresql", &sock)
            .password()
            .unwrap()
            .expose(),
        "socket-pw"
    );
    assert_eq!(
        parse_env("host=localhost", &sock)
            .password()
            .unwrap()
            .expose(),
        "socket-pw"
    );
    // Other socket directories match literally.
    assert_eq!(
        parse_env("host=/srv/pg", &sock)
            .password()
            .unwrap()
            .expose(),
        "custom-socket-pw"
    );
    // 127.0.0.1 is not "localhost".
    assert!(parse_env("host=127.0.0.1", &sock).password().is_none());

    // An explicit password or PGPASSWORD wins over the file.
    let c = parse_env("postgresql://u:given@db.example/app", &e);
    assert_eq!(c.password().unwrap().expose(), "given");
    assert_eq!(c.password_source(), &PasswordSource::ConnectionString);
    assert_eq!(
        c.with_dbname("postgres").password().unwrap().expose(),
        "given"
    );
    let c = parse_env(
        "postgresql://u@db.example/app",
        &e.clone().with_var("PGPASSWORD", "envpw"),
    );
    assert_eq!(c.password().unwrap().expose(), "envpw");
}

#[cfg(unix)]
#[test]
fn pgpass_location_precedence() {
    let home = tempfile::tempdir().unwrap();
    write_pgpass(home.path(), "*:*:*:*:from-other\n", 0o600);
    std::fs::rename(home.path().join("pgpass"), home.path().join("other")).unwrap();
    let default = write_pgpass(home.path(), "*:*:*:*:from-home\n", 0o600);
    std::fs::rename(&default, home.path().join(".pgpass")).unwrap();
    let other = home.path().join("other");

    let e = env().with_home_dir(home.path());
    assert_eq!(
        parse_env("host=h", &e).password().unwrap().expose(),
        "from-home"
    );
    let e2 = e.clone().with_var("PGPASSFILE", other.to_str().unwrap());
    assert_eq!(
        parse_env("host=h", &e2).password().unwrap().expose(),
        "from-other"
    );
    let s = format!(
        "host=h passfile='{}'",
        home.path().join(".pgpass").display()
    );
    assert_eq!(parse_env(&s, &e2).password().unwrap().expose(), "from-home");
}

#[cfg(unix)]
#[test]
fn pgpass_with_loose_permissions_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pgpass(dir.path(), "*:*:*:*:pw\n", 0o644);
    let e = env().with_var("PGPASSFILE", path.to_str().unwrap());
    let c = parse_env("host=h", &e);
    assert!(c.password().is_none());
    assert_eq!(c.password_source(), &PasswordSource::None);
}

#[test]
fn missing_pgpass_is_fine() {
    let e = env().with_var("PGPASSFILE", "/nonexistent/pgpass");
    assert!(parse_env("host=h", &e).password().is_none());
}

#[test]
fn unencoded_password_errors_through_the_public_api() {
    let e = err("postgresql://pgadmin:Abc123XYZ!@#@host:5432/openwebui?sslmode=require");
    assert_eq!(e.kind(), ConnErrorKind::UnencodedCharacterInPassword);
    assert!(e.is_bad_parameters());
    assert_eq!(
        e.corrected_url(),
        Some("postgresql://pgadmin:****@host:5432/openwebui?sslmode=require")
    );
    let msg = crate::conn_text(&e);
    assert!(msg.contains("%40") && msg.contains("%23"), "{msg}");
    assert!(msg.contains("PGPASSWORD"), "{msg}");
}

/// Every way a password can reach us, rendered every way we render things:
/// the password never shows.
#[test]
fn passwords_never_leak() {
    const PW: &str = "Zq9-leak-canary";
    let good = [
        format!("postgresql://u:{PW}@h/db"),
        format!("postgresql://h/db?password={PW}"),
        format!("host=h password={PW}"),
        format!("host=h password='{PW}'"),
    ];
    for s in &good {
        let c = parse(s);
        assert_eq!(c.password().unwrap().expose(), PW);
        for out in [
            c.to_string(),
            format!("{c:?}"),
            format!("{c:#?}"),
            format!("{:?}", c.with_dbname("x")),
            format!("{:?}", c.password()),
            format!("{:?}", c.to_url_with_password()),
        ] {
            assert!(!out.contains(PW), "{s} leaked in {out}");
        }
    }
    let c = parse_env("host=h", &env().with_var("PGPASSWORD", PW));
    assert!(!format!("{c:?} {c}").contains(PW));

    let bad = [
        format!("postgresql://u:{PW}@x@h/db"),
        format!("postgresql://u:{PW}#x@h/db"),
        format!("postgresql://u:{PW}/x@h/db"),
        format!("postgresql://u:{PW}?x@h/db"),
        format!("postgresql://u:{PW}:x/y@h/db"),
        format!("postgresql://u:{PW}%zz@h/db"),
        format!("postgresql://u:{PW}@h:abc/db"),
        format!("postgresql://u:{PW}@h/db?bogus=1"),
        format!("postgresql://u:{PW}@@h!/db"),
        format!("postgresql://u:{PW}/db"),
        format!("postgresql://h/db?password={PW}&tail"),
        format!("postgresql://h/db?password={PW}%zz"),
        format!("u:{PW}@h/db"),
        format!("host=h password={PW} more"),
        format!("host=h password='{PW}"),
        format!("mysql://u:{PW}@h/db"),
        format!("postgresql://u:{PW}@h/db?sslmode=bogus"),
    ];
    for s in &bad {
        let e = err(s);
        for out in [
            crate::conn_text(&e),
            format!("{e:?}"),
            e.corrected_url().unwrap_or("").to_owned(),
        ] {
            assert!(!out.contains(PW), "{s} leaked in {out}");
            assert!(!out.contains("canary"), "{s} leaked in {out}");
        }
    }
}

#[test]
fn tls_parameters_parse_in_both_forms_and_from_the_environment() {
    let c = parse(
        "postgresql://u@db.example/x?sslmode=verify-full&sslrootcert=/etc/pg/ca.pem\
         &sslcert=/etc/pg/client.crt&sslkey=/etc/pg/client.key&sslnegotiation=direct\
         &channel_binding=require",
    );
    assert_eq!(c.sslmode(), SslMode::VerifyFull);
    assert_eq!(
        c.ssl_root_cert(),
        Some(&SslRootCert::File("/etc/pg/ca.pem".into()))
    );
    assert_eq!(c.ssl_cert(), Some(Path::new("/etc/pg/client.crt")));
    assert_eq!(c.ssl_key(), Some(Path::new("/etc/pg/client.key")));
    assert_eq!(c.ssl_negotiation(), SslNegotiation::Direct);
    assert_eq!(c.channel_binding(), ChannelBinding::Require);
    // Rendered back, so psql and pg_dump get the same settings.
    assert_eq!(
        c.to_string(),
        "postgresql://u@db.example:5432/x?sslmode=verify-full&sslrootcert=/etc/pg/ca.pem\
         &sslcert=/etc/pg/client.crt&sslkey=/etc/pg/client.key&sslnegotiation=direct\
         &channel_binding=require"
    );
    assert_eq!(parse(&c.to_string()).to_string(), c.to_string());

    let kv =
        parse("host=h sslmode=verify-ca sslrootcert='/my certs/ca.pem' channel_binding=disable");
    assert_eq!(
        kv.ssl_root_cert(),
        Some(&SslRootCert::File("/my certs/ca.pem".into()))
    );
    assert_eq!(kv.channel_binding(), ChannelBinding::Disable);
    assert!(
        kv.to_string().contains("sslrootcert=/my%20certs/ca.pem"),
        "{kv}"
    );

    let e = env()
        .with_var("PGSSLMODE", "verify-ca")
        .with_var("PGSSLROOTCERT", "/env/ca.pem")
        .with_var("PGSSLCERT", "/env/c.crt")
        .with_var("PGSSLKEY", "/env/c.key")
        .with_var("PGSSLNEGOTIATION", "direct")
        .with_var("PGCHANNELBINDING", "require");
    let c = parse_env("host=h", &e);
    assert_eq!(c.sslmode(), SslMode::VerifyCa);
    assert_eq!(
        c.ssl_root_cert(),
        Some(&SslRootCert::File("/env/ca.pem".into()))
    );
    assert_eq!(c.ssl_cert(), Some(Path::new("/env/c.crt")));
    assert_eq!(c.ssl_key(), Some(Path::new("/env/c.key")));
    assert_eq!(c.ssl_negotiation(), SslNegotiation::Direct);
    assert_eq!(c.channel_binding(), ChannelBinding::Require);
    // The connection string wins over the environment.
    let c = parse_env("host=h sslrootcert=/cs/ca.pem", &e);
    assert_eq!(
        c.ssl_root_cert(),
        Some(&SslRootCert::File("/cs/ca.pem".into()))
    );
    for var in [
        "PGSSLROOTCERT",
        "PGSSLCERT",
        "PGSSLKEY",
        "PGSSLNEGOTIATION",
        "PGCHANNELBINDING",
    ] {
        assert!(PG_ENV_VARS.contains(&var), "{var}");
    }
    for p in [
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslnegotiation",
        "channel_binding",
    ] {
        assert!(SUPPORTED_PARAMS.contains(&p), "{p}");
    }
}

#[test]
fn default_certificate_files_live_in_home_dot_postgresql() {
    let c = parse_env("host=h", &env().with_home_dir("/home/alice"));
    assert_eq!(c.ssl_root_cert(), None);
    assert_eq!(
        c.default_ssl_root_cert(),
        Some(PathBuf::from("/home/alice/.postgresql/root.crt"))
    );
    assert_eq!(parse("host=h").default_ssl_root_cert(), None);
}

#[test]
fn sslrootcert_system_means_verify_full() {
    let c = parse("host=db.example sslrootcert=system");
    assert_eq!(c.sslmode(), SslMode::VerifyFull);
    assert_eq!(c.ssl_root_cert(), Some(&SslRootCert::System));
    assert!(c.to_string().contains("sslrootcert=system"), "{c}");
    let c = parse("host=db.example sslrootcert=system sslmode=verify-full");
    assert_eq!(c.sslmode(), SslMode::VerifyFull);
    for weak in ["disable", "allow", "prefer", "require", "verify-ca"] {
        let e = err(&format!(
            "host=db.example sslrootcert=system sslmode={weak}"
        ));
        assert_eq!(e.kind(), ConnErrorKind::InvalidConnectionString);
        let msg = crate::conn_text(&e);
        assert!(
            msg.contains(&format!(
                "sslmode={weak} may not be used with sslrootcert=system"
            )),
            "{msg}"
        );
        assert!(msg.contains("use sslmode=verify-full"), "{msg}");
    }
    // PGSSLMODE counts as given, as in libpq.
    let e = ConnConfig::parse_with_env(
        "host=h sslrootcert=system",
        &env().with_var("PGSSLMODE", "require"),
    )
    .unwrap_err();
    assert!(
        crate::conn_text(&e).contains("sslmode=require may not"),
        "{e}"
    );
}

#[test]
fn tls_parameter_combinations_are_checked() {
    for weak in ["disable", "allow", "prefer"] {
        let e = err(&format!("host=h sslmode={weak} sslnegotiation=direct"));
        let msg = crate::conn_text(&e);
        assert!(
            msg.contains(&format!(
                "sslnegotiation=direct may not be used with sslmode={weak}"
            )),
            "{msg}"
        );
    }
    // prefer is the default sslmode.
    assert!(err("host=h sslnegotiation=direct")
        .to_string()
        .contains("sslmode=prefer"));
    assert_eq!(
        parse("host=h sslmode=require sslnegotiation=direct").ssl_negotiation(),
        SslNegotiation::Direct
    );

    let e = err("host=h sslmode=disable channel_binding=require");
    assert!(
        crate::conn_text(&e).contains("needs an encrypted connection"),
        "{e}"
    );
    let e = err("host=/var/run/postgresql channel_binding=require");
    assert!(crate::conn_text(&e).contains("Unix socket"), "{e}");

    let e = err("host=h sslnegotiation=quick");
    assert!(
        crate::conn_text(&e).contains("invalid sslnegotiation \"quick\""),
        "{e}"
    );
    let e = err("postgresql://h/db?channel_binding=maybe");
    assert!(
        crate::conn_text(&e).contains("invalid channel_binding"),
        "{e}"
    );
    let e =
        ConnConfig::parse_with_env("host=h", &env().with_var("PGCHANNELBINDING", "x")).unwrap_err();
    assert!(crate::conn_text(&e).contains("in PGCHANNELBINDING"), "{e}");
}
