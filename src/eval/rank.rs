//! Market-1501 protocol as Torchreid's `evaluate_rank` computes it, plus mINP as FastReID does.
//!
//! For each query the gallery is ranked by distance; gallery samples with the query's identity
//! *and* camera are removed (junk), the rest are relevant if they share the identity. A query
//! without any relevant sample left is not valid and does not count.

use super::error::EvalError;
use super::label::Label;

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

/// A key whose integer order is `f32::total_cmp`'s order; paired with the gallery index it
/// orders entries by distance, ties by index (the order of a stable sort).
fn rank_key(row: &[f32], g: usize) -> (i32, usize) {
    let bits = row[g].to_bits() as i32;
    (bits ^ (((bits >> 31) as u32) >> 1) as i32, g)
}

/// The relevant gallery samples of one query (same identity, other camera) as
/// `(gallery index, 0-based rank)`, best first. Ranks count only non-junk samples: gallery
/// samples of the query's identity seen by the query's camera are removed before ranking.
///
/// Runs in one pass over the row without sorting it: each irrelevant sample ranked before the
/// last relevant one is placed between the (sorted) relevant ones by binary search.
pub fn relevant_ranks(row: &[f32], query: Label, gallery: &[Label]) -> Vec<(usize, usize)> {
    let mut relevant: Vec<(i32, usize)> = (0..gallery.len())
        .filter(|&g| gallery[g].pid == query.pid && gallery[g].camid != query.camid)
        .map(|g| rank_key(row, g))
        .collect();
    relevant.sort_unstable();
    let Some(&last) = relevant.last() else {
        return Vec::new();
    };
    // between[p]: irrelevant samples ranked after relevant[p - 1] and before relevant[p].
    let mut between = vec![0usize; relevant.len()];
    for (g, label) in gallery.iter().enumerate() {
        let key = rank_key(row, g);
        if key >= last || label.pid == query.pid {
            continue;
        }
        between[relevant.partition_point(|&r| r < key)] += 1;
    }
    let mut irrelevant_before = 0;
    relevant
        .iter()
        .zip(&between)
        .enumerate()
        .map(|(position, (&(_, g), &count))| {
            irrelevant_before += count;
            (g, position + irrelevant_before)
        })
        .collect()
}

/// Scores one query from the ranks of its relevant samples (ascending, as from
/// [`relevant_ranks`]). `None` when there is none (not a valid query).
pub fn score_ranks(ranks: &[(usize, usize)]) -> Option<QueryOutcome> {
    let first_hit = ranks.first()?.1;
    let last_hit = ranks.last()?.1;
    let precision_sum: f64 = ranks
        .iter()
        .enumerate()
        .map(|(hits, &(_, rank))| (hits + 1) as f64 / (rank + 1) as f64)
        .sum();
    let n = ranks.len();
    Some(QueryOutcome {
        ap: precision_sum / n as f64,
        inp: n as f64 / (last_hit + 1) as f64,
        first_hit,
        relevant: n,
    })
}

/// Scores one query from its row of distances to the gallery.
pub fn score_row(row: &[f32], query: Label, gallery: &[Label]) -> Option<QueryOutcome> {
    score_ranks(&relevant_ranks(row, query, gallery))
}

/// The `k` nearest gallery indices of a distance row, best first (ties by index).
pub fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    let k = k.min(row.len());
    let by_rank = |a: &usize, b: &usize| row[*a].total_cmp(&row[*b]).then(a.cmp(b));
    if k < row.len() && k > 0 {
        order.select_nth_unstable_by(k - 1, by_rank);
    }
    order.truncate(k);
    order.sort_by(by_rank);
    order
}

/// One entry of a ranked gallery list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedEntry {
    /// Gallery index.
    pub gallery: usize,
    /// 1-based rank with junk removed; `None` for a junk entry.
    pub rank: Option<usize>,
    /// Distance to the query.
    pub distance: f32,
    /// Same identity as the query.
    pub matches: bool,
}

