//! Everything `migrate`, `verify` and `apply` print about a run, in one
//! place: the libraries return reports (`Serialize`) and plans; these
//! modules turn them into text tables and plan text, or JSON for scripts.

pub mod chroma;
pub mod migration;
pub mod open_webui;
pub mod plan;
pub mod postgres;
