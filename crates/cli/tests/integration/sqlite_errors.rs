//! Every way a run can fail says what went wrong and what to do.

use crate::harness::{cluster, pgharbor, scalar, Scratch, SmallDisk};
use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};

#[test]
fn missing_file_is_named() {
    let run = pgharbor(&[
        "migrate",
        "/nonexistent/app.db",
        "postgresql://u@127.0.0.1:1/db",
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("/nonexistent/app.db") && run.stderr.contains("no such file"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_file_that_is_not_sqlite_is_named() {
    let scratch = Scratch::new();
    let path = scratch.path("notes.txt");
    std::fs::write(&path, "just some text, definitely not a database file").unwrap();
    let run = pgharbor(&["migrate", path.to_str().unwrap(), "--dry-run"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("not an SQLite database"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_encrypted_looking_file_explains_decryption() {
    let scratch = Scratch::new();
    let path = scratch.path("cipher.db");
    let noise: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&path, noise).unwrap();
    let run = pgharbor(&["migrate", path.to_str().unwrap(), "--dry-run"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("encrypted"), "{}", run.stderr);
}

#[test]
fn a_corrupt_file_is_reported() {
    let scratch = Scratch::new();
    let path = scratch.sqlite(
        "corrupt.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 2000) INSERT INTO t SELECT i, hex(randomblob(50)) FROM s;",
    );
    let mut bytes = std::fs::read(&path).unwrap();
    // Keep the header and schema page, smash the data pages.
    for b in bytes.iter_mut().skip(4096 * 2) {
        *b = 0xA5;
    }
    std::fs::write(&path, bytes).unwrap();
    let run = pgharbor(&["migrate", path.to_str().unwrap(), "--dry-run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("corrupt.db")
            && (run.stderr.contains("damaged") || run.stderr.contains("malformed")),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unreachable_target_is_named_without_its_password() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("a.db", "CREATE TABLE t (id INTEGER PRIMARY KEY);");
    let pg = cluster();
    let port = pg.port();
    drop(pg);
    let url = format!("postgresql://someone:Sup3rSecretPw@127.0.0.1:{port}/db");
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &url]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains(&port.to_string()), "{}", run.stderr);
    assert!(
        !run.all().contains("Sup3rSecretPw"),
        "password leaked: {}",
        run.all()
    );
}

#[test]
fn wrong_password_is_an_authentication_error_without_the_password() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("a.db", "CREATE TABLE t (id INTEGER PRIMARY KEY);");
    let pg = Cluster::start_with(
        Flavor::Pg15,
        ClusterOptions {
            password_auth: true,
            ..Default::default()
        },
    );
    let url = format!(
        "postgresql://{}:Wr0ngPassw0rdXYZ@127.0.0.1:{}/postgres",
        pg.superuser(),
        pg.port()
    );
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &url]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.to_lowercase().contains("authentication"),
        "{}",
        run.stderr
    );
    assert!(
        !run.all().contains("Wr0ngPassw0rdXYZ"),
        "password leaked: {}",
        run.all()
    );
}

#[test]
fn an_unencoded_at_sign_in_the_password_is_explained() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("a.db", "CREATE TABLE t (id INTEGER PRIMARY KEY);");
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        "postgresql://pgadmin:Abc123XYZ!@#@host:5432/openwebui?sslmode=require",
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("%40") && run.stderr.contains("****"),
        "{}",
        run.stderr
    );
    assert!(
        !run.all().contains("Abc123XYZ"),
        "password leaked: {}",
        run.all()
    );
}

#[test]
fn a_user_without_create_privilege_gets_permission_denied() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "a.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let pg = cluster();
    pg.create_database("locked");
    pg.psql("locked", "CREATE ROLE reader LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT CONNECT ON DATABASE locked TO reader;");
    let url = format!("postgresql://reader@127.0.0.1:{}/locked", pg.port());
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &url]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("permission denied") && run.stderr.contains("grant"),
        "{}",
        run.stderr
    );
    assert_eq!(
        scalar(
            &pg,
            "locked",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );
}

#[test]
fn no_target_and_no_database_url_is_a_usage_error() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("a.db", "CREATE TABLE t (id INTEGER PRIMARY KEY);");
    let run = pgharbor(&["migrate", db.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("DATABASE_URL"), "{}", run.stderr);
}

#[test]
fn a_full_disk_on_the_target_is_explained_and_nothing_is_left_behind() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "big.db",
        "CREATE TABLE payload (id INTEGER PRIMARY KEY, data TEXT);\
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000)\
         INSERT INTO payload SELECT i, hex(randomblob(300)) FROM s;",
    );
    let pg = cluster();
    let disk = SmallDisk::mount(
        std::env::temp_dir().join(format!("pgharbor-full-{}", pg.port())),
        "4M",
    );
    pg.create_database("smalldisk");
    pg.psql(
        "postgres",
        &format!("CREATE TABLESPACE small LOCATION '{}'", disk.path.display()),
    );
    pg.psql(
        "postgres",
        "ALTER DATABASE smalldisk SET default_tablespace = small",
    );
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &pg.url("smalldisk")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("payload") && run.stderr.contains("free space on the target"),
        "{}",
        run.stderr
    );
    assert_eq!(
        scalar(
            &pg,
            "smalldisk",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );

    drop(pg);
    drop(disk);
}

#[test]
fn scram_authentication_with_the_right_password_works_and_the_password_stays_hidden() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "a.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'x');",
    );
    let password = "S3cr3t@Pass#word/with?odd:chars";
    let pg = Cluster::start_with(
        Flavor::Pg15,
        ClusterOptions {
            password_auth: true,
            password: Some(password.into()),
            ..Default::default()
        },
    );
    let url = pg.url("scram");
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &url, "--json"]).success();
    assert!(
        !run.all().contains(password),
        "password leaked: {}",
        run.all()
    );
    assert!(run.stdout.contains("\"verified\": true"), "{}", run.stdout);
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &url]);
    assert_eq!(run.code, 1);
    assert!(
        !run.all().contains(password),
        "password leaked in an error: {}",
        run.all()
    );
}

#[test]
fn a_source_pgharbor_does_not_read_is_refused_with_what_works() {
    let redis = pgharbor(&[
        "migrate",
        "redis://cache.example:6379",
        "postgresql://u@127.0.0.1:1/db",
    ]);
    assert_eq!(redis.code, 2, "{}", redis.all());
    assert!(
        redis.stderr.contains("a Redis server is not a source")
            && redis.stderr.contains("pgharbor backup redis://"),
        "{}",
        redis.stderr
    );
    let mysql = pgharbor(&["migrate", "mysql://root@db/shop", "--dry-run"]);
    assert_eq!(mysql.code, 2, "{}", mysql.all());
    assert!(
        mysql
            .stderr
            .contains("mysql:// is not a source pgharbor reads: give an SQLite file"),
        "{}",
        mysql.stderr
    );
    let scratch = Scratch::new();
    let empty = scratch.path("vectors");
    std::fs::create_dir_all(&empty).unwrap();
    let chroma = pgharbor(&[
        "migrate",
        &format!("chroma:{}", empty.display()),
        "postgresql://u@127.0.0.1:1/db",
    ]);
    assert_eq!(chroma.code, 1, "{}", chroma.all());
    assert!(
        chroma.stderr.contains("no chroma.sqlite3 in it"),
        "{}",
        chroma.stderr
    );
}
