//! Redis backups: [`backup_redis`] fetches an RDB snapshot over the
//! replication protocol (pgharbor-rdb) and, in one pass, compresses,
//! encrypts, hashes and uploads it while the same bytes run through the
//! RDB structural check (CRC64 and a full parse, keys per database) whose
//! result goes into the manifest. [`restore_redis`] streams the file back
//! through age and zstd into a key-by-key `RESTORE … ABSTTL`; verification
//! (see [`verify`](crate::verify)) re-runs the structural check on the
//! stored file and can restore it into a scratch Redis.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pgharbor_objstore::Destination;
use pgharbor_rdb::{
    FetchOptions, FetchReport, Framing, RdbError, RdbErrorKind, RdbReader, RdbSummary, RedisUrl,
};
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_util::io::SyncIoBridge;

use crate::backup::{
    allocate_id, file_suffix, new_manifest, removed_on_failure, upload, write_manifest,
    BackupOptions, BackupReport,
};
use crate::encrypt::Decryption;
use crate::error::{BackupError, BackupErrorKind, Result};
use crate::manifest::{BackupKind, FileEntry, Manifest, RedisContent, RedisDatabase};
use crate::restore::load_good;
use crate::stream::{self, bridge, decode_into, Encoding, ErrorSlot, CHUNK};

/// Connecting to the Redis server, and waiting for its answers.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How to restore a Redis backup.
#[derive(Debug, Clone, Default)]
pub struct RedisRestoreOptions {
    /// `FLUSHALL` a target that holds keys instead of refusing it.
    pub flush: bool,
    /// The identities or passphrase of an encrypted backup.
    pub decryption: Option<Decryption>,
}

/// What [`restore_redis`] did.
#[derive(Debug, Clone, Serialize)]
pub struct RedisRestoreReport {
    /// The backup restored.
    pub id: String,
    /// Keys restored.
    pub keys_restored: u64,
    /// Keys skipped because they had expired by the time of the restore.
    pub keys_expired: u64,
    /// Keys restored per database number.
    pub databases: BTreeMap<u64, u64>,
    /// Function libraries loaded.
    pub functions: u64,
    /// Whether the target was flushed first.
    pub flushed: bool,
}

impl From<RdbError> for BackupError {
    fn from(e: RdbError) -> Self {
        let kind = match e.kind() {
            RdbErrorKind::InvalidInput | RdbErrorKind::Unsupported => BackupErrorKind::InvalidInput,
            RdbErrorKind::Unreachable | RdbErrorKind::Protocol => BackupErrorKind::Connection,
            RdbErrorKind::Refused => BackupErrorKind::Refused,
            RdbErrorKind::Query => BackupErrorKind::Query,
            RdbErrorKind::Corrupt | RdbErrorKind::Truncated | RdbErrorKind::Checksum => {
                BackupErrorKind::Integrity
            }
            RdbErrorKind::NotEmpty => BackupErrorKind::TargetNotEmpty,
            _ => BackupErrorKind::Io,
        };
        BackupError::new(kind, "").caused_by(e)
    }
}

/// Backs up the Redis server at `url` to `dest` as a new backup `<id>/`:
/// `dump.rdb.zst` (`.zst.age` with [`BackupOptions::encrypt`]), fetched the
/// way `redis-cli --rdb` does (replication handshake, sized or diskless
/// framing, AUTH/ACL, TLS), then `manifest.json` with the structural check's
/// key counts. [`BackupOptions::roles`] and `with_role_passwords` do not
/// apply. On failure the parts are deleted and no manifest is written.
pub async fn backup_redis(
    url: &RedisUrl,
    dest: &Destination,
    options: &BackupOptions,
) -> Result<BackupReport> {
    let (started, clock) = options.start()?;
    let id = allocate_id(dest, started).await?;
    let file = format!("dump.rdb{}", file_suffix(options.encrypt.as_ref()));
    let encoding = options.encoding();
    let result = match snapshot(url, dest, &id, &file, encoding.clone()).await {
        Ok((redis, stored)) => {
            let times = (started, clock);
            let mut manifest = new_manifest(BackupKind::Redis, &id, times, vec![stored], &encoding);
            manifest.redis = Some(redis);
            write_manifest(dest, manifest).await
        }
        Err(e) => Err(e),
    };
    removed_on_failure(dest, &id, result).await
}

