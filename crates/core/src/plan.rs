//! What a migration will do: printable and testable without a server.

use crate::schema::{PgType, QualifiedName, TableSpec, ViewSpec};
use serde::Serialize;

/// What to do with a NUL character (U+0000) in text: PostgreSQL text cannot hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NulPolicy {
    /// Stop before committing the table, naming table, row key and column.
    #[default]
    Error,
    /// Remove NUL characters and count every changed value.
    Strip,
}

/// What to do with text that is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InvalidUtf8Policy {
    /// Stop before committing the table, naming table, row key and column.
    #[default]
    Error,
    /// Replace invalid sequences with U+FFFD and count every changed value.
    Replace,
}

/// The lossy rules a user opted into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct ValuePolicy {
    /// NUL characters in text.
    pub nul: NulPolicy,
    /// Invalid UTF-8 in text.
    pub invalid_utf8: InvalidUtf8Policy,
}

/// How the type of one column was decided.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnDecision {
    /// Column name.
    pub name: String,
    /// The declared type in the source (may be empty).
    pub declared: String,
    /// The planned PostgreSQL type.
    pub pg_type: PgType,
    /// Why this type: a one-line explanation.
    pub reason: String,
    /// True when the values forced a wider type than the declaration suggests.
    pub widened: bool,
}

/// How rows of a table are named in errors and verification reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowKey {
    /// By these columns (indexes into the table's columns): the primary key.
    Columns(Vec<usize>),
    /// By the source's hidden row id.
    Rowid,
}

/// The plan for one table.
#[derive(Debug, Clone, Serialize)]
pub struct TablePlan {
    /// The table's name in the source.
    pub source_name: String,
    /// The target table.
    pub spec: TableSpec,
    /// One decision per column, in column order.
    pub decisions: Vec<ColumnDecision>,
    /// How rows are named.
    pub row_key: RowKey,
    /// Rows in the source (exact count taken in the read snapshot).
    pub source_rows: u64,
    /// The highest generated key the source handed out, for sequences.
    pub sequence_floor: Option<i64>,
    /// Rows can be read in ranges of a row id, so several workers can share the table.
    pub splittable: bool,
    /// The source column feeding each target column, in the same order.
    pub source_columns: Vec<String>,
    /// Columns (indexes into the table's columns) whose values the target
    /// computes itself (`GENERATED ALWAYS AS (…) STORED`): left out of the
    /// load, compared by verification with the values the source stored.
    pub computed_by_target: Vec<usize>,
}

impl TablePlan {
    /// A plan for table `name` with nothing in it yet: no columns, keys,
    /// indexes or rows, rows named by row id, splittable. Sources and
    /// tests fill in what they have (`TablePlan { source_rows, ..empty }`).
    pub fn empty(name: QualifiedName) -> TablePlan {
        TablePlan {
            source_name: name.name.clone(),
            spec: TableSpec {
                name,
                columns: Vec::new(),
                primary_key: None,
                indexes: Vec::new(),
                foreign_keys: Vec::new(),
            },
            decisions: Vec::new(),
            row_key: RowKey::Rowid,
            source_rows: 0,
            sequence_floor: None,
            splittable: true,
            source_columns: Vec::new(),
            computed_by_target: Vec::new(),
        }
    }

    /// The columns the load writes (indexes into the table's columns): all
    /// but those the target computes.
    pub fn loaded_columns(&self) -> Vec<usize> {
        (0..self.spec.columns.len())
            .filter(|i| !self.computed_by_target.contains(i))
            .collect()
    }
}

/// An object that is reported instead of (or besides) being copied.
#[derive(Debug, Clone, Serialize)]
pub struct ReportedObject {
    /// `view`, `trigger`, `virtual table`, `index`, `default`, …
    pub kind: String,
    /// Its name (qualified where useful).
    pub name: String,
    /// What happened and why.
    pub note: String,
    /// Its source SQL, when that helps the user redo it by hand.
    pub sql: Option<String>,
}

/// A complete plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The target schema.
    pub target_schema: String,
    /// Tables, in load order.
    pub tables: Vec<TablePlan>,
    /// Views to recreate after the load (failures are reported, not fatal).
    pub views: Vec<ViewSpec>,
    /// Objects reported rather than copied.
    pub reported: Vec<ReportedObject>,
    /// Lossy rules in force.
    pub policy: ValuePolicy,
}

impl Plan {
    /// Every column whose type was widened beyond its declaration, as `table.column: reason`.
    pub fn widened_columns(&self) -> Vec<String> {
        self.tables
            .iter()
            .flat_map(|t| {
                t.decisions
                    .iter()
                    .filter(|d| d.widened)
                    .map(move |d| format!("{}.{}: {}", t.source_name, d.name, d.reason))
            })
            .collect()
    }
}
