//! Training (in progress): the train split's labels, Torchreid's P×K identity sampler, its
//! training transforms, losses, optimisers and learning-rate schedules. The trainable networks,
//! the loop and the `train` command build on these.

pub mod augment;
pub mod data;
pub mod loss;
pub mod optimizer;
pub mod sampler;
pub mod schedule;
