//! The manifest (`<id>/manifest.json`, written last) and the verification
//! record (`<id>/verification.json`), both versioned JSON.
//!
//! A manifest has the fields every kind of backup shares (id, times, files
//! with sizes and SHA-256, compression, encryption) and one section per
//! kind, named by `kind`: `"postgres"` with a [`PostgresContent`],
//! `"redis"` with a [`RedisContent`]. The sections are plain optional
//! fields (no serde `flatten` or tagged enums, which the workspace's
//! `arbitrary_precision` serde_json breaks); readers ignore fields they do
//! not know.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{BackupError, BackupErrorKind, Result};

/// Name of the manifest inside a backup.
pub const MANIFEST_NAME: &str = "manifest.json";
/// Name of the verification record inside a backup.
pub const VERIFICATION_NAME: &str = "verification.json";
/// The manifest format this version writes and reads.
pub const FORMAT: u32 = 1;

/// Everything known about a complete backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version ([`FORMAT`]).
    pub format: u32,
    /// What was backed up; selects the section holding the details.
    pub kind: BackupKind,
    /// The backup id (`20260101T020000Z`, maybe with a suffix).
    pub id: String,
    /// When the backup started (UTC).
    pub started: DateTime<Utc>,
    /// When the last file was stored (UTC).
    pub finished: DateTime<Utc>,
    /// `finished - started`, in seconds.
    pub duration_seconds: f64,
    /// The pgharbor version that wrote the backup.
    pub tool_version: String,
    /// Every file of the backup, as stored.
    pub files: Vec<FileEntry>,
    /// How the files were compressed.
    pub compression: Compression,
    /// How the files were encrypted; `None` when they are not.
    pub encryption: Option<EncryptionKind>,
    /// The details of a `kind: "postgres"` backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresContent>,
    /// The details of a `kind: "redis"` backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisContent>,
    /// The details of a `kind: "base"` backup (point-in-time recovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseContent>,
}

impl Manifest {
    /// Parses a manifest; an error for malformed JSON or a newer format.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            BackupError::new(BackupErrorKind::Integrity, "the manifest is not readable")
                .caused_by(e)
        })?;
        if manifest.format > FORMAT {
            return Err(BackupError::new(
                BackupErrorKind::InvalidInput,
                format!(
                    "the manifest has format {}, this pgharbor reads format {FORMAT}: upgrade pgharbor",
                    manifest.format
                ),
            ));
        }
        Ok(manifest)
    }

    /// The manifest as pretty-printed JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest always serializes")
    }

    /// The file entry called `name`.
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }

    /// The PostgreSQL section, or an error when this is another kind.
    pub fn postgres(&self) -> Result<&PostgresContent> {
        self.section(self.postgres.as_ref(), "PostgreSQL")
    }

    /// The Redis section, or an error when this is another kind.
    pub fn redis(&self) -> Result<&RedisContent> {
        self.section(self.redis.as_ref(), "Redis")
    }

    /// The base backup section, or an error when this is another kind.
    pub fn base(&self) -> Result<&BaseContent> {
        self.section(self.base.as_ref(), "base (point-in-time recovery)")
    }

    fn section<'a, T>(&self, section: Option<&'a T>, what: &str) -> Result<&'a T> {
        section.ok_or_else(|| {
            BackupError::new(
                BackupErrorKind::InvalidInput,
                format!("backup {} is not a {what} backup", self.id),
            )
        })
    }

    /// Names of the databases in the backup: PostgreSQL database names, or
    /// `db0`, `db1`, … for Redis.
    pub fn database_names(&self) -> Vec<String> {
        let postgres = self
            .postgres
            .iter()
            .flat_map(|p| p.databases.iter().map(|d| d.name.clone()));
        let redis = self
            .redis
            .iter()
            .flat_map(|r| r.databases.iter().map(|d| format!("db{}", d.db)));
        let base = self.base.iter().map(|_| "(whole cluster)".to_owned());
        postgres.chain(redis).chain(base).collect()
    }
}

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    /// Logical backups of PostgreSQL databases (section `postgres`).
    Postgres,
    /// An RDB snapshot of a Redis server (section `redis`).
    Redis,
    /// A physical base backup of a whole PostgreSQL cluster
    /// (`pg_basebackup`, section `base`), restored with the WAL archive
    /// to a point in time.
    Base,
}

/// One stored file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its name inside the backup (`app.dump.zst`).
    pub name: String,
    /// Stored size in bytes.
    pub size: u64,
    /// SHA-256 of the stored bytes (after compression and encryption), hex.
    pub sha256: String,
}

/// The compression of every file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compression {
    /// Always `zstd`.
    pub algorithm: String,
    /// The zstd level.
    pub level: i32,
}

/// How the files are encrypted (never the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncryptionKind {
    /// age, to x25519 recipients (`age -d -i KEYFILE`).
    AgeX25519,
    /// age, with an scrypt passphrase (`age -d`, which asks for it).
    AgePassphrase,
}

