//! SQLite → PostgreSQL in create-schema mode: types, names, keys, sequences, values.

use crate::harness::{cluster, databases, pgharbor, pgharbor_started, query, scalar, Run, Scratch};
use pgharbor_testkit::Flavor;

const TRICKY: &str = r#"
PRAGMA foreign_keys = OFF;
CREATE TABLE "user" (id TEXT PRIMARY KEY, email VARCHAR(255) COLLATE NOCASE UNIQUE, "Mixed Case" TEXT, "has""quote" INTEGER,
                     active BOOLEAN NOT NULL DEFAULT 1, created DATETIME DEFAULT CURRENT_TIMESTAMP, settings JSON DEFAULT '{}');
INSERT INTO "user" VALUES ('u1', 'A@x.org', 'Zoë 🎉 中文 שלום', 1, 1, '2024-01-02 03:04:05', '{"theme":"dark","n":[1,2.5]}');
INSERT INTO "user" VALUES ('u2', 'b@x.org', 'tab	cr\r lf
 \N \. back\slash', NULL, 0, '2024-02-29 23:59:59.123456', 'null');
CREATE TABLE "order" (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT REFERENCES "user"(id), total NUMERIC(10,2), note);
INSERT INTO "order"(user_id, total, note) VALUES ('u1', 12.5, 'first'), ('u2', 7, 42), ('ghost', 1.25, x'00ff');
DELETE FROM "order" WHERE id = 3;
INSERT INTO "order"(id, user_id, total) VALUES (3, 'ghost', 0.1);
UPDATE sqlite_sequence SET seq = 100 WHERE name = 'order';
CREATE TABLE empty_auto (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
INSERT INTO empty_auto(v) VALUES ('a'), ('b'), ('c'); DELETE FROM empty_auto;
CREATE TABLE plain_rowid (id INTEGER PRIMARY KEY, v TEXT);
INSERT INTO plain_rowid VALUES (5, 'five'), (9, 'nine');
CREATE TABLE mixed (i INTEGER, r REAL, t TEXT, b BLOB, d DATETIME, j JSON, v VARCHAR(3), u UNSIGNED BIG INT, n);
INSERT INTO mixed VALUES (1, 1.5, 'x', x'01', 1700000000, '{"a":1}', 'abc', 9223372036854775807, 1);
INSERT INTO mixed VALUES ('text!', 9e999, 5, 'null', 1700000000123, '{bad json', 'abcdef', -9223372036854775808, 'two');
INSERT INTO mixed VALUES (-9223372036854775808, -9e999, 't', NULL, NULL, NULL, NULL, 0, 2.5);
INSERT INTO mixed VALUES (NULL, 4.9406564584124654e-324, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO mixed VALUES (NULL, -0.0, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO mixed VALUES (NULL, 1.7976931348623157e308, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE kv (k1 TEXT, k2 INTEGER, val TEXT, PRIMARY KEY (k1, k2)) WITHOUT ROWID;
INSERT INTO kv VALUES ('a', 1, 'x'), ('a', 2, 'y');
CREATE TABLE child (id INTEGER PRIMARY KEY, k1 TEXT, k2 INTEGER, parent INTEGER REFERENCES child(id),
                    FOREIGN KEY (k1, k2) REFERENCES kv(k1, k2) ON DELETE CASCADE);
INSERT INTO child VALUES (1, 'a', 1, NULL), (2, 'a', 2, 1);
CREATE TABLE gen (a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL, c INTEGER GENERATED ALWAYS AS (a + 1) STORED);
INSERT INTO gen(a) VALUES (1), (20);
CREATE INDEX idx_order_user ON "order"(user_id);
CREATE INDEX idx_user_lower ON "user"(lower(email));
CREATE INDEX idx_user_active ON "user"(created) WHERE active = 1;
CREATE VIEW active_users AS SELECT id, email FROM "user" WHERE active = 1;
CREATE VIEW concat_ids AS SELECT group_concat(id) AS ids FROM "user";
CREATE TRIGGER t_touch AFTER UPDATE ON "user" BEGIN UPDATE "user" SET created = CURRENT_TIMESTAMP WHERE id = NEW.id; END;
CREATE VIRTUAL TABLE notes_fts USING fts5(body);
INSERT INTO notes_fts VALUES ('hello world');
"#;

#[test]
fn tricky_database_lands_exactly_and_verifies() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("tricky.db", TRICKY);
    let pg = databases(Flavor::Pg15);
    let url = pg.url("tricky");
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &url, "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json report");
    assert_eq!(report["verified"], true, "{}", run.stdout);

    // Reserved words, case, quotes kept exactly.
    assert_eq!(
        scalar(
            &pg,
            "tricky",
            r#"SELECT "Mixed Case" FROM "user" WHERE id = 'u1'"#
        ),
        "Zoë 🎉 中文 שלום"
    );
    assert_eq!(
        scalar(
            &pg,
            "tricky",
            r#"SELECT "has""quote" FROM "user" WHERE id = 'u1'"#
        ),
        "1"
    );
    // Control characters and COPY-text traps survive.
    assert_eq!(
        scalar(
            &pg,
            "tricky",
            r#"SELECT "Mixed Case" FROM "user" WHERE id = 'u2'"#
        ),
        "tab\tcr\\r lf\n \\N \\. back\\slash"
    );
    // Types follow the values.
    let types = query(&pg, "tricky", "SELECT table_name || '.' || column_name || '=' || data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1");
    for expected in [
        "user.active=boolean",
        "user.created=timestamp without time zone",
        "user.settings=jsonb",
        "user.email=character varying",
        "order.total=numeric",
        "order.note=text",
        "mixed.i=text",
        "mixed.r=double precision",
        "mixed.t=text",
        "mixed.b=bytea",
        "mixed.d=bigint",
        "mixed.j=text",
        "mixed.v=text",
        "mixed.u=bigint",
        "mixed.n=text",
        "gen.b=bigint",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "missing {expected} in {types:?}"
        );
    }
    // Generated columns, virtual and stored, arrive as plain columns holding
    // the values SQLite computed, and are reported as such.
    assert_eq!(
        query(
            &pg,
            "tricky",
            "SELECT a || ',' || b || ',' || c FROM gen ORDER BY a"
        ),
        ["1,2,2", "20,40,21"]
    );
    for (column, kind) in [("gen.b", "VIRTUAL"), ("gen.c", "STORED")] {
        assert!(
            report["reported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == column && r["note"].as_str().unwrap().starts_with(kind)),
            "{column} reported as {kind}: {}",
            report["reported"]
        );
    }
    // JSON null is JSON, not SQL NULL.
    assert_eq!(
        scalar(
            &pg,
            "tricky",
            r#"SELECT jsonb_typeof(settings) FROM "user" WHERE id = 'u2'"#
        ),
        "null"
    );
    // Extremes survive exactly.
    assert_eq!(
        query(
            &pg,
            "tricky",
            "SELECT r::text FROM mixed WHERE r IS NOT NULL ORDER BY mixed.r"
        ),
        // SQLite itself stores -0.0 in a REAL column as integer 0.
        vec![
            "-Infinity",
            "0",
            "5e-324",
            "1.5",
            "1.7976931348623157e+308",
            "Infinity"
        ]
    );
    assert_eq!(
        scalar(&pg, "tricky", "SELECT i FROM mixed WHERE i LIKE '-%'"),
        "-9223372036854775808"
    );
    assert_eq!(
        scalar(&pg, "tricky", "SELECT max(u) FROM mixed"),
        "9223372036854775807"
    );
    assert_eq!(
        scalar(&pg, "tricky", "SELECT d FROM mixed WHERE d > 1700000000000"),
        "1700000000123"
    );
    assert_eq!(
        scalar(&pg, "tricky", r#"SELECT note FROM "order" WHERE id = 2"#),
        "42"
    );
    // Keys, indexes, foreign keys.
    let constraints = query(&pg, "tricky", "SELECT conname || ':' || contype::text || ':' || convalidated::text FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1");
    assert!(
        constraints.contains(&"user_pkey:p:true".to_string()),
        "{constraints:?}"
    );
    assert!(
        constraints.contains(&"order_user_id_fkey:f:false".to_string()),
        "orphan FK must stay NOT VALID: {constraints:?}"
    );
    assert!(
        constraints.contains(&"child_k1_k2_fkey:f:true".to_string()),
        "{constraints:?}"
    );
    assert!(
        constraints.contains(&"child_parent_fkey:f:true".to_string()),
        "{constraints:?}"
    );
    let orphans = &report["orphans"][0];
    assert_eq!(orphans["orphan_rows"], 1, "{}", run.stdout);
    let indexes = query(
        &pg,
        "tricky",
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    );
    for expected in [
        "idx_order_user",
        "idx_user_lower",
        "idx_user_active",
        "user_email_key",
        "kv_pkey",
    ] {
        assert!(
            indexes.iter().any(|i| i == expected),
            "missing index {expected} in {indexes:?}"
        );
    }
    // Sequences continue above max(id) and sqlite_sequence.
    assert_eq!(
        scalar(
            &pg,
            "tricky",
            r#"INSERT INTO "order"(user_id) VALUES ('u1') RETURNING id"#
        ),
        "101"
    );
    assert_eq!(
        scalar(
            &pg,
            "tricky",
            "INSERT INTO empty_auto(v) VALUES ('d') RETURNING id"
        ),
        "4"
    );
    assert_eq!(
        scalar(
            &pg,
            "tricky",
            "INSERT INTO plain_rowid(v) VALUES ('ten') RETURNING id"
        ),
        "10"
    );
    // Views: valid ones recreated, others reported; triggers and FTS reported, shadow tables not copied.
    assert_eq!(
        scalar(&pg, "tricky", "SELECT count(*) FROM active_users"),
        "1"
    );
    let reported = report["reported"].to_string();
    assert!(
        reported.contains("t_touch") && reported.contains("notes_fts"),
        "{reported}"
    );
    let issues = report["finish_issues"].to_string();
    assert!(
        issues.contains("concat_ids"),
        "invalid view must be reported: {issues}"
    );
    assert_eq!(
        scalar(
            &pg,
            "tricky",
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'notes_fts%'"
        ),
        "0"
    );
    // Widened columns are explained.
    let widened = report["widened_columns"].to_string();
    assert!(
        widened.contains("mixed.i") && widened.contains("mixed.v"),
        "{widened}"
    );
    // Defaults translated.
    assert_eq!(
        scalar(
            &pg,
            "tricky",
            r#"INSERT INTO "user"(id) VALUES ('u3') RETURNING active::text || (created IS NOT NULL)::text || settings::text"#
        ),
        "truetrue{}"
    );
}

#[test]
fn existing_tables_are_refused_unless_dropped() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "a.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let pg = databases(Flavor::Pg15);
    let url = pg.url("refuse");
    pgharbor(&["migrate", db.to_str().unwrap(), &url]).success();
    let again = pgharbor(&["migrate", db.to_str().unwrap(), &url]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("public.t") && again.stderr.contains("--drop-existing"),
        "{}",
        again.all()
    );
    pgharbor(&["migrate", db.to_str().unwrap(), &url, "--drop-existing"]).success();
    assert_eq!(scalar(&pg, "refuse", "SELECT count(*) FROM t"), "1");
}

#[test]
fn dry_run_prints_the_plan_without_a_target() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("tricky.db", TRICKY);
    let run = pgharbor(&["migrate", db.to_str().unwrap(), "--dry-run"]).success();
    assert!(
        run.stdout.contains("CREATE TABLE \"public\".\"user\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("[WIDENED]"));
    assert!(run.stdout.contains("Load order"));
    let json = pgharbor(&["migrate", db.to_str().unwrap(), "--dry-run", "--json"]).success();
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).expect("json plan");
    assert!(plan["tables"].as_array().unwrap().len() >= 7);
}

#[test]
fn nul_characters_stop_the_run_or_are_stripped_when_asked() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "nul.db",
        "CREATE TABLE memo (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO memo VALUES (1, 'ok'), (7, CAST(x'610062' AS TEXT));\
         CREATE TABLE other (id INTEGER PRIMARY KEY); INSERT INTO other VALUES (1);",
    );
    let pg = databases(Flavor::Pg15);
    let url = pg.url("nul");
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &url]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("\"memo\"")
            && run.stderr.contains("id=7")
            && run.stderr.contains("\"body\"")
            && run.stderr.contains("NUL"),
        "{}",
        run.stderr
    );
    assert_eq!(
        scalar(
            &pg,
            "nul",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0",
        "a failed run leaves nothing behind"
    );
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &url,
        "--nul",
        "strip",
        "--json",
    ])
    .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["lossy"]["nul_stripped"], 1);
    assert_eq!(report["verified"], true);
    assert_eq!(
        scalar(&pg, "nul", "SELECT body FROM memo WHERE id = 7"),
        "ab"
    );
}