/// The query's ranked list down to its `k`-th non-junk entry; junk entries (same identity,
/// same camera) are left out, or kept in place, unranked, when `with_junk`.
pub fn ranked_list(
    row: &[f32],
    query: Label,
    gallery: &[Label],
    k: usize,
    with_junk: bool,
) -> Vec<RankedEntry> {
    let junk = |g: usize| gallery[g].pid == query.pid && gallery[g].camid == query.camid;
    let junk_count = (0..gallery.len()).filter(|&g| junk(g)).count();
    let mut list = Vec::with_capacity(k.min(gallery.len()));
    let mut rank = 0;
    for g in top_k(row, k.saturating_add(junk_count)) {
        if rank == k {
            break;
        }
        let is_junk = junk(g);
        if is_junk && !with_junk {
            continue;
        }
        if !is_junk {
            rank += 1;
        }
        list.push(RankedEntry {
            gallery: g,
            rank: (!is_junk).then_some(rank),
            distance: row[g],
            matches: gallery[g].pid == query.pid,
        });
    }
    list
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

#[cfg(test)]
mod tests {
    use super::*;

    fn label(pid: i64, camid: i64) -> Label {
        Label { pid, camid }
    }

    /// Scores a query whose gallery order is given explicitly.
    fn score_query(order: &[usize], query: Label, gallery: &[Label]) -> Option<QueryOutcome> {
        let mut row = vec![0.0; gallery.len()];
        for (rank, &g) in order.iter().enumerate() {
            row[g] = rank as f32;
        }
        score_row(&row, query, gallery)
    }

    /// The definition: sort the whole row, drop junk, walk down the list.
    fn score_by_sorting(row: &[f32], query: Label, gallery: &[Label]) -> Option<QueryOutcome> {
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[a].total_cmp(&row[b]));
        let kept: Vec<usize> = order
            .into_iter()
            .filter(|&g| !(gallery[g].pid == query.pid && gallery[g].camid == query.camid))
            .collect();
        let ranks: Vec<(usize, usize)> = kept
            .iter()
            .enumerate()
            .filter(|&(_, &g)| gallery[g].pid == query.pid)
            .map(|(rank, &g)| (g, rank))
            .collect();
        score_ranks(&ranks)
    }

    #[test]
    fn one_pass_ranking_equals_full_sort_with_ties() {
        let mut state = 12345u64;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for _ in 0..300 {
            let size = 1 + next(40) as usize;
            let gallery: Vec<Label> = (0..size)
                .map(|_| label(next(4) as i64, next(3) as i64))
                .collect();
            // Few distinct values: many ties.
            let row: Vec<f32> = (0..size).map(|_| next(6) as f32 * 0.5).collect();
            let query = label(next(4) as i64, next(3) as i64);
            assert_eq!(
                score_row(&row, query, &gallery),
                score_by_sorting(&row, query, &gallery)
            );
        }
    }

    #[test]
    fn ranked_lists_skip_or_show_junk() {
        let gallery = [label(1, 1), label(2, 2), label(1, 2), label(3, 1)];
        let row = [0.1, 0.2, 0.3, 0.4];
        let query = label(1, 1);
        let plain = ranked_list(&row, query, &gallery, 2, false);
        assert_eq!(
            plain
                .iter()
                .map(|e| (e.gallery, e.rank))
                .collect::<Vec<_>>(),
            vec![(1, Some(1)), (2, Some(2))]
        );
        assert!(plain[1].matches && !plain[0].matches);
        let shown = ranked_list(&row, query, &gallery, 2, true);
        assert_eq!(
            shown.iter().map(|e| e.rank).collect::<Vec<_>>(),
            vec![None, Some(1), Some(2)]
        );
    }

    #[test]
    fn top_k_is_sorted_with_ties_by_index() {
        let row = [0.5, 0.1, 0.5, 0.3, 0.1];
        assert_eq!(top_k(&row, 3), vec![1, 4, 3]);
        assert_eq!(top_k(&row, 10), vec![1, 4, 3, 0, 2]);
        assert!(top_k(&row, 0).is_empty());
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
}
