//! Convolutions over small maps (fewer than [`SMALL_MAP`] output positions, one group) that the
//! direct 1×1 kernel does not take: the im2col columns of several images side by side, built
//! once by the pool, then one GEMM per block of output channels (one block per thread), whose
//! rows are written out to each image with the bias and the activation. Split into tasks per
//! image or per block of output channels over per-task columns instead, each task would build
//! the same columns again or pack the same weights again, and the weights of these layers
//! (ResNet-50's last two stages, MobileNetV2's last 1×1) are the largest of the networks.

use std::cell::RefCell;
use std::ops::Range;

use crate::conv::Conv;
use crate::elementwise::Write;
use crate::gemm::matmul_rows;
use crate::tasks::{SharedOutput, for_each_chunk, tasks_wanted, workers};
use crate::{Activation, Shape, Threads};

/// Output positions of the smallest map this path does not take (32×16): from there on, tasks
/// over tiles of a single image's columns are faster.
const SMALL_MAP: usize = 512;
/// Most floats of the columns of one GEMM's images (16 MiB), unless one image has more.
const COLUMN_FLOATS: usize = 1 << 22;

thread_local! {
    /// The calling thread's columns and products, reused by its next call.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Conv<'_> {
    /// Whether [`Conv::small_map_conv`] computes this convolution: one group, an output of fewer
    /// than [`SMALL_MAP`] positions, and not a 1×1 convolution that [`Conv::is_direct`] takes.
    pub(crate) fn takes_small_map(&self, positions: usize) -> bool {
        self.groups == 1 && positions < SMALL_MAP && !self.is_direct()
    }

    /// The convolution as one GEMM per group of images, `[out, depth] · [depth, images ×
    /// positions]` over each image's im2col columns side by side, split by blocks of output
    /// channels; written over the output or added to it, as `write` says.
    pub(crate) fn small_map_conv(
        &self,
        x: &[f32],
        shape: Shape,
        out: &mut [f32],
        (act, write): (Activation, Write),
        threads: Threads,
    ) {
        let [n, c, h, w] = shape;
        let [_, out_c, oh, ow] = self.output_shape(shape);
        let depth = c * self.kernel * self.kernel;
        let positions = oh * ow;
        let most = (COLUMN_FLOATS / (depth * positions)).clamp(1, n);
        let per_gemm = n.div_ceil(n.div_ceil(most));
        let mut scratch = SCRATCH.with_borrow_mut(std::mem::take);
        scratch.resize((depth + out_c) * per_gemm * positions, 0.0);
        let image_len = c * h * w;
        // One block of output channels per thread: each block's GEMM packs all the columns.
        let block_rows = out_c.div_ceil(workers(threads)).max(1);
        let taps = self.tap_offsets([h, w], [oh, ow]);
        // Rows of the columns each task builds.
        let column_rows = depth.div_ceil(tasks_wanted(threads));
        for first in (0..n).step_by(per_gemm) {
            let images = first..(first + per_gemm).min(n);
            let stacked = images.len() * positions;
            let (columns, product) = scratch.split_at_mut(depth * stacked);
            let product = &mut product[..out_c * stacked];
            for_each_chunk(threads, columns, column_rows * stacked, |task, rows| {
                let first_row = task * column_rows;
                let rows_here = first_row..first_row + rows.len() / stacked;
                for (i, b) in images.clone().enumerate() {
                    let image = (&x[b * image_len..(b + 1) * image_len], h * w);
                    let into = (&mut *rows, stacked, i * positions);
                    self.image_columns(image, &taps, rows_here.clone(), into);
                }
            });
            let columns = &*columns;
            let output = SharedOutput::new(out);
            for_each_chunk(threads, product, block_rows * stacked, |block, sums| {
                let rows = block * block_rows..block * block_rows + sums.len() / stacked;
                let weight = &self.weight[rows.start * depth..rows.end * depth];
                matmul_rows(
                    sums,
                    weight,
                    columns,
                    [rows.len(), stacked, depth],
                    Threads::One,
                );
                for (i, b) in images.clone().enumerate() {
                    for (r, row_sums) in rows.clone().zip(sums.chunks_exact(stacked)) {
                        // SAFETY: the task of block `rows` alone writes these output rows of
                        // image `b`, inside `out`.
                        let values = unsafe {
                            let at = output.at((b * out_c + r) * positions);
                            std::slice::from_raw_parts_mut(at, positions)
                        };
                        let sums = &row_sums[i * positions..];
                        act.write_with_bias(write, values, sums, self.bias[r]);
                    }
                }
            });
        }
        SCRATCH.with_borrow_mut(|kept| *kept = scratch);
    }

    /// Where each output position reads its input at each tap: `taps[(ky·k + kx) · positions
    /// + p]` is the offset in an input plane of the value that position `p` takes at tap
    /// `(ky, kx)`, or `usize::MAX` where it takes a zero of the padding.
    fn tap_offsets(&self, [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Vec<usize> {
        let (k, stride, pad) = (self.kernel, self.stride, self.padding);
        let inside = |out: usize, tap: usize, side: usize| {
            (out * stride + tap).checked_sub(pad).filter(|&i| i < side)
        };
        let mut taps = Vec::with_capacity(k * k * oh * ow);
        for (ky, kx) in (0..k).flat_map(|ky| (0..k).map(move |kx| (ky, kx))) {
            for (y, x) in (0..oh).flat_map(|y| (0..ow).map(move |x| (y, x))) {
                let offset = inside(y, ky, h).zip(inside(x, kx, w));
                taps.push(offset.map_or(usize::MAX, |(iy, ix)| iy * w + ix));
            }
        }
        taps
    }

    /// Rows `rows` of the im2col matrix of `image` (planes of `plane_len` values) over all its
    /// output positions: row `(c, ky, kx)` holds input `c` where [`Conv::tap_offsets`] says
    /// (`taps`), zero in the padding. `tile` holds these rows, `row_len` values apart, from
    /// column `at` on.
    fn image_columns(
        &self,
        (image, plane_len): (&[f32], usize),
        taps: &[usize],
        rows: Range<usize>,
        (tile, row_len, at): (&mut [f32], usize, usize),
    ) {
        let taps_per_channel = self.kernel * self.kernel;
        let positions = taps.len() / taps_per_channel;
        let whole_planes = self.is_pointwise();
        for (row, tile_row) in rows.zip(tile.chunks_exact_mut(row_len)) {
            let (c, tap) = (row / taps_per_channel, row % taps_per_channel);
            let plane = &image[c * plane_len..(c + 1) * plane_len];
            let values = &mut tile_row[at..at + positions];
            if whole_planes {
                values.copy_from_slice(plane);
                continue;
            }
            for (value, &offset) in values.iter_mut().zip(&taps[tap * positions..]) {
                *value = plane.get(offset).copied().unwrap_or(0.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::conv_reference::assert_equals_definition;
    use crate::elementwise::Write;

    #[test]
    fn equals_the_definition_across_gemm_groups_taps_and_strides() {
        // (shape, out channels, kernel, stride, padding): five images whose columns (2,700 rows
        // of 504) fill two GEMMs of three and two images; strided 3×3 and 1×1 at odd sides; a
        // 1×1 plane through a 3×3 kernel; a 5×5 kernel with padding 2; a 1×1 convolution whose
        // weights are too many for the direct kernel (its columns are the planes themselves).
        let cases = [
            ([5, 300, 21, 24], 4, 3, 1, 1),
            ([3, 7, 9, 8], 5, 3, 2, 1),
            ([2, 6, 5, 7], 9, 1, 2, 0),
            ([1, 3, 1, 1], 4, 3, 2, 1),
            ([2, 4, 6, 5], 3, 5, 1, 2),
            ([2, 1000, 4, 3], 300, 1, 1, 0),
        ];
        assert_equals_definition(
            &cases,
            |conv, [oh, ow]| conv.takes_small_map(oh * ow),
            |conv, (x, shape), out, act, threads| {
                conv.small_map_conv(x, shape, out, (act, Write::Replace), threads)
            },
        );
    }
}
