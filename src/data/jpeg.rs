//! JPEG decoding with libjpeg-turbo (islow IDCT, fancy upsampling: Pillow's defaults, so pixels
//! equal the ones Torchreid sees). An image whose data is missing is an error, never a grey
//! fill: a file that stops before its end-of-image marker, and libjpeg's warnings that it ran
//! out of data or had to resynchronise (premature end of data segment, premature end of file).

use std::ffi::CStr;
use std::os::raw::c_int;

use image::RgbImage;
use mozjpeg_sys::{
    JWRN_HIT_MARKER, JWRN_JPEG_EOF, JWRN_MUST_RESYNC, jpeg_common_struct, jpeg_error_mgr,
    jpeg_std_error,
};

/// libjpeg's warnings that mean pixels are missing (the decoder would fill them with grey).
const LOST_DATA: [c_int; 3] = [JWRN_HIT_MARKER, JWRN_JPEG_EOF, JWRN_MUST_RESYNC];

/// libjpeg's longest message, terminating NUL included (`JMSG_LENGTH_MAX`).
const MESSAGE_LENGTH: usize = 200;

/// The width and height a JPEG's frame header declares, read without decoding any pixel.
pub fn jpeg_dimensions(bytes: &[u8]) -> Result<(u64, u64), String> {
    with_strict_libjpeg(|| {
        let header = mozjpeg::Decompress::with_err(strict_errors())
            .from_mem(bytes)
            .map_err(|e| e.to_string())?;
        let (width, height) = header.size();
        Ok((width as u64, height as u64))
    })
}

/// Decodes a JPEG to RGB. `dimensions` are the ones [`jpeg_dimensions`] read, for which
/// memory was set aside: a header that now declares others is refused before any pixel
/// buffer is allocated.
pub fn decode_jpeg(bytes: &[u8], dimensions: (u64, u64)) -> Result<RgbImage, String> {
    if !jpeg_is_complete(bytes) {
        return Err("truncated JPEG (no end-of-image marker after the image data)".into());
    }
    let (width, height, pixels) = with_strict_libjpeg(|| {
        let io = |e: std::io::Error| e.to_string();
        let header = mozjpeg::Decompress::with_err(strict_errors())
            .from_mem(bytes)
            .map_err(io)?;
        let (width, height) = header.size();
        if (width as u64, height as u64) != dimensions {
            return Err("the JPEG header changed while it was read".to_string());
        }
        let mut started = header.rgb().map_err(io)?;
        let pixels = started.read_scanlines::<u8>().map_err(io)?;
        started.finish().map_err(io)?;
        Ok((width, height, pixels))
    })?;
    RgbImage::from_raw(width as u32, height as u32, pixels)
        .ok_or_else(|| "libjpeg returned fewer pixels than the image size".to_string())
}

/// Runs `work` with libjpeg errors, and the lost-data warnings, turned into `Err` with
/// libjpeg's message: they unwind out of the decoder (see [`strict_errors`]).
fn with_strict_libjpeg<T>(work: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "libjpeg failed".to_string())),
    }
}

/// libjpeg's error manager with its defaults, except that errors and lost-data warnings unwind
/// with their message instead of exiting the process or being ignored.
fn strict_errors() -> jpeg_error_mgr {
    // SAFETY: the manager is a C struct of integers, pointers and optional function pointers,
    // for which all zeros is a valid value; `jpeg_std_error` then sets libjpeg's defaults.
    let mut errors: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    // SAFETY: `errors` is a valid manager, borrowed only for the call.
    unsafe { jpeg_std_error(&mut errors) };
    errors.error_exit = Some(stop_on_error);
    errors.emit_message = Some(stop_on_lost_data);
    errors
}

/// libjpeg's fatal-error hook: unwinds to [`with_strict_libjpeg`] with the message.
extern "C-unwind" fn stop_on_error(cinfo: &mut jpeg_common_struct) {
    std::panic::resume_unwind(Box::new(message(cinfo)));
}

/// libjpeg's message hook: a warning that pixels are lost unwinds like an error; other
/// warnings and trace messages are ignored, as Pillow ignores them.
extern "C-unwind" fn stop_on_lost_data(cinfo: &mut jpeg_common_struct, level: c_int) {
    // SAFETY: libjpeg points `err` at the manager of `strict_errors` for the whole decoding.
    let code = unsafe { (*cinfo.err).msg_code };
    if level < 0 && LOST_DATA.contains(&code) {
        std::panic::resume_unwind(Box::new(message(cinfo)));
    }
}

/// The text of libjpeg's current message.
fn message(cinfo: &mut jpeg_common_struct) -> String {
    // SAFETY: as above, `err` is the live manager.
    let Some(format) = (unsafe { (*cinfo.err).format_message }) else {
        return "libjpeg failed".into();
    };
    let mut buffer = [0u8; MESSAGE_LENGTH];
    // SAFETY: libjpeg's `format_message` writes at most JMSG_LENGTH_MAX bytes, NUL included,
    // into a `char *`; the binding declares the buffer as a shorter array reference, so the
    // pointer is passed as the C function takes it.
    let format: unsafe extern "C-unwind" fn(&mut jpeg_common_struct, *mut u8) =
        unsafe { std::mem::transmute(format) };
    unsafe { format(cinfo, buffer.as_mut_ptr()) };
    let text = CStr::from_bytes_until_nul(&buffer)
        .map(|text| text.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("libjpeg: {text}")
}

/// True if the last start-of-scan marker (FF DA) is followed by an end-of-image marker (FF D9).
/// Entropy-coded data escapes 0xFF bytes, so these pairs only occur as markers.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    matches!((last(0xDA), last(0xD9)), (Some(sos), Some(eoi)) if eoi > sos)
}

#[cfg(test)]
mod tests {
    use super::jpeg_is_complete;

    #[test]
    fn jpeg_completeness_needs_an_end_marker_after_the_scan() {
        assert!(jpeg_is_complete(&[
            0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0x00, 0xFF, 0xD9
        ]));
        assert!(
            jpeg_is_complete(&[0xFF, 0xDA, 1, 0xFF, 0xD9, 7, 7]),
            "trailing bytes are fine"
        );
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 3]));
        assert!(
            !jpeg_is_complete(&[0xFF, 0xD9, 0xFF, 0xDA, 1, 2]),
            "thumbnail EOI before the scan"
        );
        assert!(!jpeg_is_complete(&[]));
    }
}
