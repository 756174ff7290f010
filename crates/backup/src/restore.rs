//! [`restore`]: create (or reuse, or replace) the database, restore the
//! roles, decode the dump (age, zstd) into a temporary file, `pg_restore`
//! it — leaving out column attribute options the target rejects — and
//! compare the row counts with the manifest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pgharbor_conn::ConnConfig;
use pgharbor_objstore::Destination;
use pgharbor_pgtools::{clear_libpq_env, AttributeOptionFilter, Program};
use serde::Serialize;
use tempfile::NamedTempFile;
use tokio_postgres::Client;

use crate::encrypt::Decryption;
use crate::error::{BackupError, BackupErrorKind, Result};
use crate::list;
use crate::manifest::{DatabaseEntry, Manifest, TableCount};
use crate::pg::{self, quote_ident, quote_literal};
use crate::roles::{restore_roles, RolesReport};
use crate::stream::program_failed;
use crate::streamed;

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Restore only this database of a multi-database backup.
    pub database: Option<String>,
    /// Restore under this name (needs a single database).
    pub as_name: Option<String>,
    /// Drop and recreate a target database that is not empty.
    pub clean: bool,
    /// Connections loading rows at once, and `pg_restore -j` (0 is 1).
    pub jobs: usize,
    /// Where temporary files go — the archive's table of contents, or the
    /// whole decompressed dump when it is not streamed (large objects,
    /// `clean` over a database holding data); the system's temporary
    /// directory (`$TMPDIR`) when `None`.
    pub temp_dir: Option<PathBuf>,
    /// Restore the roles first, when the backup has them.
    pub roles: bool,
    /// The identities or passphrase of an encrypted backup.
    pub decryption: Option<Decryption>,
}

/// One restored database.
#[derive(Debug, Clone, Serialize)]
pub struct RestoredDatabase {
    /// Its name in the backup.
    pub source: String,
    /// Its name on the target.
    pub target: String,
    /// Whether it was created (false: an existing empty one was used).
    pub created: bool,
    /// Whether owners were kept (false when a role owning objects is missing
    /// on the target: `pg_restore --no-owner --no-privileges`).
    pub owners_kept: bool,
    /// Roles that own objects in the backup but do not exist on the target.
    pub missing_roles: Vec<String>,
    /// Tables compared with the manifest's row counts (all equal).
    pub tables: usize,
    /// Rows in those tables.
    pub rows: u64,
    /// Column attribute options of the dump the target does not recognise
    /// (e.g. `pg_attver`, which Debian's PostgreSQL 15 builds here add and
    /// PostgreSQL 16 rejects), left out, as `option (N columns)`. They are
    /// planner hints, not data.
    pub attribute_options_skipped: Vec<String>,
    /// Whether the rows were loaded while the dump was downloading (false:
    /// from a temporary file, for `clean` over a database holding data or
    /// a dump with large objects).
    pub rows_streamed: bool,
}

/// What [`restore`] did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The backup restored.
    pub id: String,
    /// The roles restored, when asked and present.
    pub roles: Option<RolesReport>,
    /// Each database.
    pub databases: Vec<RestoredDatabase>,
}

