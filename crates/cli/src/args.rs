//! The command line, as PRODUCT.md's contract states it.

use clap::{Args, Parser, Subcommand, ValueEnum};
use pgharbor_conn::SslMode;
use std::path::PathBuf;

/// What `pgharbor --version` prints after the name: the package version and
/// the git commit it was built from (`unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("PGHARBOR_GIT_REVISION"),
    ")"
);

/// Move a self-hosted application's data onto PostgreSQL and prove nothing was lost.
#[derive(Debug, Parser)]
#[command(name = "pgharbor", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); PGHARBOR_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy SOURCE into a PostgreSQL TARGET, then verify every row.
    Migrate(MigrateArgs),
    /// Compare SOURCE with TARGET without copying (counts and content checksums; for a Chroma
    /// store also the exact nearest neighbours, and the vector index's recall).
    Verify(VerifyArgs),
    /// Build a correctly encoded connection URL, or explain one.
    #[command(subcommand)]
    Url(UrlCommand),
    /// Generate secrets (passwords).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Probe a PostgreSQL or Redis server: exit 0 accepting, 1 rejecting, 2 no response, 3 bad parameters (pg_isready's).
    Check(CheckArgs),
    /// Health and activity of a PostgreSQL or Redis server, problems first.
    Status(StatusArgs),
    /// List, then cancel or terminate, sessions idle in a transaction or running too long.
    Kill(KillArgs),
    /// Serve a dashboard, /metrics, /healthz and /api/status for the servers a config file lists.
    Serve(ServeArgs),
    /// Converge a server to PLAN.toml (roles, databases, extensions, grants, settings), then run
    /// the copies it names.
    Apply(ApplyArgs),
    /// Back up a PostgreSQL server's databases (or a Redis server) to DEST, once or on a schedule.
    Backup(BackupArgs),
    /// Restore a backup (DEST/ID, or DEST/latest) into a server; or, with --pgdata, the
    /// point-in-time archive at DEST into a new data directory (--time, --lsn, --xid, --name,
    /// --latest).
    Restore(RestoreArgs),
    /// Take a physical base backup (pg_basebackup) of the whole cluster to DEST, for
    /// point-in-time recovery.
    BaseBackup(BaseBackupArgs),
    /// Archive the server's WAL continuously to DEST (pg_receivewal over a replication slot),
    /// until SIGTERM.
    Archive(ArchiveArgs),
    /// Fetch one archived WAL file from DEST into PATH, checked (the restore_command a
    /// point-in-time restore writes).
    RestoreWal(RestoreWalArgs),
    /// List, verify or prune the backups at a destination.
    #[command(subcommand)]
    Backups(BackupsCommand),
    /// The applications pgharbor knows (built-in presets) with the versions they were tested
    /// with; `presets show NAME` prints one, a starting point for your own --preset FILE.
    Presets(PresetsArgs),
}

/// `pgharbor presets`.
#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// Machine-readable list on stdout.
    #[arg(long)]
    pub json: bool,
    /// `show NAME`: print one preset.
    #[command(subcommand)]
    pub command: Option<PresetsCommand>,
}

/// `pgharbor presets …`.
#[derive(Debug, Subcommand)]
pub enum PresetsCommand {
    /// Print a built-in preset's file (or check a preset FILE and print it).
    Show(PresetsShowArgs),
}

/// `pgharbor presets show`.
#[derive(Debug, Args)]
pub struct PresetsShowArgs {
    /// A built-in preset's name (see `pgharbor presets`) or a preset file.
    #[arg(value_name = "NAME|FILE")]
    pub preset: String,
}

/// Where backups are stored, and how to reach object stores.
#[derive(Debug, Args, Clone)]
pub struct DestArgs {
    /// S3: the endpoint of an S3-compatible service (default: AWS; AWS_ENDPOINT_URL also works).
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    /// S3: path-style requests (the default when an endpoint is given).
    #[arg(long)]
    pub s3_path_style: bool,
    /// S3: the region (AWS_REGION also works).
    #[arg(long)]
    pub s3_region: Option<String>,
    /// Azure Blob: the blob endpoint (e.g. Azurite's; AZURE_STORAGE_BLOB_ENDPOINT also works).
    #[arg(long)]
    pub azure_endpoint: Option<String>,
}

