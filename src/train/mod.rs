//! Training: the train split's labels, Torchreid's P×K identity sampler, its training
//! transforms, losses, optimisers and learning-rate schedules, one optimisation step, the loop
//! with its checkpoints, history and curves, and the loss scale of mixed precision.

pub mod augment;
pub mod batches;
pub mod checkpoint;
pub mod curves;
pub mod data;
pub mod error;
pub mod history;
pub mod loss;
pub mod loss_scale;
pub mod optimizer;
pub mod sampler;
pub mod schedule;
pub mod step;
pub mod trainer;

pub use error::TrainError;
pub use trainer::{
    StepProgress, TrainEvent, TrainOutcome, TrainSettings, TrainStart, train, training_backend,
};
