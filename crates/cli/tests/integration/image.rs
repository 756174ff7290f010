//! The container image (scripts/image.sh): no container engine runs in this
//! sandbox, so the tests run pgharbor in the image's root filesystem with
//! `chroot` — in its own mount and PID namespaces with /proc mounted, as a
//! container runtime would — as the image's non-root user, with only the
//! image's own PostgreSQL client tools, against servers from the harness
//! (the chroot shares the host's network, so their loopback ports answer).
//!
//! The root filesystem is built once and kept in `.cache/image/rootfs`
//! (rebuilt when scripts/image.sh's package list or the PostgreSQL 16 tools
//! change); each run puts this build's (debug) binary into it, so the tests
//! cost no release build.

use crate::harness::Run;
use crate::postgres_copy::fingerprint;
use crate::version::expected_version_line;
use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The image's user (scripts/image.sh `APP_UID`).
const IMAGE_USER: &str = "10001:10001";
/// The image's `PATH` (scripts/image.sh `IMAGE_PATH`, Debian's default).
const IMAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The image's root filesystem with this build's binary in it.
fn image_rootfs() -> PathBuf {
    let rootfs = workspace().join(".cache/image/rootfs");
    let output = Command::new("bash")
        .arg(workspace().join("scripts/image.sh"))
        .arg("rootfs")
        .arg(&rootfs)
        .arg(env!("CARGO_BIN_EXE_pgharbor"))
        .output()
        .expect("run scripts/image.sh");
    assert!(
        output.status.success(),
        "scripts/image.sh rootfs failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    rootfs
}

/// Run the image's pgharbor with `args` in `rootfs`, as the image's user,
/// with the image's environment only.
fn pgharbor_in_image(rootfs: &Path, args: &[&str]) -> Run {
    let output = Command::new("unshare")
        .args(["--mount", "--pid", "--fork"])
        .arg(format!("--mount-proc={}", rootfs.join("proc").display()))
        .arg("chroot")
        .arg(format!("--userspec={IMAGE_USER}"))
        .arg(rootfs)
        .arg("/usr/local/bin/pgharbor")
        .args(args)
        .env_clear()
        .env("PATH", IMAGE_PATH)
        .env("HOME", "/home/pgharbor")
        .output()
        .expect("run chroot");
    Run::from(output)
}

/// A directory inside the image owned by its user, removed afterwards.
struct ImageDir {
    host: PathBuf,
    inside: String,
}

impl ImageDir {
    fn new(rootfs: &Path, name: &str) -> ImageDir {
        let inside = format!("/tmp/{name}-{}", std::process::id());
        let host = rootfs.join(inside.trim_start_matches('/'));
        let _ = std::fs::remove_dir_all(&host);
        let made = Command::new("install")
            .args(["-d", "-m", "0700", "-o", "10001", "-g", "10001"])
            .arg(&host)
            .status()
            .expect("run install");
        assert!(made.success(), "cannot create {}", host.display());
        ImageDir { host, inside }
    }
}

impl Drop for ImageDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.host);
    }
}

