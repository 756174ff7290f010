//! An error as the user reads it: the error, then each cause once, then
//! what was done after the failure (see [`pgharbor_migrate::error::explain`]).
//! The chain is followed through every error of pgharbor's crates that
//! keeps its cause as its source rather than in its message.

use std::error::Error;

/// The text printed after `pgharbor: error: `.
pub fn explain(error: &(dyn Error + 'static)) -> String {
    pgharbor_migrate::error::explain_following(error, &keeps_cause_apart)
}

/// The errors outside the pipeline whose message is their own context, their
/// cause being their source.
fn keeps_cause_apart(error: &(dyn Error + 'static)) -> bool {
    error.is::<pgharbor_apply::ApplyError>()
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
