//! Command implementations of the `reidscope` binary.

pub mod actmap;
pub mod args;
pub mod bench;
pub mod demo;
pub mod devices;
pub mod eval;
pub mod export;
pub mod extract;
pub mod gui;
pub mod metrics;
pub mod progress;
pub mod train;
