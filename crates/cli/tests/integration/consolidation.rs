//! Seed 003's consolidation with `pgharbor apply`: three applications'
//! databases on two servers (PostgreSQL 16 with pgvector, PostgreSQL 15)
//! moved into one shared PostgreSQL 16 server from a declarative plan —
//! roles with passwords, databases with owners, extensions, grants, then
//! the copies — and a second apply that changes nothing.

use crate::harness::{pgharbor_with, scalar, Scratch};
use crate::postgres_copy::fingerprint;
use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};

const OPEN_WEBUI: &str = "
CREATE ROLE openwebui LOGIN;
CREATE EXTENSION vector;
CREATE TABLE document_chunk (id text PRIMARY KEY, vector vector(4), collection_name text NOT NULL, text text, vmetadata jsonb);
INSERT INTO document_chunk SELECT 'chunk-' || g, ARRAY[sin(g), cos(g), sin(2 * g), cos(3 * g)]::vector,
    'kb-' || (g % 3), 'text ' || g, jsonb_build_object('page', g) FROM generate_series(1, 3000) g;
CREATE INDEX idx_document_chunk_vector ON document_chunk USING hnsw (vector vector_cosine_ops);
ALTER TABLE document_chunk OWNER TO openwebui;
";

const MEALIE: &str = "
CREATE TABLE recipes (id serial PRIMARY KEY, name text NOT NULL, slug text UNIQUE, created timestamptz DEFAULT now());
CREATE TABLE ingredients (id serial PRIMARY KEY, recipe_id int REFERENCES recipes(id), note text, qty numeric);
INSERT INTO recipes (name, slug) SELECT 'recipe ' || g, 'r-' || g FROM generate_series(1, 2000) g;
INSERT INTO ingredients (recipe_id, note, qty) SELECT 1 + g % 2000, 'note ' || g, g / 4.0 FROM generate_series(1, 10000) g;
ALTER TABLE recipes OWNER TO mealie; ALTER TABLE ingredients OWNER TO mealie;
ALTER SEQUENCE recipes_id_seq OWNER TO mealie; ALTER SEQUENCE ingredients_id_seq OWNER TO mealie;
";

const GITEA: &str = "
CREATE TABLE repository (id bigserial PRIMARY KEY, owner_name text, name text, is_private bool, size bigint);
INSERT INTO repository (owner_name, name, is_private, size) SELECT 'user' || (g % 50), 'repo' || g, g % 2 = 0, g * 1024 FROM generate_series(1, 5000) g;
CREATE INDEX repository_owner ON repository (owner_name);
ALTER TABLE repository OWNER TO gitea; ALTER SEQUENCE repository_id_seq OWNER TO gitea;
";

fn plan(target: &Cluster, ai: &Cluster, apps: &Cluster) -> String {
    format!(
        r#"
[target]
url = "{target}"

[[role]]
name = "openwebui"
login = true
password = {{ env = "OPENWEBUI_DB_PASSWORD" }}

[[role]]
name = "mealie"
login = true
password = {{ env = "MEALIE_DB_PASSWORD" }}
connection_limit = 20

[[role]]
name = "gitea"
login = true
password = {{ env = "GITEA_DB_PASSWORD" }}

[[database]]
name = "openwebui"
owner = "openwebui"
extensions = [{{ name = "vector", version = "0.6.2" }}]
copy_from = "{openwebui}"

[[database]]
name = "mealie"
owner = "mealie"
grants = [{{ role = "gitea", privileges = ["CONNECT"] }}]
settings = {{ work_mem = "16MB" }}
copy_from = "{mealie}"

[[database]]
name = "gitea"
owner = "gitea"
copy_from = "{gitea}"
"#,
        target = target.url("postgres"),
        openwebui = ai.url("openwebui"),
        mealie = apps.url("mealie"),
        gitea = apps.url("gitea"),
    )
}

const PASSWORDS: &[(&str, &str)] = &[
    ("OPENWEBUI_DB_PASSWORD", "ow-Secret-1"),
    ("MEALIE_DB_PASSWORD", "me-Secret-2"),
    ("GITEA_DB_PASSWORD", "gi-Secret-3"),
];

