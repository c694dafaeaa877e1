//! The counting-semaphore state machine: one futex word.
//!
//! | word                 | meaning                                                       |
//! |----------------------|---------------------------------------------------------------|
//! | `n` (< `WAITERS`)    | `n` free permits, nobody asleep                               |
//! | `n \| WAITERS`       | `n` free permits; some process may be asleep in `futex_wait`  |
//!
//! A waiter raises `WAITERS` (CAS) and sleeps while the word equals `WAITERS` (no permits, flag
//! up). A release adds one permit keeping the flag; if the flag was up it wakes one sleeper, and
//! if that woke nobody it clears the flag (CAS, ignoring failure). Clearing can race with a
//! waiter about to sleep: that waiter's `futex_wait` then finds a word without the flag and
//! returns at once, so it re-raises the flag: no lost wake-up. Everything is a read-modify-write
//! of one word, so no store-load (Dekker) ordering between two locations is needed.
//!
//! # Memory ordering
//! Taking a permit is a CAS with `Acquire`; giving one back is a `fetch_add` with `Release`
//! (SYNC: release → the next acquirer). Flag updates are `Relaxed`: the futex compares the whole
//! word in the kernel, which is what makes sleeping safe.
//!
//! A waiter killed while asleep leaves the flag up: the next release makes one `futex_wake`
//! call that wakes nobody and clears it.

use crate::loom::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::loom::futex;
use crate::shm::ShmObject;
use crate::wait::Limit;

const WAITERS: u32 = 0x8000_0000;
const COUNT: u32 = !WAITERS;

/// The largest permit count (so that the count never wraps).
pub(crate) const MAX_PERMITS: u32 = i32::MAX as u32;

/// A counting semaphore in shared memory. All-zero bytes are a semaphore with no permits.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RawSemaphore {
    word: AtomicU32,
    _reserved: AtomicU32,
}

// SAFETY: all-zero is "0 permits, nobody asleep"; atomics only, no pointers; every value a peer
// can leave is a valid count plus flag.
unsafe impl ShmObject for RawSemaphore {}

/// What [`RawSemaphore::release_bounded`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    Ok,
    /// The count was already at the bound: nothing changed.
    AtLimit,
}

impl RawSemaphore {
    #[cfg(all(test, loom))]
    pub(crate) fn new(n: u32) -> RawSemaphore {
        RawSemaphore { word: AtomicU32::new(n & COUNT), _reserved: AtomicU32::new(0) }
    }

    /// Sets the initial count; only before the object is shared.
    pub(crate) fn init(&self, n: u32) {
        self.word.store(n.min(MAX_PERMITS), Relaxed);
    }

    /// Current number of free permits.
    pub(crate) fn value(&self) -> u32 {
        // Relaxed: a snapshot for display; it synchronizes nothing.
        self.word.load(Relaxed) & COUNT
    }

    /// Takes a permit if one is free.
    pub(crate) fn try_acquire(&self) -> bool {
        // Relaxed: only a hint for the CAS below.
        let mut v = self.word.load(Relaxed);
        while v & COUNT > 0 {
            // SYNC(acquire ← release): the releaser's writes are visible to the new holder.
            match self.word.compare_exchange_weak(v, v - 1, Acquire, Relaxed) {
                Ok(_) => return true,
                Err(now) => v = now,
            }
        }
        false
    }

    /// Takes a permit, sleeping until one is free or `limit` passes; true if taken.
    /// With `slice = Some((d, between))`, each sleep lasts at most `d` and `between` runs after
    /// every sleep that ended without a permit (dead-holder recovery uses it).
    pub(crate) fn acquire(&self, limit: Limit, slice: Option<(std::time::Duration, &dyn Fn())>) -> bool {
        for _ in 0..32 {
            if self.try_acquire() {
                return true;
            }
            crate::loom::hint::spin_loop();
        }
        loop {
            if self.try_acquire() {
                return true;
            }
            if limit.passed() {
                return false;
            }
            // Relaxed: the futex re-checks the whole word in the kernel.
            let v = self.word.load(Relaxed);
            if v & COUNT != 0 {
                continue;
            }
            if v & WAITERS == 0 && self.word.compare_exchange(v, v | WAITERS, Relaxed, Relaxed).is_err() {
                continue;
            }
            let wake_at = match slice {
                Some((d, _)) => limit.slice(d),
                None => limit.deadline_opt(),
            };
            if futex::wait(&self.word, WAITERS, wake_at).is_err() {
                if limit.passed() {
                    return self.try_acquire();
                }
                if let Some((_, between)) = slice {
                    between();
                }
            }
        }
    }

