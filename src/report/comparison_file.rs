//! The comparison of two runs as JSON: both runs' metrics, the top-1 changes, the AP
//! difference, and, for one network in two precisions, the feature drift per query.

use std::path::Path;

use serde::Serialize;

use super::MetricsFile;
use crate::eval::compare::Comparison;
use crate::eval::drift::FeatureDrift;

/// What a comparison export holds.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonFile {
    /// The first run's metrics.
    pub a: MetricsFile,
    /// The second run's metrics.
    pub b: MetricsFile,
    /// mAP of b minus mAP of a.
    #[serde(rename = "mAP_diff")]
    pub map_diff: f64,
    /// Rank-1 of b minus rank-1 of a.
    pub rank1_diff: f64,
    /// Queries whose top-1 was a true match in a and is not in b.
    pub lost_top1: usize,
    /// Queries whose top-1 is a true match in b and was not in a.
    pub gained_top1: usize,
    /// Queries whose top-1 gallery image differs.
    pub changed_top1: usize,
    /// Mean per-query AP difference (b − a) over scored queries.
    pub mean_ap_diff: f64,
    /// The query images, in query order.
    pub queries: Vec<String>,
    /// AP of b minus AP of a per query (`null` where a query is not scored).
    pub ap_diff: Vec<Option<f64>>,
    /// The feature drift, when both runs are one network over the same images.
    pub drift: Option<DriftSummary>,
}

/// The feature drift in a comparison export.
#[derive(Debug, Clone, Serialize)]
pub struct DriftSummary {
    /// The largest `1 − cos` over the queries.
    pub max: f64,
    /// The mean `1 − cos`.
    pub mean: f64,
    /// `1 − cos` per query, in query order.
    pub per_query: Vec<f64>,
}

impl ComparisonFile {
    /// The export of `comparison` between runs with metrics `a` and `b` over `queries`.
    pub fn new(
        (a, b): (&MetricsFile, &MetricsFile),
        comparison: &Comparison,
        drift: Option<&FeatureDrift>,
        queries: Vec<String>,
    ) -> ComparisonFile {
        ComparisonFile {
            a: a.clone(),
            b: b.clone(),
            map_diff: b.map - a.map,
            rank1_diff: b.rank(1) - a.rank(1),
            lost_top1: comparison.lost_top1,
            gained_top1: comparison.gained_top1,
            changed_top1: comparison.changed_top1,
            mean_ap_diff: comparison.mean_ap_diff,
            queries,
            ap_diff: comparison.ap_diff.clone(),
            drift: drift.map(|d| DriftSummary {
                max: d.max,
                mean: d.mean,
                per_query: d.per_query.clone(),
            }),
        }
    }

    /// Writes the file as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        crate::io::write_atomic(path, |w| {
            serde_json::to_writer_pretty(&mut *w, self)?;
            Ok(())
        })
    }
}
