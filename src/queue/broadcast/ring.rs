//! The broadcast ring: fixed slots overwritten in turn, each guarded by a sequence stamp
//! (a seqlock per slot), a writers' lock, and a published count readers follow.
//!
//! # Protocol
//! Message number `s` goes to slot `s % slots`. A writer, holding the robust writers' lock:
//! 1. stores the slot's stamp `2s + 1` (odd: being written), then a Release fence;
//! 2. stores the length and the payload as Relaxed atomic words;
//! 3. stores the stamp `2s + 2` (Release): message `s` is complete in the slot;
//! 4. stores `next = s + 1` (Release): message `s` is published; unlocks; wakes sleeping
//!    readers if any announced themselves (the doorbell: no system call otherwise).
//!
//! A reader at position `c` reads only below `next` (Acquire). It loads the stamp (Acquire),
//! copies the length and payload with Relaxed atomic loads, issues an Acquire fence and loads
//! the stamp again: the copy is message `c` exactly when both loads saw `2c + 2`. Anything else
//! means a writer has since overwritten the slot with message `c + slots` or later: the reader
//! lagged, skips to the oldest message still safe to read, and reports how many it missed.
//! Readers write nothing shared, so a slow, stopped or dead reader never holds a writer up.
//!
//! A writer killed in steps 1–3 never advanced `next`: no reader looks at that slot as
//! message `s`, and the next writer (which gets "owner died" from the lock) writes message `s`
//! again into the same slot. A killed writer never publishes half a message.
//!
//! Copying through atomic words keeps the reader's racing reads defined behaviour (they are
//! atomic loads, compiled to plain moves), where a byte `memcpy` racing a writer would not be.
//!
//! Every value read from shared memory (`next`, stamps, lengths) is checked before use: a
//! length beyond the slot is [`BcFail::Corrupt`], a stamp from the future a lag.

use super::BcFail;
use crate::loom::atomic::{
    fence, AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};
use crate::queue::doorbell::wake_if_sleepers;
use crate::shm::{Segment, ShmError, ShmObject, ShmRef, Words};
use crate::sync::raw::robust::RawRobustMutex;
use crate::sys::pthread::{Locked, MutexKind};
use crate::wait::Limit;
use std::ptr::NonNull;

/// Words of a slot before its payload: the stamp and the length.
const SLOT_HEAD: usize = 2;

/// The stamp of a slot while message `s` is being written into it (odd).
fn writing(s: u64) -> u64 {
    s.wrapping_mul(2).wrapping_add(1)
}

/// The stamp of a slot that holds message `s`, complete (even, never 0).
fn complete(s: u64) -> u64 {
    s.wrapping_mul(2).wrapping_add(2)
}

/// The shared header of a broadcast.
#[repr(C)]
#[derive(Debug)]
pub(super) struct BcHeader {
    /// Serializes writers; robust, so a writer's death frees it.
    lock: RawRobustMutex,
    /// Number of messages published (the next message's sequence number).
    next: AtomicU64,
    /// Slot count (set at creation).
    slots: AtomicU64,
    /// Payload words per slot (set at creation).
    words: AtomicU64,
    /// Readers' doorbell: bumped after publishing when a reader announced itself (bit 0).
    pub(super) bell: AtomicU32,
    _pad: AtomicU32,
}

// SAFETY: all-zero is "nothing published, 0 slots" (refused by `attach`), an uninitialized
// mutex (refused by the robust mutex) and a quiet doorbell; atomics and the pthread object
// only, no pointers; every value a peer can leave is checked before use (`attach`, `read`).
unsafe impl ShmObject for BcHeader {}

/// A broadcast ring mapped in this process.
#[derive(Debug, Clone)]
pub(super) struct BcRing {
    hdr: ShmRef<BcHeader>,
    /// `slots * (SLOT_HEAD + words)` atomic words in the same segment.
    base: NonNull<AtomicU64>,
    slots: u64,
    words: usize,
}

// SAFETY: `base` points into the segment that `hdr` keeps mapped; everything behind it is
// atomics; the handle holds no thread-local state.
unsafe impl Send for BcRing {}
// SAFETY: as above: shared access goes through atomics only.
unsafe impl Sync for BcRing {}

/// A message read by [`BcRing::read`].
pub(super) enum Read {
    /// Message `c`, appended to the caller's buffer.
    Message,
    /// Nothing at `c` yet.
    Empty,
    /// Message `c` was overwritten: resume at this position.
    Lagged(u64),
}

