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
//! Each record is an 8-byte header `len | kind << 32 | stamp << 40` followed by `len` payload
//! bytes, padded to 8 bytes. A record never straddles the end of the region: when it does not
//! fit before the end, the producer writes a `WRAP` header there and starts again at offset 0.
//! Messages larger than a record ([`Ring::max_record`], half the ring) are split into `FIRST`,
//! `MORE`…, `LAST` records; `FIRST` starts with the total length as a `u64`.
//!
//! The `stamp` (24 bits) is the header's own position: the low 12 bits of its lap
//! (`pos / cap`) and of its 8-byte slot in the region. A reader checks it against the position
//! it reads at, so a header read at the wrong place (a misframed read after an index was
//! corrupted) is reported as corrupt instead of being delivered, and a header left from the
//! lap before is told from a new one.
//!
//! # The header is the publication
//!
//! The consumer does not read `tail` to find a record: it reads the header word at its `head`
//! (one cache line holds the header and the start of the payload, so a small message costs
//! one line transfer, not a line for `tail` and then one for the data). For that the header
//! word at `head` must never hold anything but "nothing yet" or a header published for this
//! position. The producer keeps that true:
//!
//! * It writes a record's pieces (wrap marker, type announcement, record) in any order, and
//!   the header word at its old `tail` (the first piece) last, with `Release`; the consumer
//!   loads it with `Acquire`, so everything the push wrote is visible with it.
//! * Before that store it zeroes the header word at its new `tail`, where the next push will
//!   start, if that word is free. It is not free only when the push filled the ring exactly:
//!   then the word holds the header of the record at `head` (the consumer's next one), and
//!   the consumer, arriving there a lap later, sees that header's stamp, one lap old, and
//!   reads it as "nothing yet" too.
//!
//! `tail` is still published (after the header) for the producer itself, for `poll`-style
//! readiness checks and for the sleep handshake; on the hot path the consumer never reads it.
//!
//! # Memory ordering
//!
//! * The producer writes a record, then stores its first header (`Release`, above) and then
//!   `tail` (`Release`); the consumer loads the header at `head` with `Acquire` before reading
//!   the record. Symmetrically the consumer stores `head` after copying a record out, and the
//!   producer loads `head` with `Acquire` before overwriting that space.
//! * The producer caches `head` and reloads it only when its cache says full.
//! * Sleeping (Dekker handshake): a consumer that finds the ring empty stores `cons_sleep = 1`,
//!   issues a `SeqCst` fence, loads the header at `head` again and only then sleeps on
//!   `cons_sleep` with expected value 1. The producer stores the header and `tail`, issues a
//!   `SeqCst` fence, then loads `cons_sleep`; if it is 1 it swaps it to 0 and wakes. The two
//!   fences are totally ordered, so either the producer's load sees the 1 (and wakes), or the
//!   consumer's reload of the header sees the new record (and does not sleep); a futex wait on
//!   an already-zeroed word returns at once.
//!   (Fences rather than SeqCst accesses: loom models SeqCst fences exactly, SeqCst accesses
//!   only as AcqRel, and found this handshake "deadlocking" with the latter.)
//!   The producer sleeping on a full ring is the mirror image (`prod_sleep` and `head`).
//!
//! # Untrusted memory
//!
//! Each side trusts only its own index and re-validates everything else it reads: the peer's
//! index (`head ≤ tail ≤ head + cap`, multiple of 8) and every header (its stamp, `kind`, and
//! a length that fits the bytes left before the end of the region and a record). A failed
//! check is [`RingError::Corrupt`]; no read or write ever leaves the region.

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
/// The header bits that hold the kind (above the length) and the stamp (above the kind).
const KIND_SHIFT: u32 = 32;
const STAMP_SHIFT: u32 = 40;

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
    /// Loom models keep the header words in loom atomics of their own (loom cannot see a
    /// word of a plain region as an atomic); one per 8-byte slot of the region.
    #[cfg(all(test, loom))]
    words: Option<NonNull<AtomicU64>>,
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
        Ring {
            ctl,
            data,
            cap: cap as u64,
            #[cfg(all(test, loom))]
            words: None,
        }
    }

    /// A ring whose header words live in `words` (`cap / 8` loom atomics) instead of in the
    /// region (loom models).
    ///
    /// # Safety
    /// As for [`from_raw`](Self::from_raw), and `words` holds `cap / 8` atomics that outlive
    /// the ring.
    #[cfg(all(test, loom))]
    pub(crate) unsafe fn with_words(
        ctl: NonNull<RingCtl>,
        data: NonNull<u8>,
        cap: usize,
        words: NonNull<AtomicU64>,
    ) -> Ring {
        // SAFETY: forwarded contract.
        let mut r = unsafe { Ring::from_raw(ctl, data, cap) };
        r.words = Some(words);
        r
    }

    /// The header word at `off` (a multiple of 8, below `cap`).
    #[inline(always)]
    fn word(&self, off: u64) -> &AtomicU64 {
        debug_assert!(off + 8 <= self.cap && off % 8 == 0);
        #[cfg(all(test, loom))]
        if let Some(w) = self.words {
            // SAFETY: `off / 8 < cap / 8`, the table's length (contract of `with_words`).
            return unsafe { w.add((off / 8) as usize).as_ref() };
        }
        // SAFETY: in bounds and 8-aligned (`off` is a masked multiple of 8 and the region is
        // 8-aligned), mapped while the ring is. Shared memory is written by other processes
        // through atomics or plain copies ordered by this very protocol (module docs); an
        // `AtomicU64` has the layout of a `u64`.
        unsafe { crate::loom::atomic::u64_at(self.data.as_ptr().add(off as usize).cast::<u64>()) }
    }

    /// The stamp of a header at `pos`: the low 12 bits of its lap and of its 8-byte slot.
    #[inline(always)]
    fn stamp(&self, pos: u64) -> u64 {
        let lap = pos >> self.cap.trailing_zeros();
        (lap & 0xfff) << 12 | (pos >> 3) & 0xfff
    }

    /// A header for a record of `kind` with `len` payload bytes at `pos`.
    #[inline(always)]
    fn header(&self, pos: u64, len: u64, kind: u32) -> u64 {
        debug_assert!(len <= u64::from(u32::MAX) && kind <= 0xff && kind != 0);
        len | u64::from(kind) << KIND_SHIFT | self.stamp(pos) << STAMP_SHIFT
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
    /// Records written by [`try_stage`](Self::try_stage) and not yet published.
    staged: Option<Staged>,
    /// Where the last `write` of a reservation put its payload.
    reserved_at: u64,
    /// The last type announced in the staged batch (published with it, `note_type`).
    batch_type: Option<u64>,
}

