//! Result files of an evaluation: metrics JSON, per-query CSV, CMC plots, ranked-list figures;
//! activation-map figures; the comparison of two runs.

pub mod actmap_figure;
pub mod chart;
pub mod cmc_plot;
pub mod comparison_file;
mod figure;
pub mod font;
mod metrics_file;
pub mod palette;
pub mod ranklist;

pub use metrics_file::{MetricsFile, write_per_query_csv};
