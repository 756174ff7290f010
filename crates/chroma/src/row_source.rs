//! A Chroma store as the pipeline's [`RowSource`]: its work units
//! (collections whole, or `embeddings.id` ranges of large ones) and a
//! [`ChromaReader`] per worker, turning items into the rows of a
//! [`Layout`] (Open WebUI's metadata rule applied under its layout, see
//! [`crate::open_webui_metadata`]).
//!
//! It speaks the source contract ([`pgharbor_source`]): a reader's error is
//! a [`SourceError`] of kind `Read` showing the store's [`ChromaError`]
//! (which names the collection and the file, SQLite's or the system's error
//! as its source), or of kind `Sink`: the sink's or the observer's own
//! error, passed back unchanged. What the pipeline proves about the rows it
//! watches through a [`RecordObserver`] attached to the source, so that the
//! store is read once for the load and the proof's source side.

use crate::open_webui_metadata::{self, MetadataChanges};
use crate::{ChromaError, Collection, Record, Space, Store, StoreReader};
use pgharbor_core::cell::Cell;
use pgharbor_core::plan::{Plan, TablePlan};
use pgharbor_source::{RowSink, RowSource, SourceError, SourceUnit, UnitRange, UnitReader};
use std::sync::{Arc, Mutex};

/// Collections with at least this many items are split over several workers.
const SPLIT_MIN_ITEMS: u64 = 20_000;

/// Where collections go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Open WebUI's `document_chunk`.
    OpenWebUi,
    /// One table per collection plus a catalog.
    Tables,
}

/// Which rows feed a target table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableFeed {
    /// Items of these collections (indexes into the store's collections).
    Collections(Vec<usize>),
    /// One row per collection: the catalog.
    Catalog,
}

/// What every reader shares: the collections, what feeds each table, and the
/// metadata changes counted while loading.
pub struct Feeds {
    /// The store's collections.
    pub collections: Vec<Collection>,
    /// Per plan table.
    pub feeds: Vec<TableFeed>,
    /// Per plan table, its target name (for the catalog's `table_name`).
    pub table_names: Vec<String>,
    /// Per plan table, its source name (which names a table whether it is
    /// loaded itself or through a staging table).
    pub source_names: Vec<String>,
    /// The layout (decides the row shape).
    pub layout: Layout,
    /// Open WebUI metadata changes, counted by the counting readers.
    pub changes: Mutex<MetadataChanges>,
}

impl Feeds {
    /// What the readers of `plan`'s tables, fed as `feeds` says, share.
    pub fn new(
        collections: &[Collection],
        plan: &Plan,
        feeds: &[TableFeed],
        layout: Layout,
    ) -> Self {
        Feeds {
            collections: collections.to_vec(),
            feeds: feeds.to_vec(),
            table_names: plan
                .tables
                .iter()
                .map(|t| t.spec.name.name.clone())
                .collect(),
            source_names: plan.tables.iter().map(|t| t.source_name.clone()).collect(),
            layout,
            changes: Mutex::new(MetadataChanges::default()),
        }
    }

    /// The metadata changes counted so far.
    pub fn changes(&self) -> MetadataChanges {
        *self.changes.lock().expect("changes lock")
    }
}

/// Watches the rows read for the load, so that what is proved about them is
/// gathered in the same pass (the source side of verification). Like the
/// [`RowSink`], its error stops the read and comes back out of the reader
/// unchanged.
pub trait RecordObserver: Send + Sync {
    /// Begin watching one part of `collection`, read into `table`'s rows.
    fn part<'a>(&'a self, table: &TablePlan, collection: usize) -> Box<dyn PartObserver + 'a>;
}

