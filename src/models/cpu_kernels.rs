//! Kernels for the layers Burn flex runs slowly on the CPU backend.
//!
//! Flex runs max pooling (building an index tensor alongside), average pooling, instance norm
//! (eight single-threaded passes), depthwise convolution and convolutions over few input
//! channels (a single-threaded layout copy and a column-strided scatter) as generic loops; on
//! OSNet they took a third of the CPU time. These kernels do the same arithmetic on the
//! tensor's own buffer (flex hands it over without copying), in parallel over channel planes or
//! row tiles, one pass each, with the following activation folded in where the network has
//! one. They run only for f32 tensors on the CPU device; everywhere else the layers use Burn's
//! ops.

use burn::tensor::{DType, Device, Tensor, TensorData};
use rayon::prelude::*;

/// Width of the blocks the depthwise kernel accumulates in registers.
const LANES: usize = 8;

/// The activation a kernel applies to its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// None.
    Identity,
    /// `max(0, x)`.
    Relu,
    /// `min(max(0, x), 6)`.
    Relu6,
}

impl Activation {
    /// Applies the activation to `v`, keeping NaN as PyTorch does.
    #[inline(always)]
    fn apply(self, v: f32) -> f32 {
        match self {
            Self::Identity => v,
            Self::Relu if v < 0.0 => 0.0,
            Self::Relu6 if v < 0.0 => 0.0,
            Self::Relu6 if v > 6.0 => 6.0,
            Self::Relu | Self::Relu6 => v,
        }
    }

    /// Sets every value `v` to `act(f(v))`, with the choice of activation made once, outside
    /// the loop, so the loop vectorises.
    #[inline(always)]
    fn map_all(self, values: &mut [f32], f: impl Fn(f32) -> f32) {
        match self {
            Self::Identity => values.iter_mut().for_each(|v| *v = f(*v)),
            Self::Relu => values.iter_mut().for_each(|v| *v = Self::Relu.apply(f(*v))),
            Self::Relu6 => values
                .iter_mut()
                .for_each(|v| *v = Self::Relu6.apply(f(*v))),
        }
    }
}

/// A tensor's values taken out of Burn, with its shape and device.
pub struct Planes {
    data: TensorData,
    shape: [usize; 4],
    device: Device,
}

impl Planes {
    /// Whether `x` is a plain (non-autodiff) f32 tensor on the CPU backend: the tensors these
    /// kernels are for.
    pub fn apply_to(x: &Tensor<4>) -> bool {
        x.dtype() == DType::F32 && !x.is_autodiff() && x.device() == Device::flex()
    }

    /// Takes the values of `x`, a tensor [`Planes::apply_to`] accepts, out of Burn.
    pub fn take(x: Tensor<4>) -> Self {
        let shape = x.dims();
        let device = x.device();
        let data = x
            .try_into_data()
            .expect("the CPU backend reads tensors synchronously");
        Self {
            data,
            shape,
            device,
        }
    }

    fn plane_len(&self) -> usize {
        self.shape[2] * self.shape[3]
    }

