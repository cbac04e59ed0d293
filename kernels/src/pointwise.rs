//! 1×1 convolutions straight from the input planes (x86-64 with AVX2 and FMA, in AVX-512
//! where the processor has it).
//!
//! Each output value is `act(bias[r] + Σ_k weight[r, k] · x[k, p])`. A tile of output
//! channels by vectors of positions is summed in registers (six by two vectors of eight
//! lanes with AVX2; six by four, or twelve by two over deeper inputs, of sixteen lanes with
//! AVX-512): per input channel, one vector load per position vector and one broadcast weight
//! per output channel. The weights are read where they lie; the input columns of each block
//! are copied into a contiguous panel (input rows a multiple of 4 KiB apart share cache
//! sets, and the processor's prefetcher follows only a few of them); the bias and the
//! activation (and, for a residual block's last convolution, the residual's value, before the
//! activation) are applied before each sum is stored once, and no output is zeroed first. The
//! weights (a few dozen KiB for the networks' 1×1 layers) and the panel stay in cache across
//! the blocks of output channels.
//!
//! The same tiles sum over input rows that a table of offsets places ([`taps`]): the shifted
//! runs of padded planes that 3×3 convolutions read (`padded_taps.rs`).

use std::cell::RefCell;
use std::ops::Range;

use crate::Activation;
use crate::elementwise::Write;
use crate::simd::Isa;

/// Most columns copied into the panel at once: four vectors of sixteen lanes, or four AVX2
/// blocks of two vectors of eight.
const PANEL_COLUMNS: usize = 64;

thread_local! {
    /// The thread's copy of one block of input columns.
    static PANEL: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The rows of a 1×1 convolution's weights that one call computes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rows<'a> {
    /// `[rows, depth]`, row-major.
    pub weight: &'a [f32],
    /// One per row.
    pub bias: &'a [f32],
    /// Input channels summed over.
    pub depth: usize,
}

/// `out[r, p] = act(bias[r] + Σ_k weight[r, k] · x[k, p])` for every row `r` of `rows` and
/// every position `p` in `cols` (with `+ out[r, p]` inside the activation where `write` is
/// [`Write::Add`]), with `isa`'s instructions. Input channel `k` starts at `x + k · x_step`,
/// output row `r` at `out + r · out_step`.
///
/// # Safety
/// The processor runs `isa`; `x` holds `depth` rows of at least `cols.end` values
/// `x_step` apart, `out` holds `rows` rows of at least `cols.end` values `out_step` apart,
/// and the output rows overlap neither each other nor the input.
pub(crate) unsafe fn pointwise(
    isa: Isa,
    rows: Rows,
    (x, x_step): (*const f32, usize),
    (out, out_step): (*mut f32, usize),
    cols: Range<usize>,
    (act, write): (Activation, Write),
) {
    assert!(
        rows.weight.len() == rows.bias.len() * rows.depth,
        "weights of {} rows",
        rows.bias.len()
    );
    #[cfg(target_arch = "x86_64")]
    PANEL.with_borrow_mut(|panel| {
        panel.resize(rows.depth * PANEL_COLUMNS, 0.0);
        let call = x86::Call {
            rows,
            x: (x, x_step),
            out: (out, out_step),
            cols,
            panel: panel.as_mut_ptr(),
            range: act.range(),
            clamped: act != Activation::Identity,
            adding: write == Write::Add,
        };
        // SAFETY: as the caller promises; the panel holds `depth` rows of the widest block.
        unsafe {
            match isa {
                Isa::Avx2 => x86::avx2(call),
                Isa::Avx512 => x86::avx512(call),
            }
        }
    });
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (rows, x, x_step, out, out_step, cols, act, write);
        unreachable!("{isa:?} runs on x86-64 only");
    }
}

/// Where each output row of [`taps`] reads its input rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Taps<'a> {
    /// Where input row `k` of the sum starts, from the input's first value.
    pub offsets: &'a [usize],
    /// Values from one output row's input rows to the next output row's.
    pub row_step: usize,
    /// Output positions per output row.
    pub width: usize,
}

