//! Re-identification networks in Burn and the registry that names them.
//!
//! Names follow Torchreid. Every network returns, in eval mode, the vector Torchreid's model
//! returns: OSNet 512-d (fc + BN + ReLU), ResNet-50 2048-d and MobileNetV2 1280-d pooled.

pub mod batch_norm;
pub mod checkpoint;
pub mod checkpoint_writer;
mod cpu_kernels;
mod error;
mod layers;
mod mobilenetv2;
mod name;
mod osnet;
mod resnet;
pub mod weights;

use std::path::Path;

use burn::tensor::{Tensor, TensorData};

use crate::backend::Backend;
use checkpoint::Checkpoint;
pub use error::ModelError;
use layers::Loader;
pub use name::ModelName;
pub use weights::{RandomWeights, WeightSource};

/// Options that change a network's graph but are not visible in its weights.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Stride of ResNet-50's last stage (1 or 2). `None`: 1 for triplet-baseline checkpoints,
    /// 2 otherwise (Torchreid's and torchvision's default).
    pub last_stride: Option<usize>,
}

/// A built network, ready for eval-mode inference.
#[derive(Debug)]
pub struct Model {
    name: ModelName,
    network: Network,
    backend: Backend,
}

#[derive(Debug)]
enum Network {
    OsNet(Box<osnet::OsNet>),
    ResNet(Box<resnet::ResNet50>),
    MobileNetV2(Box<mobilenetv2::MobileNetV2>),
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
        let last_stride = options.last_stride.unwrap_or(
            if checkpoint.container() == checkpoint::Container::TripletBaseline {
                1
            } else {
                2
            },
        );
        let mobilenet_graph = if checkpoint.contains("features.0.0.weight") {
            mobilenetv2::Graph::Tonylins
        } else {
            mobilenetv2::Graph::Torchreid
        };
        Self::build(name, &mut checkpoint, last_stride, mobilenet_graph, backend)
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
        Self::build(
            name,
            &mut RandomWeights::new(seed),
            2,
            mobilenetv2::Graph::Torchreid,
            backend,
        )
    }

    fn build(
        name: ModelName,
        source: &mut dyn WeightSource,
        last_stride: usize,
        mobilenet_graph: mobilenetv2::Graph,
        backend: &Backend,
    ) -> Result<Self, ModelError> {
        if !(1..=2).contains(&last_stride) {
            return Err(ModelError::InvalidOption(format!(
                "--last-stride must be 1 or 2, got {last_stride}"
            )));
        }
        let mut loader = Loader::new(source, backend);
        let network = match name {
            ModelName::Resnet50 => {
                Network::ResNet(Box::new(resnet::ResNet50::load(&mut loader, last_stride)?))
            }
            ModelName::Mobilenetv2X1_0 => Network::MobileNetV2(Box::new(
                mobilenetv2::MobileNetV2::load(&mut loader, mobilenet_graph)?,
            )),
            osnet_name => Network::OsNet(Box::new(osnet::OsNet::load(
                &mut loader,
                osnet::Variant::of(osnet_name),
            )?)),
        };
        source.finish()?;
        Ok(Self {
            name,
            network,
            backend: backend.clone(),
        })
    }

    /// The model's name.
    pub fn name(&self) -> ModelName {
        self.name
    }

    /// The backend the model runs on.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Eval-mode features of a normalised batch `[n, 3, h, w]` given as row-major f32 values;
    /// returns `n` rows of [`ModelName::feature_dim`] values.
    pub fn features(&self, batch: Vec<f32>, shape: [usize; 4]) -> Result<Vec<f32>, ModelError> {
        let device = &self.backend.device;
        let dtype = self.backend.precision.dtype();
        let input: Tensor<4> = Tensor::from_data(TensorData::new(batch, shape), (device, dtype));
        // On a worker of the thread pool, so the backend's parallel loops start without a
        // hand-off from the calling thread for every layer.
        let output = rayon::scope(|_| match &self.network {
            Network::OsNet(net) => net.forward(input),
            Network::ResNet(net) => net.forward(input),
            Network::MobileNetV2(net) => net.forward(input),
        });
        let data = output
            .try_into_data()
            .map_err(|e| ModelError::Device(format!("{e:?}")))?;
        data.try_into_vec_as::<f32>()
            .map_err(|e| ModelError::Device(format!("{e:?}")))
    }
}