/// Restores backup `id` (`latest` for the newest good one) from `dest` into
/// the server `target`.
///
/// One database (the backup holds one, or [`RestoreOptions::database`]
/// picks one) goes into the database [`RestoreOptions::as_name`] names,
/// else into `target`'s own database, as `pg_restore -d` does (unless that
/// is a maintenance database, `postgres` or `template1`: then only connected
/// through, and the database keeps the backup's name): created with
/// the backup's owner, encoding and locale when it does not exist, else it
/// must be empty (or [`RestoreOptions::clean`]). A backup of several
/// databases restores each under its own name; `target`'s database is then
/// only used to connect and must be a maintenance database (`postgres`,
/// `template1`) or one of the backup's, so a database the caller named is
/// never left unfilled while others are written.
pub async fn restore(
    dest: &Destination,
    id: &str,
    target: &ConnConfig,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let manifest = load_good(dest, id).await?;
    let id = manifest.id.clone();
    let content = manifest.postgres()?;
    let selected = select(&manifest, options)?;
    if let (Some(kind), None) = (manifest.encryption, &options.decryption) {
        return Err(pg::invalid(format!(
            "backup {id} is encrypted ({kind:?}): give the age identity or passphrase"
        )));
    }
    let names = target_names(&manifest, &selected, target, options)?;
    let admin = open_admin(target, &names).await?;
    let roles = match (&content.roles_file, options.roles) {
        (Some(file), true) => Some(restore_roles(dest, &manifest, file, &admin, options).await?),
        _ => None,
    };
    let mut databases = Vec::new();
    for (entry, name) in selected.into_iter().zip(&names) {
        let restored = restore_database(dest, &manifest, entry, name, target, &admin, options)
            .await
            .map_err(|e| {
                e.context(format!(
                    "restoring database \"{}\" of backup {id} as \"{name}\"",
                    entry.name
                ))
            })?;
        databases.push(restored);
    }
    Ok(RestoreReport {
        id,
        roles,
        databases,
    })
}

/// The databases a maintenance connection may go to.
const MAINTENANCE_DATABASES: [&str; 2] = ["postgres", "template1"];

/// The database each of `selected` is restored into (see [`restore`]).
fn target_names(
    manifest: &Manifest,
    selected: &[&DatabaseEntry],
    target: &ConnConfig,
    options: &RestoreOptions,
) -> Result<Vec<String>> {
    if let [only] = selected {
        let name = match options.as_name.as_deref() {
            Some(name) => name,
            // A maintenance database is only connected through: never
            // filled, never dropped by --clean.
            None if MAINTENANCE_DATABASES.contains(&target.dbname()) => &only.name,
            None => target.dbname(),
        };
        return Ok(vec![name.to_owned()]);
    }
    let names: Vec<String> = selected.iter().map(|d| d.name.clone()).collect();
    let named = target.dbname();
    if MAINTENANCE_DATABASES.contains(&named) || names.iter().any(|n| n == named) {
        return Ok(names);
    }
    Err(pg::invalid(format!(
        "backup {} holds {} databases ({}), each restored under its own name, but the target \
         names database \"{named}\", which this restore would not fill: connect through a \
         maintenance database (…/postgres) to restore them all, or pick one with the database \
         option to restore it into \"{named}\"",
        manifest.id,
        names.len(),
        names.join(", ")
    )))
}

/// The connection creating, checking and dropping the databases: to
/// `target`'s database unless it is one of `names` (it may not exist yet,
/// and a database in use cannot be dropped), then to a maintenance
/// database that is not.
async fn open_admin(target: &ConnConfig, names: &[String]) -> Result<Client> {
    let restored = |db: &str| names.iter().any(|n| n == db);
    if !restored(target.dbname()) {
        return pg::open(target).await;
    }
    let maintenance = MAINTENANCE_DATABASES
        .into_iter()
        .find(|db| !restored(db))
        .unwrap_or(MAINTENANCE_DATABASES[0]);
    pg::open(&target.with_dbname(maintenance)).await
}

/// The manifest of a complete or verified backup `id` (or `latest`).
pub(crate) async fn load_good(dest: &Destination, id: &str) -> Result<Manifest> {
    let entry = if id == "latest" {
        list::list(dest)
            .await?
            .into_iter()
            .find(|e| e.state.is_good())
    } else {
        list::find(dest, id).await?
    };
    let Some(entry) = entry else {
        return Err(BackupError::new(
            BackupErrorKind::NotFound,
            format!("no backup {id} at {dest}; list the destination to see what it holds"),
        ));
    };
    match (entry.state, entry.manifest) {
        (state, Some(m)) if state.is_good() => Ok(m),
        (_, _) => Err(BackupError::new(
            BackupErrorKind::Integrity,
            format!(
                "backup {} at {dest} cannot be restored: {}",
                entry.id,
                entry.problem.unwrap_or_default()
            ),
        )),
    }
}

