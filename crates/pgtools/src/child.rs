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

use std::path::Path;
use std::process::Command;

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
