//! The flag groups the commands are built from: dataset, model, input size, inference,
//! evaluation and cache options, each defined once and flattened into every command that
//! takes it.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use reidscope::backend::{Backend, DeviceChoice, Precision};
use reidscope::cache::FeatureCache;
use reidscope::data::DatasetKind;
use reidscope::data::image::Preprocess;
use reidscope::demo::{DEMO_DATASET, DEMO_INPUT, DEMO_MODEL, DEMO_WEIGHTS, bundled};
use reidscope::eval::RerankParams;
use reidscope::eval::{EvalOptions, Metric, Protocol};
use reidscope::models::{BuildOptions, Model, ModelName};
use reidscope::run::{FeatureSource, NetworkSource, RunSpec};

/// Which dataset, and where.
#[derive(Args, Clone)]
pub struct DatasetArgs {
    /// Dataset layout: market1501, dukemtmcreid, msmt17, cuhk03, cuhk03-labeled, folder, auto.
    #[arg(long, default_value = "auto")]
    pub dataset: DatasetKind,
    /// Dataset folder (or CSV file for `folder`).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

/// A network and its checkpoint.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Model name (Torchreid naming), e.g. osnet_ibn_x1_0, resnet50, mobilenetv2_x1_0.
    #[arg(long)]
    pub model: Option<ModelName>,
    /// Checkpoint (.pth / .pth.tar / .pt): Torchreid, torchvision, triplet-baseline or
    /// pytorch-mobilenet-v2 layout.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// ResNet-50 last-stage stride (1 or 2); default: 1 for triplet-baseline checkpoints, else 2.
    #[arg(long)]
    pub last_stride: Option<usize>,
}

impl ModelArgs {
    /// The model name, which the command needs.
    pub fn name(&self) -> Result<ModelName> {
        self.model.context("give --model NAME")
    }

    /// Checks that both the model and its checkpoint were given, for commands that need both.
    pub fn require_weights(&self) -> Result<()> {
        self.name()?;
        self.weights.as_ref().context("give --weights FILE")?;
        Ok(())
    }

    /// Builds the model on `backend`, from `--weights` or, without it, with random weights.
    pub fn load(&self, backend: &Backend) -> Result<Model> {
        let options = BuildOptions {
            last_stride: self.last_stride,
        };
        Ok(Model::load(
            self.name()?,
            self.weights.as_deref(),
            options,
            backend,
        )?)
    }
}

/// The network's input size.
#[derive(Args, Clone)]
pub struct InputArgs {
    /// Input height [default: 256; the bundled demo model's own size with it].
    #[arg(long)]
    pub height: Option<u32>,
    /// Input width [default: 128; the bundled demo model's own size with it].
    #[arg(long)]
    pub width: Option<u32>,
}

impl InputArgs {
    /// The input size, checked; Torchreid's 256×128 where not given.
    pub fn preprocess(&self) -> Result<Preprocess> {
        self.preprocess_or(Preprocess::default())
    }

    /// The input size, checked; `default`'s height and width where not given.
    pub fn preprocess_or(&self, default: Preprocess) -> Result<Preprocess> {
        let preprocess = Preprocess {
            height: self.height.unwrap_or(default.height),
            width: self.width.unwrap_or(default.width),
        };
        if preprocess.is_empty() {
            bail!("--height and --width must be positive");
        }
        Ok(preprocess)
    }
}

/// Device, precision, batch and input size of a feature extraction.
#[derive(Args, Clone)]
pub struct InferenceArgs {
    /// Compute precision: f32 or f16.
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// auto (a hardware GPU if present, else CPU), gpu (any wgpu adapter) or cpu.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[command(flatten)]
    pub input: InputArgs,
}

/// How features are compared and scored.
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

/// Where extracted features are cached.
#[derive(Args, Clone)]
pub struct CacheArgs {
    /// Feature cache folder (default: the platform cache folder).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the feature cache.
    #[arg(long)]
    pub no_cache: bool,
}

impl CacheArgs {
    /// The cache folder; `None` when caching is off.
    pub fn folder(&self) -> Result<Option<PathBuf>> {
        Ok(match (&self.cache_dir, self.no_cache) {
            (_, true) => None,
            (Some(dir), false) => Some(dir.clone()),
            (None, false) => Some(
                FeatureCache::default_root()
                    .context("no platform cache folder; pass --cache-dir")?,
            ),
        })
    }
}

/// Dataset, feature source, device, distance and cache of a run. Without `--root` the
/// bundled demo dataset is used, and without `--model`/`--weights` the bundled model.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Use a colour-histogram baseline instead of a network.
    #[arg(long, conflicts_with_all = ["model", "weights", "last_stride"])]
    pub baseline: bool,
    #[command(flatten)]
    pub inference: InferenceArgs,
    #[command(flatten)]
    pub eval: EvalArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

impl RunArgs {
    /// The run these options describe.
    pub fn spec(&self) -> Result<RunSpec> {
        let (kind, root) = match &self.dataset.root {
            Some(root) => (self.dataset.dataset, root.clone()),
            None => (DatasetKind::Market1501, bundled(DEMO_DATASET)),
        };
        let mut input = Preprocess::default();
        let source = if self.baseline {
            FeatureSource::ColourHistogram
        } else {
            let (model, weights) = match (self.model.model, &self.model.weights) {
                (Some(model), Some(weights)) => (model, weights.clone()),
                (None, None) => {
                    input = DEMO_INPUT;
                    (DEMO_MODEL.parse()?, bundled(DEMO_WEIGHTS))
                }
                _ => bail!(
                    "give --model and --weights together (or neither for the bundled model, or --baseline)"
                ),
            };
            FeatureSource::Network(NetworkSource {
                model,
                weights,
                last_stride: self.model.last_stride,
                precision: self.inference.precision,
            })
        };
        Ok(RunSpec {
            kind,
            root,
            source,
            device: self.inference.device,
            preprocess: self.inference.input.preprocess_or(input)?,
            batch: self.inference.batch,
            cache: self.cache.folder()?,
            eval: self.eval.options()?,
        })
    }
}
