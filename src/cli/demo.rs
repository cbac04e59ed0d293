//! `reidscope demo-data`: writes the synthetic demo dataset.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use reidscope::demo::{DemoConfig, generate};

/// Seed of the demo dataset shipped in assets/demo.
pub const DEMO_SEED: u64 = 1501;

#[derive(Args)]
pub struct DemoDataArgs {
    /// Output folder (Market-1501 layout).
    #[arg(long)]
    out: PathBuf,
    /// Random seed; the same seed gives the same bytes.
    #[arg(long, default_value_t = DEMO_SEED)]
    seed: u64,
}

/// Runs `reidscope demo-data`.
pub fn run(args: DemoDataArgs) -> Result<()> {
    let count = generate(&args.out, args.seed, DemoConfig::default())
        .with_context(|| format!("cannot write the demo dataset to {}", args.out.display()))?;
    eprintln!("wrote {count} images to {}", args.out.display());
    Ok(())
}
