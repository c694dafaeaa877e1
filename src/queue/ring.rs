//! The single-producer single-consumer byte ring under [`Pipe`](super::Pipe): framed records of
//! any length in a region of shared (or heap) memory, no syscall and no allocation on the fast path.
//!
//! # Layout
//!
//! A [`RingCtl`] (two 128-byte lines) plus a data region of `cap` bytes (a power of two ≥ 64).
//! Positions `head` and `tail` are byte counts that only grow (`u64`, never wrap in practice), so
//! `tail - head` is the number of bytes in use: `0` is empty, `cap` is full, and the two can
//! never be confused. A position maps to the region with `pos & (cap - 1)`.
//!
//! Each record is an 8-byte header `len | kind << 32` followed by `len` payload bytes, padded to
//! 8 bytes. A record never straddles the end of the region: when it does not fit before the
//! end, the producer writes a `WRAP` header there and starts again at offset 0. Messages larger
//! than a record ([`Ring::max_record`], half the ring) are split into `FIRST`, `MORE`…, `LAST`
//! records; `FIRST` starts with the total length as a `u64`.
//!
//! # Memory ordering
//!
//! * The producer writes a record, then stores `tail` (`Release`); the
//!   consumer loads `tail` with `Acquire` before reading the record. Symmetrically the consumer
//!   stores `head` after copying a record out, and the producer loads `head` with `Acquire`
//!   before overwriting that space.
//! * Each side caches the other's index and reloads it only when its cache says empty/full.
//! * Sleeping (Dekker handshake): a consumer that finds the ring empty stores `cons_sleep = 1`,
//!   issues a `SeqCst` fence, loads `tail` again and only then sleeps on `cons_sleep` with
//!   expected value 1. The producer stores `tail`, issues a `SeqCst` fence, then loads
//!   `cons_sleep`; if it is 1 it swaps it to 0 and wakes. The two fences are totally ordered, so
//!   either the producer's load sees the 1 (and wakes), or the consumer's reload of `tail` sees
//!   the new record (and does not sleep); a futex wait on an already-zeroed word returns at once.
//!   (Fences rather than SeqCst accesses: loom models SeqCst fences exactly, SeqCst accesses
//!   only as AcqRel, and found this handshake "deadlocking" with the latter.)
//!   The producer sleeping on a full ring is the mirror image (`prod_sleep` and `head`).
//!
//! # Untrusted memory
//!
//! Each side trusts only its own index and re-validates everything else it reads: the peer's
//! index (`head ≤ tail ≤ head + cap`, multiple of 8) and every header (`kind`, and a length
//! that fits both the bytes published and the bytes left before the end of the region). A
//! failed check is [`RingError::Corrupt`]; no read or write ever leaves the region.

use crate::loom::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use crate::loom::futex;
use crate::shm::ShmObject;
use crate::sys::clock::Deadline;
use std::ptr::NonNull;

/// Record kinds (the high 32 bits of a header).
pub(crate) const KIND_FULL: u32 = 1;
/// The first fragment of a message; its payload starts with the total length (`u64`).
pub(crate) const KIND_FIRST: u32 = 2;
/// A middle fragment.
pub(crate) const KIND_MORE: u32 = 3;
/// The last fragment.
pub(crate) const KIND_LAST: u32 = 4;
/// Skip to offset 0.
const KIND_WRAP: u32 = 5;
/// A descriptor-passing marker (no payload): the descriptor itself travels over the pipe's
/// socket (`Connection::send_fd`).
pub(crate) const KIND_FD: u32 = 6;
/// A type announcement: its 8-byte payload is the fingerprint of the messages that follow
/// (0: untyped bytes). Published together with the first message of the new type, and consumed
/// by `peek` itself, so a reader never sees it as a message.
const KIND_TYPE: u32 = 7;
const HDR: u64 = 8;
/// Bytes of a `TYPE` record (header + fingerprint).
const TYPE_REC: u64 = HDR + 8;

