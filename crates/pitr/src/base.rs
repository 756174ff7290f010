//! [`base_backup`]: `pg_basebackup -Ft -X fetch` of the whole cluster,
//! streamed from its standard output through zstd (and age) into
//! `<id>/base.tar.zst` at the destination, then a manifest of kind `base`
//! recording where in the WAL it starts and ends, then (unless told not
//! to) a row-count marker `<id>/rowcounts.json` ([`crate::marker`]) taken
//! right after it, which `backups verify --pitr` replays to and compares.

use std::time::Instant;

use chrono::{DateTime, Utc};
use pgharbor_backup::pipeline::{
    allocate_id, new_manifest, removed_on_failure, store_program_output, write_manifest,
};
use pgharbor_backup::{
    BackupError, BackupErrorKind, BackupKind, BackupReport, BaseContent, Encoding, Result,
};
use pgharbor_conn::{connect, ConnConfig};
use pgharbor_objstore::Destination;
use pgharbor_pgtools::{clear_libpq_env, Version};
use serde::Serialize;

use crate::lsn::Lsn;
use crate::marker::{take_marker, RowCountMarker, MARKER_NAME};

/// The base backup's tar file, before the encoding's suffix.
pub const BASE_FILE_STEM: &str = "base.tar";

/// How to take a base backup.
#[derive(Debug, Clone)]
pub struct BaseOptions {
    /// zstd level and age encryption, as for logical backups.
    pub encoding: Encoding,
    /// The start time (and so the id); `None` is now.
    pub started_at: Option<DateTime<Utc>>,
    /// Count every table's rows after the backup (a row-count marker).
    pub row_counts: bool,
}

/// What [`base_backup`] did.
#[derive(Debug, Clone, Serialize)]
pub struct BaseBackupReport {
    /// The backup, as a logical backup reports it.
    #[serde(flatten)]
    pub backup: BackupReport,
    /// The row-count marker written beside it.
    pub marker: Option<MarkerSummary>,
    /// Why no marker was written, when one was asked for.
    pub marker_problem: Option<String>,
}

/// A marker, summed up.
#[derive(Debug, Clone, Serialize)]
pub struct MarkerSummary {
    /// Its WAL position.
    pub lsn: String,
    /// Databases counted.
    pub databases: usize,
    /// Tables counted.
    pub tables: usize,
    /// Tables the user may not read, left uncounted.
    pub not_counted: usize,
}

/// What the server says about itself before a base backup.
pub(crate) struct ServerFacts {
    pub version_num: u32,
    pub version: String,
    pub system_identifier: String,
    pub segment_size: u64,
}

/// Reads the facts a base backup and the archiver need; an error naming
/// the setting when the server cannot stream WAL (`wal_level = minimal`).
pub(crate) async fn server_facts(server: &ConnConfig) -> Result<ServerFacts> {
    let (client, _task) = connect(server).await?;
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int, \
                    split_part(current_setting('server_version'), ' ', 1), \
                    (SELECT system_identifier::text FROM pg_control_system()), \
                    (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'), \
                    current_setting('wal_level')",
            &[],
        )
        .await
        .map_err(|e| BackupError::postgres("reading the server's settings", e))?;
    let wal_level: String = row.get(4);
    if wal_level == "minimal" {
        return Err(BackupError::new(
            BackupErrorKind::InvalidInput,
            "the server has wal_level = minimal: base backups and WAL archiving need \
             wal_level = replica (the default; set it in postgresql.conf and restart)",
        ));
    }
    let num: i32 = row.get(0);
    let segment_size: i64 = row.get(3);
    Ok(ServerFacts {
        version_num: u32::try_from(num).unwrap_or(0),
        version: row.get(1),
        system_identifier: row.get(2),
        segment_size: u64::try_from(segment_size).unwrap_or(16 << 20),
    })
}

