//! Failures: the server going away mid-dump, a full disk at the destination.

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use common::*;
use pgharbor_backup::{
    backup_postgres, list, BackupErrorKind, BackupOptions, BackupState, Selection,
};
use pgharbor_objstore::{Destination, DestinationOptions};
use pgharbor_testkit::Flavor;

#[tokio::test]
async fn a_server_crash_mid_dump_is_a_clear_error_and_leaves_no_good_backup() {
    let pg = server_with_app(Flavor::Pg16Vector, 10);
    pg.psql("app", "CREATE TABLE big AS SELECT g, md5(g::text) || repeat('y', 200) AS t FROM generate_series(1, 400000) g");
    let (_dir, dest) = local_dest();
    let good = backup_postgres(
        &config(&pg, "postgres"),
        Selection::One("app".into()),
        &dest,
        &BackupOptions::default(),
    )
    .await
    .unwrap();
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
    let text = e.to_string();
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
    let first = backup_postgres(
        &config(&pg, "postgres"),
        Selection::One("app".into()),
        &dest,
        &BackupOptions::default(),
    )
    .await
    .unwrap();
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
    assert!(e.to_string().contains("no space left"), "{e}");
    let entries = list(&dest).await.unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].id, first.id);
    assert_eq!(entries[0].state, BackupState::Complete);
}
