//! Backup and restore round trips: PG16 and PG15, a local directory, moto
//! S3 and Azurite; `as_name`, non-empty targets, `clean`, a newer major,
//! and the standard tools (`zstd -dc | pg_restore`).

mod common;

use common::*;
use pgharbor_backup::{
    backup_postgres, list, restore, BackupErrorKind, BackupOptions, BackupState, RestoreOptions,
    Selection,
};
use pgharbor_testkit::Flavor;

#[tokio::test]
async fn pg16_round_trip_to_a_local_directory_with_as_name_and_clean() {
    let pg = server_with_app(Flavor::Pg16Vector, 500);
    let (_dir, dest) = local_dest();
    let report = back_up_app(&pg, &dest).await;
    let m = &report.manifest;
    let db = &m.postgres.as_ref().unwrap().databases[0];
    assert_eq!(db.file, "app.dump.zst");
    let users = db.tables.iter().find(|t| t.name == "users").unwrap();
    assert_eq!(users.rows, 500);
    assert_eq!(db.large_objects, 1);
    assert!(
        db.object_owners.contains(&"app_owner".to_string()),
        "{:?}",
        db.object_owners
    );
    assert!(db.settings.iter().any(|s| s.setting == "work_mem=8MB"));

    let entries = list(&dest).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].state, BackupState::Complete);
    assert_eq!(entries[0].databases, ["app"]);

    // Restore under a new name, with one pg_restore job and with two.
    let before = content(&pg, "app");
    for (jobs, name) in [(1, "copy1"), (2, "copy2")] {
        let options = RestoreOptions {
            as_name: Some(name.into()),
            jobs,
            ..Default::default()
        };
        let r = restore(&dest, &report.id, &config(&pg, "postgres"), &options)
            .await
            .unwrap();
        assert_eq!(r.databases[0].target, name);
        assert!(r.databases[0].owners_kept);
        assert!(
            !r.databases[0].rows_streamed,
            "a dump with a large object is restored from a file"
        );
        assert_eq!(content(&pg, name), before);
        assert_eq!(db_settings(&pg, name), db_settings(&pg, "app"));
    }

    // A non-empty target is refused, naming it; clean replaces it.
    pg.psql("copy1", "DELETE FROM owned");
    let options = RestoreOptions {
        as_name: Some("copy1".into()),
        ..Default::default()
    };
    let e = restore(&dest, "latest", &config(&pg, "postgres"), &options)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), BackupErrorKind::TargetNotEmpty, "{e}");
    assert!(pgharbor_backup::chain_text(&e).contains("\"copy1\""), "{e}");
    let options = RestoreOptions {
        as_name: Some("copy1".into()),
        clean: true,
        ..Default::default()
    };
    restore(&dest, "latest", &config(&pg, "postgres"), &options)
        .await
        .unwrap();
    assert_eq!(content(&pg, "copy1"), before);

    // An existing empty database is used.
    pg.create_database("empty");
    let options = RestoreOptions {
        as_name: Some("empty".into()),
        ..Default::default()
    };
    let r = restore(&dest, "latest", &config(&pg, "postgres"), &options)
        .await
        .unwrap();
    assert!(!r.databases[0].created);
    assert_eq!(content(&pg, "empty"), before);
}

