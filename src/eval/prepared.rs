//! Feature rows made ready for one metric, and their distance products as Torchreid's
//! `compute_distance_matrix` defines them, with a parallel GEMM (or a GPU matmul).

use burn::tensor::{DType, Device, Tensor, TensorData};
use gemm::Parallelism;

use super::options::Metric;

/// Scales each row of a row-major matrix to unit L2 norm (PyTorch's `F.normalize`, eps 1e-12).
pub fn normalize_rows(values: &mut [f32], dim: usize) {
    for row in values.chunks_exact_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
    }
}

/// Feature rows made ready for one metric: unit rows for cosine, squared norms for euclidean;
/// optionally also resident on a GPU, where products against them are computed.
#[derive(Debug, Clone)]
pub struct PreparedFeatures {
    rows: Vec<f32>,
    squared_norms: Vec<f32>,
    dim: usize,
    metric: Metric,
    gpu: Option<GpuRows>,
}

/// Rows uploaded to a device, transposed (`[dim, n]`) for `queries × rowsᵀ` products.
#[derive(Debug, Clone)]
struct GpuRows {
    device: Device,
    transposed: Tensor<2>,
}

impl GpuRows {
    /// `lhs` (`[m, dim]`) times the rows, row-major `[m, n]`.
    fn products(&self, lhs: &[f32], m: usize, dim: usize) -> Result<Vec<f32>, String> {
        let lhs: Tensor<2> = Tensor::from_data(
            TensorData::new(lhs.to_vec(), [m, dim]),
            (&self.device, DType::F32),
        );
        lhs.matmul(self.transposed.clone())
            .try_into_data()
            .map_err(|e| format!("{e:?}"))?
            .try_into_vec_as::<f32>()
            .map_err(|e| format!("{e:?}"))
    }
}

impl PreparedFeatures {
    /// Prepares row-major `[n, dim]` features for `metric`.
    pub fn new(features: &[f32], dim: usize, metric: Metric) -> Self {
        let mut rows = features.to_vec();
        if metric == Metric::Cosine {
            normalize_rows(&mut rows, dim);
        }
        let squared_norms = rows
            .chunks_exact(dim)
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect();
        PreparedFeatures {
            rows,
            squared_norms,
            dim,
            metric,
            gpu: None,
        }
    }

    /// Uploads the rows to `device`; later products against them run there.
    pub fn on_device(mut self, device: &Device) -> Self {
        let n = self.len();
        let rows: Tensor<2> = Tensor::from_data(
            TensorData::new(self.rows.clone(), [n, self.dim]),
            (device, DType::F32),
        );
        self.gpu = Some(GpuRows {
            device: device.clone(),
            transposed: rows.transpose(),
        });
        self
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.squared_norms.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.squared_norms.is_empty()
    }

    /// Feature length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric the rows were prepared for.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// A copy of rows `range`.
    pub fn slice_rows(&self, range: std::ops::Range<usize>) -> PreparedFeatures {
        PreparedFeatures {
            rows: self.rows[range.start * self.dim..range.end * self.dim].to_vec(),
            squared_norms: self.squared_norms[range].to_vec(),
            dim: self.dim,
            metric: self.metric,
            gpu: None,
        }
    }

    /// One prepared row.
    pub fn row(&self, index: usize) -> &[f32] {
        &self.rows[index * self.dim..(index + 1) * self.dim]
    }

    /// Distance between row `a` of `self` and row `b` of `other`, in the same arithmetic form
    /// as [`PreparedFeatures::distances`].
    pub fn distance(&self, a: usize, other: &PreparedFeatures, b: usize) -> f32 {
        let dot: f32 = self
            .row(a)
            .iter()
            .zip(other.row(b))
            .map(|(x, y)| x * y)
            .sum();
        match self.metric {
            Metric::Euclidean => self.squared_norms[a] + other.squared_norms[b] - 2.0 * dot,
            Metric::Cosine => 1.0 - dot,
        }
    }