/// How to decrypt an encrypted backup.
#[derive(Debug, Args, Clone)]
pub struct DecryptArgs {
    /// A file holding age identities (AGE-SECRET-KEY-1… lines).
    #[arg(long)]
    pub decrypt_key_file: Option<std::path::PathBuf>,
    /// The environment variable holding the backup's passphrase.
    #[arg(long)]
    pub decrypt_passphrase_env: Option<String>,
    /// A file holding the backup's passphrase.
    #[arg(long)]
    pub decrypt_passphrase_file: Option<std::path::PathBuf>,
}

/// How to encrypt what is stored (age).
#[derive(Debug, Args, Clone)]
pub struct EncryptArgs {
    /// Encrypt with age to this recipient (an age1… public key; repeatable).
    #[arg(long)]
    pub encrypt_recipient: Vec<String>,
    /// Encrypt with age and the passphrase in this environment variable.
    #[arg(long)]
    pub encrypt_passphrase_env: Option<String>,
    /// Encrypt with age and the passphrase in this file.
    #[arg(long)]
    pub encrypt_passphrase_file: Option<std::path::PathBuf>,
}

/// `pgharbor base-backup`.
#[derive(Debug, Args)]
pub struct BaseBackupArgs {
    /// The server: a PostgreSQL URL of a user with the REPLICATION attribute.
    pub url: String,
    /// Where: a directory, file://…, s3://bucket/prefix, az://container/prefix (the same as the
    /// WAL archive's).
    #[arg(long)]
    pub to: String,
    /// zstd level, 1 (fastest) to 19 (smallest).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub compress_level: Option<i32>,
    /// Run as a long-lived process taking a base backup on this cron schedule, e.g. "0 3 * * *".
    #[arg(long)]
    pub every: Option<String>,
    /// Time zone of --every (an IANA name; default: $TZ, else UTC).
    #[arg(long, requires = "every")]
    pub time_zone: Option<String>,
    /// After each base backup, prune with the --keep-* policy: base backups by the backups'
    /// rules, then the WAL no kept base backup needs.
    #[arg(long)]
    pub prune: bool,
    /// Retention (with --prune).
    #[command(flatten)]
    pub keep: KeepArgs,
    /// With --every: serve /metrics and /healthz here (e.g. 0.0.0.0:9187).
    #[arg(long, requires = "every")]
    pub listen: Option<String>,
    /// Encryption.
    #[command(flatten)]
    pub encrypt: EncryptArgs,
    /// Object store options.
    #[command(flatten)]
    pub dest: DestArgs,
    /// Machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pgharbor archive`.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// The server: a PostgreSQL URL of a user with the REPLICATION attribute.
    pub url: String,
    /// Where: a directory, file://…, s3://bucket/prefix, az://container/prefix.
    #[arg(long)]
    pub to: String,
    /// A local directory pg_receivewal writes into (the segment being received); keep it across
    /// restarts (a volume in a container).
    #[arg(long, value_name = "DIR")]
    pub spool: std::path::PathBuf,
    /// The physical replication slot (created when missing): the server keeps the WAL the
    /// archiver has not received.
    #[arg(long, default_value = "pgharbor")]
    pub slot: String,
    /// zstd level, 1 (fastest) to 19 (smallest).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub compress_level: Option<i32>,
    /// Serve /metrics and /healthz here (e.g. 0.0.0.0:9188).
    #[arg(long)]
    pub listen: Option<String>,
    /// The guard: log an error (and count an alert in /metrics) when the slot makes the server
    /// keep more WAL than this, e.g. 8GB.
    #[arg(long, value_name = "SIZE", value_parser = crate::pitr::parse_size)]
    pub alert_slot_wal: Option<u64>,
    /// The guard, explicitly: drop (and re-create) the slot when it makes the server keep more
    /// WAL than this, e.g. 20GB — the server keeps running, the archive gets a gap.
    #[arg(long, value_name = "SIZE", value_parser = crate::pitr::parse_size)]
    pub drop_slot_over: Option<u64>,
    /// Encryption.
    #[command(flatten)]
    pub encrypt: EncryptArgs,
    /// Object store options.
    #[command(flatten)]
    pub dest: DestArgs,
}

/// `pgharbor restore-wal`.
#[derive(Debug, Args)]
pub struct RestoreWalArgs {
    /// The archive's destination.
    pub dest: String,
    /// The WAL file's name (restore_command's %f).
    pub name: String,
    /// Where to write it (restore_command's %p).
    pub path: std::path::PathBuf,
    /// Decryption.
    #[command(flatten)]
    pub decrypt: DecryptArgs,
    /// Object store options.
    #[command(flatten)]
    pub dest_options: DestArgs,
}