/// Takes a base backup of `server` (a user with the REPLICATION
/// attribute) into a new backup folder at `dest`, then its row-count
/// marker when asked. On failure its parts are removed and no manifest is
/// written; a marker that cannot be taken (no right to read a database)
/// leaves the backup good and says why.
pub async fn base_backup(
    server: &ConnConfig,
    dest: &Destination,
    options: &BaseOptions,
) -> Result<BaseBackupReport> {
    let backup = take_base_backup(server, dest, options).await?;
    let mut report = BaseBackupReport {
        backup,
        marker: None,
        marker_problem: None,
    };
    if options.row_counts {
        match write_marker(server, dest, &report.backup.id).await {
            Ok(marker) => report.marker = Some(summarize(&marker)),
            Err(e) => {
                let problem = pgharbor_backup::chain_text(&e);
                tracing::warn!(
                    "no row-count marker for base backup {}: {problem}",
                    report.backup.id
                );
                report.marker_problem = Some(problem);
            }
        }
    }
    Ok(report)
}

/// Takes the marker, stores it beside the base backup, writes a WAL record
/// at its position and ends the WAL segment it is in (when the user may:
/// `pg_switch_wal()`), so that the archive holds its position soon rather
/// than once the segment fills.
///
/// The record (`pg_logical_emit_message`, no transaction id, allowed to
/// every user) matters on an idle server: the marker's position is then
/// where the next record will go, often a segment's first byte, and
/// without a record there the segment is empty, `pg_switch_wal()` does
/// nothing and recovery has no record to stop before.
async fn write_marker(server: &ConnConfig, dest: &Destination, id: &str) -> Result<RowCountMarker> {
    let marker = take_marker(server).await?;
    let json = serde_json::to_vec_pretty(&marker).expect("a marker always serializes");
    dest.put_bytes(&format!("{id}/{MARKER_NAME}"), json).await?;
    let (client, _task) = connect(server).await?;
    let message = format!("row-count marker of base backup {id}");
    if let Err(e) = client
        .execute(
            "SELECT pg_logical_emit_message(false, 'pgharbor', $1::text)",
            &[&message],
        )
        .await
    {
        tracing::info!(
            "no WAL record written at the row-count marker (pg_logical_emit_message() was \
             refused: {e}); it is compared once the server writes again"
        );
    }
    if let Err(e) = client.execute("SELECT pg_switch_wal()", &[]).await {
        tracing::info!(
            "the WAL segment of the row-count marker is archived once it fills or \
             archive_timeout ends it (pg_switch_wal() was refused: {e})"
        );
    }
    Ok(marker)
}

fn summarize(marker: &RowCountMarker) -> MarkerSummary {
    MarkerSummary {
        lsn: marker.lsn.clone(),
        databases: marker.databases.len(),
        tables: marker.table_count(),
        not_counted: marker.databases.iter().map(|d| d.not_counted.len()).sum(),
    }
}

/// The server's next transaction id, with its epoch.
async fn next_xid(server: &ConnConfig) -> Result<u64> {
    let (client, _task) = connect(server).await?;
    let row = client
        .query_one("SELECT txid_snapshot_xmax(txid_current_snapshot())", &[])
        .await
        .map_err(|e| BackupError::postgres("reading the next transaction id", e))?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

async fn take_base_backup(
    server: &ConnConfig,
    dest: &Destination,
    options: &BaseOptions,
) -> Result<BackupReport> {
    let started = options.started_at.unwrap_or_else(Utc::now);
    let clock = Instant::now();
    let facts = server_facts(server).await?;
    crate::walstore::claim(dest, &facts.system_identifier).await?;
    let major = Version::from_server_version_num(facts.version_num).major;
    let pg_basebackup = pgharbor_pgtools::find("pg_basebackup", major)?;
    let id = allocate_id(dest, started).await?;
    let file = format!("{BASE_FILE_STEM}{}", options.encoding.suffix());
    let mut command = pg_basebackup.command();
    clear_libpq_env(&mut command, server);
    // Its --verbose lines are read for the WAL range: in English whatever
    // the user's language.
    command.env("LC_ALL", "C").env("LC_MESSAGES", "C");
    command.args([
        "--pgdata=-",
        "--format=tar",
        "--wal-method=fetch",
        "--checkpoint=fast",
        "--verbose",
        "--no-password",
    ]);
    command.arg(format!("--label=pgharbor {id}"));
    let stored = store_program_output(
        dest,
        &id,
        &file,
        "pg_basebackup".to_owned(),
        command,
        &options.encoding,
    )
    .await;
    let result = match stored {
        Ok((stored, stderr)) => {
            let facts = BackupFacts {
                server: &facts,
                major,
                pg_basebackup_version: pg_basebackup.version.to_string(),
                file,
                encoding: &options.encoding,
            };
            finish(server, dest, &id, (started, clock), stored, &stderr, facts).await
        }
        Err(e) => Err(e),
    };
    removed_on_failure(dest, &id, result).await
}

/// What the manifest of a base backup records beside its WAL range.
struct BackupFacts<'a> {
    server: &'a ServerFacts,
    major: u32,
    pg_basebackup_version: String,
    file: String,
    encoding: &'a Encoding,
}