fn select<'m>(manifest: &'m Manifest, options: &RestoreOptions) -> Result<Vec<&'m DatabaseEntry>> {
    let all = &manifest.postgres()?.databases;
    let selected: Vec<&DatabaseEntry> = match &options.database {
        Some(name) => all.iter().filter(|d| &d.name == name).collect(),
        None => all.iter().collect(),
    };
    if selected.is_empty() {
        return Err(pg::invalid(format!(
            "backup {} has no database \"{}\"; it holds: {}",
            manifest.id,
            options.database.as_deref().unwrap_or_default(),
            manifest.database_names().join(", ")
        )));
    }
    if options.as_name.is_some() && selected.len() > 1 {
        return Err(pg::invalid(format!(
            "backup {} holds {} databases, each restored under its own name; pick one with the \
             database option to restore it under another name",
            manifest.id,
            selected.len()
        )));
    }
    Ok(selected)
}

/// Restores one database `entry` as `name`.
pub(crate) async fn restore_database(
    dest: &Destination,
    manifest: &Manifest,
    entry: &DatabaseEntry,
    name: &str,
    target: &ConnConfig,
    admin: &Client,
    options: &RestoreOptions,
) -> Result<RestoredDatabase> {
    let dump = open_dump(dest, manifest, entry, name, target, admin, options).await?;
    let created = prepare_database(admin, target, entry, name, options.clean).await?;
    let mut owners = entry.object_owners.clone();
    owners.push(entry.owner.clone());
    owners.sort();
    owners.dedup();
    let missing_roles = pg::missing_roles(admin, &owners).await?;
    if created {
        apply_settings(admin, entry, name).await?;
    }
    let keep_owners = missing_roles.is_empty();
    let rows_streamed = matches!(dump, Dump::Streamed(_));
    let filled = fill_database(
        manifest,
        entry,
        &target.with_dbname(name),
        keep_owners,
        dump,
        options,
    )
    .await;
    let (attribute_options_skipped, tables, rows) = match filled {
        Ok(filled) => filled,
        Err(e) if created => {
            return Err(match drop_after_failure(admin, target, name).await {
                Ok(()) => e.context(format!("the database \"{name}\" it created was dropped")),
                Err(dropping) => e.followed_by(format!(
                    "The database \"{name}\" it created is left, holding part of the backup \
                     (dropping it failed: {}): restore again with --clean to replace it",
                    crate::chain_text(&dropping)
                )),
            })
        }
        Err(e) => return Err(e),
    };
    Ok(RestoredDatabase {
        source: entry.name.clone(),
        target: name.to_owned(),
        created,
        owners_kept: keep_owners,
        missing_roles,
        tables,
        rows,
        attribute_options_skipped,
        rows_streamed,
    })
}

/// Restores `dump` into the prepared database at `config` and compares its
/// row counts with the manifest: the attribute options left out, the
/// tables compared and their rows.
async fn fill_database(
    manifest: &Manifest,
    entry: &DatabaseEntry,
    config: &ConnConfig,
    keep_owners: bool,
    dump: Dump,
    options: &RestoreOptions,
) -> Result<(Vec<String>, usize, u64)> {
    let major = manifest.postgres()?.pg_dump_major;
    let tool = PgRestore {
        program: pgharbor_pgtools::find("pg_restore", major)?,
        config: config.clone(),
        keep_owners,
        temp_dir: options.temp_dir.clone(),
    };
    let started = std::time::Instant::now();
    let restored = match dump {
        Dump::File(file) => {
            let skipped = restore_file(&tool, file.path(), options.jobs).await?;
            let client = pg::open(config).await?;
            let (tables, rows) = compare_counts(&client, entry).await?;
            (skipped, tables, rows)
        }
        Dump::Streamed(stream) => restore_streamed(&tool, stream, entry, options.jobs).await?,
    };
    tracing::debug!("{}: restored in {:?}", entry.name, started.elapsed());
    Ok(restored)
}

