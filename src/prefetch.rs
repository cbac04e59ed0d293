//! One step ahead: each item is prepared on a producer thread while the caller consumes the
//! one before it (images decoded while the network runs the previous batch).

use std::ops::ControlFlow;
use std::sync::mpsc;

/// Prepares each of `items` with `prepare` on a scoped producer thread, at most one ahead of
/// `consume`, which receives them in order. When `consume` breaks, the producer stops after the
/// item it is preparing and the break value is returned; `None` when every item was consumed.
pub fn prefetch<I, T, B>(
    items: impl Iterator<Item = I> + Send,
    prepare: impl Fn(I) -> T + Sync,
    mut consume: impl FnMut(T) -> ControlFlow<B>,
) -> Option<B>
where
    T: Send,
{
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel::<T>(1);
        let prepare = &prepare;
        scope.spawn(move || {
            for item in items {
                if sender.send(prepare(item)).is_err() {
                    break;
                }
            }
        });
        for prepared in receiver {
            if let ControlFlow::Break(value) = consume(prepared) {
                return Some(value);
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn items_arrive_in_order_and_a_break_stops_the_producer() {
        let mut seen = Vec::new();
        let all = prefetch(
            0..10,
            |i| i * 10,
            |v| {
                seen.push(v);
                ControlFlow::<()>::Continue(())
            },
        );
        assert_eq!(all, None);
        assert_eq!(seen, (0..10).map(|i| i * 10).collect::<Vec<_>>());

        let prepared = AtomicUsize::new(0);
        let stopped = prefetch(
            0..1000,
            |i| {
                prepared.fetch_add(1, Ordering::Relaxed);
                i
            },
            |v| {
                if v == 3 {
                    ControlFlow::Break("stop")
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        assert_eq!(stopped, Some("stop"));
        // The producer runs at most a couple of items ahead of the consumer.
        assert!(prepared.load(Ordering::Relaxed) <= 7);
    }
}
