//! Activation maps with the arithmetic of Torchreid's `tools/visualize_actmap.py`: the feature
//! map before global pooling, `(f²).sum(channels)`, L2-normalised over its cells, bilinear
//! resize to the input size (half-pixel centres, edges clamped: cv2's and PyTorch's
//! `align_corners=False`), min-max scaled to [0, 1]; drawn in the JET colour map over the image
//! as `0.3 · image + 0.7 · map`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use image::RgbImage;

use crate::data::image::{ImageError, Preprocess, load_each, normalise_rgb8};
use crate::models::{Model, ModelError};
use crate::report::palette::jet;

/// Weight of the image in an overlay; the colour map has the rest.
const IMAGE_WEIGHT: f32 = 0.3;

/// One image at the network's input size and where the network looked in it.
#[derive(Debug, Clone)]
pub struct ActivationMap {
    /// The image as the network saw it, before normalisation.
    pub image: RgbImage,
    /// Row-major `height × width` values in [0, 1], the image's size.
    pub map: Vec<f32>,
}

impl ActivationMap {
    /// The map in the JET colour map, as `visualize_actmap.py` draws it (`floor(255 · v)`).
    pub fn coloured(&self) -> RgbImage {
        let mut out = RgbImage::new(self.image.width(), self.image.height());
        for (px, &v) in out.pixels_mut().zip(&self.map) {
            px.0 = jet(level(v));
        }
        out
    }

    /// `0.3 · image + 0.7 · coloured map`, truncated to bytes as `visualize_actmap.py` does.
    pub fn overlay(&self) -> RgbImage {
        let mut out = self.coloured();
        for (px, src) in out.pixels_mut().zip(self.image.pixels()) {
            for (o, &s) in px.0.iter_mut().zip(&src.0) {
                let blended = f32::from(s) * IMAGE_WEIGHT + f32::from(*o) * (1.0 - IMAGE_WEIGHT);
                *o = blended.min(255.0) as u8;
            }
        }
        out
    }
}

/// `floor(255 · v)` as a byte.
fn level(v: f32) -> u8 {
    (255.0 * v.clamp(0.0, 1.0)).floor() as u8
}

/// Activation maps of image files, in their order.
#[derive(Debug, Default)]
pub struct ActivationMaps {
    /// The images that could be read, in input order.
    pub kept: Vec<PathBuf>,
    /// One map per kept image.
    pub maps: Vec<ActivationMap>,
    /// Images that could not be read, with the reason.
    pub skipped: Vec<ImageError>,
}

/// Computes the activation maps of `paths` with `model`, `batch_size` images per forward pass.
/// `on_progress` gets the number of images done; `cancel` is checked between batches, and a
/// cancelled run returns the maps done so far.
pub fn activation_maps(
    model: &Model,
    paths: &[PathBuf],
    preprocess: Preprocess,
    batch_size: usize,
    on_progress: &mut dyn FnMut(usize),
    cancel: &AtomicBool,
) -> Result<ActivationMaps, ModelError> {
    let mut out = ActivationMaps::default();
    for chunk in paths.chunks(batch_size.max(1)) {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let (loaded, skipped) = load_each(chunk, |path| load_image(path, preprocess));
        out.skipped.extend(skipped);
        let (kept, images): (Vec<_>, Vec<_>) = loaded.into_iter().unzip();
        out.kept.extend(kept);
        out.maps.extend(maps_of_images(model, images)?);
        on_progress(out.kept.len() + out.skipped.len());
    }
    Ok(out)
}

/// Decodes `path` and resizes it to the network's input, as extraction does.
fn load_image(path: &Path, preprocess: Preprocess) -> Result<RgbImage, ImageError> {
    let bytes = preprocess.load_resized(path)?;
    RgbImage::from_raw(preprocess.width, preprocess.height, bytes).ok_or_else(|| ImageError {
        path: path.to_path_buf(),
        reason: "resized image has the wrong size".into(),
    })
}

/// The activation maps of images already at the network's input size (all the same size).
pub fn maps_of_images(
    model: &Model,
    images: Vec<RgbImage>,
) -> Result<Vec<ActivationMap>, ModelError> {
    let Some(first) = images.first() else {
        return Ok(Vec::new());
    };
    let (width, height) = first.dimensions();
    let (width, height) = (width as usize, height as usize);
    let mut batch = Vec::with_capacity(images.len() * 3 * width * height);
    for image in &images {
        batch.extend(normalise_rgb8(image.as_raw()));
    }
    let (values, shape) = model.feature_maps(batch, [images.len(), 3, height, width])?;
    let maps = scale_maps(&values, shape, height, width);
    Ok(images
        .into_iter()
        .zip(maps.chunks_exact(height * width))
        .map(|(image, map)| ActivationMap {
            image,
            map: map.to_vec(),
        })
        .collect())
}

