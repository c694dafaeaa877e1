//! `ArrayQueue<T: ShmSafe>`: a bounded lock-free MPMC queue of fixed-size plain-data slots in
//! shared memory (Vyukov's bounded queue with per-slot sequence numbers, as crossbeam's
//! `ArrayQueue`), with blocking forms over futex words.
//!
//! # Slots and stamps
//! Positions are 64-bit counters that never wrap in practice. Slot `pos % capacity` is free for
//! the producer at `pos` when its stamp is `2·pos`, and holds the item for the consumer at
//! `pos` when its stamp is `2·pos + 1` (odd and even never collide, even with one slot); the
//! consumer frees it for the next lap with `2·(pos + capacity)`. A producer claims a position
//! with a CAS on `tail`, writes the value, then **publishes with a CAS** of the stamp; a
//! consumer claims with a CAS on `head`, reads, then frees with a CAS of the stamp.
//!
//! # A claimant that dies
//! Right after its claim, a process records itself (pid + start time) in the slot. A peer that
//! finds a position claimed but unfinished for longer than [`STUCK_AFTER`] checks that record:
//! if the claimant is dead (or never recorded itself within [`UNRECORDED_AFTER`]), the peer
//! finishes the step for it: a dead producer's slot is published as a *tombstone* that
//! consumers skip (nothing is lost: that item was never acknowledged), a dead consumer's slot
//! is freed (its item is lost with it, as documented for every queue). Because publishing and
//! freeing are CASes, a claimant that was merely slow sees its CAS fail and simply retries its
//! operation at a new position: no item is ever duplicated or torn.
//!
//! # Memory ordering
//! SYNC: the producer's publishing CAS (Release) → the consumer's stamp load (Acquire) before
//! reading the value; the consumer's freeing CAS (Release) → the producer's stamp load
//! (Acquire) before writing. Claims on `head`/`tail` are Relaxed CASes: the stamps carry the
//! synchronization.

use super::doorbell::{bump, wait_for, wake_if_sleepers};
use crate::loom::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::loom::cell::UnsafeCell;
use crate::shm::{Segment, ShmError, ShmObject, ShmRef, ShmSafe};
use crate::sys::clock::Deadline;
use std::fmt;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// How long a position may stay claimed but unfinished before its claimant is checked.
pub const STUCK_AFTER: Duration = Duration::from_millis(10);

/// How long a claimant may take to record itself before it is presumed dead.
pub const UNRECORDED_AFTER: Duration = Duration::from_secs(1);

/// Stamp bit marking a tombstone: a dead producer's slot, skipped by consumers.
const TOMB: u64 = 1 << 63;

#[repr(C)]
struct Slot<T> {
    stamp: AtomicU64,
    /// pid of the current claimant (0: none recorded).
    pid: AtomicU32,
    _pad: AtomicU32,
    start: AtomicU64,
    value: UnsafeCell<T>,
}

/// The queue's shared indices and wake-up words.
#[repr(C)]
pub(crate) struct Header {
    head: AtomicU64,
    _pad0: [u64; 15],
    tail: AtomicU64,
    _pad1: [u64; 15],
    /// Bumped (by 2; bit 0 = sleepers) after every push.
    not_empty: AtomicU32,
    /// Bumped after every pop.
    not_full: AtomicU32,
}

// SAFETY: all-zero is an empty queue at position 0 with nobody asleep; atomics only.
unsafe impl crate::shm::ShmObject for Header {}

impl Header {
    fn new() -> Header {
        Header {
            head: AtomicU64::new(0),
            _pad0: [0; 15],
            tail: AtomicU64::new(0),
            _pad1: [0; 15],
            not_empty: AtomicU32::new(0),
            not_full: AtomicU32::new(0),
        }
    }
}

impl<T: ShmSafe> Slot<T> {
    fn new(stamp: u64) -> Slot<T> {
        Slot {
            stamp: AtomicU64::new(stamp),
            pid: AtomicU32::new(0),
            _pad: AtomicU32::new(0),
            start: AtomicU64::new(0),
            value: UnsafeCell::new(T::new_zeroed()),
        }
    }
}