/// One pass: the fetch writes into a [`Tee`] feeding both the compressing
/// upload and the structural check.
async fn snapshot(
    url: &RedisUrl,
    dest: &Destination,
    id: &str,
    file: &str,
    encoding: Encoding,
) -> Result<(RedisContent, FileEntry)> {
    let (to_store, from_fetch) = tokio::io::duplex(CHUNK);
    let (to_check, check_input) = tokio::io::duplex(CHUNK);
    let slot: ErrorSlot = Arc::default();
    let what = format!("the snapshot of {url}");
    let encoded = stream::encode_reader(bridge(from_fetch), what, encoding, slot.clone());
    let fetching = async {
        let mut tee = Tee::new(to_store, to_check);
        let fetched = pgharbor_rdb::fetch(url, &mut tee, &FetchOptions::default()).await;
        // Ends both streams; a consumer that already stopped has its own error.
        let _ = tee.shutdown().await;
        fetched
    };
    let (fetched, stored, checked) = tokio::join!(
        fetching,
        upload(dest, id, file, encoded, slot),
        pgharbor_rdb::check(check_input)
    );
    match (fetched, stored, checked) {
        (Ok(fetched), Ok(stored), Ok(summary)) => Ok((content(&summary, &fetched, file)?, stored)),
        // A failed write comes from a consumer that stopped: its error says why.
        (Err(e), _, _) if e.kind() != RdbErrorKind::Io => Err(e.into()),
        (_, Err(e), _) => Err(e),
        (_, _, Err(e)) => Err(BackupError::from(e).context(format!(
            "the snapshot from {url} failed its structural check"
        ))),
        (Err(e), _, _) => Err(e.into()),
    }
}

/// The manifest's section, from the check of the bytes fetched.
fn content(summary: &RdbSummary, fetched: &FetchReport, file: &str) -> Result<RedisContent> {
    if summary.size != fetched.bytes {
        return Err(BackupError::new(
            BackupErrorKind::Integrity,
            format!(
                "the snapshot has {} bytes but its RDB data ends after {}",
                fetched.bytes, summary.size
            ),
        ));
    }
    Ok(RedisContent {
        server_version: summary.redis_version().unwrap_or("unknown").to_owned(),
        rdb_version: summary.version,
        framing: match fetched.framing {
            Framing::Sized => "sized",
            Framing::Diskless => "diskless",
        }
        .to_owned(),
        rdb_size: fetched.bytes,
        rdb_sha256: fetched.sha256_hex(),
        databases: databases(summary),
        functions: summary.functions,
        file: file.to_owned(),
    })
}

fn databases(summary: &RdbSummary) -> Vec<RedisDatabase> {
    summary
        .databases
        .iter()
        .map(|(db, s)| RedisDatabase {
            db: *db,
            keys: s.keys,
            expires: s.expires,
        })
        .collect()
}

/// An `AsyncWrite` that writes everything to both `a` and `b`. Bytes `a`
/// took and `b` has not yet are held in `behind` (at most one write's
/// worth); the next write, flush or shutdown hands them to `b` first.
struct Tee<A, B> {
    a: A,
    b: B,
    behind: Vec<u8>,
}

impl<A, B> Tee<A, B> {
    fn new(a: A, b: B) -> Self {
        Tee {
            a,
            b,
            behind: Vec::new(),
        }
    }
}

impl<A: AsyncWrite + Unpin, B: AsyncWrite + Unpin> Tee<A, B> {
    fn poll_catch_up(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.behind.is_empty() {
            let n = ready!(Pin::new(&mut self.b).poll_write(cx, &self.behind))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.behind.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<A: AsyncWrite + Unpin, B: AsyncWrite + Unpin> AsyncWrite for Tee<A, B> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_catch_up(cx))?;
        let n = ready!(Pin::new(&mut this.a).poll_write(cx, buf))?;
        this.behind.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_catch_up(cx))?;
        ready!(Pin::new(&mut this.a).poll_flush(cx))?;
        Pin::new(&mut this.b).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_catch_up(cx))?;
        ready!(Pin::new(&mut this.a).poll_shutdown(cx))?;
        Pin::new(&mut this.b).poll_shutdown(cx)
    }
}