/// `pgharbor backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The server: a PostgreSQL URL (its database is backed up unless --database/--all say
    /// otherwise) or redis://… / rediss://…
    pub url: String,
    /// Where: a directory, file://…, s3://bucket/prefix, az://container/prefix.
    #[arg(long)]
    pub to: String,
    /// PostgreSQL: databases to back up (repeat or comma-separate); default: the URL's.
    #[arg(long, value_delimiter = ',')]
    pub database: Vec<String>,
    /// PostgreSQL: every database that accepts connections, plus the roles.
    #[arg(long, conflicts_with = "database")]
    pub all: bool,
    /// PostgreSQL: include the roles (always with --all).
    #[arg(long)]
    pub roles: bool,
    /// PostgreSQL: include the roles' password hashes (needs a superuser).
    #[arg(long)]
    pub with_role_passwords: bool,
    /// zstd level, 1 (fastest) to 19 (smallest); the default balances size and speed (see the
    /// Backups page, docs/backups.md).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub compress_level: Option<i32>,
    /// Encrypt with age to this recipient (an age1… public key; repeatable).
    #[arg(long)]
    pub encrypt_recipient: Vec<String>,
    /// Encrypt with age and the passphrase in this environment variable.
    #[arg(long)]
    pub encrypt_passphrase_env: Option<String>,
    /// Encrypt with age and the passphrase in this file.
    #[arg(long)]
    pub encrypt_passphrase_file: Option<std::path::PathBuf>,
    /// Run as a long-lived process on this cron schedule, e.g. "0 2 * * *".
    #[arg(long)]
    pub every: Option<String>,
    /// Time zone of --every (an IANA name; default: $TZ, else UTC).
    #[arg(long)]
    pub time_zone: Option<String>,
    /// After each backup, verify it (checksums; with --restore-to, a real test restore).
    #[arg(long)]
    pub verify_after: bool,
    /// With --verify-after: the server to test-restore into (a scratch database is created and dropped).
    #[arg(long)]
    pub restore_to: Option<String>,
    /// With --restore-to: directory for the test restore's temporary files (default $TMPDIR).
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<std::path::PathBuf>,
    /// After each backup, prune with the --keep-* policy.
    #[arg(long)]
    pub prune: bool,
    /// Retention (with --prune).
    #[command(flatten)]
    pub keep: KeepArgs,
    /// POST a JSON body to this URL when a scheduled backup fails.
    #[arg(long)]
    pub notify: Option<String>,
    /// With --notify: also on success.
    #[arg(long)]
    pub notify_success: bool,
    /// With --every: serve /metrics and /healthz here (e.g. 0.0.0.0:9187).
    #[arg(long)]
    pub listen: Option<String>,
    /// Print a Kubernetes CronJob running this backup on the --every schedule, instead of running it.
    #[arg(long, requires = "every")]
    pub print_cronjob: bool,
    /// With --print-cronjob: the container image holding pgharbor (default: the tag
    /// scripts/image.sh gives; push it to a registry the cluster pulls from and name that).
    #[arg(long, default_value = concat!("pgharbor:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// With --print-cronjob: the CronJob's name.
    #[arg(long, default_value = "pgharbor-backup")]
    pub name: String,
    /// With --print-cronjob: its namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// With --print-cronjob: an environment variable from a Secret, as ENV=SECRET:KEY (repeatable);
    /// refer to it in the URL as $(ENV).
    #[arg(long)]
    pub secret_env: Vec<String>,
    /// Object store options.
    #[command(flatten)]
    pub dest: DestArgs,
    /// Machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Retention: grandfather-father-son.
#[derive(Debug, Args, Clone, Default)]
pub struct KeepArgs {
    /// Keep the N newest backups.
    #[arg(long, default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest backup of each of the last N days.
    #[arg(long, default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest backup of each of the last N weeks.
    #[arg(long, default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep the newest backup of each of the last N months.
    #[arg(long, default_value_t = 0)]
    pub keep_monthly: u32,
}