/// Watches one part of a collection on a reader thread.
pub trait PartObserver {
    /// One item and the cells its row received.
    fn row(
        &mut self,
        table: &TablePlan,
        record: &Record<'_>,
        cells: &[Cell<'_>],
    ) -> Result<(), SourceError>;
    /// The part is read.
    fn finish(self: Box<Self>);
}

/// Receives each item with the cells its table gets for it.
pub type RecordSink<'a> = dyn FnMut(&Record<'_>, &[Cell<'_>]) -> Result<(), SourceError> + 'a;

impl From<ChromaError> for SourceError {
    /// The store could not be read: the store's error (which names the
    /// collection and the file) as it is.
    fn from(err: ChromaError) -> Self {
        SourceError::read(err)
    }
}

/// Reads Chroma items for work units, on one worker thread.
pub struct ChromaReader {
    reader: StoreReader,
    feeds: Arc<Feeds>,
    json: Vec<u8>,
    observer: Option<Arc<dyn RecordObserver>>,
    counting: bool,
}

impl ChromaReader {
    /// A reader over a store reader, counting no metadata change.
    pub fn new(reader: StoreReader, feeds: Arc<Feeds>) -> Self {
        ChromaReader {
            reader,
            feeds,
            json: Vec::new(),
            observer: None,
            counting: false,
        }
    }

    /// Also count the metadata changes of every item read into the feeds
    /// (a reader of the load, not one reading a collection again), and show
    /// every row read for a unit to `observer`.
    pub fn loading(mut self, observer: Option<Arc<dyn RecordObserver>>) -> Self {
        self.counting = true;
        self.observer = observer;
        self
    }

    /// Collection number `i` of the store.
    pub fn collection(&self, i: usize) -> &Collection {
        &self.feeds.collections[i]
    }

    /// Call `on_record` with each record of `collection` within `first..=last`
    /// and the cells the table receives for it.
    pub fn read_collection(
        &mut self,
        collection: usize,
        first: i64,
        last: i64,
        on_row: &mut RecordSink<'_>,
    ) -> Result<(), SourceError> {
        let feeds = self.feeds.clone();
        let json = &mut self.json;
        let name = feeds.collections[collection].name.as_str();
        let mut changes = MetadataChanges::default();
        self.reader
            .read(collection, first, last, &mut |record: &Record<'_>| {
                let metadata = record_metadata(record, feeds.layout, json, &mut changes);
                let document = record
                    .document
                    .map_or(Cell::Null, |d| Cell::Text(d.as_bytes()));
                let cells_owt;
                let cells_tables;
                let cells: &[Cell<'_>] = match feeds.layout {
                    Layout::OpenWebUi => {
                        cells_owt = [
                            Cell::Text(record.id.as_bytes()),
                            Cell::Vector(record.embedding),
                            Cell::Text(name.as_bytes()),
                            document,
                            metadata,
                        ];
                        &cells_owt
                    }
                    Layout::Tables => {
                        cells_tables = [
                            Cell::Text(record.id.as_bytes()),
                            Cell::Vector(record.embedding),
                            document,
                            metadata,
                        ];
                        &cells_tables
                    }
                };
                on_row(record, cells)
            })?;
        if self.counting {
            let mut total = feeds.changes.lock().expect("changes lock");
            total.dropped_keys += changes.dropped_keys;
            total.lists_as_text += changes.lists_as_text;
            total.nul_stripped += changes.nul_stripped;
        }
        Ok(())
    }

    fn read_catalog(&self, on_row: &mut RowSink<'_>) -> Result<(), SourceError> {
        for (i, c) in self.feeds.collections.iter().enumerate() {
            let metadata = serde_json::to_string(&c.metadata).expect("metadata serialises");
            let table = &self.feeds.table_names[i];
            let cells = [
                Cell::Text(c.id.as_bytes()),
                Cell::Text(c.name.as_bytes()),
                Cell::Text(table.as_bytes()),
                Cell::Text(c.tenant.as_bytes()),
                Cell::Text(c.database.as_bytes()),
                Cell::Text(space_name(c.space).as_bytes()),
                c.dimension.map_or(Cell::Null, |d| Cell::Int(d.into())),
                Cell::Int(c.count as i64),
                if c.metadata.is_empty() {
                    Cell::Null
                } else {
                    Cell::Text(metadata.as_bytes())
                },
            ];
            on_row(None, &cells)?;
        }
        Ok(())
    }
}

/// The space's name as Chroma spells it.
pub fn space_name(space: Space) -> &'static str {
    match space {
        Space::L2 => "l2",
        Space::Cosine => "cosine",
        Space::Ip => "ip",
    }
}

/// The metadata cell: Chroma's metadata as JSON (Open WebUI's processing
/// applied under its layout), NULL when the item has none.
fn record_metadata<'a>(
    record: &Record<'_>,
    layout: Layout,
    json: &'a mut Vec<u8>,
    changes: &mut MetadataChanges,
) -> Cell<'a> {
    let Some(metadata) = record.metadata else {
        return Cell::Null;
    };
    json.clear();
    match layout {
        Layout::OpenWebUi => {
            let processed = open_webui_metadata::process_metadata(metadata, changes);
            serde_json::to_writer(&mut *json, &processed)
        }
        Layout::Tables => serde_json::to_writer(&mut *json, metadata),
    }
    .expect("JSON values serialise");
    Cell::Text(json)
}

