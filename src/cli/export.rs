//! `reidscope export`: a model's weights in another file format.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use reidscope::backend::{Backend, DeviceChoice, Precision};
use reidscope::export::{ExportSettings, export};

use super::args::{InputArgs, ModelArgs};

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Precision of the stored values: f32 or f16.
    #[arg(long, default_value = "f32")]
    precision: Precision,
    #[command(flatten)]
    input: InputArgs,
    /// Output file; its extension picks the format: .pth (Torchreid checkpoint) or
    /// .safetensors (the state dict, with the model name and input size as metadata).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `reidscope export`.
pub fn run(args: ExportArgs) -> Result<()> {
    args.model.require_weights()?;
    let model = args
        .model
        .load(&Backend::select(DeviceChoice::Cpu, Precision::F32)?)?;
    let settings = ExportSettings {
        precision: args.precision,
        input: args.input.preprocess()?,
    };
    export(&model, &args.out, &settings)?;
    eprintln!(
        "{} ({}) written to {}",
        model.name(),
        args.precision,
        args.out.display()
    );
    Ok(())
}
