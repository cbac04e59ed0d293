//! The evaluation pipeline: features → (AQE) → distances (optionally re-ranked), block by block
//! → per-query scores in parallel → metrics of the chosen protocol.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Device;
use rayon::prelude::*;

use super::aqe;
use super::cuhk03::{GalleryGroups, sampled_cmc, sampled_first_hits};
use super::distance::{Metric, PreparedFeatures, normalize_rows};
use super::rank::{EvalError, Label, Metrics, QueryOutcome, aggregate, score_row};
use super::rerank::{RerankParams, Reranker};

/// Distance values held at once while scoring (one block of query rows).
const BLOCK_VALUES: usize = 1 << 24;

/// Evaluation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Market-1501: every non-junk gallery image counts.
    #[default]
    Market,
    /// CUHK03 single-gallery-shot CMC (10 seeded draws of one image per identity).
    Cuhk03,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Market => "market",
            Protocol::Cuhk03 => "cuhk03",
        })
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "market" => Ok(Protocol::Market),
            "cuhk03" => Ok(Protocol::Cuhk03),
            _ => Err(format!("unknown protocol `{s}`; expected market or cuhk03")),
        }
    }
}

/// How features are compared and scored.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Distance.
    pub metric: Metric,
    /// L2-normalise features first.
    pub normalize: bool,
    /// Scoring protocol.
    pub protocol: Protocol,
    /// k-reciprocal re-ranking, if wanted.
    pub rerank: Option<RerankParams>,
    /// Average query expansion before the distance.
    pub aqe: bool,
    /// Length of the CMC curve.
    pub max_rank: usize,
    /// Seed of the CUHK03 draws.
    pub seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            metric: Metric::Euclidean,
            normalize: false,
            protocol: Protocol::Market,
            rerank: None,
            aqe: false,
            max_rank: 50,
            seed: 0,
        }
    }
}

/// Checks a row-major feature matrix: a whole number of rows, every value finite.
pub fn check_features(what: &'static str, values: &[f32], dim: usize) -> Result<usize, EvalError> {
    if dim == 0 || !values.len().is_multiple_of(dim) {
        return Err(EvalError::Shape {
            what,
            found: values.len(),
            dim,
        });
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(EvalError::NotFinite {
            what,
            row: index / dim,
            column: index % dim,
        });
    }
    // Distances square the features: their squared norms must stay finite too.
    if let Some(row) = values
        .chunks_exact(dim)
        .position(|r| !r.iter().map(|v| v * v).sum::<f32>().is_finite())
    {
        return Err(EvalError::TooLarge { what, row });
    }
    Ok(values.len() / dim)
}

/// Query-to-gallery distances, served block by block.
pub enum Distances {
    /// Plain metric distances.
    Plain {
        /// Prepared query rows.
        queries: Box<PreparedFeatures>,
        /// Prepared gallery rows.
        gallery: Box<PreparedFeatures>,
    },
    /// k-reciprocal re-ranked distances.
    Reranked {
        /// Precomputed encodings.
        reranker: Box<Reranker>,
        /// Number of queries.
        queries: usize,
    },
}

impl Distances {
    /// Prepares distances between row-major query and gallery features (`dim` columns).
    /// With a `device`, the matrix products run there (a GPU) instead of the CPU GEMM.
    pub fn new(
        query_features: &[f32],
        gallery_features: &[f32],
        dim: usize,
        options: &EvalOptions,
        device: Option<&Device>,
    ) -> Result<Self, EvalError> {
        let queries = check_features("query features", query_features, dim)?;
        check_features("gallery features", gallery_features, dim)?;
        let mut all = [query_features, gallery_features].concat();
        if options.normalize {
            normalize_rows(&mut all, dim);
        }
        if options.aqe {
            aqe::expand(&mut all, dim);
        }
        let all = PreparedFeatures::new(&all, dim, options.metric);
        let upload = |rows: PreparedFeatures| match device {
            Some(device) => rows.on_device(device),
            None => rows,
        };
        Ok(match options.rerank {
            Some(params) => Distances::Reranked {
                reranker: Box::new(Reranker::new(all, queries, params, &upload)),
                queries,
            },
            None => Distances::Plain {
                queries: Box::new(all.slice_rows(0..queries)),
                gallery: Box::new(upload(all.slice_rows(queries..all.len()))),
            },
        })
    }

