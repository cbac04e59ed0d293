//! Convolutions with one group and stride 1 or 2 that the Winograd path does not take (the
//! 3×3 convolutions, and the 7×7 stems), straight from padded input planes on x86-64 with AVX2
//! and FMA: each output row sums the weights' `k² · C` rows against shifted runs of the padded
//! planes ([`taps`]), split at stride 2 into four phases (even and odd rows and columns) so
//! that every run is contiguous. No im2col columns are built or packed, and the weights are
//! read where they lie. ResNet-50's first two stages, MobileNetV2's first convolution and the
//! stems of ResNet-50 and OSNet are the cases.

use std::cell::RefCell;

use crate::conv::{Conv, DIRECT_WEIGHTS, copy_strided};
use crate::pointwise::{Rows, Taps, taps};
use crate::simd::Isa;
use crate::tasks::{SharedOutput, for_each, for_each_chunk, tasks_wanted};
use crate::{Activation, Shape, Threads};

thread_local! {
    /// The calling thread's padded planes, reused by its next call.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether output rows `width` wide fill the padded-plane kernel's register tiles with both
/// instruction sets: 16 positions (two AVX2 vectors; one AVX-512 vector per row, two rows per
/// tile) or a multiple of 32.
pub(crate) fn fills_tap_tiles(width: usize) -> bool {
    width == 16 || width.is_multiple_of(32)
}

impl Conv<'_> {
    /// A convolution with a kernel wider than 1, stride 1 or 2, one group and at most
    /// [`DIRECT_WEIGHTS`] weights, on a processor with AVX2 and FMA.
    pub(crate) fn takes_padded_taps(&self) -> bool {
        self.kernel > 1
            && (1..=2).contains(&self.stride)
            && self.groups == 1
            && self.weight.len() <= DIRECT_WEIGHTS
            && Isa::best().is_some()
    }

    /// The convolution from padded planes, with the widest instructions the processor runs.
    pub(crate) fn padded_taps_conv(
        &self,
        x: &[f32],
        shape: Shape,
        out: &mut [f32],
        act: Activation,
        threads: Threads,
    ) {
        let isa = Isa::best().expect("a processor with AVX2 and FMA");
        self.padded_taps_conv_in(isa, (x, shape), out, act, threads);
    }

    /// The convolution from padded planes with `isa`'s instructions: every image's planes
    /// with a border of zeros (in phases at stride 2), then tasks over bands of output rows
    /// of each image.
    fn padded_taps_conv_in(
        &self,
        isa: Isa,
        (x, shape): (&[f32], Shape),
        out: &mut [f32],
        act: Activation,
        threads: Threads,
    ) {
        let [n, c, h, w] = shape;
        let [_, out_c, oh, ow] = self.output_shape(shape);
        let (k, stride, pad) = (self.kernel, self.stride, self.padding);
        // Each padded plane split into stride × stride phases: phase (a, b) holds the padded
        // plane's rows a, a + stride, … and columns b, b + stride, …, so that every tap of a
        // strided output row reads one contiguous run of one phase. A phase has
        // `(k − 1) / stride` rows and columns more than the output: those its last taps reach.
        let phase_h = (h + 2 * pad).div_ceil(stride);
        let phase_w = (w + 2 * pad).div_ceil(stride);
        let phase = phase_h * phase_w;
        let plane = stride * stride * phase;
        let mut padded = PADDED.with_borrow_mut(std::mem::take);
        padded.resize(n * c * plane, 0.0);
        for_each_chunk(threads, &mut padded, phase, |i, phase_values| {
            let (a, b) = (i / stride % stride, i % stride);
            let source = &x[i / (stride * stride) * h * w..][..h * w];
            // The phase's columns j whose input column stride · j + b − pad is inside.
            let first = pad.saturating_sub(b).div_ceil(stride).min(phase_w);
            let end = (w + pad)
                .saturating_sub(b)
                .div_ceil(stride)
                .clamp(first, phase_w);
            for (row, values) in phase_values.chunks_exact_mut(phase_w).enumerate() {
                let inside = (stride * row + a).checked_sub(pad).filter(|&y| y < h);
                let Some(y) = inside.filter(|_| first < end) else {
                    values.fill(0.0);
                    continue;
                };
                values[..first].fill(0.0);
                values[end..].fill(0.0);
                let input = &source[y * w + stride * first + b - pad..(y + 1) * w];
                copy_strided(&mut values[first..end], input, stride);
            }
        });
        let offsets: Vec<usize> = (0..c)
            .flat_map(|channel| {
                (0..k * k).map(move |t| {
                    let (ky, kx) = (t / k, t % k);
                    let phase_index = ky % stride * stride + kx % stride;
                    channel * plane + phase_index * phase + ky / stride * phase_w + kx / stride
                })
            })
            .collect();
        let layout = Taps {
            offsets: &offsets,
            row_step: phase_w,
            width: ow,
        };
        let rows = Rows {
            weight: self.weight,
            bias: self.bias,
            depth: c * k * k,
        };
        let bands = tasks_wanted(threads).div_ceil(n).clamp(1, oh);
        let band_rows = oh.div_ceil(bands);
        let output = SharedOutput::new(out);
        let padded_planes = &padded[..];
        for_each(threads, n * bands, |task| {
            let (b, band) = (task / bands, task % bands);
            let out_rows = band * band_rows..((band + 1) * band_rows).min(oh);
            if out_rows.is_empty() {
                return;
            }
            // SAFETY: the processor runs `isa` (the caller's choice); output position (y, x)
            // reads row y + ky / stride, column x + kx / stride of one of the image's phases,
            // inside it (a phase has (k − 1) / stride rows more than the output and as many
            // columns more than an output row); task (b, band) alone writes image `b`'s
            // output rows `out_rows`, inside `out`.
            unsafe {
                let image = padded_planes.as_ptr().add(b * c * plane);
                let dst = output.at(b * out_c * oh * ow);
                taps(isa, rows, (image, layout), (dst, oh * ow), out_rows, act);
            }
        });
        PADDED.with_borrow_mut(|kept| *kept = padded);
    }
}

