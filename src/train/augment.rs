//! Torchreid's training transforms, applied to an image already resized to H×W (interleaved
//! RGB bytes, as the test transform resizes it): random horizontal flip, random 2-D translation
//! (enlarge by 1.125 and crop H×W at a random place), colour jitter (brightness ±0.2,
//! contrast ±0.15, in random order), then ImageNet normalisation and random erasing (an area
//! of 2–40 % of the image, aspect 0.3–3.3, set to the normalisation mean's values).

use rand::Rng;

use crate::data::image::{IMAGENET_MEAN, normalise_rgb8};
use crate::data::resample::resize_bilinear_rgb8;
use crate::names::named_enum;

named_enum! {
    /// One training transform, as `--augment` names it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Augment("augmentation") {
        /// Random horizontal flip (p = 0.5).
        Flip = "flip",
        /// Random 2-D translation (p = 0.5): enlarge by 1.125 and crop.
        Crop = "crop",
        /// Random erasing (p = 0.5).
        Erase = "erase",
        /// Colour jitter: brightness ±0.2, contrast ±0.15.
        Color = "color",
    }
}

/// A resized training image: `width × height` interleaved RGB bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    /// Pixels, row-major RGB.
    pub pixels: Vec<u8>,
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
}

/// Applies `augments` to `image` and returns the normalised CHW values the network takes.
pub fn augment(mut image: RgbImage, augments: &[Augment], rng: &mut impl Rng) -> Vec<f32> {
    let has = |a: Augment| augments.contains(&a);
    if has(Augment::Flip) && rng.random_bool(0.5) {
        flip(&mut image);
    }
    if has(Augment::Crop) && rng.random_bool(0.5) {
        image = translate(&image, rng);
    }
    if has(Augment::Color) {
        jitter(&mut image, rng);
    }
    let mut values = normalise_rgb8(&image.pixels);
    if has(Augment::Erase) && rng.random_bool(0.5) {
        erase(&mut values, image.width, image.height, rng);
    }
    values
}

/// Mirrors the image left to right.
fn flip(image: &mut RgbImage) {
    for row in image.pixels.chunks_exact_mut(image.width * 3) {
        let (mut left, mut right) = (0, image.width - 1);
        while left < right {
            for c in 0..3 {
                row.swap(left * 3 + c, right * 3 + c);
            }
            left += 1;
            right -= 1;
        }
    }
}

/// Enlarges the image by 1.125 (Pillow bilinear) and crops the original size at a random
/// offset, rounded as Torchreid rounds it.
fn translate(image: &RgbImage, rng: &mut impl Rng) -> RgbImage {
    let (width, height) = (image.width, image.height);
    let (big_w, big_h) = (
        (width as f64 * 1.125).round() as usize,
        (height as f64 * 1.125).round() as usize,
    );
    let big = resize_bilinear_rgb8(&image.pixels, width, height, big_w, big_h);
    let x = rng.random_range(0.0..=(big_w - width) as f64).round() as usize;
    let y = rng.random_range(0.0..=(big_h - height) as f64).round() as usize;
    let mut pixels = Vec::with_capacity(width * height * 3);
    for row in y..y + height {
        let start = (row * big_w + x) * 3;
        pixels.extend_from_slice(&big[start..start + width * 3]);
    }
    RgbImage {
        pixels,
        width,
        height,
    }
}

/// Brightness (blend with black) and contrast (blend with the mean grey level) factors drawn
/// uniformly from [0.8, 1.2] and [0.85, 1.15], applied in random order, clipped to bytes.
fn jitter(image: &mut RgbImage, rng: &mut impl Rng) {
    let brightness = rng.random_range(0.8..=1.2);
    let contrast = rng.random_range(0.85..=1.15);
    let blend = |pixels: &mut [u8], toward: f64, factor: f64| {
        for v in pixels.iter_mut() {
            *v = (toward + (*v as f64 - toward) * factor).clamp(0.0, 255.0) as u8;
        }
    };
    let mean_grey = |pixels: &[u8]| {
        let total: f64 = pixels
            .chunks_exact(3)
            .map(|p| ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114) / 1000) as f64)
            .sum();
        (total / (pixels.len() / 3).max(1) as f64 + 0.5).floor()
    };
    if rng.random_bool(0.5) {
        blend(&mut image.pixels, 0.0, brightness);
        let grey = mean_grey(&image.pixels);
        blend(&mut image.pixels, grey, contrast);
    } else {
        let grey = mean_grey(&image.pixels);
        blend(&mut image.pixels, grey, contrast);
        blend(&mut image.pixels, 0.0, brightness);
    }
}

