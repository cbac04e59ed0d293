//! The evaluation pipeline: features → (AQE) → distances (optionally re-ranked), block by block
//! → per-query scores in parallel → metrics of the chosen protocol.

use std::sync::atomic::AtomicBool;

use super::cuhk03::{GalleryGroups, sampled_cmc, sampled_first_hits};
use super::distance::Distances;
use super::error::EvalError;
use super::label::Label;
use super::options::{EvalOptions, Protocol};
use super::rank::{Metrics, QueryOutcome, aggregate, score_row};
use crate::names::named_enum;

/// Metrics plus each query's outcome (`None`: no relevant gallery sample).
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Aggregate metrics.
    pub metrics: Metrics,
    /// Per-query outcome, in query order.
    pub per_query: Vec<Option<QueryOutcome>>,
}

named_enum! {
    /// Orders of a run's queries, for lists that show the queries.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum QueryOrder("query order") {
        /// Dataset order.
        Index = "index",
        /// Lowest AP first (queries without a match last).
        WorstFirst = "worst",
        /// Highest AP first.
        BestFirst = "best",
        /// Latest first hit first.
        FirstHit = "first-hit",
        /// By identity.
        Pid = "pid",
        /// By camera.
        Camera = "camera",
    }
}

impl Evaluation {
    /// Query indices by ascending AP (queries without a match last), ties by index.
    pub fn worst_first(&self) -> Vec<usize> {
        let ap = |q: usize| self.per_query[q].map_or(f64::INFINITY, |o| o.ap);
        let mut order: Vec<usize> = (0..self.per_query.len()).collect();
        order.sort_by(|&a, &b| ap(a).total_cmp(&ap(b)).then(a.cmp(&b)));
        order
    }

    /// Query indices in `order` (ties by index); `labels` are the queries' labels.
    pub fn ordered(&self, order: QueryOrder, labels: &[Label]) -> Vec<usize> {
        let outcome = |q: usize| self.per_query[q];
        let mut queries: Vec<usize> = (0..self.per_query.len()).collect();
        match order {
            QueryOrder::Index => {}
            QueryOrder::WorstFirst => queries = self.worst_first(),
            QueryOrder::BestFirst => queries.sort_by(|&a, &b| {
                let ap = |q| outcome(q).map_or(-1.0, |o| o.ap);
                ap(b).total_cmp(&ap(a)).then(a.cmp(&b))
            }),
            QueryOrder::FirstHit => queries.sort_by_key(|&q| {
                (
                    std::cmp::Reverse(outcome(q).map_or(0, |o| o.first_hit + 1)),
                    q,
                )
            }),
            QueryOrder::Pid => queries.sort_by_key(|&q| (labels[q].pid, q)),
            QueryOrder::Camera => queries.sort_by_key(|&q| (labels[q].camid, q)),
        }
        queries
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
    use crate::eval::RerankParams;

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
