//! `reidscope bench`: inference throughput per device, precision and batch size, training
//! throughput (`--train`), or (with `--metrics`) evaluation time on a synthetic
//! Market-1501-sized problem.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use reidscope::backend::{Backend, DeviceChoice, Precision};
use reidscope::data::image::Preprocess;
use reidscope::eval::Label;
use reidscope::models::{BuildOptions, Model, ModelName, TrainableModel};
use reidscope::run::{FeatureRows, score};
use reidscope::train::batches::TrainBatch;
use reidscope::train::loss_scale::LossScale;
use reidscope::train::optimizer::OptimizerSettings;
use reidscope::train::step::{Learner, LossSettings, TrainPrecision};
use reidscope::train::training_backend;

use super::args::{EvalArgs, InputArgs, ModelArgs};

#[derive(Args)]
pub struct BenchArgs {
    /// The model to measure (required unless --metrics); random weights without --weights.
    #[command(flatten)]
    model: ModelArgs,
    /// Measure evaluation instead: a synthetic problem of --queries × --gallery × --dim with
    /// 751 identities over 6 cameras (Market-1501's shape by default).
    #[arg(long)]
    metrics: bool,
    /// Measure training instead: steps of the softmax + triplet recipe (Adam) on a random
    /// batch of batch/4 identities × 4 images.
    #[arg(long, conflicts_with = "metrics")]
    train: bool,
    /// Queries of the --metrics problem.
    #[arg(long, default_value_t = 3368)]
    queries: usize,
    /// Gallery size of the --metrics problem.
    #[arg(long, default_value_t = 15913)]
    gallery: usize,
    /// Feature length of the --metrics problem.
    #[arg(long, default_value_t = 512)]
    dim: usize,
    #[command(flatten)]
    eval: EvalArgs,
    /// Devices to measure (comma-separated): cpu, gpu, auto.
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    device: Vec<DeviceChoice>,
    /// Precisions to measure (comma-separated): f32, f16 (with --train: f16 = mixed precision).
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    precision: Vec<Precision>,
    /// Batch sizes to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "8")]
    batch: Vec<usize>,
    /// Measuring time per configuration, after warm-up.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[command(flatten)]
    input: InputArgs,
}

/// Runs `reidscope bench`, once per entry of `threads` (each in a pool of that many threads)
/// when it lists several, else on the global pool.
pub fn run(args: BenchArgs, threads: &[usize]) -> Result<()> {
    if threads.len() < 2 {
        return measure_all(&args);
    }
    for &n in threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .with_context(|| format!("cannot start {n} threads"))?;
        pool.install(|| measure_all(&args))?;
    }
    Ok(())
}

