//! Loading into the schema the application created itself (`--into-existing`).
//!
//! Apps with their own migrations (Alembic, Django, Prisma, …) must create their
//! PostgreSQL schema; pgharbor then loads the SQLite rows into it:
//!
//! * tables and columns are matched by name (exact, then case-insensitive);
//!   every value is converted to the **target** column's type;
//! * migration bookkeeping tables are compared, not copied;
//! * tables must be empty (or `--truncate`d, never with `CASCADE`);
//! * tables load in foreign-key order, level by level; foreign keys that a
//!   level order cannot satisfy (self-references, cycles) are dropped for the
//!   load and re-added afterwards, `NOT VALID` when orphan rows exist;
//! * every serial/identity sequence of a loaded table moves above the data;
//! * the result is verified with the target's own column types.
//!
//! When the load fails, the loaded tables are emptied again (they were empty
//! before) and dropped foreign keys are restored.

use crate::error::{pg_error, MigrateError, MigrateErrorKind};
use crate::load::{self, UnitResult};
use crate::progress::Progress;
use crate::resume::{self, DroppedForeignKey, Journal};
use crate::{target, verify};
use pgharbor_conn::ConnConfig;
use pgharbor_core::plan::{ColumnDecision, Plan, ReportedObject, RowKey, TablePlan, ValuePolicy};
use pgharbor_core::report::{FinishIssue, MigrationReport};
use pgharbor_core::schema::{quote_ident, ColumnSpec, PgType, QualifiedName, TableSpec};
use pgharbor_pgwriter::ddl;
use pgharbor_sqlite::inspect::{SourceSchema, SourceTable};
use pgharbor_sqlite::open::SourceSnapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio_postgres::Client;

/// Tables that record which schema migrations ran, with the columns naming a
/// migration; compared, never copied.
pub const BOOKKEEPING: &[(&str, &[&str])] = &[
    ("alembic_version", &["version_num"]),
    ("migratehistory", &["name"]),
    ("django_migrations", &["app", "name"]),
    ("_prisma_migrations", &["migration_name"]),
    ("schema_migrations", &["version"]),
];

fn is_bookkeeping(table: &str) -> bool {
    BOOKKEEPING.iter().any(|(t, _)| *t == table)
}

fn bookkeeping_columns(table: &str) -> &'static [&'static str] {
    BOOKKEEPING
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, c)| *c)
        .unwrap_or(&[])
}

/// Options of `--into-existing`.
#[derive(Debug, Clone, Default)]
pub struct ExistingOptions {
    /// Target schema.
    pub schema: String,
    /// Lossy rules in force.
    pub policy: ValuePolicy,
    /// Parallel workers.
    pub jobs: usize,
    /// Verify after loading.
    pub verify: bool,
    /// Empty the tables being loaded first.
    pub truncate: bool,
    /// Source columns to leave behind, as `table.column`.
    pub ignore_columns: Vec<String>,
    /// Proceed although the migration versions differ.
    pub allow_version_mismatch: bool,
    /// Migration revisions that stand for the same application version, as
    /// `(SQLite id, PostgreSQL id)`: for applications that keep a separate
    /// migration history per database kind (`--corresponding-revision`, or
    /// what a preset knows of its application). A bookkeeping row is its
    /// columns joined by `/` (`version_num`; `app/name` for Django).
    pub corresponding_revisions: Vec<(String, String)>,
    /// Finish an interrupted run (see [`crate::resume`]).
    pub resume: bool,
}

/// A column of a target table.
#[derive(Debug, Clone)]
struct TargetColumn {
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
struct ComputedColumn {
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

/// A foreign key in the target.
#[derive(Debug, Clone)]
struct TargetForeignKey {
    table: String,
    referenced: String,
    name: String,
    definition: String,
}

fn usage(message: String) -> MigrateError {
    MigrateError::new(MigrateErrorKind::Usage, message)
}

async fn target_tables(
    client: &Client,
    schema: &str,
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
            &[&schema],
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
            "the target schema {schema:?} has no tables: with --into-existing the application must create its schema first (start it once against the empty database, then stop it)"
        )));
    }
    Ok(tables)
}

/// Find `name` among `candidates`: exactly, else case-insensitively when unambiguous.
fn match_name<'a>(
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

