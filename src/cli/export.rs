//! `reidscope export`: a model's weights in another file format.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use reidscope::backend::{Backend, DeviceChoice, Precision};
use reidscope::export::export;

use super::args::ModelArgs;

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Precision of the stored values: f32 or f16.
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// Output file; its extension picks the format: .pth (Torchreid checkpoint).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `reidscope export`.
pub fn run(args: ExportArgs) -> Result<()> {
    args.model.require_weights()?;
    let model = args
        .model
        .load(&Backend::select(DeviceChoice::Cpu, Precision::F32)?)?;
    export(&model, &args.out, args.precision)?;
    eprintln!(
        "{} ({}) written to {}",
        model.name(),
        args.precision,
        args.out.display()
    );
    Ok(())
}
