//! `pgharbor presets` and `pgharbor presets show NAME|FILE`.

use crate::args::{PresetsArgs, PresetsCommand};
use crate::{render, Failure};
use pgharbor_migrate::presets;

/// `pgharbor presets [show NAME|FILE]`.
pub fn presets(args: PresetsArgs) -> Result<u8, Failure> {
    if let Some(PresetsCommand::Show(show)) = args.command {
        let text = presets::show(&show.preset).map_err(Failure::from_migrate)?;
        print!("{text}");
        return Ok(0);
    }
    let summaries: Vec<presets::Summary> =
        presets::built_in().iter().map(|p| p.summary()).collect();
    if args.json {
        render::print_json(&summaries)?;
    } else {
        print!("{}", render::presets::render(&summaries));
    }
    Ok(0)
}
