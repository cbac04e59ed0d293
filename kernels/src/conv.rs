//! Convolutions: 1×1 convolutions straight from the input planes (or a GEMM per image), a
//! direct kernel for depthwise 3×3 convolutions, Winograd's F(2×2, 3×3) for 3×3 convolutions
//! over maps 8 to 15 wide, other convolutions with stride 1 or 2 (3×3, the 7×7 stems) straight
//! from padded planes (`padded_taps.rs`), GEMMs over phase planes for the strided stems on
//! processors without AVX2 (`phase_conv.rs`), one GEMM per group of images over small maps
//! (`small_maps.rs`), and im2col tiles and a GEMM for the rest.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;

use crate::depthwise::depthwise_3x3;
use crate::elementwise::{self, Write};
use crate::gemm::{Strided, matmul, matmul_rows};
use crate::pointwise::{Rows, pointwise};
use crate::simd::{Isa, simd};
use crate::tasks::{SharedOutput, for_each, tasks_wanted};
use crate::{Activation, Shape, Threads};

/// A convolution's weights and geometry.
#[derive(Debug, Clone, Copy)]
pub struct Conv<'a> {
    /// PyTorch's `[out, in / groups, k, k]` weight, row-major.
    pub weight: &'a [f32],
    /// One bias per output channel.
    pub bias: &'a [f32],
    /// Input channels.
    pub in_channels: usize,
    /// Kernel height and width.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Channel groups.
    pub groups: usize,
    /// Where the weights in Winograd's domain are kept once the first call computes them:
    /// given, 3×3 convolutions with stride 1 over maps 8 to 15 wide (to 16 without AVX2) take
    /// the Winograd path.
    pub winograd: Option<&'a OnceLock<Vec<f32>>>,
}