/// A ring operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingError {
    /// Something read from shared memory broke the ring's invariants.
    Corrupt(&'static str),
}

/// The producer's cache line: `tail`, and the word the consumer sleeps on.
#[repr(C, align(128))]
#[derive(Debug)]
struct ProdLine {
    tail: AtomicU64,
    /// The type fingerprint last announced to the consumer (0: untyped bytes). Written only by
    /// the producer, kept here rather than per handle so that every process that writes this
    /// end in turn continues the same announcements.
    type_sent: AtomicU64,
    /// 1 while the consumer may be sleeping (futex word).
    cons_sleep: AtomicU32,
}

/// The consumer's cache line: `head`, and the word the producer sleeps on.
#[repr(C, align(128))]
#[derive(Debug)]
struct ConsLine {
    head: AtomicU64,
    /// The type fingerprint of the records that follow (from the last `TYPE` record consumed).
    /// Written only by the consumer.
    type_seen: AtomicU64,
    /// 1 while the producer may be sleeping (futex word).
    prod_sleep: AtomicU32,
}

/// Close counters, on a line of their own that is written only when a handle closes: every
/// send and receive can read them (a hit in its own cache) to notice a peer that closed,
/// without pulling the other side's busy line.
#[repr(C, align(128))]
#[derive(Debug)]
struct CloseLine {
    /// Bumped on every close of a writing handle, so that readers re-check for end of file.
    writer_closes: AtomicU32,
    /// Bumped on every close of a reading handle, so that writers re-check for a gone reader.
    reader_closes: AtomicU32,
}

/// The control block of one ring direction (384 bytes, zero is an empty ring).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RingCtl {
    prod: ProdLine,
    cons: ConsLine,
    closes: CloseLine,
}

impl RingCtl {
    /// A fresh control block (loom models, heap rings).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn new() -> RingCtl {
        let z32 = || AtomicU32::new(0);
        let z64 = || AtomicU64::new(0);
        RingCtl {
            prod: ProdLine { tail: z64(), type_sent: z64(), cons_sleep: z32() },
            cons: ConsLine { head: z64(), type_seen: z64(), prod_sleep: z32() },
            closes: CloseLine { writer_closes: z32(), reader_closes: z32() },
        }
    }
}

// SAFETY: all-zero bytes are an empty ring with nobody sleeping; the struct holds only atomics
// (no pointers or fds), so sharing `&RingCtl` between processes is sound; every value read from
// it is validated by `Producer`/`Consumer` before use (module docs, "Untrusted memory").
unsafe impl ShmObject for RingCtl {}

/// A ring: its control block and data region. Copyable raw view; the owner keeps memory alive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ring {
    ctl: NonNull<RingCtl>,
    data: NonNull<u8>,
    cap: u64,
}

