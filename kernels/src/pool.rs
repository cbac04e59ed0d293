//! Pooling: the stem's 3×3 max pooling, 2×2 average pooling and global average pooling.

use crate::simd::simd;
use crate::tasks::for_each_pair;
use crate::{Shape, Threads};

/// 3×3 max pooling, stride 2, padding 1 (padding never wins; NaN propagates) of `x` into
/// `out`, which holds `[n, c, (h - 1) / 2 + 1, (w - 1) / 2 + 1]`.
pub fn max_pool_3x3_s2(x: &[f32], shape: Shape, out: &mut [f32], threads: Threads) {
    let [_, _, h, w] = shape;
    let (oh, ow) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
    for_each_pair(threads, out, oh * ow, x, h * w, |_, o, x| {
        // Per output row: the maximum of its window's (up to) three input rows, column by
        // column, in contiguous runs; then the windows across that one row.
        let mut column_maxima = vec![0.0f32; w];
        for (r, out_row) in o.chunks_exact_mut(ow).enumerate() {
            let first = (2 * r).saturating_sub(1);
            let mut rows = x[first * w..(2 * r + 2).min(h) * w].chunks_exact(w);
            let top = rows.next().expect("a window's first row");
            simd(
                #[inline(always)]
                || {
                    column_maxima.copy_from_slice(top);
                    for row in rows {
                        column_maxima
                            .iter_mut()
                            .zip(row)
                            .for_each(|(a, &b)| *a = max_nan(*a, b));
                    }
                    window_maxima(&column_maxima, out_row);
                },
            );
        }
    });
}

/// `m[j]` = the maximum of `row`'s columns `2j − 1 ..= 2j + 1` that exist: a window wholly
/// inside the row is a pair and the next pair's first value, which vectorises; only the
/// first window and one cut by the row's end are computed one by one.
#[inline(always)]
fn window_maxima(row: &[f32], m: &mut [f32]) {
    let w = row.len();
    let window = |j: usize| {
        let columns = &row[(2 * j).saturating_sub(1)..(2 * j + 2).min(w)];
        columns[1..].iter().fold(columns[0], |a, &b| max_nan(a, b))
    };
    m[0] = window(0);
    // Windows j ≥ 1 read the pair (2j − 1, 2j), then column 2j + 1.
    let pairs = row[1..].chunks_exact(2);
    let thirds = row.get(3..).unwrap_or_default().chunks_exact(2);
    let inside = pairs.len().min(thirds.len()).min(m.len() - 1);
    for ((m, pair), third) in m[1..=inside].iter_mut().zip(pairs).zip(thirds) {
        *m = max_nan(max_nan(pair[0], pair[1]), third[0]);
    }
    for (j, m) in m.iter_mut().enumerate().skip(inside + 1) {
        *m = window(j);
    }
}

/// 2×2 average pooling with stride 2 of `x` into `out` (`[n, c, h / 2, w / 2]`).
pub fn avg_pool_2x2(x: &[f32], shape: Shape, out: &mut [f32], threads: Threads) {
    let [_, _, h, w] = shape;
    let (oh, ow) = (h / 2, w / 2);
    for_each_pair(threads, out, oh * ow, x, h * w, |_, o, x| {
        for (r, out_row) in o.chunks_exact_mut(ow).enumerate() {
            let top = x[2 * r * w..(2 * r + 1) * w].chunks_exact(2);
            let bottom = x[(2 * r + 1) * w..(2 * r + 2) * w].chunks_exact(2);
            for ((v, t), b) in out_row.iter_mut().zip(top).zip(bottom) {
                *v = (t[0] + t[1] + b[0] + b[1]) / 4.0;
            }
        }
    });
}

/// The mean of each channel plane of `x` into `out` (`[n, c]`), summed in f32.
pub fn global_avg_pool(x: &[f32], shape: Shape, out: &mut [f32], threads: Threads) {
    let [_, _, h, w] = shape;
    let len = h * w;
    for_each_pair(threads, out, 1, x, len, |_, o, x| {
        o[0] = simd(
            #[inline(always)]
            || {
                // Eight partial sums, as a vector unit keeps them.
                let mut lanes = [0.0f32; 8];
                let mut blocks = x.chunks_exact(8);
                for block in &mut blocks {
                    lanes.iter_mut().zip(block).for_each(|(s, &v)| *s += v);
                }
                let rest: f32 = blocks.remainder().iter().sum();
                (lanes.iter().sum::<f32>() + rest) / len as f32
            },
        );
    });
}

/// `max` that propagates NaN, as PyTorch's pooling does.
fn max_nan(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() { b } else { a }
}