/// The measurements `args` asks for, on the current thread pool.
fn measure_all(args: &BenchArgs) -> Result<()> {
    if args.metrics {
        return bench_metrics(args);
    }
    let model_name = args
        .model
        .name()
        .context("give --model NAME (or --metrics)")?;
    let preprocess = args.input.preprocess()?;
    if args.train {
        return bench_train(args, model_name, preprocess);
    }
    for &device in &args.device {
        for &precision in &args.precision {
            let backend = Backend::select(device, precision)?;
            let model = args.model.load(&backend)?;
            for &batch in &args.batch {
                let rate = measure_throughput(&model, preprocess, batch, args.seconds)?;
                println!(
                    "model={} device={} precision={} batch={} threads={} images_per_s={:.2}",
                    model_name,
                    backend.kind,
                    precision,
                    batch,
                    rayon::current_num_threads(),
                    rate
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

/// Training throughput per device, precision (f16: mixed precision) and batch size.
fn bench_train(args: &BenchArgs, name: ModelName, preprocess: Preprocess) -> Result<()> {
    for &device in &args.device {
        for &precision in &args.precision {
            let precision = match precision {
                Precision::F32 => TrainPrecision::F32,
                Precision::F16 => TrainPrecision::Mixed,
            };
            let backend = training_backend(device, precision)?;
            let loss_scale = (precision == TrainPrecision::Mixed).then(LossScale::default);
            for &batch in &args.batch {
                let rate = measure_training(args, name, &backend, loss_scale, preprocess, batch)?;
                println!(
                    "model={name} device={} precision={precision} batch={batch} threads={} train_images_per_s={rate:.2}",
                    backend.kind,
                    rayon::current_num_threads()
                );
            }
        }
    }
    Ok(())
}

/// Images per second of training steps on one random batch (identities of 4 images each),
/// after two warm-up steps.
fn measure_training(
    args: &BenchArgs,
    name: ModelName,
    backend: &Backend,
    loss_scale: Option<LossScale>,
    preprocess: Preprocess,
    batch: usize,
) -> Result<f64> {
    const INSTANCES: usize = 4;
    if batch == 0 {
        bail!("--batch must be positive");
    }
    let identities = batch.div_ceil(INSTANCES);
    let device = backend.device.clone().autodiff();
    let options = BuildOptions {
        last_stride: args.model.last_stride,
    };
    let weights = args.model.weights.as_deref();
    let model = TrainableModel::load(name, weights, options, identities, 0, &device)?;
    model
        .architecture()
        .check_input(preprocess.height, preprocess.width)?;
    let mut learner = Learner {
        model,
        optimizer: OptimizerSettings::default().adam().init(),
        losses: LossSettings::default(),
        device,
        loss_scale,
    };
    let train_batch = TrainBatch {
        inputs: (0..batch * preprocess.len())
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect(),
        shape: [
            batch,
            3,
            preprocess.height as usize,
            preprocess.width as usize,
        ],
        labels: (0..batch).map(|i| i / INSTANCES).collect(),
    };
    for _ in 0..2 {
        learner.step(&train_batch, 3e-4, None);
    }
    let budget = Duration::from_secs_f64(args.seconds.max(0.0));
    let start = Instant::now();
    let mut images = 0usize;
    while images == 0 || start.elapsed() < budget {
        learner.step(&train_batch, 3e-4, None);
        images += batch;
    }
    Ok(images as f64 / start.elapsed().as_secs_f64())
}

/// Seconds to evaluate a synthetic problem (distances, ranking, metrics; not file reading).
fn bench_metrics(args: &BenchArgs) -> Result<()> {
    const IDENTITIES: usize = 751;
    const CAMERAS: i64 = 6;
    let options = args.eval.options()?;
    let mut rng = StdRng::seed_from_u64(0);
    let centers: Vec<f32> = (0..IDENTITIES * args.dim)
        .map(|_| rng.random::<f32>() - 0.5)
        .collect();
    let mut sample = |n: usize| {
        let mut features = Vec::with_capacity(n * args.dim);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let pid = rng.random_range(0..IDENTITIES);
            let center = &centers[pid * args.dim..(pid + 1) * args.dim];
            features.extend(center.iter().map(|c| c + 2.5 * (rng.random::<f32>() - 0.5)));
            labels.push(Label {
                pid: pid as i64,
                camid: rng.random_range(0..CAMERAS),
            });
        }
        (features, labels)
    };
    let (qf, queries) = sample(args.queries);
    let (gf, gallery) = sample(args.gallery);
    let device = args.device.first().copied().unwrap_or(DeviceChoice::Auto);
    let start = Instant::now();
    let scores = score(
        FeatureRows {
            query: &qf,
            gallery: &gf,
            dim: args.dim,
        },
        (&queries, &gallery),
        &options,
        device,
        String::new(),
        &mut |_| {},
        &Default::default(),
    )?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "metrics device={} threads={} queries={} gallery={} dim={} metric={} rerank={} protocol={} mAP={:.4} seconds={:.3}",
        scores.device,
        rayon::current_num_threads(),
        args.queries,
        args.gallery,
        args.dim,
        options.metric,
        options.rerank.is_some(),
        options.protocol,
        scores.evaluation.metrics.map,
        seconds
    );
    Ok(())
}
