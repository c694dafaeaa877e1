//! The locked ring under every queue of the `Queue` family: its shared state, the robust lock
//! and the repair after a holder's death, and record-level put and get.
//!
//! Records are `[len: u32][stamp: u32][payload][padding to 8]` at monotonically increasing
//! 64-bit positions (`pos % capacity` in the ring). A record never wraps around the ring's end,
//! so that a loan can hand out its payload as one slice: one that would is placed at the next
//! lap, after a *skip record* (`len` = [`SKIP`]) over the rest of this one, committed with it
//! (`record.rs`, `place`); a skip record is not an item, and readers step over it. The stamp is the
//! record's own position ([`stamp`]): a reader checks it, so that a record read at a place it
//! was not written (positions corrupted by a peer, or a walk misframed by a corrupt length)
//! is `Corrupt`, never data. In the integrity mode (`QueueBuilder::integrity`) a CRC32C word
//! of the payload follows the header (`[len][stamp][crc: u32][0: u32][payload]…`), checked
//! when the record is read: a changed payload is `Corrupt` too, and that record is dropped.

use super::waiting::{sleep_on, GetSpin};
use super::QueueFail;
use crate::loom::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::queue::doorbell::bump;
use crate::queue::WaitStrategy;
use crate::shm::{Segment, ShmError, ShmObject, ShmRef};
use crate::sync::raw::robust::RawRobustMutex;
use crate::sys::pthread::{Locked, MutexKind};
use crate::wait::Limit;
use std::ptr::NonNull;
use std::time::Duration;

/// Bytes of a record's header.
pub(super) const HEADER: u64 = 8;

/// The `len` of a skip record: the rest of the lap is padding. No item has this length
/// (`put_record` refuses lengths from `SKIP` up).
pub(super) const SKIP: u32 = u32::MAX;

/// A record found at a position: its size in the ring, and its payload length, or `None` for
/// a skip record.
pub(super) type Found = (u64, Option<u64>);

/// The stamp of a record at ring position `pos`: its low 32 bits, mixed so that neither
/// zeroes nor a length (small numbers) read as one. Records of the integrity mode (`sealed`)
/// are mixed with another constant: a reader that maps the queue in the other mode (its flag
/// scribbled before it looked) finds no record stamped for it, `Corrupt`, instead of reading
/// the checksum word as payload.
pub(super) fn stamp(pos: u64, sealed: bool) -> u32 {
    ((pos >> 3) as u32) ^ if sealed { 0xc3a5_5e71 } else { 0x5a17_c0de }
}

/// A record's header: its payload length and the stamp of its position.
pub(super) fn record_header(pos: u64, len: u64, sealed: bool) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&(len as u32).to_le_bytes());
    h[4..].copy_from_slice(&stamp(pos, sealed).to_le_bytes());
    h
}

/// `QueueState::shutdown` after `shutdown_immediate`.
pub(super) const SHUT_IMMEDIATE: u32 = 2;

/// `QueueState::flags`: records carry a CRC32C word of their payload.
pub(super) const FLAG_CRC: u32 = 1;

/// How long a `try_` call waits for a lock held by another `put` or `get` (see
/// [`LockedRing::lock`]).
const BUSY_WAIT: Duration = Duration::from_millis(100);

/// How many times a locker looks at a busy queue lock before it sleeps in the kernel: a put or
/// get holds it for one copy (well under a microsecond for small items), and two processes
/// on two CPUs meet there on most items, where a sleep and a wake-up cost microseconds.
const LOCK_SPINS: u32 = 200;

/// The shared part of a queue.
#[repr(C)]
#[derive(Debug)]
pub(super) struct QueueState {
    lock: RawRobustMutex,
    /// Position of the oldest committed record (only written under the lock).
    pub(super) head: AtomicU64,
    /// Position after the newest committed record (only written under the lock).
    pub(super) tail: AtomicU64,
    /// Committed records (only written under the lock; read without it by `qsize`).
    pub(super) count: AtomicU64,
    /// Ring size in bytes (set at creation).
    capacity: AtomicU64,
    /// Maximum number of items, 0 for no limit.
    pub(super) maxsize: AtomicU64,
    /// `put`s not yet matched by `task_done` (JoinableQueue).
    pub(super) unfinished: AtomicU64,
    /// Bumped (by 2) after every commit of a `put`; bit 0: someone may be asleep on it.
    pub(super) not_empty: AtomicU32,
    /// Bumped after every `get`.
    pub(super) not_full: AtomicU32,
    /// Bumped when `unfinished` reaches 0.
    pub(super) all_done: AtomicU32,
    /// Nonzero once the queue is shut down (`shutdown`): no more puts; gets drain, then fail.
    /// [`SHUT_IMMEDIATE`] for `shutdown_immediate`: the items are dropped too, by the shutter
    /// or, if it could not take the lock (its own thread holds a loan), by the loan's end.
    pub(super) shutdown: AtomicU32,
    /// Bumped each time a process lets go of its producer side of a split queue (`split.rs`):
    /// the consumers' next call asks the kernel whether any producer is left.
    pub(super) producer_drops: AtomicU32,
    /// The same for consumer sides.
    pub(super) consumer_drops: AtomicU32,
    /// `FLAG_CRC` for the integrity mode (set at creation, read once by each opener).
    flags: AtomicU32,
}

