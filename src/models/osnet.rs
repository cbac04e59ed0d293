//! OSNet (Zhou et al., ICCV 2019) and its IBN and AIN variants, as Torchreid defines them.

use burn::tensor::Tensor;

use crate::models::error::ModelError;
use crate::models::layers::{
    Conv, ConvSpec, InstanceNorm, Linear, Loader, avg_pool_2x2, global_avg_pool, relu, sigmoid,
    stem_max_pool,
};
use crate::models::name::ModelName;

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
#[derive(Debug)]
struct LightConv {
    pointwise: Conv,
    depthwise: Conv,
}

impl LightConv {
    fn load(loader: &mut Loader, key: &str, channels: usize) -> Result<Self, ModelError> {
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

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.depthwise.forward_relu(self.pointwise.forward(x))
    }
}

/// The channel gate shared by an OSBlock's streams.
#[derive(Debug)]
struct ChannelGate {
    fc1: Linear,
    fc2: Linear,
}

impl ChannelGate {
    fn load(loader: &mut Loader, key: &str, channels: usize) -> Result<Self, ModelError> {
        let reduced = channels / 16;
        Ok(Self {
            fc1: loader.pointwise_as_linear(&format!("{key}.fc1"), channels, reduced)?,
            fc2: loader.pointwise_as_linear(&format!("{key}.fc2"), reduced, channels)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, _, _] = x.dims();
        let pooled = global_avg_pool(x.clone());
        let gates = sigmoid(self.fc2.forward(relu(self.fc1.forward(pooled))));
        x * gates.reshape([n, c, 1, 1])
    }
}

/// Omni-scale residual block.
#[derive(Debug)]
struct OsBlock {
    conv1: Conv,
    streams: Vec<Vec<LightConv>>,
    gate: ChannelGate,
    conv3: Conv,
    in_residual: Option<InstanceNorm>,
    downsample: Option<Conv>,
    in_after_add: Option<InstanceNorm>,
}

impl OsBlock {
    fn load(
        loader: &mut Loader,
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
        let (conv3, in_residual) = if ain_in {
            (
                loader.conv(&format!("{key}.conv3.conv"), conv3_spec, false)?,
                Some(loader.instance_norm(&format!("{key}.IN"), out_channels)?),
            )
        } else {
            (
                loader.conv_bn(
                    &format!("{key}.conv3.conv"),
                    &format!("{key}.conv3.bn"),
                    conv3_spec,
                )?,
                None,
            )
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
            in_residual,
            downsample,
            in_after_add,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x1 = relu(self.conv1.forward(x.clone()));
        let x2 = self
            .streams
            .iter()
            .map(|stream| {
                let y = stream.iter().fold(x1.clone(), |y, layer| layer.forward(y));
                self.gate.forward(y)
            })
            .reduce(|a, b| a + b)
            .expect("an OSBlock has streams");
        let mut x3 = self.conv3.forward(x2);
        if let Some(norm) = &self.in_residual {
            x3 = norm.forward(x3);
        }
        let identity = match &self.downsample {
            Some(down) => down.forward(x),
            None => x,
        };
        let out = x3 + identity;
        match &self.in_after_add {
            Some(norm) => norm.forward_relu(out),
            None => relu(out),
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
#[derive(Debug)]
struct Transition {
    conv: Conv,
}

impl Transition {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        avg_pool_2x2(relu(self.conv.forward(x)))
    }
}

/// The stem's normalisation: BatchNorm (folded into the conv) or InstanceNorm.
#[derive(Debug)]
struct Stem {
    conv: Conv,
    instance_norm: Option<InstanceNorm>,
}

/// A whole OSNet.
#[derive(Debug)]
pub struct OsNet {
    stem: Stem,
    stages: Vec<(Vec<OsBlock>, Option<Transition>)>,
    conv5: Conv,
    fc: Linear,
}

impl OsNet {
    /// Builds the network of `variant` with Torchreid's key names.
    pub fn load(loader: &mut Loader, variant: Variant) -> Result<Self, ModelError> {
        let ch = variant.channels;
        let stem_spec = ConvSpec::new(3, ch[0], 7).stride(2);
        let stem = if variant.norm == Norm::Batch {
            Stem {
                conv: loader.conv_bn("conv1.conv", "conv1.bn", stem_spec)?,
                instance_norm: None,
            }
        } else {
            Stem {
                conv: loader.conv("conv1.conv", stem_spec, false)?,
                instance_norm: Some(loader.instance_norm("conv1.bn", ch[0])?),
            }
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
            stages.push((blocks, transition));
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

    /// Eval-mode forward pass: `[n, 3, h, w] → [n, 512]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = stem_max_pool(match &self.stem.instance_norm {
            Some(norm) => norm.forward_relu(self.stem.conv.forward(x)),
            None => self.stem.conv.forward_relu(x),
        });
        for (blocks, transition) in &self.stages {
            for block in blocks {
                x = block.forward(x);
            }
            if let Some(transition) = transition {
                x = transition.forward(x);
            }
        }
        let x = relu(self.conv5.forward(x));
        relu(self.fc.forward(global_avg_pool(x)))
    }
}
