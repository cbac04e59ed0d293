//! `reidscope bench`: inference throughput per device, precision and batch size.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;

use reidscope::backend::{Backend, DeviceChoice, Precision};
use reidscope::data::image::Preprocess;
use reidscope::models::Model;

use super::network::{ModelArgs, load_model};

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Checkpoint to load; random weights when absent.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Devices to measure (comma-separated): cpu, gpu, auto.
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    device: Vec<DeviceChoice>,
    /// Precisions to measure (comma-separated): f32, f16.
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    precision: Vec<Precision>,
    /// Batch sizes to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "8")]
    batch: Vec<usize>,
    /// Measuring time per configuration, after warm-up.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Input height.
    #[arg(long, default_value_t = 256)]
    height: u32,
    /// Input width.
    #[arg(long, default_value_t = 128)]
    width: u32,
}

/// Runs `reidscope bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    let preprocess = Preprocess {
        height: args.height,
        width: args.width,
    };
    for &device in &args.device {
        for &precision in &args.precision {
            let backend = Backend::select(device, precision)?;
            let model = load_model(&args.model, args.weights.as_deref(), &backend)?;
            for &batch in &args.batch {
                let rate = measure_throughput(&model, preprocess, batch, args.seconds)?;
                println!(
                    "model={} device={} precision={} batch={} images_per_s={:.2}",
                    args.model.model, backend.kind, precision, batch, rate
                );
            }
        }
    }
    Ok(())
}

/// Images per second of repeated forward passes on one random batch, after two warm-up passes.
fn measure_throughput(
    model: &Model,
    preprocess: Preprocess,
    batch: usize,
    seconds: f64,
) -> Result<f64> {
    if batch == 0 {
        bail!("--batch must be positive");
    }
    let shape = [
        batch,
        3,
        preprocess.height as usize,
        preprocess.width as usize,
    ];
    let input: Vec<f32> = (0..batch * preprocess.len())
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    for _ in 0..2 {
        model.features(input.clone(), shape)?;
    }
    let budget = Duration::from_secs_f64(seconds.max(0.0));
    let start = Instant::now();
    let mut images = 0usize;
    while images == 0 || start.elapsed() < budget {
        model.features(input.clone(), shape)?;
        images += batch;
    }
    Ok(images as f64 / start.elapsed().as_secs_f64())
}
