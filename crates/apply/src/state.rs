//! Reading the server's current state from its catalogs.

use crate::error::{inspect_error, ApplyError, Result};
use crate::plan::Plan;
use pgharbor_conn::{connect, ConnConfig, Secret};
use std::collections::{BTreeMap, BTreeSet};
use tokio_postgres::Client;

/// Who we are connected as and what the server allows.
#[derive(Debug)]
pub(crate) struct Server {
    /// `server_version_num`, e.g. 160002.
    pub version: i32,
    /// `current_user`.
    pub user: String,
    pub superuser: bool,
    pub createrole: bool,
    /// Whether `pg_authid` (stored password verifiers) is readable.
    pub reads_authid: bool,
}

impl Server {
    pub(crate) async fn inspect(client: &Client) -> Result<Server> {
        let row = client
            .query_one(
                "SELECT current_setting('server_version_num')::int, current_user::text, \
                        r.rolsuper, r.rolcreaterole, \
                        has_table_privilege('pg_catalog.pg_authid', 'SELECT') \
                 FROM pg_roles r WHERE r.rolname = current_user",
                &[],
            )
            .await
            .map_err(inspect_error("the connected user"))?;
        Ok(Server {
            version: row.get(0),
            user: row.get(1),
            superuser: row.get(2),
            createrole: row.get(3),
            reads_authid: row.get(4),
        })
    }

    /// PostgreSQL 16 and later: `CREATEROLE` only manages roles one holds
    /// `ADMIN OPTION` on, and role grants have `SET`/`INHERIT` options.
    pub(crate) fn pg16(&self) -> bool {
        self.version >= 160_000
    }
}

/// A role as the catalogs describe it.
#[derive(Debug)]
pub(crate) struct RoleState {
    pub superuser: bool,
    pub inherit: bool,
    pub createrole: bool,
    pub createdb: bool,
    pub login: bool,
    pub replication: bool,
    pub bypassrls: bool,
    pub connection_limit: i32,
    pub valid_until: Option<String>,
    /// Roles it is a member of.
    pub member_of: BTreeSet<String>,
    /// `setconfig` entries (`name=value`) for the role in all databases.
    pub settings: Vec<String>,
    /// The stored verifier, when `pg_authid` is readable and one is set.
    pub verifier: Option<Secret>,
    /// Whether the connected user can act as this role (and own objects for it).
    pub acts_as: bool,
    /// Whether the connected user holds `ADMIN OPTION` on it.
    pub admin: bool,
}

/// A database as the catalogs describe it.
#[derive(Debug)]
pub(crate) struct DatabaseState {
    pub owner: String,
    pub encoding: String,
    pub collate: String,
    pub ctype: String,
    /// `datlocprovider`: `c` (libc), `i` (ICU), `b` (builtin).
    pub provider: String,
    pub icu_locale: Option<String>,
    pub connection_limit: i32,
    pub allow_connections: bool,
    pub settings: Vec<String>,
    /// `(grantee, privilege)` from `aclexplode`; the grantee is `public` for PUBLIC.
    pub acl: BTreeSet<(String, String)>,
}

/// What is inside one database.
#[derive(Debug, Default)]
pub(crate) struct InsideState {
    /// name → (version, schema)
    pub extensions: BTreeMap<String, (String, String)>,
    /// name → (owner, acl)
    pub schemas: BTreeMap<String, (String, BTreeSet<(String, String)>)>,
}

/// One version of an available extension.
#[derive(Debug)]
pub(crate) struct AvailableVersion {
    pub version: String,
    pub superuser: bool,
    pub trusted: bool,
    pub default: bool,
}

/// Everything the plan touches, as it is now.
#[derive(Debug)]
pub(crate) struct State {
    pub roles: BTreeMap<String, RoleState>,
    pub databases: BTreeMap<String, DatabaseState>,
    /// Per planned database: its contents, or its template's for a new one.
    pub insides: BTreeMap<String, InsideState>,
    /// extension name → versions offered.
    pub available: BTreeMap<String, Vec<AvailableVersion>>,
    /// `valid_until` of each role, as the server renders it.
    pub valid_until: BTreeMap<String, String>,
}

/// A subquery giving the ACL of a catalog object as `grantee=PRIVILEGE`
/// texts, the grantee being `public` for PUBLIC; `kind` is `acldefault`'s
/// object type (`d` database, `n` schema).
fn acl_of(acl: &str, kind: &str, owner: &str) -> String {
    format!(
        "SELECT coalesce(array_agg(CASE WHEN a.grantee = 0 THEN 'public' \
         ELSE pg_get_userbyid(a.grantee)::text END || '=' || a.privilege_type), '{{}}') \
         FROM aclexplode(coalesce({acl}, acldefault('{kind}', {owner}))) a"
    )
}

