//! The loom back end: loom's atomics and cells, plus a model of the kernel futex.
//!
//! The model keeps one FIFO queue of sleeping waiters under one loom `Mutex`, which plays the
//! kernel's hash-bucket lock: `wait` compares the word and enqueues atomically with respect to
//! `wake`, exactly as the kernel does. A sleeper leaves the queue only when a `wake` on its
//! address removes it, so a missing wake-up leaves a thread blocked forever, which loom reports
//! as a deadlock. A timed wait returns `TimedOut` at once: loom has no clock, and this makes
//! every model explore the time-out branch.

pub(crate) mod atomic {
    pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

    /// Loom cannot see a word of a plain region as an atomic: models that need one give the
    /// code a table of loom atomics instead (`Ring::with_words`), and reaching this is a bug
    /// in the model.
    ///
    /// # Safety
    /// Never returns.
    pub(crate) unsafe fn u64_at<'a>(_p: *mut u64) -> &'a AtomicU64 {
        unreachable!("a loom model reached a plain region's word; give it a table of loom atomics")
    }
}

pub(crate) mod hint {
    pub(crate) use loom::hint::spin_loop;
}

pub(crate) mod cell {
    pub(crate) use loom::cell::UnsafeCell;
}

pub(crate) mod futex {
    use super::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
    use crate::sys::clock::Deadline;
    use loom::sync::{Condvar, Mutex};

    pub(crate) use crate::sys::futex::TimedOut;

    struct Table {
        queue: Mutex<Queue>,
        cv: Condvar,
    }

    struct Queue {
        next_ticket: u64,
        sleepers: Vec<(usize, u64)>,
    }

    loom::lazy_static! {
        static ref TABLE: Table = Table {
            queue: Mutex::new(Queue { next_ticket: 0, sleepers: Vec::new() }),
            cv: Condvar::new(),
        };
    }

    /// Model of `FUTEX_WAIT`: sleeps while `*word == expected` until a `wake` picks us.
    pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> Result<(), TimedOut> {
        // SeqCst: the kernel's check is ordered after a full barrier (futex_wait_setup's smp_mb),
        // pairing with the waker's store-then-wake.
        wait_at(word as *const AtomicU32 as usize, || word.load(SeqCst) == expected, deadline)
    }

    /// Model of `FUTEX_WAIT` on the low half of a 64-bit word.
    pub(crate) fn wait_low(word: &AtomicU64, expected: u32, deadline: Option<Deadline>) -> Result<(), TimedOut> {
        // SeqCst: as in `wait`.
        wait_at(word as *const AtomicU64 as usize, || word.load(SeqCst) as u32 == expected, deadline)
    }

    /// Model of `FUTEX_WAKE` for sleepers in `wait_low`.
    pub(crate) fn wake_low(word: &AtomicU64, n: u32) -> u32 {
        wake_at(word as *const AtomicU64 as usize, n)
    }

    /// The kernel's wait: checks `unchanged` under the bucket lock, then sleeps on `addr`.
    fn wait_at(addr: usize, unchanged: impl Fn() -> bool, deadline: Option<Deadline>) -> Result<(), TimedOut> {
        let mut q = TABLE.queue.lock().unwrap();
        if !unchanged() {
            return Ok(());
        }
        if deadline.is_some() {
            return Err(TimedOut);
        }
        let me = q.next_ticket;
        q.next_ticket += 1;
        q.sleepers.push((addr, me));
        while q.sleepers.iter().any(|&(_, t)| t == me) {
            q = TABLE.cv.wait(q).unwrap();
        }
        Ok(())
    }

    /// Model of `FUTEX_WAKE`: wakes up to `n` sleepers on `word`, oldest first.
    pub(crate) fn wake(word: &AtomicU32, n: u32) -> u32 {
        wake_at(word as *const AtomicU32 as usize, n)
    }

    fn wake_at(a: usize, n: u32) -> u32 {
        let mut q = TABLE.queue.lock().unwrap();
        let mut woken = 0;
        q.sleepers.retain(|&(wa, _)| {
            if wa == a && woken < n {
                woken += 1;
                false
            } else {
                true
            }
        });
        if woken > 0 {
            TABLE.cv.notify_all();
        }
        woken
    }
}
