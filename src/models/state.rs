//! A network's state dict: which parameter or running statistic holds which PyTorch key, and
//! the values read back from a module under those keys — for checkpoints, and to build the
//! folded inference form of a network being trained.

use std::collections::HashMap;
use std::path::PathBuf;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{DType, Tensor};

use half::f16;

use crate::backend::Precision;
use crate::models::checkpoint_writer::{TensorRecord, TensorValues, Value};
use crate::models::error::ModelError;
use crate::models::weights::WeightSource;

/// What a state-dict entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A trainable parameter.
    Parameter,
    /// A running statistic (BatchNorm's running mean and variance).
    Running,
    /// A batch count stored as an int64 scalar (`num_batches_tracked`), held as one float.
    Count,
}

/// One entry: the module value `id` is stored under `key` with `shape` in a checkpoint.
#[derive(Debug, Clone)]
struct Entry {
    id: ParamId,
    key: String,
    shape: Vec<usize>,
    kind: EntryKind,
    rank: usize,
}

/// The first id given to a network's values. Ids are issued in load order, so the same
/// architecture always numbers its values the same way and an optimiser's state saved with one
/// build applies to the next (`--resume`).
const FIRST_ID: u64 = 0x5EED_0000_0000_0000;

/// The keys of a network's values, in PyTorch's state-dict order.
#[derive(Debug, Clone, Default)]
pub struct StateKeys {
    entries: Vec<Entry>,
    issued: u64,
}

impl StateKeys {
    /// The id for the next value of the network.
    pub fn next_id(&mut self) -> ParamId {
        self.issued += 1;
        ParamId::from(FIRST_ID + self.issued)
    }

    /// Records that the value `id`, a tensor of `rank` dimensions in the module, is stored
    /// under `key` with `shape`.
    pub fn push(&mut self, id: ParamId, key: &str, shape: &[usize], kind: EntryKind, rank: usize) {
        self.entries.push(Entry {
            id,
            key: key.to_string(),
            shape: shape.to_vec(),
            kind,
            rank,
        });
    }

    /// The ids of the entries whose key starts with `prefix`.
    pub fn ids_with_prefix(&self, prefix: &str) -> Vec<ParamId> {
        self.entries
            .iter()
            .filter(|e| e.key.starts_with(prefix))
            .map(|e| e.id)
            .collect()
    }

    /// The trainable parameters' ids and tensor ranks, in state-dict order (PyTorch's
    /// parameter order).
    pub fn parameters(&self) -> Vec<(ParamId, usize)> {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::Parameter)
            .map(|e| (e.id, e.rank))
            .collect()
    }

    /// Reads the current values of `module` under these keys.
    pub fn read<M: Module>(&self, module: &M) -> Result<StateDict, ModelError> {
        let mut collector = Collector::default();
        module.visit(&mut collector);
        if let Some(error) = collector.error {
            return Err(ModelError::Device(error));
        }
        let entries = self
            .entries
            .iter()
            .map(|entry| {
                let values = collector.values.remove(&entry.id).ok_or_else(|| {
                    ModelError::Device(format!("no value for state-dict key '{}'", entry.key))
                })?;
                Ok(StateEntry {
                    key: entry.key.clone(),
                    shape: entry.shape.clone(),
                    kind: entry.kind,
                    values,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(StateDict { entries })
    }
}

/// Collects every float value of a module by id.
#[derive(Default)]
struct Collector {
    values: HashMap<ParamId, Vec<f32>>,
    error: Option<String>,
}

impl ModuleVisitor for Collector {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val().cast(DType::F32);
        match tensor
            .try_into_data()
            .map_err(|e| format!("{e:?}"))
            .and_then(|d| d.try_into_vec::<f32>().map_err(|e| format!("{e:?}")))
        {
            Ok(values) => {
                self.values.insert(param.id, values);
            }
            Err(e) => self.error = Some(e),
        }
    }
}

/// One key's values.
#[derive(Debug, Clone)]
struct StateEntry {
    key: String,
    shape: Vec<usize>,
    kind: EntryKind,
    values: Vec<f32>,
}

/// A network's values by PyTorch key, in state-dict order.
#[derive(Debug, Clone)]
pub struct StateDict {
    entries: Vec<StateEntry>,
}

impl StateDict {
    /// Appends a parameter the network does not hold (the identity classifier).
    pub fn push_parameter(&mut self, key: &str, shape: &[usize], values: Vec<f32>) {
        self.entries.push(StateEntry {
            key: key.to_string(),
            shape: shape.to_vec(),
            kind: EntryKind::Parameter,
            values,
        });
    }

    /// The state dict as a checkpoint value (`OrderedDict` of float tensors in `precision`
    /// and int64 counts), as PyTorch's `model.state_dict()`.
    pub fn to_value(&self, precision: Precision) -> Value {
        Value::OrderedDict(
            self.records(precision)
                .into_iter()
                .map(|(key, record)| (key, Value::Tensor(record)))
                .collect(),
        )
    }

    /// Each entry's key and tensor, in state-dict order: float tensors in `precision`, batch
    /// counts as int64.
    pub fn records(&self, precision: Precision) -> Vec<(String, TensorRecord)> {
        self.entries
            .iter()
            .map(|entry| {
                let values = match entry.kind {
                    EntryKind::Parameter | EntryKind::Running => match precision {
                        Precision::F32 => TensorValues::F32(entry.values.clone()),
                        Precision::F16 => TensorValues::F16(
                            entry.values.iter().map(|&v| f16::from_f32(v)).collect(),
                        ),
                    },
                    EntryKind::Count => {
                        TensorValues::I64(entry.values.iter().map(|&v| v.round() as i64).collect())
                    }
                };
                let record = TensorRecord {
                    shape: entry.shape.clone(),
                    values,
                };
                (entry.key.clone(), record)
            })
            .collect()
    }

    fn find(&self, key: &str) -> Option<&StateEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    fn origin() -> PathBuf {
        PathBuf::from("(the network's own state)")
    }
}

impl WeightSource for StateDict {
    fn take(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let entry = self.find(key).ok_or_else(|| ModelError::MissingKey {
            file: Self::origin(),
            key: key.to_string(),
            shape: shape.to_vec(),
            nearby: Vec::new(),
        })?;
        if entry.shape != shape {
            return Err(ModelError::ShapeMismatch {
                file: Self::origin(),
                key: key.to_string(),
                found: entry.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        Ok(entry.values.clone())
    }

    fn take_count(&mut self, key: &str) -> Result<Option<u64>, ModelError> {
        Ok(self
            .find(key)
            .and_then(|e| e.values.first())
            .map(|&v| v.round() as u64))
    }

    fn shape_of(&self, key: &str) -> Option<Vec<usize>> {
        self.find(key).map(|e| e.shape.clone())
    }

    fn finish(&mut self) -> Result<(), ModelError> {
        Ok(())
    }
}
