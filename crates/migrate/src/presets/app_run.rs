//! An application's run: the preset's hook if it runs before the load (n8n's
//! credentials checked to decrypt), its database into the schema the
//! application created (`--into-existing` with the preset's rules), the
//! preset's hook if it runs after the load (Open WebUI's vectors), then what
//! to do next.

use super::n8n_credentials::{self, CredentialsCheck, KeySources};
use super::{fill, AppData, Hook};
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
use std::path::Path;
use std::sync::Arc;

/// What happened to Open WebUI's vector store (the `open-webui-vectors` hook).
#[derive(Debug, Clone)]
pub enum VectorOutcome {
    /// Moved into `document_chunk`; Open WebUI's settings for it.
    Moved(Vec<String>),
    /// Left alone on request.
    Skipped,
    /// There is no Chroma store to move.
    NoStore,
}

/// What a preset's hook did, for the end of the run.
#[derive(Debug, Clone)]
pub enum HookOutcome {
    /// `n8n-credentials`: every credential decrypts.
    Credentials(CredentialsCheck),
    /// `open-webui-vectors`.
    Vectors(VectorOutcome),
}

impl AppData {
    /// What to do after the data moved: the application's settings
    /// (passwords masked), the hook's part, the notes, and the stores.
    pub fn next_steps(&self, target: &ConnConfig, hook: Option<&HookOutcome>) -> String {
        let after = &self.preset.after;
        let mut out = String::new();
        if let Some(intro) = &after.intro {
            out.push_str(&format!("{}\n", fill(intro, target, None)));
        }
        for setting in &after.env {
            out.push_str(&format!("  {}\n", fill(setting, target, None)));
        }
        match hook {
            Some(HookOutcome::Vectors(outcome)) => {
                out.push_str(&self.vector_steps(target, outcome))
            }
            Some(HookOutcome::Credentials(check)) => {
                out.push_str(&format!("{}\n", check.sentence()))
            }
            None => {}
        }
        for note in &after.notes {
            out.push_str(&format!("{}\n", fill(note, target, Some(&self.dir))));
        }
        for (name, store) in &self.preset.stores {
            let text = match self.store_dir(name) {
                Some(path) => store
                    .present
                    .as_deref()
                    .map(|t| fill(t, target, Some(path))),
                None => store
                    .absent
                    .as_deref()
                    .map(|t| fill(t, target, Some(&self.dir.join(&store.path)))),
            };
            if let Some(text) = text {
                out.push_str(&format!("{text}\n"));
            }
        }
        out
    }

    /// The `open-webui-vectors` hook's part of the next steps.
    fn vector_steps(&self, target: &ConnConfig, vectors: &VectorOutcome) -> String {
        let url = target.to_string();
        let vector_db = self.store_dir(Hook::OpenWebUiVectors.store());
        let mut out = String::new();
        match (vectors, vector_db) {
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
        out
    }
}

/// One application's run: where from, where to, and how.
#[derive(Debug)]
pub struct AppRun<'a> {
    /// The data directory's parts, found by the preset.
    pub app: &'a AppData,
    /// SOURCE as given, for the report.
    pub source_label: &'a str,
    /// The PostgreSQL database the application created its schema in.
    pub target: &'a ConnConfig,
    /// How the database is loaded (`--into-existing`, the preset's rules in).
    pub database: &'a ExistingOptions,
    /// How the `open-webui-vectors` hook moves `vector_db/`; `None` leaves
    /// it alone (`--skip-vectors`).
    pub vectors: Option<&'a ChromaOptions>,
    /// Cancelled by the caller to stop the run (Ctrl-C).
    pub cancel: &'a CancellationToken,
}

/// What an application's run did.
#[derive(Debug, Serialize)]
pub struct AppReport {
    /// The preset that moved it (`open-webui`).
    pub preset: String,
    /// The database, loaded into the application's schema.
    pub database: MigrationReport,
    /// n8n's credentials, checked to decrypt before the load (the
    /// `n8n-credentials` hook).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsCheck>,
    /// Open WebUI's `vector_db/`, moved into `document_chunk` (when it was).
    pub vectors: Option<ChromaReport>,
    /// What to set next (passwords masked), when everything verified.
    #[serde(skip)]
    pub next_steps: Option<String>,
}

impl AppRun<'_> {
    /// The preset's hook that runs before the load (n8n's credentials
    /// checked, inside the snapshot; a refusal writes nothing); the database
    /// loaded (already inspected: `snapshot`, `schema`); once it is in,
    /// `database_moved` sees its report. Then the hook that runs after the
    /// load: unless verification failed or `vectors` is `None`, Open WebUI's
    /// `vector_db/` is moved when it holds a Chroma store. Everything
    /// verified: the report says what to do next.
    pub async fn run(
        &self,
        snapshot: SourceSnapshot,
        schema: SourceSchema,
        progress: Arc<dyn Progress>,
        database_moved: impl FnOnce(&MigrationReport),
    ) -> Result<AppReport, MigrateError> {
        let hook = self.app.preset.hook();
        let (snapshot, credentials) = match hook {
            Some(Hook::N8nCredentials) => {
                progress.phase("checking that n8n's credentials decrypt");
                let (snapshot, checked) = self.check_credentials(snapshot).await?;
                (snapshot, Some(checked))
            }
            _ => (snapshot, None),
        };
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
        let store = match hook {
            Some(Hook::OpenWebUiVectors) => self.app.store(Hook::OpenWebUiVectors.store()),
            _ => None,
        };
        let vectors = match (store, self.vectors) {
            (Some(dir), Some(options)) if database.verified != Some(false) => Some(
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
        let outcome = match hook {
            Some(Hook::OpenWebUiVectors) => Some(HookOutcome::Vectors(match (&vectors, store) {
                (Some(moved), _) => VectorOutcome::Moved(moved.open_webui_env.clone()),
                (None, Some(_)) => VectorOutcome::Skipped,
                (None, None) => VectorOutcome::NoStore,
            })),
            Some(Hook::N8nCredentials) => credentials.clone().map(HookOutcome::Credentials),
            None => None,
        };
        let next_steps = passed.then(|| self.app.next_steps(self.target, outcome.as_ref()));
        Ok(AppReport {
            preset: self.app.preset.name.clone(),
            database,
            credentials,
            vectors,
            next_steps,
        })
    }

    /// The `n8n-credentials` hook: every credential of the snapshot checked
    /// to decrypt with the instance's key; the snapshot handed back.
    async fn check_credentials(
        &self,
        snapshot: SourceSnapshot,
    ) -> Result<(SourceSnapshot, CredentialsCheck), MigrateError> {
        let config = self
            .app
            .preset
            .stores
            .get(Hook::N8nCredentials.store())
            .map(|store| self.app.dir.join(&store.path))
            .expect("a preset naming the hook declares its store (checked when it is read)");
        let sources = KeySources::from_environment(config);
        let (snapshot, checked) = tokio::task::spawn_blocking(move || {
            let checked = n8n_credentials::check(snapshot.connection(), &sources);
            (snapshot, checked)
        })
        .await
        .map_err(|e| {
            MigrateError::new(
                MigrateErrorKind::Source,
                format!("checking n8n's credentials crashed: {e}"),
            )
        })?;
        Ok((snapshot, checked?))
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