/// What `write` writes: a payload, or room for one that the caller writes in place.
#[derive(Clone, Copy)]
enum Body<'a> {
    Bytes(&'a [u8]),
    Reserve(usize),
}

/// A record reserved by [`Producer::try_reserve`]: written but for its payload, not published.
#[derive(Debug)]
pub(crate) struct Reservation {
    /// Where the push starts (the published `tail`): its first header goes here.
    start: u64,
    /// That header.
    first: u64,
    /// The `tail` its publication sets.
    end: u64,
    /// The type it announces, if any (noted when it is published).
    announced: Option<u64>,
    /// The payload's offset in the region, and its length.
    payload: u64,
    len: usize,
}

/// What `write` wrote: everything but the first header, which publishes the rest.
struct Written {
    /// The `tail` after it.
    end: u64,
    /// The header word for the push's first position.
    first: u64,
    /// The type it announced, if it did.
    announced: Option<u64>,
}

/// A batch written but not published: the first header is held back (it publishes the rest).
#[derive(Debug, Clone, Copy)]
struct Staged {
    /// Where the batch starts (the published `tail`).
    start: u64,
    /// The header word that goes at `start` when the batch is committed.
    first: u64,
    /// Where the batch ends (the `tail` it publishes).
    end: u64,
}

impl Producer {
    /// The producer of `ring`.
    pub(crate) fn new(ring: Ring) -> Producer {
        Producer { ring, cached_head: 0, last_need: 0, staged: None, reserved_at: 0, batch_type: None }
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
        self.commit();
        let tail = self.tail()?;
        let Some(w) = self.write(tail, kind, type_fp, prefix, Body::Bytes(body))? else {
            return Ok(Pushed::Full);
        };
        let r = self.ring;
        // SYNC(release → Consumer::slot): the header at the old tail publishes every piece.
        r.word(tail & (r.cap - 1)).store(w.first, Ordering::Release);
        self.publish(w.end);
        self.note_type(w.announced);
        Ok(Pushed::Done)
    }

