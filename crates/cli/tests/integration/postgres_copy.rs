//! `pgharbor migrate postgres://… postgres://…`: copying a database between
//! real servers — PostgreSQL 16 with pgvector and Debian's PostgreSQL 15 —
//! in both directions, with every kind of schema object, refusals that name
//! the problem, and a kill -9 followed by `--resume`.

use crate::harness::{pgharbor_with, scalar, Run};
use pgharbor_testkit::{Cluster, Flavor};
use std::process::Command;
use std::time::{Duration, Instant};

/// Run pgharbor with the PostgreSQL 16 client programs reachable (the
/// pgserver build is not on PATH nor under /usr/lib/postgresql).
pub fn pgharbor_pg(args: &[&str]) -> Run {
    let bin = Flavor::Pg16Vector.bin_dir().expect("PG16 binaries");
    pgharbor_with(args, &[("PGHARBOR_PG_BIN", bin.to_str().unwrap())], None)
}

/// Content fingerprint of a query's rows (ordered), comparable across servers.
pub fn fingerprint(cluster: &Cluster, db: &str, select: &str) -> String {
    scalar(
        cluster,
        db,
        &format!("SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM ({select}) x"),
    )
}

const RICH_SCHEMA: &str = "
CREATE ROLE reader;
CREATE TYPE mood AS ENUM ('ok', 'sad', 'it''s complicated');
CREATE TABLE author (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE,
    born date, mood mood, moods mood[], tags text[], meta jsonb, score numeric(12,4), ratio float8,
    pause interval, avatar bytea, name_len int GENERATED ALWAYS AS (length(name)) STORED);
CREATE TABLE post (id serial PRIMARY KEY, author_id bigint NOT NULL REFERENCES author(id) ON DELETE CASCADE,
    title text, body text, created timestamptz NOT NULL DEFAULT now());