    /// Rewrites every plane in place; `f(channel, plane)`.
    fn in_place(mut self, f: impl Fn(usize, &mut [f32]) + Sync) -> Tensor<4> {
        let channels = self.shape[1];
        let len = self.plane_len();
        let values: &mut [f32] = self.data.as_mut_slice().expect("f32 values");
        values
            .par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, plane)| f(i % channels, plane));
        Tensor::from_data(self.data, (&self.device, DType::F32))
    }

    /// Maps every plane to a new `[out_h, out_w]` plane; `f(channel, input, output)`.
    fn map(self, out_hw: [usize; 2], f: impl Fn(usize, &[f32], &mut [f32]) + Sync) -> Tensor<4> {
        let [n, c, _, _] = self.shape;
        let out_len = out_hw[0] * out_hw[1];
        let mut out = vec![0.0f32; n * c * out_len];
        let input: &[f32] = self.data.as_slice().expect("f32 values");
        out.par_chunks_mut(out_len)
            .zip(input.par_chunks(self.plane_len()))
            .enumerate()
            .for_each(|(i, (o, x))| f(i % c, x, o));
        Tensor::from_data(
            TensorData::new(out, [n, c, out_hw[0], out_hw[1]]),
            (&self.device, DType::F32),
        )
    }

    /// 2×2 average pooling with stride 2.
    pub fn avg_pool_2x2(self) -> Tensor<4> {
        let [_, _, h, w] = self.shape;
        let ow = w / 2;
        self.map([h / 2, ow], |_, x, o| {
            for (r, out_row) in o.chunks_exact_mut(ow).enumerate() {
                let top = x[2 * r * w..(2 * r + 1) * w].chunks_exact(2);
                let bottom = x[(2 * r + 1) * w..(2 * r + 2) * w].chunks_exact(2);
                for ((v, t), b) in out_row.iter_mut().zip(top).zip(bottom) {
                    *v = (t[0] + t[1] + b[0] + b[1]) / 4.0;
                }
            }
        })
    }

    /// 3×3 max pooling, stride 2, padding 1 (padding never wins; NaN propagates).
    pub fn max_pool_3x3_s2(self) -> Tensor<4> {
        let [_, _, h, w] = self.shape;
        let (oh, ow) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
        self.map([oh, ow], |_, x, o| {
            // Maximum over each window's columns, for every input row.
            let mut columns = vec![0.0f32; h * ow];
            for (m, row) in columns.chunks_exact_mut(ow).zip(x.chunks_exact(w)) {
                for (j, m) in m.iter_mut().enumerate() {
                    let window = &row[(2 * j).saturating_sub(1)..(2 * j + 2).min(w)];
                    *m = window[1..].iter().fold(window[0], |a, &b| max_nan(a, b));
                }
            }
            for (r, out_row) in o.chunks_exact_mut(ow).enumerate() {
                let first = (2 * r).saturating_sub(1);
                out_row.copy_from_slice(&columns[first * ow..(first + 1) * ow]);
                for src in first + 1..(2 * r + 2).min(h) {
                    let row = &columns[src * ow..(src + 1) * ow];
                    out_row
                        .iter_mut()
                        .zip(row)
                        .for_each(|(a, &b)| *a = max_nan(*a, b));
                }
            }
        })
    }

    /// Affine instance normalisation of every plane (biased variance, as PyTorch), then `act`.
    pub fn instance_norm(
        self,
        gamma: &[f32],
        beta: &[f32],
        eps: f64,
        act: Activation,
    ) -> Tensor<4> {
        self.in_place(|c, x| {
            let len = x.len() as f64;
            let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / len;
            let var = x
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / len;
            let scale = f64::from(gamma[c]) / (var + eps).sqrt();
            let shift = f64::from(beta[c]) - mean * scale;
            let (scale, shift) = (scale as f32, shift as f32);
            simd(
                #[inline(always)]
                || {
                    act.map_all(x, |v| v * scale + shift);
                },
            );
        })
    }

    /// Depthwise 3×3 convolution with padding 1 and stride 1 or 2, plus a per-channel bias,
    /// then `act`. `weight` holds nine taps per channel.
    pub fn depthwise_3x3(
        self,
        weight: &[f32],
        bias: &[f32],
        stride: usize,
        act: Activation,
    ) -> Tensor<4> {
        let [_, _, h, w] = self.shape;
        let out_w = (w - 1) / stride + 1;
        let convolve = |c: usize, padded: &[f32], output: &mut [f32]| {
            let k: [f32; 9] = weight[c * 9..c * 9 + 9].try_into().expect("nine taps");
            let pw = w + 2;
            let rows = |r: usize| {
                [0, 1, 2].map(|kh| {
                    let y = r * stride + kh;
                    &padded[y * pw..(y + 1) * pw]
                })
            };
            simd(
                #[inline(always)]
                || {
                    for (r, out_row) in output.chunks_exact_mut(out_w).enumerate() {
                        if stride == 1 {
                            depthwise_row(out_row, &rows(r), &k, bias[c]);
                        } else {
                            depthwise_row_strided(out_row, &rows(r), &k, bias[c], stride);
                        }
                        act.map_all(out_row, |v| v);
                    }
                },
            );
        };
        if stride == 1 {
            self.in_place(|c, plane| convolve(c, &zero_border(plane, w), plane))
        } else {
            let out_h = (h - 1) / stride + 1;
            self.map([out_h, out_w], |c, x, o| convolve(c, &zero_border(x, w), o))
        }
    }

    /// A dense convolution through im2col and GEMM, tiled by output rows, plus the bias, then
    /// `act`. Meant for convolutions over few input channels (a network's stem),
    /// whose column tiles stay in cache.
    pub fn dense_conv(self, conv: &DenseConv, act: Activation) -> Tensor<4> {
        let [n, channels, h, w] = self.shape;
        let DenseConv {
            kernel: k,
            stride,
            padding,
            ..
        } = *conv;
        let out_h = (h + 2 * padding - k) / stride + 1;
        let out_w = (w + 2 * padding - k) / stride + 1;
        let (spatial, depth, out_channels) = (out_h * out_w, channels * k * k, conv.bias.len());
        let rows_per_tile = (TILE_COLUMNS / out_w).max(1);
        let tiles = out_h.div_ceil(rows_per_tile);
        let mut out = vec![0.0f32; n * out_channels * spatial];
        let output = SharedOutput(out.as_mut_ptr());
        let input: &[f32] = self.data.as_slice().expect("f32 values");
        (0..n * tiles).into_par_iter().for_each(|task| {
            let (b, first_row) = (task / tiles, task % tiles * rows_per_tile);
            let rows = first_row..(first_row + rows_per_tile).min(out_h);
            let columns = rows.len() * out_w;
            let image = &input[b * channels * h * w..(b + 1) * channels * h * w];
            // Row (c, ky, kx) of the tile: input c at (y·stride + ky − padding, x·stride + kx −
            // padding) for every output position (y, x) of the tile; zero outside the image.
            let mut tile = vec![0.0f32; depth * columns];
            for (row, tile_row) in tile.chunks_exact_mut(columns).enumerate() {
                let (c, ky, kx) = (row / (k * k), row / k % k, row % k);
                let plane = &image[c * h * w..(c + 1) * h * w];
                for (y, segment) in rows.clone().zip(tile_row.chunks_exact_mut(out_w)) {
                    let Some(iy) = (y * stride + ky).checked_sub(padding).filter(|&i| i < h) else {
                        continue;
                    };
                    let source = &plane[iy * w..(iy + 1) * w];
                    for (x, v) in segment.iter_mut().enumerate() {
                        if let Some(ix) = (x * stride + kx).checked_sub(padding).filter(|&i| i < w)
                        {
                            *v = source[ix];
                        }
                    }
                }
            }
            // SAFETY: each task writes only output rows `rows` of image `b`, which no other
            // task touches; the GEMM reads `conv.weight` ([out_channels, depth]) and `tile`
            // ([depth, columns]) within their lengths and writes [out_channels, columns] at
            // row stride `spatial`, inside image `b`'s planes.
            unsafe {
                let base = output.at(b * out_channels * spatial + rows.start * out_w);
                gemm::gemm(
                    out_channels,
                    columns,
                    depth,
                    base,
                    1,
                    spatial as isize,
                    false,
                    conv.weight.as_ptr(),
                    1,
                    depth as isize,
                    tile.as_ptr(),
                    1,
                    columns as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
                for (o, &bias) in conv.bias.iter().enumerate() {
                    let segment = std::slice::from_raw_parts_mut(base.add(o * spatial), columns);
                    act.map_all(segment, |v| v + bias);
                }
            }
        });
        Tensor::from_data(
            TensorData::new(out, [n, out_channels, out_h, out_w]),
            (&self.device, DType::F32),
        )
    }
}

