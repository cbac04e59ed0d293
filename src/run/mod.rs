//! A whole evaluation run, as the command line's `eval` and the app perform it: read the
//! dataset, extract (or load cached) features, compute distances and score every query; and
//! the report folder of a finished run.

pub mod network_maps;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::backend::{
    Backend, BackendError, BackendKind, DeviceChoice, Precision, distance_device,
};
use crate::baseline::extract_histograms;
use crate::cache::{CacheKey, FeatureCache};
use crate::data::image::{ImageError, Preprocess};
use crate::data::{DataError, Dataset, DatasetKind, Sample, Split, load_dataset};
use crate::eval::{Distances, EvalError, EvalOptions, Evaluation, Label, evaluate};
use crate::features::{ExtractOptions, Extraction, Progress, extract, extract_cached};
use crate::models::{BuildOptions, Model, ModelError, ModelName};
use crate::report::MetricsFile;

/// A network and its checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSource {
    /// Model name.
    pub model: ModelName,
    /// Checkpoint file.
    pub weights: PathBuf,
    /// ResNet-50 last stride override.
    pub last_stride: Option<usize>,
    /// Compute precision.
    pub precision: Precision,
}

impl NetworkSource {
    /// Builds the network from its checkpoint on `backend`.
    pub fn load(&self, backend: &Backend) -> Result<Model, ModelError> {
        let options = BuildOptions {
            last_stride: self.last_stride,
        };
        Model::load(self.model, Some(&self.weights), options, backend)
    }
}

/// Where features come from.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureSource {
    /// A network.
    Network(NetworkSource),
    /// The colour-histogram baseline.
    ColourHistogram,
}

impl FeatureSource {
    /// Short description, used as the run's label.
    pub fn label(&self) -> String {
        match self {
            FeatureSource::Network(net) => format!(
                "{} {} {}",
                net.model,
                net.weights
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy(),
                net.precision
            ),
            FeatureSource::ColourHistogram => "colour histogram".to_string(),
        }
    }
}

/// Everything that defines a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Dataset layout.
    pub kind: DatasetKind,
    /// Dataset folder (or CSV).
    pub root: PathBuf,
    /// Feature source.
    pub source: FeatureSource,
    /// Device for the network and the distance products.
    pub device: DeviceChoice,
    /// Network input size.
    pub preprocess: Preprocess,
    /// Images per forward pass.
    pub batch: usize,
    /// Feature cache folder; `None` disables the cache.
    pub cache: Option<PathBuf>,
    /// Distance and protocol.
    pub eval: EvalOptions,
}

impl RunSpec {
    /// The same run in `precision`, on a wgpu adapter for f16 (the CPU backend has none);
    /// `None` for a run without a network.
    pub fn in_precision(&self, precision: Precision) -> Option<RunSpec> {
        let FeatureSource::Network(network) = &self.source else {
            return None;
        };
        let mut spec = self.clone();
        spec.source = FeatureSource::Network(NetworkSource {
            precision,
            ..network.clone()
        });
        if precision == Precision::F16 {
            spec.device = DeviceChoice::Gpu;
        }
        Some(spec)
    }

    /// "model weights precision · dataset · metric [+ re-ranking]", as run lists show it.
    pub fn name(&self) -> String {
        let dataset = self.root.file_name().map_or_else(
            || self.root.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let mut name = format!("{} · {dataset} · {}", self.source.label(), self.eval.metric);
        if self.eval.rerank.is_some() {
            name.push_str(" + re-ranking");
        }
        name
    }
}

/// What a run is doing.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// Reading the dataset and loading the model.
    Preparing,
    /// Extracting features.
    Extracting(Progress),
    /// Computing distances (and re-ranking neighbourhoods).
    Distances,
    /// Scoring queries: done, total.
    Scoring(usize, usize),
}

/// A finished run.
pub struct Run {
    /// What was run.
    pub spec: RunSpec,
    /// The dataset as parsed.
    pub dataset: Dataset,
    /// Queries with a feature row.
    pub queries: Vec<Sample>,
    /// Gallery samples with a feature row.
    pub gallery: Vec<Sample>,
    /// Labels of `queries`.
    pub query_labels: Vec<Label>,
    /// Labels of `gallery`.
    pub gallery_labels: Vec<Label>,
    /// Query-to-gallery distances (any row on demand).
    pub distances: Distances,
    /// Per-query outcomes and metrics.
    pub evaluation: Evaluation,
    /// The metrics as written to `metrics.json`.
    pub metrics: MetricsFile,
    /// Images that could not be read.
    pub skipped: Vec<ImageError>,
    /// Row-major features of `queries`.
    pub query_features: Vec<f32>,
    /// Row-major features of `gallery`.
    pub gallery_features: Vec<f32>,
    /// Feature length.
    pub feature_dim: usize,
}

