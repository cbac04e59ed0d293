//! Which graph a checkpoint needs, and the network built from it: one definition per
//! architecture, run in train mode under autodiff or in eval mode through its folded layers.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::models::checkpoint::{Checkpoint, Container};
use crate::models::error::ModelError;
use crate::models::flow::{Eager, Flow};
use crate::models::layers::Mode;
use crate::models::mobilenetv2::{self, MobileNetV2};
use crate::models::name::ModelName;
use crate::models::osnet::{self, OsNet};
use crate::models::params::ParamLoader;
use crate::models::resnet::ResNet50;

/// Options that change a network's graph but are not visible in its weights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Stride of ResNet-50's last stage (1 or 2). `None`: 1 for triplet-baseline checkpoints,
    /// 2 otherwise (Torchreid's and torchvision's default).
    pub last_stride: Option<usize>,
}

/// A network's name with the graph details its checkpoint decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Architecture {
    /// The Torchreid name.
    pub name: ModelName,
    last_stride: usize,
    mobilenet_graph: mobilenetv2::Graph,
}

impl Architecture {
    /// `name` as Torchreid builds it by default.
    pub fn new(name: ModelName, options: BuildOptions) -> Result<Self, ModelError> {
        Self::with(name, options, 2, mobilenetv2::Graph::Torchreid)
    }

    /// `name` with the graph `checkpoint` was written from.
    pub fn of_checkpoint(
        name: ModelName,
        checkpoint: &Checkpoint,
        options: BuildOptions,
    ) -> Result<Self, ModelError> {
        let default_stride = if checkpoint.container() == Container::TripletBaseline {
            1
        } else {
            2
        };
        let graph = if checkpoint.contains("features.0.0.weight") {
            mobilenetv2::Graph::Tonylins
        } else {
            mobilenetv2::Graph::Torchreid
        };
        Self::with(name, options, default_stride, graph)
    }

    fn with(
        name: ModelName,
        options: BuildOptions,
        default_stride: usize,
        mobilenet_graph: mobilenetv2::Graph,
    ) -> Result<Self, ModelError> {
        let last_stride = options.last_stride.unwrap_or(default_stride);
        if !(1..=2).contains(&last_stride) {
            return Err(ModelError::InvalidOption(format!(
                "--last-stride must be 1 or 2, got {last_stride}"
            )));
        }
        Ok(Self {
            name,
            last_stride,
            mobilenet_graph,
        })
    }

    /// How many times the network shrinks its input's height and width before the final
    /// pooling.
    pub fn output_stride(&self) -> usize {
        match self.name {
            ModelName::Resnet50 => 16 * self.last_stride,
            ModelName::Mobilenetv2X1_0 => 32,
            _ => 16,
        }
    }

    /// Checks an input of `height` × `width` leaves the network a feature map of at least one
    /// pixel.
    pub fn check_input(&self, height: u32, width: u32) -> Result<(), ModelError> {
        let stride = self.output_stride();
        if (height as usize) < stride || (width as usize) < stride {
            return Err(ModelError::InputTooSmall {
                model: self.name,
                height,
                width,
                stride,
            });
        }
        Ok(())
    }

    /// Builds the network from `loader`.
    pub fn build(&self, loader: &mut ParamLoader) -> Result<Network, ModelError> {
        Ok(match self.name {
            ModelName::Resnet50 => Network::ResNet(ResNet50::load(loader, self.last_stride)?),
            ModelName::Mobilenetv2X1_0 => {
                Network::MobileNetV2(MobileNetV2::load(loader, self.mobilenet_graph)?)
            }
            osnet_name => Network::OsNet(OsNet::load(loader, osnet::Variant::of(osnet_name))?),
        })
    }
}

/// One of the networks.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per model
pub enum Network {
    /// An OSNet (plain, IBN or AIN).
    OsNet(OsNet),
    /// ResNet-50.
    ResNet(ResNet50),
    /// MobileNetV2 x1.0.
    MobileNetV2(MobileNetV2),
}

impl Network {
    /// The features `[n, D]` of a batch `[n, 3, h, w]`: what Torchreid's model returns in eval
    /// mode, and pairs with the logits in train mode.
    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<2> {
        self.flow(&mut Eager { mode }, x)
    }

    /// The feature map `[n, c, h', w']` before global pooling (Torchreid's `featuremaps`), as
    /// `f`'s operations.
    pub fn feature_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        match self {
            Network::OsNet(net) => net.feature_map(f, x),
            Network::ResNet(net) => net.feature_map(f, x),
            Network::MobileNetV2(net) => net.feature_map(f, x),
        }
    }

    /// The forward pass as `f`'s operations: run on tensors, or recorded as a graph.
    pub fn flow<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Vector {
        match self {
            Network::OsNet(net) => net.forward(f, x),
            Network::ResNet(net) => net.forward(f, x),
            Network::MobileNetV2(net) => net.forward(f, x),
        }
    }

    /// The first part of [`Network::feature_map`]: the stem and the stages at output strides
    /// up to 8, whose maps are large.
    pub fn early_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        match self {
            Network::OsNet(net) => net.early_map(f, x),
            Network::ResNet(net) => net.early_map(f, x),
            Network::MobileNetV2(net) => net.early_map(f, x),
        }
    }

    /// The rest of [`Network::feature_map`], from [`Network::early_map`]'s output.
    pub fn late_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        match self {
            Network::OsNet(net) => net.late_map(f, x),
            Network::ResNet(net) => net.late_map(f, x),
            Network::MobileNetV2(net) => net.late_map(f, x),
        }
    }

    /// The features of the map before global pooling: the end of [`Network::flow`].
    pub fn features_of_map<F: Flow>(&self, f: &mut F, map: F::Map) -> F::Vector {
        match self {
            Network::OsNet(net) => net.features_of_map(f, map),
            Network::ResNet(net) => net.features_of_map(f, map),
            Network::MobileNetV2(net) => net.features_of_map(f, map),
        }
    }
}
