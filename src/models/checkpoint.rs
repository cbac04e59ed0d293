//! Checkpoint files → named f32 tensors, with the container layout detected from the keys.
//!
//! PyTorch files are parsed by `pytorch-reader`, which never executes pickle code: the zip
//! format (torch >= 1.6), the legacy pre-1.6 stream, the early TAR container and plain
//! pickles. `.safetensors` files are read by the `safetensors` crate. f16/bf16/f64 tensors are
//! widened to f32.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pytorch_reader::{DType, PickleValue, PytorchReader};

use crate::models::checkpoint_file::{CheckpointFile, inspect_checkpoint_file};
use crate::models::error::ModelError;
use crate::models::stored_tensor::{StoredTensor, read_safetensors};

/// How the network's state dict sits inside the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// The file is the state dict itself (torchvision, `torch.save(model.state_dict())`).
    StateDict,
    /// Torchreid's checkpoint dict: weights under `state_dict`.
    Torchreid,
    /// The triplet-loss-baseline checkpoint: `state_dicts[0]`, keys under `base.`.
    TripletBaseline,
}

impl Container {
    /// Flattened-key prefix of the weights inside the file.
    fn prefix(self) -> &'static str {
        match self {
            Self::StateDict => "",
            Self::Torchreid => "state_dict.",
            Self::TripletBaseline => "state_dicts.0.",
        }
    }

    fn detect<'a>(mut keys: impl Iterator<Item = &'a String> + Clone) -> Self {
        if keys
            .clone()
            .any(|k| k.starts_with(Self::Torchreid.prefix()))
        {
            Self::Torchreid
        } else if keys.any(|k| k.starts_with(Self::TripletBaseline.prefix())) {
            Self::TripletBaseline
        } else {
            Self::StateDict
        }
    }
}

/// An opened checkpoint: the network's tensors by their PyTorch names, read on demand.
pub struct Checkpoint {
    path: PathBuf,
    container: Container,
    tensors: BTreeMap<String, StoredTensor>,
    used: BTreeSet<String>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("container", &self.container)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Checkpoint {
    /// Opens `path`, selects the state dict and strips the `module.` (DataParallel) and
    /// `base.` (triplet baseline) prefixes.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let read_error = |e: pytorch_reader::PytorchError| ModelError::Read {
            file: path.to_path_buf(),
            reason: e.to_string(),
        };
        let reason_error = |reason: String| ModelError::Read {
            file: path.to_path_buf(),
            reason,
        };
        let file = inspect_checkpoint_file(path).map_err(reason_error)?;
        let all: BTreeMap<String, StoredTensor> = match file {
            CheckpointFile::Safetensors => read_safetensors(path).map_err(reason_error)?,
            CheckpointFile::Pytorch => PytorchReader::new(path)
                .map_err(read_error)?
                .into_tensors()
                .into_iter()
                .map(|(key, tensor)| (key, StoredTensor::Pytorch(tensor)))
                .collect(),
        };
        let container = Container::detect(all.keys());
        if file == CheckpointFile::Pytorch {
            check_no_foreign_objects(path, container).map_err(read_error)?;
        }

