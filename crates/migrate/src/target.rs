//! Connecting to the target and checking what is already there.

use crate::error::{MigrateError, MigrateErrorKind};
use pgharbor_conn::ConnConfig;
use pgharbor_core::schema::quote_ident;
use tokio_postgres::Client;

/// Connect to the target; when its database does not exist and `create` is
/// set, create it through the `postgres` database first.
///
/// Returns the client and whether the database was created.
pub async fn connect_or_create(
    config: &ConnConfig,
    create: bool,
) -> Result<(Client, bool), MigrateError> {
    match connect(config).await {
        Ok(client) => Ok((client, false)),
        Err(err) if create && err.is_database_missing() => {
            let name = config.dbname().to_string();
            let admin = connect(&config.with_dbname("postgres")).await?;
            admin
                .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
                .await
                .map_err(|e| {
                    MigrateError::from(pgharbor_pgwriter::WriteError::from_pg(
                        e,
                        format!("creating database {name:?}"),
                    ))
                })?;
            Ok((connect(config).await?, true))
        }
        Err(err) => Err(err.into()),
    }
}

/// Open one more connection (for a worker).
pub async fn connect(config: &ConnConfig) -> Result<Client, pgharbor_conn::ConnError> {
    let (client, _task) = pgharbor_conn::connect(config).await?;
    Ok(client)
}

/// Session settings of the connections that load rows, as (name, value).
///
/// `default_toast_compression = lz4`: values too large for their row (chat
/// documents, file contents) are compressed with LZ4 instead of pglz, which
/// PostgreSQL reads back as transparently and which takes a third of the
/// time to write (the 77 MB of chat JSON of `bench/sqlite.sh`: 4.9 s →
/// 1.6 s of COPY) and less space. The rows are the same; only how their
/// large values are compressed differs. Servers before PostgreSQL 14 or
/// built without LZ4 refuse it, and keep pglz.
pub const LOADER_SETTINGS: &[(&str, &str)] = &[("default_toast_compression", "lz4")];

/// Apply `settings` to `client`'s session (never to the server's
/// configuration), each on its own: one the server does not know, does not
/// accept or does not let the role change is skipped, the session keeping
/// the server's value. Returns the names of those applied.
pub async fn apply_session_settings(
    client: &Client,
    settings: &[(&'static str, &str)],
) -> Vec<&'static str> {
    let mut applied = Vec::new();
    for (name, value) in settings {
        let set = client
            .execute("SELECT set_config($1, $2, false)", &[name, value])
            .await;
        if set.is_ok() {
            applied.push(*name);
        }
    }
    applied
}

/// Names among `names` that already exist as relations in `schema`.
pub async fn existing_relations(
    client: &Client,
    schema: &str,
    names: &[String],
) -> Result<Vec<String>, MigrateError> {
    let rows = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = ANY($2) AND c.relkind IN ('r','v','m','p','f') ORDER BY 1",
            &[&schema, &names],
        )
        .await
        .map_err(|e| pgharbor_pgwriter::WriteError::from_pg(e, "checking the target for existing tables"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Refuse to touch existing tables unless asked to replace them.
pub fn refuse_existing(existing: &[String], schema: &str) -> Result<(), MigrateError> {
    if existing.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = existing
        .iter()
        .take(10)
        .map(|n| format!("{schema}.{n}"))
        .collect();
    Err(MigrateError::new(
        MigrateErrorKind::TargetNotEmpty,
        format!(
            "the target already has {} of the tables this run would create ({}{}); nothing was changed. \
             Use --drop-existing to replace them, or --schema to load into another schema",
            existing.len(),
            shown.join(", "),
            if existing.len() > 10 { ", …" } else { "" }
        ),
    ))
}
