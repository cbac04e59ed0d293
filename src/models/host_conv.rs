//! Convolutions on Burn's CPU backend (flex) computed by the `kernels` crate, forward and
//! backward, under autodiff or not: training on the CPU spends most of its time in them, and
//! flex's own convolutions lower depthwise ones to a product per channel. Geometries the
//! kernels do not cover, and every other backend, run Burn's convolution.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Tensor};
use reidscope_kernels::{self as kernels, Threads};

use crate::models::flex_values::{contiguous, tensor, values};

/// `conv2d(x, weight) + bias`, as Burn's `conv2d`; on flex through the kernels where they
/// cover the geometry.
pub(crate) fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    if x.device().inner() != Device::flex() {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    let y = Tensor::from_dispatch(<Dispatch as HostConv>::host_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        options,
    ));
    match bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.reshape([1, channels, 1, 1])
        }
        None => y,
    }
}

/// A bias-free convolution as a backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait HostConv: Backend {
    /// `conv2d(x, weight)` without a bias.
    fn host_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

impl HostConv for Flex {
    fn host_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        forward(x, weight, options)
    }
}

impl<C: CheckpointStrategy> HostConv for Autodiff<Flex, C> {
    fn host_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match HostConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let state = (x_state, weight_state, options.clone());
                prep.finish(
                    state,
                    forward(x.into_primitive(), weight.into_primitive(), options),
                )
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(
                x.into_primitive(),
                weight.into_primitive(),
                options,
            )),
        }
    }
}

/// The backward step of [`HostConv::host_conv2d`] under autodiff.
#[derive(Debug)]
struct HostConvBackward;

impl Backward<Flex, 2> for HostConvBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        if let Some(node) = node_x {
            let (x, weight, grad) = (x.clone(), weight.clone(), grad.clone());
            let dx = gradient(Gradient::Input, x, weight, grad, options.clone());
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = gradient(Gradient::Weight, x, weight, grad, options);
            grads.register::<Flex>(node.id, dw);
        }
    }
}

/// The convolution, by the kernels where they cover its geometry.
fn forward(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
    let Some(geometry) = Geometry::of(&x, &weight, &options) else {
        return Flex::conv2d(x, weight, None, options);
    };
    let (x, weight) = (contiguous(x), contiguous(weight));
    let zero = vec![0.0; geometry.out_channels];
    let conv = geometry.conv(values(&weight), &zero);
    let out_shape = conv.output_shape(geometry.shape);
    let mut out = vec![0.0; out_shape.iter().product()];
    let act = kernels::Activation::Identity;
    conv.run(values(&x), geometry.shape, &mut out, act, Threads::Pool);
    tensor(out, out_shape)
}

/// Which gradient of the convolution.
#[derive(Debug, Clone, Copy)]
enum Gradient {
    Input,
    Weight,
}

/// One of the convolution's gradients from its output's gradient.
fn gradient(
    which: Gradient,
    x: FlexTensor,
    weight: FlexTensor,
    grad: FlexTensor,
    options: ConvOptions<2>,
) -> FlexTensor {
    let zero = vec![0.0; weight.layout().shape()[0]];
    let covered = |geometry: &Geometry| {
        let conv = geometry.conv(&[], &zero);
        match which {
            Gradient::Input => conv.has_input_grad(),
            Gradient::Weight => conv.has_weight_grad(),
        }
    };
    let Some(geometry) = Geometry::of(&x, &weight, &options).filter(covered) else {
        return match which {
            Gradient::Input => Flex::conv2d_x_backward(x, weight, grad, options),
            Gradient::Weight => Flex::conv2d_weight_backward(x, weight, grad, options),
        };
    };
    let (x, weight, grad) = (contiguous(x), contiguous(weight), contiguous(grad));
    let conv = geometry.conv(values(&weight), &zero);
    match which {
        Gradient::Input => {
            let mut dx = vec![0.0; geometry.shape.iter().product()];
            conv.input_grad(values(&grad), geometry.shape, &mut dx, Threads::Pool);
            tensor(dx, geometry.shape)
        }
        Gradient::Weight => {
            let mut dw = vec![0.0; conv.weight.len()];
            let input = (values(&x), geometry.shape);
            conv.weight_grad(input, values(&grad), &mut dw, Threads::Pool);
            let weight_shape: [usize; 4] = weight.layout().shape().dims();
            tensor(dw, weight_shape)
        }
    }
}

/// A convolution's geometry in the terms of the kernels, when they cover it: f32, a square
/// kernel, the same stride and padding along both sides, no dilation.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    shape: kernels::Shape,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
}