thread_local! {
    /// The thread's im2col tile, reused by its next task.
    pub(crate) static TILE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Floats of an im2col tile (512 KiB): the tile and the weights' block stay in cache.
pub(crate) const TILE_FLOATS: usize = 1 << 17;
/// Floats of the output block a GEMM task writes before its bias and activation are applied.
const OUTPUT_FLOATS: usize = 1 << 16;
/// Most weights of a 1×1 convolution computed straight from its input planes (1 MiB): they
/// stay in cache while each block of positions passes every output channel. Larger ones
/// (MobileNetV2's last layer, ResNet-50's last stage) run faster in the whole network through
/// the GEMM, which packs them once per task.
pub(crate) const DIRECT_WEIGHTS: usize = 1 << 18;
/// Fewest and most output positions per GEMM task.
pub(crate) const COLUMNS: Range<usize> = 64..1024;
/// Columns a GEMM task fills by stacking images whose maps have fewer positions.
const STACKED_COLUMNS: usize = 512;
/// Most floats of a stacked task's right-hand side (4 MiB), which its thread keeps.
const STACKED_TILE_FLOATS: usize = 1 << 20;

impl Conv<'_> {
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.bias.len()
    }

    /// The output shape for an input of `shape`.
    pub fn output_shape(&self, shape: Shape) -> Shape {
        let [n, _, h, w] = shape;
        let side = |s: usize| (s + 2 * self.padding).saturating_sub(self.kernel) / self.stride + 1;
        [n, self.out_channels(), side(h), side(w)]
    }

    /// Convolves `x` (`shape`) into `out` (`output_shape(shape)`), adds the bias and applies
    /// `act`.
    pub fn run(&self, x: &[f32], shape: Shape, out: &mut [f32], act: Activation, threads: Threads) {
        self.check_operands(x, shape, out);
        let out_shape = self.output_shape(shape);
        let positions = out_shape[2] * out_shape[3];
        let replace = (act, Write::Replace);
        if self.is_pointwise() && !self.takes_small_map(positions) {
            self.gemm_conv(x, shape, out, replace, threads, Columns::Input);
        } else if self.is_depthwise_3x3() {
            let weights = (self.weight, self.bias);
            depthwise_3x3(weights, self.stride, (x, shape), out, act, threads);
        } else if self.takes_winograd([out_shape[2], out_shape[3]]) {
            self.winograd_conv(x, shape, out, act, threads);
        } else if self.takes_padded_taps() {
            self.padded_taps_conv(x, shape, out, act, threads);
        } else if self.is_strided_stem() {
            self.phase_gemm_conv(x, shape, out, act, threads);
        } else if self.takes_small_map(positions) {
            self.small_map_conv(x, shape, out, replace, threads);
        } else {
            self.gemm_conv(x, shape, out, replace, threads, Columns::Im2col);
        }
    }

    /// Adds the convolution of `x` (`shape`) and the bias to the values `out`
    /// (`output_shape(shape)`) holds, a residual, then applies `act`. The 1×1 kernels add
    /// while they write their results; other convolutions are computed first, then added.
    pub fn run_adding(
        &self,
        x: &[f32],
        shape: Shape,
        out: &mut [f32],
        act: Activation,
        threads: Threads,
    ) {
        self.check_operands(x, shape, out);
        let [_, _, oh, ow] = self.output_shape(shape);
        let add = (act, Write::Add);
        if self.is_direct() {
            self.gemm_conv(x, shape, out, add, threads, Columns::Input);
        } else if self.is_pointwise() && self.takes_small_map(oh * ow) {
            self.small_map_conv(x, shape, out, add, threads);
        } else {
            let mut sums = vec![0.0; out.len()];
            self.run(x, shape, &mut sums, Activation::Identity, threads);
            elementwise::add(out, &sums, act, threads);
        }
    }

    /// Asserts that `x`, of `shape`, and `out` fit the convolution.
    fn check_operands(&self, x: &[f32], shape: Shape, out: &[f32]) {
        let [n, c, h, w] = shape;
        let out_shape = self.output_shape(shape);
        assert_eq!(c, self.in_channels, "input channels");
        assert!(
            h + 2 * self.padding >= self.kernel && w + 2 * self.padding >= self.kernel,
            "an input at least as large as the kernel"
        );
        assert_eq!(x.len(), n * c * h * w, "input of its shape");
        assert_eq!(out.len(), out_shape.iter().product(), "output of its shape");
        assert_eq!(
            self.weight.len(),
            self.out_channels() * c / self.groups * self.kernel * self.kernel,
            "weights of the geometry"
        );
    }

    /// A 1×1 convolution with stride 1, no padding and one group: a GEMM over the input
    /// planes themselves.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kernel == 1 && self.stride == 1 && self.padding == 0 && self.groups == 1
    }

    /// A 1×1 convolution that [`pointwise`] computes straight from the input planes: weights
    /// of at most [`DIRECT_WEIGHTS`], on a processor with AVX2 and FMA.
    pub(crate) fn is_direct(&self) -> bool {
        self.is_pointwise() && self.weight.len() <= DIRECT_WEIGHTS && Isa::best().is_some()
    }

    /// A depthwise 3×3 convolution with padding 1 and stride 1 or 2.
    pub(crate) fn is_depthwise_3x3(&self) -> bool {
        self.groups == self.in_channels
            && self.out_channels() == self.in_channels
            && self.kernel == 3
            && self.padding == 1
            && (1..=2).contains(&self.stride)
    }

    /// The convolution as GEMMs, `[out / groups, depth] · [depth, positions]` per image and
    /// group, split into tasks by output positions (and output channels when the tasks would
    /// be too few for the pool). Images with few positions are stacked side by side into one
    /// GEMM, so each task reads the weights once for several images. A 1×1 convolution whose
    /// weights fit [`DIRECT_WEIGHTS`] is computed by [`pointwise`] instead, straight from
    /// the input planes, where the processor has AVX2 and FMA; it alone also adds to the
    /// output's values (`write`).
    fn gemm_conv(
        &self,
        x: &[f32],
        shape: Shape,
        out: &mut [f32],
        (act, write): (Activation, Write),
        threads: Threads,
        columns: Columns,
    ) {
        let [n, c, h, w] = shape;
        let [_, out_c, oh, ow] = self.output_shape(shape);
        let (groups, k) = (self.groups, self.kernel);
        let (in_group, out_group) = (c / groups, out_c / groups);
        let depth = in_group * k * k;
        let positions = oh * ow;
        // A whole number of the GEMM's 64-column blocks, so no task ends in a partial one.
        let most = ((TILE_FLOATS / depth).min(OUTPUT_FLOATS / out_group) / COLUMNS.start
            * COLUMNS.start)
            .clamp(COLUMNS.start, COLUMNS.end);
        let stack = (most.max(STACKED_COLUMNS) / positions)
            .min(STACKED_TILE_FLOATS / (depth * positions))
            .clamp(1, n);
        let direct = match columns {
            Columns::Input if self.is_direct() => Isa::best(),
            _ => None,
        };
        assert!(
            write == Write::Replace || direct.is_some(),
            "only the 1×1 kernel adds to the output"
        );
        // Stacked images are whole: one task has all their positions. Computed straight from
        // the planes, a map is split into enough column tiles for the pool before its output
        // channels are (the GEMM would repack its weights for each tile).
        let width = if stack > 1 {
            positions
        } else if direct.is_some() {
            let tiles_wanted = tasks_wanted(threads).div_ceil(n * groups);
            let even = positions
                .div_ceil(tiles_wanted)
                .next_multiple_of(COLUMNS.start);
            most.min(even).min(positions)
        } else {
            most.min(positions)
        };
        let tiles = positions.div_ceil(width);
        let base_tasks = n.div_ceil(stack) * groups * tiles;
        let row_blocks = row_blocks(threads, base_tasks, out_group);
        let block_rows = out_group.div_ceil(row_blocks);
        let output = SharedOutput::new(out);
        for_each(threads, base_tasks * row_blocks, |task| {
            let block = task % row_blocks;
            let tile = task / row_blocks % tiles;
            let group = task / row_blocks / tiles % groups;
            let first_image = task / row_blocks / tiles / groups * stack;
            let images = first_image..(first_image + stack).min(n);
            let cols = tile * width..((tile + 1) * width).min(positions);
            let rows = block * block_rows..((block + 1) * block_rows).min(out_group);
            if rows.is_empty() {
                return;
            }
            let first_row = group * out_group + rows.start;
            let lhs = &self.weight[first_row * depth..(first_row + rows.len()) * depth];
            let image = |b: usize| &x[b * c * h * w..(b + 1) * c * h * w];
            let first_channel = group * in_group;
            if let Some(isa) = direct {
                let rows = Rows {
                    weight: lhs,
                    bias: &self.bias[first_row..first_row + rows.len()],
                    depth,
                };
                for b in images {
                    let planes = &image(b)[first_channel * positions..][..depth * positions];
                    // SAFETY: `direct` is only chosen where the processor runs `isa`; the
                    // planes hold `depth` rows of `positions` values; task (images, group,
                    // tile, block) alone writes output rows `first_row..` of its images at
                    // positions `cols`, inside image `b`'s output.
                    unsafe {
                        let dst = output.at((b * out_c + first_row) * positions);
                        let (x, out) = ((planes.as_ptr(), positions), (dst, positions));
                        pointwise(isa, rows, x, out, cols.clone(), (act, write));
                    }
                }
                return;
            }
            let mut tile = TILE.with_borrow_mut(std::mem::take);
            if images.len() == 1 {
                let b = images.start;
                let (rhs, rhs_stride) = match columns {
                    Columns::Input => (&image(b)[cols.start..], positions),
                    Columns::Im2col => {
                        let spots = ([h, w], [oh, ow]);
                        self.im2col_tile(image(b), spots, first_channel, cols.clone(), &mut tile);
                        (&tile[..], cols.len())
                    }
                };
                // SAFETY: task (b, group, tile, block) writes output rows `first_row..` of
                // image `b`, positions `cols`, which no other task writes; the GEMM reads
                // `lhs` ([rows, depth]) and `rhs` ([depth, cols], row stride `rhs_stride`)
                // within their slices and writes [rows, cols] at row stride `positions`
                // inside image `b`.
                unsafe {
                    let dst = output.at((b * out_c + first_row) * positions + cols.start);
                    matmul(
                        [rows.len(), cols.len(), depth],
                        Strided::rows(dst, positions),
                        false,
                        Strided::rows(lhs.as_ptr(), depth),
                        Strided::rows(rhs.as_ptr(), rhs_stride),
                    );
                    for (i, &bias) in self.bias[first_row..first_row + rows.len()]
                        .iter()
                        .enumerate()
                    {
                        let row =
                            std::slice::from_raw_parts_mut(dst.add(i * positions), cols.len());
                        act.add_bias(row, bias);
                    }
                }
            } else {
                // One task has every position of its images (`tiles` is 1): their columns side
                // by side, then the product, then each image's rows written out.
                let stacked = images.len() * positions;
                tile.resize(depth * stacked + rows.len() * stacked, 0.0);
                let (rhs, product) = tile.split_at_mut(depth * stacked);
                for (i, b) in images.clone().enumerate() {
                    let at = i * positions;
                    match columns {
                        Columns::Input => {
                            let planes = &image(b)[first_channel * positions..];
                            for (row, plane) in rhs
                                .chunks_exact_mut(stacked)
                                .zip(planes.chunks_exact(positions))
                            {
                                row[at..at + positions].copy_from_slice(plane);
                            }
                        }
                        Columns::Im2col => {
                            let spots = ([h, w], [oh, ow]);
                            let into = (&mut *rhs, stacked, at);
                            self.im2col(image(b), spots, first_channel, 0..positions, into);
                        }
                    }
                }
                matmul_rows(
                    product,
                    lhs,
                    rhs,
                    [rows.len(), stacked, depth],
                    Threads::One,
                );
                let biases = &self.bias[first_row..first_row + rows.len()];
                for (i, b) in images.enumerate() {
                    for ((r, &bias), values) in
                        biases.iter().enumerate().zip(product.chunks_exact(stacked))
                    {
                        // SAFETY: this task alone writes output rows `first_row..` of its
                        // images.
                        let row = unsafe {
                            let dst = output.at((b * out_c + first_row + r) * positions);
                            std::slice::from_raw_parts_mut(dst, positions)
                        };
                        act.add_bias_into(row, &values[i * positions..], bias);
                    }
                }
            }
            TILE.with_borrow_mut(|kept| *kept = tile);
        });
    }

    /// [`Conv::im2col`] into `tile`, resized to hold exactly the tile.
    pub(crate) fn im2col_tile(
        &self,
        image: &[f32],
        spots: ([usize; 2], [usize; 2]),
        first_channel: usize,
        cols: Range<usize>,
        tile: &mut Vec<f32>,
    ) {
        let depth = self.in_channels / self.groups * self.kernel * self.kernel;
        tile.resize(depth * cols.len(), 0.0);
        let row_len = cols.len();
        self.im2col(image, spots, first_channel, cols, (tile, row_len, 0));
    }

    /// The im2col tile of output positions `cols` over the group starting at input channel
    /// `first_channel`: row `(c, ky, kx)` holds input `c` at `(y·stride + ky − padding,
    /// x·stride + kx − padding)` for each output position `(y, x)`; zero outside the image.
    /// The tile's rows are `row_len` values apart in `tile`, from column `at` on; every value
    /// of the tile is written, so a reused buffer needs no clearing.
    pub(crate) fn im2col(
        &self,
        image: &[f32],
        ([h, w], [_, ow]): ([usize; 2], [usize; 2]),
        first_channel: usize,
        cols: Range<usize>,
        (tile, row_len, at): (&mut [f32], usize, usize),
    ) {
        let (k, stride, pad) = (self.kernel, self.stride, self.padding);
        let depth = self.in_channels / self.groups * k * k;
        for (row, tile_row) in tile.chunks_exact_mut(row_len).take(depth).enumerate() {
            let tile_row = &mut tile_row[at..at + cols.len()];
            let (c, ky, kx) = (first_channel + row / (k * k), row / k % k, row % k);
            let plane = &image[c * h * w..(c + 1) * h * w];
            let mut p = cols.start;
            while p < cols.end {
                let (y, x0) = (p / ow, p % ow);
                let x1 = ow.min(x0 + cols.end - p);
                let segment = &mut tile_row[p - cols.start..p - cols.start + x1 - x0];
                p += x1 - x0;
                let Some(iy) = (y * stride + ky).checked_sub(pad).filter(|&i| i < h) else {
                    segment.fill(0.0);
                    continue;
                };
                // The outputs x whose input column x·stride + kx − padding is inside the row.
                let first = pad.saturating_sub(kx).div_ceil(stride).clamp(x0, x1);
                let end = (w + pad)
                    .saturating_sub(kx)
                    .div_ceil(stride)
                    .clamp(first, x1);
                segment[..first - x0].fill(0.0);
                segment[end - x0..].fill(0.0);
                if first == end {
                    continue;
                }
                let source = &plane[iy * w..(iy + 1) * w];
                let inside = &mut segment[first - x0..end - x0];
                let start = first * stride + kx - pad;
                if stride == 1 {
                    inside.copy_from_slice(&source[start..start + inside.len()]);
                } else {
                    copy_strided(inside, &source[start..], stride);
                }
            }
        }
    }
}

