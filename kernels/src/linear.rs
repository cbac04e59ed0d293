//! Fully connected layers.

use crate::{Activation, Threads};

/// `out = act(x · weight + bias)` for `rows` rows of `x` (`[rows, inputs]`), with `weight`
/// stored `[inputs, outputs]`.
#[allow(clippy::too_many_arguments)] // a GEMM's operands and sizes
pub fn linear(
    x: &[f32],
    rows: usize,
    weight: &[f32],
    bias: &[f32],
    act: Activation,
    out: &mut [f32],
    threads: Threads,
) {
    let outputs = bias.len();
    let inputs = weight.len() / outputs.max(1);
    assert_eq!(x.len(), rows * inputs, "rows of the layer's input width");
    assert_eq!(
        out.len(),
        rows * outputs,
        "rows of the layer's output width"
    );
    let parallelism = match threads {
        Threads::One => gemm::Parallelism::None,
        Threads::Pool => gemm::Parallelism::Rayon(0),
    };
    // SAFETY: the operands are row-major with the lengths checked above.
    unsafe {
        gemm::gemm(
            rows,
            outputs,
            inputs,
            out.as_mut_ptr(),
            1,
            outputs as isize,
            false,
            x.as_ptr(),
            1,
            inputs as isize,
            weight.as_ptr(),
            1,
            outputs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    for row in out.chunks_exact_mut(outputs) {
        row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
        act.map_all(row, |v| v);
    }
}