    /// [`try_push`](Self::try_push) into a batch: the record is written but not published
    /// until [`commit`](Self::commit), so that a batch costs one publication (one `tail`
    /// store, one fence, at most one wake-up) however many records it holds.
    pub(crate) fn try_stage(
        &mut self,
        kind: u32,
        type_fp: Option<u64>,
        prefix: Option<u64>,
        body: &[u8],
    ) -> Result<Pushed, RingError> {
        let at = match self.staged {
            Some(b) => b.end,
            None => self.tail()?,
        };
        let Some(w) = self.write(at, kind, type_fp, prefix, Body::Bytes(body))? else {
            return Ok(Pushed::Full);
        };
        if w.announced.is_some() {
            self.batch_type = w.announced;
        }
        match &mut self.staged {
            Some(b) => {
                let r = self.ring;
                // Relaxed: published by the Release store of the batch's first header.
                r.word(at & (r.cap - 1)).store(w.first, Ordering::Relaxed);
                b.end = w.end;
            }
            None => self.staged = Some(Staged { start: at, first: w.first, end: w.end }),
        }
        Ok(Pushed::Done)
    }

    /// Reserves room for one `FULL` record of `len` payload bytes (≤ `max_record`) and writes
    /// everything of it but the payload, which the caller writes in place through
    /// [`reserved`](Self::reserved) before [`publish_reserved`](Self::publish_reserved). A
    /// reservation that is never published is simply not there: nothing reaches the reader
    /// until its first header is stored, and the next push writes over it.
    pub(crate) fn try_reserve(&mut self, len: usize, type_fp: u64) -> Result<Option<Reservation>, RingError> {
        self.commit();
        let tail = self.tail()?;
        Ok(self.write(tail, KIND_FULL, Some(type_fp), None, Body::Reserve(len))?.map(|w| Reservation {
            start: tail,
            first: w.first,
            end: w.end,
            announced: w.announced,
            payload: self.reserved_at,
            len,
        }))
    }

    /// The payload bytes of `res`, to be written in place.
    ///
    /// The slice is into the ring: the protocol gives these bytes to the producer alone until
    /// the reservation is published (the consumer reads nothing past the last published
    /// header, and the region is never handed to anyone else).
    pub(crate) fn reserved(&mut self, res: &Reservation) -> &mut [u8] {
        debug_assert!(res.payload + res.len as u64 <= self.ring.cap);
        // SAFETY: `write` placed the payload inside the region (`payload + len ≤ cap`, checked
        // by its plan against the validated `head`); until `publish_reserved` the consumer
        // does not look at it (module docs), so this is the only reference to these bytes;
        // the `&mut self` borrow keeps any other producer call out while it lives.
        unsafe { std::slice::from_raw_parts_mut(self.ring.data.as_ptr().add(res.payload as usize), res.len) }
    }

    /// Publishes a reservation made by the last [`try_reserve`](Self::try_reserve) (no other
    /// producer call in between).
    pub(crate) fn publish_reserved(&mut self, res: Reservation) {
        let r = self.ring;
        // SYNC(release → Consumer::slot): the header publishes the payload written in place.
        r.word(res.start & (r.cap - 1)).store(res.first, Ordering::Release);
        self.publish(res.end);
        self.note_type(res.announced);
    }

    /// Publishes the staged batch, if any (every other producer call does it first, so
    /// nothing staged is ever left behind a wait).
    #[inline]
    pub(crate) fn commit(&mut self) {
        if let Some(b) = self.staged.take() {
            let r = self.ring;
            // SYNC(release → Consumer::slot): the batch's first header publishes all of it.
            r.word(b.start & (r.cap - 1)).store(b.first, Ordering::Release);
            self.publish(b.end);
            let announced = self.batch_type.take();
            self.note_type(announced);
        }
    }

