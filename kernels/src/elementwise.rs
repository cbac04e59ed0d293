//! Passes over every value: activations, sums, channel gates.

use crate::simd::simd;
use crate::tasks::for_each_chunk;
use crate::{Activation, Shape, Threads};

/// Values per task of the elementwise passes.
const CHUNK: usize = 1 << 14;

impl Activation {
    /// Applies the activation to `v`, keeping NaN as PyTorch does.
    #[inline(always)]
    fn apply(self, v: f32) -> f32 {
        clamp_to(self.range(), v)
    }

    /// The interval the activation clamps its input to; its gradient passes where the input
    /// lies strictly inside (PyTorch's: ReLU where `v > 0`, ReLU6 where `0 < v < 6`).
    #[inline(always)]
    pub(crate) fn range(self) -> (f32, f32) {
        match self {
            Self::Identity => (f32::NEG_INFINITY, f32::INFINITY),
            Self::Relu => (0.0, f32::INFINITY),
            Self::Relu6 => (0.0, 6.0),
        }
    }

    /// Sets every value `v` to `act(f(v))`, the activation chosen once, outside the loop, so
    /// the loop vectorises.
    #[inline(always)]
    pub(crate) fn map_all(self, values: &mut [f32], f: impl Fn(f32) -> f32) {
        simd(
            #[inline(always)]
            || match self {
                Self::Identity => values.iter_mut().for_each(|v| *v = f(*v)),
                Self::Relu => values.iter_mut().for_each(|v| *v = Self::Relu.apply(f(*v))),
                Self::Relu6 => values
                    .iter_mut()
                    .for_each(|v| *v = Self::Relu6.apply(f(*v))),
            },
        );
    }

    /// Whether `act(v + bias)` is `v` itself: the identity with no bias.
    #[inline(always)]
    fn leaves_unchanged(self, bias: f32) -> bool {
        self == Self::Identity && bias == 0.0
    }

    /// Sets every value `v` to `act(v + bias)`; no pass at all when that changes nothing.
    #[inline(always)]
    pub(crate) fn add_bias(self, values: &mut [f32], bias: f32) {
        if !self.leaves_unchanged(bias) {
            self.map_all(values, |v| v + bias);
        }
    }

    /// Sets `dst[i]` to `act(src[i] + bias)` in one pass (`src` at least as long as `dst`).
    #[inline(always)]
    pub(crate) fn add_bias_into(self, dst: &mut [f32], src: &[f32], bias: f32) {
        let src = &src[..dst.len()];
        if self.leaves_unchanged(bias) {
            dst.copy_from_slice(src);
            return;
        }
        simd(
            #[inline(always)]
            || {
                let (lo, hi) = self.range();
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = clamp_to((lo, hi), s + bias);
                }
            },
        );
    }

    /// [`Activation::add_bias_into`] as `write` says: over `dst`, or `dst[i] = act(dst[i] +
    /// src[i] + bias)`.
    #[inline(always)]
    pub(crate) fn write_with_bias(self, write: Write, dst: &mut [f32], src: &[f32], bias: f32) {
        match write {
            Write::Replace => self.add_bias_into(dst, src, bias),
            Write::Add => {
                let src = &src[..dst.len()];
                simd(
                    #[inline(always)]
                    || {
                        let (lo, hi) = self.range();
                        for (d, &s) in dst.iter_mut().zip(src) {
                            *d = clamp_to((lo, hi), s + bias + *d);
                        }
                    },
                );
            }
        }
    }
}

/// Where a kernel's results go: over the output's values, or added to them (a residual sum,
/// the activation applied after the addition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// The output's values are replaced.
    Replace,
    /// The results are added to the output's values.
    Add,
}

/// `v` clamped to `(lo, hi)`, NaN kept: two selects, not a branch, so loops over it vectorise.
#[inline(always)]
pub(crate) fn clamp_to((lo, hi): (f32, f32), v: f32) -> f32 {
    let v = if v < lo { lo } else { v };
    if v > hi { hi } else { v }
}

/// Applies `act` to every value in place.
pub fn activate(values: &mut [f32], act: Activation, threads: Threads) {
    if act == Activation::Identity {
        return;
    }
    for_each_chunk(threads, values, CHUNK, |_, chunk| act.map_all(chunk, |v| v));
}

/// `a = act(a + b)`, value by value.
pub fn add(a: &mut [f32], b: &[f32], act: Activation, threads: Threads) {
    assert_eq!(a.len(), b.len(), "summands of one shape");
    for_each_chunk(threads, a, CHUNK, |i, chunk| {
        let b = &b[i * CHUNK..i * CHUNK + chunk.len()];
        simd(
            #[inline(always)]
            || {
                chunk.iter_mut().zip(b).for_each(|(a, &b)| *a += b);
                act.map_all(chunk, |v| v);
            },
        );
    });
}

/// Scales each channel plane of `x` (shape `shape`) by the sigmoid of its entry of `logits`
/// (`[n, c]`), in place.
pub fn gate(x: &mut [f32], shape: Shape, logits: &[f32], threads: Threads) {
    let [n, c, h, w] = shape;
    assert_eq!(logits.len(), n * c, "one logit per channel plane");
    for_each_chunk(threads, x, h * w, |plane, values| {
        let gate = 1.0 / (1.0 + (-logits[plane]).exp());
        Activation::Identity.map_all(values, |v| v * gate);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_sums_and_activates_past_a_chunk() {
        let len = CHUNK + 5;
        let mut a: Vec<f32> = (0..len).map(|i| i as f32 % 7.0 - 3.0).collect();
        let b: Vec<f32> = (0..len).map(|i| i as f32 % 5.0 - 1.0).collect();
        let expected: Vec<f32> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x + y).clamp(0.0, 6.0))
            .collect();
        add(&mut a, &b, Activation::Relu6, Threads::Pool);
        assert_eq!(a, expected);
    }

    #[test]
    fn activations_keep_nan() {
        let mut v = vec![f32::NAN, -1.0, 7.0];
        activate(&mut v, Activation::Relu6, Threads::One);
        assert!(v[0].is_nan());
        assert_eq!(&v[1..], &[0.0, 6.0]);
    }

    #[test]
    fn gate_scales_each_plane_by_its_sigmoid() {
        let mut x = vec![2.0f32; 2 * 3 * 2];
        let logits = [0.0, 100.0, -100.0, 1.0, 2.0, 3.0];
        gate(&mut x, [2, 3, 1, 2], &logits, Threads::Pool);
        for (plane, &l) in logits.iter().enumerate() {
            let g = 2.0 / (1.0 + (-l).exp());
            assert_eq!(&x[plane * 2..plane * 2 + 2], &[g, g]);
        }
    }
}
