//! Result files of an evaluation: metrics JSON, per-query CSV, CMC plots, ranked-list figures;
//! activation-map figures.

pub mod actmap_figure;
pub mod chart;
pub mod cmc_plot;
mod figure;
pub mod font;
mod metrics_file;
pub mod palette;
pub mod ranklist;

pub use metrics_file::{MetricsFile, write_per_query_csv};
