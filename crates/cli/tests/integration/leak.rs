//! A recognisable password goes through every command and error path the
//! CLI has, with debug and trace logging on; it must come out nowhere
//! (stdout, stderr, logs, `--json`, `--dry-run` plans), in no spelling.
//! The only exception is `url build`, whose whole point is to print the URL
//! with the password in it: there it must appear once, on stdout, encoded.

use crate::harness::{pgharbor_with, Run, Scratch};
use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};

const CANARY: &str = "Pw_CANARY_91b7!@#";
/// `CANARY` percent-encoded, as it appears in a URL.
const CANARY_ENCODED: &str = "Pw_CANARY_91b7%21%40%23";
/// The part every spelling shares (raw, encoded, truncated, any case).
const CANARY_CORE: &str = "canary_91b7";

fn assert_no_leak(label: &str, run: &Run) {
    let all = run.all();
    assert!(
        !all.contains(CANARY) && !all.contains(CANARY_ENCODED),
        "{label}: the password leaked:\n{all}"
    );
    assert!(
        !all.to_lowercase().contains(CANARY_CORE),
        "{label}: part of the password leaked:\n{all}"
    );
}

/// Runs with debug logging from the flag and trace logging from the
/// environment (the more verbose wins), plus `env`.
fn run(label: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut full = vec!["-vv"];
    full.extend_from_slice(args);
    let mut vars = vec![("PGHARBOR_LOG", "trace")];
    vars.extend_from_slice(env);
    let run = pgharbor_with(&full, &vars, stdin);
    assert_no_leak(label, &run);
    run
}

