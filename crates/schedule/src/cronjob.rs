//! [`cronjob_manifest`]: the same schedule as a Kubernetes `batch/v1`
//! CronJob, for clusters that should start the job themselves.
//!
//! Secrets reach the container only as `secretKeyRef`s: the spec holds
//! the names of a Secret and its key, never a value, and an argument with a
//! password in it is refused. Arguments can use them as `$(ENV_NAME)`,
//! which Kubernetes expands from the container's environment.
//! `spec.timeZone` (Kubernetes 1.27 and later) is set when a zone is given;
//! without one Kubernetes reads the schedule in the controller manager's
//! zone, usually UTC. DST is then handled by Kubernetes' own controller.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::error::{Result, ScheduleError};
use crate::Schedule;

/// What Kubernetes does when a run is due while the previous one is still
/// running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConcurrencyPolicy {
    /// Skip the new run (the default: never two backups at once).
    #[default]
    Forbid,
    /// Run both.
    Allow,
    /// Stop the running one and start the new one.
    Replace,
}

impl ConcurrencyPolicy {
    fn as_str(self) -> &'static str {
        match self {
            ConcurrencyPolicy::Forbid => "Forbid",
            ConcurrencyPolicy::Allow => "Allow",
            ConcurrencyPolicy::Replace => "Replace",
        }
    }
}

/// An environment variable taken from a key of a Kubernetes Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEnv {
    /// The variable's name in the container (`DATABASE_URL`).
    pub env: String,
    /// The Secret's name.
    pub secret: String,
    /// The key inside the Secret.
    pub key: String,
}

/// Container resource requests and limits (`cpu: 500m`, `memory: 1Gi`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// What the scheduler reserves.
    pub requests: BTreeMap<String, String>,
    /// What the container may not exceed.
    pub limits: BTreeMap<String, String>,
}

/// Everything a CronJob manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronJobSpec {
    /// The CronJob's name (at most 52 characters: Kubernetes appends a
    /// suffix for each Job); also the container's name.
    pub name: String,
    /// The namespace; the one `kubectl` applies to when `None`.
    pub namespace: Option<String>,
    /// A standard five-field cron expression or `@daily`-style nickname.
    pub schedule: String,
    /// An IANA time zone name for `spec.timeZone`.
    pub time_zone: Option<String>,
    /// The container image.
    pub image: String,
    /// The container's arguments (the image's entrypoint runs them).
    pub args: Vec<String>,
    /// Environment variables from Secrets.
    pub env_from_secret: Vec<SecretEnv>,
    /// What to do when a run is due during another.
    pub concurrency_policy: ConcurrencyPolicy,
    /// Retries of a failed run (new pods) before the Job fails.
    pub backoff_limit: u32,
    /// Finished Jobs kept after success.
    pub successful_jobs_history_limit: u32,
    /// Finished Jobs kept after failure (their pods' logs with them).
    pub failed_jobs_history_limit: u32,
    /// A run that could not start this many seconds after its time is
    /// skipped.
    pub starting_deadline_seconds: Option<u64>,
    /// The container's resources.
    pub resources: Resources,
}

impl CronJobSpec {
    /// A spec with the defaults: `Forbid`, 1 retry, 3 successful and 3
    /// failed Jobs kept, no deadline, no resources, no zone.
    pub fn new(name: &str, schedule: &str, image: &str) -> Self {
        CronJobSpec {
            name: name.to_owned(),
            namespace: None,
            schedule: schedule.to_owned(),
            time_zone: None,
            image: image.to_owned(),
            args: Vec::new(),
            env_from_secret: Vec::new(),
            concurrency_policy: ConcurrencyPolicy::Forbid,
            backoff_limit: 1,
            successful_jobs_history_limit: 3,
            failed_jobs_history_limit: 3,
            starting_deadline_seconds: None,
            resources: Resources::default(),
        }
    }
}

/// The `batch/v1` CronJob YAML for `spec`, after checking every name,
/// the schedule and the zone the way Kubernetes would.
pub fn cronjob_manifest(spec: &CronJobSpec) -> Result<String> {
    validate(spec).map_err(|e| e.context(format!("CronJob `{}`", spec.name)))?;
    Ok(render(spec))
}

fn validate(spec: &CronJobSpec) -> Result<()> {
    check_dns_label("name", &spec.name, 52)?;
    if let Some(ns) = &spec.namespace {
        check_dns_label("namespace", ns, 63)?;
    }
    // Read in the given zone or UTC, never the local TZ variable.
    Schedule::parse(
        &spec.schedule,
        Some(spec.time_zone.as_deref().unwrap_or("UTC")),
    )?;
    if spec.image.is_empty() || spec.image.contains(char::is_whitespace) {
        return Err(ScheduleError::invalid(format!(
            "image `{}` is empty or has spaces",
            spec.image
        )));
    }
    if let Some(i) = spec
        .args
        .iter()
        .position(|a| pgharbor_health::mask_any(a) != *a)
    {
        return Err(ScheduleError::invalid(format!(
            "argument {} holds a password; put it in a Secret and refer to it as $(ENV_NAME)",
            i + 1
        )));
    }
    for s in &spec.env_from_secret {
        check_env_name(&s.env)?;
        check_dns_label("secret name", &s.secret, 253)?;
        check_secret_key(&s.key)?;
    }
    Ok(())
}

