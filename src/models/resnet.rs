//! ResNet-50 as in torchvision / Torchreid (stride on the 3×3 conv), returning the 2048-d
//! globally pooled feature map.

use burn::module::Module;

use crate::models::Activation;
use crate::models::conv_spec::ConvSpec;
use crate::models::error::ModelError;
use crate::models::flow::Flow;
use crate::models::layers::ConvBn;
use crate::models::params::ParamLoader;

/// Blocks per stage of ResNet-50.
const STAGE_BLOCKS: [usize; 4] = [3, 4, 6, 3];
/// Blocks of layer1 and layer2, which run at output strides up to 8.
const EARLY_BLOCKS: usize = STAGE_BLOCKS[0] + STAGE_BLOCKS[1];
/// Bottleneck output channels are 4× the stage width.
const EXPANSION: usize = 4;

/// A bottleneck residual block.
#[derive(Module, Debug)]
struct Bottleneck {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    downsample: Option<ConvBn>,
}

impl Bottleneck {
    fn load(
        loader: &mut ParamLoader,
        key: &str,
        in_channels: usize,
        width: usize,
        stride: usize,
    ) -> Result<Self, ModelError> {
        let out_channels = width * EXPANSION;
        let conv_bn = |loader: &mut ParamLoader, n: usize, spec: ConvSpec| {
            loader.conv_bn(&format!("{key}.conv{n}"), &format!("{key}.bn{n}"), spec)
        };
        let conv1 = conv_bn(loader, 1, ConvSpec::new(in_channels, width, 1))?;
        let conv2 = conv_bn(loader, 2, ConvSpec::new(width, width, 3).stride(stride))?;
        let conv3 = conv_bn(loader, 3, ConvSpec::new(width, out_channels, 1))?;
        let downsample = if stride != 1 || in_channels != out_channels {
            Some(loader.conv_bn(
                &format!("{key}.downsample.0"),
                &format!("{key}.downsample.1"),
                ConvSpec::new(in_channels, out_channels, 1).stride(stride),
            )?)
        } else {
            None
        };
        Ok(Self {
            conv1,
            conv2,
            conv3,
            downsample,
        })
    }

    fn forward<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let out = f.conv_bn(&self.conv1, x.clone(), Activation::Relu);
        let out = f.conv_bn(&self.conv2, out, Activation::Relu);
        let identity = match &self.downsample {
            Some(down) => f.conv_bn(down, x, Activation::Identity),
            None => x,
        };
        f.conv_bn_add(&self.conv3, out, identity, Activation::Relu)
    }
}

/// ResNet-50 feature extractor.
#[derive(Module, Debug)]
pub struct ResNet50 {
    stem: ConvBn,
    blocks: Vec<Bottleneck>,
}

impl ResNet50 {
    /// Builds the network; `last_stride` is the stride of `layer4` (2 in torchvision, 1 in the
    /// triplet-loss baseline).
    pub fn load(loader: &mut ParamLoader, last_stride: usize) -> Result<Self, ModelError> {
        let stem = loader.conv_bn("conv1", "bn1", ConvSpec::new(3, 64, 7).stride(2))?;
        let mut blocks = Vec::new();
        let mut in_channels = 64;
        for (stage, &count) in STAGE_BLOCKS.iter().enumerate() {
            let width = 64 << stage;
            let first_stride = match stage {
                0 => 1,
                3 => last_stride,
                _ => 2,
            };
            for index in 0..count {
                let stride = if index == 0 { first_stride } else { 1 };
                let key = format!("layer{}.{index}", stage + 1);
                blocks.push(Bottleneck::load(loader, &key, in_channels, width, stride)?);
                in_channels = width * EXPANSION;
            }
        }
        Ok(Self { stem, blocks })
    }

    /// Forward pass `[n, 3, h, w] → [n, 2048]`: the pooled features.
    pub fn forward<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Vector {
        let map = self.feature_map(f, x);
        self.features_of_map(f, map)
    }

    /// The map before global pooling: layer4's output, Torchreid's `featuremaps`.
    pub fn feature_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let early = self.early_map(f, x);
        self.late_map(f, early)
    }

    /// The stem, layer1 and layer2: the part at output strides up to 8.
    pub fn early_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let stem = f.conv_bn(&self.stem, x, Activation::Relu);
        let x = f.stem_max_pool(stem);
        self.blocks[..EARLY_BLOCKS]
            .iter()
            .fold(x, |x, block| block.forward(f, x))
    }

    /// layer3 and layer4, from [`ResNet50::early_map`]'s output.
    pub fn late_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        self.blocks[EARLY_BLOCKS..]
            .iter()
            .fold(x, |x, block| block.forward(f, x))
    }

    /// The pooled features of the map before global pooling.
    pub fn features_of_map<F: Flow>(&self, f: &mut F, map: F::Map) -> F::Vector {
        f.global_avg_pool(map)
    }
}
