//! Applying the dumped schema to the target: pre-data before the rows,
//! post-data after them, adapted to an older target where that is exact and
//! refused — naming the objects — where it is not.

use crate::error::{MigrateError, MigrateErrorKind};
use crate::postgres::catalog::Extension;
use crate::postgres::dump::{setting_name, Entry};
use crate::postgres::{journal, target_error, Session};
use crate::stop::Crew;
use pgharbor_conn::ConnConfig;
use pgharbor_core::schema::quote_literal;
use pgharbor_pgtools::AttributeOptionFilter;
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// What was adapted for the target.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Adaptations {
    /// Session settings of the dump the target does not know (e.g.
    /// `transaction_timeout` before PostgreSQL 17), left out.
    pub settings_skipped: Vec<String>,
    /// Extensions created at another version than the source's, as
    /// `name source→target`.
    pub extension_versions: Vec<String>,
    /// Column attribute options the target does not recognise (planner
    /// hints such as `n_distinct`, or options only some builds know), left
    /// out, as `option (N columns)`.
    pub attribute_options_skipped: Vec<String>,
}

/// Check every extension of the source against what the target offers and
/// pin each `CREATE EXTENSION` to the source's version where the target has
/// it. Stops (before anything is changed) naming every extension the target
/// lacks or offers only older versions of.
pub async fn check_extensions(
    target: &Client,
    source_extensions: &[Extension],
    entries: &mut [Entry],
    adaptations: &mut Adaptations,
) -> Result<(), MigrateError> {
    let mut problems = Vec::new();
    for ext in source_extensions {
        let offered: Vec<String> = target
            .query(
                "SELECT version FROM pg_available_extension_versions WHERE name = $1 ORDER BY 1",
                &[&ext.name],
            )
            .await
            .map_err(target_error("reading the target's available extensions"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let choice = choose_version(&ext.version, &offered);
        match choice {
            VersionChoice::Same => pin_version(entries, &ext.name, &ext.version),
            VersionChoice::Newer(default) => adaptations
                .extension_versions
                .push(format!("{} {}→{default}", ext.name, ext.version)),
            VersionChoice::Missing => problems.push(format!(
                "{} {} (the target offers {})",
                ext.name,
                ext.version,
                if offered.is_empty() {
                    "no version of it".to_string()
                } else {
                    offered.join(", ")
                }
            )),
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(MigrateError::new(
        MigrateErrorKind::Incompatible,
        format!(
            "the target server lacks extensions the source database uses: {}. Install them on the \
             target (the package of the extension for that PostgreSQL version; on managed services \
             allow-list it, e.g. Azure's azure.extensions) and run again; nothing was copied",
            problems.join("; ")
        ),
    ))
}

#[derive(Debug, PartialEq, Eq)]
enum VersionChoice {
    Same,
    Newer(String),
    Missing,
}

/// The target may run the source's version, or a newer one (the extension's
/// own update path), never only older ones.
fn choose_version(source: &str, offered: &[String]) -> VersionChoice {
    if offered.iter().any(|v| v == source) {
        return VersionChoice::Same;
    }
    let newest = offered
        .iter()
        .max_by(|a, b| compare_versions(a, b))
        .filter(|v| compare_versions(v, source).is_gt());
    match newest {
        Some(v) => VersionChoice::Newer(v.clone()),
        None => VersionChoice::Missing,
    }
}

/// Compare dotted versions numerically where the parts are numbers.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<(u64, String)> {
        v.split(['.', '-'])
            .map(|p| (p.parse::<u64>().unwrap_or(0), p.to_string()))
            .collect()
    };
    parts(a).cmp(&parts(b))
}

fn pin_version(entries: &mut [Entry], name: &str, version: &str) {
    for entry in entries
        .iter_mut()
        .filter(|e| e.kind == "EXTENSION" && e.name == name)
    {
        if let Some(stripped) = entry.sql.trim_end().strip_suffix(';') {
            entry.sql = format!("{stripped} VERSION {};\n", quote_literal(version));
        }
    }
}

/// Leave out session settings the target does not know.
pub async fn drop_unknown_settings(
    target: &Client,
    entries: &mut [Entry],
    adaptations: &mut Adaptations,
) -> Result<(), MigrateError> {
    let known: HashSet<String> = target
        .query("SELECT name FROM pg_settings", &[])
        .await
        .map_err(target_error("reading the target's settings"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut skipped = BTreeSet::new();
    for entry in entries.iter_mut() {
        entry
            .settings
            .retain(|statement| match setting_name(statement) {
                Some(name) if !known.contains(&name) && !name.contains('.') => {
                    skipped.insert(name);
                    false
                }
                _ => true,
            });
    }
    for name in skipped {
        if !adaptations.settings_skipped.contains(&name) {
            adaptations.settings_skipped.push(name);
        }
    }
    Ok(())
}

/// Leave out column attribute options (`ALTER TABLE … ALTER COLUMN … SET
/// (name=value)`) the target does not recognise. Attribute options are
/// hints to the planner, not data; each distinct name is probed on a
/// temporary table ([`AttributeOptionFilter`]), and what is left out is
/// counted in the report.
pub async fn drop_unknown_attribute_options(
    target: &mut Client,
    entries: &mut [Entry],
    adaptations: &mut Adaptations,
) -> Result<(), MigrateError> {
    let mut filter = AttributeOptionFilter::probe(target, entries.iter().map(|e| e.sql.as_str()))
        .await
        .map_err(target_error("probing attribute options"))?;
    if filter.is_empty() {
        return Ok(());
    }
    for entry in entries.iter_mut() {
        entry.sql = filter.apply(&entry.sql);
    }
    adaptations
        .attribute_options_skipped
        .extend(filter.skipped());
    Ok(())
}

/// Apply the pre-data in one transaction, with the journal, after trying the
/// post-data on the still-empty tables in the same transaction (rolled
/// back): whatever the target cannot represent is found before any row is
/// copied. Every failing entry is named; nothing is committed then.
pub async fn apply_pre_data(
    target: &mut Client,
    pre_data: &[Entry],
    post_data: &[Entry],
    source_label: &str,
) -> Result<(), MigrateError> {
    let tx = target
        .transaction()
        .await
        .map_err(target_error("starting the schema transaction"))?;
    let mut failures = Vec::new();
    for entry in pre_data {
        try_entry(&tx, entry, &mut failures).await?;
    }
    tx.batch_execute("SAVEPOINT post_data_trial")
        .await
        .map_err(target_error("trying the post-data"))?;
    if failures.is_empty() {
        for entry in post_data {
            try_entry(&tx, entry, &mut failures).await?;
        }
    }
    if !failures.is_empty() {
        drop(tx);
        return Err(incompatible(&failures));
    }
    tx.batch_execute("ROLLBACK TO SAVEPOINT post_data_trial; RESET ALL")
        .await
        .map_err(target_error("trying the post-data"))?;
    journal::create(&tx, source_label).await?;
    tx.commit()
        .await
        .map_err(target_error("committing the schema"))?;
    Ok(())
}

/// A failed entry: its label and the server's message.
#[derive(Debug, Clone)]
struct Failure {
    label: String,
    message: String,
    missing_role: Option<String>,
}

async fn try_entry(
    tx: &tokio_postgres::Transaction<'_>,
    entry: &Entry,
    failures: &mut Vec<Failure>,
) -> Result<(), MigrateError> {
    tx.batch_execute("SAVEPOINT entry")
        .await
        .map_err(target_error("applying the schema"))?;
    match tx.batch_execute(&entry.script()).await {
        Ok(()) => tx.batch_execute("RELEASE SAVEPOINT entry").await,
        Err(err) => {
            failures.push(failure(entry, &err));
            tx.batch_execute("ROLLBACK TO SAVEPOINT entry").await
        }
    }
    .map_err(target_error("applying the schema"))
}

fn failure(entry: &Entry, err: &tokio_postgres::Error) -> Failure {
    let (message, missing_role) = match err.as_db_error() {
        Some(db) => {
            let role = (db.code().code() == "42704")
                .then(|| db.message().strip_prefix("role \""))
                .flatten()
                .and_then(|rest| rest.strip_suffix("\" does not exist"))
                .map(str::to_string);
            (db.message().to_string(), role)
        }
        None => (err.to_string(), None),
    };
    Failure {
        label: entry.label(),
        message,
        missing_role,
    }
}

fn incompatible(failures: &[Failure]) -> MigrateError {
    let roles: BTreeSet<&str> = failures
        .iter()
        .filter_map(|f| f.missing_role.as_deref())
        .collect();
    let listed: Vec<String> = failures
        .iter()
        .take(20)
        .map(|f| format!("{}: {}", f.label, f.message))
        .collect();
    let more = failures.len().saturating_sub(listed.len());
    let mut message =
        format!(
        "the target cannot take {} object(s) of the source's schema, so nothing was copied: {}{}",
        failures.len(),
        listed.join("; "),
        if more > 0 { format!("; and {more} more") } else { String::new() }
    );
    if !roles.is_empty() {
        let names: Vec<&str> = roles.into_iter().collect();
        message.push_str(&format!(
            ". Roles missing on the target: {} — create them first (pgharbor apply, or CREATE ROLE), \
             or copy without ownership and privileges (--no-owner --no-privileges)",
            names.join(", ")
        ));
    }
    MigrateError::new(MigrateErrorKind::Incompatible, message)
}

/// When a post-data entry may run: indexes and keys in parallel, then foreign
/// keys in parallel, then everything else in dump order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Wave {
    IndexesAndKeys,
    ForeignKeys,
    Rest,
}

fn wave(entry: &Entry) -> Wave {
    match entry.kind.as_str() {
        "INDEX" | "CONSTRAINT" => Wave::IndexesAndKeys,
        "FK CONSTRAINT" => Wave::ForeignKeys,
        _ => Wave::Rest,
    }
}

/// Apply the post-data entries not yet `done` (positions into `entries`),
/// each in its own transaction with its journal record, over `jobs`
/// connections; `cancel` stops them (their statements too).
pub async fn apply_post_data(
    target: &ConnConfig,
    session: &Session,
    entries: &[Entry],
    done: &HashSet<i32>,
    jobs: usize,
    cancel: &CancellationToken,
) -> Result<(), MigrateError> {
    for current in [Wave::IndexesAndKeys, Wave::ForeignKeys, Wave::Rest] {
        if cancel.is_cancelled() {
            return Err(crate::stop::interrupted());
        }
        let todo: Vec<(i32, Entry)> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i as i32, e))
            .filter(|(i, e)| wave(e) == current && !done.contains(i))
            .map(|(i, e)| (i, e.clone()))
            .collect();
        let workers = if current == Wave::Rest {
            1
        } else {
            jobs.max(1)
        };
        run_wave(target, session, todo, workers, cancel).await?;
    }
    Ok(())
}

async fn run_wave(
    target: &ConnConfig,
    session: &Session,
    todo: Vec<(i32, Entry)>,
    workers: usize,
    cancel: &CancellationToken,
) -> Result<(), MigrateError> {
    let queue = Arc::new(Mutex::new(todo.into_iter()));
    let mut crew = Crew::new(cancel);
    for _ in 0..workers {
        let queue = Arc::clone(&queue);
        let (mut client, stoppable) = session.connect_target(target).await?;
        crew.spawn(vec![stoppable], async move {
            client
                .batch_execute(MAINTENANCE_SETTINGS)
                .await
                .map_err(target_error("preparing to build indexes"))?;
            loop {
                let next = queue.lock().expect("post-data queue").next();
                let Some((position, entry)) = next else {
                    return Ok(());
                };
                apply_entry(&mut client, position, &entry).await?;
            }
        });
    }
    crew.join(MigrateErrorKind::Write, "post-data").await
}

/// Apply one post-data entry in its own transaction, with its journal record.
pub(crate) async fn apply_entry(
    client: &mut Client,
    position: i32,
    entry: &Entry,
) -> Result<(), MigrateError> {
    let doing = || format!("creating {}", entry.label());
    let tx = client.transaction().await.map_err(target_error(doing()))?;
    tx.batch_execute(&entry.script())
        .await
        .map_err(target_error(doing()))?;
    journal::post_data_done(&tx, position).await?;
    tx.commit().await.map_err(target_error(doing()))?;
    client
        .batch_execute(&format!("RESET ALL; {MAINTENANCE_SETTINGS}"))
        .await
        .map_err(target_error(doing()))
}

/// Session settings of connections building indexes.
pub(crate) const MAINTENANCE_SETTINGS: &str =
    "SET maintenance_work_mem = '256MB'; SET synchronous_commit = off";

/// The table an index or key entry is built on, as (schema, name) unquoted:
/// `CREATE [UNIQUE] INDEX … ON [ONLY] s.t …` or `ALTER TABLE [ONLY] s.t
/// ADD CONSTRAINT …` (primary keys, unique and exclusion constraints).
pub fn index_or_key_table(entry: &Entry) -> Option<(String, String)> {
    let sql = entry.sql.as_str();
    let rest = match wave(entry) {
        Wave::IndexesAndKeys if entry.kind == "INDEX" => {
            let after = &sql[sql.find(" ON ")? + 4..];
            after.strip_prefix("ONLY ").unwrap_or(after)
        }
        Wave::IndexesAndKeys => {
            let after = sql.strip_prefix("ALTER TABLE ")?;
            after.strip_prefix("ONLY ").unwrap_or(after)
        }
        _ => return None,
    };
    let (schema, rest) = identifier(rest)?;
    let (name, _) = identifier(rest.strip_prefix('.')?)?;
    Some((schema, name))
}

/// One SQL identifier at the start of `text` (quoted or not) and the rest.
fn identifier(text: &str) -> Option<(String, &str)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if quoted[i + 1..].starts_with('"') {
                    name.push('"');
                    chars.next();
                } else {
                    return Some((name, &quoted[i + 1..]));
                }
            } else {
                name.push(c);
            }
        }
        return None;
    }
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(text.len());
    (end > 0).then(|| (text[..end].to_string(), &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_versions_are_chosen_exactly_or_newer() {
        let offered = vec![
            "0.5.1".to_string(),
            "0.6.2".to_string(),
            "0.10.0".to_string(),
        ];
        assert_eq!(choose_version("0.6.2", &offered), VersionChoice::Same);
        assert_eq!(
            choose_version("0.6.0", &offered),
            VersionChoice::Newer("0.10.0".into())
        );
        assert_eq!(choose_version("0.11.0", &offered), VersionChoice::Missing);
        assert_eq!(choose_version("1.0", &[]), VersionChoice::Missing);
    }

    fn entry(kind: &str, sql: &str) -> Entry {
        Entry {
            name: "x".into(),
            kind: kind.into(),
            schema: "public".into(),
            owner: "app".into(),
            sql: sql.into(),
            settings: vec![],
        }
    }

    #[test]
    fn indexes_and_keys_know_their_table() {
        let table = |kind, sql| index_or_key_table(&entry(kind, sql));
        assert_eq!(
            table(
                "INDEX",
                "CREATE UNIQUE INDEX i ON public.t USING btree (a);\n"
            ),
            Some(("public".into(), "t".into()))
        );
        assert_eq!(
            table(
                "INDEX",
                "CREATE INDEX i ON ONLY \"My Schema\".\"we\"\"ird\" USING btree (a);\n"
            ),
            Some(("My Schema".into(), "we\"ird".into()))
        );
        assert_eq!(
            table(
                "CONSTRAINT",
                "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n"
            ),
            Some(("public".into(), "t".into()))
        );
        assert_eq!(
            table("FK CONSTRAINT", "ALTER TABLE ONLY public.c\n    ADD CONSTRAINT f FOREIGN KEY (t) REFERENCES public.t(id);\n"),
            None
        );
    }

    #[test]
    fn create_extension_is_pinned() {
        let mut entries = vec![Entry {
            name: "vector".into(),
            kind: "EXTENSION".into(),
            schema: "-".into(),
            owner: "-".into(),
            sql: "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;\n".into(),
            settings: vec![],
        }];
        pin_version(&mut entries, "vector", "0.6.2");
        assert_eq!(
            entries[0].sql,
            "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public VERSION '0.6.2';\n"
        );
    }
}
