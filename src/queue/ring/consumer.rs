//! The reading side of a ring: peeks, batch scans in place, releases, and the consumer's half
//! of the sleep handshake; `RingProbe` for watcher threads.

use super::{
    Ring, RingError, HDR, KIND_FD, KIND_FULL, KIND_LAST, KIND_SEALED, KIND_SHIFT, KIND_TYPE, KIND_WRAP, STAMP_SHIFT,
    TYPE_REC,
};
use crate::loom::atomic::{fence, AtomicU32, Ordering};
use crate::loom::futex;
use crate::sys::clock::Deadline;

/// A record in the ring, seen by the consumer before it is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// `KIND_FULL`, `KIND_FIRST`, `KIND_MORE` or `KIND_LAST`.
    pub(crate) kind: u32,
    /// Payload offset in the region.
    pub(super) off: u64,
    /// Payload length.
    pub(crate) len: usize,
    /// Position after this record (the new head once released).
    next: u64,
}

/// The reading side of a ring.
#[derive(Debug)]
pub(crate) struct Consumer {
    ring: Ring,
}

/// What the header word at the consumer's `head` says.
enum Slot {
    /// Nothing published here yet (zero, or the header of the lap before).
    Empty,
    /// A header published for this position.
    Ready(u64),
}

impl Record {
    /// The position after this record: the consumer's head once it is released.
    pub(crate) fn next_pos(&self) -> u64 {
        self.next
    }
}

impl Consumer {
    /// The consumer of `ring`.
    pub(crate) fn new(ring: Ring) -> Consumer {
        Consumer { ring }
    }

    /// The ring.
    pub(crate) fn ring(&self) -> &Ring {
        &self.ring
    }

    fn head(&self) -> Result<u64, RingError> {
        // Relaxed: our own index, written only by the (single) consumer.
        let h = self.ring.ctl().cons.head.load(Ordering::Relaxed);
        if h % 8 != 0 {
            return Err(RingError::Corrupt("head not a multiple of 8"));
        }
        Ok(h)
    }

    fn check_tail(&self, head: u64, t: u64) -> Result<u64, RingError> {
        if t < head || t - head > self.ring.cap || t % 8 != 0 {
            return Err(RingError::Corrupt("tail outside [head, head + cap]"));
        }
        Ok(t)
    }

    /// The header word at `head`, checked against its position (module docs).
    #[inline(always)]
    fn slot(&self, head: u64) -> Result<Slot, RingError> {
        let r = self.ring;
        // SYNC(acquire ← Producer::try_push's Release store of the first header).
        let h = r.word(head & (r.cap - 1)).load(Ordering::Acquire);
        if h == 0 {
            return Ok(Slot::Empty);
        }
        let stamp = h >> STAMP_SHIFT;
        if stamp == r.stamp(head) {
            Ok(Slot::Ready(h))
        } else if head >= r.cap && stamp == r.stamp(head - r.cap) {
            Ok(Slot::Empty)
        } else {
            Err(RingError::Corrupt("record header stamped for another position"))
        }
    }

    /// The next record, without consuming it; `None` when the ring is empty.
    #[inline]
    pub(crate) fn peek(&mut self) -> Result<Option<Record>, RingError> {
        let head = self.head()?;
        self.scan(head, true)
    }

