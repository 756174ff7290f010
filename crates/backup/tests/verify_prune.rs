//! Verification (checksums, missing files, a real test restore recorded
//! for `list`) and pruning with controlled backup times.

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use pgharbor_backup::{
    backup_postgres, list, prune, prune_by_kind, verify, BackupOptions, BackupState, KindRetention,
    Retention, Selection, VerifyOptions,
};
use pgharbor_testkit::Flavor;

#[tokio::test]
async fn verify_detects_a_damaged_byte_in_any_file_and_a_missing_file() {
    let pg = server_with_app(Flavor::Pg16Vector, 100);
    let (dir, dest) = local_dest();
    let options = BackupOptions {
        roles: true,
        ..Default::default()
    };
    let report = backup_postgres(
        &config(&pg, "postgres"),
        Selection::One("app".into()),
        &dest,
        &options,
    )
    .await
    .unwrap();
    let folder = dir.path().join("backups").join(&report.id);
    for file in ["app.dump.zst", "roles.sql.zst"] {
        let path = folder.join(file);
        let original = std::fs::read(&path).unwrap();
        let mut damaged = original.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x01;
        std::fs::write(&path, &damaged).unwrap();
        let v = verify(&dest, Some(&report.id), None, &VerifyOptions::default())
            .await
            .unwrap();
        assert!(!v.passed);
        assert!(
            v.problems
                .iter()
                .any(|p| p.contains(file) && p.contains("damaged")),
            "{:?}",
            v.problems
        );
        let e = v.ensure_passed().unwrap_err();
        assert!(pgharbor_backup::chain_text(&e).contains(file), "{e}");
        assert_eq!(list(&dest).await.unwrap()[0].state, BackupState::Corrupt);
        std::fs::write(&path, &original).unwrap();
    }
    std::fs::remove_file(folder.join("roles.sql.zst")).unwrap();
    assert_eq!(list(&dest).await.unwrap()[0].state, BackupState::Corrupt);
    let v = verify(&dest, None, None, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("roles.sql.zst") && p.contains("missing")),
        "{:?}",
        v.problems
    );
}

#[tokio::test]
async fn verify_with_a_restore_records_a_result_that_list_shows() {
    let pg = server_with_app(Flavor::Pg16Vector, 100);
    let (dir, dest) = local_dest();
    let report = back_up_app(&pg, &dest).await;
    let v = verify(
        &dest,
        Some(&report.id),
        Some(&config(&pg, "postgres")),
        &VerifyOptions {
            jobs: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(v.passed, "{v:?}");
    assert_eq!(v.databases_restored, 1);
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgharbor_verify%'"
        ),
        "0"
    );
    assert!(dir
        .path()
        .join("backups")
        .join(&report.id)
        .join("verification.json")
        .exists());
    assert_eq!(list(&dest).await.unwrap()[0].state, BackupState::Verified);
}

