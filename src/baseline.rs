//! A colour-histogram baseline: what retrieval looks like without a network. Each image is
//! resized to 128×64, cut into four horizontal stripes, and each stripe described by an
//! L1-normalised 4×4×4 RGB histogram (256 values per image).

use std::path::PathBuf;

use crate::data::image::{Preprocess, load_each};
use crate::features::Extraction;

/// Histogram bins per channel.
const BINS: usize = 4;
/// Horizontal stripes per image.
const STRIPES: usize = 4;
/// Feature length.
pub const HISTOGRAM_DIM: usize = STRIPES * BINS * BINS * BINS;

/// The histogram feature of interleaved RGB pixels of a `width`-wide image.
pub fn color_histogram(rgb: &[u8], width: usize) -> Vec<f32> {
    let height = rgb.len() / 3 / width.max(1);
    let mut feature = vec![0f32; HISTOGRAM_DIM];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        let stripe = (i / width) * STRIPES / height.max(1);
        let bin = |v: u8| v as usize * BINS / 256;
        feature[stripe * BINS.pow(3) + (bin(px[0]) * BINS + bin(px[1])) * BINS + bin(px[2])] += 1.0;
    }
    for stripe in feature.chunks_mut(BINS.pow(3)) {
        let total: f32 = stripe.iter().sum();
        stripe.iter_mut().for_each(|v| *v /= total.max(1.0));
    }
    feature
}

/// Histogram features of `paths` (unreadable images skipped and listed).
pub fn extract_histograms(paths: &[PathBuf]) -> Extraction {
    let size = Preprocess {
        height: 128,
        width: 64,
    };
    let (loaded, skipped) = load_each(paths, |path| {
        let resized = size.load_resized(path)?;
        Ok(color_histogram(&resized, size.width as usize))
    });
    let mut out = Extraction {
        dim: HISTOGRAM_DIM,
        complete: true,
        skipped,
        ..Extraction::default()
    };
    for (path, feature) in loaded {
        out.features.extend(feature);
        out.kept.push(path);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stripe_is_a_normalised_histogram() {
        // 2×4 image: top half pure red, bottom half white.
        let mut rgb = Vec::new();
        for row in 0..4 {
            for _ in 0..2 {
                rgb.extend(if row < 2 {
                    [255, 0, 0]
                } else {
                    [255, 255, 255]
                });
            }
        }
        let h = color_histogram(&rgb, 2);
        assert_eq!(h.len(), HISTOGRAM_DIM);
        let red = (3 * BINS) * BINS;
        let white = BINS.pow(3) - 1;
        assert_eq!(h[red], 1.0);
        assert_eq!(h[3 * BINS.pow(3) + white], 1.0);
        assert_eq!(h.iter().sum::<f32>(), STRIPES as f32);
    }
}
