//! The `reidscope` command line: thin front end over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

mod cli;

use reidscope::backend::{Backend, DeviceChoice, Precision, wgpu_adapters};
use reidscope::data::image::Preprocess;
use reidscope::data::list_images;
use reidscope::features::{ExtractOptions, extract};
use reidscope::io::{write_atomic, write_npy_f32};
use reidscope::models::{BuildOptions, Model, ModelName};

#[derive(Parser)]
#[command(
    name = "reidscope",
    version,
    about = "Person re-identification: extract features, evaluate, inspect"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Extract eval-mode features of every image in a folder into a .npy file.
    Extract(ExtractArgs),
    /// Metrics (CMC, mAP, mINP) of saved query/gallery features and labels.
    Metrics(cli::metrics::MetricsArgs),
    /// Measure inference throughput (images/s) per device, precision and batch size.
    Bench(BenchArgs),
    /// List compute devices and whether they support f16.
    Devices,
}

/// Model, weights and device options shared by the commands that run a network.
#[derive(Args)]
struct ModelArgs {
    /// Model name (Torchreid naming), e.g. osnet_ibn_x1_0, resnet50, mobilenetv2_x1_0.
    #[arg(long)]
    model: ModelName,
    /// ResNet-50 last-stage stride (1 or 2); default: 1 for triplet-baseline checkpoints, else 2.
    #[arg(long)]
    last_stride: Option<usize>,
}

#[derive(Args)]
struct ExtractArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Checkpoint (.pth / .pth.tar / .pt): Torchreid, torchvision, triplet-baseline or
    /// pytorch-mobilenet-v2 layout.
    #[arg(long)]
    weights: PathBuf,
    /// Folder of .jpg/.jpeg/.png images (not recursive), read in file-name order.
    #[arg(long)]
    images: PathBuf,
    /// Output .npy (float32, [N, D]); the file names of the rows go to <OUT>.files.txt.
    #[arg(long)]
    out: PathBuf,
    /// Compute precision.
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// auto (a hardware GPU if present, else CPU), gpu (any wgpu adapter) or cpu.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Input height.
    #[arg(long, default_value_t = 256)]
    height: u32,
    /// Input width.
    #[arg(long, default_value_t = 128)]
    width: u32,
}

#[derive(Args)]
struct BenchArgs {
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,wgpu_core=error,wgpu_hal=error,naga=error".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Extract(args) => run_extract(args),
        Command::Metrics(args) => cli::metrics::run(args),
        Command::Bench(args) => run_bench(args),
        Command::Devices => run_devices(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_model(args: &ModelArgs, weights: Option<&Path>, backend: &Backend) -> Result<Model> {
    let options = BuildOptions {
        last_stride: args.last_stride,
    };
    Ok(match weights {
        Some(path) => Model::from_checkpoint(args.model, path, options, backend)?,
        None => Model::random(args.model, 0, backend)?,
    })
}

fn run_extract(args: ExtractArgs) -> Result<()> {
    let preprocess = Preprocess {
        height: args.height,
        width: args.width,
    };
    if preprocess.is_empty() {
        bail!("--height and --width must be positive");
    }
    let images = list_images(&args.images)
        .with_context(|| format!("cannot list images in {}", args.images.display()))?;
    if images.is_empty() {
        bail!(
            "{} contains no .jpg/.jpeg/.png files",
            args.images.display()
        );
    }
    let backend = Backend::select(args.device, args.precision)?;
    let model = load_model(&args.model, Some(&args.weights), &backend)?;
    tracing::info!(device = %backend.description, "extracting {} images", images.len());

    let bar = ProgressBar::new(images.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images, {msg} ETA {eta}")
            .expect("valid progress template"),
    );
    let cancel = AtomicBool::new(false);
    let options = ExtractOptions {
        batch_size: args.batch,
        preprocess,
    };
    let result = extract(
        &model,
        &images,
        options,
        &mut |p| {
            bar.set_position(p.done as u64);
            bar.set_message(format!("{:.1} img/s", p.images_per_s));
        },
        &cancel,
    )?;
    bar.finish_and_clear();
    for skipped in &result.skipped {
        eprintln!("skipped: {skipped}");
    }
    write_npy_f32(&args.out, &result.features, result.dim)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let names_path = names_file_path(&args.out);
    write_atomic(&names_path, |w| {
        for path in &result.kept {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            writeln!(w, "{name}")?;
        }
        Ok(())
    })
    .with_context(|| format!("cannot write {}", names_path.display()))?;
    eprintln!(
        "wrote {} features of dimension {} to {} ({} skipped)",
        result.kept.len(),
        result.dim,
        args.out.display(),
        result.skipped.len()
    );
    Ok(())
}

/// `FEATS.npy` → `FEATS.npy.files.txt`.
fn names_file_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".files.txt");
    PathBuf::from(name)
}

fn run_bench(args: BenchArgs) -> Result<()> {
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

fn run_devices() -> Result<()> {
    let adapters = wgpu_adapters();
    if adapters.is_empty() {
        println!("gpu: no wgpu adapter found");
    }
    for adapter in &adapters {
        println!(
            "gpu: {} api={} type={:?} f16={}",
            adapter.name,
            adapter.api,
            adapter.device_type,
            if adapter.shader_f16 { "yes" } else { "no" }
        );
    }
    println!("cpu: flex (pure Rust) f16=no");
    let auto = Backend::select(DeviceChoice::Auto, Precision::F32)?;
    println!("auto: {}", auto.description);
    Ok(())
}