// SAFETY: the ring's memory is shared by design; all cross-side access goes through the atomics
// of `RingCtl` (protocol in the module docs). The owner of the memory outlives every `Ring`.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Builds a ring over `ctl` and `cap` bytes at `data`.
    ///
    /// # Safety
    /// `ctl` and `data..data+cap` must be valid, 8-aligned, and outlive every use of the ring
    /// and of its endpoints; `cap` must be a power of two ≥ 64. At most one `Producer` and one
    /// `Consumer` may operate at a time.
    pub(crate) unsafe fn from_raw(ctl: NonNull<RingCtl>, data: NonNull<u8>, cap: usize) -> Ring {
        debug_assert!(cap.is_power_of_two() && cap >= 64 && (data.as_ptr() as usize) % 8 == 0);
        Ring { ctl, data, cap: cap as u64 }
    }

    /// The control block, the data region and the capacity (to locate them in a segment).
    pub(crate) fn parts(&self) -> (*const RingCtl, *const u8, u64) {
        (self.ctl.as_ptr(), self.data.as_ptr(), self.cap)
    }

    fn ctl(&self) -> &RingCtl {
        // SAFETY: valid for the ring's life (contract of `from_raw`).
        unsafe { self.ctl.as_ref() }
    }

    /// The largest payload of one record: half the ring minus 16 bytes, so that a record, a
    /// type announcement and their wrap gaps always fit into an empty ring (a gap is shorter
    /// than what follows it, so at most `8 + TYPE_REC + 2 * record ≤ cap`).
    pub(crate) fn max_record(&self) -> usize {
        (self.cap / 2 - 2 * HDR) as usize
    }

    /// The counter bumped when a writer handle closes.
    pub(crate) fn writer_closes(&self) -> &AtomicU32 {
        &self.ctl().closes.writer_closes
    }

    /// The counter bumped when a reader handle closes.
    pub(crate) fn reader_closes(&self) -> &AtomicU32 {
        &self.ctl().closes.reader_closes
    }

    /// Wakes both sides (after a close) so that they re-check for end of file.
    pub(crate) fn wake_all(&self) {
        let c = self.ctl();
        // SeqCst: pairs with the sleepers' `store(1)`; a sleeper that misses this re-checks the
        // close counters after its bounded slice anyway.
        c.prod.cons_sleep.store(0, Ordering::SeqCst);
        futex::wake(&c.prod.cons_sleep, u32::MAX);
        // SeqCst: as above.
        c.cons.prod_sleep.store(0, Ordering::SeqCst);
        futex::wake(&c.cons.prod_sleep, u32::MAX);
    }

    /// Copies `src` into the region at `off` (≤ cap - len, checked by the caller).
    fn write_at(&self, off: u64, src: &[u8]) {
        debug_assert!(off + src.len() as u64 <= self.cap);
        // SAFETY: `off + len ≤ cap` (callers compute it from validated positions), the producer
        // owns these bytes until it publishes `tail`.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.data.as_ptr().add(off as usize), src.len()) }
    }

    fn read_u64_at(&self, off: u64) -> u64 {
        debug_assert!(off + 8 <= self.cap && off % 8 == 0);
        // SAFETY: in bounds and 8-aligned (`off` is a masked multiple of 8, `cap` a multiple of 8).
        // Volatile: a faulty peer may write concurrently; we read whatever is there, once.
        unsafe { std::ptr::read_volatile(self.data.as_ptr().add(off as usize).cast::<u64>()) }
    }
}

/// Bytes to skip at `pos` so that `len` contiguous bytes fit before the end of a region of `cap`.
fn wrap_gap(cap: u64, pos: u64, len: u64) -> u64 {
    let off = pos & (cap - 1);
    if cap - off < len {
        cap - off
    } else {
        0
    }
}

/// Result of a non-blocking write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The record is published.
    Done,
    /// Not enough space now.
    Full,
}

/// The writing side of a ring.
#[derive(Debug)]
pub(crate) struct Producer {
    ring: Ring,
    cached_head: u64,
    /// Bytes the last refused `try_push` needed.
    last_need: u64,
}

impl Producer {
    /// The producer of `ring`.
    pub(crate) fn new(ring: Ring) -> Producer {
        Producer { ring, cached_head: 0, last_need: 0 }
    }

    /// The ring.
    pub(crate) fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Our own `tail`, validated against the cached head.
    fn tail(&self) -> Result<u64, RingError> {
        // Relaxed: our own index, written only by the (single) producer.
        let t = self.ring.ctl().prod.tail.load(Ordering::Relaxed);
        if t % 8 != 0 {
            return Err(RingError::Corrupt("tail not a multiple of 8"));
        }
        Ok(t)
    }

