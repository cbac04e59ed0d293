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
    /// Identities in query and gallery (default: the bundled demo's).
    #[arg(long)]
    test_identities: Option<usize>,
    /// Gallery distractor images, pid 0 (default: the bundled demo's).
    #[arg(long)]
    distractors: Option<usize>,
}

/// Runs `reidscope demo-data`.
pub fn run(args: DemoDataArgs) -> Result<()> {
    let default = DemoConfig::default();
    let config = DemoConfig {
        test_identities: args.test_identities.unwrap_or(default.test_identities),
        distractors: args.distractors.unwrap_or(default.distractors),
        ..default
    };
    let count = generate(&args.out, args.seed, config)
        .with_context(|| format!("cannot write the demo dataset to {}", args.out.display()))?;
    eprintln!("wrote {count} images to {}", args.out.display());
    Ok(())
}
