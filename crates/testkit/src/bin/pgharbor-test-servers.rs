//! `pgharbor-test-servers --env-file PATH`: start one PostgreSQL cluster per
//! flavour for a whole test run (what `scripts/test.sh` does before the
//! tests), write their base URLs to PATH as shell assignments
//! (`PGHARBOR_TEST_PG15_URL=postgresql://postgres@127.0.0.1:PORT`), keep
//! them running until standard input is closed or a SIGINT, SIGTERM or
//! SIGHUP arrives, then stop them.
//!
//! Tests reach them through `pgharbor_testkit::TestDatabases`, which gives
//! each test its own fresh databases. The signals are caught from the start:
//! a Ctrl-C in the terminal reaches the whole process group, the clusters'
//! watchdogs included, but not the servers (`pg_ctl` detaches them), so this
//! process must stop them itself. Should it be killed with SIGKILL, the
//! watchdogs stop the servers and remove their directories.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Room for two concurrent tests whose runs open a pool of connections each.
const MAX_CONNECTIONS: &str = "200";

fn main() {
    let env_file = env_file_argument();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let signals = runtime.block_on(async { StopSignals::catch() });
    let started = start_both();
    let assignments: String = started
        .iter()
        .map(|cluster| {
            format!(
                "{}={}\n",
                cluster.flavor().shared_url_var(),
                cluster.url("").trim_end_matches('/')
            )
        })
        .collect();
    write_privately(&env_file, &assignments);
    eprintln!(
        "pgharbor-test-servers: running until standard input closes:\n{}",
        assignments.trim_end()
    );
    let why = runtime.block_on(signals.until_stopped());
    drop(started);
    eprintln!("pgharbor-test-servers: {why}; servers stopped");
}

/// One cluster of each flavour, started side by side.
fn start_both() -> Vec<Cluster> {
    std::thread::scope(|scope| {
        let starts: Vec<_> = [Flavor::Pg15, Flavor::Pg16Vector]
            .into_iter()
            .map(|flavor| scope.spawn(move || start(flavor)))
            .collect();
        starts
            .into_iter()
            .map(|s| s.join().expect("a cluster failed to start"))
            .collect()
    })
}

fn start(flavor: Flavor) -> Cluster {
    Cluster::start_with(
        flavor,
        ClusterOptions {
            extra_conf: vec![("max_connections".into(), MAX_CONNECTIONS.into())],
            ..Default::default()
        },
    )
}

/// SIGINT, SIGTERM and SIGHUP, caught from creation on.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl StopSignals {
    /// Catch the signals (needs a tokio runtime).
    fn catch() -> StopSignals {
        let catch = |kind: SignalKind| signal(kind).expect("catch a signal");
        StopSignals {
            interrupt: catch(SignalKind::interrupt()),
            terminate: catch(SignalKind::terminate()),
            hangup: catch(SignalKind::hangup()),
        }
    }

    /// Wait until standard input reaches its end or a signal arrives, and
    /// say which.
    async fn until_stopped(mut self) -> &'static str {
        let (closed, stdin_closed) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = closed.send(());
        });
        tokio::select! {
            _ = stdin_closed => "standard input closed",
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
        }
    }
}

/// The PATH of `--env-file PATH`, the only argument.
fn env_file_argument() -> PathBuf {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, path] if flag == "--env-file" => PathBuf::from(path),
        _ => {
            eprintln!("usage: pgharbor-test-servers --env-file PATH");
            std::process::exit(2);
        }
    }
}

/// Write `text` to `path` (mode 0600) all at once: readers see the whole
/// file or none, as it appears by rename.
fn write_privately(path: &Path, text: &str) {
    let partial = path.with_extension("partial");
    fs::write(&partial, text).unwrap_or_else(|e| panic!("write {}: {e}", partial.display()));
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", partial.display()));
    fs::rename(&partial, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}
