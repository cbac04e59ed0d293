//! Values shared by the tests of the CPU kernels against Burn's own operations: seeded random
//! inputs, flex tensors, tolerant comparison and the convolution geometries to cover.

use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Convolutions at odd sizes: (input shape, output channels, kernel, stride, padding, groups).
pub const CONV_CASES: [([usize; 4], usize, usize, usize, usize, usize); 23] = [
    ([1, 5, 1, 1], 7, 1, 1, 0, 1),     // 1×1 plane, batch 1
    ([3, 16, 5, 11], 24, 1, 1, 0, 1),  // odd width
    ([1, 8, 40, 41], 9, 1, 1, 0, 1),   // several column tiles
    ([2, 8, 7, 9], 12, 1, 2, 0, 1),    // strided 1×1 (a downsampling shortcut)
    ([2, 6, 9, 13], 10, 3, 1, 1, 1),   // 3×3 (Winograd: a map at most 16 wide)
    ([1, 4, 1, 1], 6, 3, 2, 1, 1),     // 1×1 plane through a 3×3 kernel
    ([2, 3, 41, 69], 5, 7, 2, 3, 1),   // a stem: several im2col tiles
    ([1, 2, 1, 1], 3, 7, 2, 3, 1),     // a stem on a 1×1 plane: windows mostly padding
    ([2, 3, 5, 11], 3, 3, 1, 1, 3),    // depthwise
    ([1, 4, 9, 13], 4, 3, 2, 1, 4),    // depthwise, strided
    ([2, 5, 8, 6], 5, 3, 2, 1, 5),     // depthwise, strided, even sides
    ([1, 3, 2, 1], 3, 3, 2, 1, 3),     // depthwise, strided, a 2×1 plane
    ([1, 2, 20, 37], 2, 3, 1, 1, 2),   // depthwise over several vector blocks
    ([1, 2, 130, 40], 2, 3, 1, 1, 2),  // depthwise in several bands of rows
    ([1, 4, 1, 1], 4, 3, 1, 1, 4),     // depthwise on a 1×1 plane
    ([1, 4, 6, 7], 6, 3, 1, 1, 2),     // grouped
    ([1, 3, 6, 5], 3, 5, 1, 2, 3),     // depthwise 5×5, through im2col
    ([1, 2, 6, 7], 2, 3, 2, 1, 2),     // depthwise, strided; then one row less: the same
    ([1, 2, 5, 7], 2, 3, 2, 1, 2),     // scratch layout, but other values written
    ([2, 5, 9, 15], 7, 3, 1, 1, 1),    // 3×3 by Winograd, odd sides
    ([3, 16, 21, 12], 24, 3, 1, 1, 1), // Winograd, blocks of tiles across rows and images
    ([1, 8, 5, 8], 8, 3, 1, 1, 1),     // Winograd on the narrowest map it takes
    ([1, 6, 9, 21], 10, 3, 1, 1, 1),   // 3×3 through im2col: a wider map
];

/// `len` values drawn uniformly from [-2, 2) with `seed`.
pub fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-2.0f32..2.0)).collect()
}

/// A flex tensor of `shape` holding `values`.
pub fn tensor<const D: usize>(values: &[f32], shape: [usize; D]) -> Tensor<D> {
    tensor_on(values, shape, &Device::flex())
}

/// A tensor of `shape` holding `values` on `device`.
pub fn tensor_on<const D: usize>(values: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), shape),
        (device, DType::F32),
    )
}

/// A tensor's values.
pub fn values<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.try_into_data().unwrap().try_into_vec::<f32>().unwrap()
}

/// Asserts that `got` equals `expected` within `tolerance`, relative above 1.
pub fn assert_close(got: &[f32], expected: &[f32], tolerance: f32, what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (g - e).abs() <= tolerance * (1.0 + e.abs()) || (g.is_nan() && e.is_nan()),
            "{what}, element {i}: {g} vs {e}"
        );
    }
}
