//! Work the UI thread hands off — whole runs and external queries — each on its own thread,
//! with progress, cancel and errors returned as text (a panic in the work is an error too).

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eframe::egui;

use crate::backend::{Backend, DeviceChoice, Precision};
use crate::data::Dataset;
use crate::eval::compare::Comparison;
use crate::eval::drift::FeatureDrift;
use crate::eval::inspect::{Inspection, inspect};
use crate::export::{ExportSettings, export};
use crate::run::network_maps::NetworkMaps;
use crate::run::report::{ReportOptions, write_report};
use crate::run::{NetworkSource, Run, RunSpec, Stage, execute, external_query_row};

/// Ranked-list depth kept per query (the largest k the query view offers).
pub const LIST_DEPTH: usize = 100;

/// A finished run with what the views show of it.
pub struct RunEntry {
    /// The run.
    pub run: Run,
    /// Ranked lists and pair distances.
    pub inspection: Inspection,
    /// Name in run lists and legends.
    pub name: String,
    /// How long the run took.
    pub elapsed: Duration,
    /// Its network, for activation maps (`None` for the colour histogram).
    pub maps: Option<Arc<NetworkMaps>>,
}

impl RunEntry {
    /// This run (A) against `other` (B) over the same queries: per-query AP and top-1
    /// changes, and the feature drift when both are one network over the same images.
    pub fn compare(&self, other: &RunEntry) -> (Comparison, Option<FeatureDrift>) {
        let comparison = Comparison::new(
            (&self.run.evaluation, &self.inspection),
            (&other.run.evaluation, &other.inspection),
        );
        let drift = self.run.same_network_and_images(&other.run).then(|| {
            FeatureDrift::new(
                &self.run.query_features,
                &other.run.query_features,
                self.run.feature_dim,
            )
        });
        (comparison, drift)
    }
}

/// The ranked gallery of an image from outside the dataset.
pub struct ExternalQuery {
    /// The image.
    pub image: PathBuf,
    /// Index of the run whose gallery and features were used.
    pub run: usize,
    /// Distance to every gallery sample.
    pub row: Vec<f32>,
}

/// What a job computes.
pub enum Work {
    /// A whole run.
    Run(RunSpec),
    /// An external query against a finished run.
    External {
        /// The run.
        run: Arc<RunEntry>,
        /// Its index in the app's run list.
        index: usize,
        /// The query image.
        image: PathBuf,
    },
    /// Only the dataset listing, for the browser.
    Dataset(RunSpec),
    /// The report folder of a finished run.
    Report {
        /// The run.
        run: Arc<RunEntry>,
        /// The folder.
        dir: PathBuf,
    },
    /// A run's network written to a file, as `reidscope export` does.
    ExportModel {
        /// The network.
        network: NetworkSource,
        /// The file; its extension picks the format.
        path: PathBuf,
        /// Precision and input size.
        settings: ExportSettings,
    },
}

/// What a finished job returns.
pub enum Outcome {
    /// A finished run.
    Run(Box<RunEntry>),
    /// An external query's distances.
    External(ExternalQuery),
    /// A parsed dataset.
    Dataset(Box<Dataset>),
    /// A written report folder.
    Report(PathBuf),
    /// A written model file.
    Exported(PathBuf),
}

/// Progress of a running job.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// What it is doing.
    pub stage: String,
    /// Items done of `total` in this stage.
    pub done: usize,
    /// Items in this stage (0: unknown).
    pub total: usize,
    /// Images per second while extracting.
    pub images_per_s: Option<f64>,
}

impl Status {
    /// Fraction done, if known.
    pub fn fraction(&self) -> Option<f32> {
        (self.total > 0).then(|| self.done as f32 / self.total as f32)
    }

    /// Time left at the current rate, while extracting.
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.images_per_s.filter(|r| *r > 0.0)?;
        Some(Duration::from_secs_f64(
            self.total.saturating_sub(self.done) as f64 / rate,
        ))
    }
}

/// A job running on its own thread.
pub struct Job {
    /// Short title shown with the progress.
    pub title: String,
    status: Arc<Mutex<Status>>,
    cancel: Arc<AtomicBool>,
    result: Receiver<Result<Outcome, String>>,
}

