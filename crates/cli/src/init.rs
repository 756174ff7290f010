//! pgharbor as PID 1, the first process of a container (`docker run
//! pgharbor backup …`, a Kubernetes CronJob's pod).
//!
//! PID 1 has two duties no other process has: the kernel hands it every
//! orphaned process to reap (a `pg_restore --jobs` worker whose leader was
//! killed, say), and it receives no signal it has not asked for, so a plain
//! `docker stop` (SIGTERM) would do nothing. pgharbor therefore does what a
//! minimal init does: it starts itself again as its only child, passes on
//! the signals that stop a process, reaps every process that ends, and exits
//! with its child's status (128 + the signal when the child was killed).

use std::process::{Command, ExitCode};

#[cfg(unix)]
use rustix::process::{Pid, WaitOptions, WaitStatus};
#[cfg(unix)]
use tokio::signal::unix::{signal, SignalKind};

/// When this process is PID 1, run the command as its child and reap until
/// it ends; `None` otherwise (the command then runs here).
#[cfg(unix)]
pub fn as_init() -> Option<ExitCode> {
    if rustix::process::getpid() != Pid::INIT {
        return None;
    }
    Some(match supervise() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pgharbor: running as PID 1: {e}");
            ExitCode::FAILURE
        }
    })
}

/// Not on this system.
#[cfg(not(unix))]
pub fn as_init() -> Option<ExitCode> {
    None
}

#[cfg(unix)]
fn supervise() -> std::io::Result<ExitCode> {
    use rustix::process::Signal as Sent;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Handlers first: a child ending before them must not be missed.
        let mut children = signal(SignalKind::child())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut quit = signal(SignalKind::quit())?;
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .args(std::env::args_os().skip(1))
            .spawn()?;
        let child = Pid::from_child(&child);
        loop {
            if let Some(status) = reap_all(child)? {
                return Ok(exit_code(status));
            }
            let to = tokio::select! {
                _ = children.recv() => continue,
                _ = term.recv() => Sent::TERM,
                _ = int.recv() => Sent::INT,
                _ = hup.recv() => Sent::HUP,
                _ = quit.recv() => Sent::QUIT,
            };
            let _ = rustix::process::kill_process(child, to);
        }
    })
}

/// Reap every ended process; the status of `child` once it has ended.
#[cfg(unix)]
fn reap_all(child: Pid) -> std::io::Result<Option<WaitStatus>> {
    let mut ended = None;
    loop {
        match rustix::process::waitpid(None, WaitOptions::NOHANG) {
            Ok(Some((pid, status))) if pid == child => ended = Some(status),
            Ok(Some(_)) => {}
            Ok(None) => return Ok(ended),
            Err(rustix::io::Errno::CHILD) => return Ok(ended),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(unix)]
fn exit_code(status: WaitStatus) -> ExitCode {
    let code = status
        .exit_status()
        .or_else(|| status.terminating_signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
