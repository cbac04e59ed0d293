//! OSNet (Zhou et al., ICCV 2019) and its IBN and AIN variants, as Torchreid defines them.

use burn::module::Module;

use crate::models::Activation;
use crate::models::conv_spec::ConvSpec;
use crate::models::error::ModelError;
use crate::models::flow::Flow;
use crate::models::layers::{Conv, ConvBn, InstanceNorm, Linear};
use crate::models::name::ModelName;
use crate::models::params::ParamLoader;

/// Output length of every OSNet's fc layer.
const FEATURE_DIM: usize = 512;
/// Number of lightweight streams in an OSBlock (receptive fields 3, 5, 7, 9).
const STREAMS: usize = 4;

/// Where a network variant places instance normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Norm {
    /// Plain OSNet: BatchNorm only.
    Batch,
    /// OSNet-IBN: IN in the stem and after the residual add of every `conv2` block.
    Ibn,
    /// OSNet-AIN: IN in the stem and inside the residual branch of the searched blocks.
    Ain,
}

/// Channel widths and normalisation placement of one OSNet model.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    channels: [usize; 4],
    norm: Norm,
}

impl Variant {
    /// The variant Torchreid builds for `name` (an OSNet name).
    pub fn of(name: ModelName) -> Self {
        let (channels, norm) = match name {
            ModelName::OsnetX0_75 => ([48, 192, 288, 384], Norm::Batch),
            ModelName::OsnetX0_5 => ([32, 128, 192, 256], Norm::Batch),
            ModelName::OsnetX0_25 => ([16, 64, 96, 128], Norm::Batch),
            ModelName::OsnetIbnX1_0 => ([64, 256, 384, 512], Norm::Ibn),
            ModelName::OsnetAinX1_0 => ([64, 256, 384, 512], Norm::Ain),
            _ => ([64, 256, 384, 512], Norm::Batch),
        };
        Self { channels, norm }
    }

    /// Whether block `index` of stage `stage` (0-based, stages conv2..conv4) is an AIN
    /// `OSBlockINin`: Torchreid's searched pattern [[IN, IN], [-, IN], [IN, -]].
    fn ain_block_has_in(stage: usize, index: usize) -> bool {
        matches!((stage, index), (0, _) | (1, 1) | (2, 0))
    }
}

/// Lightweight 3×3 convolution: 1×1 linear, then depthwise 3×3 + BN + ReLU.
#[derive(Module, Debug)]
struct LightConv {
    pointwise: Conv,
    depthwise: ConvBn,
}

impl LightConv {
    fn load(loader: &mut ParamLoader, key: &str, channels: usize) -> Result<Self, ModelError> {
        Ok(Self {
            pointwise: loader.conv(
                &format!("{key}.conv1"),
                ConvSpec::new(channels, channels, 1),
                false,
            )?,
            depthwise: loader.conv_bn(
                &format!("{key}.conv2"),
                &format!("{key}.bn"),
                ConvSpec::new(channels, channels, 3).depthwise(),
            )?,
        })
    }

    fn forward<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let y = f.conv(&self.pointwise, x);
        f.conv_bn(&self.depthwise, y, Activation::Relu)
    }
}

/// The channel gate shared by an OSBlock's streams.
#[derive(Module, Debug)]
struct ChannelGate {
    fc1: Linear,
    fc2: Linear,
}

impl ChannelGate {
    fn load(loader: &mut ParamLoader, key: &str, channels: usize) -> Result<Self, ModelError> {
        let reduced = channels / 16;
        Ok(Self {
            fc1: loader.pointwise_as_linear(&format!("{key}.fc1"), channels, reduced)?,
            fc2: loader.pointwise_as_linear(&format!("{key}.fc2"), reduced, channels)?,
        })
    }

    fn forward<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let pooled = f.global_avg_pool(x.clone());
        let hidden = f.linear_relu(&self.fc1, pooled);
        let logits = f.linear(&self.fc2, hidden);
        f.gate(x, logits)
    }
}

/// Omni-scale residual block.
#[derive(Module, Debug)]
struct OsBlock {
    conv1: ConvBn,
    streams: Vec<Vec<LightConv>>,
    gate: ChannelGate,
    conv3: NormedConv,
    downsample: Option<ConvBn>,
    in_after_add: Option<InstanceNorm>,
}

/// A convolution followed by BatchNorm, or (where IBN and AIN put InstanceNorm) by
/// InstanceNorm.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // a few dozen per network, built once
enum NormedConv {
    Batch(ConvBn),
    Instance(ConvIn),
}

/// A convolution without BatchNorm, then InstanceNorm.
#[derive(Module, Debug)]
struct ConvIn {
    conv: Conv,
    norm: InstanceNorm,
}

