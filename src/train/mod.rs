//! Training (in progress): the train split's labels, Torchreid's P×K identity sampler, its
//! training transforms, losses, optimisers and learning-rate schedules, the loss scale of mixed
//! precision and the per-epoch history. The trainable networks, the loop and the `train`
//! command build on these (the training BatchNorm is in `models::batch_norm`).

pub mod augment;
pub mod batches;
pub mod curves;
pub mod data;
pub mod history;
pub mod loss;
pub mod loss_scale;
pub mod optimizer;
pub mod sampler;
pub mod schedule;