// SAFETY: all-zero is an empty queue with capacity 0 (refused by `attach`), an uninitialized
// mutex (refused by RawRobustMutex) and zero counters; atomics and the pthread object only, no
// pointers; every value a peer can leave is validated before use (`positions`, `record_at`).
unsafe impl ShmObject for QueueState {}

/// Holds the queue's lock; unlocks on drop.
pub(super) struct Held<'a> {
    lock: &'a RawRobustMutex,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let _ = self.lock.unlock();
    }
}

/// A queue's ring: its state and byte region in a segment the handle keeps mapped.
#[derive(Debug, Clone)]
pub(super) struct LockedRing {
    pub(super) state: ShmRef<QueueState>,
    pub(super) ring: NonNull<u8>,
    pub(super) cap: u64,
    /// Bytes from a record's start to its payload: [`HEADER`], plus 8 for the checksum word in
    /// the integrity mode (read once, when the ring is mapped).
    pub(super) hdr: u64,
    /// How this handle's gets wait for an item ([`QueueBuilder::wait`](super::QueueBuilder::wait)).
    pub(super) wait: WaitStrategy,
    /// This handle's spinning before a get sleeps (`WaitStrategy::Adaptive`).
    pub(super) get_spin: GetSpin,
}

// SAFETY: `ring` points into the segment that `state` keeps mapped; the ring is only accessed
// under the robust lock; the handle holds no thread-local state.
unsafe impl Send for LockedRing {}
// SAFETY: as above: every access to shared bytes is serialized by the lock.
unsafe impl Sync for LockedRing {}

impl LockedRing {
    /// A ring of `capacity` bytes (at least 64, rounded up to 8) with an item limit (0: none),
    /// allocated in `seg` (which must have room: see [`LockedRing::segment_len`]).
    /// With `integrity`, every record carries a CRC32C of its payload.
    pub(super) fn create_in(
        seg: &Segment,
        capacity: usize,
        maxsize: usize,
        integrity: bool,
    ) -> Result<LockedRing, ShmError> {
        let cap = Self::round(capacity);
        let state: ShmRef<QueueState> = seg.alloc_object()?;
        state.lock.init(MutexKind::ErrorCheck).map_err(ShmError::Os)?;
        state.capacity.store(cap, Relaxed);
        state.maxsize.store(maxsize as u64, Relaxed);
        state.flags.store(if integrity { FLAG_CRC } else { 0 }, Relaxed);
        let off = seg.alloc(cap as usize, 8)?;
        let ring = seg.bytes_at(off, cap as usize)?;
        Ok(Self::mapped(state, ring, cap, integrity))
    }

    /// A handle's view of a ring: parking gets, until the owner says otherwise.
    fn mapped(state: ShmRef<QueueState>, ring: NonNull<u8>, cap: u64, integrity: bool) -> LockedRing {
        let hdr = Self::hdr_for(integrity);
        LockedRing { state, ring, cap, hdr, wait: WaitStrategy::Park, get_spin: GetSpin::default() }
    }

    pub(super) fn hdr_for(integrity: bool) -> u64 {
        if integrity {
            HEADER + 8
        } else {
            HEADER
        }
    }

    /// Whether records carry a CRC32C of their payload.
    pub(super) fn integrity(&self) -> bool {
        self.hdr != HEADER
    }

    /// The ring size of a record of `len` payload bytes.
    pub(super) fn record_size(&self, len: u64) -> u64 {
        self.hdr + len.next_multiple_of(8)
    }

    /// The directory words of a ring created in a named segment: where its state and its
    /// bytes are.
    pub(super) fn words(&self) -> crate::shm::Words {
        let seg = self.state.segment();
        let ring = seg.offset_of(self.ring.as_ptr()).unwrap_or(0);
        [self.state.offset() as u64, ring as u64, 0, 0, 0, 0]
    }

