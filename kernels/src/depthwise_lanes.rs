//! Depthwise 3×3 convolutions over small planes, eight channels at a time, one per vector
//! lane (AVX2 and FMA).
//!
//! Each group of eight planes is transposed, eight positions at a time, into one zero-padded
//! map of 8-channel pixels. Every output pixel is then nine vector multiply-adds with the
//! eight channels' taps held in registers, four pixels side by side, and the results are
//! transposed back into the planes. Unlike the plane-by-plane kernel, a plane of a few dozen
//! values costs no more per value than a large one, and stride 2 reads its taps directly.

use std::cell::RefCell;

use crate::tasks::{SharedOutput, for_each};
use crate::{Activation, Shape, Threads};

/// Channels computed together, one per lane.
const LANES: usize = 8;

/// A pixel of eight interleaved channels.
type Pixel = [f32; LANES];

thread_local! {
    /// The thread's padded input map and output sums, both of interleaved pixels.
    static MAPS: RefCell<(Vec<Pixel>, Vec<Pixel>)> =
        const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Whether this processor runs [`depthwise_3x3_lanes`].
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out = act(conv(x) + bias)` for a depthwise 3×3 convolution with padding 1 and `stride`
/// 1 or 2 (`weight` `[c, 1, 3, 3]`, `x` of `shape`), eight channels per pass. Only where
/// [`available`].
pub(crate) fn depthwise_3x3_lanes(
    (weight, bias): (&[f32], &[f32]),
    stride: usize,
    (x, shape): (&[f32], Shape),
    out: &mut [f32],
    act: Activation,
    threads: Threads,
) {
    assert!(available(), "AVX2 and FMA");
    let [n, c, h, w] = shape;
    let geometry = Geometry {
        input: [h, w],
        output: [(h - 1) / stride + 1, (w - 1) / stride + 1],
        stride,
    };
    let [oh, ow] = geometry.output;
    let groups = c.div_ceil(LANES);
    let output = SharedOutput::new(out);
    for_each(threads, n * groups, |task| {
        let (b, first) = (task / groups, task % groups * LANES);
        let channels = first..(first + LANES).min(c);
        let mut taps = [[0.0; LANES]; 9];
        let mut biases = [0.0; LANES];
        for (lane, channel) in channels.clone().enumerate() {
            for (t, tap) in taps.iter_mut().enumerate() {
                tap[lane] = weight[channel * 9 + t];
            }
            biases[lane] = bias[channel];
        }
        let planes = &x[(b * c + first) * h * w..(b * c + channels.end) * h * w];
        // SAFETY: task (b, group) alone writes the output planes of its channels, which lie
        // back to back.
        let outputs = unsafe {
            let at = output.at((b * c + first) * oh * ow);
            std::slice::from_raw_parts_mut(at, channels.len() * oh * ow)
        };
        let mut maps = MAPS.with_borrow_mut(std::mem::take);
        let (padded, sums) = &mut maps;
        geometry.pad(padded);
        // Every sum is written before it is read.
        sums.resize(oh * ow, [0.0; LANES]);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available` checked the processor's features; the maps have the sizes
        // `geometry` needs.
        unsafe {
            avx2::interleave(planes, geometry.input, padded);
            avx2::convolve(padded, &geometry, (&taps, biases), act.range(), sums);
            avx2::deinterleave(sums, outputs);
        }
        MAPS.with_borrow_mut(|kept| *kept = maps);
    });
}

/// The sizes one group of planes is convolved at.
struct Geometry {
    /// Input height and width.
    input: [usize; 2],
    /// Output height and width.
    output: [usize; 2],
    /// 1 or 2.
    stride: usize,
}

impl Geometry {
    /// Sizes `padded` to the padded input map, `[h + 2, w + 2]` pixels and two more for the
    /// last taps, and zeroes its border; the inside is left for the planes.
    fn pad(&self, padded: &mut Vec<Pixel>) {
        let [h, w] = self.input;
        let row = w + 2;
        padded.resize((h + 2) * row + 2, [0.0; LANES]);
        padded[..row + 1].fill([0.0; LANES]);
        padded[(h + 1) * row - 1..].fill([0.0; LANES]);
        for y in 1..=h {
            padded[y * row + w + 1] = [0.0; LANES];
            padded[(y + 1) * row] = [0.0; LANES];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Geometry, LANES, Pixel};

    /// Output pixels computed side by side, so their multiply-adds do not wait for each
    /// other.
    const BLOCK: usize = 4;

    /// `[r0[j], r1[j], …, r7[j]]` for each `j`: the transpose of eight rows of eight values.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn transpose(r: [__m256; 8]) -> [__m256; 8] {
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        let u = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        [
            _mm256_permute2f128_ps::<0x20>(u[0], u[4]),
            _mm256_permute2f128_ps::<0x20>(u[1], u[5]),
            _mm256_permute2f128_ps::<0x20>(u[2], u[6]),
            _mm256_permute2f128_ps::<0x20>(u[3], u[7]),
            _mm256_permute2f128_ps::<0x31>(u[0], u[4]),
            _mm256_permute2f128_ps::<0x31>(u[1], u[5]),
            _mm256_permute2f128_ps::<0x31>(u[2], u[6]),
            _mm256_permute2f128_ps::<0x31>(u[3], u[7]),
        ]
    }

