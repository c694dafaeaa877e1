//! The record format of the locked ring: `[len: u32][stamp: u32]`, the CRC32C word of the
//! integrity mode (`[crc: u32][0: u32]`), then the payload padded to 8 (`state.rs` has the
//! whole picture), and the byte-level access to records under the lock.

use super::state::{record_header, Held, LockedRing, SKIP};
use super::waiting::{sleep_on, SLICE};
use super::QueueFail;
use crate::loom::atomic::Ordering::{Relaxed, Release};
use crate::queue::doorbell::bump;
use crate::queue::WaitStrategy;
use crate::wait::Limit;

/// What [`LockedRing::put_with`]'s attempt sees under the lock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Space {
    pub(super) head: u64,
    pub(super) tail: u64,
    /// Committed records.
    pub(super) count: u64,
    /// The item limit (0: none).
    pub(super) maxsize: u64,
}

/// How many spins a `WaitStrategy::Spin` get makes between looks at its time limit.
const SPIN_CHECK_EVERY: u32 = 1024;

/// A record framed at the head of the queue by [`LockedRing::frame`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Framed {
    /// The record's position (past a skip record, if one was there).
    pub(super) pos: u64,
    /// The position after it: the new head once it is taken.
    pub(super) end: u64,
    /// Its payload length.
    pub(super) len: u64,
}

/// A skip record's header at ring position `pos`.
fn skip_header(pos: u64, sealed: bool) -> [u8; 8] {
    let mut h = record_header(pos, 0, sealed);
    h[..4].copy_from_slice(&SKIP.to_le_bytes());
    h
}

/// A record being written, under the lock: `len` payload bytes at ring position `pos`.
pub(super) struct RecordWriter<'a> {
    ring: &'a LockedRing,
    pos: u64,
    len: u64,
}

impl RecordWriter<'_> {
    /// Copies `bytes` into the payload at `at` (`at + bytes.len()` must not pass the payload).
    pub(super) fn write(&self, at: u64, bytes: &[u8]) {
        assert!(at + bytes.len() as u64 <= self.len, "write past the record");
        // SAFETY: the record's payload `[pos, pos + len)` lies in the free part of the ring
        // (checked by `put_record` under the lock, which we hold), and `at + len` stays in it.
        unsafe { self.ring.copy_in(self.pos + at, bytes) }
    }
}

/// A committed record being read, under the lock: `len` payload bytes at ring position `pos`.
pub(super) struct RecordReader<'a> {
    ring: &'a LockedRing,
    pos: u64,
    pub(super) len: u64,
}