#[tokio::test]
async fn pg15_round_trip_with_roles_into_a_fresh_server_and_with_standard_tools() {
    let pg15 = server_with_app(Flavor::Pg15, 200);
    let (dir, dest) = local_dest();
    let report = backup_postgres(
        &config(&pg15, "postgres"),
        Selection::All,
        &dest,
        &BackupOptions::default(),
    )
    .await
    .unwrap();
    let content15 = content(&pg15, "app");
    let pg = report.manifest.postgres.as_ref().unwrap();
    assert_eq!(pg.roles_file.as_deref(), Some("roles.sql.zst"));
    assert!(pg.databases.iter().any(|d| d.name == "postgres"));

    let options = RestoreOptions {
        database: Some("app".into()),
        as_name: Some("back".into()),
        jobs: 2,
        ..Default::default()
    };
    restore(&dest, &report.id, &config(&pg15, "postgres"), &options)
        .await
        .unwrap();
    assert_eq!(content(&pg15, "back"), content15);

    // Into a fresh server, roles first (app_owner does not exist there yet).
    let other = pgharbor_testkit::Cluster::start(Flavor::Pg15);
    let options = RestoreOptions {
        database: Some("app".into()),
        roles: true,
        ..Default::default()
    };
    let r = restore(&dest, &report.id, &config(&other, "app"), &options)
        .await
        .unwrap();
    let roles = r.roles.unwrap();
    assert!(
        roles.created.contains(&"app_owner".to_string()),
        "{roles:?}"
    );
    assert!(
        roles.existing.contains(&"postgres".to_string()),
        "{roles:?}"
    );
    assert!(r.databases[0].owners_kept);
    assert_eq!(content(&other, "app"), content15);

    // Standard tools only: zstd -dc, then pg_restore -j2.
    let file = dir
        .path()
        .join("backups")
        .join(&report.id)
        .join("app.dump.zst");
    let plain = dir.path().join("app.dump");
    let status = std::process::Command::new("zstd")
        .args(["-q", "-d", "-c"])
        .arg(&file)
        .stdout(std::fs::File::create(&plain).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    other.create_database("by_hand");
    let out = std::process::Command::new(Flavor::Pg16Vector.bin_dir().unwrap().join("pg_restore"))
        .args([
            "-j2",
            "-h",
            "127.0.0.1",
            "-p",
            &other.port().to_string(),
            "-U",
            "postgres",
            "-d",
            "by_hand",
        ])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(content(&other, "by_hand"), content15);
}

#[tokio::test]
async fn pg15_backup_restores_into_a_newer_pg16() {
    let pg15 = server_with_app(Flavor::Pg15, 50);
    let (_dir, dest) = local_dest();
    let report = backup_postgres(
        &config(&pg15, "postgres"),
        Selection::All,
        &dest,
        &BackupOptions::default(),
    )
    .await
    .unwrap();
    let pg16 = pgharbor_testkit::Cluster::start(Flavor::Pg16Vector);
    let options = RestoreOptions {
        database: Some("app".into()),
        roles: true,
        ..Default::default()
    };
    let restored = restore(&dest, &report.id, &config(&pg16, "app"), &options)
        .await
        .unwrap();
    assert_eq!(content(&pg16, "app"), content(&pg15, "app"));
    // Debian's 15.20 build here stamps columns with `pg_attver`, which 16
    // rejects: left out and counted. Other builds have nothing to skip.
    let stamped = pg15.psql(
        "app",
        "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND array_to_string(a.attoptions, ',') LIKE '%pg_attver=%'",
    );
    let check_skipped = |skipped: &[String]| {
        if stamped.trim() == "0" {
            assert!(skipped.is_empty(), "{skipped:?}");
        } else {
            assert_eq!(skipped.len(), 1, "{skipped:?}");
            assert!(skipped[0].starts_with("pg_attver ("), "{skipped:?}");
        }
    };
    assert!(!restored.databases[0].rows_streamed, "a large object");
    check_skipped(&restored.databases[0].attribute_options_skipped);

    // Without the large object the rows stream; the pre-data still goes
    // through the filter.
    pg15.psql("app", "SELECT lo_unlink(oid) FROM pg_largeobject_metadata");
    let report = back_up_app(&pg15, &dest).await;
    let options = RestoreOptions {
        as_name: Some("app_streamed".into()),
        ..Default::default()
    };
    let restored = restore(&dest, &report.id, &config(&pg16, "postgres"), &options)
        .await
        .unwrap();
    assert!(restored.databases[0].rows_streamed);
    assert_eq!(content(&pg16, "app_streamed"), content(&pg15, "app"));
    check_skipped(&restored.databases[0].attribute_options_skipped);
}

/// Without large objects the rows are loaded while the dump downloads
/// (over one and two connections); `clean` over a database holding data
/// fetches the whole dump first; a file whose SHA-256 differs from the
/// manifest fails the restore at the end of the stream, naming the file,
/// and the database the restore created is dropped.
#[tokio::test]
async fn rows_stream_while_downloading_and_a_wrong_checksum_drops_what_was_created() {
    let pg = server_with_app(Flavor::Pg16Vector, 300);
    pg.psql("app", "SELECT lo_unlink(oid) FROM pg_largeobject_metadata");
    let (dir, dest) = local_dest();
    let report = back_up_app(&pg, &dest).await;
    let before = content(&pg, "app");
    for (jobs, name) in [(1, "streamed1"), (2, "streamed2")] {
        let options = RestoreOptions {
            as_name: Some(name.into()),
            jobs,
            ..Default::default()
        };
        let r = restore(&dest, &report.id, &config(&pg, "postgres"), &options)
            .await
            .unwrap();
        assert!(r.databases[0].rows_streamed, "loaded while downloading");
        assert_eq!(r.databases[0].rows, 300 + 600 + 2);
        assert_eq!(content(&pg, name), before);
        assert_eq!(db_settings(&pg, name), db_settings(&pg, "app"));
    }
    let options = RestoreOptions {
        as_name: Some("streamed1".into()),
        clean: true,
        ..Default::default()
    };
    let r = restore(&dest, &report.id, &config(&pg, "postgres"), &options)
        .await
        .unwrap();
    assert!(
        !r.databases[0].rows_streamed,
        "the dump is fetched whole before a database holding data is replaced"
    );
    assert_eq!(content(&pg, "streamed1"), before);

    // A damaged file whose damage zstd cannot see: a row made invalid and
    // the file recompressed (its size put into the manifest, not its
    // SHA-256). COPY fails on the row; the restore reads the rest of the
    // download and reports the damaged file, not the COPY error.
    let folder = dir.path().join("backups").join(&report.id);
    let dump = folder.join("app.dump.zst");
    let original = std::fs::read(&dump).unwrap();
    let mut plain = zstd::decode_all(original.as_slice()).unwrap();
    let row = b"150\tuser 150\t";
    let at = plain
        .windows(row.len())
        .position(|w| w == row)
        .expect("the users row 150 in the dump");
    plain[at + 1] = b'x';
    let damaged = zstd::encode_all(plain.as_slice(), 3).unwrap();
    std::fs::write(&dump, &damaged).unwrap();
    let manifest = folder.join("manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    json["files"][0]["size"] = serde_json::json!(damaged.len());
    std::fs::write(&manifest, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let options = RestoreOptions {
        as_name: Some("garbage".into()),
        ..Default::default()
    };
    let e = restore(&dest, &report.id, &config(&pg, "postgres"), &options)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), BackupErrorKind::Integrity, "{e}");
    assert!(
        pgharbor_backup::chain_text(&e)
            .contains("app.dump.zst: the downloaded file's SHA-256 differs"),
        "{e:?}"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'garbage'"
        ),
        "0"
    );
    std::fs::write(&dump, &original).unwrap();
    json["files"][0]["size"] = serde_json::json!(original.len());
    std::fs::write(&manifest, serde_json::to_vec_pretty(&json).unwrap()).unwrap();

    let text = std::fs::read_to_string(&manifest).unwrap();
    let real = &report.manifest.files[0].sha256;
    std::fs::write(&manifest, text.replace(real.as_str(), &"0".repeat(64))).unwrap();
    let options = RestoreOptions {
        as_name: Some("broken".into()),
        ..Default::default()
    };
    let e = restore(&dest, &report.id, &config(&pg, "postgres"), &options)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), BackupErrorKind::Integrity, "{e}");
    let message = pgharbor_backup::chain_text(&e);
    assert!(
        message.contains("app.dump.zst: the downloaded file's SHA-256 differs"),
        "{message}"
    );
    assert!(
        message.contains("\"broken\" it created was dropped"),
        "{message}"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'broken'"
        ),
        "0"
    );
}