impl Geometry {
    fn of(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<Self> {
        let f32s = x.dtype() == DType::F32 && weight.dtype() == DType::F32;
        let [out_channels, _, kh, kw] = weight.layout().shape().dims();
        let shape: [usize; 4] = x.layout().shape().dims();
        let [sy, sx] = options.stride;
        let [(pad, bottom), (left, right)] = options.padding;
        let even = [bottom, left, right].iter().all(|&p| p == pad);
        let plain = f32s && kh == kw && sy == sx && even && options.dilation == [1, 1];
        let fits = shape[2].min(shape[3]) + 2 * pad >= kh;
        (plain && fits).then_some(Self {
            shape,
            out_channels,
            kernel: kh,
            stride: sy,
            padding: pad,
            groups: options.groups,
        })
    }

    /// The kernels' convolution with these weights and biases.
    fn conv<'a>(&self, weight: &'a [f32], bias: &'a [f32]) -> kernels::Conv<'a> {
        kernels::Conv {
            weight,
            bias,
            in_channels: self.shape[1],
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            groups: self.groups,
            winograd: None,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The kernels' gradients, and the convolution under autodiff, against Burn's own on flex
    //! at odd sizes.

    use burn::tensor::TensorData;

    use super::*;
    use crate::models::test_values::{CONV_CASES, assert_close, random, values};

    type ConvFn = fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>;

    /// Output, input gradient, weight gradient and bias gradient of `conv` for the output
    /// gradient `grad`.
    fn run(
        conv: ConvFn,
        [x, weight, bias, grad]: [&TensorData; 4],
        options: &ConvOptions<2>,
    ) -> [Vec<f32>; 4] {
        let device = Device::flex().autodiff();
        let leaf = |data: &TensorData| Tensor::<4>::from_data(data.clone(), &device).require_grad();
        let (x, weight) = (leaf(x), leaf(weight));
        let bias = Tensor::<1>::from_data(bias.clone(), &device).require_grad();
        let y = conv(
            x.clone(),
            weight.clone(),
            Some(bias.clone()),
            options.clone(),
        );
        let grads = (y.clone() * Tensor::from_data(grad.clone(), &device))
            .sum()
            .backward();
        [
            values(y.inner()),
            values(x.grad(&grads).expect("input gradient")),
            values(weight.grad(&grads).expect("weight gradient")),
            values(bias.grad(&grads).expect("bias gradient")),
        ]
    }

    #[test]
    fn gradients_equal_burns() {
        let mut covered = [0; 2];
        for (seed, (shape, out, k, stride, padding, groups)) in CONV_CASES.into_iter().enumerate() {
            let seed = seed as u64 * 10;
            let weight_shape = [out, shape[1] / groups, k, k];
            let x = random(shape.iter().product(), seed);
            let weight = random(weight_shape.iter().product(), seed + 1);
            let bias = random(out, seed + 2);
            let zero = vec![0.0; out];
            let conv = kernels::Conv {
                weight: &weight,
                bias: &zero,
                in_channels: shape[1],
                kernel: k,
                stride,
                padding,
                groups,
                winograd: None,
            };
            let out_shape = conv.output_shape(shape);
            let grad = random(out_shape.iter().product(), seed + 3);
            let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], groups);
            let data = [
                &TensorData::new(x.clone(), shape),
                &TensorData::new(weight.clone(), weight_shape),
                &TensorData::new(bias, [out]),
                &TensorData::new(grad.clone(), out_shape),
            ];
            let what = format!("{shape:?} k{k} s{stride} g{groups}");
            let expected = run(burn::tensor::module::conv2d, data, &options);
            let got = run(conv2d, data, &options);
            let names = [
                "output",
                "input gradient",
                "weight gradient",
                "bias gradient",
            ];
            for ((name, got), expected) in names.iter().zip(&got).zip(&expected) {
                assert_close(
                    got,
                    expected,
                    1e-4,
                    &format!("{what}, through autodiff: {name}"),
                );
            }
            for threads in [Threads::One, Threads::Pool] {
                if conv.has_input_grad() {
                    covered[0] += 1;
                    let mut dx = vec![f32::NAN; x.len()];
                    conv.input_grad(&grad, shape, &mut dx, threads);
                    assert_close(&dx, &expected[1], 1e-4, &format!("{what} {threads:?}: dx"));
                }
                if conv.has_weight_grad() {
                    covered[1] += 1;
                    let mut dw = vec![f32::NAN; weight.len()];
                    conv.weight_grad((&x, shape), &grad, &mut dw, threads);
                    assert_close(&dw, &expected[2], 1e-4, &format!("{what} {threads:?}: dw"));
                }
            }
        }
        // 1×1 and stride-1 depthwise cases compute input gradients, every one-group and
        // depthwise 3×3 case weight gradients, each on one thread and on the pool.
        assert_eq!(covered, [2 * 7, 2 * 21]);
    }
}
