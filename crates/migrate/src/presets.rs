//! Application knowledge: what `--preset NAME` means, and Open WebUI's run
//! (its database into the schema Open WebUI created, then its vectors).

use crate::chroma::{self, ChromaOptions, ChromaReport};
use crate::error::{MigrateError, MigrateErrorKind};
use crate::existing::{self, ExistingOptions};
use crate::progress::Progress;
use crate::run::CancellationToken;
use pgharbor_conn::ConnConfig;
use pgharbor_core::report::MigrationReport;
use pgharbor_sqlite::inspect::SourceSchema;
use pgharbor_sqlite::open::SourceSnapshot;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Applications pgharbor knows (`--preset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Preset {
    /// Open WebUI: `webui.db`, `vector_db/`, `uploads/`.
    OpenWebUi,
}

/// What happened to Open WebUI's vector store.
#[derive(Debug, Clone)]
pub enum VectorOutcome {
    /// Moved into `document_chunk`; Open WebUI's settings for it.
    Moved(Vec<String>),
    /// Left alone on request.
    Skipped,
    /// There is no Chroma store to move.
    NoStore,
}

/// Open WebUI's data directory, as found from the SOURCE argument.
#[derive(Debug, Clone)]
pub struct OpenWebUi {
    /// The SQLite database (`webui.db`).
    pub database: PathBuf,
    /// The Chroma directory (`vector_db/`), when present.
    pub vector_db: Option<PathBuf>,
    /// Uploaded files (`uploads/`), when present.
    pub uploads: Option<PathBuf>,
}

impl OpenWebUi {
    /// The Chroma store to move: `vector_db/` when it holds `chroma.sqlite3`.
    pub fn chroma_store(&self) -> Option<&Path> {
        self.vector_db
            .as_deref()
            .filter(|d| d.join("chroma.sqlite3").is_file())
    }
}

impl OpenWebUi {
    /// Accept Open WebUI's data directory (`/app/backend/data`) or its `webui.db`.
    pub fn locate(source: &Path) -> Result<OpenWebUi, MigrateError> {
        let (dir, database) = if source.is_dir() {
            (source.to_path_buf(), source.join("webui.db"))
        } else {
            (
                source.parent().map(Path::to_path_buf).unwrap_or_default(),
                source.to_path_buf(),
            )
        };
        if !database.is_file() {
            return Err(MigrateError::new(
                MigrateErrorKind::Usage,
                format!(
                    "{}: no Open WebUI database here; give Open WebUI's data directory (DATA_DIR, /app/backend/data in the container) or its webui.db",
                    database.display()
                ),
            ));
        }
        let existing = |name: &str| Some(dir.join(name)).filter(|p| p.is_dir());
        Ok(OpenWebUi {
            database,
            vector_db: existing("vector_db"),
            uploads: existing("uploads"),
        })
    }

    /// What to do after the relational data moved: Open WebUI's environment
    /// (passwords masked) and its vectors (its uploads: [`crate::uploads`]).
    pub fn next_steps(&self, target: &ConnConfig, vectors: &VectorOutcome) -> String {
        let url = target.to_string();
        let mut out = String::from(
            "Next, start Open WebUI with (password shown as ****; use your secret store):\n",
        );
        out.push_str(&format!("  DATABASE_URL={url}\n"));
        match (vectors, &self.vector_db) {
            (VectorOutcome::Moved(env), _) => {
                for setting in env {
                    out.push_str(&format!("  {setting}\n"));
                }
                out.push_str(&format!("  PGVECTOR_DB_URL={url}\n"));
                out.push_str("Vectors were moved from vector_db/ without re-embedding; keep the directory as a backup until Open WebUI answers from PostgreSQL.\n");
            }
            (VectorOutcome::Skipped, Some(dir)) => out.push_str(&format!(
                "Vectors were NOT moved (--skip-vectors): keep VECTOR_DB=chroma and {}, or run `pgharbor migrate chroma:{} {url} --layout open-webui` later.\n",
                dir.display(),
                dir.display()
            )),
            (VectorOutcome::NoStore, Some(dir)) => out.push_str(&format!(
                "Vectors were NOT moved: {} holds no chroma.sqlite3. To keep future vectors in PostgreSQL: VECTOR_DB=pgvector, PGVECTOR_DB_URL={url}, PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH=<your embedding dimension>.\n",
                dir.display()
            )),
            (_, None) => out.push_str(&format!(
                "No vector_db/ was found. To keep vectors in PostgreSQL too: VECTOR_DB=pgvector, PGVECTOR_DB_URL={url}, PGVECTOR_INITIALIZE_MAX_VECTOR_LENGTH=<your embedding dimension>.\n"
            )),
        }
        // uploads/: see crate::uploads::next_steps.
        out
    }
}

/// One Open WebUI run: where from, where to, and how.
#[derive(Debug)]
pub struct OpenWebUiRun<'a> {
    /// The data directory's parts.
    pub app: &'a OpenWebUi,
    /// SOURCE as given, for the report.
    pub source_label: &'a str,
    /// The PostgreSQL database Open WebUI created its schema in.
    pub target: &'a ConnConfig,
    /// How `webui.db` is loaded (`--into-existing`).
    pub database: &'a ExistingOptions,
    /// How `vector_db/` is moved; `None` leaves it alone (`--skip-vectors`).
    pub vectors: Option<&'a ChromaOptions>,
    /// Cancelled by the caller to stop the run (Ctrl-C).
    pub cancel: &'a CancellationToken,
}

/// What an Open WebUI run did.
#[derive(Debug, Serialize)]
pub struct OpenWebUiReport {
    /// `webui.db`, loaded into Open WebUI's schema.
    pub database: MigrationReport,
    /// `vector_db/`, moved into `document_chunk` (when it was).
    pub vectors: Option<ChromaReport>,
    /// What to set next (passwords masked), when everything verified.
    #[serde(skip)]
    pub next_steps: Option<String>,
}

impl OpenWebUiRun<'_> {
    /// Load `webui.db` (already inspected: `snapshot`, `schema`); once it
    /// is in, `database_moved` sees its report. Then, unless verification
    /// failed or `vectors` is `None`, move `vector_db/` when it holds a
    /// Chroma store. Everything verified: the report says what to set next.
    pub async fn run(
        &self,
        snapshot: SourceSnapshot,
        schema: SourceSchema,
        progress: Arc<dyn Progress>,
        database_moved: impl FnOnce(&MigrationReport),
    ) -> Result<OpenWebUiReport, MigrateError> {
        let database = existing::migrate_into_existing(
            self.source_label,
            snapshot,
            schema,
            self.target,
            self.database,
            progress.clone(),
            self.cancel,
        )
        .await?;
        database_moved(&database);
        let store = self
            .app
            .chroma_store()
            .filter(|_| database.verified != Some(false));
        let vectors = match (store, self.vectors) {
            (Some(dir), Some(options)) => Some(
                self.move_vectors(dir, options, progress)
                    .await
                    .map_err(|e| {
                        e.context("the database was moved and verified; moving vector_db/ failed")
                    })?,
            ),
            _ => None,
        };
        let passed = database.verified != Some(false)
            && vectors.as_ref().is_none_or(|v| {
                v.migration.verified != Some(false) && v.recall_passed != Some(false)
            });
        let outcome = match (&vectors, self.app.chroma_store()) {
            (Some(moved), _) => VectorOutcome::Moved(moved.open_webui_env.clone()),
            (None, Some(_)) => VectorOutcome::Skipped,
            (None, None) => VectorOutcome::NoStore,
        };
        let next_steps = passed.then(|| self.app.next_steps(self.target, &outcome));
        Ok(OpenWebUiReport {
            database,
            vectors,
            next_steps,
        })
    }

    async fn move_vectors(
        &self,
        dir: &Path,
        options: &ChromaOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<ChromaReport, MigrateError> {
        progress.phase("reading the Chroma store");
        let path = dir.to_path_buf();
        let jobs = options.jobs;
        let store = tokio::task::spawn_blocking(move || chroma::open_store(&path, jobs))
            .await
            .map_err(|e| {
                MigrateError::new(
                    MigrateErrorKind::Source,
                    format!("reading the Chroma store crashed: {e}"),
                )
            })??;
        chroma::migrate(
            &dir.display().to_string(),
            store,
            self.target,
            options,
            progress,
            self.cancel,
        )
        .await
    }
}