/// The database the target names is the one restored into, as with
/// `pg_restore -d`: a missing one is created with the backup's owner,
/// encoding and locale, an existing empty one is filled (the backup's own
/// database, holding data, is left alone). A backup of several databases
/// restores each under its own name, and refuses a target naming a
/// database it would not fill.
#[tokio::test]
async fn restore_goes_into_the_database_the_target_names() {
    let pg = server_with_app(Flavor::Pg16Vector, 100);
    pg.psql("postgres", "ALTER DATABASE app OWNER TO app_owner");
    let (_dir, dest) = local_dest();
    let report = back_up_app(&pg, &dest).await;
    let before = content(&pg, "app");
    let defaults = RestoreOptions::default();
    let r = restore(&dest, &report.id, &config(&pg, "newdb"), &defaults)
        .await
        .unwrap();
    assert_eq!(r.databases[0].target, "newdb");
    assert!(r.databases[0].created);
    assert_eq!(content(&pg, "newdb"), before);
    let properties = |db: &str| {
        pg.psql(
            "postgres",
            &format!(
                "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, \
                 datctype FROM pg_database WHERE datname = '{db}'"
            ),
        )
    };
    assert_eq!(properties("newdb"), properties("app"));
    assert!(properties("newdb").starts_with("app_owner"));

    // A URL naming postgres is only connected through: the database keeps
    // the backup's name, and postgres is neither filled nor dropped.
    pg.psql("postgres", "CREATE TABLE keep_me (id int)");
    let clean = RestoreOptions {
        clean: true,
        ..RestoreOptions::default()
    };
    let r = restore(&dest, &report.id, &config(&pg, "postgres"), &clean)
        .await
        .unwrap();
    assert_eq!(r.databases[0].target, "app");
    assert_eq!(content(&pg, "app"), before);
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_class WHERE relname = 'keep_me'"
        ),
        "1",
        "the maintenance database was dropped or replaced"
    );

    pg.create_database("empty_target");
    let r = restore(&dest, &report.id, &config(&pg, "empty_target"), &defaults)
        .await
        .unwrap();
    assert!(!r.databases[0].created);
    assert_eq!(content(&pg, "empty_target"), before);

    let whole = backup_postgres(
        &config(&pg, "postgres"),
        Selection::List(vec!["app".into(), "newdb".into()]),
        &dest,
        &BackupOptions::default(),
    )
    .await
    .unwrap();
    let e = restore(&dest, &whole.id, &config(&pg, "elsewhere"), &defaults)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), BackupErrorKind::InvalidInput, "{e}");
    assert!(
        pgharbor_backup::chain_text(&e)
            .contains("holds 2 databases (app, newdb), each restored under its own name, but the target names database \"elsewhere\""),
        "{e}"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'elsewhere'"
        ),
        "0"
    );
}
