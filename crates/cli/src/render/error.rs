//! An error as the user reads it: the error, then each cause once, then
//! what was done after the failure (see [`pgharbor_migrate::error::explain`]).
//! The chain is followed through every error of pgharbor's crates that
//! keeps its cause as its source rather than in its message.

use std::error::Error;

/// The text printed after `pgharbor: error: `: the chain, then what a
/// backup's failure left ([`pgharbor_backup::with_afterwards`]).
pub fn explain(error: &(dyn Error + 'static)) -> String {
    let text = pgharbor_migrate::error::explain_following(error, &keeps_cause_apart);
    pgharbor_backup::with_afterwards(text, error)
}

/// The errors outside the pipeline whose message is their own context, their
/// cause being their source: a plan's, and those of health checks, backups,
/// destinations, Redis and connections.
fn keeps_cause_apart(error: &(dyn Error + 'static)) -> bool {
    error.is::<pgharbor_apply::ApplyError>() || pgharbor_health::keeps_cause_apart(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgharbor_migrate::MigrateError;
    use pgharbor_pgwriter::{WriteError, WriteErrorKind};

    #[test]
    fn each_cause_of_a_plan_that_cannot_be_read_is_said_once() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = pgharbor_apply::ApplyError::ReadPlan {
            path: "plan.toml".into(),
            source: missing,
        };
        assert_eq!(err.to_string(), "cannot read the plan plan.toml");
        let text = explain(&err);
        assert_eq!(text, "cannot read the plan plan.toml: no such file");
    }

    #[test]
    fn a_backup_chain_prints_each_layer_once_then_what_the_failure_left() {
        let full = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device");
        let err = pgharbor_backup::BackupError::io("writing the dump", full)
            .context("backup B to /d failed")
            .followed_by("Nothing was stored");
        let failure = anyhow::Error::from(err);
        let text = explain(failure.as_ref());
        assert_eq!(
            text,
            "backup B to /d failed: writing the dump: no space left on device. Nothing was stored"
        );
    }

    #[test]
    fn a_pipeline_chain_prints_each_layer_once() {
        let write = WriteError::new(WriteErrorKind::DiskFull, "could not extend file");
        let err = MigrateError::from(write)
            .context("loading table \"t\"")
            .context("copying into database app")
            .also("Nothing was kept");
        let text = explain(&err);
        assert_eq!(
            text,
            "copying into database app: loading table \"t\": could not extend file. Nothing was kept"
        );
        assert_eq!(text.matches("could not extend file").count(), 1);
    }
}
