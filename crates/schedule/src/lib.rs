//! Running a job on a cron schedule as a long-lived process, or handing the
//! schedule to Kubernetes as a CronJob.
//!
//! * [`Schedule`]: a standard five-field cron expression (or `@daily`-style
//!   nickname) in an IANA time zone, with the next time it names; the
//!   daylight saving time rules are in [`cron`'s documentation](cron).
//! * [`run_forever`]: sleeps until the next time, runs the job, never two
//!   runs at once (overrun times are skipped and counted), serves
//!   Prometheus [`metrics`] and `/healthz`, notifies a [`Webhook`], and
//!   stops cleanly after the run in progress on SIGTERM or SIGINT
//!   ([`shutdown_signal`]). A [`Clock`] makes it testable without waiting.
//! * [`cronjob_manifest`]: the same schedule as a `batch/v1` CronJob, with
//!   secrets only as `secretKeyRef`s.
//!
//! Nothing here knows what the job does: pgharbor's backups run in it.

pub mod clock;
pub mod cron;
pub mod cronjob;
mod error;
pub mod metrics;
pub mod notify;
pub mod runner;

pub use clock::{Clock, ManualClock};
pub use cron::Schedule;
pub use cronjob::{cronjob_manifest, ConcurrencyPolicy, CronJobSpec, Resources, SecretEnv};
pub use error::{Result, ScheduleError, ScheduleErrorKind};
/// The date and time library of this crate's API ([`jiff::Timestamp`]).
pub use jiff;
pub use notify::{Event, Notification, Webhook};
pub use runner::{
    bind_metrics, run_forever, shutdown_signal, JobOutcome, RunTotals, RunnerOptions,
};
