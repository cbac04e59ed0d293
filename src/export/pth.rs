//! `.pth`: a Torchreid checkpoint (`{'state_dict': …}` with Torchreid's key names) in PyTorch's
//! zip format, float32 or (as half-precision pre-trained files) float16.

use std::path::Path;

use super::{ExportError, ExportSettings};
use crate::models::Model;
use crate::models::checkpoint_writer::{Value, write_checkpoint};

/// Writes `model`'s state dict to `path` with its values in the settings' precision.
pub fn write(model: &Model, path: &Path, settings: &ExportSettings) -> Result<(), ExportError> {
    let state = model.state()?;
    let checkpoint = Value::Dict(vec![(
        Value::Str("state_dict".into()),
        state.to_value(settings.precision),
    )]);
    write_checkpoint(path, &checkpoint)?;
    Ok(())
}
