//! The training loop: Torchreid's recipe over any dataset reidscope reads, one checkpoint,
//! `history.csv` row and set of curves per epoch, evaluation through `eval`'s pipeline.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::augment::Augment;
use super::batches::TrainImages;
use super::checkpoint::{
    CheckpointInfo, checkpoint_epoch, checkpoint_name, read_resume_point, save_checkpoint,
};
use super::curves::write_curves;
use super::data::Labels;
use super::error::TrainError;
use super::history::{EpochRecord, read_history, write_history};
use super::loss_scale::LossScale;
use super::optimizer::{OptimizerKind, OptimizerSettings};
use super::sampler::IdentitySampler;
use super::schedule::{Schedule, Scheduler};
use super::step::{Learner, LossSettings, StepStats, TrainPrecision};
use crate::backend::{Backend, BackendError, DeviceChoice, Precision};
use crate::data::image::Preprocess;
use crate::data::{DatasetKind, load_dataset};
use crate::eval::EvalOptions;
use crate::models::{BuildOptions, ModelName, TrainableModel};
use crate::output_dir::OutputDir;
use crate::run::{FeatureSource, NetworkSource, RunError, RunSpec, Stage, score_model};

/// Everything that defines a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    /// Dataset layout.
    pub kind: DatasetKind,
    /// Dataset folder (or CSV).
    pub root: PathBuf,
    /// The network.
    pub model: ModelName,
    /// Initial weights (`None`: random); not read when resuming.
    pub weights: Option<PathBuf>,
    /// Graph options.
    pub build: BuildOptions,
    /// A checkpoint of this run to continue from.
    pub resume: Option<PathBuf>,
    /// Network input size.
    pub size: Preprocess,
    /// Images per batch.
    pub batch_size: usize,
    /// Images per identity in a batch (K).
    pub instances: usize,
    /// Training augmentations.
    pub augments: Vec<Augment>,
    /// Losses.
    pub losses: LossSettings,
    /// Optimiser.
    pub optimizer: OptimizerSettings,
    /// Learning rate per epoch and the number of epochs.
    pub schedule: Schedule,
    /// Epochs that train the classifier alone.
    pub fixbase_epochs: usize,
    /// Seed of the sampler, the augmentations and a new classifier.
    pub seed: u64,
    /// Evaluate every this many epochs and after the last (0: never).
    pub eval_every: usize,
    /// Images per forward pass when evaluating.
    pub eval_batch: usize,
    /// Device.
    pub device: DeviceChoice,
    /// f32 or mixed precision.
    pub precision: TrainPrecision,
    /// The first loss scale of mixed precision (a resumed run continues with its own).
    pub loss_scale: f32,
    /// Output folder.
    pub out: PathBuf,
}

impl TrainSettings {
    /// Torchreid's recipe (the `train` command's defaults) for `model` on the dataset at
    /// `root`, written to `out`: 256×128 input, 8 identities × 4 images per batch, random flip,
    /// softmax (label smoothing 0.1) + triplet (margin 0.3), Adam (lr 3e-4, weight decay 5e-4,
    /// β 0.9 / 0.999), the rate ×0.1 every 20 epochs, 60 epochs evaluated every 10, seed 1, f32.
    pub fn recipe(
        (kind, root): (DatasetKind, PathBuf),
        model: ModelName,
        weights: Option<PathBuf>,
        out: PathBuf,
    ) -> TrainSettings {
        TrainSettings {
            kind,
            root,
            model,
            weights,
            build: BuildOptions::default(),
            resume: None,
            size: Preprocess::default(),
            batch_size: 32,
            instances: 4,
            augments: vec![Augment::Flip],
            losses: LossSettings::default(),
            optimizer: OptimizerSettings {
                kind: OptimizerKind::Adam,
                weight_decay: 5e-4,
                momentum: 0.9,
                beta1: 0.9,
                beta2: 0.999,
            },
            schedule: Schedule {
                lr: 3e-4,
                scheduler: Scheduler::SingleStep,
                stepsize: vec![20],
                gamma: 0.1,
                epochs: 60,
                warmup_epochs: 0,
            },
            fixbase_epochs: 0,
            seed: 1,
            eval_every: 10,
            eval_batch: 32,
            device: DeviceChoice::Auto,
            precision: TrainPrecision::F32,
            loss_scale: super::loss_scale::INITIAL,
            out,
        }
    }

