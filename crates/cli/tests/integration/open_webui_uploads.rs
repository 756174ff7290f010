//! Open WebUI's `uploads/` carried with `--uploads-to`: every byte proved,
//! private modes whatever the umask, a second run skipping what is there,
//! a different file refused until `--overwrite-uploads`, and the end-of-run
//! text naming where Open WebUI's `file` rows expect the files.

use crate::harness::{databases, pgharbor, pgharbor_under_umask, Scratch};
use pgharbor_testkit::Flavor;
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/openwebui")
        .join(name)
}

/// The file names `webui.db`'s `file` rows point at.
fn uploaded_names() -> Vec<String> {
    let db = rusqlite::Connection::open_with_flags(
        format!("file:{}?immutable=1", fixture("webui.db").display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let mut statement = db.prepare("SELECT path FROM file ORDER BY path").unwrap();
    let paths: Vec<String> = statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    paths
        .iter()
        .map(|p| p.rsplit_once('/').unwrap().1.to_string())
        .collect()
}

fn sha256(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn uploads_are_copied_with_their_bytes_proved_and_a_second_run_skips_them() {
    let scratch = Scratch::new();
    let data = scratch.path("data");
    let uploads = data.join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::copy(fixture("webui.db"), data.join("webui.db")).unwrap();
    let names = uploaded_names();
    assert_eq!(names.len(), 4, "{names:?}");
    // Every file row's file but the first, whose name holds a NUL (no file
    // can have it), of sizes around the copy's 1 MiB buffer, plus a file no
    // row names (Open WebUI leaves such files).
    assert!(names[0].contains('\0'), "{names:?}");
    let stored = &names[1..];
    for (i, name) in stored.iter().enumerate() {
        let bytes: Vec<u8> = (0..(1 << 20) * i + 7).map(|b| (b * 31 + i) as u8).collect();
        std::fs::write(uploads.join(name), bytes).unwrap();
    }
    std::fs::write(uploads.join("orphan.txt"), "no row names me").unwrap();
    let pg = databases(Flavor::Pg16Vector);
    pg.create_database("openwebui");
    pg.psql(
        "openwebui",
        &std::fs::read_to_string(fixture("pg-first-start.sql")).unwrap(),
    );
    let url = pg.url("openwebui");
    let copy = scratch.path("volume/data/uploads");
    let (data_arg, copy_arg) = (data.to_str().unwrap(), copy.to_str().unwrap());
    let args = [
        "migrate",
        data_arg,
        &url,
        "--truncate",
        "--uploads-to",
        copy_arg,
    ];

    let first = pgharbor_under_umask("022", &args, &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(
        first.stdout.contains("Uploads: 4 file(s)")
            && first.stdout.contains("4 copied")
            && first
                .stdout
                .contains("/app/backend/data/uploads/ (4 row(s))")
            && first
                .stdout
                .contains("1 file row(s) name a file that uploads/ does not hold")
            && first.stdout.contains(names[0].split('\0').next().unwrap()),
        "{}",
        first.stdout
    );
    for name in stored.iter().map(String::as_str).chain(["orphan.txt"]) {
        assert_eq!(
            sha256(&copy.join(name)),
            sha256(&uploads.join(name)),
            "{name}"
        );
        assert_eq!(mode(&copy.join(name)), 0o600, "{name}");
    }
    for dir in [&copy, &scratch.path("volume/data"), &scratch.path("volume")] {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
    }

    let again = pgharbor(&[&args[..], &["--json"]].concat()).success();
    let report: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(report["uploads"]["copied"], 0, "{}", again.stdout);
    assert_eq!(report["uploads"]["identical"], 4, "{}", again.stdout);

    let altered = copy.join(&names[1]);
    std::fs::write(&altered, "changed at the destination").unwrap();
    // Checked before anything moves: a usage error, no report.
    let refused =
        pgharbor(&args).fails_with(2, &[&names[1], "--overwrite-uploads", "nothing was moved"]);
    assert!(
        !refused.stdout.contains("DATABASE_URL"),
        "{}",
        refused.stdout
    );
    assert_eq!(
        std::fs::read(&altered).unwrap(),
        b"changed at the destination"
    );
    let replaced = pgharbor(&[&args[..], &["--overwrite-uploads"]].concat()).success();
    assert!(replaced.stdout.contains("1 copied"), "{}", replaced.stdout);
    assert_eq!(sha256(&altered), sha256(&uploads.join(&names[1])));

    // A copy that fails after the move (a directory nobody may create):
    // the run's report and next steps first, then exit 1 naming the copy.
    let unwritable = "/proc/self/pgharbor-uploads";
    let failed = pgharbor(&[
        "migrate",
        data_arg,
        &url,
        "--truncate",
        "--uploads-to",
        unwritable,
    ])
    .fails_with(1, &["copying uploads/ failed", unwritable]);
    assert!(
        failed.stdout.contains("DATABASE_URL")
            && failed
                .stdout
                .contains("Open WebUI opens each upload by the absolute path"),
        "{}",
        failed.all()
    );

    pgharbor(&[
        "migrate",
        fixture("webui.db").to_str().unwrap(),
        &url,
        "--uploads-to",
        copy_arg,
    ])
    .fails_with(2, &["--uploads-to copies Open WebUI's uploads/"]);
}