/// Compare migration bookkeeping rows on both sides, the source's rows taken
/// through the declared corresponding revisions.
fn compare_versions(
    snapshot: &SourceSnapshot,
    schema: &SourceSchema,
    target_versions: &BTreeMap<String, Vec<String>>,
    options: &ExistingOptions,
) -> Result<Vec<ReportedObject>, MigrateError> {
    let mut reported = Vec::new();
    for table in schema.tables.iter().filter(|t| is_bookkeeping(&t.name)) {
        let source = source_rows_as_text(snapshot, &table.name)?;
        let Some(target) = target_versions.get(&table.name) else {
            return Err(usage(format!(
                "the source has migration table {:?} but the target does not: the target schema was not created by the same application (start the application once against the empty PostgreSQL database so its migrations run, then stop it)",
                table.name
            )));
        };
        let pairs: Vec<(String, String)> = source
            .iter()
            .map(|row| {
                let declared = options
                    .corresponding_revisions
                    .iter()
                    .find(|(sqlite, _)| sqlite == row);
                (
                    row.clone(),
                    declared.map_or(row, |(_, postgres)| postgres).clone(),
                )
            })
            .collect();
        let mut corresponding: Vec<String> = pairs.iter().map(|(_, c)| c.clone()).collect();
        corresponding.sort();
        let same = &corresponding == target;
        if !same && !options.allow_version_mismatch {
            return Err(usage(version_mismatch(&table.name, &pairs, target)));
        }
        let state = match (same, corresponding == source) {
            (true, true) => "match",
            (true, false) => "correspond (declared)",
            (false, _) => "DIFFER (allowed)",
        };
        reported.push(ReportedObject {
            kind: "migration bookkeeping".into(),
            name: table.name.clone(),
            note: format!("not copied; versions {state}: {}", shown(target)),
            sql: None,
        });
    }
    Ok(reported)
}

/// Why the run stops when the migration versions differ, with both sides'
/// differing revision ids and the ways on.
fn version_mismatch(table: &str, pairs: &[(String, String)], target: &[String]) -> String {
    let only_source: Vec<String> = pairs
        .iter()
        .filter(|(_, corresponding)| !target.contains(corresponding))
        .map(|(sqlite, _)| sqlite.clone())
        .collect();
    let only_target: Vec<String> = target
        .iter()
        .filter(|t| !pairs.iter().any(|(_, corresponding)| corresponding == *t))
        .cloned()
        .collect();
    let declare = match (only_source.as_slice(), only_target.as_slice()) {
        ([sqlite], [postgres]) => format!("--corresponding-revision {sqlite}={postgres}"),
        _ => "--corresponding-revision SQLITE_ID=POSTGRESQL_ID (once per pair)".into(),
    };
    format!(
        "migration versions differ in {table:?}: the SQLite file has {} where PostgreSQL has {}. \
         Some applications keep a separate migration history per database kind, so their revision ids differ between SQLite and PostgreSQL at the same application version: \
         if both sides run the same application version, declare which revisions correspond with {declare}, or proceed with --allow-version-mismatch. \
         Otherwise run the same application version on both sides: if the source is older, start that version once on the SQLite file so it migrates it; if the target is older, start the newer version against PostgreSQL",
        shown(&only_source),
        shown(&only_target)
    )
}

fn shown(rows: &[String]) -> String {
    if rows.is_empty() {
        "(empty)".into()
    } else {
        rows.join(", ")
    }
}

