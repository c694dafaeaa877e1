//! The algorithm: Vyukov's bounded MPMC queue with per-slot stamps, plus claim records so that
//! a claimant that dies between its claim and its finishing step is recovered, and checks that
//! turn a corrupt segment into an error instead of a spin.
//!
//! # Slots and stamps
//! Positions are 64-bit counters that never wrap in practice. Slot `pos % capacity` is free for
//! the producer at `pos` when its stamp is `2·pos`, and holds the item for the consumer at
//! `pos` when its stamp is `2·pos + 1` (odd and even never collide, even with one slot); the
//! consumer frees it for the next lap with `2·(pos + capacity)`. A producer claims a position
//! with a CAS on `tail`, writes the value, then **publishes with a CAS** of the stamp; a
//! consumer claims with a CAS on `head`, reads, then frees with a CAS of the stamp.
//!
//! # Claim records
//! Right after its claim a process records itself in the slot: pid, start time, and the
//! **tag** of its claim (`2·pos + 1` for the producer at `pos`, `2·pos + 2` for the consumer;
//! never 0), written last. A record whose tag is not the stuck claim's tag belongs to an
//! earlier claimant of the slot and says nothing about this one: the claim is then
//! *unrecorded* (its claimant died in the two instructions between its claim and its record,
//! or is still about to write it).
//!
//! A position that stays claimed but unfinished is stuck; every caller that meets it (a `try_`
//! form included) looks at the shared *stuck watch* of its side: where a stuck position was
//! first seen and when. Once it has been stuck for [`STUCK_AFTER`], its claimant is checked:
//! dead (exited, reaped or not) → recovered at once; alive → left alone; unrecorded → presumed
//! dead after [`UNRECORDED_AFTER`]. A dead producer's slot is published as a *tombstone* that
//! consumers skip (nothing is lost: that item was never acknowledged); a dead consumer's slot
//! is freed (its item is lost with it, as documented for every queue). Because publishing and
//! freeing are CASes, a claimant that was merely slow sees its CAS fail and simply retries its
//! operation at a new position: no item is ever duplicated or torn. One case escapes: a live
//! producer presumed dead because it stalled for [`UNRECORDED_AFTER`] between its claim and its
//! record (stopped by a debugger, say) still writes its value afterwards, into a slot that may
//! have been handed on; the item there can then be wrong. The value is copied with atomic
//! accesses (`shm::atomic_bytes`) on both sides, so even then there is no data race.
//!
//! # Bounded work, corrupt segments
//! Each loop of `try_push`/`try_pop` either makes progress, finds a state it can name (full,
//! empty, a stuck claim), or finds its index stale and reloads it: it repeats only when another
//! process has moved the queue on. A stamp that fits no state for an index that did not move,
//! or indices more than a capacity apart, is a corrupt segment: [`Broken::Corrupt`], never a
//! spin.
//!
//! # Empty polls
//! A consumer that finds the head slot free must read `tail` to tell "empty" from "claimed by
//! a producer that has not published yet" (stuck, or about to publish). That read puts the
//! producers' line in the consumer's cache, and the next producer's claim must take it back:
//! one more cache-line transfer per message on a queue polled while empty, which cost a third
//! to a half of a cross-CPU round trip. So `ArrayQueue::try_pop` reads `tail` on every 32nd
//! empty poll of its handle only, and answers "empty" from the slot alone otherwise (a pop
//! that sees the slot free linearizes before the publication it did not see). Blocking pops
//! read it on every poll (they sleep in between anyway), so a stuck producer is still
//! noticed: by a blocking pop at once, by a polling `try_pop` within 32 polls, and recovered
//! after [`STUCK_AFTER`] as before.
//!
//! # Memory ordering
//! SYNC: the producer's publishing CAS (Release) → the consumer's stamp load (Acquire) before
//! reading the value; the consumer's freeing CAS (Release) → the producer's stamp load
//! (Acquire) before writing. Claims on `head`/`tail` are Relaxed CASes: the stamps carry the
//! synchronization. The claim record's tag is stored Release after pid and start time and
//! loaded Acquire before them.

use crate::loom::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::loom::cell::UnsafeCell;
use crate::queue::doorbell::{bump, wait_for, wake_if_sleepers};
use crate::shm::{ShmObject, ShmSafe};
use crate::sys::clock::monotonic_nanos;
use crate::wait::Limit;
use std::time::Duration;

/// How long a position may stay claimed but unfinished before its claimant is checked.
pub const STUCK_AFTER: Duration = Duration::from_millis(10);