fn acl_set(items: Vec<String>) -> BTreeSet<(String, String)> {
    items
        .into_iter()
        .filter_map(|i| {
            i.rsplit_once('=')
                .map(|(g, p)| (g.to_owned(), p.to_owned()))
        })
        .collect()
}

impl State {
    pub(crate) async fn read(
        client: &Client,
        config: &ConnConfig,
        plan: &Plan,
        server: &Server,
    ) -> Result<State> {
        let roles = read_roles(client, plan, server).await?;
        let databases = read_databases(client, plan, server).await?;
        let available = read_available(client, plan).await?;
        let valid_until = read_valid_until(client, plan).await?;
        let mut insides = BTreeMap::new();
        for db in plan.databases.iter().filter(|d| needs_inside(d)) {
            let source = match databases.get(&db.name) {
                Some(_) => db.name.clone(),
                None => template_to_read(db.template.as_deref()),
            };
            let inside = read_inside(client, config, &source, db).await?;
            insides.insert(db.name.clone(), inside);
        }
        Ok(State {
            roles,
            databases,
            insides,
            available,
            valid_until,
        })
    }
}

fn needs_inside(db: &crate::plan::DatabaseSpec) -> bool {
    !db.extensions.is_empty() || !db.schemas.is_empty()
}

/// A new database starts as a copy of its template; `template0` accepts no
/// connections, and starts out like `template1`.
fn template_to_read(template: Option<&str>) -> String {
    match template {
        Some(t) if t != "template0" => t.to_owned(),
        _ => "template1".to_owned(),
    }
}

/// Every role the plan names: declared roles, owners, grantees, groups.
fn named_roles(plan: &Plan) -> Vec<String> {
    let mut names = BTreeSet::new();
    for role in &plan.roles {
        names.insert(role.name.clone());
        names.extend(role.member_of.iter().cloned());
    }
    for db in &plan.databases {
        names.extend(db.owner.iter().cloned());
        names.extend(db.grants.iter().map(|g| g.role.clone()));
        for schema in &db.schemas {
            names.extend(schema.owner.iter().cloned());
            names.extend(schema.grants.iter().map(|g| g.role.clone()));
        }
    }
    names.into_iter().collect()
}

async fn read_roles(
    client: &Client,
    plan: &Plan,
    server: &Server,
) -> Result<BTreeMap<String, RoleState>> {
    let acts_as = if server.pg16() {
        "pg_has_role(r.oid, 'USAGE') AND pg_has_role(r.oid, 'SET')"
    } else {
        "pg_has_role(r.oid, 'USAGE')"
    };
    let query = format!(
        "SELECT r.rolname::text, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, \
                r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, \
                r.rolvaliduntil::text, \
                ARRAY(SELECT g.rolname::text FROM pg_auth_members m \
                      JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), \
                coalesce((SELECT s.setconfig FROM pg_db_role_setting s \
                          WHERE s.setrole = r.oid AND s.setdatabase = 0), '{{}}'), \
                {acts_as}, pg_has_role(r.oid, 'USAGE WITH ADMIN OPTION') \
         FROM pg_roles r WHERE r.rolname = ANY($1)"
    );
    let names = named_roles(plan);
    let rows = client
        .query(&query, &[&names])
        .await
        .map_err(inspect_error("roles (pg_roles, pg_auth_members)"))?;
    let mut verifiers = read_verifiers(client, &names, server).await?;
    let mut roles = BTreeMap::new();
    for row in rows {
        let name: String = row.get(0);
        let state = RoleState {
            superuser: row.get(1),
            inherit: row.get(2),
            createrole: row.get(3),
            createdb: row.get(4),
            login: row.get(5),
            replication: row.get(6),
            bypassrls: row.get(7),
            connection_limit: row.get(8),
            valid_until: row.get(9),
            member_of: row.get::<_, Vec<String>>(10).into_iter().collect(),
            settings: row.get(11),
            verifier: verifiers.remove(&name),
            acts_as: row.get(12),
            admin: row.get(13),
        };
        roles.insert(name, state);
    }
    Ok(roles)
}

async fn read_verifiers(
    client: &Client,
    names: &[String],
    server: &Server,
) -> Result<BTreeMap<String, Secret>> {
    if !server.reads_authid {
        return Ok(BTreeMap::new());
    }
    let rows = client
        .query(
            "SELECT rolname::text, rolpassword FROM pg_authid \
             WHERE rolname = ANY($1) AND rolpassword IS NOT NULL",
            &[&names],
        )
        .await
        .map_err(inspect_error("stored passwords (pg_authid)"))?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get(0), Secret::new(r.get::<_, String>(1))))
        .collect())
}

