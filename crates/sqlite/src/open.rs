//! Opening a database read-only and sharing one read snapshot between threads.

use crate::error::{Result, SqliteError, SqliteErrorKind};
use crate::snapshot_ffi::Snapshot;
use rusqlite::{Connection, OpenFlags};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MAGIC: &[u8; 16] = b"SQLite format 3\0";
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A read-only view of a database frozen at one moment.
///
/// The leader connection holds a read transaction for the snapshot's lifetime.
/// [`SourceSnapshot::follower`] opens further connections that see exactly the
/// same data: in WAL mode through SQLite's snapshot API; in rollback-journal
/// mode because the leader's shared lock keeps any writer from committing.
pub struct SourceSnapshot {
    path: PathBuf,
    leader: Connection,
    wal_snapshot: Option<Snapshot>,
}

impl SourceSnapshot {
    /// Open `path` read-only and begin the snapshot.
    pub fn open(path: &Path) -> Result<Self> {
        check_file(path)?;
        let leader = open_connection(path)?;
        let journal: String = leader
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| SqliteError::from_sqlite(e, "reading the journal mode").with_path(path))?;
        begin_read(&leader, path)?;
        let wal_snapshot = if journal.eq_ignore_ascii_case("wal") {
            Some(Snapshot::get(&leader).map_err(|rc| {
                SqliteError::new(
                    SqliteErrorKind::Other,
                    format!("could not take a WAL snapshot (SQLite code {rc})"),
                )
                .with_path(path)
            })?)
        } else {
            None
        };
        Ok(SourceSnapshot {
            path: path.to_path_buf(),
            leader,
            wal_snapshot,
        })
    }

    /// The leader connection (inside the snapshot).
    pub fn connection(&self) -> &Connection {
        &self.leader
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new connection reading the same snapshot, for another thread.
    pub fn follower(&self) -> Result<Connection> {
        let conn = open_connection(&self.path)?;
        conn.execute_batch("BEGIN")
            .map_err(|e| SqliteError::from_sqlite(e, "beginning a read transaction"))?;
        if let Some(snap) = &self.wal_snapshot {
            snap.open_on(&conn).map_err(|rc| {
                SqliteError::new(
                    SqliteErrorKind::Other,
                    format!("could not open the shared WAL snapshot (SQLite code {rc})"),
                )
                .with_path(&self.path)
            })?;
        }
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .map_err(|e| SqliteError::from_sqlite(e, "starting a read transaction"))?;
        Ok(conn)
    }
}

fn check_file(path: &Path) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            SqliteErrorKind::NotFound
        } else {
            SqliteErrorKind::Io
        };
        let message = if kind == SqliteErrorKind::NotFound {
            "no such file: check the path (a SQLite source is a file, e.g. webui.db)".to_string()
        } else {
            format!("cannot read the file: {e}")
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
        return Err(SqliteError::new(SqliteErrorKind::NotSqlite, "the file is empty").with_path(path));
    }
    if read < 16 || &header != MAGIC {
        return Err(SqliteError::new(
            SqliteErrorKind::NotSqlite,
            "not an SQLite database (no \"SQLite format 3\" header); if it is encrypted \
             (SQLCipher, SEE), export a decrypted copy first",
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
    // Never let this connection change the file: no checkpoints on close.
    conn.execute_batch("PRAGMA query_only = 1")
        .map_err(|e| SqliteError::from_sqlite(e, "setting query_only").with_path(path))?;
    Ok(conn)
}

fn begin_read(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("BEGIN")
        .and_then(|_| conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)))
        .map(|_| ())
        .map_err(|e| SqliteError::from_sqlite(e, "reading the schema").with_path(path))
}
