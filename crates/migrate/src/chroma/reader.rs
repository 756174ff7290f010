//! Chroma items as pipeline rows: the [`UnitReader`] of a Chroma store.

use super::check::SourceTally;
use super::layout::{self, ChromaPlan, Layout, TableFeed};
use super::openwebui::{self, MetadataChanges};
use crate::error::MigrateError;
use crate::load::{RowSink, SourceUnit, UnitRange, UnitReader};
use pgharbor_chroma::{Collection, Record, StoreReader};
use pgharbor_core::cell::Cell;
use pgharbor_core::plan::TablePlan;
use pgharbor_source::SourceError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Open WebUI metadata changes, counted while `counting` is set.
    pub changes: Mutex<MetadataChanges>,
    /// Count metadata changes (on during the load, off while verifying).
    pub counting: AtomicBool,
}

impl Feeds {
    /// What the readers of `plan` share; not counting metadata changes yet.
    pub fn new(collections: &[Collection], plan: &ChromaPlan) -> Self {
        Feeds {
            collections: collections.to_vec(),
            feeds: plan.feeds.clone(),
            table_names: plan
                .plan
                .tables
                .iter()
                .map(|t| t.spec.name.name.clone())
                .collect(),
            source_names: plan
                .plan
                .tables
                .iter()
                .map(|t| t.source_name.clone())
                .collect(),
            layout: plan.layout,
            changes: Mutex::new(MetadataChanges::default()),
            counting: AtomicBool::new(false),
        }
    }
}

/// Receives each item with the cells its table gets for it.
pub type RecordSink<'a> = dyn FnMut(&Record<'_>, &[Cell<'_>]) -> Result<(), MigrateError> + 'a;

/// Reads Chroma items for work units, on one worker thread.
pub struct ChromaUnitReader {
    reader: StoreReader,
    feeds: Arc<Feeds>,
    json: Vec<u8>,
    tally: Option<Arc<SourceTally>>,
}

impl ChromaUnitReader {
    /// A unit reader over a store reader.
    pub fn new(reader: StoreReader, feeds: Arc<Feeds>) -> Self {
        ChromaUnitReader {
            reader,
            feeds,
            json: Vec::new(),
            tally: None,
        }
    }

    /// Also count every row read for a unit into `tally` (the source side of
    /// verification, gathered during the load).
    pub fn tallying(mut self, tally: Arc<SourceTally>) -> Self {
        self.tally = Some(tally);
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
        if feeds.counting.load(Ordering::Relaxed) {
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
                Cell::Text(layout::space_name(c.space).as_bytes()),
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

impl UnitReader for ChromaUnitReader {
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
            let tally = self.tally.clone();
            let mut part = tally.as_deref().map(|t| t.part(table, c));
            self.read_collection(c, first, last, &mut |record, cells| {
                on_row(Some(record.rowid), cells)?;
                match part.as_mut() {
                    Some(part) => part.add(table, record, cells),
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