    /// Writes one record of `kind` with payload `prefix ++ body` and publishes it, if it fits.
    /// `8 * prefix.is_some() + body.len()` must be ≤ `max_record`.
    ///
    /// `type_fp` is `Some(fingerprint)` for the first record of a message (0: untyped bytes):
    /// when it differs from the last one announced on this ring, a `TYPE` record goes first,
    /// published with the message in one store, so that no reader ever sees one without the
    /// other.
    pub(crate) fn try_push(
        &mut self,
        kind: u32,
        type_fp: Option<u64>,
        prefix: Option<u64>,
        body: &[u8],
    ) -> Result<Pushed, RingError> {
        let r = self.ring;
        let len = body.len() as u64 + if prefix.is_some() { 8 } else { 0 };
        debug_assert!(len <= r.max_record() as u64);
        let rec = HDR + len.next_multiple_of(8);
        let tail = self.tail()?;
        // Relaxed: our own word; only the producer writes it.
        let announce = type_fp.filter(|&fp| fp != r.ctl().prod.type_sent.load(Ordering::Relaxed));
        // Plan the writes: [wrap] [TYPE] [wrap] record, each piece contiguous in the region.
        let mut pos = tail;
        let mut type_at = None;
        if announce.is_some() {
            pos += wrap_gap(r.cap, pos, TYPE_REC);
            type_at = Some(pos);
            pos += TYPE_REC;
        }
        pos += wrap_gap(r.cap, pos, rec);
        let rec_at = pos;
        let need = rec_at + rec - tail;
        self.last_need = need;
        if !self.fits(tail, need)? {
            return Ok(Pushed::Full);
        }
        let mut cursor = tail;
        let skip_to = |to: u64, cursor: &mut u64| {
            if to != *cursor {
                r.write_at(*cursor & (r.cap - 1), &(u64::from(KIND_WRAP) << 32).to_ne_bytes());
            }
            *cursor = to;
        };
        if let (Some(at), Some(fp)) = (type_at, announce) {
            skip_to(at, &mut cursor);
            let off = at & (r.cap - 1);
            r.write_at(off, &(8 | u64::from(KIND_TYPE) << 32).to_ne_bytes());
            r.write_at(off + HDR, &fp.to_ne_bytes());
            cursor += TYPE_REC;
        }
        skip_to(rec_at, &mut cursor);
        let off = rec_at & (r.cap - 1);
        r.write_at(off, &(len | u64::from(kind) << 32).to_ne_bytes());
        let mut p = off + HDR;
        if let Some(x) = prefix {
            r.write_at(p, &x.to_ne_bytes());
            p += 8;
        }
        r.write_at(p, body);
        self.publish(tail + need);
        if let Some(fp) = announce {
            // Relaxed: read only by producers of this ring, after this in program order or
            // after a hand-over of the end (fork, fd passing) that orders it.
            r.ctl().prod.type_sent.store(fp, Ordering::Relaxed);
        }
        Ok(Pushed::Done)
    }

    /// Whether a record of `len` payload bytes (no `TYPE` record before it) fits now; a
    /// refusal records the need, as `try_push`'s does, for `prepare_sleep`.
    pub(crate) fn has_room(&mut self, len: u64) -> Result<bool, RingError> {
        let tail = self.tail()?;
        let rec = HDR + len.next_multiple_of(8);
        let need = wrap_gap(self.ring.cap, tail, rec) + rec;
        self.last_need = need;
        self.fits(tail, need)
    }

    /// True when `need` bytes are free after `tail`; reloads `head` only when the cache says no.
    fn fits(&mut self, tail: u64, need: u64) -> Result<bool, RingError> {
        let cap = self.ring.cap;
        let ok = |h: u64| h <= tail && tail - h <= cap;
        if ok(self.cached_head) && tail - self.cached_head + need <= cap {
            return Ok(true);
        }
        // SYNC(acquire ← Consumer::release): the consumer is done with the bytes before `head`.
        let h = self.ring.ctl().cons.head.load(Ordering::Acquire);
        if !ok(h) || h % 8 != 0 {
            return Err(RingError::Corrupt("head outside [tail - cap, tail]"));
        }
        self.cached_head = h;
        Ok(tail - h + need <= cap)
    }

