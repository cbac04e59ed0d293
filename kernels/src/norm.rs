//! Instance normalisation.

use crate::simd::simd;
use crate::tasks::for_each_chunk;
use crate::{Activation, Shape, Threads};

/// Affine instance normalisation of every channel plane of `x` in place (biased variance, as
/// PyTorch; statistics summed in f64), then `act`.
pub fn instance_norm(
    x: &mut [f32],
    shape: Shape,
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    act: Activation,
    threads: Threads,
) {
    let [_, c, h, w] = shape;
    for_each_chunk(threads, x, h * w, |plane, x| {
        let channel = plane % c;
        let len = x.len() as f64;
        let mean = simd(
            #[inline(always)]
            || sum_f64(x, |v| v),
        ) / len;
        let var = simd(
            #[inline(always)]
            || sum_f64(x, |v| (v - mean) * (v - mean)),
        ) / len;
        let scale = f64::from(gamma[channel]) / (var + eps).sqrt();
        let shift = f64::from(beta[channel]) - mean * scale;
        let (scale, shift) = (scale as f32, shift as f32);
        act.map_all(x, |v| v * scale + shift);
    });
}

/// The sum of `f(v)` over `values`, in f64, in eight lanes a vector unit keeps side by side.
#[inline(always)]
pub(crate) fn sum_f64(values: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut blocks = values.chunks_exact(8);
    for block in &mut blocks {
        lanes
            .iter_mut()
            .zip(block)
            .for_each(|(s, &v)| *s += f(f64::from(v)));
    }
    let rest: f64 = blocks.remainder().iter().map(|&v| f(f64::from(v))).sum();
    lanes.iter().sum::<f64>() + rest
}