impl Run {
    /// True when `other` has features of the same images from the same network and checkpoint
    /// at the same input size (in another precision, say, or on another device): then their
    /// query features can be compared one by one.
    pub fn same_network_and_images(&self, other: &Run) -> bool {
        let (FeatureSource::Network(a), FeatureSource::Network(b)) =
            (&self.spec.source, &other.spec.source)
        else {
            return false;
        };
        a.model == b.model
            && a.weights == b.weights
            && a.last_stride == b.last_stride
            && self.spec.preprocess == other.spec.preprocess
            && self.same_split(other)
    }

    /// True when `other` scored the same queries against the same gallery.
    pub fn same_split(&self, other: &Run) -> bool {
        let same = |a: &[Sample], b: &[Sample]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.path == y.path)
        };
        same(&self.queries, &other.queries) && same(&self.gallery, &other.gallery)
    }
}

/// Row-major query and gallery features of one length.
#[derive(Debug, Clone, Copy)]
pub struct FeatureRows<'a> {
    /// Query features.
    pub query: &'a [f32],
    /// Gallery features.
    pub gallery: &'a [f32],
    /// Feature length.
    pub dim: usize,
}

/// Distances, per-query scores and the metrics file of one scoring.
pub struct Scores {
    /// Query-to-gallery distances (any row on demand).
    pub distances: Distances,
    /// Per-query outcomes and metrics.
    pub evaluation: Evaluation,
    /// The metrics as written to `metrics.json`.
    pub metrics: MetricsFile,
    /// Where the distance products ran.
    pub device: BackendKind,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Dataset problem.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Device problem.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Model or checkpoint problem.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Evaluation problem.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The weights file could not be read for the cache key.
    #[error("{}: {source}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An image that could not be read.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Stopped on request.
    #[error("cancelled")]
    Cancelled,
}

/// Runs `spec`, reporting each stage; `cancel` stops extraction between batches (finished
/// cache chunks are kept) and scoring between blocks.
pub fn execute(
    spec: &RunSpec,
    on_stage: &mut dyn FnMut(Stage),
    cancel: &AtomicBool,
) -> Result<Run, RunError> {
    on_stage(Stage::Preparing);
    let dataset = load_dataset(spec.kind, &spec.root)?;
    let split = &dataset.split;
    let images = split_images(split);
    let extraction = match &spec.source {
        FeatureSource::ColourHistogram => extract_histograms(&images),
        FeatureSource::Network(net) => extract_network(spec, net, &images, on_stage, cancel)?,
    };
    if !extraction.complete {
        return Err(RunError::Cancelled);
    }
    let scored = score_split(split, &extraction, spec, on_stage, cancel)?;
    Ok(Run {
        spec: spec.clone(),
        dataset,
        queries: scored.queries,
        gallery: scored.gallery,
        query_labels: scored.query_labels,
        gallery_labels: scored.gallery_labels,
        distances: scored.scores.distances,
        evaluation: scored.scores.evaluation,
        metrics: scored.scores.metrics,
        skipped: extraction.skipped,
        query_features: scored.query_features,
        gallery_features: scored.gallery_features,
        feature_dim: extraction.dim,
    })
}

/// A split's extracted features, scored.
struct ScoredSplit {
    queries: Vec<Sample>,
    gallery: Vec<Sample>,
    query_labels: Vec<Label>,
    gallery_labels: Vec<Label>,
    query_features: Vec<f32>,
    gallery_features: Vec<f32>,
    scores: Scores,
}

/// Scores the query and gallery samples of `split` that have a row in `extraction`, with the
/// distance, protocol and device of `spec`.
fn score_split(
    split: &Split,
    extraction: &Extraction,
    spec: &RunSpec,
    on_stage: &mut dyn FnMut(Stage),
    cancel: &AtomicBool,
) -> Result<ScoredSplit, RunError> {
    let (queries, query_features) = rows_of(&split.query, extraction);
    let (gallery, gallery_features) = rows_of(&split.gallery, extraction);
    let labels = |samples: &[Sample]| -> Vec<Label> {
        samples
            .iter()
            .map(|s| Label {
                pid: s.pid,
                camid: s.camid,
            })
            .collect()
    };
    let (query_labels, gallery_labels) = (labels(&queries), labels(&gallery));
    let scores = score(
        FeatureRows {
            query: &query_features,
            gallery: &gallery_features,
            dim: extraction.dim,
        },
        (&query_labels, &gallery_labels),
        &spec.eval,
        spec.device,
        spec.source.label(),
        on_stage,
        cancel,
    )?;
    Ok(ScoredSplit {
        queries,
        gallery,
        query_labels,
        gallery_labels,
        query_features,
        gallery_features,
        scores,
    })
}

/// Scores `model` on `dataset`'s query and gallery as `eval` would with `spec`'s settings
/// (its feature source names the run; no cache): what training reports between epochs.
pub fn score_model(
    model: &Model,
    dataset: &Dataset,
    spec: &RunSpec,
    on_stage: &mut dyn FnMut(Stage),
    cancel: &AtomicBool,
) -> Result<Scores, RunError> {
    let split = &dataset.split;
    let images = split_images(split);
    let options = ExtractOptions {
        batch_size: spec.batch,
        preprocess: spec.preprocess,
    };
    let mut on_progress = |p: Progress| on_stage(Stage::Extracting(p));
    let mut extraction = extract(model, &images, options, &mut on_progress, cancel)?;
    if !extraction.complete {
        return Err(RunError::Cancelled);
    }
    if !extraction.skipped.is_empty() {
        return Err(RunError::Image(extraction.skipped.swap_remove(0)));
    }
    Ok(score_split(split, &extraction, spec, on_stage, cancel)?.scores)
}

