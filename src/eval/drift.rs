//! How far two runs of one network over the same images moved each query's feature (fp32 vs
//! fp16, CPU vs GPU): the drift `1 − cos(a, b)` per query.

/// Per-query feature drift between two runs over the same queries.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDrift {
    /// `1 − cos(a_q, b_q)` per query, in query order (0 for two zero vectors, 1 when one
    /// of them is zero).
    pub per_query: Vec<f64>,
    /// The largest drift.
    pub max: f64,
    /// The mean drift.
    pub mean: f64,
}

impl FeatureDrift {
    /// The drift between row-major query features `a` and `b` of `dim` values each.
    pub fn new(a: &[f32], b: &[f32], dim: usize) -> FeatureDrift {
        let per_query: Vec<f64> = a
            .chunks_exact(dim.max(1))
            .zip(b.chunks_exact(dim.max(1)))
            .map(|(x, y)| 1.0 - cosine(x, y))
            .collect();
        let max = per_query.iter().copied().fold(0.0, f64::max);
        let mean = per_query.iter().sum::<f64>() / per_query.len().max(1) as f64;
        FeatureDrift {
            per_query,
            max,
            mean,
        }
    }

    /// Queries by drift, largest first (ties by query index).
    pub fn largest_first(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.per_query.len()).collect();
        order.sort_by(|&x, &y| {
            self.per_query[y]
                .total_cmp(&self.per_query[x])
                .then(x.cmp(&y))
        });
        order
    }
}

/// The cosine of two vectors, in f64.
fn cosine(x: &[f32], y: &[f32]) -> f64 {
    let (mut dot, mut xx, mut yy) = (0f64, 0f64, 0f64);
    for (&p, &q) in x.iter().zip(y) {
        let (p, q) = (f64::from(p), f64::from(q));
        dot += p * q;
        xx += p * p;
        yy += q * q;
    }
    match (xx > 0.0, yy > 0.0) {
        (true, true) => dot / (xx.sqrt() * yy.sqrt()),
        (false, false) => 1.0,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_is_one_minus_the_cosine_per_query() {
        // Query 0 unchanged and rescaled (drift 0), query 1 turned by 90° (drift 1), query 2
        // turned by 60° (drift 0.5).
        let a = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
        let b = [3.0, 0.0, 1.0, 0.0, 0.5, 0.75f32.sqrt()];
        let drift = FeatureDrift::new(&a, &b, 2);
        let expected = [0.0, 1.0, 0.5];
        for (got, want) in drift.per_query.iter().zip(expected) {
            assert!((got - want).abs() < 1e-7, "{:?}", drift.per_query);
        }
        assert!((drift.max - 1.0).abs() < 1e-7);
        assert!((drift.mean - 0.5).abs() < 1e-7);
        assert_eq!(drift.largest_first(), [1, 2, 0]);
    }

    #[test]
    fn zero_vectors_do_not_make_nan() {
        let drift = FeatureDrift::new(&[0.0, 0.0, 1.0, 0.0], &[0.0, 0.0, 0.0, 0.0], 2);
        assert_eq!(drift.per_query, [0.0, 1.0]);
    }
}