#[cfg(test)]
#[cfg(target_arch = "x86_64")]
mod tests {
    use crate::conv_reference::assert_equals_definition;
    use crate::simd::Isa;

    #[test]
    fn equals_the_definition_at_odd_widths_tails_and_bands_with_every_instruction_set() {
        // (shape, out channels, kernel, stride, padding): rows 37 wide (two blocks of 16 and a
        // partial vector), 17 (one block, one partial), 33 and 1; weights of fewer and more
        // than twelve and six rows with row tails; more than 128 input channels; batch 3 with
        // bands of output rows across images; then at stride 2, odd and even sides; output rows
        // one vector wide (16 and 8 lanes), an odd number of them, at stride 1 and 2; then other
        // kernels and paddings: 7×7 stems at stride 2 (odd sides, several bands, an input
        // barely larger than the kernel), a 5×5 and a 2×2 at stride 1, a 3×3 without padding
        // and one with more padding than its reach.
        let cases = [
            ([2, 5, 7, 37], 14, 3, 1, 1),
            ([1, 3, 40, 17], 13, 3, 1, 1),
            ([1, 20, 9, 33], 29, 3, 1, 1),
            ([1, 4, 1, 1], 6, 3, 1, 1),
            ([3, 6, 5, 24], 7, 3, 1, 1),
            ([2, 5, 9, 37], 14, 3, 2, 1),
            ([1, 3, 8, 34], 13, 3, 2, 1),
            ([1, 20, 10, 7], 29, 3, 2, 1),
            ([1, 4, 1, 1], 6, 3, 2, 1),
            ([3, 6, 6, 2], 7, 3, 2, 1),
            ([1, 6, 7, 16], 14, 3, 1, 1),
            ([2, 5, 9, 32], 13, 3, 2, 1),
            ([1, 4, 5, 8], 7, 3, 1, 1),
            ([1, 3, 41, 69], 5, 7, 2, 3),
            ([2, 3, 20, 13], 40, 7, 2, 3),
            ([1, 3, 1, 2], 2, 7, 2, 3),
            ([1, 2, 12, 19], 9, 5, 1, 2),
            ([2, 3, 5, 18], 13, 2, 1, 0),
            ([1, 4, 7, 20], 6, 3, 2, 0),
            ([1, 3, 4, 5], 7, 3, 1, 3),
        ];
        for isa in Isa::all_available() {
            assert_equals_definition(
                &cases,
                |conv, _| conv.takes_padded_taps(),
                |conv, (x, shape), out, act, threads| {
                    conv.padded_taps_conv_in(isa, (x, shape), out, act, threads)
                },
            );
        }
    }
}
