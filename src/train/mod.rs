//! Training (in progress): the train split's labels, Torchreid's P×K identity sampler, its
//! training transforms and losses. The trainable networks, the optimiser loop and the `train`
//! command build on these.

pub mod augment;
pub mod data;
pub mod loss;
pub mod sampler;
