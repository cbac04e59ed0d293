//! Image decoding and Torchreid's test-time preprocessing: RGB, bilinear resize to H×W
//! (bit-exact with Pillow), scale to [0, 1], ImageNet mean/std normalisation.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image::RgbImage;
use rayon::prelude::*;

use crate::data::decode_budget::{DECODE_BUDGET, DECODE_BYTES_PER_PIXEL, Reservation};
use crate::data::jpeg::{decode_jpeg, jpeg_dimensions};
use crate::data::resample::resize_bilinear_rgb8;
use crate::io::{open_regular_file, read_capped};

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
        Ok(normalise_rgb8(&self.load_resized(path)?))
    }

    /// Decodes `path` and resizes it to H×W, as interleaved RGB bytes.
    pub fn load_resized(&self, path: &Path) -> Result<Vec<u8>, ImageError> {
        let rgb = decode_rgb(path)?;
        self.resize(&rgb).map_err(|reason| ImageError {
            path: path.to_path_buf(),
            reason,
        })
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

/// Loads every path with `load` in parallel: what loaded, with its path, in input order, and
/// what could not be read.
pub fn load_each<T: Send>(
    paths: &[PathBuf],
    load: impl Fn(&Path) -> Result<T, ImageError> + Sync,
) -> (Vec<(PathBuf, T)>, Vec<ImageError>) {
    let results: Vec<Result<T, ImageError>> = paths.par_iter().map(|p| load(p)).collect();
    let mut loaded = Vec::with_capacity(paths.len());
    let mut failed = Vec::new();
    for (path, result) in paths.iter().zip(results) {
        match result {
            Ok(value) => loaded.push((path.clone(), value)),
            Err(e) => failed.push(e),
        }
    }
    (loaded, failed)
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

/// A decoded 8-bit RGB image. It holds its share of the decode budget until it is dropped.
#[derive(Debug)]
pub struct DecodedRgb {
    image: RgbImage,
    _budget: Reservation<'static>,
}

impl std::ops::Deref for DecodedRgb {
    type Target = RgbImage;

    fn deref(&self) -> &RgbImage {
        &self.image
    }
}

/// Decodes an image file (format guessed from its content) to 8-bit RGB.
///
/// JPEGs go through [`decode_jpeg`] (libjpeg-turbo, as in Pillow; missing data is an error,
/// never a grey fill). Any image over the pixel limit is refused from its header. The file's
/// bytes, then the pixel buffers its header implies, are reserved from [`DECODE_BUDGET`]
/// before they are allocated; when the budget is short, the bytes read are dropped while the
/// decode waits for the whole amount, and the file is read again.
pub fn decode_rgb(path: &Path) -> Result<DecodedRgb, ImageError> {
    let error = |reason: String| ImageError {
        path: path.to_path_buf(),
        reason,
    };
    let mut waited_for = None;
    loop {
        let (file, meta) = open_regular_file(path).map_err(|e| error(e.to_string()))?;
        let mut held = DECODE_BUDGET.reserve(waited_for.unwrap_or(meta.len()));
        let bytes =
            read_capped(file, &meta, MAX_IMAGE_FILE_BYTES).map_err(|e| error(e.to_string()))?;
        let header = Header::read(&bytes).map_err(error)?;
        check_size(header.width, header.height).map_err(error)?;
        let pixels = header.width.saturating_mul(header.height);
        let needed =
            (bytes.len() as u64).saturating_add(pixels.saturating_mul(DECODE_BYTES_PER_PIXEL));
        if held.try_grow_to(needed) {
            let image = header.decode(&bytes).map_err(error)?;
            return Ok(DecodedRgb {
                image,
                _budget: held,
            });
        }
        if waited_for.is_some() {
            return Err(error("the file changed while it was read".into()));
        }
        waited_for = Some(needed);
    }
}

/// What an image file's header declares.
struct Header {
    format: image::ImageFormat,
    width: u64,
    height: u64,
}

impl Header {
    /// Reads the format and size of an encoded image without decoding its pixels.
    fn read(bytes: &[u8]) -> Result<Self, String> {
        let format = image::guess_format(bytes).map_err(|e| e.to_string())?;
        let (width, height) = if format == image::ImageFormat::Jpeg {
            jpeg_dimensions(bytes)?
        } else {
            let (width, height) = image::ImageReader::with_format(Cursor::new(bytes), format)
                .into_dimensions()
                .map_err(|e| e.to_string())?;
            (u64::from(width), u64::from(height))
        };
        Ok(Self {
            format,
            width,
            height,
        })
    }

    /// Decodes the pixels of the image this header was read from; the decoder may not
    /// allocate beyond the size the header declared.
    fn decode(&self, bytes: &[u8]) -> Result<RgbImage, String> {
        if self.format == image::ImageFormat::Jpeg {
            return decode_jpeg(bytes, (self.width, self.height));
        }
        let mut limits = image::Limits::default();
        limits.max_image_width = u32::try_from(self.width).ok();
        limits.max_image_height = u32::try_from(self.height).ok();
        // 8 bytes per pixel: 16-bit RGBA.
        limits.max_alloc = Some(self.width.saturating_mul(self.height).saturating_mul(8));
        let mut decoder = image::ImageReader::with_format(Cursor::new(bytes), self.format);
        decoder.limits(limits);
        let decoded = decoder.decode().map_err(|e| e.to_string())?;
        Ok(decoded.to_rgb8())
    }
}
