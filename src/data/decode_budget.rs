//! A process-wide memory budget for images being decoded. Each decode reserves its file's
//! bytes, then, once the header is known, an upper bound of its pixel buffers, before any of
//! them is allocated; decodes wait for each other beyond the budget, whatever the batch size
//! and thread count. An image larger than the whole budget is decoded alone.
//!
//! Reservations are taken inside rayon tasks, so a holder must not wait on other work while
//! it holds (no rayon join between decoding and dropping the image): the thread could then
//! pick up another decode and wait on its own reservation.

use std::sync::{Condvar, Mutex, MutexGuard};

/// The default budget: 1 GiB, enough for one image at the default pixel limit.
pub const DEFAULT_DECODE_MEMORY_MIB: u64 = 1024;

/// The most bytes one decode allocates per pixel: libjpeg's whole-image coefficient buffers
/// of a progressive JPEG (6) plus the RGB output (3), or a 16-bit RGBA PNG (8) plus its RGB
/// copy (3), rounded up.
pub const DECODE_BYTES_PER_PIXEL: u64 = 12;

/// The decode budget shared by every decoder call in the process.
pub static DECODE_BUDGET: Budget = Budget::new(DEFAULT_DECODE_MEMORY_MIB << 20);

/// A byte budget: reservations wait until their bytes are free.
#[derive(Debug)]
pub struct Budget {
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug)]
struct State {
    total: u64,
    in_use: u64,
}

/// Bytes held from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    /// A budget of `total` bytes, none in use.
    pub const fn new(total: u64) -> Self {
        Self {
            state: Mutex::new(State { total, in_use: 0 }),
            freed: Condvar::new(),
        }
    }

    /// Sets the budget to `total` bytes (`--decode-memory`).
    pub fn set_total(&self, total: u64) {
        self.lock().total = total.max(1);
        self.freed.notify_all();
    }

    /// Bytes reserved now.
    #[cfg(test)]
    fn in_use(&self) -> u64 {
        self.lock().in_use
    }

    /// Reserves `bytes`, waiting while other reservations leave too little free. A request
    /// over the whole budget takes all of it, so it waits until it is alone.
    pub fn reserve(&self, bytes: u64) -> Reservation<'_> {
        let mut state = self.lock();
        let bytes = bytes.min(state.total);
        while state.in_use + bytes > state.total {
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.in_use += bytes;
        Reservation {
            budget: self,
            bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Reservation<'_> {
    /// Grows the reservation to `bytes` (capped at the whole budget) if that many are free
    /// now, without waiting: a holder never waits, so reservations cannot deadlock.
    pub fn try_grow_to(&mut self, bytes: u64) -> bool {
        let mut state = self.budget.lock();
        let bytes = bytes.min(state.total);
        if bytes <= self.bytes {
            return true;
        }
        let extra = bytes - self.bytes;
        if state.in_use + extra > state.total {
            return false;
        }
        state.in_use += extra;
        self.bytes = bytes;
        true
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.lock().in_use -= self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn reservations_never_exceed_the_budget_and_a_large_one_runs_alone() {
        let budget = Budget::new(100);
        let peak = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for request in [30, 40, 50, 70, 250, 10, 60, 90] {
                let (budget, peak) = (&budget, &peak);
                scope.spawn(move || {
                    for _ in 0..50 {
                        let mut held = budget.reserve(request / 2);
                        if !held.try_grow_to(request) {
                            drop(held);
                            held = budget.reserve(request);
                        }
                        peak.fetch_max(budget.in_use(), Ordering::Relaxed);
                        assert!(held.bytes <= 100);
                        std::thread::yield_now();
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 100);
        assert_eq!(budget.in_use(), 0, "every reservation was given back");
    }

    #[test]
    fn growing_fails_without_waiting_when_the_bytes_are_taken() {
        let budget = Budget::new(100);
        let other = budget.reserve(80);
        let mut mine = budget.reserve(10);
        assert!(mine.try_grow_to(20));
        assert!(!mine.try_grow_to(30), "only 0 bytes are free");
        drop(other);
        assert!(mine.try_grow_to(1000), "capped at the whole budget");
        assert_eq!(budget.in_use(), 100);
    }
}