/// A view of a queue: its header and its slots, wherever they live.
pub(crate) struct Core<'a, T> {
    hdr: &'a Header,
    slots: &'a [Slot<T>],
}

impl<T: ShmSafe> Core<'_, T> {
    fn slot(&self, pos: u64) -> &Slot<T> {
        &self.slots[(pos % self.slots.len() as u64) as usize]
    }

    pub(crate) fn len(&self) -> usize {
        // Relaxed: a snapshot.
        let t = self.hdr.tail.load(Relaxed);
        let h = self.hdr.head.load(Relaxed);
        t.saturating_sub(h).min(self.slots.len() as u64) as usize
    }

    fn record(slot: &Slot<T>) {
        let (pid, start) = crate::sys::process::self_identity();
        slot.start.store(start, Relaxed);
        // SYNC(release → check_claimant): start is visible with the pid.
        slot.pid.store(pid, Release);
    }

    /// Whether the recorded claimant of `slot` is known dead, or unrecorded for too long.
    fn claimant_gone(slot: &Slot<T>, stuck_since: Instant) -> bool {
        // SYNC(acquire ← record).
        let pid = slot.pid.load(Acquire);
        if pid == 0 {
            return stuck_since.elapsed() >= UNRECORDED_AFTER;
        }
        !crate::sys::process::is_alive(pid, slot.start.load(Relaxed))
    }

    /// Tries to push; gives the value back if the queue is full.
    pub(crate) fn try_push(&self, value: T) -> Result<(), T> {
        let cap = self.slots.len() as u64;
        let mut stuck: Option<(u64, Instant)> = None;
        loop {
            // Relaxed: the stamp below carries the synchronization.
            let t = self.hdr.tail.load(Relaxed);
            let slot = self.slot(t);
            // SYNC(acquire ← the consumer's freeing CAS).
            let s = slot.stamp.load(Acquire);
            if s == 2 * t {
                if self.hdr.tail.compare_exchange_weak(t, t + 1, Relaxed, Relaxed).is_ok() {
                    Self::record(slot);
                    // SAFETY: we own position `t` (won the CAS) and the stamp says the slot is
                    // free for it, so no other process reads or writes the value now.
                    slot.value.with_mut(|p| unsafe { p.write(value) });
                    // SYNC(release → pop's acquire stamp load). A CAS, so that a peer that
                    // declared us dead (tombstone) is noticed instead of overwritten.
                    if slot.stamp.compare_exchange(2 * t, 2 * t + 1, Release, Relaxed).is_ok() {
                        wake_if_sleepers(&self.hdr.not_empty);
                        return Ok(());
                    }
                    // Tombstoned while we were slow: try again at a new position.
                    continue;
                }
                continue;
            }
            let last_lap_full = t.checked_sub(cap).is_some_and(|p| s & !TOMB == 2 * p + 1);
            if last_lap_full {
                // The slot still holds last lap's item: full, unless its consumer died after
                // claiming it (head moved past it).
                // Relaxed: a snapshot; the stamp CAS below decides.
                let h = self.hdr.head.load(Relaxed);
                if h > t - cap {
                    // (t ≥ cap here: `last_lap_full` needs a previous lap.)
                    let since = match stuck {
                        Some((p, at)) if p == t => at,
                        _ => {
                            stuck = Some((t, Instant::now()));
                            crate::loom::hint::spin_loop();
                            continue;
                        }
                    };
                    if since.elapsed() >= STUCK_AFTER && Self::claimant_gone(slot, since) {
                        // Free it for the dead consumer (its item is lost with it).
                        let _ = slot.stamp.compare_exchange(s, 2 * t, Release, Relaxed);
                        bump(&self.hdr.not_full);
                    }
                    crate::loom::hint::spin_loop();
                    continue;
                }
                return Err(value);
            }
            crate::loom::hint::spin_loop();
        }
    }

    /// Tries to pop; `None` if the queue is empty.
    pub(crate) fn try_pop(&self) -> Option<T> {
        let cap = self.slots.len() as u64;
        let mut stuck: Option<(u64, Instant)> = None;
        loop {
            // Relaxed: the stamp carries the synchronization.
            let h = self.hdr.head.load(Relaxed);
            let slot = self.slot(h);
            // SYNC(acquire ← push's publishing CAS).
            let s = slot.stamp.load(Acquire);
            if s & !TOMB == 2 * h + 1 {
                if self.hdr.head.compare_exchange_weak(h, h + 1, Relaxed, Relaxed).is_ok() {
                    Self::record(slot);
                    // SAFETY: we own position `h` and the stamp says the value was published;
                    // `T: ShmSafe` is Copy and valid for any bits.
                    let v = slot.value.with(|p| unsafe { p.read() });
                    // SYNC(release → push's acquire stamp load).
                    let freed = slot.stamp.compare_exchange(s, 2 * (h + cap), Release, Relaxed).is_ok();
                    wake_if_sleepers(&self.hdr.not_full);
                    if s & TOMB != 0 || !freed {
                        continue; // a tombstone, or we were declared dead: no item here
                    }
                    return Some(v);
                }
                continue;
            }
            if s == 2 * h {
                // Free slot: empty, unless a producer claimed this position (tail moved past).
                // Relaxed: a snapshot.
                let t = self.hdr.tail.load(Relaxed);
                if t > h {
                    let since = match stuck {
                        Some((p, at)) if p == h => at,
                        _ => {
                            stuck = Some((h, Instant::now()));
                            crate::loom::hint::spin_loop();
                            continue;
                        }
                    };
                    if since.elapsed() >= STUCK_AFTER && Self::claimant_gone(slot, since) {
                        // A dead producer: publish a tombstone that consumers skip.
                        let _ = slot.stamp.compare_exchange(2 * h, (2 * h + 1) | TOMB, Release, Relaxed);
                    }
                    crate::loom::hint::spin_loop();
                    continue;
                }
                return None;
            }
            crate::loom::hint::spin_loop();
        }
    }

    pub(crate) fn push_until(&self, value: T, deadline: Option<Deadline>) -> Result<(), T> {
        let mut value = Some(value);
        loop {
            let v = value.take().expect("value present until pushed");
            match self.try_push(v) {
                Ok(()) => return Ok(()),
                Err(v) => value = Some(v),
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                return Err(value.take().expect("value present"));
            }
            let until = slice_until(deadline);
            let pushed = wait_for(&self.hdr.not_full, until, || {
                let v = value.take()?;
                match self.try_push(v) {
                    Ok(()) => Some(()),
                    Err(v) => {
                        value = Some(v);
                        None
                    }
                }
            });
            if pushed.is_some() {
                return Ok(());
            }
        }
    }

    pub(crate) fn pop_until(&self, deadline: Option<Deadline>) -> Option<T> {
        loop {
            if let Some(v) = self.try_pop() {
                return Some(v);
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                return None;
            }
            if let Some(v) = wait_for(&self.hdr.not_empty, slice_until(deadline), || self.try_pop()) {
                return Some(v);
            }
        }
    }
}