/// A backup at `day` (2026-03-DD 02:00 UTC) with the real tools.
async fn backup_on(
    pg: &pgharbor_testkit::Cluster,
    dest: &pgharbor_objstore::Destination,
    month: u32,
    day: u32,
) -> String {
    let options = BackupOptions {
        started_at: Some(Utc.with_ymd_and_hms(2026, month, day, 2, 0, 0).unwrap()),
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
    .id
}

/// A failed backup (parts, no manifest) at that time.
async fn failed_on(dest: &pgharbor_objstore::Destination, month: u32, day: u32) -> String {
    let id = format!("2026{month:02}{day:02}T020000Z");
    dest.put_bytes(&format!("{id}/app.dump.zst"), &b"partial"[..])
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn prune_keeps_buckets_and_never_the_last_good_backup() {
    let pg = server_with_app(Flavor::Pg16Vector, 10);
    let (_dir, dest) = local_dest();
    let mut good = Vec::new();
    for (m, d) in [(1, 10), (2, 1), (2, 20), (3, 1), (3, 2), (3, 3)] {
        good.push(backup_on(&pg, &dest, m, d).await);
    }
    let old_failed = failed_on(&dest, 2, 5).await;
    // Every newer backup failed.
    let new_failed: Vec<String> = vec![failed_on(&dest, 3, 4).await, failed_on(&dest, 3, 5).await];
    dest.put_bytes("notes/readme.txt", &b"not a backup"[..])
        .await
        .unwrap();

    let policy = Retention {
        keep_daily: 2,
        keep_monthly: 2,
        ..Default::default()
    };
    let dry = prune(&dest, &policy, true).await.unwrap();
    let kept: Vec<&str> = dry.kept.iter().map(|k| k.id.as_str()).collect();
    // Daily: 03-03, 03-02; monthly: 03-03 (March), 02-20 (February); the
    // failed ones newer than the newest good one stay.
    let mut expected = vec![
        good[5].as_str(),
        good[4].as_str(),
        good[2].as_str(),
        new_failed[0].as_str(),
        new_failed[1].as_str(),
    ];
    expected.sort();
    let mut got = kept.clone();
    got.sort();
    assert_eq!(got, expected, "{dry:?}");
    assert!(dry.removed.contains(&old_failed));
    assert_eq!(
        list(&dest).await.unwrap().len(),
        9,
        "a dry run deletes nothing"
    );

    prune(&dest, &policy, false).await.unwrap();
    let ids: Vec<String> = list(&dest)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(
        dest.exists("notes/readme.txt").await.unwrap(),
        "other files are never touched"
    );

    // keep_last 1 with a verified older backup: both the newest and the
    // newest verified one stay.
    let v = verify(&dest, Some(&good[2]), None, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(v.passed);
    let policy = Retention {
        keep_last: 1,
        ..Default::default()
    };
    let report = prune(&dest, &policy, false).await.unwrap();
    let kept: Vec<&str> = report.kept.iter().map(|k| k.id.as_str()).collect();
    assert!(
        kept.contains(&good[5].as_str()) && kept.contains(&good[2].as_str()),
        "{report:?}"
    );
    assert!(report.removed.contains(&good[4]));
    assert!(
        prune(&dest, &Retention::default(), true).await.is_err(),
        "an empty policy is refused"
    );

    // Backups without a manifest yet: a base backup started an hour ago
    // (still running), one interrupted long ago, and a logical one started
    // two hours ago; then a logical backup completes now.
    let started = |hours: i64| {
        (Utc::now() - chrono::Duration::hours(hours))
            .format("%Y%m%dT%H%M%SZ")
            .to_string()
    };
    let (running, running_dump) = (started(1), started(2));
    let interrupted = "20260206T020000Z".to_owned();
    for id in [&running, &interrupted] {
        dest.put_bytes(&format!("{id}/base.tar.zst"), &b"partial"[..])
            .await
            .unwrap();
    }
    dest.put_bytes(&format!("{running_dump}/app.dump.zst"), &b"partial"[..])
        .await
        .unwrap();
    let newest = backup_postgres(
        &config(&pg, "postgres"),
        Selection::One("app".into()),
        &dest,
        &BackupOptions::default(),
    )
    .await
    .unwrap()
    .id;
    // Logical rules leave the base backups alone (their files say what
    // they are) and remove the logical one a later logical backup outlived.
    let logical_only = KindRetention {
        logical: Some(policy.clone()),
        base: None,
    };
    let report = prune_by_kind(&dest, &logical_only, true).await.unwrap();
    let named: Vec<&String> = report
        .removed
        .iter()
        .chain(report.kept.iter().map(|k| &k.id))
        .collect();
    assert!(
        !named.contains(&&running) && !named.contains(&&interrupted),
        "{report:?}"
    );
    let kept = |id: &str| report.kept.iter().find(|k| k.id == id).cloned();
    assert!(kept(&newest).is_some(), "{report:?}");
    assert!(report.removed.contains(&running_dump), "{report:?}");
    let report = prune_by_kind(&dest, &KindRetention::both(&policy), true)
        .await
        .unwrap();
    // No base backup has finished: both unfinished ones may be running.
    for id in [&running, &interrupted] {
        let kept = report.kept.iter().find(|k| &k.id == id);
        assert!(
            kept.is_some_and(|k| k.reasons.iter().any(|r| r == "newer than the newest good")),
            "{report:?}"
        );
    }
}