impl UnitReader for ChromaReader {
    fn read(
        &mut self,
        table: &TablePlan,
        unit: SourceUnit,
        on_row: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        let index = self
            .feeds
            .source_names
            .iter()
            .position(|n| *n == table.source_name)
            .expect("the table belongs to the plan");
        let collections = match &self.feeds.feeds[index] {
            TableFeed::Catalog => return self.read_catalog(on_row),
            TableFeed::Collections(c) => c.clone(),
        };
        for c in collections {
            let Some((lo, hi)) = self.feeds.collections[c].rowid_bounds else {
                continue;
            };
            let (first, last) = match unit.range {
                UnitRange::WholeTable => (lo, hi),
                UnitRange::Rowids { first, last } => (first.max(lo), last.min(hi)),
            };
            if first > last {
                continue;
            }
            let observer = self.observer.clone();
            let mut part = observer.as_deref().map(|o| o.part(table, c));
            self.read_collection(c, first, last, &mut |record, cells| {
                on_row(Some(record.rowid), cells)?;
                match part.as_mut() {
                    Some(part) => part.row(table, record, cells),
                    None => Ok(()),
                }
            })?;
            if let Some(part) = part {
                part.finish();
            }
        }
        Ok(())
    }
}

/// Split the load: each table whole, or in `embeddings.id` ranges when it is
/// large; the largest tables first.
pub fn work_units(plan: &Plan, feeds: &Feeds, jobs: usize) -> Vec<SourceUnit> {
    let mut units = Vec::new();
    let mut order: Vec<usize> = (0..plan.tables.len()).collect();
    order.sort_by_key(|t| std::cmp::Reverse(plan.tables[*t].source_rows));
    for t in order {
        let rows = plan.tables[t].source_rows;
        let bounds = match &feeds.feeds[t] {
            TableFeed::Collections(cs) => cs
                .iter()
                .filter_map(|c| feeds.collections[*c].rowid_bounds)
                .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1))),
            TableFeed::Catalog => None,
        };
        match bounds {
            Some((lo, hi)) if jobs > 1 && rows >= SPLIT_MIN_ITEMS => {
                let parts = (rows / (SPLIT_MIN_ITEMS / 2)).clamp(2, jobs as u64 * 4) as i64;
                let span = (hi - lo + 1).max(1);
                for p in 0..parts {
                    let first = lo + span * p / parts;
                    let last = lo + span * (p + 1) / parts - 1;
                    units.push(unit(t, UnitRange::Rowids { first, last }));
                }
            }
            _ => units.push(unit(t, UnitRange::WholeTable)),
        }
    }
    units
}

fn unit(table: usize, range: UnitRange) -> SourceUnit {
    SourceUnit { table, range }
}

/// The store as the run's parts share it: its own connection serves one of
/// them at a time (to hand out readers, to check it unchanged).
pub type SharedStore = Arc<Mutex<Store>>;

/// A Chroma store as a run's source: the store, what feeds each table, and
/// the plan the load writes (for an encrypted `document_chunk`, the plan of
/// its staging table).
pub struct ChromaSource {
    store: SharedStore,
    feeds: Arc<Feeds>,
    plan: Arc<Plan>,
    observer: Option<Arc<dyn RecordObserver>>,
}

impl ChromaSource {
    /// The rows of `store`, fed as `feeds` says, into `plan`'s tables.
    pub fn new(store: SharedStore, feeds: Arc<Feeds>, plan: Arc<Plan>) -> Self {
        ChromaSource {
            store,
            feeds,
            plan,
            observer: None,
        }
    }

    /// Show every row the load reads to `observer`.
    pub fn observed_by(mut self, observer: Arc<dyn RecordObserver>) -> Self {
        self.observer = Some(observer);
        self
    }
}

impl RowSource for ChromaSource {
    fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    fn work_units(&self, jobs: usize) -> Result<Vec<SourceUnit>, SourceError> {
        Ok(work_units(&self.plan, &self.feeds, jobs))
    }

    fn readers(&self, count: usize) -> Result<Vec<Box<dyn UnitReader>>, SourceError> {
        let store = self.store.lock().expect("store lock");
        (0..count)
            .map(|_| {
                let store_reader = store.reader().map_err(SourceError::read)?;
                let reader = ChromaReader::new(store_reader, self.feeds.clone())
                    .loading(self.observer.clone());
                Ok(Box::new(reader) as Box<dyn UnitReader>)
            })
            .collect()
    }

