//! The desktop app (eframe/egui): a thin front end over the library. The app owns the
//! state; each view is a module that borrows it and draws; runs, external queries and image
//! decoding happen on other threads.

mod action;
mod browser;
mod choice;
mod compare_view;
mod dialogs;
mod embedding_view;
mod format;
mod jobs;
mod keys;
mod metrics_view;
mod query_view;
mod run_form;
mod theme;
mod thumbnails;
mod tiles;
mod tour;
mod train_view;
mod training;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use eframe::egui::{
    self, FontData, FontFamily, FontInsert, FontPriority, InsertFontFamily, RichText, Ui,
};

use crate::data::{Dataset, DatasetKind};
use crate::eval::RerankParams;
use crate::export::ExportSettings;
use crate::report::comparison_file::ComparisonFile;
use crate::report::font::FONT;
use crate::run::{FeatureSource, RunSpec};
use crate::train::checkpoint::checkpoint_path;
use crate::train::history::read_history;

use browser::Browser;
use choice::choice;
use compare_view::CompareView;
use embedding_view::EmbeddingView;
use jobs::{ExternalQuery, Job, Outcome, RunEntry, Work};
use metrics_view::MetricsView;
use query_view::QueryView;
use run_form::RunForm;
use thumbnails::Thumbnails;
use train_view::TrainView;
use training::Training;

use format::file_name;

pub use action::{Action, CompareOrder, SplitTab, View};
pub use tour::Tour;

/// Textures kept uploaded at most.
const TEXTURE_CAPACITY: usize = 3000;

/// How the app starts.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The run started on the first frame.
    pub spec: RunSpec,
    /// A scripted walk through the views (screenshots or frame-time measurement).
    pub tour: Option<Tour>,
}

/// The app.
pub struct ReidApp {
    form: RunForm,
    runs: Vec<Arc<RunEntry>>,
    current: Option<usize>,
    job: Option<Job>,
    dataset_job: Option<Job>,
    dataset: Option<(u64, Arc<Dataset>)>,
    generation: u64,
    view: View,
    browser: Browser,
    queries: QueryView,
    metrics: MetricsView,
    compare: CompareView,
    embedding: EmbeddingView,
    train_view: TrainView,
    training: Option<Training>,
    /// Runs waiting for the job slot: the evaluated epochs of a training run.
    pending_runs: VecDeque<RunSpec>,
    thumbs: Thumbnails,
    /// Images are drawn as activation-map overlays of the current run's network.
    actmaps: bool,
    external: Option<ExternalQuery>,
    messages: Vec<(bool, String)>,
    tour: Option<Tour>,
    requested: Vec<Action>,
    started: Instant,
}

impl ReidApp {
    /// Creates the app and starts its first run.
    pub fn new(ctx: &egui::Context, options: AppOptions) -> ReidApp {
        // Arrows, Greek letters and symbols beyond egui's default fonts.
        ctx.add_font(FontInsert::new(
            "DejaVu Sans",
            FontData::from_static(FONT),
            [FontFamily::Proportional, FontFamily::Monospace]
                .into_iter()
                .map(|family| InsertFontFamily {
                    family,
                    priority: FontPriority::Lowest,
                })
                .collect(),
        ));
        // As many image workers as the thread pool has threads (`--threads`), up to 8.
        let workers = rayon::current_num_threads().clamp(1, 8);
        let mut app = ReidApp {
            form: RunForm::from_spec(&options.spec),
            runs: Vec::new(),
            current: None,
            job: None,
            dataset_job: None,
            dataset: None,
            generation: 0,
            view: View::Queries,
            browser: Browser::default(),
            queries: QueryView::default(),
            metrics: MetricsView::default(),
            compare: CompareView::default(),
            embedding: EmbeddingView::default(),
            train_view: TrainView::default(),
            training: None,
            pending_runs: VecDeque::new(),
            thumbs: Thumbnails::new(ctx, workers, TEXTURE_CAPACITY),
            actmaps: false,
            external: None,
            messages: Vec::new(),
            tour: options.tour,
            requested: Vec::new(),
            started: Instant::now(),
        };
        app.load_dataset(ctx, &options.spec);
        app.apply(ctx, Action::Start(options.spec));
        app
    }

    /// Asks the app to do `action` at the start of the next frame.
    pub fn request(&mut self, action: Action) {
        self.requested.push(action);
    }