fn expect(label: &str, run: &Run, code: i32) {
    assert_eq!(run.code, code, "{label}: exit status:\n{}", run.all());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Write `contents` to `path` with `mode`.
#[cfg(unix)]
pub(crate) fn write_private(path: &std::path::Path, contents: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn the_password_appears_in_no_output_of_any_command() {
    let pg = Cluster::start_with(
        Flavor::Pg15,
        ClusterOptions {
            password_auth: true,
            password: Some(CANARY.into()),
            ..Default::default()
        },
    );
    let port = pg.port().to_string();
    let user = pg.superuser();
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "app.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one'), (2, 'two');",
    );
    let db = db.to_str().unwrap();
    let url = |name: &str| pg.url(name);
    assert!(
        url("x").contains(CANARY_ENCODED),
        "the harness encodes the password"
    );
    let no_password = |name: &str| format!("postgresql://{user}@127.0.0.1:{port}/{name}");

    // migrate: success, --json, and the refusal when the tables exist.
    let r = run("migrate", &["migrate", db, &url("m1")], &[], None);
    expect("migrate", &r, 0);
    assert!(
        r.stdout.contains("****"),
        "the report names the target masked: {}",
        r.stdout
    );
    let r = run(
        "migrate --json",
        &["migrate", db, &url("m2"), "--json"],
        &[],
        None,
    );
    expect("migrate --json", &r, 0);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        report["target"].as_str().unwrap().contains(":****@"),
        "{report}"
    );
    let r = run(
        "migrate into existing",
        &["migrate", db, &url("m1")],
        &[],
        None,
    );
    expect("migrate into existing", &r, 1);

    // --dry-run plans, text and JSON, with the password in the target URL.
    let r = run(
        "dry-run",
        &["migrate", db, &url("m3"), "--dry-run"],
        &[],
        None,
    );
    expect("dry-run", &r, 0);
    let r = run(
        "dry-run --json",
        &["migrate", db, &url("m3"), "--dry-run", "--json"],
        &[],
        None,
    );
    expect("dry-run --json", &r, 0);
    serde_json::from_str::<serde_json::Value>(&r.stdout).expect("a JSON plan");

    // verify: success, and against a missing table.
    let r = run("verify", &["verify", db, &url("m1")], &[], None);
    expect("verify", &r, 0);
    let r = run(
        "verify --json",
        &["verify", db, &url("m2"), "--json"],
        &[],
        None,
    );
    expect("verify --json", &r, 0);
    let r = run("verify empty", &["verify", db, &url("postgres")], &[], None);
    assert_ne!(r.code, 0, "{}", r.all());

    // Wrong password (sharing the canary's core), in a URL and in PGPASSWORD.
    let wrong = format!("postgresql://{user}:{CANARY_ENCODED}x@127.0.0.1:{port}/m4");
    let r = run("wrong password", &["migrate", db, &wrong], &[], None);
    expect("wrong password", &r, 1);
    assert!(
        r.stderr.to_lowercase().contains("authentication"),
        "{}",
        r.stderr
    );
    let r = run("verify wrong password", &["verify", db, &wrong], &[], None);
    expect("verify wrong password", &r, 1);
    let wrong_env = format!("{CANARY}x");
    let r = run(
        "wrong PGPASSWORD",
        &["migrate", db, &no_password("m4")],
        &[("PGPASSWORD", &wrong_env)],
        None,
    );
    expect("wrong PGPASSWORD", &r, 1);
    assert!(
        r.stderr.contains("PGPASSWORD"),
        "names where the password came from: {}",
        r.stderr
    );

    // Nobody listening.
    let closed = format!(
        "postgresql://{user}:{CANARY_ENCODED}@127.0.0.1:{}/m5",
        free_port()
    );
    let r = run("unreachable", &["migrate", db, &closed], &[], None);
    expect("unreachable", &r, 1);
    let r = run("verify unreachable", &["verify", db, &closed], &[], None);
    expect("verify unreachable", &r, 1);

    // An unencoded '@' (and '!' '#') in the password.
    let raw = format!("postgresql://{user}:{CANARY}@127.0.0.1:{port}/m6");
    let r = run("unencoded", &["migrate", db, &raw], &[], None);
    expect("unencoded", &r, 2);
    assert!(
        r.stderr.contains("%40") && r.stderr.contains(":****@"),
        "{}",
        r.stderr
    );
    let r = run(
        "unencoded --json",
        &["migrate", db, &raw, "--json"],
        &[],
        None,
    );
    expect("unencoded --json", &r, 2);
    let r = run(
        "unencoded dry-run",
        &["migrate", db, &raw, "--dry-run"],
        &[],
        None,
    );
    expect("unencoded dry-run", &r, 2);
    let r = run("verify unencoded", &["verify", db, &raw], &[], None);
    expect("verify unencoded", &r, 2);
    let kv = format!(
        "host=127.0.0.1 port={port} user={user} password=Pw_CANARY_91b7 dbname=m6 sslmod=x"
    );
    let r = run("key=value with a typo", &["migrate", db, &kv], &[], None);
    expect("key=value with a typo", &r, 2);

    // The target from DATABASE_URL.
    let r = run(
        "DATABASE_URL",
        &["migrate", db],
        &[("DATABASE_URL", &url("m7"))],
        None,
    );
    expect("DATABASE_URL", &r, 0);

    // PGPASSWORD.
    let r = run(
        "PGPASSWORD",
        &["migrate", db, &no_password("m8")],
        &[("PGPASSWORD", CANARY)],
        None,
    );
    expect("PGPASSWORD", &r, 0);

    // ~/.pgpass through HOME, and PGPASSFILE; then one with loose permissions.
    let home = scratch.path("home");
    std::fs::create_dir(&home).unwrap();
    write_private(
        &home.join(".pgpass"),
        &format!("127.0.0.1:{port}:*:{user}:{CANARY}\n"),
        0o600,
    );
    let r = run(
        ".pgpass",
        &["migrate", db, &no_password("m9")],
        &[("HOME", home.to_str().unwrap())],
        None,
    );
    expect(".pgpass", &r, 0);
    let passfile = scratch.path("passfile");
    write_private(&passfile, &format!("*:*:*:*:{CANARY}\n"), 0o600);
    let r = run(
        "PGPASSFILE",
        &["verify", db, &no_password("m9")],
        &[("PGPASSFILE", passfile.to_str().unwrap())],
        None,
    );
    expect("PGPASSFILE", &r, 0);
    write_private(&passfile, &format!("*:*:*:*:{CANARY}\n"), 0o644);
    let r = run(
        "loose PGPASSFILE",
        &["verify", db, &no_password("m9")],
        &[("PGPASSFILE", passfile.to_str().unwrap())],
        None,
    );
    expect("loose PGPASSFILE", &r, 1);

    // url inspect: valid (text, JSON, stdin), unencoded, from PGPASSWORD and .pgpass.
    for (label, args) in [
        ("inspect", vec!["url", "inspect", &url("m1")]),
        (
            "inspect --json",
            vec!["url", "inspect", "--json", &url("m1")],
        ),
        ("inspect unencoded", vec!["url", "inspect", &raw]),
        (
            "inspect unencoded --json",
            vec!["url", "inspect", &raw, "--json"],
        ),
        ("inspect wrong", vec!["url", "inspect", &wrong]),
        ("inspect key=value", vec!["url", "inspect", &kv]),
    ] {
        let r = run(label, &args, &[], None);
        assert!(r.code == 0 || r.code == 2, "{label}: {}", r.all());
    }
    let r = run(
        "inspect stdin",
        &["url", "inspect", "-"],
        &[],
        Some(&format!("{}\n", url("m1"))),
    );
    expect("inspect stdin", &r, 0);
    let r = run(
        "inspect PGPASSWORD",
        &["url", "inspect", &no_password("m1")],
        &[("PGPASSWORD", CANARY)],
        None,
    );
    expect("inspect PGPASSWORD", &r, 0);
    let r = run(
        "inspect .pgpass",
        &["url", "inspect", "--json", &no_password("m1")],
        &[("HOME", home.to_str().unwrap())],
        None,
    );
    expect("inspect .pgpass", &r, 0);
    assert!(r.stdout.contains("password file"), "{}", r.stdout);

    // url build: the URL on stdout is the product; nothing else shows it.
    let mut full = vec!["-vv"];
    let build = [
        "url",
        "build",
        "--host",
        "db.example.com",
        "--user",
        "app",
        "--database",
        "app",
        "--password-stdin",
    ];
    full.extend_from_slice(&build);
    let r = pgharbor_with(
        &full,
        &[("PGHARBOR_LOG", "trace")],
        Some(&format!("{CANARY}\n")),
    );
    expect("url build", &r, 0);
    assert_eq!(
        r.stdout,
        format!("postgresql://app:{CANARY_ENCODED}@db.example.com:5432/app\n")
    );
    assert!(
        !r.stderr.to_lowercase().contains(CANARY_CORE),
        "url build stderr: {}",
        r.stderr
    );
    let r = run(
        "url build bad param",
        &[&build[..], &["--param", "sslmod=1"][..]].concat(),
        &[],
        Some(&format!("{CANARY}\n")),
    );
    expect("url build bad param", &r, 2);

    // Command-line mistakes: clap quotes the offending value.
    let r = run(
        "clap invalid value",
        &["migrate", db, "--jobs", &url("m1")],
        &[],
        None,
    );
    expect("clap invalid value", &r, 2);
    assert!(
        r.stderr.contains(":****@"),
        "the URL is shown masked: {}",
        r.stderr
    );
    let r = run(
        "clap stray argument",
        &["verify", db, &url("m1"), &raw],
        &[],
        None,
    );
    expect("clap stray argument", &r, 2);
    let r = run(
        "clap key=value",
        &["secret", "generate", "--length", &kv],
        &[],
        None,
    );
    expect("clap key=value", &r, 2);
}

