//! Checks on a checkpoint file before a reader parses it: it must be a regular file (a FIFO
//! or device would block or never end), and the members of an early TAR-format checkpoint may
//! not claim more bytes than the whole file holds (a sparse member expands on reading). Tells
//! a `.safetensors` file from PyTorch's containers.

use std::io::{BufReader, Read, Seek};
use std::path::Path;

use crate::io::open_regular_file;
use crate::models::stored_tensor::starts_like_safetensors;

/// Offset of the `ustar` magic within a TAR header.
const TAR_MAGIC_OFFSET: usize = 257;

/// Which reader a checkpoint file needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFile {
    /// One of PyTorch's containers (zip, legacy, TAR, plain pickle).
    Pytorch,
    /// A `.safetensors` file.
    Safetensors,
}

/// Refuses a checkpoint that is not a regular file, or a TAR one with a member larger than
/// the file; reads only the first bytes and TAR headers.
pub fn inspect_checkpoint_file(path: &Path) -> Result<CheckpointFile, String> {
    let (mut file, meta) = open_regular_file(path).map_err(|e| e.to_string())?;
    let mut head = Vec::with_capacity(TAR_MAGIC_OFFSET + 5);
    (&mut file)
        .take(TAR_MAGIC_OFFSET as u64 + 5)
        .read_to_end(&mut head)
        .map_err(|e| e.to_string())?;
    if starts_like_safetensors(&head) {
        return Ok(CheckpointFile::Safetensors);
    }
    if head.get(TAR_MAGIC_OFFSET..) != Some(b"ustar") {
        return Ok(CheckpointFile::Pytorch);
    }
    file.rewind().map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let tar_error = |e: std::io::Error| format!("TAR archive error: {e}");
    for entry in archive.entries().map_err(tar_error)? {
        let entry = entry.map_err(tar_error)?;
        if entry.size() > meta.len() {
            let name = entry.path().map_or_else(
                |_| "?".to_string(),
                |p| p.to_string_lossy().chars().take(100).collect(),
            );
            return Err(format!(
                "TAR member '{name}' declares {} bytes, more than the whole file ({} bytes)",
                entry.size(),
                meta.len()
            ));
        }
    }
    Ok(CheckpointFile::Pytorch)
}
