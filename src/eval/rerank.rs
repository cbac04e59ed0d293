//! k-reciprocal re-ranking (Zhong et al., CVPR 2017) as Torchreid's `re_ranking` computes it,
//! with sparse neighbourhood vectors instead of dense `(q+g)²` matrices.
//!
//! Torchreid squares the distances, divides each row by its maximum, encodes every sample by
//! the weighted set of its k-reciprocal neighbours (expanded by the neighbours' own
//! k1/2-reciprocal sets), smooths the encoding over its k2 nearest samples, and mixes the
//! Jaccard distance of the encodings with the original one: `(1 − λ)·jaccard + λ·original`.

use rayon::prelude::*;

use super::neighbors::Neighbors;
use super::options::RerankParams;
use super::prepared::PreparedFeatures;

/// A sparse row: `(column, value)` sorted by column.
type SparseRow = Vec<(u32, f32)>;

/// Precomputed encodings of queries and gallery; yields re-ranked query→gallery distances.
pub struct Reranker {
    all: PreparedFeatures,
    gallery: PreparedFeatures,
    row_max: Vec<f32>,
    encodings: Vec<SparseRow>,
    /// For each column: the gallery rows (as gallery indices) with a non-zero entry there.
    inverted: Vec<Vec<(u32, f32)>>,
    lambda: f32,
}

impl Reranker {
    /// Prepares re-ranking of `queries` query rows followed by gallery rows in `all`;
    /// `upload` may move the rows products are taken against to a GPU. Three phases: the
    /// nearest neighbours of every row, each row's k-reciprocal encoding, and the encodings
    /// averaged over the k2 nearest rows.
    pub fn new(
        all: PreparedFeatures,
        queries: usize,
        params: RerankParams,
        upload: &dyn Fn(PreparedFeatures) -> PreparedFeatures,
    ) -> Self {
        let all_on_device = upload(all.clone());
        let neighbors =
            Neighbors::compute(&all, &all_on_device, (params.k1 + 1).max(params.k2), |d| {
                d * d
            });
        // A row whose every distance is 0 (identical features) would divide by zero.
        let row_max: Vec<f32> = neighbors
            .row_max
            .iter()
            .map(|m| m.max(f32::MIN_POSITIVE))
            .collect();
        let raw = reciprocal_encodings(&all, &neighbors, &row_max, params.k1);
        let encodings = smoothed_encodings(raw, &neighbors, params.k2);
        let n = all.len();
        let mut inverted = vec![Vec::new(); n];
        for (g, row) in encodings[queries..].iter().enumerate() {
            for &(c, v) in row {
                inverted[c as usize].push((g as u32, v));
            }
        }
        Reranker {
            gallery: upload(all.slice_rows(queries..n)),
            all,
            row_max,
            encodings,
            inverted,
            lambda: params.lambda,
        }
    }

    /// Gallery size.
    pub fn gallery_len(&self) -> usize {
        self.gallery.len()
    }

    /// Re-ranked distances of query rows `queries` to the gallery, row-major into `out`.
    pub fn distances(&self, queries: std::ops::Range<usize>, out: &mut Vec<f32>) {
        let gallery_len = self.gallery_len();
        let mut original = Vec::new();
        self.all
            .distances(queries.clone(), &self.gallery, &mut original);
        out.clear();
        out.resize(queries.len() * gallery_len, 0.0);
        out.par_chunks_mut(gallery_len.max(1))
            .zip(original.par_chunks(gallery_len.max(1)))
            .zip(queries)
            .for_each(|((row, original), q)| {
                let mut shared = vec![0f32; gallery_len];
                for &(c, v) in &self.encodings[q] {
                    for &(g, w) in &self.inverted[c as usize] {
                        shared[g as usize] += v.min(w);
                    }
                }
                for ((out, &s), &d) in row.iter_mut().zip(&shared).zip(original) {
                    let jaccard = 1.0 - s / (2.0 - s);
                    *out = jaccard * (1.0 - self.lambda) + d * d / self.row_max[q] * self.lambda;
                }
            });
    }
}

/// Each row's k-reciprocal neighbours, expanded by its neighbours' own k1/2-reciprocal sets,
/// weighted by `exp(−d²/row_max)` and normalised to sum 1.
fn reciprocal_encodings(
    all: &PreparedFeatures,
    neighbors: &Neighbors,
    row_max: &[f32],
    k1: usize,
) -> Vec<SparseRow> {
    let n = all.len();
    let half = (k1 as f64 / 2.0).round_ties_even() as usize;
    let normalized = |i: usize, j: usize| {
        let d = all.distance(i, all, j);
        d * d / row_max[i]
    };
    let reciprocal = |i: usize, k: usize| -> Vec<u32> {
        let forward = &neighbors.of(i)[..(k + 1).min(neighbors.k)];
        forward
            .iter()
            .copied()
            .filter(|&f| neighbors.of(f as usize)[..(k + 1).min(neighbors.k)].contains(&(i as u32)))
            .collect()
    };
    (0..n)
        .into_par_iter()
        .map(|i| {
            let core = reciprocal(i, k1);
            let mut expansion = core.clone();
            for &candidate in &core {
                let candidate_set = reciprocal(candidate as usize, half);
                let shared = candidate_set.iter().filter(|c| core.contains(c)).count();
                if shared as f64 > 2.0 / 3.0 * candidate_set.len() as f64 {
                    expansion.extend_from_slice(&candidate_set);
                }
            }
            expansion.sort_unstable();
            expansion.dedup();
            let weights: Vec<f32> = expansion
                .iter()
                .map(|&j| (-normalized(i, j as usize)).exp())
                .collect();
            let total: f32 = weights.iter().sum();
            expansion
                .into_iter()
                .zip(weights.into_iter().map(|w| w / total))
                .collect()
        })
        .collect()
}

/// The encodings averaged over each row's `k2` nearest rows (query expansion of the
/// encodings); unchanged when `k2` is 1.
fn smoothed_encodings(raw: Vec<SparseRow>, neighbors: &Neighbors, k2: usize) -> Vec<SparseRow> {
    let n = raw.len();
    if k2 == 1 {
        raw
    } else {
        (0..n)
            .into_par_iter()
            .map_init(
                || vec![0f32; n],
                |dense, i| {
                    let rows = &neighbors.of(i)[..k2.clamp(1, neighbors.k.max(1))];
                    let mut columns: Vec<u32> = Vec::new();
                    for &r in rows {
                        for &(c, v) in &raw[r as usize] {
                            if dense[c as usize] == 0.0 {
                                columns.push(c);
                            }
                            dense[c as usize] += v;
                        }
                    }
                    columns.sort_unstable();
                    columns
                        .into_iter()
                        .map(|c| {
                            let v = std::mem::take(&mut dense[c as usize]);
                            (c, v / rows.len() as f32)
                        })
                        .collect()
                },
            )
            .collect()
    }
}