/// How long a claimant may take to record itself before it is presumed dead.
pub const UNRECORDED_AFTER: Duration = Duration::from_secs(1);

/// Stamp bit marking a tombstone: a dead producer's slot, skipped by consumers.
const TOMB: u64 = 1 << 63;

#[repr(C)]
pub(crate) struct Slot<T> {
    stamp: AtomicU64,
    /// Tag of the claim the record below belongs to (0: none).
    tag: AtomicU64,
    /// pid of the recorded claimant.
    pid: AtomicU32,
    /// In the integrity mode, the CRC32C of the value's bytes, written before the publishing
    /// CAS (which publishes it) and checked by the consumer that takes the value.
    crc: AtomicU32,
    /// Start time of the recorded claimant.
    start: AtomicU64,
    value: UnsafeCell<T>,
}

/// Where a stuck position of one side was first seen, and when (`CLOCK_MONOTONIC`, ns).
#[repr(C)]
pub(crate) struct Watch {
    /// The stuck position + 1 (0: none seen).
    pos: AtomicU64,
    since: AtomicU64,
}

/// The queue's shared indices and wake-up words, each index on its own cache line.
#[repr(C, align(128))]
pub(crate) struct Header {
    head: AtomicU64,
    /// Stuck consumers (a `head` position claimed and not freed).
    pop_watch: Watch,
    _pad0: [u8; 128 - 24],
    tail: AtomicU64,
    /// Stuck producers (a `tail` position claimed and not published).
    push_watch: Watch,
    _pad1: [u8; 128 - 24],
    /// Bumped (by 2; bit 0 = sleepers) after every push.
    not_empty: AtomicU32,
    /// Bumped after every pop.
    not_full: AtomicU32,
}

// SAFETY: all-zero is an empty queue at position 0 with nobody asleep and no stuck position;
// atomics only, every value checked where it is used (indices against each other and the
// stamps, watches only delay a recovery).
unsafe impl ShmObject for Header {}

impl Header {
    /// Raises the sleepers flag of `not_empty` for [`wait`](crate::wait) and returns the word
    /// with the value to sleep on; the SeqCst fence makes the flag and the caller's re-check of
    /// `len` the Dekker partner of `wake_if_sleepers` after a push.
    #[cfg(not(all(test, loom)))]
    pub(crate) fn announce_not_empty(&self) -> (&AtomicU32, u32) {
        let word = &self.not_empty;
        // Relaxed + the fence below: as in `doorbell::wait_for`.
        let v = word.fetch_or(1, Relaxed) | 1;
        crate::loom::atomic::fence(crate::loom::atomic::Ordering::SeqCst);
        (word, v)
    }

    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn new() -> Header {
        let watch = || Watch { pos: AtomicU64::new(0), since: AtomicU64::new(0) };
        Header {
            head: AtomicU64::new(0),
            pop_watch: watch(),
            _pad0: [0; 128 - 24],
            tail: AtomicU64::new(0),
            push_watch: watch(),
            _pad1: [0; 128 - 24],
            not_empty: AtomicU32::new(0),
            not_full: AtomicU32::new(0),
        }
    }
}

impl<T: ShmSafe> Slot<T> {
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn new(stamp: u64) -> Slot<T> {
        Slot {
            stamp: AtomicU64::new(stamp),
            tag: AtomicU64::new(0),
            pid: AtomicU32::new(0),
            crc: AtomicU32::new(0),
            start: AtomicU64::new(0),
            value: UnsafeCell::new(T::new_zeroed()),
        }
    }

    /// Overwrites the value in place, as a scribbling peer would (tests).
    #[cfg(test)]
    pub(crate) fn scribble(&self, v: T) {
        // SAFETY: single-threaded tests only; the cell holds a `T` (valid for any bits).
        self.value.with_mut(|p| unsafe { p.write(v) });
    }

    /// Sets the stamp (creation only, before the queue is shared).
    pub(crate) fn init(&self, stamp: u64) {
        // Relaxed: not shared yet (fork or the segment's publication orders it).
        self.stamp.store(stamp, Relaxed);
    }
}

// SAFETY: all-zero is stamp 0, no record, a zeroed `T` (valid: `T: ShmSafe` is FromBytes);
// the queue initializes every stamp before sharing; only atomics and the value cell, whose
// access is serialized by the stamp protocol; no pointers.
unsafe impl<T: ShmSafe> ShmObject for Slot<T> {}
// SAFETY: as above; values are `Send + Sync` plain data.
unsafe impl<T: ShmSafe> Sync for Slot<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Send for Slot<T> {}