/// `pgharbor restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup: DEST/ID (e.g. s3://bucket/pg/20261126T020000Z) or DEST/latest.
    pub backup: String,
    /// The server and database to restore into, as with pg_restore -d: a PostgreSQL URL whose
    /// database is the target (unless --as names another), created with the backup's owner,
    /// encoding and locale when missing, else it must be empty (or --clean). A URL naming postgres
    /// or template1 is only connected through: the database keeps the backup's name. A backup of
    /// several databases restores each under its own name: connect through postgres (…/postgres).
    /// redis://… for a Redis backup. Not given with --pgdata.
    #[arg(required_unless_present = "pgdata", conflicts_with = "pgdata")]
    pub target: Option<String>,
    /// Point-in-time recovery: restore the archive at DEST (the first argument, a destination)
    /// into this new data directory, from the newest base backup that ends before the target.
    #[arg(long, value_name = "DIR")]
    pub pgdata: Option<std::path::PathBuf>,
    /// With --pgdata: the state as committed at this time, e.g. '2026-12-06 10:42:17+01'.
    #[arg(long, requires = "pgdata", group = "recovery_target")]
    pub time: Option<String>,
    /// With --pgdata: replay up to this WAL position (e.g. 0/3000028).
    #[arg(long, requires = "pgdata", group = "recovery_target")]
    pub lsn: Option<String>,
    /// With --pgdata: replay up to this transaction's commit.
    #[arg(long, requires = "pgdata", group = "recovery_target")]
    pub xid: Option<u64>,
    /// With --pgdata: replay up to this restore point (pg_create_restore_point).
    #[arg(long, requires = "pgdata", group = "recovery_target")]
    pub name: Option<String>,
    /// With --pgdata: replay everything the archive holds.
    #[arg(long, requires = "pgdata", group = "recovery_target")]
    pub latest: bool,
    /// With --pgdata: the restored server's port.
    #[arg(long, requires = "pgdata")]
    pub port: Option<u16>,
    /// With --pgdata: a setting for the restored server, NAME=VALUE (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", requires = "pgdata")]
    pub settings: Vec<String>,
    /// With --pgdata: start the restored server (pg_ctl) and wait until recovery has ended;
    /// without it, the start command is printed.
    #[arg(long, requires = "pgdata")]
    pub start: bool,
    /// Restore only this database of a multi-database backup (into the URL's database, or --as).
    #[arg(long)]
    pub database: Option<String>,
    /// Restore into this database instead of the URL's (which is then only used to connect).
    #[arg(long = "as")]
    pub as_name: Option<String>,
    /// Replace a target database that is not empty (dropped and re-created).
    #[arg(long)]
    pub clean: bool,
    /// Connections loading rows at once, and pg_restore jobs (default: number of CPUs).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Directory for temporary files: the archive's table of contents, or the whole
    /// decompressed dump when it cannot stream (large objects, --clean over data);
    /// default $TMPDIR.
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<std::path::PathBuf>,
    /// Restore the backup's roles first.
    #[arg(long)]
    pub roles: bool,
    /// Redis: empty a non-empty target first.
    #[arg(long)]
    pub flush: bool,
    /// Decryption.
    #[command(flatten)]
    pub decrypt: DecryptArgs,
    /// Object store options.
    #[command(flatten)]
    pub dest: DestArgs,
    /// Machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pgharbor backups …`.
#[derive(Debug, Subcommand)]
pub enum BackupsCommand {
    /// The backups at DEST: id, time, databases, size, state, age.
    List(BackupsListArgs),
    /// Check a backup's files against its manifest (default: the newest backup only; --all: every
    /// backup, exit 1 if any is damaged); with --restore-to, also restore into a scratch database
    /// and compare.
    Verify(BackupsVerifyArgs),
    /// Delete backups outside the retention policy (never the newest good one).
    Prune(BackupsPruneArgs),
}