    /// The run shown by the views.
    fn current_run(&self) -> Option<&Arc<RunEntry>> {
        self.current.and_then(|i| self.runs.get(i))
    }

    fn error(&mut self, text: impl Into<String>) {
        self.message(true, text.into());
    }

    /// Shows `text` until dismissed (once, however often it is reported).
    fn message(&mut self, is_error: bool, text: String) {
        if !self.messages.iter().any(|(_, t)| *t == text) {
            self.messages.push((is_error, text));
        }
    }

    fn load_dataset(&mut self, ctx: &egui::Context, spec: &RunSpec) {
        self.dataset_job = Some(Job::start(
            ctx,
            "dataset".into(),
            Work::Dataset(spec.clone()),
        ));
    }

    fn apply(&mut self, ctx: &egui::Context, action: Action) {
        match action {
            Action::Start(spec) => self.start(ctx, spec),
            Action::Cancel => {
                if let Some(job) = &self.job {
                    job.cancel();
                }
            }
            Action::OpenDataset(dir) => {
                if self.form.root != dir {
                    self.form.root = dir;
                    self.form.kind = DatasetKind::Auto;
                }
                self.load_dataset(ctx, &self.form.spec());
                self.view = View::Browser;
            }
            Action::Reevaluate { metric, rerank } => {
                let Some(entry) = self.current_run() else {
                    return;
                };
                let mut spec = entry.run.spec.clone();
                spec.eval.metric = metric;
                spec.eval.rerank = rerank.then(RerankParams::default);
                self.form.metric = metric;
                self.form.rerank = rerank;
                self.start(ctx, spec);
            }
            Action::ExternalQuery(image) => {
                let Some((index, run)) = self.current.zip(self.current_run().cloned()) else {
                    self.error("Finish a run first: an image is ranked against a run's gallery.");
                    return;
                };
                if self.job.is_some() {
                    self.error("Wait for the running job to finish (or cancel it) first.");
                    return;
                }
                let title = format!("query {}", file_name(&image));
                self.job = Some(Job::start(ctx, title, Work::External { run, index, image }));
                self.view = View::Queries;
            }
            Action::CloseExternal => self.external = None,
            Action::ExportReport(dir) => {
                let Some(run) = self.current_run().cloned() else {
                    self.error("Finish a run first: a report is written for a run.");
                    return;
                };
                if self.job.is_some() {
                    self.error("Wait for the running job to finish (or cancel it) first.");
                    return;
                }
                let title = format!("report {}", dir.display());
                self.job = Some(Job::start(ctx, title, Work::Report { run, dir }));
            }
            Action::ExportModel { path, precision } => {
                let Some(run) = self.current_run().cloned() else {
                    self.error("Finish a run first: the model of the current run is exported.");
                    return;
                };
                let spec = &run.run.spec;
                let FeatureSource::Network(network) = &spec.source else {
                    self.error("The current run uses the colour histogram: it has no model.");
                    return;
                };
                if self.job.is_some() {
                    self.error("Wait for the running job to finish (or cancel it) first.");
                    return;
                }
                let work = Work::ExportModel {
                    network: network.clone(),
                    settings: ExportSettings {
                        precision,
                        input: spec.preprocess,
                    },
                    path,
                };
                self.job = Some(Job::start(ctx, "export".into(), work));
            }
            Action::Show(view) => self.view = view,
            Action::ShowActivationMaps(on) => self.actmaps = on,
            Action::SortQueries(order) => self.queries.sort = order,
            Action::SelectQuery(q) => self.queries.select(q),
            Action::OpenQuery(q) => {
                self.queries.select(q);
                self.external = None;
                self.view = View::Queries;
            }
            Action::OpenImage(split, path) => {
                let Some((_, dataset)) = &self.dataset else {
                    return;
                };
                let samples = split.samples(dataset);
                if let Some(index) = samples.iter().position(|s| s.path == path) {
                    let pid = samples[index].pid.to_string();
                    self.apply(
                        ctx,
                        Action::Browse {
                            split,
                            pid,
                            selected: Some(index),
                        },
                    );
                }
            }
            Action::EmbeddingLayout(projection) => {
                self.view = View::Embedding;
                self.embedding.projection = projection;
            }
            Action::FrameEmbedding(framing) => self.embedding.framing = framing,
            Action::StartTraining(settings) => {
                if self.training.as_ref().is_some_and(Training::running) {
                    self.error("A training run is under way; cancel it or wait for it to end.");
                    return;
                }
                self.train_view.opened = None;
                self.training = Some(Training::start(ctx, *settings));
                self.view = View::Training;
            }
            Action::CancelTraining => {
                if let Some(training) = &self.training {
                    training.cancel();
                }
            }
            Action::OpenTrainingFolder(dir) => match read_history(&history_file(&dir)) {
                Ok(history) => {
                    if !self.training.as_ref().is_some_and(Training::running) {
                        self.training = None;
                    }
                    self.train_view.opened = Some((dir, history));
                    self.view = View::Training;
                }
                Err(e) => self.error(e),
            },
            Action::TopK(k) => self.queries.k = k,
            Action::Browse {
                split,
                pid,
                selected,
            } => {
                self.view = View::Browser;
                self.browser.split = split;
                self.browser.pid = pid;
                self.browser.selected = selected;
            }
            Action::ScrollBrowser(offset) => self.browser.scroll_to = Some(offset),
            Action::Compare { a, b, order } => {
                self.view = View::Compare;
                self.compare.a = a;
                self.compare.b = b;
                self.compare.order = order;
                self.compare.selected = None;
            }
            Action::StartInPrecision(precision) => {
                let spec = self
                    .current_run()
                    .and_then(|entry| entry.run.spec.in_precision(precision));
                match spec {
                    Some(spec) => {
                        self.view = View::Compare;
                        self.start(ctx, spec);
                    }
                    None => {
                        self.error("The current run has no network to run in another precision.")
                    }
                }
            }
            Action::ExportComparison(path) => {
                let runs = (self.runs.get(self.compare.a), self.runs.get(self.compare.b));
                let (Some(a), Some(b)) = runs else {
                    self.error("Finish two runs first: a comparison needs both.");
                    return;
                };
                if !a.run.same_split(&b.run) {
                    self.error("These runs are on different query or gallery sets.");
                    return;
                }
                let (comparison, drift) = a.compare(b);
                let queries = a
                    .run
                    .queries
                    .iter()
                    .map(|s| s.path.display().to_string())
                    .collect();
                let file = ComparisonFile::new(
                    (&a.run.metrics, &b.run.metrics),
                    &comparison,
                    drift.as_ref(),
                    queries,
                );
                match file.write(&path) {
                    Ok(()) => {
                        self.message(false, format!("Comparison written to {}", path.display()))
                    }
                    Err(e) => self.error(format!("cannot write {}: {e}", path.display())),
                }
            }
        }
    }

