//! The command line, as PRODUCT.md's contract states it.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Move a self-hosted application's data onto PostgreSQL and prove nothing was lost.
#[derive(Debug, Parser)]
#[command(name = "pgharbor", version, about, propagate_version = true)]
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
    /// Compare SOURCE with TARGET without copying (counts and content checksums).
    Verify(VerifyArgs),
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
    /// A SQLite file (path, or sqlite:PATH).
    pub source: String,
    /// A PostgreSQL URL or key=value string; defaults to $DATABASE_URL.
    pub target: Option<String>,
    /// Schema in the target.
    #[arg(long, default_value = "public")]
    pub schema: String,
    /// Parallel workers (default: number of CPUs).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// NUL characters in text: stop (error) or strip them.
    #[arg(long, value_enum, default_value = "error")]
    pub nul: NulChoice,
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
}

/// `pgharbor verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Source, target and value rules (the ones the migration used).
    #[command(flatten)]
    pub common: SourceArgs,
}
