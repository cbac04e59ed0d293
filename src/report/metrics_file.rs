//! `metrics.json` and the per-query CSV.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::eval::{EvalOptions, Evaluation, Label};
use crate::io::{read_text_file, write_atomic};

/// The largest `metrics.json` read (a CMC curve of a million ranks).
const MAX_METRICS_BYTES: u64 = 64 << 20;

/// The contents of `metrics.json`: fractions in [0, 1], CMC from rank 1 to `cmc.len()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsFile {
    /// Mean average precision.
    #[serde(rename = "mAP")]
    pub map: f64,
    /// Mean inverse negative penalty.
    #[serde(rename = "mINP")]
    pub minp: f64,
    /// CMC curve.
    pub cmc: Vec<f64>,
    /// Queries with at least one relevant gallery sample.
    pub num_valid_queries: usize,
    /// All queries.
    pub num_queries: usize,
    /// Gallery samples.
    pub num_gallery: usize,
    /// `euclidean` (squared) or `cosine`.
    pub metric: String,
    /// Features L2-normalised first.
    pub normalize: bool,
    /// `market` or `cuhk03`.
    pub protocol: String,
    /// k-reciprocal re-ranking applied.
    pub rerank: bool,
    /// Average query expansion applied.
    pub aqe: bool,
    /// Free-form label of the run (model, weights, …) shown in plot legends.
    #[serde(default)]
    pub label: String,
}

impl MetricsFile {
    /// Collects the metrics of `evaluation` run with `options`.
    pub fn new(
        evaluation: &Evaluation,
        options: &EvalOptions,
        num_gallery: usize,
        label: String,
    ) -> Self {
        MetricsFile {
            map: evaluation.metrics.map,
            minp: evaluation.metrics.minp,
            cmc: evaluation.metrics.cmc.clone(),
            num_valid_queries: evaluation.metrics.num_valid_queries,
            num_queries: evaluation.per_query.len(),
            num_gallery,
            metric: options.metric.to_string(),
            normalize: options.normalize,
            protocol: options.protocol.to_string(),
            rerank: options.rerank.is_some(),
            aqe: options.aqe,
            label,
        }
    }

    /// CMC at 1-based `rank` (the last value when the curve is shorter).
    pub fn rank(&self, rank: usize) -> f64 {
        self.cmc
            .get(rank.saturating_sub(1))
            .or(self.cmc.last())
            .copied()
            .unwrap_or(0.0)
    }

    /// "R1 48.3% · mAP 31.3% · mINP 7.5%": how the command line and the app sum up a run.
    pub fn summary(&self) -> String {
        format!(
            "R1 {:.1}% · mAP {:.1}% · mINP {:.1}%",
            self.rank(1) * 100.0,
            self.map * 100.0,
            self.minp * 100.0
        )
    }

    /// The summary with rank-5, rank-10 and how many queries were valid, for the command line.
    pub fn long_summary(&self) -> String {
        format!(
            "{} · R5 {:.1}% · R10 {:.1}% ({} of {} queries valid)",
            self.summary(),
            self.rank(5) * 100.0,
            self.rank(10) * 100.0,
            self.num_valid_queries,
            self.num_queries
        )
    }

    /// Writes the file atomically, pretty-printed.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        write_atomic(path, |w| {
            serde_json::to_writer_pretty(&mut *w, self)?;
            writeln!(w)
        })
    }

    /// Reads a file written by [`MetricsFile::write`].
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = read_text_file(path, MAX_METRICS_BYTES)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a reidscope metrics file: {e}", path.display()))
    }
}

/// Writes one line per query: `query,name,pid,camid,ap,inp,first_hit_rank,relevant`
/// (`first_hit_rank` 1-based; AP/mINP/rank empty for queries without a relevant sample).
pub fn write_per_query_csv(
    path: &Path,
    evaluation: &Evaluation,
    queries: &[Label],
    names: Option<&[String]>,
) -> std::io::Result<()> {
    write_atomic(path, |w| {
        writeln!(w, "query,name,pid,camid,ap,inp,first_hit_rank,relevant")?;
        for (q, (outcome, label)) in evaluation.per_query.iter().zip(queries).enumerate() {
            let name = names
                .and_then(|n| n.get(q))
                .map_or(String::new(), |n| quote(n));
            write!(w, "{q},{name},{},{},", label.pid, label.camid)?;
            match outcome {
                Some(o) => writeln!(w, "{},{},{},{}", o.ap, o.inp, o.first_hit + 1, o.relevant)?,
                None => writeln!(w, ",,,0")?,
            }
        }
        Ok(())
    })
}

/// CSV field quoting (RFC 4180) when the value needs it.
fn quote(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}
