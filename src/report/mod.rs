//! Result files of an evaluation: metrics JSON, per-query CSV.

mod metrics_file;

pub use metrics_file::{MetricsFile, write_per_query_csv};
