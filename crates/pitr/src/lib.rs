//! Point-in-time recovery for PostgreSQL with its own tools: base backups
//! by `pg_basebackup` ([`base_backup`]), the WAL streamed by
//! `pg_receivewal` over a replication slot into an archive
//! ([`run_archiver`]), and a restore to a time, WAL position, transaction
//! or restore point into a new data directory ([`restore_to_point`]),
//! whose `restore_command` fetches and checks each WAL file ([`fetch`]).
//!
//! Everything is stored through `pgharbor-backup`'s pipeline, at the same
//! destinations (a directory, S3, Azure Blob), compressed with zstd,
//! optionally encrypted with age, hashed with SHA-256 while it streams:
//!
//! * `<id>/base.tar.zst[.age]`: the data directory as `pg_basebackup -Ft
//!   -X fetch` writes it to its standard output (with the WAL needed to
//!   make it consistent and PostgreSQL's `backup_manifest`), and
//!   `<id>/manifest.json` of kind `base` ([`BaseContent`](pgharbor_backup::BaseContent):
//!   start and end WAL positions, timeline, system identifier). Base
//!   backups list, verify and prune with the logical backups;
//! * `<id>/rowcounts.json`: the row counts of every table at a WAL
//!   position just after the base backup ([`RowCountMarker`]), which
//!   `backups verify --pitr` replays to and compares;
//! * `wal/<name>.zst[.age]` per complete WAL segment or timeline history
//!   file, then its index entry `wal/<name>.json` ([`WalEntry`]);
//! * `wal/archiver.json`: the running archiver's state ([`ArchiverStatus`]),
//!   for `check` and `status` ([`archive_health`]).
//!
//! # Reading the archive without pgharbor
//!
//! ```text
//! mkdir -m 700 data && zstd -dc 20261206T020000Z/base.tar.zst | tar -x -C data
//! zstd -dc wal/000000010000000000000003.zst > data/pg_wal/000000010000000000000003
//! # encrypted: age -d -i key.txt base.tar.zst.age | zstd -dc | tar -x -C data
//! ```

mod archive;
mod base;
mod guard;
mod lsn;
mod marker;
mod prune;
mod restore;
mod state;
mod target;
mod verify;
mod walstore;

pub use archive::{run_archiver, ArchiveOptions, ArchiveProgress, SharedProgress};
pub use base::{base_backup, BaseBackupReport, BaseOptions, MarkerSummary, BASE_FILE_STEM};
pub use guard::{SlotGuard, SlotState};
pub use lsn::{is_archived_name, missing_segments, Lsn, Segment, TimelinePath};
pub use marker::{
    take_marker, DatabaseCounts, MarkerComparison, RowCountMarker, TableCount, MARKER_NAME,
};
pub use prune::{prune_wal, WalPruneReport};
pub use restore::{
    choose_base, restore_to_point, shell_quote, PitrRestoreOptions, PitrRestoreReport, LOG_NAME,
};
pub use state::{
    archive_health, read_archiver_status, ArchiveHealth, ArchiverStatus, SlotView, ARCHIVER_STATUS,
};
pub use target::RecoveryTarget;
pub use verify::{verify_pitr, MarkerCheck, PitrVerifyOptions, PitrVerifyReport};
pub use walstore::{
    archived_names, entry, fetch, fetch_bytes, timeline_path, Fetched, WalEntry, WAL_FOLDER,
};