/// Creates `name`, or checks that an existing one is empty (or, with
/// `clean`, drops and recreates it). True when it was created.
async fn prepare_database(
    admin: &Client,
    target: &ConnConfig,
    entry: &DatabaseEntry,
    name: &str,
    clean: bool,
) -> Result<bool> {
    if pg::database_exists(admin, name).await? {
        if clean {
            drop_database(admin, name).await?;
        } else {
            if !is_empty_database(target, name).await? {
                return Err(BackupError::new(
                    BackupErrorKind::TargetNotEmpty,
                    format!(
                        "the target database \"{name}\" exists and is not empty; restore under \
                         another name, or ask for clean to drop and replace it"
                    ),
                ));
            }
            return Ok(false);
        }
    }
    create_database(admin, entry, name).await?;
    Ok(true)
}

/// Drops the database `name` a failed restore created: over `admin`, else
/// (its connection was lost: the server restarted, the session was
/// terminated) over a new connection, tried until
/// [`pgharbor_conn::reconnect_wait`] has passed.
async fn drop_after_failure(admin: &Client, target: &ConnConfig, name: &str) -> Result<()> {
    if drop_database(admin, name).await.is_ok() {
        return Ok(());
    }
    let deadline = std::time::Instant::now() + pgharbor_conn::reconnect_wait();
    loop {
        let dropped = match open_admin(target, &[name.to_owned()]).await {
            Ok(admin) => drop_database(&admin, name).await,
            Err(e) => Err(e),
        };
        match dropped {
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(pgharbor_conn::RECONNECT_PAUSE).await;
            }
            dropped => return dropped,
        }
    }
}

/// `DROP DATABASE … WITH (FORCE)`.
pub(crate) async fn drop_database(admin: &Client, name: &str) -> Result<()> {
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        ))
        .await
        .map_err(|e| BackupError::postgres(format!("dropping database \"{name}\""), e))
}

async fn create_database(admin: &Client, entry: &DatabaseEntry, name: &str) -> Result<()> {
    let owner_exists = pg::missing_roles(admin, std::slice::from_ref(&entry.owner))
        .await?
        .is_empty();
    let mut sql = format!(
        "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
        quote_ident(name),
        quote_literal(&entry.encoding),
        quote_literal(&entry.collate),
        quote_literal(&entry.ctype)
    );
    if owner_exists {
        sql.push_str(&format!(" OWNER {}", quote_ident(&entry.owner)));
    }
    if let (true, Some(icu)) = (entry.locale_provider == "icu", &entry.icu_locale) {
        sql.push_str(&format!(
            " LOCALE_PROVIDER icu ICU_LOCALE {}",
            quote_literal(icu)
        ));
    }
    admin
        .batch_execute(&sql)
        .await
        .map_err(|e| BackupError::postgres(format!("creating database \"{name}\""), e))
}

/// `ALTER DATABASE … SET` / `ALTER ROLE … IN DATABASE … SET` from the
/// manifest; settings of roles missing on the target are skipped.
async fn apply_settings(admin: &Client, entry: &DatabaseEntry, name: &str) -> Result<()> {
    for setting in &entry.settings {
        let Some((key, value)) = setting.setting.split_once('=') else {
            continue;
        };
        let subject = match &setting.role {
            None => format!("DATABASE {}", quote_ident(name)),
            Some(role)
                if pg::missing_roles(admin, std::slice::from_ref(role))
                    .await?
                    .is_empty() =>
            {
                format!(
                    "ROLE {} IN DATABASE {}",
                    quote_ident(role),
                    quote_ident(name)
                )
            }
            Some(_) => continue,
        };
        let sql = format!(
            "ALTER {subject} SET {} = {}",
            quote_ident(key),
            setting_value(key, value)
        );
        admin
            .batch_execute(&sql)
            .await
            .map_err(|e| BackupError::postgres(format!("restoring setting {key}"), e))?;
    }
    Ok(())
}