/// The PostgreSQL part of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostgresContent {
    /// The server's version (`16.2`).
    pub server_version: String,
    /// The `pg_dump` version that wrote the dumps (`16.2`).
    pub pg_dump_version: String,
    /// The `pg_dump` major version; restores need a `pg_restore` at least this new.
    pub pg_dump_major: u32,
    /// Every database in the backup.
    pub databases: Vec<DatabaseEntry>,
    /// The roles file (`roles.sql.zst`) when roles were backed up.
    pub roles_file: Option<String>,
    /// Whether the roles file holds password hashes.
    pub role_passwords: bool,
}

/// The base backup part of a manifest: where in the WAL the backup starts
/// and ends, so a restore knows which base backup reaches a target and
/// which WAL it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseContent {
    /// The server's version (`16.2`).
    pub server_version: String,
    /// The server's major version: a restore runs this major's `postgres`.
    pub major: u32,
    /// The `pg_basebackup` version that took it.
    pub pg_basebackup_version: String,
    /// The cluster's system identifier (`pg_control_system()`): WAL of
    /// another cluster does not replay onto it.
    pub system_identifier: String,
    /// The timeline the backup was taken on.
    pub timeline: u32,
    /// The WAL position the backup starts at (`0/2000028`).
    pub start_lsn: String,
    /// The WAL position at which a restore of it is consistent.
    pub end_lsn: String,
    /// The first WAL segment a restore needs (`000000010000000000000002`);
    /// the backup holds the WAL up to `end_lsn` itself (`pg_basebackup -X fetch`).
    pub start_wal: String,
    /// The tar file (`base.tar.zst`): the data directory as `pg_basebackup -Ft` writes it.
    pub file: String,
    /// The server's WAL segment size in bytes (`wal_segment_size`).
    #[serde(default = "default_wal_segment_size")]
    pub wal_segment_size: u64,
    /// The server's next transaction id (with its epoch) read once the
    /// backup had ended: every transaction numbered from it on began after,
    /// so a restore of this backup reaches its commit (`--xid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_xid: Option<u64>,
}

fn default_wal_segment_size() -> u64 {
    16 << 20
}

/// The Redis part of a manifest: what the snapshot's structural check
/// (RDB checksum and a full parse, in the backup's pass) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisContent {
    /// The version of Redis that wrote the snapshot (its `redis-ver`), or
    /// `unknown` when the snapshot does not say.
    pub server_version: String,
    /// The RDB format version (Redis 7.0 writes 10).
    pub rdb_version: u32,
    /// How the server sent it: `sized` (saved to disk first) or `diskless`.
    pub framing: String,
    /// The snapshot's size before compression.
    pub rdb_size: u64,
    /// The SHA-256 of the snapshot before compression (what
    /// `zstd -dc dump.rdb.zst | sha256sum` prints), hex.
    pub rdb_sha256: String,
    /// Keys per database; only databases with keys appear.
    pub databases: Vec<RedisDatabase>,
    /// Function libraries (Redis 7+).
    pub functions: u64,
    /// The snapshot file (`dump.rdb.zst`, `dump.rdb.zst.age`).
    pub file: String,
}

impl RedisContent {
    /// Keys in every database.
    pub fn keys(&self) -> u64 {
        self.databases.iter().map(|d| d.keys).sum()
    }
}

/// The keys of one Redis database in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisDatabase {
    /// The database number (`SELECT n`).
    pub db: u64,
    /// Keys.
    pub keys: u64,
    /// Keys with an expiry.
    pub expires: u64,
}

/// One backed-up database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseEntry {
    /// The database's name.
    pub name: String,
    /// Its owner.
    pub owner: String,
    /// Its encoding (`UTF8`).
    pub encoding: String,
    /// `LC_COLLATE`.
    pub collate: String,
    /// `LC_CTYPE`.
    pub ctype: String,
    /// `libc` or `icu`.
    pub locale_provider: String,
    /// The ICU locale when the provider is ICU.
    pub icu_locale: Option<String>,
    /// `ALTER DATABASE … SET` and `ALTER ROLE … IN DATABASE … SET` settings.
    pub settings: Vec<DatabaseSetting>,
    /// Every role owning something in the database (restores keep owners
    /// when all of them exist).
    pub object_owners: Vec<String>,
    /// Row counts per table, taken in the dump's snapshot.
    pub tables: Vec<TableCount>,
    /// Number of large objects, in the dump's snapshot.
    pub large_objects: u64,
    /// The dump file (`pg_dump -Fc`, zstd-compressed).
    pub file: String,
}

/// One per-database setting (`pg_db_role_setting`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseSetting {
    /// The role it applies to; `None` for every role.
    pub role: Option<String>,
    /// `name=value`, as the server stores it.
    pub setting: String,
}

/// The number of rows of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCount {
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Rows.
    pub rows: u64,
}

impl TableCount {
    /// `schema.name`, for messages.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// The result of a verification, kept next to the backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationRecord {
    /// Record format version ([`FORMAT`]).
    pub format: u32,
    /// The backup verified.
    pub id: String,
    /// When it was verified.
    pub verified_at: DateTime<Utc>,
    /// Whether every check passed.
    pub passed: bool,
    /// The SHA-256 of the manifest verified (a record for another manifest does not count).
    pub manifest_sha256: String,
    /// The server restored into (no password), when a restore was part of it.
    pub restored_to: Option<String>,
    /// Every problem found, each naming the file or table.
    pub problems: Vec<String>,
}