/// Output positions per column tile of [`Planes::dense_conv`].
const TILE_COLUMNS: usize = 512;

/// Weights of a dense (ungrouped) square convolution for [`Planes::dense_conv`].
#[derive(Debug, Clone)]
pub struct DenseConv {
    /// `[out, in, kernel, kernel]` weights, row-major.
    pub weight: Vec<f32>,
    /// One bias per output channel.
    pub bias: Vec<f32>,
    /// Kernel height and width.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

/// The output buffer of [`Planes::dense_conv`], written by its tasks at disjoint places.
struct SharedOutput(*mut f32);

// SAFETY: the tasks sharing it write disjoint elements (see `dense_conv`).
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
    /// The address of the element at `offset`.
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// A plane `w` wide inside a one-element border of zeros.
fn zero_border(plane: &[f32], w: usize) -> Vec<f32> {
    let pw = w + 2;
    let mut padded = vec![0.0f32; (plane.len() / w + 2) * pw];
    for (dst, row) in padded[pw..].chunks_exact_mut(pw).zip(plane.chunks_exact(w)) {
        dst[1..=w].copy_from_slice(row);
    }
    padded
}

/// One output row of a stride-1 3×3 depthwise convolution from its three padded input rows.
#[inline(always)]
fn depthwise_row(out: &mut [f32], rows: &[&[f32]; 3], k: &[f32; 9], bias: f32) {
    let mut blocks = out.chunks_exact_mut(LANES);
    let mut j = 0;
    for block in &mut blocks {
        let mut acc = [bias; LANES];
        for (kh, row) in rows.iter().enumerate() {
            for kw in 0..3 {
                let tap = k[kh * 3 + kw];
                let src: &[f32; LANES] = row[j + kw..j + kw + LANES].try_into().expect("lanes");
                acc.iter_mut().zip(src).for_each(|(a, &v)| *a += tap * v);
            }
        }
        block.copy_from_slice(&acc);
        j += LANES;
    }
    depthwise_row_strided(blocks.into_remainder(), &rows.map(|r| &r[j..]), k, bias, 1);
}

/// One output row of a 3×3 depthwise convolution with `stride`, one output at a time.
#[inline(always)]
fn depthwise_row_strided(
    out: &mut [f32],
    rows: &[&[f32]; 3],
    k: &[f32; 9],
    bias: f32,
    stride: usize,
) {
    for (j, o) in out.iter_mut().enumerate() {
        let mut acc = bias;
        for (kh, row) in rows.iter().enumerate() {
            for kw in 0..3 {
                acc += k[kh * 3 + kw] * row[j * stride + kw];
            }
        }
        *o = acc;
    }
}

/// Runs `f` compiled for AVX2 and FMA when the processor has them, so the loops it inlines
/// vectorise eight lanes wide; elsewhere as built.
#[inline(always)]
fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the processor supports the features `with_avx2` is compiled for.
        return unsafe { with_avx2(f) };
    }
    f()
}