    /// Writes one record of `kind` with payload `prefix ++ body` at `tail` (the published
    /// tail, or the end of the staged batch), if it fits: every piece but the first header,
    /// which it returns with the position after the record. See `try_push` for the rest.
    fn write(
        &mut self,
        tail: u64,
        kind: u32,
        type_fp: Option<u64>,
        prefix: Option<u64>,
        body: Body<'_>,
    ) -> Result<Option<Written>, RingError> {
        let r = self.ring;
        let body_len = match body {
            Body::Bytes(b) => b.len(),
            Body::Reserve(n) => n,
        };
        let len = body_len as u64 + if prefix.is_some() { 8 } else { 0 };
        debug_assert!(len <= r.max_record() as u64);
        let rec = HDR + len.next_multiple_of(8);
        // Relaxed: our own word; only the producer writes it.
        // What the reader will have seen by this record: the last type staged in this batch,
        // or (Relaxed: our own word, see `type_sent`) the last one published.
        let sent = self.batch_type.unwrap_or_else(|| r.ctl().prod.type_sent.load(Ordering::Relaxed));
        let announce = type_fp.filter(|&fp| fp != sent);
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
            return Ok(None);
        }
        let mask = r.cap - 1;
        // The word where the next push starts reads "nothing yet" before this one is seen
        // (module docs); when this push fills the ring exactly it holds the header at `head`,
        // which must stay, and which reads as one lap old there. "Exactly" by the real head:
        // a stale cache that says so is refreshed first (a free word left unzeroed could hold
        // anything).
        let next = tail + need;
        if next == self.cached_head + r.cap {
            // SYNC(acquire ← Consumer::store_head): the consumer is done with what it passed.
            let h = r.ctl().cons.head.load(Ordering::Acquire);
            if h > self.cached_head && h <= tail && h % 8 == 0 {
                self.cached_head = h;
            }
        }
        if next < self.cached_head + r.cap {
            // Relaxed: published by the Release store of the first header below.
            r.word(next & mask).store(0, Ordering::Relaxed);
        }
        // Every piece but the first is written now; the first header is stored last.
        let mut first = None;
        let mut put_header = |pos: u64, h: u64| {
            if pos == tail {
                first = Some(h);
            } else {
                // Relaxed: published by the Release store of the first header.
                r.word(pos & mask).store(h, Ordering::Relaxed);
            }
        };
        let mut cursor = tail;
        if let (Some(at), Some(fp)) = (type_at, announce) {
            if at != cursor {
                put_header(cursor, r.header(cursor, 0, KIND_WRAP));
            }
            r.write_at((at & mask) + HDR, &fp.to_ne_bytes());
            put_header(at, r.header(at, 8, KIND_TYPE));
            cursor = at + TYPE_REC;
        }
        if rec_at != cursor {
            put_header(cursor, r.header(cursor, 0, KIND_WRAP));
        }
        let mut p = (rec_at & mask) + HDR;
        if let Some(x) = prefix {
            r.write_at(p, &x.to_ne_bytes());
            p += 8;
        }
        match body {
            Body::Bytes(b) => r.write_at(p, b),
            // The caller writes the payload in place before publishing (`try_reserve`).
            Body::Reserve(_) => self.reserved_at = p,
        }
        put_header(rec_at, r.header(rec_at, len, kind));
        let first = first.expect("the first piece of a push starts at tail");
        // `type_sent` changes only when the announcement is published (`note_type`): an
        // abandoned reservation, or a batch that dies with its process, announced nothing.
        Ok(Some(Written { end: next, first, announced: announce }))
    }

    /// Records that `fp` was announced to the reader, once that announcement is published.
    fn note_type(&self, fp: Option<u64>) {
        if let Some(fp) = fp {
            // Relaxed: read only by producers of this ring, after this in program order or
            // after a hand-over of the end (fork, fd passing) that orders it.
            self.ring.ctl().prod.type_sent.store(fp, Ordering::Relaxed);
        }
    }

    /// Whether a record of `len` payload bytes (no `TYPE` record before it) fits now; a
    /// refusal records the need, as `try_push`'s does, for `prepare_sleep`.
    pub(crate) fn has_room(&mut self, len: u64) -> Result<bool, RingError> {
        self.commit();
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
        // SYNC(release → Consumer::pending, RingProbe::pending): the records before it are
        // published (their headers were stored first).
        c.prod.tail.store(new_tail, Ordering::Release);
        // SeqCst: the fence orders the stores of the header and `tail` before the load of
        // `cons_sleep` (Dekker with the fence in Consumer::prepare_sleep: store cons_sleep,
        // fence, load the header).
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
        self.commit();
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
            if !(KIND_FULL..=KIND_LAST).contains(&kind) && kind != KIND_FD {
                return Err(RingError::Corrupt("unknown record kind"));
            }
            let rec = HDR + len.next_multiple_of(8);
            if rec > r.cap - off || len > r.max_record() as u64 {
                return Err(RingError::Corrupt("record length past the end of the ring"));
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

impl Ring {
    /// Overwrites the region and `tail` with arbitrary bytes, playing a faulty producer (fuzzing).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn scribble(&self, bytes: &[u8], tail: u64) {
        #[cfg(all(test, loom))]
        assert!(self.words.is_none(), "loom rings keep their headers apart");
        let n = bytes.len().min(self.cap as usize);
        self.write_at(0, &bytes[..n]);
        // Relaxed: single-threaded fuzzing; the consumer's Acquire load follows in program order.
        self.ctl().prod.tail.store(tail, Ordering::Relaxed);
    }
}

impl Ring {
    /// Writes records as a faulty producer might, each header stamped for where it lands
    /// (fuzzing): `bytes` is a sequence of (kind, length, payload…) with the payload taken
    /// from what follows, as much as there is; the lengths and kinds are not checked, which
    /// is the point. Publishes `tail` after the last one.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn scribble_records(&self, mut bytes: &[u8]) {
        let mut pos = 0u64;
        while let [kind, len, rest @ ..] = bytes {
            let off = pos & (self.cap - 1);
            if off + HDR > self.cap {
                break;
            }
            let len = u64::from(*len);
            // Relaxed: single-threaded fuzzing; the consumer's loads follow in program order.
            self.word(off).store(self.header(pos, len, u32::from(*kind).max(1)), Ordering::Relaxed);
            let n = (len as usize).min(rest.len()).min((self.cap - off - HDR) as usize);
            self.write_at(off + HDR, &rest[..n]);
            bytes = &rest[n..];
            pos += HDR + len.next_multiple_of(8);
            if pos >= 2 * self.cap {
                break;
            }
        }
        // Relaxed: as above.
        self.ctl().prod.tail.store(pos.min(self.cap), Ordering::Relaxed);
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
/// picks the capacity; then each byte is an operation, by its value mod 8 (lengths come from
/// the next byte, type fingerprints from the operation's upper bits, so type announcements
/// wrap and interleave too): 0 pushes a message; 2 reserves room for one (a loan), fills it
/// and publishes it, or abandons it when bit 4 is set; 4 stages one into a batch; 6 commits
/// the batch; 7 pops a batch in place (`scan` … `release_to`); odd others pop one message.
/// Every producer call but staging commits the batch first, as the ring does.
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) fn model_ops(data: &[u8]) {
    let Some((&c, ops)) = data.split_first() else { return };
    let mut heap = HeapRing::new(64 << (c % 6));
    let ring = heap.ring();
    let (mut p, mut q) = (Producer::new(ring), Consumer::new(ring));
    let mut model = std::collections::VecDeque::new();
    let mut staged: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut seq = 0u8;
    let mut ops = ops.iter();
    let check = |q: &mut Consumer, rec: &Record, want: &(u64, Vec<u8>)| {
        assert_eq!(q.type_seen(), want.0, "type of a message");
        assert_eq!(q.payload(rec), &want.1[..]);
    };
    while let Some(&op) = ops.next() {
        let arg = usize::from(ops.next().copied().unwrap_or(0));
        let fp = u64::from((op >> 3) % 3) * 0x1111;
        let len = arg % (ring.max_record() + 1);
        match op % 8 {
            0 | 4 => {
                seq = seq.wrapping_add(1);
                let msg = vec![seq; len];
                let staging = op % 8 == 4;
                let r = if staging {
                    p.try_stage(KIND_FULL, Some(fp), None, &msg)
                } else {
                    model.extend(staged.drain(..)); // try_push commits first
                    p.try_push(KIND_FULL, Some(fp), None, &msg)
                };
                match r.expect("heap ring is never corrupt") {
                    Pushed::Done if staging => staged.push((fp, msg)),
                    Pushed::Done => model.push_back((fp, msg)),
                    // An empty ring takes any record up to `max_record`, announced or not.
                    Pushed::Full => assert!(!model.is_empty() || !staged.is_empty(), "an empty ring refused a record"),
                }
            }
            2 => {
                model.extend(staged.drain(..)); // so does a reservation
                seq = seq.wrapping_add(1);
                match p.try_reserve(len, 0).expect("heap ring is never corrupt") {
                    Some(res) => {
                        p.reserved(&res).fill(seq);
                        if op & 0x10 == 0 {
                            p.publish_reserved(res);
                            model.push_back((0, vec![seq; len]));
                        }
                    }
                    None => assert!(!model.is_empty(), "an empty ring refused a reservation"),
                }
            }
            6 => {
                p.commit();
                model.extend(staged.drain(..));
            }
            7 => {
                // A batch in place: up to `arg % 8 + 1` records, released together.
                let Ok(head) = q.position() else { panic!("heap ring is never corrupt") };
                let mut pos = head;
                for _ in 0..arg % 8 + 1 {
                    match q.scan(pos, false).expect("heap ring is never corrupt") {
                        None => break,
                        Some(rec) => {
                            let want = model.pop_front().expect("ring has a record the model lacks");
                            check(&mut q, &rec, &want);
                            pos = rec.next_pos();
                        }
                    }
                }
                q.release_to(pos);
            }
            _ => match q.peek().expect("heap ring is never corrupt") {
                None => assert!(model.is_empty(), "ring empty but model has {}", model.len()),
                Some(rec) => {
                    let want = model.pop_front().expect("ring has a record the model lacks");
                    check(&mut q, &rec, &want);
                    q.release(&rec);
                }
            },
        }
    }
    // What the ring still holds, after a last commit, is exactly what the model does.
    p.commit();
    model.extend(staged.drain(..));
    while let Some(rec) = q.peek().expect("heap ring is never corrupt") {
        let want = model.pop_front().expect("ring has a record the model lacks");
        check(&mut q, &rec, &want);
        q.release(&rec);
    }
    assert!(model.is_empty(), "the model has {} the ring lost", model.len());
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
        assert!(q.pending().is_err(), "tail past head + cap");
        assert_eq!(q.peek().unwrap(), None, "the hot path reads the header, not tail");
        let hdr = |v: u64| v.to_ne_bytes();
        r.scribble(&hdr(r.header(0, 60, KIND_FULL)), 0);
        assert!(q.peek().is_err(), "length past the end of the ring");
        r.scribble(&hdr(r.header(0, 0, 9)), 0);
        assert!(q.peek().is_err(), "unknown kind");
        r.scribble(&hdr(r.header(0, 0, KIND_WRAP) | 8), 0);
        assert!(q.peek().is_err(), "wrap marker with a length");
    }

    #[test]
    fn ring_a_header_stamped_for_another_position_is_corrupt_not_data() {
        let mut h = HeapRing::new(64);
        let r = h.ring();
        let mut q = Consumer::new(r);
        // A well-formed header, but written for slot 1 (a misframed read) or lap 3.
        for pos in [8, 3 * 64, 2 * 64 + 8] {
            r.scribble(&r.header(pos, 4, KIND_FULL).to_ne_bytes(), 0);
            assert!(q.peek().is_err(), "header of position {pos} read at 0");
        }
        // Random words: a stamp that matches by chance is 1 in 2^24.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            r.scribble(&x.to_ne_bytes(), 0);
            assert!(q.peek().is_err() || x >> STAMP_SHIFT == 0, "{x:#x} was taken for a header");
        }
    }

    #[test]
    fn ring_filled_exactly_reads_empty_at_the_lap_old_header_then_carries_on() {
        let mut h = HeapRing::new(64);
        let r = h.ring();
        let (mut p, mut q) = (Producer::new(r), Consumer::new(r));
        // 8 records of 0 bytes fill 64 bytes exactly: the word after the last is the first's.
        for _ in 0..8 {
            assert_eq!(p.try_push(KIND_FULL, None, None, &[]).unwrap(), Pushed::Done);
        }
        assert_eq!(p.try_push(KIND_FULL, None, None, &[]).unwrap(), Pushed::Full);
        for _ in 0..8 {
            assert_eq!(pop(&mut q).unwrap(), b"");
        }
        // Head is a lap on, at a word that still holds the first record's header.
        assert_eq!(pop(&mut q), None, "a lap-old header is not a record");
        assert!(!q.pending().unwrap());
        assert_eq!(p.try_push(KIND_FULL, None, None, b"next").unwrap(), Pushed::Done);
        assert_eq!(pop(&mut q).unwrap(), b"next");
        assert_eq!(pop(&mut q), None);
    }

    #[test]
    fn ring_an_abandoned_reservation_announces_no_type() {
        // A typed message, a reservation (which would announce type 0) abandoned, then an
        // untyped message: it must still arrive announced as untyped.
        model_ops(&[0, 8, 1, 18, 1, 0, 1, 1, 0, 1, 0]);
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
        /// The header words, as loom atomics (see `Ring::with_words`).
        words: [AtomicU64; 8],
    }
    // SAFETY: the region is accessed only through the ring protocol under test.
    unsafe impl Sync for Heap {}
    // SAFETY: as above.
    unsafe impl Send for Heap {}

    fn ring(h: &Heap) -> Ring {
        let data = NonNull::new(h.data.get().cast::<u8>()).expect("non-null");
        let words = NonNull::from(&h.words[0]);
        // SAFETY: `h` outlives the model's threads (held by an Arc in each), 64 bytes, 8-aligned,
        // with 8 header words.
        unsafe { Ring::with_words(NonNull::from(&h.ctl), data, 64, words) }
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
            let words = std::array::from_fn(|_| AtomicU64::new(0));
            let h = Arc::new(Heap { ctl: RingCtl::new(), data: std::cell::UnsafeCell::new([0; 8]), words });
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
    fn loom_ring_a_staged_batch_and_a_loan_are_published_whole() {
        // Two records staged and committed together, then one written in place through a
        // reservation: the consumer, possibly asleep, sees each whole, in order.
        loom::model(|| {
            let words = std::array::from_fn(|_| AtomicU64::new(0));
            let h = Arc::new(Heap { ctl: RingCtl::new(), data: std::cell::UnsafeCell::new([0; 8]), words });
            let h2 = h.clone();
            let t = thread::spawn(move || {
                let mut p = Producer::new(ring(&h2));
                assert_eq!(p.try_stage(KIND_FULL, Some(0), None, &[1; 8]).unwrap(), Pushed::Done);
                assert_eq!(p.try_stage(KIND_FULL, Some(0), None, &[2; 8]).unwrap(), Pushed::Done);
                p.commit();
                let res = p.try_reserve(8, 0).unwrap().expect("room for a third record");
                p.reserved(&res).fill(3);
                p.publish_reserved(res);
            });
            let mut q = Consumer::new(ring(&h));
            for k in 1..=3u8 {
                assert_eq!(pop_blocking(&mut q), [k; 8]);
            }
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_ring_exact_fill_then_the_lap_old_header() {
        // Four 16-byte records fill the 64-byte ring exactly, so the fourth cannot zero the
        // word after it (the first's header, a lap old by then), and the fifth is written
        // over it while the consumer may be reading it.
        model(&[&[1; 8], &[2; 8], &[3; 8], &[4; 8], &[5; 8]]);
    }

    #[test]
    fn loom_ring_full_sleeping_producer_and_wrap() {
        // 16 payload bytes = 24-byte records in a 64-byte ring: the third needs a 16-byte wrap
        // gap plus 24 bytes, so it waits for the consumer (sleeping producer) and wraps.
        model(&[&[1; 16], &[2; 16], &[3; 16]]);
    }
}
