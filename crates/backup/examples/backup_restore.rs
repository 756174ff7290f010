//! Backs up one PostgreSQL database to a directory, or restores it, with the
//! library alone; `bench/backup.sh` measures it this way until the CLI has
//! `pgharbor backup` and `pgharbor restore`.
//!
//! ```text
//! cargo run --release -p pgharbor-backup --example backup_restore -- \
//!     backup postgresql://postgres@host/postgres DATABASE DIR
//! cargo run --release -p pgharbor-backup --example backup_restore -- \
//!     restore DIR ID postgresql://postgres@host/postgres NEW_NAME JOBS
//! ```
//!
//! Prints the report as JSON on stdout.

use pgharbor_backup::{backup_postgres, restore, BackupOptions, RestoreOptions, Selection};
use pgharbor_conn::ConnConfig;
use pgharbor_objstore::{Destination, DestinationOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json =
        match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["backup", server, database, dir] => {
                let report = backup_postgres(
                    &ConnConfig::parse(server)?,
                    Selection::One(database.to_owned()),
                    &destination(dir)?,
                    &BackupOptions::default(),
                )
                .await?;
                serde_json::json!({ "id": report.id, "size": report.size })
            }
            ["restore", dir, id, server, name, jobs] => {
                let options = RestoreOptions {
                    as_name: Some(name.to_owned()),
                    jobs: jobs.parse()?,
                    ..Default::default()
                };
                let report = restore(
                    &destination(dir)?,
                    id,
                    &ConnConfig::parse(server)?,
                    &options,
                )
                .await?;
                serde_json::to_value(&report)?
            }
            _ => return Err(
                "usage: backup SERVER_URL DATABASE DIR | restore DIR ID SERVER_URL NEW_NAME JOBS"
                    .into(),
            ),
        };
    println!("{json}");
    Ok(())
}

fn destination(dir: &str) -> Result<Destination, Box<dyn std::error::Error>> {
    Ok(Destination::parse(dir, &DestinationOptions::default())?)
}
