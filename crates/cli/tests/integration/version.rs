//! `pgharbor --version`: the package version and the commit it was built from.

use crate::harness::pgharbor;
use std::process::Command;

/// The abbreviated commit checked out in the workspace, as build.rs takes it.
pub fn checked_out_revision() -> String {
    let output = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .expect("run git");
    assert!(output.status.success(), "git rev-parse: {output:?}");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_string()
}

/// What `pgharbor --version` prints for this checkout (`pgharbor-backup`
/// for `pgharbor backup --version`: `program` is the name clap prints).
pub fn expected_version_line(program: &str) -> String {
    format!(
        "{program} {} (git {})\n",
        env!("CARGO_PKG_VERSION"),
        checked_out_revision()
    )
}

#[test]
fn version_names_the_package_version_and_the_commit() {
    let run = pgharbor(&["--version"]).success();
    assert_eq!(run.stdout, expected_version_line("pgharbor"));
}

#[test]
fn subcommands_print_the_same_version() {
    let run = pgharbor(&["backup", "--version"]).success();
    assert_eq!(run.stdout, expected_version_line("pgharbor-backup"));
}