/// Why an operation did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Broken {
    /// Full (push) or empty (pop) now, or blocked behind a stuck claim.
    Busy,
    /// The shared state is inconsistent: which check failed.
    Corrupt(&'static str),
}

/// What is known of a stuck claim's claimant.
enum Claimant {
    Alive,
    Dead,
    Unrecorded,
}

/// A view of a queue: its header and its slots, wherever they live.
pub(crate) struct Core<'a, T> {
    pub(crate) hdr: &'a Header,
    pub(crate) slots: &'a [Slot<T>],
    /// The integrity mode: each value carries a CRC32C of its bytes (`ArrayQueueBuilder::integrity`).
    pub(crate) crc: bool,
}

impl<T: ShmSafe> Core<'_, T> {
    fn cap(&self) -> u64 {
        self.slots.len() as u64
    }

    fn slot(&self, pos: u64) -> &Slot<T> {
        &self.slots[(pos % self.cap()) as usize]
    }

    pub(crate) fn len(&self) -> usize {
        // Relaxed: a snapshot.
        let t = self.hdr.tail.load(Relaxed);
        let h = self.hdr.head.load(Relaxed);
        t.saturating_sub(h).min(self.cap()) as usize
    }

    /// Records this process (`me`, its identity taken before the claim) as the claimant of
    /// `slot` for the claim tagged `tag`.
    fn record(slot: &Slot<T>, tag: u64, me: (u32, u64)) {
        let (pid, start) = me;
        slot.pid.store(pid, Relaxed);
        slot.start.store(start, Relaxed);
        // SYNC(release → claimant's acquire load): pid and start are visible with the tag.
        slot.tag.store(tag, Release);
    }

    fn claimant(slot: &Slot<T>, tag: u64) -> Claimant {
        // SYNC(acquire ← record).
        if slot.tag.load(Acquire) != tag {
            return Claimant::Unrecorded;
        }
        let (pid, start) = (slot.pid.load(Relaxed), slot.start.load(Relaxed));
        // The record could have been overwritten by a later claim of the slot meanwhile: it
        // cannot, while this claim is stuck (nobody else can claim the slot before it ends).
        if crate::sys::process::is_alive(pid, start) {
            Claimant::Alive
        } else {
            Claimant::Dead
        }
    }

    /// Whether the claim of `pos` (tagged `tag`, in `slot`) should be recovered now: it has
    /// been stuck for [`STUCK_AFTER`] and its claimant is dead, or unrecorded for
    /// [`UNRECORDED_AFTER`]. Keeps the side's stuck watch up to date.
    fn should_recover(watch: &Watch, slot: &Slot<T>, pos: u64, tag: u64) -> bool {
        let now = monotonic_nanos();
        // Relaxed: the watch only delays or hastens a check whose outcome the CASes decide.
        if watch.pos.load(Relaxed) != pos.wrapping_add(1) {
            watch.since.store(now, Relaxed);
            watch.pos.store(pos.wrapping_add(1), Relaxed);
            return false;
        }
        let age = Duration::from_nanos(now.saturating_sub(watch.since.load(Relaxed)));
        if age < STUCK_AFTER {
            return false;
        }
        match Self::claimant(slot, tag) {
            Claimant::Dead => true,
            Claimant::Alive => false,
            Claimant::Unrecorded => age >= UNRECORDED_AFTER,
        }
    }

    /// Tries to push; gives the value back if the queue is full (or blocked behind a stuck
    /// consumer) or corrupt.
    pub(crate) fn try_push(&self, value: T) -> Result<(), (T, Broken)> {
        let cap = self.cap();
        // Before any claim: the first call in a process reads /proc (tens of microseconds),
        // which must not widen the window between a claim and its record.
        let me = crate::sys::process::self_identity();
        let sum = self.crc.then(|| crate::queue::crc32c::crc32c(zerocopy::IntoBytes::as_bytes(&value)));
        let mut spins = 0;
        loop {
            // Relaxed: the stamp below carries the synchronization.
            let t = self.hdr.tail.load(Relaxed);
            let slot = self.slot(t);
            // SYNC(acquire ← the consumer's freeing CAS).
            let s = slot.stamp.load(Acquire);
            if s == x2(t) {
                if self.hdr.tail.compare_exchange_weak(t, t.wrapping_add(1), Relaxed, Relaxed).is_err() {
                    continue; // another producer took `t`
                }
                Self::record(slot, x2(t) | 1, me);
                // SAFETY: `p` points to the slot's value, in the mapping the queue keeps alive,
                // aligned for `T`; the copy is atomic (`atomic_bytes`), as every access to the
                // value is. We own position `t` (won the CAS) and the stamp says the slot is free
                // for it; a claimant presumed dead while it was only stalled (unrecorded for
                // `UNRECORDED_AFTER`) may still write here late, which atomic copies make a
                // wrong value for a recycled slot, never a data race.
                slot.value.with_mut(|p| unsafe { crate::shm::atomic_bytes::store(p, value) });
                if let Some(sum) = sum {
                    // Relaxed: published by the stamp CAS below.
                    slot.crc.store(sum, Relaxed);
                }
                // SYNC(release → pop's acquire stamp load). A CAS, so that a peer that
                // declared us dead (tombstone) is noticed instead of overwritten.
                if slot.stamp.compare_exchange(x2(t), x2(t) | 1, Release, Relaxed).is_ok() {
                    wake_if_sleepers(&self.hdr.not_empty);
                    return Ok(());
                }
                continue; // tombstoned while we were slow: try again at a new position
            }
            let Some(prev) = t.checked_sub(cap) else {
                // First lap: the stamp can only be 2t, or our `tail` is stale.
                if self.hdr.tail.load(Relaxed) == t {
                    return Err((value, Broken::Corrupt("slot stamp inconsistent with the tail")));
                }
                continue;
            };
            if s & !TOMB == x2(prev) | 1 {
                // The slot still holds last lap's item: full, unless its consumer died after
                // claiming it (head moved past it).
                // Relaxed: a snapshot; the stamp CAS below decides.
                let h = self.hdr.head.load(Relaxed);
                if h > t || t - h > cap {
                    // Only a stale `tail` (older than `head`) explains this in a sound queue.
                    if self.hdr.tail.load(Relaxed) != t {
                        continue;
                    }
                    return Err((value, Broken::Corrupt("head and tail more than a capacity apart")));
                }
                if h > prev && spin(&mut spins) {
                    continue; // the consumer is most likely between its two steps right now
                }
                if h > prev && Self::should_recover(&self.hdr.pop_watch, slot, prev, x2(prev).wrapping_add(2)) {
                    // Free it for the dead consumer (its item is lost with it).
                    if slot.stamp.compare_exchange(s, x2(t), Release, Relaxed).is_ok() {
                        bump(&self.hdr.not_full);
                    }
                    continue;
                }
                return Err((value, Broken::Busy));
            }
            if s == x2(prev) {
                // Last lap's producer has not published yet: full here until it does, or until
                // a consumer declares it dead.
                if spin(&mut spins) {
                    continue;
                }
                return Err((value, Broken::Busy));
            }
            // Our `tail` is stale, or the stamp is garbage.
            if self.hdr.tail.load(Relaxed) == t {
                return Err((value, Broken::Corrupt("slot stamp inconsistent with the tail")));
            }
        }
    }

    /// Whether a pop has something to do now (readiness for `wait` and async pops): the head
    /// slot holds an item or a tombstone to skip, a producer that claimed the head position is
    /// dead and due to be recovered, or the indices or the stamp fit no state of a sound queue
    /// (the pop reports it). A position claimed but not yet published by a live producer, or a
    /// slot last lap's consumer has not freed, is not ready: a waiter woken for it would find
    /// nothing and come straight back, spinning for as long as that producer is stopped.
    pub(crate) fn pop_ready(&self) -> bool {
        let cap = self.cap();
        // Relaxed: snapshots; the stamp decides (and a stale pair costs one look).
        let h = self.hdr.head.load(Relaxed);
        let t = self.hdr.tail.load(Relaxed);
        if t < h || t - h > cap {
            return true;
        }
        let slot = self.slot(h);
        // SYNC(acquire ← push's publishing CAS), as in `try_pop`.
        let s = slot.stamp.load(Acquire);
        if s & !TOMB == x2(h) | 1 {
            return true;
        }
        if s == x2(h) {
            return t > h && Self::should_recover(&self.hdr.push_watch, slot, h, x2(h) | 1);
        }
        // Last lap's item not freed yet: producers recover a dead consumer, not pops.
        h.checked_sub(cap).is_none_or(|prev| s & !TOMB != x2(prev) | 1)
    }

    /// Tries to pop; `Err(Busy)` if the queue is empty (or blocked behind a stuck producer).
    pub(crate) fn try_pop(&self) -> Result<T, Broken> {
        self.try_pop_looking(|| true)
    }

    /// [`try_pop`](Self::try_pop) that, finding the head slot free, reads the producers'
    /// `tail` only if `look_at_tail()` says so (see "Empty polls" in the module docs);
    /// otherwise it answers `Busy` (empty) at once.
    pub(crate) fn try_pop_looking(&self, look_at_tail: impl FnOnce() -> bool) -> Result<T, Broken> {
        let mut look_at_tail = Some(look_at_tail);
        let cap = self.cap();
        // Before any claim (see `try_push`).
        let me = crate::sys::process::self_identity();
        let mut spins = 0;
        loop {
            // Relaxed: the stamp carries the synchronization.
            let h = self.hdr.head.load(Relaxed);
            let slot = self.slot(h);
            // SYNC(acquire ← push's publishing CAS).
            let s = slot.stamp.load(Acquire);
            if s & !TOMB == x2(h) | 1 {
                if self.hdr.head.compare_exchange_weak(h, h.wrapping_add(1), Relaxed, Relaxed).is_err() {
                    continue; // another consumer took `h`
                }
                Self::record(slot, x2(h).wrapping_add(2), me);
                // SAFETY: as in `try_push`: the value lies in the live mapping, aligned, read
                // atomically; `T: ShmSafe` is valid for any bits. We own position `h` and the
                // stamp says the value was published.
                let v = slot.value.with(|p| unsafe { crate::shm::atomic_bytes::load(p) });
                // Relaxed: published with the value by the stamp loaded (Acquire) above.
                let sealed = !self.crc
                    || crate::queue::crc32c::crc32c(zerocopy::IntoBytes::as_bytes(&v)) == slot.crc.load(Relaxed);
                // SYNC(release → push's acquire stamp load).
                let freed = slot.stamp.compare_exchange(s, x2(h.wrapping_add(cap)), Release, Relaxed).is_ok();
                wake_if_sleepers(&self.hdr.not_full);
                if s & TOMB != 0 || !freed {
                    continue; // a tombstone, or we were declared dead: no item here
                }
                if !sealed {
                    // Taken and dropped: the queue goes on with the next item.
                    return Err(Broken::Corrupt("item does not match its checksum"));
                }
                return Ok(v);
            }
            if s == x2(h) {
                // Free slot: empty, unless a producer claimed this position (tail moved past).
                // Only the first time round: a retry after a spin looks again.
                if !look_at_tail.take().is_none_or(|look| look()) {
                    return Err(Broken::Busy);
                }
                // Relaxed: a snapshot.
                let t = self.hdr.tail.load(Relaxed);
                if t < h || t - h > cap {
                    // Only a stale `head` (older than `tail`) explains this in a sound queue.
                    if self.hdr.head.load(Relaxed) != h {
                        continue;
                    }
                    return Err(Broken::Corrupt("head and tail more than a capacity apart"));
                }
                if t > h && spin(&mut spins) {
                    continue; // the producer is most likely between its claim and its publish
                }
                if t > h && Self::should_recover(&self.hdr.push_watch, slot, h, x2(h) | 1) {
                    // A dead producer: publish a tombstone that consumers skip.
                    let _ = slot.stamp.compare_exchange(x2(h), x2(h) | 1 | TOMB, Release, Relaxed);
                    continue;
                }
                return Err(Broken::Busy);
            }
            if h.checked_sub(cap).is_some_and(|prev| s & !TOMB == x2(prev) | 1) {
                // Last lap's consumer took its item but has not freed the slot yet: nothing for
                // us here until it does (or until a producer finds it dead and frees it).
                if spin(&mut spins) {
                    continue;
                }
                return Err(Broken::Busy);
            }
            // Our `head` is stale (the slot moved on to a later lap), or the stamp is garbage.
            if self.hdr.head.load(Relaxed) == h {
                return Err(Broken::Corrupt("slot stamp inconsistent with the head"));
            }
        }
    }

    /// Pushes, sleeping while full, until `limit`.
    pub(crate) fn push_until(&self, value: T, limit: Limit) -> Result<(), (T, Broken)> {
        let mut value = value;
        loop {
            match self.try_push(value) {
                Ok(()) => return Ok(()),
                Err((v, Broken::Busy)) if !limit.passed() => value = v,
                Err(e) => return Err(e),
            }
            let mut held = Some(value);
            let mut broken = None;
            let pushed = wait_for(&self.hdr.not_full, slice_until(limit), || {
                let v = held.take()?;
                match self.try_push(v) {
                    Ok(()) => Some(()),
                    Err((v, b)) => {
                        if b != Broken::Busy {
                            broken = Some(b);
                        }
                        held = Some(v);
                        None
                    }
                }
            });
            if pushed.is_some() {
                return Ok(());
            }
            value = held.expect("the value is back whenever nothing was pushed");
            if let Some(b) = broken {
                return Err((value, b));
            }
        }
    }

    /// Pops, sleeping while empty, until `limit`.
    pub(crate) fn pop_until(&self, limit: Limit) -> Result<T, Broken> {
        loop {
            match self.try_pop() {
                Ok(v) => return Ok(v),
                Err(Broken::Busy) if !limit.passed() => {}
                Err(e) => return Err(e),
            }
            let mut broken = None;
            let got = wait_for(&self.hdr.not_empty, slice_until(limit), || match self.try_pop() {
                Ok(v) => Some(v),
                Err(Broken::Busy) => None,
                Err(b) => {
                    broken = Some(b);
                    None
                }
            });
            if let Some(v) = got {
                return Ok(v);
            }
            if let Some(b) = broken {
                return Err(b);
            }
        }
    }
}

