//! Building blocks shared by the networks: convolutions with BatchNorm folded in, instance
//! norm, fully connected layers, pooling — and the [`Loader`] that fills them from a
//! [`WeightSource`].
//!
//! Eval-mode BatchNorm is an affine map per channel, so it is folded into the preceding
//! convolution or linear layer at load time (in f64 on the host), which is exact up to rounding.
//!
//! Precision: activations flow between layers in the model precision. Parameters are kept in
//! f32 holding values rounded to that precision, and convolutions, linear layers, norms and
//! pooling accumulate in f32 — as fp16 inference does on tensor-core hardware and in PyTorch.
//! (Burn's direct convolution kernel accumulates in the element type; in f16 that drops the
//! cosine similarity of OSNet features to fp32 to about 0.993.)

use burn::tensor::activation;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::backend::{Backend, Precision};
use crate::models::cpu_kernels::{Activation, DenseConv, Planes};
use crate::models::error::ModelError;
use crate::models::weights::WeightSource;

/// PyTorch's default epsilon for BatchNorm and InstanceNorm.
const NORM_EPS: f64 = 1e-5;

/// Geometry of a 2-D convolution; padding is `kernel / 2` ("same" for odd kernels).
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
}

impl ConvSpec {
    /// A stride-1, ungrouped convolution.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            groups: 1,
        }
    }

    /// The same convolution with `stride`.
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// A depthwise convolution (one group per channel).
    pub fn depthwise(mut self) -> Self {
        self.groups = self.in_channels;
        self
    }

    /// Zero padding on every side: "same" for odd kernels.
    fn padding(&self) -> usize {
        self.kernel / 2
    }

    fn is_depthwise_3x3(&self) -> bool {
        self.groups > 1
            && self.groups == self.in_channels
            && self.kernel == 3
            && (1..=2).contains(&self.stride)
    }

    fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels / self.groups,
            self.kernel,
            self.kernel,
        ]
    }
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
    /// Applies the convolution.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_then(x, Activation::Identity)
    }

    /// Applies the convolution, then ReLU.
    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_then(x, Activation::Relu)
    }

    /// Applies the convolution, then ReLU6.
    pub fn forward_relu6(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_then(x, Activation::Relu6)
    }

    fn forward_then(&self, x: Tensor<4>, act: Activation) -> Tensor<4> {
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
    /// Normalises each channel of each sample over its spatial positions.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_then(x, Activation::Identity)
    }

    /// Normalises, then applies ReLU.
    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_then(x, Activation::Relu)
    }

    fn forward_then(&self, x: Tensor<4>, act: Activation) -> Tensor<4> {
        if Planes::apply_to(&x) {
            let (gamma, beta) = &self.cpu_affine;
            return Planes::take(x).instance_norm(gamma, beta, NORM_EPS, act);
        }
        let dtype = x.dtype();
        let [n, c, h, w] = x.dims();
        let x = x.cast(DType::F32).reshape([n, c, h * w]);
        let mean = x.clone().mean_dim(2);
        let centered = x - mean;
        let var = centered.clone().square().mean_dim(2);
        let normed = centered / (var + NORM_EPS).sqrt();
        let y = (normed * self.gamma.clone() + self.beta.clone())
            .reshape([n, c, h, w])
            .cast(dtype);
        activate(y, act)
    }
}

/// `act` through Burn's ops.
fn activate(x: Tensor<4>, act: Activation) -> Tensor<4> {
    match act {
        Activation::Identity => x,
        Activation::Relu => relu(x),
        Activation::Relu6 => relu6(x),
    }
}

/// A fully connected layer `y = x W + b` (weights stored as `[in, out]`).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor<2>,
    bias: Tensor<1>,
}

impl Linear {
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

/// ReLU.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    activation::relu(x)
}

/// ReLU6.
pub fn relu6(x: Tensor<4>) -> Tensor<4> {
    activation::relu6(x)
}

/// Sigmoid.
pub fn sigmoid(x: Tensor<2>) -> Tensor<2> {
    activation::sigmoid(x)
}

/// 3×3 max pooling, stride 2, padding 1 (the ResNet/OSNet stem).
pub fn stem_max_pool(x: Tensor<4>) -> Tensor<4> {
    if Planes::apply_to(&x) {
        return Planes::take(x).max_pool_3x3_s2();
    }
    max_pool2d(
        x,
        MaxPoolOptions::new([3, 3])
            .with_stride([2, 2])
            .with_padding([1, 1]),
    )
}

/// 2×2 average pooling, stride 2.
pub fn avg_pool_2x2(x: Tensor<4>) -> Tensor<4> {
    if Planes::apply_to(&x) {
        return Planes::take(x).avg_pool_2x2();
    }
    avg_pool2d(x, AvgPoolOptions::new([2, 2]).with_stride([2, 2]))
}

/// Global average pooling `[n, c, h, w] → [n, c]`, accumulated in f32.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let dtype = x.dtype();
    let [n, c, _, _] = x.dims();
    x.cast(DType::F32)
        .mean_dims(&[2, 3])
        .reshape([n, c])
        .cast(dtype)
}

/// Builds layers from a [`WeightSource`] onto a device, in the model precision.
pub struct Loader<'a> {
    source: &'a mut dyn WeightSource,
    device: Device,
    round_to_f16: bool,
}

