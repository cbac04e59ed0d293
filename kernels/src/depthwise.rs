//! Depthwise 3×3 convolutions (padding 1, stride 1 or 2), plane by plane.
//!
//! Each plane is copied once into zero-padded scratch planes laid out so that every tap of the
//! kernel reads one contiguous run of values at a fixed offset. The output is then nine
//! shifted multiply-adds over the whole plane at once, in long vector runs whatever the width
//! of the map (MobileNetV2's late maps are 4 to 16 values wide). A stride-2 plane is split by
//! row and column parity first, so its taps are contiguous too and no unused output is
//! computed. Small planes go to the eight-channel kernel of [`depthwise_lanes`] instead,
//! where the processor has AVX2.

use std::cell::RefCell;

use crate::depthwise_lanes::{self, depthwise_3x3_lanes};
use crate::elementwise::clamp_to;
use crate::simd::simd;
use crate::tasks::{SharedOutput, for_each, for_each_chunk};
use crate::{Activation, Shape, Threads};

/// Most output positions per plane that the eight-channel kernel of [`depthwise_lanes`]
/// takes, at stride 1 and at stride 2. It is faster on small planes (up to 2.6× on 8×4
/// planes, 2× at 16×8 with stride 2), and still faster at 32×16 with stride 2 (1.6 against
/// 1.9 ns per output with AVX2). At 32×16 with stride 1 the plane-by-plane kernel is as
/// fast with AVX2 and faster with AVX-512 (0.52 against 0.72 ns).
const LANES_MOST_OUTPUTS: [usize; 2] = [256, 512];
/// Channel planes per task (they share one set of scratch planes).
const PLANES_PER_TASK: usize = 8;
/// Outputs each block of the tap loop keeps in registers.
const LANES: usize = 16;
/// Floats of the sums of one band of output rows (16 KiB, so they stay in the L1 cache).
const BAND_FLOATS: usize = 4096;

/// `out = act(conv(x) + bias)` for a depthwise 3×3 convolution with padding 1 and `stride`
/// 1 or 2; `weight` is `[c, 1, 3, 3]`, `x` has `shape`, `out` the output shape.
pub(crate) fn depthwise_3x3(
    (weight, bias): (&[f32], &[f32]),
    stride: usize,
    (x, shape): (&[f32], Shape),
    out: &mut [f32],
    act: Activation,
    threads: Threads,
) {
    let [n, c, h, w] = shape;
    let layout = Layout::new(h, w, stride);
    let lanes_most = LANES_MOST_OUTPUTS[stride - 1];
    if layout.output[0] * layout.output[1] <= lanes_most && depthwise_lanes::available() {
        return depthwise_3x3_lanes((weight, bias), stride, (x, shape), out, act, threads);
    }
    let planes = n * c;
    let output = SharedOutput::new(out);
    for_each(threads, planes.div_ceil(PLANES_PER_TASK), |task| {
        let mut buffers = BUFFERS.with_borrow_mut(std::mem::take);
        let band = (BAND_FLOATS / layout.row).max(1);
        let (scratch, sums) = buffers.for_layout(layout, band * layout.row);
        for plane in task * PLANES_PER_TASK..((task + 1) * PLANES_PER_TASK).min(planes) {
            let channel = plane % c;
            let taps: &[f32; 9] = weight[channel * 9..channel * 9 + 9]
                .try_into()
                .expect("nine taps");
            let [oh, ow] = layout.output;
            // SAFETY: each plane is written by the one task that owns it.
            let plane_out =
                unsafe { std::slice::from_raw_parts_mut(output.at(plane * oh * ow), oh * ow) };
            simd(
                #[inline(always)]
                || {
                    layout.fill(&x[plane * h * w..(plane + 1) * h * w], scratch);
                    for (i, rows) in plane_out.chunks_mut(band * ow).enumerate() {
                        let sums = &mut sums[..rows.len() / ow * layout.row];
                        let sources = layout.sources(scratch, i * band, sums.len());
                        tap_sums(sums, sources, (taps, bias[channel]), act.range());
                        for (row, sums_row) in
                            rows.chunks_exact_mut(ow).zip(sums.chunks_exact(layout.row))
                        {
                            copy_row(row, &sums_row[..ow]);
                        }
                    }
                },
            );
        }
        BUFFERS.with_borrow_mut(|kept| *kept = buffers);
    });
}