/// Restores Redis backup `id` (`latest` for the newest good one) from
/// `dest` into the server at `url`, key by key with TTLs (keys expired
/// since the backup are skipped). A target holding keys is refused, naming
/// its databases, unless [`RedisRestoreOptions::flush`].
pub async fn restore_redis(
    dest: &Destination,
    id: &str,
    url: &RedisUrl,
    options: &RedisRestoreOptions,
) -> Result<RedisRestoreReport> {
    let manifest = load_good(dest, id).await?;
    restore_snapshot(dest, &manifest, url, options)
        .await
        .map_err(|e| e.context(format!("restoring Redis backup {}", manifest.id)))
}

async fn restore_snapshot(
    dest: &Destination,
    manifest: &Manifest,
    url: &RedisUrl,
    options: &RedisRestoreOptions,
) -> Result<RedisRestoreReport> {
    let file = manifest.redis()?.file.clone();
    let rdb_options = pgharbor_rdb::RestoreOptions {
        flush: options.flush,
        ..Default::default()
    };
    let report = read_snapshot(
        manifest,
        dest,
        options.decryption.as_ref(),
        |input| async move {
            let mut reader = RdbReader::with_name(input, file).await?;
            pgharbor_rdb::restore(&mut reader, url, &rdb_options).await
        },
    )
    .await?;
    Ok(RedisRestoreReport {
        id: manifest.id.clone(),
        keys_restored: report.restored,
        keys_expired: report.expired,
        databases: report.databases,
        functions: report.functions,
        flushed: report.flushed,
    })
}

/// Streams the snapshot of `manifest` from `dest` through age (with
/// `decryption`) and zstd into `consume`, on a blocking thread. The
/// decoding's error wins over the consumer's (which then only saw the
/// stream end early).
async fn read_snapshot<T, F, Fut>(
    manifest: &Manifest,
    dest: &Destination,
    decryption: Option<&Decryption>,
    consume: F,
) -> Result<T>
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: Future<Output = pgharbor_rdb::Result<T>>,
{
    let file = &manifest.redis()?.file;
    if let (Some(kind), None) = (manifest.encryption, decryption) {
        return Err(BackupError::new(
            BackupErrorKind::InvalidInput,
            format!(
                "backup {} is encrypted ({kind:?}): give the age identity or passphrase",
                manifest.id
            ),
        ));
    }
    let stored = stream::stored_file(manifest, file)?;
    let download = dest.get_stream(&format!("{}/{file}", manifest.id)).await?;
    let download = bridge(download.into_reader());
    let (writer, reader) = tokio::io::duplex(CHUNK);
    let decryption = decryption.cloned();
    let decode = tokio::task::spawn_blocking(move || {
        decode_into(
            download,
            decryption.as_ref(),
            &mut SyncIoBridge::new(writer),
            &stored,
        )
    });
    let consumed = consume(reader).await;
    let decoded = decode.await.map_err(|e| {
        BackupError::new(BackupErrorKind::Io, format!("decoding {file} stopped")).caused_by(e)
    })?;
    match (consumed, decoded) {
        // `Tool`: the consumer stopped reading, its error is the one.
        (_, Err(e)) if e.kind() != BackupErrorKind::Tool => Err(e.context(format!("file {file}"))),
        (Err(e), _) => Err(e.into()),
        (Ok(value), _) => Ok(value),
    }
}

