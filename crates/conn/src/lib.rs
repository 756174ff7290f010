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
//! * Passwords are [`Secret`]s: they have no `Display` (printing one does not
//!   compile), and `Debug` and every error print `[REDACTED]` or `****`,
//!   never the password.
//! * [`connect`] opens a `tokio_postgres` connection, with TLS through rustls
//!   according to [`SslMode`], honouring `connect_timeout`, and turns failures
//!   into a [`ConnError`] whose [`kind`](ConnError::kind) says what happened,
//!   whose message says what failed and whose source (an [`Explained`]) what
//!   went wrong and what to do; [`conn_text`] gives the whole line.
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
//! # TLS
//!
//! TLS goes through rustls (no OpenSSL) with libpq's semantics:
//!
//! * every `sslmode`: `disable`, `allow`, `prefer` (the default), `require`
//!   (encrypted, server not authenticated: a one-line warning says so),
//!   `verify-ca` (the certificate chain is checked against the trusted
//!   roots) and `verify-full` (the chain, and that the certificate names the
//!   host: subjectAltName DNS and IP entries, or the common name when there
//!   are none);
//! * `sslrootcert=FILE` (PEM, one or more CAs; a self-signed server
//!   certificate may be listed directly) or `sslrootcert=system` (the
//!   operating system's trusted roots; makes `verify-full` the default and
//!   refuses weaker modes, as libpq does); without it, `~/.postgresql/root.crt`
//!   when it exists. When a root file exists, `require` (and `prefer`,
//!   `allow`) check the chain like `verify-ca`, as libpq does;
//! * client certificates with `sslcert`/`sslkey`, or
//!   `~/.postgresql/postgresql.crt`/`.key` when they exist; a key readable
//!   by group or others is refused, as libpq does;
//! * `sslnegotiation=postgres|direct` (direct TLS, PostgreSQL 17 and later,
//!   needs `sslmode=require` or stronger);
//! * SCRAM-SHA-256 with channel binding over TLS (`channel_binding=prefer`,
//!   the default; `require` insists, `disable` turns it off); MD5 and
//!   plain-password authentication still work;
//! * `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`,
//!   `PGSSLNEGOTIATION` and `PGCHANNELBINDING` fill in what the connection
//!   string leaves out.
//!
//! Failures have their own [`ConnErrorKind`]s and messages that name the
//! problem: an unknown CA (naming the certificate's issuer and the root
//! file), a host name that is not in the certificate (naming both), an
//! expired certificate (with the date), a server without TLS, a client
//! certificate the server rejected, a missing root file or an unsafe key.
//!
//! ```
//! use pgharbor_conn::{ChannelBinding, ConnConfig, Environment, SslMode, SslRootCert};
//!
//! let env = Environment::empty().with_os_user("app");
//! let cfg = ConnConfig::parse_with_env(
//!     "postgresql://app@db.example.com/shop?sslrootcert=system&channel_binding=require",
//!     &env,
//! )
//! .unwrap();
//! assert_eq!(cfg.sslmode(), SslMode::VerifyFull); // the default with sslrootcert=system
//! assert_eq!(cfg.ssl_root_cert(), Some(&SslRootCert::System));
//! assert_eq!(cfg.channel_binding(), ChannelBinding::Require);
//! ```
//!
//! Not supported (rejected with a clear error rather than ignored): several
//! hosts, `hostaddr`, service files, passphrase-protected client keys
//! (`sslpassword`), certificate revocation lists (`sslcrl`, `sslcrldir`),
//! `sslcertmode`, `sslsni` and `ssl_min_protocol_version`/`ssl_max_protocol_version`
//! (rustls speaks TLS 1.2 and 1.3 only).

mod cancel;
mod chain;
mod config;
mod connect;
mod encoding;
mod env;
mod error;
mod generate;
mod inspect;
mod keyvalue;
mod params;
mod pgpass;
mod reconnect;
mod secret;
mod secret_source;
mod sslmode;
mod tls;
mod url;

#[cfg(test)]
mod tests;

pub use cancel::cancel_query;
pub use chain::{chain_text, chain_text_while, conn_text, keeps_cause_apart, Explained};
pub use config::{ConnConfig, Host, PasswordSource, SslRootCert, DEFAULT_PORT};
pub use connect::{connect, ConnectionTask};
pub use env::{Environment, DEFAULT_SOCKET_DIRS, PG_ENV_VARS};
pub use error::{ConnError, ConnErrorKind};
pub use generate::{
    generate_password, write_secret_file, GenerateError, PasswordRules, DEFAULT_PASSWORD_LENGTH,
    DEFAULT_SYMBOLS, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, SERVICE_REJECTED_SYMBOLS,
};
pub use inspect::{
    inspect_url, inspect_url_with_env, mask_password, UrlInspection, UrlParam, UrlParts,
    UrlProblem, UrlWarning,
};
pub use params::SUPPORTED_PARAMS;
pub use reconnect::{reconnect_wait, RECONNECT_ENV, RECONNECT_PAUSE};
pub use secret::Secret;
pub use secret_source::{SecretSource, SecretSourceError, MAX_SECRET_FILE_BYTES};
pub use sslmode::{ChannelBinding, InvalidSslMode, SslMode, SslNegotiation};
