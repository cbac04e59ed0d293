//! `.safetensors`: the state dict under Torchreid's key names and shapes (float32 or float16
//! values, int64 batch counts), loadable with `safetensors.torch.load_file` and
//! `load_state_dict(strict=True)`; the file's metadata names the model and its input size.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, tensor::TensorView};

use super::{ExportError, ExportSettings};
use crate::io::write_atomic;
use crate::models::Model;
use crate::models::checkpoint_writer::{TensorValues, WriteError};

/// Writes `model`'s state dict to `path` as `settings` say.
pub fn write(model: &Model, path: &Path, settings: &ExportSettings) -> Result<(), ExportError> {
    let records = model.state()?.records(settings.precision);
    let stored: Vec<(&str, Dtype, &[usize], Vec<u8>)> = records
        .iter()
        .map(|(key, record)| {
            let dtype = match record.values {
                TensorValues::F32(_) => Dtype::F32,
                TensorValues::F16(_) => Dtype::F16,
                TensorValues::I64(_) => Dtype::I64,
                TensorValues::U8(_) => Dtype::U8,
            };
            (
                key.as_str(),
                dtype,
                &record.shape[..],
                record.values.bytes(),
            )
        })
        .collect();
    let views = stored
        .iter()
        .map(|(key, dtype, shape, bytes)| {
            Ok((*key, TensorView::new(*dtype, shape.to_vec(), bytes)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| ExportError::Encode(e.to_string()))?;
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("model".to_string(), model.name().to_string()),
        ("height".to_string(), settings.input.height.to_string()),
        ("width".to_string(), settings.input.width.to_string()),
    ]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| ExportError::Encode(e.to_string()))?;
    write_atomic(path, |out| out.write_all(&bytes)).map_err(|source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}
