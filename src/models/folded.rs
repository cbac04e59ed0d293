//! The inference form of the layers: convolutions and linear layers with their eval-mode
//! BatchNorm folded in, and instance norm. Their values stay on the host, where the CPU executor
//! ([`crate::models::cpu_executor`]) reads them; other devices also get a copy for Burn's ops.
//!
//! Eval-mode BatchNorm is an affine map per channel, so it is folded into the preceding
//! convolution or linear layer (in f64 on the host), which is exact up to rounding. The
//! trainable layers in [`crate::models::layers`] build these forms from their own values.
//!
//! Precision: activations flow between layers in the model precision. Parameters are kept in
//! f32 holding values rounded to that precision, and convolutions, linear layers, norms and
//! pooling accumulate in f32 — as fp16 inference does on tensor-core hardware and in PyTorch.
//! (Burn's direct convolution kernel accumulates in the element type; in f16 that drops the
//! cosine similarity of OSNet features to fp32 to about 0.993.)

use std::sync::OnceLock;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::backend::{Backend, BackendKind, Precision};
use crate::models::Activation;
use crate::models::batch_norm::{BatchNormValues, EPSILON};
use crate::models::conv_spec::ConvSpec;
use crate::models::ops::activate;

/// Where folded layers live and in what precision their parameters are rounded.
#[derive(Debug, Clone)]
pub struct FoldTarget {
    /// The Burn device the layers run on; `None` for the CPU, where the executor runs them
    /// from their host values.
    device: Option<Device>,
    round_to_f16: bool,
}

impl FoldTarget {
    /// Folded layers for inference on `backend`.
    pub fn new(backend: &Backend) -> Self {
        Self {
            device: (backend.kind != BackendKind::Flex).then(|| backend.device.clone()),
            round_to_f16: backend.precision == Precision::F16,
        }
    }

    /// The device parameters are uploaded to, if any.
    fn device(&self) -> Option<&Device> {
        self.device.as_ref()
    }

    /// `values` rounded to the model precision (kept as f32).
    fn rounded(&self, mut values: Vec<f32>) -> Vec<f32> {
        if self.round_to_f16 {
            values
                .iter_mut()
                .for_each(|v| *v = half::f16::from_f32(*v).to_f32());
        }
        values
    }
}

/// An f32 parameter tensor on `device`.
fn upload<const D: usize>(device: &Device, values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), (device, DType::F32))
}

/// A folded convolution's values and geometry, as an exporter writes them.
#[derive(Debug, Clone)]
pub struct ConvParts {
    /// PyTorch-layout weight `[out, in / groups, k, k]`, BatchNorm folded in.
    pub weight: Vec<f32>,
    /// The weight's shape.
    pub weight_shape: [usize; 4],
    /// The bias, if any.
    pub bias: Option<Vec<f32>>,
    /// Stride, padding, dilation and groups.
    pub options: ConvOptions<2>,
}

/// A folded linear layer's values, as an exporter writes them.
#[derive(Debug, Clone)]
pub struct LinearParts {
    /// The weight `[in, out]`, BatchNorm1d folded in.
    pub weight: Vec<f32>,
    /// The weight's shape.
    pub weight_shape: [usize; 2],
    /// The bias.
    pub bias: Vec<f32>,
}

/// Eval-mode BatchNorm as a per-channel `(scale, shift)`.
fn bn_affine(bn: &BatchNormValues) -> (Vec<f64>, Vec<f64>) {
    let scale: Vec<f64> = bn
        .gamma
        .iter()
        .zip(&bn.running_var)
        .map(|(&g, &v)| g as f64 / (v as f64 + EPSILON).sqrt())
        .collect();
    let shift = bn
        .beta
        .iter()
        .zip(&bn.running_mean)
        .zip(&scale)
        .map(|((&b, &m), &s)| b as f64 - m as f64 * s)
        .collect();
    (scale, shift)
}

