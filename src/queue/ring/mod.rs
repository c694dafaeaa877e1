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
//! bytes, padded to 8 bytes (in the integrity mode, a data record's kind carries
//! `KIND_SEALED` and a CRC32C word sits between header and payload). A record never straddles the end of the region: when it does not
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

//!
//! # Files
//! This file: the layout, the control block, the header format and the region's accessors.
//! `producer.rs`: pushes, batches and reservations; `consumer.rs`: peeks, batch scans,
//! releases and the sleep handshake's consumer side; `hooks.rs`: a heap ring, a faulty
//! producer and the model the `ring_ops` fuzz target runs (tests and fuzzing only).

mod consumer;
#[cfg(any(test, feature = "test-hooks"))]
mod hooks;
#[cfg(all(test, loom))]
mod loom_tests;
mod producer;
#[cfg(all(test, not(loom)))]
mod tests;

pub(crate) use consumer::{Consumer, Record, RingProbe};
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) use hooks::model_ops;
#[cfg(test)]
pub(crate) use hooks::HeapRing;
pub(crate) use producer::{Producer, Pushed, Reservation};

use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::loom::futex;
use crate::shm::ShmObject;
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
    /// `FLAG_CRC`: the ring's data records carry a CRC32C of their payload. Set before the
    /// ring is shared and read once by each process that maps it.
    flags: AtomicU32,
}

/// `ProdLine::flags`: data records carry a CRC32C word between header and payload.
const FLAG_CRC: u32 = 1;

/// In a data record's kind, in the integrity mode: the record carries its checksum word. A
/// reader that maps the ring in the other mode (its flag word scribbled before it looked) then
/// finds every data record's kind wrong and says `Corrupt`, instead of reading the checksum
/// word as payload.
const KIND_SEALED: u32 = 0x80;

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
            prod: ProdLine { tail: z64(), type_sent: z64(), cons_sleep: z32(), flags: z32() },
            cons: ConsLine { head: z64(), type_seen: z64(), prod_sleep: z32() },
            closes: CloseLine { writer_closes: z32(), reader_closes: z32() },
        }
    }
}

impl RingCtl {
    /// Makes the ring's data records carry a CRC32C of their payload (the integrity mode);
    /// only before the ring is shared, and before any `Ring` is made over it.
    pub(crate) fn set_integrity(&self) {
        // Relaxed: nobody else sees the control block yet; sharing it publishes this.
        self.prod.flags.store(FLAG_CRC, Ordering::Relaxed);
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
    /// Bytes between a data record's header and its payload: 0, or 8 for the CRC32C word of
    /// the integrity mode (read from the control block once, when the ring is mapped: a peer
    /// that flips the flag later changes nothing here).
    crc_word: u64,
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
        // SAFETY: `ctl` is valid (contract). Relaxed: set before the ring was shared.
        let flags = unsafe { ctl.as_ref() }.prod.flags.load(Ordering::Relaxed);
        Ring {
            ctl,
            data,
            cap: cap as u64,
            crc_word: if flags & FLAG_CRC != 0 { 8 } else { 0 },
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

    /// The largest payload of one record: half the ring minus 16 bytes (24 with checksums), so
    /// that a record, a type announcement and their wrap gaps always fit into an empty ring (a
    /// gap is shorter than what follows it, so at most `8 + TYPE_REC + 2 * record ≤ cap`).
    pub(crate) fn max_record(&self) -> usize {
        (self.cap / 2 - 2 * HDR - self.crc_word) as usize
    }

    /// Bytes from a data record's header to its payload: the header, and the checksum word in
    /// the integrity mode.
    #[inline(always)]
    fn data_hdr(&self) -> u64 {
        HDR + self.crc_word
    }

    /// Whether data records carry a CRC32C of their payload.
    #[cfg(test)]
    pub(crate) fn integrity(&self) -> bool {
        self.crc_word != 0
    }

    /// The region's bytes `off..off + len` (in bounds: `off + len ≤ cap`, checked by callers
    /// from validated positions).
    fn bytes(&self, off: u64, len: usize) -> &[u8] {
        debug_assert!(off + len as u64 <= self.cap);
        // SAFETY: in bounds (above); mapped while the ring is. The bytes belong to whichever
        // side the protocol gives them to at the moment (the producer before publication, the
        // consumer before release): a faulty peer writing them anyway changes only what they
        // say, which the checksum is there to catch.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(off as usize), len) }
    }

    /// Writes the checksum word of the data record whose payload is the `len` bytes at `off`.
    fn seal(&self, off: u64, len: usize) {
        if self.crc_word != 0 {
            let crc = crate::queue::crc32c::crc32c(self.bytes(off, len));
            self.write_at(off - 8, &u64::from(crc).to_ne_bytes());
        }
    }

    /// Whether the data record whose payload is the `len` bytes at `off` matches its checksum
    /// word (always, without the integrity mode).
    fn sealed(&self, off: u64, len: usize) -> bool {
        self.crc_word == 0 || self.read_u64_at(off - 8) == u64::from(crate::queue::crc32c::crc32c(self.bytes(off, len)))
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
