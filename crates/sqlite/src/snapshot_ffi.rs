//! The two SQLite snapshot calls rusqlite does not wrap (WAL mode only).
#![allow(unsafe_code)]

use rusqlite::{ffi, Connection};

/// An owned `sqlite3_snapshot`.
pub(crate) struct Snapshot(*mut ffi::sqlite3_snapshot);

// SAFETY: a snapshot handle is an opaque, immutable description of a WAL
// position; SQLite allows opening it from any connection on any thread.
unsafe impl Send for Snapshot {}
unsafe impl Sync for Snapshot {}

impl Snapshot {
    /// Record the snapshot of `conn`'s open read transaction.
    pub(crate) fn get(conn: &Connection) -> Result<Snapshot, i32> {
        let mut snap: *mut ffi::sqlite3_snapshot = std::ptr::null_mut();
        // SAFETY: handle() is a valid open connection; "main" is NUL-terminated.
        let rc = unsafe { ffi::sqlite3_snapshot_get(conn.handle(), c"main".as_ptr(), &mut snap) };
        if rc == ffi::SQLITE_OK {
            Ok(Snapshot(snap))
        } else {
            Err(rc)
        }
    }

    /// Make `conn`'s read transaction (begun, not yet started) read this snapshot.
    pub(crate) fn open_on(&self, conn: &Connection) -> Result<(), i32> {
        // SAFETY: both pointers are valid for the duration of the call.
        let rc = unsafe { ffi::sqlite3_snapshot_open(conn.handle(), c"main".as_ptr(), self.0) };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(rc)
        }
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // SAFETY: the pointer came from sqlite3_snapshot_get and is freed once.
        unsafe { ffi::sqlite3_snapshot_free(self.0) }
    }
}
