//! Matching the source's tables and columns with the target's: by name
//! (exact, then case-insensitive), each value converted to the target
//! column's type.

use super::versions::is_bookkeeping;
use super::{usage, ExistingOptions};
use crate::error::{pg_error, MigrateError};
use crate::verify;
use pgharbor_core::plan::{ColumnDecision, ReportedObject, RowKey, TablePlan};
use pgharbor_core::schema::{quote_ident, ColumnSpec, PgType, QualifiedName, TableSpec};
use pgharbor_sqlite::inspect::{SourceSchema, SourceTable};
use pgharbor_sqlite::open::SourceSnapshot;
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// A column of a target table.
#[derive(Debug, Clone)]
pub(super) struct TargetColumn {
    name: String,
    type_name: String,
    not_null: bool,
    has_default: bool,
    /// An enum type: values are sent as their labels, which PostgreSQL checks.
    is_enum: bool,
    /// `GENERATED ALWAYS AS (expression) STORED` (or `VIRTUAL`, from
    /// PostgreSQL 18 on). PostgreSQL computes these values.
    generated: Option<ComputedColumn>,
    /// `GENERATED ALWAYS AS IDENTITY` (COPY writes the given values anyway,
    /// as `INSERT … OVERRIDING SYSTEM VALUE` would).
    identity_always: bool,
}

/// A target column PostgreSQL computes from the row's other columns.
#[derive(Debug, Clone)]
pub(super) struct ComputedColumn {
    /// The expression, as PostgreSQL prints it.
    expression: String,
    /// `STORED` or `VIRTUAL`, from `pg_attribute.attgenerated`.
    kind: &'static str,
}

impl ComputedColumn {
    /// The column's definition as SQL writes it.
    fn definition(&self) -> String {
        format!("GENERATED ALWAYS AS ({}) {}", self.expression, self.kind)
    }
}

impl TargetColumn {
    /// How the target column is described in the plan.
    fn description(&self, table: &str) -> String {
        let mut text = format!(
            "the target column {table}.{} is {}",
            self.name, self.type_name
        );
        if let Some(computed) = &self.generated {
            text.push_str(&format!(
                ", {}: computed by PostgreSQL, not loaded; verification compares it with the values SQLite stored",
                computed.definition()
            ));
        } else if self.identity_always {
            text.push_str(", GENERATED ALWAYS AS IDENTITY: the source's values are kept and its sequence moves above them");
        }
        text
    }
}

pub(super) async fn target_tables(
    client: &Client,
    options: &ExistingOptions,
) -> Result<BTreeMap<String, Vec<TargetColumn>>, MigrateError> {
    let rows = client
        .query(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                    (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''), t.typtype = 'e', \
                    CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END, \
                    a.attidentity = 'a', a.attgenerated::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname, a.attnum",
            &[&options.schema],
        )
        .await
        .map_err(pg_error("reading the target schema"))?;
    let mut tables: BTreeMap<String, Vec<TargetColumn>> = BTreeMap::new();
    for r in rows {
        tables.entry(r.get(0)).or_default().push(TargetColumn {
            name: r.get(1),
            type_name: r.get(2),
            not_null: r.get(3),
            has_default: r.get(4),
            is_enum: r.get(5),
            generated: r
                .get::<_, Option<String>>(6)
                .map(|expression| ComputedColumn {
                    expression,
                    kind: if r.get::<_, String>(8) == "v" {
                        "VIRTUAL"
                    } else {
                        "STORED"
                    },
                }),
            identity_always: r.get(7),
        });
    }
    if tables.is_empty() {
        return Err(usage(format!(
            "the target schema {:?} has no tables: with --into-existing the application must create its schema first{}",
            options.schema,
            options.create_schema_hint()
        )));
    }
    Ok(tables)
}

/// Find `name` among `candidates`: exactly, else case-insensitively when unambiguous.
pub(super) fn match_name<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a String> + Clone,
) -> Option<&'a String> {
    if let Some(exact) = candidates.clone().find(|c| *c == name) {
        return Some(exact);
    }
    let mut folded = candidates.filter(|c| c.eq_ignore_ascii_case(name));
    let first = folded.next()?;
    folded.next().is_none().then_some(first)
}

