//! PostgreSQL → PostgreSQL: copy one database to another server, across
//! major versions in both directions, consistently, in parallel, verified
//! and resumable.
//!
//! The pipeline's steps for this source:
//!
//! 1. **inspect**: one source connection opens a `REPEATABLE READ` transaction
//!    and exports its snapshot; every reader (pg_dump, the copy workers, the
//!    catalog reads, the checksums) uses that snapshot, so the copy is one
//!    consistent moment of the source. A `pg_dump` at least as new as the
//!    source server is found ([`pgharbor_pgtools`]).
//! 2. **plan**: the schema comes from the real `pg_dump` (pre-data and
//!    post-data sections, [`dump`]); extensions are checked against what the
//!    target offers and settings it does not know are left out ([`schema`]);
//!    tables are ordered largest first and big ones split into page ranges
//!    ([`data::plan_units`]).
//! 3. **load**: the pre-data is applied in one transaction after the
//!    post-data was tried on the empty tables (so an object an older target
//!    cannot represent is named before any row moves); then binary COPY
//!    streams from source to target over `--jobs` connection pairs, hashing
//!    rows on the way ([`data`]); sequences and large objects follow.
//! 4. **finish**: indexes and keys in parallel, then foreign keys, then the
//!    rest (triggers, rules, policies, materialized views) ([`schema`]).
//! 5. **verify**: each table's row count and checksum on the target against
//!    the source's ([`readback`]).
//!
//! Progress is journaled in the target ([`journal`]): `--resume` continues an
//! interrupted copy table by table and re-verifies what the earlier run loaded.
//! A source holding pgharbor's journal (of runs into it) is copied without
//! it ([`crate::journal::SCHEMAS`]).
//!
//! Cancelling stops the work on both servers: the crews' statements
//! ([`crate::stop::Crew`]), `pg_dump` (asked to stop, it cancels its own),
//! and the statement of the run's own connections
//! ([`crate::stop::unless_cancelled`]).

pub mod catalog;
pub mod data;
pub mod digest;
pub mod dump;
pub use crate::journal::postgres_copy as journal;
pub mod post_data;
pub mod readback;
pub mod schema;

use crate::error::{MigrateError, MigrateErrorKind};
use crate::progress::Progress;
use crate::stop::{unless_cancelled, Canceller, Crew, Stoppable};
use catalog::SourceTable;
use dump::{DumpOptions, Section};
use journal::Stage;
use pgharbor_conn::ConnConfig;
use pgharbor_pgtools::Version;
use pgharbor_verify::TableDigest;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// Options of a PostgreSQL copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Parallel workers (connections on each side).
    pub jobs: usize,
    /// Leave ownership out; objects belong to the target user.
    pub no_owner: bool,
    /// Leave `GRANT`s out.
    pub no_privileges: bool,
    /// Continue an interrupted copy found in the target.
    pub resume: bool,
    /// Skip the verification (row counts and checksums).
    pub no_verify: bool,
    /// Create the target database when it does not exist.
    pub create_database: bool,
    /// The same command run again continues an interrupted copy by itself
    /// (`apply`): a failure says to run it again rather than to add
    /// `--resume`.
    pub rerun_resumes: bool,
}

/// What a copy did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CopyReport {
    /// Source server version.
    pub source_version: String,
    /// Target server version.
    pub target_version: String,
    /// The pg_dump used.
    pub pg_dump: String,
    /// Whether the target database was created.
    pub database_created: bool,
    /// Whether this run resumed an interrupted one.
    pub resumed: bool,
    /// Schema adaptations for the target.
    pub adaptations: schema::Adaptations,
    /// Schema objects applied (pre-data + post-data entries).
    pub schema_objects: usize,
    /// Per table results.
    pub tables: Vec<readback::TableCheck>,
    /// Sequences set.
    pub sequences: usize,
    /// Large objects copied.
    pub large_objects: usize,
    /// pgharbor's journal schemas the source held, left out of the copy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub journal_left_out: Vec<String>,
    /// Seconds per phase.
    pub seconds: PhaseSeconds,
}