/// `pgharbor backups list`.
#[derive(Debug, Args)]
pub struct BackupsListArgs {
    /// The destination.
    pub dest: String,
    /// Object store options.
    #[command(flatten)]
    pub store: DestArgs,
    /// Machine-readable list on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pgharbor backups verify`.
#[derive(Debug, Args)]
pub struct BackupsVerifyArgs {
    /// The destination.
    pub dest: String,
    /// The backup to check (default: only the newest backup with a manifest; see --all).
    pub id: Option<String>,
    /// Check every backup at the destination: names each damaged backup and file, records the
    /// result (list, status --backups and /metrics show a damaged one as corrupt), exit 1 if any
    /// is damaged.
    #[arg(long, conflicts_with = "id")]
    pub all: bool,
    /// Restore into a scratch database on this server and compare row counts.
    #[arg(long)]
    pub restore_to: Option<String>,
    /// With --restore-to: directory for the test restore's temporary files (default $TMPDIR).
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<std::path::PathBuf>,
    /// Point-in-time archive: re-hash the newest base backup and its WAL, name any missing
    /// segment, restore it with all the WAL into a scratch data directory, start it, replay to
    /// the end, run pg_amcheck when available; recorded like any verification.
    #[arg(long, conflicts_with_all = ["id", "all", "restore_to"])]
    pub pitr: bool,
    /// With --pitr: where the scratch data directory goes, in a private directory of its own
    /// removed afterwards (default $TMPDIR).
    #[arg(long, value_name = "DIR", requires = "pitr")]
    pub scratch_dir: Option<std::path::PathBuf>,
    /// With --pitr: the restored cluster's superuser.
    #[arg(long, default_value = "postgres", requires = "pitr")]
    pub user: String,
    /// Decryption (for --restore-to and --pitr).
    #[command(flatten)]
    pub decrypt: DecryptArgs,
    /// Object store options.
    #[command(flatten)]
    pub store: DestArgs,
    /// Machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pgharbor backups prune`.
#[derive(Debug, Args)]
pub struct BackupsPruneArgs {
    /// The destination.
    pub dest: String,
    /// Retention.
    #[command(flatten)]
    pub keep: KeepArgs,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Object store options.
    #[command(flatten)]
    pub store: DestArgs,
    /// Machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pgharbor apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan file (TOML).
    pub plan: std::path::PathBuf,
    /// Print the exact changes (SQL, passwords masked) and the copies that would run; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Copy again databases whose copy already finished and verified (the database is dropped and
    /// re-created first).
    #[arg(long)]
    pub recopy: bool,
    /// Parallel workers per copy (default: number of CPUs).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Copies: leave ownership out (objects belong to the plan's target user).
    #[arg(long)]
    pub no_owner: bool,
    /// Copies: leave privileges (GRANT) out.
    #[arg(long)]
    pub no_privileges: bool,
    /// Copies: skip verification.
    #[arg(long)]
    pub no_verify: bool,
    /// Machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pgharbor url …`.
#[derive(Debug, Subcommand)]
pub enum UrlCommand {
    /// Print a percent-encoded postgresql:// URL built from its parts.
    Build(UrlBuildArgs),
    /// Show what a connection string means (password masked) and what is risky in it.
    Inspect(UrlInspectArgs),
}

/// `pgharbor url build`.
#[derive(Debug, Args)]
pub struct UrlBuildArgs {
    /// Host name, IP address, or a Unix socket directory such as /var/run/postgresql.
    #[arg(long)]
    pub host: String,
    /// Port (default 5432).
    #[arg(long)]
    pub port: Option<u16>,
    /// User name.
    #[arg(long)]
    pub user: String,
    /// Database name.
    #[arg(long)]
    pub database: String,
    /// Read the password from standard input (trailing newline removed; no echo on a terminal).
    #[arg(long)]
    pub password_stdin: bool,
    /// sslmode: disable, allow, prefer, require, verify-ca or verify-full.
    #[arg(long, value_parser = parse_sslmode)]
    pub sslmode: Option<SslMode>,
    /// Another connection parameter as KEY=VALUE (repeatable), e.g. application_name=app.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
}

/// `pgharbor url inspect`.
#[derive(Debug, Args)]
pub struct UrlInspectArgs {
    /// A PostgreSQL URL or key=value string; `-` reads it from standard input
    /// (keeps a password out of the process list and shell history).
    pub url: String,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pgharbor secret …`.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Generate a random password from the operating system's CSPRNG.
    Generate(GenerateArgs),
}

/// `pgharbor secret generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of characters (at least 16).
    #[arg(long, short = 'l', default_value_t = pgharbor_conn::DEFAULT_PASSWORD_LENGTH)]
    pub length: usize,
    /// The symbol characters to draw from (default: -._~, which need no
    /// encoding in URLs and are accepted by managed services).
    #[arg(
        long,
        value_name = "SET",
        allow_hyphen_values = true,
        conflicts_with = "no_symbols"
    )]
    pub symbols: Option<String>,
    /// Letters and digits only.
    #[arg(long)]
    pub no_symbols: bool,
    /// Write the password to FILE (created with mode 0600) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,
}

fn parse_sslmode(s: &str) -> Result<SslMode, String> {
    s.parse::<SslMode>().map_err(|e| e.to_string())
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("expected KEY=VALUE".to_owned()),
    }
}

