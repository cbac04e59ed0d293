//! The networks reidscope can build, by their Torchreid names.

use crate::names::named_enum;

named_enum! {
    /// The networks reidscope can build, by their Torchreid names.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ModelName("model") {
        /// OSNet x1.0.
        OsnetX1_0 = "osnet_x1_0",
        /// OSNet x0.75.
        OsnetX0_75 = "osnet_x0_75",
        /// OSNet x0.5.
        OsnetX0_5 = "osnet_x0_5",
        /// OSNet x0.25.
        OsnetX0_25 = "osnet_x0_25",
        /// OSNet-IBN x1.0 (instance norm in the stem and the first stage).
        OsnetIbnX1_0 = "osnet_ibn_x1_0",
        /// OSNet-AIN x1.0 (searched instance-norm placement).
        OsnetAinX1_0 = "osnet_ain_x1_0",
        /// ResNet-50 (Torchreid / torchvision / triplet-baseline checkpoints).
        Resnet50 = "resnet50",
        /// MobileNetV2 x1.0 (Torchreid or pytorch-mobilenet-v2 checkpoints).
        Mobilenetv2X1_0 = "mobilenetv2_x1_0",
    }
}

impl ModelName {
    /// Length of the feature vector the network returns.
    pub fn feature_dim(self) -> usize {
        match self {
            Self::Resnet50 => 2048,
            Self::Mobilenetv2X1_0 => 1280,
            _ => 512,
        }
    }
}
