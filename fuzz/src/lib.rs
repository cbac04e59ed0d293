//! Shared by the fuzz targets: reidscope's readers take paths, so each input is written to a
//! scratch file first.

use std::path::PathBuf;

/// Writes `data` to this process's scratch file for `target` (in /dev/shm when it exists,
/// else the temporary folder) and returns its path.
pub fn scratch_file(target: &str, data: &[u8]) -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!("reidscope-fuzz-{target}-{}", std::process::id()));
    std::fs::write(&path, data).expect("write the scratch file");
    path
}
