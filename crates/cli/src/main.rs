//! `pgharbor`: move a self-hosted app's data onto PostgreSQL, prove nothing was
//! lost. This binary only parses arguments, prints, and maps errors to exit
//! codes; the work lives in the library crates.

mod apply;
mod args;
mod backup;
mod chroma;
mod health;
mod init;
mod interrupt;
mod memory;
mod migrate;
mod pitr;
mod postgres;
mod presets;
mod progress;
mod render;
#[cfg(test)]
#[path = "../build/revision.rs"]
mod revision;
#[cfg(test)]
mod revision_tests;
mod secret;
mod url;

use clap::Parser as _;
use std::process::ExitCode;

/// Exit status for a failure (including a verification mismatch).
const EXIT_FAILURE: u8 = 1;
/// Exit status for a usage error.
const EXIT_USAGE: u8 = 2;

/// An error that already knows its exit status.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    /// What was being done, innermost first.
    context: Vec<&'static str>,
    error: anyhow::Error,
}

impl Failure {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::usage_error(anyhow::anyhow!(message.into()))
    }

    /// A usage error (exit 2) explained by `error` and its causes.
    pub fn usage_error(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: EXIT_USAGE,
            context: Vec::new(),
            error: error.into(),
        }
    }
}

impl Failure {
    /// The explanation, as it is printed: the context, then the error and
    /// its causes, each once (see [`render::error::explain`]).
    pub fn message(&self) -> String {
        let explained = render::error::explain(self.error.as_ref());
        self.context
            .iter()
            .fold(explained, |text, context| format!("{context}: {text}"))
    }

    /// The same failure, explained with `context` first.
    pub fn context(mut self, context: &'static str) -> Self {
        self.context.push(context);
        self
    }
}

impl Failure {
    /// A pipeline error, with the exit status its kind calls for.
    pub fn from_migrate(error: pgharbor_migrate::MigrateError) -> Self {
        let code = match error.kind() {
            pgharbor_migrate::MigrateErrorKind::Interrupted => interrupt::EXIT_INTERRUPTED,
            pgharbor_migrate::MigrateErrorKind::Usage => EXIT_USAGE,
            _ => EXIT_FAILURE,
        };
        Failure {
            code,
            context: Vec::new(),
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            code: EXIT_FAILURE,
            context: Vec::new(),
            error: error.into(),
        }
    }
}

fn main() -> ExitCode {
    memory::give_back_large_blocks();
    if let Some(code) = init::as_init() {
        return code;
    }
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgharbor: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let outcome = runtime.block_on(run(cli));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("pgharbor: error: {}", failure.message());
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: args::Cli) -> Result<u8, Failure> {
    match cli.command {
        args::Command::Migrate(a) => migrate::migrate(a).await,
        args::Command::Verify(a) => migrate::verify(a).await,
        args::Command::Url(args::UrlCommand::Build(a)) => url::build(a),
        args::Command::Url(args::UrlCommand::Inspect(a)) => url::inspect(a),
        args::Command::Secret(args::SecretCommand::Generate(a)) => secret::generate(a),
        args::Command::Check(a) => Ok(health::check(a).await),
        args::Command::Status(a) => health::status(a).await,
        args::Command::Kill(a) => health::kill(a).await,
        args::Command::Serve(a) => health::serve(a).await,
        args::Command::Apply(a) => apply::apply(a).await,
        args::Command::Backup(a) => backup::backup(a).await,
        args::Command::Restore(a) => backup::restore(a).await,
        args::Command::BaseBackup(a) => pitr::base_backup(a).await,
        args::Command::Archive(a) => pitr::archive(a).await,
        args::Command::RestoreWal(a) => pitr::restore_wal(a).await,
        args::Command::Backups(c) => backup::backups(c).await,
        args::Command::Presets(a) => presets::presets(a),
    }
}

/// Prints a command-line parsing error (or `--help`/`--version`). clap
/// quotes the offending argument; one that is a connection string with a
/// password (a URL given to the wrong option, say) is shown masked.
fn usage_error(e: &clap::Error) -> ExitCode {
    use std::io::IsTerminal as _;
    let styled = e.render();
    let colour = if e.use_stderr() {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let mut text = if colour {
        styled.ansi().to_string()
    } else {
        styled.to_string()
    };
    for arg in std::env::args_os().skip(1) {
        let arg = arg.to_string_lossy();
        if let Some(masked) = pgharbor_conn::mask_password(&arg) {
            text = text.replace(arg.as_ref(), &masked);
        }
    }
    if e.use_stderr() {
        eprint!("{text}");
        // `check` keeps pg_isready's contract: bad parameters exit 3.
        if health::is_check_invocation() {
            return ExitCode::from(health::EXIT_BAD_PARAMETERS);
        }
    } else {
        print!("{text}");
    }
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE))
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGHARBOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
        // tokio-postgres logs every statement's bind parameters at debug
        // level: they carry secrets (Open WebUI's pgcrypto key) and rows.
        .add_directive(
            "tokio_postgres::query=info"
                .parse()
                .expect("a valid directive"),
        );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
