//! The recipes under deploy/ (Compose files, Kubernetes manifests): checked
//! by scripts/check-deploy.py against the Kubernetes API schemas (offline,
//! kubernetes-validate from scripts/setup.sh) and against this build of
//! pgharbor — every command line in them parses, and the CronJob is what
//! `--print-cronjob` prints.

use std::path::Path;
use std::process::Command;

#[test]
fn deploy_recipes_validate_and_use_only_existing_flags() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = workspace.join(".cache/deploy-check/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh",
        python.display()
    );
    let output = Command::new(python)
        .arg(workspace.join("scripts/check-deploy.py"))
        .arg(env!("CARGO_BIN_EXE_pgharbor"))
        .output()
        .expect("run scripts/check-deploy.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("check-deploy: 0 problem(s)"), "{stdout}");
    for recipe in [
        "kubernetes/backup-cronjob.yaml",
        "kubernetes/open-webui-move-job.yaml",
        "kubernetes/probe-sidecar.yaml",
        "compose/open-webui-move.yaml",
        "compose/backups.yaml",
    ] {
        assert!(stdout.contains(recipe), "{recipe} not checked: {stdout}");
    }
}
