//! Nearest neighbours of every row among all rows, computed block by block so that the full
//! all-to-all distance matrix never exists in memory.

use rayon::prelude::*;

use super::prepared::PreparedFeatures;

/// Rows per distance block.
const BLOCK_ROWS: usize = 256;

/// The `k` nearest rows of every row (itself included), under a monotone transform of the
/// distance, plus the largest transformed distance of each row.
#[derive(Debug, Clone)]
pub struct Neighbors {
    /// Row-major `[n, k]` neighbour indices, nearest first (ties by index).
    pub index: Vec<u32>,
    /// Neighbours per row.
    pub k: usize,
    /// Per row: the largest transformed distance to any row.
    pub row_max: Vec<f32>,
}

impl Neighbors {
    /// The neighbours of `row`, nearest first.
    pub fn of(&self, row: usize) -> &[u32] {
        &self.index[row * self.k..(row + 1) * self.k]
    }

    /// Computes the `k` nearest rows of each row of `all` under `transform(distance)`;
    /// `targets` holds the same rows, possibly resident on a GPU.
    pub fn compute(
        all: &PreparedFeatures,
        targets: &PreparedFeatures,
        k: usize,
        transform: impl Fn(f32) -> f32 + Sync,
    ) -> Self {
        let n = all.len();
        let k = k.min(n);
        let mut index = vec![0u32; n * k];
        let mut row_max = vec![0f32; n];
        let mut block = Vec::new();
        for start in (0..n).step_by(BLOCK_ROWS) {
            let end = (start + BLOCK_ROWS).min(n);
            all.distances(start..end, targets, &mut block);
            block
                .par_chunks_mut(n)
                .zip(index[start * k..end * k].par_chunks_mut(k))
                .zip(row_max[start..end].par_iter_mut())
                .for_each(|((row, nearest), max)| {
                    row.iter_mut().for_each(|d| *d = transform(*d));
                    *max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    for (slot, g) in nearest.iter_mut().zip(super::rank::top_k(row, k)) {
                        *slot = g as u32;
                    }
                });
        }
        Neighbors { index, k, row_max }
    }
}
