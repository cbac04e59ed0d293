//! The operations the networks' forward passes are written in, once: [`Eager`] carries them
//! out on Burn tensors (train mode under autodiff, or eval mode through the folded layers);
//! the ONNX exporter records the same calls as graph nodes.

use burn::tensor::Tensor;

use crate::models::Activation;
use crate::models::layers::{Conv, ConvBn, InstanceNorm, Linear, Mode};
use crate::models::ops;

/// A forward pass's operations on feature maps `[n, c, h, w]` and vectors `[n, c]`.
pub trait Flow {
    /// A feature map.
    type Map: Clone;
    /// One vector per image.
    type Vector;

    /// A convolution with its BatchNorm, then `act`.
    fn conv_bn(&mut self, layer: &ConvBn, x: Self::Map, act: Activation) -> Self::Map;
    /// A convolution with its BatchNorm, plus `residual`, then `act`: the end of a residual
    /// block.
    fn conv_bn_add(
        &mut self,
        layer: &ConvBn,
        x: Self::Map,
        residual: Self::Map,
        act: Activation,
    ) -> Self::Map;
    /// A convolution alone.
    fn conv(&mut self, layer: &Conv, x: Self::Map) -> Self::Map;
    /// Instance normalisation, then `act`.
    fn instance_norm(&mut self, layer: &InstanceNorm, x: Self::Map, act: Activation) -> Self::Map;
    /// A fully connected layer (with its BatchNorm1d, if it has one).
    fn linear(&mut self, layer: &Linear, x: Self::Vector) -> Self::Vector;
    /// A fully connected layer, then ReLU.
    fn linear_relu(&mut self, layer: &Linear, x: Self::Vector) -> Self::Vector;
    /// The elementwise sum.
    fn add(&mut self, a: Self::Map, b: Self::Map) -> Self::Map;
    /// ReLU.
    fn relu(&mut self, x: Self::Map) -> Self::Map;
    /// 3×3 max pooling, stride 2, padding 1 (the ResNet/OSNet stem).
    fn stem_max_pool(&mut self, x: Self::Map) -> Self::Map;
    /// 2×2 average pooling, stride 2.
    fn avg_pool_2x2(&mut self, x: Self::Map) -> Self::Map;
    /// The mean over each channel's positions.
    fn global_avg_pool(&mut self, x: Self::Map) -> Self::Vector;
    /// `x` with each channel scaled by the sigmoid of its `logits` entry.
    fn gate(&mut self, x: Self::Map, logits: Self::Vector) -> Self::Map;
}

/// Runs the operations on Burn tensors in `mode`.
#[derive(Debug, Clone, Copy)]
pub struct Eager {
    /// Train mode (batch statistics) or eval mode (folded layers).
    pub mode: Mode,
}

impl Flow for Eager {
    type Map = Tensor<4>;
    type Vector = Tensor<2>;

    fn conv_bn(&mut self, layer: &ConvBn, x: Tensor<4>, act: Activation) -> Tensor<4> {
        layer.forward(x, self.mode, act)
    }

    fn conv_bn_add(
        &mut self,
        layer: &ConvBn,
        x: Tensor<4>,
        residual: Tensor<4>,
        act: Activation,
    ) -> Tensor<4> {
        let sum = layer.forward(x, self.mode, Activation::Identity) + residual;
        ops::activate(sum, act)
    }

    fn conv(&mut self, layer: &Conv, x: Tensor<4>) -> Tensor<4> {
        layer.forward(x, self.mode)
    }

    fn instance_norm(&mut self, layer: &InstanceNorm, x: Tensor<4>, act: Activation) -> Tensor<4> {
        layer.forward(x, self.mode, act)
    }

    fn linear(&mut self, layer: &Linear, x: Tensor<2>) -> Tensor<2> {
        layer.forward(x, self.mode)
    }

    fn linear_relu(&mut self, layer: &Linear, x: Tensor<2>) -> Tensor<2> {
        ops::relu(layer.forward(x, self.mode))
    }

    fn add(&mut self, a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
        a + b
    }

    fn relu(&mut self, x: Tensor<4>) -> Tensor<4> {
        ops::relu(x)
    }

    fn stem_max_pool(&mut self, x: Tensor<4>) -> Tensor<4> {
        ops::stem_max_pool(x)
    }

    fn avg_pool_2x2(&mut self, x: Tensor<4>) -> Tensor<4> {
        ops::avg_pool_2x2(x)
    }

    fn global_avg_pool(&mut self, x: Tensor<4>) -> Tensor<2> {
        ops::global_avg_pool(x)
    }

    fn gate(&mut self, x: Tensor<4>, logits: Tensor<2>) -> Tensor<4> {
        let [n, c, _, _] = x.dims();
        x * ops::sigmoid(logits).reshape([n, c, 1, 1])
    }
}
