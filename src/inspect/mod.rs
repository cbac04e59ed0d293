//! Looking inside a model: where it looks in an image (activation maps).

pub mod actmap;
