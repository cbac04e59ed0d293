//! Torchreid's optimisers (`--optimizer adam|amsgrad|sgd`) as burn-optim configurations with
//! PyTorch's semantics, which differ from burn-optim's defaults: weight decay added to the
//! gradient, Adam's ε = 1e-8, SGD momentum without dampening (and none at momentum 0).

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, SgdConfig};

use crate::names::named_enum;

/// PyTorch's Adam ε.
const ADAM_EPSILON: f32 = 1e-8;

named_enum! {
    /// The optimiser.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum OptimizerKind("optimizer") {
        /// Adam.
        Adam = "adam",
        /// Adam with AMSGrad's running maximum of the second moment.
        Amsgrad = "amsgrad",
        /// SGD with momentum.
        Sgd = "sgd",
    }
}

/// An optimiser's settings (Torchreid's defaults: weight decay 5e-4, momentum 0.9, betas
/// 0.9 / 0.999).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerSettings {
    /// Which optimiser.
    pub kind: OptimizerKind,
    /// L2 penalty, added to each gradient as `weight_decay × parameter`.
    pub weight_decay: f32,
    /// SGD momentum (0: plain SGD).
    pub momentum: f64,
    /// Adam's β1.
    pub beta1: f32,
    /// Adam's β2.
    pub beta2: f32,
}

impl Default for OptimizerSettings {
    fn default() -> Self {
        OptimizerSettings {
            kind: OptimizerKind::Adam,
            weight_decay: 5e-4,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
        }
    }
}

impl OptimizerSettings {
    fn weight_decay(&self) -> Option<WeightDecayConfig> {
        (self.weight_decay != 0.0).then(|| WeightDecayConfig::new(self.weight_decay))
    }

    /// Adam (AMSGrad when the kind says so) as PyTorch's `torch.optim.Adam`.
    pub fn adam(&self) -> AdamConfig {
        AdamConfig::new()
            .with_beta_1(self.beta1)
            .with_beta_2(self.beta2)
            .with_epsilon(ADAM_EPSILON)
            .with_amsgrad(self.kind == OptimizerKind::Amsgrad)
            .with_weight_decay(self.weight_decay())
    }

    /// SGD as PyTorch's `torch.optim.SGD` (dampening 0, no Nesterov).
    pub fn sgd(&self) -> SgdConfig {
        let momentum = (self.momentum != 0.0).then_some(MomentumConfig {
            momentum: self.momentum,
            dampening: 0.0,
            nesterov: false,
        });
        SgdConfig::new()
            .with_momentum(momentum)
            .with_weight_decay(self.weight_decay())
    }
}
