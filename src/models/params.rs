//! Builds a network's layers from a [`WeightSource`]: each tensor is read under its PyTorch
//! key, becomes a parameter (or running statistic) on the device, and its key is recorded in
//! the network's [`StateKeys`]; for inference, each layer's folded form is built from the
//! same values.

use burn::module::Param;
use burn::nn::InstanceNormConfig;
use burn::tensor::{Device, Tensor, TensorData};

use crate::models::batch_norm::{BatchNorm, BatchNormValues, RunningIds};
use crate::models::conv_spec::ConvSpec;
use crate::models::error::ModelError;
use crate::models::folded::{self, FoldTarget};
use crate::models::layers::{Conv, ConvBn, InstanceNorm, Linear};
use crate::models::state::{EntryKind, StateKeys};
use crate::models::weights::WeightSource;

/// Reads a network's tensors and makes its layers.
pub struct ParamLoader<'a> {
    source: &'a mut dyn WeightSource,
    device: Device,
    fold: Option<FoldTarget>,
    keys: StateKeys,
}

impl<'a> ParamLoader<'a> {
    /// A loader reading `source` into parameters on `device`; with `fold`, every layer also
    /// gets its folded inference form there.
    pub fn new(
        source: &'a mut dyn WeightSource,
        device: &Device,
        fold: Option<FoldTarget>,
    ) -> Self {
        Self {
            source,
            device: device.clone(),
            fold,
            keys: StateKeys::default(),
        }
    }

    /// The keys of everything loaded so far.
    pub fn into_keys(self) -> StateKeys {
        self.keys
    }

    /// The values under `key`, stored with `stored` shape, as a parameter of `shape`.
    fn param<const D: usize>(
        &mut self,
        key: &str,
        stored: &[usize],
        shape: [usize; D],
    ) -> Result<(Vec<f32>, Param<Tensor<D>>), ModelError> {
        let values = self.source.take(key, stored)?;
        Ok((values.clone(), self.param_of(key, stored, shape, values)))
    }

    /// `values`, to be stored under `key` with `stored` shape, as a parameter of `shape`.
    fn param_of<const D: usize>(
        &mut self,
        key: &str,
        stored: &[usize],
        shape: [usize; D],
        values: Vec<f32>,
    ) -> Param<Tensor<D>> {
        let tensor = Tensor::from_data(TensorData::new(values, shape), &self.device);
        let mut param = Param::from_tensor(tensor);
        param.id = self.keys.next_id();
        self.keys
            .push(param.id, key, stored, EntryKind::Parameter, D);
        param
    }

    /// A linear layer with the given PyTorch-layout `weight` (`[out, in]`) and `bias`, to be
    /// stored under `{key}.weight` and `{key}.bias` (a newly drawn classifier).
    pub fn linear_of(&mut self, key: &str, weight: Vec<f32>, bias: Vec<f32>) -> Linear {
        let outputs = bias.len();
        let inputs = weight.len() / outputs.max(1);
        let folded = self
            .fold
            .as_ref()
            .map(|target| folded::Linear::new(&weight, &bias, None, target));
        let weight = self.param_of(
            &format!("{key}.weight"),
            &[outputs, inputs],
            [outputs, inputs],
            weight,
        );
        let bias = self.param_of(&format!("{key}.bias"), &[outputs], [outputs], bias);
        Linear::new(weight, bias, None, folded)
    }

    /// BatchNorm `{key}.{weight,bias,running_mean,running_var,num_batches_tracked}`.
    fn batch_norm(
        &mut self,
        key: &str,
        channels: usize,
    ) -> Result<(BatchNormValues, BatchNorm), ModelError> {
        let shape = [channels];
        let mut take = |name: &str| self.source.take(&format!("{key}.{name}"), &shape);
        let values = BatchNormValues {
            gamma: take("weight")?,
            beta: take("bias")?,
            running_mean: take("running_mean")?,
            running_var: take("running_var")?,
            batches_tracked: self
                .source
                .take_count(&format!("{key}.num_batches_tracked"))?
                .unwrap_or(0),
        };
        let mut next = || self.keys.next_id();
        let ids = RunningIds {
            mean: next(),
            var: next(),
            batches: next(),
        };
        let mut bn = BatchNorm::with_running_ids(&values, &self.device, ids);
        bn.gamma.id = self.keys.next_id();
        bn.beta.id = self.keys.next_id();
        for (id, name, kind) in [
            (bn.gamma.id, "weight", EntryKind::Parameter),
            (bn.beta.id, "bias", EntryKind::Parameter),
            (ids.mean, "running_mean", EntryKind::Running),
            (ids.var, "running_var", EntryKind::Running),
        ] {
            self.keys
                .push(id, &format!("{key}.{name}"), &shape, kind, 1);
        }
        self.keys.push(
            ids.batches,
            &format!("{key}.num_batches_tracked"),
            &[],
            EntryKind::Count,
            1,
        );
        Ok((values, bn))
    }

