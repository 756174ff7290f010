//! Opening a database read-only, with every reader in one consistent snapshot.

use crate::error::{Result, SqliteError, SqliteErrorKind};
use rusqlite::{Connection, OpenFlags};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

const MAGIC: &[u8; 16] = b"SQLite format 3\0";
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to retry when the application commits while readers are starting.
const SNAPSHOT_ATTEMPTS: usize = 50;

/// A read-only view of a database frozen at one moment, shared by several
/// connections (one per reader thread).
///
/// Every connection holds an open read transaction for the snapshot's lifetime.
/// They are all started between two readings of `PRAGMA data_version` on a
/// separate watcher connection; if the application committed in between, the
/// transactions are restarted. Equal versions prove no commit happened while
/// they began, so all of them read the same database state — in WAL mode and in
/// rollback-journal mode alike, without ever writing to the file.
pub struct SourceSnapshot {
    path: PathBuf,
    leader: Connection,
    spare: Mutex<Vec<Connection>>,
    /// A connection outside the snapshot and its data version when the
    /// snapshot was taken, to tell whether the application committed since.
    watcher: Mutex<(Connection, i64)>,
}

impl SourceSnapshot {
    /// Open `path` read-only with a leader connection plus `readers` spare
    /// connections for reader threads, all in one snapshot.
    pub fn open(path: &Path, readers: usize) -> Result<Self> {
        check_file(path)?;
        let watcher = open_connection(path)?;
        let mut connections: Vec<Connection> = (0..=readers)
            .map(|_| open_connection(path))
            .collect::<Result<_>>()?;
        for _ in 0..SNAPSHOT_ATTEMPTS {
            let before = data_version(&watcher, path)?;
            for conn in &connections {
                begin_read(conn, path)?;
            }
            if data_version(&watcher, path)? == before {
                let leader = connections.remove(0);
                return Ok(SourceSnapshot {
                    path: path.to_path_buf(),
                    leader,
                    spare: Mutex::new(connections),
                    watcher: Mutex::new((watcher, before)),
                });
            }
            for conn in &connections {
                conn.execute_batch("ROLLBACK").map_err(|e| {
                    SqliteError::from_sqlite(e, "restarting a read transaction").with_path(path)
                })?;
            }
        }
        Err(SqliteError::new(
            SqliteErrorKind::Locked,
            format!("the database changed during each of {SNAPSHOT_ATTEMPTS} attempts to take a consistent snapshot; pause the application's writes briefly, or copy the file first"),
        )
        .with_path(path))
    }

    /// Whether the application committed to the file since the snapshot
    /// was taken (the snapshot itself never changes).
    pub fn changed_since_taken(&self) -> Result<bool> {
        let watcher = self.watcher.lock().expect("watcher lock");
        Ok(data_version(&watcher.0, &self.path)? != watcher.1)
    }

    /// The leader connection (inside the snapshot).
    pub fn connection(&self) -> &Connection {
        &self.leader
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Give connections taken with [`SourceSnapshot::take_readers`] back for later use.
    pub fn return_readers(&self, readers: Vec<Connection>) {
        self.spare.lock().expect("reader pool lock").extend(readers);
    }

    /// Take `n` connections inside the snapshot, for reader threads.
    pub fn take_readers(&self, n: usize) -> Result<Vec<Connection>> {
        let mut spare = self.spare.lock().expect("reader pool lock");
        if spare.len() < n {
            return Err(SqliteError::new(
                SqliteErrorKind::Other,
                format!(
                    "{n} reader connection(s) requested but only {} left in the snapshot",
                    spare.len()
                ),
            ));
        }
        let at = spare.len() - n;
        Ok(spare.split_off(at))
    }
}

fn data_version(conn: &Connection, path: &Path) -> Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
        .map_err(|e| SqliteError::from_sqlite(e, "reading the data version").with_path(path))
}

/// Check that `path` is a readable file starting with SQLite's header,
/// naming the problem otherwise (missing, a directory, empty, not SQLite).
pub fn check_file(path: &Path) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        let (kind, message) = if e.kind() == std::io::ErrorKind::NotFound {
            (
                SqliteErrorKind::NotFound,
                "no such file: check the path (a SQLite source is a file, e.g. webui.db)"
                    .to_string(),
            )
        } else {
            (SqliteErrorKind::Io, format!("cannot read the file: {e}"))
        };
        SqliteError::new(kind, message).with_path(path)
    })?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(SqliteError::new(
            SqliteErrorKind::NotSqlite,
            "is a directory, not an SQLite database file",
        )
        .with_path(path));
    }
    let mut header = [0u8; 16];
    let read = file.read(&mut header).unwrap_or(0);
    if read == 0 {
        return Err(
            SqliteError::new(SqliteErrorKind::NotSqlite, "the file is empty").with_path(path),
        );
    }
    if read < 16 || &header != MAGIC {
        return Err(SqliteError::new(
            SqliteErrorKind::NotSqlite,
            "not an SQLite database (no \"SQLite format 3\" header); if it is encrypted (SQLCipher, SEE), export a decrypted copy first",
        )
        .with_path(path));
    }
    Ok(())
}

fn open_connection(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| SqliteError::from_sqlite(e, "opening read-only").with_path(path))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| SqliteError::from_sqlite(e, "setting the busy timeout").with_path(path))?;
    conn.execute_batch("PRAGMA query_only = 1")
        .map_err(|e| SqliteError::from_sqlite(e, "setting query_only").with_path(path))?;
    Ok(conn)
}

/// Begin a read transaction and make it take its snapshot now.
fn begin_read(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("BEGIN")
        .and_then(|_| {
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|_| ())
        .map_err(|e| SqliteError::from_sqlite(e, "reading the schema").with_path(path))
}
