//! Instance normalisation.

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
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / len;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / len;
        let scale = f64::from(gamma[channel]) / (var + eps).sqrt();
        let shift = f64::from(beta[channel]) - mean * scale;
        let (scale, shift) = (scale as f32, shift as f32);
        act.map_all(x, |v| v * scale + shift);
    });
}
