//! Why a model could not be loaded or run.

use std::path::PathBuf;

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
    /// The model's features of an image cannot be ranked (NaN, infinite or overflowing): the
    /// weights are broken.
    #[error(
        "the features of {} are unusable: {reason} (are the model's weights broken?)",
        image.display()
    )]
    BadFeatures {
        /// The image.
        image: PathBuf,
        /// What is wrong with them.
        reason: String,
    },
    /// An invalid build option.
    #[error("{0}")]
    InvalidOption(String),
    /// An input smaller than the network's output stride.
    #[error(
        "an input of {height}x{width} is too small for {model}: it shrinks its input {stride}-fold, so --height and --width must be at least {stride}"
    )]
    InputTooSmall {
        /// The network.
        model: crate::models::ModelName,
        /// The input height.
        height: u32,
        /// The input width.
        width: u32,
        /// The network's output stride.
        stride: usize,
    },
    /// The device failed while running the network.
    #[error("inference failed on the device: {0}")]
    Device(String),
}
