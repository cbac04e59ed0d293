//! `reidscope train`: Torchreid's softmax + triplet recipe on a dataset's train split,
//! writing `OUT/model.pth.tar-EPOCH`, `OUT/history.csv` and `OUT/curves.png` / `.svg`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use signal_hook::consts::{SIGINT, SIGTERM};

use reidscope::backend::DeviceChoice;
use reidscope::data::DatasetKind;
use reidscope::demo::{DEMO_DATASET, bundled};
use reidscope::models::BuildOptions;
use reidscope::train::augment::Augment;
use reidscope::train::checkpoint::checkpoint_path;
use reidscope::train::loss_scale::INITIAL as INITIAL_LOSS_SCALE;
use reidscope::train::optimizer::{OptimizerKind, OptimizerSettings};
use reidscope::train::schedule::{Schedule, Scheduler};
use reidscope::train::step::{LossKind, LossSettings, TrainPrecision};
use reidscope::train::{StepProgress, TrainEvent, TrainSettings, train};

use super::args::{DatasetArgs, InputArgs, ModelArgs};

#[derive(Args)]
pub struct TrainArgs {
    /// Train on the bundled demo dataset's train split.
    #[arg(long, conflicts_with_all = ["root", "dataset"])]
    demo: bool,
    #[command(flatten)]
    dataset: DatasetArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Continue from a checkpoint of this run (OUT/model.pth.tar-N): weights, optimiser state
    /// and epoch count.
    #[arg(long, conflicts_with = "weights")]
    resume: Option<PathBuf>,
    #[command(flatten)]
    input: InputArgs,
    /// Images per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Images per identity in a batch (K); identities per batch = batch size / K.
    #[arg(long, default_value_t = 4)]
    instances: usize,
    /// Training augmentations: flip, crop (random2d_translation), erase, color.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "flip",
        conflicts_with = "no_augment"
    )]
    augment: Vec<Augment>,
    /// No augmentation: resize and normalise only.
    #[arg(long)]
    no_augment: bool,
    /// softmax, triplet or softmax+triplet.
    #[arg(long, default_value = "softmax+triplet")]
    loss: LossKind,
    /// Label smoothing ε of the cross-entropy (0: none).
    #[arg(long, default_value_t = 0.1)]
    label_smooth: f32,
    /// Triplet margin.
    #[arg(long, default_value_t = 0.3)]
    margin: f32,
    /// adam, amsgrad or sgd.
    #[arg(long, default_value = "adam")]
    optimizer: OptimizerKind,
    /// Base learning rate.
    #[arg(long, default_value_t = 0.0003)]
    lr: f64,
    /// L2 weight decay, added to every gradient.
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Adam's β1.
    #[arg(long, default_value_t = 0.9)]
    adam_beta1: f32,
    /// Adam's β2.
    #[arg(long, default_value_t = 0.999)]
    adam_beta2: f32,
    /// single-step, multi-step or cosine.
    #[arg(long, default_value = "single-step")]
    scheduler: Scheduler,
    /// Step size (single-step) or milestones (multi-step), in epochs.
    #[arg(long, value_delimiter = ',', default_value = "20")]
    stepsize: Vec<usize>,
    /// Learning-rate factor at each step.
    #[arg(long, default_value_t = 0.1)]
    gamma: f64,
    /// Epochs of linear warm-up from 0.1× the rate.
    #[arg(long, default_value_t = 0)]
    warmup_epochs: usize,
    /// Epochs that train only the new classifier, the rest frozen.
    #[arg(long, default_value_t = 0)]
    fixbase_epochs: usize,
    /// Epochs in all.
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Seed of the sampler, the augmentations and a new classifier.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Evaluate on the query/gallery split every N epochs and after the last (0: never).
    #[arg(long, default_value_t = 10)]
    eval_every: usize,
    /// Images per forward pass when evaluating.
    #[arg(long, default_value_t = 32)]
    eval_batch: usize,
    /// auto (a hardware GPU if present, else CPU), gpu (any wgpu adapter) or cpu.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// f32, or mixed (f16 forward and backward with f32 parameters and dynamic loss scaling;
    /// wgpu adapters with f16 only).
    #[arg(long, default_value = "f32")]
    precision: TrainPrecision,
    /// The first loss scale of --precision mixed; halved (and the step skipped) on an overflow,
    /// doubled after 2000 clean steps.
    #[arg(long, default_value_t = INITIAL_LOSS_SCALE)]
    loss_scale: f32,
    /// Output folder: model.pth.tar-EPOCH, history.csv, curves.png, curves.svg.
    #[arg(long)]
    out: PathBuf,
}