    /// The ring an opener finds through the directory words `w` of `seg`. The capacity comes
    /// from shared memory: it must be one `create_in` could have written, and fit the segment.
    pub(super) fn open_in(seg: &Segment, w: &crate::shm::Words) -> Result<LockedRing, ShmError> {
        use crate::shm::{word_usize, ShmError};
        let state: ShmRef<QueueState> = seg.object_at(word_usize(w[0])?)?;
        // Relaxed: published with the segment (READY was loaded with Acquire).
        let cap = state.capacity.load(Relaxed);
        if cap < 64 || cap % 8 != 0 {
            return Err(ShmError::Corrupt { what: "queue capacity" });
        }
        let ring = seg.bytes_at(word_usize(w[1])?, word_usize(cap)?)?;
        // Relaxed: as `capacity`. Any value is a valid choice of mode: if it is not the
        // creator's, no record is stamped for it (`stamp`), and reads fail as `Corrupt`.
        let integrity = state.flags.load(Relaxed) & FLAG_CRC != 0;
        Ok(Self::mapped(state, ring, cap, integrity))
    }

    /// The capacity a request of `capacity` bytes gets.
    pub(super) fn round(capacity: usize) -> u64 {
        (capacity.max(64) as u64).next_multiple_of(8)
    }

    /// Bytes a segment needs for a ring of `capacity` bytes; [`ShmError::TooLarge`] for a
    /// capacity no segment can have (the sums would wrap).
    pub(super) fn segment_len(capacity: usize) -> Result<usize, ShmError> {
        capacity
            .max(64)
            .checked_next_multiple_of(8)
            .and_then(|c| c.checked_add(4096))
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or(ShmError::TooLarge { len: capacity as u64 })
    }

    pub(super) fn capacity(&self) -> u64 {
        self.cap
    }

    pub(super) fn segment(&self) -> &Segment {
        self.state.segment()
    }

    /// Raises the sleepers flag of `not_empty` for [`wait`](crate::wait) and returns the word
    /// with the value to sleep on. Every commit of a `put` [`bump`]s the word afterwards, so a
    /// sleep on this value ends at the next item; the Acquire pairs with that bump's Release, so
    /// a re-check of `count` after this sees every item whose bump we read.
    #[cfg(not(all(test, loom)))]
    pub(crate) fn announce_not_empty(&self) -> (&AtomicU32, u32) {
        let word = &self.state.not_empty;
        (word, word.fetch_or(1, Acquire) | 1)
    }

    /// Wakes every process asleep in `get` (and `wait`) so that it looks again: the split
    /// handles call it when the last producer of a process goes.
    #[cfg(feature = "serde")]
    pub(super) fn wake_getters(&self) {
        bump(&self.state.not_empty);
    }

    /// Wakes every process asleep in `put`: the last consumer of a process went.
    #[cfg(feature = "serde")]
    pub(super) fn wake_putters(&self) {
        bump(&self.state.not_full);
    }

    /// The item limit, if any.
    pub(super) fn maxsize(&self) -> Option<usize> {
        match self.state.maxsize.load(Relaxed) {
            0 => None,
            m => Some(m as usize),
        }
    }

    /// Whether the positions say that records are there, whatever `count` says: a readiness
    /// hint that a corrupt `count` cannot hide (a `get` then reports what it finds).
    pub(super) fn positions_differ(&self) -> bool {
        // Relaxed: a hint only (the positions are written under the lock; a `get` reads them
        // there).
        self.state.head.load(Relaxed) != self.state.tail.load(Relaxed)
    }

    /// Items in the queue now; exact as soon as a put or get has returned (QUE-B2).
    pub(super) fn count(&self) -> usize {
        // SYNC(acquire ← the Release store of `count` at commit).
        self.state.count.load(Acquire) as usize
    }

