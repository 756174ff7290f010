//! `apply` against real throwaway clusters: PostgreSQL 16 with pgvector and
//! PostgreSQL 15, as a superuser and as a `CREATEROLE CREATEDB` administrator.

use pgharbor_apply::{apply, ApplyError, ApplyOptions, ChangeKind, Plan, Report};
use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};

/// Parses plan text, panicking with the error.
fn plan(text: &str) -> Plan {
    Plan::parse(text, "plan.toml").unwrap_or_else(|e| panic!("plan: {e}\n{text}"))
}

/// Applies `text`, panicking with the error.
async fn run(text: &str) -> Report {
    try_run(text, false)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"))
}

/// Applies (or dry-runs) `text`.
async fn try_run(text: &str, dry_run: bool) -> Result<Report, ApplyError> {
    apply(&plan(text), &ApplyOptions { dry_run }).await
}

/// The kinds of a report's changes, in order.
fn kinds(report: &Report) -> Vec<ChangeKind> {
    report.changes.iter().map(|c| c.kind).collect()
}

/// A TCP URL for `user` (no password: the cluster trusts TCP, or the plan
/// gives the password).
fn url_as(cluster: &Cluster, user: &str, db: &str) -> String {
    format!("postgresql://{user}@127.0.0.1:{}/{db}", cluster.port())
}

/// Everything a report can show: `Display`, JSON and `Debug`.
fn all_output(report: &Report) -> String {
    format!(
        "{report}\n{}\n{report:?}",
        serde_json::to_string(report).unwrap()
    )
}

/// Connects over TCP as `user` with `password`; the error text on failure.
async fn login(cluster: &Cluster, user: &str, password: &str, db: &str) -> Result<(), String> {
    let url = format!(
        "postgresql://{user}:{password}@127.0.0.1:{}/{db}",
        cluster.port()
    );
    let config = pgharbor_conn::ConnConfig::parse(&url).map_err(|e| e.to_string())?;
    pgharbor_conn::connect(&config)
        .await
        .map(|_| ())
        .map_err(|e| pgharbor_conn::conn_text(&e))
}

fn superuser_cluster_pg16() -> Cluster {
    Cluster::start_with(
        Flavor::Pg16Vector,
        ClusterOptions {
            password_auth: true,
            extra_conf: vec![("log_statement".into(), "all".into())],
            ..Default::default()
        },
    )
}

const MEALIE_PW_1: &str = "MealiePw1xQ7";
const MEALIE_PW_2: &str = "MealiePw2zR4";
const IMMICH_PW: &str = "ImmichLiteralPw9";

fn full_plan_pg16(url: &str, mealie_pw_file: &std::path::Path, vector_schema: &str) -> String {
    format!(
        r#"
[target]
url = "{url}"

[[role]]
name = "app_readers"

[[role]]
name = "mealie"
login = true
createdb = true
connection_limit = 7
valid_until = "2099-01-01 00:00:00+00"
password = {{ file = "{pw}" }}
member_of = ["app_readers"]
settings = {{ search_path = "app, public", statement_timeout = "30s", work_mem = 8192 }}

[[role]]
name = "immich"
login = true
inherit = false
superuser = false
password = "{IMMICH_PW}"

[[database]]
name = "mealie"
owner = "mealie"
encoding = "UTF8"
locale = "C"
template = "template0"
connection_limit = 20
grants = [{{ role = "app_readers", privileges = ["connect", "TEMP"] }}]
settings = {{ default_text_search_config = "pg_catalog.simple", search_path = ["app", "$user"] }}

[[database.schema]]
name = "app"
owner = "mealie"
grants = [{{ role = "app_readers", privileges = ["USAGE"] }}, {{ role = "public", privileges = ["USAGE"] }}]

[[database]]
name = "immich"
owner = "immich"
allow_connections = true
extensions = ["plpgsql", {{ name = "vector", version = "0.6.2", schema = "{vector_schema}" }}]

[[database.schema]]
name = "vectors"
owner = "immich"
"#,
        pw = mealie_pw_file.display()
    )
}

