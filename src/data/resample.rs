//! Pillow's bilinear resampling of 8-bit RGB images, reproduced bit for bit.
//!
//! Torchreid resizes with torchvision's `Resize` on a PIL image, i.e. Pillow's two-pass
//! convolution resampler: a horizontal pass into an 8-bit intermediate image, then a vertical
//! pass, each with a triangle filter whose support widens when downscaling and fixed-point
//! coefficients of 22 fractional bits. Matching it exactly keeps features equal to PyTorch's.

/// Fractional bits of the fixed-point filter coefficients (Pillow's `PRECISION_BITS`).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Filter taps of one output sample: the first input index and the fixed-point weights.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// Triangle-filter taps for resizing `in_size` samples to `out_size` (Pillow's
/// `precompute_coeffs` followed by `normalize_coeffs_8bpc`).
fn taps(in_size: usize, out_size: usize) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the bilinear filter's support is 1
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // Pillow truncates toward zero, then clamps.
            let start = ((center - support + 0.5) as i64).max(0) as usize;
            let end = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let raw: Vec<f64> = (start..end)
                .map(|x| {
                    let t = ((x as f64 - center + 0.5) / filter_scale).abs();
                    if t < 1.0 { 1.0 - t } else { 0.0 }
                })
                .collect();
            let total: f64 = raw.iter().sum();
            let one = f64::from(1u32 << PRECISION_BITS);
            let weights = raw
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    (if w < 0.0 {
                        -0.5 + w * one
                    } else {
                        0.5 + w * one
                    }) as i32
                })
                .collect();
            Taps { start, weights }
        })
        .collect()
}

/// Rounds a fixed-point accumulator to a byte, saturating (Pillow's `clip8`).
fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Applies `taps` along one axis of an interleaved RGB image: `lines` lines of `in_len` pixels
/// each, `line_stride`/`pixel_stride` giving the byte layout, into a buffer laid out the same way.
fn pass(
    src: &[u8],
    taps: &[Taps],
    lines: usize,
    index: impl Fn(usize, usize) -> usize,
    out_index: impl Fn(usize, usize) -> usize,
    out: &mut [u8],
) {
    let half = 1i64 << (PRECISION_BITS - 1);
    for line in 0..lines {
        for (o, tap) in taps.iter().enumerate() {
            let mut acc = [half; 3];
            for (k, &w) in tap.weights.iter().enumerate() {
                let at = index(line, tap.start + k);
                for c in 0..3 {
                    acc[c] += i64::from(src[at + c]) * i64::from(w);
                }
            }
            let at = out_index(line, o);
            for c in 0..3 {
                out[at + c] = clip8(acc[c]);
            }
        }
    }
}

/// Resizes interleaved RGB bytes of `width × height` to `out_width × out_height` exactly as
/// Pillow's `Image.resize(..., Image.BILINEAR)` does.
pub fn resize_bilinear_rgb8(
    src: &[u8],
    width: usize,
    height: usize,
    out_width: usize,
    out_height: usize,
) -> Vec<u8> {
    debug_assert_eq!(src.len(), width * height * 3);
    let vertical = taps(height, out_height);
    // Pillow's horizontal pass covers only the rows the vertical pass reads.
    let first_row = vertical.first().map_or(0, |t| t.start);
    let last_row = vertical
        .last()
        .map_or(0, |t| t.start + t.weights.len())
        .max(first_row);

    let horizontal_src: std::borrow::Cow<[u8]> = if width == out_width {
        std::borrow::Cow::Borrowed(&src[first_row * width * 3..last_row * width * 3])
    } else {
        let rows = last_row - first_row;
        let mut tmp = vec![0u8; rows * out_width * 3];
        pass(
            src,
            &taps(width, out_width),
            rows,
            |row, x| ((row + first_row) * width + x) * 3,
            |row, x| (row * out_width + x) * 3,
            &mut tmp,
        );
        std::borrow::Cow::Owned(tmp)
    };
    if height == out_height {
        return horizontal_src.into_owned();
    }
    let mut out = vec![0u8; out_width * out_height * 3];
    let shifted: Vec<Taps> = vertical
        .into_iter()
        .map(|t| Taps {
            start: t.start - first_row,
            weights: t.weights,
        })
        .collect();
    pass(
        &horizontal_src,
        &shifted,
        out_width,
        |col, y| (y * out_width + col) * 3,
        |col, y| (y * out_width + col) * 3,
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_identity() {
        let src: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7 % 256) as u8).collect();
        assert_eq!(resize_bilinear_rgb8(&src, 4, 3, 4, 3), src);
    }

    #[test]
    fn weights_of_each_output_sum_to_one() {
        for (i, o) in [(64, 128), (128, 64), (100, 37), (3, 1000)] {
            for t in taps(i, o) {
                let sum: i64 = t.weights.iter().map(|&w| i64::from(w)).sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= t.weights.len() as i64,
                    "{i}->{o}"
                );
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let src = vec![77u8; 5 * 9 * 3];
        let out = resize_bilinear_rgb8(&src, 5, 9, 13, 4);
        assert!(out.iter().all(|&v| v == 77));
    }
}