/// `out[r, y · width + j] = act(bias[r] + Σ_k weight[r, k] · x[offsets[k] + y · row_step + j])`
/// for every row `r` of `rows`, output row `y` in `out_rows` and `j < width` (`taps`), with
/// `isa`'s instructions: a convolution whose input rows are shifted runs of one padded map.
///
/// # Safety
/// The processor runs `isa`; `taps.offsets` has `depth` offsets and every value the sum
/// reads lies in `x`'s allocation; `out` holds `rows` rows of at least
/// `out_rows.end · width` values `out_step` apart, overlapping neither each other nor the
/// input.
pub(crate) unsafe fn taps(
    isa: Isa,
    rows: Rows,
    (x, taps): (*const f32, Taps),
    (out, out_step): (*mut f32, usize),
    out_rows: Range<usize>,
    act: Activation,
) {
    assert!(
        rows.weight.len() == rows.bias.len() * rows.depth && taps.offsets.len() == rows.depth,
        "weights and offsets of {} rows",
        rows.bias.len()
    );
    #[cfg(target_arch = "x86_64")]
    {
        let call = x86::Call {
            rows,
            x: (x, 0),
            out: (out, out_step),
            cols: 0..0,
            panel: std::ptr::null_mut(),
            range: act.range(),
            clamped: act != Activation::Identity,
            adding: false,
        };
        // SAFETY: as the caller promises; the call reads no panel.
        unsafe {
            match isa {
                Isa::Avx2 => x86::avx2_taps(call, taps, out_rows),
                Isa::Avx512 => x86::avx512_taps(call, taps, out_rows),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (rows, x, taps, out, out_step, out_rows, act);
        unreachable!("{isa:?} runs on x86-64 only");
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{PANEL_COLUMNS, Rows, Taps};

    /// Output channels summed at a time by the tiles that finish a call's rows.
    const ROWS: usize = 6;

    /// Input rows at least this many values (4 KiB) apart share first-level cache sets: a
    /// narrow block reads a single cache line of each, which the cache does not keep, so
    /// AVX2 copies four blocks' columns of each row at once.
    const FAR_ROWS: usize = 1024;

    /// Most input channels for AVX-512's wider blocks of columns (a 32 KiB panel).
    const NARROW_PANEL_DEPTH: usize = 128;

    /// Where a tile reads its columns: the input's row `k` starts at `ptr + k · step`, or at
    /// `ptr + offsets[k]` where `offsets` is not null, and the tile's first column is at `at`
    /// in each; each of the tile's vectors of columns lies `next_vector` values after the one
    /// before (a vector's width, or, where each vector is one output row, a row's step).
    #[derive(Clone, Copy)]
    struct Input {
        ptr: *const f32,
        step: usize,
        offsets: *const usize,
        at: usize,
        next_vector: usize,
    }

    impl Input {
        /// Rows `step` values apart, the tile's vectors side by side.
        fn strided<V: Lanes>(ptr: *const f32, step: usize, at: usize) -> Self {
            let offsets = std::ptr::null();
            Self {
                ptr,
                step,
                offsets,
                at,
                next_vector: V::WIDTH,
            }
        }

        /// The start of row `k`.
        ///
        /// # Safety
        /// Where `offsets` is not null, it holds at least `k + 1` offsets.
        #[inline(always)]
        unsafe fn row(&self, k: usize) -> *const f32 {
            unsafe {
                let offset = if self.offsets.is_null() {
                    k * self.step
                } else {
                    *self.offsets.add(k)
                };
                self.ptr.add(offset + self.at)
            }
        }
    }

    /// One call's operands (see [`super::pointwise`]).
    pub(super) struct Call<'a> {
        pub rows: Rows<'a>,
        pub x: (*const f32, usize),
        pub out: (*mut f32, usize),
        pub cols: Range<usize>,
        /// Room for `depth` rows of a block of columns.
        pub panel: *mut f32,
        /// The activation's interval.
        pub range: (f32, f32),
        /// Whether to clamp to `range` at all.
        pub clamped: bool,
        /// Whether the sums are added to the output's values (before the activation).
        pub adding: bool,
    }

    /// A vector of `f32` lanes and what the kernel does with it. The methods are inlined
    /// into the functions compiled for their instructions.
    trait Lanes: Copy {
        /// Lanes per vector.
        const WIDTH: usize;
        /// Which lanes a partial vector holds.
        type Mask: Copy;
        unsafe fn first(count: usize) -> Self::Mask;
        unsafe fn zero() -> Self;
        unsafe fn splat(v: f32) -> Self;
        unsafe fn load(p: *const f32) -> Self;
        unsafe fn load_part(p: *const f32, mask: Self::Mask) -> Self;
        /// `self + a · b`, rounded once.
        unsafe fn mul_add(self, a: Self, b: Self) -> Self;
        unsafe fn add(self, other: Self) -> Self;
        /// Lane by lane into `[lo, hi]`, NaN kept: each instruction returns its second
        /// operand when one of them is NaN.
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self;
        unsafe fn store(self, p: *mut f32);
        unsafe fn store_part(self, p: *mut f32, mask: Self::Mask);
    }

    impl Lanes for __m256 {
        const WIDTH: usize = 8;
        type Mask = __m256i;
        #[inline(always)]
        unsafe fn first(count: usize) -> __m256i {
            unsafe {
                let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                _mm256_cmpgt_epi32(_mm256_set1_epi32(count as i32), lanes)
            }
        }
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { _mm256_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            unsafe { _mm256_set1_ps(v) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn load_part(p: *const f32, mask: __m256i) -> Self {
            unsafe { _mm256_maskload_ps(p, mask) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, a: Self, b: Self) -> Self {
            unsafe { _mm256_fmadd_ps(a, b, self) }
        }
        #[inline(always)]
        unsafe fn add(self, other: Self) -> Self {
            unsafe { _mm256_add_ps(self, other) }
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            unsafe { _mm256_min_ps(hi, _mm256_max_ps(lo, self)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self) }
        }
        #[inline(always)]
        unsafe fn store_part(self, p: *mut f32, mask: __m256i) {
            unsafe { _mm256_maskstore_ps(p, mask, self) }
        }
    }

    impl Lanes for __m512 {
        const WIDTH: usize = 16;
        type Mask = __mmask16;
        #[inline(always)]
        unsafe fn first(count: usize) -> __mmask16 {
            ((1u32 << count) - 1) as __mmask16
        }
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { _mm512_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            unsafe { _mm512_set1_ps(v) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn load_part(p: *const f32, mask: __mmask16) -> Self {
            unsafe { _mm512_maskz_loadu_ps(mask, p) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, a: Self, b: Self) -> Self {
            unsafe { _mm512_fmadd_ps(a, b, self) }
        }
        #[inline(always)]
        unsafe fn add(self, other: Self) -> Self {
            unsafe { _mm512_add_ps(self, other) }
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            unsafe { _mm512_min_ps(hi, _mm512_max_ps(lo, self)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self) }
        }
        #[inline(always)]
        unsafe fn store_part(self, p: *mut f32, mask: __mmask16) {
            unsafe { _mm512_mask_storeu_ps(p, mask, self) }
        }
    }

    /// [`super::pointwise`] eight lanes wide: six rows by two vectors of positions, packed
    /// four blocks at a time from far-apart rows.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(call: Call) {
        // SAFETY: as the caller promises.
        unsafe {
            if call.adding {
                columns::<__m256, 2, 6, 4, true>(&call)
            } else {
                columns::<__m256, 2, 6, 4, false>(&call)
            }
        }
    }

    /// [`super::pointwise`] sixteen lanes wide: six rows by four vectors of positions, or,
    /// over more than [`NARROW_PANEL_DEPTH`] input channels, twelve rows by two vectors, so
    /// the panel of input columns stays in the first-level cache.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn avx512(call: Call) {
        // SAFETY: as the caller promises.
        unsafe {
            match (call.rows.depth <= NARROW_PANEL_DEPTH, call.adding) {
                (true, false) => columns::<__m512, 4, 6, 1, false>(&call),
                (true, true) => columns::<__m512, 4, 6, 1, true>(&call),
                (false, false) => columns::<__m512, 2, 12, 1, false>(&call),
                (false, true) => columns::<__m512, 2, 12, 1, true>(&call),
            }
        }
    }

    /// [`super::taps`] eight lanes wide: six rows by two vectors of positions.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2_taps(call: Call, taps: Taps, out_rows: Range<usize>) {
        // SAFETY: as the caller promises.
        unsafe { tap_rows::<__m256, 2, 6>(&call, taps, out_rows) }
    }

    /// [`super::taps`] sixteen lanes wide: twelve rows by two vectors of positions (output
    /// rows are often 32 positions wide).
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn avx512_taps(call: Call, taps: Taps, out_rows: Range<usize>) {
        // SAFETY: as the caller promises.
        unsafe { tap_rows::<__m512, 2, 12>(&call, taps, out_rows) }
    }

    /// Each output row of `out_rows`, `R` rows of the weights at a time: blocks of `WIDE`
    /// vectors, then single vectors and a partial one, read where `taps` says. Output rows
    /// exactly one vector wide (ResNet-50's 16-wide maps with AVX-512) go `WIDE` rows per tile,
    /// one vector each, so a tile still sums `WIDE` vectors per weight it broadcasts.
    #[inline(always)]
    unsafe fn tap_rows<V: Lanes, const WIDE: usize, const R: usize>(
        call: &Call,
        taps: Taps,
        out_rows: Range<usize>,
    ) {
        let (block, width) = (WIDE * V::WIDTH, taps.width);
        let input = |at, next_vector| Input {
            ptr: call.x.0,
            step: 0,
            offsets: taps.offsets.as_ptr(),
            at,
            next_vector,
        };
        let mut first = out_rows.start;
        unsafe {
            if width == V::WIDTH {
                // Output rows side by side in the output, `row_step` apart in the input.
                while first + WIDE <= out_rows.end {
                    let (at, p) = (first * taps.row_step, first * width);
                    rows::<V, WIDE, false, R, false>(call, input(at, taps.row_step), p, width);
                    first += WIDE;
                }
            }
            for y in first..out_rows.end {
                let (at, p) = (y * taps.row_step, y * width);
                let mut j = 0;
                while j + block <= width {
                    rows::<V, WIDE, false, R, false>(
                        call,
                        input(at + j, V::WIDTH),
                        p + j,
                        V::WIDTH,
                    );
                    j += block;
                }
                while j + V::WIDTH <= width {
                    rows::<V, 1, false, R, false>(call, input(at + j, V::WIDTH), p + j, V::WIDTH);
                    j += V::WIDTH;
                }
                if j < width {
                    rows::<V, 1, true, R, false>(call, input(at + j, V::WIDTH), p + j, width - j);
                }
            }
        }
    }

    /// Every column of the call, `R` rows at a time: blocks of `WIDE` vectors, first copied
    /// into the panel (`BLOCKS` at a time where the input rows lie [`FAR_ROWS`] apart or
    /// more), then single vectors and a partial one read from the input itself.
    #[inline(always)]
    unsafe fn columns<
        V: Lanes,
        const WIDE: usize,
        const R: usize,
        const BLOCKS: usize,
        const ADD: bool,
    >(
        call: &Call,
    ) {
        let block = WIDE * V::WIDTH;
        assert!(BLOCKS * block <= PANEL_COLUMNS, "blocks that fit the panel");
        let (x, x_step) = call.x;
        let mut p = call.cols.start;
        unsafe {
            while p + block <= call.cols.end {
                let blocks = if x_step >= FAR_ROWS && p + BLOCKS * block <= call.cols.end {
                    BLOCKS
                } else {
                    1
                };
                pack::<V, WIDE>(call, p, blocks);
                for j in 0..blocks {
                    let panel = call.panel.cast_const().add(j * call.rows.depth * block);
                    let panel = Input::strided::<V>(panel, block, 0);
                    rows::<V, WIDE, false, R, ADD>(call, panel, p + j * block, V::WIDTH);
                }
                p += blocks * block;
            }
            while p + V::WIDTH <= call.cols.end {
                rows::<V, 1, false, R, ADD>(call, Input::strided::<V>(x, x_step, p), p, V::WIDTH);
                p += V::WIDTH;
            }
            if p < call.cols.end {
                rows::<V, 1, true, R, ADD>(
                    call,
                    Input::strided::<V>(x, x_step, p),
                    p,
                    call.cols.end - p,
                );
            }
        }
    }

    /// Copies `blocks` blocks of the input's columns from `p` into the panel, block after
    /// block, each one row after the other, and asks for the next blocks' columns in the
    /// cache. The input rows lie far apart (often a multiple of 4 KiB, so they share cache
    /// sets), more of them than the processor's own prefetcher follows; each row's columns
    /// are read in one contiguous run, and each block of the panel is contiguous.
    #[inline(always)]
    unsafe fn pack<V: Lanes, const WIDE: usize>(call: &Call, p: usize, blocks: usize) {
        let block = WIDE * V::WIDTH;
        let depth = call.rows.depth;
        let (x, x_step) = call.x;
        let len = blocks * block;
        let next = (p + len..p + 2 * len).take_while(|&q| q < call.cols.end);
        // SAFETY: the reads lie in the input's rows at columns `p..p + len` (within `cols`),
        // the writes in the panel's `blocks` blocks of `depth` rows of `block` values; a
        // prefetch never faults.
        unsafe {
            for k in 0..depth {
                let row = x.add(k * x_step);
                for q in next.clone().step_by(16) {
                    _mm_prefetch::<_MM_HINT_T0>(row.add(q).cast());
                }
                for j in 0..blocks {
                    let panel = call.panel.add((j * depth + k) * block);
                    for v in 0..WIDE {
                        let at = p + j * block + v * V::WIDTH;
                        V::load(row.add(at)).store(panel.add(v * V::WIDTH));
                    }
                }
            }
        }
    }

    /// Every row of the call at the `VECTORS` vectors of positions from `p` (the last one
    /// `last` lanes long when `PART`): blocks of `R`, then of [`ROWS`], then the rows left.
    #[inline(always)]
    unsafe fn rows<
        V: Lanes,
        const VECTORS: usize,
        const PART: bool,
        const R: usize,
        const ADD: bool,
    >(
        call: &Call,
        input: Input,
        p: usize,
        last: usize,
    ) {
        let count = call.rows.bias.len();
        let mut r = 0;
        unsafe {
            while r + R <= count {
                tile::<V, R, VECTORS, PART, ADD>(call, input, r, p, last);
                r += R;
            }
            while r + ROWS <= count {
                tile::<V, ROWS, VECTORS, PART, ADD>(call, input, r, p, last);
                r += ROWS;
            }
            match count - r {
                0 => {}
                1 => tile::<V, 1, VECTORS, PART, ADD>(call, input, r, p, last),
                2 => tile::<V, 2, VECTORS, PART, ADD>(call, input, r, p, last),
                3 => tile::<V, 3, VECTORS, PART, ADD>(call, input, r, p, last),
                4 => tile::<V, 4, VECTORS, PART, ADD>(call, input, r, p, last),
                _ => tile::<V, 5, VECTORS, PART, ADD>(call, input, r, p, last),
            }
        }
    }

    /// Output rows `r..r + R` at the `VECTORS` vectors of positions from `p`: their sums in
    /// registers over every input channel, then bias, activation and one store.
    #[inline(always)]
    unsafe fn tile<
        V: Lanes,
        const R: usize,
        const VECTORS: usize,
        const PART: bool,
        const ADD: bool,
    >(
        call: &Call,
        input: Input,
        r: usize,
        p: usize,
        last: usize,
    ) {
        let depth = call.rows.depth;
        let (out, out_step) = call.out;
        // SAFETY: every read lies in rows `r..r + R` of the weights and in the input's `depth`
        // rows at the tile's vectors (`next_vector` apart: within `cols` as `columns` steps, or
        // within the output rows `tap_rows` sums), every write (and, when adding, every read
        // of the output) in output rows `r..r + R` at positions `p..p + (VECTORS − 1) · WIDTH
        // + last`; a partial vector is read and written through its mask only.
        unsafe {
            let mask = V::first(last);
            let weight = call.rows.weight.as_ptr().add(r * depth);
            let mut sums = [[V::zero(); VECTORS]; R];
            for k in 0..depth {
                let row = input.row(k);
                let mut inputs = [V::zero(); VECTORS];
                for (v, value) in inputs.iter_mut().enumerate() {
                    let at = row.add(v * input.next_vector);
                    *value = if PART && v == VECTORS - 1 {
                        V::load_part(at, mask)
                    } else {
                        V::load(at)
                    };
                }
                for (i, sums) in sums.iter_mut().enumerate() {
                    let w = V::splat(*weight.add(i * depth + k));
                    for (sum, &input) in sums.iter_mut().zip(&inputs) {
                        *sum = sum.mul_add(w, input);
                    }
                }
            }
            let (lo, hi) = (V::splat(call.range.0), V::splat(call.range.1));
            for (i, sums) in sums.iter().enumerate() {
                let bias = V::splat(call.rows.bias[r + i]);
                let row = out.add((r + i) * out_step + p);
                for (v, &sum) in sums.iter().enumerate() {
                    let at = row.add(v * V::WIDTH);
                    let part = PART && v == VECTORS - 1;
                    let mut value = sum.add(bias);
                    if ADD {
                        let old = if part {
                            V::load_part(at, mask)
                        } else {
                            V::load(at)
                        };
                        value = value.add(old);
                    }
                    if call.clamped {
                        value = value.clamp(lo, hi);
                    }
                    if part {
                        value.store_part(at, mask);
                    } else {
                        value.store(at);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[cfg(target_arch = "x86_64")]
mod tests {
    use super::*;

    #[test]
    fn equals_the_definition_at_every_block_and_tail_replacing_or_adding_and_keeps_nan() {
        let isas = Isa::all_available();
        // (rows, depth, columns, row steps): whole blocks of six rows and every tail, and
        // over a deeper input blocks of twelve rows, then six, then five; one input channel;
        // columns cut mid-vector, a single column, blocks of four vectors and what is left
        // after them, a range that starts past column 0; rows spaced wider than the columns
        // used, and rows 4 KiB apart or more (several blocks copied at once).
        let cases = [
            (7, 3, 0..9, [9, 9]),
            (12, 1, 0..1, [1, 3]),
            (5, 17, 5..130, [131, 140]),
            (2, 70, 0..64, [64, 64]),
            (16, 9, 3..200, [203, 200]),
            (4, 33, 0..17, [20, 17]),
            (1, 6, 0..129, [129, 129]),
            (3, 8, 64..160, [160, 161]),
            (23, 130, 2..77, [80, 79]),
            (7, 5, 3..1203, [1210, 1205]),
        ];
        for (case, (rows, depth, cols, [x_step, out_step])) in cases.into_iter().enumerate() {
            let value =
                |i: usize, scale: f32| ((i * 7919 + case * 31) % 97) as f32 / 48.5 * scale - scale;
            let mut x: Vec<f32> = (0..depth * x_step).map(|i| value(i, 3.0)).collect();
            // A NaN in the last input channel at the range's second column.
            let nan_column = (cols.start + 1).min(cols.end - 1);
            x[(depth - 1) * x_step + nan_column] = f32::NAN;
            let weight: Vec<f32> = (0..rows * depth).map(|i| value(i + 5, 0.5)).collect();
            let bias: Vec<f32> = (0..rows).map(|i| value(i + 11, 1.0)).collect();
            let block = Rows {
                weight: &weight,
                bias: &bias,
                depth,
            };
            // What the output holds before the call: the residual that `Write::Add` adds.
            let before: Vec<f32> = (0..rows * out_step).map(|i| value(i + 3, 2.0)).collect();
            let modes = [Activation::Identity, Activation::Relu, Activation::Relu6]
                .into_iter()
                .flat_map(|act| [(act, Write::Replace), (act, Write::Add)]);
            for (act, write) in modes {
                for &isa in &isas {
                    let mut out = before.clone();
                    // SAFETY: `isas` lists what the processor runs; `x` holds `depth` rows of
                    // `x_step ≥ cols.end` values, `out` `rows` rows of `out_step ≥ cols.end`.
                    unsafe {
                        pointwise(
                            isa,
                            block,
                            (x.as_ptr(), x_step),
                            (out.as_mut_ptr(), out_step),
                            cols.clone(),
                            (act, write),
                        );
                    }
                    let (lo, hi) = act.range();
                    for r in 0..rows {
                        for p in 0..out_step {
                            let (got, old) = (out[r * out_step + p], before[r * out_step + p]);
                            let what =
                                format!("case {case} {isa:?} {act:?} {write:?} row {r} column {p}");
                            if !cols.contains(&p) {
                                assert_eq!(got, old, "{what}: written outside the columns");
                                continue;
                            }
                            let residual = match write {
                                Write::Replace => 0.0,
                                Write::Add => f64::from(old),
                            };
                            let sum = (0..depth).fold(f64::from(bias[r]) + residual, |sum, k| {
                                let product =
                                    f64::from(weight[r * depth + k]) * f64::from(x[k * x_step + p]);
                                sum + product
                            });
                            let expected = (sum as f32).clamp(lo, hi);
                            if p == nan_column {
                                assert!(got.is_nan(), "{what}: NaN kept, got {got}");
                            } else {
                                let close =
                                    (got - expected).abs() <= 1e-5 * expected.abs().max(1.0);
                                assert!(close, "{what}: {got} vs {expected}");
                            }
                        }
                    }
                }
            }
        }
    }
}
