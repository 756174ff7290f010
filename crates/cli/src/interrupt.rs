//! Ctrl-C, turned into the cancellation the libraries are handed: they never
//! listen for signals themselves.
//!
//! The first Ctrl-C cancels the token: the run cancels its statements on the
//! server, cleans up as it does after any failure and ends with exit status
//! 130; a line on stderr says so at once. A second Ctrl-C, while that
//! clean-up still runs (a `DROP` waiting for a lock, a server out of reach),
//! cancels the clean-up's statement on the server
//! ([`pgharbor_migrate::abandon_clean_ups`]) and exits at once with status
//! 130, saying what may be left in the target and what the next run does
//! about it ([`Leftovers`]).

use pgharbor_migrate::journal::SCHEMA as JOURNAL;
use pgharbor_migrate::CancellationToken;

/// Exit status after Ctrl-C, as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// How long a second Ctrl-C spends sending the clean-ups' cancel requests.
const ABANDON_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a run may leave in the target when the process exits before its
/// clean-up is done.
#[derive(Debug, Clone, Copy)]
pub enum Leftovers {
    /// Nothing: the command only reads the target (`verify`).
    Nothing,
    /// Tables the run created, recorded as it created them: the next run
    /// removes them first.
    CreatedTables,
    /// Rows loaded into existing tables under the resume journal.
    LoadJournal,
    /// Tables a Chroma move created (recorded), or rows it added to an
    /// existing table (Open WebUI's `document_chunk`).
    ChromaStore,
    /// An application's database under the resume journal, then its
    /// vectors (Open WebUI's).
    AppWithVectors,
    /// A PostgreSQL copy's schema and tables under its journal; `rerun`
    /// when running the same command again resumes it (`apply`).
    CopyJournal {
        /// The same command resumes by itself.
        rerun: bool,
    },
}

impl Leftovers {
    /// What a person is told when the process exits before the clean-up.
    fn explain(self) -> String {
        match self {
            Leftovers::Nothing => "nothing was changed in the target".into(),
            Leftovers::CreatedTables => format!(
                "tables this run created may be left in the target, recorded in schema {}: \
                 running the same command again removes exactly those first",
                JOURNAL
            ),
            Leftovers::LoadJournal => format!(
                "the rows loaded so far may be left in the target, with the run's journal in schema {}: \
                 run the same command with --resume to finish, or with --truncate to start over",
                JOURNAL
            ),
            Leftovers::ChromaStore => format!(
                "{}; rows this run added to an existing table may be left there: \
                 running the same command again with --truncate deletes them first",
                Leftovers::CreatedTables.explain()
            ),
            Leftovers::AppWithVectors => format!(
                "{}; once the database is in, {}",
                Leftovers::LoadJournal.explain(),
                Leftovers::ChromaStore.explain()
            ),
            Leftovers::CopyJournal { rerun } => format!(
                "the schema and the tables copied so far may be left in the target, recorded in schema {}: \
                 {} to finish, or drop the database to start over",
                JOURNAL,
                if rerun {
                    "run the same command again"
                } else {
                    "run the same command with --resume"
                }
            ),
        }
    }
}

/// A token cancelled when the user presses Ctrl-C (from now on); a second
/// Ctrl-C ends the process, saying what `leftovers` may be in the target.
pub fn on_ctrl_c(leftovers: Leftovers) -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!(
            "pgharbor: interrupted: stopping the run's work on the server and cleaning up (Ctrl-C again exits at once)"
        );
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        // A server out of reach must not hold up the exit.
        let _ = tokio::time::timeout(ABANDON_WAIT, pgharbor_migrate::abandon_clean_ups()).await;
        eprintln!(
            "pgharbor: interrupted again: exiting at once; {}",
            leftovers.explain()
        );
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    });
    token
}