/// The earlier of `deadline` and one recovery slice from now (so stuck claimants are looked at).
#[cfg(not(loom))]
fn slice_until(deadline: Option<Deadline>) -> Option<Deadline> {
    match (deadline, Deadline::after(STUCK_AFTER)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Under loom, no recovery slice: an untimed wait must then be ended by a wake-up, so the
/// models prove the sleep/wake protocol on its own (a lost wake-up is a loom deadlock) instead
/// of leaning on the slice that covers dead claimants.
#[cfg(loom)]
fn slice_until(deadline: Option<Deadline>) -> Option<Deadline> {
    deadline
}

// SAFETY: all-zero is stamp 0, no claimant, a zeroed `T` (valid: `T: ShmSafe` is FromBytes);
// the queue initializes every stamp before sharing; only atomics and the value cell, whose
// access is serialized by the stamp protocol; no pointers.
unsafe impl<T: ShmSafe> ShmObject for Slot<T> {}
// SAFETY: as above; values are `Send + Sync` plain data.
unsafe impl<T: ShmSafe> Sync for Slot<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Send for Slot<T> {}

/// A bounded lock-free MPMC queue of plain-data items in shared memory, shared with children
/// forked after its creation (Vyukov's sequence-stamped slots). A producer or consumer that
/// dies between claiming and finishing a slot is detected after [`STUCK_AFTER`] and skipped or
/// freed, so the queue never wedges; details in the repository's `docs/FAILURE.md`.
///
/// # Examples
///
/// ```
/// use multiproc::{ArrayQueue, Process};
///
/// let q = ArrayQueue::<u64>::new(1024)?;
/// let child = Process::new({
///     let q = q.clone();
///     move || for i in 0..100u64 { q.push(i).unwrap() }
/// });
/// child.start()?;
/// let sum: u64 = (0..100).map(|_| q.pop()).sum();
/// assert_eq!(sum, 4950);
/// child.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ArrayQueue<T: ShmSafe> {
    hdr: ShmRef<Header>,
    slots: NonNull<Slot<T>>,
    cap: usize,
    _seg: Segment,
}

impl<T: ShmSafe> Clone for ArrayQueue<T> {
    fn clone(&self) -> Self {
        ArrayQueue { hdr: self.hdr.clone(), slots: self.slots, cap: self.cap, _seg: self._seg.clone() }
    }
}

// SAFETY: `slots` points into `_seg`, which the handle keeps mapped; all shared access follows
// the stamp protocol; `T` is plain `Send + Sync` data.
unsafe impl<T: ShmSafe> Send for ArrayQueue<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for ArrayQueue<T> {}

impl<T: ShmSafe> fmt::Debug for ArrayQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayQueue").field("len", &self.len()).field("capacity", &self.cap).finish()
    }
}

