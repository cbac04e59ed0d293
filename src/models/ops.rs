//! Activations and pooling on Burn tensors, shared by both forms of the networks.

use burn::tensor::activation;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{DType, Tensor};

use crate::models::Activation;

/// `act` through Burn's ops.
pub fn activate<const D: usize>(x: Tensor<D>, act: Activation) -> Tensor<D> {
    match act {
        Activation::Identity => x,
        Activation::Relu => relu(x),
        Activation::Relu6 => relu6(x),
    }
}

/// ReLU.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    activation::relu(x)
}

/// ReLU6.
pub fn relu6<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    activation::relu6(x)
}

/// Sigmoid.
pub fn sigmoid(x: Tensor<2>) -> Tensor<2> {
    activation::sigmoid(x)
}

/// 3×3 max pooling, stride 2, padding 1 (the ResNet/OSNet stem).
pub fn stem_max_pool(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(
        x,
        MaxPoolOptions::new([3, 3])
            .with_stride([2, 2])
            .with_padding([1, 1]),
    )
}

/// 2×2 average pooling, stride 2.
pub fn avg_pool_2x2(x: Tensor<4>) -> Tensor<4> {
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
