//! 3×3 convolutions with stride 1 and padding 1 over maps the Winograd path does not take,
//! straight from padded input planes on x86-64 with AVX2 and FMA: each output row sums the
//! weights' `9 · C` rows against shifted runs of the padded planes ([`taps`]), so no im2col
//! columns are built or packed, and the weights are read where they lie. ResNet-50's first
//! stage (64 channels over 64×32 maps) is the case.

use std::cell::RefCell;

use crate::conv::{Conv, DIRECT_WEIGHTS};
use crate::pointwise::{Rows, Taps, taps};
use crate::simd::Isa;
use crate::tasks::{SharedOutput, for_each, for_each_chunk, tasks_wanted};
use crate::{Activation, Shape, Threads};

thread_local! {
    /// The calling thread's padded planes, reused by its next call.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Conv<'_> {
    /// A 3×3 convolution with stride 1, padding 1, one group and at most [`DIRECT_WEIGHTS`]
    /// weights, on a processor with AVX2 and FMA.
    pub(crate) fn takes_padded_taps(&self) -> bool {
        self.kernel == 3
            && self.stride == 1
            && self.padding == 1
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
    /// with a border of zeros, then tasks over bands of output rows of each image.
    fn padded_taps_conv_in(
        &self,
        isa: Isa,
        (x, shape): (&[f32], Shape),
        out: &mut [f32],
        act: Activation,
        threads: Threads,
    ) {
        let [n, c, h, w] = shape;
        let out_c = self.out_channels();
        let (padded_h, padded_w) = (h + 2, w + 2);
        let plane = padded_h * padded_w;
        let mut padded = PADDED.with_borrow_mut(std::mem::take);
        padded.resize(n * c * plane, 0.0);
        for_each_chunk(threads, &mut padded, plane, |i, padded_plane| {
            let source = &x[i * h * w..(i + 1) * h * w];
            let (top, rest) = padded_plane.split_at_mut(padded_w);
            let (inside, bottom) = rest.split_at_mut(h * padded_w);
            top.fill(0.0);
            bottom.fill(0.0);
            for (row, values) in inside
                .chunks_exact_mut(padded_w)
                .zip(source.chunks_exact(w))
            {
                row[0] = 0.0;
                row[1..=w].copy_from_slice(values);
                row[w + 1] = 0.0;
            }
        });
        let offsets: Vec<usize> = (0..c)
            .flat_map(|channel| (0..9).map(move |t| channel * plane + t / 3 * padded_w + t % 3))
            .collect();
        let layout = Taps {
            offsets: &offsets,
            row_step: padded_w,
            width: w,
        };
        let rows = Rows {
            weight: self.weight,
            bias: self.bias,
            depth: c * 9,
        };
        let bands = tasks_wanted(threads).div_ceil(n).clamp(1, h);
        let band_rows = h.div_ceil(bands);
        let output = SharedOutput::new(out);
        let padded_planes = &padded[..];
        for_each(threads, n * bands, |task| {
            let (b, band) = (task / bands, task % bands);
            let out_rows = band * band_rows..((band + 1) * band_rows).min(h);
            if out_rows.is_empty() {
                return;
            }
            // SAFETY: the processor runs `isa` (the caller's choice); the offsets reach the
            // image's padded planes, whose rows are `w + 2` long, and a tile reads at most `w`
            // positions from an output row's start plus a tap's column shift of at most 2;
            // task (b, band) alone writes image `b`'s output rows `out_rows`, inside `out`.
            unsafe {
                let image = padded_planes.as_ptr().add(b * c * plane);
                let dst = output.at(b * out_c * h * w);
                taps(isa, rows, (image, layout), (dst, h * w), out_rows, act);
            }
        });
        PADDED.with_borrow_mut(|kept| *kept = padded);
    }
}

#[cfg(test)]
mod tests {
    use crate::conv_reference::assert_equals_definition;
    use crate::simd::Isa;

    #[test]
    fn equals_the_definition_at_odd_widths_tails_and_bands_with_every_instruction_set() {
        let mut isas = vec![Isa::Avx2];
        if std::is_x86_feature_detected!("avx512f") {
            isas.push(Isa::Avx512);
        }
        assert!(
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
            "this test needs a processor with AVX2 and FMA"
        );
        // (shape, out channels, kernel, stride, padding): rows 37 wide (two blocks of 16 and a
        // partial vector), 17 (one block, one partial), 33 and 1; weights of fewer and more
        // than twelve and six rows with row tails; more than 128 input channels; batch 3 with
        // bands of output rows across images.
        let cases = [
            ([2, 5, 7, 37], 14, 3, 1, 1),
            ([1, 3, 40, 17], 13, 3, 1, 1),
            ([1, 20, 9, 33], 29, 3, 1, 1),
            ([1, 4, 1, 1], 6, 3, 1, 1),
            ([3, 6, 5, 24], 7, 3, 1, 1),
        ];
        for isa in isas {
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
