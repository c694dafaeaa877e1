//! The counting-semaphore state machine: one 64-bit word whose low half is the futex word.
//!
//! | low half             | meaning                                                       |
//! |----------------------|---------------------------------------------------------------|
//! | `n` (< `WAITERS`)    | `n` free permits, nobody asleep                               |
//! | `n \| WAITERS`       | `n` free permits; some process may be asleep in `futex_wait`  |
//!
//! A waiter raises `WAITERS` (CAS) and sleeps while the low half equals `WAITERS` (no permits,
//! flag up). A release adds one permit keeping the flag; if the flag was up it wakes one
//! sleeper, and if that woke nobody it clears the flag (CAS, ignoring failure). Clearing can race
//! with a waiter about to sleep: that waiter's `futex_wait` then finds a word without the flag
//! and returns at once, so it re-raises the flag: no lost wake-up. Everything is a
//! read-modify-write of one word, so no store-load (Dekker) ordering between two locations is
//! needed.
//!
//! # Transit lanes (the high half)
//! The high half is four 8-bit *lanes*. A lane is 0 (free) or a caller's tag, and a permit can
//! move between the count and a lane in the same CAS: [`RawSemaphore::try_acquire_lane`] takes
//! a permit and writes the tag into a free lane; [`RawSemaphore::claim_lane`] writes a tag
//! without touching the count; [`RawSemaphore::clear_lane`] frees the lane, optionally giving a
//! permit back in the same step. The semaphore layer uses them to say, in the word that holds
//! the count, which holder slot a permit is on its way to or from, so that a process killed at
//! any instruction of that journey leaves a state that says exactly where the permit is (see
//! `sync::semaphore::holders`). This layer gives the tags no meaning. The futex compares only
//! the low half, so lanes never disturb a sleeper.
//!
//! # Memory ordering
//! Taking a permit is a CAS with `Acquire`; giving one back is a CAS with `Release`
//! (SYNC: release → the next acquirer). Flag and lane updates that move no permit are
//! `Relaxed`: the futex compares the word in the kernel, which is what makes sleeping safe, and
//! the lanes' meaning is published by the holder slots' own orderings.
//!
//! A waiter killed while asleep leaves the flag up: the next release makes one `futex_wake`
//! call that wakes nobody and clears it.

use crate::loom::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::loom::futex;
use crate::shm::ShmObject;
use crate::wait::Limit;

const WAITERS: u64 = 0x8000_0000;
const COUNT: u64 = 0x7fff_ffff;

/// The number of transit lanes in the high half.
pub(crate) const LANES: usize = 4;

/// The largest permit count (so that the count never wraps).
pub(crate) const MAX_PERMITS: u32 = i32::MAX as u32;

/// A counting semaphore in shared memory. All-zero bytes are a semaphore with no permits and
/// free lanes.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RawSemaphore {
    word: AtomicU64,
}

// SAFETY: all-zero is "0 permits, nobody asleep, no transit"; atomics only, no pointers; every
// value a peer can leave is a valid count plus flag plus four lane bytes (lane tags are only
// compared by the layer above).
unsafe impl ShmObject for RawSemaphore {}

/// What [`RawSemaphore::release_bounded`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    Ok,
    /// The count was already at the bound: nothing changed.
    AtLimit,
}

/// Why [`RawSemaphore::try_acquire_lane`] or [`RawSemaphore::claim_lane`] took nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoTake {
    /// No permit was free.
    NoPermit,
    /// All four lanes were in use.
    NoLane,
}

fn count(v: u64) -> u32 {
    (v & COUNT) as u32
}

fn lane_shift(lane: usize) -> u32 {
    32 + 8 * lane as u32
}

/// The first free lane of `v`.
fn free_lane(v: u64) -> Option<usize> {
    (0..LANES).find(|&l| (v >> lane_shift(l)) & 0xff == 0)
}

impl RawSemaphore {
    #[cfg(all(test, loom))]
    pub(crate) fn new(n: u32) -> RawSemaphore {
        RawSemaphore { word: AtomicU64::new(u64::from(n) & COUNT) }
    }

