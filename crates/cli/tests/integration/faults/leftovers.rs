//! What a `kill -9` leaves outside the target: the private temporary files
//! of a restore (the archive's table of contents, a decompressed dump) in
//! `$TMPDIR` or `--temp-dir`. They are named with the pid of their process;
//! the next `restore` or `backups verify --restore-to` removes those whose
//! process is gone, and no other.

use super::{install_hold_in_template0, pg16_started, restore_ends_equal, shop_backup, Hold};
use crate::harness::Scratch;
use crate::postgres_copy::pgharbor_pg;
use pgharbor_testkit::{Cluster, Flavor};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The files in `dir` whose name starts with `pgharbor-`.
fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the temporary directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("pgharbor-"))
        })
        .collect();
    files.sort();
    files
}

/// `restore --clean` over a database holding data decompresses the dump
/// into a file of `--temp-dir` first; killed with `kill -9` while
/// `pg_restore` loads it, the file (0600, named with the killed pid) is
/// left. The next `backups verify --restore-to` with the same `--temp-dir`
/// removes it but keeps the file of a process that still runs, and leaves
/// none of its own; `restore --clean` then ends with the backup's rows.
#[test]
fn a_killed_restores_temporary_file_is_removed_by_the_next_run_and_no_other() {
    let pg = Cluster::start(Flavor::Pg16Vector);
    let scratch = Scratch::new();
    let dest = scratch.path("backups");
    let dest = dest.to_str().unwrap();
    shop_backup(&pg, dest);
    install_hold_in_template0(&pg, "public.item", 30_000);
    restore_ends_equal(&pg, dest, "restored", &[]);
    let temp = scratch.path("tmp");
    std::fs::create_dir(&temp).expect("create the temporary directory");
    let temp_dir = temp.to_str().unwrap();
    let live = temp.join(format!("pgharbor-restore-{}-live.dump", std::process::id()));
    std::fs::write(&live, b"a running restore's rows").expect("a running process's file");
    let latest = format!("{dest}/latest");
    let hold = Hold::take(&pg);
    let mut child = pg16_started(&[
        "restore",
        &latest,
        &pg.url("restored"),
        "--clean",
        "--temp-dir",
        temp_dir,
    ]);
    hold.wait_for_copy(&pg, &mut child);
    let killed = child.id();
    child.kill().expect("kill -9");
    child.wait().expect("reap pgharbor");
    drop(hold);
    let left: Vec<PathBuf> = temporary_files(&temp)
        .into_iter()
        .filter(|p| *p != live)
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let name = left[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with(&format!("pgharbor-restore-{killed}-")),
        "{name}"
    );
    let mode = std::fs::metadata(&left[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{name}: {mode:o}");
    let run = pgharbor_pg(&[
        "backups",
        "verify",
        dest,
        "--restore-to",
        &pg.url("postgres"),
        "--temp-dir",
        temp_dir,
    ])
    .success();
    assert!(
        run.stdout.contains("restored and row counts equal"),
        "{}",
        run.stdout
    );
    assert_eq!(temporary_files(&temp), vec![live.clone()]);
    restore_ends_equal(&pg, dest, "restored", &["--clean", "--temp-dir", temp_dir]);
    assert_eq!(temporary_files(&temp), vec![live]);
}
