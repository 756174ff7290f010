//! `pgharbor-test-servers --env-file PATH`: start one PostgreSQL cluster per
//! flavour for a whole test run (what `scripts/test.sh` does before the
//! tests), write their base URLs to PATH as shell assignments
//! (`PGHARBOR_TEST_PG15_URL=postgresql://postgres@127.0.0.1:PORT`), then
//! keep them running until standard input is closed, and stop them.
//!
//! Tests reach them through `pgharbor_testkit::TestDatabases`, which gives
//! each test its own fresh databases. Should this process be killed instead,
//! the clusters' watchdogs stop the servers and remove their directories.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};

/// Room for two concurrent tests whose runs open a pool of connections each.
const MAX_CONNECTIONS: &str = "200";

fn main() {
    let env_file = env_file_argument();
    let started: Vec<Cluster> = std::thread::scope(|scope| {
        let starts: Vec<_> = [Flavor::Pg15, Flavor::Pg16Vector]
            .into_iter()
            .map(|flavor| scope.spawn(move || start(flavor)))
            .collect();
        starts
            .into_iter()
            .map(|s| s.join().expect("a cluster failed to start"))
            .collect()
    });
    let assignments: String = started
        .iter()
        .map(|cluster| {
            let base_url = cluster.url("");
            format!(
                "{}={}\n",
                cluster.flavor().shared_url_var(),
                base_url.trim_end_matches('/')
            )
        })
        .collect();
    write_privately(&env_file, &assignments);
    eprintln!(
        "pgharbor-test-servers: running until standard input closes:\n{}",
        assignments.trim_end()
    );
    let _ = std::io::copy(
        &mut std::io::stdin().lock().take(u64::MAX),
        &mut std::io::sink(),
    );
    drop(started);
    eprintln!("pgharbor-test-servers: stopped");
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
fn write_privately(path: &std::path::Path, text: &str) {
    let partial = path.with_extension("partial");
    fs::write(&partial, text).unwrap_or_else(|e| panic!("write {}: {e}", partial.display()));
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", partial.display()));
    fs::rename(&partial, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}