impl TrainArgs {
    fn settings(&self) -> Result<TrainSettings> {
        let (kind, root) = match (&self.dataset.root, self.demo) {
            (Some(root), _) => (self.dataset.dataset, root.clone()),
            (None, true) => (DatasetKind::Market1501, bundled(DEMO_DATASET)),
            (None, false) => bail!("give --root DIR (or --demo for the bundled demo dataset)"),
        };
        if self.batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if !(self.loss_scale.is_finite() && self.loss_scale >= 1.0) {
            bail!("--loss-scale must be a number of at least 1");
        }
        Ok(TrainSettings {
            kind,
            root,
            model: self.model.name()?,
            weights: self.model.weights.clone(),
            build: BuildOptions {
                last_stride: self.model.last_stride,
            },
            resume: self.resume.clone(),
            size: self.input.preprocess()?,
            batch_size: self.batch_size,
            instances: self.instances,
            augments: if self.no_augment {
                Vec::new()
            } else {
                self.augment.clone()
            },
            losses: LossSettings {
                kind: self.loss,
                label_smooth: self.label_smooth,
                margin: self.margin,
            },
            optimizer: OptimizerSettings {
                kind: self.optimizer,
                weight_decay: self.weight_decay,
                momentum: self.momentum,
                beta1: self.adam_beta1,
                beta2: self.adam_beta2,
            },
            schedule: Schedule {
                lr: self.lr,
                scheduler: self.scheduler,
                stepsize: self.stepsize.clone(),
                gamma: self.gamma,
                epochs: self.epochs,
                warmup_epochs: self.warmup_epochs,
            },
            fixbase_epochs: self.fixbase_epochs,
            seed: self.seed,
            eval_every: self.eval_every,
            eval_batch: self.eval_batch.max(1),
            device: self.device,
            precision: self.precision,
            loss_scale: self.loss_scale,
            out: self.out.clone(),
        })
    }
}

/// The bar of one epoch.
fn epoch_bar(epoch: usize, epochs: usize, batches: usize) -> ProgressBar {
    let template = format!("epoch {epoch}/{epochs} {{bar:30}} {{pos}}/{{len}} {{msg}} ETA {{eta}}");
    ProgressBar::new(batches as u64)
        .with_style(ProgressStyle::with_template(&template).expect("valid progress template"))
}

/// Runs `reidscope train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let settings = args.settings()?;
    let interrupt = interrupt_flag()?;
    let start = Instant::now();
    let mut bar = ProgressBar::hidden();
    let mut epochs = settings.schedule.epochs;
    let outcome = train(
        &settings,
        &mut |event| match event {
            TrainEvent::Started(start) => {
                epochs = start.epochs;
                eprintln!(
                    "training {} on {}: {} images of {} identities, {} batches per epoch{}",
                    settings.model,
                    start.device,
                    start.images,
                    start.identities,
                    start.batches,
                    if start.classifier_drawn {
                        "; new classifier"
                    } else {
                        ""
                    }
                );
            }
            TrainEvent::Step(StepProgress {
                epoch,
                done,
                batches,
                loss,
                accuracy,
                images_per_s,
            }) => {
                if done == 1 {
                    bar = epoch_bar(epoch, epochs, batches);
                }
                bar.set_position(done as u64);
                bar.set_message(format!(
                    "loss {loss:.4} acc {:.1}% {images_per_s:.1} img/s",
                    accuracy * 100.0
                ));
            }
            TrainEvent::Evaluating(epoch) => {
                bar.finish_and_clear();
                eprintln!("epoch {epoch}: evaluating on the query/gallery split");
            }
            TrainEvent::Epoch(record) => {
                bar.finish_and_clear();
                let skipped = match record.skipped_steps {
                    0 => String::new(),
                    n => format!(" · {n} steps skipped (non-finite gradients)"),
                };
                let evaluation = record.evaluation.map_or(String::new(), |(rank1, map)| {
                    format!(" · R1 {:.1}% · mAP {:.1}%", rank1 * 100.0, map * 100.0)
                });
                eprintln!(
                    "epoch {}/{epochs}: loss {:.4} (softmax {:.4}, triplet {:.4}) · acc {:.1}% · lr {:.2e} · {:.1} img/s{skipped}{evaluation}",
                    record.epoch,
                    record.loss,
                    record.loss_softmax,
                    record.loss_triplet,
                    record.accuracy * 100.0,
                    record.lr,
                    record.images_per_s
                );
            }
        },
        &interrupt,
    )?;
    bar.finish_and_clear();
    let last = outcome.history.last().map_or(0, |r| r.epoch);
    if outcome.cancelled {
        let resume = match last {
            0 => "no epoch was finished".to_string(),
            _ => format!(
                "the last checkpoint is {}; continue with --resume {0}",
                checkpoint_path(&settings.out, last).display()
            ),
        };
        bail!(
            "interrupted after {:.1} s: {resume}",
            start.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "checkpoint {} · history and curves in {} ({:.1} s)",
        checkpoint_path(&settings.out, last).display(),
        settings.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Exit status when a second Ctrl-C or SIGTERM ends the process (128 + SIGINT, as shells
/// report it).
const INTERRUPTED: i32 = 130;

/// A flag raised by the first Ctrl-C (or SIGTERM): training stops after the current step. A
/// second one ends the process at once (outputs are written atomically, so no checkpoint is
/// left half-written).
fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, INTERRUPTED, Arc::clone(&flag))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&flag)))
            .context("install the Ctrl-C handler")?;
    }
    Ok(flag)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use reidscope::models::ModelName;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        train: TrainArgs,
    }

    #[test]
    fn the_commands_defaults_are_the_librarys_recipe() {
        let args = [
            "train",
            "--root",
            "/data/market",
            "--model",
            "osnet_x0_25",
            "--out",
            "/o",
        ];
        let settings = Command::parse_from(args).train.settings().unwrap();
        let recipe = TrainSettings::recipe(
            (DatasetKind::Auto, PathBuf::from("/data/market")),
            ModelName::OsnetX0_25,
            None,
            PathBuf::from("/o"),
        );
        assert_eq!(settings, recipe);
    }
}