#[tokio::test]
async fn full_apply_on_pg16_then_nothing_then_only_what_changed() {
    let cluster = superuser_cluster_pg16();
    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("mealie");
    std::fs::write(&pw_file, format!("{MEALIE_PW_1}\n")).unwrap();
    let text = full_plan_pg16(&cluster.url("postgres"), &pw_file, "public");

    let first = run(&text).await;
    assert!(first.superuser && first.passwords_compared, "{first}");
    use ChangeKind::*;
    assert_eq!(
        kinds(&first),
        [
            CreateRole,
            CreateRole,
            RoleSetting,
            RoleSetting,
            RoleSetting,
            CreateRole,
            GrantMembership,
            CreateDatabase,
            CreateSchema,
            Grant,
            Grant,
            Grant,
            DatabaseSetting,
            DatabaseSetting,
            CreateDatabase,
            CreateSchema,
            CreateExtension,
        ],
        "{first}"
    );
    assert_eq!(
        first.unchanged.extensions, 1,
        "plpgsql comes from the template: {first}"
    );
    let output = all_output(&first);
    for pw in [MEALIE_PW_1, IMMICH_PW] {
        assert!(
            !output.contains(pw),
            "a password leaked into the report: {output}"
        );
        assert!(
            !cluster.server_log().contains(pw),
            "a password reached the server log"
        );
    }
    assert!(output.contains("PASSWORD '****'"), "{output}");

    // Roles.
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT rolcanlogin, rolcreatedb, rolsuper, rolconnlimit, rolvaliduntil = '2099-01-01 00:00:00+00' \
             FROM pg_roles WHERE rolname = 'mealie'"
        ),
        "t|t|f|7|t"
    );
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT rolinherit, rolcanlogin FROM pg_roles WHERE rolname = 'immich'"
        ),
        "f|t"
    );
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT pg_has_role('mealie', 'app_readers', 'MEMBER')"
        ),
        "t"
    );
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT array_to_string(setconfig, ';') FROM pg_db_role_setting \
             WHERE setrole = 'mealie'::regrole AND setdatabase = 0"
        ),
        "search_path=app, public;statement_timeout=30s;work_mem=8192"
    );
    assert!(cluster
        .psql(
            "postgres",
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'mealie'"
        )
        .starts_with("SCRAM-SHA-256$4096:"));
    login(&cluster, "mealie", MEALIE_PW_1, "mealie")
        .await
        .unwrap();
    login(&cluster, "immich", IMMICH_PW, "immich")
        .await
        .unwrap();

    // Databases, schemas, grants, settings, extensions.
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datconnlimit \
             FROM pg_database WHERE datname = 'mealie'"
        ),
        "mealie|UTF8|C|20"
    );
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT has_database_privilege('app_readers', 'mealie', 'CONNECT'), \
                    has_database_privilege('app_readers', 'mealie', 'TEMPORARY'), \
                    has_database_privilege('app_readers', 'mealie', 'CREATE')"
        ),
        "t|t|f"
    );
    assert_eq!(
        cluster.psql(
            "mealie",
            "SELECT pg_get_userbyid(nspowner), has_schema_privilege('app_readers', 'app', 'USAGE'), \
                    has_schema_privilege('app_readers', 'app', 'CREATE') FROM pg_namespace WHERE nspname = 'app'"
        ),
        "mealie|t|f"
    );
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT array_to_string(setconfig, ';') FROM pg_db_role_setting \
             WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = 'mealie') AND setrole = 0"
        ),
        "default_text_search_config=pg_catalog.simple;search_path=app, \"$user\""
    );
    assert_eq!(
        cluster.psql(
            "immich",
            "SELECT extversion, extnamespace::regnamespace FROM pg_extension WHERE extname = 'vector'"
        ),
        "0.6.2|public"
    );
    assert_eq!(
        cluster.psql(
            "immich",
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'vectors'"
        ),
        "immich"
    );

    // A second run changes nothing.
    let second = run(&text).await;
    assert!(second.is_converged(), "{second}");
    let u = &second.unchanged;
    assert_eq!(
        (
            u.roles,
            u.passwords,
            u.memberships,
            u.role_settings,
            u.databases,
            u.database_settings
        ),
        (3, 2, 1, 3, 2, 2),
        "{second}"
    );
    assert_eq!((u.schemas, u.extensions, u.grants), (2, 2, 3), "{second}");
    assert!(
        second
            .to_string()
            .contains("0 changes applied; unchanged: 3 roles, 2 passwords"),
        "{second}"
    );

    // A new password and a moved extension are the only changes.
    std::fs::write(&pw_file, MEALIE_PW_2).unwrap();
    let moved = full_plan_pg16(&cluster.url("postgres"), &pw_file, "vectors");
    let dry = try_run(&moved, true).await.unwrap();
    assert_eq!(kinds(&dry), [SetPassword, AlterExtension], "{dry}");
    login(&cluster, "mealie", MEALIE_PW_1, "mealie")
        .await
        .expect("a dry run changes nothing");
    let third = run(&moved).await;
    assert_eq!(kinds(&third), [SetPassword, AlterExtension], "{third}");
    assert_eq!(third.changes[0].description, "password changed");
    assert_eq!(
        third.changes[0].sql,
        "ALTER ROLE \"mealie\" PASSWORD '****'"
    );
    assert_eq!(
        third.changes[1].sql,
        "ALTER EXTENSION \"vector\" SET SCHEMA \"vectors\""
    );
    login(&cluster, "mealie", MEALIE_PW_2, "mealie")
        .await
        .unwrap();
    let old = login(&cluster, "mealie", MEALIE_PW_1, "mealie")
        .await
        .unwrap_err();
    assert!(old.contains("password"), "{old}");
    assert!(
        !cluster.server_log().contains(MEALIE_PW_2),
        "the new password reached the server log"
    );
    assert!(run(&moved).await.is_converged());
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_masks_passwords() {
    let cluster = superuser_cluster_pg16();
    let secret = "DryRunSecret_4821";
    let text = format!(
        "[target]\nurl = \"{}\"\n[[role]]\nname = \"app\"\nlogin = true\npassword = \"{secret}\"\n\
         [[database]]\nname = \"app\"\nowner = \"app\"\nextensions = [\"vector\"]\n",
        cluster.url("postgres")
    );
    // Verifiers the server made itself, SCRAM and MD5, compare as equal.
    cluster.psql(
        "postgres",
        "CREATE ROLE scram_made LOGIN PASSWORD 'ServerMadePw_1'; \
         SET password_encryption = 'md5'; CREATE ROLE md5_made LOGIN PASSWORD 'Md5MadePw_2'",
    );
    let text = format!(
        "{text}[[role]]\nname = \"scram_made\"\npassword = \"ServerMadePw_1\"\n\
         [[role]]\nname = \"md5_made\"\npassword = \"Md5MadePw_2\"\n"
    );
    let report = try_run(&text, true).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(
        (report.unchanged.roles, report.unchanged.passwords),
        (2, 2),
        "{report}"
    );
    use ChangeKind::*;
    assert_eq!(
        kinds(&report),
        [CreateRole, CreateDatabase, CreateExtension],
        "{report}"
    );
    assert_eq!(
        report.changes[0].sql,
        "CREATE ROLE \"app\" LOGIN PASSWORD '****'"
    );
    assert!(report.changes[0]
        .execute_sql()
        .contains("SCRAM-SHA-256$4096:"));
    assert!(!report.changes[0].execute_sql().contains(secret));
    assert_eq!(
        report.changes[1].sql,
        "CREATE DATABASE \"app\" WITH OWNER \"app\""
    );
    assert_eq!(report.changes[2].database.as_deref(), Some("app"));
    assert_eq!(report.changes[2].sql, "CREATE EXTENSION \"vector\" CASCADE");
    let output = all_output(&report);
    assert!(!output.contains(secret), "{output}");
    assert!(output.contains("dry run: nothing changed"), "{output}");
    assert!(output.contains("3 changes planned"), "{output}");
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'app'"
        ),
        "0"
    );
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'app'"
        ),
        "0"
    );
    assert!(!cluster.server_log().contains(secret));
}

