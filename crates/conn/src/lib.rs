//! Connecting to PostgreSQL the way libpq does, without libpq.
//!
//! * [`ConnConfig`] parses connection strings in both libpq forms — URLs
//!   (`postgresql://user:password@host:port/dbname?param=value`, also
//!   `postgres://`) and `key=value` pairs with libpq's quoting — and fills in
//!   what is missing exactly as libpq does: `PGHOST`, `PGPORT`, `PGUSER`,
//!   `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGPASSFILE`, `PGAPPNAME`,
//!   `PGCONNECT_TIMEOUT` and `PGOPTIONS`, then the Unix socket directory,
//!   port 5432, the OS user name and a database named like the user, and
//!   finally the password file (`~/.pgpass`).
//! * A password with an unencoded `@`, `#`, `/`, `?` or `:` in a URL is never
//!   silently mis-read: the error ([`ConnErrorKind::UnencodedCharacterInPassword`])
//!   names the characters to encode and shows the corrected URL with the
//!   password masked.
//! * Passwords are [`Secret`]s: `Debug`, `Display` and every error print
//!   `[REDACTED]` or `****`, never the password.
//! * [`connect`] opens a `tokio_postgres` connection, with TLS through rustls
//!   according to [`SslMode`], honouring `connect_timeout`, and turns failures
//!   into a [`ConnError`] whose [`kind`](ConnError::kind) says what happened
//!   and whose message says what to do.
//!
//! ```no_run
//! use pgharbor_conn::{connect, ConnConfig};
//!
//! # async fn run() -> Result<(), pgharbor_conn::ConnError> {
//! let config = ConnConfig::parse("postgresql://app@db.example.com/shop?sslmode=require")?;
//! println!("connecting to {config}"); // the password, if any, shows as ****
//! let (client, _task) = match connect(&config).await {
//!     Ok(conn) => conn,
//!     Err(e) if e.is_database_missing() => {
//!         let (admin, _task) = connect(&config.with_dbname("postgres")).await?;
//!         admin
//!             .batch_execute(&format!("CREATE DATABASE \"{}\"", config.dbname()))
//!             .await
//!             .map_err(|e| pgharbor_conn::ConnError::from_postgres(e, &config))?;
//!         connect(&config).await?
//!     }
//!     Err(e) => return Err(e),
//! };
//! let row = client
//!     .query_one("SELECT current_database()", &[])
//!     .await
//!     .map_err(|e| pgharbor_conn::ConnError::from_postgres(e, &config))?;
//! let db: String = row.get(0);
//! assert_eq!(db, config.dbname());
//! # Ok(())
//! # }
//! ```
//!
//! Parsing takes its defaults from an [`Environment`]; [`ConnConfig::parse`]
//! uses the process's, and tests pass their own to
//! [`ConnConfig::parse_with_env`]:
//!
//! ```
//! use pgharbor_conn::{ConnConfig, Environment, Host};
//!
//! let env = Environment::empty()
//!     .with_os_user("alice")
//!     .with_socket_dirs(["/var/run/postgresql"]);
//! let cfg = ConnConfig::parse_with_env("", &env).unwrap();
//! assert_eq!(cfg.host(), &Host::Unix("/var/run/postgresql".into()));
//! assert_eq!((cfg.port(), cfg.user(), cfg.dbname()), (5432, "alice", "alice"));
//! ```
//!
//! Not supported yet (rejected with a clear error rather than ignored):
//! several hosts, `hostaddr`, service files, client certificates, and the
//! certificate-verifying `sslmode`s `verify-ca` and `verify-full`.

mod config;
mod connect;
mod encoding;
mod env;
mod error;
mod keyvalue;
mod params;
mod pgpass;
mod secret;
mod sslmode;
mod tls;
mod url;

#[cfg(test)]
mod tests;

pub use config::{ConnConfig, Host, PasswordSource, DEFAULT_PORT};
pub use connect::{connect, ConnectionTask};
pub use env::{Environment, DEFAULT_SOCKET_DIRS, PG_ENV_VARS};
pub use error::{ConnError, ConnErrorKind};
pub use params::SUPPORTED_PARAMS;
pub use secret::Secret;
pub use sslmode::{InvalidSslMode, SslMode};