#[test]
fn invalid_utf8_stops_the_run_or_is_replaced_when_asked() {
    let scratch = Scratch::new();
    let db = scratch.sqlite("bad.db", "CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT); INSERT INTO t VALUES ('k', CAST(x'61ff62' AS TEXT));");
    let pg = databases(Flavor::Pg15);
    let url = pg.url("utf");
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &url]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("id='k'")
            && run.stderr.contains("UTF-8")
            && run.stderr.contains("\"v\""),
        "{}",
        run.stderr
    );
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &url,
        "--invalid-utf8",
        "replace",
        "--json",
    ])
    .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["lossy"]["utf8_replaced"], 1);
    assert_eq!(scalar(&pg, "utf", "SELECT v FROM t"), "a\u{FFFD}b");
}

/// A table of 250,000 rows: large enough to be split over workers.
fn big_database(scratch: &Scratch) -> std::path::PathBuf {
    scratch.sqlite(
        "big.db",
        "CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT, n REAL);\
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 250000)\
         INSERT INTO big SELECT i * 3, printf('row %d %s', i, hex(randomblob(8))), i / 7.0 FROM s;",
    )
}

#[test]
fn large_tables_are_split_and_loaded_in_parallel() {
    let scratch = Scratch::new();
    let db = big_database(&scratch);
    let pg = databases(Flavor::Pg15);
    let url = pg.url("big");
    let run = pgharbor(&[
        "migrate",
        db.to_str().unwrap(),
        &url,
        "--jobs",
        "2",
        "--json",
    ])
    .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert_eq!(report["tables"][0]["rows"], 250000);
    assert_eq!(
        scalar(&pg, "big", "SELECT count(*) || ' ' || max(id) FROM big"),
        "250000 750000"
    );
    assert_eq!(
        scalar(
            &pg,
            "big",
            "INSERT INTO big(payload) VALUES ('next') RETURNING id"
        ),
        "750001"
    );
}