/// What to do with NUL characters in text.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NulChoice {
    /// Stop, naming table, row key and column.
    Error,
    /// Remove them and count every changed value.
    Strip,
}

/// What to do with text that is not valid UTF-8.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Utf8Choice {
    /// Stop, naming table, row key and column.
    Error,
    /// Replace invalid sequences with U+FFFD and count every changed value.
    Replace,
}

/// Options shared by `migrate` and `verify`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// A SQLite file (path, or sqlite:PATH), a Chroma directory (chroma:DIR, or a
    /// directory holding chroma.sqlite3), a PostgreSQL URL (postgresql://…, the whole database is
    /// copied), or an application's data directory that a built-in preset recognises (Open
    /// WebUI's, Home Assistant's, n8n's, Langflow's: moved as with --preset NAME).
    pub source: String,
    /// A PostgreSQL URL or key=value string; defaults to $DATABASE_URL.
    pub target: Option<String>,
    /// Schema in the target (default: the first schema of the URL's search_path, else public).
    #[arg(long)]
    pub schema: Option<String>,
    /// Parallel workers (default: number of CPUs).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// NUL characters in text: stop (error, the default) or strip them (the default when the
    /// preset says so, e.g. open-webui, as Open WebUI itself strips them).
    #[arg(long, value_enum)]
    pub nul: Option<NulChoice>,
    /// Application knowledge: a built-in preset's name (`pgharbor presets` lists them, e.g.
    /// open-webui) or a preset file of your own. SOURCE is the application's data directory (or
    /// its database file); the data is loaded into the schema the application created
    /// (--into-existing) by the preset's rules, and the end says what to set next.
    #[arg(long, value_name = "NAME|FILE")]
    pub preset: Option<String>,
    /// Invalid UTF-8 in text: stop (error) or replace with U+FFFD.
    #[arg(long = "invalid-utf8", value_enum, default_value = "error")]
    pub invalid_utf8: Utf8Choice,
    /// Machine-readable report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pgharbor migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Source, target and value rules.
    #[command(flatten)]
    pub common: SourceArgs,
    /// Print the plan (DDL, type decisions, order, warnings) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace tables that already exist in the target (otherwise the run refuses).
    #[arg(long)]
    pub drop_existing: bool,
    /// Skip verification after the load.
    #[arg(long)]
    pub no_verify: bool,
    /// Do not create the target database when it does not exist.
    #[arg(long)]
    pub no_create_database: bool,
    /// Load into tables the application already created in the target, converting
    /// every value to the target column's type.
    #[arg(long)]
    pub into_existing: bool,
    /// With --into-existing: empty the tables being loaded first (never cascading).
    #[arg(long)]
    pub truncate: bool,
    /// With --into-existing: source columns to leave behind, as TABLE.COLUMN (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub ignore_columns: Vec<String>,
    /// With --into-existing: proceed although the migration versions of source and target differ.
    #[arg(long)]
    pub allow_version_mismatch: bool,
    /// With --into-existing: SQLITE_ID=POSTGRESQL_ID declares that two migration revision ids
    /// stand for the same application version (for apps that keep a migration history per
    /// database kind); repeat it for each pair. Django rows are APP/NAME.
    #[arg(long = "corresponding-revision", value_name = "SQLITE_ID=POSTGRESQL_ID", value_parser = parse_revision_pair)]
    pub corresponding_revisions: Vec<(String, String)>,
    /// With --into-existing or a PostgreSQL source: finish a run that was interrupted (killed,
    /// connection lost, disk full) without duplicating or missing rows.
    #[arg(long, conflicts_with = "truncate")]
    pub resume: bool,
    /// PostgreSQL source: leave ownership out (objects belong to the target user), for managed
    /// targets where the source's roles cannot exist.
    #[arg(long)]
    pub no_owner: bool,
    /// PostgreSQL source: leave privileges (GRANT) out.
    #[arg(long)]
    pub no_privileges: bool,
    /// Vector stores (Chroma sources, and Open WebUI's vector_db/ under --preset).
    #[command(flatten)]
    pub vectors: VectorArgs,
    /// Serve the migration's progress as Prometheus metrics on ADDR (/metrics, /healthz) while it runs.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// Where Chroma collections go in PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutChoice {
    /// Open WebUI's document_chunk table (the default with --preset open-webui).
    OpenWebui,
    /// One table per collection plus a chroma_collections catalog (the default otherwise).
    Tables,
}