/// `2·pos`, the stamp of a position. Positions come from shared memory: a corrupt one may be
/// near `u64::MAX`, so this wraps rather than panics (the stamps then simply do not match).
fn x2(pos: u64) -> u64 {
    pos.wrapping_mul(2)
}

/// Spins a little while a peer is likely between two steps of its operation (a few hundred
/// nanoseconds); `false` once the budget of one call is spent.
fn spin(spins: &mut u32) -> bool {
    // Under loom every spin is a scheduling point: one is enough to explore both orders.
    #[cfg(not(all(test, loom)))]
    const SPINS: u32 = 128;
    #[cfg(all(test, loom))]
    const SPINS: u32 = 1;
    if *spins < SPINS {
        *spins += 1;
        crate::loom::hint::spin_loop();
        true
    } else {
        false
    }
}

/// The earlier of `limit` and one recovery slice from now (so stuck claimants are looked at).
#[cfg(not(all(test, loom)))]
fn slice_until(limit: Limit) -> Option<crate::sys::clock::Deadline> {
    limit.slice(STUCK_AFTER)
}

/// Under loom, no recovery slice: an untimed wait must then be ended by a wake-up, so the
/// models prove the sleep/wake protocol on its own (a lost wake-up is a loom deadlock) instead
/// of leaning on the slice that covers dead claimants.
#[cfg(all(test, loom))]
fn slice_until(limit: Limit) -> Option<crate::sys::clock::Deadline> {
    limit.deadline_opt()
}