impl NormedConv {
    fn forward<F: Flow>(&self, f: &mut F, x: F::Map, act: Activation) -> F::Map {
        match self {
            NormedConv::Batch(conv) => f.conv_bn(conv, x, act),
            NormedConv::Instance(ConvIn { conv, norm }) => {
                let y = f.conv(conv, x);
                f.instance_norm(norm, y, act)
            }
        }
    }

    /// `residual` plus [`NormedConv::forward`] without an activation, then a ReLU where `relu`
    /// says: the end of an OSBlock.
    fn forward_adding<F: Flow>(
        &self,
        f: &mut F,
        x: F::Map,
        residual: F::Map,
        relu: bool,
    ) -> F::Map {
        match self {
            NormedConv::Batch(conv) => {
                let act = if relu {
                    Activation::Relu
                } else {
                    Activation::Identity
                };
                f.conv_bn_add(conv, x, residual, act)
            }
            NormedConv::Instance(_) => {
                let y = self.forward(f, x, Activation::Identity);
                let sum = f.add(y, residual);
                if relu { f.relu(sum) } else { sum }
            }
        }
    }
}

impl OsBlock {
    fn load(
        loader: &mut ParamLoader,
        key: &str,
        in_channels: usize,
        out_channels: usize,
        norm: Norm,
        block_in: bool,
    ) -> Result<Self, ModelError> {
        let mid = out_channels / 4;
        let conv1 = loader.conv_bn(
            &format!("{key}.conv1.conv"),
            &format!("{key}.conv1.bn"),
            ConvSpec::new(in_channels, mid, 1),
        )?;
        let mut streams = Vec::with_capacity(STREAMS);
        for t in 0..STREAMS {
            let mut stream = Vec::with_capacity(t + 1);
            for i in 0..=t {
                stream.push(LightConv::load(
                    loader,
                    &stream_layer_key(key, norm, t, i),
                    mid,
                )?);
            }
            streams.push(stream);
        }
        let gate = ChannelGate::load(loader, &format!("{key}.gate"), mid)?;
        let conv3_spec = ConvSpec::new(mid, out_channels, 1);
        let ain_in = norm == Norm::Ain && block_in;
        let conv3 = if ain_in {
            NormedConv::Instance(ConvIn {
                conv: loader.conv(&format!("{key}.conv3.conv"), conv3_spec, false)?,
                norm: loader.instance_norm(&format!("{key}.IN"), out_channels)?,
            })
        } else {
            NormedConv::Batch(loader.conv_bn(
                &format!("{key}.conv3.conv"),
                &format!("{key}.conv3.bn"),
                conv3_spec,
            )?)
        };
        let downsample = if in_channels != out_channels {
            Some(loader.conv_bn(
                &format!("{key}.downsample.conv"),
                &format!("{key}.downsample.bn"),
                ConvSpec::new(in_channels, out_channels, 1),
            )?)
        } else {
            None
        };
        let in_after_add = if norm == Norm::Ibn && block_in {
            Some(loader.instance_norm(&format!("{key}.IN"), out_channels)?)
        } else {
            None
        };
        Ok(Self {
            conv1,
            streams,
            gate,
            conv3,
            downsample,
            in_after_add,
        })
    }

    fn forward<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let x1 = f.conv_bn(&self.conv1, x.clone(), Activation::Relu);
        let mut x2: Option<F::Map> = None;
        for stream in &self.streams {
            let mut y = x1.clone();
            for layer in stream {
                y = layer.forward(f, y);
            }
            let gated = self.gate.forward(f, y);
            x2 = Some(match x2 {
                Some(sum) => f.add(sum, gated),
                None => gated,
            });
        }
        let x2 = x2.expect("an OSBlock has streams");
        let identity = match &self.downsample {
            Some(down) => f.conv_bn(down, x, Activation::Identity),
            None => x,
        };
        match &self.in_after_add {
            Some(norm) => {
                let sum = self.conv3.forward_adding(f, x2, identity, false);
                f.instance_norm(norm, sum, Activation::Relu)
            }
            None => self.conv3.forward_adding(f, x2, identity, true),
        }
    }
}

/// Key of layer `i` of stream `t` inside block `key`: Torchreid's OSNet names the streams
/// `conv2a`, `conv2b.i`, …; OSNet-AIN names them `conv2.t.layers.i`.
fn stream_layer_key(key: &str, norm: Norm, t: usize, i: usize) -> String {
    match (norm, t) {
        (Norm::Ain, _) => format!("{key}.conv2.{t}.layers.{i}"),
        (_, 0) => format!("{key}.conv2a"),
        _ => format!("{key}.conv2{}.{i}", (b'a' + t as u8) as char),
    }
}

/// Conv1x1 + BN + ReLU followed by 2×2 average pooling, between stages.
#[derive(Module, Debug)]
struct Transition {
    conv: ConvBn,
}

