//! What an application's run (a preset) prints after the database report:
//! Open WebUI's vector store's report and the next steps, or the reports as
//! one JSON document (`{"database": …, "vectors": …, "uploads": …}`, the
//! next steps on stderr).

use pgharbor_migrate::presets::AppReport;
use pgharbor_migrate::uploads::UploadsReport;

/// Open WebUI's uploads after the run (nothing for other applications).
#[derive(Default)]
pub struct Uploads {
    /// What `--uploads-to` copied.
    pub copied: Option<UploadsReport>,
    /// What Open WebUI needs to find them.
    pub steps: String,
    /// Why `--uploads-to` was not attempted (verification failed), printed
    /// whatever else is.
    pub not_copied: Option<String>,
}

/// Print the rest of the run's report (the database's was printed as soon
/// as it was moved, unless `json`).
pub fn print_report(report: &AppReport, uploads: &Uploads, json: bool) -> anyhow::Result<()> {
    if json {
        // Through a JSON value, as it always was: keys sorted at every level.
        let mut value = serde_json::to_value(report)?;
        value["uploads"] = serde_json::to_value(&uploads.copied)?;
        crate::render::print_json(&value)?;
    } else if let Some(vectors) = &report.vectors {
        crate::render::chroma::print_report(vectors, false)?;
    }
    if let Some(steps) = &report.next_steps {
        let steps = format!("{steps}{}", uploads.steps);
        if json {
            eprint!("{steps}");
        } else {
            print!("\n{steps}");
        }
    }
    if let Some(why) = &uploads.not_copied {
        eprintln!("pgharbor: {why}");
    }
    Ok(())
}
