//! Looking inside a model: where it looks in an image (activation maps), and how it lays out
//! a whole gallery (2-D projections of the features).

pub mod actmap;
pub mod projection;