/// `dst[i] = src[i · stride]`; at stride 2 (the stems' phase planes, the strided 3×3
/// convolutions' im2col) in a loop the compiler vectorises with shuffles.
#[inline(always)]
pub(crate) fn copy_strided(dst: &mut [f32], src: &[f32], stride: usize) {
    let Some((last, body)) = dst.split_last_mut() else {
        return;
    };
    simd(
        #[inline(always)]
        || {
            if stride == 2 {
                for (v, pair) in body.iter_mut().zip(src.chunks_exact(2)) {
                    *v = pair[0];
                }
            } else {
                for (v, &s) in body.iter_mut().zip(src.iter().step_by(stride)) {
                    *v = s;
                }
            }
        },
    );
    *last = src[body.len() * stride];
}

/// Blocks of output channels (of at least 16) to split each of `tasks` GEMM tasks into, so
/// that the pool has about four tasks per thread; one on a single thread.
pub(crate) fn row_blocks(threads: Threads, tasks: usize, out_channels: usize) -> usize {
    tasks_wanted(threads)
        .div_ceil(tasks.max(1))
        .min(out_channels.div_ceil(16))
        .max(1)
}

/// Where a GEMM convolution's right-hand side comes from.
#[derive(Debug, Clone, Copy)]
enum Columns {
    /// The input planes themselves (1×1, stride 1, no padding, one group).
    Input,
    /// An im2col tile per task.
    Im2col,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv_reference::{case_value, with_case_conv};

