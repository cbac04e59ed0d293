//! Why a training run stopped.

use std::path::PathBuf;

use super::sampler::SamplerError;
use crate::backend::BackendError;
use crate::data::DataError;
use crate::data::image::ImageError;
use crate::models::ModelError;
use crate::models::checkpoint_writer::WriteError;
use crate::run::RunError;

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The dataset could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The dataset has no training images.
    #[error("{}: the dataset has no train split (no training images found)", root.display())]
    NoTrainSplit {
        /// The dataset's folder.
        root: PathBuf,
    },
    /// Batches cannot be drawn from the train split.
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    /// Device problem.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The network could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A training image could not be read.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The evaluation between epochs failed.
    #[error("evaluation: {0}")]
    Evaluation(#[from] RunError),
    /// A checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] WriteError),
    /// `--resume` names a file that cannot continue this run.
    #[error("cannot resume from {}: {reason}", path.display())]
    Resume {
        /// The checkpoint.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The output folder, or a file in it, is not reidscope's to write.
    #[error(transparent)]
    Folder(#[from] crate::output_dir::OutputError),
    /// An output file could not be written.
    #[error("cannot write {}: {reason}", path.display())]
    Output {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Settings(String),
}