impl CopyReport {
    /// Rows copied in all.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.source_rows).sum()
    }
}

/// Seconds spent per phase.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PhaseSeconds {
    /// Inspecting, dumping and applying the schema.
    pub schema: f64,
    /// Copying rows, sequences and large objects.
    pub data: f64,
    /// Indexes, constraints, triggers, …
    pub post_data: f64,
    /// Reading the target back for the checksums.
    pub verify: f64,
    /// All of it.
    pub total: f64,
}

/// Session settings both sides use, so that text COPY (used for the few
/// types whose binary form is not portable) reads and writes identically,
/// and the exported snapshot.
#[derive(Debug, Clone)]
pub struct Session {
    snapshot: Option<String>,
    holder: Option<Arc<Client>>,
}

const SESSION_SETTINGS: &str = "SET DateStyle = ISO; SET IntervalStyle = postgres; \
     SET extra_float_digits = 3; SET TimeZone = 'UTC'; SET bytea_output = hex; \
     SET client_encoding = 'UTF8'";

impl Session {
    /// Open the source connection that exports the snapshot and holds it
    /// open for as long as the session lives.
    pub async fn exported(source: &ConnConfig) -> Result<Session, MigrateError> {
        let client = crate::target::connect(source)
            .await
            .map_err(|e| MigrateError::from(e).context("connecting to the source"))?;
        client
            .batch_execute(&format!(
                "{SESSION_SETTINGS}; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            ))
            .await
            .map_err(source_error("starting the snapshot"))?;
        let snapshot: String = client
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .map_err(source_error("exporting the snapshot"))?
            .get(0);
        Ok(Session {
            snapshot: Some(snapshot),
            holder: Some(Arc::new(client)),
        })
    }

    /// The connection holding the snapshot (catalog reads, sequences, large
    /// objects).
    pub fn holder(&self) -> &Client {
        self.holder
            .as_deref()
            .expect("a session with an exported snapshot")
    }

    /// The exported snapshot's id.
    pub fn snapshot(&self) -> Option<&str> {
        self.snapshot.as_deref()
    }

    /// A session for target connections only (no snapshot).
    pub fn target_only() -> Session {
        Session {
            snapshot: None,
            holder: None,
        }
    }

    /// A source connection inside the snapshot (read only), and what stops
    /// its work on the server.
    pub(crate) async fn connect_source(
        &self,
        config: &ConnConfig,
    ) -> Result<(Client, Stoppable), MigrateError> {
        let (client, stoppable) = crate::stop::connect(config)
            .await
            .map_err(|e| MigrateError::from(e).context("connecting to the source"))?;
        let mut sql =
            format!("{SESSION_SETTINGS}; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        if let Some(id) = &self.snapshot {
            sql.push_str(&format!("; SET TRANSACTION SNAPSHOT '{id}'"));
        }
        client
            .batch_execute(&sql)
            .await
            .map_err(source_error("joining the copy's snapshot on the source"))?;
        Ok((client, stoppable))
    }

    /// A target connection with the same settings, committing asynchronously
    /// (the copy is journaled and verified; nothing depends on each commit's
    /// fsync), and what stops its work on the server.
    pub(crate) async fn connect_target(
        &self,
        config: &ConnConfig,
    ) -> Result<(Client, Stoppable), MigrateError> {
        let (client, stoppable) = crate::stop::connect(config).await?;
        client
            .batch_execute(&format!("{SESSION_SETTINGS}; SET synchronous_commit = off"))
            .await
            .map_err(target_error("preparing a target connection"))?;
        Ok((client, stoppable))
    }
}

/// Map a source-side PostgreSQL error.
pub(crate) fn source_error(
    doing: impl std::fmt::Display,
) -> impl FnOnce(tokio_postgres::Error) -> MigrateError {
    move |e| {
        let mut err = MigrateError::from(pgharbor_pgwriter::WriteError::from_pg(e, doing));
        err.set_kind(MigrateErrorKind::Source);
        err.context("source")
    }
}

/// Map a target-side PostgreSQL error.
pub(crate) fn target_error(
    doing: impl std::fmt::Display,
) -> impl FnOnce(tokio_postgres::Error) -> MigrateError {
    crate::error::pg_error(doing)
}

/// How a source is named in the journal: endpoint and database, no
/// password.
pub fn source_label(config: &ConnConfig) -> String {
    format!("{}/{}", config.endpoint(), config.dbname())
}

/// What was found about both sides, before anything changes.
struct Sides {
    target: Client,
    source_version: Version,
    target_version: Version,
    database_created: bool,
}

async fn open_sides(
    source: &ConnConfig,
    target: &ConnConfig,
    options: &CopyOptions,
) -> Result<Sides, MigrateError> {
    let source_client = crate::target::connect(source)
        .await
        .map_err(|e| MigrateError::from(e).context("connecting to the source"))?;
    let (target_client, database_created) =
        crate::target::connect_or_create(target, options.create_database).await?;
    let source_version = catalog::server_version_num(&source_client)
        .await
        .map_err(source_error("reading the server version"))?;
    let target_version = catalog::server_version_num(&target_client)
        .await
        .map_err(target_error("reading the server version"))?;
    Ok(Sides {
        target: target_client,
        source_version: Version::from_server_version_num(source_version),
        target_version: Version::from_server_version_num(target_version),
        database_created,
    })
}

/// Copy the database of `source` into the database of `target`; `cancel`
/// stops it, the statements running on both servers included.
///
/// When the run fails, a new connection (retried while the server comes
/// back, see [`crate::created::reconnect_wait`]) looks at what the target
/// holds, and the error says it: the journal of a copy to finish with
/// `--resume`, or nothing. When the run created the target database and
/// stops before the schema was committed (a missing extension, an object the
/// target cannot represent, a lost server), the database is dropped again: a
/// refused copy leaves nothing behind.
pub async fn copy_database(
    source: &ConnConfig,
    target: &ConnConfig,
    options: &CopyOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<CopyReport, MigrateError> {
    let sides = open_sides(source, target, options).await?;
    let created = sides.database_created;
    let result = copy_into(sides, source, target, options, progress, cancel).await;
    match result {
        Ok(report) => Ok(report),
        // Whatever failed after Ctrl-C (a pg_dump asked to stop, a
        // cancelled statement) failed because of it.
        Err(_) if cancel.is_cancelled() => {
            let err = MigrateError::new(MigrateErrorKind::Interrupted, "interrupted while copying");
            Err(after_failure(target, created, options, err).await)
        }
        Err(err) => Err(after_failure(target, created, options, err).await),
    }
}

/// Stop with an interruption when `cancel` is cancelled (between phases).
fn check_cancelled(cancel: &CancellationToken) -> Result<(), MigrateError> {
    match cancel.is_cancelled() {
        true => Err(crate::stop::interrupted()),
        false => Ok(()),
    }
}

/// Errors raised before the copy changed anything, which already say what
/// to do (a refused target, a usage error, an incompatible schema).
fn said_what_to_do(err: &MigrateError) -> bool {
    matches!(
        err.kind(),
        MigrateErrorKind::Usage | MigrateErrorKind::TargetNotEmpty | MigrateErrorKind::Incompatible
    )
}

/// Say what a failed copy left in the target and how to go on.
async fn after_failure(
    target: &ConnConfig,
    created: bool,
    options: &CopyOptions,
    err: MigrateError,
) -> MigrateError {
    if said_what_to_do(&err) && !created {
        return err;
    }
    let resume = if options.rerun_resumes {
        "run the same command again"
    } else {
        "run the same command with --resume"
    };
    let wait = crate::created::reconnect_wait();
    let journal = match crate::created::reconnect(target, wait).await {
        Ok(client) => journal::read(&client).await.map(|state| state.is_some()),
        Err(e) => Err(e),
    };
    match journal {
        Ok(true) if said_what_to_do(&err) => err,
        Ok(true) => err.also(format!(
            "The schema and the tables copied so far are kept and recorded in the target (schema {}): \
             {resume} to finish, or drop the database to start over",
            crate::journal::SCHEMA
        )),
        Ok(false) if created => match drop_database(target).await {
            Ok(()) if said_what_to_do(&err) => err,
            Ok(()) => err.also(
                "Nothing was kept: the database this run created was dropped again; the same command can be run again",
            ),
            Err(e) => err.also(format!(
                "Dropping the empty database {:?} this run created failed ({}): drop it, then run the same command again",
                target.dbname(),
                crate::error::explain(&e)
            )),
        },
        Ok(false) if said_what_to_do(&err) => err,
        Ok(false) => err.also("Nothing was copied; the same command can be run again"),
        Err(_) if said_what_to_do(&err) => err,
        Err(cause) => err.also(format!(
            "The target could not be reached again within {}s to see what is left ({}): once it is back, \
             {resume} if the database has a schema {}, otherwise run it as it is",
            wait.as_secs(),
            crate::error::explain(&cause),
            crate::journal::SCHEMA
        )),
    }
}

async fn drop_database(target: &ConnConfig) -> Result<(), MigrateError> {
    let maintenance = target.with_dbname("postgres");
    let admin = crate::stop::CleanUpConnection::new(
        crate::target::connect(&maintenance).await?,
        &maintenance,
    );
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            pgharbor_core::schema::quote_ident(target.dbname())
        ))
        .await
        .map_err(target_error("dropping the database"))
}

/// The copy, on the run's own connections — the target's and the source's
/// snapshot holder — and the crews'. When it ends interrupted, what a
/// cancelled step left running on the run's own connections is cancelled
/// on both servers before it returns.
async fn copy_into(
    mut sides: Sides,
    source: &ConnConfig,
    target: &ConnConfig,
    options: &CopyOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<CopyReport, MigrateError> {
    let session = unless_cancelled(cancel, Session::exported(source)).await?;
    let copied = copy_steps(
        &mut sides, &session, source, target, options, progress, cancel,
    )
    .await;
    if copied.is_err() && cancel.is_cancelled() {
        let holder = session.holder();
        let (on_target, on_source) = (
            Canceller::new(&sides.target, target),
            Canceller::new(holder, source),
        );
        tokio::join!(
            on_target.cancel_pending(&sides.target),
            on_source.cancel_pending(holder),
        );
    }
    copied
}

async fn copy_steps(
    sides: &mut Sides,
    session: &Session,
    source: &ConnConfig,
    target: &ConnConfig,
    options: &CopyOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancellationToken,
) -> Result<CopyReport, MigrateError> {
    let started = Instant::now();
    let label = source_label(source);
    let resuming = unless_cancelled(cancel, read_journal(&sides.target, &label, options)).await?;
    let pg_dump = pgharbor_pgtools::find("pg_dump", sides.source_version.major)
        .map_err(|e| MigrateError::new(MigrateErrorKind::Usage, e.to_string()))?;
    let mut report = CopyReport {
        source_version: sides.source_version.to_string(),
        target_version: sides.target_version.to_string(),
        pg_dump: format!("{} {}", pg_dump.path.display(), pg_dump.version),
        database_created: sides.database_created,
        resumed: resuming.is_some(),
        ..CopyReport::default()
    };
    progress.phase("schema");
    let snapshot = session.snapshot().expect("exported").to_string();
    let dump_options = DumpOptions {
        no_owner: options.no_owner,
        no_privileges: options.no_privileges,
    };
    let mut sections = Vec::new();
    for section in [Section::PreData, Section::PostData] {
        sections.push(
            dump::dump_section(
                &pg_dump,
                source,
                Some(&snapshot),
                section,
                dump_options,
                cancel,
            )
            .await?,
        );
    }
    let mut post_data = sections.pop().expect("post-data");
    let mut pre_data = sections.pop().expect("pre-data");
    report.schema_objects = pre_data.len() + post_data.len();
    let schema = SchemaToApply {
        pre_data: &mut pre_data,
        post_data: &mut post_data,
        apply: resuming.is_none(),
        label: &label,
    };
    unless_cancelled(cancel, prepare_schema(sides, session, schema, &mut report)).await?;
    report.seconds.schema = started.elapsed().as_secs_f64();

    let data_started = Instant::now();
    progress.phase("loading");
    let tables = Arc::new(unless_cancelled(cancel, catalog::tables(session.holder())).await?);
    let done: HashSet<String> = resuming
        .as_ref()
        .map(|s| s.tables_done.iter().cloned().collect())
        .unwrap_or_default();
    if resuming.is_some() {
        unless_cancelled(cancel, restart_tables(&sides.target, &tables, &done)).await?;
    }
    let jobs = options.jobs.max(1);
    let post_done: HashSet<i32> = resuming
        .as_ref()
        .map(|s| s.post_data_done.iter().copied().collect())
        .unwrap_or_default();
    check_cancelled(cancel)?;
    let (loaded_tx, loaded_rx) = tokio::sync::mpsc::unbounded_channel();
    // Copiers and finishers stop together: the first error stops both.
    let copiers = Crew::new(cancel);
    let finishers = post_data::spawn(
        target,
        Arc::clone(&tables),
        post_data::entries_by_table(&tables, &post_data, &post_done),
        loaded_rx,
        jobs,
        options.no_verify,
        copiers.sibling(),
    );
    let units = data::plan_units(&tables, &done, jobs, sides.source_version.major);
    let copied = data::copy_units(
        source,
        target,
        session,
        Arc::clone(&tables),
        units,
        jobs,
        Arc::clone(&progress),
        loaded_tx,
        copiers,
    )
    .await;
    let finished = finishers.await.map_err(|e| {
        MigrateError::new(
            MigrateErrorKind::Write,
            format!("a finishing worker crashed: {e}"),
        )
    });
    let (digests, finished) = match (copied, finished.and_then(|f| f)) {
        (Ok(digests), Ok(finished)) => (digests, finished),
        (Err(copying), Err(finishing)) => return Err(first_real(copying, finishing)),
        (Err(err), _) | (_, Err(err)) => return Err(err),
    };
    let (oids, lo_digest) = unless_cancelled(
        cancel,
        sequences_and_large_objects(sides, session, &mut report),
    )
    .await?;
    report.seconds.data = data_started.elapsed().as_secs_f64();
    check_cancelled(cancel)?;

    let post_started = Instant::now();
    progress.phase("finishing");
    let post_done: HashSet<i32> = post_done.union(&finished.entries_done).copied().collect();
    schema::apply_post_data(
        target,
        &Session::target_only(),
        &post_data,
        &post_done,
        jobs,
        cancel,
    )
    .await?;
    report.seconds.post_data = post_started.elapsed().as_secs_f64();
    check_cancelled(cancel)?;

    let verify_started = Instant::now();
    let target_digests = (!options.no_verify).then_some(&finished.digests);
    report.tables = readback::checks(&tables, &digests, target_digests);
    if !options.no_verify {
        unless_cancelled(cancel, async {
            readback::check_large_objects(&sides.target, &oids, lo_digest).await?;
            readback::fail_on_mismatch(
                &report.tables,
                &tables,
                Some((session.holder(), &sides.target)),
            )
            .await
        })
        .await?;
    }
    report.seconds.verify = verify_started.elapsed().as_secs_f64();
    session
        .holder()
        .batch_execute("COMMIT")
        .await
        .map_err(source_error("closing the snapshot"))?;
    journal::finish(&sides.target).await?;
    report.seconds.total = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Upgrade an older pgharbor's journal, read it and decide whether this
/// run resumes ([`resume_decision`]).
async fn read_journal(
    target: &Client,
    label: &str,
    options: &CopyOptions,
) -> Result<Option<journal::JournalState>, MigrateError> {
    crate::journal::legacy::upgrade(target).await?;
    let state = journal::read(target).await?;
    resume_decision(target, state.as_ref(), label, options).await
}

/// The dumped schema, to adapt to the target and, unless resuming, apply.
struct SchemaToApply<'a> {
    pre_data: &'a mut Vec<dump::Entry>,
    post_data: &'a mut Vec<dump::Entry>,
    apply: bool,
    label: &'a str,
}

/// Adapt the schema to the target (extensions, settings, attribute
/// options), note pgharbor's journal left out of it, and apply the
/// pre-data when `schema.apply`.
async fn prepare_schema(
    sides: &mut Sides,
    session: &Session,
    schema: SchemaToApply<'_>,
    report: &mut CopyReport,
) -> Result<(), MigrateError> {
    report.journal_left_out = catalog::journal_schemas(session.holder()).await?;
    let extensions = catalog::extensions(session.holder())
        .await
        .map_err(source_error("listing extensions"))?;
    let adaptations = &mut report.adaptations;
    schema::check_extensions(&sides.target, &extensions, schema.pre_data, adaptations).await?;
    schema::drop_unknown_settings(&sides.target, schema.pre_data, adaptations).await?;
    schema::drop_unknown_attribute_options(&mut sides.target, schema.pre_data, adaptations).await?;
    schema::drop_unknown_settings(&sides.target, schema.post_data, adaptations).await?;
    if schema.apply {
        schema::apply_pre_data(
            &mut sides.target,
            schema.pre_data,
            schema.post_data,
            schema.label,
        )
        .await
        .map_err(|e| e.context(format!("target PostgreSQL {}", sides.target_version)))?;
    }
    Ok(())
}

/// Set the sequences and copy the large objects (counted in `report`), then
/// record the data as loaded; the large objects and their digest.
async fn sequences_and_large_objects(
    sides: &mut Sides,
    session: &Session,
    report: &mut CopyReport,
) -> Result<(Vec<u32>, TableDigest), MigrateError> {
    let sequences = catalog::sequences(session.holder()).await?;
    data::set_sequences(&sides.target, &sequences).await?;
    report.sequences = sequences.iter().filter(|s| s.last_value.is_some()).count();
    let oids = catalog::large_objects(session.holder()).await?;
    let lo_digest = data::copy_large_objects(session.holder(), &mut sides.target, &oids).await?;
    report.large_objects = oids.len();
    journal::set_stage(&sides.target, Stage::Data).await?;
    Ok((oids, lo_digest))
}

/// Of the errors of two crews that stop together, the one that stopped
/// them: the other's is the interruption it caused.
fn first_real(one: MigrateError, other: MigrateError) -> MigrateError {
    match one.kind() {
        MigrateErrorKind::Interrupted => other,
        _ => one,
    }
}

/// On `--resume`: the tables the interrupted run did not finish lose the
/// rows of the parts it did load (a new snapshot splits them differently).
async fn restart_tables(
    target: &Client,
    tables: &[SourceTable],
    done: &HashSet<String>,
) -> Result<(), MigrateError> {
    for table in tables
        .iter()
        .filter(|t| !done.contains(&t.name.to_string()))
    {
        let name = table.name.to_string();
        journal::forget_table(target, &name).await?;
        let clear = match &table.extension_condition {
            None => format!("TRUNCATE ONLY {name}"),
            Some(condition) => format!("DELETE FROM ONLY {name} WHERE {condition}"),
        };
        target
            .batch_execute(&clear)
            .await
            .map_err(target_error(format!("clearing {name} to copy it again")))?;
    }
    Ok(())
}

/// Decide, from the target's journal, whether this run starts fresh or
/// resumes; refuse a non-empty target, a finished copy and a journal of
/// another source.
async fn resume_decision(
    target: &Client,
    state: Option<&journal::JournalState>,
    label: &str,
    options: &CopyOptions,
) -> Result<Option<journal::JournalState>, MigrateError> {
    match state {
        Some(state) if state.stage == Stage::Finished => Err(MigrateError::new(
            MigrateErrorKind::TargetNotEmpty,
            format!(
                "the target database already holds a finished, verified copy of {}; drop the \
                 database to copy again",
                state.source
            ),
        )),
        Some(state) if state.source != label => Err(MigrateError::new(
            MigrateErrorKind::TargetNotEmpty,
            format!(
                "the target database holds an interrupted copy of another source ({}), not of {label}",
                state.source
            ),
        )),
        Some(state) if options.resume => Ok(Some(state.clone())),
        Some(_) => Err(MigrateError::new(
            MigrateErrorKind::TargetNotEmpty,
            format!(
                "the target database holds an interrupted copy of {label}: run again with --resume \
                 to continue it, or drop the database to start over"
            ),
        )),
        None if options.resume => Err(MigrateError::new(
            MigrateErrorKind::Usage,
            "--resume: the target database holds no interrupted copy to resume",
        )),
        None => {
            refuse_non_empty(target).await?;
            Ok(None)
        }
    }
}

/// A fresh copy goes into a database without tables of its own.
async fn refuse_non_empty(target: &Client) -> Result<(), MigrateError> {
    let rows = target
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND d.deptype = 'e')
             ORDER BY 1 LIMIT 6",
            &[],
        )
        .await
        .map_err(target_error("checking that the target database is empty"))?;
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = rows.iter().take(5).map(|r| r.get(0)).collect();
    Err(MigrateError::new(
        MigrateErrorKind::TargetNotEmpty,
        format!(
            "the target database is not empty (it has {}{}): copy into a new or empty database",
            names.join(", "),
            if rows.len() > 5 { ", …" } else { "" }
        ),
    ))
}

