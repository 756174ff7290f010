//! [`apply`]: read the state, compute the changes, run them.

use crate::diff::plan_changes;
use crate::error::{server_message, ApplyError, Result};
use crate::plan::Plan;
use crate::report::{Change, Report};
use crate::state::{Server, State};
use pgharbor_conn::{connect, ConnConfig, Secret};
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// How to apply a plan.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Compute and report the changes, but run none of them.
    pub dry_run: bool,
}

/// Converges the plan's target to the plan: reads the current state from the
/// catalogs, computes the [`Change`]s that differ, and (unless
/// [`ApplyOptions::dry_run`]) runs them one statement at a time, in
/// dependency order. Copies (`copy_from`) are not run: see [`Plan::copies`].
///
/// Everything that can be known to fail is checked before the first change:
/// secrets that cannot be read, unavailable extensions, extensions that need
/// a superuser, roles the connected user may not alter, databases whose
/// encoding or locale differ. A change that fails on the server stops the
/// run with [`ApplyError::ChangeFailed`], which says how many ran before it;
/// applying again continues from there.
pub async fn apply(plan: &Plan, options: &ApplyOptions) -> Result<Report> {
    let config = plan.target_config()?;
    apply_to(plan, &config, options).await
}

/// Like [`apply`], with the target's connection given by the caller instead
/// of the plan's `[target]` (e.g. a URL from the command line).
pub async fn apply_to(plan: &Plan, config: &ConnConfig, options: &ApplyOptions) -> Result<Report> {
    plan.check()?;
    let passwords = resolve_passwords(plan)?;
    let client = open(config, "the target").await?;
    let server = Server::inspect(&client).await?;
    let state = State::read(&client, config, plan, &server).await?;
    let planned = plan_changes(plan, &state, &server, &passwords)?;
    if !options.dry_run {
        execute(&client, config, &planned.changes).await?;
    }
    Ok(Report {
        target: config.to_string(),
        dry_run: options.dry_run,
        user: server.user,
        superuser: server.superuser,
        passwords_compared: server.reads_authid,
        changes: planned.changes,
        unchanged: planned.unchanged,
    })
}

fn resolve_passwords(plan: &Plan) -> Result<BTreeMap<String, Secret>> {
    plan.roles
        .iter()
        .filter_map(|r| r.password.as_ref().map(|p| (r, p)))
        .map(|(role, source)| {
            let secret = source.resolve().map_err(|source| ApplyError::Secret {
                what: format!("the password of role {}", role.name),
                source,
            })?;
            Ok((role.name.clone(), secret))
        })
        .collect()
}

async fn open(config: &ConnConfig, what: &str) -> Result<Client> {
    let (client, _task) = connect(config)
        .await
        .map_err(|source| ApplyError::Connection {
            what: what.to_owned(),
            source,
        })?;
    Ok(client)
}

/// Runs the changes in order; those for another database run over a
/// connection to it, opened when first needed.
async fn execute(admin: &Client, config: &ConnConfig, changes: &[Change]) -> Result<()> {
    let mut others: BTreeMap<&str, Client> = BTreeMap::new();
    for (applied, change) in changes.iter().enumerate() {
        let client = match change.database.as_deref() {
            Some(db) if db != config.dbname() => {
                if !others.contains_key(db) {
                    let client = open(&config.with_dbname(db), &format!("database {db}")).await?;
                    others.insert(db, client);
                }
                &others[db]
            }
            _ => admin,
        };
        client
            .batch_execute(change.execute_sql())
            .await
            .map_err(|e| ApplyError::ChangeFailed {
                object: change.object.clone(),
                description: change.description.clone(),
                sql: change.sql.clone(),
                message: server_message(&e),
                applied,
            })?;
    }
    Ok(())
}
