//! The copies a plan names, around the convergence: which already finished
//! and verified (skipped; with `--recopy` their database is dropped so the
//! plan re-creates it and they are copied again), and which continue an
//! interrupted copy of the same source (apply is meant to be run again
//! until it converges). The copies themselves are pgharbor-migrate's, and
//! so are these errors (a copy's journal is the migration's).

use crate::plan::Copy;
use pgharbor_migrate::postgres::{finished_copy_of, interrupted_copy_of};
use pgharbor_migrate::MigrateError;
use pgharbor_pgwriter::WriteError;

/// Before the plan is applied: for each copy, whether it is skipped
/// because it already finished and verified. With `recopy` none is skipped,
/// and (unless `dry_run`) the database of each finished copy is dropped.
pub async fn skip_finished_copies(
    copies: &[Copy],
    recopy: bool,
    dry_run: bool,
) -> Result<Vec<bool>, MigrateError> {
    let mut skip = Vec::with_capacity(copies.len());
    for copy in copies {
        let finished = finished_copy_of(&copy.target, &copy.source).await?;
        if finished && recopy && !dry_run {
            drop_database(copy).await?;
        }
        skip.push(finished && !recopy);
    }
    Ok(skip)
}

/// Right before a copy runs: whether it continues an interrupted copy of
/// the same source rather than starting afresh.
pub async fn resumes_interrupted_copy(copy: &Copy) -> Result<bool, MigrateError> {
    interrupted_copy_of(&copy.target, &copy.source).await
}

/// Drops the target database of `copy`, connected through `postgres`.
async fn drop_database(copy: &Copy) -> Result<(), MigrateError> {
    let doing = format!("--recopy: dropping database {}", copy.database);
    let admin = copy.target.with_dbname("postgres");
    let (client, _task) = pgharbor_conn::connect(&admin)
        .await
        .map_err(|e| MigrateError::from(e).context(&doing))?;
    client
        .batch_execute(&format!(
            "DROP DATABASE {} WITH (FORCE)",
            crate::sql::ident(&copy.database)
        ))
        .await
        .map_err(|e| WriteError::from_pg(e, doing).into())
}
