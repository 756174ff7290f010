//! Opening a store: one SQLite snapshot, the live collections, and each
//! collection's vector locations; later, checking nothing moved underneath.

use crate::catalog::{self, Entry};
use crate::error::{ChromaError, ErrorKind, Result, ResultExt};
use crate::reader::{self, Shared, StoreReader};
use crate::schema::Schema;
use crate::vectors::{self, CollectionVectors};
use crate::wal::{LogTail, TailStart};
use crate::Collection;
use pgharbor_sqlite::open::SourceSnapshot;
use pgharbor_sqlite::{SqliteError, SqliteErrorKind};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Name of Chroma's database file inside the persistent directory.
const DB_FILE: &str = "chroma.sqlite3";
/// HNSW files whose size and mtime must not change while reading.
const WATCHED: [&str; 4] = [
    "header.bin",
    "data_level0.bin",
    "length.bin",
    "index_metadata.pickle",
];
/// How long [`Store::check_unchanged`] waits for Chroma's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Size and mtime of a file, None when absent.
type Stamp = Option<(u64, SystemTime)>;

/// What [`Store::check_unchanged`] compares for one collection.
#[derive(Debug)]
struct Watch {
    vector_segment: String,
    table_position: Option<i64>,
    files: Vec<(PathBuf, Stamp)>,
}

/// An opened store: one consistent read snapshot.
pub struct Store {
    dir: PathBuf,
    snapshot: SourceSnapshot,
    schema: Schema,
    collections: Vec<Collection>,
    watches: Vec<Watch>,
    shared: Arc<Shared>,
    pool: Arc<Mutex<Vec<Connection>>>,
    readers: usize,
}

impl Store {
    /// Open a Chroma directory (or its `chroma.sqlite3`) read-only, with
    /// `readers` extra connections for [`Store::reader`].
    pub fn open(path: &Path, readers: usize) -> Result<Store> {
        let (dir, db) = locate(path)?;
        let snapshot = SourceSnapshot::open(&db, readers).map_err(from_sqlite)?;
        let conn = snapshot.connection();
        let schema = Schema::read(conn).map_err(|e| e.with_file(&db))?;
        let opened = catalog::list(conn, &schema)?
            .into_iter()
            .map(|entry| open_collection(conn, &schema, &dir, entry))
            .collect::<Result<Vec<_>>>()?;
        let tails = replay_log(conn, &opened)?;
        let mut collections = Vec::new();
        let mut vectors = Vec::new();
        let mut watches = Vec::new();
        for (opened, tail) in opened.into_iter().zip(tails) {
            let (collection, collection_vectors, watch) = finish_collection(conn, opened, tail)?;
            collections.push(collection);
            vectors.push(collection_vectors);
            watches.push(watch);
        }
        let pool = snapshot.take_readers(readers).map_err(from_sqlite)?;
        Ok(Store {
            dir,
            snapshot,
            shared: Arc::new(Shared::new(vectors, &schema)),
            schema,
            collections,
            watches,
            pool: Arc::new(Mutex::new(pool)),
            readers,
        })
    }

    /// The persistent directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Live collections, in a stable order (tenant, database, name).
    pub fn collections(&self) -> &[Collection] {
        &self.collections
    }

    /// A reader for another thread, inside the same snapshot. Each reader
    /// holds one of the `readers` connections reserved at open until dropped.
    pub fn reader(&self) -> Result<StoreReader> {
        let conn = reader::take(&self.pool, self.readers)?;
        Ok(StoreReader::new(
            conn,
            Arc::clone(&self.pool),
            Arc::clone(&self.shared),
        ))
    }

    /// Check nothing changed on disk since open (HNSW files, persisted positions).
    pub fn check_unchanged(&self) -> Result<()> {
        let db = self.snapshot.path();
        let conn = fresh_connection(db)?;
        for (collection, watch) in self.collections.iter().zip(&self.watches) {
            check_watch(&conn, self.schema.max_seq_id, watch)
                .in_collection(&collection.name, &collection.id)?;
        }
        Ok(())
    }
}

/// A collection between opening its HNSW files and replaying its log tail.
struct OpenedCollection {
    entry: Entry,
    opened: vectors::Opened,
    files: Vec<(PathBuf, Stamp)>,
}

fn open_collection(
    conn: &Connection,
    schema: &Schema,
    dir: &Path,
    entry: Entry,
) -> Result<OpenedCollection> {
    let segment_dir = dir.join(&entry.vector_segment);
    let files = WATCHED
        .iter()
        .map(|name| {
            let path = segment_dir.join(name);
            stamp(&path).map(|s| (path, s))
        })
        .collect::<Result<Vec<_>>>()
        .in_collection(&entry.name, &entry.id)?;
    let opened = CollectionVectors::open(conn, schema.max_seq_id, &segment_dir, &entry)
        .in_collection(&entry.name, &entry.id)?;
    Ok(OpenedCollection {
        entry,
        opened,
        files,
    })
}