/// The administrator of a managed service: `CREATEROLE CREATEDB`, no superuser.
fn admin_plan(cluster: &Cluster, extensions: &str) -> String {
    format!(
        r#"
[target]
url = "{}"

[[role]]
name = "reader"

[[role]]
name = "mealie"
login = true
password = "MealieAdminPathPw"
member_of = ["reader"]
settings = {{ search_path = "app" }}

[[database]]
name = "mealie"
owner = "mealie"
extensions = [{extensions}]
grants = [{{ role = "reader", privileges = ["CONNECT"] }}]
settings = {{ work_mem = "16MB" }}

[[database.schema]]
name = "app"
owner = "mealie"
grants = [{{ role = "reader", privileges = ["USAGE"] }}]
"#,
        url_as(cluster, "admin", "postgres")
    )
}

async fn converges_without_a_superuser(flavor: Flavor, extensions: &str) -> Cluster {
    let cluster = Cluster::start(flavor);
    cluster.psql("postgres", "CREATE ROLE admin LOGIN CREATEROLE CREATEDB");
    let text = admin_plan(&cluster, extensions);

    let first = run(&text).await;
    assert!(!first.superuser && !first.passwords_compared, "{first}");
    assert_eq!(first.user, "admin");
    assert!(
        first
            .changes
            .iter()
            .any(|c| c.kind == ChangeKind::GrantMembership
                && c.description.starts_with("let admin act as mealie")),
        "{first}"
    );
    assert_eq!(
        cluster.psql(
            "mealie",
            "SELECT pg_get_userbyid(d.datdba), pg_get_userbyid(n.nspowner), \
                    has_schema_privilege('reader', 'app', 'USAGE'), has_database_privilege('reader', 'mealie', 'CONNECT') \
             FROM pg_database d, pg_namespace n WHERE d.datname = 'mealie' AND n.nspname = 'app'"
        ),
        "mealie|mealie|t|t"
    );

    // Passwords cannot be compared, so they are set again: nothing else is.
    let second = run(&text).await;
    assert_eq!(kinds(&second), [ChangeKind::SetPassword], "{second}");
    assert_eq!(
        second.changes[0].description,
        "password set (not compared: cannot read pg_authid)"
    );
    assert_eq!(second.unchanged.passwords, 0);
    assert!(second
        .to_string()
        .contains("role mealie: password set (not compared: cannot read pg_authid)"));

    // A superuser role cannot be altered by the administrator: said before any change.
    let postgres = format!("{text}\n[[role]]\nname = \"postgres\"\nconnection_limit = 3\n");
    let e = try_run(&postgres, false).await.unwrap_err();
    assert!(
        matches!(&e, pgharbor_apply::ApplyError::RoleNotManageable { role, .. } if role == "postgres"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("only a superuser can alter a superuser"),
        "{e}"
    );
    cluster
}

#[tokio::test]
async fn a_createrole_admin_converges_pg16_and_is_told_what_it_cannot_do() {
    let cluster = converges_without_a_superuser(Flavor::Pg16Vector, "\"plpgsql\"").await;

    // Since PostgreSQL 16, a role someone else created needs ADMIN OPTION.
    cluster.psql("postgres", "CREATE ROLE legacy NOLOGIN");
    let text = format!(
        "{}\n[[role]]\nname = \"legacy\"\nlogin = true\n",
        admin_plan(&cluster, "")
    );
    let e = try_run(&text, false).await.unwrap_err();
    assert!(
        matches!(&e, pgharbor_apply::ApplyError::RoleNotManageable { role, .. } if role == "legacy"),
        "{e:?}"
    );
    assert!(e.to_string().contains("ADMIN OPTION on role legacy"), "{e}");
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'legacy'"
        ),
        "f"
    );

    // pgvector is not a trusted extension.
    let text = admin_plan(&cluster, "\"vector\"");
    let e = try_run(&text, false).await.unwrap_err();
    assert!(
        matches!(
            e,
            pgharbor_apply::ApplyError::ExtensionNeedsSuperuser { .. }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("extension vector in database mealie"),
        "{e}"
    );
}

