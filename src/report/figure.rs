//! Raster helpers shared by the figures: thumbnails, pasting, PNG output.

use std::path::Path;

use image::RgbImage;

use crate::data::image::Preprocess;

/// Thumbnail size in figures (Market-1501 crops are 64×128).
pub const THUMB_W: u32 = 64;
/// Thumbnail height.
pub const THUMB_H: u32 = 128;

/// A `THUMB_W × THUMB_H` thumbnail of an image file; mid grey when it cannot be read.
pub fn thumbnail(path: &Path) -> RgbImage {
    let size = Preprocess {
        height: THUMB_H,
        width: THUMB_W,
    };
    size.load_resized(path)
        .ok()
        .and_then(|bytes| RgbImage::from_raw(THUMB_W, THUMB_H, bytes))
        .unwrap_or_else(|| RgbImage::from_pixel(THUMB_W, THUMB_H, image::Rgb([128, 128, 128])))
}

/// Copies `image` into the RGB buffer `canvas` (`width` pixels wide) at `(x, y)`, clipped.
pub fn paste(canvas: &mut [u8], width: u32, image: &RgbImage, x: u32, y: u32) {
    let height = canvas.len() as u32 / 3 / width;
    for (dy, row) in image.rows().enumerate() {
        let cy = y + dy as u32;
        if cy >= height {
            break;
        }
        for (dx, px) in row.enumerate() {
            let cx = x + dx as u32;
            if cx >= width {
                break;
            }
            let at = ((cy * width + cx) * 3) as usize;
            canvas[at..at + 3].copy_from_slice(&px.0);
        }
    }
}

/// Writes an RGB buffer as PNG, atomically.
pub fn write_png(path: &Path, width: u32, height: u32, rgb: Vec<u8>) -> Result<(), String> {
    let image = RgbImage::from_raw(width, height, rgb).ok_or("figure buffer has the wrong size")?;
    crate::io::write_atomic(path, |w| {
        let mut bytes = Vec::new();
        image
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .map_err(std::io::Error::other)?;
        w.write_all(&bytes)
    })
    .map_err(|e| format!("{}: {e}", path.display()))
}