CREATE INDEX post_author_idx ON post (author_id, created DESC);
CREATE TABLE event (id int, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE event_2025 PARTITION OF event FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE event_2026 PARTITION OF event FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX event_at_idx ON event (at);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
-- a comment line inside the body
NEW.title := coalesce(NEW.title, 'untitled; really');
RETURN NEW;
END $$;
CREATE TRIGGER post_touch BEFORE INSERT ON post FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW post_count AS SELECT author_id, count(*) AS n FROM post GROUP BY author_id;
CREATE MATERIALIZED VIEW author_stats AS SELECT a.id, count(p.id) AS posts FROM author a LEFT JOIN post p ON p.author_id = a.id GROUP BY a.id;
CREATE UNIQUE INDEX author_stats_id ON author_stats (id);
CREATE SEQUENCE invoice_no START 1000;
SELECT setval('invoice_no', 4242);
COMMENT ON TABLE post IS 'posts; with a comment';
GRANT SELECT ON post, author TO reader;
INSERT INTO author (name, born, mood, moods, tags, meta, score, ratio, pause, avatar)
SELECT 'author ' || g, date '1970-01-01' + g, (ARRAY['ok','sad','it''s complicated'])[1 + g % 3]::mood,
       ARRAY['ok', 'sad']::mood[], ARRAY['a', 'b,c', NULL, 'd\"e'], jsonb_build_object('g', g, 'nested', jsonb_build_array(g, 'x')),
       g / 7.0, g / 3.0, make_interval(secs => g), decode(md5(g::text), 'hex')
FROM generate_series(1, 3000) g;
INSERT INTO post (author_id, title, body, created)
SELECT 1 + g % 3000, CASE WHEN g % 5 = 0 THEN NULL ELSE 'title ' || g END, repeat('body ' || g || E'\\n\\t', 1 + g % 7),
       timestamptz '2026-01-01 00:00:00+00' + make_interval(mins => g)
FROM generate_series(1, 30000) g;
INSERT INTO event SELECT g, date '2025-06-01' + (g % 400), 'e' || g FROM generate_series(1, 5000) g;
REFRESH MATERIALIZED VIEW author_stats;
SELECT lo_from_bytea(0, convert_to(repeat('large object ', 100000), 'UTF8'));
";

const VECTOR_SCHEMA: &str = "
CREATE EXTENSION vector;
CREATE TABLE chunk (id text PRIMARY KEY, embedding vector(8), embeddings vector[], doc text);
INSERT INTO chunk SELECT 'c' || g, ARRAY(SELECT sin(g * k)::real FROM generate_series(1, 8) k)::vector,
    ARRAY[array_fill(1.5::real, ARRAY[8])::vector], 'doc ' || g FROM generate_series(1, 2000) g;
CREATE INDEX chunk_embedding_idx ON chunk USING hnsw (embedding vector_cosine_ops);
";

/// Tables and queries compared between source and target.
const COMPARED: &[&str] = &[
    "SELECT * FROM author",
    "SELECT * FROM post",
    "SELECT * FROM event",
    "SELECT * FROM author_stats",
    "SELECT * FROM post_count",
];

fn assert_same(
    source: &Cluster,
    target: &Cluster,
    db_source: &str,
    db_target: &str,
    queries: &[&str],
) {
    for q in queries {
        assert_eq!(
            fingerprint(source, db_source, q),
            fingerprint(target, db_target, q),
            "{q} differs"
        );
    }
}

#[test]
fn a_database_with_every_kind_of_object_and_vectors_is_copied_and_verified() {
    let source = Cluster::start(Flavor::Pg16Vector);
    let target = Cluster::start(Flavor::Pg16Vector);
    source.create_database("app");
    source.psql("app", RICH_SCHEMA);
    source.psql("app", VECTOR_SCHEMA);
    target.psql("postgres", "CREATE ROLE reader");
    let run = pgharbor_pg(&[
        "migrate",
        &source.url("app"),
        &target.url("copy"),
        "--jobs",
        "2",
    ])
    .success();
    assert!(
        run.stdout
            .contains("counts and checksums equal on both sides"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout
            .contains("\"public\".\"post\": 30000 rows, verified"),
        "{}",
        run.stdout
    );

    let mut compared = COMPARED.to_vec();
    compared.push("SELECT id, embedding::text, embeddings::text, doc FROM chunk");
    assert_same(&source, &target, "app", "copy", &compared);
    let indexes = |c: &Cluster, db: &str| {
        scalar(c, db, "SELECT string_agg(indexdef, E'\\n' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'")
    };
    assert_eq!(indexes(&source, "app"), indexes(&target, "copy"));
    assert!(indexes(&target, "copy").contains("USING hnsw (embedding vector_cosine_ops)"));
    // `verify` compares without copying, and names the rows that differ.
    let same = pgharbor_pg(&["verify", &source.url("app"), &target.url("copy")]).success();
    assert!(
        same.stdout.contains("counts and checksums equal"),
        "{}",
        same.stdout
    );
    target.psql(
        "copy",
        "UPDATE post SET title = 'changed' WHERE id = 7; DELETE FROM event_2025 WHERE id = 5",
    );
    let differs = pgharbor_pg(&["verify", &source.url("app"), &target.url("copy")]);
    assert_eq!(differs.code, 1, "{}", differs.all());
    assert!(
        differs
            .stderr
            .contains("\"public\".\"post\": same 30000 rows but different content"),
        "{}",
        differs.stderr
    );
    assert!(differs.stderr.contains("id=7"), "{}", differs.stderr);
    assert!(
        differs.stderr.contains("\"public\".\"event_2025\""),
        "{}",
        differs.stderr
    );

    // Sequences above the data, identity too; the trigger fires; grants kept; the large object is whole.
    assert_eq!(
        scalar(&target, "copy", "SELECT nextval('invoice_no')"),
        "4243"
    );
    assert_eq!(
        scalar(
            &target,
            "copy",
            "INSERT INTO author (name) VALUES ('new') RETURNING id"
        ),
        "3001"
    );
    assert_eq!(
        scalar(
            &target,
            "copy",
            "INSERT INTO post (author_id) VALUES (1) RETURNING title"
        ),
        "untitled; really"
    );
    assert_eq!(
        scalar(
            &target,
            "copy",
            "SELECT has_table_privilege('reader', 'post', 'SELECT')"
        ),
        "t"
    );
    assert_eq!(
        scalar(&target, "copy", "SELECT obj_description('post'::regclass)"),
        "posts; with a comment"
    );
    let lo = "SELECT md5(lo_get(oid)) FROM pg_largeobject_metadata";
    assert_eq!(scalar(&source, "app", lo), scalar(&target, "copy", lo));
    // The foreign key is there and enforced.
    assert!(target
        .try_psql("copy", "INSERT INTO post (author_id) VALUES (999999)")
        .is_err());
    // Exact nearest neighbours are the same, and the HNSW index answers on the target.
    let knn = "SELECT string_agg(id, ',') FROM (SELECT id FROM chunk ORDER BY embedding <=> '[1,2,3,4,5,6,7,8]', id LIMIT 10) x";
    assert_eq!(scalar(&source, "app", knn), scalar(&target, "copy", knn));
    let plan = target.psql(
        "copy",
        "EXPLAIN SELECT id FROM chunk ORDER BY embedding <=> '[1,2,3,4,5,6,7,8]' LIMIT 10",
    );
    assert!(plan.contains("chunk_embedding_idx"), "{plan}");

    // A second run refuses: the target holds a finished copy.
    pgharbor_pg(&["migrate", &source.url("app"), &target.url("copy")])
        .fails_with(1, &["finished, verified copy"]);
}

#[test]
fn a_downgrade_names_what_the_older_server_cannot_take_and_leaves_nothing_behind() {
    let source = Cluster::start(Flavor::Pg16Vector);
    let target = Cluster::start(Flavor::Pg15);
    target.psql("postgres", "CREATE ROLE reader");
    source.create_database("app");
    source.psql("app", RICH_SCHEMA);
    // IS JSON is PostgreSQL 16 syntax.
    source.psql(
        "app",
        "CREATE VIEW json_check AS SELECT meta IS JSON OBJECT AS ok FROM author",
    );
    pgharbor_pg(&["migrate", &source.url("app"), &target.url("copy")]).fails_with(
        1,
        &[
            "VIEW public.json_check",
            "PostgreSQL 15",
            "nothing was copied",
        ],
    );
    assert_eq!(
        scalar(
            &target,
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'copy'"
        ),
        "0",
        "the database the refused run created is dropped"
    );

    source.psql("app", "DROP VIEW json_check");
    let run = pgharbor_pg(&["migrate", &source.url("app"), &target.url("copy")]).success();
    assert!(run.stdout.contains("16."), "{}", run.stdout);
    assert_same(&source, &target, "app", "copy", COMPARED);
}

#[test]
fn an_upgrade_from_15_and_a_missing_extension_is_refused_before_copying() {
    let source = Cluster::start(Flavor::Pg15);
    let target = Cluster::start(Flavor::Pg16Vector);
    target.psql("postgres", "CREATE ROLE reader");
    source.create_database("app");
    source.psql("app", RICH_SCHEMA);
    let run = pgharbor_pg(&["migrate", &source.url("app"), &target.url("copy")]).success();
    // Debian's 15.20 stamps every column with an option 16.2 does not know.
    if scalar(&source, "app", "SELECT count(*) FROM pg_attribute WHERE attoptions IS NOT NULL AND attrelid = 'author'::regclass") != "0" {
        assert!(run.stdout.contains("left out: the target server does not recognise it"), "{}", run.stdout);
    }
    assert_same(&source, &target, "app", "copy", COMPARED);

    source.psql("app", "CREATE EXTENSION \"uuid-ossp\"");
    pgharbor_pg(&["migrate", &source.url("app"), &target.url("other")]).fails_with(
        1,
        &[
            "uuid-ossp 1.1 (the target offers no version of it)",
            "azure.extensions",
        ],
    );
    assert_eq!(
        scalar(
            &target,
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'other'"
        ),
        "0"
    );
}

#[test]
fn missing_roles_are_named_and_no_owner_copies_without_them() {
    let source = Cluster::start(Flavor::Pg15);
    let target = Cluster::start(Flavor::Pg15);
    source.create_database("app");
    source.psql("app", "CREATE ROLE mealie; CREATE TABLE recipe (id int PRIMARY KEY, name text); \
                        ALTER TABLE recipe OWNER TO mealie; INSERT INTO recipe VALUES (1, 'soup'), (2, 'bread')");
    pgharbor_pg(&["migrate", &source.url("app"), &target.url("copy")])
        .fails_with(1, &["Roles missing on the target: mealie", "--no-owner"]);

    pgharbor_pg(&[
        "migrate",
        &source.url("app"),
        &target.url("copy"),
        "--no-owner",
        "--no-privileges",
    ])
    .success();
    assert_eq!(
        scalar(
            &target,
            "copy",
            "SELECT string_agg(name, ',' ORDER BY id) FROM recipe"
        ),
        "soup,bread"
    );
    assert_eq!(
        scalar(
            &target,
            "copy",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'recipe'"
        ),
        target.superuser()
    );
}

#[test]
fn a_non_empty_target_and_a_too_old_pg_dump_are_explained() {
    let source = Cluster::start(Flavor::Pg16Vector);
    let target = Cluster::start(Flavor::Pg15);
    source.create_database("app");
    source.psql("app", "CREATE TABLE t (id int)");
    target.create_database("busy");
    target.psql("busy", "CREATE TABLE mine (id int)");
    pgharbor_pg(&["migrate", &source.url("app"), &target.url("busy")])
        .fails_with(1, &["not empty (it has public.mine)"]);

    // Only PostgreSQL 15's pg_dump: it cannot read a 16 server.
    let pg15 = Flavor::Pg15.bin_dir().unwrap();
    pgharbor_with(
        &["migrate", &source.url("app"), &target.url("fresh")],
        &[
            ("PGHARBOR_PG_BIN", pg15.to_str().unwrap()),
            ("PATH", "/usr/bin:/bin"),
        ],
        None,
    )
    .fails_with(2, &["pg_dump 16 or newer", "postgresql-client-16"]);
}

#[test]
fn a_copy_killed_mid_way_resumes_table_by_table() {
    let source = Cluster::start(Flavor::Pg15);
    let target = Cluster::start(Flavor::Pg15);
    source.create_database("app");
    let mut setup = String::new();
    for t in 0..8 {
        setup.push_str(&format!(
            "CREATE TABLE t{t} (id int PRIMARY KEY, v text); \
             INSERT INTO t{t} SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 150000) g;"
        ));
    }
    source.psql("app", &setup);
    let bin = Flavor::Pg16Vector.bin_dir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgharbor"))
        .args([
            "migrate",
            &source.url("app"),
            &target.url("copy"),
            "--jobs",
            "1",
        ])
        .env("PGHARBOR_PG_BIN", bin)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start pgharbor");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = target
            .try_psql("copy", "SELECT count(*) FROM pgharbor_journal.copy_table")
            .map(|out| out.trim().parse::<i32>().unwrap_or(0))
            .unwrap_or(0);
        if done >= 2 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the copy finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "no table was loaded in time");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill -9");
    child.wait().unwrap();
    let loaded: i32 = target
        .psql("copy", "SELECT count(*) FROM pgharbor_journal.copy_table")
        .trim()
        .parse()
        .unwrap();
    assert!(loaded < 8, "killed mid-copy");

    pgharbor_pg(&["migrate", &source.url("app"), &target.url("copy")]).fails_with(1, &["--resume"]);

    // Tables the killed run loaded are re-verified against a new snapshot; the rest are copied.
    let run = pgharbor_pg(&[
        "migrate",
        &source.url("app"),
        &target.url("copy"),
        "--resume",
    ])
    .success();
    assert!(run.stdout.contains("resumed"), "{}", run.stdout);
    for t in 0..8 {
        let q = format!("SELECT * FROM t{t}");
        assert_eq!(
            fingerprint(&source, "app", &q),
            fingerprint(&target, "copy", &q),
            "t{t}"
        );
    }
    assert_eq!(
        scalar(
            &target,
            "copy",
            "SELECT stage FROM pgharbor_journal.run WHERE path = 'postgres_copy'"
        ),
        "finished"
    );
}

/// `migrate --listen` serves the run's progress while it runs: held up by
/// a lock on a source table (pg_dump waits for it), the endpoint answers
/// with the phase; once the lock goes the copy finishes.
#[test]
fn migrate_listen_serves_progress_metrics_while_it_runs() {
    use std::io::{BufRead as _, BufReader, Read as _};
    let source = Cluster::start(Flavor::Pg16Vector);
    let target = Cluster::start(Flavor::Pg16Vector);
    source.create_database("app");
    source.psql(
        "app",
        "CREATE TABLE item (id int PRIMARY KEY, name text); \
         INSERT INTO item SELECT g, 'item ' || g FROM generate_series(1, 1000) g",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let holder = rt.block_on(source.client("app"));
    rt.block_on(holder.batch_execute("BEGIN; LOCK TABLE item IN ACCESS EXCLUSIVE MODE"))
        .unwrap();

    let bin = Flavor::Pg16Vector.bin_dir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgharbor"))
        .args(["migrate", &source.url("app"), &target.url("copy")])
        .args(["--listen", "127.0.0.1:0"])
        .env("PGHARBOR_PG_BIN", bin)
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pgharbor");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/metrics\n"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let get = |path: &str| crate::serving::http_get(&addr, path);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut metrics = get("/metrics");
    while !metrics.contains("phase=\"schema\"") {
        assert!(Instant::now() < deadline, "no schema phase:\n{metrics}");
        std::thread::sleep(Duration::from_millis(100));
        metrics = get("/metrics");
    }
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("pgharbor_migration_started_timestamp_seconds{source=\"postgresql://"),
        "{metrics}"
    );
    assert!(get("/healthz").ends_with("ok\n"));

    rt.block_on(holder.batch_execute("COMMIT")).unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert_eq!(scalar(&target, "copy", "SELECT count(*) FROM item"), "1000");
}