fn source_rows_as_text(
    snapshot: &SourceSnapshot,
    table: &str,
) -> Result<Vec<String>, MigrateError> {
    let columns = bookkeeping_columns(table);
    let sql = format!(
        "SELECT {} FROM {}",
        pgharbor_sqlite::inspect::select_list(columns),
        quote_ident(table)
    );
    let err = |e| {
        MigrateError::from(pgharbor_sqlite::SqliteError::from_sqlite(
            e,
            format!("reading {table}"),
        ))
    };
    let mut stmt = snapshot.connection().prepare(&sql).map_err(err)?;
    let mut rows: Vec<String> = stmt
        .query_map([], |r| {
            (0..columns.len())
                .map(|i| {
                    r.get_ref(i).map(|v| match v {
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        other => String::from_utf8_lossy(other.as_bytes().unwrap_or_default())
                            .into_owned(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.join("/"))
        })
        .and_then(|rows| rows.collect())
        .map_err(err)?;
    rows.sort();
    Ok(rows)
}

async fn target_bookkeeping(
    client: &Client,
    schema: &str,
    tables: &BTreeMap<String, Vec<TargetColumn>>,
) -> Result<BTreeMap<String, Vec<String>>, MigrateError> {
    let mut out = BTreeMap::new();
    for (name, columns) in BOOKKEEPING.iter().filter(|(n, _)| tables.contains_key(*n)) {
        let key: Vec<String> = columns
            .iter()
            .map(|c| format!("{}::text", quote_ident(c)))
            .collect();
        let sql = format!(
            "SELECT concat_ws('/', {}) FROM {}",
            key.join(", "),
            QualifiedName::new(schema, *name)
        );
        let rows = client
            .query(sql.as_str(), &[])
            .await
            .map_err(pg_error(format!("reading {name}")))?;
        let mut values: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        values.sort();
        out.insert(name.to_string(), values);
    }
    Ok(out)
}

/// Plan loading `schema` (the SQLite side) into the target tables; generated
/// columns on either side are added to `reported`.
fn plan_tables(
    snapshot: &SourceSnapshot,
    schema: &SourceSchema,
    targets: &BTreeMap<String, Vec<TargetColumn>>,
    options: &ExistingOptions,
    reported: &mut Vec<ReportedObject>,
) -> Result<Vec<TablePlan>, MigrateError> {
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    for table in schema.tables.iter().filter(|t| !is_bookkeeping(&t.name)) {
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

/// The columns of one source table matched to its target table.
#[derive(Default)]
struct MappedColumns {
    columns: Vec<ColumnSpec>,
    decisions: Vec<ColumnDecision>,
    source_columns: Vec<String>,
    computed_by_target: Vec<usize>,
}

/// Match the columns of `table` to `target_columns` by name; what does not
/// fit goes to `problems`, generated columns on either side to `reported`.
fn map_columns(
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
        let ignored = options.ignore_columns.contains(&qualified);
        let Some(target_col) = match_name(&col.name, names.iter()) else {
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
fn row_key(table: &SourceTable, source_columns: &[String]) -> RowKey {
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

fn count_rows(snapshot: &SourceSnapshot, table: &str) -> Result<u64, MigrateError> {
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

async fn foreign_keys(
    client: &Client,
    schema: &str,
) -> Result<Vec<TargetForeignKey>, MigrateError> {
    let rows = client
        .query(
            "SELECT c.conrelid::regclass::text, r.relname, p.relname, c.conname, pg_get_constraintdef(c.oid) \
             FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_class p ON p.oid = c.confrelid \
             JOIN pg_namespace n ON n.oid = r.relnamespace WHERE c.contype = 'f' AND n.nspname = $1",
            &[&schema],
        )
        .await
        .map_err(pg_error("reading foreign keys"))?;
    Ok(rows
        .iter()
        .map(|r| TargetForeignKey {
            table: r.get(1),
            referenced: r.get(2),
            name: r.get(3),
            definition: r.get(4),
        })
        .collect())
}

/// Levels of tables such that every foreign key points to an earlier level;
/// foreign keys that prevent such an order are returned to be dropped.
fn load_levels(
    tables: &[TablePlan],
    fks: &[TargetForeignKey],
) -> (Vec<Vec<usize>>, Vec<TargetForeignKey>) {
    let loaded: BTreeSet<&str> = tables.iter().map(|t| t.spec.name.name.as_str()).collect();
    let mut deferred: Vec<TargetForeignKey> = fks
        .iter()
        .filter(|f| f.table == f.referenced && loaded.contains(f.table.as_str()))
        .cloned()
        .collect();
    let mut remaining: Vec<usize> = (0..tables.len()).collect();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut levels = Vec::new();
    while !remaining.is_empty() {
        let ready: Vec<usize> = remaining
            .iter()
            .copied()
            .filter(|i| {
                let name = &tables[*i].spec.name.name;
                fks.iter()
                    .filter(|f| {
                        &f.table == name
                            && f.table != f.referenced
                            && loaded.contains(f.referenced.as_str())
                    })
                    .all(|f| {
                        placed.contains(&f.referenced)
                            || deferred
                                .iter()
                                .any(|d| d.name == f.name && d.table == f.table)
                    })
            })
            .collect();
        if ready.is_empty() {
            // A cycle: defer the foreign keys of the first remaining table and try again.
            let name = tables[remaining[0]].spec.name.name.clone();
            deferred.extend(
                fks.iter()
                    .filter(|f| f.table == name && loaded.contains(f.referenced.as_str()))
                    .cloned(),
            );
            continue;
        }
        for i in &ready {
            placed.insert(tables[*i].spec.name.name.clone());
        }
        remaining.retain(|i| !ready.contains(i));
        levels.push(ready);
    }
    (levels, deferred)
}

/// Plan loading the source into the target's existing tables (no changes made):
/// versions compared, tables and columns matched, target types taken.
pub async fn plan_into_existing(
    client: &Client,
    snapshot: &SourceSnapshot,
    schema: &SourceSchema,
    options: &ExistingOptions,
) -> Result<Plan, MigrateError> {
    let targets = target_tables(client, &options.schema).await?;
    let versions = target_bookkeeping(client, &options.schema, &targets).await?;
    let mut reported = compare_versions(snapshot, schema, &versions, options)?;
    reported.extend(schema.virtual_tables.iter().map(|v| ReportedObject {
        kind: "virtual table".into(),
        name: v.name.clone(),
        note: "not copied (SQLite module)".into(),
        sql: None,
    }));
    let tables = plan_tables(snapshot, schema, &targets, options, &mut reported)?;
    Ok(Plan {
        target_schema: options.schema.clone(),
        tables,
        views: Vec::new(),
        reported,
        policy: options.policy,
    })
}

/// Compare a SQLite file with tables it was loaded into (`verify --into-existing`).
pub async fn verify_existing(
    source_label: &str,
    snapshot: SourceSnapshot,
    schema: SourceSchema,
    target_config: &ConnConfig,
    options: &ExistingOptions,
    progress: Arc<dyn Progress>,
) -> Result<MigrationReport, MigrateError> {
    let started = std::time::Instant::now();
    let client = target::connect(target_config).await?;
    let plan = Arc::new(plan_into_existing(&client, &snapshot, &schema, options).await?);
    let readers = crate::sqlite::readers(&snapshot, options.jobs.max(1))?;
    let verifying = verify::verify_all(target_config, &plan, readers, progress);
    let verifications =
        crate::sqlite::interruptible(verifying, "interrupted during verification").await?;
    let loaded = vec![UnitResult::default(); plan.tables.len()];
    let outcome = crate::finish::FinishOutcome::default();
    Ok(crate::sqlite::build_report(
        source_label,
        target_config,
        &plan,
        &loaded,
        Some(verifications),
        outcome,
        started,
    ))
}

/// Begin a new journaled run (emptiness checked, foreign keys dropped, units
/// written) or read the journal of an interrupted one (`--resume`).
async fn start_or_resume(
    client: &Client,
    snapshot: &SourceSnapshot,
    plan: &Plan,
    options: &ExistingOptions,
    jobs: usize,
) -> Result<Journal, MigrateError> {
    let source_rows: Vec<(String, i64)> = plan
        .tables
        .iter()
        .map(|t| (t.source_name.clone(), t.source_rows as i64))
        .collect();
    if resume::exists(client).await? {
        if options.resume {
            let journal = resume::read(client).await?;
            let mut recorded = journal.source_rows.clone();
            let mut now = source_rows.clone();
            recorded.sort();
            now.sort();
            if recorded != now {
                return Err(usage(
                    "the source changed since the interrupted run (its row counts differ): it cannot be resumed; run with --truncate to start over".into(),
                ));
            }
            return Ok(journal);
        }
        if !options.truncate {
            return Err(resume::journal_in_the_way());
        }
        let old = resume::read(client).await?;
        let mut issues = Vec::new();
        readd_foreign_keys(client, &options.schema, &old.dropped, &mut issues).await;
        resume::remove(client).await?;
    } else if options.resume {
        return Err(usage(
            "--resume: there is no interrupted run to resume in this target".into(),
        ));
    }
    prepare_tables(client, &plan.tables, options.truncate).await?;
    let fks = foreign_keys(client, &options.schema).await?;
    let (levels, deferred) = load_levels(&plan.tables, &fks);
    let mut units = Vec::new();
    for (level, tables) in levels.iter().enumerate() {
        for unit in crate::sqlite::work_units(snapshot, plan, jobs, false)?
            .into_iter()
            .filter(|u| tables.contains(&u.table))
        {
            units.push(resume::JournaledUnit {
                id: units.len() as i32,
                level: level as i32,
                table: plan.tables[unit.table].spec.name.name.clone(),
                range: unit.range,
                done: false,
            });
        }
    }
    let dropped: Vec<DroppedForeignKey> = deferred
        .iter()
        .map(|f| DroppedForeignKey {
            table: f.table.clone(),
            name: f.name.clone(),
            definition: f.definition.clone(),
        })
        .collect();
    let journal = Journal {
        units,
        source_rows,
        dropped,
    };
    resume::create(client, &journal).await?;
    for fk in &journal.dropped {
        let sql = format!(
            "ALTER TABLE {} DROP CONSTRAINT {}",
            QualifiedName::new(&options.schema, &fk.table),
            quote_ident(&fk.name)
        );
        client
            .execute(sql.as_str(), &[])
            .await
            .map_err(pg_error(format!(
                "dropping foreign key {} for the load",
                fk.name
            )))?;
    }
    Ok(journal)
}

/// Load a SQLite file into the application's own schema.
pub async fn migrate_into_existing(
    source_label: &str,
    snapshot: SourceSnapshot,
    schema: SourceSchema,
    target_config: &ConnConfig,
    options: &ExistingOptions,
    progress: Arc<dyn Progress>,
) -> Result<MigrationReport, MigrateError> {
    let started = std::time::Instant::now();
    let jobs = options.jobs.max(1);
    let client = target::connect(target_config).await?;
    let planned = plan_into_existing(&client, &snapshot, &schema, options).await?;
    let reported = planned.reported;
    let plan = Arc::new(Plan {
        target_schema: options.schema.clone(),
        tables: planned.tables,
        views: Vec::new(),
        reported: reported.clone(),
        policy: options.policy,
    });
    let journal = start_or_resume(&client, &snapshot, &plan, options, jobs).await?;
    progress.phase("loading into the existing tables");
    for t in &plan.tables {
        progress.table_started(&t.source_name, t.source_rows);
    }
    let mut loaded = vec![UnitResult::default(); plan.tables.len()];
    let mut pool = crate::sqlite::readers(&snapshot, jobs)?;
    let levels: BTreeSet<i32> = journal.units.iter().map(|u| u.level).collect();
    for level in levels {
        let units: Vec<load::WorkUnit> = journal
            .units
            .iter()
            .filter(|u| u.level == level && !u.done)
            .filter_map(|u| {
                let table = plan
                    .tables
                    .iter()
                    .position(|t| t.spec.name.name == u.table)?;
                Some(load::WorkUnit {
                    table,
                    range: u.range,
                    creates_table: false,
                    journal_id: Some(u.id),
                })
            })
            .collect();
        let loading = load::load_all(target_config, &plan, units, pool, progress.clone());
        match crate::sqlite::interruptible(loading, "interrupted while loading").await {
            Ok((results, back)) => {
                pool = back;
                for (slot, result) in loaded.iter_mut().zip(results) {
                    slot.rows += result.rows;
                    slot.bytes += result.bytes;
                    slot.lossy.add(result.lossy);
                    slot.seconds += result.seconds;
                }
            }
            Err(err) if err.kind() == MigrateErrorKind::Conversion => {
                let restored = restore_after_failure(&client, &plan, &journal.dropped).await;
                return Err(err.also(restored));
            }
            Err(err) => {
                return Err(err.also("The parts loaded so far are kept and recorded in the target: run the same command with --resume to finish (or with --truncate to start over)"))
            }
        }
    }
    let deferred = journal.dropped.clone();
    progress.phase("restoring foreign keys and sequences");
    let mut issues = Vec::new();
    readd_foreign_keys(&client, &options.schema, &deferred, &mut issues).await;
    for t in plan.tables.iter() {
        for c in &t.spec.columns {
            let seq: Option<String> = client
                .query_one(
                    "SELECT pg_get_serial_sequence($1, $2)",
                    &[&t.spec.name.to_string(), &c.name],
                )
                .await
                .map_err(pg_error("looking up sequences"))?
                .get(0);
            if seq.is_some() {
                let sql = ddl::set_identity(&t.spec.name, &c.name, t.sequence_floor);
                client
                    .execute(sql.as_str(), &[])
                    .await
                    .map_err(pg_error(format!(
                        "moving the sequence of {}.{}",
                        t.spec.name, c.name
                    )))?;
            }
        }
        client
            .execute(format!("ANALYZE {}", t.spec.name).as_str(), &[])
            .await
            .map_err(pg_error("ANALYZE"))?;
    }
    let verifications = if options.verify {
        let verifying = verify::verify_all(target_config, &plan, pool, progress.clone());
        Some(crate::sqlite::interruptible(verifying, "interrupted during verification: the load is complete; run `pgharbor verify SOURCE TARGET --into-existing` to check it").await?)
    } else {
        None
    };
    resume::remove(&client).await?;
    let outcome = crate::finish::FinishOutcome {
        issues,
        orphans: Vec::new(),
    };
    Ok(crate::sqlite::build_report(
        source_label,
        target_config,
        &plan,
        &loaded,
        verifications,
        outcome,
        started,
    ))
}

async fn prepare_tables(
    client: &Client,
    tables: &[TablePlan],
    truncate: bool,
) -> Result<(), MigrateError> {
    let mut non_empty = Vec::new();
    for t in tables {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", t.spec.name);
        let row = client
            .query_one(sql.as_str(), &[])
            .await
            .map_err(pg_error(format!("checking {}", t.spec.name)))?;
        if row.get::<_, bool>(0) {
            non_empty.push(t.spec.name.to_string());
        }
    }
    if non_empty.is_empty() {
        return Ok(());
    }
    if !truncate {
        return Err(MigrateError::new(
            MigrateErrorKind::TargetNotEmpty,
            format!(
                "these target tables already hold rows: {} (often rows the application seeded on its first start); nothing was changed. --truncate empties the tables being loaded first (never cascading into other tables)",
                non_empty.join(", ")
            ),
        ));
    }
    let names: Vec<String> = tables.iter().map(|t| t.spec.name.to_string()).collect();
    let sql = format!("TRUNCATE {}", names.join(", "));
    client
        .execute(sql.as_str(), &[])
        .await
        .map_err(pg_error("emptying the tables to load (--truncate)"))?;
    Ok(())
}

async fn readd_foreign_keys(
    client: &Client,
    schema: &str,
    fks: &[DroppedForeignKey],
    issues: &mut Vec<FinishIssue>,
) {
    for fk in fks {
        let table = QualifiedName::new(schema, &fk.table);
        let add = format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} {} NOT VALID",
            quote_ident(&fk.name),
            fk.definition
        );
        if let Err(e) = client.execute(add.as_str(), &[]).await {
            issues.push(FinishIssue {
                kind: "foreign key".into(),
                name: fk.name.clone(),
                error: e.to_string(),
                sql: add,
            });
            continue;
        }
        let validate = ddl::validate_constraint(&table, &fk.name);
        if let Err(e) = client.execute(validate.as_str(), &[]).await {
            let error = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string());
            issues.push(FinishIssue {
                kind: "foreign key left NOT VALID (rows without a parent, kept as in the source)"
                    .into(),
                name: fk.name.clone(),
                error,
                sql: validate,
            });
        }
    }
}

/// Empty the loaded tables again and put back dropped foreign keys.
async fn restore_after_failure(
    client: &Client,
    plan: &Plan,
    deferred: &[DroppedForeignKey],
) -> String {
    let names: Vec<String> = plan
        .tables
        .iter()
        .map(|t| t.spec.name.to_string())
        .collect();
    let emptied = client
        .execute(format!("TRUNCATE {}", names.join(", ")).as_str(), &[])
        .await
        .is_ok();
    let journal_removed = resume::remove(client).await.is_ok();
    let mut issues = Vec::new();
    readd_foreign_keys(client, &plan.target_schema, deferred, &mut issues).await;
    match (emptied && journal_removed, issues.is_empty()) {
        (true, true) => format!(
            "The {} table(s) being loaded were emptied again, as they were before the run",
            names.len()
        ),
        _ => format!(
            "Restoring the target failed: check the tables {} and the foreign keys {}",
            names.join(", "),
            deferred
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
