//! Two runs over the same queries and gallery, query by query: AP differences and top-1
//! changes, and the queries ordered by how much they lost or gained.

use super::evaluate::Evaluation;
use super::inspect::Inspection;
use super::rank::QueryOutcome;

/// Per-query differences between runs `a` and `b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// AP of b minus AP of a, per query (`None` where a query is not scored).
    pub ap_diff: Vec<Option<f64>>,
    /// Queries whose top-1 is a true match in a but not in b.
    pub lost_top1: usize,
    /// Queries whose top-1 is a true match in b but not in a.
    pub gained_top1: usize,
    /// Queries whose top-1 gallery image differs.
    pub changed_top1: usize,
    /// Mean of `ap_diff` over scored queries.
    pub mean_ap_diff: f64,
    /// Queries by AP difference, largest loss first, unscored queries last.
    pub losses_first: Vec<usize>,
}

impl Comparison {
    /// Compares run `a` (its evaluation and ranked lists) with run `b` over the same queries.
    pub fn new(
        (a, a_lists): (&Evaluation, &Inspection),
        (b, b_lists): (&Evaluation, &Inspection),
    ) -> Comparison {
        let (pa, pb) = (&a.per_query, &b.per_query);
        let ap_diff: Vec<Option<f64>> = pa
            .iter()
            .zip(pb)
            .map(|(x, y)| Some(y.as_ref()?.ap - x.as_ref()?.ap))
            .collect();
        let hit = |o: &Option<QueryOutcome>| o.is_some_and(|o| o.first_hit == 0);
        let lost_top1 = pa.iter().zip(pb).filter(|(x, y)| hit(x) && !hit(y)).count();
        let gained_top1 = pa.iter().zip(pb).filter(|(x, y)| !hit(x) && hit(y)).count();
        let first = |lists: &Inspection, q: usize| {
            lists.queries[q]
                .top
                .iter()
                .find(|t| t.rank.is_some())
                .map(|t| t.gallery)
        };
        let changed_top1 = (0..pa.len())
            .filter(|&q| first(a_lists, q) != first(b_lists, q))
            .count();
        let scored: Vec<f64> = ap_diff.iter().flatten().copied().collect();
        let mean_ap_diff = scored.iter().sum::<f64>() / scored.len().max(1) as f64;
        let mut losses_first: Vec<usize> = (0..ap_diff.len()).collect();
        losses_first.sort_by(|&x, &y| {
            let d = |q: usize| ap_diff[q].unwrap_or(f64::INFINITY);
            d(x).total_cmp(&d(y)).then(x.cmp(&y))
        });
        Comparison {
            ap_diff,
            lost_top1,
            gained_top1,
            changed_top1,
            mean_ap_diff,
            losses_first,
        }
    }

    /// Queries by AP difference: largest gain first when `gains_first`, else largest loss
    /// first; unscored queries last either way.
    pub fn order(&self, gains_first: bool) -> Vec<usize> {
        let mut order = self.losses_first.clone();
        if gains_first {
            order.reverse();
            order.rotate_left(self.ap_diff.iter().filter(|d| d.is_none()).count());
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::inspect::{PairDistances, QueryLists};
    use crate::eval::rank::{Metrics, RankedEntry};

    fn outcome(ap: f64, first_hit: usize) -> Option<QueryOutcome> {
        Some(QueryOutcome {
            ap,
            inp: ap,
            first_hit,
            relevant: 1,
        })
    }

    fn run(per_query: Vec<Option<QueryOutcome>>, top1: &[usize]) -> (Evaluation, Inspection) {
        let evaluation = Evaluation {
            metrics: Metrics {
                cmc: vec![0.0],
                map: 0.0,
                minp: 0.0,
                num_valid_queries: 0,
            },
            per_query,
        };
        let queries = top1
            .iter()
            .map(|&g| QueryLists {
                top: vec![RankedEntry {
                    gallery: g,
                    rank: Some(1),
                    distance: 0.0,
                    matches: false,
                }],
                relevant: Vec::new(),
            })
            .collect();
        let pairs = PairDistances::default();
        (evaluation, Inspection { queries, pairs })
    }

    #[test]
    fn differences_counts_and_orders() {
        let a = run(vec![outcome(1.0, 0), outcome(0.25, 3), None], &[5, 6, 7]);
        let b = run(vec![outcome(0.5, 1), outcome(0.75, 0), None], &[4, 6, 7]);
        let c = Comparison::new((&a.0, &a.1), (&b.0, &b.1));
        assert_eq!(c.ap_diff, vec![Some(-0.5), Some(0.5), None]);
        assert_eq!((c.lost_top1, c.gained_top1, c.changed_top1), (1, 1, 1));
        assert_eq!(c.mean_ap_diff, 0.0);
        assert_eq!(c.order(false), vec![0, 1, 2]);
        assert_eq!(c.order(true), vec![1, 0, 2]);
    }
}