thread_local! {
    /// The thread's scratch planes and sums, reused by its next task.
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Scratch planes, zero wherever [`Layout::fill`] does not write for `layout`, and sums.
#[derive(Debug, Default)]
struct Buffers {
    layout: Option<Layout>,
    scratch: Vec<f32>,
    sums: Vec<f32>,
}

impl Buffers {
    /// The scratch planes for `layout` (zeroed when the layout changed) and `sums` floats.
    fn for_layout(&mut self, layout: Layout, sums: usize) -> (&mut [f32], &mut [f32]) {
        if self.layout != Some(layout) {
            self.scratch.clear();
            self.scratch.resize(layout.scratch_len(), 0.0);
            self.layout = Some(layout);
        }
        // Every sum is written before it is read.
        self.sums.resize(sums, 0.0);
        (&mut self.scratch, &mut self.sums[..sums])
    }
}

/// Copies a row in 16-value blocks the compiler keeps inline (short rows would otherwise
/// each cost a call to `memcpy`).
#[inline(always)]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    let mut blocks = dst.chunks_exact_mut(LANES);
    let mut sources = src.chunks_exact(LANES);
    for (d, s) in (&mut blocks).zip(&mut sources) {
        let d: &mut [f32; LANES] = d.try_into().expect("a block");
        let s: &[f32; LANES] = s.try_into().expect("a block");
        *d = *s;
    }
    for (d, s) in blocks.into_remainder().iter_mut().zip(sources.remainder()) {
        *d = *s;
    }
}

/// `dw` (`[c, 1, 3, 3]`) = the gradient of a depthwise 3×3 convolution's weights (padding 1,
/// `stride` 1 or 2) from its input `x` (`shape`) and `grad`, its output's gradient: per
/// channel, the nine taps' runs of the input dotted with the output gradient, over the images.
pub(crate) fn depthwise_3x3_weight_grad(
    stride: usize,
    (x, shape): (&[f32], Shape),
    grad: &[f32],
    dw: &mut [f32],
    threads: Threads,
) {
    let [n, c, h, w] = shape;
    let layout = Layout::new(h, w, stride);
    let [oh, ow] = layout.output;
    let len = oh * layout.row;
    for_each_chunk(threads, dw, 9, |channel, taps| {
        let mut scratch = vec![0.0f32; layout.scratch_len()];
        // The output gradient at the row length of the sums, zero past each row's end.
        let mut spread = vec![0.0f32; len];
        let mut dots = [0.0f32; 9];
        simd(
            #[inline(always)]
            || {
                for b in 0..n {
                    let plane = b * c + channel;
                    layout.fill(&x[plane * h * w..(plane + 1) * h * w], &mut scratch);
                    let g = &grad[plane * oh * ow..(plane + 1) * oh * ow];
                    for (row, g_row) in spread.chunks_exact_mut(layout.row).zip(g.chunks_exact(ow))
                    {
                        copy_row(&mut row[..ow], g_row);
                    }
                    tap_dots(&spread, layout.sources(&scratch, 0, len), &mut dots);
                }
            },
        );
        taps.copy_from_slice(&dots);
    });
}

/// Where the scratch planes of one input plane put each value, and where each tap reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Input height (two heights can share every other field, but not the values `fill`
    /// writes).
    height: usize,
    /// Input width.
    width: usize,
    /// Output height and width.
    output: [usize; 2],
    /// 1 or 2.
    stride: usize,
    /// Row length of the scratch planes and of a band's sums (the output width plus padding).
    row: usize,
    /// Rows of one scratch plane.
    rows: usize,
}

impl Layout {
    fn new(h: usize, w: usize, stride: usize) -> Self {
        let output = [(h - 1) / stride + 1, (w - 1) / stride + 1];
        let (row, rows) = if stride == 1 {
            // One padded plane: a zero row above and below, two zero columns on the right
            // (the left padding of the next row follows the right padding of this one).
            (w + 2, h + 2)
        } else {
            // Four planes, one per (row parity, column parity) of the padded plane.
            (output[1] + 1, output[0] + 1)
        };
        Self {
            height: h,
            width: w,
            output,
            stride,
            row,
            rows,
        }
    }

    /// Floats of one scratch plane: its rows, then enough zeros for the last tap's run.
    fn plane_len(&self) -> usize {
        self.rows * self.row + 2
    }

    /// Floats of the scratch planes.
    fn scratch_len(&self) -> usize {
        self.plane_len() * if self.stride == 1 { 1 } else { 4 }
    }

    /// Copies `input` into the scratch planes (inlined into a caller's vector loop). Only the values inside the padding are written:
    /// the padding stays zero between planes.
    #[inline(always)]
    fn fill(&self, input: &[f32], scratch: &mut [f32]) {
        let w = self.width;
        if self.stride == 1 {
            for (y, src) in input.chunks_exact(w).enumerate() {
                let start = (y + 1) * self.row + 1;
                copy_row(&mut scratch[start..start + w], src);
            }
            return;
        }
        let plane = self.plane_len();
        for (y, src) in input.chunks_exact(w).enumerate() {
            // Padded row y + 1 and column x + 1: even input columns go to the planes of odd
            // padded columns, from their first column on; odd input columns to the planes of
            // even padded columns, from their second.
            let padded_row = y + 1;
            let (row_parity, row) = (padded_row % 2, padded_row / 2);
            let even_columns = 2 * row_parity * plane + row * self.row;
            let (head, tail) = scratch.split_at_mut(even_columns + plane);
            let even_dst = &mut head[even_columns + 1..even_columns + self.row];
            let odd_dst = &mut tail[..self.row];
            for ((pair, odd), even) in src.chunks_exact(2).zip(odd_dst.iter_mut()).zip(even_dst) {
                *odd = pair[0];
                *even = pair[1];
            }
            if w % 2 == 1 {
                odd_dst[w / 2] = src[w - 1];
            }
        }
    }

