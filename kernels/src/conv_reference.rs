//! The convolution by its definition, in f64, and a check of a convolution path against it.

use std::sync::OnceLock;

use crate::conv::Conv;
use crate::{Activation, Shape, Threads};

/// The convolution by its definition, in f64.
fn reference(conv: &Conv, (x, shape): (&[f32], Shape), act: Activation) -> Vec<f32> {
    let [n, c, h, w] = shape;
    let [_, out_c, oh, ow] = conv.output_shape(shape);
    let (k, s, pad) = (conv.kernel, conv.stride, conv.padding);
    let mut out = Vec::with_capacity(n * out_c * oh * ow);
    for b in 0..n {
        for o in 0..out_c {
            for y in 0..oh {
                for x_out in 0..ow {
                    let mut sum = f64::from(conv.bias[o]);
                    for (i, &wt) in conv.weight[o * c * k * k..][..c * k * k].iter().enumerate() {
                        let (ch, ky, kx) = (i / (k * k), i / k % k, i % k);
                        let iy = (y * s + ky).checked_sub(pad).filter(|&v| v < h);
                        let ix = (x_out * s + kx).checked_sub(pad).filter(|&v| v < w);
                        if let (Some(iy), Some(ix)) = (iy, ix) {
                            let v = x[((b * c + ch) * h + iy) * w + ix];
                            sum += f64::from(wt) * f64::from(v);
                        }
                    }
                    let (lo, hi) = act.range();
                    out.push((sum as f32).clamp(lo, hi));
                }
            }
        }
    }
    out
}

/// A test convolution: `(shape, out channels, kernel, stride, padding)`, one group.
pub(crate) type Case = (Shape, usize, usize, usize, usize);

/// Value `i` of test case `case`'s operands, of both signs, up to `scale`.
pub(crate) fn case_value(case: usize, i: usize, scale: f32) -> f32 {
    ((i * 7919 + case * 31) % 97) as f32 / 48.5 * scale - scale
}

/// Calls `check` with case number `case`'s convolution, which keeps a place for Winograd's
/// weights, and its input.
pub(crate) fn with_case_conv(
    case: usize,
    (shape, out_c, kernel, stride, padding): Case,
    check: impl FnOnce(&Conv, &[f32]),
) {
    let [n, c, h, w] = shape;
    let value = |i: usize, scale: f32| case_value(case, i, scale);
    let x: Vec<f32> = (0..n * c * h * w).map(|i| value(i, 3.0)).collect();
    let weight: Vec<f32> = (0..out_c * c * kernel * kernel)
        .map(|i| value(i + 5, 0.2))
        .collect();
    let bias: Vec<f32> = (0..out_c).map(|i| value(i + 11, 1.0)).collect();
    let place = OnceLock::new();
    let conv = Conv {
        weight: &weight,
        bias: &bias,
        in_channels: c,
        kernel,
        stride,
        padding,
        groups: 1,
        winograd: Some(&place),
    };
    check(&conv, &x);
}

/// Checks `path` (one convolution path, called directly with the convolution, its input and
/// shape, the output, the activation and the threads) against the definition for each case,
/// with and without a ReLU, on one thread and on the pool; `taken` must say that each case's
/// convolution reaches the path.
pub(crate) fn assert_equals_definition(
    cases: &[Case],
    taken: impl Fn(&Conv, [usize; 2]) -> bool,
    path: impl Fn(&Conv, (&[f32], Shape), &mut [f32], Activation, Threads),
) {
    for (case, &spec) in cases.iter().enumerate() {
        with_case_conv(case, spec, |conv, x| {
            let shape = spec.0;
            let [_, _, oh, ow] = conv.output_shape(shape);
            assert!(taken(conv, [oh, ow]), "case {case} takes the path");
            for act in [Activation::Identity, Activation::Relu] {
                let expected = reference(conv, (x, shape), act);
                for threads in [Threads::One, Threads::Pool] {
                    let mut got = vec![f32::NAN; expected.len()];
                    path(conv, (x, shape), &mut got, act, threads);
                    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                        assert!(
                            (g - e).abs() <= 1e-5 * e.abs().max(1.0),
                            "case {case} {act:?} {threads:?} at {i}: {g} vs {e}"
                        );
                    }
                }
            }
        });
    }
}
