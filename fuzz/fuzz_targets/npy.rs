//! The `.npy` readers (feature matrices and id vectors) on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reidscope::io::{read_npy_ids, read_npy_matrix};
use reidscope_fuzz::scratch_file;

fuzz_target!(|data: &[u8]| {
    let path = scratch_file("npy", data);
    let _ = read_npy_matrix(&path);
    let _ = read_npy_ids(&path);
});