/// The query and gallery images of `split`, in that order.
fn split_images(split: &Split) -> Vec<PathBuf> {
    split
        .query
        .iter()
        .chain(&split.gallery)
        .map(|s| s.path.clone())
        .collect()
}

/// Scores query features against gallery features (labels in the same order) with
/// `options`: distances (their products on the GPU when `device` picks one), then every query;
/// `label` names the run in the metrics file. `cancel` stops between blocks of queries.
pub fn score(
    rows: FeatureRows,
    (query_labels, gallery_labels): (&[Label], &[Label]),
    options: &EvalOptions,
    device: DeviceChoice,
    label: String,
    on_stage: &mut dyn FnMut(Stage),
    cancel: &AtomicBool,
) -> Result<Scores, RunError> {
    on_stage(Stage::Distances);
    let device = distance_device(device)?;
    let distances = Distances::new(rows.query, rows.gallery, rows.dim, options, device.as_ref())?;
    let evaluation = evaluate(
        &distances,
        query_labels,
        gallery_labels,
        options,
        &mut |done, total| on_stage(Stage::Scoring(done, total)),
        cancel,
    )
    .map_err(|e| match e {
        EvalError::Cancelled => RunError::Cancelled,
        e => RunError::Eval(e),
    })?;
    let metrics = MetricsFile::new(&evaluation, options, gallery_labels.len(), label);
    Ok(Scores {
        distances,
        evaluation,
        metrics,
        device: if device.is_some() {
            BackendKind::Wgpu
        } else {
            BackendKind::Flex
        },
    })
}

/// Distances from `image`, an image outside the dataset, to every gallery sample of `run`,
/// with the run's feature source and metric. Re-ranking and query expansion are left out:
/// both need the whole query set.
pub fn external_query_row(
    run: &Run,
    image: &Path,
    cancel: &AtomicBool,
) -> Result<Vec<f32>, RunError> {
    let images = [image.to_path_buf()];
    let spec = RunSpec {
        cache: None,
        ..run.spec.clone()
    };
    let mut extraction = match &spec.source {
        FeatureSource::ColourHistogram => extract_histograms(&images),
        FeatureSource::Network(net) => extract_network(&spec, net, &images, &mut |_| {}, cancel)?,
    };
    if let Some(error) = extraction.skipped.pop() {
        return Err(error.into());
    }
    if !extraction.complete {
        return Err(RunError::Cancelled);
    }
    let options = EvalOptions {
        rerank: None,
        aqe: false,
        ..spec.eval.clone()
    };
    let distances = Distances::new(
        &extraction.features,
        &run.gallery_features,
        run.feature_dim,
        &options,
        None,
    )?;
    let mut row = Vec::new();
    distances.rows(0..1, &mut row);
    Ok(row)
}

fn extract_network(
    spec: &RunSpec,
    net: &NetworkSource,
    images: &[PathBuf],
    on_stage: &mut dyn FnMut(Stage),
    cancel: &AtomicBool,
) -> Result<Extraction, RunError> {
    let NetworkSource {
        model,
        weights,
        last_stride,
        precision,
    } = net;
    let backend = Backend::select(spec.device, *precision)?;
    let weights_error = |source| RunError::Weights {
        path: weights.clone(),
        source,
    };
    // The key hashes the weights file before it is loaded, and the file is hashed again after:
    // features are never cached under the key of a file replaced in between.
    let cache = match &spec.cache {
        Some(root) => {
            let build = format!("last_stride={last_stride:?}");
            let key = CacheKey::new(
                (model.name(), &build),
                weights,
                &precision.to_string(),
                (spec.preprocess.height, spec.preprocess.width),
                images,
            )
            .map_err(weights_error)?;
            Some((root, key))
        }
        None => None,
    };
    let network = net.load(&backend)?;
    let options = ExtractOptions {
        batch_size: spec.batch,
        preprocess: spec.preprocess,
    };
    let mut on_progress = |p: Progress| on_stage(Stage::Extracting(p));
    Ok(match cache {
        None => extract(&network, images, options, &mut on_progress, cancel)?,
        Some((root, key)) => {
            key.check_weights(weights).map_err(weights_error)?;
            let entry = FeatureCache::new(root.clone()).entry(&key);
            extract_cached(&network, images, options, &entry, &mut on_progress, cancel)?
        }
    })
}

/// The samples that have a feature row in `extraction`, with their features.
fn rows_of(samples: &[Sample], extraction: &Extraction) -> (Vec<Sample>, Vec<f32>) {
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
            kept.push(sample.clone());
            features.extend_from_slice(&extraction.features[row * dim..(row + 1) * dim]);
        }
    }
    (kept, features)
}