fn apply(plan: &std::path::Path, extra: &[&str]) -> crate::harness::Run {
    let bin = Flavor::Pg16Vector.bin_dir().unwrap();
    let mut env: Vec<(&str, &str)> = PASSWORDS.to_vec();
    env.push(("PGHARBOR_PG_BIN", bin.to_str().unwrap()));
    let mut args = vec!["apply", plan.to_str().unwrap()];
    args.extend_from_slice(extra);
    pgharbor_with(&args, &env, None)
}

#[test]
fn three_apps_on_two_servers_consolidate_into_one_and_a_second_apply_changes_nothing() {
    let ai = Cluster::start(Flavor::Pg16Vector);
    let apps = Cluster::start(Flavor::Pg15);
    let target = Cluster::start_with(
        Flavor::Pg16Vector,
        ClusterOptions {
            password_auth: true,
            ..ClusterOptions::default()
        },
    );
    ai.create_database("openwebui");
    ai.psql("openwebui", OPEN_WEBUI);
    apps.psql(
        "postgres",
        "CREATE ROLE mealie LOGIN; CREATE ROLE gitea LOGIN",
    );
    apps.create_database("mealie");
    apps.psql("mealie", MEALIE);
    apps.create_database("gitea");
    apps.psql("gitea", GITEA);
    let scratch = Scratch::new();
    let plan_path = scratch.path("plan.toml");
    std::fs::write(&plan_path, plan(&target, &ai, &apps)).unwrap();

    let dry = apply(&plan_path, &["--dry-run"]).success();
    assert!(dry.stdout.contains("would copy"), "{}", dry.stdout);
    for (_, password) in PASSWORDS {
        assert!(
            !dry.all().contains(password),
            "a password was printed:\n{}",
            dry.all()
        );
    }
    assert_eq!(
        scalar(
            &target,
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'mealie'"
        ),
        "0"
    );

    let first = apply(&plan_path, &["--jobs", "2"]).success();
    assert_eq!(
        first
            .stdout
            .matches("counts and checksums equal on both sides")
            .count(),
        3,
        "{}",
        first.stdout
    );
    for (_, password) in PASSWORDS {
        assert!(
            !first.all().contains(password),
            "a password was printed:\n{}",
            first.all()
        );
    }

    // Data equal, owners kept, the vector index there, the roles log in with their passwords.
    let pairs: &[(&Cluster, &str, &str)] = &[
        (
            &ai,
            "openwebui",
            "SELECT id, vector::text, collection_name, text, vmetadata FROM document_chunk",
        ),
        (&apps, "mealie", "SELECT * FROM recipes"),
        (&apps, "mealie", "SELECT * FROM ingredients"),
        (&apps, "gitea", "SELECT * FROM repository"),
    ];
    for (source, db, q) in pairs {
        assert_eq!(
            fingerprint(source, db, q),
            fingerprint(&target, db, q),
            "{db}: {q}"
        );
    }
    assert_eq!(
        scalar(
            &target,
            "mealie",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'recipes'"
        ),
        "mealie"
    );
    assert_eq!(
        scalar(
            &target,
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'gitea'"
        ),
        "gitea"
    );
    assert_eq!(
        scalar(&target, "openwebui", "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_document_chunk_vector'"),
        "CREATE INDEX idx_document_chunk_vector ON public.document_chunk USING hnsw (vector vector_cosine_ops)"
    );
    assert_eq!(
        scalar(&target, "mealie", "SELECT nextval('recipes_id_seq')"),
        "2001"
    );
    let login = pgharbor_with(
        &[
            "check",
            &format!(
                "postgresql://mealie:me-Secret-2@{}:{}/mealie",
                target.host(),
                target.port()
            ),
            "--query",
        ],
        &[],
        None,
    );
    assert_eq!(login.code, 0, "{}", login.all());

    // Converged: no change, no copy again.
    let second = apply(&plan_path, &[]).success();
    assert!(
        second.stdout.contains("0 changes applied"),
        "{}",
        second.stdout
    );
    assert_eq!(
        second.stdout.matches("already copied and verified").count(),
        3,
        "{}",
        second.stdout
    );
}
