//! 3×3 convolutions with stride 1 over maps 8 to 15 wide (to 16 without AVX2) by Winograd's
//! F(2×2, 3×3) (Lavin and Gray, 2016): each 2×2 block of outputs comes from a 4×4 block of the
//! zero-padded input, and in the transformed domain a convolution is 16 elementwise products,
//! summed over input channels as 16 GEMMs. That is 16 multiplications per 2×2 outputs and
//! input channel instead of 36, and the transformed input is 16/9 of the tiles' area instead
//! of im2col's 9×. On such narrow maps im2col copies rows of a few values each; on wider ones
//! it copies long runs and is as fast as the transforms, and the padded-plane register tiles
//! (`padded_taps.rs`) are faster over rows that fill them.

use std::cell::RefCell;
use std::ops::Range;

use crate::conv::Conv;
use crate::gemm::matmul_rows;
use crate::padded_taps::fills_tap_tiles;
use crate::simd::simd;
use crate::tasks::{SharedOutput, for_each, for_each_chunk, workers};
use crate::{Activation, Shape, Threads};

/// Values of the transformed domain per tile: the 4×4 input block's.
const POINTS: usize = 16;
/// Tiles of a row the input transform takes at once, one per vector lane.
const GROUP: usize = 8;
/// Output widths the Winograd path takes: on narrower maps the tiles are few per image and
/// the transformed weights (16/9 of the weights) cost more to read than they save (ResNet-50's
/// 512-channel 3×3 over 8×4 maps runs faster as one GEMM over its im2col columns, on one
/// thread and on two, at batch 1 and 4); on wider ones im2col copies long rows and is as fast.
const WIDTHS: std::ops::RangeInclusive<usize> = 8..=16;
/// Floats of a task's transformed input and products (2 MiB).
const WORK_FLOATS: usize = 1 << 19;
/// Fewest tiles per task where the map has them.
const MIN_BLOCK: usize = 64;

