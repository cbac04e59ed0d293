//! Train-mode BatchNorm and the activation after it on Burn's CPU backend (flex), forward and
//! backward, computed by the `kernels` crate in one operation: flex composes Burn's own
//! BatchNorm of a dozen single-threaded passes, the backward's as many again. Other backends
//! and precisions run Burn's BatchNorm and activation.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Device, Tensor};
use reidscope_kernels::{self as kernels, Threads};

use crate::models::Activation;
use crate::models::flex_values::{contiguous, tensor, values};
use crate::models::ops::activate;

/// `act(batch_norm(x))` normalised with the batch statistics of each channel (dimension 1),
/// with the batch mean and biased batch variance, as Burn's `batch_norm_train` and then `act`.
pub(crate) fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    act: Activation,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    if x.device().inner() != Device::flex() || x.dtype() != DType::F32 {
        let result = burn::tensor::module::batch_norm_train(x, gamma, beta, epsilon);
        return (activate(result.output, act), result.mean, result.variance);
    }
    let (y, mean, var) = <Dispatch as HostBatchNorm>::host_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        Normalise { epsilon, act },
    );
    (
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

/// How a BatchNorm normalises: the epsilon added to the variance, and the activation after it.
#[derive(Debug, Clone, Copy)]
pub struct Normalise {
    epsilon: f64,
    act: Activation,
}

/// Train-mode BatchNorm and an activation as a backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait HostBatchNorm: Backend {
    /// `act(batch_norm(x))` with the batch statistics, the batch mean and the biased batch
    /// variance.
    fn host_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        how: Normalise,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl HostBatchNorm for Flex {
    fn host_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        how: Normalise,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        forward(x, [gamma, beta], how)
    }
}

impl<C: CheckpointStrategy> HostBatchNorm for Autodiff<Flex, C> {
    fn host_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        how: Normalise,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let prep = BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (y, mean, var) = match prep {
            OpsKind::Tracked(mut prep) => {
                let states = [&x, &gamma, &beta].map(|t| prep.checkpoint(t));
                let parameters = [gamma.into_primitive(), beta.into_primitive()];
                let (y, mean, var) = forward(x.into_primitive(), parameters, how);
                let state = (states, [mean.clone(), var.clone()], how);
                (prep.finish(state, y), mean, var)
            }
            OpsKind::UnTracked(prep) => {
                let parameters = [gamma.into_primitive(), beta.into_primitive()];
                let (y, mean, var) = forward(x.into_primitive(), parameters, how);
                (prep.finish(y), mean, var)
            }
        };
        let untracked = FloatTensor::<Self>::new;
        (y, untracked(mean), untracked(var))
    }
}

/// The backward step of [`HostBatchNorm::host_batch_norm_train`] under autodiff.
#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    /// The input, scale and shift; the batch mean and variance; how they were applied.
    type State = ([NodeId; 3], [FlexTensor; 2], Normalise);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (states, [mean, var], how) = ops.state;
        let [x, gamma, beta] =
            states.map(|id| contiguous(checkpointer.retrieve_node_output::<FlexTensor>(id)));
        let stats = (values(&mean), values(&var));
        let parameters = [&gamma, &beta];
        let gradients = with_outputs(
            &x,
            parameters,
            how.epsilon,
            |input, affine, dx, [dg, db]| {
                let (grad, outputs) = (values(&grad), (dx, dg, db));
                let act = how.act;
                kernels::batch_norm_train_backward(
                    input,
                    affine,
                    act,
                    stats,
                    grad,
                    outputs,
                    Threads::Pool,
                )
            },
        );
        for (node, gradient) in ops.parents.into_iter().zip(gradients) {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, gradient);
            }
        }
    }
}

/// The normalised and activated input, the batch mean and the biased batch variance.
fn forward(
    x: FlexTensor,
    [gamma, beta]: [FlexTensor; 2],
    how: Normalise,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
    let [out, mean, var] = with_outputs(
        &x,
        [&gamma, &beta],
        how.epsilon,
        |input, affine, out, stats| {
            let [mean, var] = stats;
            kernels::batch_norm_train(input, affine, how.act, out, (mean, var), Threads::Pool)
        },
    );
    (out, mean, var)
}