    /// Takes the lock until `limit`, repairing the queue if its previous holder died; `None`
    /// when the limit passed first.
    ///
    /// A `try_` call ([`Limit::Now`]) that finds the lock busy waits for it, up to
    /// [`BUSY_WAIT`]: the lock is held only for the copy of a record, and "busy" says nothing
    /// about whether the queue is empty or full; answering `Empty` or `Full` then would be
    /// false (an item there, room there). Only a holder stalled for longer than that (stopped,
    /// or descheduled for that long) gets the old answer: nothing could be taken or put now.
    pub(super) fn lock(&self, limit: Limit) -> Result<Option<Held<'_>>, QueueFail> {
        let st = &*self.state;
        let r = if limit.is_now() {
            match st.lock.try_lock() {
                Ok(Locked::Busy) => st.lock.lock_spinning(crate::sys::clock::Deadline::after(BUSY_WAIT), LOCK_SPINS),
                r => r,
            }
        } else {
            st.lock.lock_spinning(limit.deadline_opt(), LOCK_SPINS)
        };
        let held = match r.map_err(QueueFail::Os)? {
            Locked::Acquired => Held { lock: &st.lock },
            Locked::OwnerDied => {
                let held = Held { lock: &st.lock };
                self.repair();
                st.lock.make_consistent().map_err(QueueFail::Os)?;
                held
            }
            Locked::Busy => return Ok(None),
            Locked::NotRecoverable => return Err(QueueFail::Corrupt("the queue's lock is unrecoverable")),
            Locked::Deadlock => return Err(QueueFail::Os(std::io::Error::from_raw_os_error(libc::EDEADLK))),
        };
        // An immediate shutdown whose items are still there (its shutter could not take the
        // lock, or died before it did) is finished by whoever takes the lock next.
        self.drop_all_if_shut_immediately();
        Ok(Some(held))
    }

    /// Head and tail, validated: `head <= tail <= head + capacity`.
    pub(super) fn positions(&self) -> Result<(u64, u64), QueueFail> {
        let st = &*self.state;
        // Relaxed: we hold the lock, which orders every write of these fields.
        let (head, tail) = (st.head.load(Relaxed), st.tail.load(Relaxed));
        // Positions only grow, by at most a lap past `tail` at a time: one within two laps of
        // `u64::MAX` (more than a century of writing at 100 GB/s) was written by a corrupt peer,
        // and would make the sums on them (`place`, `record_at`) wrap.
        if st.capacity.load(Relaxed) != self.cap
            || tail < head
            || tail - head > self.cap
            || tail > u64::MAX - 2 * self.cap
        {
            return Err(QueueFail::Corrupt("ring positions"));
        }
        Ok((head, tail))
    }

    /// After an owner death (we hold the lock): recount the committed records, truncating at
    /// the first bad one (and any skip record with no record after it).
    pub(super) fn repair(&self) {
        let st = &*self.state;
        let Ok((head, tail)) = self.positions() else {
            // Positions beyond repair: drop everything rather than read garbage.
            let t = st.tail.load(Relaxed);
            st.head.store(t, Relaxed);
            st.count.store(0, Release);
            return;
        };
        let (mut pos, mut end, mut n) = (head, head, 0);
        while pos < tail {
            match self.record_at(pos, tail) {
                Some((size, Some(_))) => {
                    pos += size;
                    end = pos;
                    n += 1;
                }
                Some((size, None)) => pos += size,
                None => break,
            }
        }
        st.tail.store(end, Relaxed);
        // SYNC(release → count's acquire load).
        st.count.store(n, Release);
    }

    /// The record at `pos` if it is valid: stamped for `pos`, lying within one lap of the ring,
    /// and ending by `tail`; for a skip record, the rest of the lap. The caller holds the lock
    /// and `head <= pos < tail` were validated.
    pub(super) fn record_at(&self, pos: u64, tail: u64) -> Option<Found> {
        let mut h = [0u8; 8];
        // SAFETY: `h` is 8 writable bytes; `pos` is a position of the ring (wrapped by
        // `copy_out`), read under the lock.
        unsafe { self.copy_out(pos, h.as_mut_ptr(), 8) };
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        if u32::from_le_bytes([h[4], h[5], h[6], h[7]]) != stamp(pos, self.integrity()) {
            return None;
        }
        let off = pos % self.cap;
        let (size, len) = match len {
            // A skip record at a lap's start would skip a whole lap: never written.
            SKIP if off == 0 => return None,
            SKIP => (self.cap - off, None),
            len => (self.record_size(u64::from(len)), Some(u64::from(len))),
        };
        (off + size <= self.cap && pos + size <= tail).then_some((size, len))
    }

    /// Copies `buf` into the ring at position `pos` (wrapping).
    ///
    /// # Safety
    /// The caller holds the lock and `buf.len() <= capacity`.
    pub(super) unsafe fn copy_in(&self, pos: u64, buf: &[u8]) {
        let start = (pos % self.cap) as usize;
        let first = buf.len().min(self.cap as usize - start);
        // SAFETY: `start + first <= cap` and `buf.len() - first <= cap` (contract), so both
        // ranges lie in the ring allocated for this queue, which `self.state` keeps mapped; the
        // lock keeps every other process and thread out of them.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr(), self.ring.as_ptr().add(start), first);
            std::ptr::copy_nonoverlapping(buf.as_ptr().add(first), self.ring.as_ptr(), buf.len() - first);
        }
    }

    /// Copies `len` bytes from the ring at position `pos` (wrapping) to `dst`.
    ///
    /// # Safety
    /// The caller holds the lock; `dst` is valid for `len` bytes of writes and does not overlap
    /// the ring; `len <= capacity`.
    pub(super) unsafe fn copy_out(&self, pos: u64, dst: *mut u8, len: usize) {
        let start = (pos % self.cap) as usize;
        let first = len.min(self.cap as usize - start);
        // SAFETY: as in `copy_in`, reading instead of writing; `dst` per the contract.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring.as_ptr().add(start), dst, first);
            std::ptr::copy_nonoverlapping(self.ring.as_ptr(), dst.add(first), len - first);
        }
    }
    /// Shuts the queue down (Python 3.13's `shutdown`): puts fail from now on, gets drain what
    /// is there and then fail; with `immediate`, the items are dropped at once and `join`
    /// returns. Wakes every blocked `put`, `get` and `join`, in every process.
    pub(super) fn shutdown(&self, immediate: bool) {
        let st = &*self.state;
        // SYNC(release): the flag is set even if the lock below cannot be taken (a corrupt
        // queue, or a loan of this thread holding it: that loan's end then drops the items);
        // a put or get checks it under the lock, which orders it after this store.
        st.shutdown.store(if immediate { SHUT_IMMEDIATE } else { 1 }, Release);
        if immediate {
            // Taking the lock drops the items (`lock`); if it cannot be taken now, the next
            // holder's `lock`, or the end of this thread's loan, does.
            let _ = self.lock(Limit::Forever);
            bump(&st.all_done);
        }
        bump(&st.not_empty);
        bump(&st.not_full);
    }

    /// Lets the lock go after [`drop_all_if_shut_immediately`](Self::drop_all_if_shut_immediately)
    /// emptied the queue, and wakes `join` and the putters.
    pub(super) fn release_emptied(&self, held: Held<'_>) {
        drop(held);
        bump(&self.state.all_done);
        bump(&self.state.not_full);
    }

    /// Under the lock: after `shutdown_immediate`, empties the queue (and `join`'s count);
    /// returns whether it did.
    pub(super) fn drop_all_if_shut_immediately(&self) -> bool {
        let st = &*self.state;
        // Relaxed: read under the lock, which orders the shutter's store before it or not.
        if st.shutdown.load(Relaxed) != SHUT_IMMEDIATE {
            return false;
        }
        if let Ok((_, tail)) = self.positions() {
            st.head.store(tail, Relaxed);
        }
        // SYNC(release → count's and join's acquire loads).
        st.count.store(0, Release);
        st.unfinished.store(0, Release);
        true
    }

    /// Whether the queue was shut down.
    pub(super) fn is_shutdown(&self) -> bool {
        // Acquire: pairs with `shutdown`'s store.
        self.state.shutdown.load(Acquire) != 0
    }

    /// Marks one item done (JoinableQueue).
    pub(super) fn task_done(&self) -> Result<(), QueueFail> {
        let st = &*self.state;
        // Relaxed: a hint for the CAS.
        let mut u = st.unfinished.load(Relaxed);
        loop {
            if u == 0 {
                return Err(QueueFail::TooManyTaskDone);
            }
            // SYNC(release → join's acquire load): the consumer's work is visible to `join`.
            match st.unfinished.compare_exchange_weak(u, u - 1, Release, Relaxed) {
                Ok(_) => break,
                Err(now) => u = now,
            }
        }
        if u == 1 {
            bump(&st.all_done);
        }
        Ok(())
    }

    /// Waits until every item put was marked done, or `limit`; returns whether it was.
    pub(super) fn join(&self, limit: Limit) -> bool {
        let st = &*self.state;
        loop {
            // Relaxed: only decides whether to sleep.
            let seen = st.all_done.load(Relaxed);
            // SYNC(acquire ← task_done's release).
            if st.unfinished.load(Acquire) == 0 {
                return true;
            }
            if limit.passed() {
                return false;
            }
            sleep_on(&st.all_done, seen, limit);
        }
    }
}