#[cfg(any(test, feature = "test-hooks"))]
impl<T: ShmSafe> Core<'_, T> {
    /// `(head, tail)` (tests).
    pub(crate) fn indices(&self) -> (u64, u64) {
        // Relaxed: a snapshot for tests.
        (self.hdr.head.load(Relaxed), self.hdr.tail.load(Relaxed))
    }

    /// Overwrites `head`/`tail`, as a crashed or hostile peer could (tests).
    pub(crate) fn set_indices(&self, head: Option<u64>, tail: Option<u64>) {
        // Relaxed: tests play a faulty peer; the queue must cope with any value.
        if let Some(h) = head {
            self.hdr.head.store(h, Relaxed);
        }
        if let Some(t) = tail {
            self.hdr.tail.store(t, Relaxed);
        }
    }

    /// Plays a producer (`push`) or consumer that claimed the next position, recorded itself as
    /// `(pid, start)` (unless `pid` is 0) and stopped there (tests).
    pub(crate) fn claim_as(&self, push: bool, pid: u32, start: u64) {
        let (index, tag) = if push { (&self.hdr.tail, 1) } else { (&self.hdr.head, 2) };
        // Relaxed: tests play a peer in one thread.
        let pos = index.fetch_add(1, Relaxed);
        if pid != 0 {
            let slot = self.slot(pos);
            slot.pid.store(pid, Relaxed);
            slot.start.store(start, Relaxed);
            // Release: as in `record`.
            slot.tag.store(x2(pos).wrapping_add(tag), Release);
        }
    }

    /// Overwrites slot `i`'s stamp (tests).
    pub(crate) fn set_stamp(&self, i: usize, stamp: u64) {
        if let Some(s) = self.slots.get(i) {
            // Relaxed: as in `set_indices`.
            s.stamp.store(stamp, Relaxed);
        }
    }
}