#[test]
fn autovacuum_is_kept_off_a_table_while_it_loads_and_the_table_is_left_unchanged() {
    let scratch = Scratch::new();
    let db = big_database(&scratch);
    let pg = cluster();
    pg.create_database("guarded");
    let url = pg.url("guarded");
    let mut run = pgharbor_started(&[
        "migrate",
        db.to_str().unwrap(),
        &url,
        "--jobs",
        "2",
        "--json",
    ]);
    // The lock autovacuum needs, held by one of pgharbor's connections (not by
    // an autovacuum worker) while the rows go in.
    let guard_locks = "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                       WHERE l.relation = to_regclass('public.big') AND l.granted \
                       AND l.mode = 'ShareUpdateExclusiveLock' AND a.backend_type = 'client backend'";
    let mut seen_while_loading = false;
    while run.try_wait().expect("pgharbor state").is_none() {
        let loading = scalar(
            &pg,
            "guarded",
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'COPY %big%FROM STDIN%'",
        );
        if loading != "0" && scalar(&pg, "guarded", guard_locks) != "0" {
            seen_while_loading = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let run = Run::finished(run).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert!(
        seen_while_loading,
        "no connection of pgharbor held SHARE UPDATE EXCLUSIVE on big during its COPY"
    );
    assert_eq!(
        scalar(&pg, "guarded", guard_locks),
        "0",
        "the lock outlived the run"
    );
    assert_eq!(
        scalar(
            &pg,
            "guarded",
            "SELECT coalesce(reloptions::text, 'none') FROM pg_class WHERE oid = 'big'::regclass"
        ),
        "none",
        "the table's options were changed"
    );
}

#[test]
fn wal_rows_are_read_and_the_source_is_never_written() {
    let scratch = Scratch::new();
    let path = scratch.path("wal.db");
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer
        .execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'in the wal'), (2, 'also');")
        .unwrap();
    let before = crate::harness::fingerprint(&path);
    assert!(
        before.iter().any(|(s, len, _)| s == "-wal" && *len > 0),
        "the fixture keeps rows in the WAL"
    );
    let pg = databases(Flavor::Pg15);
    let url = pg.url("wal");
    // The owning application keeps writing while pgharbor reads.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_writer = stop.clone();
    let writer_path = path.clone();
    let app = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&writer_path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let mut n = 100;
        while !stop_writer.load(std::sync::atomic::Ordering::Relaxed) {
            conn.execute("INSERT INTO t VALUES (?1, 'concurrent')", [n])
                .unwrap();
            n += 1;
        }
        n - 100
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    let run = pgharbor(&["migrate", path.to_str().unwrap(), &url, "--json"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = app.join().unwrap();
    let run = run.success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report["verified"], true,
        "one snapshot for load and verify: {}",
        run.stdout
    );
    assert!(written > 0);
    assert_eq!(
        scalar(&pg, "wal", "SELECT v FROM t WHERE id = 1"),
        "in the wal"
    );
    drop(writer);
}

#[test]
fn source_file_is_unchanged_by_a_migration() {
    let scratch = Scratch::new();
    let path = scratch.sqlite("ro.db", "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'x');");
    // The application has the database open and wrote rows that are still only in the WAL.
    let keep_open = rusqlite::Connection::open(&path).unwrap();
    keep_open
        .execute_batch("PRAGMA wal_autocheckpoint=0; INSERT INTO t VALUES (2, 'only in the WAL');")
        .unwrap();
    let before = crate::harness::fingerprint(&path);
    let pg = databases(Flavor::Pg15);
    pgharbor(&["migrate", path.to_str().unwrap(), &pg.url("ro")]).success();
    assert_eq!(
        crate::harness::fingerprint(&path),
        before,
        "database and WAL bytes must not change"
    );
    assert_eq!(
        scalar(&pg, "ro", "SELECT v FROM t WHERE id = 2"),
        "only in the WAL"
    );
    drop(keep_open);
}

#[test]
fn ctrl_c_during_the_load_removes_what_the_run_created() {
    let scratch = Scratch::new();
    let db = scratch.sqlite(
        "slow.db",
        "CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT);\
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 1500000)\
         INSERT INTO big SELECT i, printf('%0200d', i) FROM s;\
         CREATE TABLE small (id INTEGER PRIMARY KEY); INSERT INTO small VALUES (1);",
    );
    let pg = databases(Flavor::Pg15);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pgharbor"))
        .args([
            "migrate",
            db.to_str().unwrap(),
            &pg.url("interrupted"),
            "--jobs",
            "2",
        ])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("loading") {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let code = child.wait().unwrap().code();
    let all = format!("{seen}{}", rest.join("\n"));
    assert_eq!(code, Some(130), "{all}");
    assert!(
        all.contains("interrupted") && all.contains("removed"),
        "{all}"
    );
    assert_eq!(
        scalar(
            &pg,
            "interrupted",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );
}