async fn read_databases(
    client: &Client,
    plan: &Plan,
    server: &Server,
) -> Result<BTreeMap<String, DatabaseState>> {
    let (provider, icu) = match server.version {
        v if v >= 170_000 => ("d.datlocprovider::text", "d.datlocale"),
        v if v >= 150_000 => ("d.datlocprovider::text", "d.daticulocale"),
        _ => ("'c'", "NULL::text"),
    };
    let acl = acl_of("d.datacl", "d", "d.datdba");
    let query = format!(
        "SELECT d.datname::text, pg_get_userbyid(d.datdba)::text, pg_encoding_to_char(d.encoding)::text, \
                d.datcollate::text, d.datctype::text, {provider}, {icu}, d.datconnlimit, d.datallowconn, \
                coalesce((SELECT s.setconfig FROM pg_db_role_setting s \
                          WHERE s.setdatabase = d.oid AND s.setrole = 0), '{{}}'), \
                ({acl}) \
         FROM pg_database d WHERE d.datname = ANY($1)"
    );
    let names: Vec<&str> = plan.databases.iter().map(|d| d.name.as_str()).collect();
    let rows = client
        .query(&query, &[&names])
        .await
        .map_err(inspect_error("databases (pg_database)"))?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let state = DatabaseState {
                owner: row.get(1),
                encoding: row.get(2),
                collate: row.get(3),
                ctype: row.get(4),
                provider: row.get(5),
                icu_locale: row.get(6),
                connection_limit: row.get(7),
                allow_connections: row.get(8),
                settings: row.get(9),
                acl: acl_set(row.get(10)),
            };
            (row.get(0), state)
        })
        .collect())
}

async fn read_available(
    client: &Client,
    plan: &Plan,
) -> Result<BTreeMap<String, Vec<AvailableVersion>>> {
    let names: BTreeSet<&str> = plan
        .databases
        .iter()
        .flat_map(|d| d.extensions.iter().map(|e| e.name.as_str()))
        .collect();
    let names: Vec<&str> = names.into_iter().collect();
    let rows = client
        .query(
            "SELECT v.name::text, v.version, v.superuser, v.trusted, v.version = a.default_version \
             FROM pg_available_extension_versions v \
             JOIN pg_available_extensions a ON a.name = v.name \
             WHERE v.name = ANY($1) ORDER BY v.name, v.version",
            &[&names],
        )
        .await
        .map_err(inspect_error("available extensions (pg_available_extension_versions)"))?;
    let mut available: BTreeMap<String, Vec<AvailableVersion>> = BTreeMap::new();
    for row in rows {
        available
            .entry(row.get(0))
            .or_default()
            .push(AvailableVersion {
                version: row.get(1),
                superuser: row.get(2),
                trusted: row.get(3),
                default: row.get(4),
            });
    }
    Ok(available)
}

/// Each `valid_until` of the plan as the server renders it, so that it
/// compares with `rolvaliduntil::text` in the same session.
async fn read_valid_until(client: &Client, plan: &Plan) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for role in &plan.roles {
        let Some(value) = &role.valid_until else {
            continue;
        };
        let row = client
            .query_one("SELECT $1::text::timestamptz::text", &[value])
            .await
            .map_err(|e| ApplyError::InvalidPlan {
                file: plan.origin().to_owned(),
                message: format!(
                    "role {}: valid_until {value:?} is not a timestamp: {}",
                    role.name,
                    crate::error::server_message(&e)
                ),
            })?;
        out.insert(role.name.clone(), row.get(0));
    }
    Ok(out)
}

async fn read_inside(
    admin: &Client,
    config: &ConnConfig,
    database: &str,
    db: &crate::plan::DatabaseSpec,
) -> Result<InsideState> {
    let own;
    let client = if database == config.dbname() {
        admin
    } else {
        own = connect(&config.with_dbname(database))
            .await
            .map_err(|source| ApplyError::Connection {
                what: format!("database {database}"),
                source,
            })?
            .0;
        &own
    };
    let what = |w: &str| format!("{w} in database {database}");
    let rows = client
        .query(
            "SELECT e.extname::text, e.extversion, n.nspname::text \
             FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace",
            &[],
        )
        .await
        .map_err(inspect_error(what("extensions (pg_extension)")))?;
    let extensions = rows
        .into_iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let names: Vec<&str> = db.schemas.iter().map(|s| s.name.as_str()).collect();
    let acl = acl_of("n.nspacl", "n", "n.nspowner");
    let rows = client
        .query(
            &format!(
                "SELECT n.nspname::text, pg_get_userbyid(n.nspowner)::text, ({acl}) \
                 FROM pg_namespace n WHERE n.nspname = ANY($1)"
            ),
            &[&names],
        )
        .await
        .map_err(inspect_error(what("schemas (pg_namespace)")))?;
    let schemas = rows
        .into_iter()
        .map(|r| (r.get(0), (r.get(1), acl_set(r.get(2)))))
        .collect();
    Ok(InsideState {
        extensions,
        schemas,
    })
}
