//! BatchNorm with PyTorch's semantics, as a Burn module for training: in train mode the batch
//! statistics normalise the input (`host_batch_norm`'s operation, whose backward accounts
//! for them) and the running statistics move by `momentum` towards the batch mean and the
//! **unbiased** batch variance, counting the batches as PyTorch's `num_batches_tracked`; in
//! eval mode the running statistics normalise. (burn-nn's `BatchNorm` moves the running
//! variance towards the biased variance and keeps no count, so it is not used.)

use burn::module::{Module, Param, ParamId, RunningState};
use burn::tensor::module::batch_norm;
use burn::tensor::{Device, Tensor, TensorData};

use crate::models::Activation;
use crate::models::host_batch_norm::batch_norm_train;

/// PyTorch's defaults.
const MOMENTUM: f64 = 0.1;
/// PyTorch's epsilon for BatchNorm (and InstanceNorm).
pub const EPSILON: f64 = 1e-5;

/// A BatchNorm layer over the channels (dimension 1) of its input.
#[derive(Module, Debug)]
pub struct BatchNorm {
    /// Scale (`weight` in PyTorch).
    pub gamma: Param<Tensor<1>>,
    /// Shift (`bias`).
    pub beta: Param<Tensor<1>>,
    /// Running mean.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (unbiased) variance.
    pub running_var: RunningState<Tensor<1>>,
    /// Train-mode batches seen (`num_batches_tracked`), one value.
    pub batches_tracked: RunningState<Tensor<1>>,
}

/// The values of a BatchNorm layer, as a checkpoint stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormValues {
    /// `weight`.
    pub gamma: Vec<f32>,
    /// `bias`.
    pub beta: Vec<f32>,
    /// `running_mean`.
    pub running_mean: Vec<f32>,
    /// `running_var`.
    pub running_var: Vec<f32>,
    /// `num_batches_tracked`.
    pub batches_tracked: u64,
}

/// The ids of a layer's running statistics (Burn does not expose them once they are made).
#[derive(Debug, Clone, Copy)]
pub struct RunningIds {
    /// `running_mean`.
    pub mean: ParamId,
    /// `running_var`.
    pub var: ParamId,
    /// `num_batches_tracked`.
    pub batches: ParamId,
}

impl Default for RunningIds {
    fn default() -> Self {
        Self {
            mean: ParamId::new(),
            var: ParamId::new(),
            batches: ParamId::new(),
        }
    }
}

impl BatchNorm {
    /// A layer holding `values`, on `device`.
    pub fn new(values: &BatchNormValues, device: &Device) -> BatchNorm {
        Self::with_running_ids(values, device, RunningIds::default())
    }

    /// A layer holding `values`, on `device`, whose running statistics carry `ids`.
    pub fn with_running_ids(
        values: &BatchNormValues,
        device: &Device,
        ids: RunningIds,
    ) -> BatchNorm {
        let vector =
            |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), device);
        BatchNorm {
            gamma: Param::from_tensor(vector(&values.gamma)),
            beta: Param::from_tensor(vector(&values.beta)),
            running_mean: RunningState::with_id(ids.mean, vector(&values.running_mean)),
            running_var: RunningState::with_id(ids.var, vector(&values.running_var)),
            batches_tracked: RunningState::with_id(
                ids.batches,
                vector(&[values.batches_tracked as f32]),
            ),
        }
    }

    /// Train mode: normalises with the batch statistics and updates the running ones.
    pub fn forward_train<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward_train_activated(input, Activation::Identity)
    }

    /// [`BatchNorm::forward_train`], then `act` (in one operation on the CPU).
    pub(crate) fn forward_train_activated<const D: usize>(
        &self,
        input: Tensor<D>,
        act: Activation,
    ) -> Tensor<D> {
        let dims = input.dims();
        let per_channel = dims.iter().product::<usize>() / dims[1].max(1);
        let (gamma, beta) = (self.gamma.val(), self.beta.val());
        let (output, mean, variance) = batch_norm_train(input, gamma, beta, EPSILON, act);
        // PyTorch keeps the unbiased variance (n / (n − 1)) in the running statistics.
        let unbiased = per_channel as f64 / (per_channel.max(2) - 1) as f64;
        let update = |state: &RunningState<Tensor<1>>, batch: Tensor<1>| {
            let moved = state
                .value_sync()
                .mul_scalar(1.0 - MOMENTUM)
                .add(batch.detach().mul_scalar(MOMENTUM));
            state.update(moved.detach());
        };
        update(&self.running_mean, mean);
        update(&self.running_var, variance.mul_scalar(unbiased));
        self.batches_tracked
            .update(self.batches_tracked.value_sync().add_scalar(1.0));
        output
    }

    /// Eval mode: normalises with the running statistics.
    pub fn forward_eval<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        batch_norm(
            input,
            self.gamma.val(),
            self.beta.val(),
            self.running_mean.value(),
            self.running_var.value(),
            EPSILON,
        )
    }

    /// The layer's current values.
    pub fn values(&self) -> BatchNormValues {
        let read = |t: Tensor<1>| t.to_data().try_to_vec::<f32>().unwrap_or_default();
        BatchNormValues {
            gamma: read(self.gamma.val()),
            beta: read(self.beta.val()),
            running_mean: read(self.running_mean.value_sync()),
            running_var: read(self.running_var.value_sync()),
            batches_tracked: read(self.batches_tracked.value_sync())
                .first()
                .map_or(0, |&n| n as u64),
        }
    }
}