/// A push that did not happen gives the value back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is full")
    }
}

impl<T> std::error::Error for Full<T> {}

impl<T: ShmSafe> ArrayQueue<T> {
    /// A queue of `capacity` slots (at least 1) in a fresh anonymous segment.
    ///
    /// # Errors
    /// [`ShmError`] if the segment cannot be mapped or the size overflows.
    pub fn new(capacity: usize) -> Result<ArrayQueue<T>, ShmError> {
        let cap = capacity.max(1);
        let size = std::mem::size_of::<Slot<T>>();
        let bytes = cap.checked_mul(size).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        let seg = Segment::anonymous(bytes + std::mem::size_of::<Header>() + 2 * 128)?;
        let hdr: ShmRef<Header> = seg.alloc_object()?;
        let off = seg.alloc(bytes, std::mem::align_of::<Slot<T>>().max(8))?;
        let slots = seg.bytes_at(off, bytes)?.cast::<Slot<T>>();
        let q = ArrayQueue { hdr, slots, cap, _seg: seg };
        for (i, s) in q.core().slots.iter().enumerate() {
            // Relaxed: the queue is not shared yet (fork publishes it).
            s.stamp.store(2 * i as u64, Relaxed);
        }
        Ok(q)
    }

    fn core(&self) -> Core<'_, T> {
        // SAFETY: `slots..slots+cap` was allocated for this queue in the segment the handle keeps
        // mapped, aligned for `Slot<T>`, and zero-initialized (a valid `Slot<T>`, see the
        // ShmObject impl); shared access goes through atomics and the stamp protocol.
        let slots = unsafe { std::slice::from_raw_parts(self.slots.as_ptr(), self.cap) };
        Core { hdr: &self.hdr, slots }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Items in the queue now (a snapshot).
    pub fn len(&self) -> usize {
        self.core().len()
    }

    /// Whether the queue is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is full now.
    pub fn is_full(&self) -> bool {
        self.len() >= self.cap
    }

    /// Pushes without waiting; gives the value back if the queue is full.
    pub fn try_push(&self, value: T) -> Result<(), Full<T>> {
        self.core().try_push(value).map_err(Full)
    }