/// Vector index to build after the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IndexArg {
    /// open-webui layout: what Open WebUI builds (IVFFlat, lists = 100, from 5,000 rows); tables layout: HNSW.
    Auto,
    /// HNSW (--hnsw-m, --hnsw-ef-construction).
    Hnsw,
    /// IVFFlat (--ivfflat-lists).
    Ivfflat,
    /// No index: searches are exact.
    None,
}

/// Options for vector sources.
#[derive(Debug, Args)]
pub struct VectorArgs {
    /// Target layout for Chroma collections.
    #[arg(long, value_enum)]
    pub layout: Option<LayoutChoice>,
    /// Vector column dimension (Open WebUI's PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH; default 1536
    /// for a new document_chunk, the existing column's otherwise). Shorter vectors are zero-padded.
    #[arg(long)]
    pub dimension: Option<u32>,
    /// Vector index built after the load, with the collection's distance operator.
    #[arg(long, value_enum, default_value = "auto")]
    pub index: IndexArg,
    /// HNSW: links per node.
    #[arg(long, default_value_t = 16)]
    pub hnsw_m: u32,
    /// HNSW: candidate list size while building.
    #[arg(long, default_value_t = 64)]
    pub hnsw_ef_construction: u32,
    /// IVFFlat: number of lists.
    #[arg(long, default_value_t = 100)]
    pub ivfflat_lists: u32,
    /// Nearest-neighbour checks.
    #[command(flatten)]
    pub recall: RecallArgs,
    /// With --preset open-webui: move only the database, leave vector_db/ alone.
    #[arg(long)]
    pub skip_vectors: bool,
}

/// The nearest-neighbour checks of a Chroma move (`migrate` and `verify`).
#[derive(Debug, Args)]
pub struct RecallArgs {
    /// Recall report: hnsw.ef_search of the reported recall@10 (the report also gives the
    /// database's own setting and the measured settings that reach 0.9 and 0.99).
    #[arg(long, default_value_t = 40)]
    pub ef_search: u32,
    /// Recall report: ivfflat.probes of the reported recall@10.
    #[arg(long, default_value_t = 10)]
    pub probes: u32,
    /// Fail (exit 1) when a collection's recall@10 through its vector index, at --probes /
    /// --ef-search, is below this (0 to 1). Without it recall is reported, never judged: the
    /// data proof (counts, checksums, exact neighbours) decides.
    #[arg(long)]
    pub min_recall: Option<f64>,
    /// Stored vectors used as queries per collection (exact-neighbour check and recall).
    #[arg(long, default_value_t = 32)]
    pub recall_queries: usize,
}

/// `pgharbor verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Source, target and value rules (the ones the migration used).
    #[command(flatten)]
    pub common: SourceArgs,
    /// The data was loaded with --into-existing (match tables and columns the same way).
    #[arg(long)]
    pub into_existing: bool,
    /// With --into-existing: source columns that were left behind, as TABLE.COLUMN.
    #[arg(long, value_delimiter = ',')]
    pub ignore_columns: Vec<String>,
    /// With --into-existing: compare although the migration versions differ.
    #[arg(long)]
    pub allow_version_mismatch: bool,
    /// With --into-existing: SQLITE_ID=POSTGRESQL_ID, two migration revision ids that stand for
    /// the same application version (as given to migrate).
    #[arg(long = "corresponding-revision", value_name = "SQLITE_ID=POSTGRESQL_ID", value_parser = parse_revision_pair)]
    pub corresponding_revisions: Vec<(String, String)>,
    /// Chroma source: the layout the store was moved into (default: tables).
    #[arg(long, value_enum)]
    pub layout: Option<LayoutChoice>,
    /// Chroma source: nearest-neighbour checks.
    #[command(flatten)]
    pub recall: RecallArgs,
}

/// `SQLITE_ID=POSTGRESQL_ID` of `--corresponding-revision`.
fn parse_revision_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((sqlite, postgres)) if !sqlite.is_empty() && !postgres.is_empty() && !postgres.contains('=') => {
            Ok((sqlite.to_string(), postgres.to_string()))
        }
        _ => Err(format!(
            "{s:?} is not SQLITE_ID=POSTGRESQL_ID: give the revision id the SQLite file records, '=', and the one PostgreSQL records (e.g. 1a2b3c4d=9f8e7d6c)"
        )),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    pgharbor_health::duration::parse(s).map_err(|e| e.to_string())
}

