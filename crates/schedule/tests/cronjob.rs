//! The Kubernetes CronJob manifest: valid YAML with the structure
//! `batch/v1` expects, secrets only as references.

use std::collections::BTreeMap;

use pgharbor_schedule::{
    cronjob_manifest, ConcurrencyPolicy, CronJobSpec, Resources, ScheduleErrorKind, SecretEnv,
};
use serde_yaml_ng::Value;

/// The secret value the cluster holds; it must never reach the manifest.
const SECRET_VALUE: &str = "hunter2-real-password";

fn spec() -> CronJobSpec {
    let mut s = CronJobSpec::new(
        "pgharbor-backup",
        "0 2 * * *",
        "ghcr.io/pgharbor/pgharbor:0.1",
    );
    s.namespace = Some("tfvisualizer".to_owned());
    s.time_zone = Some("Europe/Berlin".to_owned());
    s.args = vec![
        "backup".to_owned(),
        "$(DATABASE_URL)".to_owned(),
        "--to".to_owned(),
        "s3://backups/pg".to_owned(),
    ];
    s.env_from_secret = vec![
        SecretEnv {
            env: "DATABASE_URL".to_owned(),
            secret: "database-credentials".to_owned(),
            key: "url".to_owned(),
        },
        SecretEnv {
            env: "AWS_SECRET_ACCESS_KEY".to_owned(),
            secret: "backup-bucket".to_owned(),
            key: "secret-key".to_owned(),
        },
    ];
    s.starting_deadline_seconds = Some(3600);
    s.resources = Resources {
        requests: BTreeMap::from([
            ("cpu".to_owned(), "500m".to_owned()),
            ("memory".to_owned(), "256Mi".to_owned()),
        ]),
        limits: BTreeMap::from([("memory".to_owned(), "1Gi".to_owned())]),
    };
    s
}

fn parse(yaml: &str) -> Value {
    serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

#[test]
fn a_batch_v1_cronjob() {
    let yaml = cronjob_manifest(&spec()).unwrap();
    let v = parse(&yaml);
    assert_eq!(v["apiVersion"], "batch/v1");
    assert_eq!(v["kind"], "CronJob");
    assert_eq!(v["metadata"]["name"], "pgharbor-backup");
    assert_eq!(v["metadata"]["namespace"], "tfvisualizer");
    let s = &v["spec"];
    assert_eq!(s["schedule"], "0 2 * * *");
    assert_eq!(s["timeZone"], "Europe/Berlin");
    assert_eq!(s["concurrencyPolicy"], "Forbid");
    assert_eq!(s["startingDeadlineSeconds"], 3600);
    assert_eq!(s["successfulJobsHistoryLimit"], 3);
    assert_eq!(s["failedJobsHistoryLimit"], 3);
    let job = &s["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 1);
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let c = &pod["containers"][0];
    assert_eq!(c["name"], "pgharbor-backup");
    assert_eq!(c["image"], "ghcr.io/pgharbor/pgharbor:0.1");
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        ["backup", "$(DATABASE_URL)", "--to", "s3://backups/pg"]
    );
    let env = c["env"].as_sequence().unwrap();
    assert_eq!(env.len(), 2);
    for (e, (name, secret, key)) in env.iter().zip([
        ("DATABASE_URL", "database-credentials", "url"),
        ("AWS_SECRET_ACCESS_KEY", "backup-bucket", "secret-key"),
    ]) {
        assert_eq!(e["name"], name);
        assert!(e.get("value").is_none(), "no inline value: {e:?}");
        let r = &e["valueFrom"]["secretKeyRef"];
        assert_eq!(r["name"], secret);
        assert_eq!(r["key"], key);
    }
    assert_eq!(c["resources"]["requests"]["cpu"], "500m");
    assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
    assert!(!yaml.contains(SECRET_VALUE));
}

#[test]
fn optional_parts_are_left_out() {
    let mut s = CronJobSpec::new("b", "@daily", "img");
    s.concurrency_policy = ConcurrencyPolicy::Replace;
    let v = parse(&cronjob_manifest(&s).unwrap());
    assert!(v["spec"].get("timeZone").is_none());
    assert!(v["metadata"].get("namespace").is_none());
    assert_eq!(v["spec"]["schedule"], "@daily");
    assert_eq!(v["spec"]["concurrencyPolicy"], "Replace");
    let c = &v["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert!(c.get("env").is_none() && c.get("args").is_none() && c.get("resources").is_none());
}

#[test]
fn awkward_strings_stay_strings() {
    let mut s = spec();
    s.args = vec![
        "--label=a: b # not a comment".to_owned(),
        "say \"hi\"\\n".to_owned(),
        "yes".to_owned(),
        "123".to_owned(),
        "tab\there".to_owned(),
    ];
    let v = parse(&cronjob_manifest(&s).unwrap());
    let args = &v["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"];
    for (i, a) in s.args.iter().enumerate() {
        assert_eq!(args[i].as_str(), Some(a.as_str()));
    }
}

#[test]
fn invalid_specs_are_refused() {
    type Change = fn(&mut CronJobSpec);
    let cases: Vec<(Change, &str)> = vec![
        (|s| s.name = "Backup_Job".to_owned(), "name `Backup_Job`"),
        (|s| s.name = "a".repeat(53), "1 to 52"),
        (|s| s.schedule = "0 25 * * *".to_owned(), "hour field"),
        (
            |s| s.schedule = "0 0 0 2 * *".to_owned(),
            "expected 5 fields",
        ),
        (
            |s| s.time_zone = Some("Nowhere/City".to_owned()),
            "Nowhere/City",
        ),
        (|s| s.image = "two words".to_owned(), "image"),
        (|s| s.env_from_secret[0].env = "1BAD".to_owned(), "`1BAD`"),
        (
            |s| s.env_from_secret[0].key = "a/b".to_owned(),
            "secret key `a/b`",
        ),
        (
            |s| s.args[1] = format!("postgresql://app:{SECRET_VALUE}@db/app"),
            "argument 2 holds a password",
        ),
    ];
    for (change, expected) in cases {
        let mut s = spec();
        change(&mut s);
        let e = cronjob_manifest(&s).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(expected), "{msg}");
        assert!(!msg.contains(SECRET_VALUE), "{msg}");
        assert!(matches!(
            e.kind(),
            ScheduleErrorKind::InvalidInput
                | ScheduleErrorKind::InvalidSchedule
                | ScheduleErrorKind::InvalidTimeZone
        ));
    }
}