/// What `--dry-run` shows: both servers, the pg_dump to use, the tables and
/// how they would be split; nothing is changed and the target may not exist.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyPlan {
    /// Source server version.
    pub source_version: String,
    /// The pg_dump that would be used.
    pub pg_dump: String,
    /// Tables with their size and number of parts.
    pub tables: Vec<(String, i64, usize)>,
    /// Extensions of the source.
    pub extensions: Vec<String>,
    /// pgharbor's journal schemas the source holds, which the copy leaves
    /// out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub journal_left_out: Vec<String>,
}

/// Plan a copy without changing anything.
pub async fn plan_copy(source: &ConnConfig, jobs: usize) -> Result<CopyPlan, MigrateError> {
    let client = crate::target::connect(source)
        .await
        .map_err(|e| MigrateError::from(e).context("connecting to the source"))?;
    let version = Version::from_server_version_num(
        catalog::server_version_num(&client)
            .await
            .map_err(source_error("reading the server version"))?,
    );
    let pg_dump = pgharbor_pgtools::find("pg_dump", version.major)
        .map_err(|e| MigrateError::new(MigrateErrorKind::Usage, e.to_string()))?;
    let tables: Vec<SourceTable> = catalog::tables(&client).await?;
    let units = data::plan_units(&tables, &HashSet::new(), jobs.max(1), version.major);
    let extensions = catalog::extensions(&client)
        .await
        .map_err(source_error("listing extensions"))?;
    let journal_left_out = catalog::journal_schemas(&client).await?;
    Ok(CopyPlan {
        source_version: version.to_string(),
        pg_dump: format!("{} {}", pg_dump.path.display(), pg_dump.version),
        tables: tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let parts = units.iter().filter(|u| u.table == i).count();
                (t.name.to_string(), t.bytes, parts)
            })
            .collect(),
        extensions: extensions
            .iter()
            .map(|e| format!("{} {}", e.name, e.version))
            .collect(),
        journal_left_out,
    })
}

/// Whether the target database holds a finished copy of `source` (what
/// `apply` checks before running a copy again).
pub async fn finished_copy_of(
    target: &ConnConfig,
    source: &ConnConfig,
) -> Result<bool, MigrateError> {
    let state = journal_of(target).await?;
    Ok(state.is_some_and(|s| s.stage == Stage::Finished && s.source == source_label(source)))
}

/// Whether the target database holds an interrupted copy of `source` (which
/// `apply` resumes).
pub async fn interrupted_copy_of(
    target: &ConnConfig,
    source: &ConnConfig,
) -> Result<bool, MigrateError> {
    let state = journal_of(target).await?;
    Ok(state.is_some_and(|s| s.stage < Stage::Finished && s.source == source_label(source)))
}

async fn journal_of(target: &ConnConfig) -> Result<Option<journal::JournalState>, MigrateError> {
    match crate::target::connect(target).await {
        Ok(client) => journal::read(&client).await,
        Err(e) if e.is_database_missing() => Ok(None),
        Err(e) => Err(e.into()),
    }
}
