//! Writing PyTorch checkpoints: the zip format of `torch.save` (`archive/data.pkl`, one raw
//! storage per tensor in `archive/data/N`, `archive/version`, `archive/byteorder`) with a
//! protocol-2 pickle that rebuilds tensors through `torch._utils._rebuild_tensor_v2`, which is
//! what `torch.load(path, weights_only=True)` accepts and what reidscope's reader reads.

use std::io::{Cursor, Write};
use std::path::Path;

use half::f16;
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::io::write_atomic;

/// Name of the folder inside the zip (PyTorch takes whatever the first entry names).
const ARCHIVE: &str = "archive";
/// Storage records start at multiples of this many bytes, as `torch.save` aligns them.
const ALIGNMENT: u16 = 64;

/// A tensor's values, in one of the element types checkpoints hold.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorValues {
    /// float32 (`torch.FloatStorage`).
    F32(Vec<f32>),
    /// float16 (`torch.HalfStorage`).
    F16(Vec<f16>),
    /// int64 (`torch.LongStorage`), e.g. `num_batches_tracked`.
    I64(Vec<i64>),
    /// uint8 (`torch.ByteStorage`): opaque bytes.
    U8(Vec<u8>),
}

impl TensorValues {
    fn len(&self) -> usize {
        match self {
            TensorValues::F32(v) => v.len(),
            TensorValues::F16(v) => v.len(),
            TensorValues::I64(v) => v.len(),
            TensorValues::U8(v) => v.len(),
        }
    }

    /// PyTorch's storage class for the element type.
    fn storage_class(&self) -> &'static str {
        match self {
            TensorValues::F32(_) => "FloatStorage",
            TensorValues::F16(_) => "HalfStorage",
            TensorValues::I64(_) => "LongStorage",
            TensorValues::U8(_) => "ByteStorage",
        }
    }

    /// The values as little-endian bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            TensorValues::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorValues::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorValues::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorValues::U8(v) => v.clone(),
        }
    }
}

/// A dense, contiguous tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRecord {
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Row-major values; as many as the shape holds.
    pub values: TensorValues,
}

/// A value in a checkpoint: what Torchreid's `save_checkpoint` dictionaries hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A plain dict, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A `collections.OrderedDict` with string keys (a state dict).
    OrderedDict(Vec<(String, Value)>),
    /// A tensor.
    Tensor(TensorRecord),
}