thread_local! {
    /// The calling thread's zero-padded planes of the images, reused by its next call.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The thread's transformed input, products and output rows, reused by its next task.
    static WORK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The weights in the transformed domain, `[16, out, in]`: point `(i, j)` of `G·g·Gᵀ` for
/// each 3×3 kernel `g` of PyTorch's `[out, in, 3, 3]` `weight`.
pub(crate) fn winograd_weights(
    weight: &[f32],
    out_channels: usize,
    in_channels: usize,
) -> Vec<f32> {
    assert_eq!(
        weight.len(),
        out_channels * in_channels * 9,
        "3×3 weights of the channels"
    );
    // G·v for a column (or row) v of three values.
    let g = |v: [f32; 3]| {
        [
            v[0],
            (v[0] + v[1] + v[2]) / 2.0,
            (v[0] - v[1] + v[2]) / 2.0,
            v[2],
        ]
    };
    let pairs = out_channels * in_channels;
    let mut out = vec![0.0; POINTS * pairs];
    for (pair, kernel) in weight.chunks_exact(9).enumerate() {
        let rows: Vec<[f32; 4]> = kernel
            .chunks_exact(3)
            .map(|r| g([r[0], r[1], r[2]]))
            .collect();
        for j in 0..4 {
            let column = g([rows[0][j], rows[1][j], rows[2][j]]);
            for (i, value) in column.into_iter().enumerate() {
                out[(i * 4 + j) * pairs + pair] = value;
            }
        }
    }
    out
}

/// The geometry of one image's tiles.
#[derive(Debug, Clone, Copy)]
struct Tiles {
    /// Input (and output) rows and columns.
    size: [usize; 2],
    /// Tile rows and columns: half the output's, rounded up.
    count: [usize; 2],
}

impl Tiles {
    /// Columns of a padded plane: one zero before the input, zeros after it up to the 4×4
    /// block of the last tile of a group of `GROUP` tiles starting at any tile of the row.
    fn padded_width(&self) -> usize {
        2 * (self.count[1] + GROUP) + 2
    }

    /// Floats of a padded plane.
    fn padded_len(&self) -> usize {
        (2 * self.count[0] + 2) * self.padded_width()
    }

    /// Writes `plane` into `padded`, zeros around it.
    fn pad(&self, plane: &[f32], padded: &mut [f32]) {
        let ([h, w], pw) = (self.size, self.padded_width());
        padded.fill(0.0);
        for (row, padded_row) in plane.chunks_exact(w).zip(padded[pw..].chunks_exact_mut(pw)) {
            padded_row[1..=w].copy_from_slice(row);
        }
        debug_assert_eq!(plane.len(), h * w);
    }

    /// The runs of tiles `tiles` (numbered row by row, image after image) within one tile
    /// row each: the run's image, its tile row, its columns and its offset in `tiles`.
    fn runs(&self, tiles: Range<usize>) -> impl Iterator<Item = Run> {
        let [th, tw] = self.count;
        (tiles.start / tw..tiles.end.div_ceil(tw)).map(move |row| {
            let first = (row * tw).max(tiles.start);
            let end = ((row + 1) * tw).min(tiles.end);
            Run {
                image: row / th,
                row: row % th,
                columns: first - row * tw..end - row * tw,
                at: first - tiles.start,
            }
        })
    }
}

/// Consecutive tiles of one tile row of one image.
#[derive(Debug, Clone)]
struct Run {
    /// The image, in the batch.
    image: usize,
    /// The tile row, in the image.
    row: usize,
    /// The tile columns.
    columns: Range<usize>,
    /// The first tile's place among its task's tiles.
    at: usize,
}

impl Conv<'_> {
    /// A 3×3 convolution with stride 1, padding 1 and one group over a map `WIDTHS` wide,
    /// whose caller keeps a place for the transformed weights, unless the padded-plane kernel
    /// takes it with its output rows filling whole tiles (ResNet-50's 16-wide stage 2: in
    /// the whole network at batch 8 and 32, faster that way).
    pub(crate) fn takes_winograd(&self, output: [usize; 2]) -> bool {
        self.winograd.is_some()
            && self.groups == 1
            && self.kernel == 3
            && self.stride == 1
            && self.padding == 1
            && WIDTHS.contains(&output[1])
            && !(self.takes_padded_taps() && fills_tap_tiles(output[1]))
    }

    /// The convolution by F(2×2, 3×3): the images' padded planes, then tasks over blocks of
    /// tiles (of one image or several) and of output channels, each transforming its input
    /// blocks, multiplying them by its rows of the transformed weights (16 GEMMs) and writing
    /// the transformed-back outputs with the bias and `act`.
    pub(crate) fn winograd_conv(
        &self,
        x: &[f32],
        shape: Shape,
        out: &mut [f32],
        act: Activation,
        threads: Threads,
    ) {
        let [n, c, h, w] = shape;
        let out_c = self.out_channels();
        let weights = self
            .winograd
            .expect("a place for the transformed weights")
            .get_or_init(|| winograd_weights(self.weight, out_c, c));
        let geometry = Tiles {
            size: [h, w],
            count: [h.div_ceil(2), w.div_ceil(2)],
        };
        let tiles = n * geometry.count[0] * geometry.count[1];
        // Blocks of tiles as wide as the work buffer allows, shared among the pool's threads,
        // but at least `MIN_BLOCK` wide: each GEMM packs its block of weights, which narrow
        // blocks would repeat for few columns. Where the blocks are fewer than the threads,
        // the output channels are split too; each such task transforms its tiles' input again,
        // which costs little beside its GEMMs.
        let block = tiles
            .div_ceil(workers(threads))
            .max(MIN_BLOCK)
            .min(WORK_FLOATS / (POINTS * (c + out_c)))
            .min(tiles)
            .next_multiple_of(16);
        let blocks = tiles.div_ceil(block);
        let row_blocks = workers(threads)
            .div_ceil(blocks)
            .min(out_c.div_ceil(16))
            .max(1);
        let block_rows = out_c.div_ceil(row_blocks);
        let padded_len = geometry.padded_len();
        let mut padded = PADDED.with_borrow_mut(std::mem::take);
        padded.resize(n * c * padded_len, 0.0);
        for_each_chunk(threads, &mut padded, padded_len, |plane, chunk| {
            geometry.pad(&x[plane * h * w..(plane + 1) * h * w], chunk);
        });
        let planes = &padded[..];
        let output = SharedOutput::new(out);
        for_each(threads, blocks * row_blocks, |task| {
            let range = task / row_blocks * block..((task / row_blocks + 1) * block).min(tiles);
            let first_row = task % row_blocks * block_rows;
            let rows = first_row..(first_row + block_rows).min(out_c);
            let cols = range.len();
            let mut work = WORK.with_borrow_mut(std::mem::take);
            work.resize(POINTS * (c + rows.len()) * cols + 12 * cols, 0.0);
            let (transformed, rest) = work.split_at_mut(POINTS * c * cols);
            let (products, scratch) = rest.split_at_mut(POINTS * rows.len() * cols);
            for run in geometry.runs(range.clone()) {
                let image = &planes[run.image * c * padded_len..(run.image + 1) * c * padded_len];
                for (channel, plane) in image.chunks_exact(padded_len).enumerate() {
                    let into = (&mut *transformed, channel * cols, c * cols);
                    geometry.transform_input(plane, &run, into);
                }
            }
            let point_products = rows.len() * cols;
            for point in 0..POINTS {
                let weights = &weights[(point * out_c + rows.start) * c..][..rows.len() * c];
                matmul_rows(
                    &mut products[point * point_products..(point + 1) * point_products],
                    weights,
                    &transformed[point * c * cols..(point + 1) * c * cols],
                    [rows.len(), cols, c],
                    Threads::One,
                );
            }
            let (outputs, sums) = scratch.split_at_mut(4 * cols);
            for (row, (o, &bias)) in rows.clone().zip(&self.bias[rows.clone()]).enumerate() {
                transform_output(products, (row * cols, point_products), outputs, sums);
                for run in geometry.runs(range.clone()) {
                    let place = (run.image * out_c + o) * h * w;
                    let [top_left, top_right, bottom_left, bottom_right] =
                        [0, 1, 2, 3].map(|i| &outputs[i * cols + run.at..][..run.columns.len()]);
                    for (dy, left, right) in
                        [(0, top_left, top_right), (1, bottom_left, bottom_right)]
                    {
                        let y = 2 * run.row + dy;
                        if y < h {
                            let x0 = 2 * run.columns.start;
                            // SAFETY: this task alone writes its output channels' outputs
                            // of its tiles, and row `y` from column `x0` on, up to the run's
                            // last tile and within the row, is among them.
                            let len = (2 * left.len()).min(w - x0);
                            let dst = unsafe {
                                std::slice::from_raw_parts_mut(output.at(place + y * w + x0), len)
                            };
                            interleave(dst, left, right);
                            act.add_bias(dst, bias);
                        }
                    }
                }
            }
            WORK.with_borrow_mut(|kept| *kept = work);
        });
        PADDED.with_borrow_mut(|kept| *kept = padded);
    }
}