/// Every collection's log tail, in one pass over the log (a store's
/// collections share it: one pass per collection would read it as many times).
fn replay_log(conn: &Connection, opened: &[OpenedCollection]) -> Result<Vec<LogTail>> {
    let starts: Vec<TailStart<'_>> = opened
        .iter()
        .map(|c| TailStart {
            collection_id: &c.entry.id,
            position: c.opened.position,
            dimension: c.opened.dimension,
        })
        .collect();
    LogTail::replay_all(conn, &starts, |i, id| opened[i].opened.in_hnsw(id)).map_err(
        |(collection, e)| match collection {
            Some(i) => e.with_collection(&opened[i].entry.name, &opened[i].entry.id),
            None => e,
        },
    )
}

fn finish_collection(
    conn: &Connection,
    opened: OpenedCollection,
    tail: LogTail,
) -> Result<(Collection, CollectionVectors, Watch)> {
    let OpenedCollection {
        entry,
        opened,
        files,
    } = opened;
    let built =
        CollectionVectors::finish(opened, tail, conn).in_collection(&entry.name, &entry.id)?;
    let watch = Watch {
        vector_segment: entry.vector_segment.clone(),
        table_position: built.table_position,
        files,
    };
    let collection = Collection {
        id: entry.id,
        name: entry.name,
        tenant: entry.tenant,
        database: entry.database,
        space: entry.space,
        dimension: built.dimension,
        metadata: entry.metadata,
        count: entry.count,
        rowid_bounds: entry.rowid_bounds,
        sources: built.sources,
    };
    let mut vectors = built.vectors;
    vectors.sparse = collection.rowid_bounds.is_some_and(|(first, last)| {
        (last - first + 1) as u64 > collection.count.saturating_mul(4)
    });
    Ok((collection, vectors, watch))
}

fn check_watch(conn: &Connection, has_table: bool, watch: &Watch) -> Result<()> {
    if has_table {
        let now = vectors::table_position(conn, &watch.vector_segment)?;
        if now != watch.table_position {
            return Err(ChromaError::new(
                ErrorKind::Changed,
                format!(
                    "Chroma persisted the vector segment while it was being read (max_seq_id {:?} at open, {now:?} now); run again, ideally with Chroma stopped",
                    watch.table_position
                ),
            ));
        }
    }
    for (path, before) in &watch.files {
        if stamp(path)? != *before {
            return Err(ChromaError::new(
                ErrorKind::Changed,
                "the file changed (size or modification time) while the store was being read; run again, ideally with Chroma stopped",
            )
            .with_file(path));
        }
    }
    Ok(())
}

fn stamp(path: &Path) -> Result<Stamp> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some((
            m.len(),
            m.modified()
                .map_err(|e| ChromaError::io(e, "reading the modification time", path))?,
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ChromaError::io(e, "reading file metadata", path)),
    }
}

/// The directory and its database file, from either.
fn locate(path: &Path) -> Result<(PathBuf, PathBuf)> {
    let meta = std::fs::metadata(path).map_err(|e| {
        ChromaError::io(
            e,
            "cannot open the Chroma store (expected a directory holding chroma.sqlite3)",
            path,
        )
    })?;
    if !meta.is_dir() {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        return Ok((dir.to_path_buf(), path.to_path_buf()));
    }
    let db = path.join(DB_FILE);
    if !db.is_file() {
        return Err(ChromaError::new(
            ErrorKind::NotChroma,
            format!("not a Chroma persistent directory: no {DB_FILE} in it (expected the directory given to chromadb.PersistentClient(path=...))"),
        )
        .with_file(path));
    }
    Ok((path.to_path_buf(), db))
}

fn from_sqlite(e: SqliteError) -> ChromaError {
    let kind = match e.kind() {
        SqliteErrorKind::NotFound => ErrorKind::NotFound,
        SqliteErrorKind::NotSqlite => ErrorKind::NotChroma,
        SqliteErrorKind::Corrupt => ErrorKind::Corrupt,
        SqliteErrorKind::Io => ErrorKind::Io,
        _ => ErrorKind::Sqlite,
    };
    ChromaError::new(kind, e.to_string()).caused_by(e)
}

fn fresh_connection(db: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(db, flags)
        .map_err(|e| ChromaError::sqlite(e, "opening read-only").with_file(db))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| ChromaError::sqlite(e, "setting the busy timeout").with_file(db))?;
    Ok(conn)
}