    fn start(&mut self, ctx: &egui::Context, spec: RunSpec) {
        if let Some(done) = self.runs.iter().position(|r| r.run.spec == spec) {
            self.select_run(done);
            return;
        }
        if self.job.is_some() {
            self.error("A job is already running; cancel it or wait for it to finish.");
            return;
        }
        let title = spec.source.label();
        self.job = Some(Job::start(ctx, title, Work::Run(spec)));
    }

    fn select_run(&mut self, index: usize) {
        if self.current.is_none() {
            // First run: open on the top of the query list (the worst query by default).
            let run = &self.runs[index].run;
            let order = run.evaluation.ordered(self.queries.sort, &run.query_labels);
            if let Some(&q) = order.first() {
                self.queries.select(q);
            }
        }
        if let Some(previous) = self.current.filter(|&p| p != index) {
            let same = self.runs[previous].run.same_split(&self.runs[index].run);
            if same {
                self.compare.a = previous;
                self.compare.b = index;
            } else {
                // Another query set: the selection means nothing there.
                self.queries.select(0);
            }
        }
        self.current = Some(index);
        // The browser keeps its dataset (and filter results) when the run read the same one.
        let run_dataset = &self.runs[index].run.dataset;
        let shown = self.dataset.as_ref().map(|(_, d)| d);
        if shown.is_none_or(|d| d.root != run_dataset.root || d.split != run_dataset.split) {
            self.generation += 1;
            self.dataset = Some((self.generation, Arc::new(run_dataset.clone())));
        }
        self.external = None;
    }

    /// Queues a run of each newly evaluated training epoch, and starts the next queued run
    /// when the job slot is free.
    fn collect_training(&mut self, ctx: &egui::Context) {
        if let Some(training) = &mut self.training {
            for epoch in training.new_evaluations() {
                let settings = &training.settings;
                let mut spec = settings.evaluation_spec(checkpoint_path(&settings.out, epoch));
                spec.cache = self.form.cache.clone();
                self.pending_runs.push_back(spec);
            }
        }
        if self.job.is_none()
            && let Some(spec) = self.pending_runs.pop_front()
        {
            self.start(ctx, spec);
        }
    }

