//! `reidscope eval`: dataset → features (cached) → metrics → report folder.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use reidscope::eval::ranked_list;
use reidscope::report::cmc_plot::write_cmc_plots;
use reidscope::report::ranklist::{RankedItem, RankedQuery, write_ranked_png};
use reidscope::report::{MetricsFile, write_per_query_csv};
use reidscope::run::{Run, Stage, execute};

use super::extract::image_bar;
use super::metrics::summary;
use super::run_args::RunArgs;

/// Queries shown on the worst-queries sheet.
const WORST_SHEET_QUERIES: usize = 12;
/// Gallery images per row on the worst-queries sheet.
const WORST_SHEET_TOPK: usize = 10;
/// Queries drawn for `--visrank-queries worst`.
const WORST_DEFAULT: usize = 20;

/// Which queries get a ranked-list figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisrankQueries {
    /// The first N queries.
    First(usize),
    /// Every query.
    All,
    /// The queries with the lowest AP.
    Worst,
}

impl FromStr for VisrankQueries {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(VisrankQueries::All),
            "worst" => Ok(VisrankQueries::Worst),
            n => n
                .parse()
                .map(VisrankQueries::First)
                .map_err(|_| format!("expected a number, `all` or `worst`, got `{s}`")),
        }
    }
}

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
    /// Report folder: metrics.json, per_query.csv, cmc.png, cmc.svg, ranked/, worst.png.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `reidscope eval`.
pub fn run(args: EvalCommandArgs) -> Result<()> {
    let start = Instant::now();
    if !args.demo && args.run.root.is_none() {
        bail!("give --root DIR (or --demo for the bundled demo dataset)");
    }
    let spec = args.run.spec()?;
    let bar = image_bar(0);
    let mut on_stage = |stage: Stage| match stage {
        Stage::Preparing => {}
        Stage::Extracting(p) => {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            bar.set_message(format!("{:.1} img/s", p.images_per_s));
        }
        Stage::Distances => {
            bar.finish_and_clear();
        }
        Stage::Scoring(..) => {}
    };
    let run = execute(&spec, &mut on_stage, &AtomicBool::new(false))?;
    bar.finish_and_clear();
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

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let out = |name: &str| args.out.join(name);
    run.metrics
        .write(&out("metrics.json"))
        .context("cannot write metrics.json")?;
    let names: Vec<String> = run
        .queries
        .iter()
        .map(|s| s.path.display().to_string())
        .collect();
    write_per_query_csv(
        &out("per_query.csv"),
        &run.evaluation,
        &run.query_labels,
        Some(&names),
    )
    .context("cannot write per_query.csv")?;
    let mut runs = vec![run.metrics.clone()];
    for dir in &args.compare {
        runs.push(MetricsFile::read(&dir.join("metrics.json")).map_err(anyhow::Error::msg)?);
    }
    write_cmc_plots(&out("cmc.png"), &out("cmc.svg"), &runs).map_err(anyhow::Error::msg)?;
    let figures = Figures { run: &run };
    figures.write_ranked(&out("ranked"), args.visrank_queries, args.visrank_topk)?;
    figures.write_worst(&out("worst.png"))?;
    eprintln!(
        "{}\nreport in {} ({:.1} s)",
        summary(&run.metrics),
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Ranked-list figures of a run.
struct Figures<'a> {
    run: &'a Run,
}

impl Figures<'_> {
    /// The ranked list of query `q`: its top `k` gallery images, junk removed.
    fn ranked(&self, q: usize, k: usize) -> RankedQuery {
        let run = self.run;
        let query = &run.queries[q];
        let mut row = Vec::new();
        run.distances.rows(q..q + 1, &mut row);
        let items = ranked_list(&row, run.query_labels[q], &run.gallery_labels, k, false)
            .into_iter()
            .map(|entry| RankedItem {
                path: run.gallery[entry.gallery].path.clone(),
                rank: entry.rank.unwrap_or(0),
                distance: entry.distance,
                matches: entry.matches,
            })
            .collect();
        let caption = match run.evaluation.per_query[q] {
            Some(o) => format!("AP {:.1}%", o.ap * 100.0),
            None => "no match".into(),
        };
        RankedQuery {
            path: query.path.clone(),
            pid: query.pid,
            camid: query.camid,
            caption,
            items,
        }
    }

    /// One figure per selected query in `dir`.
    fn write_ranked(&self, dir: &Path, which: VisrankQueries, k: usize) -> Result<()> {
        let queries = self.run.queries.len();
        let selected: Vec<usize> = match which {
            VisrankQueries::All => (0..queries).collect(),
            VisrankQueries::First(n) => (0..queries.min(n)).collect(),
            VisrankQueries::Worst => self
                .run
                .evaluation
                .worst_first()
                .into_iter()
                .take(WORST_DEFAULT)
                .collect(),
        };
        if selected.is_empty() || k == 0 {
            return Ok(());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        remove_old_figures(dir)?;
        let bar = ProgressBar::new(selected.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} ranked lists drawn")
                .expect("valid progress template"),
        );
        selected.par_iter().try_for_each(|&q| -> Result<()> {
            let stem = self.run.queries[q]
                .path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy();
            let path = dir.join(format!("{q:05}_{stem}.png"));
            write_ranked_png(&path, &[self.ranked(q, k)]).map_err(anyhow::Error::msg)?;
            bar.inc(1);
            Ok(())
        })?;
        bar.finish_and_clear();
        Ok(())
    }

    /// The worst queries by AP on one sheet.
    fn write_worst(&self, path: &Path) -> Result<()> {
        let evaluation = &self.run.evaluation;
        let rows: Vec<RankedQuery> = evaluation
            .worst_first()
            .into_iter()
            .filter(|&q| evaluation.per_query[q].is_some())
            .take(WORST_SHEET_QUERIES)
            .map(|q| self.ranked(q, WORST_SHEET_TOPK))
            .collect();
        if rows.is_empty() {
            bail!("no valid query to put on the worst-queries sheet");
        }
        write_ranked_png(path, &rows).map_err(anyhow::Error::msg)
    }
}

/// Removes the PNG figures of an earlier run from a `ranked/` folder.
fn remove_old_figures(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "png") {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}