impl<'a> RecordReader<'a> {
    /// The record whose header is at ring position `pos`, with `len` payload bytes (framed by
    /// [`LockedRing::frame`] under the lock).
    pub(super) fn at(ring: &'a LockedRing, pos: u64, len: u64) -> RecordReader<'a> {
        RecordReader { ring, pos: pos + ring.hdr, len }
    }

    /// Copies payload bytes from `at` into `out` (`at + out.len()` must not pass the payload).
    pub(super) fn read(&self, at: u64, out: &mut [u8]) {
        assert!(at + out.len() as u64 <= self.len, "read past the record");
        // SAFETY: `out` is writable for its length and is not in the ring; the payload lies in
        // `[head, tail)` (checked by `record_at` under the lock, which we hold).
        unsafe { self.ring.copy_out(self.pos + at, out.as_mut_ptr(), out.len()) }
    }

    /// Appends `n` payload bytes from `at` to `out` without zero-filling them first.
    pub(super) fn read_append(&self, at: u64, n: usize, out: &mut Vec<u8>) {
        assert!(at + n as u64 <= self.len, "read past the record");
        // `reserve`, not `reserve_exact`: a batch appends record after record to one buffer,
        // which must grow geometrically (an empty buffer still gets about `n`).
        out.reserve(n);
        // SAFETY: `reserve` made room for `n` bytes after the current contents, which the
        // copy initializes (the payload range is checked as in `read`) before `set_len`
        // exposes them.
        unsafe {
            self.ring.copy_out(self.pos + at, out.as_mut_ptr().add(out.len()), n);
            out.set_len(out.len() + n);
        }
    }
}

impl LockedRing {
    /// The CRC32C of the `len` bytes at ring position `pos` (wrapping).
    ///
    /// # Safety
    /// The caller holds the lock and `len <= capacity`.
    unsafe fn crc_at(&self, pos: u64, len: u64) -> u32 {
        let start = (pos % self.cap) as usize;
        let first = (len as usize).min(self.cap as usize - start);
        // SAFETY: both ranges lie in the ring (as in `copy_in`), mapped while `self.state` is;
        // the lock keeps every correct process from writing them meanwhile.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(self.ring.as_ptr().add(start), first),
                std::slice::from_raw_parts(self.ring.as_ptr(), len as usize - first),
            )
        };
        crate::queue::crc32c::update(crate::queue::crc32c::crc32c(a), b)
    }

    /// Writes the checksum word of the record whose `len` payload bytes start at `payload`
    /// (integrity mode; nothing otherwise).
    ///
    /// # Safety
    /// The caller holds the lock; the record lies in the free part of the ring it is writing.
    pub(super) unsafe fn seal(&self, payload: u64, len: u64) {
        if self.integrity() {
            // SAFETY: forwarded contract; `len ≤ capacity` as the record fits.
            let crc = unsafe { self.crc_at(payload, len) };
            // SAFETY: the checksum word lies in the record (just before the payload).
            unsafe { self.copy_in(payload - 8, &u64::from(crc).to_le_bytes()) };
        }
    }

    /// Whether the record whose `len` payload bytes start at `payload` matches its checksum
    /// word (always, without the integrity mode).
    ///
    /// # Safety
    /// The caller holds the lock; the record was validated by `record_at`.
    pub(super) unsafe fn sealed(&self, payload: u64, len: u64) -> bool {
        if !self.integrity() {
            return true;
        }
        let mut w = [0u8; 8];
        // SAFETY: forwarded contract: the checksum word and the payload lie in the record.
        unsafe {
            self.copy_out(payload - 8, w.as_mut_ptr(), 8);
            u64::from_le_bytes(w) == u64::from(self.crc_at(payload, len))
        }
    }

    /// The put side's loop, shared by [`put_record`](Self::put_record) and the batches: waits
    /// until `limit` for `attempt` to write records under the lock (it gets the validated
    /// positions, the count and the item limit, and returns the new tail, how many records it
    /// wrote, and its result, or `None` when nothing fits yet), then commits them with one
    /// store of `tail` and wakes the getters.
    pub(super) fn put_with<R>(
        &self,
        limit: Limit,
        attempt: impl FnMut(Space) -> Option<(u64, u64, R)>,
    ) -> Result<R, QueueFail> {
        let (held, s, (new_tail, n, r)) = self.hold_room(limit, attempt)?;
        self.commit_put(held, s.count, new_tail, n)?;
        Ok(r)
    }

    /// Waits until `limit` for `attempt` to find room under the lock (see
    /// [`put_with`](Self::put_with)), and returns the lock still held, what `attempt` saw,
    /// and its result: nothing is committed yet ([`commit_put`](Self::commit_put) does it;
    /// dropping the lock instead abandons what was written).
    pub(super) fn hold_room<R>(
        &self,
        limit: Limit,
        mut attempt: impl FnMut(Space) -> Option<R>,
    ) -> Result<(Held<'_>, Space, R), QueueFail> {
        let st = &*self.state;
        loop {
            // Relaxed: the sequence only decides whether to sleep; the state is read under the lock.
            let seen = st.not_full.load(Relaxed);
            {
                let Some(held) = self.lock(limit)? else { return Err(QueueFail::Full) };
                // Relaxed: set before the shutter takes the lock we hold now.
                if st.shutdown.load(Relaxed) != 0 {
                    return Err(QueueFail::ShutDown);
                }
                let (head, tail) = self.positions()?;
                let (maxsize, count) = (st.maxsize.load(Relaxed), st.count.load(Relaxed));
                let s = Space { head, tail, count, maxsize };
                if let Some(r) = attempt(s) {
                    return Ok((held, s, r));
                }
            }
            if limit.passed() {
                return Err(QueueFail::Full);
            }
            sleep_on(&st.not_full, seen, limit);
        }
    }

    /// Commits `n` records written up to `new_tail` under `held` (the queue held `count`
    /// records when they were placed), lets the lock go and wakes the getters; `ShutDown`
    /// (nothing committed) if the queue was shut down since the room was found (a loan may
    /// have been open for long).
    pub(super) fn commit_put(&self, held: Held<'_>, count: u64, new_tail: u64, n: u64) -> Result<(), QueueFail> {
        let st = &*self.state;
        // Relaxed: under the lock, as in `hold_room`.
        if st.shutdown.load(Relaxed) != 0 {
            if self.drop_all_if_shut_immediately() {
                self.release_emptied(held);
            }
            return Err(QueueFail::ShutDown);
        }
        st.unfinished.fetch_add(n, Relaxed);
        // The commit point: one store makes every record written visible.
        st.tail.store(new_tail, Relaxed);
        // SYNC(release → count's acquire load).
        st.count.store(count + n, Release);
        drop(held);
        bump(&st.not_empty);
        Ok(())
    }

    /// The get side's loop, shared by [`get_record`](Self::get_record) and the batches: waits
    /// until `limit` for a record, then lets `attempt` read from `head` under the lock (it gets
    /// `head` and `tail`, `head < tail`) and commits what it took with one store of `head`:
    /// `Ok((new_head, records, result))`. An `Err` from `attempt` takes nothing (a record that
    /// cannot be framed stays, and is reported again). Shut down and drained: `ShutDown`.
    pub(super) fn get_with<R>(
        &self,
        limit: Limit,
        mut attempt: impl FnMut(u64, u64) -> Result<(u64, u64, Result<R, QueueFail>), QueueFail>,
    ) -> Result<R, QueueFail> {
        let (held, head, tail) = self.hold_item(limit)?;
        let (new_head, n, r) = attempt(head, tail)?;
        self.commit_get(held, new_head, n);
        r
    }

    /// Waits until `limit` for a committed record and returns the lock held, with `head` and
    /// `tail` (`head < tail`): nothing is taken until [`commit_get`](Self::commit_get).
    /// Shut down and drained: `ShutDown`.
    pub(super) fn hold_item(&self, limit: Limit) -> Result<(Held<'_>, u64, u64), QueueFail> {
        let st = &*self.state;
        loop {
            // Relaxed: see `hold_room`.
            let seen = st.not_empty.load(Relaxed);
            {
                let Some(held) = self.lock(limit)? else { return Err(QueueFail::Empty) };
                let (head, tail) = self.positions()?;
                if head != tail {
                    return Ok((held, head, tail));
                }
                // Relaxed: as in `hold_room`.
                if st.shutdown.load(Relaxed) != 0 {
                    // Shut down and drained: nothing will come.
                    return Err(QueueFail::ShutDown);
                }
            }
            if limit.passed() {
                return Err(QueueFail::Empty);
            }
            if self.spin_for_item(seen, limit) {
                continue;
            }
            sleep_on(&st.not_empty, seen, limit);
        }
    }

    /// Takes `n` records, up to `new_head`, under `held`, lets the lock go and wakes the
    /// putters.
    pub(super) fn commit_get(&self, held: Held<'_>, new_head: u64, n: u64) {
        let st = &*self.state;
        if self.drop_all_if_shut_immediately() {
            // Shut down at once while this get held the lock (a loan): the items are dropped.
            return self.release_emptied(held);
        }
        let count = st.count.load(Relaxed);
        // The commit point.
        st.head.store(new_head, Relaxed);
        // SYNC(release → count's acquire load).
        st.count.store(count.saturating_sub(n), Release);
        drop(held);
        bump(&st.not_full);
    }

    /// Before a get sleeps on an empty queue (never for a `try_` form: `hold_item` has answered
    /// `Empty` by then): watches it (loads only, no lock) as this handle's
    /// [`WaitStrategy`] says (not at all when parking; until `limit` when spinning; for the
    /// adaptive budget otherwise), and returns whether something changed that is worth another
    /// look under the lock (an item, or a shutdown). Across CPUs a producer's next item often
    /// comes within that time, and a sleep would cost both sides a system call and the getter
    /// a wake-up of tens of microseconds.
    ///
    /// It watches `not_empty` (with `seen`, its value before the look under the lock), which
    /// every commit of a put and a shutdown bump, rather than the positions: those share a line
    /// with the lock, which the producer is writing.
    pub(super) fn spin_for_item(&self, seen: u32, limit: Limit) -> bool {
        let st = &*self.state;
        // Relaxed: a hint; what counts is read under the lock afterwards.
        let busy = || st.not_empty.load(Relaxed) | 1 != seen | 1;
        match self.wait {
            WaitStrategy::Spin => {
                // At most a sleeper's slice between looks under the lock: a putter that died
                // (or was stopped) between its commit and its bump leaves an item that only a
                // look under the lock finds, as a sleeping get finds it after its slice.
                let look_again = limit.slice(SLICE);
                loop {
                    for _ in 0..SPIN_CHECK_EVERY {
                        if busy() {
                            return true;
                        }
                        crate::loom::hint::spin_loop();
                    }
                    if look_again.is_some_and(|d| d.has_passed()) {
                        return !limit.passed();
                    }
                }
            }
            WaitStrategy::Adaptive => {
                let budget = self.get_spin.budget();
                for _ in 0..budget {
                    if busy() {
                        self.get_spin.record(false, budget);
                        return true;
                    }
                    crate::loom::hint::spin_loop();
                }
                self.get_spin.record(true, budget);
                false
            }
            _ => false,
        }
    }

    /// Where a record of `size` bytes (at most the capacity) goes when the free part of the
    /// ring starts at `tail` (past the committed tail by the records a batch wrote so far), or
    /// `None` when there is no room now.
    ///
    /// Records never wrap around the ring's end: one that would is placed at the next lap's
    /// start, after a skip record written over the rest of this lap (committed with the
    /// record). An empty ring is moved to the next lap instead, `head` and `tail` together
    /// (nothing is in it to skip), so a record of any size up to the capacity fits in an empty
    /// ring, as it did when records wrapped.
    ///
    /// # Safety
    /// The caller holds the lock; `head` and `tail` are positions validated under it, and
    /// nothing is written past `tail` yet.
    pub(super) unsafe fn place(&self, head: &mut u64, tail: u64, size: u64) -> Option<u64> {
        let off = tail % self.cap;
        let free = self.cap - (tail - *head);
        if off + size <= self.cap {
            return (free >= size).then_some(tail);
        }
        let next = tail + (self.cap - off);
        if tail == *head {
            let st = &*self.state;
            // Empty before and after. `head` first: a process killed between the stores
            // leaves `head` past `tail`, which the next locker's repair resets to an empty
            // ring (the other way round, the repair would walk from the old head into bytes
            // nobody committed). Release keeps the stores in that order.
            st.head.store(next, Relaxed);
            st.tail.store(next, Release);
            *head = next;
            return Some(next);
        }
        if free < (next - tail) + size {
            return None;
        }
        // SAFETY: the lap's rest `[tail, next)` is free (checked just above) and ≥ 8 bytes
        // (positions and the capacity are multiples of 8); we hold the lock.
        unsafe { self.copy_in(tail, &skip_header(tail, self.integrity())) };
        Some(next)
    }

    /// Writes one record of `len` payload bytes at `tail` (free room checked by the caller,
    /// under the lock): header, payload (by `write`), checksum. Returns the record's size.
    ///
    /// # Safety
    /// The caller holds the lock and the record's size in bytes at `tail` is free.
    pub(super) unsafe fn write_record(&self, tail: u64, len: u64, write: impl FnOnce(&RecordWriter<'_>)) -> u64 {
        // SAFETY: forwarded contract; 8 ≤ size ≤ capacity.
        unsafe { self.copy_in(tail, &record_header(tail, len, self.integrity())) };
        write(&RecordWriter { ring: self, pos: tail + self.hdr, len });
        // SAFETY: forwarded contract; the record was just written at `tail`.
        unsafe { self.seal(tail + self.hdr, len) };
        self.record_size(len)
    }

    /// The first record at or after `head` (`head < tail`, under the lock), stepping over a
    /// skip record, or `Corrupt` when it cannot be framed.
    pub(super) fn frame(&self, head: u64, tail: u64) -> Result<Framed, QueueFail> {
        let bad = || QueueFail::Corrupt("record length");
        let (mut pos, mut found) = (head, self.record_at(head, tail).ok_or_else(bad)?);
        if found.1.is_none() {
            // A skip record is committed with the record after it (and `repair` truncates one
            // left alone), so one must follow.
            pos += found.0;
            found = (pos < tail).then(|| self.record_at(pos, tail)).flatten().ok_or_else(bad)?;
        }
        match found {
            (size, Some(len)) => Ok(Framed { pos, end: pos + size, len }),
            (_, None) => Err(QueueFail::Corrupt("two skip records in a row")),
        }
    }

    /// The largest size of a record that can ever be put (`TooLarge` beyond it).
    pub(super) fn fits_ever(&self, len: u64) -> bool {
        len < u64::from(SKIP) && self.record_size(len) <= self.cap
    }

    /// Commits one record of `len` payload bytes, which `write` copies in (under the lock,
    /// before the commit), waiting for room until `limit` ([`QueueFail::Full`] after it).
    pub(super) fn put_record(
        &self,
        len: u64,
        limit: Limit,
        write: impl Fn(&RecordWriter<'_>),
    ) -> Result<(), QueueFail> {
        let size = self.record_size(len);
        if !self.fits_ever(len) {
            return Err(QueueFail::TooLarge { len: size, capacity: self.cap });
        }
        self.put_with(limit, |mut s| {
            if s.maxsize != 0 && s.count >= s.maxsize {
                return None;
            }
            // SAFETY: we hold the lock; the positions were validated under it.
            let pos = unsafe { self.place(&mut s.head, s.tail, size) }?;
            // SAFETY: we hold the lock; `place` found `size` free bytes at `pos`.
            unsafe { self.write_record(pos, len, &write) };
            Some((pos + size, 1, ()))
        })
    }

    /// Removes the oldest record, handing it to `read` under the lock, waiting for one until
    /// `limit` ([`QueueFail::Empty`] after it). The record is removed even if `read` fails (a
    /// bad item must not wedge the queue), or if its payload does not match its checksum.
    pub(super) fn get_record<R>(
        &self,
        limit: Limit,
        read: impl FnOnce(&RecordReader<'_>) -> Result<R, QueueFail>,
    ) -> Result<R, QueueFail> {
        let mut read = Some(read);
        self.get_with(limit, |head, tail| {
            let f = self.frame(head, tail)?;
            let rec = RecordReader::at(self, f.pos, f.len);
            let read = read.take().expect("a record is taken once: the loop returns right after");
            Ok((f.end, 1, self.checked(&rec).and_then(|()| read(&rec))))
        })
    }

    /// `Ok` when `rec`'s payload matches its checksum (always, without the integrity mode).
    pub(super) fn checked(&self, rec: &RecordReader<'_>) -> Result<(), QueueFail> {
        // SAFETY: under the lock (the caller's); the record was framed by `record_at`.
        if unsafe { self.sealed(rec.pos, rec.len) } {
            Ok(())
        } else {
            // Framed right but changed: dropped, as an item that fails to decode.
            Err(QueueFail::Corrupt("record payload does not match its checksum"))
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::queue::WaitStrategy;
    use std::time::Duration;

    /// A putter that dies (its thread ends holding the lock: a robust owner death) after its
    /// commit point, before its unlock and its bump of `not_empty`.
    fn put_and_die_before_the_bump(ring: LockedRing) {
        std::thread::spawn(move || {
            let st = &*ring.state;
            let size = ring.record_size(6);
            let (held, s, end) = ring
                .hold_room(Limit::Forever, |mut s| {
                    // SAFETY: we hold the lock; the positions were validated under it.
                    let pos = unsafe { ring.place(&mut s.head, s.tail, size) }?;
                    // SAFETY: we hold the lock; `place` found `size` free bytes at `pos`.
                    unsafe { ring.write_record(pos, 6, |w| w.write(0, b"\x05hello")) };
                    Some(pos + size)
                })
                .unwrap();
            // Relaxed/Release: as `commit_put`, which this stops short of.
            st.tail.store(end, Relaxed);
            st.count.store(s.count + 1, Release);
            std::mem::forget(held);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn que_b12_a_get_finds_an_item_whose_putter_died_before_waking_it_whatever_its_strategy() {
        for w in [WaitStrategy::Park, WaitStrategy::Adaptive, WaitStrategy::Spin] {
            let q = crate::Queue::<Vec<u8>>::builder().wait(w).build().unwrap();
            let ring = q.ring.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let _ = tx.send(q.get_bytes_into(&mut out).map(|_| out));
            });
            std::thread::sleep(Duration::from_millis(20));
            put_and_die_before_the_bump(ring);
            // A sleeper looks again after its slice (100 ms); a spinner must too.
            let got = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("{w:?}: get never returned"));
            assert_eq!(got.unwrap(), b"hello", "{w:?}");
        }
    }
}
