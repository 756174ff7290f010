//! Property: rows written with the writer come back unchanged from the
//! splitter however the stream is cut into chunks, and every row's bytes
//! parse back on their own.

use pgharbor_copy_binary::{write, Field, Row, RowSplitter, HEADER, TRAILER};
use proptest::prelude::*;

type OwnedRow = Vec<Option<Vec<u8>>>;

fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        4 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Some),
        1 => proptest::collection::vec(any::<u8>(), 200..600).prop_map(Some),
    ]
}

fn rows() -> impl Strategy<Value = Vec<OwnedRow>> {
    proptest::collection::vec(proptest::collection::vec(value(), 0..8), 0..20)
}

fn encode(rows: &[OwnedRow]) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    for row in rows {
        let fields: Vec<Field<'_>> = row.iter().map(Option::as_deref).collect();
        write::write_row(&mut out, &fields).unwrap();
    }
    out.extend_from_slice(TRAILER);
    out
}

fn owned(row: Row<'_>) -> OwnedRow {
    row.fields().map(|f| f.map(<[u8]>::to_vec)).collect()
}

proptest! {
    #[test]
    fn rows_survive_any_chunking(rows in rows(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let stream = encode(&rows);
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        at.push(0);
        at.push(stream.len());
        at.sort_unstable();
        let mut splitter = RowSplitter::new();
        let mut back = Vec::new();
        for pair in at.windows(2) {
            splitter
                .feed(&stream[pair[0]..pair[1]], |row| {
                    let again = Row::parse(row.bytes()).unwrap();
                    assert_eq!(again, row);
                    back.push(owned(row));
                })
                .unwrap();
        }
        prop_assert_eq!(splitter.finish().unwrap(), rows.len() as u64);
        prop_assert_eq!(back, rows);
    }

    #[test]
    fn any_proper_prefix_is_an_error_at_its_end(rows in rows(), cut in any::<prop::sample::Index>()) {
        let stream = encode(&rows);
        let end = cut.index(stream.len());
        let mut splitter = RowSplitter::new();
        splitter.feed(&stream[..end], |_| {}).unwrap();
        let err = splitter.finish().unwrap_err();
        prop_assert_eq!(err.offset(), end as u64, "{}", err);
    }
}
