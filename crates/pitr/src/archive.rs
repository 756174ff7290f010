//! [`run_archiver`]: continuous WAL archiving with the real
//! `pg_receivewal`, over a physical replication slot, into a local spool
//! directory; every complete WAL file there is stored in the archive
//! ([`crate::walstore`]) and then removed from the spool.
//!
//! The slot makes the server keep every WAL file the archiver has not
//! received, so a stopped or killed archiver loses nothing: restarted, it
//! resumes from the slot and from the partial segment left in the spool
//! (`pg_receivewal` continues a `.partial` file). The cost is that WAL
//! piles up in the server's `pg_wal` while the archiver is down; the
//! documentation (docs/pitr.md) says how to watch it.
//!
//! Stops cleanly when `shutdown` completes (SIGTERM, Ctrl-C): ends
//! `pg_receivewal` with SIGTERM, stores what is complete, returns.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pgharbor_backup::{chain_text, BackupError, BackupErrorKind, Encoding, Result};
use pgharbor_conn::ConnConfig;
use pgharbor_objstore::Destination;
use pgharbor_pgtools::{clear_libpq_env, Program, Version};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::base::server_facts;
use crate::guard::{self, GuardAction, SlotGuard, SlotState};
use crate::lsn::{is_archived_name, Lsn, Segment};
use crate::state::{
    newest_segment, publish, read_archiver_status, ArchiverStatus, ARCHIVER_STATUS,
};
use crate::walstore::{archive_file, archived_names, entry};

/// How to archive.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// Where `pg_receivewal` writes (created `0700`; keep it across
    /// restarts: it holds the segment being received).
    pub spool: PathBuf,
    /// The replication slot (created when missing).
    pub slot: String,
    /// zstd level and age encryption.
    pub encoding: Encoding,
    /// How often the spool is looked at for complete files.
    pub poll: Duration,
    /// How long to wait before restarting a `pg_receivewal` that stopped
    /// (the server restarted, the network failed).
    pub restart_delay: Duration,
    /// How often the slot is looked at ([`crate::guard`]).
    pub guard_every: Duration,
    /// What to do when the slot holds back too much WAL.
    pub guard: SlotGuard,
    /// Drop and re-create a slot the server has invalidated (`wal_status =
    /// 'lost'`) and go on; without it the archiver stops, saying so.
    pub recreate_lost_slot: bool,
}

/// What the archiver has done so far, for logs and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArchiveProgress {
    /// WAL files stored since the start.
    pub files_archived: u64,
    /// The last one stored.
    pub last_archived: Option<String>,
    /// When it was stored.
    pub last_archived_at: Option<DateTime<Utc>>,
    /// Times storing a file or `pg_receivewal` failed.
    pub failures: u64,
    /// The last failure's message.
    pub last_failure: Option<String>,
    /// The slot, the archive's lag and the spool at the last look.
    pub slot: Option<SlotState>,
    /// Looks that found the slot over the alert threshold.
    pub guard_alerts: u64,
    /// Times the slot was dropped over the drop threshold (or re-created
    /// once lost).
    pub slot_drops: u64,
    /// Whether the server has invalidated the slot.
    pub slot_lost: bool,
    /// When the server was first seen past the archive's end ([`crate::state`]).
    pub lag_since: Option<DateTime<Utc>>,
    /// Whether the lag in seconds is an upper bound: it runs from the
    /// previous archiver's last report ([`crate::state`], after a restart).
    pub lag_is_bound: bool,
    /// The last look: when, and the server's WAL position then.
    #[serde(skip)]
    pub last_look: Option<(DateTime<Utc>, u64)>,
    /// The server's positions seen while the archive is behind.
    #[serde(skip)]
    pub positions_seen: Vec<(DateTime<Utc>, u64)>,
    /// The position seeded from the previous archiver's last report when
    /// it had not seen the server past the archive's end (a bound).
    #[serde(skip)]
    pub seeded_bound: Option<(DateTime<Utc>, u64)>,
}

/// Shared view of the archiver's progress.
pub type SharedProgress = Arc<Mutex<ArchiveProgress>>;