    fn publish(&mut self, new_tail: u64) {
        let c = self.ring.ctl();
        // SYNC(release → Consumer::peek): publishes the record bytes.
        c.prod.tail.store(new_tail, Ordering::Release);
        // SeqCst: the fence orders the store of `tail` before the load of `cons_sleep` (Dekker
        // with the fence in Consumer::prepare_sleep: store cons_sleep, fence, load tail).
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above; SeqCst swap so only one side issues the wake.
        if c.prod.cons_sleep.load(Ordering::Relaxed) != 0 && c.prod.cons_sleep.swap(0, Ordering::SeqCst) != 0 {
            // Every sleeper: besides the consumer in `recv`, `poll` and `wait` (which watch
            // the word through a shared handle) may be asleep on it too.
            futex::wake(&c.prod.cons_sleep, u32::MAX);
        }
    }

    /// Called with the ring full: announce that we will sleep. Returns `false` when space
    /// appeared meanwhile (do not sleep), `true` when the caller may call [`Producer::sleep`].
    pub(crate) fn prepare_sleep(&mut self) -> Result<bool, RingError> {
        let need = self.last_need;
        // SeqCst: Dekker with Consumer::store_head (store head, fence, load prod_sleep).
        self.ring.ctl().cons.prod_sleep.store(1, Ordering::SeqCst);
        // SeqCst: orders the store above before the load of `head` below.
        fence(Ordering::SeqCst);
        let tail = self.tail()?;
        // SYNC(acquire ← Consumer::store_head).
        let h = self.ring.ctl().cons.head.load(Ordering::Acquire);
        if h > tail || tail - h > self.ring.cap || h % 8 != 0 {
            return Err(RingError::Corrupt("head outside [tail - cap, tail]"));
        }
        self.cached_head = h;
        if tail - h + need <= self.ring.cap {
            // Relaxed: we are not going to sleep; a stale 1 only costs the consumer one wake.
            self.ring.ctl().cons.prod_sleep.store(0, Ordering::Relaxed);
            return Ok(false);
        }
        Ok(true)
    }

    /// Sleeps until woken or `deadline` (after [`Producer::prepare_sleep`] returned `true`).
    pub(crate) fn sleep(&self, deadline: Option<Deadline>) {
        let _ = futex::wait(&self.ring.ctl().cons.prod_sleep, 1, deadline);
    }
}

/// A record in the ring, seen by the consumer before it is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// `KIND_FULL`, `KIND_FIRST`, `KIND_MORE` or `KIND_LAST`.
    pub(crate) kind: u32,
    /// Payload offset in the region.
    off: u64,
    /// Payload length.
    pub(crate) len: usize,
    /// Position after this record (the new head once released).
    next: u64,
}

/// The reading side of a ring.
#[derive(Debug)]
pub(crate) struct Consumer {
    ring: Ring,
    cached_tail: u64,
}