impl BcRing {
    /// Bytes a segment needs for `slots` slots of `max_message` bytes.
    pub(super) fn segment_len(slots: usize, max_message: usize) -> Result<(usize, usize), ShmError> {
        let too = ShmError::TooLarge { len: u64::MAX };
        let words = max_message.max(1).div_ceil(8);
        let total = slots.max(1).checked_mul(SLOT_HEAD + words).and_then(|w| w.checked_mul(8)).ok_or(too)?;
        let len =
            total.checked_add(std::mem::size_of::<BcHeader>() + 4096).ok_or(ShmError::TooLarge { len: u64::MAX })?;
        Ok((words, len))
    }

    /// Allocates and initializes a ring in `seg`; returns its directory words.
    pub(super) fn init_in(seg: &Segment, slots: usize, words: usize) -> Result<Words, BcFail> {
        let hdr: ShmRef<BcHeader> = seg.alloc_object()?;
        hdr.lock.init(MutexKind::ErrorCheck).map_err(BcFail::Os)?;
        hdr.slots.store(slots.max(1) as u64, Relaxed);
        hdr.words.store(words as u64, Relaxed);
        let off = seg.alloc(slots.max(1) * (SLOT_HEAD + words) * 8, 8)?;
        Ok([hdr.offset() as u64, off as u64, 0, 0, 0, 0])
    }

    /// The ring whose directory words are `w` in `seg`. Sizes come from shared memory: they
    /// must fit the segment.
    pub(super) fn attach(seg: &Segment, w: &Words) -> Result<BcRing, ShmError> {
        use crate::shm::word_usize;
        let hdr: ShmRef<BcHeader> = seg.object_at(word_usize(w[0])?)?;
        // Relaxed: published with the segment (its READY flag was loaded with Acquire).
        let (slots, words) = (hdr.slots.load(Relaxed), hdr.words.load(Relaxed));
        if slots == 0 || words == 0 {
            return Err(ShmError::Corrupt { what: "broadcast sizes" });
        }
        let bad = ShmError::Corrupt { what: "broadcast sizes" };
        let per_slot = word_usize(words)?.checked_add(SLOT_HEAD).ok_or(bad)?;
        let n = word_usize(slots)?.checked_mul(per_slot).ok_or(ShmError::Corrupt { what: "broadcast sizes" })?;
        let base = seg.elements_at::<AtomicU64>(word_usize(w[1])?, n)?;
        Ok(BcRing { hdr, base, slots, words: words as usize })
    }

    pub(super) fn words(&self) -> Words {
        let seg = self.hdr.segment();
        [self.hdr.offset() as u64, seg.offset_of(self.base.as_ptr()).unwrap_or(0) as u64, 0, 0, 0, 0]
    }

    pub(super) fn segment(&self) -> &Segment {
        self.hdr.segment()
    }

    pub(super) fn header(&self) -> &BcHeader {
        &self.hdr
    }

    pub(super) fn slots(&self) -> u64 {
        self.slots
    }

    /// The largest message in bytes.
    pub(super) fn max_message(&self) -> usize {
        self.words * 8
    }

    /// Messages published so far.
    pub(super) fn published(&self) -> u64 {
        // SYNC(acquire ← the writer's Release store of `next`): the slots below are complete.
        self.hdr.next.load(Acquire)
    }

