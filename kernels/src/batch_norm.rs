//! Training-mode BatchNorm over NCHW maps: the batch statistics of each channel over images
//! and positions, the normalisation with the activation that follows it, and the gradients of
//! both. Statistics and gradient sums are summed in f64.

use crate::norm::sum_f64;
use crate::simd::simd;
use crate::tasks::{SharedOutput, for_each, for_each_chunk, for_each_pair};
use crate::{Activation, Shape, Threads};

/// A BatchNorm's affine parameters, one per channel.
#[derive(Debug, Clone, Copy)]
pub struct Affine<'a> {
    /// Scale (PyTorch's `weight`).
    pub gamma: &'a [f32],
    /// Shift (PyTorch's `bias`).
    pub beta: &'a [f32],
    /// Added to the variance.
    pub eps: f64,
}

/// Writes `act(batch_norm(x))` into `out`, normalised with the batch mean and biased variance
/// of each channel, which it writes into `mean` and `var`.
pub fn batch_norm_train(
    (x, shape): (&[f32], Shape),
    affine: Affine,
    act: Activation,
    out: &mut [f32],
    (mean, var): (&mut [f32], &mut [f32]),
    threads: Threads,
) {
    let [n, c, h, w] = shape;
    let plane = h * w;
    let count = (n * plane) as f64;
    let planes = |channel: usize| (0..n).map(move |b| &x[(b * c + channel) * plane..][..plane]);
    for_each_chunk(threads, mean, 1, |channel, m| {
        let sum: f64 = planes(channel)
            .map(|p| {
                simd(
                    #[inline(always)]
                    || sum_f64(p, |v| v),
                )
            })
            .sum();
        m[0] = (sum / count) as f32;
    });
    let means = &*mean;
    for_each_chunk(threads, var, 1, |channel, v| {
        let mu = f64::from(means[channel]);
        let sum: f64 = planes(channel)
            .map(|p| {
                simd(
                    #[inline(always)]
                    || sum_f64(p, |v| (v - mu) * (v - mu)),
                )
            })
            .sum();
        v[0] = (sum / count) as f32;
    });
    let (means, vars) = (&*mean, &*var);
    for_each_pair(threads, out, plane, x, plane, |index, out, x| {
        let channel = index % c;
        let normalise = affine.normalise(channel, means[channel], vars[channel]);
        out.copy_from_slice(x);
        act.map_all(out, |v| normalise.output(v));
    });
}

/// Writes the gradients of `act(batch_norm(x))` (as [`batch_norm_train`] computed it, with
/// the batch statistics `mean` and `var`) from `grad`, its output's gradient: the input's into
/// `dx`, the scale's into `dgamma` and the shift's into `dbeta`.
pub fn batch_norm_train_backward(
    (x, shape): (&[f32], Shape),
    affine: Affine,
    act: Activation,
    (mean, var): (&[f32], &[f32]),
    grad: &[f32],
    (dx, dgamma, dbeta): (&mut [f32], &mut [f32], &mut [f32]),
    threads: Threads,
) {
    let [n, c, h, w] = shape;
    let plane = h * w;
    let count = (n * plane) as f64;
    let (gamma_out, beta_out) = (SharedOutput::new(dgamma), SharedOutput::new(dbeta));
    let gate = act.range();
    for_each(threads, c, |channel| {
        let normalise = affine.normalise(channel, mean[channel], var[channel]);
        let (mut sum, mut sum_normalised) = (0.0f64, 0.0f64);
        for b in 0..n {
            let at = (b * c + channel) * plane..(b * c + channel + 1) * plane;
            let (s, sn) = simd(
                #[inline(always)]
                || gated_sums(&x[at.clone()], &grad[at], gate, normalise),
            );
            sum += s;
            sum_normalised += sn;
        }
        // SAFETY: each channel's task writes its own element of each output.
        unsafe {
            *gamma_out.at(channel) = sum_normalised as f32;
            *beta_out.at(channel) = sum as f32;
        }
    });
    let (dgamma, dbeta) = (&*dgamma, &*dbeta);
    for_each_pair(threads, dx, plane, grad, plane, |index, dx, g| {
        let channel = index % c;
        let normalise = affine.normalise(channel, mean[channel], var[channel]);
        let gamma = affine.gamma[channel];
        let mean_grad = (f64::from(dbeta[channel]) / count) as f32;
        let mean_normalised = (f64::from(dgamma[channel]) / count) as f32;
        let x = &x[index * plane..(index + 1) * plane];
        let (lo, hi) = gate;
        simd(
            #[inline(always)]
            || {
                for ((d, &g), &v) in dx.iter_mut().zip(g).zip(x) {
                    let y = normalise.output(v);
                    let g = if (y > lo) & (y < hi) { g } else { 0.0 };
                    let normalised = (v - normalise.mean) * normalise.inv_std;
                    *d = gamma * normalise.inv_std * (g - mean_grad - normalised * mean_normalised);
                }
            },
        );
    });
}

/// How one channel is normalised.
#[derive(Debug, Clone, Copy)]
struct Normalise {
    mean: f32,
    inv_std: f32,
    /// `gamma · inv_std`.
    scale: f32,
    beta: f32,
}

impl Normalise {
    /// The normalised value of `v`, before the activation (centred first, so a mean far from
    /// zero costs no precision).
    #[inline(always)]
    fn output(self, v: f32) -> f32 {
        (v - self.mean) * self.scale + self.beta
    }
}

/// Values of each vector block of the gradient sums.
const LANES: usize = 16;

/// `(Σ g, Σ g · x̂)` over a plane, `g` the output gradient where the activation let it
/// through (`lo < y < hi`, `y` the normalised value) and `x̂ = (x − mean) · inv_std`.
#[inline(always)]
fn gated_sums(x: &[f32], grad: &[f32], (lo, hi): (f32, f32), n: Normalise) -> (f64, f64) {
    let term = |v: f32, g: f32| {
        let y = n.output(v);
        let g = if (y > lo) & (y < hi) { g } else { 0.0 };
        (g, g * ((v - n.mean) * n.inv_std))
    };
    let (mut sums, mut normalised) = ([0.0f32; LANES], [0.0f32; LANES]);
    let mut blocks = x.chunks_exact(LANES).zip(grad.chunks_exact(LANES));
    for (xs, gs) in &mut blocks {
        for i in 0..LANES {
            let (g, gn) = term(xs[i], gs[i]);
            sums[i] += g;
            normalised[i] += gn;
        }
    }
    let done = x.len() / LANES * LANES;
    let (mut sum, mut sum_normalised) = (0.0f64, 0.0f64);
    for (&v, &g) in x[done..].iter().zip(&grad[done..]) {
        let (g, gn) = term(v, g);
        sum += f64::from(g);
        sum_normalised += f64::from(gn);
    }
    let total = |lanes: [f32; LANES]| lanes.iter().map(|&v| f64::from(v)).sum::<f64>();
    (sum + total(sums), sum_normalised + total(normalised))
}

impl Affine<'_> {
    /// How channel `channel` with the batch statistics `mean` and `var` is normalised.
    fn normalise(&self, channel: usize, mean: f32, var: f32) -> Normalise {
        let inv_std = 1.0 / (f64::from(var) + self.eps).sqrt();
        let scale = f64::from(self.gamma[channel]) * inv_std;
        Normalise {
            mean,
            inv_std: inv_std as f32,
            scale: scale as f32,
            beta: self.beta[channel],
        }
    }
}
