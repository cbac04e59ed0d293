//! Writing a model's weights for other tools, one file per format; the format follows the
//! output's extension.

mod pth;

use std::path::{Path, PathBuf};

use crate::backend::Precision;
use crate::models::checkpoint_writer::WriteError;
use crate::models::{Model, ModelError};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The output's extension names no format reidscope writes.
    #[error(
        "{}: unknown export format; the file name must end in .pth (a Torchreid checkpoint)",
        path.display()
    )]
    Format {
        /// The output path.
        path: PathBuf,
    },
    /// The model's values could not be read.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The file could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Writes `model` to `path` in the format its extension names, parameters in `precision`;
/// a failed export leaves no file.
pub fn export(model: &Model, path: &Path, precision: Precision) -> Result<(), ExportError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("pth") => pth::write(model, path, precision),
        _ => Err(ExportError::Format {
            path: path.to_path_buf(),
        }),
    }
}
