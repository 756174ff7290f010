//! Failures: the server going away mid-dump, a full disk at the destination,
//! the backup process killed with SIGKILL.

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use common::*;
use pgharbor_backup::{
    backup_postgres, list, prune, BackupErrorKind, BackupOptions, BackupReport, BackupState,
    Retention, Selection, MANIFEST_NAME,
};
use pgharbor_conn::ConnConfig;
use pgharbor_objstore::{Destination, DestinationOptions};
use pgharbor_testkit::{Cluster, Flavor};

#[tokio::test]
async fn a_server_crash_mid_dump_is_a_clear_error_and_leaves_no_good_backup() {
    let pg = server_with_app(Flavor::Pg16Vector, 10);
    pg.psql("app", "CREATE TABLE big AS SELECT g, md5(g::text) || repeat('y', 200) AS t FROM generate_series(1, 400000) g");
    let (_dir, dest) = local_dest();
    let good = back_up_app(&pg, &dest).await;
    let server = config(&pg, "postgres");
    let task = tokio::spawn({
        let dest = Destination::parse(&dest.to_string(), &DestinationOptions::default()).unwrap();
        async move {
            backup_postgres(
                &server,
                Selection::One("app".into()),
                &dest,
                &BackupOptions::default(),
            )
            .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    pg.crash();
    let e = task.await.unwrap().unwrap_err();
    let text = pgharbor_backup::chain_text(&e);
    assert!(text.contains("failed") && text.contains("app"), "{text}");
    let entries = list(&dest).await.unwrap();
    assert_eq!(entries.len(), 1, "the parts are removed: {entries:?}");
    assert_eq!(entries[0].id, good.id);
    assert_eq!(entries[0].state, BackupState::Complete);
}

#[tokio::test]
async fn a_full_disk_is_a_clear_error_and_earlier_backups_stay() {
    let pg = server_with_app(Flavor::Pg16Vector, 10);
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !is_root {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let mount = parent.path().join("full");
    std::fs::create_dir(&mount).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2M", "tmpfs"])
        .arg(&mount)
        .status()
        .unwrap();
    assert!(ok.success());
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _umount = Umount(mount.clone());
    let dest = Destination::parse(mount.to_str().unwrap(), &DestinationOptions::default()).unwrap();
    let first = back_up_app(&pg, &dest).await;
    // Incompressible data, larger than what is left.
    pg.psql("app", "CREATE TABLE noise AS SELECT g, md5(random()::text) || md5(random()::text) AS t FROM generate_series(1, 100000) g");
    let e = backup_postgres(
        &config(&pg, "postgres"),
        Selection::One("app".into()),
        &dest,
        &BackupOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), BackupErrorKind::NoSpace, "{e}");
    assert!(
        pgharbor_backup::chain_text(&e).contains("no space left"),
        "{e}"
    );
    let entries = list(&dest).await.unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].id, first.id);
    assert_eq!(entries[0].state, BackupState::Complete);
}

/// Set in the child process of the kill -9 tests (this test binary run
/// again): server URL, destination and start time, one per line.
const CHILD_ENV: &str = "PGHARBOR_TEST_BACKUP_CHILD";

#[tokio::test]
async fn kill_9_mid_backup_leaves_nothing_that_looks_good() {
    let name = "kill_9_mid_backup_leaves_nothing_that_looks_good";
    let Some(killed) = kill_mid_backup(name).await else {
        return;
    };
    let entries = list(&killed.dest).await.unwrap();
    let good_ids: Vec<&str> = entries
        .iter()
        .filter(|e| e.state.is_good())
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(good_ids, [killed.good.id.as_str()], "{entries:?}");
    if let Some(entry) = entries.iter().find(|e| e.id == killed.id) {
        assert_eq!(entry.state, BackupState::Failed, "{entry:?}");
    }
    assert_eq!(
        manifests_under(&killed.root),
        [killed.root.join(&killed.good.id).join(MANIFEST_NAME)]
    );
    let next = back_up_at(&killed.pg, &killed.dest, None).await;
    prune(&killed.dest, &keep_two(), false).await.unwrap();
    let states: Vec<(String, BackupState)> = list(&killed.dest)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.state))
        .collect();
    assert_eq!(
        states,
        [
            (next.id, BackupState::Complete),
            (killed.good.id, BackupState::Complete)
        ]
    );
}