/// Why a checkpoint could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A tensor's values do not fill its shape.
    #[error("tensor {index}: shape {shape:?} holds {expected} values, got {found}")]
    Shape {
        /// Position of the tensor in the checkpoint.
        index: usize,
        /// Its shape.
        shape: Vec<usize>,
        /// Values the shape holds.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Writes `value` (usually a dict with a `state_dict`) to `path` atomically, as `torch.save`
/// would.
pub fn write_checkpoint(path: &Path, value: &Value) -> Result<(), WriteError> {
    let mut pickle = Pickler::default();
    pickle.program(value)?;
    let bytes = archive(&pickle).map_err(|source| WriteError::Io {
        path: path.to_path_buf(),
        source: source.into(),
    })?;
    write_atomic(path, |w| w.write_all(&bytes)).map_err(|source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The zip file of a pickled program and its storages.
fn archive(pickle: &Pickler) -> zip::result::ZipResult<Vec<u8>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .with_alignment(ALIGNMENT);
    let entry = |zip: &mut ZipWriter<_>, name: String, bytes: &[u8]| {
        zip.start_file(name, stored)?;
        zip.write_all(bytes)?;
        Ok::<_, zip::result::ZipError>(())
    };
    entry(&mut zip, format!("{ARCHIVE}/data.pkl"), &pickle.out)?;
    entry(&mut zip, format!("{ARCHIVE}/byteorder"), b"little")?;
    for (key, storage) in pickle.storages.iter().enumerate() {
        entry(&mut zip, format!("{ARCHIVE}/data/{key}"), &storage.bytes())?;
    }
    entry(&mut zip, format!("{ARCHIVE}/version"), b"3\n")?;
    Ok(zip.finish()?.into_inner())
}

/// A protocol-2 pickle of a [`Value`], collecting tensor storages as persistent ids.
#[derive(Default)]
struct Pickler<'a> {
    out: Vec<u8>,
    storages: Vec<&'a TensorValues>,
}

impl<'a> Pickler<'a> {
    /// PROTO 2, the value, STOP.
    fn program(&mut self, value: &'a Value) -> Result<(), WriteError> {
        self.out.extend_from_slice(&[0x80, 2]);
        self.value(value)?;
        self.out.push(b'.');
        Ok(())
    }

    fn value(&mut self, value: &'a Value) -> Result<(), WriteError> {
        match value {
            Value::None => self.out.push(b'N'),
            Value::Bool(true) => self.out.push(0x88),
            Value::Bool(false) => self.out.push(0x89),
            Value::Int(i) => self.int(*i),
            Value::Float(f) => {
                self.out.push(b'G');
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            Value::Str(s) => self.string(s),
            Value::List(items) => {
                self.out.push(b']');
                if !items.is_empty() {
                    self.out.push(b'(');
                    for item in items {
                        self.value(item)?;
                    }
                    self.out.push(b'e');
                }
            }
            Value::Tuple(items) => {
                self.out.push(b'(');
                for item in items {
                    self.value(item)?;
                }
                self.out.push(b't');
            }
            Value::Dict(pairs) => {
                self.out.push(b'}');
                self.set_items(pairs.iter().map(|(k, v)| (Key::Value(k), v)))?;
            }
            Value::OrderedDict(pairs) => {
                self.empty_ordered_dict();
                self.set_items(pairs.iter().map(|(k, v)| (Key::Str(k), v)))?;
            }
            Value::Tensor(tensor) => self.tensor(tensor)?,
        }
        Ok(())
    }

    /// MARK key value … SETITEMS, onto the dict on top of the stack.
    fn set_items(
        &mut self,
        pairs: impl Iterator<Item = (Key<'a>, &'a Value)>,
    ) -> Result<(), WriteError> {
        let mark = self.out.len();
        self.out.push(b'(');
        let mut any = false;
        for (key, value) in pairs {
            match key {
                Key::Str(s) => self.string(s),
                Key::Value(k) => self.value(k)?,
            }
            self.value(value)?;
            any = true;
        }
        if any {
            self.out.push(b'u');
        } else {
            self.out.truncate(mark);
        }
        Ok(())
    }

    fn int(&mut self, i: i64) {
        if let Ok(small) = i32::try_from(i) {
            self.out.push(b'J');
            self.out.extend_from_slice(&small.to_le_bytes());
        } else {
            // LONG1: little-endian two's complement, 8 bytes.
            self.out.extend_from_slice(&[0x8a, 8]);
            self.out.extend_from_slice(&i.to_le_bytes());
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    fn global(&mut self, module: &str, name: &str) {
        self.out.push(b'c');
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
    }

    /// `collections.OrderedDict()`.
    fn empty_ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.out.extend_from_slice(b")R");
    }

    /// `_rebuild_tensor_v2(storage, 0, shape, strides, False, OrderedDict())`, the storage a
    /// persistent id `('storage', torch.XStorage, 'N', 'cpu', numel)`.
    fn tensor(&mut self, tensor: &'a TensorRecord) -> Result<(), WriteError> {
        let numel: usize = tensor.shape.iter().product();
        if numel != tensor.values.len() {
            return Err(WriteError::Shape {
                index: self.storages.len(),
                shape: tensor.shape.clone(),
                expected: numel,
                found: tensor.values.len(),
            });
        }
        let key = self.storages.len();
        self.storages.push(&tensor.values);
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(b'(');
        self.out.push(b'(');
        self.string("storage");
        self.global("torch", tensor.values.storage_class());
        self.string(&key.to_string());
        self.string("cpu");
        self.int(numel as i64);
        self.out.extend_from_slice(b"tQ");
        self.int(0);
        let mut strides = vec![1usize; tensor.shape.len()];
        for d in (0..tensor.shape.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * tensor.shape[d + 1];
        }
        for dims in [&tensor.shape, &strides] {
            self.out.push(b'(');
            for &d in dims {
                self.int(d as i64);
            }
            self.out.push(b't');
        }
        self.out.push(0x89);
        self.empty_ordered_dict();
        self.out.extend_from_slice(b"tR");
        Ok(())
    }
}

/// A dict key: a state dict's string or any value.
enum Key<'a> {
    Str(&'a str),
    Value(&'a Value),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::checkpoint::Checkpoint;

    fn tensor(shape: &[usize], values: TensorValues) -> Value {
        Value::Tensor(TensorRecord {
            shape: shape.to_vec(),
            values,
        })
    }

    #[test]
    fn a_written_checkpoint_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.pth.tar-1");
        let weight: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let half: Vec<f16> = (0..6).map(|i| f16::from_f32(i as f32 / 4.0)).collect();
        let state = Value::OrderedDict(vec![
            (
                "conv.weight".into(),
                tensor(&[2, 3, 2, 2], TensorValues::F32(weight.clone())),
            ),
            ("fc.bias".into(), tensor(&[6], TensorValues::F16(half))),
            (
                "bn.num_batches_tracked".into(),
                tensor(&[], TensorValues::I64(vec![7])),
            ),
        ]);
        let checkpoint = Value::Dict(vec![
            (Value::Str("state_dict".into()), state),
            (Value::Str("epoch".into()), Value::Int(3)),
            (Value::Str("rank1".into()), Value::Float(0.75)),
            (
                Value::Str("optimizer".into()),
                Value::Dict(vec![(
                    Value::Str("param_groups".into()),
                    Value::List(vec![Value::Dict(vec![
                        (Value::Str("lr".into()), Value::Float(3e-4)),
                        (
                            Value::Str("betas".into()),
                            Value::Tuple(vec![Value::Float(0.9), Value::Float(0.999)]),
                        ),
                        (Value::Str("amsgrad".into()), Value::Bool(false)),
                        (Value::Str("big".into()), Value::Int(1 << 40)),
                        (Value::Str("none".into()), Value::None),
                    ])]),
                )]),
            ),
        ]);
        write_checkpoint(&path, &checkpoint).unwrap();
        let mut read = Checkpoint::open(&path).unwrap();
        assert_eq!(read.shape_of("conv.weight"), Some(vec![2, 3, 2, 2]));
        assert_eq!(read.read_f32("conv.weight", &[2, 3, 2, 2]).unwrap(), weight);
        let expected: Vec<f32> = (0..6).map(|i| i as f32 / 4.0).collect();
        assert_eq!(read.read_f32("fc.bias", &[6]).unwrap(), expected);
        assert!(read.contains("bn.num_batches_tracked"));
    }

    #[test]
    fn a_tensor_that_does_not_fill_its_shape_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.pth");
        let state = Value::OrderedDict(vec![(
            "w".into(),
            tensor(&[2, 2], TensorValues::F32(vec![1.0; 3])),
        )]);
        let error = write_checkpoint(&path, &state).unwrap_err().to_string();
        assert!(
            error.contains("[2, 2]") && error.contains("got 3"),
            "{error}"
        );
        assert!(!path.exists());
    }
}
