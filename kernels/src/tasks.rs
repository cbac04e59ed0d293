//! Running a kernel's independent tasks on one thread or on the pool.

use rayon::prelude::*;

use crate::Threads;

/// Tasks to split a kernel's work into: one on a single thread; on the pool about four per
/// thread, so that tasks of uneven length still keep every thread busy.
pub fn tasks_wanted(threads: Threads) -> usize {
    match threads {
        Threads::One => 1,
        Threads::Pool => 4 * workers(threads),
    }
}

/// Threads that run the tasks: one, or the pool's.
pub fn workers(threads: Threads) -> usize {
    match threads {
        Threads::One => 1,
        Threads::Pool => rayon::current_num_threads(),
    }
}

/// Runs `task(i)` for every `i < count`, in parallel when `threads` allows.
pub fn for_each(threads: Threads, count: usize, task: impl Fn(usize) + Sync + Send) {
    match threads {
        Threads::One => (0..count).for_each(task),
        Threads::Pool => (0..count).into_par_iter().for_each(task),
    }
}

/// Runs `task(i, chunk)` for consecutive chunks of `len` values of `values`.
pub fn for_each_chunk(
    threads: Threads,
    values: &mut [f32],
    len: usize,
    task: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    let len = len.max(1);
    match threads {
        Threads::One => values
            .chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| task(i, c)),
        Threads::Pool => values
            .par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| task(i, c)),
    }
}

/// Runs `task(i, output_chunk, input_chunk)` over matching chunks of an output and an input.
pub fn for_each_pair(
    threads: Threads,
    output: &mut [f32],
    output_len: usize,
    input: &[f32],
    input_len: usize,
    task: impl Fn(usize, &mut [f32], &[f32]) + Sync + Send,
) {
    let (output_len, input_len) = (output_len.max(1), input_len.max(1));
    match threads {
        Threads::One => output
            .chunks_mut(output_len)
            .zip(input.chunks(input_len))
            .enumerate()
            .for_each(|(i, (o, x))| task(i, o, x)),
        Threads::Pool => output
            .par_chunks_mut(output_len)
            .zip(input.par_chunks(input_len))
            .enumerate()
            .for_each(|(i, (o, x))| task(i, o, x)),
    }
}

/// An output buffer that tasks write at disjoint places they compute themselves.
pub struct SharedOutput(*mut f32);

// SAFETY: the tasks sharing it write disjoint elements (each user says how).
unsafe impl Sync for SharedOutput {}
unsafe impl Send for SharedOutput {}

impl SharedOutput {
    /// Shares `values`.
    pub fn new(values: &mut [f32]) -> Self {
        Self(values.as_mut_ptr())
    }

    /// The address of the element at `offset`.
    pub fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}
