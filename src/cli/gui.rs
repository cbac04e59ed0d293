//! `reidscope gui` (also `reidscope` alone): the desktop app, on the bundled demo unless told
//! otherwise.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use reidscope::app::{AppOptions, Tour, run_native};

use super::args::RunArgs;

#[derive(Args)]
pub struct GuiArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Walk through the views, save a screenshot of each into DIR, and exit.
    #[arg(long, value_name = "DIR", conflicts_with = "measure_frames")]
    screenshots: Option<PathBuf>,
    /// Scroll the gallery and switch queries, write frame times as JSON to FILE, and exit.
    #[arg(long, value_name = "FILE")]
    measure_frames: Option<PathBuf>,
}

/// Runs the app.
pub fn run(args: GuiArgs) -> Result<()> {
    let spec = args.run.spec()?;
    let tour = match (args.screenshots, args.measure_frames) {
        (Some(dir), _) => Some(Tour::screenshots(dir)),
        (None, Some(out)) => Some(Tour::frames(out)),
        (None, None) => None,
    };
    run_native(AppOptions { spec, tour }).map_err(anyhow::Error::msg)
}
