//! Logical PostgreSQL backups and Redis snapshots that are proven:
//! [`backup_postgres`], [`backup_redis`], [`list`], [`verify`] (checksums,
//! and a real restore into a scratch database) and [`verify_all`] (every
//! backup at a destination), [`restore`] and [`prune`], on any
//! [`Destination`](pgharbor_objstore::Destination) (a directory, S3, Azure Blob).
//!
//! # Layout
//!
//! A backup is a folder `<id>/` at the destination, the id being its UTC
//! start time `YYYYMMDDTHHMMSSZ` (`-1`, `-2`, … appended when taken):
//!
//! * `<db>.dump.zst` per database: the real `pg_dump --format=custom
//!   --compress=0 --snapshot=…` output, compressed in-process by zstd
//!   ([`DEFAULT_COMPRESS_LEVEL`], or [`BackupOptions::compress_level`]) on
//!   every core, hashed (SHA-256) and uploaded in the same pass — no
//!   temporary file;
//! * `roles.sql.zst`: `pg_dumpall --roles-only` (without passwords unless
//!   asked) for [`Selection::All`] or [`BackupOptions::roles`];
//! * `manifest.json` ([`Manifest`]), written last and atomically: times,
//!   versions, databases with owner, encoding, locale, settings and the row
//!   count of every table taken in the dump's snapshot, and every file's
//!   size and SHA-256. A folder without a manifest is a failed (or running)
//!   backup and is never listed as good; a failed backup deletes its parts;
//! * `verification.json` ([`VerificationRecord`]) once [`verify`] ran.
//!
//! A Redis backup ([`backup_redis`], `kind: "redis"`, section
//! [`RedisContent`]) holds `dump.rdb.zst`: the RDB snapshot fetched over the
//! replication protocol, compressed, hashed and uploaded in the same pass
//! that checks its structure (CRC64, full parse, keys per database, all
//! recorded in the manifest). [`restore_redis`] restores it key by key with
//! TTLs; `zstd -dc dump.rdb.zst > dump.rdb` gives a file `redis-server`
//! loads.
//!
//! With [`BackupOptions::encrypt`] the files are age files (`.zst.age`), to
//! x25519 recipients or with a passphrase.
//!
//! A `kind: "base"` backup ([`BaseContent`]) is a physical base backup for
//! point-in-time recovery, written by `pgharbor-pitr` through [`pipeline`];
//! it lists, verifies (checksums) and prunes like the others.
//!
//! # Restoring
//!
//! [`restore`] loads the rows while the dump downloads: the custom archive
//! is read as it arrives (`archive`), `pg_restore` applies the pre-data
//! and, with `-j`, the post-data from a file holding only the table of
//! contents, and the table rows go to the target over several connections
//! at once (`streamed`). The download's SHA-256 is checked against the
//! manifest and the row counts compared; a failed restore drops the
//! database it created. Dumps with large objects, and `clean` over a
//! database holding data, are downloaded whole into a temporary file first.
//!
//! # Restoring with the standard tools
//!
//! No pgharbor needed; `pg_restore` of the `pg_dump` major version (see the
//! manifest) or newer:
//!
//! ```text
//! zstd -dc 20260101T020000Z/app.dump.zst > app.dump
//! createdb app && pg_restore -j2 -d app app.dump
//! # encrypted:
//! age -d -i key.txt 20260101T020000Z/app.dump.zst.age | zstd -dc > app.dump
//! # roles:
//! zstd -dc 20260101T020000Z/roles.sql.zst | psql -d postgres
//! ```
//!
//! # Example
//!
//! ```no_run
//! use pgharbor_backup::{backup_postgres, list, BackupOptions, Selection};
//! use pgharbor_conn::ConnConfig;
//! use pgharbor_objstore::{Destination, DestinationOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = ConnConfig::parse("postgresql://postgres@db/postgres")?;
//! let dest = Destination::parse("s3://backups/pg", &DestinationOptions::from_env())?;
//! let report = backup_postgres(&server, Selection::All, &dest, &BackupOptions::default()).await?;
//! println!("backup {} ({} bytes)", report.id, report.size);
//! for entry in list(&dest).await? {
//!     println!("{} {:?} {:?}", entry.id, entry.state, entry.databases);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Errors are [`BackupError`]s with a [`BackupErrorKind`]; no message ever
//! holds a password, an age identity or a passphrase.

mod archive;
mod backup;
mod encrypt;
mod error;
mod id;
mod list;
mod manifest;
mod pg;
pub mod pipeline;
mod prune;
mod redis;
mod restore;
mod roles;
mod stream;
mod streamed;
mod tempfiles;
mod verify;

pub use backup::{backup_postgres, BackupOptions, BackupReport, Selection};
pub use encrypt::{Decryption, Encryption};
pub use error::{
    chain_text, chain_text_following, keeps_cause_apart, with_afterwards, BackupError,
    BackupErrorKind, Result,
};
pub use id::parse_id;
pub use list::{list, list_at, BackupEntry, BackupState};
pub use manifest::{
    BackupKind, BaseContent, Compression, DatabaseEntry, DatabaseSetting, EncryptionKind,
    FileEntry, Manifest, PostgresContent, RedisContent, RedisDatabase, TableCount,
    VerificationRecord, FORMAT, MANIFEST_NAME, VERIFICATION_NAME,
};
pub use prune::{
    plan as plan_prune, prune, prune_by_kind, Kept, KindRetention, PruneReport, Retention,
};
pub use redis::{backup_redis, restore_redis, RedisRestoreOptions, RedisRestoreReport};
pub use restore::{restore, RestoreOptions, RestoreReport, RestoredDatabase};
pub use roles::RolesReport;
pub use stream::{Encoding, COMPRESS_LEVELS, DEFAULT_COMPRESS_LEVEL};
pub use verify::{verify, verify_all, VerifyOptions, VerifyReport};