    /// A bias-free convolution `{conv_key}.weight` followed by BatchNorm `{bn_key}.*`.
    pub fn conv_bn(
        &mut self,
        conv_key: &str,
        bn_key: &str,
        spec: ConvSpec,
    ) -> Result<ConvBn, ModelError> {
        let shape = spec.weight_shape();
        let (weight, param) = self.param(&format!("{conv_key}.weight"), &shape, shape)?;
        let (bn_values, bn) = self.batch_norm(bn_key, spec.out_channels)?;
        let folded = self
            .fold
            .as_ref()
            .map(|target| folded::Conv::new(&spec, &weight, None, Some(&bn_values), target));
        Ok(ConvBn::new(param, bn, spec, folded))
    }

    /// A convolution `{key}.weight` (and `{key}.bias` when `bias`).
    pub fn conv(&mut self, key: &str, spec: ConvSpec, bias: bool) -> Result<Conv, ModelError> {
        let shape = spec.weight_shape();
        let (weight, weight_param) = self.param(&format!("{key}.weight"), &shape, shape)?;
        let bias = if bias {
            let out = [spec.out_channels];
            Some(self.param(&format!("{key}.bias"), &out, out)?)
        } else {
            None
        };
        let folded = self.fold.as_ref().map(|target| {
            let bias = bias.as_ref().map(|(values, _)| values.as_slice());
            folded::Conv::new(&spec, &weight, bias, None, target)
        });
        Ok(Conv::new(weight_param, bias.map(|(_, p)| p), spec, folded))
    }

    /// Affine InstanceNorm `{key}.weight`, `{key}.bias`.
    pub fn instance_norm(
        &mut self,
        key: &str,
        channels: usize,
    ) -> Result<InstanceNorm, ModelError> {
        let shape = [channels];
        let (gamma, gamma_param) = self.param(&format!("{key}.weight"), &shape, shape)?;
        let (beta, beta_param) = self.param(&format!("{key}.bias"), &shape, shape)?;
        let mut norm = InstanceNormConfig::new(channels)
            .with_affine(true)
            .init(&self.device);
        norm.gamma = Some(gamma_param);
        norm.beta = Some(beta_param);
        let folded = self
            .fold
            .as_ref()
            .map(|target| folded::InstanceNorm::new(gamma, beta, target));
        Ok(InstanceNorm::new(norm, folded))
    }

    /// A linear layer `{key}.*` stored with weight shape `stored` (`[out, in]`, or
    /// `[out, in, 1, 1]` for a 1×1 convolution), optionally followed by BatchNorm1d `bn_key`.
    fn linear_stored(
        &mut self,
        key: &str,
        stored: &[usize],
        bn_key: Option<&str>,
        inputs: usize,
        outputs: usize,
    ) -> Result<Linear, ModelError> {
        let (weight, weight_param) =
            self.param(&format!("{key}.weight"), stored, [outputs, inputs])?;
        let out = [outputs];
        let (bias, bias_param) = self.param(&format!("{key}.bias"), &out, out)?;
        let bn = match bn_key {
            Some(bn_key) => Some(self.batch_norm(bn_key, outputs)?),
            None => None,
        };
        let folded = self
            .fold
            .as_ref()
            .map(|target| folded::Linear::new(&weight, &bias, bn.as_ref().map(|(v, _)| v), target));
        Ok(Linear::new(
            weight_param,
            bias_param,
            bn.map(|(_, layer)| layer),
            folded,
        ))
    }

    /// A linear layer `{key}.weight` (`[out, in]`), `{key}.bias`.
    pub fn linear(
        &mut self,
        key: &str,
        inputs: usize,
        outputs: usize,
    ) -> Result<Linear, ModelError> {
        self.linear_stored(key, &[outputs, inputs], None, inputs, outputs)
    }

    /// A 1×1 convolution with bias `{key}.*` used as a fully connected layer on pooled vectors.
    pub fn pointwise_as_linear(
        &mut self,
        key: &str,
        inputs: usize,
        outputs: usize,
    ) -> Result<Linear, ModelError> {
        self.linear_stored(key, &[outputs, inputs, 1, 1], None, inputs, outputs)
    }

    /// Linear `{linear_key}.*` followed by BatchNorm1d `{bn_key}.*`.
    pub fn linear_bn(
        &mut self,
        linear_key: &str,
        bn_key: &str,
        inputs: usize,
        outputs: usize,
    ) -> Result<Linear, ModelError> {
        self.linear_stored(
            linear_key,
            &[outputs, inputs],
            Some(bn_key),
            inputs,
            outputs,
        )
    }
}
