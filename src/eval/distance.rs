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

/// Checks a row-major feature matrix: a whole number of rows, every value finite.
pub fn check_features(what: &'static str, values: &[f32], dim: usize) -> Result<usize, EvalError> {
    if dim == 0 || !values.len().is_multiple_of(dim) {
        return Err(EvalError::Shape {
            what,
            found: values.len(),
            dim,
        });
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(EvalError::NotFinite {
            what,
            row: index / dim,
            column: index % dim,
        });
    }
    // Distances square the features: their squared norms must stay finite too.
    if let Some(row) = values
        .chunks_exact(dim)
        .position(|r| !r.iter().map(|v| v * v).sum::<f32>().is_finite())
    {
        return Err(EvalError::TooLarge { what, row });
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
