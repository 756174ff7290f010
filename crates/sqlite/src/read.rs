//! Streaming rows out of a table.

use crate::error::{Result, SqliteError};
use pgharbor_core::cell::Cell;
use pgharbor_core::schema::quote_ident;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// Convert a rusqlite value reference to a [`Cell`] without copying.
pub fn cell(value: ValueRef<'_>) -> Cell<'_> {
    crate::profile::to_cell(value)
}

/// Which rows of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowRange {
    /// Every row.
    All,
    /// Rows with `first <= rowid <= last` (rowid tables only).
    Rowids {
        /// First rowid.
        first: i64,
        /// Last rowid.
        last: i64,
    },
}

/// Smallest and largest rowid of a rowid table (`None` when empty).
pub fn rowid_bounds(conn: &Connection, table: &str) -> Result<Option<(i64, i64)>> {
    conn.query_row(
        &format!("SELECT min(rowid), max(rowid) FROM {}", quote_ident(table)),
        [],
        |r| Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?)),
    )
    .map_err(|e| SqliteError::from_sqlite(e, "reading rowid bounds").with_table(table))
}

/// Split `min..=max` into at most `parts` contiguous inclusive ranges.
pub fn split_range(min: i64, max: i64, parts: usize) -> Vec<(i64, i64)> {
    let parts = parts.max(1) as i128;
    let span = i128::from(max) - i128::from(min) + 1;
    let width = (span + parts - 1) / parts;
    let mut ranges = Vec::new();
    let mut first = i128::from(min);
    while first <= i128::from(max) {
        let last = (first + width - 1).min(i128::from(max));
        ranges.push((first as i64, last as i64));
        first = last + 1;
    }
    ranges
}

/// Read `columns` of `table` in `range`, calling `on_row` with the rowid (for
/// rowid tables when `with_rowid`) and the cells of each row.
///
/// `on_row` may fail with the caller's error type, which stops the read.
pub fn read_rows<E>(
    conn: &Connection,
    table: &str,
    columns: &[&str],
    with_rowid: bool,
    range: RowRange,
    mut on_row: impl FnMut(Option<i64>, &[Cell<'_>]) -> std::result::Result<(), E>,
) -> std::result::Result<(), E>
where
    E: From<SqliteError>,
{
    let err = |e| E::from(SqliteError::from_sqlite(e, "reading rows").with_table(table));
    let mut select = crate::inspect::select_list(columns);
    if with_rowid {
        select = format!("rowid, {select}");
    }
    let mut sql = format!("SELECT {select} FROM {}", quote_ident(table));
    if let RowRange::Rowids { first, last } = range {
        sql.push_str(&format!(" WHERE rowid BETWEEN {first} AND {last}"));
    }
    let mut stmt = conn.prepare(&sql).map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    let offset = usize::from(with_rowid);
    while let Some(row) = rows.next().map_err(err)? {
        let rowid = if with_rowid {
            Some(row.get::<_, i64>(0).map_err(err)?)
        } else {
            None
        };
        let mut cells: Vec<Cell<'_>> = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            cells.push(cell(row.get_ref(i + offset).map_err(err)?));
        }
        on_row(rowid, &cells)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_range;

    #[test]
    fn ranges_cover_everything_once() {
        assert_eq!(split_range(1, 10, 3), vec![(1, 4), (5, 8), (9, 10)]);
        assert_eq!(split_range(5, 5, 4), vec![(5, 5)]);
        let extreme = split_range(i64::MIN, i64::MAX, 2);
        assert_eq!(extreme.first().unwrap().0, i64::MIN);
        assert_eq!(extreme.last().unwrap().1, i64::MAX);
        assert_eq!(extreme[0].1 + 1, extreme[1].0);
    }
}
