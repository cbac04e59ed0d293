//! Geometry of a 2-D convolution, shared by the trainable layer and its folded form.

use burn::tensor::ops::ConvOptions;

/// Geometry of a 2-D convolution; padding is `kernel / 2` ("same" for odd kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Channel groups.
    pub groups: usize,
}

impl ConvSpec {
    /// A stride-1, ungrouped convolution.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            groups: 1,
        }
    }

    /// The same convolution with `stride`.
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// A depthwise convolution (one group per channel).
    pub fn depthwise(mut self) -> Self {
        self.groups = self.in_channels;
        self
    }

    /// Zero padding on every side: "same" for odd kernels.
    pub fn padding(&self) -> usize {
        self.kernel / 2
    }

    /// Whether this is a depthwise 3×3 convolution with stride 1 or 2.
    pub fn is_depthwise_3x3(&self) -> bool {
        self.groups > 1
            && self.groups == self.in_channels
            && self.kernel == 3
            && (1..=2).contains(&self.stride)
    }

    /// PyTorch's weight shape `[out, in / groups, k, k]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels / self.groups,
            self.kernel,
            self.kernel,
        ]
    }

    /// Burn's options for this convolution.
    pub fn options(&self) -> ConvOptions<2> {
        let pad = self.padding();
        ConvOptions::new([self.stride; 2], [pad; 2], [1, 1], self.groups)
    }
}
