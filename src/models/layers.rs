//! The layers the networks are made of, as Burn modules: trainable parameters, PyTorch's
//! train-mode BatchNorm and InstanceNorm, and — for models loaded for inference — the folded
//! form of each layer ([`crate::models::folded`]) built from the same values.

use burn::module::{Module, Param};
use burn::nn::InstanceNorm as BurnInstanceNorm;
use burn::tensor::module::{conv2d, linear};
use burn::tensor::{Tensor, activation};

use crate::models::batch_norm::BatchNorm;
use crate::models::conv_spec::ConvSpec;
use crate::models::cpu_kernels::Activation;
use crate::models::folded;
use crate::models::ops::activate;

/// How a forward pass treats normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Torchreid's train mode: BatchNorm normalises with the batch statistics and updates its
    /// running ones.
    Train,
    /// Eval mode: BatchNorm uses its running statistics; a layer with a folded form runs that.
    Eval,
}

/// A bias-free convolution followed by BatchNorm.
#[derive(Module, Debug)]
pub struct ConvBn {
    weight: Param<Tensor<4>>,
    bn: BatchNorm,
    #[module(skip)]
    spec: ConvSpec,
    #[module(skip)]
    folded: Option<folded::Conv>,
}

impl ConvBn {
    /// The layer from its parts.
    pub fn new(
        weight: Param<Tensor<4>>,
        bn: BatchNorm,
        spec: ConvSpec,
        folded: Option<folded::Conv>,
    ) -> Self {
        Self {
            weight,
            bn,
            spec,
            folded,
        }
    }

    /// Convolution, BatchNorm, then `act`.
    pub fn forward(&self, x: Tensor<4>, mode: Mode, act: Activation) -> Tensor<4> {
        if let (Mode::Eval, Some(folded)) = (mode, &self.folded) {
            return folded.forward(x, act);
        }
        let y = conv2d(x, self.weight.val(), None, self.spec.options());
        activate(
            match mode {
                Mode::Train => self.bn.forward_train(y),
                Mode::Eval => self.bn.forward_eval(y),
            },
            act,
        )
    }
}

/// A convolution without BatchNorm, with an optional bias.
#[derive(Module, Debug)]
pub struct Conv {
    weight: Param<Tensor<4>>,
    bias: Option<Param<Tensor<1>>>,
    #[module(skip)]
    spec: ConvSpec,
    #[module(skip)]
    folded: Option<folded::Conv>,
}

impl Conv {
    /// The layer from its parts.
    pub fn new(
        weight: Param<Tensor<4>>,
        bias: Option<Param<Tensor<1>>>,
        spec: ConvSpec,
        folded: Option<folded::Conv>,
    ) -> Self {
        Self {
            weight,
            bias,
            spec,
            folded,
        }
    }

    /// Applies the convolution.
    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        if let (Mode::Eval, Some(folded)) = (mode, &self.folded) {
            return folded.forward(x, Activation::Identity);
        }
        conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(Param::val),
            self.spec.options(),
        )
    }
}

/// Affine instance normalisation (the same in both modes: per sample, no running statistics).
#[derive(Module, Debug)]
pub struct InstanceNorm {
    norm: BurnInstanceNorm,
    #[module(skip)]
    folded: Option<folded::InstanceNorm>,
}

impl InstanceNorm {
    /// The layer from its parts.
    pub fn new(norm: BurnInstanceNorm, folded: Option<folded::InstanceNorm>) -> Self {
        Self { norm, folded }
    }

    /// Normalises, then applies `act`.
    pub fn forward(&self, x: Tensor<4>, mode: Mode, act: Activation) -> Tensor<4> {
        if let (Mode::Eval, Some(folded)) = (mode, &self.folded) {
            return folded.forward(x, act);
        }
        activate(self.norm.forward(x), act)
    }
}

/// A fully connected layer (PyTorch's `[out, in]` weight and a bias), optionally followed by
/// BatchNorm1d.
#[derive(Module, Debug)]
pub struct Linear {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
    bn: Option<BatchNorm>,
    #[module(skip)]
    folded: Option<folded::Linear>,
}

impl Linear {
    /// The layer from its parts.
    pub fn new(
        weight: Param<Tensor<2>>,
        bias: Param<Tensor<1>>,
        bn: Option<BatchNorm>,
        folded: Option<folded::Linear>,
    ) -> Self {
        Self {
            weight,
            bias,
            bn,
            folded,
        }
    }

    /// Applies the layer (and its BatchNorm) to `[n, in]` rows.
    pub fn forward(&self, x: Tensor<2>, mode: Mode) -> Tensor<2> {
        if let (Mode::Eval, Some(folded)) = (mode, &self.folded) {
            return folded.forward(x);
        }
        let y = linear(x, self.weight.val().transpose(), Some(self.bias.val()));
        match (&self.bn, mode) {
            (Some(bn), Mode::Train) => bn.forward_train(y),
            (Some(bn), Mode::Eval) => bn.forward_eval(y),
            (None, _) => y,
        }
    }

    /// Applies the layer, then ReLU.
    pub fn forward_relu(&self, x: Tensor<2>, mode: Mode) -> Tensor<2> {
        activation::relu(self.forward(x, mode))
    }
}