/// Feature maps `[n, c, h, w]` → activation maps `[n, height, width]` in [0, 1].
pub fn scale_maps(
    feature_maps: &[f32],
    shape: [usize; 4],
    height: usize,
    width: usize,
) -> Vec<f32> {
    let [n, c, h, w] = shape;
    let cells = h * w;
    let mut out = Vec::with_capacity(n * height * width);
    for image in feature_maps.chunks_exact(c * cells).take(n) {
        let energy = normalised_energy(image, c, cells);
        let mut resized = resize_bilinear(&energy, h, w, height, width);
        min_max_scale(&mut resized);
        out.extend(resized);
    }
    out
}

/// Per cell, the sum over channels of the squared activations, L2-normalised over the cells
/// (PyTorch's `F.normalize`: divided by max(‖e‖, 1e-12)).
fn normalised_energy(map: &[f32], channels: usize, cells: usize) -> Vec<f32> {
    let mut energy = vec![0f64; cells];
    for channel in map.chunks_exact(cells).take(channels) {
        for (e, &v) in energy.iter_mut().zip(channel) {
            *e += f64::from(v) * f64::from(v);
        }
    }
    let norm = energy.iter().map(|e| e * e).sum::<f64>().sqrt().max(1e-12);
    energy.iter().map(|e| (e / norm) as f32).collect()
}

/// Bilinear resize of an `h × w` grid with half-pixel centres, source coordinates clamped to
/// the grid (cv2 `INTER_LINEAR`, PyTorch `align_corners=False`).
fn resize_bilinear(src: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let taps = |out: usize, size: usize| -> Vec<(usize, usize, f32)> {
        let scale = size as f64 / out as f64;
        (0..out)
            .map(|o| {
                let at = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
                let lo = (at.floor() as usize).min(size - 1);
                let hi = (lo + 1).min(size - 1);
                let frac = if lo == size - 1 { 0.0 } else { at - lo as f64 };
                (lo, hi, frac as f32)
            })
            .collect()
    };
    let rows = taps(out_h, h);
    let cols = taps(out_w, w);
    let mut out = Vec::with_capacity(out_h * out_w);
    for &(y0, y1, fy) in &rows {
        for &(x0, x1, fx) in &cols {
            let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
            let bottom = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// `(v − min) / (max − min + 1e-12)`, as `visualize_actmap.py`.
fn min_max_scale(values: &mut [f32]) {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let range = max - min + 1e-12;
    for v in values {
        *v = (*v - min) / range;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_a_grid_to_its_own_size_keeps_it() {
        let src: Vec<f32> = (0..12).map(|v| v as f32).collect();
        assert_eq!(resize_bilinear(&src, 4, 3, 4, 3), src);
    }

    #[test]
    fn doubling_interpolates_between_half_pixel_centres_and_clamps_at_the_edges() {
        // cv2.resize(np.float32([[0, 4]]), (4, 1)) == [[0, 1, 3, 4]]
        assert_eq!(
            resize_bilinear(&[0.0, 4.0], 1, 2, 1, 4),
            [0.0, 1.0, 3.0, 4.0]
        );
        // One cell stretches to a constant.
        assert_eq!(resize_bilinear(&[2.5], 1, 1, 3, 2), [2.5; 6]);
    }

    #[test]
    fn energy_sums_squares_over_channels_and_has_unit_norm() {
        // Two channels over two cells: energies 1 + 4 = 5 and 0 + 0 = 0, then 3 and 4 → 3/5, 4/5.
        let e = normalised_energy(&[1.0, 0.0, 2.0, 0.0], 2, 2);
        assert_eq!(e, [1.0, 0.0]);
        let e = normalised_energy(&[3f32.sqrt(), 0.0, 0.0, 2.0], 2, 2);
        assert!(
            (e[0] - 0.6).abs() < 1e-6 && (e[1] - 0.8).abs() < 1e-6,
            "{e:?}"
        );
    }

    #[test]
    fn a_flat_map_scales_to_zero_not_to_nan() {
        let mut flat = vec![0.5; 4];
        min_max_scale(&mut flat);
        assert_eq!(flat, [0.0; 4]);
        let mut ramp = vec![1.0, 2.0, 3.0];
        min_max_scale(&mut ramp);
        assert_eq!(ramp, [0.0, 0.5, 1.0]);
    }

    #[test]
    fn the_overlay_blends_three_tenths_of_the_image() {
        let map = ActivationMap {
            image: RgbImage::from_pixel(2, 1, image::Rgb([200, 100, 0])),
            map: vec![0.0, 1.0],
        };
        let coloured = map.coloured();
        let overlay = map.overlay();
        for (o, (c, s)) in overlay
            .pixels()
            .zip(coloured.pixels().zip(map.image.pixels()))
        {
            for k in 0..3 {
                let expected = (0.3 * f32::from(s.0[k]) + 0.7 * f32::from(c.0[k])) as u8;
                assert_eq!(o.0[k], expected);
            }
        }
        assert_eq!(coloured.get_pixel(0, 0).0, jet(0));
        assert_eq!(coloured.get_pixel(1, 0).0, jet(255));
    }
}