/// Plan loading `schema` (the SQLite side) into the target tables; generated
/// columns on either side are added to `reported`.
pub(super) fn plan_tables(
    snapshot: &SourceSnapshot,
    schema: &SourceSchema,
    targets: &BTreeMap<String, Vec<TargetColumn>>,
    options: &ExistingOptions,
    reported: &mut Vec<ReportedObject>,
) -> Result<Vec<TablePlan>, MigrateError> {
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    for table in schema.tables.iter() {
        if is_bookkeeping(&table.name, options) {
            continue;
        }
        if let Some(why) = options.skipped(&table.name) {
            reported.push(ReportedObject {
                kind: "table".into(),
                name: table.name.clone(),
                note: format!("skipped, not copied and not verified: {why}"),
                sql: None,
            });
            continue;
        }
        let Some(target_name) = match_name(&table.name, targets.keys()) else {
            problems.push(format!(
                "source table {:?} has no table in the target schema {:?}",
                table.name, options.schema
            ));
            continue;
        };
        let target_columns = &targets[target_name];
        let mapped = map_columns(
            table,
            target_name,
            target_columns,
            options,
            reported,
            &mut problems,
        );
        let rows = count_rows(snapshot, &table.name)?;
        plans.push(TablePlan {
            source_name: table.name.clone(),
            row_key: row_key(table, &mapped.source_columns),
            spec: TableSpec {
                name: QualifiedName::new(&options.schema, target_name),
                columns: mapped.columns,
                primary_key: None,
                indexes: Vec::new(),
                foreign_keys: Vec::new(),
            },
            decisions: mapped.decisions,
            source_rows: rows,
            sequence_floor: table.sequence,
            splittable: !table.without_rowid,
            source_columns: mapped.source_columns,
            computed_by_target: mapped.computed_by_target,
        });
    }
    if !problems.is_empty() {
        return Err(usage(format!(
            "the source does not fit the target schema: {}",
            problems.join("; ")
        )));
    }
    Ok(plans)
}

/// A source column left behind: its report entry, or why the run stops (a
/// preset leaves behind a column the target table has: the preset was
/// written for another version of the application).
fn ignored_column(
    qualified: &str,
    target_name: &str,
    by_user: bool,
    in_target: bool,
) -> Result<ReportedObject, String> {
    let why = match (by_user, in_target) {
        (true, _) => "--ignore-columns",
        (false, false) => "the preset's ignore_columns",
        (false, true) => {
            return Err(format!(
                "column {qualified}: the preset leaves it behind (its ignore_columns) but the target table {target_name:?} has it: the preset was written for another version of the application; --ignore-columns {qualified} leaves it behind anyway"
            ))
        }
    };
    Ok(ReportedObject {
        kind: "column".into(),
        name: qualified.to_string(),
        note: format!("left behind, not copied, not verified: {why}"),
        sql: None,
    })
}

/// The columns of one source table matched to its target table.
#[derive(Default)]
pub(super) struct MappedColumns {
    columns: Vec<ColumnSpec>,
    decisions: Vec<ColumnDecision>,
    source_columns: Vec<String>,
    computed_by_target: Vec<usize>,
}