impl Transition {
    fn forward<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let y = f.conv_bn(&self.conv, x, Activation::Relu);
        f.avg_pool_2x2(y)
    }
}

/// One stage: two OSBlocks, then (except the last) a transition.
#[derive(Module, Debug)]
struct Stage {
    blocks: Vec<OsBlock>,
    transition: Option<Transition>,
}

impl Stage {
    fn forward<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let x = self.blocks.iter().fold(x, |x, block| block.forward(f, x));
        match &self.transition {
            Some(transition) => transition.forward(f, x),
            None => x,
        }
    }
}

/// Stages (conv2 and conv3, with their transitions) that run at output strides up to 8.
const EARLY_STAGES: usize = 2;

/// A whole OSNet.
#[derive(Module, Debug)]
pub struct OsNet {
    stem: NormedConv,
    stages: Vec<Stage>,
    conv5: ConvBn,
    fc: Linear,
}

impl OsNet {
    /// Builds the network of `variant` with Torchreid's key names.
    pub fn load(loader: &mut ParamLoader, variant: Variant) -> Result<Self, ModelError> {
        let ch = variant.channels;
        let stem_spec = ConvSpec::new(3, ch[0], 7).stride(2);
        let stem = if variant.norm == Norm::Batch {
            NormedConv::Batch(loader.conv_bn("conv1.conv", "conv1.bn", stem_spec)?)
        } else {
            NormedConv::Instance(ConvIn {
                conv: loader.conv("conv1.conv", stem_spec, false)?,
                norm: loader.instance_norm("conv1.bn", ch[0])?,
            })
        };

        let mut stages = Vec::with_capacity(3);
        for stage in 0..3 {
            let stage_key = format!("conv{}", stage + 2);
            let (c_in, c_out) = (ch[stage], ch[stage + 1]);
            let mut blocks = Vec::with_capacity(2);
            for index in 0..2 {
                let block_in = match variant.norm {
                    Norm::Batch => false,
                    Norm::Ibn => stage == 0,
                    Norm::Ain => Variant::ain_block_has_in(stage, index),
                };
                let input = if index == 0 { c_in } else { c_out };
                blocks.push(OsBlock::load(
                    loader,
                    &format!("{stage_key}.{index}"),
                    input,
                    c_out,
                    variant.norm,
                    block_in,
                )?);
            }
            let transition = if stage < 2 {
                // OSNet keeps the transition inside the stage's Sequential; OSNet-AIN names it poolN.
                let key = match variant.norm {
                    Norm::Ain => format!("pool{}.0", stage + 2),
                    _ => format!("{stage_key}.2.0"),
                };
                Some(Transition {
                    conv: loader.conv_bn(
                        &format!("{key}.conv"),
                        &format!("{key}.bn"),
                        ConvSpec::new(c_out, c_out, 1),
                    )?,
                })
            } else {
                None
            };
            stages.push(Stage { blocks, transition });
        }
        let conv5 = loader.conv_bn("conv5.conv", "conv5.bn", ConvSpec::new(ch[3], ch[3], 1))?;
        let fc = loader.linear_bn("fc.0", "fc.1", ch[3], FEATURE_DIM)?;
        Ok(Self {
            stem,
            stages,
            conv5,
            fc,
        })
    }

    /// Forward pass `[n, 3, h, w] → [n, 512]`: the features after the fc block, which
    /// Torchreid returns in eval mode and pairs with the logits in train mode.
    pub fn forward<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Vector {
        let map = self.feature_map(f, x);
        self.features_of_map(f, map)
    }

    /// The map before global pooling: conv5's output, Torchreid's `featuremaps`.
    pub fn feature_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let early = self.early_map(f, x);
        self.late_map(f, early)
    }

    /// The stem, conv2 and conv3 with their transitions: the part at output strides up to 8.
    pub fn early_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let stem = self.stem.forward(f, x, Activation::Relu);
        let x = f.stem_max_pool(stem);
        self.stages[..EARLY_STAGES]
            .iter()
            .fold(x, |x, stage| stage.forward(f, x))
    }

    /// conv4 and conv5, from [`OsNet::early_map`]'s output.
    pub fn late_map<F: Flow>(&self, f: &mut F, x: F::Map) -> F::Map {
        let x = self.stages[EARLY_STAGES..]
            .iter()
            .fold(x, |x, stage| stage.forward(f, x));
        f.conv_bn(&self.conv5, x, Activation::Relu)
    }

    /// The features of the map before global pooling: pooled, then the fc block.
    pub fn features_of_map<F: Flow>(&self, f: &mut F, map: F::Map) -> F::Vector {
        let pooled = f.global_avg_pool(map);
        f.linear_relu(&self.fc, pooled)
    }
}
