//! 2-D maps of feature vectors, for the embedding view: PCA (the two leading principal
//! components, at once) and t-SNE (bhtsne's FIt-SNE, fed with exact nearest neighbours and
//! started from the PCA map).

use std::sync::atomic::{AtomicBool, Ordering};

use bhtsne::{Neighbor, tSNE};
use rayon::prelude::*;

use crate::eval::Metric;
use crate::eval::neighbors::Neighbors;
use crate::eval::prepared::PreparedFeatures;
use crate::names::named_enum;

named_enum! {
    /// How features are laid out in two dimensions.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Projection ("projection") {
        /// The two leading principal components.
        Pca = "pca",
        /// t-SNE (perplexity 30), started from the PCA layout.
        Tsne = "t-sne",
    }
}

/// Power iterations of PCA at most.
const PCA_ITERATIONS: usize = 200;
/// PCA stops once its components move less than this between iterations.
const PCA_TOLERANCE: f64 = 1e-9;
/// t-SNE's perplexity (when there are enough points for it).
const PERPLEXITY: usize = 30;
/// t-SNE's optimisation epochs (FIt-SNE's default).
const TSNE_EPOCHS: usize = 750;
/// Standard deviation of the PCA start of t-SNE along its first axis (as openTSNE).
const TSNE_START_STD: f32 = 1e-4;

/// A 2-D point per row of `features` (`dim` values each): the rows' coordinates along their
/// two leading principal components. Deterministic; fewer than two rows give zeros.
pub fn pca(features: &[f32], dim: usize) -> Vec<[f32; 2]> {
    let n = features.len().checked_div(dim).unwrap_or(0);
    if n < 2 || dim == 0 {
        return vec![[0.0; 2]; n];
    }
    let mean = column_means(features, dim, n);
    // Block power iteration on the covariance, applied implicitly: V ← Xcᵀ (Xc V), then
    // Gram–Schmidt. The start is fixed, so the result is too.
    let mut basis: [Vec<f64>; 2] = [
        (0..dim).map(|j| 1.0 + (j % 7) as f64).collect(),
        (0..dim)
            .map(|j| if j % 2 == 0 { 1.0 } else { -1.0 })
            .collect(),
    ];
    orthonormalise(&mut basis);
    for _ in 0..PCA_ITERATIONS {
        let projected = project(features, dim, &mean, &basis);
        let mut next = back_project(features, dim, &mean, &projected);
        orthonormalise(&mut next);
        let moved = basis
            .iter()
            .zip(&next)
            .map(|(a, b)| 1.0 - dot(a, b).abs())
            .fold(0.0, f64::max);
        basis = next;
        if moved < PCA_TOLERANCE {
            break;
        }
    }
    // A fixed sign per axis: the largest-magnitude coordinate of each component is positive.
    for component in &mut basis {
        let largest = component
            .iter()
            .copied()
            .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
        if largest < 0.0 {
            component.iter_mut().for_each(|v| *v = -*v);
        }
    }
    project(features, dim, &mean, &basis)
        .into_iter()
        .map(|[x, y]| [x as f32, y as f32])
        .collect()
}

fn column_means(features: &[f32], dim: usize, n: usize) -> Vec<f64> {
    let mut mean = vec![0f64; dim];
    for row in features.chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    mean
}

/// `(row − mean) · basis_k` for every row.
fn project(features: &[f32], dim: usize, mean: &[f64], basis: &[Vec<f64>; 2]) -> Vec<[f64; 2]> {
    features
        .par_chunks_exact(dim)
        .map(|row| {
            let mut out = [0f64; 2];
            for (j, &v) in row.iter().enumerate() {
                let centred = f64::from(v) - mean[j];
                out[0] += centred * basis[0][j];
                out[1] += centred * basis[1][j];
            }
            out
        })
        .collect()
}