    /// Takes the results of finished jobs.
    fn collect_jobs(&mut self) {
        if let Some(result) = self.dataset_job.as_ref().and_then(Job::finished) {
            self.dataset_job = None;
            match result {
                Ok(Outcome::Dataset(dataset)) => {
                    self.generation += 1;
                    self.dataset = Some((self.generation, Arc::from(dataset)));
                }
                Ok(_) => {}
                Err(e) => self.error(e),
            }
        }
        let Some(result) = self.job.as_ref().and_then(Job::finished) else {
            return;
        };
        let cancelled = self.job.take().is_some_and(|job| job.cancelling());
        match result {
            Ok(Outcome::Run(entry)) => {
                let skipped = entry.run.skipped.len();
                if skipped > 0 {
                    let first = entry.run.skipped[0].to_string();
                    self.message(
                        false,
                        format!("{skipped} unreadable images were skipped, e.g. {first}"),
                    );
                }
                self.runs.push(Arc::from(entry));
                self.select_run(self.runs.len() - 1);
            }
            Ok(Outcome::External(external)) => self.external = Some(external),
            Ok(Outcome::Dataset(_)) => {}
            Ok(Outcome::Report(dir)) => {
                self.message(false, format!("Report written to {}", dir.display()))
            }
            Ok(Outcome::Exported(path)) => {
                self.message(false, format!("Model written to {}", path.display()))
            }
            Err(_) if cancelled => self.message(
                false,
                "Run cancelled; finished feature-cache chunks (1024 images each) are kept for the next run.".into(),
            ),
            Err(e) => self.error(e),
        }
    }

    /// Folders dropped on the window open a dataset; image files become external queries.
    fn take_dropped(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        for path in dropped {
            if path.is_dir() {
                self.apply(ctx, Action::OpenDataset(path));
            } else if is_image(&path) {
                self.apply(ctx, Action::ExternalQuery(path));
            } else {
                self.error(format!(
                    "{}: drop a dataset folder or an image (.jpg, .jpeg, .png)",
                    path.display()
                ));
            }
        }
    }

    fn header(&mut self, ui: &mut Ui) -> Option<Action> {
        let mut action = None;
        ui.horizontal(|ui| {
            ui.heading(RichText::new("reidscope").strong());
            ui.separator();
            for view in View::ALL {
                ui.selectable_value(&mut self.view, view, view.name())
                    .on_hover_text(view.hint());
            }
            ui.separator();
            if self.runs.is_empty() {
                ui.label(RichText::new("no finished run yet").weak());
            } else {
                let mut selected = self.current.unwrap_or(0);
                let names = self
                    .runs
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (i, e.name.clone()));
                choice(ui, "Run", &mut selected, names, 420.0);
                if Some(selected) != self.current {
                    self.select_run(selected);
                }
                if let Some(entry) = self.current_run() {
                    let mut actmaps = self.actmaps;
                    let hint = if entry.maps.is_some() {
                        "Draw every image with its activation map: where this run's network looks (Torchreid's visualize_actmap)"
                    } else {
                        "The colour histogram has no network to look with"
                    };
                    let toggle = ui
                        .add_enabled(
                            entry.maps.is_some(),
                            egui::Checkbox::new(&mut actmaps, "Activation maps"),
                        )
                        .on_hover_text(hint)
                        .on_disabled_hover_text(hint);
                    if toggle.changed() {
                        action = Some(Action::ShowActivationMaps(actmaps));
                    }
                    ui.label(
                        RichText::new(format!(
                            "{} · {} queries · {} gallery · {:.1} s",
                            entry.run.metrics.summary(),
                            entry.run.queries.len(),
                            entry.run.gallery.len(),
                            entry.elapsed.as_secs_f64()
                        ))
                        .strong(),
                    );
                }
            }
        });
        ui.separator();
        if let Some(a) = run_form::show(ui, &mut self.form, self.job.as_ref()) {
            action = Some(a);
        }
        action
    }

    fn messages(&mut self, ui: &mut Ui) {
        let mut dismissed = None;
        for (i, (is_error, text)) in self.messages.iter().enumerate() {
            ui.horizontal(|ui| {
                if ui.small_button("x").on_hover_text("dismiss").clicked() {
                    dismissed = Some(i);
                }
                let color = if *is_error {
                    theme::ERROR
                } else {
                    theme::NOTICE
                };
                ui.label(RichText::new(text).color(color));
            });
        }
        if let Some(i) = dismissed {
            self.messages.remove(i);
        }
    }

    fn central(&mut self, ui: &mut Ui) -> Option<Action> {
        if self.view == View::Browser {
            match &self.dataset {
                Some((generation, dataset)) => {
                    let dataset = Arc::clone(dataset);
                    self.browser
                        .show(ui, &mut self.thumbs, *generation, &dataset);
                }
                None if self.dataset_job.is_some() => {
                    ui.label("Reading the dataset…");
                }
                None => {
                    ui.label("Open a dataset folder (top bar) or drop one on the window.");
                }
            }
            return None;
        }
        if self.view == View::Training {
            let dataset = (self.form.kind, self.form.root.clone());
            return self.train_view.show(ui, self.training.as_ref(), dataset);
        }
        let Some(index) = self.current else {
            waiting(ui, self.job.as_ref());
            return None;
        };
        let entry = Arc::clone(&self.runs[index]);
        match self.view {
            View::Queries => {
                let external = self.external.as_ref().filter(|e| e.run == index);
                self.queries
                    .show(ui, &mut self.thumbs, index, &entry, external)
            }
            View::Metrics => self.metrics.show(ui, &self.runs, index),
            View::Compare => self.compare.show(ui, &mut self.thumbs, &self.runs, index),
            View::Embedding => self.embedding.show(
                ui,
                &mut self.thumbs,
                (index, &entry),
                (self.queries.selected, self.queries.k),
            ),
            View::Browser | View::Training => None,
        }
    }
}

