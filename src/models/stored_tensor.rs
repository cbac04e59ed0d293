//! A tensor as a checkpoint file stores it: read lazily through `pytorch-reader` (PyTorch's
//! containers), or a slice of a `.safetensors` file held in memory.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use pytorch_reader::{DType, Tensor};
use safetensors::{Dtype, SafeTensors};

use crate::io::read_regular_file;

/// The largest `.safetensors` file read (it is held in memory while the weights are taken).
const MAX_SAFETENSORS_BYTES: u64 = 16 << 30;

/// One stored tensor.
pub enum StoredTensor {
    /// A tensor of a PyTorch checkpoint, read when asked for.
    Pytorch(Tensor),
    /// The bytes `range` of a `.safetensors` file.
    Safetensors {
        /// Element type.
        dtype: DType,
        /// Shape.
        shape: Vec<usize>,
        /// The whole file.
        file: Arc<Vec<u8>>,
        /// Where the tensor's little-endian values lie in it.
        range: Range<usize>,
    },
}

impl StoredTensor {
    /// The tensor's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            StoredTensor::Pytorch(tensor) => tensor.shape(),
            StoredTensor::Safetensors { shape, .. } => shape,
        }
    }

    /// The tensor's element type.
    pub fn dtype(&self) -> DType {
        match self {
            StoredTensor::Pytorch(tensor) => tensor.dtype(),
            StoredTensor::Safetensors { dtype, .. } => *dtype,
        }
    }

    /// The tensor's values as little-endian bytes.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            StoredTensor::Pytorch(tensor) => tensor.read().map_err(|e| e.to_string()),
            StoredTensor::Safetensors { file, range, .. } => Ok(file[range.clone()].to_vec()),
        }
    }
}

/// True if `head` (a file's first bytes) opens like a `.safetensors` file: a little-endian
/// `u64` header length, then the JSON header's `{`.
pub fn starts_like_safetensors(head: &[u8]) -> bool {
    head.len() > 8 && head[8] == b'{'
}

/// Reads every tensor of the `.safetensors` file at `path` (the format checks that each lies
/// inside the file).
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, StoredTensor>, String> {
    let file = Arc::new(read_regular_file(path, MAX_SAFETENSORS_BYTES).map_err(|e| e.to_string())?);
    let parsed = SafeTensors::deserialize(&file).map_err(|e| format!("safetensors: {e}"))?;
    let start = file.as_ptr() as usize;
    parsed
        .iter()
        .map(|(key, view)| {
            let dtype = dtype_of(view.dtype()).ok_or_else(|| {
                format!(
                    "tensor '{key}' has dtype {:?}, which reidscope does not read",
                    view.dtype()
                )
            })?;
            let offset = view.data().as_ptr() as usize - start;
            let tensor = StoredTensor::Safetensors {
                dtype,
                shape: view.shape().to_vec(),
                file: Arc::clone(&file),
                range: offset..offset + view.data().len(),
            };
            Ok((key.to_string(), tensor))
        })
        .collect()
}

/// The PyTorch element type of a safetensors one, for those checkpoints hold.
fn dtype_of(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::F64 => DType::F64,
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        _ => return None,
    })
}
