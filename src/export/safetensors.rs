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
        .and_then(|bytes| Ok(with_sorted_header(&bytes)?))
        .map_err(|e| ExportError::Encode(e.to_string()))?;
    write_atomic(path, |out| out.write_all(&bytes)).map_err(|source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// The file with its JSON header's keys in sorted order, so that the same model always gives
/// the same bytes (the encoder writes the metadata map in hash order). The data is unchanged,
/// so the offsets in the header stay valid; the header is padded with spaces to a multiple of
/// 8 bytes, as the format asks.
fn with_sorted_header(file: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let length = u64::from_le_bytes(file[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&file[8..8 + length])?;
    let mut sorted = serde_json::to_vec(&header)?;
    sorted.resize(sorted.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + sorted.len() + file.len() - 8 - length);
    out.extend((sorted.len() as u64).to_le_bytes());
    out.extend(sorted);
    out.extend(&file[8 + length..]);
    Ok(out)
}