    /// Distances from rows `queries` of `self` to every row of `gallery`, written row-major
    /// into `out` (`[queries.len(), gallery.len()]`).
    pub fn distances(
        &self,
        queries: std::ops::Range<usize>,
        gallery: &PreparedFeatures,
        out: &mut Vec<f32>,
    ) {
        let (m, n, k) = (queries.len(), gallery.len(), self.dim);
        assert_eq!(k, gallery.dim, "feature lengths differ");
        out.clear();
        match self.metric {
            Metric::Euclidean => {
                for &q in &self.squared_norms[queries.clone()] {
                    out.extend(gallery.squared_norms.iter().map(|&g| q + g));
                }
            }
            Metric::Cosine => out.resize(m * n, 1.0),
        }
        if m == 0 || n == 0 {
            return;
        }
        let lhs = &self.rows[queries.start * k..queries.end * k];
        let beta = match self.metric {
            Metric::Euclidean => -2.0,
            Metric::Cosine => -1.0,
        };
        if let Some(gpu) = &gallery.gpu {
            match gpu.products(lhs, m, k) {
                Ok(products) => {
                    out.iter_mut()
                        .zip(products)
                        .for_each(|(d, p)| *d += beta * p);
                    return;
                }
                Err(e) => tracing::warn!("GPU distance failed ({e}); computing on the CPU"),
            }
        }
        // SAFETY: `out` holds m×n values (row stride n), `lhs` m×k (row stride k), and the
        // right-hand side is the k×n transpose of the n×k gallery rows (column stride k); all
        // strides stay inside those buffers.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                true,
                lhs.as_ptr(),
                1,
                k as isize,
                gallery.rows.as_ptr(),
                k as isize,
                1,
                1.0,
                beta,
                false,
                false,
                false,
                Parallelism::Rayon(rayon::current_num_threads()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(q: &[f32], g: &[f32], metric: Metric) -> f32 {
        match metric {
            Metric::Euclidean => q.iter().zip(g).map(|(a, b)| (a - b) * (a - b)).sum(),
            Metric::Cosine => {
                let dot: f32 = q.iter().zip(g).map(|(a, b)| a * b).sum();
                let nq = q.iter().map(|a| a * a).sum::<f32>().sqrt();
                let ng = g.iter().map(|a| a * a).sum::<f32>().sqrt();
                1.0 - dot / (nq * ng)
            }
        }
    }

    #[test]
    fn gemm_distances_equal_the_definition() {
        let dim = 7;
        let q: Vec<f32> = (0..5 * dim)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let g: Vec<f32> = (0..9 * dim)
            .map(|i| ((i * 53 % 13) as f32 - 6.0) / 4.0)
            .collect();
        for metric in [Metric::Euclidean, Metric::Cosine] {
            let pq = PreparedFeatures::new(&q, dim, metric);
            let pg = PreparedFeatures::new(&g, dim, metric);
            let mut out = Vec::new();
            pq.distances(1..4, &pg, &mut out);
            assert_eq!(out.len(), 3 * 9);
            for (i, row) in out.chunks(9).enumerate() {
                for (j, &d) in row.iter().enumerate() {
                    let qi = &q[(i + 1) * dim..(i + 2) * dim];
                    let want = naive(qi, &g[j * dim..(j + 1) * dim], metric);
                    assert!((d - want).abs() < 1e-4, "{metric} {i} {j}: {d} vs {want}");
                    assert!((pq.distance(i + 1, &pg, j) - d).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn gpu_products_equal_cpu_gemm_on_the_cpu_device() {
        // Burn's CPU device runs the same upload/matmul/download path as a GPU device.
        let dim = 5;
        let q: Vec<f32> = (0..4 * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let g: Vec<f32> = (0..6 * dim).map(|i| (i as f32 * 0.53).cos()).collect();
        for metric in [Metric::Euclidean, Metric::Cosine] {
            let pq = PreparedFeatures::new(&q, dim, metric);
            let cpu = PreparedFeatures::new(&g, dim, metric);
            let device = cpu.clone().on_device(&Device::flex());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            pq.distances(0..4, &cpu, &mut a);
            pq.distances(0..4, &device, &mut b);
            assert!(
                a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5),
                "{a:?} {b:?}"
            );
        }
    }

    #[test]
    fn normalized_rows_have_unit_norm_and_zero_rows_stay_zero() {
        let mut rows = vec![3.0, 4.0, 0.0, 0.0];
        normalize_rows(&mut rows, 2);
        assert_eq!(rows, vec![0.6, 0.8, 0.0, 0.0]);
    }
}