/// Archives `server`'s WAL to `dest` until `shutdown` completes; returns
/// the progress at the end. Fails at the start when the server cannot
/// stream WAL, the slot cannot be created or `pg_receivewal` is missing;
/// later failures (a lost connection, a failed upload) are retried and
/// counted in `progress`.
pub async fn run_archiver(
    server: &ConnConfig,
    dest: &Destination,
    options: &ArchiveOptions,
    progress: SharedProgress,
    shutdown: impl Future<Output = ()>,
) -> Result<ArchiveProgress> {
    let facts = server_facts(server).await?;
    crate::walstore::claim(dest, &facts.system_identifier).await?;
    let major = Version::from_server_version_num(facts.version_num).major;
    let receivewal = pgharbor_pgtools::find("pg_receivewal", major)?;
    create_private_dir(&options.spool)?;
    create_slot(&receivewal, server, &options.slot).await?;
    resume_from_archive(dest, facts.segment_size, &progress).await?;
    let archiver = Archiver {
        receivewal: &receivewal,
        server,
        dest,
        options,
        segment_size: facts.segment_size,
        progress: &progress,
    };
    tokio::pin!(shutdown);
    loop {
        archive_spool(dest, options, &progress).await;
        // A look before pg_receivewal starts: a slot that held back WAL
        // while no archiver ran is judged before it is caught up.
        archiver.look_and_act(None).await?;
        let mut child = start_receiver(&receivewal, server, options)?;
        let mut next_look = tokio::time::Instant::now() + options.guard_every;
        let stopped = loop {
            if tokio::time::Instant::now() >= next_look {
                next_look = tokio::time::Instant::now() + options.guard_every;
                if archiver.look_and_act(Some(&mut child)).await? {
                    break true;
                }
            }
            tokio::select! {
                () = &mut shutdown => break false,
                status = child.wait() => {
                    let message = format!(
                        "pg_receivewal stopped ({}); restarting it in {} s",
                        status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                        options.restart_delay.as_secs()
                    );
                    failed(&progress, message);
                    break true;
                }
                () = tokio::time::sleep(options.poll) => {
                    archive_spool(dest, options, &progress).await;
                }
            }
        };
        if !stopped {
            stop_receiver(&mut child).await;
            archive_spool(dest, options, &progress).await;
            return Ok(archiver.stopped().await);
        }
        tokio::select! {
            () = &mut shutdown => {
                archive_spool(dest, options, &progress).await;
                return Ok(archiver.stopped().await);
            }
            () = tokio::time::sleep(options.restart_delay) => {}
        }
    }
}

/// After a restart, the newest file the archive holds is where it stands
/// (the lag is measured from there), and the previous archiver's last
/// report says since when the server may be past it ([`seed_positions`]).
async fn resume_from_archive(
    dest: &Destination,
    segment_size: u64,
    progress: &SharedProgress,
) -> Result<()> {
    let names = archived_names(dest).await?;
    let Some((segment, name)) = newest_segment(&names, segment_size) else {
        return Ok(());
    };
    let archived_at = entry(dest, &name).await?.map(|e| e.archived_at);
    let previous = read_archiver_status(dest).await.ok().flatten();
    let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
    p.last_archived = Some(name);
    p.last_archived_at = archived_at;
    if let Some(previous) = previous {
        seed_positions(&mut p, &previous, (segment.number + 1) * segment_size);
    }
    Ok(())
}

/// Seeds the positions seen from the previous archiver's last report: its
/// last look when it saw the server past the archive's end `through` (the
/// lag runs from then at the latest); otherwise the server went past it
/// after that report, at a moment no one saw, and the report's time is
/// taken as the start: the lag in seconds is then an upper bound, flagged
/// until the archive catches up or a look finds the server not past it.
pub(crate) fn seed_positions(p: &mut ArchiveProgress, previous: &ArchiverStatus, through: u64) {
    let seen = previous
        .looked_at
        .zip(previous.server_lsn.as_deref().and_then(Lsn::parse));
    match seen {
        Some((at, lsn)) if lsn.0 > through => p.positions_seen = vec![(at, lsn.0)],
        _ => {
            let bound = (previous.updated_at, through + 1);
            p.positions_seen = vec![bound];
            p.seeded_bound = Some(bound);
        }
    }
}

/// What one archiver run works with.
struct Archiver<'a> {
    receivewal: &'a Program,
    server: &'a ConnConfig,
    dest: &'a Destination,
    options: &'a ArchiveOptions,
    segment_size: u64,
    progress: &'a SharedProgress,
}

