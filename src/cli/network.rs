//! Options shared by the commands that run a network, and loading the model they name.

use std::path::Path;

use anyhow::{Result, bail};
use clap::Args;

use reidscope::backend::{Backend, DeviceChoice, Precision};
use reidscope::data::image::Preprocess;
use reidscope::models::{BuildOptions, Model, ModelName};

/// Model, weights and device options shared by the commands that run a network.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Model name (Torchreid naming), e.g. osnet_ibn_x1_0, resnet50, mobilenetv2_x1_0.
    #[arg(long)]
    pub model: ModelName,
    /// ResNet-50 last-stage stride (1 or 2); default: 1 for triplet-baseline checkpoints, else 2.
    #[arg(long)]
    pub last_stride: Option<usize>,
}

/// Device, precision, batch and input size of a feature extraction.
#[derive(Args, Clone)]
pub struct InferenceArgs {
    /// Compute precision.
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// auto (a hardware GPU if present, else CPU), gpu (any wgpu adapter) or cpu.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Input height.
    #[arg(long, default_value_t = 256)]
    pub height: u32,
    /// Input width.
    #[arg(long, default_value_t = 128)]
    pub width: u32,
}

impl InferenceArgs {
    /// The input size, checked.
    pub fn preprocess(&self) -> Result<Preprocess> {
        let preprocess = Preprocess {
            height: self.height,
            width: self.width,
        };
        if preprocess.is_empty() {
            bail!("--height and --width must be positive");
        }
        Ok(preprocess)
    }
}

/// Builds the model named by `args`, from `weights` or with random weights.
pub fn load_model(args: &ModelArgs, weights: Option<&Path>, backend: &Backend) -> Result<Model> {
    let options = BuildOptions {
        last_stride: args.last_stride,
    };
    Ok(match weights {
        Some(path) => Model::from_checkpoint(args.model, path, options, backend)?,
        None => Model::random(args.model, 0, backend)?,
    })
}
