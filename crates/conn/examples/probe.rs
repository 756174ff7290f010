//! Connects with a connection string and prints what it reached, or the
//! error's kind and message. For checking behaviour by hand:
//!
//! ```text
//! cargo run -p pgharbor-conn --example probe -- 'postgresql://user@host/db?sslmode=require'
//! ```
//!
//! Exit status follows `pg_isready`: 0 connected, 2 no response, 3 bad
//! parameters, 1 anything else.

use pgharbor_conn::{connect, ConnConfig, ConnError};
use std::process::ExitCode;

fn fail(e: &ConnError) -> ExitCode {
    eprintln!("error ({:?}): {e}", e.kind());
    if let Some(url) = e.corrected_url() {
        eprintln!("corrected: {url}");
    }
    ExitCode::from(if e.is_bad_parameters() {
        3
    } else if e.is_unreachable() {
        2
    } else {
        1
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let conninfo = std::env::args().nth(1).unwrap_or_default();
    let config = match ConnConfig::parse(&conninfo) {
        Ok(c) => c.with_fallback_application_name("pgharbor-probe"),
        Err(e) => return fail(&e),
    };
    println!("config:   {config}");
    println!("password: {:?}", config.password_source());
    let (client, _task) = match connect(&config).await {
        Ok(conn) => conn,
        Err(e) => return fail(&e),
    };
    let sql = "SELECT version(), current_user, current_database(), \
               COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false), \
               current_setting('search_path'), current_setting('application_name')";
    match client.query_one(sql, &[]).await {
        Ok(row) => {
            let (version, user, db, tls, search_path, app): (
                String,
                String,
                String,
                bool,
                String,
                String,
            ) = (
                row.get(0),
                row.get(1),
                row.get(2),
                row.get(3),
                row.get(4),
                row.get(5),
            );
            println!("server:   {version}");
            println!("session:  user={user} db={db} tls={tls} search_path={search_path} application_name={app}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&ConnError::from_postgres(e, &config)),
    }
}
