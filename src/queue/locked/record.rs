//! The record format of the locked ring: `[len: u32][stamp: u32]`, the CRC32C word of the
//! integrity mode (`[crc: u32][0: u32]`), then the payload padded to 8 (`state.rs` has the
//! whole picture), and the byte-level access to records under the lock.

use super::state::{record_header, sleep_on, LockedRing};
use super::QueueFail;
use crate::loom::atomic::Ordering::{Relaxed, Release};
use crate::queue::doorbell::bump;
use crate::wait::Limit;

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

impl RecordReader<'_> {
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
        out.reserve_exact(n);
        // SAFETY: `reserve_exact` made room for `n` bytes after the current contents, which the
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
                let maxsize = st.maxsize.load(Relaxed);
                let count = st.count.load(Relaxed);
                if self.cap - (tail - head) >= size && (maxsize == 0 || count < maxsize) {
                    let header = record_header(tail, len);
                    // SAFETY: we hold the lock; 8 ≤ size ≤ capacity.
                    unsafe { self.copy_in(tail, &header) };
                    write(&RecordWriter { ring: self, pos: tail + self.hdr, len });
                    // SAFETY: we hold the lock; the record was just written at `tail`.
                    unsafe { self.seal(tail + self.hdr, len) };
                    st.unfinished.fetch_add(1, Relaxed);
                    // The commit point: one store makes the whole record visible.
                    st.tail.store(tail + size, Relaxed);
                    // SYNC(release → count's acquire load).
                    st.count.store(count + 1, Release);
                    drop(held);
                    bump(&st.not_empty);
                    return Ok(());
                }
            }
            if limit.passed() {
                return Err(QueueFail::Full);
            }
            sleep_on(&st.not_full, seen, limit);
        }
    }

    /// Removes the oldest record, handing it to `read` under the lock, waiting for one until
    /// `limit` ([`QueueFail::Empty`] after it). The record is removed even if `read` fails (a
    /// bad item must not wedge the queue).
    pub(super) fn get_record<R>(
        &self,
        limit: Limit,
        read: impl FnOnce(&RecordReader<'_>) -> Result<R, QueueFail>,
    ) -> Result<R, QueueFail> {
        let st = &*self.state;
        let mut read = Some(read);
        loop {
            // Relaxed: see `put_record`.
            let seen = st.not_empty.load(Relaxed);
            let got = {
                let Some(_held) = self.lock(limit)? else { return Err(QueueFail::Empty) };
                let (head, tail) = self.positions()?;
                if head != tail {
                    let Some(size) = self.record_len(head, tail) else {
                        return Err(QueueFail::Corrupt("record length"));
                    };
                    let mut h = [0u8; 4];
                    // SAFETY: under the lock; 4 writable bytes.
                    unsafe { self.copy_out(head, h.as_mut_ptr(), 4) };
                    // `record_len` checked that the payload lies within [head, tail).
                    let rec = RecordReader { ring: self, pos: head + self.hdr, len: u32::from_le_bytes(h) as u64 };
                    let read = read.take().expect("read runs once: we return right after");
                    // SAFETY: under the lock; the record was validated by `record_len`.
                    let r = if unsafe { self.sealed(rec.pos, rec.len) } {
                        read(&rec)
                    } else {
                        // Framed right but changed: drop it, as an item that fails to decode.
                        Err(QueueFail::Corrupt("record payload does not match its checksum"))
                    };
                    let count = st.count.load(Relaxed);
                    // The commit point.
                    st.head.store(head + size, Relaxed);
                    // SYNC(release → count's acquire load).
                    st.count.store(count.saturating_sub(1), Release);
                    Some(r)
                } else if st.shutdown.load(Relaxed) != 0 {
                    // Relaxed: as in `put_record`. Shut down and drained: nothing will come.
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
}
