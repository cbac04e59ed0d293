//! Training checkpoints, as Torchreid's `save_checkpoint` writes them: `OUT/model.pth.tar-EPOCH`
//! holding `state_dict` (Torchreid's key names, `num_batches_tracked` included), `epoch`,
//! `rank1` when the epoch was evaluated, and `optimizer` — here the optimiser's state as a
//! burnpack byte tensor with Torchreid's `param_groups` beside it. `--resume` reads them back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use burn::tensor::Bytes;
use pytorch_reader::{PickleValue, PytorchReader};

use super::error::TrainError;
use crate::backend::Precision;
use crate::models::TrainableModel;
use crate::models::checkpoint_writer::{TensorRecord, TensorValues, Value, write_checkpoint};

/// Key of the optimiser's state inside the `optimizer` dict.
const OPTIMIZER_STATE: &str = "burnpack";

/// `OUT/model.pth.tar-EPOCH`.
pub fn checkpoint_path(out: &Path, epoch: usize) -> PathBuf {
    out.join(format!("model.pth.tar-{epoch}"))
}

/// What a checkpoint records besides the network.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointInfo {
    /// 1-based epoch just finished.
    pub epoch: usize,
    /// Rank-1 of the evaluation after it, if any.
    pub rank1: Option<f64>,
    /// Learning rate of the epoch.
    pub lr: f64,
}

/// Writes the checkpoint of `model` and `optimizer` after `info.epoch` to `path`, atomically.
pub fn save_checkpoint(
    path: &Path,
    model: &TrainableModel,
    optimizer: &ModuleOptimizer,
    info: CheckpointInfo,
) -> Result<(), TrainError> {
    let output_error = |reason: String| TrainError::Output {
        path: path.to_path_buf(),
        reason,
    };
    let state = model.state()?;
    let bytes = optimizer
        .into_bytes()
        .map_err(|e| output_error(format!("optimizer state: {e:?}")))?;
    let parameters = model.keys().parameter_ids().len();
    let optimizer = Value::Dict(vec![
        (
            Value::Str(OPTIMIZER_STATE.into()),
            Value::Tensor(TensorRecord {
                shape: vec![bytes.len()],
                values: TensorValues::U8(bytes.to_vec()),
            }),
        ),
        (
            Value::Str("param_groups".into()),
            Value::List(vec![Value::Dict(vec![
                (Value::Str("lr".into()), Value::Float(info.lr)),
                (
                    Value::Str("params".into()),
                    Value::List((0..parameters as i64).map(Value::Int).collect()),
                ),
            ])]),
        ),
    ]);
    let mut entries = vec![
        (
            Value::Str("state_dict".into()),
            state.to_value(Precision::F32),
        ),
        (Value::Str("epoch".into()), Value::Int(info.epoch as i64)),
    ];
    if let Some(rank1) = info.rank1 {
        entries.push((Value::Str("rank1".into()), Value::Float(rank1)));
    }
    entries.push((Value::Str("optimizer".into()), optimizer));
    write_checkpoint(path, &Value::Dict(entries))?;
    Ok(())
}

/// Where a checkpoint left a run.
#[derive(Debug)]
pub struct ResumePoint {
    /// Epochs finished.
    pub epoch: usize,
    /// The optimiser's state.
    pub optimizer_state: Bytes,
}

/// Reads the epoch and the optimiser's state of a checkpoint written by [`save_checkpoint`].
pub fn read_resume_point(path: &Path) -> Result<ResumePoint, TrainError> {
    let resume_error = |reason: String| TrainError::Resume {
        path: path.to_path_buf(),
        reason,
    };
    let epoch = match PytorchReader::read_pickle_data(path, Some("epoch")) {
        Ok(PickleValue::Int(epoch)) if epoch > 0 => epoch as usize,
        Ok(other) => {
            return Err(resume_error(format!(
                "'epoch' is {other:?}, expected a positive integer"
            )));
        }
        Err(e) => return Err(resume_error(e.to_string())),
    };
    let tensors: HashMap<String, pytorch_reader::Tensor> = PytorchReader::new(path)
        .map_err(|e| resume_error(e.to_string()))?
        .into_tensors();
    let key = format!("optimizer.{OPTIMIZER_STATE}");
    let state = tensors.get(&key).ok_or_else(|| {
        resume_error(format!(
            "no optimiser state '{key}' (only checkpoints written by `reidscope train` can be resumed)"
        ))
    })?;
    let bytes = state.read().map_err(|e| resume_error(e.to_string()))?;
    Ok(ResumePoint {
        epoch,
        optimizer_state: Bytes::from_bytes_vec(bytes),
    })
}