    /// `v` clamped to `[lo, hi]` lane by lane, NaN kept: each instruction returns its second
    /// operand when one of them is NaN.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn clamp(v: __m256, lo: __m256, hi: __m256) -> __m256 {
        _mm256_min_ps(hi, _mm256_max_ps(lo, v))
    }

    /// Writes the planes (up to eight, `[h, w]` each, back to back) into the inside of the
    /// zero-padded map `padded` (`[h + 2, w + 2]` pixels), lane `l` from plane `l`; missing
    /// planes leave their lanes zero.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn interleave(planes: &[f32], [h, w]: [usize; 2], padded: &mut [Pixel]) {
        let len = h * w;
        let count = planes.len() / len;
        let row = w + 2;
        assert!(padded.len() >= (h + 2) * row);
        // The padded spot of position p = (y, x): (y + 1, x + 1).
        let (mut y, mut x) = (0, 0);
        let mut next_spot = || {
            let at = (y + 1) * row + x + 1;
            x += 1;
            if x == w {
                (y, x) = (y + 1, 0);
            }
            at
        };
        let whole = len / LANES * LANES;
        for p in (0..whole).step_by(LANES) {
            let rows = std::array::from_fn(|l| {
                if l < count {
                    // SAFETY: plane `l` holds positions `p..p + 8`.
                    unsafe { _mm256_loadu_ps(planes.as_ptr().add(l * len + p)) }
                } else {
                    _mm256_setzero_ps()
                }
            });
            let pixels = transpose(rows);
            for pixel in pixels {
                // SAFETY: the spot of a position is inside the padded map.
                unsafe { _mm256_storeu_ps(padded.as_mut_ptr().add(next_spot()).cast(), pixel) };
            }
        }
        for p in whole..len {
            let pixel = &mut padded[next_spot()];
            for (l, value) in pixel.iter_mut().enumerate() {
                *value = if l < count { planes[l * len + p] } else { 0.0 };
            }
        }
    }

    /// `sums[y, x] = clamp(bias + Σ taps[t] · padded[y·stride + dy, x·stride + dx])`, lane by
    /// lane, over the output pixels.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn convolve(
        padded: &[Pixel],
        geometry: &Geometry,
        (taps, biases): (&[Pixel; 9], Pixel),
        (lo, hi): (f32, f32),
        sums: &mut [Pixel],
    ) {
        let [h, w] = geometry.input;
        let [oh, ow] = geometry.output;
        let stride = geometry.stride;
        let row = w + 2;
        assert!(padded.len() >= (h + 2) * row && sums.len() == oh * ow);
        // SAFETY: pixels are eight floats.
        let k: [__m256; 9] = std::array::from_fn(|t| unsafe { _mm256_loadu_ps(taps[t].as_ptr()) });
        // SAFETY: as above.
        let bias = unsafe { _mm256_loadu_ps(biases.as_ptr()) };
        let (lo, hi) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
        let base = padded.as_ptr().cast::<f32>();
        let out = sums.as_mut_ptr().cast::<f32>();
        for y in 0..oh {
            let top = y * stride * row;
            let mut x = 0;
            // The pixel at padded offset `at` for tap `t` of output `x + i`.
            let tap_at = |x: usize, t: usize| (top + x * stride + t / 3 * row + t % 3) * LANES;
            while x + BLOCK <= ow {
                let mut acc = [bias; BLOCK];
                for (t, &tap) in k.iter().enumerate() {
                    for (i, a) in acc.iter_mut().enumerate() {
                        // SAFETY: output (y, x + i) reads padded rows y·stride..+3 and columns
                        // (x + i)·stride..+3, inside the map.
                        let v = unsafe { _mm256_loadu_ps(base.add(tap_at(x + i, t))) };
                        *a = _mm256_fmadd_ps(tap, v, *a);
                    }
                }
                for (i, a) in acc.into_iter().enumerate() {
                    let clamped = clamp(a, lo, hi);
                    // SAFETY: output pixel (y, x + i) is within `sums`.
                    unsafe { _mm256_storeu_ps(out.add((y * ow + x + i) * LANES), clamped) };
                }
                x += BLOCK;
            }
            while x < ow {
                let mut a = bias;
                for (t, &tap) in k.iter().enumerate() {
                    // SAFETY: as above.
                    let v = unsafe { _mm256_loadu_ps(base.add(tap_at(x, t))) };
                    a = _mm256_fmadd_ps(tap, v, a);
                }
                let clamped = clamp(a, lo, hi);
                // SAFETY: as above.
                unsafe { _mm256_storeu_ps(out.add((y * ow + x) * LANES), clamped) };
                x += 1;
            }
        }
    }

    /// Writes lane `l` of every pixel of `sums` into plane `l` of `outputs` (planes of
    /// `sums.len()` values, back to back, up to eight).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn deinterleave(sums: &[Pixel], outputs: &mut [f32]) {
        let len = sums.len();
        let count = outputs.len() / len.max(1);
        let whole = if count == LANES {
            len / LANES * LANES
        } else {
            0
        };
        for p in (0..whole).step_by(LANES) {
            // SAFETY: pixels `p..p + 8` are within `sums`.
            let pixels = std::array::from_fn(|j| unsafe {
                _mm256_loadu_ps(sums.as_ptr().add(p + j).cast())
            });
            let rows = transpose(pixels);
            for (l, values) in rows.into_iter().enumerate() {
                let dst = &mut outputs[l * len + p..l * len + p + LANES];
                // SAFETY: `dst` holds eight values.
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), values) };
            }
        }
        for (l, plane) in outputs.chunks_exact_mut(len.max(1)).enumerate() {
            for (v, pixel) in plane[whole..].iter_mut().zip(&sums[whole..]) {
                *v = pixel[l];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition, in f64.
    fn reference(
        (weight, bias): (&[f32], &[f32]),
        stride: usize,
        (x, [n, c, h, w]): (&[f32], Shape),
        act: Activation,
    ) -> Vec<f32> {
        let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
        let mut out = Vec::with_capacity(n * c * oh * ow);
        for plane in 0..n * c {
            let channel = plane % c;
            for y in 0..oh {
                for x_out in 0..ow {
                    let mut sum = f64::from(bias[channel]);
                    for t in 0..9 {
                        let iy = (y * stride + t / 3).checked_sub(1).filter(|&i| i < h);
                        let ix = (x_out * stride + t % 3).checked_sub(1).filter(|&i| i < w);
                        if let (Some(iy), Some(ix)) = (iy, ix) {
                            let v = x[plane * h * w + iy * w + ix];
                            sum += f64::from(weight[channel * 9 + t]) * f64::from(v);
                        }
                    }
                    let (lo, hi) = act.range();
                    out.push((sum as f32).clamp(lo, hi));
                }
            }
        }
        out
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn equals_the_definition_at_odd_sizes_and_partial_channel_groups_and_keeps_nan() {
        assert!(available(), "this test needs a processor with AVX2 and FMA");
        // (shape, stride): one group and several, a partial last group, planes whose size is
        // not a multiple of eight, 1×1 and 2×1 planes, batch 1 and 2.
        let cases = [
            ([1, 8, 8, 4], 1),
            ([2, 19, 5, 7], 1),
            ([1, 3, 1, 1], 1),
            ([2, 16, 16, 8], 2),
            ([1, 11, 7, 9], 2),
            ([1, 5, 2, 1], 2),
            ([1, 24, 3, 13], 1),
        ];
        for (case, (shape, stride)) in cases.into_iter().enumerate() {
            let [n, c, h, w] = shape;
            let value =
                |i: usize, scale: f32| ((i * 7919 + case * 31) % 97) as f32 / 48.5 * scale - scale;
            let mut x: Vec<f32> = (0..n * c * h * w).map(|i| value(i, 3.0)).collect();
            // A NaN in the first plane: the outputs whose window holds it are NaN.
            x[0] = f32::NAN;
            let weight: Vec<f32> = (0..c * 9).map(|i| value(i + 5, 1.0)).collect();
            let bias: Vec<f32> = (0..c).map(|i| value(i + 11, 1.0)).collect();
            for act in [Activation::Identity, Activation::Relu, Activation::Relu6] {
                let expected = reference((&weight, &bias), stride, (&x, shape), act);
                for threads in [Threads::One, Threads::Pool] {
                    let mut got = vec![f32::NAN; expected.len()];
                    depthwise_3x3_lanes(
                        (&weight, &bias),
                        stride,
                        (&x, shape),
                        &mut got,
                        act,
                        threads,
                    );
                    assert!(got[0].is_nan(), "NaN kept");
                    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                        assert!(
                            (g - e).abs() <= 1e-5 * e.abs().max(1.0) || (g.is_nan() && e.is_nan()),
                            "{shape:?} s{stride} {act:?} at {i}: {g} vs {e}"
                        );
                    }
                }
            }
        }
    }
}