/// The Redis part of a verification: the structural check of the stored
/// file against the manifest and, with `restore_to`, a restore into that
/// (scratch) server, flushed first and after. Problems go to `problems`;
/// returns the number of databases restored and compared.
pub(crate) async fn verify_snapshot(
    dest: &Destination,
    manifest: &Manifest,
    decryption: Option<&Decryption>,
    restore_to: Option<&RedisUrl>,
    problems: &mut Vec<String>,
) -> Result<usize> {
    let content = manifest.redis()?;
    let before = problems.len();
    match read_snapshot(manifest, dest, decryption, pgharbor_rdb::check).await {
        Ok(summary) => compare_summary(content, &summary, problems),
        Err(e) => problems.push(format!("file {}: {}", content.file, crate::chain_text(&e))),
    }
    match restore_to {
        Some(url) if problems.len() == before => {
            test_restore(dest, manifest, url, decryption, problems).await
        }
        _ => Ok(0),
    }
}

fn compare_summary(content: &RedisContent, summary: &RdbSummary, problems: &mut Vec<String>) {
    let file = &content.file;
    if summary.size != content.rdb_size {
        problems.push(format!(
            "file {file}: the snapshot has {} bytes, the manifest says {}",
            summary.size, content.rdb_size
        ));
    }
    let found = databases(summary);
    if found != content.databases {
        problems.push(format!(
            "file {file}: the snapshot holds {}, the manifest says {}",
            describe(&found),
            describe(&content.databases)
        ));
    }
}

/// `db0: 3 keys (1 with a TTL), db1: …`.
fn describe(databases: &[RedisDatabase]) -> String {
    if databases.is_empty() {
        return "no keys".to_owned();
    }
    let parts: Vec<String> = databases
        .iter()
        .map(|d| format!("db{}: {} keys ({} with a TTL)", d.db, d.keys, d.expires))
        .collect();
    parts.join(", ")
}

/// Restores into `url` (flushing it), compares its `INFO keyspace` with the
/// manifest (keys that expired since the backup excused), then `FLUSHALL`.
async fn test_restore(
    dest: &Destination,
    manifest: &Manifest,
    url: &RedisUrl,
    decryption: Option<&Decryption>,
    problems: &mut Vec<String>,
) -> Result<usize> {
    let options = RedisRestoreOptions {
        flush: true,
        decryption: decryption.cloned(),
    };
    let restored = restore_snapshot(dest, manifest, url, &options).await;
    let mut conn = pgharbor_rdb::client::open_authenticated(url, TIMEOUT)
        .await
        .map_err(|e| BackupError::from(e).context(url))?;
    let compared = match restored {
        Ok(report) => {
            let keyspace = keyspace(&conn.info().await.map_err(BackupError::from)?);
            compare_restored(manifest.redis()?, &keyspace, report.keys_expired, problems)
        }
        Err(e) => {
            problems.push(format!("restoring into {url}: {}", crate::chain_text(&e)));
            0
        }
    };
    let flushed = conn.command(&[b"FLUSHALL"]).await?;
    if let Some(e) = flushed.error() {
        return Err(BackupError::new(
            BackupErrorKind::Query,
            format!("{url}: FLUSHALL after the test restore failed: {e}"),
        ));
    }
    Ok(compared)
}

fn compare_restored(
    content: &RedisContent,
    keyspace: &BTreeMap<u64, u64>,
    expired: u64,
    problems: &mut Vec<String>,
) -> usize {
    for d in &content.databases {
        let restored = keyspace.get(&d.db).copied().unwrap_or(0);
        if restored > d.keys || restored + expired < d.keys {
            problems.push(format!(
                "database {}: the manifest says {} keys, the restored server has {restored} ({expired} expired since the backup)",
                d.db, d.keys
            ));
        }
    }
    content.databases.len()
}

/// Keys per database from `INFO`'s keyspace section (`db0:keys=3,expires=1,…`).
fn keyspace(info: &pgharbor_rdb::Info) -> BTreeMap<u64, u64> {
    let Some(section) = info.sections.get("keyspace") else {
        return BTreeMap::new();
    };
    section
        .iter()
        .filter_map(|(db, fields)| {
            let db = db.strip_prefix("db")?.parse().ok()?;
            let keys = fields
                .split(',')
                .find_map(|kv| kv.strip_prefix("keys="))?
                .parse()
                .ok()?;
            Some((db, keys))
        })
        .collect()
}