impl Job {
    /// Starts `work` on a new thread; `ctx` is repainted on progress and at the end.
    pub fn start(ctx: &egui::Context, title: String, work: Work) -> Job {
        let status = Arc::new(Mutex::new(Status::default()));
        let cancel = Arc::new(AtomicBool::new(false));
        let (sender, result) = channel();
        let (thread_status, thread_cancel, ctx) =
            (Arc::clone(&status), Arc::clone(&cancel), ctx.clone());
        std::thread::Builder::new()
            .name("job".into())
            .spawn(move || {
                let report = |s: Status| {
                    *thread_status.lock().expect("job status poisoned") = s;
                    ctx.request_repaint();
                };
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    perform(work, &report, &thread_cancel)
                }))
                .unwrap_or_else(|panic| {
                    Err(panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .map_or("internal error".into(), |m| format!("internal error: {m}")))
                });
                // The app may be gone; nothing else to do then.
                let _ = sender.send(outcome);
                ctx.request_repaint();
            })
            .expect("cannot start a job thread");
        Job {
            title,
            status,
            cancel,
            result,
        }
    }

    /// The latest progress.
    pub fn status(&self) -> Status {
        self.status.lock().expect("job status poisoned").clone()
    }

    /// Asks the job to stop at its next checkpoint.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// True once cancel was asked.
    pub fn cancelling(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The result, once the job has finished.
    pub fn finished(&self) -> Option<Result<Outcome, String>> {
        match self.result.try_recv() {
            Ok(result) => Some(result),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("the job stopped without a result".into())),
        }
    }
}

fn perform(
    work: Work,
    report: &(dyn Fn(Status) + Sync),
    cancel: &AtomicBool,
) -> Result<Outcome, String> {
    match work {
        Work::Run(spec) => run(spec, report, cancel).map(|entry| Outcome::Run(Box::new(entry))),
        Work::External { run, index, image } => {
            report(Status {
                stage: format!("ranking the gallery for {}", image.display()),
                ..Status::default()
            });
            let row = external_query_row(&run.run, &image, cancel).map_err(|e| e.to_string())?;
            Ok(Outcome::External(ExternalQuery {
                image,
                run: index,
                row,
            }))
        }
        Work::Dataset(spec) => crate::data::load_dataset(spec.kind, &spec.root)
            .map(|d| Outcome::Dataset(Box::new(d)))
            .map_err(|e| e.to_string()),
        Work::Report { run, dir } => {
            let on_figure = |done, total| {
                report(Status {
                    stage: format!("writing the report to {}", dir.display()),
                    done,
                    total,
                    images_per_s: None,
                })
            };
            write_report(&run.run, &dir, &ReportOptions::default(), &on_figure)
                .map_err(|e| e.to_string())?;
            Ok(Outcome::Report(dir))
        }
        Work::ExportModel {
            network,
            path,
            settings,
        } => {
            report(Status {
                stage: format!("exporting {} to {}", network.model, path.display()),
                ..Status::default()
            });
            let backend =
                Backend::select(DeviceChoice::Cpu, Precision::F32).map_err(|e| e.to_string())?;
            let model = network.load(&backend).map_err(|e| e.to_string())?;
            export(&model, &path, &settings).map_err(|e| e.to_string())?;
            Ok(Outcome::Exported(path))
        }
    }
}

fn run(spec: RunSpec, report: &dyn Fn(Status), cancel: &AtomicBool) -> Result<RunEntry, String> {
    let start = Instant::now();
    let mut on_stage = |stage: Stage| {
        report(match stage {
            Stage::Preparing => Status {
                stage: "reading the dataset, loading the model".into(),
                ..Status::default()
            },
            Stage::Extracting(p) => Status {
                stage: "extracting features".into(),
                done: p.done,
                total: p.total,
                images_per_s: Some(p.images_per_s),
            },
            Stage::Distances => Status {
                stage: "computing distances".into(),
                ..Status::default()
            },
            Stage::Scoring(done, total) => Status {
                stage: "scoring queries".into(),
                done,
                total,
                images_per_s: None,
            },
        })
    };
    let run = execute(&spec, &mut on_stage, cancel).map_err(|e| e.to_string())?;
    let inspection = inspect(
        &run.distances,
        &run.query_labels,
        &run.gallery_labels,
        LIST_DEPTH,
        &mut |done, total| {
            report(Status {
                stage: "ranking galleries".into(),
                done,
                total,
                images_per_s: None,
            })
        },
        cancel,
    )
    .map_err(|e| e.to_string())?;
    Ok(RunEntry {
        name: run.spec.name(),
        maps: NetworkMaps::of_run(&run.spec).map(Arc::new),
        run,
        inspection,
        elapsed: start.elapsed(),
    })
}