    /// The evaluation of the network in `weights` as this run evaluates its epochs: its
    /// dataset's query/gallery split at its input size, float32, no feature cache.
    pub fn evaluation_spec(&self, weights: PathBuf) -> RunSpec {
        RunSpec {
            kind: self.kind,
            root: self.root.clone(),
            source: FeatureSource::Network(NetworkSource {
                model: self.model,
                weights,
                last_stride: self.build.last_stride,
                precision: Precision::F32,
            }),
            device: self.device,
            preprocess: self.size,
            batch: self.eval_batch,
            cache: None,
            eval: EvalOptions::default(),
        }
    }
}

/// How a run starts.
#[derive(Debug, Clone)]
pub struct TrainStart {
    /// The device, in words.
    pub device: String,
    /// Training images.
    pub images: usize,
    /// Training identities (the classifier's size).
    pub identities: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// The first epoch to run (1-based; above 1 when resuming).
    pub first_epoch: usize,
    /// The last epoch.
    pub epochs: usize,
    /// Whether the classifier was newly drawn.
    pub classifier_drawn: bool,
}

/// How far the current epoch has come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepProgress {
    /// 1-based epoch.
    pub epoch: usize,
    /// Steps done in this epoch.
    pub done: usize,
    /// Steps in the epoch.
    pub batches: usize,
    /// Mean loss of the epoch so far.
    pub loss: f64,
    /// Accuracy of the epoch so far.
    pub accuracy: f64,
    /// Images per second of the epoch so far.
    pub images_per_s: f64,
}

