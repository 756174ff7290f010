//! Open WebUI's encrypted `document_chunk` (`PGVECTOR_PGCRYPTO=true`): its
//! `text` and `vmetadata` columns are `bytea`, each value
//! `pgp_sym_encrypt(…, PGVECTOR_PGCRYPTO_KEY)` (the metadata as JSON text),
//! and Open WebUI reads them with `pgp_sym_decrypt`.
//!
//! * The key ([`PgcryptoKey`]) is never shown — its `Debug` masks it, no
//!   message holds it. It reaches the server once per session, as the bind
//!   parameter of `SELECT set_config('pgharbor.pgcrypto_key', $1, false)`
//!   ([`give_key`]): a `SELECT`, so not logged under `log_statement=mod`,
//!   after `SET log_parameter_max_length_on_error = 0` (no parameters in
//!   error reports) and, where the role may (superuser),
//!   `SET log_parameter_max_length = 0` (no parameters in any statement
//!   log). Statements read it with `current_setting(…)`, so no logged SQL
//!   text or parameter of theirs holds it; [`forget_key`] resets it.
//! * The load: rows are COPYed in parallel, as always, into an `UNLOGGED`
//!   staging table (plain text, so never in the WAL, archives or replicas),
//!   named after the run's number (runs at the same time keep apart) and
//!   recorded by [`crate::created`] so that a failed or killed run's copy is
//!   dropped (by that record only); then it is indexed by collection and the
//!   server encrypts the rows into `document_chunk` (`INSERT … SELECT
//!   pgp_sym_encrypt(text, current_setting(…)), …`, one collection per
//!   step of the run's schedule, on the worker's connection, each with
//!   `client_connection_check_interval`, so that a killed or interrupted
//!   run's INSERTs stop on the server at once) and the staging table is
//!   dropped.
//! * Verification reads through a temporary view of each verifying session
//!   that decrypts with the key (set with `set_config` from a bind
//!   parameter): the checksums compare the decrypted text and metadata with
//!   the source's, so a value the server cannot decrypt back, or decrypts to
//!   something else, fails the run.

use crate::error::{pg_error, MigrateError, MigrateErrorKind};
use pgharbor_core::plan::Plan;
use pgharbor_core::schema::QualifiedName;
use pgharbor_pgwriter::ddl;
use std::fmt;
use tokio_postgres::Client;

/// The start of the name of an encrypted load's staging table (same
/// schema as `document_chunk`), followed by the run's number.
pub const STAGING_TABLE_PREFIX: &str = "pgharbor_document_chunk_plain_";
/// The decrypting view of a verifying session (in `pg_temp`).
const DECRYPTED_VIEW: &str = "pgharbor_document_chunk_decrypted";
/// How often the server checks, during an encrypting INSERT, that pgharbor
/// is still connected.
const CONNECTION_CHECK_INTERVAL: &str = "1s";
/// The session setting holding the key while a session verifies.
const KEY_SETTING: &str = "pgharbor.pgcrypto_key";

/// Open WebUI's `PGVECTOR_PGCRYPTO_KEY`, and where it came from.
#[derive(Clone)]
pub struct PgcryptoKey {
    secret: String,
    origin: String,
    explicit: bool,
}

impl PgcryptoKey {
    /// The key `secret`, read from `origin` (e.g. `the environment's
    /// PGVECTOR_PGCRYPTO_KEY`); `explicit` when the user asked for it to be
    /// used (a key file) rather than it merely being set.
    pub fn new(secret: String, origin: String, explicit: bool) -> Result<Self, MigrateError> {
        if secret.is_empty() {
            return Err(MigrateError::new(
                MigrateErrorKind::Usage,
                format!("the pgcrypto key from {origin} is empty"),
            ));
        }
        Ok(PgcryptoKey {
            secret,
            origin,
            explicit,
        })
    }

    /// Where the key came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The user gave the key to be used (not only set in the environment).
    pub fn explicit(&self) -> bool {
        self.explicit
    }
}

impl fmt::Debug for PgcryptoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgcryptoKey(****, from {})", self.origin)
    }
}

/// How the rows of an encrypted `document_chunk` are written and read.
#[derive(Debug, Clone)]
pub struct Encryption {
    /// The key.
    pub key: PgcryptoKey,
    /// `document_chunk`.
    pub table: QualifiedName,
    /// The staging table the load COPYs into.
    pub staging: QualifiedName,
}

impl Encryption {
    /// The encryption of `table` (`document_chunk`) with `key`.
    pub fn new(key: PgcryptoKey, table: QualifiedName) -> Self {
        let staging = QualifiedName::new(
            table.schema.clone(),
            format!("{STAGING_TABLE_PREFIX}{}", crate::created::run_number()),
        );
        Encryption {
            key,
            table,
            staging,
        }
    }

