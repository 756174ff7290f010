//! Tests of the git revision `build.rs` puts into `pgharbor --version`
//! (`build/revision.rs`).

use crate::revision::{describe, watched_files, UNKNOWN};
use std::path::Path;
use std::process::Command;

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=pgharbor",
            "-c",
            "user.email=pgharbor@localhost",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout)
        .expect("git prints UTF-8")
        .trim()
        .to_string()
}

#[test]
fn the_checkout_is_described_by_its_commit_as_built() {
    let head = git(workspace(), &["rev-parse", "--short=12", "HEAD"]);
    assert_eq!(head.len(), 12, "{head}");
    assert_eq!(describe(workspace()), head);
    assert_eq!(env!("PGHARBOR_GIT_REVISION"), head);
}

#[test]
fn a_tree_without_git_is_unknown() {
    let tree = tempfile::tempdir().expect("temp dir");
    assert_eq!(describe(tree.path()), UNKNOWN);
    assert!(watched_files(tree.path()).is_empty());
}

#[test]
fn a_tree_inside_another_repository_does_not_take_its_revision() {
    let outer = tempfile::tempdir().expect("temp dir");
    git(outer.path(), &["init", "-q"]);
    git(
        outer.path(),
        &["commit", "-q", "--allow-empty", "-m", "outer"],
    );
    let tree = outer.path().join("pgharbor-0.1.0");
    std::fs::create_dir(&tree).expect("create the unpacked tree");
    assert_eq!(describe(&tree), UNKNOWN);
}

#[test]
fn a_new_commit_reruns_the_build_script() {
    let files = watched_files(workspace());
    let head = git(workspace(), &["rev-parse", "--absolute-git-dir"]);
    assert!(files.contains(&Path::new(&head).join("HEAD")), "{files:?}");
    assert!(files.iter().all(|file| file.exists()), "{files:?}");
}
