//! What an application's run (a preset) prints after the database report:
//! Open WebUI's vector store's report and the next steps, or both reports as
//! one JSON document (`{"database": …, "vectors": …}`, the next steps on
//! stderr).

use pgharbor_migrate::presets::AppReport;

/// Print the rest of the run's report (the database's was printed as soon
/// as it was moved, unless `json`).
pub fn print_report(report: &AppReport, json: bool) -> anyhow::Result<()> {
    if json {
        // Through a JSON value, as it always was: keys sorted at every level.
        let value = serde_json::to_value(report)?;
        crate::render::print_json(&value)?;
    } else if let Some(vectors) = &report.vectors {
        crate::render::chroma::print_report(vectors, false)?;
    }
    if let Some(steps) = &report.next_steps {
        if json {
            eprint!("{steps}");
        } else {
            print!("\n{steps}");
        }
    }
    Ok(())
}