    /// What a verifying session reads instead of `document_chunk` (see
    /// [`Encryption::decrypting_session`]).
    pub fn decrypted_view() -> QualifiedName {
        QualifiedName::new("pg_temp", DECRYPTED_VIEW)
    }

    /// The load's plan: `plan` with the staging table in place of
    /// `document_chunk` (no keys, no indexes: it is dropped after the load).
    pub fn staging_plan(&self, plan: &Plan) -> Plan {
        let mut staged = plan.clone();
        let table = &mut staged.tables[0];
        table.spec.name = self.staging.clone();
        table.spec.primary_key = None;
        table.spec.indexes.clear();
        staged
    }

    /// Create the staging table for `plan`'s columns, recorded in
    /// [`crate::created`] (dropped after a failure, or by the next run).
    pub async fn create_staging(
        &self,
        client: &Client,
        plan: &Plan,
        committed: &crate::created::Committed,
    ) -> Result<(), MigrateError> {
        let spec = &self.staging_plan(plan).tables[0].spec;
        let create = ddl::create_table(spec).replacen("CREATE TABLE", "CREATE UNLOGGED TABLE", 1);
        crate::created::open(client).await?;
        let sql = format!(
            "BEGIN; {create}; {}; COMMIT",
            crate::created::record_sql(&self.staging)
        );
        if let Err(e) = client.batch_execute(&sql).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(pg_error(format!(
                "creating the staging table {}",
                self.staging
            ))(e));
        }
        committed.add(&self.staging);
        Ok(())
    }

    /// Index the staging table by collection, so that each collection's
    /// encryption ([`Encryption::encrypt_collection`]) reads only its rows.
    pub async fn index_staging(&self, client: &Client) -> Result<(), MigrateError> {
        client
            .batch_execute(&format!(
                "CREATE INDEX ON {} (collection_name)",
                self.staging
            ))
            .await
            .map_err(pg_error(format!(
                "indexing the staging table {} by collection",
                self.staging
            )))
    }

    /// Encrypt the staged rows of collection `name` into `document_chunk`
    /// on `client`'s session (given the key for the statement only).
    /// Returns the rows written.
    pub async fn encrypt_collection(
        &self,
        client: &Client,
        name: &str,
    ) -> Result<u64, MigrateError> {
        // A run killed or interrupted mid-INSERT closes this connection:
        // the server then stops the INSERT within a second (instead of
        // finishing it, holding the staging table the clean-up drops).
        client
            .batch_execute(&format!(
                "SET client_connection_check_interval = '{CONNECTION_CHECK_INTERVAL}'"
            ))
            .await
            .map_err(pg_error("setting client_connection_check_interval"))?;
        give_key(client, &self.key, "encrypting").await?;
        let key = format!("current_setting('{KEY_SETTING}')");
        let sql = format!(
            "INSERT INTO {} (id, vector, collection_name, text, vmetadata) \
             SELECT id, vector, collection_name, pgp_sym_encrypt(text, {key}), pgp_sym_encrypt(vmetadata::text, {key}) \
             FROM {} WHERE collection_name = $1",
            self.table, self.staging
        );
        let rows = client
            .execute(&sql, &[&name])
            .await
            .map_err(pg_error(format!(
                "encrypting collection {name:?} into {} (pgp_sym_encrypt)",
                self.table
            )))?;
        forget_key(client).await?;
        Ok(rows)
    }

    /// Drop the staging table, once every collection is encrypted.
    pub async fn drop_staging(&self, client: &Client) -> Result<(), MigrateError> {
        client
            .batch_execute(&ddl::drop_table(&self.staging))
            .await
            .map_err(pg_error(format!(
                "dropping the staging table {}",
                self.staging
            )))
    }

    /// Make `client`'s session read `document_chunk` decrypted through
    /// [`Encryption::decrypted_view`].
    pub async fn decrypting_session(&self, client: &Client) -> Result<(), MigrateError> {
        give_key(client, &self.key, "verifying").await?;
        let key = format!("current_setting('{KEY_SETTING}')");
        let sql = format!(
            "CREATE OR REPLACE TEMP VIEW {DECRYPTED_VIEW} AS SELECT id, vector, collection_name, \
             pgp_sym_decrypt(text, {key}) AS text, pgp_sym_decrypt(vmetadata, {key})::jsonb AS vmetadata FROM {}",
            self.table
        );
        client.batch_execute(&sql).await.map_err(pg_error(format!(
            "creating a decrypting view of {}",
            self.table
        )))
    }

    /// Refuse a key that does not decrypt the rows already in
    /// `document_chunk` (another key's rows would become unreadable to
    /// Open WebUI beside the moved ones).
    pub async fn check_key(&self, client: &Client) -> Result<(), MigrateError> {
        give_key(client, &self.key, "checking").await?;
        let sql = format!(
            "SELECT pgp_sym_decrypt(text, current_setting('{KEY_SETTING}')) FROM {} WHERE text IS NOT NULL LIMIT 1",
            self.table
        );
        let tried = client.query_opt(&sql, &[]).await;
        forget_key(client).await?;
        match tried {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::EXTERNAL_ROUTINE_INVOCATION_EXCEPTION) => {
                Err(MigrateError::new(
                    MigrateErrorKind::Usage,
                    format!(
                        "the pgcrypto key from {} does not decrypt the rows already in {} (\"{}\"): give the PGVECTOR_PGCRYPTO_KEY Open WebUI runs with",
                        self.key.origin,
                        self.table,
                        e.as_db_error().map_or("", |d| d.message())
                    ),
                ))
            }
            Err(e) => Err(pg_error(format!("trying the pgcrypto key on {}", self.table))(e)),
        }
    }
}