/// `pgharbor check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A PostgreSQL URL or key=value string, or redis://[user:password@]host[:port] (rediss:// for TLS);
    /// defaults to $DATABASE_URL, then the PG* environment, like pg_isready.
    pub url: Option<String>,
    /// Give up after this long (e.g. 3s, 500ms); exit 2.
    #[arg(long, short = 't', default_value = "3s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Also require a real query (SELECT 1) to succeed (Redis: require the password to be accepted).
    #[arg(long)]
    pub query: bool,
    /// The query --query runs (implies --query).
    #[arg(long, value_name = "SQL")]
    pub query_sql: Option<String>,
    /// Exit 1 when at least PCT percent of max_connections (Redis: maxclients) is in use.
    #[arg(long, value_name = "PCT")]
    pub max_connections_used: Option<f64>,
    /// Exit 1 when the server is a read-only standby (in recovery, or a Redis replica).
    #[arg(long)]
    pub writable: bool,
    /// Machine-readable result on stdout.
    #[arg(long)]
    pub json: bool,
    /// Print nothing; only the exit status tells.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `pgharbor status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A PostgreSQL URL or key=value string, or a redis:// URL; defaults to $DATABASE_URL.
    pub url: Option<String>,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
    /// Refresh in place every N seconds until Ctrl-C.
    #[arg(long, value_name = "N")]
    pub watch: Option<u64>,
    /// List active queries running longer than this.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub long_running_over: std::time::Duration,
    /// List sessions idle in a transaction longer than this.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub idle_in_transaction_over: std::time::Duration,
    /// Transaction-ID age from which a database is a problem (critical from 1.5 billion).
    #[arg(long, default_value_t = 500_000_000, value_name = "AGE")]
    pub wraparound_warn: i64,
    /// Report on the backups in DEST (a directory, file://, s3://, az://): the last good
    /// and last verified backup, counts per state, problems.
    #[arg(long, value_name = "DEST")]
    pub backups: Option<String>,
    /// With --backups: a last good backup older than this is a problem.
    #[arg(long, default_value = "26h", value_parser = parse_duration, requires = "backups")]
    pub backups_max_age: std::time::Duration,
    /// Object store options for --backups.
    #[command(flatten)]
    pub store: DestArgs,
    /// How many statements to list by total and by mean time.
    #[arg(long, default_value_t = 5)]
    pub top: i64,
    /// Give up connecting (and on each query) after this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Show query texts whole. By default they are normalised: constants (strings, numbers)
    /// become $1, $2, … and comments are dropped, because literals carry passwords, tokens and
    /// personal data and this output ends up in terminals, tickets and log files.
    #[arg(long)]
    pub show_query_text: bool,
}

/// `pgharbor kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// A PostgreSQL URL or key=value string; defaults to $DATABASE_URL.
    pub url: Option<String>,
    /// Sessions idle in a transaction for longer than this (e.g. 10m).
    #[arg(long, value_parser = parse_duration, required_unless_present = "running_over")]
    pub idle_in_transaction_over: Option<std::time::Duration>,
    /// Sessions running one query for longer than this (e.g. 1h).
    #[arg(long, value_parser = parse_duration)]
    pub running_over: Option<std::time::Duration>,
    /// Cancel the query (pg_cancel_backend); the default for running queries.
    #[arg(long, conflicts_with = "terminate")]
    pub cancel: bool,
    /// End the session (pg_terminate_backend); the default for idle-in-transaction sessions.
    #[arg(long)]
    pub terminate: bool,
    /// List what would be done and do nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
    /// Show query texts whole. By default they are normalised: constants (strings, numbers)
    /// become $1, $2, … and comments are dropped, because literals carry passwords, tokens and
    /// personal data and this output ends up in terminals, tickets and log files.
    #[arg(long)]
    pub show_query_text: bool,
}

/// `pgharbor serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML file listing [[postgres]], [[redis]] and [[backups]] entries, and optionally
    /// [auth] (credentials), [tls] (cert and key files), show_query_text and allowed_hosts.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Address to listen on (default: the file's `listen`, else 127.0.0.1:8732; port 0 picks a free one).
    /// Beyond loopback the file needs an [auth] section (a token or user and password), and
    /// without [tls] serve warns that credentials cross the network in clear unless a
    /// TLS-terminating proxy is in front.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve on a non-loopback address without authentication (anyone who can reach it reads
    /// users, client addresses, database names and normalised query texts). Only behind
    /// something that authenticates, such as a reverse proxy.
    #[arg(long)]
    pub insecure_no_auth: bool,
}
