//! Command implementations of the `reidscope` binary.

pub mod metrics;