    /// Writes `tags` into the four lanes, keeping the count: what a peer scribbling the word
    /// leaves (tests only).
    #[cfg(test)]
    pub(crate) fn scribble_lanes(&self, tags: [u8; LANES]) {
        let high = tags.iter().enumerate().fold(0u64, |w, (l, &t)| w | u64::from(t) << lane_shift(l));
        self.word.store((self.word.load(Relaxed) & 0xffff_ffff) | high, Relaxed);
    }

    /// Sets the initial count; only before the object is shared.
    pub(crate) fn init(&self, n: u32) {
        self.word.store(u64::from(n.min(MAX_PERMITS)), Relaxed);
    }

    /// Current number of free permits.
    pub(crate) fn value(&self) -> u32 {
        // Relaxed: a snapshot for display; it synchronizes nothing.
        count(self.word.load(Relaxed))
    }

    /// The four lanes' tags (0: free). A snapshot.
    pub(crate) fn lanes(&self) -> [u8; LANES] {
        // Acquire: a recoverer reads the lanes after taking a dead holder's slot over; pairs
        // with the Release of the CAS that gave the permit back.
        let v = self.word.load(Acquire);
        std::array::from_fn(|l| (v >> lane_shift(l)) as u8)
    }

    /// Takes a permit if one is free.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        // Relaxed: only a hint for the CAS below.
        let mut v = self.word.load(Relaxed);
        while count(v) > 0 {
            // SYNC(acquire ← release): the releaser's writes are visible to the new holder.
            match self.word.compare_exchange_weak(v, v - 1, Acquire, Relaxed) {
                Ok(_) => return true,
                Err(now) => v = now,
            }
        }
        false
    }

    /// Takes a permit and writes `tag` (non-zero) into a free lane, in one step; returns the
    /// lane.
    pub(crate) fn try_acquire_lane(&self, tag: u8) -> Result<usize, NoTake> {
        debug_assert_ne!(tag, 0);
        // Relaxed: only a hint for the CAS below.
        let mut v = self.word.load(Relaxed);
        loop {
            if count(v) == 0 {
                return Err(NoTake::NoPermit);
            }
            let lane = free_lane(v).ok_or(NoTake::NoLane)?;
            // SYNC(acquire ← release), as in `try_acquire`.
            match self.word.compare_exchange_weak(v, (v - 1) | u64::from(tag) << lane_shift(lane), Acquire, Relaxed) {
                Ok(_) => return Ok(lane),
                Err(now) => v = now,
            }
        }
    }

    /// Writes `tag` (non-zero) into a free lane, leaving the count alone; returns the lane.
    pub(crate) fn claim_lane(&self, tag: u8) -> Result<usize, NoTake> {
        debug_assert_ne!(tag, 0);
        // Relaxed: a hint for the CAS.
        let mut v = self.word.load(Relaxed);
        loop {
            let lane = free_lane(v).ok_or(NoTake::NoLane)?;
            // Relaxed: no permit moves; the holder slot's update publishes what the lane means.
            match self.word.compare_exchange_weak(v, v | u64::from(tag) << lane_shift(lane), Relaxed, Relaxed) {
                Ok(_) => return Ok(lane),
                Err(now) => v = now,
            }
        }
    }

    /// Frees `lane` if it still holds `tag`, and with `give = Some(bound)` gives one permit back
    /// in the same step (unless the count is already at `bound`: a corrupt or over-released
    /// word). Returns whether the lane held `tag`.
    pub(crate) fn clear_lane(&self, lane: usize, tag: u8, give: Option<u32>) -> bool {
        let shift = lane_shift(lane);
        // Relaxed: a hint for the CAS.
        let mut v = self.word.load(Relaxed);
        loop {
            if (v >> shift) as u8 != tag {
                return false;
            }
            let mut new = v & !(0xff << shift);
            if let Some(bound) = give {
                if count(v) < bound.min(MAX_PERMITS) {
                    new += 1;
                }
            }
            // SYNC(release → acquire): with a permit given, our writes reach its next holder.
            match self.word.compare_exchange_weak(v, new, Release, Relaxed) {
                Ok(_) => {
                    if new & COUNT != v & COUNT && v & WAITERS != 0 {
                        self.wake_after_release(new);
                    }
                    return true;
                }
                Err(now) => v = now,
            }
        }
    }

    /// Takes a permit, sleeping until one is free or `limit` passes; true if taken.
    /// With `slice = Some((d, between))`, each sleep lasts at most `d` and `between` runs after
    /// every sleep that ended without a permit (dead-holder recovery uses it).
    #[inline]
    pub(crate) fn acquire(&self, limit: Limit, slice: Option<(std::time::Duration, &dyn Fn())>) -> bool {
        self.acquire_with(limit, slice, || self.try_acquire())
    }

    /// [`acquire`](Self::acquire) with the taking done by `take` (which takes a permit, or
    /// returns false when none is free), for callers that record where a permit goes.
    pub(crate) fn acquire_with(
        &self,
        limit: Limit,
        slice: Option<(std::time::Duration, &dyn Fn())>,
        take: impl Fn() -> bool,
    ) -> bool {
        for _ in 0..32 {
            if take() {
                return true;
            }
            crate::loom::hint::spin_loop();
        }
        loop {
            if take() {
                return true;
            }
            if limit.passed() {
                return false;
            }
            // Relaxed: the futex re-checks the low half in the kernel.
            let v = self.word.load(Relaxed);
            if count(v) != 0 {
                continue;
            }
            if v & WAITERS == 0 && self.word.compare_exchange(v, v | WAITERS, Relaxed, Relaxed).is_err() {
                continue;
            }
            let wake_at = match slice {
                Some((d, _)) => limit.slice(d),
                None => limit.deadline_opt(),
            };
            if futex::wait_low(&self.word, WAITERS as u32, wake_at).is_err() {
                if limit.passed() {
                    return take();
                }
                if let Some((_, between)) = slice {
                    between();
                }
            }
        }
    }

    /// Wakes one sleeper after a release that found the flag up; clears the flag if nobody was
    /// asleep.
    fn wake_after_release(&self, now: u64) {
        if futex::wake_low(&self.word, 1) == 0 {
            // Relaxed: see the module docs; a failed CAS means the word moved on, which is fine
            // (the next release that finds the flag up tries again).
            let _ = self.word.compare_exchange(now, now & !WAITERS, Relaxed, Relaxed);
        }
    }

    /// Gives `n` permits back (unbounded, like Python's `Semaphore.release`).
    pub(crate) fn release(&self, n: u32) {
        // Relaxed: a hint for the CAS.
        let mut v = self.word.load(Relaxed);
        loop {
            // Clamp instead of wrapping into the flag bit (a corrupt or huge count).
            let c = (u64::from(count(v)) + u64::from(n)).min(u64::from(MAX_PERMITS));
            let new = (v & !COUNT) | c;
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
            if count(v) >= limit.min(MAX_PERMITS) {
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

    #[test]
    fn loom_semaphore_lane_journeys_keep_the_count() {
        loom::model(|| {
            let s = Arc::new(RawSemaphore::new(1));
            let t = {
                let s = s.clone();
                thread::spawn(move || {
                    if let Ok(l) = s.try_acquire_lane(3) {
                        assert!(s.clear_lane(l, 3, None));
                        let l = s.claim_lane(0x83).unwrap();
                        assert!(s.clear_lane(l, 0x83, Some(1)));
                    }
                })
            };
            if s.try_acquire() {
                assert_eq!(s.release_bounded(1), Released::Ok);
            }
            t.join().unwrap();
            assert_eq!(s.value(), 1);
            assert_eq!(s.lanes(), [0; LANES]);
        });
    }

    #[test]
    fn loom_semaphore_a_permit_given_with_a_lane_wakes_a_sleeper() {
        loom::model(|| {
            let s = Arc::new(RawSemaphore::new(0));
            let w = {
                let s = s.clone();
                thread::spawn(move || assert!(s.acquire(Limit::Forever, None)))
            };
            let l = s.claim_lane(0x81).unwrap();
            assert!(s.clear_lane(l, 0x81, Some(MAX_PERMITS)));
            w.join().unwrap();
            assert_eq!(s.value(), 0);
        });
    }
}