/// A setting's value as SQL: list settings (`search_path`, …) element by
/// element, as `pg_dumpall` does, others as one literal.
fn setting_value(key: &str, value: &str) -> String {
    const LISTS: [&str; 5] = [
        "search_path",
        "temp_tablespaces",
        "session_preload_libraries",
        "local_preload_libraries",
        "shared_preload_libraries",
    ];
    if !LISTS.contains(&key.to_ascii_lowercase().as_str()) {
        return quote_literal(value);
    }
    split_list(value)
        .iter()
        .map(|v| quote_literal(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Splits `"$user", public` into `$user` and `public`.
fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut current).trim().to_owned()),
            c if c.is_whitespace() && !quoted => {}
            c => current.push(c),
        }
    }
    out.push(current.trim().to_owned());
    out
}

/// The dump of one database, as the restore reads it.
enum Dump {
    /// Decompressed whole into a temporary file.
    File(NamedTempFile),
    /// Arriving: its rows are loaded while they are downloaded.
    Streamed(StreamedDump),
}

/// A dump whose table of contents has been read and whose rows wait.
struct StreamedDump {
    toc: crate::archive::Toc,
    toc_file: NamedTempFile,
    decide: std::sync::mpsc::Sender<streamed::Decision>,
    task: tokio::task::JoinHandle<Result<Option<NamedTempFile>>>,
}

/// Starts fetching the dump of `entry`. Its rows are streamed into the
/// target unless `clean` would replace a database that holds data: then
/// the whole dump is fetched first, so a backup that cannot be read never
/// costs that database.
async fn open_dump(
    dest: &Destination,
    manifest: &Manifest,
    entry: &DatabaseEntry,
    name: &str,
    target: &ConnConfig,
    admin: &Client,
    options: &RestoreOptions,
) -> Result<Dump> {
    let started = std::time::Instant::now();
    let decoding = streamed::start(
        dest,
        &manifest.id,
        crate::stream::stored_file(manifest, &entry.file)?,
        options.decryption.clone(),
        options.temp_dir.as_deref(),
    )
    .await?;
    let dump = match decoding.first {
        streamed::Decoded::Whole(file) => {
            streamed::finished(decoding.task.await)?;
            Dump::File(file)
        }
        streamed::Decoded::Toc { decide, .. }
            if options.clean && holds_data(admin, target, name).await? =>
        {
            let _ = decide.send(streamed::Decision::File);
            let file = streamed::finished(decoding.task.await)?
                .ok_or_else(|| BackupError::new(BackupErrorKind::Io, "the download ended early"))?;
            Dump::File(file)
        }
        streamed::Decoded::Toc {
            toc,
            toc_file,
            decide,
        } => Dump::Streamed(StreamedDump {
            toc,
            toc_file,
            decide,
            task: decoding.task,
        }),
    };
    tracing::debug!("{}: dump opened in {:?}", entry.name, started.elapsed());
    Ok(dump)
}

/// Whether database `name` exists and holds anything (an invalid one, left
/// by a cut-short `DROP DATABASE`, holds nothing usable: it is only dropped).
async fn holds_data(admin: &Client, target: &ConnConfig, name: &str) -> Result<bool> {
    if !pg::database_exists(admin, name).await? || pg::database_is_invalid(admin, name).await? {
        return Ok(false);
    }
    Ok(!is_empty_database(target, name).await?)
}

/// Whether the existing database `name` holds nothing.
async fn is_empty_database(target: &ConnConfig, name: &str) -> Result<bool> {
    pg::is_empty(&pg::open(&target.with_dbname(name)).await?).await
}

