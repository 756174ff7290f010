//! The landing of `--into-existing`: tables checked empty (or emptied), the
//! resume journal, loads in foreign-key order, secondary indexes rebuilt
//! after each table's load, foreign keys and sequences restored, and the tables emptied again when a value cannot be loaded.

use super::indexes::{drop_indexes, droppable_indexes, rebuild_missing, schedule_rebuilds};
use super::{usage, ExistingOptions};
use crate::error::{pg_error, MigrateError, MigrateErrorKind};
use crate::finish::FinishOutcome;
use crate::journal::into_existing::{self, DroppedForeignKey, DroppedIndex, Journal};
use crate::load::WorkUnit;
use crate::progress::Progress;
use crate::run::Landing;
use crate::schedule::{Schedule, Stage, StepId};
use pgharbor_core::plan::{Plan, TablePlan};
use pgharbor_core::report::{FinishIssue, MigrationReport};
use pgharbor_core::schema::{quote_ident, QualifiedName};
use pgharbor_pgwriter::ddl;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_postgres::Client;

/// A foreign key in the target.
#[derive(Debug, Clone)]
pub(super) struct TargetForeignKey {
    table: String,
    referenced: String,
    name: String,
    definition: String,
}

pub(super) async fn foreign_keys(
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
pub(super) fn load_levels(
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
            // A cycle: defer the foreign keys of the first remaining table and try again
            // (once each: its self-references are deferred already).
            let name = tables[remaining[0]].spec.name.name.clone();
            let more: Vec<TargetForeignKey> = fks
                .iter()
                .filter(|f| f.table == name && loaded.contains(f.referenced.as_str()))
                .filter(|f| {
                    !deferred
                        .iter()
                        .any(|d| d.name == f.name && d.table == f.table)
                })
                .cloned()
                .collect();
            deferred.extend(more);
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

/// How a run began: its journal, and the restore of an earlier run it
/// finished first.
pub(super) struct Begun {
    /// The journal the run loads under.
    pub journal: Journal,
    /// What [`finish_restore`] found and did, when it ran.
    pub earlier_run_restored: Option<String>,
}

/// Begin a new journaled run (emptiness checked, foreign keys dropped, units
/// written) or read the journal of an interrupted one (`--resume`). A
/// journal left by a run stopped while it undid its load is finished first
/// ([`finish_restore`]), whatever the options: nothing of that run is kept,
/// so this run starts over; what cannot be put back joins `issues`.
pub(super) async fn start_or_resume(
    client: &Client,
    plan: &Plan,
    options: &ExistingOptions,
    units: &[WorkUnit],
    issues: &mut Vec<FinishIssue>,
) -> Result<Begun, MigrateError> {
    crate::journal::legacy::upgrade(client).await?;
    let left = match into_existing::exists(client).await? {
        true => Some(into_existing::read(client).await?),
        false => None,
    };
    let mut earlier_run_restored = None;
    match left {
        Some(old) if old.restoring => {
            earlier_run_restored = Some(finish_restore(client, options, &old, issues).await?);
        }
        Some(journal) if options.resume => {
            check_source_unchanged(plan, &journal)?;
            return Ok(Begun {
                journal,
                earlier_run_restored,
            });
        }
        Some(_) if !options.truncate => return Err(into_existing::journal_in_the_way()),
        Some(old) => put_back("--truncate", client, &options.schema, &old, &mut Vec::new()).await?,
        None if options.resume => {
            return Err(usage(
                "--resume: there is no interrupted run to resume in this target".into(),
            ))
        }
        None => {}
    }
    let journal = start(client, plan, options, units).await?;
    Ok(Begun {
        journal,
        earlier_run_restored,
    })
}

/// Refuse to resume `journal` when the source's row counts differ from
/// those it recorded.
fn check_source_unchanged(plan: &Plan, journal: &Journal) -> Result<(), MigrateError> {
    let mut now = source_rows(plan);
    let mut recorded = journal.source_rows.clone();
    recorded.sort();
    now.sort();
    if recorded != now {
        return Err(usage(
            "the source changed since the interrupted run (its row counts differ): it cannot be resumed; run with --truncate to start over".into(),
        ));
    }
    Ok(())
}

/// The source's rows per table, as the journal records them.
fn source_rows(plan: &Plan) -> Vec<(String, i64)> {
    plan.tables
        .iter()
        .map(|t| (t.source_name.clone(), t.source_rows as i64))
        .collect()
}

/// Put back the indexes and foreign keys the interrupted run of `old`
/// dropped (what cannot be put back joins `issues`), then remove its
/// journal. An index that cannot be built again stops it there, with an
/// error that begins with `doing`: the journal keeps its definition.
async fn put_back(
    doing: &str,
    client: &Client,
    schema: &str,
    old: &Journal,
    issues: &mut Vec<FinishIssue>,
) -> Result<(), MigrateError> {
    let unbuilt = rebuild_missing(client, schema, &old.dropped_indexes).await;
    if !unbuilt.is_empty() {
        return Err(MigrateError::new(
            MigrateErrorKind::Write,
            format!(
                "{doing}: the indexes {} that the interrupted run dropped could not be built again; nothing else was changed (its journal, schema {}, keeps their definitions)",
                unbuilt.join(", "),
                crate::journal::SCHEMA
            ),
        ));
    }
    readd_foreign_keys(client, schema, &old.dropped, issues).await;
    into_existing::remove(client).await
}

/// Finish the restore of a run that failed on a value and was stopped
/// after emptying its tables again (`old` is its journal, no unit done):
/// put back what it dropped (what cannot be put back joins `issues`) and
/// remove its journal. Returns the statement of what was found and done.
async fn finish_restore(
    client: &Client,
    options: &ExistingOptions,
    old: &Journal,
    issues: &mut Vec<FinishIssue>,
) -> Result<String, MigrateError> {
    let issues_before = issues.len();
    let doing = "finishing the restore of an earlier run that failed and was stopped while undoing its load";
    put_back(doing, client, &options.schema, old, issues).await?;
    let tables: BTreeSet<&str> = old.units.iter().map(|u| u.table.as_str()).collect();
    let not_put_back = if issues.len() == issues_before {
        String::new()
    } else {
        let names: Vec<&str> = issues[issues_before..]
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        format!(" (except the foreign keys {}: see below)", names.join(", "))
    };
    let mut said = format!(
        "Found an earlier run that failed and was stopped while undoing its load: it had emptied the {} table(s) it loaded ({}) again; this run put back the {} index(es) and {} foreign key(s) it had dropped{not_put_back}, removed its journal (schema {}) and started over",
        tables.len(),
        tables.into_iter().collect::<Vec<_>>().join(", "),
        old.dropped_indexes.len(),
        old.dropped.len(),
        crate::journal::SCHEMA
    );
    if options.resume {
        said.push_str(" (--resume: nothing of that run was kept to finish)");
    }
    Ok(said)
}

/// Begin a new journaled run: tables checked empty (or emptied), the
/// journal written, then the foreign keys and indexes it lists dropped.
async fn start(
    client: &Client,
    plan: &Plan,
    options: &ExistingOptions,
    units: &[WorkUnit],
) -> Result<Journal, MigrateError> {
    prepare_tables(client, &plan.tables, options).await?;
    let names: Vec<String> = plan
        .tables
        .iter()
        .map(|t| t.spec.name.name.clone())
        .collect();
    let dropped_indexes = droppable_indexes(client, &options.schema, &names).await?;
    let fks = foreign_keys(client, &options.schema).await?;
    let (levels, deferred) = load_levels(&plan.tables, &fks);
    let mut journaled = Vec::new();
    for (level, tables) in levels.iter().enumerate() {
        for unit in units.iter().filter(|u| tables.contains(&u.table)) {
            journaled.push(into_existing::JournaledUnit {
                id: journaled.len() as i32,
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
        units: journaled,
        source_rows: source_rows(plan),
        dropped,
        dropped_indexes,
        restoring: false,
    };
    into_existing::create(client, &journal).await?;
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
    drop_indexes(client, &options.schema, &journal.dropped_indexes).await?;
    Ok(journal)
}

/// The landing of `--into-existing`: the application's tables, emptied
/// (or checked empty), loaded in foreign-key order under a resume journal.
pub struct ExistingTables {
    plan: Arc<Plan>,
    options: ExistingOptions,
    dropped: Vec<DroppedForeignKey>,
    dropped_indexes: Vec<DroppedIndex>,
    indexes_rebuilt: Arc<AtomicU64>,
    issues: Arc<Mutex<Vec<FinishIssue>>>,
    earlier_run_restored: Option<String>,
}

impl ExistingTables {
    /// Land `plan` (from [`plan_into_existing`]) with `options`.
    pub fn new(plan: Arc<Plan>, options: &ExistingOptions) -> Self {
        ExistingTables {
            plan,
            options: options.clone(),
            dropped: Vec::new(),
            dropped_indexes: Vec::new(),
            indexes_rebuilt: Arc::default(),
            issues: Arc::default(),
            earlier_run_restored: None,
        }
    }
}

impl Landing for ExistingTables {
    type Report = MigrationReport;

    fn loading_phase(&self) -> &'static str {
        "loading into the existing tables"
    }

    fn later_phases(&self) -> [&'static str; 2] {
        ["restoring foreign keys and sequences", "verifying"]
    }

    async fn prepare(
        &mut self,
        client: &Client,
        _database_created: bool,
        units: Vec<WorkUnit>,
        schedule: &mut Schedule,
        progress: Arc<dyn Progress>,
    ) -> Result<Arc<dyn Progress>, MigrateError> {
        let plan = &self.plan;
        let mut issues = Vec::new();
        let begun = start_or_resume(client, plan, &self.options, &units, &mut issues).await?;
        self.issues.lock().expect("issues lock").extend(issues);
        self.earlier_run_restored = begun.earlier_run_restored;
        let journal = begun.journal;
        let levels: BTreeSet<i32> = journal.units.iter().map(|u| u.level).collect();
        let mut previous_level: Vec<StepId> = Vec::new();
        for level in levels {
            let mut this_level = Vec::new();
            for journaled in journal.units.iter().filter(|u| u.level == level && !u.done) {
                let Some(table) = plan
                    .tables
                    .iter()
                    .position(|t| t.spec.name.name == journaled.table)
                else {
                    continue;
                };
                let unit = WorkUnit {
                    table,
                    range: journaled.range,
                    creates_table: false,
                    journal_id: Some(journaled.id),
                };
                this_level.push(schedule.load(unit, previous_level.clone()));
            }
            if !this_level.is_empty() {
                previous_level = this_level;
            }
        }
        self.dropped = journal.dropped;
        self.dropped_indexes = journal.dropped_indexes;
        let schema = self.options.schema.clone();
        let mut needs = schedule_rebuilds(
            schedule,
            plan,
            &schema,
            &self.dropped_indexes,
            &self.indexes_rebuilt,
        );
        needs.extend(schedule.all_loads());
        let (plan, dropped, issues) = (plan.clone(), self.dropped.clone(), self.issues.clone());
        schedule.target_step(Stage::Finish, needs, None, move |client| {
            Box::pin(async move {
                let mut found = Vec::new();
                readd_foreign_keys(&client, &schema, &dropped, &mut found).await;
                issues.lock().expect("issues lock").extend(found);
                move_sequences_and_analyze(&client, &plan).await
            })
        });
        Ok(progress)
    }

    async fn close(&mut self, client: &Client) -> Result<FinishOutcome, MigrateError> {
        into_existing::remove(client).await?;
        Ok(FinishOutcome {
            issues: std::mem::take(&mut *self.issues.lock().expect("issues lock")),
            orphans: Vec::new(),
            indexes_rebuilt: self.indexes_rebuilt.load(Ordering::Relaxed),
        })
    }

    async fn fail(&mut self, client: &Client, err: MigrateError, stage: Stage) -> MigrateError {
        let err = match &self.earlier_run_restored {
            Some(statement) => err.also(statement),
            None => err,
        };
        match (err.kind(), stage) {
            (MigrateErrorKind::Conversion, _) => {
                let restored = restore_after_failure(client, &self.plan, &self.dropped, &self.dropped_indexes, &self.options).await;
                err.also(restored)
            }
            (_, Stage::Load) => err.also("The parts loaded so far are kept and recorded in the target: run the same command with --resume to finish (or with --truncate to start over)"),
            _ => err,
        }
    }

    fn interrupted(&self, stage: Stage) -> &'static str {
        match stage {
            Stage::Load => "interrupted while loading",
            Stage::Finish => "interrupted while restoring foreign keys and sequences: every row is in; run the same command with --resume to finish",
            Stage::Verify => "interrupted during verification: the load is complete; run `pgharbor verify SOURCE TARGET --into-existing` to check it",
        }
    }

    fn report(&mut self, mut migration: MigrationReport) -> MigrationReport {
        migration.earlier_run_restored = self.earlier_run_restored.take();
        migration
    }
}

/// Move every serial or identity sequence of the loaded tables above the
/// data, and gather the tables' statistics.
pub(super) async fn move_sequences_and_analyze(
    client: &Client,
    plan: &Plan,
) -> Result<(), MigrateError> {
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
    Ok(())
}

/// Check the tables to load are empty. Tables the preset replaces that hold
/// rows are emptied (with `truncate`, every table to load is), in one
/// `TRUNCATE` together with every table whose foreign keys lead to them,
/// which must be empty; other rows stop the run before anything changed.
pub(super) async fn prepare_tables(
    client: &Client,
    tables: &[TablePlan],
    options: &ExistingOptions,
) -> Result<(), MigrateError> {
    let mut non_empty = Vec::new();
    for t in tables {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", t.spec.name);
        let row = client
            .query_one(sql.as_str(), &[])
            .await
            .map_err(pg_error(format!("checking {}", t.spec.name)))?;
        if row.get::<_, bool>(0) {
            non_empty.push(t);
        }
    }
    let replaced = |t: &TablePlan| options.replaced_tables.contains(&t.spec.name.name);
    let refused: Vec<String> = non_empty
        .iter()
        .filter(|t| !replaced(t))
        .map(|t| t.spec.name.to_string())
        .collect();
    if !refused.is_empty() && !options.truncate {
        return Err(MigrateError::new(
            MigrateErrorKind::TargetNotEmpty,
            format!(
                "these target tables already hold rows: {} (often rows the application seeded on its first start); nothing was changed. --truncate empties the tables being loaded first (never cascading into other tables)",
                refused.join(", ")
            ),
        ));
    }
    let emptied: Vec<String> = if options.truncate {
        tables.iter().map(|t| t.spec.name.to_string()).collect()
    } else {
        non_empty
            .iter()
            .filter(|t| replaced(t))
            .map(|t| t.spec.name.to_string())
            .collect()
    };
    if emptied.is_empty() {
        return Ok(());
    }
    // PostgreSQL empties a table others reference only in the same statement.
    let emptied = with_referencing_tables(client, &emptied).await?;
    let sql = format!("TRUNCATE {}", emptied.join(", "));
    client
        .execute(sql.as_str(), &[])
        .await
        .map_err(pg_error(format!(
            "emptying the tables to load ({})",
            emptied.join(", ")
        )))?;
    Ok(())
}

/// `tables` and every table whose foreign keys lead to one of them: what one
/// `TRUNCATE` must name (PostgreSQL refuses to empty a table another one
/// references, even an empty one, unless both are in the statement). The
/// tables added must be empty: the emptying never reaches rows that are
/// not about to be replaced.
async fn with_referencing_tables(
    client: &Client,
    tables: &[String],
) -> Result<Vec<String>, MigrateError> {
    let rows = client
        .query(
            "WITH RECURSIVE emptied(oid) AS ( \
               SELECT t::regclass::oid FROM unnest($1::text[]) AS t \
               UNION SELECT c.conrelid FROM pg_constraint c JOIN emptied e ON c.confrelid = e.oid \
               WHERE c.contype = 'f') \
             SELECT e.oid::regclass::text FROM emptied e \
             WHERE e.oid <> ALL (SELECT t::regclass::oid FROM unnest($1::text[]) AS t)",
            &[&tables],
        )
        .await
        .map_err(pg_error(
            "finding the tables that reference the tables to empty",
        ))?;
    let mut all: Vec<String> = tables.to_vec();
    let mut holding_rows = Vec::new();
    for name in rows.iter().map(|r| r.get::<_, String>(0)) {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {name})");
        let row = client
            .query_one(sql.as_str(), &[])
            .await
            .map_err(pg_error(format!("checking {name}")))?;
        if row.get::<_, bool>(0) {
            holding_rows.push(name.clone());
        }
        all.push(name);
    }
    if !holding_rows.is_empty() {
        return Err(MigrateError::new(
            MigrateErrorKind::TargetNotEmpty,
            format!(
                "the tables to empty ({}) are referenced by tables that hold rows and are not loaded: {}; nothing was changed. Empty those tables first, or load them too",
                tables.join(", "),
                holding_rows.join(", ")
            ),
        ));
    }
    Ok(all)
}

/// Put back the foreign keys `fks` the load dropped, each added `NOT VALID`
/// then validated; a foreign key already there (put back by a run that
/// failed later, then resumed) is only validated when it is not yet, and
/// what cannot be put back or validated becomes a finish issue.
pub(super) async fn readd_foreign_keys(
    client: &Client,
    schema: &str,
    fks: &[DroppedForeignKey],
    issues: &mut Vec<FinishIssue>,
) {
    for fk in fks {
        let table = QualifiedName::new(schema, &fk.table);
        // A failed look-up adds the key, whose error then says what is wrong.
        let validated = match restored_state(client, &table, &fk.name)
            .await
            .ok()
            .flatten()
        {
            Some(validated) => validated,
            None => {
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
                false
            }
        };
        if validated {
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

/// Whether foreign key `name` of `table` is in the target: `None` when it
/// is missing, else whether it is validated.
async fn restored_state(
    client: &Client,
    table: &QualifiedName,
    name: &str,
) -> Result<Option<bool>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT convalidated FROM pg_constraint \
             WHERE conrelid = $1::text::regclass AND conname = $2 AND contype = 'f'",
            &[&table.to_string(), &name],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Empty the loaded tables again (in one transaction with the journal's
/// turn to `restoring`: see [`into_existing::empty_for_restore`]), put back
/// dropped indexes and foreign keys, then remove the journal — so a run
/// stopped at any point leaves either its rows under a journal that lists
/// them, or empty tables under one whose restore the next run finishes.
pub(super) async fn restore_after_failure(
    client: &Client,
    plan: &Plan,
    deferred: &[DroppedForeignKey],
    indexes: &[DroppedIndex],
    options: &ExistingOptions,
) -> String {
    let names: Vec<String> = plan
        .tables
        .iter()
        .map(|t| t.spec.name.to_string())
        .collect();
    let emptied = into_existing::empty_for_restore(client, &names)
        .await
        .is_ok();
    let unbuilt = rebuild_missing(client, &plan.target_schema, indexes).await;
    if !unbuilt.is_empty() {
        return format!(
            "Restoring the target failed: the indexes {} could not be built again (their definitions stay in the schema {}); run the same command with --resume to build them",
            unbuilt.join(", "),
            crate::journal::SCHEMA
        );
    }
    let mut issues = Vec::new();
    readd_foreign_keys(client, &plan.target_schema, deferred, &mut issues).await;
    let journal_removed = emptied && into_existing::remove(client).await.is_ok();
    let replaced: Vec<String> = plan
        .tables
        .iter()
        .filter(|t| options.replaced_tables.contains(&t.spec.name.name))
        .map(|t| t.spec.name.to_string())
        .collect();
    let seeded = if replaced.is_empty() {
        String::new()
    } else {
        format!(
            " (the rows the application seeded in {} were replaced as its preset says, and are not put back: the next run replaces them again)",
            replaced.join(", ")
        )
    };
    match (journal_removed, issues.is_empty()) {
        (true, true) => format!(
            "The {} table(s) being loaded were emptied again, as they were before the run{seeded}",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> TablePlan {
        TablePlan::empty(QualifiedName::new("public", name))
    }

    fn fk(table: &str, referenced: &str, name: &str) -> TargetForeignKey {
        TargetForeignKey {
            table: table.into(),
            referenced: referenced.into(),
            name: name.into(),
            definition: format!("FOREIGN KEY (x) REFERENCES {referenced}(id)"),
        }
    }

    #[test]
    fn a_self_reference_of_a_table_in_a_cycle_is_deferred_once() {
        // n8n's chat_hub_messages: three self-references, and a cycle with chat_hub_sessions.
        let tables = [table("messages"), table("sessions")];
        let fks = [
            fk("messages", "messages", "previous"),
            fk("messages", "messages", "retry_of"),
            fk("messages", "sessions", "session"),
            fk("sessions", "messages", "last_message"),
        ];
        let (levels, deferred) = load_levels(&tables, &fks);
        let mut names: Vec<&str> = deferred.iter().map(|f| f.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["previous", "retry_of", "session"]);
        assert_eq!(levels, vec![vec![0], vec![1]]);
    }
}