impl Tiles {
    /// Writes `Bᵀ·d·B` of the 4×4 input block `d` of each tile of `run` (one channel's
    /// padded `plane`): point `p` of the run's tile `t` goes to
    /// `into[first + p·point_step + run.at + t]`.
    fn transform_input(
        &self,
        plane: &[f32],
        run: &Run,
        (into, first, point_step): (&mut [f32], usize, usize),
    ) {
        let pw = self.padded_width();
        simd(
            #[inline(always)]
            || {
                for group in run.columns.clone().step_by(GROUP) {
                    let tiles = GROUP.min(run.columns.end - group);
                    // d·B for each row: the four columns' combinations, tile by tile (tile k's
                    // block starts at column 2k of the group).
                    let columns = |i: usize| -> [[f32; GROUP]; 4] {
                        let start = (2 * run.row + i) * pw + 2 * group;
                        let v: &[f32; 2 * GROUP + 2] = plane[start..start + 2 * GROUP + 2]
                            .try_into()
                            .expect("a group");
                        let at = |offset: usize| -> [f32; GROUP] {
                            std::array::from_fn(|k| v[2 * k + offset])
                        };
                        let [d0, d1, d2, d3] = [at(0), at(1), at(2), at(3)];
                        [
                            std::array::from_fn(|k| d0[k] - d2[k]),
                            std::array::from_fn(|k| d1[k] + d2[k]),
                            std::array::from_fn(|k| d2[k] - d1[k]),
                            std::array::from_fn(|k| d1[k] - d3[k]),
                        ]
                    };
                    let [c0, c1, c2, c3] = [columns(0), columns(1), columns(2), columns(3)];
                    for j in 0..4 {
                        // Bᵀ·(d·B): the rows' combinations of column j.
                        let rows: [[f32; GROUP]; 4] = [
                            std::array::from_fn(|k| c0[j][k] - c2[j][k]),
                            std::array::from_fn(|k| c1[j][k] + c2[j][k]),
                            std::array::from_fn(|k| c2[j][k] - c1[j][k]),
                            std::array::from_fn(|k| c1[j][k] - c3[j][k]),
                        ];
                        for (i, values) in rows.iter().enumerate() {
                            let at = first + (4 * i + j) * point_step + run.at + group
                                - run.columns.start;
                            if tiles == GROUP {
                                let slot: &mut [f32; GROUP] =
                                    (&mut into[at..at + GROUP]).try_into().expect("a group");
                                *slot = *values;
                            } else {
                                into[at..at + tiles].copy_from_slice(&values[..tiles]);
                            }
                        }
                    }
                }
            },
        );
    }
}