/// Reads the pre-data of `archive` and probes its column attribute options
/// on the target: the filter leaving out those the target rejects (empty
/// when it knows them all), and the pre-data script.
async fn probe_pre_data(
    tool: &PgRestore,
    archive: &Path,
) -> Result<(AttributeOptionFilter, String)> {
    let pre_data = tool.pre_data_script(archive).await?;
    let mut client = pg::open(&tool.config).await?;
    let filter = AttributeOptionFilter::probe(&mut client, [pre_data.as_str()])
        .await
        .map_err(|e| BackupError::postgres("probing column attribute options", e))?;
    Ok((filter, pre_data))
}

/// Restores a decompressed dump: when the target knows every column
/// attribute option of the pre-data, one `pg_restore -j` restores
/// everything; otherwise the pre-data without the unknown ones goes through
/// `psql` in one transaction, then `pg_restore` restores the data and
/// post-data. Returns what was left out, as `option (N columns)`.
async fn restore_file(tool: &PgRestore, dump: &Path, jobs: usize) -> Result<Vec<String>> {
    let (mut filter, pre_data) = probe_pre_data(tool, dump).await?;
    let jobs = jobs.max(1);
    if filter.is_empty() {
        tool.restore(dump, jobs, &[]).await?;
        return Ok(Vec::new());
    }
    tool.apply_script(&filter.apply(&pre_data)).await?;
    tool.restore(dump, jobs, &["--section=data", "--section=post-data"])
        .await?;
    Ok(filter.skipped())
}

/// Restores a streamed dump: the pre-data by `pg_restore` from the file
/// holding the TOC (through `psql` without unknown attribute options), the
/// rows straight from the download over `jobs` connections, then the
/// post-data by `pg_restore -j` from the TOC file while the row counts are
/// compared with the manifest. Returns what [`fill_database`] does.
async fn restore_streamed(
    tool: &PgRestore,
    dump: StreamedDump,
    entry: &DatabaseEntry,
    jobs: usize,
) -> Result<(Vec<String>, usize, u64)> {
    let toc_path = dump.toc_file.path();
    let (mut filter, pre_data) = probe_pre_data(tool, toc_path).await?;
    if filter.is_empty() {
        tool.restore(toc_path, 1, &["--section=pre-data"]).await?;
    } else {
        tool.apply_script(&filter.apply(&pre_data)).await?;
    }
    let started = std::time::Instant::now();
    let (pieces, rows) = tokio::sync::mpsc::channel(8);
    let _ = dump.decide.send(streamed::Decision::Stream(pieces));
    let loaded = streamed::load_rows(&tool.config, &dump.toc, rows, jobs.max(1)).await;
    let loaded = streamed::load_result(streamed::finished(dump.task.await), loaded)?;
    tracing::debug!("{loaded} rows loaded in {:?}", started.elapsed());
    let client = pg::open(&tool.config).await?;
    let (post_data, counts) = tokio::join!(
        tool.restore(toc_path, jobs.max(1), &["--section=post-data"]),
        compare_counts(&client, entry)
    );
    post_data?;
    let (tables, rows) = counts?;
    tracing::debug!("post-data restored after {:?}", started.elapsed());
    Ok((filter.skipped(), tables, rows))
}

/// The `pg_restore` (and its sibling `psql`) restoring into one database.
struct PgRestore {
    program: Program,
    config: ConnConfig,
    keep_owners: bool,
    temp_dir: Option<PathBuf>,
}

impl PgRestore {
    /// `program` with the target's environment and the owner options.
    fn command(&self, program: &Path) -> Command {
        let mut command = pgharbor_pgtools::child_command(program);
        clear_libpq_env(&mut command, &self.config);
        command.arg("--no-password");
        command
    }