/// Torchreid's random erasing on normalised CHW values: up to 100 tries to place a rectangle
/// of 2–40 % of the area with aspect ratio in [0.3, 1/0.3] inside the image.
fn erase(values: &mut [f32], width: usize, height: usize, rng: &mut impl Rng) {
    let area = (width * height) as f64;
    for _ in 0..100 {
        let target = rng.random_range(0.02..=0.4) * area;
        let aspect = rng.random_range(0.3..=1.0 / 0.3);
        let h = (target * aspect).sqrt().round() as usize;
        let w = (target / aspect).sqrt().round() as usize;
        if w < width && h < height {
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            for (c, &mean) in IMAGENET_MEAN.iter().enumerate() {
                for row in top..top + h {
                    let start = c * width * height + row * width + left;
                    values[start..start + w].fill(mean);
                }
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::image::IMAGENET_STD;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn gradient(width: usize, height: usize) -> RgbImage {
        let pixels = (0..width * height)
            .flat_map(|i| {
                let (x, y) = (i % width, i / width);
                [(x * 20) as u8, (y * 10) as u8, 128]
            })
            .collect();
        RgbImage {
            pixels,
            width,
            height,
        }
    }

    #[test]
    fn without_augments_it_is_the_test_transform() {
        let image = gradient(8, 16);
        let values = augment(image.clone(), &[], &mut StdRng::seed_from_u64(0));
        assert_eq!(values, normalise_rgb8(&image.pixels));
        let expected = (20.0 / 255.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0];
        assert_eq!(values[1], expected);
    }

    #[test]
    fn flipping_mirrors_each_row() {
        let mut image = gradient(5, 3);
        flip(&mut image);
        assert_eq!(&image.pixels[..3], &[80, 0, 128]);
        assert_eq!(&image.pixels[12..15], &[0, 0, 128]);
        flip(&mut image);
        assert_eq!(image, gradient(5, 3));
    }

    #[test]
    fn translation_keeps_the_size_and_shifts_by_at_most_the_margin() {
        let image = gradient(16, 32);
        for seed in 0..8 {
            let moved = translate(&image, &mut StdRng::seed_from_u64(seed));
            assert_eq!((moved.width, moved.height), (16, 32));
            assert_eq!(moved.pixels.len(), 16 * 32 * 3);
        }
    }

    #[test]
    fn erasing_fills_one_rectangle_with_the_mean() {
        let (width, height) = (16, 32);
        let mut values = vec![9.0f32; 3 * width * height];
        erase(&mut values, width, height, &mut StdRng::seed_from_u64(5));
        let plane = width * height;
        let erased: Vec<usize> = (0..plane).filter(|&i| values[i] != 9.0).collect();
        let fraction = erased.len() as f64 / plane as f64;
        assert!((0.01..=0.45).contains(&fraction), "{fraction}");
        for &i in &erased {
            for (c, mean) in IMAGENET_MEAN.iter().enumerate() {
                assert_eq!(values[c * plane + i], *mean);
            }
        }
        let rows: Vec<usize> = erased.iter().map(|i| i / width).collect();
        let cols: Vec<usize> = erased.iter().map(|i| i % width).collect();
        let span = |v: &[usize]| v.iter().max().unwrap() - v.iter().min().unwrap() + 1;
        assert_eq!(span(&rows) * span(&cols), erased.len(), "a rectangle");
    }

    #[test]
    fn jitter_keeps_a_flat_grey_image_flat() {
        let mut image = RgbImage {
            pixels: vec![100; 4 * 4 * 3],
            width: 4,
            height: 4,
        };
        jitter(&mut image, &mut StdRng::seed_from_u64(2));
        let first = image.pixels[0];
        assert!(image.pixels.iter().all(|&v| v == first));
        assert!((80..=120).contains(&first), "{first}");
    }
}