/// Match the columns of `table` to `target_columns` by name; what does not
/// fit goes to `problems`, generated columns on either side to `reported`.
pub(super) fn map_columns(
    table: &SourceTable,
    target_name: &str,
    target_columns: &[TargetColumn],
    options: &ExistingOptions,
    reported: &mut Vec<ReportedObject>,
    problems: &mut Vec<String>,
) -> MappedColumns {
    let names: Vec<String> = target_columns.iter().map(|c| c.name.clone()).collect();
    let mut mapped = MappedColumns::default();
    let mut matched: Vec<&str> = Vec::new();
    for col in &table.columns {
        let qualified = format!("{}.{}", table.name, col.name);
        let by_user = options.ignore_columns.contains(&qualified);
        let by_preset = options.preset_ignored_columns.contains(&qualified);
        let ignored = by_user || by_preset;
        let target_col = match_name(&col.name, names.iter());
        if ignored {
            match ignored_column(&qualified, target_name, by_user, target_col.is_some()) {
                Ok(entry) => reported.push(entry),
                Err(problem) => problems.push(problem),
            }
        }
        let Some(target_col) = target_col else {
            if let Some(kind) = col.generated {
                reported.push(ReportedObject {
                    kind: "generated column".into(),
                    name: qualified,
                    note: format!("not copied: a {kind} generated column of the SQLite table that the target table {target_name:?} does not have; its values derive from the row's other columns"),
                    sql: None,
                });
            } else if !ignored {
                problems.push(format!("column {qualified} is not in the target table {target_name:?} (--ignore-columns {qualified} leaves it behind)"));
            }
            continue;
        };
        if ignored {
            continue;
        }
        let tc = target_columns
            .iter()
            .find(|c| &c.name == target_col)
            .expect("matched");
        matched.push(&tc.name);
        let pg_type = if tc.is_enum {
            Some(PgType::Text)
        } else {
            verify::parse_type(&tc.type_name)
        };
        let Some(pg_type) = pg_type else {
            if tc.generated.is_none() {
                problems.push(format!(
                    "column {target_name}.{} has type {}, which pgharbor cannot load into yet",
                    tc.name, tc.type_name
                ));
            }
            continue;
        };
        if tc.generated.is_some() {
            mapped.computed_by_target.push(mapped.columns.len());
        }
        let mut reason = tc.description(target_name);
        if let Some(kind) = col.generated {
            reason.push_str(&format!(
                " (the SQLite column is {kind} generated: its computed values are read)"
            ));
        }
        mapped.source_columns.push(col.name.clone());
        mapped.columns.push(ColumnSpec {
            name: tc.name.clone(),
            pg_type,
            nullable: !tc.not_null,
            default: None,
            identity: None,
        });
        mapped.decisions.push(ColumnDecision {
            name: col.name.clone(),
            declared: col.declared.clone(),
            pg_type,
            reason,
            widened: false,
        });
    }
    for tc in target_columns {
        let fed = matched.contains(&tc.name.as_str());
        if let Some(computed) = &tc.generated {
            let compared = mapped.columns.iter().any(|c| c.name == tc.name);
            let in_source = match_name(&tc.name, table.columns.iter().map(|c| &c.name)).is_some();
            let why = match (fed, compared) {
                (true, true) => "verification compares it with the values SQLite stored".into(),
                (true, false) => format!(
                    "not compared either: pgharbor cannot read its type {}",
                    tc.type_name
                ),
                (false, _) if in_source => {
                    "not compared either: --ignore-columns leaves the SQLite column behind".into()
                }
                (false, _) => "the SQLite table has no such column".into(),
            };
            reported.push(ReportedObject {
                kind: "generated column".into(),
                name: format!("{target_name}.{}", tc.name),
                note: format!(
                    "not loaded: PostgreSQL computes it ({}); {why}",
                    computed.definition()
                ),
                sql: None,
            });
        } else if !fed && tc.not_null && !tc.has_default {
            problems.push(format!("target column {target_name}.{} is NOT NULL without a default, and the source has no such column", tc.name));
        }
    }
    mapped
}

/// Rows are named by the source's primary key when every key column is
/// loaded, else by rowid.
pub(super) fn row_key(table: &SourceTable, source_columns: &[String]) -> RowKey {
    let pk = table.primary_key();
    let positions: Vec<usize> = pk
        .iter()
        .filter_map(|i| {
            source_columns
                .iter()
                .position(|c| *c == table.columns[*i].name)
        })
        .collect();
    if positions.len() == pk.len() && !positions.is_empty() {
        RowKey::Columns(positions)
    } else {
        RowKey::Rowid
    }
}

pub(super) fn count_rows(snapshot: &SourceSnapshot, table: &str) -> Result<u64, MigrateError> {
    let rows: i64 = snapshot
        .connection()
        .query_row(
            &format!("SELECT count(*) FROM {}", quote_ident(table)),
            [],
            |r| r.get(0),
        )
        .map_err(|e| {
            MigrateError::from(pgharbor_sqlite::SqliteError::from_sqlite(
                e,
                format!("counting {table}"),
            ))
        })?;
    Ok(rows as u64)
}
