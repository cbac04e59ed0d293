//! `reidscope eval`: dataset → features (cached) → metrics → report folder.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;

use reidscope::report::MetricsFile;
use reidscope::run::report::{ReportOptions, VisrankQueries, write_report};
use reidscope::run::{FeatureSource, execute};

use super::args::RunArgs;
use super::progress::{StageBars, figure_bar};

#[derive(Args)]
pub struct EvalCommandArgs {
    /// Evaluate the bundled demo dataset (assets/demo) with the bundled model unless
    /// --model/--weights/--baseline say otherwise.
    #[arg(long, conflicts_with_all = ["root", "dataset"])]
    demo: bool,
    #[command(flatten)]
    run: RunArgs,
    /// Earlier report folders whose CMC curves are drawn on the same chart.
    #[arg(long, num_args = 1..)]
    compare: Vec<PathBuf>,
    /// Gallery images per ranked-list figure.
    #[arg(long, default_value_t = 10)]
    visrank_topk: usize,
    /// Ranked-list figures for the first N queries, `all`, or the `worst` 20 by AP.
    #[arg(long, default_value = "20")]
    visrank_queries: VisrankQueries,
    /// Draw the ranked-list figures' images overlaid with their activation maps (where the
    /// network looks, as `reidscope actmap` computes it).
    #[arg(long)]
    actmaps: bool,
    /// Report folder: metrics.json, per_query.csv, cmc.png, cmc.svg, ranked/, worst.png.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `reidscope eval`.
pub fn run(args: EvalCommandArgs) -> Result<()> {
    let start = Instant::now();
    if !args.demo && args.run.dataset.root.is_none() {
        bail!("give --root DIR (or --demo for the bundled demo dataset)");
    }
    let spec = args.run.spec()?;
    if args.actmaps && !matches!(spec.source, FeatureSource::Network(_)) {
        bail!("--actmaps needs a network; the colour-histogram baseline has none");
    }
    let compare = args
        .compare
        .iter()
        .map(|dir| MetricsFile::read(&dir.join("metrics.json")).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let mut bars = StageBars::new(spec.eval.rerank.is_some());
    let run = execute(
        &spec,
        &mut |stage| bars.show(stage),
        &AtomicBool::new(false),
    )?;
    bars.finish();
    let dataset = &run.dataset;
    if !dataset.unparsed.is_empty() {
        let examples: Vec<String> = dataset
            .unparsed
            .iter()
            .take(3)
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "warning: skipped {} images whose names do not parse, e.g. {}",
            dataset.unparsed.len(),
            examples.join(", ")
        );
    }
    for skipped in &run.skipped {
        eprintln!("skipped: {skipped}");
    }
    eprintln!(
        "{} at {}: {} queries, {} gallery images",
        dataset.kind,
        dataset.root.display(),
        run.queries.len(),
        run.gallery.len()
    );
    let options = ReportOptions {
        visrank_queries: args.visrank_queries,
        visrank_topk: args.visrank_topk,
        compare,
        actmaps: args.actmaps,
    };
    let bar = figure_bar();
    write_report(&run, &args.out, &options, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "{}\nreport in {} ({:.1} s)",
        run.metrics.long_summary(),
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
