//! How a blocked `put`, `get` or `join` waits: the sleep on a sequence word, in slices, and a
//! getter handle's spinning budget (`WaitStrategy::Adaptive`).

use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use crate::loom::futex;
use crate::wait::{AdaptiveSpin, Limit};
use std::time::Duration;

/// How long a blocked `put`/`get`/`join` sleeps before re-checking the queue (covers a waker
/// that died between committing and waking).
#[cfg_attr(all(test, loom), allow(dead_code))]
pub(super) const SLICE: Duration = Duration::from_millis(100);

/// Sleeps on `word` while it still equals `seen` (raising the sleepers flag first), at most one
/// slice. Every `put`/`get` [`bump`]s the word, so an event between reading `seen` and sleeping
/// makes the futex return at once.
pub(super) fn sleep_on(word: &AtomicU32, seen: u32, limit: Limit) {
    // Relaxed: the futex compares the whole word in the kernel.
    if word.fetch_or(1, Relaxed) | 1 != seen | 1 {
        return;
    }
    // Give this CPU to a runnable peer first. When the other side shares this CPU (a consumer
    // faster than its producer, say), it then makes several items before this one looks
    // again, instead of one per wake-up, each of which preempts it: on one CPU a lender's
    // stream of 64 KiB items went from 10 to 37 GB/s, a round trip from 5.1 to 4.3 µs. Across
    // CPUs it costs one system call before a sleep (about 15 % on the loan stream, whose
    // consumer sleeps every few items; nothing measurable elsewhere).
    #[cfg(not(all(test, loom)))]
    {
        std::thread::yield_now();
        // Relaxed: as above; the futex below compares again in any case.
        if word.load(Relaxed) | 1 != seen | 1 {
            return;
        }
    }
    // Under loom, no slice: the models prove that a `bump` alone ends the sleep.
    #[cfg(all(test, loom))]
    let until = limit.deadline_opt();
    #[cfg(not(all(test, loom)))]
    let until = limit.slice(SLICE);
    let _ = futex::wait(word, seen | 1, until);
}

/// How a handle's waits for an item have gone: a [`AdaptiveSpin`] (the pipe's policy, in one
/// place) kept in one atomic word, because a queue handle is shared by threads. A race between
/// them loses an update, which only blurs a heuristic.
#[derive(Debug, Default)]
pub(super) struct GetSpin(AtomicU64);

impl Clone for GetSpin {
    /// A new handle learns for itself.
    fn clone(&self) -> GetSpin {
        GetSpin::default()
    }
}

impl GetSpin {
    fn load(&self) -> AdaptiveSpin {
        // Relaxed: a heuristic.
        let v = self.0.load(Relaxed);
        AdaptiveSpin { fails: (v >> 32) as u8, waits: v as u32 }
    }

    /// Spins this wait may make before sleeping ([`AdaptiveSpin::budget`]).
    pub(super) fn budget(&self) -> u32 {
        self.load().budget()
    }

    /// Records how a wait went ([`AdaptiveSpin::record`]).
    pub(super) fn record(&self, slept: bool, budget: u32) {
        let mut s = self.load();
        s.record(slept, budget);
        // Relaxed: as in `load`.
        self.0.store(u64::from(s.fails) << 32 | u64::from(s.waits), Relaxed);
    }
}

/// The sleep/wake protocol of `Queue`, with a loom mutex standing in for the robust pthread
/// mutex (which loom cannot model): a consumer reads the sequence word, checks the state under
/// the lock, and sleeps on the word; a producer changes the state under the lock and bumps.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::sleep_on;
    use crate::loom::atomic::{AtomicU32, Ordering::Relaxed};
    use crate::queue::doorbell::bump;
    use crate::wait::Limit;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    struct Stand {
        items: Mutex<u32>,
        not_empty: AtomicU32,
    }

    fn get(s: &Stand) {
        loop {
            let seen = s.not_empty.load(Relaxed);
            {
                let mut n = s.items.lock().unwrap();
                if *n > 0 {
                    *n -= 1;
                    return;
                }
            }
            sleep_on(&s.not_empty, seen, Limit::Forever);
        }
    }

    fn put(s: &Stand) {
        *s.items.lock().unwrap() += 1;
        bump(&s.not_empty);
    }

    #[test]
    fn loom_queue_sleeping_consumers_are_woken_by_puts() {
        loom::model(|| {
            let s = Arc::new(Stand { items: Mutex::new(0), not_empty: AtomicU32::new(0) });
            let consumers: Vec<_> = (0..2)
                .map(|_| {
                    let s = s.clone();
                    thread::spawn(move || get(&s))
                })
                .collect();
            put(&s);
            put(&s);
            for c in consumers {
                c.join().unwrap();
            }
        });
    }
}
