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
use super::loss_scale::{GROWTH_INTERVAL, LossScale};
use crate::backend::Precision;
use crate::models::TrainableModel;
use crate::models::checkpoint_file::inspect_checkpoint_file;
use crate::models::checkpoint_writer::{TensorRecord, TensorValues, Value, write_checkpoint};

/// Key of the optimiser's state inside the `optimizer` dict.
const OPTIMIZER_STATE: &str = "burnpack";
/// Key of the loss scale of mixed precision (PyTorch's `GradScaler.state_dict()` layout).
const SCALER: &str = "scaler";

/// `model.pth.tar-EPOCH`, Torchreid's name of the checkpoint after `epoch`.
pub fn checkpoint_name(epoch: usize) -> String {
    format!("model.pth.tar-{epoch}")
}

/// The epoch of a file named as [`checkpoint_name`] writes it.
pub fn checkpoint_epoch(name: &str) -> Option<usize> {
    name.strip_prefix("model.pth.tar-")?.parse().ok()
}

/// `OUT/model.pth.tar-EPOCH`.
pub fn checkpoint_path(out: &Path, epoch: usize) -> PathBuf {
    out.join(checkpoint_name(epoch))
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
    /// The loss scale after it (mixed precision).
    pub loss_scale: Option<LossScale>,
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
    let parameters = model.keys().parameters().len();
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
    if let Some(scale) = info.loss_scale {
        entries.push((Value::Str(SCALER.into()), scaler_value(&scale)));
    }
    write_checkpoint(path, &Value::Dict(entries))?;
    Ok(())
}

/// The loss scale as PyTorch's `GradScaler.state_dict()` writes it.
fn scaler_value(scale: &LossScale) -> Value {
    let entry = |key: &str, value: Value| (Value::Str(key.into()), value);
    Value::Dict(vec![
        entry("scale", Value::Float(f64::from(scale.scale()))),
        entry("growth_factor", Value::Float(2.0)),
        entry("backoff_factor", Value::Float(0.5)),
        entry("growth_interval", Value::Int(i64::from(GROWTH_INTERVAL))),
        entry(
            "_growth_tracker",
            Value::Int(i64::from(scale.clean_steps())),
        ),
    ])
}

/// Where a checkpoint left a run.
#[derive(Debug)]
pub struct ResumePoint {
    /// Epochs finished.
    pub epoch: usize,
    /// The optimiser's state.
    pub optimizer_state: Bytes,
    /// The loss scale, when the run trained in mixed precision.
    pub loss_scale: Option<LossScale>,
}

/// Reads the epoch and the optimiser's state of a checkpoint written by [`save_checkpoint`].
pub fn read_resume_point(path: &Path) -> Result<ResumePoint, TrainError> {
    let resume_error = |reason: String| TrainError::Resume {
        path: path.to_path_buf(),
        reason,
    };
    inspect_checkpoint_file(path).map_err(&resume_error)?;
    // The pickled values (epoch, loss scale) in one read; tensors come from the reader below.
    let root = match PytorchReader::read_pickle_data(path, None) {
        Ok(PickleValue::Dict(root)) => root,
        Ok(_) => return Err(resume_error("expected a dict at the top level".into())),
        Err(e) => return Err(resume_error(e.to_string())),
    };
    let epoch = match root.get("epoch") {
        Some(&PickleValue::Int(epoch)) if epoch > 0 => epoch as usize,
        other => {
            return Err(resume_error(format!(
                "'epoch' is {other:?}, expected a positive integer"
            )));
        }
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
    let loss_scale = match root.get(SCALER) {
        Some(PickleValue::Dict(scaler)) => Some(read_scaler(scaler).map_err(resume_error)?),
        Some(other) => {
            return Err(resume_error(format!(
                "'{SCALER}' is {other:?}, expected a dict"
            )));
        }
        None => None,
    };
    Ok(ResumePoint {
        epoch,
        optimizer_state: Bytes::from_bytes_vec(bytes),
        loss_scale,
    })
}

/// The loss scale from a `scaler` dict written by [`scaler_value`].
fn read_scaler(scaler: &HashMap<String, PickleValue>) -> Result<LossScale, String> {
    let scale = match scaler.get("scale") {
        Some(PickleValue::Float(scale)) if scale.is_finite() && *scale >= 1.0 => *scale as f32,
        other => {
            return Err(format!(
                "'{SCALER}.scale' is {other:?}, expected a number ≥ 1"
            ));
        }
    };
    let clean_steps = match scaler.get("_growth_tracker") {
        Some(PickleValue::Int(steps)) => u32::try_from(*steps).ok(),
        _ => None,
    }
    .filter(|&steps| steps < GROWTH_INTERVAL)
    .ok_or_else(|| {
        format!("'{SCALER}._growth_tracker' is missing or not an integer in 0..{GROWTH_INTERVAL}")
    })?;
    Ok(LossScale::resumed(scale, clean_steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint holding only what `read_resume_point` reads, with `scaler` when given.
    fn resume_file(dir: &Path, scaler: Option<Value>) -> PathBuf {
        let path = dir.join("model.pth.tar-3");
        let optimizer = Value::Dict(vec![(
            Value::Str(OPTIMIZER_STATE.into()),
            Value::Tensor(TensorRecord {
                shape: vec![3],
                values: TensorValues::U8(vec![1, 2, 3]),
            }),
        )]);
        let mut entries = vec![
            (Value::Str("epoch".into()), Value::Int(3)),
            (Value::Str("optimizer".into()), optimizer),
        ];
        entries.extend(scaler.map(|s| (Value::Str(SCALER.into()), s)));
        write_checkpoint(&path, &Value::Dict(entries)).unwrap();
        path
    }

    #[test]
    fn the_loss_scale_survives_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut scale = LossScale::resumed(512.0, 0);
        for _ in 0..17 {
            scale.update(true);
        }
        let path = resume_file(dir.path(), Some(scaler_value(&scale)));
        let point = read_resume_point(&path).unwrap();
        assert_eq!(point.epoch, 3);
        assert_eq!(point.optimizer_state.to_vec(), vec![1, 2, 3]);
        let resumed = point.loss_scale.unwrap();
        assert_eq!((resumed.scale(), resumed.clean_steps()), (512.0, 17));
    }

    #[test]
    fn an_f32_run_has_no_loss_scale_and_a_bad_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = resume_file(dir.path(), None);
        assert!(read_resume_point(&path).unwrap().loss_scale.is_none());
        let bad = Value::Dict(vec![(Value::Str("scale".into()), Value::Float(f64::NAN))]);
        let path = resume_file(dir.path(), Some(bad));
        let error = read_resume_point(&path).unwrap_err().to_string();
        assert!(error.contains("'scaler.scale'"), "{error}");
    }
}
