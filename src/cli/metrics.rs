//! `reidscope metrics`: metrics of saved features and labels.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use burn::tensor::Device;
use reidscope::backend::{DeviceChoice, distance_device};
use reidscope::eval::rerank::RerankParams;
use reidscope::eval::{Distances, EvalOptions, Evaluation, Label, Metric, Protocol, evaluate};
use reidscope::io::{read_npy_ids, read_npy_matrix};
use reidscope::report::{MetricsFile, write_per_query_csv};

/// How features are compared and scored (shared by `metrics` and `eval`).
#[derive(Args, Clone)]
pub struct EvalArgs {
    /// Distance: euclidean (squared, as Torchreid) or cosine (1 − cos).
    #[arg(long, default_value = "euclidean")]
    pub metric: Metric,
    /// L2-normalise features before the distance.
    #[arg(long)]
    pub normalize: bool,
    /// market (all gallery matches) or cuhk03 (single-gallery-shot CMC, 10 seeded draws).
    #[arg(long, default_value = "market")]
    pub protocol: Protocol,
    /// k-reciprocal re-ranking (k1=20, k2=6, λ=0.3).
    #[arg(long)]
    pub rerank: bool,
    /// Average query expansion (α-weighted, k=5, α=3) before the distance.
    #[arg(long)]
    pub aqe: bool,
    /// Length of the CMC curve.
    #[arg(long, default_value_t = 50)]
    pub max_rank: usize,
    /// Seed of the CUHK03 protocol's random draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl EvalArgs {
    /// The library options these flags describe.
    pub fn options(&self) -> Result<EvalOptions> {
        if self.max_rank == 0 {
            bail!("--max-rank must be at least 1");
        }
        Ok(EvalOptions {
            metric: self.metric,
            normalize: self.normalize,
            protocol: self.protocol,
            rerank: self.rerank.then(RerankParams::default),
            aqe: self.aqe,
            max_rank: self.max_rank,
            seed: self.seed,
        })
    }
}

#[derive(Args)]
pub struct MetricsArgs {
    /// Query features, .npy float32 [Q, D].
    #[arg(long)]
    qf: PathBuf,
    /// Gallery features, .npy float32 [G, D].
    #[arg(long)]
    gf: PathBuf,
    /// Query person ids, 1-D .npy int32/int64.
    #[arg(long)]
    q_pids: PathBuf,
    /// Gallery person ids, 1-D .npy int32/int64.
    #[arg(long)]
    g_pids: PathBuf,
    /// Query camera ids, 1-D .npy int32/int64.
    #[arg(long)]
    q_camids: PathBuf,
    /// Gallery camera ids, 1-D .npy int32/int64.
    #[arg(long)]
    g_camids: PathBuf,
    #[command(flatten)]
    eval: EvalArgs,
    /// Where the distance matrix products run: auto (a hardware GPU if present, else the CPU
    /// GEMM), gpu (any wgpu adapter) or cpu.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Also write one CSV line per query (AP, mINP, first-hit rank).
    #[arg(long)]
    per_query: Option<PathBuf>,
    /// Output JSON: mAP, mINP, cmc, num_valid_queries, …
    #[arg(long)]
    out: PathBuf,
}

/// Reads one side's features and labels, checking that their lengths agree.
pub fn read_side(
    features: &Path,
    pids: &Path,
    camids: &Path,
) -> Result<(Vec<f32>, usize, Vec<Label>)> {
    let (values, rows, dim) = read_npy_matrix(features)?;
    let pid_values = read_npy_ids(pids)?;
    let camid_values = read_npy_ids(camids)?;
    for (file, len) in [(pids, pid_values.len()), (camids, camid_values.len())] {
        if len != rows {
            bail!(
                "{}: {len} ids, but {} has {rows} feature rows",
                file.display(),
                features.display()
            );
        }
    }
    let labels = pid_values
        .into_iter()
        .zip(camid_values)
        .map(|(pid, camid)| Label { pid, camid })
        .collect();
    Ok((values, dim, labels))
}

/// A progress bar over queries.
fn query_bar(total: usize) -> ProgressBar {
    ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} queries ranked, ETA {eta}")
            .expect("valid progress template"),
    )
}

/// Prepares distances and scores every query, with a progress bar.
pub fn run_evaluation(
    query_features: &[f32],
    gallery_features: &[f32],
    dim: usize,
    queries: &[Label],
    gallery: &[Label],
    options: &EvalOptions,
    device: Option<&Device>,
) -> Result<(Distances, Evaluation)> {
    let spinner = ProgressBar::new_spinner().with_message(if options.rerank.is_some() {
        "computing neighbourhoods for re-ranking"
    } else {
        "preparing features"
    });
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let distances = Distances::new(query_features, gallery_features, dim, options, device)?;
    spinner.finish_and_clear();
    let bar = query_bar(queries.len());
    let evaluation = evaluate(
        &distances,
        queries,
        gallery,
        options,
        &mut |done, _| bar.set_position(done as u64),
        &AtomicBool::new(false),
    )?;
    bar.finish_and_clear();
    Ok((distances, evaluation))
}

/// One human-readable summary line.
pub fn summary(metrics: &MetricsFile) -> String {
    format!(
        "mAP {:.1}%  rank-1 {:.1}%  rank-5 {:.1}%  rank-10 {:.1}%  mINP {:.1}%  ({} of {} queries valid)",
        metrics.map * 100.0,
        metrics.rank(1) * 100.0,
        metrics.rank(5) * 100.0,
        metrics.rank(10) * 100.0,
        metrics.minp * 100.0,
        metrics.num_valid_queries,
        metrics.num_queries
    )
}

/// Runs `reidscope metrics`.
pub fn run(args: MetricsArgs) -> Result<()> {
    let start = Instant::now();
    let options = args.eval.options()?;
    let (qf, q_dim, queries) = read_side(&args.qf, &args.q_pids, &args.q_camids)?;
    let (gf, g_dim, gallery) = read_side(&args.gf, &args.g_pids, &args.g_camids)?;
    if q_dim != g_dim {
        bail!(
            "{} has {q_dim} feature columns but {} has {g_dim}",
            args.qf.display(),
            args.gf.display()
        );
    }
    let device = distance_device(args.device)?;
    let (_, evaluation) = run_evaluation(
        &qf,
        &gf,
        q_dim,
        &queries,
        &gallery,
        &options,
        device.as_ref(),
    )?;
    let file = MetricsFile::new(&evaluation, &options, gallery.len(), String::new());
    file.write(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if let Some(path) = &args.per_query {
        write_per_query_csv(path, &evaluation, &queries, None)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "{}  in {:.2} s",
        summary(&file),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