/// Runs `kernel` on the kernels' view of `x` (`[n, c, …]` as `[n, c, positions, 1]`) and of
/// the affine parameters, with zeroed outputs of `x`'s size and of one value per channel (two),
/// and returns those outputs as tensors.
fn with_outputs(
    x: &FlexTensor,
    [gamma, beta]: [&FlexTensor; 2],
    eps: f64,
    kernel: impl FnOnce((&[f32], kernels::Shape), kernels::Affine, &mut [f32], [&mut [f32]; 2]),
) -> [FlexTensor; 3] {
    let dims = x.layout().shape().to_vec();
    let channels = dims[1];
    let shape = [dims[0], channels, dims[2..].iter().product(), 1];
    let affine = kernels::Affine {
        gamma: values(gamma),
        beta: values(beta),
        eps,
    };
    let mut map = vec![0.0; dims.iter().product()];
    let [mut first, mut second] = [vec![0.0; channels], vec![0.0; channels]];
    kernel(
        (values(x), shape),
        affine,
        &mut map,
        [&mut first, &mut second],
    );
    [
        tensor(map, dims),
        tensor(first, [channels]),
        tensor(second, [channels]),
    ]
}

#[cfg(test)]
mod tests {
    //! The operation against Burn's `batch_norm_train` and activation on flex, under autodiff,
    //! at odd sizes.

    use burn::tensor::TensorData;

    use super::*;
    use crate::models::test_values::{assert_close, random, values};

    /// Output, mean, variance and the input, scale and shift gradients of `norm` for the
    /// output gradient `grad`.
    fn run<const D: usize>(
        norm: fn(Tensor<D>, Tensor<1>, Tensor<1>) -> (Tensor<D>, Tensor<1>, Tensor<1>),
        [x, gamma, beta, grad]: [&TensorData; 4],
    ) -> [Vec<f32>; 6] {
        let device = Device::flex().autodiff();
        let x = Tensor::<D>::from_data(x.clone(), &device).require_grad();
        let parameter = |data: &TensorData| Tensor::from_data(data.clone(), &device).require_grad();
        let (gamma, beta) = (parameter(gamma), parameter(beta));
        let (y, mean, var) = norm(x.clone(), gamma.clone(), beta.clone());
        let grads = (y.clone() * Tensor::from_data(grad.clone(), &device))
            .sum()
            .backward();
        [
            values(y.inner()),
            values(mean.inner()),
            values(var.inner()),
            values(x.grad(&grads).expect("input gradient")),
            values(gamma.grad(&grads).expect("scale gradient")),
            values(beta.grad(&grads).expect("shift gradient")),
        ]
    }

    fn check<const D: usize>(shape: [usize; D], seed: u64) {
        let len = shape.iter().product();
        let x: Vec<f32> = random(len, seed).iter().map(|v| 2.0 * v + 1.0).collect();
        let data = [
            &TensorData::new(x, shape),
            &TensorData::new(random(shape[1], seed + 1), [shape[1]]),
            &TensorData::new(random(shape[1], seed + 2), [shape[1]]),
            &TensorData::new(random(len, seed + 3), shape),
        ];
        let names = ["output", "mean", "variance", "dx", "dgamma", "dbeta"];
        macro_rules! with_act {
            ($act:expr) => {{
                let burns: fn(Tensor<D>, Tensor<1>, Tensor<1>) -> _ = |x, gamma, beta| {
                    let r = burn::tensor::module::batch_norm_train(x, gamma, beta, 1e-5);
                    (activate(r.output, $act), r.mean, r.variance)
                };
                let ours: fn(Tensor<D>, Tensor<1>, Tensor<1>) -> _ =
                    |x, gamma, beta| batch_norm_train(x, gamma, beta, 1e-5, $act);
                let (expected, got) = (run(burns, data), run(ours, data));
                for ((name, got), expected) in names.iter().zip(&got).zip(&expected) {
                    let what = format!("{shape:?} {:?}: {name}", $act);
                    assert_close(got, expected, 1e-4, &what);
                }
            }};
        }
        with_act!(Activation::Identity);
        with_act!(Activation::Relu);
        with_act!(Activation::Relu6);
    }

    #[test]
    fn batch_norm_and_activation_equal_burns() {
        check([3, 5, 7, 9], 0); // odd sides
        check([2, 3, 130, 41], 10); // planes longer than a vector block, with a remainder
        check([1, 4, 1, 1], 20); // one value per channel
        check([6, 10], 30); // BatchNorm1d
    }
}
