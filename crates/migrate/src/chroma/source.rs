//! A Chroma store as a run's [`RowSource`]: its plan, its work units
//! (collections whole, or `embeddings.id` ranges of large ones) and a
//! [`ChromaReader`] per worker, turning items into the layout's rows.
//!
//! This file depends only on the store ([`pgharbor_chroma`]), the shared
//! model ([`pgharbor_core`]), the source contract ([`crate::load`],
//! [`RowSource`], [`MigrateError`]) and Open WebUI's metadata rule
//! ([`super::openwebui`]); what is proved about the rows is watched through
//! a [`RecordObserver`] the run attaches, so the adapter can move to a
//! source crate of its own.

use super::openwebui::{self, MetadataChanges};
use crate::error::MigrateError;
use pgharbor_chroma::{Collection, Record, Store, StoreReader};
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
/// gathered in the same pass (the source side of verification).
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
    ) -> Result<(), MigrateError>;
    /// The part is read.
    fn finish(self: Box<Self>);
}

/// Receives each item with the cells its table gets for it.
pub type RecordSink<'a> = dyn FnMut(&Record<'_>, &[Cell<'_>]) -> Result<(), MigrateError> + 'a;

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
    ) -> Result<(), MigrateError> {
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

    fn read_catalog(&self, on_row: &mut RowSink<'_>) -> Result<(), MigrateError> {
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
pub fn space_name(space: pgharbor_chroma::Space) -> &'static str {
    match space {
        pgharbor_chroma::Space::L2 => "l2",
        pgharbor_chroma::Space::Cosine => "cosine",
        pgharbor_chroma::Space::Ip => "ip",
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
            serde_json::to_writer(&mut *json, &openwebui::process_metadata(metadata, changes))
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
            TableFeed::Catalog => return Ok(self.read_catalog(on_row)?),
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
