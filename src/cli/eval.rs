//! `reidscope eval`: dataset → features (cached) → metrics → report folder.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use reidscope::backend::Backend;
use reidscope::baseline::extract_histograms;
use reidscope::cache::{CacheKey, FeatureCache};
use reidscope::data::{DatasetKind, Sample, load_dataset};
use reidscope::demo::{DEMO_DATASET, DEMO_MODEL, DEMO_WEIGHTS, bundled};
use reidscope::eval::rank::top_k;
use reidscope::eval::{Distances, Evaluation, Label};
use reidscope::features::{ExtractOptions, Extraction, extract, extract_cached};
use reidscope::models::ModelName;
use reidscope::report::cmc_plot::write_cmc_plots;
use reidscope::report::ranklist::{RankedItem, RankedQuery, write_ranked_png};
use reidscope::report::{MetricsFile, write_per_query_csv};

use super::extract::image_bar;
use super::metrics::{EvalArgs, distance_device, run_evaluation, summary};
use super::network::{InferenceArgs, ModelArgs, load_model};

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
    #[arg(long, conflicts_with = "root")]
    demo: bool,
    /// Dataset layout: market1501, dukemtmcreid, msmt17, cuhk03, cuhk03-labeled, folder, auto.
    #[arg(long, default_value = "auto")]
    dataset: DatasetKind,
    /// Dataset folder (or CSV file for `folder`).
    #[arg(long, required_unless_present = "demo")]
    root: Option<PathBuf>,
    /// Model name (Torchreid naming), e.g. osnet_ibn_x1_0, resnet50, mobilenetv2_x1_0.
    #[arg(long)]
    model: Option<ModelName>,
    /// Checkpoint (.pth / .pth.tar / .pt).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// ResNet-50 last-stage stride (1 or 2).
    #[arg(long)]
    last_stride: Option<usize>,
    /// Use a colour-histogram baseline instead of a network.
    #[arg(long, conflicts_with_all = ["model", "weights", "last_stride"])]
    baseline: bool,
    #[command(flatten)]
    inference: InferenceArgs,
    #[command(flatten)]
    eval: EvalArgs,
    /// Feature cache folder (default: the platform cache folder).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Do not read or write the feature cache.
    #[arg(long)]
    no_cache: bool,
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
    let options = args.eval.options()?;
    let (kind, root) = match &args.root {
        Some(root) => (args.dataset, root.clone()),
        None => (DatasetKind::Market1501, bundled(DEMO_DATASET)),
    };
    let dataset = load_dataset(kind, &root)?;
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
    let split = &dataset.split;
    eprintln!(
        "{} at {}: {} queries, {} gallery images",
        dataset.kind,
        dataset.root.display(),
        split.query.len(),
        split.gallery.len()
    );

    let images: Vec<PathBuf> = split
        .query
        .iter()
        .chain(&split.gallery)
        .map(|s| s.path.clone())
        .collect();
    let (extraction, label) = if args.baseline {
        (extract_histograms(&images), "colour histogram".to_string())
    } else {
        extract_with_model(&args, &images)?
    };
    for skipped in &extraction.skipped {
        eprintln!("skipped: {skipped}");
    }

    let (queries, query_features) = kept_rows(&split.query, &extraction);
    let (gallery, gallery_features) = kept_rows(&split.gallery, &extraction);
    let labels = |samples: &[&Sample]| -> Vec<Label> {
        samples
            .iter()
            .map(|s| Label {
                pid: s.pid,
                camid: s.camid,
            })
            .collect()
    };
    let (q_labels, g_labels) = (labels(&queries), labels(&gallery));
    let (distances, evaluation) = run_evaluation(
        &query_features,
        &gallery_features,
        extraction.dim,
        &q_labels,
        &g_labels,
        &options,
        distance_device(args.inference.device)?.as_ref(),
    )?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let file = MetricsFile::new(&evaluation, &options, gallery.len(), label);
    let out = |name: &str| args.out.join(name);
    file.write(&out("metrics.json"))
        .context("cannot write metrics.json")?;
    let names: Vec<String> = queries
        .iter()
        .map(|s| s.path.display().to_string())
        .collect();
    write_per_query_csv(&out("per_query.csv"), &evaluation, &q_labels, Some(&names))
        .context("cannot write per_query.csv")?;

    let mut runs = vec![file.clone()];
    for dir in &args.compare {
        runs.push(MetricsFile::read(&dir.join("metrics.json")).map_err(anyhow::Error::msg)?);
    }
    write_cmc_plots(&out("cmc.png"), &out("cmc.svg"), &runs).map_err(anyhow::Error::msg)?;

    let figures = Figures {
        distances: &distances,
        evaluation: &evaluation,
        queries: &queries,
        gallery: &gallery,
    };
    figures.write_ranked(&out("ranked"), args.visrank_queries, args.visrank_topk)?;
    figures.write_worst(&out("worst.png"))?;
    eprintln!(
        "{}\nreport in {} ({:.1} s)",
        summary(&file),
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Network features of `images` for `eval` (read from / written to the feature cache unless
/// `--no-cache`), with the run's label.
fn extract_with_model(args: &EvalCommandArgs, images: &[PathBuf]) -> Result<(Extraction, String)> {
    let demo = |what: &str| -> Result<()> {
        if args.demo {
            Ok(())
        } else {
            bail!("--{what} is required (or --demo, or --baseline)")
        }
    };
    let model = match args.model {
        Some(model) => model,
        None => demo("model").map(|_| DEMO_MODEL.parse().map_err(anyhow::Error::msg))??,
    };
    let weights = match &args.weights {
        Some(weights) => weights.clone(),
        None => demo("weights").map(|_| bundled(DEMO_WEIGHTS))?,
    };
    let preprocess = args.inference.preprocess()?;
    let backend = Backend::select(args.inference.device, args.inference.precision)?;
    let model_args = ModelArgs {
        model,
        last_stride: args.last_stride,
    };
    let network = load_model(&model_args, Some(&weights), &backend)?;
    let options = ExtractOptions {
        batch_size: args.inference.batch,
        preprocess,
    };
    let bar = image_bar(images.len());
    let cancel = AtomicBool::new(false);
    let mut on_progress = |p: reidscope::features::Progress| {
        bar.set_position(p.done as u64);
        bar.set_message(format!("{:.1} img/s", p.images_per_s));
    };
    let extraction = if args.no_cache {
        extract(&network, images, options, &mut on_progress, &cancel)?
    } else {
        let root = match &args.cache_dir {
            Some(dir) => dir.clone(),
            None => FeatureCache::default_root()
                .context("no platform cache folder; pass --cache-dir")?,
        };
        let precision = args.inference.precision.to_string();
        let key = CacheKey::new(
            model.as_str(),
            &weights,
            &precision,
            (preprocess.height, preprocess.width),
            images,
        )
        .with_context(|| format!("cannot read {}", weights.display()))?;
        let entry = FeatureCache::new(root).entry(&key);
        extract_cached(&network, images, options, &entry, &mut on_progress, &cancel)?
    };
    bar.finish_and_clear();
    let label = format!(
        "{model} {} {}",
        weights.file_name().unwrap_or_default().to_string_lossy(),
        args.inference.precision
    );
    Ok((extraction, label))
}

/// The samples of one split that have a feature row, with their features.
fn kept_rows<'a>(samples: &'a [Sample], extraction: &Extraction) -> (Vec<&'a Sample>, Vec<f32>) {
    let row_of: std::collections::HashMap<&Path, usize> = extraction
        .kept
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_path(), i))
        .collect();
    let dim = extraction.dim;
    let mut kept = Vec::new();
    let mut features = Vec::new();
    for sample in samples {
        if let Some(&row) = row_of.get(sample.path.as_path()) {
            kept.push(sample);
            features.extend_from_slice(&extraction.features[row * dim..(row + 1) * dim]);
        }
    }
    (kept, features)
}

