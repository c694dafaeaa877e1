//! The event state machine: one futex word.
//!
//! | word              | meaning                                              |
//! |-------------------|------------------------------------------------------|
//! | `0`               | unset, nobody sleeping                               |
//! | `WAITERS`         | unset; at least one waiter may be in `futex_wait`    |
//! | `SET`             | set (waiters never sleep while it is set)            |
//! | `SET \| WAITERS`  | not produced by `set` (which swaps in plain `SET`); tolerated |
//!
//! # Memory ordering
//! `set` publishes with its `swap` (`SeqCst`, so it also orders against a waiter's flag
//! store: a set that finds no `WAITERS` bit is one that every later waiter sees); `wait` reads
//! with `Acquire`/`SeqCst`. `clear` is `Release` (it orders nothing the waiters read).

use crate::loom::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};
use crate::loom::futex;
use crate::shm::ShmObject;
use crate::wait::Limit;

const SET: u32 = 1;
const WAITERS: u32 = 2;

/// An event flag in shared memory. All-zero bytes are an unset event.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RawEvent {
    word: AtomicU32,
}

// SAFETY: all-zero is "unset, no waiters"; a lone AtomicU32 holds no pointers; any value a peer
// leaves is interpreted through the SET/WAITERS bits only, so garbage is at worst a spurious
// "set" or a spurious wake-up, never UB.
unsafe impl ShmObject for RawEvent {}

impl RawEvent {
    #[cfg(all(test, loom))]
    pub(crate) fn new() -> RawEvent {
        RawEvent { word: AtomicU32::new(0) }
    }

    /// Whether the flag is set.
    pub(crate) fn is_set(&self) -> bool {
        // SYNC(acquire ← set): what the setter wrote before `set` is visible once we see it.
        self.word.load(Acquire) & SET != 0
    }

    /// Sets the flag and wakes every waiter; no system call when nobody waits.
    pub(crate) fn set(&self) {
        // SeqCst: the swap is the Dekker partner of the waiter's CAS that raises WAITERS: either
        // it sees the bit (and wakes) or the waiter's later check sees SET.
        let old = self.word.swap(SET, SeqCst);
        if old & WAITERS != 0 {
            futex::wake(&self.word, u32::MAX);
        }
    }

    /// Raises WAITERS (unless set) and returns the word with the value a sleeper expects: a
    /// `set` swaps the word and, seeing the flag, wakes every sleeper, so a sleep on this value
    /// ends at the next `set`. The caller re-checks [`is_set`](Self::is_set) before sleeping.
    #[cfg(not(all(test, loom)))]
    pub(crate) fn announce_waiter(&self) -> (&AtomicU32, u32) {
        // SeqCst: as in `wait` (Dekker with the swap in `set`).
        let mut v = self.word.load(SeqCst);
        while v & (SET | WAITERS) == 0 {
            match self.word.compare_exchange(v, v | WAITERS, SeqCst, Relaxed) {
                Ok(_) => v |= WAITERS,
                Err(now) => v = now,
            }
        }
        (&self.word, v)
    }

    /// Clears the flag (waiters keep sleeping; a sleeper's WAITERS bit is kept).
    pub(crate) fn clear(&self) {
        // Release: pairs with nothing in particular; clear only hides SET from later waiters.
        self.word.fetch_and(!SET, Release);
    }

    /// Waits until the flag is set or `limit` passes; returns whether it is set.
    pub(crate) fn wait(&self, limit: Limit) -> bool {
        loop {
            // SeqCst: partner of the swap in `set` (see there).
            let v = self.word.load(SeqCst);
            if v & SET != 0 {
                return true;
            }
            if limit.passed() {
                return false;
            }
            if v & WAITERS == 0 {
                // SeqCst: raise the flag before sleeping (Dekker with `set`).
                if self.word.compare_exchange(v, v | WAITERS, SeqCst, Relaxed).is_err() {
                    continue;
                }
            }
            if futex::wait(&self.word, v | WAITERS, limit.deadline_opt()).is_err() {
                return self.is_set();
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
    fn loom_event_set_wakes_every_waiter() {
        loom::model(|| {
            let e = Arc::new(RawEvent::new());
            let ws: Vec<_> = (0..2)
                .map(|_| {
                    let e = e.clone();
                    thread::spawn(move || assert!(e.wait(Limit::Forever)))
                })
                .collect();
            e.set();
            for w in ws {
                w.join().unwrap();
            }
        });
    }

    #[test]
    fn loom_event_clear_then_set_is_not_lost() {
        loom::model(|| {
            let e = Arc::new(RawEvent::new());
            let w = {
                let e = e.clone();
                thread::spawn(move || assert!(e.wait(Limit::Forever)))
            };
            e.clear();
            e.set();
            w.join().unwrap();
        });
    }

    #[test]
    fn loom_event_timed_wait_reports_state() {
        loom::model(|| {
            let e = Arc::new(RawEvent::new());
            let w = {
                let e = e.clone();
                thread::spawn(move || e.wait(Limit::timeout(std::time::Duration::from_secs(1))))
            };
            e.set();
            // Timed out or woken, the answer is consistent with the flag at that moment; after
            // the join the flag is set for everyone.
            let _ = w.join().unwrap();
            assert!(e.is_set());
        });
    }
}