/// Give `client`'s session the key in [`KEY_SETTING`] for `doing`
/// (encrypting, verifying…), keeping it out of the server's statement and
/// error logs as far as the role may (see the module's overview).
async fn give_key(client: &Client, key: &PgcryptoKey, doing: &str) -> Result<(), MigrateError> {
    client
        .batch_execute("SET log_parameter_max_length_on_error = 0")
        .await
        .map_err(pg_error(format!(
            "keeping parameters out of the server's error log before {doing}"
        )))?;
    // Superuser only (refused quietly, without an error in the server's
    // log); other roles' parameters stay out of the log as long as the
    // server does not log SELECTs (log_statement below `all`, no
    // log_min_duration_statement / auto_explain reaching this one).
    client
        .batch_execute(
            "DO $$ BEGIN SET log_parameter_max_length = 0; \
             EXCEPTION WHEN insufficient_privilege THEN NULL; END $$",
        )
        .await
        .map_err(pg_error(format!(
            "keeping parameters out of the server's statement log before {doing}"
        )))?;
    client
        .execute(
            &format!("SELECT set_config('{KEY_SETTING}', $1, false)"),
            &[&key.secret],
        )
        .await
        .map(|_| ())
        .map_err(pg_error(format!(
            "giving the session the pgcrypto key for {doing}"
        )))
}

/// Remove the key from `client`'s session (a pooled connection must not
/// keep it).
async fn forget_key(client: &Client) -> Result<(), MigrateError> {
    client
        .batch_execute(&format!("RESET {KEY_SETTING}"))
        .await
        .map_err(pg_error("removing the pgcrypto key from the session"))
}

/// Whether `table`'s `text` and `vmetadata` are `bytea` (Open WebUI's
/// encrypted layout); an error when only one is, or pgcrypto is missing.
pub async fn encrypted_columns(
    client: &Client,
    table: &QualifiedName,
) -> Result<bool, MigrateError> {
    let rows = client
        .query(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attname IN ('text', 'vmetadata') AND NOT a.attisdropped",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(pg_error(format!("reading the columns of {table}")))?;
    let bytea: Vec<String> = rows
        .iter()
        .filter(|r| r.get::<_, String>(1) == "bytea")
        .map(|r| r.get(0))
        .collect();
    match bytea.len() {
        0 => Ok(false),
        2 => {
            let installed = client
                .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto'", &[])
                .await
                .map_err(pg_error("looking for pgcrypto on the target"))?;
            if installed.is_none() {
                return Err(MigrateError::new(
                    MigrateErrorKind::Usage,
                    format!("{table}'s text and vmetadata are bytea (Open WebUI's PGVECTOR_PGCRYPTO=true) but the pgcrypto extension is not installed in this database: CREATE EXTENSION pgcrypto (Open WebUI does it on start)"),
                ));
            }
            Ok(true)
        }
        _ => Err(MigrateError::new(
            MigrateErrorKind::Usage,
            format!(
                "{table}.{} is bytea but the other of text/vmetadata is not: not a table Open WebUI created (with PGVECTOR_PGCRYPTO=true both are bytea)",
                bytea[0]
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_masked_wherever_it_is_shown() {
        let key = PgcryptoKey::new(
            "s3cr3t-k3y".into(),
            "the environment's PGVECTOR_PGCRYPTO_KEY".into(),
            false,
        )
        .unwrap();
        let encryption = Encryption::new(key, QualifiedName::new("public", "document_chunk"));
        let shown = format!("{encryption:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(
            shown.contains("****") && shown.contains("PGVECTOR_PGCRYPTO_KEY"),
            "{shown}"
        );
        let empty = PgcryptoKey::new(String::new(), "key.txt".into(), true).unwrap_err();
        assert!(empty.to_string().contains("key.txt"), "{empty}");
    }
}