    /// Number of queries.
    pub fn query_len(&self) -> usize {
        match self {
            Distances::Plain { queries, .. } => queries.len(),
            Distances::Reranked { queries, .. } => *queries,
        }
    }

    /// Number of gallery samples.
    pub fn gallery_len(&self) -> usize {
        match self {
            Distances::Plain { gallery, .. } => gallery.len(),
            Distances::Reranked { reranker, .. } => reranker.gallery_len(),
        }
    }

    /// `per_row(query, row)` for every query's distance row, in query order. The rows are
    /// computed block by block (at most `BLOCK_VALUES` distances at once) and each block's
    /// rows are processed in parallel; `progress(done, total)` is called after each block and
    /// `cancel` stops between blocks with [`EvalError::Cancelled`].
    pub fn map_rows<T: Send>(
        &self,
        per_row: impl Fn(usize, &[f32]) -> T + Sync,
        progress: &mut dyn FnMut(usize, usize),
        cancel: &AtomicBool,
    ) -> Result<Vec<T>, EvalError> {
        let total = self.query_len();
        let width = self.gallery_len().max(1);
        let block_rows = (BLOCK_VALUES / width).clamp(1, 1024);
        let mut out = Vec::with_capacity(total);
        let mut block = Vec::new();
        for start in (0..total).step_by(block_rows) {
            if cancel.load(Ordering::Relaxed) {
                return Err(EvalError::Cancelled);
            }
            let end = (start + block_rows).min(total);
            self.rows(start..end, &mut block);
            let mut done: Vec<T> = Vec::with_capacity(end - start);
            block
                .par_chunks(width)
                .zip(start..end)
                .map(|(row, q)| per_row(q, row))
                .collect_into_vec(&mut done);
            out.extend(done);
            progress(end, total);
        }
        Ok(out)
    }

    /// Distances of query rows `range` to the whole gallery, row-major into `out`.
    pub fn rows(&self, range: std::ops::Range<usize>, out: &mut Vec<f32>) {
        match self {
            Distances::Plain { queries, gallery } => queries.distances(range, gallery, out),
            Distances::Reranked { reranker, .. } => reranker.distances(range, out),
        }
    }
}

/// Metrics plus each query's outcome (`None`: no relevant gallery sample).
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Aggregate metrics.
    pub metrics: Metrics,
    /// Per-query outcome, in query order.
    pub per_query: Vec<Option<QueryOutcome>>,
}

impl Evaluation {
    /// Query indices by ascending AP (queries without a match last), ties by index.
    pub fn worst_first(&self) -> Vec<usize> {
        let ap = |q: usize| self.per_query[q].map_or(f64::INFINITY, |o| o.ap);
        let mut order: Vec<usize> = (0..self.per_query.len()).collect();
        order.sort_by(|&a, &b| ap(a).total_cmp(&ap(b)).then(a.cmp(&b)));
        order
    }
}

