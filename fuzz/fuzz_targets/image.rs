//! The image decoder (libjpeg-turbo for JPEG, `image` for PNG) and the resize to a network
//! input on any bytes, with a 1-megapixel limit so that each input decodes quickly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reidscope::data::image::{Preprocess, decode_rgb, set_max_pixels};
use reidscope_fuzz::scratch_file;

fuzz_target!(|data: &[u8]| {
    set_max_pixels(1 << 20);
    let path = scratch_file("image", data);
    if let Ok(rgb) = decode_rgb(&path) {
        let _ = Preprocess::default().apply(&rgb);
    }
});