/// `max` that propagates NaN, as PyTorch's pooling does.
fn max_nan(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() { b } else { a }
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
    use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..len).map(|_| rng.random_range(-2.0f32..2.0)).collect()
    }

    fn bias(values: &[f32]) -> Option<Tensor<1>> {
        Some(Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len()]),
            (&Device::flex(), DType::F32),
        ))
    }

    fn tensor(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(
            TensorData::new(values, shape),
            (&Device::flex(), DType::F32),
        )
    }

    fn values(x: Tensor<4>) -> Vec<f32> {
        x.try_into_data().unwrap().try_into_vec::<f32>().unwrap()
    }

    fn planes(values: Vec<f32>, shape: [usize; 4]) -> Planes {
        let x = tensor(values, shape);
        assert!(Planes::apply_to(&x));
        Planes::take(x)
    }

    fn assert_close(got: &[f32], expected: &[f32], tolerance: f32) {
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!(
                (g - e).abs() <= tolerance || (g.is_nan() && e.is_nan()),
                "element {i}: {g} vs {e}"
            );
        }
    }

    #[test]
    fn max_pool_equals_burn_on_odd_sizes_and_propagates_nan() {
        for (shape, seed) in [([2, 3, 7, 5], 1), ([1, 2, 8, 6], 2), ([1, 1, 1, 1], 3)] {
            let mut x = random(shape.iter().product(), seed);
            let nan_at = 4.min(x.len() - 1);
            x[nan_at] = f32::NAN;
            let expected = max_pool2d(
                tensor(x.clone(), shape),
                MaxPoolOptions::new([3, 3])
                    .with_stride([2, 2])
                    .with_padding([1, 1]),
            );
            let got = planes(x, shape).max_pool_3x3_s2();
            assert_eq!(got.dims(), expected.dims());
            let got = values(got);
            assert!(got.iter().any(|v| v.is_nan()), "NaN kept");
            assert_close(&got, &values(expected), 0.0);
        }
    }

    #[test]
    fn avg_pool_equals_burn() {
        let shape = [2, 3, 6, 4];
        let x = random(shape.iter().product(), 4);
        let expected = avg_pool2d(
            tensor(x.clone(), shape),
            AvgPoolOptions::new([2, 2]).with_stride([2, 2]),
        );
        let got = planes(x, shape).avg_pool_2x2();
        assert_eq!(got.dims(), expected.dims());
        assert_close(&values(got), &values(expected), 1e-6);
    }

    #[test]
    fn depthwise_equals_burn_for_both_strides_and_activations() {
        // Width 11: one register block of eight and a remainder of three at stride 1.
        let shape = [2, 3, 5, 11];
        let x: Vec<f32> = random(shape.iter().product(), 5)
            .iter()
            .map(|v| v * 4.0)
            .collect();
        let weight = random(3 * 9, 6);
        let bias = random(3, 7);
        for stride in [1, 2] {
            let expected = values(conv2d(
                tensor(x.clone(), shape),
                tensor(weight.clone(), [3, 1, 3, 3]),
                self::bias(&bias),
                ConvOptions::new([stride, stride], [1, 1], [1, 1], 3),
            ));
            assert!(expected.iter().any(|&v| v > 6.0) && expected.iter().any(|&v| v < 0.0));
            for (act, f) in [
                (Activation::Identity, (|v| v) as fn(f32) -> f32),
                (Activation::Relu, |v: f32| v.max(0.0)),
                (Activation::Relu6, |v: f32| v.clamp(0.0, 6.0)),
            ] {
                let got = planes(x.clone(), shape).depthwise_3x3(&weight, &bias, stride, act);
                let out = (5 - 1) / stride + 1;
                assert_eq!(got.dims(), [2, 3, out, (11 - 1) / stride + 1]);
                let activated: Vec<f32> = expected.iter().map(|&v| f(v)).collect();
                assert_close(&values(got), &activated, 1e-5);
            }
        }
    }

    #[test]
    fn dense_conv_equals_burn_over_several_tiles() {
        // 7×7, stride 2, padding 3 over 3 channels (a stem); 21 output rows of 35: several
        // row tiles and a short last one.
        let shape = [2, 3, 41, 69];
        let x = random(shape.iter().product(), 11);
        let conv = DenseConv {
            weight: random(5 * 3 * 49, 12),
            bias: random(5, 13),
            kernel: 7,
            stride: 2,
            padding: 3,
        };
        let expected = values(conv2d(
            tensor(x.clone(), shape),
            tensor(conv.weight.clone(), [5, 3, 7, 7]),
            self::bias(&conv.bias),
            ConvOptions::new([2, 2], [3, 3], [1, 1], 1),
        ));
        let got = planes(x.clone(), shape).dense_conv(&conv, Activation::Identity);
        assert_eq!(got.dims(), [2, 5, 21, 35]);
        assert_close(&values(got), &expected, 1e-4);
        let rectified: Vec<f32> = expected.iter().map(|v| v.max(0.0)).collect();
        let got = planes(x, shape).dense_conv(&conv, Activation::Relu);
        assert_close(&values(got), &rectified, 1e-4);
    }

    #[test]
    fn instance_norm_normalises_each_plane() {
        let shape = [2, 3, 4, 5];
        let x = random(shape.iter().product(), 8);
        let (gamma, beta) = (random(3, 9), random(3, 10));
        let eps = 1e-5;
        let mut expected = Vec::new();
        for (i, plane) in x.chunks(20).enumerate() {
            let c = i % 3;
            let mean = plane.iter().map(|&v| f64::from(v)).sum::<f64>() / 20.0;
            let var = plane
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / 20.0;
            expected.extend(plane.iter().map(|&v| {
                ((f64::from(v) - mean) / (var + eps).sqrt() * f64::from(gamma[c])
                    + f64::from(beta[c])) as f32
            }));
        }
        let got = planes(x.clone(), shape).instance_norm(&gamma, &beta, eps, Activation::Identity);
        assert_close(&values(got), &expected, 1e-5);
        let rectified: Vec<f32> = expected.iter().map(|v| v.max(0.0)).collect();
        let got = planes(x, shape).instance_norm(&gamma, &beta, eps, Activation::Relu);
        assert_close(&values(got), &rectified, 1e-5);
    }
}
