//! `reidscope metrics`: metrics of saved features and labels.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use reidscope::backend::DeviceChoice;
use reidscope::eval::Label;
use reidscope::io::{read_npy_ids, read_npy_matrix};
use reidscope::report::write_per_query_csv;
use reidscope::run::{FeatureRows, score};

use super::args::EvalArgs;
use super::progress::StageBars;

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
fn read_side(features: &Path, pids: &Path, camids: &Path) -> Result<(Vec<f32>, usize, Vec<Label>)> {
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
    let mut bars = StageBars::new(options.rerank.is_some());
    let scores = score(
        FeatureRows {
            query: &qf,
            gallery: &gf,
            dim: q_dim,
        },
        (&queries, &gallery),
        &options,
        args.device,
        String::new(),
        &mut |stage| bars.show(stage),
        &AtomicBool::new(false),
    )?;
    bars.finish();
    scores
        .metrics
        .write(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if let Some(path) = &args.per_query {
        write_per_query_csv(path, &scores.evaluation, &queries, None)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "{}  in {:.2} s",
        scores.metrics.long_summary(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
