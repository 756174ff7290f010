//! The items a proof queries a collection with: up to a number of them,
//! spread evenly over the collection, found with short reads where that
//! reads less than one pass over it.

use crate::row_source::ChromaReader;
use crate::Record;
use pgharbor_source::SourceError;

/// Rowids read around each probe point when picking queries.
const PICK_WINDOW: i64 = 16;

/// Up to `count` items spread evenly over `collection`, each made into a
/// query by `make`: the first item at or after each of `count` evenly
/// spaced rowids (short reads), or every n-th item in one pass when that
/// reads less: the probe windows would cover the whole range anyway, or the
/// collection is too sparse in its rowid range (interleaved with others)
/// for a window to hold an item. None for an empty collection.
pub fn pick_query_items<T>(
    reader: &mut ChromaReader,
    collection: usize,
    count: usize,
    make: &mut dyn FnMut(&Record<'_>) -> T,
) -> Result<Vec<T>, SourceError> {
    let (bounds, items) = {
        let c = reader.collection(collection);
        (c.rowid_bounds, c.count)
    };
    let Some((first, last)) = bounds else {
        return Ok(Vec::new());
    };
    let wanted = (count as u64).min(items).max(1) as usize;
    let span = last - first + 1;
    let windows_cover_all = span <= wanted as i64 * PICK_WINDOW;
    let windows_mostly_empty = (items as i64).saturating_mul(PICK_WINDOW) < span;
    if !windows_cover_all && !windows_mostly_empty {
        let probed = probe(reader, collection, (first, last), wanted, make)?;
        if probed.len() * 2 >= wanted {
            return Ok(probed);
        }
    }
    let mut picked = Vec::new();
    let stride = (items / wanted as u64).max(1);
    let mut seen = 0u64;
    reader.read_collection(collection, first, last, &mut |record, _| {
        if seen % stride == 0 && picked.len() < wanted {
            picked.push(make(record));
        }
        seen += 1;
        Ok(())
    })?;
    Ok(picked)
}

/// The first item at or after each of `wanted` evenly spaced rowids.
fn probe<T>(
    reader: &mut ChromaReader,
    collection: usize,
    (first, last): (i64, i64),
    wanted: usize,
    make: &mut dyn FnMut(&Record<'_>) -> T,
) -> Result<Vec<T>, SourceError> {
    let span = last - first + 1;
    let mut picked = Vec::new();
    for q in 0..wanted as i64 {
        let at = first + span * q / wanted as i64;
        let mut found = None;
        reader.read_collection(
            collection,
            at,
            (at + PICK_WINDOW - 1).min(last),
            &mut |record, _| {
                if found.is_none() {
                    found = Some(make(record));
                }
                Ok(())
            },
        )?;
        picked.extend(found);
    }
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row_source::{Feeds, Layout, TableFeed};
    use crate::Store;
    use pgharbor_core::plan::Plan;
    use std::path::Path;
    use std::sync::Arc;

    fn fixture_reader(dir: &Path) -> (Store, ChromaReader) {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/chroma/1.5.9/store");
        pgharbor_testkit::copy_dir(&fixture, dir);
        let store = Store::open(dir, 1).unwrap();
        let plan = Plan {
            target_schema: "public".into(),
            tables: Vec::new(),
            views: Vec::new(),
            reported: Vec::new(),
            policy: Default::default(),
        };
        let feeds: [TableFeed; 0] = [];
        let feeds = Feeds::new(store.collections(), &plan, &feeds, Layout::Tables);
        let reader = ChromaReader::new(store.reader().unwrap(), Arc::new(feeds));
        (store, reader)
    }

    #[test]
    fn picks_distinct_items_spread_over_the_collection() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut reader) = fixture_reader(dir.path());
        for (c, collection) in store.collections().iter().enumerate() {
            let (first, last) = collection.rowid_bounds.unwrap();
            let mut every = Vec::new();
            reader
                .read_collection(c, first, last, &mut |record, _| {
                    every.push(record.rowid);
                    Ok(())
                })
                .unwrap();
            let picked = pick_query_items(&mut reader, c, 10, &mut |record| {
                assert!(!record.embedding.is_empty());
                record.rowid
            })
            .unwrap();
            let name = &collection.name;
            let wanted = collection.count.min(10) as usize;
            assert!(
                picked.len() <= wanted && picked.len() * 2 >= wanted,
                "{name}: {} of {wanted}",
                picked.len()
            );
            assert!(picked.windows(2).all(|w| w[0] < w[1]), "distinct: {name}");
            let position = |rowid: &i64| every.binary_search(rowid).unwrap();
            let half = every.len() / 2;
            assert!(
                position(&picked[0]) < half && position(&picked[picked.len() - 1]) >= half,
                "{name}: {picked:?} from both halves of its items"
            );
        }
    }

    #[test]
    fn a_small_collection_gives_every_item_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut reader) = fixture_reader(dir.path());
        let (c, collection) = store
            .collections()
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.count)
            .unwrap();
        let picked = pick_query_items(&mut reader, c, 1000, &mut |record| record.rowid).unwrap();
        assert_eq!(picked.len() as u64, collection.count);
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
    }
}