    #[test]
    fn adding_equals_the_convolution_plus_the_residual_on_every_route() {
        // (shape, out channels, kernel, stride, padding): 1×1 convolutions through the 1×1
        // kernel (a row tail; a map split into column tiles), a 1×1 convolution whose weights
        // are too many for it over a small map (one GEMM per group of images), over a larger
        // map (a GEMM per image), and a 3×3 convolution (computed, then added).
        let cases = [
            ([2, 5, 3, 7], 9, 1, 1, 0),
            ([1, 16, 40, 41], 20, 1, 1, 0),
            ([2, 1000, 4, 3], 300, 1, 1, 0),
            ([1, 1000, 24, 24], 300, 1, 1, 0),
            ([2, 6, 9, 13], 10, 3, 1, 1),
        ];
        for (case, spec) in cases.into_iter().enumerate() {
            with_case_conv(case, spec, |conv, x| {
                let shape = spec.0;
                let len = conv.output_shape(shape).iter().product();
                let residual: Vec<f32> = (0..len).map(|i| case_value(case, i + 17, 4.0)).collect();
                let mut plain = vec![0.0; len];
                conv.run(x, shape, &mut plain, Activation::Identity, Threads::One);
                for act in [Activation::Identity, Activation::Relu] {
                    let (lo, hi) = act.range();
                    for threads in [Threads::One, Threads::Pool] {
                        let mut got = residual.clone();
                        conv.run_adding(x, shape, &mut got, act, threads);
                        for (i, ((&got, &conv), &residual)) in
                            got.iter().zip(&plain).zip(&residual).enumerate()
                        {
                            let expected = (conv + residual).clamp(lo, hi);
                            assert!(
                                (got - expected).abs() <= 1e-5 * expected.abs().max(1.0),
                                "case {case} {act:?} {threads:?} at {i}: {got} vs {expected}"
                            );
                        }
                    }
                }
            });
        }
    }
}
