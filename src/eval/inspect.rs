//! Per-query material for inspecting a run: each query's ranked list down to a fixed depth,
//! every relevant gallery sample with its rank, and a sample of the distances of matching and
//! non-matching pairs (for histograms).

use std::sync::atomic::AtomicBool;

use super::distance::Distances;
use super::error::EvalError;
use super::label::Label;
use super::rank::{RankedEntry, ranked_list, relevant_ranks};

/// Distance values kept per query row for the non-matching pair sample.
const NEGATIVES_PER_QUERY: usize = 64;

/// What is shown for one query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryLists {
    /// The ranked list down to the `depth`-th non-junk entry; junk entries are kept in place,
    /// unranked.
    pub top: Vec<RankedEntry>,
    /// Every relevant gallery sample as `(gallery index, 0-based rank)`, best first.
    pub relevant: Vec<(usize, usize)>,
}

/// Distances of query–gallery pairs, junk excluded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairDistances {
    /// Every pair of the same identity seen by different cameras.
    pub positive: Vec<f32>,
    /// An evenly strided sample of the pairs of different identities.
    pub negative: Vec<f32>,
}

/// A run's per-query lists and pair distances.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// One entry per query, in query order.
    pub queries: Vec<QueryLists>,
    /// Matching and non-matching pair distances.
    pub pairs: PairDistances,
}

/// Builds the ranked lists (down to `depth`) and pair distances of every query.
/// `progress(done, total)` is called after each block of rows; `cancel` stops between blocks.
pub fn inspect(
    distances: &Distances,
    queries: &[Label],
    gallery: &[Label],
    depth: usize,
    progress: &mut dyn FnMut(usize, usize),
    cancel: &AtomicBool,
) -> Result<Inspection, EvalError> {
    if distances.query_len() != queries.len() || distances.gallery_len() != gallery.len() {
        return Err(EvalError::Length {
            what: "labels",
            expected: distances.query_len() + distances.gallery_len(),
            found: queries.len() + gallery.len(),
        });
    }
    let per_query = distances.map_rows(
        |q, row| {
            let query = queries[q];
            let lists = QueryLists {
                top: ranked_list(row, query, gallery, depth, true),
                relevant: relevant_ranks(row, query, gallery),
            };
            (lists, pair_distances(row, query, gallery))
        },
        progress,
        cancel,
    )?;
    let mut lists = Vec::with_capacity(per_query.len());
    let mut pairs = PairDistances::default();
    for (query_lists, row_pairs) in per_query {
        lists.push(query_lists);
        pairs.positive.extend(row_pairs.positive);
        pairs.negative.extend(row_pairs.negative);
    }
    Ok(Inspection {
        queries: lists,
        pairs,
    })
}

/// The pair distances of one query row.
fn pair_distances(row: &[f32], query: Label, gallery: &[Label]) -> PairDistances {
    let stride = gallery.len().div_ceil(NEGATIVES_PER_QUERY).max(1);
    let mut pairs = PairDistances::default();
    for (g, (label, &d)) in gallery.iter().zip(row).enumerate() {
        if label.pid == query.pid {
            if label.camid != query.camid {
                pairs.positive.push(d);
            }
        } else if g % stride == 0 {
            pairs.negative.push(d);
        }
    }
    pairs
}

/// Counts of `values` in `bins` equal-width bins over `[low, high]` (values outside are
/// clamped into the first or last bin).
pub fn histogram(values: &[f32], low: f32, high: f32, bins: usize) -> Vec<u32> {
    let mut counts = vec![0u32; bins];
    if bins == 0 {
        return counts;
    }
    let width = (high - low) / bins as f32;
    for &v in values.iter().filter(|v| v.is_finite()) {
        let bin = if width > 0.0 {
            (((v - low) / width) as isize).clamp(0, bins as isize - 1) as usize
        } else {
            0
        };
        counts[bin] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvalOptions, Metric};

    fn label(pid: i64, camid: i64) -> Label {
        Label { pid, camid }
    }

    #[test]
    fn lists_and_pairs_follow_the_distances() {
        // One-dimensional features: distance grows with the value difference.
        let query = [0.0f32];
        let gallery = [3.0f32, 1.0, 2.0, 0.5];
        let labels = [label(7, 1), label(7, 0), label(8, 1), label(7, 1)];
        let options = EvalOptions {
            metric: Metric::Euclidean,
            ..EvalOptions::default()
        };
        let distances = Distances::new(&query, &gallery, 1, &options, None).unwrap();
        let inspection = inspect(
            &distances,
            &[label(7, 0)],
            &labels,
            2,
            &mut |_, _| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        let lists = &inspection.queries[0];
        // Gallery 3 (0.25) is best, then junk 1 (same camera), then 2 (4.0).
        let order: Vec<(usize, Option<usize>, bool)> = lists
            .top
            .iter()
            .map(|e| (e.gallery, e.rank, e.matches))
            .collect();
        assert_eq!(
            order,
            vec![(3, Some(1), true), (1, None, true), (2, Some(2), false)]
        );
        assert_eq!(lists.relevant, vec![(3, 0), (0, 2)]);
        assert_eq!(inspection.pairs.positive, vec![9.0, 0.25]);
        assert_eq!(inspection.pairs.negative, vec![4.0]);
    }

    #[test]
    fn histogram_clamps_and_counts() {
        assert_eq!(
            histogram(&[-1.0, 0.1, 0.5, 0.9, 2.0, f32::NAN], 0.0, 1.0, 2),
            vec![2, 3]
        );
        assert_eq!(histogram(&[1.0, 1.0], 1.0, 1.0, 3), vec![2, 0, 0]);
    }
}