#[tokio::test]
async fn a_createrole_admin_converges_pg15_with_trusted_extensions() {
    let cluster = converges_without_a_superuser(Flavor::Pg15, "\"citext\", \"pg_trgm\"").await;
    assert_eq!(
        cluster.psql(
            "mealie",
            "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension"
        ),
        "citext,pg_trgm,plpgsql"
    );

    // PostgreSQL 15: CREATEROLE alters any role that is not a superuser.
    cluster.psql("postgres", "CREATE ROLE legacy NOLOGIN");
    let text = format!(
        "{}\n[[role]]\nname = \"legacy\"\nlogin = true\n",
        admin_plan(&cluster, "\"citext\"")
    );
    let report = run(&text).await;
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.kind == ChangeKind::AlterRole && c.object == "role legacy"),
        "{report}"
    );
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'legacy'"
        ),
        "t"
    );

    // file_fdw needs a superuser.
    let e = try_run(&admin_plan(&cluster, "\"file_fdw\""), false)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("extension file_fdw in database mealie can only be installed by a superuser"),
        "{e}"
    );
}

#[tokio::test]
async fn pg15_full_apply_with_extension_versions() {
    let cluster = Cluster::start(Flavor::Pg15);
    let plan = |citext: &str| {
        format!(
            r#"
[target]
url = "{}"

[[role]]
name = "gitea"
login = true
password = "GiteaPw15"

[[database]]
name = "gitea"
owner = "gitea"
encoding = "UTF8"
lc_collate = "C.UTF-8"
lc_ctype = "C.UTF-8"
locale_provider = "libc"
extensions = ["uuid-ossp", {{ name = "citext", version = "{citext}" }}, {{ name = "pg_trgm", schema = "app" }}]

[[database.schema]]
name = "app"
owner = "gitea"
"#,
            cluster.url("postgres")
        )
    };
    let first = run(&plan("1.5")).await;
    assert!(
        first
            .changes
            .iter()
            .any(|c| c.sql.contains("TEMPLATE \"template0\"")),
        "{first}"
    );
    assert_eq!(
        cluster.psql("gitea", "SELECT string_agg(extname || ':' || extversion || ':' || extnamespace::regnamespace, ',' ORDER BY extname) FROM pg_extension"),
        "citext:1.5:public,pg_trgm:1.6:app,plpgsql:1.0:pg_catalog,uuid-ossp:1.1:public"
    );
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT datcollate, datctype FROM pg_database WHERE datname = 'gitea'"
        ),
        "C.UTF-8|C.UTF-8"
    );
    assert!(run(&plan("1.5")).await.is_converged());

    let update = run(&plan("1.6")).await;
    assert_eq!(kinds(&update), [ChangeKind::AlterExtension], "{update}");
    assert_eq!(
        update.changes[0].sql,
        "ALTER EXTENSION \"citext\" UPDATE TO '1.6'"
    );
    assert_eq!(
        cluster.psql(
            "gitea",
            "SELECT extversion FROM pg_extension WHERE extname = 'citext'"
        ),
        "1.6"
    );

    // An existing database cannot change its collation.
    let conflict = plan("1.6").replace("lc_collate = \"C.UTF-8\"", "lc_collate = \"C\"");
    let e = try_run(&conflict, false).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("database gitea exists with lc_collate C.UTF-8 but the plan asks for C"),
        "{e}"
    );
}

#[tokio::test]
async fn a_missing_extension_stops_before_any_change() {
    let cluster = Cluster::start(Flavor::Pg15);
    let text = |ext: &str| {
        format!(
            "[target]\nurl = \"{}\"\n[[role]]\nname = \"app\"\n[[database]]\nname = \"app\"\nowner = \"app\"\n\
             extensions = [\"citext\", {ext}]\n",
            cluster.url("postgres")
        )
    };
    let e = try_run(&text("\"vector\""), false).await.unwrap_err();
    assert!(
        matches!(&e, pgharbor_apply::ApplyError::ExtensionUnavailable { extension, database, .. }
            if extension == "vector" && database == "app"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("extension vector for database app is not available"),
        "{e}"
    );

    let e = try_run(&text("{ name = \"pg_trgm\", version = \"9.9\" }"), false)
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("extension pg_trgm version 9.9"), "{shown}");
    assert!(
        shown.contains("the server offers version(s) 1.3, 1.4, 1.5, 1.6"),
        "{shown}"
    );

    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'app'"
        ),
        "0"
    );
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'app'"
        ),
        "0"
    );
}
