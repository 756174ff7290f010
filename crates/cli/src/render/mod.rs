//! Everything `migrate`, `verify` and `apply` print about a run, in one
//! place: the libraries return reports (`Serialize`) and plans; these
//! modules turn them into text tables and plan text, or JSON for scripts
//! ([`print_json`], which every command's `--json` goes through); an error
//! and its causes are said once ([`error::explain`]).

pub mod app;
pub mod chroma;
pub mod error;
pub mod migration;
pub mod plan;
pub mod postgres;
pub mod presets;

/// Print `value` as pretty JSON on stdout: every command's `--json` output.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
