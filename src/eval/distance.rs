//! Query-to-gallery distances of checked features: plain metric distances or k-reciprocal
//! re-ranked ones, after optional normalisation and query expansion, served block by block.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Device;
use rayon::prelude::*;

use super::aqe;
use super::error::EvalError;
use super::options::EvalOptions;
use super::prepared::{PreparedFeatures, normalize_rows};
use super::rerank::Reranker;

/// Distance values held at once while scoring (one block of query rows).
const BLOCK_VALUES: usize = 1 << 24;

/// The largest squared norm of a feature row: a distance adds two squared norms and twice a
/// product of rows, so a quarter of float32's range keeps every distance finite.
const MAX_SQUARED_NORM: f64 = f32::MAX as f64 / 4.0;

/// What makes a feature row unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFault {
    /// The value in this column is NaN or infinite.
    NotFinite(usize),
    /// The row is so large that its distances would overflow.
    TooLarge,
}

impl std::fmt::Display for RowFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowFault::NotFinite(column) => write!(f, "column {column} is not a finite number"),
            RowFault::TooLarge => write!(
                f,
                "its values are too large: distances between such rows overflow float32"
            ),
        }
    }
}

/// Why feature `row` cannot be ranked, if it cannot.
pub fn row_fault(row: &[f32]) -> Option<RowFault> {
    if let Some(column) = row.iter().position(|v| !v.is_finite()) {
        return Some(RowFault::NotFinite(column));
    }
    let squared_norm: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    (squared_norm > MAX_SQUARED_NORM).then_some(RowFault::TooLarge)
}

/// Checks a row-major feature matrix: a whole number of rows, each one rankable.
pub fn check_features(what: &'static str, values: &[f32], dim: usize) -> Result<usize, EvalError> {
    if dim == 0 || !values.len().is_multiple_of(dim) {
        return Err(EvalError::Shape {
            what,
            found: values.len(),
            dim,
        });
    }
    for (row, values) in values.chunks_exact(dim).enumerate() {
        match row_fault(values) {
            Some(RowFault::NotFinite(column)) => {
                return Err(EvalError::NotFinite { what, row, column });
            }
            Some(RowFault::TooLarge) => return Err(EvalError::TooLarge { what, row }),
            None => {}
        }
    }
    Ok(values.len() / dim)
}

/// Query-to-gallery distances, served block by block.
pub enum Distances {
    /// Plain metric distances.
    Plain {
        /// Prepared query rows.
        queries: Box<PreparedFeatures>,
        /// Prepared gallery rows.
        gallery: Box<PreparedFeatures>,
    },
    /// k-reciprocal re-ranked distances.
    Reranked {
        /// Precomputed encodings.
        reranker: Box<Reranker>,
        /// Number of queries.
        queries: usize,
    },
}

impl Distances {
    /// Prepares distances between row-major query and gallery features (`dim` columns).
    /// With a `device`, the matrix products run there (a GPU) instead of the CPU GEMM.
    pub fn new(
        query_features: &[f32],
        gallery_features: &[f32],
        dim: usize,
        options: &EvalOptions,
        device: Option<&Device>,
    ) -> Result<Self, EvalError> {
        let queries = check_features("query features", query_features, dim)?;
        check_features("gallery features", gallery_features, dim)?;
        let mut all = [query_features, gallery_features].concat();
        if options.normalize {
            normalize_rows(&mut all, dim);
        }
        if options.aqe {
            aqe::expand(&mut all, dim);
        }
        let all = PreparedFeatures::new(&all, dim, options.metric);
        let upload = |rows: PreparedFeatures| match device {
            Some(device) => rows.on_device(device),
            None => rows,
        };
        Ok(match options.rerank {
            Some(params) => Distances::Reranked {
                reranker: Box::new(Reranker::new(all, queries, params, &upload)),
                queries,
            },
            None => Distances::Plain {
                queries: Box::new(all.slice_rows(0..queries)),
                gallery: Box::new(upload(all.slice_rows(queries..all.len()))),
            },
        })
    }

    /// Number of queries.
    pub fn query_len(&self) -> usize {
        match self {
            Distances::Plain { queries, .. } => queries.len(),
            Distances::Reranked { queries, .. } => *queries,
        }
    }

    /// Number of gallery samples.
    pub fn gallery_len(&self) -> usize {
        match self {
            Distances::Plain { gallery, .. } => gallery.len(),
            Distances::Reranked { reranker, .. } => reranker.gallery_len(),
        }
    }

    /// `per_row(query, row)` for every query's distance row, in query order. The rows are
    /// computed block by block (at most `BLOCK_VALUES` distances at once) and each block's
    /// rows are processed in parallel; `progress(done, total)` is called after each block and
    /// `cancel` stops between blocks with [`EvalError::Cancelled`].
    pub fn map_rows<T: Send>(
        &self,
        per_row: impl Fn(usize, &[f32]) -> T + Sync,
        progress: &mut dyn FnMut(usize, usize),
        cancel: &AtomicBool,
    ) -> Result<Vec<T>, EvalError> {
        let total = self.query_len();
        let width = self.gallery_len().max(1);
        let block_rows = (BLOCK_VALUES / width).clamp(1, 1024);
        let mut out = Vec::with_capacity(total);
        let mut block = Vec::new();
        for start in (0..total).step_by(block_rows) {
            if cancel.load(Ordering::Relaxed) {
                return Err(EvalError::Cancelled);
            }
            let end = (start + block_rows).min(total);
            self.rows(start..end, &mut block);
            let mut done: Vec<T> = Vec::with_capacity(end - start);
            block
                .par_chunks(width)
                .zip(start..end)
                .map(|(row, q)| per_row(q, row))
                .collect_into_vec(&mut done);
            out.extend(done);
            progress(end, total);
        }
        Ok(out)
    }

    /// Distances of query rows `range` to the whole gallery, row-major into `out`.
    pub fn rows(&self, range: std::ops::Range<usize>, out: &mut Vec<f32>) {
        match self {
            Distances::Plain { queries, gallery } => queries.distances(range, gallery, out),
            Distances::Reranked { reranker, .. } => reranker.distances(range, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_whose_distances_would_overflow_are_refused() {
        // 1.8e19 squared is 3.2e38: finite, but the distance of two such rows is not.
        let huge = [1.8e19f32, 0.0, 0.0, 0.0];
        assert_eq!(row_fault(&huge), Some(RowFault::TooLarge));
        let error = check_features("query features", &[[1.0; 4], huge].concat(), 4);
        assert!(matches!(error, Err(EvalError::TooLarge { row: 1, .. })));
        // The largest rows allowed still give finite distances.
        let large = [4.6e18f32; 4];
        assert_eq!(row_fault(&large), None);
        let negated = large.map(|v| -v);
        let squared_distance: f32 = large
            .iter()
            .zip(&negated)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        assert!(squared_distance.is_finite());
        assert_eq!(row_fault(&[1.0, f32::NAN]), Some(RowFault::NotFinite(1)));
    }
}