impl Archiver<'_> {
    /// Looks at the slot, publishes the state and does what the guard
    /// says: stops `child` (when running) and re-creates the slot over the
    /// drop threshold or once lost when told to (true: restart the
    /// receiver), or ends the run with an error for a lost slot.
    async fn look_and_act(&self, child: Option<&mut tokio::process::Child>) -> Result<bool> {
        let action = look(self.server, self.options, self.segment_size, self.progress).await;
        self.publish(true).await;
        let slot = &self.options.slot;
        let why = match action {
            GuardAction::Continue => return Ok(false),
            GuardAction::DropSlot => format!(
                "replication slot \"{slot}\" held back more WAL than the drop threshold and was \
                 dropped"
            ),
            GuardAction::SlotLost if self.options.recreate_lost_slot => format!(
                "replication slot \"{slot}\" was lost (the server invalidated it and removed \
                 WAL the archive had not received) and was re-created"
            ),
            GuardAction::SlotLost => return Err(self.lost(child).await),
        };
        if let Some(child) = child {
            stop_receiver(child).await;
        }
        drop_and_recreate(
            self.receivewal,
            self.server,
            self.options,
            self.progress,
            &why,
        )
        .await?;
        self.publish(true).await;
        Ok(true)
    }

    /// The slot is lost: stops, stores what is complete, publishes it and
    /// says what to do.
    async fn lost(&self, child: Option<&mut tokio::process::Child>) -> BackupError {
        if let Some(child) = child {
            stop_receiver(child).await;
        }
        archive_spool(self.dest, self.options, self.progress).await;
        let slot = &self.options.slot;
        let message = format!(
            "replication slot \"{slot}\" is lost (pg_replication_slots.wal_status = 'lost'): \
             the server removed WAL the archive had not received (max_slot_wal_keep_size), so \
             the archive has a gap after {} and no restore crosses it. Take a new base backup \
             (`pgharbor base-backup`) to start a new restorable range, and start the archiver \
             with --recreate-lost-slot to drop and re-create the slot",
            self.progress
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .last_archived
                .as_deref()
                .unwrap_or("its newest WAL file")
        );
        failed(self.progress, message.clone());
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .slot_lost = true;
        self.publish(false).await;
        BackupError::new(BackupErrorKind::InvalidInput, message)
    }

    /// Publishes the state; the run goes on when it cannot.
    async fn publish(&self, running: bool) {
        let status = {
            let p = self.progress.lock().unwrap_or_else(|p| p.into_inner());
            ArchiverStatus {
                updated_at: Utc::now(),
                look_every_seconds: self.options.guard_every.as_secs_f64(),
                running,
                slot: self.options.slot.clone(),
                files_archived: p.files_archived,
                failures: p.failures,
                last_failure: p.last_failure.clone(),
                slot_lost: p.slot_lost,
                archived_through: p
                    .last_archived
                    .as_deref()
                    .and_then(|name| Segment::parse(name, self.segment_size))
                    .map(|s| Lsn((s.number + 1) * self.segment_size).to_string()),
                lag_since: p.lag_since,
                looked_at: p.last_look.map(|(t, _)| t),
                server_lsn: p.last_look.map(|(_, lsn)| Lsn(lsn).to_string()),
                lag_bytes: p.slot.as_ref().map(|s| s.lag_bytes),
                lag_seconds: p.slot.as_ref().and_then(|s| s.lag_seconds),
                lag_is_bound: p.lag_is_bound,
            }
        };
        if let Err(e) = publish(self.dest, &status).await {
            tracing::warn!("writing {ARCHIVER_STATUS}: {}", chain_text(&e));
        }
    }

    /// The progress at the end, published as stopped.
    async fn stopped(&self) -> ArchiveProgress {
        self.publish(false).await;
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The guard's look at the slot; a failed look is counted, never fatal.
async fn look(
    server: &ConnConfig,
    options: &ArchiveOptions,
    segment_size: u64,
    progress: &SharedProgress,
) -> GuardAction {
    let looked = guard::look(
        server,
        &options.slot,
        &options.spool,
        segment_size,
        options.guard,
        progress,
    )
    .await;
    looked.unwrap_or_else(|e| {
        failed(
            progress,
            format!("looking at the replication slot: {}", chain_text(&e)),
        );
        GuardAction::Continue
    })
}

/// Over the drop threshold (or lost, when told): the slot goes (the server
/// may delete the WAL it held), and a new one starts from the server's
/// current position — the archive has a gap, said loudly (`why`) and counted.
async fn drop_and_recreate(
    receivewal: &Program,
    server: &ConnConfig,
    options: &ArchiveOptions,
    progress: &SharedProgress,
    why: &str,
) -> Result<()> {
    guard::drop_slot(server, &options.slot).await?;
    guard::clear_partial(&options.spool);
    create_slot(receivewal, server, &options.slot).await?;
    progress
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .slot_drops += 1;
    {
        let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
        p.slot_lost = false;
        p.positions_seen.clear();
    }
    failed(
        progress,
        format!("{why}: the archive has a gap from here on; take a new base backup"),
    );
    Ok(())
}

fn failed(progress: &SharedProgress, message: String) {
    tracing::warn!("{message}");
    let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
    p.failures += 1;
    p.last_failure = Some(message);
}

/// Creates `dir` (and its parents) readable by its owner only. A `dir`
/// that exists must be a directory (not a link) of this user, which is then
/// made private too.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
    let creating = format!("creating directory {}", dir.display());
    let failed = |e: std::io::Error| BackupError::io(&creating, e);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    let meta = std::fs::symlink_metadata(dir).map_err(failed)?;
    if !meta.is_dir() || meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(BackupError::new(
            BackupErrorKind::Io,
            format!("{creating}: it exists and is not a directory of this user"),
        ));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)
}