/// `dst = [left[0], right[0], left[1], right[1], …]`, as far as `dst` reaches.
fn interleave(dst: &mut [f32], left: &[f32], right: &[f32]) {
    for (pair, (&l, &r)) in dst.chunks_mut(2).zip(left.iter().zip(right)) {
        pair[0] = l;
        if let Some(second) = pair.get_mut(1) {
            *second = r;
        }
    }
}

/// `out[t] = f([a[t], b[t], …])` for the operands' common length.
#[inline(always)]
fn combine<const N: usize>(out: &mut [f32], operands: [&[f32]; N], f: impl Fn([f32; N]) -> f32) {
    let len = out.len();
    let operands = operands.map(|o| &o[..len]);
    for (t, o) in out.iter_mut().enumerate() {
        *o = f(operands.map(|operand| operand[t]));
    }
}

/// `Aᵀ·m·A` for the `cols` tiles whose 16 points lie in `products` at `first + p·point_step`
/// onwards: `outputs` gets the tiles' top-left, top-right, bottom-left and bottom-right
/// values, `cols` each; `sums` holds `8·cols` values.
fn transform_output(
    products: &[f32],
    (first, point_step): (usize, usize),
    outputs: &mut [f32],
    sums: &mut [f32],
) {
    let cols = outputs.len() / 4;
    let point = |p: usize| &products[first + p * point_step..first + p * point_step + cols];
    simd(
        #[inline(always)]
        || {
            // Aᵀ·m: the rows' combinations, column by column.
            let mut sums = sums[..8 * cols].chunks_exact_mut(cols);
            let mut upper: [&[f32]; 4] = [&[]; 4];
            let mut lower: [&[f32]; 4] = [&[]; 4];
            for j in 0..4 {
                let [m0, m1, m2, m3] = [point(j), point(4 + j), point(8 + j), point(12 + j)];
                let a = sums.next().expect("eight sums");
                combine(a, [m0, m1, m2], |[p, q, r]| p + q + r);
                let b = sums.next().expect("eight sums");
                combine(b, [m1, m2, m3], |[p, q, r]| p - q - r);
                (upper[j], lower[j]) = (a, b);
            }
            // ·A: the same combinations of the columns.
            let mut outputs = outputs.chunks_exact_mut(cols);
            for [c0, c1, c2, c3] in [upper, lower] {
                let left = outputs.next().expect("four outputs");
                combine(left, [c0, c1, c2], |[p, q, r]| p + q + r);
                let right = outputs.next().expect("four outputs");
                combine(right, [c1, c2, c3], |[p, q, r]| p - q - r);
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::conv_reference::assert_equals_definition;

    #[test]
    fn equals_the_definition_at_odd_sizes_and_across_images() {
        // (shape, out channels, kernel, stride, padding): odd widths and heights (half tiles
        // at the edges), the narrowest and widest maps the path takes with AVX2 (16-wide ones
        // go to the padded-plane kernel there), blocks of tiles that start mid-row and span
        // images (batch 3), more output channels than input channels; on a pool of three
        // threads, one block of tiles split into three blocks of output channels, and two
        // blocks (the second partial) split into two.
        let cases = [
            ([1, 3, 5, 8], 2, 3, 1, 1),
            ([2, 5, 9, 15], 7, 3, 1, 1),
            ([3, 16, 21, 12], 24, 3, 1, 1),
            ([1, 8, 32, 15], 8, 3, 1, 1),
            ([1, 8, 6, 8], 40, 3, 1, 1),
            ([1, 4, 20, 15], 20, 3, 1, 1),
        ];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("a pool");
        pool.install(|| {
            assert_equals_definition(
                &cases,
                |conv, output| conv.takes_winograd(output),
                |conv, (x, shape), out, act, threads| {
                    conv.winograd_conv(x, shape, out, act, threads)
                },
            );
        });
    }

    #[test]
    fn takes_only_three_by_three_stride_one_convolutions_given_a_place() {
        let (weight, bias, place) = (vec![0.0; 9], vec![0.0], OnceLock::new());
        let conv = Conv {
            weight: &weight,
            bias: &bias,
            in_channels: 1,
            kernel: 3,
            stride: 1,
            padding: 1,
            groups: 1,
            winograd: Some(&place),
        };
        assert!(conv.takes_winograd([8, 8]));
        assert!(!conv.takes_winograd([8, 7]));
        assert!(!conv.takes_winograd([8, 17]));
        assert!(
            !Conv {
                winograd: None,
                ..conv
            }
            .takes_winograd([8, 8])
        );
        assert!(!Conv { stride: 2, ..conv }.takes_winograd([8, 8]));
        assert!(!Conv { padding: 0, ..conv }.takes_winograd([8, 8]));
    }
}