/// What a run reports as it goes.
#[derive(Debug)]
pub enum TrainEvent<'a> {
    /// The run is set up.
    Started(&'a TrainStart),
    /// A step finished.
    Step(StepProgress),
    /// The network is being evaluated after `epoch`.
    Evaluating(usize),
    /// An epoch finished and its checkpoint was written.
    Epoch(&'a EpochRecord),
}

/// How a run ended.
#[derive(Debug)]
pub struct TrainOutcome {
    /// Every epoch's record, earlier runs' included when resuming.
    pub history: Vec<EpochRecord>,
    /// Whether the run stopped early on request (the last checkpoint is complete).
    pub cancelled: bool,
}

/// Runs `settings`; `cancel` stops the run after the current step (the unfinished epoch is
/// dropped, so the last finished epoch's checkpoint stays the newest) or cuts an evaluation
/// short (the epoch is saved without it).
pub fn train(
    settings: &TrainSettings,
    on_event: &mut dyn FnMut(TrainEvent),
    cancel: &AtomicBool,
) -> Result<TrainOutcome, TrainError> {
    if settings.schedule.epochs == 0 {
        return Err(TrainError::Settings("--epochs must be at least 1".into()));
    }
    let dataset = load_dataset(settings.kind, &settings.root)?;
    let train_split = &dataset.split.train;
    if train_split.is_empty() {
        return Err(TrainError::NoTrainSplit {
            root: dataset.root.clone(),
        });
    }
    let labels = Labels::new(train_split);
    let sampler = IdentitySampler::new(&labels.of_sample, settings.batch_size, settings.instances)?;
    let backend = training_backend(settings.device, settings.precision)?;
    let device = backend.device.clone().autodiff();
    let classes = labels.identities();

    // A run being resumed starts from its checkpoint; a new one from `weights` (or random).
    let start_from = settings.resume.as_deref().or(settings.weights.as_deref());
    let model = TrainableModel::load(
        settings.model,
        start_from,
        settings.build,
        classes,
        settings.seed,
        &device,
    )?;
    model
        .architecture()
        .check_input(settings.size.height, settings.size.width)?;
    let resume_point = match &settings.resume {
        Some(path) if model.classifier_drawn() => {
            return Err(TrainError::Resume {
                path: path.clone(),
                reason: format!(
                    "its classifier does not have {classes} identities (the train split's); resume with the dataset it was trained on"
                ),
            });
        }
        Some(path) => Some(read_resume_point(path)?),
        None => None,
    };
    let mut optimizer = match settings.optimizer.kind {
        OptimizerKind::Sgd => settings.optimizer.sgd().init(),
        OptimizerKind::Adam | OptimizerKind::Amsgrad => settings.optimizer.adam().init(),
    };
    let mut history = Vec::new();
    let mut first_epoch = 0;
    let mut loss_scale = (settings.precision == TrainPrecision::Mixed)
        .then(|| LossScale::resumed(settings.loss_scale, 0));
    if let (Some(point), Some(path)) = (resume_point, &settings.resume) {
        if let (Some(scale), Some(saved)) = (&mut loss_scale, point.loss_scale) {
            *scale = saved;
        }
        optimizer =
            optimizer
                .from_bytes(point.optimizer_state)
                .map_err(|e| TrainError::Resume {
                    path: path.clone(),
                    reason: format!("optimiser state: {e:?}"),
                })?;
        first_epoch = point.epoch;
        history = earlier_history(&settings.out, first_epoch);
    }
    if first_epoch >= settings.schedule.epochs {
        return Err(TrainError::Settings(format!(
            "the checkpoint has finished epoch {first_epoch}; --epochs {} leaves nothing to train",
            settings.schedule.epochs
        )));
    }
    // Every file this run will write is claimed before the first step, so a file of the same
    // name that reidscope did not write stops the run before any work, and is left alone.
    let mut out = OutputDir::open(&settings.out)?;
    let outputs = RunOutputs {
        history: out.claim("history.csv")?,
        curves_png: out.claim("curves.png")?,
        curves_svg: out.claim("curves.svg")?,
    };
    let epochs = first_epoch + 1..=settings.schedule.epochs;
    out.refuse_foreign(|name| checkpoint_epoch(name).is_some_and(|epoch| epochs.contains(&epoch)))?;
    out.save()?;

    let images = TrainImages {
        paths: train_split.iter().map(|s| s.path.clone()).collect(),
        labels: labels.of_sample.clone(),
        size: settings.size,
        augments: settings.augments.clone(),
        seed: settings.seed,
    };
    let batches_per_epoch = train_split.len() / settings.batch_size;
    let start = TrainStart {
        device: backend.description.clone(),
        images: train_split.len(),
        identities: classes,
        batches: batches_per_epoch,
        first_epoch: first_epoch + 1,
        epochs: settings.schedule.epochs,
        classifier_drawn: model.classifier_drawn(),
    };
    on_event(TrainEvent::Started(&start));
    let classifier = model.classifier_ids();
    let mut learner = Learner {
        model,
        optimizer,
        losses: settings.losses,
        device,
        loss_scale,
    };
    let eval_spec = RunSpec {
        kind: dataset.kind,
        root: dataset.root.clone(),
        ..settings.evaluation_spec(settings.out.clone())
    };

    for epoch in first_epoch..settings.schedule.epochs {
        let number = epoch + 1;
        let lr = settings.schedule.lr(epoch);
        let only = (epoch < settings.fixbase_epochs).then_some(classifier.as_slice());
        let batches = sampler.epoch(&mut StdRng::seed_from_u64(epoch_seed(settings.seed, epoch)));
        let started = Instant::now();
        let skipped_before = skipped_steps(&learner);
        let mut total = StepStats::default();
        let mut steps = 0;
        let stopped = images.run_epoch(epoch, &batches, |batch| {
            if cancel.load(Ordering::Relaxed) {
                return ControlFlow::Break(());
            }
            let stats = learner.step(&batch, lr, only);
            steps += 1;
            total = add(total, stats);
            on_event(TrainEvent::Step(StepProgress {
                epoch: number,
                done: steps,
                batches: batches.len(),
                loss: total.loss / steps as f64,
                accuracy: total.correct as f64 / total.images.max(1) as f64,
                images_per_s: total.images as f64 / started.elapsed().as_secs_f64(),
            }));
            ControlFlow::Continue(())
        })?;
        if stopped.is_some() {
            return Ok(TrainOutcome {
                history,
                cancelled: true,
            });
        }
        let seconds = started.elapsed().as_secs_f64();
        let evaluate = settings.eval_every > 0
            && (number % settings.eval_every == 0 || number == settings.schedule.epochs);
        let evaluation = if evaluate {
            on_event(TrainEvent::Evaluating(number));
            let model = learner.model.inference(&backend)?;
            // A request to stop during the evaluation skips it; the epoch is still saved.
            match score_model(&model, &dataset, &eval_spec, &mut |_: Stage| {}, cancel) {
                Ok(scores) => {
                    let metrics = &scores.evaluation.metrics;
                    Some((metrics.cmc.first().copied().unwrap_or(0.0), metrics.map))
                }
                Err(RunError::Cancelled) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        let per_step = steps.max(1) as f64;
        let record = EpochRecord {
            epoch: number,
            loss: total.loss / per_step,
            loss_softmax: total.softmax / per_step,
            loss_triplet: total.triplet / per_step,
            accuracy: total.correct as f64 / total.images.max(1) as f64,
            lr,
            images_per_s: total.images as f64 / seconds.max(f64::MIN_POSITIVE),
            skipped_steps: skipped_steps(&learner) - skipped_before,
            evaluation,
        };
        let checkpoint = out.claim(&checkpoint_name(number))?;
        out.save()?;
        save_checkpoint(
            &checkpoint,
            &learner.model,
            &learner.optimizer,
            CheckpointInfo {
                epoch: number,
                rank1: evaluation.map(|(rank1, _)| rank1),
                lr,
                loss_scale: learner.loss_scale,
            },
        )?;
        history.push(record);
        outputs.write(&history)?;
        on_event(TrainEvent::Epoch(history.last().expect("just pushed")));
        if cancel.load(Ordering::Relaxed) {
            return Ok(TrainOutcome {
                history,
                cancelled: true,
            });
        }
    }
    Ok(TrainOutcome {
        history,
        cancelled: false,
    })
}

/// The backend training in `precision` runs on: `device`, checked to compute in f16 for mixed
/// precision. Parameters live in f32 whatever the precision, and evaluation between epochs
/// runs the folded network in f32, so the backend's precision is f32.
pub fn training_backend(
    device: DeviceChoice,
    precision: TrainPrecision,
) -> Result<Backend, TrainError> {
    let compute = match precision {
        TrainPrecision::F32 => Precision::F32,
        TrainPrecision::Mixed => Precision::F16,
    };
    let backend = match Backend::select(device, compute) {
        Err(BackendError::UnsupportedPrecision { device, .. }) => {
            return Err(TrainError::Settings(format!(
                "--precision mixed needs f16 compute, which {device} lacks (a wgpu adapter with SHADER_F16 has it); use --precision f32"
            )));
        }
        selected => selected?,
    };
    Ok(Backend {
        precision: Precision::F32,
        ..backend
    })
}

/// Optimiser steps skipped so far for non-finite gradients.
fn skipped_steps(learner: &Learner) -> u64 {
    learner.loss_scale.as_ref().map_or(0, LossScale::skipped)
}

/// The seed of epoch `epoch`'s sampling.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn add(a: StepStats, b: StepStats) -> StepStats {
    StepStats {
        loss: a.loss + b.loss,
        softmax: a.softmax + b.softmax,
        triplet: a.triplet + b.triplet,
        correct: a.correct + b.correct,
        images: a.images + b.images,
    }
}

/// The rows of `out/history.csv` up to `epoch` (none when there is no readable file).
fn earlier_history(out: &Path, epoch: usize) -> Vec<EpochRecord> {
    read_history(&out.join("history.csv"))
        .map(|records| records.into_iter().filter(|r| r.epoch <= epoch).collect())
        .unwrap_or_default()
}

/// The files a run rewrites after every epoch.
struct RunOutputs {
    history: PathBuf,
    curves_png: PathBuf,
    curves_svg: PathBuf,
}

impl RunOutputs {
    /// Writes `history.csv` and the curves of `history`.
    fn write(&self, history: &[EpochRecord]) -> Result<(), TrainError> {
        write_history(&self.history, history).map_err(|e| TrainError::Output {
            path: self.history.clone(),
            reason: e.to_string(),
        })?;
        write_curves(&self.curves_png, &self.curves_svg, history).map_err(|reason| {
            TrainError::Output {
                path: self.curves_png.clone(),
                reason,
            }
        })
    }
}
