//! Alpha-weighted average query expansion, as FastReID's `aqe` (one round, k = 5, α = 3):
//! every query and gallery feature is replaced by the mean of its k nearest features (itself
//! included, by cosine similarity) weighted by similarity^α.

use rayon::prelude::*;

use super::neighbors::Neighbors;
use super::options::Metric;
use super::prepared::PreparedFeatures;

/// Neighbours averaged per feature.
pub const AQE_K: usize = 5;
/// Exponent of the similarity weights.
pub const AQE_ALPHA: f32 = 3.0;

/// Expands row-major `[n, dim]` features in place (queries and gallery stacked together).
pub fn expand(features: &mut [f32], dim: usize) {
    let unit = PreparedFeatures::new(features, dim, Metric::Cosine);
    let neighbors = Neighbors::compute(&unit, &unit, AQE_K, |d| d);
    let original = features.to_vec();
    features
        .par_chunks_mut(dim)
        .enumerate()
        .for_each(|(i, out)| {
            out.fill(0.0);
            let nearest = neighbors.of(i);
            for &j in nearest {
                let j = j as usize;
                let weight = (1.0 - unit.distance(i, &unit, j)).powf(AQE_ALPHA);
                for (o, v) in out.iter_mut().zip(&original[j * dim..(j + 1) * dim]) {
                    *o += v * weight;
                }
            }
            out.iter_mut().for_each(|o| *o /= nearest.len() as f32);
        });
}
