//! The layers the networks are made of, as Burn modules: trainable parameters, PyTorch's
//! train-mode BatchNorm and InstanceNorm, and — for models loaded for inference — the folded
//! form of each layer ([`crate::models::folded`]) built from the same values.
//!
//! Mixed precision: a layer given an f16 input returns f16, as Apex's O2 does, but computes
//! in f32 — input and parameters rounded to f16 (the half-precision copy of the f32 master
//! parameters) and then products accumulated, normalised and activated in f32, the way
//! tensor cores multiply f16 into f32 sums. (Burn's f16 kernels sum in f16, which moved a
//! MobileNetV2 step on the 64×32 fixture ~50 % away from f32.) Activations between layers and
//! their gradients are f16, so the loss scale matters as it does in O2. An f32 input runs in
//! f32 throughout (every cast below is then a no-op).

use burn::module::{Module, Param};
use burn::nn::InstanceNorm as BurnInstanceNorm;
use burn::tensor::module::linear;
use burn::tensor::{DType, Tensor};

use crate::models::Activation;
use crate::models::batch_norm::BatchNorm;
use crate::models::conv_spec::ConvSpec;
use crate::models::folded;
use crate::models::host_conv::conv2d;
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

    /// The eval-mode form, BatchNorm folded in (absent in a network built for training).
    pub fn folded(&self) -> Option<&folded::Conv> {
        self.folded.as_ref()
    }

    /// Convolution, BatchNorm, then `act`.
    pub fn forward(&self, x: Tensor<4>, mode: Mode, act: Activation) -> Tensor<4> {
        if let (Mode::Eval, Some(folded)) = (mode, &self.folded) {
            return folded.forward(x, act);
        }
        let dtype = x.dtype();
        let weight = rounded_to(&self.weight, dtype);
        let y = conv2d(x.cast(DType::F32), weight, None, self.spec.options());
        match mode {
            Mode::Train => self.bn.forward_train_activated(y, act),
            Mode::Eval => activate(self.bn.forward_eval(y), act),
        }
        .cast(dtype)
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

    /// The eval-mode form (absent in a network built for training).
    pub fn folded(&self) -> Option<&folded::Conv> {
        self.folded.as_ref()
    }

    /// Applies the convolution.
    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        if let (Mode::Eval, Some(folded)) = (mode, &self.folded) {
            return folded.forward(x, Activation::Identity);
        }
        let dtype = x.dtype();
        conv2d(
            x.cast(DType::F32),
            rounded_to(&self.weight, dtype),
            self.bias.as_ref().map(|b| rounded_to(b, dtype)),
            self.spec.options(),
        )
        .cast(dtype)
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

    /// The eval-mode form (absent in a network built for training).
    pub fn folded(&self) -> Option<&folded::InstanceNorm> {
        self.folded.as_ref()
    }

    /// Normalises, then applies `act`.
    pub fn forward(&self, x: Tensor<4>, mode: Mode, act: Activation) -> Tensor<4> {
        if let (Mode::Eval, Some(folded)) = (mode, &self.folded) {
            return folded.forward(x, act);
        }
        let dtype = x.dtype();
        activate(self.norm.forward(x.cast(DType::F32)), act).cast(dtype)
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

    /// The eval-mode form, BatchNorm1d folded in (absent in a network built for training).
    pub fn folded(&self) -> Option<&folded::Linear> {
        self.folded.as_ref()
    }

    /// Applies the layer (and its BatchNorm) to `[n, in]` rows.
    pub fn forward(&self, x: Tensor<2>, mode: Mode) -> Tensor<2> {
        if let (Mode::Eval, Some(folded)) = (mode, &self.folded) {
            return folded.forward(x);
        }
        let dtype = x.dtype();
        let weight = rounded_to(&self.weight, dtype).transpose();
        let y = linear(
            x.cast(DType::F32),
            weight,
            Some(rounded_to(&self.bias, dtype)),
        );
        match (&self.bn, mode) {
            (Some(bn), Mode::Train) => bn.forward_train(y),
            (Some(bn), Mode::Eval) => bn.forward_eval(y),
            (None, _) => y,
        }
        .cast(dtype)
    }
}

/// The f32 value of `param` rounded to `dtype` (unchanged for f32); gradients pass through the
/// rounding to the f32 parameter unchanged.
fn rounded_to<const D: usize>(param: &Param<Tensor<D>>, dtype: DType) -> Tensor<D> {
    let value = param.val();
    if dtype == DType::F32 {
        value
    } else {
        value.cast(dtype).cast(DType::F32)
    }
}
