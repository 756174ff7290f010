//! The queries: server version, databases, a database's properties and
//! settings, its tables and their row counts, owners, large objects.

use pgharbor_conn::{connect, ConnConfig};
use tokio_postgres::Client;

use crate::error::{BackupError, BackupErrorKind, Result};
use crate::manifest::{DatabaseEntry, DatabaseSetting, TableCount};

/// Connects to `config`; the connection task runs on the runtime.
pub(crate) async fn open(config: &ConnConfig) -> Result<Client> {
    let (client, _task) = connect(config).await?;
    Ok(client)
}

/// `(server_version_num, server_version)`.
pub(crate) async fn server_version(client: &Client) -> Result<(u32, String)> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version')",
            &[],
        )
        .await
        .map_err(|e| BackupError::postgres("reading the server version", e))?;
    let num: i32 = row.get(0);
    let text: String = row.get(1);
    let text = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok((u32::try_from(num).unwrap_or(0), text))
}

/// Every database that accepts connections and is not a template.
pub(crate) async fn all_databases(client: &Client) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT datname::text FROM pg_database WHERE datallowconn AND NOT datistemplate \
             ORDER BY datname",
            &[],
        )
        .await
        .map_err(|e| BackupError::postgres("listing databases", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether database `name` exists.
pub(crate) async fn database_exists(client: &Client, name: &str) -> Result<bool> {
    let row = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|e| BackupError::postgres("looking up a database", e))?;
    Ok(row.is_some())
}

/// Whether the existing database `name` is invalid: a `DROP DATABASE` cut
/// short (the server stopped mid-drop) leaves it so (`datconnlimit` -2,
/// PostgreSQL 15.4 and later); no one can connect to it, only drop it.
pub(crate) async fn database_is_invalid(client: &Client, name: &str) -> Result<bool> {
    let row = client
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1 AND datconnlimit = -2",
            &[&name],
        )
        .await
        .map_err(|e| BackupError::postgres("looking up a database", e))?;
    Ok(row.is_some())
}

/// Which of `roles` do not exist.
pub(crate) async fn missing_roles(client: &Client, roles: &[String]) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT r FROM unnest($1::text[]) AS r WHERE NOT EXISTS \
             (SELECT 1 FROM pg_roles WHERE rolname = r) ORDER BY r",
            &[&roles],
        )
        .await
        .map_err(|e| BackupError::postgres("looking up roles", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The properties of the current database, for the manifest (tables and
/// file are filled in by the caller).
pub(crate) async fn database_entry(client: &Client, server_num: u32) -> Result<DatabaseEntry> {
    let locale = if server_num >= 150_000 {
        "d.datlocprovider::text, d.daticulocale::text"
    } else {
        "'c'::text, NULL::text"
    };
    let sql = format!(
        "SELECT d.datname::text, pg_get_userbyid(d.datdba)::text, pg_encoding_to_char(d.encoding)::text, \
         d.datcollate::text, d.datctype::text, {locale} \
         FROM pg_database d WHERE d.datname = current_database()"
    );
    let what = "reading the database's properties";
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(|e| BackupError::postgres(what, e))?;
    let provider: String = row.get(5);
    Ok(DatabaseEntry {
        name: row.get(0),
        owner: row.get(1),
        encoding: row.get(2),
        collate: row.get(3),
        ctype: row.get(4),
        locale_provider: if provider == "i" { "icu" } else { "libc" }.to_owned(),
        icu_locale: row.get(6),
        settings: settings(client).await?,
        object_owners: object_owners(client).await?,
        tables: Vec::new(),
        large_objects: 0,
        file: String::new(),
    })
}

async fn settings(client: &Client) -> Result<Vec<DatabaseSetting>> {
    let rows = client
        .query(
            "SELECT r.rolname::text, unnest(s.setconfig) FROM pg_db_role_setting s \
             JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole \
             WHERE d.datname = current_database() ORDER BY 1 NULLS FIRST, 2",
            &[],
        )
        .await
        .map_err(|e| BackupError::postgres("reading the database's settings", e))?;
    Ok(rows
        .iter()
        .map(|r| DatabaseSetting {
            role: r.get(0),
            setting: r.get(1),
        })
        .collect())
}

/// Roles owning schemas, relations, functions or types outside the system
/// schemas, and large objects.
async fn object_owners(client: &Client) -> Result<Vec<String>> {
    let rows = client
        .query(
            "WITH user_ns AS (SELECT oid, nspowner FROM pg_namespace \
               WHERE nspname NOT IN ('pg_catalog', 'information_schema') \
               AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%') \
             SELECT DISTINCT pg_get_userbyid(o)::text FROM ( \
               SELECT nspowner AS o FROM user_ns \
               UNION SELECT relowner FROM pg_class WHERE relnamespace IN (SELECT oid FROM user_ns) \
               UNION SELECT proowner FROM pg_proc WHERE pronamespace IN (SELECT oid FROM user_ns) \
               UNION SELECT typowner FROM pg_type WHERE typnamespace IN (SELECT oid FROM user_ns) \
               UNION SELECT lomowner FROM pg_largeobject_metadata) owners ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| BackupError::postgres("reading the owners of the database's objects", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The tables `pg_dump` dumps the data of: ordinary tables outside the
/// system schemas that no extension owns.
pub(crate) async fn tables(client: &Client) -> Result<Vec<(String, String)>> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                             AND d.objid = c.oid AND d.deptype = 'e') \
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(|e| BackupError::postgres("listing tables", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// `SELECT count(*)` of every table, one after the other on `client`.
pub(crate) async fn count_rows(
    client: &Client,
    tables: &[(String, String)],
) -> Result<Vec<TableCount>> {
    let mut counts = Vec::with_capacity(tables.len());
    for (schema, name) in tables {
        let sql = format!(
            "SELECT count(*) FROM {}.{}",
            quote_ident(schema),
            quote_ident(name)
        );
        let row = client.query_one(&sql, &[]).await.map_err(|e| {
            BackupError::postgres(format!("counting the rows of {schema}.{name}"), e)
        })?;
        let rows: i64 = row.get(0);
        counts.push(TableCount {
            schema: schema.clone(),
            name: name.clone(),
            rows: u64::try_from(rows).unwrap_or(0),
        });
    }
    Ok(counts)
}

/// The number of large objects.
pub(crate) async fn large_objects(client: &Client) -> Result<u64> {
    let row = client
        .query_one("SELECT count(*) FROM pg_largeobject_metadata", &[])
        .await
        .map_err(|e| BackupError::postgres("counting large objects", e))?;
    let n: i64 = row.get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Whether the current database holds no user objects (schemas other than
/// `public`, relations, functions, types, extensions other than plpgsql,
/// large objects).
pub(crate) async fn is_empty(client: &Client) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT \
               (SELECT count(*) FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public') \
                  AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%') \
             + (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
                  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%') \
             + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')) \
             + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql') \
             + (SELECT count(*) FROM pg_largeobject_metadata)",
            &[],
        )
        .await
        .map_err(|e| BackupError::postgres("checking whether the database is empty", e))?;
    let n: i64 = row.get(0);
    Ok(n == 0)
}

/// A quoted SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted SQL string literal.
pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// An error about a database that does not exist or cannot be used.
pub(crate) fn invalid(message: impl Into<String>) -> BackupError {
    BackupError::new(BackupErrorKind::InvalidInput, message)
}
