//! A convolution's gradients, for training: with respect to its input and to its weights, from
//! the gradient of its output (a bias's gradient, the output gradient summed, is not here).

use crate::conv::{COLUMNS, TILE, TILE_FLOATS};
use crate::depthwise::{depthwise_3x3, depthwise_3x3_weight_grad};
use crate::gemm::{Strided, matmul};
use crate::tasks::{SharedOutput, for_each, for_each_chunk, tasks_wanted, workers};
use crate::{Activation, Conv, Shape, Threads};

/// Fewest output positions per task of a 1×1 convolution's input gradient.
const MIN_COLUMNS: usize = 64;

impl Conv<'_> {
    /// Whether [`Conv::input_grad`] computes this convolution's input gradient: a 1×1
    /// convolution with stride 1, no padding and one group, or a depthwise 3×3 one with
    /// stride 1.
    pub fn has_input_grad(&self) -> bool {
        self.is_pointwise() || (self.is_depthwise_3x3() && self.stride == 1)
    }

    /// Whether [`Conv::weight_grad`] computes this convolution's weight gradient: one group,
    /// or a depthwise 3×3 convolution.
    pub fn has_weight_grad(&self) -> bool {
        self.groups == 1 || self.is_depthwise_3x3()
    }

    /// Writes into `dx` (`shape`, the input's) the gradient of the input from `grad`, the
    /// gradient of the output (`output_shape(shape)`).
    ///
    /// # Panics
    /// When [`Conv::has_input_grad`] is false, or the lengths do not match the shapes.
    pub fn input_grad(&self, grad: &[f32], shape: Shape, dx: &mut [f32], threads: Threads) {
        assert!(
            self.has_input_grad(),
            "an input gradient this kernel computes"
        );
        let out_shape = self.checked_shapes(shape, dx.len(), grad.len());
        if self.is_pointwise() {
            self.pointwise_input_grad(grad, shape, dx, threads);
        } else {
            // Stride 1 and padding 1: the input gradient is the output gradient convolved
            // with each kernel turned by 180°.
            let turned: Vec<f32> = self
                .weight
                .chunks_exact(9)
                .flat_map(|taps| taps.iter().rev().copied())
                .collect();
            let zero = vec![0.0; shape[1]];
            let weights = (&turned[..], &zero[..]);
            depthwise_3x3(
                weights,
                1,
                (grad, out_shape),
                dx,
                Activation::Identity,
                threads,
            );
        }
    }

    /// Writes into `dw` (the weight's shape) the gradient of the weights from `x` (`shape`)
    /// and `grad`, the gradient of the output.
    ///
    /// # Panics
    /// When [`Conv::has_weight_grad`] is false, or the lengths do not match the shapes.
    pub fn weight_grad(
        &self,
        (x, shape): (&[f32], Shape),
        grad: &[f32],
        dw: &mut [f32],
        threads: Threads,
    ) {
        assert!(
            self.has_weight_grad(),
            "a weight gradient this kernel computes"
        );
        self.checked_shapes(shape, x.len(), grad.len());
        assert_eq!(
            dw.len(),
            self.weight.len(),
            "weight gradient of the weight's shape"
        );
        if self.groups == 1 {
            self.gemm_weight_grad((x, shape), grad, dw, threads);
        } else {
            depthwise_3x3_weight_grad(self.stride, (x, shape), grad, dw, threads);
        }
    }

    /// The output shape, once the input and output lengths are checked against the shapes.
    fn checked_shapes(&self, shape: Shape, input_len: usize, output_len: usize) -> Shape {
        let out_shape = self.output_shape(shape);
        assert_eq!(shape[1], self.in_channels, "input channels");
        assert_eq!(input_len, shape.iter().product(), "input of its shape");
        assert_eq!(
            output_len,
            out_shape.iter().product(),
            "output of its shape"
        );
        out_shape
    }

    /// `dx = wᵀ · grad` per image, split into tasks by positions.
    fn pointwise_input_grad(&self, grad: &[f32], shape: Shape, dx: &mut [f32], threads: Threads) {
        let [n, c, h, w] = shape;
        let (positions, out_c) = (h * w, self.out_channels());
        let tiles = tasks_wanted(threads)
            .div_ceil(n.max(1))
            .min(positions.div_ceil(MIN_COLUMNS))
            .max(1);
        let width = positions.div_ceil(tiles);
        let output = SharedOutput::new(dx);
        for_each(threads, n * tiles, |task| {
            let (b, tile) = (task / tiles, task % tiles);
            let cols = tile * width..((tile + 1) * width).min(positions);
            if cols.is_empty() {
                return;
            }
            let g = &grad[b * out_c * positions + cols.start..(b + 1) * out_c * positions];
            // SAFETY: task (b, tile) writes positions `cols` of image `b`'s gradient, which no
            // other task writes; `wᵀ` is [c, out_c] within `weight`, `g` [out_c, cols] at row
            // stride `positions` within image `b`'s output gradient.
            unsafe {
                matmul(
                    [c, cols.len(), out_c],
                    Strided::rows(output.at(b * c * positions + cols.start), positions),
                    false,
                    Strided::transposed(self.weight.as_ptr(), c),
                    Strided::rows(g.as_ptr(), positions),
                );
            }
        });
    }

    /// `dw = Σ grad · colsᵀ` over images and im2col tiles (the input planes themselves for a
    /// 1×1 convolution), each thread summing its share of the images, then the shares added.
    fn gemm_weight_grad(
        &self,
        (x, shape): (&[f32], Shape),
        grad: &[f32],
        dw: &mut [f32],
        threads: Threads,
    ) {
        let [n, c, h, w] = shape;
        let [_, out_c, oh, ow] = self.output_shape(shape);
        let (positions, depth) = (oh * ow, c * self.kernel * self.kernel);
        let pointwise = self.is_pointwise();
        let width = if pointwise {
            positions
        } else {
            (TILE_FLOATS / depth)
                .clamp(COLUMNS.start, COLUMNS.end)
                .min(positions)
        };
        let shares = workers(threads).min(n);
        let mut sums = vec![0.0f32; shares * dw.len()];
        for_each_chunk(threads, &mut sums, dw.len(), |share, sum| {
            let mut tile = TILE.with_borrow_mut(std::mem::take);
            for b in share * n / shares..(share + 1) * n / shares {
                let image = &x[b * c * h * w..(b + 1) * c * h * w];
                let g = &grad[b * out_c * positions..(b + 1) * out_c * positions];
                for start in (0..positions).step_by(width) {
                    let cols = start..(start + width).min(positions);
                    let (rhs, rhs_row) = if pointwise {
                        (image[cols.start..].as_ptr(), positions)
                    } else {
                        self.im2col_tile(image, ([h, w], [oh, ow]), 0, cols.clone(), &mut tile);
                        (tile.as_ptr(), cols.len())
                    };
                    // SAFETY: `sum` is [out_c, depth]; `g` is [out_c, cols] at row stride
                    // `positions`; the columns' transpose [cols, depth] lies within the image
                    // (its planes at stride `positions`) or the tile ([depth, cols]).
                    unsafe {
                        matmul(
                            [out_c, depth, cols.len()],
                            Strided::rows(sum.as_mut_ptr(), depth),
                            true,
                            Strided::rows(g[cols.start..].as_ptr(), positions),
                            Strided::transposed(rhs, rhs_row),
                        );
                    }
                }
            }
            TILE.with_borrow_mut(|kept| *kept = tile);
        });
        let (first, rest) = sums.split_at(dw.len());
        dw.copy_from_slice(first);
        for share in rest.chunks_exact(dw.len()) {
            dw.iter_mut().zip(share).for_each(|(d, s)| *d += s);
        }
    }
}