    /// Pushes, waiting while the queue is full.
    pub fn push(&self, value: T) -> Result<(), Full<T>> {
        self.core().push_until(value, None).map_err(Full)
    }

    /// Pushes, waiting at most `timeout`.
    pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<(), Full<T>> {
        self.core().push_until(value, Deadline::after(timeout)).map_err(Full)
    }

    /// Pushes, waiting until `deadline`.
    pub fn push_deadline(&self, value: T, deadline: Instant) -> Result<(), Full<T>> {
        self.core().push_until(value, Deadline::at(deadline)).map_err(Full)
    }

    /// Pops without waiting.
    pub fn try_pop(&self) -> Option<T> {
        self.core().try_pop()
    }

    /// Pops, waiting while the queue is empty.
    pub fn pop(&self) -> T {
        loop {
            if let Some(v) = self.core().pop_until(None) {
                return v;
            }
        }
    }

    /// Pops, waiting at most `timeout`.
    pub fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        self.core().pop_until(Deadline::after(timeout))
    }

    /// Pops, waiting until `deadline`.
    pub fn pop_deadline(&self, deadline: Instant) -> Option<T> {
        self.core().pop_until(Deadline::at(deadline))
    }
}

/// A heap-backed queue for loom, miri and the fuzzer.
pub(crate) struct HeapQueue<T> {
    hdr: Box<Header>,
    slots: Vec<Slot<T>>,
}

impl<T: ShmSafe> HeapQueue<T> {
    pub(crate) fn new(cap: usize) -> HeapQueue<T> {
        HeapQueue { hdr: Box::new(Header::new()), slots: (0..cap.max(1) as u64).map(|i| Slot::new(2 * i)).collect() }
    }

    pub(crate) fn core(&self) -> Core<'_, T> {
        Core { hdr: &self.hdr, slots: &self.slots }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::HeapQueue;
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn loom_array_queue_push_pop_across_threads() {
        loom::model(|| {
            let q = Arc::new(HeapQueue::<u64>::new(2));
            let p = {
                let q = q.clone();
                thread::spawn(move || {
                    q.core().try_push(1).unwrap();
                    q.core().try_push(2).unwrap();
                })
            };
            let mut got = Vec::new();
            while got.len() < 2 {
                if let Some(v) = q.core().try_pop() {
                    got.push(v);
                } else {
                    thread::yield_now();
                }
            }
            p.join().unwrap();
            assert_eq!(got, vec![1, 2]);
        });
    }

    #[test]
    fn loom_array_queue_blocking_pop_is_woken_by_push() {
        loom::model(|| {
            let q = Arc::new(HeapQueue::<u64>::new(2));
            let c = {
                let q = q.clone();
                thread::spawn(move || q.core().pop_until(None))
            };
            q.core().try_push(5).unwrap();
            assert_eq!(c.join().unwrap(), Some(5));
        });
    }

    #[test]
    fn loom_array_queue_blocking_push_is_woken_by_pop() {
        loom::model(|| {
            let q = Arc::new(HeapQueue::<u64>::new(1));
            q.core().try_push(1).unwrap();
            let p = {
                let q = q.clone();
                thread::spawn(move || q.core().push_until(2, None))
            };
            let first = loop {
                if let Some(v) = q.core().try_pop() {
                    break v;
                }
                thread::yield_now();
            };
            assert_eq!(first, 1);
            assert_eq!(p.join().unwrap(), Ok(()));
            assert_eq!(q.core().try_pop(), Some(2));
        });
    }

    #[test]
    fn loom_array_queue_full_and_wrap() {
        loom::model(|| {
            let q = Arc::new(HeapQueue::<u32>::new(1));
            q.core().try_push(7).unwrap();
            assert!(q.core().try_push(8).is_err());
            let c = {
                let q = q.clone();
                thread::spawn(move || q.core().try_pop())
            };
            let popped = c.join().unwrap();
            assert_eq!(popped, Some(7));
            q.core().try_push(9).unwrap();
            assert_eq!(q.core().try_pop(), Some(9));
        });
    }
}
