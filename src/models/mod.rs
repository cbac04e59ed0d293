//! Re-identification networks in Burn and the registry that names them.
//!
//! Names follow Torchreid. Every network returns, in eval mode, the vector Torchreid's model
//! returns: OSNet 512-d (fc + BN + ReLU), ResNet-50 2048-d and MobileNetV2 1280-d pooled.

pub mod checkpoint;
mod host;
mod layers;
mod mobilenetv2;
mod osnet;
mod resnet;
pub mod weights;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use burn::tensor::{Tensor, TensorData};

use crate::backend::Backend;
use checkpoint::Checkpoint;
use layers::Loader;
pub use weights::{RandomWeights, WeightSource};

/// Errors raised while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The checkpoint could not be parsed.
    #[error("cannot read checkpoint {file}: {reason}")]
    Read {
        /// The checkpoint file.
        file: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The network needs a tensor the checkpoint lacks.
    #[error(
        "checkpoint {file} has no tensor '{key}' (expected shape {shape:?}); it holds e.g. {nearby:?}"
    )]
    MissingKey {
        /// The checkpoint file.
        file: PathBuf,
        /// The missing key.
        key: String,
        /// The shape the network expects.
        shape: Vec<usize>,
        /// A few keys the file does hold.
        nearby: Vec<String>,
    },
    /// A stored tensor has the wrong shape.
    #[error(
        "checkpoint {file}: tensor '{key}' has shape {found:?}, the network expects {expected:?}"
    )]
    ShapeMismatch {
        /// The checkpoint file.
        file: PathBuf,
        /// The key.
        key: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the network expects.
        expected: Vec<usize>,
    },
    /// The checkpoint holds parameters the network does not have.
    #[error(
        "checkpoint {file} has unexpected tensor '{key}' with shape {shape:?} ({count} unexpected in all); is it a checkpoint of another model?"
    )]
    UnexpectedKey {
        /// The checkpoint file.
        file: PathBuf,
        /// The first unexpected key.
        key: String,
        /// Its shape.
        shape: Vec<usize>,
        /// How many keys were unexpected.
        count: usize,
    },
    /// An unknown model name.
    #[error("unknown model '{0}', expected one of: {names}", names = ModelName::ALL.map(|m| m.as_str()).join(", "))]
    UnknownModel(String),
    /// An invalid build option.
    #[error("{0}")]
    InvalidOption(String),
    /// The device failed while running the network.
    #[error("inference failed on the device: {0}")]
    Device(String),
}

/// The networks reidscope can build, by their Torchreid names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelName {
    /// OSNet x1.0.
    OsnetX1_0,
    /// OSNet x0.75.
    OsnetX0_75,
    /// OSNet x0.5.
    OsnetX0_5,
    /// OSNet x0.25.
    OsnetX0_25,
    /// OSNet-IBN x1.0 (instance norm in the stem and the first stage).
    OsnetIbnX1_0,
    /// OSNet-AIN x1.0 (searched instance-norm placement).
    OsnetAinX1_0,
    /// ResNet-50 (Torchreid / torchvision / triplet-baseline checkpoints).
    Resnet50,
    /// MobileNetV2 x1.0 (Torchreid or pytorch-mobilenet-v2 checkpoints).
    Mobilenetv2X1_0,
}

impl ModelName {
    /// Every model, in the order `--help` lists them.
    pub const ALL: [ModelName; 8] = [
        Self::OsnetX1_0,
        Self::OsnetX0_75,
        Self::OsnetX0_5,
        Self::OsnetX0_25,
        Self::OsnetIbnX1_0,
        Self::OsnetAinX1_0,
        Self::Resnet50,
        Self::Mobilenetv2X1_0,
    ];

    /// The Torchreid name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OsnetX1_0 => "osnet_x1_0",
            Self::OsnetX0_75 => "osnet_x0_75",
            Self::OsnetX0_5 => "osnet_x0_5",
            Self::OsnetX0_25 => "osnet_x0_25",
            Self::OsnetIbnX1_0 => "osnet_ibn_x1_0",
            Self::OsnetAinX1_0 => "osnet_ain_x1_0",
            Self::Resnet50 => "resnet50",
            Self::Mobilenetv2X1_0 => "mobilenetv2_x1_0",
        }
    }

    /// Length of the feature vector the network returns.
    pub fn feature_dim(self) -> usize {
        match self {
            Self::Resnet50 => 2048,
            Self::Mobilenetv2X1_0 => 1280,
            _ => 512,
        }
    }
}

impl FromStr for ModelName {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| ModelError::UnknownModel(s.to_string()))
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
