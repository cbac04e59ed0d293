//! What the views, the scripted tours and the tests ask the app to do, and the views there
//! are. The app applies an [`Action`] in one place; no view changes another view's state.

use std::path::PathBuf;

use crate::backend::Precision;
use crate::data::{Dataset, Sample};
use crate::eval::{Metric, QueryOrder};
use crate::inspect::projection::Projection;
use crate::run::RunSpec;
use crate::train::TrainSettings;

/// The views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Query list and ranked lists.
    Queries,
    /// Dataset browser.
    Browser,
    /// CMC chart, metrics table, histograms.
    Metrics,
    /// Two runs side by side.
    Compare,
    /// The run's features laid out in 2-D.
    Embedding,
    /// Training runs and their curves.
    Training,
}

impl View {
    /// Every view, in the order of the header's tabs.
    pub const ALL: [View; 6] = [
        View::Queries,
        View::Browser,
        View::Metrics,
        View::Compare,
        View::Embedding,
        View::Training,
    ];

    /// The tab's name.
    pub fn name(self) -> &'static str {
        match self {
            View::Queries => "Queries",
            View::Browser => "Dataset",
            View::Metrics => "Metrics",
            View::Compare => "Compare",
            View::Embedding => "Embedding",
            View::Training => "Train",
        }
    }

    /// The tab's tooltip.
    pub fn hint(self) -> &'static str {
        match self {
            View::Queries => "Each query's ranked gallery: green = same person, red = someone else",
            View::Browser => "Every image of the dataset, by split, with filters",
            View::Metrics => "CMC curves, rank-k / mAP / mINP of every run, distance histograms",
            View::Compare => "Two runs on the same queries: what changed",
            View::Embedding => {
                "Every query and gallery image as a point: the features laid out in 2-D (PCA, t-SNE)"
            }
            View::Training => "Train a model on the dataset's train split and follow its curves",
        }
    }
}

/// The part of the layout on screen: `centre` in layout fractions (0..1 on each axis) and
/// the magnification over the fitted view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Framing {
    /// Layout point at the centre of the map, as fractions of the layout's extent.
    pub centre: [f32; 2],
    /// Magnification (1: the whole layout fits).
    pub zoom: f32,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            centre: [0.5, 0.5],
            zoom: 1.0,
        }
    }
}

/// How the compare view orders its queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOrder {
    /// Largest AP loss (B − A) first.
    LossesFirst,
    /// Largest AP gain first.
    GainsFirst,
    /// Largest feature drift first (one network over the same images in both runs).
    DriftFirst,
}

/// A split of the dataset, as the browser's tabs show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SplitTab {
    /// Query images.
    Query,
    /// Gallery images.
    Gallery,
    /// Training images.
    Train,
}

impl SplitTab {
    /// The split's samples in `dataset`.
    pub fn samples(self, dataset: &Dataset) -> &[Sample] {
        match self {
            SplitTab::Query => &dataset.split.query,
            SplitTab::Gallery => &dataset.split.gallery,
            SplitTab::Train => &dataset.split.train,
        }
    }
}

/// What the app is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start (or select, if it already finished) a run.
    Start(RunSpec),
    /// Stop the running job.
    Cancel,
    /// Use another dataset folder.
    OpenDataset(PathBuf),
    /// Score the current run's features again with another distance.
    Reevaluate {
        /// Distance.
        metric: Metric,
        /// k-reciprocal re-ranking.
        rerank: bool,
    },
    /// Rank the current gallery for an image from outside the dataset.
    ExternalQuery(PathBuf),
    /// Back from an external query to the dataset's queries.
    CloseExternal,
    /// Start the current run again in this precision (f16 on a wgpu adapter), to compare the
    /// two.
    StartInPrecision(Precision),
    /// Start training (each evaluated epoch then joins the run list).
    StartTraining(Box<TrainSettings>),
    /// Stop the training run after its current step.
    CancelTraining,
    /// Show the curves of a finished training run from its folder's `history.csv` (or from
    /// such a file).
    OpenTrainingFolder(PathBuf),
    /// Write the current run's report folder (as `eval --out` does) into this folder.
    ExportReport(PathBuf),
    /// Write the current run's network to this file, as `reidscope export` does (the
    /// extension picks the format).
    ExportModel {
        /// The file.
        path: PathBuf,
        /// Precision of the stored parameters.
        precision: Precision,
    },
    /// Show a view.
    Show(View),
    /// Draw every image as its activation-map overlay from the current run's network (or
    /// plain again).
    ShowActivationMaps(bool),
    /// Order the query list.
    SortQueries(QueryOrder),
    /// Select a query and scroll the list to it.
    SelectQuery(usize),
    /// Show a query in the query view.
    OpenQuery(usize),
    /// Show an image of a split in the dataset browser, filtered to its identity.
    OpenImage(SplitTab, PathBuf),
    /// Lay the embedding view's points out this way.
    EmbeddingLayout(Projection),
    /// Show this part of the embedding view's layout.
    FrameEmbedding(Framing),
    /// Gallery entries shown per ranked list.
    TopK(usize),
    /// Show a split of the dataset in the browser, filtered to an identity (empty: all), with
    /// one of its images opened.
    Browse {
        /// The split.
        split: SplitTab,
        /// Identity filter.
        pid: String,
        /// Opened image (index into the split).
        selected: Option<usize>,
    },
    /// Scroll the browser's grid to this offset (points).
    ScrollBrowser(f32),
    /// Compare run `a` with run `b` (indices in the run list).
    Compare {
        /// First run.
        a: usize,
        /// Second run.
        b: usize,
        /// How the queries are ordered.
        order: CompareOrder,
    },
    /// Write the compare view's comparison (metrics of both runs, top-1 changes, AP and
    /// feature drift per query) to this JSON file.
    ExportComparison(PathBuf),
}
