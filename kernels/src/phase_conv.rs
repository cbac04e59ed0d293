//! Strided convolutions with large kernels (the networks' 7×7 stems) as GEMMs over phase
//! planes. The zero-padded input is split into stride × stride phases; on the phases' grid,
//! each tap of a band of output rows is one contiguous run of values, so every im2col row
//! is a single copy instead of a strided gather per output row. The GEMM computes a few
//! extra columns per output row (the grid is `(kernel − 1) / stride` wider than the output),
//! which are dropped when the results are written out. With AVX2 and FMA, the register tiles
//! of `padded_taps.rs` take the stems instead (weights up to 1 MiB).

use std::cell::RefCell;

use crate::conv::{Conv, TILE, TILE_FLOATS, copy_strided, row_blocks};
use crate::gemm::matmul_rows;
use crate::tasks::{SharedOutput, for_each, for_each_chunk};
use crate::{Activation, Shape, Threads};

/// The GEMM's columns are a multiple of this, the vector width of `gemm`'s AVX-512 kernels, so
/// that it reads the tile in place instead of packing it first.
const COLUMN_STEP: usize = 16;

thread_local! {
    /// The calling thread's phase planes of one image, reused by its next call.
    static PHASES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The geometry shared by the phase planes and the GEMM's columns.
#[derive(Debug, Clone, Copy)]
struct Grid {
    stride: usize,
    padding: usize,
    input: [usize; 2],
    /// Rows and columns of each phase plane: the output's, plus `reach`.
    phase: [usize; 2],
    /// Phase rows (and columns) a tap reaches beyond its output position.
    reach: usize,
}

impl Grid {
    fn new(conv: &Conv, input: [usize; 2], output: [usize; 2]) -> Self {
        let reach = (conv.kernel - 1) / conv.stride;
        Self {
            stride: conv.stride,
            padding: conv.padding,
            input,
            phase: [output[0] + reach, output[1] + reach],
            reach,
        }
    }

    /// Floats of one input channel's phases: stride² planes, then zeros that the dropped
    /// columns after the last output row may read.
    fn channel_len(&self) -> usize {
        self.stride * self.stride * self.phase[0] * self.phase[1] + self.reach + COLUMN_STEP
    }

    /// Writes the phases of one input `plane`: phase `(ry, rx)` holds, at `(i, j)`, the input
    /// at `(stride·i + ry − padding, stride·j + rx − padding)`, zero outside the image.
    fn split(&self, plane: &[f32], phases: &mut [f32]) {
        let (s, pad) = (self.stride, self.padding);
        let ([h, w], [ph, pw]) = (self.input, self.phase);
        let (planes, tail) = phases.split_at_mut(s * s * ph * pw);
        tail.fill(0.0);
        for (index, phase) in planes.chunks_exact_mut(ph * pw).enumerate() {
            let (ry, rx) = (index / s, index % s);
            // The phase columns j whose input column stride·j + rx − padding is inside.
            let first = pad.saturating_sub(rx).div_ceil(s).min(pw);
            let end = (w + pad).saturating_sub(rx).div_ceil(s).clamp(first, pw);
            for (i, row) in phase.chunks_exact_mut(pw).enumerate() {
                let Some(iy) = (s * i + ry).checked_sub(pad).filter(|&y| y < h) else {
                    row.fill(0.0);
                    continue;
                };
                row[..first].fill(0.0);
                row[end..].fill(0.0);
                if first < end {
                    let start = s * first + rx - pad;
                    copy_strided(
                        &mut row[first..end],
                        &plane[iy * w + start..(iy + 1) * w],
                        s,
                    );
                }
            }
        }
    }

    /// Where tap `(ky, kx)` of output position 0 lies in its channel's phases; the tap of grid
    /// position `q` (output `(q / phase columns, q % phase columns)`) lies `q` further on.
    fn tap(&self, ky: usize, kx: usize) -> usize {
        let (s, [ph, pw]) = (self.stride, self.phase);
        ((ky % s) * s + kx % s) * ph * pw + ky / s * pw + kx / s
    }
}

impl Conv<'_> {
    /// A strided convolution with one group and a kernel of at least 5, where gathering the
    /// strided im2col rows costs as much as the GEMM (the stems).
    pub(crate) fn is_strided_stem(&self) -> bool {
        self.groups == 1 && self.stride >= 2 && self.kernel >= 5
    }

    /// The convolution over phase planes, image by image: the image's phases, then GEMMs over
    /// bands of output rows (and blocks of output channels when the bands are too few for the
    /// pool), whose results are written out with the bias and `act`.
    pub(crate) fn phase_gemm_conv(
        &self,
        x: &[f32],
        shape: Shape,
        out: &mut [f32],
        act: Activation,
        threads: Threads,
    ) {
        let [_, c, h, w] = shape;
        let [_, out_c, oh, ow] = self.output_shape(shape);
        let grid = Grid::new(self, [h, w], [oh, ow]);
        let k = self.kernel;
        let depth = c * k * k;
        let pw = grid.phase[1];
        let channel_len = grid.channel_len();
        let band_rows = (TILE_FLOATS / (depth * pw)).clamp(1, oh);
        let bands = oh.div_ceil(band_rows);
        let row_blocks = row_blocks(threads, bands, out_c);
        let block_rows = out_c.div_ceil(row_blocks);
        let mut phases = PHASES.with_borrow_mut(std::mem::take);
        phases.resize(c * channel_len, 0.0);
        let images = x.chunks_exact(c * h * w);
        for (image, image_out) in images.zip(out.chunks_exact_mut(out_c * oh * ow)) {
            for_each_chunk(threads, &mut phases, channel_len, |channel, chunk| {
                grid.split(&image[channel * h * w..(channel + 1) * h * w], chunk);
            });
            let phases = &phases[..];
            let output = SharedOutput::new(image_out);
            for_each(threads, bands * row_blocks, |task| {
                let (band, block) = (task / row_blocks, task % row_blocks);
                let rows = block * block_rows..((block + 1) * block_rows).min(out_c);
                if rows.is_empty() {
                    return;
                }
                let ys = band * band_rows..((band + 1) * band_rows).min(oh);
                let cols = (ys.len() * pw).next_multiple_of(COLUMN_STEP);
                let first = ys.start * pw;
                let mut tile = TILE.with_borrow_mut(std::mem::take);
                tile.resize(depth * cols + rows.len() * cols, 0.0);
                let (rhs, product) = tile.split_at_mut(depth * cols);
                for (row, tile_row) in rhs.chunks_exact_mut(cols).enumerate() {
                    let (channel, ky, kx) = (row / (k * k), row / k % k, row % k);
                    let from = channel * channel_len + grid.tap(ky, kx) + first;
                    tile_row.copy_from_slice(&phases[from..from + cols]);
                }
                let lhs = &self.weight[rows.start * depth..rows.end * depth];
                matmul_rows(product, lhs, rhs, [rows.len(), cols, depth], Threads::One);
                for (r, values) in rows.clone().zip(product.chunks_exact(cols)) {
                    for (y, grid_row) in ys.clone().zip(values.chunks_exact(pw)) {
                        // SAFETY: this task alone writes output rows `ys` of channels `rows`
                        // of this image.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(output.at((r * oh + y) * ow), ow)
                        };
                        dst.copy_from_slice(&grid_row[..ow]);
                        act.add_bias(dst, self.bias[r]);
                    }
                }
                TILE.with_borrow_mut(|kept| *kept = tile);
            });
        }
        PHASES.with_borrow_mut(|kept| *kept = phases);
    }
}

#[cfg(test)]
mod tests {
    use crate::conv_reference::assert_equals_definition;

    #[test]
    fn equals_the_definition_at_odd_sizes_strides_and_bands() {
        // (shape, out channels, kernel, stride, padding): stems at odd sizes with several bands
        // of rows, stride 3, an input barely larger than the kernel, batch 1 and 2, output
        // channels fewer and more than a block of 16.
        let cases = [
            ([1, 3, 41, 69], 5, 7, 2, 3),
            ([2, 3, 20, 13], 40, 7, 2, 3),
            ([1, 2, 9, 7], 3, 5, 2, 2),
            ([2, 1, 11, 10], 4, 5, 3, 1),
            ([1, 3, 1, 2], 2, 7, 2, 3),
            ([1, 3, 130, 66], 17, 7, 2, 3),
        ];
        assert_equals_definition(
            &cases,
            |conv, _| conv.is_strided_stem(),
            |conv, (x, shape), out, act, threads| conv.phase_gemm_conv(x, shape, out, act, threads),
        );
    }
}
