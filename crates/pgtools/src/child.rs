//! Client programs run as pgharbor's children so that none outlives it.
//!
//! * Each runs in a process group of its own: a Ctrl-C at the terminal goes
//!   to pgharbor alone, which ends its children itself (a `tokio` child is
//!   killed when its handle is dropped, `kill_on_drop`; a streaming child is
//!   killed and reaped on every path, see `pgharbor-backup`'s `Producer`).
//! * On Linux each asks the kernel for `SIGKILL` when pgharbor dies
//!   (`prctl(PR_SET_PDEATHSIG)`), so even a `kill -9` of pgharbor, which runs
//!   no code of its own, takes `pg_dump`, `pg_restore` and `pg_dumpall` with
//!   it instead of leaving them running against the server. The kernel sends
//!   it when the *thread* that started the child ends: children are started
//!   from the runtime's own threads (async code), which live as long as the
//!   process, never from a `spawn_blocking` task that could return first.
//!   Elsewhere a child outliving a killed pgharbor stops at its next write
//!   to the closed pipe.
//! * A cancelled run stops its children as Ctrl-C at a terminal would
//!   ([`output_unless_cancelled`]): `SIGTERM` first, on which `pg_dump` and
//!   `pg_restore` cancel their statement on the server before exiting (a
//!   killed one leaves its statement running there, a lock wait for ever),
//!   then `SIGKILL` for a child that has not ended after [`STOP_GRACE`].

use std::io;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// How long a child asked to stop gets to end before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A command running `program` as a child that does not outlive pgharbor
/// (see the module overview).
pub fn child_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    configure(&mut command);
    command
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn configure(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    command.process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes system calls through rustix; its error is a raw OS error code
    // (no allocation, no lock), so it is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // pgharbor died between the fork and the prctl: the signal
            // would never come, so do not start at all.
            if rustix::process::getppid() != Some(parent) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
fn configure(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
}

#[cfg(not(unix))]
fn configure(_: &mut Command) {}

/// Run `command` to its end, collecting its standard output and error (as
/// `Command::output` does), unless `cancel` fires first: the child is then
/// stopped (see the module overview) and reaped, and `None` returned.
pub async fn output_unless_cancelled(
    command: tokio::process::Command,
    cancel: &CancellationToken,
) -> io::Result<Option<Output>> {
    output_or_stop(command, cancel, STOP_GRACE).await
}

async fn output_or_stop(
    mut command: tokio::process::Command,
    cancel: &CancellationToken,
    grace: Duration,
) -> io::Result<Option<Output>> {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    // Held until the child ended: a child stopped mid-write must get the
    // signal, not a broken pipe.
    let mut stdout = child.stdout.take().expect("piped standard output");
    let mut stderr = child.stderr.take().expect("piped standard error");
    let ran = tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        ran = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            tokio::try_join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err))?;
            let status = child.wait().await?;
            Ok::<_, io::Error>(Output { status, stdout: out, stderr: err })
        } => Some(ran?),
    };
    if ran.is_none() {
        stop(&mut child, grace).await;
    }
    Ok(ran)
}

/// Ask `child` to stop, kill it when it has not ended after `grace`, and
/// reap it.
async fn stop(child: &mut tokio::process::Child, grace: Duration) {
    ask_to_stop(child);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        // `kill` waits for the child too.
        let _ = child.kill().await;
    }
}

#[cfg(unix)]
fn ask_to_stop(child: &tokio::process::Child) {
    let pid = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32));
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

#[cfg(not(unix))]
fn ask_to_stop(_: &tokio::process::Child) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_child_leads_a_process_group_of_its_own() {
        // Field 5 of /proc/PID/stat is the process group.
        let out = child_command(Path::new("/bin/sh"))
            .args(["-c", "echo $$ $(cut -d' ' -f5 /proc/$$/stat)"])
            .output()
            .expect("run sh");
        let text = String::from_utf8_lossy(&out.stdout);
        let ids: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(ids.len(), 2, "{text}");
        assert_eq!(
            ids[0], ids[1],
            "the child is not its group's leader: {text}"
        );
    }
}

#[cfg(all(test, unix))]
mod stop_tests {
    use super::*;
    use std::path::PathBuf;

    /// `sh -c script` as a child, in `dir`.
    fn shell(dir: &Path, script: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::from(child_command(Path::new("/bin/sh")));
        command.current_dir(dir).args(["-c", script]);
        command
    }

    /// Wait until the child wrote `name` in `dir` (it is then ready to be
    /// stopped), then cancel.
    async fn cancel_once_written(dir: PathBuf, name: &str, cancel: &CancellationToken) {
        while !dir.join(name).exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cancel.cancel();
    }

    #[tokio::test]
    async fn a_finished_child_gives_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let command = shell(dir.path(), "echo out; echo err >&2; exit 3");
        let output = output_unless_cancelled(command, &CancellationToken::new())
            .await
            .unwrap()
            .expect("not cancelled");
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
        assert_eq!(output.status.code(), Some(3));
    }

    #[tokio::test]
    async fn a_cancelled_child_is_asked_to_stop_with_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let command = shell(
            dir.path(),
            "trap 'touch terminated; exit 1' TERM; touch ready; while :; do sleep 0.05; done",
        );
        let cancel = CancellationToken::new();
        let (output, ()) = tokio::join!(
            output_or_stop(command, &cancel, Duration::from_secs(600)),
            cancel_once_written(dir.path().to_path_buf(), "ready", &cancel)
        );
        assert!(output.unwrap().is_none(), "a stopped child has no output");
        assert!(
            dir.path().join("terminated").exists(),
            "the child got SIGTERM and ended on it (not killed after the grace)"
        );
    }

    #[tokio::test]
    async fn a_child_ignoring_sigterm_is_killed_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let command = shell(
            dir.path(),
            "trap '' TERM; echo $$ > pid; touch ready; while :; do sleep 0.05; done",
        );
        let cancel = CancellationToken::new();
        let (output, ()) = tokio::join!(
            output_or_stop(command, &cancel, Duration::from_millis(100)),
            cancel_once_written(dir.path().to_path_buf(), "ready", &cancel)
        );
        assert!(output.unwrap().is_none());
        let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
        assert!(
            !Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "the child was killed and reaped"
        );
    }
}