/// Back up `url` with the image's pgharbor into `dest`; the backup's manifest.
fn backup_in_image(rootfs: &Path, url: &str, dest: &ImageDir) -> serde_json::Value {
    let taken =
        pgharbor_in_image(rootfs, &["backup", url, "--to", &dest.inside, "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&taken.stdout).expect(&taken.stdout);
    let id = report["id"].as_str().expect(&taken.stdout);
    let manifest =
        std::fs::read(dest.host.join(id).join("manifest.json")).expect("read the manifest");
    serde_json::from_slice(&manifest).expect("manifest JSON")
}

#[test]
fn the_image_prints_its_version() {
    let rootfs = image_rootfs();
    let run = pgharbor_in_image(&rootfs, &["--version"]).success();
    assert_eq!(run.stdout, expected_version_line("pgharbor"));
}

#[test]
fn the_image_checks_a_server() {
    let rootfs = image_rootfs();
    let server = Cluster::start(Flavor::Pg15);
    let run = pgharbor_in_image(&rootfs, &["check", &server.url("postgres")]).success();
    assert!(run.stdout.contains("accepting"), "{}", run.all());
    server.stop();
    let refused = pgharbor_in_image(&rootfs, &["check", &server.url("postgres")]);
    assert_eq!(refused.code, 2, "{}", refused.all());
}

#[test]
fn the_image_backs_up_and_restores_postgresql_16_with_its_own_pg_dump() {
    let rootfs = image_rootfs();
    let server = Cluster::start(Flavor::Pg16Vector);
    server.create_database("shop");
    server.psql(
        "shop",
        "CREATE TABLE item (id serial PRIMARY KEY, name text, price numeric(8,2));
         INSERT INTO item (name, price) SELECT 'item ' || g, g / 7.0 FROM generate_series(1, 5000) g;
         CREATE VIEW dear AS SELECT * FROM item WHERE price > 500;",
    );
    let dest = ImageDir::new(&rootfs, "pgharbor-image-backups");

    let manifest = backup_in_image(&rootfs, &server.url("shop"), &dest);
    assert_eq!(
        manifest["postgres"]["pg_dump_major"], 16,
        "not dumped by the image's pg_dump 16: {manifest}"
    );

    let backup = format!("{}/latest", dest.inside);
    pgharbor_in_image(
        &rootfs,
        &[
            "restore",
            &backup,
            &server.url("postgres"),
            "--as",
            "shop_copy",
        ],
    )
    .success();
    for select in ["SELECT * FROM item", "SELECT * FROM dear"] {
        assert_eq!(
            fingerprint(&server, "shop", select),
            fingerprint(&server, "shop_copy", select),
            "{select}"
        );
    }
}

/// The `Dockerfile` builds the same image for users with registry access:
/// same user, home, entrypoint and licence file; its PostgreSQL majors
/// include every one the scripted image has.
#[test]
fn the_dockerfile_describes_the_same_image() {
    let rootfs = image_rootfs();
    let dockerfile =
        std::fs::read_to_string(workspace().join("Dockerfile")).expect("read Dockerfile");
    for line in [
        "USER 10001:10001",
        "WORKDIR /home/pgharbor",
        r#"ENTRYPOINT ["/usr/local/bin/pgharbor"]"#,
        "COPY LICENSE /usr/share/doc/pgharbor/LICENSE",
    ] {
        assert!(
            dockerfile.lines().any(|l| l == line),
            "Dockerfile lacks {line:?}"
        );
    }
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("read passwd");
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("pgharbor:x:10001:10001:") && l.contains(":/home/pgharbor:")),
        "{passwd}"
    );
    assert!(rootfs.join("usr/share/doc/pgharbor/LICENSE").is_file());
    let majors = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG PG_MAJORS="))
        .expect("ARG PG_MAJORS in the Dockerfile")
        .trim_matches('"')
        .to_string();
    for entry in std::fs::read_dir(rootfs.join("usr/lib/postgresql")).expect("PostgreSQL tools") {
        let major = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("a name");
        assert!(
            majors.split(' ').any(|m| m == major),
            "the image has PostgreSQL {major}, the Dockerfile only {majors}"
        );
    }
}

/// Nothing to build software with, no package manager, no home contents.
#[test]
fn the_image_holds_no_build_tools() {
    let rootfs = image_rootfs();
    for tool in [
        "gcc", "cc", "ld", "make", "cargo", "rustc", "apt-get", "pip3", "git",
    ] {
        assert!(
            !rootfs.join("usr/bin").join(tool).exists(),
            "{tool} is in the image"
        );
    }
    let home: Vec<_> = std::fs::read_dir(rootfs.join("home/pgharbor"))
        .expect("the user's home")
        .collect();
    assert!(home.is_empty(), "{home:?}");
}

/// A PostgreSQL 15 server that accepts TLS, with a self-signed certificate.
fn tls_server() -> Cluster {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    Cluster::start_with(
        Flavor::Pg15,
        ClusterOptions {
            data_files: vec![
                ("server.crt".to_owned(), cert.pem().into_bytes()),
                ("server.key".to_owned(), key.serialize_pem().into_bytes()),
            ],
            extra_conf: vec![
                ("ssl".to_owned(), "on".to_owned()),
                ("ssl_cert_file".to_owned(), "server.crt".to_owned()),
                ("ssl_key_file".to_owned(), "server.key".to_owned()),
            ],
            ..Default::default()
        },
    )
}

/// pgharbor picks the newest pg_dump (16) for any server up to 16, so the
/// image's PostgreSQL 16 tools must speak TLS: `sslmode=require` reaches
/// them through PGSSLMODE.
#[test]
fn the_image_backs_up_over_tls() {
    let rootfs = image_rootfs();
    let server = tls_server();
    server.create_database("notes");
    server.psql(
        "notes",
        "CREATE TABLE note (id int PRIMARY KEY, body text);
         INSERT INTO note SELECT g, 'note ' || g FROM generate_series(1, 100) g;",
    );
    let dest = ImageDir::new(&rootfs, "pgharbor-image-tls-backups");
    let url = format!("{}?sslmode=require", server.url("notes"));
    let manifest = backup_in_image(&rootfs, &url, &dest);
    assert_eq!(manifest["postgres"]["pg_dump_major"], 16, "{manifest}");
}