    /// Slot `i`'s words: stamp, length, payload.
    fn slot(&self, seq: u64) -> &[AtomicU64] {
        let i = (seq % self.slots) as usize;
        // SAFETY: `attach` bounds-checked `slots * (SLOT_HEAD + words)` words at `base` in the
        // segment `hdr` keeps mapped, aligned for AtomicU64; `i < slots`, so this slot's words
        // lie inside; any bits are a valid AtomicU64.
        unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().add(i * (SLOT_HEAD + self.words)), SLOT_HEAD + self.words)
        }
    }

    /// Publishes `msg` (at most [`max_message`](Self::max_message) bytes, checked by the
    /// caller) and returns its sequence number.
    pub(super) fn publish(&self, msg: &[u8], limit: Limit) -> Result<u64, BcFail> {
        let h = &*self.hdr;
        let taken = if limit.is_now() { h.lock.try_lock() } else { h.lock.lock(limit.deadline_opt()) };
        match taken.map_err(BcFail::Os)? {
            Locked::Acquired => {}
            // The previous writer died holding the lock: whatever it left was never published
            // (`next` is stored last), so there is nothing to repair.
            Locked::OwnerDied => {
                if let Err(e) = h.lock.make_consistent() {
                    // Not left held: unlocked without repair, the lock turns unrecoverable, and
                    // every writer is told so instead of waiting on this thread.
                    let _ = h.lock.unlock();
                    return Err(BcFail::Os(e));
                }
            }
            Locked::Busy => return Err(BcFail::NotNow),
            Locked::Deadlock => return Err(BcFail::Corrupt("the writers' lock is held by this thread")),
            Locked::NotRecoverable => return Err(BcFail::Corrupt("the writers' lock is unrecoverable")),
        }
        // Relaxed: only writers store `next`, under the lock we hold. Stamps are computed
        // wrapping: a hostile `next` near `u64::MAX` gives wrong stamps, never a panic.
        let s = h.next.load(Relaxed);
        let slot = self.slot(s);
        // Relaxed + Release fence: the odd stamp is ordered before the payload stores, so a
        // reader that sees any of them sees the stamp change (the seqlock writer's half).
        slot[0].store(writing(s), Relaxed);
        fence(Release);
        slot[1].store(msg.len() as u64, Relaxed);
        for (w, chunk) in slot[SLOT_HEAD..].iter().zip(msg.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            // Relaxed: ordered by the stamp stores around them.
            w.store(u64::from_ne_bytes(b), Relaxed);
        }
        // SYNC(release → the reader's Acquire stamp load): the payload is complete.
        slot[0].store(complete(s), Release);
        // SYNC(release → `published`): message `s` may be read.
        h.next.store(s.wrapping_add(1), Release);
        let _ = h.lock.unlock();
        wake_if_sleepers(&h.bell);
        Ok(s)
    }

    /// Reads message `c` into `out` (appending), if it is there and intact.
    pub(super) fn read(&self, c: u64, out: &mut Vec<u8>) -> Result<Read, BcFail> {
        let next = self.published();
        if c >= next {
            return Ok(Read::Empty);
        }
        if next - c > self.slots {
            // The oldest message that may still be there; if a writer is overwriting it right
            // now, the stamp check of the next read says so and skips one more.
            return Ok(Read::Lagged(next - self.slots));
        }
        let slot = self.slot(c);
        // SYNC(acquire ← the writer's Release stamp store): the payload it covers is visible.
        let s1 = slot[0].load(Acquire);
        if s1 != complete(c) {
            return self.not_there(c, s1);
        }
        // Relaxed: validated by the second stamp load below.
        let len = slot[1].load(Relaxed);
        if len > self.max_message() as u64 {
            // Either torn by a writer right now (the stamp check below says which) or corrupt.
            fence(Acquire);
            return match slot[0].load(Relaxed) {
                s2 if s2 == s1 => Err(BcFail::Corrupt("a message longer than its slot")),
                s2 => self.not_there(c, s2),
            };
        }
        let start = out.len();
        out.reserve(len as usize);
        let mut left = len as usize;
        for w in &slot[SLOT_HEAD..SLOT_HEAD + (len as usize).div_ceil(8)] {
            // Relaxed: validated by the second stamp load below.
            let b = w.load(Relaxed).to_ne_bytes();
            let n = left.min(8);
            out.extend_from_slice(&b[..n]);
            left -= n;
        }
        // Acquire fence: the payload loads above happen before the stamp re-load (the seqlock
        // reader's half).
        fence(Acquire);
        let s2 = slot[0].load(Relaxed);
        if s2 != s1 {
            out.truncate(start);
            return self.not_there(c, s2);
        }
        Ok(Read::Message)
    }

    /// Message `c` is published but its slot holds stamp `s`: it was overwritten (a lag), or
    /// the stamp is impossible (corrupt).
    fn not_there(&self, c: u64, s: u64) -> Result<Read, BcFail> {
        if s > complete(c) {
            Ok(Read::Lagged(self.oldest_safe(self.published()).max(c.saturating_add(1))))
        } else {
            Err(BcFail::Corrupt("a published slot holds an older message"))
        }
    }

    /// The oldest message no writer can be overwriting now (after a torn read: a writer may be
    /// writing message `next`, which replaces `next - slots`).
    fn oldest_safe(&self, next: u64) -> u64 {
        next.saturating_add(1).saturating_sub(self.slots)
    }

    /// Raises the readers' doorbell flag; returns the word and the value to sleep on. The
    /// SeqCst fence pairs with the one in `wake_if_sleepers` (Dekker: the caller re-checks
    /// `published` after this).
    #[cfg(not(all(test, loom)))]
    pub(super) fn announce(&self) -> (&AtomicU32, u32) {
        let word = &self.hdr.bell;
        // Relaxed + fence: as in `doorbell::wait_for`.
        let v = word.fetch_or(1, Relaxed) | 1;
        fence(SeqCst);
        (word, v)
    }
}