/// What the central area shows before the first run has finished.
fn waiting(ui: &mut Ui, job: Option<&Job>) {
    ui.vertical_centered(|ui| {
        ui.add_space(80.0);
        match job {
            Some(job) => {
                let status = job.status();
                ui.heading(format!("Preparing {}", job.title));
                ui.label(&status.stage);
                if let Some(f) = status.fraction() {
                    ui.add(
                        egui::ProgressBar::new(f)
                            .desired_width(400.0)
                            .show_percentage(),
                    );
                } else {
                    ui.spinner();
                }
                ui.label(
                    RichText::new(
                        "Features are cached: the next time this run opens, it takes seconds.",
                    )
                    .weak(),
                );
            }
            None => {
                ui.heading("No run yet");
                ui.label("Choose a dataset, a model and its weights in the top bar, then Run.");
            }
        }
    });
}

/// A training folder's `history.csv`, or `path` itself when it is a file.
fn history_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("history.csv")
    } else {
        path.to_path_buf()
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()))
}

impl eframe::App for ReidApp {
    fn ui(&mut self, ui: &mut Ui, frame: &mut eframe::Frame) {
        let frame_start = Instant::now();
        let ctx = ui.ctx().clone();
        let overlay = self
            .current_run()
            .and_then(|entry| entry.maps.clone())
            .filter(|_| self.actmaps);
        self.thumbs.set_overlay(overlay);
        self.thumbs.begin_frame(&ctx);
        self.collect_jobs();
        self.collect_training(&ctx);
        for action in std::mem::take(&mut self.requested) {
            self.apply(&ctx, action);
        }
        self.take_dropped(&ctx);
        let mut actions = Vec::new();
        egui::Panel::top("header").show(ui, |ui| {
            actions.extend(self.header(ui));
            self.messages(ui);
        });
        egui::CentralPanel::default().show(ui, |ui| actions.extend(self.central(ui)));
        for action in actions {
            self.apply(&ctx, action);
        }
        if self.job.is_some() {
            // Progress comes from another thread; keep the bar moving.
            ctx.request_repaint_after(std::time::Duration::from_millis(250));
        }
        self.tour_step(&ctx, frame_start, frame.info().cpu_usage);
    }
}

/// Opens the app in a window.
pub fn run_native(options: AppOptions) -> Result<(), String> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("reidscope")
            .with_inner_size([1440.0, 900.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "reidscope",
        native,
        Box::new(|cc| Ok(Box::new(ReidApp::new(&cc.egui_ctx, options)))),
    )
    .map_err(|e| e.to_string())
}