#[tokio::test]
async fn kill_9_mid_backup_leaves_parts_that_prune_removes() {
    let name = "kill_9_mid_backup_leaves_parts_that_prune_removes";
    let Some(killed) = kill_mid_backup(name).await else {
        return;
    };
    let next = back_up_at(&killed.pg, &killed.dest, None).await;
    prune(&killed.dest, &keep_two(), false).await.unwrap();
    let mut folders: Vec<String> = std::fs::read_dir(&killed.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    folders.sort();
    assert_eq!(folders, [killed.good.id, next.id], "nothing else is left");
}

/// A destination with one good backup, and a second one whose process was
/// killed with SIGKILL while `pg_dump` copied the big table.
struct Killed {
    pg: Cluster,
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    dest: Destination,
    good: BackupReport,
    /// The killed backup's id.
    id: String,
}

/// Runs test `name`'s backup in a child process (this binary again) and
/// kills it mid-dump; `None` in the child, after its backup.
async fn kill_mid_backup(name: &str) -> Option<Killed> {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        back_up_as_the_child(&spec).await;
        return None;
    }
    let pg = server_with_app(Flavor::Pg16Vector, 10);
    pg.psql("app", "CREATE TABLE big AS SELECT g, md5(g::text) || repeat('y', 200) AS t FROM generate_series(1, 600000) g");
    let (dir, dest) = local_dest();
    let now = Utc::now();
    // Both older than the 24 hours prune leaves a backup without a
    // manifest alone (it may be running).
    let good = back_up_at(&pg, &dest, Some(now - Duration::hours(50))).await;
    let killed_at = now - Duration::hours(49);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--include-ignored", "--nocapture"])
        .env(
            CHILD_ENV,
            format!("{}\n{dest}\n{}", pg.url("postgres"), killed_at.to_rfc3339()),
        )
        .spawn()
        .unwrap();
    wait_until_dumping(&pg, "big", &mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    Some(Killed {
        pg,
        root: dir.path().join("backups"),
        _dir: dir,
        dest,
        good,
        id: killed_at.format("%Y%m%dT%H%M%SZ").to_string(),
    })
}

fn keep_two() -> Retention {
    Retention {
        keep_last: 2,
        ..Default::default()
    }
}

/// The child's side: back up `app` until killed.
async fn back_up_as_the_child(spec: &str) {
    let lines: Vec<&str> = spec.lines().collect();
    let server = ConnConfig::parse(lines[0]).unwrap();
    let dest = Destination::parse(lines[1], &DestinationOptions::default()).unwrap();
    let options = BackupOptions {
        started_at: Some(DateTime::parse_from_rfc3339(lines[2]).unwrap().to_utc()),
        ..Default::default()
    };
    backup_postgres(&server, Selection::One("app".into()), &dest, &options)
        .await
        .unwrap();
}

async fn back_up_at(
    pg: &Cluster,
    dest: &Destination,
    started_at: Option<DateTime<Utc>>,
) -> BackupReport {
    let options = BackupOptions {
        started_at,
        ..Default::default()
    };
    backup_postgres(
        &config(pg, "postgres"),
        Selection::One("app".into()),
        dest,
        &options,
    )
    .await
    .unwrap()
}

/// Waits until `pg_dump` is copying `table`'s rows (the child still
/// running).
fn wait_until_dumping(pg: &Cluster, table: &str, child: &mut std::process::Child) {
    let sql =
        format!("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.{table} %'");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pg.psql("postgres", &sql).trim() == "0" {
        let exited = child.try_wait().unwrap();
        assert!(
            exited.is_none(),
            "the backup ended before it was killed: {exited:?}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "pg_dump never reached {table}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every manifest file under `root`.
fn manifests_under(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n == MANIFEST_NAME) {
                found.push(path);
            }
        }
    }
    found
}
