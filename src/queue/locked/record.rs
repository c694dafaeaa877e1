//! The record format of the locked ring: `[len: u32][stamp: u32]`, the CRC32C word of the
//! integrity mode (`[crc: u32][0: u32]`), then the payload padded to 8 (`state.rs` has the
//! whole picture), and the byte-level access to records under the lock.

use super::state::{record_header, sleep_on, LockedRing};
use super::QueueFail;
use crate::loom::atomic::Ordering::{Relaxed, Release};
use crate::queue::doorbell::bump;
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
        // `[head, tail)` (checked by `record_len` under the lock, which we hold).
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
    /// The caller holds the lock; the record was validated by `record_len`.
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
        mut attempt: impl FnMut(Space) -> Option<(u64, u64, R)>,
    ) -> Result<R, QueueFail> {
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
                if let Some((new_tail, n, r)) = attempt(Space { head, tail, count, maxsize }) {
                    st.unfinished.fetch_add(n, Relaxed);
                    // The commit point: one store makes every record written visible.
                    st.tail.store(new_tail, Relaxed);
                    // SYNC(release → count's acquire load).
                    st.count.store(count + n, Release);
                    drop(held);
                    bump(&st.not_empty);
                    return Ok(r);
                }
            }
            if limit.passed() {
                return Err(QueueFail::Full);
            }
            sleep_on(&st.not_full, seen, limit);
        }
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
        let st = &*self.state;
        loop {
            // Relaxed: see `put_with`.
            let seen = st.not_empty.load(Relaxed);
            let got = {
                let Some(_held) = self.lock(limit)? else { return Err(QueueFail::Empty) };
                let (head, tail) = self.positions()?;
                if head != tail {
                    let (new_head, n, r) = attempt(head, tail)?;
                    let count = st.count.load(Relaxed);
                    // The commit point.
                    st.head.store(new_head, Relaxed);
                    // SYNC(release → count's acquire load).
                    st.count.store(count.saturating_sub(n), Release);
                    Some(r)
                } else if st.shutdown.load(Relaxed) != 0 {
                    // Relaxed: as in `put_with`. Shut down and drained: nothing will come.
                    return Err(QueueFail::ShutDown);
                } else {
                    None
                }
            };
            if let Some(r) = got {
                bump(&st.not_full);
                return r;
            }
            if limit.passed() {
                return Err(QueueFail::Empty);
            }
            sleep_on(&st.not_empty, seen, limit);
        }
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

    /// The record at `head` (`head < tail`, under the lock): its size and payload length, or
    /// `Corrupt` when it cannot be framed.
    pub(super) fn frame(&self, head: u64, tail: u64) -> Result<(u64, u64), QueueFail> {
        let size = self.record_len(head, tail).ok_or(QueueFail::Corrupt("record length"))?;
        let mut h = [0u8; 4];
        // SAFETY: under the lock (the caller's); 4 writable bytes at a validated position.
        unsafe { self.copy_out(head, h.as_mut_ptr(), 4) };
        Ok((size, u64::from(u32::from_le_bytes(h))))
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
        if len > u32::MAX as u64 || size > self.cap {
            return Err(QueueFail::TooLarge { len: size, capacity: self.cap });
        }
        self.put_with(limit, |s| {
            if self.cap - (s.tail - s.head) < size || (s.maxsize != 0 && s.count >= s.maxsize) {
                return None;
            }
            // SAFETY: we hold the lock; `size` bytes at `tail` are free (checked just above).
            unsafe { self.write_record(s.tail, len, &write) };
            Some((s.tail + size, 1, ()))
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
            let (size, len) = self.frame(head, tail)?;
            let rec = RecordReader::at(self, head, len);
            let read = read.take().expect("a record is taken once: the loop returns right after");
            Ok((head + size, 1, self.checked(&rec).and_then(|()| read(&rec))))
        })
    }

    /// `Ok` when `rec`'s payload matches its checksum (always, without the integrity mode).
    pub(super) fn checked(&self, rec: &RecordReader<'_>) -> Result<(), QueueFail> {
        // SAFETY: under the lock (the caller's); the record was framed by `record_len`.
        if unsafe { self.sealed(rec.pos, rec.len) } {
            Ok(())
        } else {
            // Framed right but changed: dropped, as an item that fails to decode.
            Err(QueueFail::Corrupt("record payload does not match its checksum"))
        }
    }
}