impl Consumer {
    /// The consumer of `ring`.
    pub(crate) fn new(ring: Ring) -> Consumer {
        Consumer { ring, cached_tail: 0 }
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

    /// The next record, without consuming it; `None` when the ring is empty.
    pub(crate) fn peek(&mut self) -> Result<Option<Record>, RingError> {
        let r = self.ring;
        let mut head = self.head()?;
        loop {
            if self.cached_tail <= head || self.cached_tail - head > r.cap {
                // SYNC(acquire ← Producer::publish): the record bytes before `tail` are written.
                let t = r.ctl().prod.tail.load(Ordering::Acquire);
                self.cached_tail = self.check_tail(head, t)?;
                if t == head {
                    return Ok(None);
                }
            }
            let avail = self.cached_tail - head;
            let off = head & (r.cap - 1);
            let hdr = r.read_u64_at(off);
            let (len, kind) = (hdr & 0xffff_ffff, (hdr >> 32) as u32);
            if kind == KIND_WRAP {
                let gap = r.cap - off;
                if gap > avail {
                    return Err(RingError::Corrupt("wrap marker past tail"));
                }
                head += gap;
                // Release the gap at once: it carries no data.
                self.store_head(head);
                continue;
            }
            if kind == KIND_TYPE {
                if len != 8 || TYPE_REC > avail || TYPE_REC > r.cap - off {
                    return Err(RingError::Corrupt("type record length"));
                }
                let fp = r.read_u64_at(off + HDR);
                // Relaxed: only the consumer writes or reads it (program order).
                r.ctl().cons.type_seen.store(fp, Ordering::Relaxed);
                head += TYPE_REC;
                self.store_head(head);
                continue;
            }
            if !(KIND_FULL..=KIND_LAST).contains(&kind) && kind != KIND_FD {
                return Err(RingError::Corrupt("unknown record kind"));
            }
            let rec = HDR + len.next_multiple_of(8);
            if rec > avail || rec > r.cap - off || len > r.max_record() as u64 {
                return Err(RingError::Corrupt("record length past tail or end of ring"));
            }
            return Ok(Some(Record { kind, off: off + HDR, len: len as usize, next: head + rec }));
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
        // SYNC(acquire ← Producer::publish).
        let t = c.prod.tail.load(Ordering::Acquire);
        self.cached_tail = self.check_tail(head, t)?;
        if t != head {
            // Relaxed: not sleeping; a stale 1 only costs the producer one wake.
            c.prod.cons_sleep.store(0, Ordering::Relaxed);
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
        RingProbe { ring: Ring { ctl: self.ring.ctl, data: self.ring.data, cap: self.ring.cap } }
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

impl Ring {
    /// Overwrites the region and `tail` with arbitrary bytes, playing a faulty producer (fuzzing).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn scribble(&self, bytes: &[u8], tail: u64) {
        let n = bytes.len().min(self.cap as usize);
        self.write_at(0, &bytes[..n]);
        // Relaxed: single-threaded fuzzing; the consumer's Acquire load follows in program order.
        self.ctl().prod.tail.store(tail, Ordering::Relaxed);
    }
}

/// A ring over heap memory (tests, fuzzing, miri): owns its control block and region.
#[cfg(any(test, feature = "test-hooks"))]
#[derive(Debug)]
pub(crate) struct HeapRing {
    ctl: Box<RingCtl>,
    data: Vec<u64>,
}

#[cfg(any(test, feature = "test-hooks"))]
impl HeapRing {
    /// A zeroed heap ring of `cap` bytes (power of two ≥ 64).
    pub(crate) fn new(cap: usize) -> HeapRing {
        assert!(cap.is_power_of_two() && cap >= 64);
        let ctl = Box::new(RingCtl::new());
        HeapRing { ctl, data: vec![0u64; cap / 8] }
    }

    /// The ring view (valid while `self` lives).
    pub(crate) fn ring(&mut self) -> Ring {
        let ctl = NonNull::from(&*self.ctl);
        let data = NonNull::new(self.data.as_mut_ptr().cast::<u8>()).expect("vec pointer is non-null");
        // SAFETY: both allocations live as long as `self`, the region is 8-aligned, `cap` was
        // checked in `new`; callers use one producer and one consumer.
        unsafe { Ring::from_raw(ctl, data, self.data.len() * 8) }
    }
}

/// Runs operation sequences against a `VecDeque` model (the `ring_ops` fuzz target): byte 0
/// picks the capacity; an even byte pushes a message whose length is the next byte and whose
/// type fingerprint is one of three (so type announcements wrap and interleave too), an odd
/// byte pops and checks the message and its type.
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) fn model_ops(data: &[u8]) {
    let Some((&c, ops)) = data.split_first() else { return };
    let mut heap = HeapRing::new(64 << (c % 6));
    let ring = heap.ring();
    let (mut p, mut q) = (Producer::new(ring), Consumer::new(ring));
    let mut model = std::collections::VecDeque::new();
    let mut seq = 0u8;
    let mut ops = ops.iter();
    while let Some(&op) = ops.next() {
        if op & 1 == 0 {
            let len = usize::from(ops.next().copied().unwrap_or(0)) % (ring.max_record() + 1);
            let fp = u64::from((op >> 1) % 3) * 0x1111;
            seq = seq.wrapping_add(1);
            let msg = vec![seq; len];
            match p.try_push(KIND_FULL, Some(fp), None, &msg).expect("heap ring is never corrupt") {
                Pushed::Done => model.push_back((fp, msg)),
                // An empty ring takes any record up to `max_record`, announced or not.
                Pushed::Full => assert!(!model.is_empty(), "an empty ring refused a record"),
            }
        } else {
            match q.peek().expect("heap ring is never corrupt") {
                None => assert!(model.is_empty(), "ring empty but model has {}", model.len()),
                Some(rec) => {
                    let (fp, want) = model.pop_front().expect("ring has a record the model lacks");
                    assert_eq!(q.type_seen(), fp, "type of message {seq}");
                    let mut got = vec![0u8; rec.len];
                    q.copy_out(&rec, 0, &mut got);
                    q.release(&rec);
                    assert_eq!(got, want);
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! Heap-memory tests without syscalls: `cargo +nightly miri test --lib ring`.
    use super::*;

    fn pop(q: &mut Consumer) -> Option<Vec<u8>> {
        let rec = q.peek().unwrap()?;
        let mut v = vec![0u8; rec.len];
        q.copy_out(&rec, 0, &mut v);
        q.release(&rec);
        Some(v)
    }

    #[test]
    fn ring_push_pop_and_empty_message() {
        let mut h = HeapRing::new(256);
        let r = h.ring();
        let (mut p, mut q) = (Producer::new(r), Consumer::new(r));
        assert_eq!(pop(&mut q), None);
        assert_eq!(p.try_push(KIND_FULL, Some(0), None, b"abc").unwrap(), Pushed::Done);
        assert_eq!(p.try_push(KIND_FULL, Some(0), None, b"").unwrap(), Pushed::Done);
        assert_eq!(pop(&mut q).unwrap(), b"abc");
        assert_eq!(pop(&mut q).unwrap(), b"");
        assert_eq!(pop(&mut q), None);
    }

    #[test]
    fn ring_full_then_wraps() {
        let mut h = HeapRing::new(128);
        let r = h.ring();
        let (mut p, mut q) = (Producer::new(r), Consumer::new(r));
        for round in 0..50u8 {
            let msg = vec![round; (round as usize * 7) % 40];
            let mut pushed = 0;
            while p.try_push(KIND_FULL, Some(0), None, &msg).unwrap() == Pushed::Done {
                pushed += 1;
            }
            assert!(pushed >= 1, "an empty ring takes any record up to max_record");
            for _ in 0..pushed {
                assert_eq!(pop(&mut q).unwrap(), msg);
            }
            assert_eq!(pop(&mut q), None);
        }
    }

    #[test]
    fn ring_max_record_always_fits_an_empty_ring() {
        let mut h = HeapRing::new(64);
        let r = h.ring();
        let (mut p, mut q) = (Producer::new(r), Consumer::new(r));
        for i in 0..20usize {
            let small = vec![1u8; i % 9];
            assert_eq!(p.try_push(KIND_FULL, Some(0), None, &small).unwrap(), Pushed::Done);
            assert_eq!(pop(&mut q).unwrap(), small);
            let big = vec![2u8; r.max_record()];
            assert_eq!(p.try_push(KIND_FULL, Some(0), None, &big).unwrap(), Pushed::Done);
            assert_eq!(pop(&mut q).unwrap(), big);
        }
    }

    #[test]
    fn ring_type_announcements_fit_and_arrive_with_their_message() {
        for cap in [64usize, 128, 256] {
            let mut h = HeapRing::new(cap);
            let r = h.ring();
            let (mut p, mut q) = (Producer::new(r), Consumer::new(r));
            for i in 0..40u64 {
                // Every record announces a new type: the worst case for space and wrapping.
                let big = vec![i as u8; r.max_record() - (i as usize % 3) * 8];
                assert_eq!(p.try_push(KIND_FULL, Some(i + 1), None, &big).unwrap(), Pushed::Done, "cap {cap} i {i}");
                assert_eq!(pop(&mut q).unwrap(), big);
                assert_eq!(q.type_seen(), i + 1);
            }
            // The same type again announces nothing: it takes only the record's own space.
            let free = |p: &mut Producer| p.try_push(KIND_FULL, Some(40), None, &[]).unwrap();
            let mut n = 0;
            while free(&mut p) == Pushed::Done {
                n += 1;
            }
            assert_eq!(n, cap / 8, "one 8-byte record per 8 bytes when no type is announced");
        }
    }

    #[test]
    fn ring_corrupt_tail_and_header_are_errors() {
        let mut h = HeapRing::new(64);
        let r = h.ring();
        let mut q = Consumer::new(r);
        r.scribble(&[], 1000);
        assert!(q.peek().is_err());
        let mut hdr = [0u8; 8];
        hdr.copy_from_slice(&(60u64 | u64::from(KIND_FULL) << 32).to_ne_bytes());
        r.scribble(&hdr, 16);
        assert!(q.peek().is_err(), "length past tail");
        hdr.copy_from_slice(&(9u64 << 32).to_ne_bytes());
        r.scribble(&hdr, 8);
        assert!(q.peek().is_err(), "unknown kind");
    }

    #[test]
    fn ring_ops_model_runs() {
        model_ops(&[0, 0, 5, 1, 0, 200, 0, 3, 1, 1, 1]);
        model_ops(&[3, 0, 9, 0, 9, 0, 9, 0, 9, 0, 9, 1, 1, 0, 9, 1, 1, 1, 1]);
        let data: Vec<u8> = (0..600u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        model_ops(&data);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Models of the ring protocol: publication, wrap-around, full/empty, and the sleep/wake
    //! handshake on both sides (a lost wake-up is a loom deadlock).
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    struct Heap {
        ctl: RingCtl,
        data: std::cell::UnsafeCell<[u64; 8]>,
    }
    // SAFETY: the region is accessed only through the ring protocol under test.
    unsafe impl Sync for Heap {}
    // SAFETY: as above.
    unsafe impl Send for Heap {}

    fn ring(h: &Heap) -> Ring {
        let data = NonNull::new(h.data.get().cast::<u8>()).expect("non-null");
        // SAFETY: `h` outlives the model's threads (held by an Arc in each), 64 bytes, 8-aligned.
        unsafe { Ring::from_raw(NonNull::from(&h.ctl), data, 64) }
    }

    fn push_blocking(p: &mut Producer, msg: &[u8]) {
        while p.try_push(KIND_FULL, Some(0), None, msg).unwrap() == Pushed::Full {
            if p.prepare_sleep().unwrap() {
                p.sleep(None);
            }
        }
    }

    fn pop_blocking(q: &mut Consumer) -> Vec<u8> {
        loop {
            if let Some(rec) = q.peek().unwrap() {
                let mut v = vec![0u8; rec.len];
                q.copy_out(&rec, 0, &mut v);
                q.release(&rec);
                return v;
            }
            if q.prepare_sleep().unwrap() {
                q.sleep(None);
            }
        }
    }

    fn model(msgs: &'static [&'static [u8]]) {
        loom::model(move || {
            let h = Arc::new(Heap { ctl: RingCtl::new(), data: std::cell::UnsafeCell::new([0; 8]) });
            let h2 = h.clone();
            let t = thread::spawn(move || {
                let mut p = Producer::new(ring(&h2));
                for m in msgs {
                    push_blocking(&mut p, m);
                }
            });
            let mut q = Consumer::new(ring(&h));
            for m in msgs {
                assert_eq!(pop_blocking(&mut q), *m);
            }
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_ring_push_pop_sleeping_consumer() {
        model(&[b"ab", b""]);
    }

    #[test]
    fn loom_ring_full_sleeping_producer_and_wrap() {
        // 16 payload bytes = 24-byte records in a 64-byte ring: the third needs a 16-byte wrap
        // gap plus 24 bytes, so it waits for the consumer (sleeping producer) and wraps.
        model(&[&[1; 16], &[2; 16], &[3; 16]]);
    }
}