    fn pg_restore(&self) -> Command {
        let mut command = self.command(&self.program.path);
        if !self.keep_owners {
            command.args(["--no-owner", "--no-privileges"]);
        }
        command
    }

    /// The pre-data of `dump` as SQL.
    async fn pre_data_script(&self, dump: &Path) -> Result<String> {
        let mut command = self.pg_restore();
        command.args(["--section=pre-data", "--file=-"]).arg(dump);
        let stdout = run(&self.what("pg_restore"), command).await?;
        String::from_utf8(stdout).map_err(|_| {
            BackupError::new(
                BackupErrorKind::Tool,
                "pg_restore wrote a script that is not UTF-8",
            )
        })
    }

    /// `pg_restore --exit-on-error --jobs=N [sections] dump` into the database.
    async fn restore(&self, dump: &Path, jobs: usize, sections: &[&str]) -> Result<()> {
        let mut command = self.pg_restore();
        command.args(["--exit-on-error", "-d"]);
        command.arg(format!(
            "dbname={}",
            quote_literal(self.config.dbname()).replace('\\', "\\\\")
        ));
        command
            .arg(format!("--jobs={jobs}"))
            .args(sections)
            .arg(dump);
        run(&self.what("pg_restore"), command).await.map(|_| ())
    }

    /// Runs `sql` with the `psql` next to `pg_restore`, stopping at the
    /// first error, in one transaction.
    async fn apply_script(&self, sql: &str) -> Result<()> {
        let mut file =
            crate::tempfiles::temp_file(self.temp_dir.as_deref(), "pgharbor-pre-data-", ".sql")?;
        file.write_all(sql.as_bytes())
            .map_err(|e| BackupError::io("writing the pre-data script", e))?;
        let mut command = self.command(&self.program.path.with_file_name("psql"));
        command
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "-f",
            ])
            .arg(file.path());
        run(&self.what("psql"), command).await.map(|_| ())
    }

    fn what(&self, name: &str) -> String {
        format!("{name} {}", self.program.version)
    }
}

/// Runs `command` to its end; its stdout, or an error with the end of its
/// stderr.
async fn run(what: &str, mut command: Command) -> Result<Vec<u8>> {
    command.stdin(Stdio::null());
    let output = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            BackupError::new(BackupErrorKind::Tool, format!("starting {what}")).caused_by(e)
        })?;
    if !output.status.success() {
        return Err(program_failed(
            what,
            output.status,
            &String::from_utf8_lossy(&output.stderr),
        ));
    }
    Ok(output.stdout)
}

/// Counts the rows of every table of the manifest in the restored
/// database; an [`BackupErrorKind::Integrity`] error names every table
/// that differs.
pub(crate) async fn compare_counts(client: &Client, entry: &DatabaseEntry) -> Result<(usize, u64)> {
    let mut problems = Vec::new();
    let mut total = 0;
    for table in &entry.tables {
        match count(client, table).await {
            Ok(n) if n == table.rows => total += n,
            Ok(n) => problems.push(format!(
                "{}: {} rows in the backup, {n} restored",
                table.qualified(),
                table.rows
            )),
            Err(e) => problems.push(format!("{}: {}", table.qualified(), crate::chain_text(&e))),
        }
    }
    let large_objects = pg::large_objects(client).await?;
    if large_objects != entry.large_objects {
        problems.push(format!(
            "{} large objects in the backup, {large_objects} restored",
            entry.large_objects
        ));
    }
    if problems.is_empty() {
        Ok((entry.tables.len(), total))
    } else {
        Err(BackupError::new(
            BackupErrorKind::Integrity,
            format!(
                "the restored data differs from the backup: {}",
                problems.join("; ")
            ),
        ))
    }
}

async fn count(client: &Client, table: &TableCount) -> Result<u64> {
    let counts = pg::count_rows(client, &[(table.schema.clone(), table.name.clone())]).await?;
    Ok(counts[0].rows)
}