    /// A store that changed while it was read is an error naming what
    /// changed (a Chroma write would leave its files and the rows read
    /// disagreeing), never a report.
    fn changed_since_taken(&self) -> Result<bool, SourceError> {
        self.store
            .lock()
            .expect("store lock")
            .check_unchanged()
            .map_err(SourceError::read)?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgharbor_core::schema::QualifiedName;
    use pgharbor_source::SourceErrorKind;
    use std::path::Path;

    /// The large collection of the fixture store (2647 items).
    const LARGE: &str = "23b8c1e9-3924-46de-beb1-3b9046685257";

    /// A copy of the store chromadb 1.5.9 wrote, with `damage` (SQL) applied
    /// to its `chroma.sqlite3` before it is opened.
    fn fixture_store(dir: &Path, damage: &str) -> Store {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/chroma/1.5.9/store");
        pgharbor_testkit::copy_dir(&fixture, dir);
        if !damage.is_empty() {
            let conn = rusqlite::Connection::open(dir.join("chroma.sqlite3")).unwrap();
            conn.execute_batch(damage).unwrap();
        }
        Store::open(dir, 2).unwrap()
    }

    fn table(name: &str, rows: u64) -> TablePlan {
        TablePlan {
            source_rows: rows,
            ..TablePlan::empty(QualifiedName::new("public", name))
        }
    }

    fn plan_of(tables: Vec<TablePlan>) -> Plan {
        Plan {
            target_schema: "public".into(),
            tables,
            views: Vec::new(),
            reported: Vec::new(),
            policy: Default::default(),
        }
    }

    /// The tables layout's feeds: a table per collection, then the catalog.
    fn tables_source(store: Store) -> ChromaSource {
        let collections = store.collections().to_vec();
        let mut tables: Vec<TablePlan> = collections
            .iter()
            .map(|c| table(&format!("{}/{}", c.tenant, c.name), c.count))
            .collect();
        tables.push(table("(collections)", collections.len() as u64));
        let mut feeds: Vec<TableFeed> = (0..collections.len())
            .map(|c| TableFeed::Collections(vec![c]))
            .collect();
        feeds.push(TableFeed::Catalog);
        let plan = plan_of(tables);
        let feeds = Feeds::new(&collections, &plan, &feeds, Layout::Tables);
        ChromaSource::new(Arc::new(Mutex::new(store)), Arc::new(feeds), Arc::new(plan))
    }

    /// Counts, per collection, the items a part showed it and the parts finished.
    #[derive(Default)]
    struct Watcher {
        items: Mutex<Vec<u64>>,
        parts: Mutex<u64>,
        fail_with: Option<&'static str>,
    }

    struct WatchedPart<'a> {
        watcher: &'a Watcher,
        collection: usize,
        items: u64,
    }