    /// The nine runs the taps read for `len` sums from output row `first_row` on, in the
    /// taps' row-major order.
    fn sources<'s>(&self, scratch: &'s [f32], first_row: usize, len: usize) -> [&'s [f32]; 9] {
        let run = |plane: usize, offset: usize| {
            let start = plane * self.plane_len() + first_row * self.row + offset;
            &scratch[start..start + len]
        };
        let r = self.row;
        if self.stride == 1 {
            std::array::from_fn(|t| run(0, (t / 3) * r + t % 3))
        } else {
            // Output (i, j) reads padded rows 2i + dy and columns 2j + dx: dy = 0, 2 are the
            // even rows i and i + 1, dy = 1 the odd row i; likewise for the columns.
            std::array::from_fn(|t| {
                let (dy, dx) = (t / 3, t % 3);
                let plane = 2 * (dy % 2) + dx % 2;
                run(plane, (dy / 2) * r + dx / 2)
            })
        }
    }
}

/// `sums[p] = act(bias + Σ taps[t] · sources[t][p])`, as fused multiply-adds, the
/// activation as the interval `(lo, hi)` it clamps to (NaN kept).
#[inline(always)]
fn tap_sums(
    sums: &mut [f32],
    sources: [&[f32]; 9],
    (taps, bias): (&[f32; 9], f32),
    range: (f32, f32),
) {
    let clamp = |v: f32| clamp_to(range, v);
    let k: [f32; 9] = *taps;
    assert!(
        sources.iter().all(|source| source.len() >= sums.len()),
        "a run for every sum"
    );
    let mut blocks = sums.chunks_exact_mut(LANES);
    let mut start = 0;
    for block in &mut blocks {
        let mut acc = [bias; LANES];
        for (&tap, source) in k.iter().zip(&sources) {
            // SAFETY: `start + LANES` is at most `sums.len()`, which no run is shorter than
            // (asserted above). Unchecked, the loop keeps the taps in registers and reads
            // each run at its address, instead of comparing nine lengths per block.
            let values = unsafe { &*source.as_ptr().add(start).cast::<[f32; LANES]>() };
            for (a, &v) in acc.iter_mut().zip(values) {
                *a = tap.mul_add(v, *a);
            }
        }
        block.copy_from_slice(&acc.map(clamp));
        start += LANES;
    }
    for (i, s) in blocks.into_remainder().iter_mut().enumerate() {
        *s = clamp(k.iter().zip(&sources).fold(bias, |acc, (&tap, source)| {
            tap.mul_add(source[start + i], acc)
        }));
    }
}

/// `dots[t] += Σ values[p] · sources[t][p]`, as fused multiply-adds, three taps (a row of
/// the kernel) per pass over `values`.
#[inline(always)]
fn tap_dots(values: &[f32], sources: [&[f32]; 9], dots: &mut [f32; 9]) {
    for (row, row_dots) in sources.chunks_exact(3).zip(dots.chunks_exact_mut(3)) {
        let sums = dots_of_three(values, [row[0], row[1], row[2]]);
        row_dots.iter_mut().zip(sums).for_each(|(dot, s)| *dot += s);
    }
}

/// `Σ values[p] · sources[t][p]` for three runs, in three vector sums kept in registers.
#[inline(always)]
fn dots_of_three(values: &[f32], [s0, s1, s2]: [&[f32]; 3]) -> [f32; 3] {
    const DOT_LANES: usize = 8;
    let block = |run: &[f32], at: usize| -> [f32; DOT_LANES] {
        run[at..at + DOT_LANES]
            .try_into()
            .expect("a block of the run")
    };
    let (mut a0, mut a1, mut a2) = (
        [0.0f32; DOT_LANES],
        [0.0f32; DOT_LANES],
        [0.0f32; DOT_LANES],
    );
    let blocks = values.len() / DOT_LANES;
    for at in (0..blocks).map(|b| b * DOT_LANES) {
        let (v, x0, x1, x2) = (
            block(values, at),
            block(s0, at),
            block(s1, at),
            block(s2, at),
        );
        for l in 0..DOT_LANES {
            a0[l] = v[l].mul_add(x0[l], a0[l]);
            a1[l] = v[l].mul_add(x1[l], a1[l]);
            a2[l] = v[l].mul_add(x2[l], a2[l]);
        }
    }
    let mut sums = [a0, a1, a2].map(|a| a.iter().sum::<f32>());
    for p in blocks * DOT_LANES..values.len() {
        for (sum, run) in sums.iter_mut().zip([s0, s1, s2]) {
            *sum = values[p].mul_add(run[p], *sum);
        }
    }
    sums
}