    /// Wakes one sleeper after a release that found the flag up; clears the flag if nobody was
    /// asleep.
    fn wake_after_release(&self, now: u32) {
        if futex::wake(&self.word, 1) == 0 {
            // Relaxed: see the module docs; a failed CAS means the word moved on, which is fine.
            let _ = self.word.compare_exchange(now, now & COUNT, Relaxed, Relaxed);
        }
    }

    /// Gives `n` permits back (unbounded, like Python's `Semaphore.release`).
    pub(crate) fn release(&self, n: u32) {
        // Relaxed: a hint for the CAS.
        let mut v = self.word.load(Relaxed);
        loop {
            // Clamp instead of wrapping into the flag bit (a corrupt or huge count).
            let count = ((v & COUNT) as u64 + n as u64).min(MAX_PERMITS as u64) as u32;
            let new = (v & WAITERS) | count;
            // SYNC(release → acquire): our writes before the release reach the next holder.
            match self.word.compare_exchange_weak(v, new, Release, Relaxed) {
                Ok(_) => {
                    if v & WAITERS != 0 {
                        self.wake_after_release(new);
                    }
                    return;
                }
                Err(now) => v = now,
            }
        }
    }

    /// Gives a permit back unless the count is already `limit` (BoundedSemaphore).
    pub(crate) fn release_bounded(&self, limit: u32) -> Released {
        // Relaxed: a hint for the CAS.
        let mut v = self.word.load(Relaxed);
        loop {
            if v & COUNT >= limit.min(MAX_PERMITS) {
                return Released::AtLimit;
            }
            // SYNC(release → acquire), as in `release`.
            match self.word.compare_exchange_weak(v, v + 1, Release, Relaxed) {
                Ok(_) => {
                    if v & WAITERS != 0 {
                        self.wake_after_release(v + 1);
                    }
                    return Released::Ok;
                }
                Err(now) => v = now,
            }
        }
    }
}

#[cfg(all(test, loom))]
mod tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn loom_semaphore_release_wakes_a_sleeper() {
        loom::model(|| {
            let s = Arc::new(RawSemaphore::new(0));
            let w = {
                let s = s.clone();
                thread::spawn(move || assert!(s.acquire(Limit::Forever, None)))
            };
            s.release(1);
            w.join().unwrap();
            assert_eq!(s.value(), 0);
        });
    }

    #[test]
    fn loom_semaphore_two_waiters_two_releases() {
        loom::model(|| {
            let s = Arc::new(RawSemaphore::new(0));
            let ws: Vec<_> = (0..2)
                .map(|_| {
                    let s = s.clone();
                    thread::spawn(move || assert!(s.acquire(Limit::Forever, None)))
                })
                .collect();
            s.release(1);
            s.release(1);
            for w in ws {
                w.join().unwrap();
            }
        });
    }

    #[test]
    fn loom_semaphore_timeout_never_loses_a_permit() {
        loom::model(|| {
            let s = Arc::new(RawSemaphore::new(0));
            let w = {
                let s = s.clone();
                thread::spawn(move || s.acquire(Limit::timeout(std::time::Duration::from_secs(1)), None))
            };
            s.release(1);
            let took = w.join().unwrap();
            // Either the waiter took the permit or it is still there.
            assert_eq!(s.value() + u32::from(took), 1);
        });
    }

    #[test]
    fn loom_semaphore_bounded_release_respects_the_limit() {
        loom::model(|| {
            let s = Arc::new(RawSemaphore::new(1));
            let t = {
                let s = s.clone();
                thread::spawn(move || s.release_bounded(1))
            };
            let here = s.release_bounded(1);
            let there = t.join().unwrap();
            assert_eq!(here, Released::AtLimit);
            assert_eq!(there, Released::AtLimit);
            assert_eq!(s.value(), 1);
        });
    }
}
