//! Image decoding and Torchreid's test-time preprocessing: RGB, bilinear resize to H×W
//! (bit-exact with Pillow), scale to [0, 1], ImageNet mean/std normalisation.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image::RgbImage;

use crate::data::jpeg::decode_jpeg;
use crate::data::resample::resize_bilinear_rgb8;
use crate::io::read_regular_file;

/// ImageNet channel means (RGB).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The largest image file read (a 64-megapixel PNG compresses to less).
const MAX_IMAGE_FILE_BYTES: u64 = 512 << 20;

/// The default largest image decoded: 64 megapixels (an 8000×8000 photograph).
pub const DEFAULT_MAX_PIXELS: u64 = 64_000_000;

/// The largest image (width × height) decoded; see [`set_max_pixels`].
static MAX_PIXELS: AtomicU64 = AtomicU64::new(DEFAULT_MAX_PIXELS);

/// Sets the largest image decoded, in pixels (width × height): a larger one is refused from
/// its header, before any pixel buffer is allocated (`--max-pixels`).
pub fn set_max_pixels(pixels: u64) {
    MAX_PIXELS.store(pixels.max(1), Ordering::Relaxed);
}

/// Refuses an image of `width` × `height` over the pixel limit.
fn check_size(width: u64, height: u64) -> Result<(), String> {
    let limit = MAX_PIXELS.load(Ordering::Relaxed);
    match width.checked_mul(height) {
        Some(pixels) if pixels <= limit => Ok(()),
        _ => Err(format!(
            "its header declares {width}x{height} pixels, more than the limit of {limit} (--max-pixels)"
        )),
    }
}

/// An image that could not be turned into a network input.
#[derive(Debug, thiserror::Error)]
#[error("cannot read image {path}: {reason}")]
pub struct ImageError {
    /// The offending file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// Network input size and the preprocessing that produces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Preprocess {
    /// Input height in pixels.
    pub height: u32,
    /// Input width in pixels.
    pub width: u32,
}

impl Default for Preprocess {
    /// Torchreid's default ReID input, 256×128.
    fn default() -> Self {
        Self {
            height: 256,
            width: 128,
        }
    }
}

impl Preprocess {
    /// Number of f32 values of one preprocessed image (`3 × H × W`).
    pub fn len(&self) -> usize {
        3 * self.height as usize * self.width as usize
    }

    /// Always false: an input has at least one pixel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes `path` and preprocesses it into CHW f32 values.
    pub fn load(&self, path: &Path) -> Result<Vec<f32>, ImageError> {
        let rgb = decode_rgb(path)?;
        self.apply(&rgb).map_err(|reason| ImageError {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Resizes and normalises a decoded RGB image into CHW f32 values.
    pub fn apply(&self, rgb: &RgbImage) -> Result<Vec<f32>, String> {
        Ok(normalise_rgb8(&self.resize(rgb)?))
    }

    /// Bilinear resize to H×W exactly as Pillow does it, as interleaved RGB bytes.
    pub fn resize(&self, rgb: &RgbImage) -> Result<Vec<u8>, String> {
        let (w, h) = rgb.dimensions();
        if w == 0 || h == 0 {
            return Err("image has no pixels".to_string());
        }
        Ok(resize_bilinear_rgb8(
            rgb.as_raw(),
            w as usize,
            h as usize,
            self.width as usize,
            self.height as usize,
        ))
    }
}

/// Interleaved RGB bytes → CHW values scaled to [0, 1] and normalised with the ImageNet mean
/// and std (Torchreid's `ToTensor` + `Normalize`).
pub fn normalise_rgb8(pixels: &[u8]) -> Vec<f32> {
    let plane = pixels.len() / 3;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, px) in pixels.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        }
    }
    out
}

/// Decodes an image file (format guessed from its content) to 8-bit RGB.
///
/// JPEGs go through [`decode_jpeg`] (libjpeg-turbo, as in Pillow; missing data is an error,
/// never a grey fill). Any image over the pixel limit is refused from its header.
pub fn decode_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    let error = |reason: String| ImageError {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = read_regular_file(path, MAX_IMAGE_FILE_BYTES).map_err(|e| error(e.to_string()))?;
    let format = image::guess_format(&bytes).map_err(|e| error(e.to_string()))?;
    if format == image::ImageFormat::Jpeg {
        return decode_jpeg(&bytes, check_size).map_err(error);
    }
    let reader = || image::ImageReader::with_format(Cursor::new(&bytes[..]), format);
    let (width, height) = reader()
        .into_dimensions()
        .map_err(|e| error(e.to_string()))?;
    check_size(u64::from(width), u64::from(height)).map_err(error)?;
    // The limit again as the decoder's allocation cap (8 bytes per pixel: 16-bit RGBA).
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS.load(Ordering::Relaxed).saturating_mul(8));
    let mut decoder = reader();
    decoder.limits(limits);
    let decoded = decoder.decode().map_err(|e| error(e.to_string()))?;
    Ok(decoded.to_rgb8())
}
