//! The CPU kernels of reidscope's inference executor, over row-major NCHW `f32` buffers:
//! convolutions (1×1 straight from the input planes with AVX2 or AVX-512, else a GEMM per
//! image; a direct depthwise 3×3, Winograd's F(2×2, 3×3) for 3×3 over maps 8 to 15 wide, other
//! convolutions with stride 1 or 2 (3×3, the 7×7 stems) straight from padded planes with AVX2
//! or AVX-512, else GEMMs over phase planes for the stems, one GEMM per group of images over
//! small maps, im2col tiles and a GEMM for the rest), instance normalisation, pooling, fully
//! connected layers and the elementwise passes between them. Each kernel applies the
//! activation that follows it in the network while its output is still in cache. Their
//! vector loops are compiled for AVX-512 or for AVX2 and FMA, chosen at run time.
//!
//! The kernels live in their own crate so that they are compiled with full optimisation in
//! every build profile. Their entry points are not generic, so callers never instantiate
//! them at a lower optimisation level.

mod batch_norm;
mod conv;
mod conv_grad;
#[cfg(test)]
mod conv_reference;
mod depthwise;
mod depthwise_lanes;
mod elementwise;
mod gemm;
mod linear;
mod norm;
mod padded_taps;
mod phase_conv;
mod pointwise;
mod pool;
mod simd;
mod small_maps;
mod tasks;
mod winograd;

pub use batch_norm::{Affine, batch_norm_train, batch_norm_train_backward};
pub use conv::Conv;
pub use elementwise::{activate, add, gate};
pub use linear::linear;
pub use norm::instance_norm;
pub use pool::{avg_pool_2x2, global_avg_pool, max_pool_3x3_s2};

/// The shape `[n, c, h, w]` of a feature map.
pub type Shape = [usize; 4];

/// The activation a kernel applies to its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// None.
    Identity,
    /// `max(0, x)`.
    Relu,
    /// `min(max(0, x), 6)`.
    Relu6,
}

/// Whether a kernel may split its work over rayon's current thread pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Only the calling thread (the caller runs several images side by side).
    One,
    /// Every thread of the current pool.
    Pool,
}
