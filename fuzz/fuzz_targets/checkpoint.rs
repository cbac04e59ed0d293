//! The checkpoint reader on any bytes: zip, legacy, TAR and plain-pickle containers, then
//! every tensor it lists read as f32.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reidscope::models::checkpoint::Checkpoint;
use reidscope_fuzz::scratch_file;

fuzz_target!(|data: &[u8]| {
    let path = scratch_file("checkpoint", data);
    if let Ok(mut checkpoint) = Checkpoint::open(&path) {
        let keys: Vec<String> = checkpoint.unused_keys().into_iter().cloned().collect();
        for key in keys {
            if let Some(shape) = checkpoint.shape_of(&key) {
                let _ = checkpoint.read_f32(&key, &shape);
            }
        }
    }
});