/// A recognisable pgcrypto key (Open WebUI's `PGVECTOR_PGCRYPTO_KEY`).
const KEY_CANARY: &str = "Key_CANARY_3c5d!'\"";
/// The part every spelling of it shares.
const KEY_CANARY_CORE: &str = "canary_3c5d";

fn assert_no_key(label: &str, run: &Run) {
    assert!(
        !run.all().to_lowercase().contains(KEY_CANARY_CORE),
        "{label}: the pgcrypto key leaked:\n{}",
        run.all()
    );
}

/// [`run`] for the pgcrypto key: debug and trace logging on, the key
/// looked for in every output.
fn run_with_key(label: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut full = vec!["-vv"];
    full.extend_from_slice(args);
    let mut vars = vec![("PGHARBOR_LOG", "trace")];
    vars.extend_from_slice(env);
    let run = pgharbor_with(&full, &vars, None);
    assert_no_key(label, &run);
    run
}

#[cfg(unix)]
#[test]
fn the_pgcrypto_key_appears_in_no_output_of_any_command() {
    // The server logs every change with its parameters (`mod`) and every
    // statement's duration (with its parameters unless pgharbor's superuser
    // session turns them off): the key must be in none of it.
    let pg = crate::open_webui_pgcrypto::pgcrypto_cluster_with(vec![
        ("log_statement".into(), "mod".into()),
        ("log_min_duration_statement".into(), "0".into()),
    ]);
    let scratch = Scratch::new();
    let store = format!(
        "chroma:{}/../../fixtures/openwebui/vector_db",
        env!("CARGO_MANIFEST_DIR")
    );
    // document_chunk as Open WebUI creates it with PGVECTOR_PGCRYPTO=true.
    for db in ["encrypted", "plain"] {
        pg.create_database(db);
        let text = if db == "encrypted" { "bytea" } else { "text" };
        pg.psql(
            db,
            &format!(
                "CREATE EXTENSION vector; CREATE EXTENSION pgcrypto; CREATE TABLE document_chunk \
                 (id text PRIMARY KEY, vector vector(384), collection_name text NOT NULL, text {text}, vmetadata {})",
                if db == "encrypted" { "bytea" } else { "jsonb" }
            ),
        );
    }
    let url = pg.url("encrypted");
    let env_key = [("PGVECTOR_PGCRYPTO_KEY", KEY_CANARY)];
    let migrate = [
        "migrate",
        store.as_str(),
        url.as_str(),
        "--layout",
        "open-webui",
    ];
    let r = run_with_key("no key", &migrate, &[]);
    expect("no key", &r, 2);
    let r = run_with_key(
        "dry-run",
        &[&migrate[..], &["--dry-run"]].concat(),
        &env_key,
    );
    expect("dry-run", &r, 0);
    let r = run_with_key("migrate", &migrate, &env_key);
    expect("migrate", &r, 0);
    let r = run_with_key(
        "migrate --json",
        &[&migrate[..], &["--truncate", "--json"]].concat(),
        &env_key,
    );
    expect("migrate --json", &r, 0);
    let key_file = scratch.path("key");
    write_private(&key_file, &format!("{KEY_CANARY}\n"), 0o600);
    let verify = [
        "verify",
        store.as_str(),
        url.as_str(),
        "--layout",
        "open-webui",
    ];
    let with_file = ["--pgcrypto-key-file", key_file.to_str().unwrap()];
    let r = run_with_key("verify", &[&verify[..], &with_file[..]].concat(), &[]);
    expect("verify", &r, 0);
    let r = run_with_key(
        "verify --json",
        &[&verify[..], &["--json"]].concat(),
        &env_key,
    );
    expect("verify --json", &r, 0);
    let wrong = format!("{KEY_CANARY}x");
    let r = run_with_key(
        "wrong key",
        &[&migrate[..], &["--truncate"]].concat(),
        &[("PGVECTOR_PGCRYPTO_KEY", &wrong)],
    );
    expect("wrong key", &r, 2);
    assert!(r.stderr.contains("does not decrypt"), "{}", r.stderr);
    let r = run_with_key(
        "verify wrong key",
        &verify,
        &[("PGVECTOR_PGCRYPTO_KEY", &wrong)],
    );
    expect("verify wrong key", &r, 2);
    let plain = pg.url("plain");
    let r = run_with_key(
        "key file for a plain table",
        &[
            "migrate",
            &store,
            &plain,
            "--layout",
            "open-webui",
            with_file[0],
            with_file[1],
        ],
        &[],
    );
    expect("key file for a plain table", &r, 2);
    let missing = scratch.path("no-such-key");
    let r = run_with_key(
        "unreadable key file",
        &[
            &migrate[..],
            &["--pgcrypto-key-file", missing.to_str().unwrap()],
        ]
        .concat(),
        &[],
    );
    expect("unreadable key file", &r, 2);
    assert!(r.stderr.contains("no-such-key"), "{}", r.stderr);
    // A role that is not a superuser cannot turn parameter logging off: with
    // `log_statement=mod` alone (no duration logging) its runs keep the key
    // out of the log too.
    pg.psql(
        "encrypted",
        "CREATE ROLE webui LOGIN; ALTER ROLE webui SET log_min_duration_statement = -1; \
         ALTER DATABASE encrypted OWNER TO webui; ALTER TABLE document_chunk OWNER TO webui",
    );
    let as_webui = url.replacen("postgresql://postgres", "postgresql://webui", 1);
    assert_ne!(as_webui, url, "the cluster's URL changed form: {url}");
    let r = run_with_key(
        "migrate as a non-superuser",
        &[
            "migrate",
            &store,
            &as_webui,
            "--layout",
            "open-webui",
            "--truncate",
        ],
        &env_key,
    );
    expect("migrate as a non-superuser", &r, 0);
    let log = pg.server_log();
    assert!(
        log.contains("pgharbor_document_chunk_plain_") && log.contains("pgp_sym_encrypt"),
        "the server log does not show the encrypted load (log_statement=mod): {log}"
    );
    assert!(
        !log.contains("permission denied to set parameter"),
        "the non-superuser's refused setting reached the server's log: {log}"
    );
    assert!(
        !log.to_lowercase().contains(KEY_CANARY_CORE),
        "the pgcrypto key is in the server's log:\n{log}"
    );
}