/// What the ranked-list figures are drawn from.
struct Figures<'a> {
    distances: &'a Distances,
    evaluation: &'a Evaluation,
    queries: &'a [&'a Sample],
    gallery: &'a [&'a Sample],
}

impl Figures<'_> {
    /// Query indices by ascending AP (queries without a match last), ties by index.
    fn worst_first(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.queries.len()).collect();
        let ap = |q: usize| self.evaluation.per_query[q].map_or(f64::INFINITY, |o| o.ap);
        order.sort_by(|&a, &b| ap(a).total_cmp(&ap(b)).then(a.cmp(&b)));
        order
    }

    /// The ranked list of query `q`: its top `k` gallery images, junk removed.
    fn ranked(&self, q: usize, k: usize) -> RankedQuery {
        let query = self.queries[q];
        let mut row = Vec::new();
        self.distances.rows(q..q + 1, &mut row);
        let junk =
            |g: usize| self.gallery[g].pid == query.pid && self.gallery[g].camid == query.camid;
        let junk_count = (0..self.gallery.len()).filter(|&g| junk(g)).count();
        let items = top_k(&row, k + junk_count)
            .into_iter()
            .filter(|&g| !junk(g))
            .take(k)
            .enumerate()
            .map(|(rank, g)| RankedItem {
                path: self.gallery[g].path.clone(),
                rank: rank + 1,
                distance: row[g],
                matches: self.gallery[g].pid == query.pid,
            })
            .collect();
        let caption = match self.evaluation.per_query[q] {
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
        let selected: Vec<usize> = match which {
            VisrankQueries::All => (0..self.queries.len()).collect(),
            VisrankQueries::First(n) => (0..self.queries.len().min(n)).collect(),
            VisrankQueries::Worst => self.worst_first().into_iter().take(WORST_DEFAULT).collect(),
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
            let stem = self.queries[q]
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
        let rows: Vec<RankedQuery> = self
            .worst_first()
            .into_iter()
            .filter(|&q| self.evaluation.per_query[q].is_some())
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