/// `weight` (rows of `per_out` values per output) and `bias` with `bn` folded in.
fn fold_bn(
    weight: &[f32],
    bias: Option<&[f32]>,
    bn: &BatchNormValues,
    per_out: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (scale, shift) = bn_affine(bn);
    let weight = weight
        .iter()
        .enumerate()
        .map(|(i, &w)| (w as f64 * scale[i / per_out]) as f32)
        .collect();
    let bias = shift
        .iter()
        .enumerate()
        .map(|(o, &t)| (bias.map_or(0.0, |b| b[o] as f64) * scale[o] + t) as f32)
        .collect();
    (weight, bias)
}

/// A 2-D convolution with an optional bias (where a BatchNorm was folded in).
///
/// Its values stay on the host, where the CPU executor reads them; for another device they
/// are also uploaded there for Burn's convolution.
#[derive(Debug, Clone)]
pub struct Conv {
    weight: Vec<f32>,
    /// The bias; zeros for a convolution that has none.
    bias: Vec<f32>,
    has_bias: bool,
    spec: ConvSpec,
    device: Option<DeviceConv>,
    /// The weights in Winograd's domain, computed by the CPU kernels when they first take
    /// that path.
    winograd: OnceLock<Vec<f32>>,
}

/// A folded convolution's parameters on a Burn device.
#[derive(Debug, Clone)]
struct DeviceConv {
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
}

impl Conv {
    /// The convolution `spec` with PyTorch-layout `weight`, an optional `bias`, and an optional
    /// eval-mode BatchNorm after it, folded in.
    pub fn new(
        spec: &ConvSpec,
        weight: &[f32],
        bias: Option<&[f32]>,
        bn: Option<&BatchNormValues>,
        target: &FoldTarget,
    ) -> Self {
        let (weight, bias) = match bn {
            Some(bn) => {
                let (w, b) = fold_bn(weight, bias, bn, weight.len() / spec.out_channels);
                (w, Some(b))
            }
            None => (weight.to_vec(), bias.map(<[f32]>::to_vec)),
        };
        let has_bias = bias.is_some();
        let weight = target.rounded(weight);
        let bias = target.rounded(bias.unwrap_or_else(|| vec![0.0; spec.out_channels]));
        let mut conv = Self {
            weight,
            bias,
            has_bias,
            spec: *spec,
            device: None,
            winograd: OnceLock::new(),
        };
        conv.device = target.device().map(|device| conv.upload(device));
        conv
    }

    /// The parameters on `device`.
    fn upload(&self, device: &Device) -> DeviceConv {
        DeviceConv {
            weight: upload(device, self.weight.clone(), self.spec.weight_shape()),
            bias: self
                .has_bias
                .then(|| upload(device, self.bias.clone(), [self.spec.out_channels])),
        }
    }

    /// The convolution's folded values and geometry.
    pub fn parts(&self) -> ConvParts {
        ConvParts {
            weight: self.weight.clone(),
            weight_shape: self.spec.weight_shape(),
            bias: self.has_bias.then(|| self.bias.clone()),
            options: self.spec.options(),
        }
    }

    /// The convolution for the CPU kernels.
    pub fn kernel(&self) -> reidscope_kernels::Conv<'_> {
        reidscope_kernels::Conv {
            weight: &self.weight,
            bias: &self.bias,
            in_channels: self.spec.in_channels,
            kernel: self.spec.kernel,
            stride: self.spec.stride,
            padding: self.spec.padding(),
            groups: self.spec.groups,
            winograd: Some(&self.winograd),
        }
    }

    /// Applies the convolution with Burn, then `act`.
    pub fn forward(&self, x: Tensor<4>, act: Activation) -> Tensor<4> {
        let DeviceConv { weight, bias } = match &self.device {
            Some(on_device) => on_device.clone(),
            None => self.upload(&x.device()),
        };
        let dtype = x.dtype();
        let y = conv2d(x.cast(DType::F32), weight, bias, self.spec.options()).cast(dtype);
        activate(y, act)
    }
}

/// Affine instance normalisation.
#[derive(Debug, Clone)]
pub struct InstanceNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    /// `gamma` and `beta` as `[1, c, 1]` on the target device, if it is not the CPU.
    device: Option<(Tensor<3>, Tensor<3>)>,
}