/// `pg_receivewal --create-slot --if-not-exists`.
async fn create_slot(receivewal: &Program, server: &ConnConfig, slot: &str) -> Result<()> {
    let mut command = receivewal.command();
    clear_libpq_env(&mut command, server);
    command.args(["--create-slot", "--if-not-exists", "--no-password"]);
    command.arg(format!("--slot={slot}"));
    let output = tokio::process::Command::from(command)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| tool_error("starting pg_receivewal".to_owned()).caused_by(e))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(tool_error(format!(
        "creating replication slot \"{slot}\" failed ({}): {}. The user needs the REPLICATION \
         attribute, pg_hba.conf a `replication` line for it, and the server free \
         max_wal_senders and max_replication_slots",
        output.status,
        stderr.trim()
    )))
}

fn tool_error(message: String) -> BackupError {
    BackupError::new(BackupErrorKind::Tool, message)
}

/// Starts `pg_receivewal` into the spool; its messages go to the log.
fn start_receiver(
    receivewal: &Program,
    server: &ConnConfig,
    options: &ArchiveOptions,
) -> Result<tokio::process::Child> {
    let mut command = receivewal.command();
    clear_libpq_env(&mut command, server);
    command.arg("--directory").arg(&options.spool);
    command.args(["--no-loop", "--no-password", "--verbose"]);
    command.arg(format!("--slot={}", options.slot));
    let mut child = tokio::process::Command::from(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| tool_error("starting pg_receivewal".to_owned()).caused_by(e))?;
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!("{line}");
            }
        });
    }
    Ok(child)
}

/// Ends `pg_receivewal` with SIGTERM (it closes its files) and waits.
async fn stop_receiver(child: &mut tokio::process::Child) {
    if let Some(pid) = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32))
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let _ = child.wait().await;
}

/// Stores every complete WAL file in the spool, oldest first, removing
/// each once stored; a failure is counted and the file left for the next
/// round.
async fn archive_spool(dest: &Destination, options: &ArchiveOptions, progress: &SharedProgress) {
    let names = match complete_files(&options.spool) {
        Ok(names) => names,
        Err(e) => return failed(progress, e),
    };
    for name in names {
        let path = options.spool.join(&name);
        match archive_file(dest, &name, &path, &options.encoding).await {
            Ok(entry) => {
                if let Err(e) = std::fs::remove_file(&path) {
                    failed(
                        progress,
                        format!("removing {} from the spool: {e}", path.display()),
                    );
                }
                tracing::info!("archived WAL file {name}");
                let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
                p.files_archived += 1;
                p.last_archived = Some(name);
                p.last_archived_at = Some(entry.archived_at);
            }
            Err(e) => {
                failed(
                    progress,
                    format!("archiving WAL file {name}: {}", chain_text(&e)),
                );
                return;
            }
        }
    }
}

/// The complete WAL files in `spool`, sorted (history files before the
/// segments of their timeline).
fn complete_files(spool: &Path) -> std::result::Result<Vec<String>, String> {
    let entries = std::fs::read_dir(spool)
        .map_err(|e| format!("reading the spool {}: {e}", spool.display()))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| is_archived_name(name))
        .collect();
    names.sort_by_key(|name| {
        (
            name.get(..8).map(str::to_owned),
            !name.ends_with(".history"),
            name.clone(),
        )
    });
    Ok(names)
}