    /// For a consumer that spins on an empty ring: asks the CPU to fetch the cache line after
    /// the one holding the next header. A producer writes a record's payload before its
    /// header, so when a spinning reader sees the header, the rest of a record that spills
    /// into the next line (a 64-byte message is 72 bytes with its header) is then already on
    /// its way instead of being fetched after the header, one transfer later. A hint only:
    /// nothing is read architecturally, so a stale or scribbled `head` costs nothing.
    /// Measured: `pipe.rt.64B.spin` 267 → 246 ns across CPUs (docs/BENCHMARKS.md).
    #[inline(always)]
    pub(crate) fn prefetch_next_line(&self) {
        #[cfg(all(target_arch = "x86_64", not(all(test, loom)), not(miri)))]
        {
            let r = self.ring;
            // Relaxed: our own index (single consumer).
            let h = r.ctl().cons.head.load(Ordering::Relaxed);
            // The line after the header's, by address (the region need only be 8-aligned),
            // or the region's start past its end.
            let base = r.data.as_ptr() as usize;
            let header = base + (h & (r.cap - 1)) as usize;
            let next = (header | 63) + 1;
            let off = if next - base < r.cap as usize { next - base } else { 0 };
            // SAFETY: `off < cap`, so the address lies inside the mapped region; a prefetch
            // neither faults nor reads or writes memory architecturally.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    r.data.as_ptr().add(off).cast::<i8>(),
                )
            }
        }
    }

    /// Where the consumer stands (validated), for a batch that goes on from there.
    pub(crate) fn position(&self) -> Result<u64, RingError> {
        self.head()
    }

    /// The record at `pos` (the consumer's head, or the `next` of a record peeked after it),
    /// skipping wrap markers and type announcements; with `release_gaps`, what it skips is
    /// handed back at once (a lone `peek`), otherwise with the batch's [`release_to`].
    ///
    /// [`release_to`]: Self::release_to
    #[inline]
    pub(crate) fn scan(&mut self, pos: u64, release_gaps: bool) -> Result<Option<Record>, RingError> {
        let r = self.ring;
        let mut head = pos;
        loop {
            let hdr = match self.slot(head)? {
                Slot::Empty => return Ok(None),
                Slot::Ready(h) => h,
            };
            let off = head & (r.cap - 1);
            let (len, kind) = (hdr & 0xffff_ffff, (hdr >> KIND_SHIFT) as u32 & 0xff);
            if kind == KIND_WRAP {
                if len != 0 {
                    return Err(RingError::Corrupt("wrap marker with a length"));
                }
                head += r.cap - off;
                if release_gaps {
                    // Release the gap at once: it carries no data.
                    self.store_head(head);
                }
                continue;
            }
            if kind == KIND_TYPE {
                if len != 8 || TYPE_REC > r.cap - off {
                    return Err(RingError::Corrupt("type record length"));
                }
                let fp = r.read_u64_at(off + HDR);
                // Relaxed: only the consumer writes or reads it (program order).
                r.ctl().cons.type_seen.store(fp, Ordering::Relaxed);
                head += TYPE_REC;
                if release_gaps {
                    self.store_head(head);
                }
                continue;
            }
            // A data record says whether it carries a checksum; it must match this mapping's mode.
            let kind = match (kind & KIND_SEALED != 0, r.crc_word != 0) {
                (true, true) => kind & !KIND_SEALED,
                (false, false) => kind,
                _ => return Err(RingError::Corrupt("record sealed in another integrity mode")),
            };
            if !(KIND_FULL..=KIND_LAST).contains(&kind) && kind != KIND_FD {
                return Err(RingError::Corrupt("unknown record kind"));
            }
            let rec = r.data_hdr() + len.next_multiple_of(8);
            if rec > r.cap - off || len > r.max_record() as u64 {
                return Err(RingError::Corrupt("record length past the end of the ring"));
            }
            if !r.sealed(off + r.data_hdr(), len as usize) {
                return Err(RingError::Corrupt("record payload does not match its checksum"));
            }
            return Ok(Some(Record { kind, off: off + r.data_hdr(), len: len as usize, next: head + rec }));
        }
    }

    /// The type fingerprint announced for the records that [`peek`](Self::peek) returns now
    /// (0: untyped bytes).
    pub(crate) fn type_seen(&self) -> u64 {
        // Relaxed: only the consumer writes it.
        self.ring.ctl().cons.type_seen.load(Ordering::Relaxed)
    }

    /// Copies `rec`'s payload from byte `from` into `dst` (`from + dst.len() ≤ rec.len`).
    pub(crate) fn copy_out(&self, rec: &Record, from: usize, dst: &mut [u8]) {
        assert!(from + dst.len() <= rec.len, "copy_out past the record");
        // SAFETY: `rec` was validated by `peek` to lie inside the region, and `from + len ≤ rec.len`;
        // the producer does not touch these bytes until we release them.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ring.data.as_ptr().add((rec.off as usize) + from),
                dst.as_mut_ptr(),
                dst.len(),
            )
        }
    }

    /// True when a record (or wrap marker) is published and not yet consumed; read-only.
    pub(crate) fn pending(&self) -> Result<bool, RingError> {
        let head = self.head()?;
        // SYNC(acquire ← Producer::publish).
        let t = self.ring.ctl().prod.tail.load(Ordering::Acquire);
        Ok(self.check_tail(head, t)? != head)
    }

    /// The `u64` at the start of a `FIRST` record's payload.
    pub(crate) fn read_prefix(&self, rec: &Record) -> Option<u64> {
        (rec.len >= 8).then(|| self.ring.read_u64_at(rec.off))
    }

    /// Consumes `rec` (from the latest `peek`).
    pub(crate) fn release(&mut self, rec: &Record) {
        self.store_head(rec.next);
    }

    /// Consumes everything before `pos` (a batch: the `next` of its last record), with one
    /// index store and at most one wake-up.
    pub(crate) fn release_to(&mut self, pos: u64) {
        self.store_head(pos);
    }

    /// `rec`'s payload where it lies, until it is released.
    pub(crate) fn payload(&self, rec: &Record) -> &[u8] {
        // SAFETY: `scan` validated that the payload lies inside the region (`rec.off + len ≤
        // cap`), which stays mapped while `self` does; until the consumer releases the record
        // the protocol gives it these bytes alone (a correct producer writes only behind
        // `head`), and the borrow of `self` ends before any release (which takes `&mut`).
        // A faulty peer writing them anyway can only change what the bytes say, as it could
        // between a `copy_out` and its use.
        unsafe { std::slice::from_raw_parts(self.ring.data.as_ptr().add(rec.off as usize), rec.len) }
    }

    fn store_head(&mut self, head: u64) {
        let c = self.ring.ctl();
        // SYNC(release → Producer::fits): hands the space back.
        c.cons.head.store(head, Ordering::Release);
        // SeqCst: orders the store of `head` before the load of `prod_sleep` (Dekker with the
        // fence in Producer::prepare_sleep).
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above.
        if c.cons.prod_sleep.load(Ordering::Relaxed) != 0 && c.cons.prod_sleep.swap(0, Ordering::SeqCst) != 0 {
            futex::wake(&c.cons.prod_sleep, 1);
        }
    }

    /// Called with the ring empty: returns `true` when the caller may call [`Consumer::sleep`],
    /// `false` when a record arrived meanwhile.
    pub(crate) fn prepare_sleep(&mut self) -> Result<bool, RingError> {
        let c = self.ring.ctl();
        // SeqCst: Dekker with Producer::publish (store tail, fence, load cons_sleep).
        c.prod.cons_sleep.store(1, Ordering::SeqCst);
        // SeqCst: orders the store above before the load of `tail` below.
        fence(Ordering::SeqCst);
        let head = self.head()?;
        if let Slot::Ready(_) = self.slot(head)? {
            // Not sleeping, but the flag stays up: another waiter on this end (a `ReadyFd`'s
            // watcher, a `wait` or `poll`) may be asleep on it, and lowering it would let the
            // producer skip the wake-up it needs (it would sleep out its slice). A stale 1
            // only costs the producer one wake-up.
            return Ok(false);
        }
        Ok(true)
    }

    /// Sleeps until woken or `deadline` (after [`Consumer::prepare_sleep`] returned `true`).
    pub(crate) fn sleep(&self, deadline: Option<Deadline>) {
        let _ = futex::wait(&self.ring.ctl().prod.cons_sleep, 1, deadline);
    }

    /// For waiters that watch this end through a shared reference (`poll`, `wait`): raises
    /// the sleeper flag (never lowering it: a stale flag only costs the producer one wake-up,
    /// while lowering it could strand a `recv` asleep on the same word) and returns the word
    /// to sleep on with expected value 1. The caller re-checks [`Consumer::pending`] after
    /// this and before sleeping (the Dekker pair with `Producer::publish`).
    pub(crate) fn announce_waiter(&self) -> &AtomicU32 {
        let word = &self.ring.ctl().prod.cons_sleep;
        // SeqCst: Dekker with Producer::publish (store tail, fence, load cons_sleep).
        word.store(1, Ordering::SeqCst);
        // SeqCst: orders the store above before the caller's re-check of `tail`.
        fence(Ordering::SeqCst);
        word
    }
}