/// Scores every query. `progress(done, total)` is called after each block; setting `cancel`
/// stops between blocks with [`EvalError::Cancelled`].
pub fn evaluate(
    distances: &Distances,
    queries: &[Label],
    gallery: &[Label],
    options: &EvalOptions,
    progress: &mut dyn FnMut(usize, usize),
    cancel: &AtomicBool,
) -> Result<Evaluation, EvalError> {
    for (what, expected, found) in [
        ("query labels", distances.query_len(), queries.len()),
        ("gallery labels", distances.gallery_len(), gallery.len()),
    ] {
        if expected != found {
            return Err(EvalError::Length {
                what,
                expected,
                found,
            });
        }
    }
    let groups = (options.protocol == Protocol::Cuhk03).then(|| GalleryGroups::new(gallery));
    let scored = distances.map_rows(
        |q, row| {
            let outcome = score_row(row, queries[q], gallery);
            let sampled = match (&groups, outcome) {
                (Some(groups), Some(_)) => {
                    sampled_first_hits(row, queries[q], q, gallery, groups, options.seed)
                }
                _ => Vec::new(),
            };
            (outcome, sampled)
        },
        progress,
        cancel,
    )?;
    let mut per_query = Vec::with_capacity(scored.len());
    let mut draws = Vec::new();
    for (outcome, sampled) in scored {
        per_query.push(outcome);
        if outcome.is_some() {
            draws.push(sampled);
        }
    }
    let max_rank = options.max_rank.min(gallery.len());
    let mut metrics = aggregate(&per_query, max_rank)?;
    if groups.is_some() {
        metrics.cmc = sampled_cmc(&draws, max_rank);
    }
    Ok(Evaluation { metrics, per_query })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(pid: i64, camid: i64) -> Label {
        Label { pid, camid }
    }

    fn run(
        qf: &[f32],
        gf: &[f32],
        dim: usize,
        q: &[Label],
        g: &[Label],
    ) -> Result<Evaluation, EvalError> {
        let options = EvalOptions::default();
        let distances = Distances::new(qf, gf, dim, &options, None)?;
        evaluate(
            &distances,
            q,
            g,
            &options,
            &mut |_, _| {},
            &AtomicBool::new(false),
        )
    }

    #[test]
    fn ties_rank_by_gallery_index_and_max_rank_is_capped() {
        let gallery = [label(2, 2), label(1, 2)];
        let result = run(
            &[0.0, 0.0],
            &[1.0, 0.0, 0.0, 1.0],
            2,
            &[label(1, 1)],
            &gallery,
        )
        .unwrap();
        assert_eq!(result.per_query[0].unwrap().first_hit, 1);
        assert_eq!(result.metrics.cmc, vec![0.0, 1.0]);
    }

    #[test]
    fn bad_inputs_are_named() {
        let err = run(
            &[0.0, 0.0],
            &[1.0, 0.0, 0.0, 1.0],
            2,
            &[label(1, 1)],
            &[label(1, 2)],
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "gallery labels: expected 2 entries, got 1");
        let err = run(
            &[0.0, f32::NAN],
            &[1.0, 0.0],
            2,
            &[label(1, 1)],
            &[label(1, 2)],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "query features: row 0, column 1 is not a finite number"
        );
        let err = run(&[0.0; 3], &[1.0, 0.0], 2, &[label(1, 1)], &[label(1, 2)]).unwrap_err();
        assert!(
            err.to_string().contains("not a whole number of rows of 2"),
            "{err}"
        );
    }

    #[test]
    fn rerank_of_identical_features_stays_finite() {
        let options = EvalOptions {
            rerank: Some(RerankParams::default()),
            ..EvalOptions::default()
        };
        let distances = Distances::new(&[0.5; 6], &[0.5; 8], 2, &options, None).unwrap();
        let mut rows = Vec::new();
        distances.rows(0..3, &mut rows);
        assert_eq!(rows.len(), 12);
        assert!(rows.iter().all(|d| d.is_finite()), "{rows:?}");
    }

    #[test]
    fn cancel_stops_before_the_first_block() {
        let options = EvalOptions::default();
        let distances = Distances::new(&[0.0], &[1.0], 1, &options, None).unwrap();
        let err = evaluate(
            &distances,
            &[label(1, 0)],
            &[label(1, 1)],
            &options,
            &mut |_, _| {},
            &AtomicBool::new(true),
        )
        .unwrap_err();
        assert!(matches!(err, EvalError::Cancelled));
    }
}
