//! Scripted walks through the running app: screenshots of every view for the docs, and
//! frame-time measurement while scrolling a gallery and switching queries.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eframe::egui::{self, ColorImage};

use super::ReidApp;
use super::action::{Action, CompareOrder, Framing, SplitTab, View};
use crate::backend::Precision;
use crate::demo::{DEMO_BEFORE_WEIGHTS, DEMO_WEIGHTS, bundled};
use crate::eval::QueryOrder;
use crate::inspect::projection::Projection;
use crate::run::{FeatureSource, NetworkSource};

/// Frames the app must stay idle (no job, no image being decoded) before a step goes on.
const SETTLE_FRAMES: usize = 4;
/// Pixels scrolled per frame in the gallery-scrolling phase.
const SCROLL_PER_FRAME: f32 = 120.0;
/// Frames of each measured phase.
const MEASURED_FRAMES: usize = 400;

/// What a tour does.
#[derive(Debug, Clone)]
enum Goal {
    /// Write `queries.png`, `actmaps.png`, `browser.png`, `metrics.png`, `compare.png`,
    /// `drift.png`, `embedding.png` and `training.png` into the folder.
    Screenshots(PathBuf),
    /// Measure frame times and write them as JSON to the file.
    Frames(PathBuf),
}

/// One step of a tour.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Wait until nothing is running or loading.
    Settle,
    /// Ask the app for what it should show next.
    Setup(fn(&ReidApp) -> Vec<Action>),
    /// Save a screenshot under this name.
    Capture(&'static str),
    /// Record the time since the app started under this name.
    Mark(&'static str),
    /// Drive `MEASURED_FRAMES` frames, asking for a change before each.
    Measure(&'static str, fn(&ReidApp, usize) -> Option<Action>),
    /// Write the measurements and close the window.
    Finish,
}

/// Frame times of one measured phase.
#[derive(Debug, Clone, Default)]
struct Phase {
    name: &'static str,
    /// The app's own work per frame (`ui`).
    ui: Vec<Duration>,
    /// eframe's CPU time per frame: `ui`, tessellation and GPU command recording, without
    /// waiting for the GPU (or a software rasteriser) to present.
    cpu: Vec<Duration>,
    /// Time between frame starts: everything, including rendering.
    interval: Vec<Duration>,
}

/// A scripted walk through the app.
#[derive(Debug, Clone)]
pub struct Tour {
    goal: Goal,
    steps: Vec<Step>,
    step: usize,
    idle_frames: usize,
    frame_in_step: usize,
    last_frame: Option<Instant>,
    shot: Arc<Mutex<Option<Arc<ColorImage>>>>,
    requested: bool,
    marks: Vec<(&'static str, f64)>,
    phases: Vec<Phase>,
    failed: Vec<String>,
}

impl Tour {
    fn new(goal: Goal, steps: Vec<Step>) -> Tour {
        Tour {
            goal,
            steps,
            step: 0,
            idle_frames: 0,
            frame_in_step: 0,
            last_frame: None,
            shot: Arc::default(),
            requested: false,
            marks: Vec::new(),
            phases: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Screenshots of the query view (plain and with activation maps), the dataset, metrics
    /// and compare views (the compare view against a run of the network before its training on
    /// the demo, which it starts), the drift against the same run in f16 (started too), the
    /// t-SNE embedding map and the demo model's training curves, into `dir`.
    pub fn screenshots(dir: PathBuf) -> Tour {
        use Step::*;
        Tour::new(
            Goal::Screenshots(dir),
            vec![
                Settle,
                Setup(show_worst_query),
                Settle,
                Capture("queries"),
                Setup(|_| vec![Action::ShowActivationMaps(true)]),
                Settle,
                Capture("actmaps"),
                Setup(|_| vec![Action::ShowActivationMaps(false)]),
                Setup(show_query_identity),
                Settle,
                Capture("browser"),
                Setup(start_before_run),
                Settle,
                Setup(|_| vec![Action::Show(View::Metrics)]),
                Settle,
                Capture("metrics"),
                Setup(show_compare),
                Settle,
                Capture("compare"),
                Setup(start_f16_run),
                Settle,
                Setup(show_drift),
                Settle,
                Capture("drift"),
                Setup(|_| vec![Action::EmbeddingLayout(Projection::Tsne)]),
                Settle,
                Capture("embedding"),
                Setup(|_| {
                    let history = bundled("docs/demo/train_history.csv");
                    vec![Action::OpenTrainingFolder(history)]
                }),
                Settle,
                Capture("training"),
                Finish,
            ],
        )
    }

    /// Frame times while scrolling the gallery grid and switching queries; JSON into `out`.
    pub fn frames(out: PathBuf) -> Tour {
        use Step::*;
        Tour::new(
            Goal::Frames(out),
            vec![
                Settle,
                Mark("first_ranked_list_s"),
                Setup(show_gallery),
                Settle,
                Measure("scroll_gallery", scroll_gallery),
                Measure("jump_through_gallery", jump_through_gallery),
                Setup(|_| vec![Action::Show(View::Queries)]),
                Measure("switch_queries", switch_queries),
                Setup(|_| vec![Action::Show(View::Metrics)]),
                Measure("metrics_view", |_, _| None),
                Setup(|_| vec![Action::EmbeddingLayout(Projection::Pca)]),
                Settle,
                Measure("embedding_pan_zoom", pan_and_zoom_embedding),
                Finish,
            ],
        )
    }
}

fn show_worst_query(app: &ReidApp) -> Vec<Action> {
    let mut actions = vec![
        Action::Show(View::Queries),
        Action::SortQueries(QueryOrder::WorstFirst),
        Action::TopK(20),
    ];
    if let Some(entry) = app.current_run() {
        // The lowest AP among the queries that have a true match in the gallery.
        let run = &entry.run;
        if let Some(&q) = run.evaluation.worst_first().first() {
            actions.push(Action::SelectQuery(q));
        }
    }
    actions
}

fn show_gallery(_: &ReidApp) -> Vec<Action> {
    vec![Action::Browse {
        split: SplitTab::Gallery,
        pid: String::new(),
        selected: None,
    }]
}

/// The gallery images of the shown query's identity, the first one opened.
fn show_query_identity(app: &ReidApp) -> Vec<Action> {
    let Some(entry) = app.current_run() else {
        return show_gallery(app);
    };
    let pid = entry.run.queries[app.queries.selected].pid;
    let gallery = &entry.run.dataset.split.gallery;
    vec![Action::Browse {
        split: SplitTab::Gallery,
        pid: pid.to_string(),
        selected: gallery.iter().position(|s| s.pid == pid),
    }]
}

/// A run of the current one's network with the weights it had before training on the demo
/// (the ImageNet MobileNetV2), or of colour histograms for any other network.
fn start_before_run(app: &ReidApp) -> Vec<Action> {
    let Some(entry) = app.current_run() else {
        return Vec::new();
    };
    let mut spec = entry.run.spec.clone();
    spec.source = match &spec.source {
        FeatureSource::Network(net) if net.weights == bundled(DEMO_WEIGHTS) => {
            FeatureSource::Network(NetworkSource {
                weights: bundled(DEMO_BEFORE_WEIGHTS),
                ..net.clone()
            })
        }
        _ => FeatureSource::ColourHistogram,
    };
    vec![Action::Start(spec)]
}

fn show_compare(_: &ReidApp) -> Vec<Action> {
    vec![Action::Compare {
        a: 1,
        b: 0,
        order: CompareOrder::GainsFirst,
    }]
}

/// The first run (the bundled model) again in f16.
fn start_f16_run(app: &ReidApp) -> Vec<Action> {
    app.runs
        .first()
        .and_then(|entry| entry.run.spec.in_precision(Precision::F16))
        .map(Action::Start)
        .into_iter()
        .collect()
}

/// The first run against its f16 twin (the last run), queries by drift.
fn show_drift(app: &ReidApp) -> Vec<Action> {
    vec![Action::Compare {
        a: 0,
        b: app.runs.len().saturating_sub(1),
        order: CompareOrder::DriftFirst,
    }]
}

/// Zooms in and out while circling the layout's centre.
fn pan_and_zoom_embedding(_: &ReidApp, frame: usize) -> Option<Action> {
    let angle = frame as f32 * 0.05;
    Some(Action::FrameEmbedding(Framing {
        centre: [0.5 + 0.2 * angle.cos(), 0.5 + 0.2 * angle.sin()],
        zoom: 1.0 + 3.0 * (0.5 + 0.5 * (angle * 0.3).sin()),
    }))
}

fn scroll_gallery(_: &ReidApp, frame: usize) -> Option<Action> {
    Some(Action::ScrollBrowser(frame as f32 * SCROLL_PER_FRAME))
}

fn jump_through_gallery(_: &ReidApp, frame: usize) -> Option<Action> {
    // A different far-away place every frame (golden-ratio steps over ~400k pixels).
    let place = (frame as f64 * 0.618_033_988_75).fract() as f32;
    Some(Action::ScrollBrowser(place * 400_000.0))
}

fn switch_queries(app: &ReidApp, frame: usize) -> Option<Action> {
    let queries = app.current_run()?.run.queries.len();
    Some(Action::SelectQuery(frame % queries.max(1)))
}

impl ReidApp {
    /// Advances the tour by one frame (called at the end of each frame).
    pub(super) fn tour_step(
        &mut self,
        ctx: &egui::Context,
        frame_start: Instant,
        previous_frame_cpu: Option<f32>,
    ) {
        let Some(mut tour) = self.tour.take() else {
            return;
        };
        ctx.request_repaint();
        let now = Instant::now();
        let interval = tour.last_frame.map(|t| frame_start - t);
        tour.last_frame = Some(frame_start);
        match tour.steps.get(tour.step).copied().unwrap_or(Step::Finish) {
            Step::Settle => {
                let idle = self.job.is_none()
                    && self.dataset_job.is_none()
                    && !self.runs.is_empty()
                    && self.thumbs.in_flight() == 0
                    && !self.embedding.computing();
                tour.idle_frames = if idle { tour.idle_frames + 1 } else { 0 };
                if tour.idle_frames >= SETTLE_FRAMES {
                    tour.next();
                }
            }
            Step::Setup(setup) => {
                for action in setup(self) {
                    self.apply(ctx, action);
                }
                tour.next();
            }
            Step::Mark(name) => {
                tour.marks.push((name, (now - self.started).as_secs_f64()));
                tour.next();
            }
            Step::Capture(name) => tour.capture(ctx, name),
            Step::Measure(name, drive) => {
                if tour.frame_in_step == 0 {
                    tour.phases.push(Phase {
                        name,
                        ..Phase::default()
                    });
                } else if let Some(phase) = tour.phases.last_mut() {
                    // The frame just drawn was driven by the previous call.
                    phase.ui.push(now - frame_start);
                    phase.interval.extend(interval);
                    if tour.frame_in_step > 1 {
                        // eframe reports the CPU time of the frame before this one.
                        phase
                            .cpu
                            .extend(previous_frame_cpu.map(Duration::from_secs_f32));
                    }
                }
                if tour.frame_in_step == MEASURED_FRAMES {
                    tour.next();
                } else {
                    if let Some(action) = drive(self, tour.frame_in_step) {
                        self.apply(ctx, action);
                    }
                    tour.frame_in_step += 1;
                }
            }
            Step::Finish => {
                tour.finish(self);
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                return;
            }
        }
        self.tour = Some(tour);
    }
}

impl Tour {
    fn next(&mut self) {
        self.step += 1;
        self.idle_frames = 0;
        self.frame_in_step = 0;
        self.requested = false;
    }

    fn capture(&mut self, ctx: &egui::Context, name: &'static str) {
        let Goal::Screenshots(dir) = &self.goal else {
            self.next();
            return;
        };
        if !self.requested {
            let slot = Arc::clone(&self.shot);
            let repaint = ctx.clone();
            ctx.request_screenshot(move |image| {
                *slot.lock().expect("screenshot slot poisoned") = Some(image);
                repaint.request_repaint();
            });
            self.requested = true;
            return;
        }
        let Some(image) = self.shot.lock().expect("screenshot slot poisoned").take() else {
            return;
        };
        let path = dir.join(format!("{name}.png"));
        if let Err(e) = save_png(&image, &path) {
            self.failed.push(format!("{}: {e}", path.display()));
        } else {
            eprintln!("wrote {}", path.display());
        }
        self.next();
    }

    fn finish(&mut self, app: &ReidApp) {
        for message in app.messages.iter().filter(|(error, _)| *error) {
            self.failed.push(message.1.clone());
        }
        if let Goal::Frames(out) = &self.goal {
            let report = frame_report(self, app);
            let text = serde_json::to_string_pretty(&report).expect("JSON of plain values");
            eprintln!("{text}");
            if let Err(e) = std::fs::write(out, text) {
                self.failed.push(format!("{}: {e}", out.display()));
            }
        }
        for failure in &self.failed {
            eprintln!("error: {failure}");
        }
        if !self.failed.is_empty() {
            // The tour is a script: a failed step must fail the process that ran it.
            std::process::exit(1);
        }
    }
}

fn save_png(image: &ColorImage, path: &std::path::Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let [w, h] = image.size;
    let rgba = ::image::RgbaImage::from_raw(w as u32, h as u32, image.as_raw().to_vec())
        .ok_or("screenshot has fewer pixels than its size")?;
    // Opaque pixels: drop the alpha channel.
    ::image::DynamicImage::ImageRgba8(rgba)
        .to_rgb8()
        .save(path)
        .map_err(|e| e.to_string())
}

/// Milliseconds: mean, median, 99th percentile, maximum, and frames over 33 ms.
fn summary(durations: &[Duration]) -> serde_json::Value {
    let mut ms: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| {
        ms.get(((ms.len() as f64 - 1.0) * p).round() as usize)
            .copied()
    };
    serde_json::json!({
        "frames": ms.len(),
        "mean_ms": ms.iter().sum::<f64>() / ms.len().max(1) as f64,
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": ms.last(),
        "over_33_ms": ms.iter().filter(|&&v| v > 33.0).count(),
    })
}

fn frame_report(tour: &Tour, app: &ReidApp) -> serde_json::Value {
    let run = app.current_run();
    let phases: Vec<serde_json::Value> = tour
        .phases
        .iter()
        .map(|p| {
            serde_json::json!({
                "phase": p.name,
                "ui_thread": summary(&p.ui),
                "frame_cpu": summary(&p.cpu),
                "frame_interval": summary(&p.interval),
            })
        })
        .collect();
    let marks: serde_json::Map<String, serde_json::Value> = tour
        .marks
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect();
    serde_json::json!({
        "run": run.map(|r| r.name.clone()),
        "gallery_images": run.map(|r| r.run.gallery.len()),
        "queries": run.map(|r| r.run.queries.len()),
        "marks": marks,
        "phases": phases,
    })
}
