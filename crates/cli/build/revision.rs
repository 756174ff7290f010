//! The git revision a build is made from, for `pgharbor --version`.
//!
//! Shared by `build.rs` (which exports it as `PGHARBOR_GIT_REVISION`) and the
//! binary's unit tests. A build from a source tree without its own `.git`
//! (a release tarball, a container build that copies no `.git`) says
//! `unknown` rather than asking git, which would otherwise report the
//! revision of whatever repository happens to enclose the tree.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `--version` says when the revision cannot be known.
pub const UNKNOWN: &str = "unknown";

/// The abbreviated commit checked out in `workspace` (12 hex digits), or
/// [`UNKNOWN`] when `workspace` has no `.git` or git cannot say.
pub fn describe(workspace: &Path) -> String {
    if !workspace.join(".git").exists() {
        return UNKNOWN.to_string();
    }
    git(workspace, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| UNKNOWN.to_string())
}

/// The files whose change means HEAD may name another commit: HEAD itself,
/// the branch it points at, and the packed refs (worktrees keep HEAD in
/// their own git directory, branches in the common one). Only files that
/// exist: cargo reruns a build script on every build for a missing one.
pub fn watched_files(workspace: &Path) -> Vec<PathBuf> {
    if !workspace.join(".git").exists() {
        return Vec::new();
    }
    let mut files = Vec::new();
    if let Some(git_dir) = git(workspace, &["rev-parse", "--absolute-git-dir"]) {
        files.push(Path::new(&git_dir).join("HEAD"));
    }
    if let Some(common) = git(
        workspace,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    ) {
        files.push(Path::new(&common).join("packed-refs"));
        if let Some(branch) = git(workspace, &["symbolic-ref", "-q", "HEAD"]) {
            files.push(Path::new(&common).join(branch));
        }
    }
    files.retain(|file| file.exists());
    files
}

/// The trimmed output of `git ARGS` run in `dir`, when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_string())
}
