//! The inference form of the layers: convolutions and linear layers with their eval-mode
//! BatchNorm folded in, and instance norm — routed to the CPU kernels where they fit.
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

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::backend::{Backend, Precision};
use crate::models::batch_norm::{BatchNormValues, EPSILON};
use crate::models::conv_spec::ConvSpec;
use crate::models::cpu_kernels::{Activation, DenseConv, Planes};
use crate::models::ops::activate;

/// Where folded layers live and in what precision their parameters are rounded.
#[derive(Debug, Clone)]
pub struct FoldTarget {
    device: Device,
    round_to_f16: bool,
}

impl FoldTarget {
    /// Folded layers for inference on `backend`.
    pub fn new(backend: &Backend) -> Self {
        Self {
            device: backend.device.clone(),
            round_to_f16: backend.precision == Precision::F16,
        }
    }

    /// A parameter tensor: f32, holding values representable in the model precision.
    fn upload<const D: usize>(&self, mut values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        if self.round_to_f16 {
            values
                .iter_mut()
                .for_each(|v| *v = half::f16::from_f32(*v).to_f32());
        }
        Tensor::from_data(TensorData::new(values, shape), (&self.device, DType::F32))
    }
}

/// A parameter tensor's values on the host, as f32.
fn host_values<const D: usize>(tensor: &Tensor<D>) -> Result<Vec<f32>, String> {
    tensor
        .clone()
        .cast(DType::F32)
        .try_into_data()
        .map_err(|e| format!("{e:?}"))?
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
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
#[derive(Debug, Clone)]
pub struct Conv {
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    /// The same convolution for a CPU kernel, where one fits it.
    cpu_kernel: Option<CpuConv>,
}

/// Convolutions with their own CPU kernel in [`Planes`].
#[derive(Debug, Clone)]
enum CpuConv {
    /// A depthwise 3×3 convolution (stride 1 or 2): nine taps per channel, the bias, the stride.
    Depthwise(Vec<f32>, Vec<f32>, usize),
    /// A dense convolution over few input channels.
    Dense(DenseConv),
}

impl CpuConv {
    /// The kernel for `spec` with `weight` and `bias`, if one fits it.
    fn for_spec(spec: &ConvSpec, weight: &[f32], bias: Option<&[f32]>) -> Option<Self> {
        let bias = bias.map_or_else(|| vec![0.0; spec.out_channels], <[f32]>::to_vec);
        if spec.is_depthwise_3x3() {
            Some(Self::Depthwise(weight.to_vec(), bias, spec.stride))
        } else if spec.groups == 1
            && spec.kernel > 1
            && spec.in_channels * spec.kernel * spec.kernel <= DENSE_HOST_DEPTH
        {
            Some(Self::Dense(DenseConv {
                weight: weight.to_vec(),
                bias,
                kernel: spec.kernel,
                stride: spec.stride,
                padding: spec.padding(),
            }))
        } else {
            None
        }
    }
}

/// Largest `in_channels · kernel²` convolved by the CPU im2col kernel (stems: 3 · 7² = 147).
const DENSE_HOST_DEPTH: usize = 256;

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
        Self {
            cpu_kernel: CpuConv::for_spec(spec, &weight, bias.as_deref()),
            weight: target.upload(weight, spec.weight_shape()),
            bias: bias.map(|b| target.upload(b, [spec.out_channels])),
            options: spec.options(),
        }
    }

    /// The convolution's folded values and geometry.
    pub fn parts(&self) -> Result<ConvParts, String> {
        Ok(ConvParts {
            weight: host_values(&self.weight)?,
            weight_shape: self.weight.dims(),
            bias: self.bias.as_ref().map(host_values).transpose()?,
            options: self.options.clone(),
        })
    }

    /// Applies the convolution, then `act`.
    pub fn forward(&self, x: Tensor<4>, act: Activation) -> Tensor<4> {
        if let Some(kernel) = &self.cpu_kernel
            && Planes::apply_to(&x)
        {
            let planes = Planes::take(x);
            return match kernel {
                CpuConv::Depthwise(taps, bias, stride) => {
                    planes.depthwise_3x3(taps, bias, *stride, act)
                }
                CpuConv::Dense(conv) => planes.dense_conv(conv, act),
            };
        }
        let dtype = x.dtype();
        let y = conv2d(
            x.cast(DType::F32),
            self.weight.clone(),
            self.bias.clone(),
            self.options.clone(),
        )
        .cast(dtype);
        activate(y, act)
    }
}

/// Affine instance normalisation.
#[derive(Debug, Clone)]
pub struct InstanceNorm {
    gamma: Tensor<3>,
    beta: Tensor<3>,
    /// `gamma` and `beta` for the CPU kernel.
    cpu_affine: (Vec<f32>, Vec<f32>),
}

impl InstanceNorm {
    /// The norm with scale `gamma` and shift `beta`.
    pub fn new(gamma: Vec<f32>, beta: Vec<f32>, target: &FoldTarget) -> Self {
        let channels = gamma.len();
        Self {
            gamma: target.upload(gamma.clone(), [1, channels, 1]),
            beta: target.upload(beta.clone(), [1, channels, 1]),
            cpu_affine: (gamma, beta),
        }
    }

    /// The per-channel scale and shift.
    pub fn affine(&self) -> (&[f32], &[f32]) {
        (&self.cpu_affine.0, &self.cpu_affine.1)
    }

    /// Normalises each channel of each sample over its spatial positions, then applies `act`.
    pub fn forward(&self, x: Tensor<4>, act: Activation) -> Tensor<4> {
        if Planes::apply_to(&x) {
            let (gamma, beta) = &self.cpu_affine;
            return Planes::take(x).instance_norm(gamma, beta, EPSILON, act);
        }
        let dtype = x.dtype();
        let [n, c, h, w] = x.dims();
        let x = x.cast(DType::F32).reshape([n, c, h * w]);
        let mean = x.clone().mean_dim(2);
        let centered = x - mean;
        let var = centered.clone().square().mean_dim(2);
        let normed = centered / (var + EPSILON).sqrt();
        let y = (normed * self.gamma.clone() + self.beta.clone())
            .reshape([n, c, h, w])
            .cast(dtype);
        activate(y, act)
    }
}

/// A fully connected layer `y = x W + b` (weights stored as `[in, out]`).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor<2>,
    bias: Tensor<1>,
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
        Self {
            weight: target.upload(transposed, [inputs, outputs]),
            bias: target.upload(bias, [outputs]),
        }
    }

    /// The layer's folded values, as an exporter writes them.
    pub fn parts(&self) -> Result<LinearParts, String> {
        Ok(LinearParts {
            weight: host_values(&self.weight)?,
            weight_shape: self.weight.dims(),
            bias: host_values(&self.bias)?,
        })
    }

    /// Applies the layer to `[n, in]` rows.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let dtype = x.dtype();
        burn::tensor::module::linear(
            x.cast(DType::F32),
            self.weight.clone(),
            Some(self.bias.clone()),
        )
        .cast(dtype)
    }
}