/// Writes the manifest of the stored base backup.
async fn finish(
    server: &ConnConfig,
    dest: &Destination,
    id: &str,
    started: (DateTime<Utc>, Instant),
    stored: pgharbor_backup::FileEntry,
    stderr: &str,
    facts: BackupFacts<'_>,
) -> Result<BackupReport> {
    let (start, end, timeline) = wal_range(stderr)?;
    let next_xid = next_xid(server).await?;
    let segment_size = facts.server.segment_size;
    let mut manifest = new_manifest(BackupKind::Base, id, started, vec![stored], facts.encoding);
    manifest.base = Some(BaseContent {
        server_version: facts.server.version.clone(),
        major: facts.major,
        pg_basebackup_version: facts.pg_basebackup_version,
        system_identifier: facts.server.system_identifier.clone(),
        timeline,
        start_lsn: start.to_string(),
        end_lsn: end.to_string(),
        start_wal: start.segment_name(timeline, segment_size),
        file: facts.file,
        wal_segment_size: segment_size,
        next_xid: Some(next_xid),
    });
    write_manifest(dest, manifest).await
}

/// The start and end positions and the timeline `pg_basebackup --verbose`
/// reports (`write-ahead log start point: 0/2000028 on timeline 1`,
/// `write-ahead log end point: 0/2000100`).
pub(crate) fn wal_range(stderr: &str) -> Result<(Lsn, Lsn, u32)> {
    let after = |marker: &str| {
        stderr.lines().find_map(|line| {
            line.split_once(marker)
                .map(|(_, rest)| rest.trim().to_owned())
        })
    };
    let start_line = after("write-ahead log start point:");
    let end_line = after("write-ahead log end point:");
    let parsed = start_line.zip(end_line).and_then(|(start, end)| {
        let (start, timeline) = start.split_once(" on timeline ")?;
        Some((
            Lsn::parse(start)?,
            Lsn::parse(&end)?,
            timeline.trim().parse().ok()?,
        ))
    });
    parsed.ok_or_else(|| {
        BackupError::new(
            BackupErrorKind::Tool,
            format!(
                "pg_basebackup did not report its WAL start and end points (its output: {})",
                stderr.lines().collect::<Vec<_>>().join(" | ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_range_is_read_from_pg_basebackup_verbose_output() {
        let out = "pg_basebackup: initiating base backup, waiting for checkpoint to complete\n\
                   pg_basebackup: checkpoint completed\n\
                   pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1\n\
                   pg_basebackup: write-ahead log end point: 0/2000100\n\
                   pg_basebackup: base backup completed\n";
        let (start, end, timeline) = wal_range(out).unwrap();
        assert_eq!(start.to_string(), "0/2000028");
        assert_eq!(end.to_string(), "0/2000100");
        assert_eq!(timeline, 1);
        let e = wal_range("pg_basebackup: checkpoint completed").unwrap_err();
        assert!(e.message().contains("did not report its WAL start"), "{e}");
    }
}
