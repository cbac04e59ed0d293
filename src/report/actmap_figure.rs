//! The activation-map figure of one image, laid out as Torchreid's `visualize_actmap.py`:
//! the image, its JET-coloured map and their overlay, 10 white pixels apart.

use std::path::Path;

use image::{Rgb, RgbImage, imageops};

use super::figure::write_png;
use crate::inspect::actmap::ActivationMap;

/// White space between the panels.
const SPACING: u32 = 10;

/// Renders the three panels side by side.
pub fn render_actmap(map: &ActivationMap) -> RgbImage {
    let (w, h) = map.image.dimensions();
    let width = 3 * w + 2 * SPACING;
    let mut canvas = RgbImage::from_pixel(width, h, Rgb([255; 3]));
    let panels = [map.image.clone(), map.coloured(), map.overlay()];
    for (i, panel) in (0i64..).zip(&panels) {
        imageops::replace(&mut canvas, panel, i * i64::from(w + SPACING), 0);
    }
    canvas
}

/// Writes [`render_actmap`] as a PNG, atomically.
pub fn write_actmap_png(path: &Path, map: &ActivationMap) -> Result<(), String> {
    let figure = render_actmap(map);
    let (width, height) = figure.dimensions();
    write_png(path, width, height, figure.into_raw())
}
