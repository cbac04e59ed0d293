//! One optimisation step as Torchreid's `ImageSoftmaxTripletEngine` takes it: the train-mode
//! forward pass, the weighted losses, the backward pass and the optimiser's update.

use burn::module::ParamId;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::batches::TrainBatch;
use super::loss::{batch_hard_triplet, cross_entropy};
use super::loss_scale::LossScale;
use crate::models::TrainableModel;
use crate::names::named_enum;

named_enum! {
    /// Which losses train the network (each with weight 1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum LossKind("loss") {
        /// Cross-entropy of the identity classifier.
        Softmax = "softmax",
        /// Batch-hard triplet loss on the features.
        Triplet = "triplet",
        /// Both, summed (Torchreid's `softmax+triplet` engine).
        #[default]
        SoftmaxTriplet = "softmax+triplet",
    }
}

named_enum! {
    /// The precision of training.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum TrainPrecision("training precision") {
        /// float32 throughout.
        #[default]
        F32 = "f32" | "fp32",
        /// Apex O2-style: f16 activations and gradients between layers (each layer sums in
        /// f32), f32 parameters, optimiser state, normalisation and losses, dynamic loss
        /// scaling (wgpu adapters with f16 only).
        Mixed = "mixed",
    }
}

/// The losses and their settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossSettings {
    /// Which losses.
    pub kind: LossKind,
    /// Label smoothing ε of the cross-entropy (0: none).
    pub label_smooth: f32,
    /// Triplet margin.
    pub margin: f32,
}

impl Default for LossSettings {
    fn default() -> Self {
        LossSettings {
            kind: LossKind::SoftmaxTriplet,
            label_smooth: 0.1,
            margin: 0.3,
        }
    }
}

/// What one step measured.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepStats {
    /// The weighted total loss.
    pub loss: f64,
    /// The cross-entropy (0 when not used).
    pub softmax: f64,
    /// The triplet loss (0 when not used).
    pub triplet: f64,
    /// Images the classifier labelled correctly.
    pub correct: usize,
    /// Images in the batch.
    pub images: usize,
}

/// A network, its optimiser and its losses.
pub struct Learner {
    /// The network being trained.
    pub model: TrainableModel,
    /// The optimiser and its state.
    pub optimizer: ModuleOptimizer,
    /// The losses.
    pub losses: LossSettings,
    /// The (autodiff) device the network trains on.
    pub device: Device,
    /// `Some` for mixed precision: f16 forward and backward with this dynamic loss scale
    /// (parameters, optimiser state, normalisation and losses stay f32).
    pub loss_scale: Option<LossScale>,
}

impl Learner {
    /// One step on `batch` with learning rate `lr`; with `only` the update is limited to those
    /// parameters and the rest of the network is frozen (fixbase epochs).
    pub fn step(&mut self, batch: &TrainBatch, lr: f64, only: Option<&[ParamId]>) -> StepStats {
        let dtype = if self.loss_scale.is_some() {
            DType::F16
        } else {
            DType::F32
        };
        let input: Tensor<4> = Tensor::from_data(
            TensorData::new(batch.inputs.clone(), batch.shape),
            (&self.device, dtype),
        );
        let (logits, features) = self.model.module().forward(input, only.is_some());
        let (logits, features) = (logits.cast(DType::F32), features.cast(DType::F32));
        let labels = &batch.labels;
        let softmax = cross_entropy(logits.clone(), labels, self.losses.label_smooth);
        let triplet = batch_hard_triplet(features, labels, self.losses.margin);
        let loss = match self.losses.kind {
            LossKind::Softmax => softmax.clone(),
            LossKind::Triplet => triplet.clone(),
            LossKind::SoftmaxTriplet => softmax.clone() + triplet.clone(),
        };
        let scale = self.loss_scale.as_ref().map_or(1.0, LossScale::scale);
        let mut gradients = if scale == 1.0 {
            loss.backward()
        } else {
            loss.clone().mul_scalar(scale).backward()
        };
        let module = self.model.module();
        let mut gradients = match only {
            Some(ids) => GradientsParams::from_params(&mut gradients, module, ids),
            None => GradientsParams::from_grads(gradients, module),
        };
        let take_step = match &mut self.loss_scale {
            Some(loss_scale) => {
                let finite = unscale(&mut gradients, &self.model.keys().parameters(), scale);
                loss_scale.update(finite)
            }
            None => true,
        };
        if take_step {
            let optimizer = &mut self.optimizer;
            self.model
                .update(|module| optimizer.step(lr, module, gradients));
        }
        let scalar = |t: Tensor<1>| f64::from(values(t.reshape([1, 1]))[0]);
        let used = |kind: LossKind, value: Tensor<1>| {
            let counts = self.losses.kind == kind || self.losses.kind == LossKind::SoftmaxTriplet;
            if counts { scalar(value) } else { 0.0 }
        };
        StepStats {
            loss: scalar(loss),
            softmax: used(LossKind::Softmax, softmax),
            triplet: used(LossKind::Triplet, triplet),
            correct: correct_predictions(&values(logits), labels),
            images: labels.len(),
        }
    }
}

/// Divides every gradient in `gradients` by `scale`; returns whether all are finite.
fn unscale(gradients: &mut GradientsParams, parameters: &[(ParamId, usize)], scale: f32) -> bool {
    let factor = 1.0 / scale;
    let mut total: Option<Tensor<1>> = None;
    for &(id, rank) in parameters {
        let size = match rank {
            1 => rescale::<1>(gradients, id, factor),
            2 => rescale::<2>(gradients, id, factor),
            4 => rescale::<4>(gradients, id, factor),
            _ => None,
        };
        if let Some(size) = size {
            total = Some(match total {
                Some(sum) => sum + size,
                None => size,
            });
        }
    }
    total.is_none_or(|sum| {
        let value = sum.to_data().try_to_vec::<f32>().unwrap_or_default();
        value.first().is_some_and(|v| v.is_finite())
    })
}

/// Multiplies the gradient of `id` by `factor`; returns the sum of its absolute values
/// (infinite or NaN when any value is), or `None` when `id` has no gradient.
fn rescale<const D: usize>(
    gradients: &mut GradientsParams,
    id: ParamId,
    factor: f32,
) -> Option<Tensor<1>> {
    let gradient = gradients.remove::<D>(id)?.mul_scalar(factor);
    let size = gradient.clone().abs().sum();
    gradients.register(id, gradient);
    Some(size)
}

/// The values of a tensor on the host.
fn values(t: Tensor<2>) -> Vec<f32> {
    t.to_data().try_to_vec::<f32>().unwrap_or_default()
}

/// How many rows of `logits` (row-major, one row per label) have their largest value at the
/// row's label.
fn correct_predictions(logits: &[f32], labels: &[usize]) -> usize {
    if labels.is_empty() {
        return 0;
    }
    let classes = logits.len() / labels.len();
    logits
        .chunks(classes.max(1))
        .zip(labels)
        .filter(|(row, label)| {
            let best = row
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                });
            best.0 == **label
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_rows_whose_best_class_is_the_label() {
        let logits = [0.1, 0.9, 0.0, 2.0, 1.0, 0.0, 0.3, 0.2, 0.5];
        assert_eq!(correct_predictions(&logits, &[1, 0, 0]), 2);
        assert_eq!(correct_predictions(&[], &[]), 0);
    }
}
