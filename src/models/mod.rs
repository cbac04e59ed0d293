//! Re-identification networks in Burn and the registry that names them.
//!
//! Names follow Torchreid. Every network returns, in eval mode, the vector Torchreid's model
//! returns: OSNet 512-d (fc + BN + ReLU), ResNet-50 2048-d and MobileNetV2 1280-d pooled.

pub mod batch_norm;
pub mod checkpoint;
pub(crate) mod checkpoint_file;
pub mod checkpoint_writer;
mod conv_spec;
pub(crate) mod cpu_executor;
mod error;
mod flex_values;
pub(crate) mod flow;
pub(crate) mod folded;
mod host_batch_norm;
mod host_conv;
pub(crate) mod layers;
mod mobilenetv2;
mod name;
mod network;
mod ops;
mod osnet;
mod params;
mod resnet;
pub mod state;
mod stored_tensor;
#[cfg(test)]
mod test_values;
mod trainable;
pub mod weights;

pub(crate) use reidscope_kernels::Activation;

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};

use crate::backend::{Backend, BackendKind};
use checkpoint::Checkpoint;
pub use error::ModelError;
use flow::Eager;
use folded::FoldTarget;
pub use layers::Mode;
pub use name::ModelName;
pub use network::{Architecture, BuildOptions, Network};
use params::ParamLoader;
use state::{StateDict, StateKeys};
pub use trainable::{Trainable, TrainableModel};
pub use weights::{Classifier, RandomWeights, WeightSource};

/// A built network, ready for eval-mode inference through its folded layers.
#[derive(Debug)]
pub struct Model {
    architecture: Architecture,
    network: Network,
    keys: StateKeys,
    /// The checkpoint's identity classifier, kept for exports.
    classifier: Option<Classifier>,
    backend: Backend,
}

impl Model {
    /// Builds `name` from the checkpoint at `weights`.
    pub fn from_checkpoint(
        name: ModelName,
        weights: &Path,
        options: BuildOptions,
        backend: &Backend,
    ) -> Result<Self, ModelError> {
        let mut checkpoint = Checkpoint::open(weights)?;
        let architecture = Architecture::of_checkpoint(name, &checkpoint, options)?;
        Self::build(architecture, &mut checkpoint, backend)
    }

    /// Builds `name` from the checkpoint at `weights`, or with random weights (seed 0) when
    /// there is none (benchmarks).
    pub fn load(
        name: ModelName,
        weights: Option<&Path>,
        options: BuildOptions,
        backend: &Backend,
    ) -> Result<Self, ModelError> {
        match weights {
            Some(path) => Self::from_checkpoint(name, path, options, backend),
            None => Self::random(name, 0, backend),
        }
    }

    /// Builds `name` with seeded random weights (for benchmarks).
    pub fn random(name: ModelName, seed: u64, backend: &Backend) -> Result<Self, ModelError> {
        let architecture = Architecture::new(name, BuildOptions::default())?;
        Self::build(architecture, &mut RandomWeights::new(seed), backend)
    }

    /// Builds `architecture` from `source` for inference on `backend`.
    pub fn build(
        architecture: Architecture,
        source: &mut dyn WeightSource,
        backend: &Backend,
    ) -> Result<Self, ModelError> {
        // The unfolded values stay on the host (only `state` reads them); the folded layers the
        // forward pass runs go to the backend's device.
        let fold = Some(FoldTarget::new(backend));
        let mut loader = ParamLoader::new(source, &Device::flex(), fold);
        let network = architecture.build(&mut loader)?;
        let keys = loader.into_keys();
        let classifier = source.take_classifier(architecture.name.feature_dim())?;
        source.finish()?;
        Ok(Self {
            architecture,
            network,
            keys,
            classifier,
            backend: backend.clone(),
        })
    }

    /// The model's name.
    pub fn name(&self) -> ModelName {
        self.architecture.name
    }

    /// The network's values under their PyTorch keys (as loaded, before folding), and the
    /// checkpoint's identity classifier if it had Torchreid's.
    pub fn state(&self) -> Result<StateDict, ModelError> {
        let mut state = self.keys.read(&self.network)?;
        if let Some(classifier) = &self.classifier {
            let shape = [classifier.classes, self.architecture.name.feature_dim()];
            state.push_parameter("classifier.weight", &shape, classifier.weight.clone());
            state.push_parameter("classifier.bias", &shape[..1], classifier.bias.clone());
        }
        Ok(state)
    }

    /// The eval-mode forward pass as `f`'s operations (an exporter records them).
    pub(crate) fn flow<F: flow::Flow>(&self, f: &mut F, x: F::Map) -> F::Vector {
        self.network.flow(f, x)
    }

    /// The model's architecture.
    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// The backend the model runs on.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Eval-mode features of a normalised batch `[n, 3, h, w]` given as row-major f32 values;
    /// returns `n` rows of [`ModelName::feature_dim`] values.
    pub fn features(&self, batch: Vec<f32>, shape: [usize; 4]) -> Result<Vec<f32>, ModelError> {
        self.check_input(shape)?;
        if self.backend.kind == BackendKind::Flex {
            return Ok(cpu_executor::features(&self.network, &batch, shape));
        }
        self.device_pass(batch, shape, |input| {
            self.network.forward(input, Mode::Eval)
        })
    }

    /// Eval-mode feature maps before global pooling (Torchreid's `featuremaps`) of a normalised
    /// batch `[n, 3, h, w]`; returns their row-major values and shape `[n, c, h', w']`.
    pub fn feature_maps(
        &self,
        batch: Vec<f32>,
        shape: [usize; 4],
    ) -> Result<(Vec<f32>, [usize; 4]), ModelError> {
        self.check_input(shape)?;
        if self.backend.kind == BackendKind::Flex {
            return Ok(cpu_executor::feature_maps(&self.network, &batch, shape));
        }
        let mut map_shape = [0; 4];
        let values = self.device_pass(batch, shape, |input| {
            let map = self
                .network
                .feature_map(&mut Eager { mode: Mode::Eval }, input);
            map_shape = map.dims();
            map
        })?;
        Ok((values, map_shape))
    }

    /// Checks a batch of `shape` leaves the network a feature map.
    fn check_input(&self, shape: [usize; 4]) -> Result<(), ModelError> {
        let side = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.architecture
            .check_input(side(shape[2]), side(shape[3]))
    }

    /// Runs `pass` on the batch as a tensor on the model's (non-CPU) device and reads its
    /// output back.
    fn device_pass<const D: usize>(
        &self,
        batch: Vec<f32>,
        shape: [usize; 4],
        pass: impl FnOnce(Tensor<4>) -> Tensor<D>,
    ) -> Result<Vec<f32>, ModelError> {
        let device = &self.backend.device;
        let dtype = self.backend.precision.dtype();
        let input: Tensor<4> = Tensor::from_data(TensorData::new(batch, shape), (device, dtype));
        let output = pass(input);
        let data = output
            .try_into_data()
            .map_err(|e| ModelError::Device(format!("{e:?}")))?;
        data.try_into_vec_as::<f32>()
            .map_err(|e| ModelError::Device(format!("{e:?}")))
    }
}
