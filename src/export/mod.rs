//! Writing a model's weights for other tools, one file per format; the format follows the
//! output's extension.

mod onnx;
mod pth;
mod safetensors;

use std::path::{Path, PathBuf};

use crate::backend::Precision;
use crate::data::image::Preprocess;
use crate::models::checkpoint_writer::WriteError;
use crate::models::{Model, ModelError};
use crate::output_dir::{OutputDir, OutputError};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The output's extension names no format reidscope writes.
    #[error(
        "{}: unknown export format; the file name must end in .onnx (the network), .pth (a Torchreid checkpoint) or .safetensors (the state dict)",
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
    /// The format's encoder refused the values.
    #[error("cannot encode the model: {0}")]
    Encode(String),
    /// The format cannot hold what was asked for.
    #[error("{0}")]
    Unsupported(String),
    /// The output folder cannot be written into, or the file exists and is not reidscope's.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// The formats [`export`] writes: the file extension and what the file holds.
pub const FORMATS: [(&str, &str); 3] = [
    ("onnx", "ONNX graph"),
    ("pth", "Torchreid checkpoint"),
    ("safetensors", "safetensors state dict"),
];

/// What an export writes besides the weights.
#[derive(Debug, Clone, Copy)]
pub struct ExportSettings {
    /// Precision of the stored parameters.
    pub precision: Precision,
    /// The network's input size (recorded where the format has room for it).
    pub input: Preprocess,
}

/// Writes `model` to `path` in the format its extension names, as `settings` say; a failed
/// export leaves no file. The file is recorded in its folder's manifest, so an
/// export replaces an earlier export but never a file reidscope did not write.
pub fn export(model: &Model, path: &Path, settings: &ExportSettings) -> Result<(), ExportError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let write = match extension.as_deref() {
        Some("onnx") => onnx::write,
        Some("pth") => pth::write,
        Some("safetensors") => safetensors::write,
        _ => {
            return Err(ExportError::Format {
                path: path.to_path_buf(),
            });
        }
    };
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        ExportError::Output(OutputError {
            path: path.to_path_buf(),
            reason: "expected a file name".into(),
        })
    })?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut out = OutputDir::open(folder)?;
    let path = out.claim(name)?;
    out.save()?;
    write(model, &path, settings)
}
