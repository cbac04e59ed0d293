//! A network with Torchreid's classifier on top, for training, and the keys of its values.

use std::path::Path;

use burn::module::{Module, ParamId};
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::backend::Backend;
use crate::models::Model;
use crate::models::checkpoint::Checkpoint;
use crate::models::error::ModelError;
use crate::models::layers::{Linear, Mode};
use crate::models::name::ModelName;
use crate::models::network::{Architecture, BuildOptions, Network};
use crate::models::params::ParamLoader;
use crate::models::state::{StateDict, StateKeys};
use crate::models::weights::{RandomWeights, WeightSource};

/// Torchreid's key prefix of the classifier.
const CLASSIFIER: &str = "classifier";
/// Standard deviation of a newly drawn classifier's weights (Torchreid: normal(0, 0.01)).
const CLASSIFIER_STD: f64 = 0.01;

/// A network and its identity classifier.
#[derive(Module, Debug)]
pub struct Trainable {
    network: Network,
    classifier: Linear,
}

impl Trainable {
    /// Train-mode forward: `(logits [n, classes], features [n, D])`, the pair Torchreid's
    /// models return with `loss='triplet'`. With `frozen_network` the network runs in eval mode
    /// and passes no gradient back (Torchreid's fixbase epochs, which train the classifier
    /// alone).
    pub fn forward(&self, x: Tensor<4>, frozen_network: bool) -> (Tensor<2>, Tensor<2>) {
        let features = if frozen_network {
            self.network.forward(x, Mode::Eval).detach()
        } else {
            self.network.forward(x, Mode::Train)
        };
        let logits = self.classifier.forward(features.clone(), Mode::Train);
        (logits, features)
    }
}

/// A [`Trainable`] with the PyTorch key of each of its values.
#[derive(Debug)]
pub struct TrainableModel {
    /// The module; `None` only while [`TrainableModel::update`] runs.
    module: Option<Trainable>,
    architecture: Architecture,
    keys: StateKeys,
    classifier_drawn: bool,
}

impl TrainableModel {
    /// Builds `architecture` from `source` on `device` (an autodiff device to train) with a
    /// classifier for `classes` identities: the source's own when it has one of that size,
    /// otherwise a new one drawn as Torchreid does (normal(0, 0.01), bias 0) with `seed`.
    pub fn build(
        architecture: Architecture,
        source: &mut dyn WeightSource,
        classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let dim = architecture.name.feature_dim();
        let weight_key = format!("{CLASSIFIER}.weight");
        let bias_key = format!("{CLASSIFIER}.bias");
        let has_classifier = source.shape_of(&weight_key) == Some(vec![classes, dim])
            && source.shape_of(&bias_key) == Some(vec![classes]);
        let mut loader = ParamLoader::new(source, device, None);
        let network = architecture.build(&mut loader)?;
        let classifier = if has_classifier {
            loader.linear(CLASSIFIER, dim, classes)?
        } else {
            let mut rng = StdRng::seed_from_u64(seed);
            let weight = (0..classes * dim)
                .map(|_| (standard_normal(&mut rng) * CLASSIFIER_STD) as f32)
                .collect();
            loader.linear_of(CLASSIFIER, weight, vec![0.0; classes])
        };
        let keys = loader.into_keys();
        source.finish()?;
        Ok(Self {
            module: Some(Trainable {
                network,
                classifier,
            }),
            architecture,
            keys,
            classifier_drawn: !has_classifier,
        })
    }

    /// The module.
    pub fn module(&self) -> &Trainable {
        self.module
            .as_ref()
            .expect("the module is only taken during an update")
    }

    /// Replaces the module by `f(module)` (an optimiser step).
    pub fn update(&mut self, f: impl FnOnce(Trainable) -> Trainable) {
        let module = self
            .module
            .take()
            .expect("the module is only taken during an update");
        self.module = Some(f(module));
    }

    /// The network's architecture.
    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// The keys of the module's values.
    pub fn keys(&self) -> &StateKeys {
        &self.keys
    }

    /// Builds `name` from the checkpoint at `weights` (its graph as the checkpoint says), or
    /// with random weights drawn from `seed` without one; the classifier as
    /// [`TrainableModel::build`] decides.
    pub fn load(
        name: ModelName,
        weights: Option<&Path>,
        options: BuildOptions,
        classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        match weights {
            Some(path) => {
                let mut checkpoint = Checkpoint::open(path)?;
                let architecture = Architecture::of_checkpoint(name, &checkpoint, options)?;
                Self::build(architecture, &mut checkpoint, classes, seed, device)
            }
            None => {
                let architecture = Architecture::new(name, options)?;
                Self::build(
                    architecture,
                    &mut RandomWeights::new(seed),
                    classes,
                    seed,
                    device,
                )
            }
        }
    }

    /// Whether the classifier was newly drawn rather than read.
    pub fn classifier_drawn(&self) -> bool {
        self.classifier_drawn
    }

    /// The ids of the classifier's parameters (the layer trained alone in fixbase epochs).
    pub fn classifier_ids(&self) -> Vec<ParamId> {
        self.keys.ids_with_prefix(&format!("{CLASSIFIER}."))
    }

    /// The current values under their PyTorch keys, classifier included.
    pub fn state(&self) -> Result<StateDict, ModelError> {
        // `valid()` first: it gathers the running statistics the train-mode forward passes
        // updated (Burn keeps them per thread until then).
        self.keys.read(&self.module().valid())
    }

    /// The network as it is now, folded for inference on `backend`.
    pub fn inference(&self, backend: &Backend) -> Result<Model, ModelError> {
        Model::build(self.architecture, &mut self.state()?, backend)
    }
}

/// A standard normal draw (Box–Muller).
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
