//! A semaphore's shared state: the raw futex semaphore, its bound, and the holder slots that
//! say which processes hold guarded permits, so that a dead holder's permits are given back
//! (SEM-B1). A slot word is `pid | pins | held`: the owner, how many of its guards (taken or
//! being taken) count on the slot, how many permits it holds; a `BUSY` pid marks a slot being
//! set up or recovered.

use crate::loom::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::shm::ShmObject;
use crate::sync::raw::semaphore::RawSemaphore;
use crate::sys;
use crate::sys::process::{is_alive as alive, self_identity as me};
use std::time::Duration;

/// Which slot a guard is counted in (`None`: untracked).
pub(super) type SlotIndex = Option<usize>;

/// Number of processes whose guarded permits are tracked at once.
pub const HOLDER_SLOTS: usize = 64;

/// How often a blocked `acquire` looks for permits held by dead processes.
pub const RECOVERY_SLICE: Duration = Duration::from_millis(50);

/// Marks the pid field of a slot that the process named by the other bits is setting up or
/// recovering.
pub(super) const BUSY: u32 = 1 << 31;

pub(super) fn pack(pid: u32, pins: u16, held: u16) -> u64 {
    (u64::from(pid) << 32) | (u64::from(pins) << 16) | u64::from(held)
}

pub(super) fn unpack(w: u64) -> (u32, u16, u16) {
    ((w >> 32) as u32, (w >> 16) as u16, w as u16)
}

#[repr(C)]
#[derive(Debug)]
pub(super) struct HolderSlot {
    /// `pid | pins | held` (see the module docs); 0 is a free slot.
    pub(super) word: AtomicU64,
    /// The owner's start time (written only while the word says `BUSY`).
    pub(super) start: AtomicU64,
}

#[repr(C)]
#[derive(Debug)]
pub(super) struct SemState {
    pub(super) raw: RawSemaphore,
    /// 0 for a plain semaphore, else 1 + the BoundedSemaphore's initial value.
    pub(super) limit: AtomicU32,
    _pad: AtomicU32,
    pub(super) holders: [HolderSlot; HOLDER_SLOTS],
}

// SAFETY: all-zero is a semaphore with no permits, no bound and empty holder slots; only atomics,
// no pointers; every value a peer can leave is checked where it is used (pids and start times
// are only compared, counts are clamped by the raw semaphore, the limit is clamped).
unsafe impl ShmObject for SemState {}

impl SemState {
    /// The bound of a BoundedSemaphore (`None` for a plain one). Read from shared memory:
    /// clamped by the raw semaphore.
    pub(super) fn limit(&self) -> Option<u32> {
        self.limit.load(Relaxed).checked_sub(1)
    }

    pub(super) fn give_back(&self, n: u32) {
        match self.limit() {
            None => self.raw.release(n),
            Some(limit) => {
                for _ in 0..n {
                    let _ = self.raw.release_bounded(limit);
                }
            }
        }
    }

    /// Joins (or claims) this process's holder slot before a permit is taken, so that the
    /// only untracked window is the one instruction between taking the permit and counting it.
    pub(super) fn claim_slot(&self) -> SlotIndex {
        let (pid, start) = me();
        let slots = &self.holders;
        // A slot this process already holds (another of its threads has guards).
        for (i, s) in slots.iter().enumerate() {
            // SYNC(acquire ← the Release store that published the slot): `start` is the owner's.
            let mut w = s.word.load(Acquire);
            while unpack(w).0 == pid && s.start.load(Relaxed) == start {
                let (_, pins, held) = unpack(w);
                if pins == u16::MAX {
                    break; // full: look for another slot
                }
                match s.word.compare_exchange_weak(w, pack(pid, pins + 1, held), Acquire, Acquire) {
                    Ok(_) => return Some(i),
                    Err(now) => w = now,
                }
            }
        }
        // A free slot.
        for (i, s) in slots.iter().enumerate() {
            // Relaxed: a hint; the CAS decides.
            if s.word.load(Relaxed) == 0 && s.word.compare_exchange(0, pack(BUSY | pid, 0, 0), Acquire, Relaxed).is_ok()
            {
                s.start.store(start, Relaxed);
                // SYNC(release → claim/recover): `start` is visible before the slot names us.
                s.word.store(pack(pid, 1, 0), Release);
                return Some(i);
            }
        }
        None
    }

    /// Updates slot `i` of this process with `f(pins, held)`; a slot left with no pins is
    /// freed.
    pub(super) fn update_slot(&self, i: usize, f: impl Fn(u16, u16) -> (u16, u16)) {
        let s = &self.holders[i];
        // Relaxed: a hint; the CAS decides.
        let mut w = s.word.load(Relaxed);
        loop {
            let (pid, pins, held) = unpack(w);
            let (pins, held) = f(pins, held);
            let new = if pins == 0 { 0 } else { pack(pid, pins, held.min(pins)) };
            // SYNC(release → recover's acquire load): the count is what recovery gives back.
            match s.word.compare_exchange_weak(w, new, Release, Relaxed) {
                Ok(_) => return,
                Err(now) => w = now,
            }
        }
    }

    /// Leaves a claimed slot after an attempt that got no permit.
    pub(super) fn unclaim(&self, slot: SlotIndex) {
        if let Some(i) = slot {
            self.update_slot(i, |pins, held| (pins.saturating_sub(1), held));
        }
    }

    /// Gives back the permits of holders that have died (exited, reaped or not), and finishes
    /// recoveries whose recoverer died; returns how many permits it gave back.
    pub(super) fn recover_dead_holders(&self) -> u32 {
        let (me_pid, _) = me();
        let mut total = 0;
        for s in &self.holders {
            // SYNC(acquire ← claim's publication and every guard's count update).
            let w = s.word.load(Acquire);
            let (pid, _, held) = unpack(w);
            let start = s.start.load(Relaxed);
            let dead = match pid {
                0 => false,
                // Being set up or recovered: by a live process (or by us, on another thread),
                // leave it. Busy marks hold no start time: a pid reused within the
                // microseconds a recovery takes would only make us wait.
                p if p & BUSY != 0 => p != BUSY | me_pid && !sys::process::pid_alive(p & !BUSY),
                p => !alive(p, start),
            };
            if !dead {
                continue;
            }
            // Take the slot over: its `held` permits are now ours to give back.
            if s.word.compare_exchange(w, pack(BUSY | me_pid, 0, held), Acquire, Relaxed).is_err() {
                continue;
            }
            if pid & BUSY == 0 && s.start.load(Relaxed) != start {
                // Freed and claimed again meanwhile by a process with the same pid and counts:
                // not a dead holder. Release: as when the slot was published.
                s.word.store(w, Release);
                continue;
            }
            for left in (0..held).rev() {
                // Uncount, then give back: a death between the two loses one permit, never
                // duplicates one. Release: pairs with a taker-over's Acquire load.
                s.word.store(pack(BUSY | me_pid, 0, left), Release);
                self.give_back(1);
                total += 1;
            }
            s.start.store(0, Relaxed);
            // SYNC(release → claim): the slot is free only after it is fully reset.
            s.word.store(0, Release);
        }
        total
    }
}