/// `Σ_rows (row − mean) · projected_row_k`: the covariance applied to the basis.
fn back_project(
    features: &[f32],
    dim: usize,
    mean: &[f64],
    projected: &[[f64; 2]],
) -> [Vec<f64>; 2] {
    features
        .par_chunks_exact(dim)
        .zip(projected)
        .fold(
            || [vec![0f64; dim], vec![0f64; dim]],
            |mut acc, (row, p)| {
                for (j, &v) in row.iter().enumerate() {
                    let centred = f64::from(v) - mean[j];
                    acc[0][j] += centred * p[0];
                    acc[1][j] += centred * p[1];
                }
                acc
            },
        )
        .reduce(
            || [vec![0f64; dim], vec![0f64; dim]],
            |mut a, b| {
                for k in 0..2 {
                    a[k].iter_mut().zip(&b[k]).for_each(|(x, y)| *x += y);
                }
                a
            },
        )
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Gram–Schmidt; a vector that vanishes becomes a unit axis orthogonal to the first.
fn orthonormalise(basis: &mut [Vec<f64>; 2]) {
    normalise(&mut basis[0]);
    let along = dot(&basis[0], &basis[1]);
    let [first, second] = basis;
    second
        .iter_mut()
        .zip(first.iter())
        .for_each(|(s, f)| *s -= along * f);
    if !normalise(second) {
        let axis = (0..first.len())
            .min_by(|&a, &b| first[a].abs().total_cmp(&first[b].abs()))
            .unwrap_or(0);
        second.iter_mut().for_each(|s| *s = 0.0);
        second[axis] = 1.0;
        let along = first[axis];
        second
            .iter_mut()
            .zip(first.iter())
            .for_each(|(s, f)| *s -= along * f);
        normalise(second);
    }
}

/// Scales `v` to unit length; false when it is (nearly) zero.
fn normalise(v: &mut [f64]) -> bool {
    let norm = dot(v, v).sqrt();
    if norm < 1e-300 {
        return false;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    true
}

/// t-SNE was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// A 2-D t-SNE map of the rows of `features` (`dim` values each) under euclidean distance:
/// perplexity 30 (less for fewer than 91 rows), exact nearest neighbours, 750 epochs, started
/// from [`pca`]. `on_progress` gets the fraction done; `cancel` is checked before the
/// optimisation starts (its epochs then run to the end).
pub fn tsne(
    features: &[f32],
    dim: usize,
    on_progress: &mut dyn FnMut(f32),
    cancel: &AtomicBool,
) -> Result<Vec<[f32; 2]>, Cancelled> {
    let n = features.len().checked_div(dim).unwrap_or(0);
    // FIt-SNE needs more points than three times the perplexity.
    let perplexity = PERPLEXITY.min(n.saturating_sub(1) / 3);
    if perplexity < 1 {
        return Ok(pca(features, dim));
    }
    let start = scaled_start(&pca(features, dim));
    on_progress(0.05);
    let neighbors = nearest_neighbors(features, dim, 3 * perplexity);
    if cancel.load(Ordering::Relaxed) {
        return Err(Cancelled);
    }
    on_progress(0.2);
    let rows: Vec<&[f32]> = features.chunks_exact(dim).collect();
    let mut progress = |epoch: usize, _: &[f32]| {
        on_progress(0.2 + 0.8 * (epoch + 1) as f32 / TSNE_EPOCHS as f32);
    };
    let mut fit: tSNE<f32, &[f32]> = tSNE::new(&rows);
    fit.perplexity(perplexity as f32)
        .epochs(TSNE_EPOCHS)
        .initial_embedding(start)
        .epoch_callback(&mut progress);
    fit.fit_sne_with_neighbors(&neighbors);
    Ok(fit
        .embedding()
        .chunks_exact(2)
        .map(|p| [p[0], p[1]])
        .collect())
}

/// The PCA layout, flattened and scaled so that its first axis has standard deviation 1e-4.
fn scaled_start(layout: &[[f32; 2]]) -> Vec<f32> {
    let n = layout.len().max(1) as f64;
    let mean = layout.iter().map(|p| f64::from(p[0])).sum::<f64>() / n;
    let var = layout
        .iter()
        .map(|p| (f64::from(p[0]) - mean).powi(2))
        .sum::<f64>()
        / n;
    let scale = if var > 0.0 {
        f64::from(TSNE_START_STD) / var.sqrt()
    } else {
        1.0
    };
    layout
        .iter()
        .flat_map(|p| p.map(|v| (f64::from(v) * scale) as f32))
        .collect()
}

/// Each row's `k` nearest other rows by euclidean distance, nearest first.
fn nearest_neighbors(features: &[f32], dim: usize, k: usize) -> Vec<Vec<Neighbor<f32>>> {
    let prepared = PreparedFeatures::new(features, dim, Metric::Euclidean);
    let nearest = Neighbors::compute(&prepared, &prepared, k + 1, |d| d);
    (0..prepared.len())
        .into_par_iter()
        .map(|row| {
            nearest
                .of(row)
                .iter()
                .map(|&g| g as usize)
                .filter(|&g| g != row)
                .take(k)
                .map(|g| Neighbor {
                    index: g,
                    distance: prepared.distance(row, &prepared, g).max(0.0).sqrt(),
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points spread along one direction a lot, another a little, and a third not at all;
    /// the two spreads are uncorrelated (each position comes with both signs of the small one).
    fn stretched(n: usize) -> Vec<f32> {
        (0..n)
            .flat_map(|i| {
                let t = (i / 2) as f32 - n as f32 / 4.0;
                let s = if i % 2 == 0 { 1.0 } else { -1.0 };
                // Axis (1, 1, 0) carries t, axis (1, −1, 0) carries s, z is constant.
                [t * 3.0 + s, t * 3.0 - s, 5.0]
            })
            .collect()
    }

    #[test]
    fn pca_finds_the_directions_of_largest_spread() {
        let features = stretched(40);
        let layout = pca(&features, 3);
        let column_mean = |c: usize| features.chunks(3).map(|r| r[c]).sum::<f32>() / 40.0;
        let (mx, my) = (column_mean(0), column_mean(1));
        let h = std::f32::consts::FRAC_1_SQRT_2;
        for (row, p) in features.chunks(3).zip(&layout) {
            // Coordinates along (1, 1, 0)/√2 and (1, −1, 0)/√2 about the mean, up to sign.
            let (x, y) = (row[0] - mx, row[1] - my);
            let (first, second) = ((x + y) * h, (x - y) * h);
            assert!((p[0].abs() - first.abs()).abs() < 1e-3, "{p:?} vs {first}");
            assert!(
                (p[1].abs() - second.abs()).abs() < 1e-3,
                "{p:?} vs {second}"
            );
        }
    }

    #[test]
    fn pca_of_too_few_rows_is_zeros() {
        assert_eq!(pca(&[1.0, 2.0], 2), [[0.0, 0.0]]);
        assert!(pca(&[], 2).is_empty());
    }

    #[test]
    fn nearest_neighbours_leave_the_row_out_and_come_nearest_first() {
        let features = [0.0, 0.0, 1.0, 0.0, 3.0, 0.0, 7.0, 0.0];
        let table = nearest_neighbors(&features, 2, 2);
        let indices: Vec<Vec<usize>> = table
            .iter()
            .map(|r| r.iter().map(|n| n.index).collect())
            .collect();
        assert_eq!(indices, [vec![1, 2], vec![0, 2], vec![1, 0], vec![2, 1]]);
        assert_eq!(table[3][0].distance, 4.0);
    }

    #[test]
    fn tsne_keeps_separate_clusters_apart() {
        // Three tight clusters of 40 points in 8 dimensions, far apart.
        let mut features = Vec::new();
        for cluster in 0..3 {
            for i in 0..40 {
                for d in 0..8 {
                    let centre = if d == cluster { 50.0 } else { 0.0 };
                    features.push(centre + ((i * 13 + d * 7) % 11) as f32 * 0.1);
                }
            }
        }
        let mut last = 0.0;
        let layout = tsne(&features, 8, &mut |f| last = f, &AtomicBool::new(false)).unwrap();
        assert_eq!(layout.len(), 120);
        assert!((last - 1.0).abs() < 1e-6, "progress ends at 1, got {last}");
        let centre = |c: usize| {
            let pts = &layout[c * 40..(c + 1) * 40];
            let sum = pts.iter().fold([0.0; 2], |a, p| [a[0] + p[0], a[1] + p[1]]);
            [sum[0] / 40.0, sum[1] / 40.0]
        };
        let spread = |c: usize| {
            let m = centre(c);
            layout[c * 40..(c + 1) * 40]
                .iter()
                .map(|p| ((p[0] - m[0]).powi(2) + (p[1] - m[1]).powi(2)).sqrt())
                .fold(0.0f32, f32::max)
        };
        for a in 0..3 {
            for b in a + 1..3 {
                let (ma, mb) = (centre(a), centre(b));
                let gap = ((ma[0] - mb[0]).powi(2) + (ma[1] - mb[1]).powi(2)).sqrt();
                assert!(gap > spread(a) + spread(b), "clusters {a} and {b} overlap");
            }
        }
    }
}
