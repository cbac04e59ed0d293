//! Market-1501 protocol as Torchreid's `evaluate_rank` computes it, plus mINP as FastReID does.
//!
//! For each query the gallery is ranked by distance; gallery samples with the query's identity
//! *and* camera are removed (junk), the rest are relevant if they share the identity. A query
//! without any relevant sample left is not valid and does not count.

/// Errors raised by the evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Lengths of ids, cameras and rankings disagree.
    #[error("{what}: expected {expected} entries, got {found}")]
    Length {
        /// Which input.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// No query has a relevant gallery sample.
    #[error("no query has a matching gallery sample from another camera; nothing to evaluate")]
    NoValidQuery,
}

/// Identity and camera of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    /// Person id.
    pub pid: i64,
    /// Camera id.
    pub camid: i64,
}

/// Outcome of one valid query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryOutcome {
    /// Average precision.
    pub ap: f64,
    /// Inverse negative penalty: relevant count / rank of the last relevant sample.
    pub inp: f64,
    /// 0-based rank of the first relevant sample, junk removed.
    pub first_hit: usize,
    /// Number of relevant gallery samples.
    pub relevant: usize,
}

/// Scores one query from its gallery order (indices into `gallery`, best first).
/// `None` when the query has no relevant sample (not a valid query).
pub fn score_query(order: &[usize], query: Label, gallery: &[Label]) -> Option<QueryOutcome> {
    let mut hits = 0usize;
    let mut precision_sum = 0.0f64;
    let mut first_hit = None;
    let mut last_hit = 0usize;
    let mut rank = 0usize;
    for &g in order {
        let label = gallery[g];
        if label.pid == query.pid && label.camid == query.camid {
            continue; // junk: same identity seen by the same camera
        }
        if label.pid == query.pid {
            hits += 1;
            precision_sum += hits as f64 / (rank + 1) as f64;
            first_hit.get_or_insert(rank);
            last_hit = rank;
        }
        rank += 1;
    }
    let first_hit = first_hit?;
    Some(QueryOutcome {
        ap: precision_sum / hits as f64,
        inp: hits as f64 / (last_hit + 1) as f64,
        first_hit,
        relevant: hits,
    })
}

/// Aggregate metrics over all queries.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// CMC curve: `cmc[k]` is the fraction of valid queries with a relevant sample within the
    /// first `k + 1` ranks.
    pub cmc: Vec<f64>,
    /// Mean average precision over valid queries.
    pub map: f64,
    /// Mean inverse negative penalty over valid queries.
    pub minp: f64,
    /// Number of valid queries.
    pub num_valid_queries: usize,
}

/// Aggregates per-query outcomes (`None` = invalid query) into CMC up to `max_rank`, mAP, mINP.
pub fn aggregate(outcomes: &[Option<QueryOutcome>], max_rank: usize) -> Result<Metrics, EvalError> {
    let valid: Vec<&QueryOutcome> = outcomes.iter().flatten().collect();
    if valid.is_empty() {
        return Err(EvalError::NoValidQuery);
    }
    let n = valid.len() as f64;
    let mut first_hits = vec![0usize; max_rank];
    for outcome in &valid {
        if outcome.first_hit < max_rank {
            first_hits[outcome.first_hit] += 1;
        }
    }
    let mut cumulative = 0usize;
    let cmc = first_hits
        .iter()
        .map(|&c| {
            cumulative += c;
            cumulative as f64 / n
        })
        .collect();
    Ok(Metrics {
        cmc,
        map: valid.iter().map(|o| o.ap).sum::<f64>() / n,
        minp: valid.iter().map(|o| o.inp).sum::<f64>() / n,
        num_valid_queries: valid.len(),
    })
}

/// Market-1501 evaluation of a row-major `[queries, gallery]` distance matrix.
///
/// Ties are ranked by gallery index (a stable sort). Like Torchreid, `max_rank` is reduced to
/// the gallery size when the gallery is smaller.
pub fn evaluate_market(
    distances: &[f32],
    queries: &[Label],
    gallery: &[Label],
    max_rank: usize,
) -> Result<(Metrics, Vec<Option<QueryOutcome>>), EvalError> {
    let expected = queries.len() * gallery.len();
    if distances.len() != expected {
        return Err(EvalError::Length {
            what: "distance matrix",
            expected,
            found: distances.len(),
        });
    }
    let outcomes: Vec<Option<QueryOutcome>> = queries
        .iter()
        .enumerate()
        .map(|(q, &query)| {
            let row = &distances[q * gallery.len()..(q + 1) * gallery.len()];
            let mut order: Vec<usize> = (0..gallery.len()).collect();
            order.sort_by(|&a, &b| row[a].total_cmp(&row[b]));
            score_query(&order, query, gallery)
        })
        .collect();
    let metrics = aggregate(&outcomes, max_rank.min(gallery.len()))?;
    Ok((metrics, outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(pid: i64, camid: i64) -> Label {
        Label { pid, camid }
    }

    #[test]
    fn average_precision_by_hand() {
        // Relevant at ranks 1 and 3 (1-based): AP = (1/1 + 2/3) / 2.
        let gallery = [label(1, 2), label(5, 2), label(1, 3), label(6, 1)];
        let outcome = score_query(&[0, 1, 2, 3], label(1, 1), &gallery).unwrap();
        assert!((outcome.ap - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(outcome.first_hit, 0);
        assert!((outcome.inp - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(outcome.relevant, 2);
    }

    #[test]
    fn same_camera_matches_are_junk_and_removed_before_ranking() {
        // The same-camera match at the top is junk: the first counted rank is the wrong id.
        let gallery = [label(1, 1), label(7, 2), label(1, 2)];
        let outcome = score_query(&[0, 1, 2], label(1, 1), &gallery).unwrap();
        assert_eq!(outcome.first_hit, 1);
        assert!((outcome.ap - 0.5).abs() < 1e-12);
    }

    #[test]
    fn query_with_only_junk_or_no_match_is_invalid() {
        let gallery = [label(1, 1), label(2, 2)];
        assert_eq!(score_query(&[0, 1], label(1, 1), &gallery), None);
        assert_eq!(score_query(&[0, 1], label(9, 1), &gallery), None);
    }

    #[test]
    fn cmc_and_map_over_queries_skip_invalid_ones() {
        let hit = |first_hit, ap| {
            Some(QueryOutcome {
                ap,
                inp: ap,
                first_hit,
                relevant: 1,
            })
        };
        let metrics = aggregate(&[hit(0, 1.0), None, hit(2, 0.25)], 4).unwrap();
        assert_eq!(metrics.num_valid_queries, 2);
        assert_eq!(metrics.cmc, vec![0.5, 0.5, 1.0, 1.0]);
        assert!((metrics.map - 0.625).abs() < 1e-12);
        assert!(matches!(
            aggregate(&[None], 5),
            Err(EvalError::NoValidQuery)
        ));
    }

    #[test]
    fn ties_rank_by_gallery_index_and_max_rank_is_capped() {
        let gallery = [label(2, 2), label(1, 2)];
        let (metrics, outcomes) =
            evaluate_market(&[0.5, 0.5], &[label(1, 1)], &gallery, 50).unwrap();
        assert_eq!(outcomes[0].unwrap().first_hit, 1);
        assert_eq!(metrics.cmc, vec![0.0, 1.0]);
    }

    #[test]
    fn wrong_matrix_size_is_an_error() {
        let err = evaluate_market(&[0.0; 3], &[label(1, 1)], &[label(1, 2); 2], 5).unwrap_err();
        assert!(
            err.to_string().contains("expected 2 entries, got 3"),
            "{err}"
        );
    }
}
