//! Matrix products over strided `f32` operands, by the `gemm` crate.

use crate::Threads;

/// A matrix in memory: its first value and the steps between rows and between columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strided<P> {
    /// The value at row 0, column 0.
    pub ptr: P,
    /// Step from one row to the next.
    pub row: usize,
    /// Step from one column to the next (1 for a row-major matrix, the row length of the
    /// stored matrix for a transposed view).
    pub column: usize,
}

impl<P> Strided<P> {
    /// A row-major matrix with rows `row` values apart.
    pub(crate) fn rows(ptr: P, row: usize) -> Self {
        Self {
            ptr,
            row,
            column: 1,
        }
    }

    /// The transpose of a row-major matrix with rows `row` values apart.
    pub(crate) fn transposed(ptr: P, row: usize) -> Self {
        Self {
            ptr,
            row: 1,
            column: row,
        }
    }
}

/// `dst[m, n] = lhs[m, k] · rhs[k, n]`, or `dst += lhs · rhs` when `accumulate`, on the
/// calling thread.
///
/// # Safety
/// The operands must hold the rows and columns their sizes and strides reach, and `dst` must
/// not overlap the others.
pub(crate) unsafe fn matmul(
    dims: [usize; 3],
    dst: Strided<*mut f32>,
    accumulate: bool,
    lhs: Strided<*const f32>,
    rhs: Strided<*const f32>,
) {
    // SAFETY: as the caller promises.
    unsafe { product(dims, dst, accumulate, (lhs, rhs), gemm::Parallelism::None) }
}

/// [`matmul`], split by the `gemm` crate over `parallelism`.
///
/// # Safety
/// As [`matmul`].
unsafe fn product(
    [m, n, k]: [usize; 3],
    dst: Strided<*mut f32>,
    accumulate: bool,
    (lhs, rhs): (Strided<*const f32>, Strided<*const f32>),
    parallelism: gemm::Parallelism,
) {
    // SAFETY: as the caller promises.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.column as isize,
            dst.row as isize,
            accumulate,
            lhs.ptr,
            lhs.column as isize,
            lhs.row as isize,
            rhs.ptr,
            rhs.column as isize,
            rhs.row as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `product = lhs · rhs` for row-major operands held whole in their slices: `lhs` is
/// `[m, k]`, `rhs` `[k, n]` and `product` `[m, n]`; over the pool when `threads` allows.
pub(crate) fn matmul_rows(
    product_rows: &mut [f32],
    lhs: &[f32],
    rhs: &[f32],
    [m, n, k]: [usize; 3],
    threads: Threads,
) {
    assert!(
        product_rows.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n,
        "operands of their sizes"
    );
    let parallelism = match threads {
        Threads::One => gemm::Parallelism::None,
        Threads::Pool => gemm::Parallelism::Rayon(rayon::current_num_threads()),
    };
    // SAFETY: each operand holds the rows and columns its size reaches (asserted), and
    // `product_rows`, a unique borrow, overlaps neither of the others.
    unsafe {
        product(
            [m, n, k],
            Strided::rows(product_rows.as_mut_ptr(), n),
            false,
            (
                Strided::rows(lhs.as_ptr(), k),
                Strided::rows(rhs.as_ptr(), n),
            ),
            parallelism,
        );
    }
}