        let mut tensors: BTreeMap<String, StoredTensor> = all
            .into_iter()
            .filter_map(|(k, t)| Some((k.strip_prefix(container.prefix())?.to_string(), t)))
            .collect();
        for prefix in ["module.", "base."] {
            if !tensors.is_empty() && tensors.keys().all(|k| k.starts_with(prefix)) {
                tensors = tensors
                    .into_iter()
                    .map(|(k, t)| (k[prefix.len()..].to_string(), t))
                    .collect();
            }
        }
        if tensors.is_empty() {
            return Err(ModelError::Read {
                file: path.to_path_buf(),
                reason: "no tensors found (expected a state dict, a Torchreid checkpoint or a triplet-baseline checkpoint)".into(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            container,
            tensors,
            used: BTreeSet::new(),
        })
    }

    /// The file this checkpoint was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The detected container layout.
    pub fn container(&self) -> Container {
        self.container
    }

    /// True if a tensor is stored under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// Shape of the tensor under `key`.
    pub fn shape_of(&self, key: &str) -> Option<Vec<usize>> {
        self.tensors.get(key).map(|t| t.shape().to_vec())
    }

    /// Reads `key` as f32, checking its shape; marks it used.
    pub fn read_f32(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let tensor = self
            .tensors
            .get(key)
            .ok_or_else(|| ModelError::MissingKey {
                file: self.path.clone(),
                key: key.to_string(),
                shape: shape.to_vec(),
                nearby: self.tensors.keys().take(5).cloned().collect(),
            })?;
        if tensor.shape() != shape {
            return Err(ModelError::ShapeMismatch {
                file: self.path.clone(),
                key: key.to_string(),
                found: tensor.shape().to_vec(),
                expected: shape.to_vec(),
            });
        }
        let bytes = tensor.read().map_err(|e| ModelError::Read {
            file: self.path.clone(),
            reason: format!("tensor '{key}': {e}"),
        })?;
        let values = widen_to_f32(&bytes, tensor.dtype()).ok_or_else(|| ModelError::Read {
            file: self.path.clone(),
            reason: format!(
                "tensor '{key}' has dtype {:?}, expected a floating-point type",
                tensor.dtype()
            ),
        })?;
        if let Some(reason) = implausible(key, &values) {
            return Err(ModelError::Read {
                file: self.path.clone(),
                reason: format!("tensor '{key}' {reason}"),
            });
        }
        self.used.insert(key.to_string());
        Ok(values)
    }

    /// Reads the batch count under `key` (an integer scalar such as `num_batches_tracked`), if
    /// the checkpoint has one; marks it used.
    pub fn read_count(&mut self, key: &str) -> Result<Option<u64>, ModelError> {
        let Some(tensor) = self.tensors.get(key) else {
            return Ok(None);
        };
        let bad = |reason: String| ModelError::Read {
            file: self.path.clone(),
            reason: format!("tensor '{key}': {reason}"),
        };
        if tensor.shape().iter().product::<usize>() != 1 {
            return Err(bad(format!(
                "shape {:?}, expected one count",
                tensor.shape()
            )));
        }
        let bytes = tensor.read().map_err(|e| bad(e.to_string()))?;
        let count = match (tensor.dtype(), bytes.as_slice()) {
            (DType::I64, &[a, b, c, d, e, f, g, h]) => i64::from_le_bytes([a, b, c, d, e, f, g, h]),
            (DType::I32, &[a, b, c, d]) => i64::from(i32::from_le_bytes([a, b, c, d])),
            (dtype, _) => return Err(bad(format!("dtype {dtype:?}, expected an integer count"))),
        };
        let count = u64::try_from(count).map_err(|_| bad(format!("negative count {count}")))?;
        self.used.insert(key.to_string());
        Ok(Some(count))
    }

    /// Stored keys no call to [`read_f32`](Self::read_f32) has asked for, sorted.
    pub fn unused_keys(&self) -> Vec<&String> {
        self.tensors
            .keys()
            .filter(|k| !self.used.contains(*k))
            .collect()
    }

    /// Classification-head keys a feature extractor leaves unused on purpose.
    pub fn is_head_key(key: &str) -> bool {
        key.starts_with("classifier.") || key.starts_with("fc.")
    }
}

/// Little-endian bytes of a floating-point tensor as f32 values; `None` for integer types.
fn widen_to_f32(bytes: &[u8], dtype: DType) -> Option<Vec<f32>> {
    Some(match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")) as f32)
            .collect(),
        _ => return None,
    })
}

/// Refuses Python objects other than tensors, containers and primitives among the weights.
///
/// Nothing in a checkpoint is ever executed; this makes a file that smuggles other objects into
/// its state dict an error rather than a silent partial load. Metadata beside the weights
/// (epoch, rank-1 as a numpy scalar, optimizer state) is not inspected.
fn check_no_foreign_objects(
    path: &Path,
    container: Container,
) -> Result<(), pytorch_reader::PytorchError> {
    let root = match container {
        Container::StateDict => PytorchReader::read_pickle_data(path, None)?,
        Container::Torchreid => PytorchReader::read_pickle_data(path, Some("state_dict"))?,
        Container::TripletBaseline => {
            match PytorchReader::read_pickle_data(path, Some("state_dicts"))? {
                PickleValue::List(mut items) if !items.is_empty() => items.swap_remove(0),
                _ => PickleValue::None,
            }
        }
    };
    match first_foreign_object(&root, &mut Vec::new()) {
        None => Ok(()),
        Some((at, name)) => Err(pytorch_reader::PytorchError::InvalidFormat(format!(
            "'{at}' holds a Python object of type {name}; only tensors, dicts, lists and primitives are accepted"
        ))),
    }
}

fn first_foreign_object(value: &PickleValue, path: &mut Vec<String>) -> Option<(String, String)> {
    match value {
        PickleValue::Unsupported(name) if name != "torch.Tensor" => {
            Some((path.join("."), name.clone()))
        }
        PickleValue::Dict(entries) => entries.iter().find_map(|(k, v)| {
            path.push(k.clone());
            let found = first_foreign_object(v, path);
            path.pop();
            found
        }),
        PickleValue::List(items) => items.iter().enumerate().find_map(|(i, v)| {
            path.push(i.to_string());
            let found = first_foreign_object(v, path);
            path.pop();
            found
        }),
        _ => None,
    }
}

/// Why the values of tensor `key` cannot be a network's: a NaN or infinity anywhere, or a
/// negative BatchNorm running variance (each would make every feature NaN).
fn implausible(key: &str, values: &[f32]) -> Option<String> {
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Some(format!(
            "holds {v} at index {i}; weights must be finite numbers"
        ));
    }
    if key.ends_with("running_var")
        && let Some((i, v)) = values.iter().enumerate().find(|(_, v)| **v < 0.0)
    {
        return Some(format!(
            "holds the negative variance {v} at index {i}; running variances are never negative"
        ));
    }
    None
}