/// Lowercase letters, digits and `-`, starting and ending alphanumeric.
fn check_dns_label(what: &str, value: &str, max: usize) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !value.starts_with(['-', '.'])
        && !value.ends_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(ScheduleError::invalid(format!(
            "{what} `{value}` must be 1 to {max} lowercase letters, digits, `-` or `.`, starting and ending with a letter or digit"
        )))
    }
}

fn check_env_name(name: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ScheduleError::invalid(format!(
            "environment variable name `{name}` must be letters, digits and `_`, not starting with a digit"
        )))
    }
}

fn check_secret_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ScheduleError::invalid(format!(
            "secret key `{key}` must be letters, digits, `-`, `_` or `.`"
        )))
    }
}

/// A YAML double-quoted scalar (JSON's escapes are YAML's too).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Lines of YAML, each indented by two spaces per level.
#[derive(Default)]
struct Yaml(String);

impl Yaml {
    fn line(&mut self, level: usize, text: &str) {
        let _ = writeln!(self.0, "{:width$}{text}", "", width = level * 2);
    }

    fn map(&mut self, level: usize, key: &str, entries: &BTreeMap<String, String>) {
        if entries.is_empty() {
            return;
        }
        self.line(level, &format!("{key}:"));
        for (k, v) in entries {
            self.line(level + 1, &format!("{}: {}", quote(k), quote(v)));
        }
    }
}

fn render(spec: &CronJobSpec) -> String {
    let mut y = Yaml::default();
    let labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), spec.name.clone()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "pgharbor".to_owned(),
        ),
    ]);
    y.line(0, "apiVersion: batch/v1");
    y.line(0, "kind: CronJob");
    y.line(0, "metadata:");
    y.line(1, &format!("name: {}", quote(&spec.name)));
    if let Some(ns) = &spec.namespace {
        y.line(1, &format!("namespace: {}", quote(ns)));
    }
    y.map(1, "labels", &labels);
    y.line(0, "spec:");
    y.line(1, &format!("schedule: {}", quote(&spec.schedule)));
    if let Some(tz) = &spec.time_zone {
        y.line(1, &format!("timeZone: {}", quote(tz)));
    }
    y.line(
        1,
        &format!("concurrencyPolicy: {}", spec.concurrency_policy.as_str()),
    );
    if let Some(d) = spec.starting_deadline_seconds {
        y.line(1, &format!("startingDeadlineSeconds: {d}"));
    }
    y.line(
        1,
        &format!(
            "successfulJobsHistoryLimit: {}",
            spec.successful_jobs_history_limit
        ),
    );
    y.line(
        1,
        &format!("failedJobsHistoryLimit: {}", spec.failed_jobs_history_limit),
    );
    y.line(1, "jobTemplate:");
    y.line(2, "spec:");
    y.line(3, &format!("backoffLimit: {}", spec.backoff_limit));
    y.line(3, "template:");
    y.line(4, "metadata:");
    y.map(5, "labels", &labels);
    y.line(4, "spec:");
    y.line(5, "restartPolicy: Never");
    y.line(5, "containers:");
    container(&mut y, 6, spec);
    y.0
}

fn container(y: &mut Yaml, level: usize, spec: &CronJobSpec) {
    y.line(level, &format!("- name: {}", quote(&spec.name)));
    let l = level + 1;
    y.line(l, &format!("image: {}", quote(&spec.image)));
    if !spec.args.is_empty() {
        y.line(l, "args:");
        for a in &spec.args {
            y.line(l + 1, &format!("- {}", quote(a)));
        }
    }
    if !spec.env_from_secret.is_empty() {
        y.line(l, "env:");
        for s in &spec.env_from_secret {
            y.line(l + 1, &format!("- name: {}", quote(&s.env)));
            y.line(l + 2, "valueFrom:");
            y.line(l + 3, "secretKeyRef:");
            y.line(l + 4, &format!("name: {}", quote(&s.secret)));
            y.line(l + 4, &format!("key: {}", quote(&s.key)));
        }
    }
    let r = &spec.resources;
    if !r.requests.is_empty() || !r.limits.is_empty() {
        y.line(l, "resources:");
        y.map(l + 1, "requests", &r.requests);
        y.map(l + 1, "limits", &r.limits);
    }
}