/// A read-only view of a consumer's ring for a watcher thread of the same process (async
/// readiness, `queue/ready.rs`): it reads the positions and raises the consumer's sleeper
/// flag, and never consumes. Whoever makes it keeps the ring's memory mapped while it lives.
#[derive(Debug)]
pub(crate) struct RingProbe {
    ring: Ring,
}

impl Consumer {
    /// A probe of this consumer's ring (see [`RingProbe`]).
    pub(crate) fn probe(&self) -> RingProbe {
        RingProbe { ring: self.ring }
    }
}

impl RingProbe {
    /// Whether a record is pending (a hint: a corrupt position reads as "pending", so that the
    /// consumer looks and reports it).
    pub(crate) fn pending(&self) -> bool {
        let ctl = self.ring.ctl();
        // Acquire: pairs with the consumer's Release head store and the producer's tail store.
        ctl.cons.head.load(Ordering::Acquire) != ctl.prod.tail.load(Ordering::Acquire)
    }

    /// As [`Consumer::announce_waiter`]: raises the sleeper flag; sleep on the word with 1.
    pub(crate) fn announce(&self) -> &AtomicU32 {
        let word = &self.ring.ctl().prod.cons_sleep;
        // SeqCst: as in `Consumer::announce_waiter`.
        word.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        word
    }
}
