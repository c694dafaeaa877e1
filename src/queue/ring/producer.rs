//! The writing side of a ring: pushes, staged batches and reservations (loans).

use super::{wrap_gap, Ring, RingError, HDR, KIND_FULL, KIND_SEALED, KIND_TYPE, KIND_WRAP, TYPE_REC};
use crate::loom::atomic::{fence, Ordering};
use crate::loom::futex;
use crate::sys::clock::Deadline;

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
        r.seal(res.payload, res.len);
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
        let rec = r.data_hdr() + len.next_multiple_of(8);
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
        let payload = (rec_at & mask) + r.data_hdr();
        let mut p = payload;
        if let Some(x) = prefix {
            r.write_at(p, &x.to_ne_bytes());
            p += 8;
        }
        match body {
            Body::Bytes(b) => {
                r.write_at(p, b);
                r.seal(payload, len as usize);
            }
            // The caller writes the payload in place before publishing (`try_reserve`), which
            // seals it.
            Body::Reserve(_) => self.reserved_at = p,
        }
        let sealed = if r.crc_word != 0 { KIND_SEALED } else { 0 };
        put_header(rec_at, r.header(rec_at, len, kind | sealed));
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
        let rec = self.ring.data_hdr() + len.next_multiple_of(8);
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