impl InstanceNorm {
    /// The norm with scale `gamma` and shift `beta`.
    pub fn new(gamma: Vec<f32>, beta: Vec<f32>, target: &FoldTarget) -> Self {
        let mut norm = Self {
            gamma: target.rounded(gamma),
            beta: target.rounded(beta),
            device: None,
        };
        norm.device = target.device().map(|device| norm.upload(device));
        norm
    }

    /// `gamma` and `beta` as `[1, c, 1]` on `device`.
    fn upload(&self, device: &Device) -> (Tensor<3>, Tensor<3>) {
        let shape = [1, self.gamma.len(), 1];
        (
            upload(device, self.gamma.clone(), shape),
            upload(device, self.beta.clone(), shape),
        )
    }

    /// The per-channel scale and shift.
    pub fn affine(&self) -> (&[f32], &[f32]) {
        (&self.gamma, &self.beta)
    }

    /// Normalises each channel of each sample over its spatial positions with Burn, then
    /// applies `act`.
    pub fn forward(&self, x: Tensor<4>, act: Activation) -> Tensor<4> {
        let dtype = x.dtype();
        let [n, c, h, w] = x.dims();
        let (gamma, beta) = match &self.device {
            Some(on_device) => on_device.clone(),
            None => self.upload(&x.device()),
        };
        let x = x.cast(DType::F32).reshape([n, c, h * w]);
        let mean = x.clone().mean_dim(2);
        let centered = x - mean;
        let var = centered.clone().square().mean_dim(2);
        let normed = centered / (var + EPSILON).sqrt();
        let y = (normed * gamma + beta).reshape([n, c, h, w]).cast(dtype);
        activate(y, act)
    }
}

/// A fully connected layer `y = x W + b` (weights stored as `[in, out]`).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    /// `weight` and `bias` on the target device, if it is not the CPU.
    device: Option<(Tensor<2>, Tensor<1>)>,
}

impl Linear {
    /// The layer with PyTorch's `[out, in]` `weight` and `bias`, and an optional eval-mode
    /// BatchNorm1d after it, folded in.
    pub fn new(
        weight: &[f32],
        bias: &[f32],
        bn: Option<&BatchNormValues>,
        target: &FoldTarget,
    ) -> Self {
        let outputs = bias.len();
        let inputs = weight.len() / outputs.max(1);
        let (weight, bias) = match bn {
            Some(bn) => fold_bn(weight, Some(bias), bn, inputs),
            None => (weight.to_vec(), bias.to_vec()),
        };
        let mut transposed = vec![0.0f32; weight.len()];
        for o in 0..outputs {
            for i in 0..inputs {
                transposed[i * outputs + o] = weight[o * inputs + i];
            }
        }
        let mut layer = Self {
            weight: target.rounded(transposed),
            bias: target.rounded(bias),
            device: None,
        };
        layer.device = target.device().map(|device| layer.upload(device));
        layer
    }

    /// The weights' shape `[in, out]`.
    fn weight_shape(&self) -> [usize; 2] {
        [self.weight.len() / self.bias.len().max(1), self.bias.len()]
    }

    /// `weight` and `bias` on `device`.
    fn upload(&self, device: &Device) -> (Tensor<2>, Tensor<1>) {
        (
            upload(device, self.weight.clone(), self.weight_shape()),
            upload(device, self.bias.clone(), [self.bias.len()]),
        )
    }

    /// The layer's folded values, as an exporter writes them.
    pub fn parts(&self) -> LinearParts {
        LinearParts {
            weight: self.weight.clone(),
            weight_shape: self.weight_shape(),
            bias: self.bias.clone(),
        }
    }

    /// The `[in, out]` weights and the bias.
    pub fn values(&self) -> (&[f32], &[f32]) {
        (&self.weight, &self.bias)
    }

    /// Applies the layer to `[n, in]` rows with Burn.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let dtype = x.dtype();
        let (weight, bias) = match &self.device {
            Some(on_device) => on_device.clone(),
            None => self.upload(&x.device()),
        };
        burn::tensor::module::linear(x.cast(DType::F32), weight, Some(bias)).cast(dtype)
    }
}
