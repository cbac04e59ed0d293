//! The options that define a run (dataset, feature source, device, distance, cache), shared
//! by `eval` and `gui`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use reidscope::cache::FeatureCache;
use reidscope::data::DatasetKind;
use reidscope::demo::{DEMO_DATASET, DEMO_MODEL, DEMO_WEIGHTS, bundled};
use reidscope::models::ModelName;
use reidscope::run::{FeatureSource, NetworkSource, RunSpec};

use super::metrics::EvalArgs;
use super::network::InferenceArgs;

/// Dataset, feature source, device, distance and cache of a run. Without `--root` the
/// bundled demo dataset is used, and without `--model`/`--weights` the bundled model.
#[derive(Args)]
pub struct RunArgs {
    /// Dataset layout: market1501, dukemtmcreid, msmt17, cuhk03, cuhk03-labeled, folder, auto.
    #[arg(long, default_value = "auto")]
    pub dataset: DatasetKind,
    /// Dataset folder (or CSV file for `folder`).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Model name (Torchreid naming), e.g. osnet_ibn_x1_0, resnet50, mobilenetv2_x1_0.
    #[arg(long)]
    pub model: Option<ModelName>,
    /// Checkpoint (.pth / .pth.tar / .pt).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// ResNet-50 last-stage stride (1 or 2).
    #[arg(long)]
    pub last_stride: Option<usize>,
    /// Use a colour-histogram baseline instead of a network.
    #[arg(long, conflicts_with_all = ["model", "weights", "last_stride"])]
    pub baseline: bool,
    #[command(flatten)]
    pub inference: InferenceArgs,
    #[command(flatten)]
    pub eval: EvalArgs,
    /// Feature cache folder (default: the platform cache folder).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the feature cache.
    #[arg(long)]
    pub no_cache: bool,
}

impl RunArgs {
    /// The run these options describe.
    pub fn spec(&self) -> Result<RunSpec> {
        let (kind, root) = match &self.root {
            Some(root) => (self.dataset, root.clone()),
            None => (DatasetKind::Market1501, bundled(DEMO_DATASET)),
        };
        let source = if self.baseline {
            FeatureSource::ColourHistogram
        } else {
            let (model, weights) = match (self.model, &self.weights) {
                (Some(model), Some(weights)) => (model, weights.clone()),
                (None, None) => (
                    DEMO_MODEL
                        .parse::<ModelName>()
                        .map_err(anyhow::Error::msg)?,
                    bundled(DEMO_WEIGHTS),
                ),
                _ => bail!(
                    "give --model and --weights together (or neither for the bundled model, or --baseline)"
                ),
            };
            FeatureSource::Network(NetworkSource {
                model,
                weights,
                last_stride: self.last_stride,
                precision: self.inference.precision,
            })
        };
        let cache = match (&self.cache_dir, self.no_cache) {
            (_, true) => None,
            (Some(dir), false) => Some(dir.clone()),
            (None, false) => Some(
                FeatureCache::default_root()
                    .context("no platform cache folder; pass --cache-dir")?,
            ),
        };
        Ok(RunSpec {
            kind,
            root,
            source,
            device: self.inference.device,
            preprocess: self.inference.preprocess()?,
            batch: self.inference.batch,
            cache,
            eval: self.eval.options()?,
        })
    }
}