    impl RecordObserver for Watcher {
        fn part<'a>(&'a self, _: &TablePlan, collection: usize) -> Box<dyn PartObserver + 'a> {
            Box::new(WatchedPart {
                watcher: self,
                collection,
                items: 0,
            })
        }
    }

    impl PartObserver for WatchedPart<'_> {
        fn row(
            &mut self,
            _: &TablePlan,
            record: &Record<'_>,
            cells: &[Cell<'_>],
        ) -> Result<(), SourceError> {
            assert_eq!(record.collection, self.collection);
            assert!(matches!(cells[0], Cell::Text(id) if id == record.id.as_bytes()));
            if let Some(reason) = self.watcher.fail_with {
                return Err(SourceError::from_sink(std::io::Error::other(reason)));
            }
            self.items += 1;
            Ok(())
        }

        fn finish(self: Box<Self>) {
            let mut items = self.watcher.items.lock().unwrap();
            if items.len() <= self.collection {
                items.resize(self.collection + 1, 0);
            }
            items[self.collection] += self.items;
            *self.watcher.parts.lock().unwrap() += 1;
        }
    }

    /// Read every unit on one reader; the rows of each plan table.
    fn read_all(source: &ChromaSource, units: &[SourceUnit]) -> Vec<Vec<Option<i64>>> {
        let mut reader = source.readers(1).unwrap().pop().unwrap();
        let mut rows = vec![Vec::new(); source.plan().tables.len()];
        for unit in units {
            let table = &source.plan().tables[unit.table];
            reader
                .read(table, *unit, &mut |rowid, _| {
                    rows[unit.table].push(rowid);
                    Ok(())
                })
                .unwrap();
        }
        rows
    }

    #[test]
    fn every_item_is_read_once_as_its_row_and_shown_to_the_observer() {
        let dir = tempfile::tempdir().unwrap();
        let store = fixture_store(dir.path(), "");
        let counts: Vec<u64> = store.collections().iter().map(|c| c.count).collect();
        let watcher = Arc::new(Watcher::default());
        let source = tables_source(store).observed_by(watcher.clone());
        let units = source.work_units(2).unwrap();
        assert!(
            units.iter().all(|u| u.range == UnitRange::WholeTable),
            "no collection is large enough to split: {units:?}"
        );
        assert_eq!(units.len(), counts.len() + 1, "a unit per table");
        let largest = counts.iter().copied().max().unwrap();
        assert_eq!(
            source.plan().tables[units[0].table].source_rows,
            largest,
            "the largest table first"
        );
        let rows = read_all(&source, &units);
        for (c, count) in counts.iter().enumerate() {
            assert_eq!(rows[c].len() as u64, *count, "collection {c}");
            assert!(rows[c].windows(2).all(|w| w[0] < w[1]), "rowid order");
        }
        let catalog = &rows[counts.len()];
        assert_eq!(
            catalog,
            &vec![None; counts.len()],
            "a catalog row per collection"
        );
        assert_eq!(*watcher.items.lock().unwrap(), counts);
        assert_eq!(*watcher.parts.lock().unwrap(), counts.len() as u64);
        assert!(!source.changed_since_taken().unwrap());
    }

    #[test]
    fn a_large_collection_is_read_in_ranges_each_item_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = fixture_store(dir.path(), "");
        let collections = store.collections().to_vec();
        let large = collections.iter().position(|c| c.name == LARGE).unwrap();
        // Planned as if it held 50,000 items, the table is split.
        let plan = plan_of(vec![table(LARGE, 50_000)]);
        let feeds = [TableFeed::Collections(vec![large])];
        let feeds = Arc::new(Feeds::new(&collections, &plan, &feeds, Layout::Tables));
        let source = ChromaSource::new(Arc::new(Mutex::new(store)), feeds, Arc::new(plan));
        let units = source.work_units(2).unwrap();
        assert!(units.len() > 1, "{units:?}");
        let (lo, hi) = collections[large].rowid_bounds.unwrap();
        let ranges: Vec<(i64, i64)> = units
            .iter()
            .map(|u| match u.range {
                UnitRange::Rowids { first, last } => (first, last),
                UnitRange::WholeTable => panic!("{units:?}"),
            })
            .collect();
        assert_eq!((ranges[0].0, ranges[ranges.len() - 1].1), (lo, hi));
        assert!(
            ranges.windows(2).all(|w| w[0].1 + 1 == w[1].0),
            "{ranges:?}"
        );
        let rows = read_all(&source, &units);
        assert_eq!(rows[0].len() as u64, collections[large].count);
        assert!(rows[0].windows(2).all(|w| w[0] < w[1]), "each item once");
    }

    #[test]
    fn the_open_webui_layout_names_the_collection_and_counts_metadata_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = fixture_store(dir.path(), "");
        let collections = store.collections().to_vec();
        let mut expected = MetadataChanges::default();
        let mut reader = store.reader().unwrap();
        for (c, collection) in collections.iter().enumerate() {
            let (first, last) = collection.rowid_bounds.unwrap();
            reader
                .read(c, first, last, &mut |record| {
                    if let Some(metadata) = record.metadata {
                        open_webui_metadata::process_metadata(metadata, &mut expected);
                    }
                    Ok::<(), ChromaError>(())
                })
                .unwrap();
        }
        drop(reader);
        assert!(
            expected.lists_as_text > 0,
            "the store holds lists: {expected:?}"
        );
        let total: u64 = collections.iter().map(|c| c.count).sum();
        let plan = plan_of(vec![table("document_chunk", total)]);
        let feeds = [TableFeed::Collections((0..collections.len()).collect())];
        let feeds = Arc::new(Feeds::new(&collections, &plan, &feeds, Layout::OpenWebUi));
        let source = ChromaSource::new(Arc::new(Mutex::new(store)), feeds.clone(), Arc::new(plan));
        let mut reader = source.readers(1).unwrap().pop().unwrap();
        let mut names = std::collections::BTreeSet::new();
        let mut rows = 0u64;
        let whole = SourceUnit {
            table: 0,
            range: UnitRange::WholeTable,
        };
        reader
            .read(&source.plan().tables[0], whole, &mut |_, cells| {
                assert_eq!(
                    cells.len(),
                    5,
                    "id, vector, collection_name, text, vmetadata"
                );
                assert!(matches!(cells[1], Cell::Vector(v) if !v.is_empty()));
                let Cell::Text(name) = cells[2] else {
                    panic!("collection_name is text")
                };
                names.insert(String::from_utf8(name.to_vec()).unwrap());
                rows += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(rows, total);
        let distinct: std::collections::BTreeSet<String> =
            collections.iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, distinct);
        assert_eq!(feeds.changes(), expected);
    }

    /// The error of reading the [`LARGE`] collection of `store` whole, in
    /// the tables layout, which must fail.
    fn large_collection_read_error(store: Store) -> SourceError {
        let large = store
            .collections()
            .iter()
            .position(|c| c.name == LARGE)
            .unwrap();
        let source = tables_source(store);
        let mut reader = source.readers(1).unwrap().pop().unwrap();
        let whole = SourceUnit {
            table: large,
            range: UnitRange::WholeTable,
        };
        reader
            .read(&source.plan().tables[large], whole, &mut |_, _| Ok(()))
            .unwrap_err()
    }

    #[test]
    fn a_read_failure_is_a_source_error_naming_the_collection_its_cause_apart() {
        let dir = tempfile::tempdir().unwrap();
        let damage = format!(
            "UPDATE embedding_metadata SET string_value = CAST(X'ff' AS TEXT) WHERE rowid = (
               SELECT m.rowid FROM embedding_metadata m
               JOIN embeddings e ON e.id = m.id
               JOIN segments s ON s.id = e.segment_id
               JOIN collections c ON c.id = s.collection
               WHERE c.name = '{LARGE}' AND m.key <> 'chroma:document'
                 AND m.string_value IS NOT NULL
               LIMIT 1)"
        );
        let err = large_collection_read_error(fixture_store(dir.path(), &damage));
        assert_eq!(err.kind(), SourceErrorKind::Read);
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("collection \"{LARGE}\" ("))
                && message.ends_with("reading items"),
            "{message}"
        );
        let cause = std::error::Error::source(&err).expect("SQLite's error is the source");
        assert!(cause.to_string().contains("utf-8"), "{cause}");
        assert!(!message.contains("utf-8"), "the cause is said once");
    }

    #[test]
    fn a_damaged_hnsw_file_is_a_read_error_naming_the_collection_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = fixture_store(dir.path(), "");
        let mut truncated = Vec::new();
        for segment in std::fs::read_dir(dir.path()).unwrap() {
            let data = segment.unwrap().path().join("data_level0.bin");
            if data.exists() {
                std::fs::File::options()
                    .write(true)
                    .open(&data)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
                truncated.push(data);
            }
        }
        assert!(
            !truncated.is_empty(),
            "the fixture keeps vectors in HNSW files"
        );
        let err = large_collection_read_error(store);
        assert_eq!(err.kind(), SourceErrorKind::Read);
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("collection \"{LARGE}\" (")),
            "{message}"
        );
        assert!(
            truncated
                .iter()
                .any(|file| message.contains(&file.display().to_string())),
            "{message}"
        );
    }

    #[test]
    fn the_observers_error_comes_back_out_of_the_reader_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = fixture_store(dir.path(), "");
        let watcher = Arc::new(Watcher {
            fail_with: Some("the tally cannot hash the row"),
            ..Watcher::default()
        });
        let source = tables_source(store).observed_by(watcher.clone());
        let mut reader = source.readers(1).unwrap().pop().unwrap();
        let whole = SourceUnit {
            table: 0,
            range: UnitRange::WholeTable,
        };
        let mut rows = 0;
        let err = reader
            .read(&source.plan().tables[0], whole, &mut |_, _| {
                rows += 1;
                Ok(())
            })
            .unwrap_err();
        assert_eq!(rows, 1, "the read stops at the observer's error");
        assert_eq!(err.kind(), SourceErrorKind::Sink);
        assert_eq!(
            err.into_cause().unwrap().to_string(),
            "the tally cannot hash the row"
        );
        assert_eq!(*watcher.parts.lock().unwrap(), 0, "the part is not counted");
    }
}