impl<'a> Loader<'a> {
    /// A loader reading `source` for `backend`.
    pub fn new(source: &'a mut dyn WeightSource, backend: &Backend) -> Self {
        Self {
            source,
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

    /// Eval-mode BatchNorm `{key}.{weight,bias,running_mean,running_var}` as (scale, shift).
    fn batch_norm(
        &mut self,
        key: &str,
        channels: usize,
    ) -> Result<(Vec<f64>, Vec<f64>), ModelError> {
        let shape = [channels];
        let gamma = self.source.take(&format!("{key}.weight"), &shape)?;
        let beta = self.source.take(&format!("{key}.bias"), &shape)?;
        let mean = self.source.take(&format!("{key}.running_mean"), &shape)?;
        let var = self.source.take(&format!("{key}.running_var"), &shape)?;
        let scale: Vec<f64> = gamma
            .iter()
            .zip(&var)
            .map(|(&g, &v)| g as f64 / (v as f64 + NORM_EPS).sqrt())
            .collect();
        let shift = beta
            .iter()
            .zip(&mean)
            .zip(&scale)
            .map(|((&b, &m), &s)| b as f64 - m as f64 * s)
            .collect();
        Ok((scale, shift))
    }

    fn conv_options(spec: &ConvSpec) -> ConvOptions<2> {
        let pad = spec.padding();
        ConvOptions::new([spec.stride; 2], [pad; 2], [1, 1], spec.groups)
    }

    /// A convolution `{key}.weight` (and `{key}.bias` when `bias`).
    pub fn conv(&mut self, key: &str, spec: ConvSpec, bias: bool) -> Result<Conv, ModelError> {
        let shape = spec.weight_shape();
        let weight = self.source.take(&format!("{key}.weight"), &shape)?;
        let bias = if bias {
            Some(
                self.source
                    .take(&format!("{key}.bias"), &[spec.out_channels])?,
            )
        } else {
            None
        };
        Ok(self.conv_from(&spec, weight, bias))
    }

    /// A convolution with these values; the CPU kernel's copy where one fits `spec`.
    fn conv_from(&self, spec: &ConvSpec, weight: Vec<f32>, bias: Option<Vec<f32>>) -> Conv {
        Conv {
            cpu_kernel: CpuConv::for_spec(spec, &weight, bias.as_deref()),
            weight: self.upload(weight, spec.weight_shape()),
            bias: bias.map(|b| self.upload(b, [spec.out_channels])),
            options: Self::conv_options(spec),
        }
    }

    /// A bias-free convolution `{conv_key}.weight` followed by BatchNorm `{bn_key}.*`, folded.
    pub fn conv_bn(
        &mut self,
        conv_key: &str,
        bn_key: &str,
        spec: ConvSpec,
    ) -> Result<Conv, ModelError> {
        let shape = spec.weight_shape();
        let weight = self.source.take(&format!("{conv_key}.weight"), &shape)?;
        let (scale, shift) = self.batch_norm(bn_key, spec.out_channels)?;
        let per_out = weight.len() / spec.out_channels;
        let folded: Vec<f32> = weight
            .iter()
            .enumerate()
            .map(|(i, &w)| (w as f64 * scale[i / per_out]) as f32)
            .collect();
        let bias = shift.iter().map(|&b| b as f32).collect();
        Ok(self.conv_from(&spec, folded, Some(bias)))
    }

    /// Affine InstanceNorm `{key}.weight`, `{key}.bias`.
    pub fn instance_norm(
        &mut self,
        key: &str,
        channels: usize,
    ) -> Result<InstanceNorm, ModelError> {
        let gamma = self.source.take(&format!("{key}.weight"), &[channels])?;
        let beta = self.source.take(&format!("{key}.bias"), &[channels])?;
        Ok(InstanceNorm {
            cpu_affine: (gamma.clone(), beta.clone()),
            gamma: self.upload(gamma, [1, channels, 1]),
            beta: self.upload(beta, [1, channels, 1]),
        })
    }

    /// A 1×1 convolution with bias `{key}.*` used as a fully connected layer on pooled vectors.
    pub fn pointwise_as_linear(
        &mut self,
        key: &str,
        inputs: usize,
        outputs: usize,
    ) -> Result<Linear, ModelError> {
        let weight = self
            .source
            .take(&format!("{key}.weight"), &[outputs, inputs, 1, 1])?;
        let bias = self.source.take(&format!("{key}.bias"), &[outputs])?;
        Ok(self.linear_from(weight, bias, inputs, outputs))
    }

    /// Linear `{linear_key}.*` followed by BatchNorm1d `{bn_key}.*`, folded.
    pub fn linear_bn(
        &mut self,
        linear_key: &str,
        bn_key: &str,
        inputs: usize,
        outputs: usize,
    ) -> Result<Linear, ModelError> {
        let weight = self
            .source
            .take(&format!("{linear_key}.weight"), &[outputs, inputs])?;
        let bias = self
            .source
            .take(&format!("{linear_key}.bias"), &[outputs])?;
        let (scale, shift) = self.batch_norm(bn_key, outputs)?;
        let weight = weight
            .iter()
            .enumerate()
            .map(|(i, &w)| (w as f64 * scale[i / inputs]) as f32)
            .collect();
        let bias = bias
            .iter()
            .zip(scale.iter().zip(&shift))
            .map(|(&b, (&s, &t))| (b as f64 * s + t) as f32)
            .collect();
        Ok(self.linear_from(weight, bias, inputs, outputs))
    }

    /// A linear layer from PyTorch's `[out, in]` weight, transposed to Burn's `[in, out]`.
    fn linear_from(
        &self,
        weight: Vec<f32>,
        bias: Vec<f32>,
        inputs: usize,
        outputs: usize,
    ) -> Linear {
        let mut transposed = vec![0.0f32; weight.len()];
        for o in 0..outputs {
            for i in 0..inputs {
                transposed[i * outputs + o] = weight[o * inputs + i];
            }
        }
        Linear {
            weight: self.upload(transposed, [inputs, outputs]),
            bias: self.upload(bias, [outputs]),
        }
    }
}
