//! `pgharbor secret generate`, `pgharbor url build` and `pgharbor url inspect`.

use crate::harness::{pgharbor, pgharbor_with, scalar, Scratch};
use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};

/// The field report's URL: a password with unencoded `!@#`.
const FIELD_REPORT_URL: &str =
    "postgresql://pgadmin:Abc123XYZ!@#@host:5432/openwebui?sslmode=require";

#[test]
fn generate_prints_a_strong_password_with_every_class() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let run = pgharbor(&["secret", "generate"]).success();
        let pw = run.stdout.strip_suffix('\n').expect("one line");
        assert_eq!(pw.chars().count(), 24, "{pw}");
        assert!(pw.chars().any(|c| c.is_ascii_lowercase()), "{pw}");
        assert!(pw.chars().any(|c| c.is_ascii_uppercase()), "{pw}");
        assert!(pw.chars().any(|c| c.is_ascii_digit()), "{pw}");
        assert!(pw.chars().any(|c| "-._~".contains(c)), "{pw}");
        assert!(
            pw.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)),
            "{pw}"
        );
        assert!(run.stderr.is_empty(), "{}", run.stderr);
        assert!(seen.insert(pw.to_owned()), "repeated password");
    }
}

#[test]
fn generate_options() {
    let run = pgharbor(&["secret", "generate", "--length", "40", "--no-symbols"]).success();
    let pw = run.stdout.trim_end();
    assert_eq!(pw.len(), 40);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()), "{pw}");

    let run = pgharbor(&["secret", "generate", "--symbols", "-!*", "-l", "16"]).success();
    let pw = run.stdout.trim_end();
    assert_eq!(pw.len(), 16);
    assert!(pw.chars().any(|c| "-!*".contains(c)), "{pw}");
    assert!(
        run.stderr.contains("percent-encoded") && run.stderr.contains("!*"),
        "a note on symbols that need encoding: {}",
        run.stderr
    );

    let run = pgharbor(&["secret", "generate", "--length", "15"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("at least 16"), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    let run = pgharbor(&["secret", "generate", "--symbols", "ab"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("'a'"), "{}", run.stderr);

    let run = pgharbor(&["secret", "generate", "--symbols", "!", "--no-symbols"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let run = pgharbor(&["secret", "generate", "--force"]);
    assert_eq!(run.code, 2, "--force needs --output: {}", run.all());
}

#[cfg(unix)]
#[test]
fn generate_writes_a_0600_file_and_never_overwrites_by_accident() {
    use std::os::unix::fs::PermissionsExt as _;
    let scratch = Scratch::new();
    let path = scratch.path("db-password");
    let file = path.to_str().unwrap();
    let run = pgharbor(&["secret", "generate", "--output", file]).success();
    assert_eq!(run.stdout, format!("wrote {file}\n"));
    let written = std::fs::read_to_string(&path).unwrap();
    let pw = written.strip_suffix('\n').expect("password and a newline");
    assert_eq!(pw.len(), 24);
    assert!(!run.all().contains(pw), "the password was printed");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let run = pgharbor(&["secret", "generate", "--output", file]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("already exists") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        written,
        "left alone"
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = pgharbor(&["secret", "generate", "-o", file, "--force"]).success();
    let replaced = std::fs::read_to_string(&path).unwrap();
    assert_ne!(replaced, written);
    assert!(!run.all().contains(replaced.trim_end()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let run = pgharbor(&["secret", "generate", "-o", "/nonexistent-dir/pw"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("/nonexistent-dir/pw"), "{}", run.stderr);
}

#[test]
fn build_encodes_the_field_report_password() {
    let run = pgharbor_with(
        &[
            "url",
            "build",
            "--host",
            "host",
            "--user",
            "pgadmin",
            "--database",
            "openwebui",
            "--sslmode",
            "require",
            "--password-stdin",
        ],
        &[],
        Some("Abc123XYZ!@#\n"),
    )
    .success();
    assert_eq!(
        run.stdout,
        "postgresql://pgadmin:Abc123XYZ%21%40%23@host:5432/openwebui?sslmode=require\n"
    );
    assert!(
        run.stderr.contains("verify-full"),
        "a note on require: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("Abc123XYZ"), "{}", run.stderr);
}

#[test]
fn build_sockets_params_and_mistakes() {
    let run = pgharbor(&[
        "url",
        "build",
        "--host",
        "/var/run/postgresql",
        "--port",
        "5433",
        "--user",
        "app",
        "--database",
        "my db",
        "--param",
        "application_name=etl & co",
        "--param",
        "connect_timeout=10",
    ])
    .success();
    assert_eq!(
        run.stdout,
        "postgresql://app@/my%20db?host=%2Fvar%2Frun%2Fpostgresql&port=5433&application_name=etl%20%26%20co&connect_timeout=10\n"
    );
    assert!(
        run.stderr.is_empty(),
        "a local socket needs no TLS: {}",
        run.stderr
    );

    let base = [
        "url",
        "build",
        "--host",
        "h",
        "--user",
        "u",
        "--database",
        "d",
    ];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        pgharbor(&args)
    };
    let run = with(&["--param", "sslmod=require"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("unknown parameter \"sslmod\""),
        "{}",
        run.stderr
    );
    let run = with(&["--param", "password=hunter2hunter2"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("--password-stdin"), "{}", run.stderr);
    assert!(!run.all().contains("hunter2"), "{}", run.all());
    let run = with(&["--sslmode", "required"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let run = pgharbor_with(
        &[base.as_slice(), &["--password-stdin"]].concat(),
        &[],
        Some("\n"),
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("no password"), "{}", run.stderr);
}

#[test]
fn built_urls_connect_with_awkward_passwords() {
    // Password authentication on TCP: the role's password is really checked.
    let pg = Cluster::start_with(
        Flavor::Pg15,
        ClusterOptions {
            password_auth: true,
            ..Default::default()
        },
    );
    let password = "p@ss #/?:%&= ünï🐘'\"\\";
    pg.psql(
        "postgres",
        &format!(
            "CREATE ROLE awkward LOGIN PASSWORD '{}'; CREATE DATABASE awkward OWNER awkward;",
            password.replace('\'', "''")
        ),
    );
    let run = pgharbor_with(
        &[
            "url",
            "build",
            "--host",
            "127.0.0.1",
            "--port",
            &pg.port().to_string(),
            "--user",
            "awkward",
            "--database",
            "awkward",
            "--sslmode",
            "disable",
            "--password-stdin",
        ],
        &[],
        Some(&format!("{password}\n")),
    )
    .success();
    let url = run.stdout.trim_end().to_owned();
    assert!(!url.contains(' ') && !url.contains('#'), "{url}");
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "a.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &url]).success();
    assert!(!run.all().contains(password), "{}", run.all());
    assert_eq!(scalar(&pg, "awkward", "SELECT count(*) FROM t"), "1");
    assert_eq!(
        scalar(
            &pg,
            "awkward",
            "SELECT tableowner FROM pg_tables WHERE tablename = 't'"
        ),
        "awkward"
    );
}

#[test]
fn inspect_the_field_report_url_shows_the_fix() {
    let run = pgharbor(&["url", "inspect", FIELD_REPORT_URL]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("fix: postgresql://pgadmin:****@host:5432/openwebui?sslmode=require"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("'@' as %40"), "{}", run.stderr);
    assert!(!run.all().contains("Abc123XYZ"), "{}", run.all());

    let run = pgharbor(&["url", "inspect", "--json", FIELD_REPORT_URL]);
    assert_eq!(run.code, 2, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"]["code"], "unencoded-character");
    assert_eq!(
        v["error"]["fix"],
        "postgresql://pgadmin:****@host:5432/openwebui?sslmode=require"
    );
    assert!(!run.all().contains("Abc123XYZ"));
}

#[test]
fn inspect_shows_parts_sources_and_warnings() {
    let url = "postgresql://pgadmin:Abc123XYZ%21%40%23@db.example.com:5432/openwebui?sslmode=require&application_name=owui";
    let run = pgharbor(&["url", "inspect", url]).success();
    for expected in [
        "db.example.com",
        "5432",
        "pgadmin",
        "openwebui",
        "require",
        "****",
        "application_name=owui",
        "not authenticated",
    ] {
        assert!(run.stdout.contains(expected), "{expected}: {}", run.stdout);
    }
    assert!(!run.all().contains("Abc123XYZ"), "{}", run.all());

    let run = pgharbor(&["url", "inspect", "--json", url]).success();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let c = &v["connection"];
    assert_eq!(v["valid"], true);
    assert_eq!(c["host"], "db.example.com");
    assert_eq!(c["port"], 5432);
    assert_eq!(c["user"], "pgadmin");
    assert_eq!(c["database"], "openwebui");
    assert_eq!(c["sslmode"], "require");
    assert_eq!(c["password"], "****");
    assert_eq!(c["password_from"], "connection string");
    assert_eq!(c["params"][0]["name"], "application_name");
    assert_eq!(c["warnings"][0]["code"], "server-not-authenticated");

    // disable / prefer to a remote host, and a missing database.
    let run = pgharbor(&[
        "url",
        "inspect",
        "--json",
        "postgresql://app@db.example.com?sslmode=disable",
    ])
    .success();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let codes: Vec<&str> = v["connection"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["insecure-sslmode", "database-defaulted"]);
    assert_eq!(v["connection"]["database"], "app");
    let run = pgharbor(&["url", "inspect", "postgresql://app@db.example.com/x"]).success();
    assert!(
        run.stdout.contains("sslmode=prefer (the default"),
        "{}",
        run.stdout
    );
    let run = pgharbor(&[
        "url",
        "inspect",
        "postgresql://app@localhost/x?sslmode=disable",
    ])
    .success();
    assert!(run.stdout.contains("no warnings"), "{}", run.stdout);

    // Unknown parameters do not parse: the parser's error, exit 2.
    let run = pgharbor(&["url", "inspect", "postgresql://app@db/x?sslmod=require"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("unknown parameter \"sslmod\""),
        "{}",
        run.stderr
    );

    // From standard input, with the password coming from PGPASSWORD.
    let run = pgharbor_with(
        &["url", "inspect", "-"],
        &[("PGPASSWORD", "from-the-env-Zq9")],
        Some("host=db.example.com dbname=x user=u sslmode=verify-full\n"),
    )
    .success();
    assert!(
        run.stdout.contains("**** (from PGPASSWORD)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("no warnings"), "{}", run.stdout);
    assert!(!run.all().contains("from-the-env-Zq9"));
}
