//! Batches on the locked ring: many records put, or taken, under one hold of the lock, with
//! one commit store and one wake-up. Across CPUs the lock's cache lines then travel once per
//! batch instead of once per item.
//!
//! The guarantees are the single record's: a batch is committed by one store of `tail` (or
//! `head`) after every copy, so a process killed holding the lock leaves nothing half-visible
//! (the next locker repairs as for one record), and a consumer killed after its commit loses
//! the records it took, as one killed after a `get` loses its item.

use super::state::{record_header, sleep_on, LockedRing};
use super::QueueFail;
use crate::loom::atomic::Ordering::{Relaxed, Release};
use crate::queue::doorbell::bump;
use crate::wait::Limit;

/// Records in one buffer, as a batch is put or taken: record `i` is `bytes[ends[i - 1]..ends[i]]`.
#[derive(Debug, Default)]
pub(super) struct Records {
    /// The records' bytes, one after the other.
    pub(super) bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Records {
    /// Ends the record whose bytes were appended to `bytes` since the last one ended.
    pub(super) fn end_record(&mut self) {
        self.ends.push(self.bytes.len());
    }

    /// How many records there are.
    pub(super) fn count(&self) -> usize {
        self.ends.len()
    }

    /// The records, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.ends.iter().scan(0, |start, &end| {
            let r = &self.bytes[*start..end];
            *start = end;
            Some(r)
        })
    }
}

impl LockedRing {
    /// Commits every record of `recs`, in order, as [`put_records`](Self::put_records) does
    /// batch after batch, waiting for room until `limit`; returns how many: all of them, or
    /// those before a failure stopped it (which the next call reports).
    pub(super) fn put_all(&self, recs: &Records, limit: Limit) -> Result<usize, QueueFail> {
        let items: Vec<&[u8]> = recs.iter().collect();
        let mut done = 0;
        while done < items.len() {
            match self.put_records(&items[done..], limit) {
                Ok(n) => done += n,
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Commits, in order, as many of `items` (encoded payloads) as fit now, under one lock,
    /// after waiting until `limit` for room for the first; returns how many (≥ 1).
    /// [`QueueFail::TooLarge`] when the first can never fit (a later one that cannot ends
    /// the batch before it).
    pub(super) fn put_records(&self, items: &[&[u8]], limit: Limit) -> Result<usize, QueueFail> {
        let Some(first) = items.first() else { return Ok(0) };
        let size_of = |len: usize| self.record_size(len as u64);
        let fits_ever = |len: usize| len as u64 <= u32::MAX as u64 && size_of(len) <= self.capacity();
        if !fits_ever(first.len()) {
            return Err(QueueFail::TooLarge { len: size_of(first.len()), capacity: self.capacity() });
        }
        let st = &*self.state;
        loop {
            // Relaxed: only decides whether to sleep; the state is read under the lock.
            let seen = st.not_full.load(Relaxed);
            {
                let Some(held) = self.lock(limit)? else { return Err(QueueFail::Full) };
                // Relaxed: set before the shutter takes the lock we hold now.
                if st.shutdown.load(Relaxed) != 0 {
                    return Err(QueueFail::ShutDown);
                }
                let (head, mut tail) = self.positions()?;
                let maxsize = st.maxsize.load(Relaxed);
                let mut count = st.count.load(Relaxed);
                let mut n = 0;
                for item in items {
                    let size = size_of(item.len());
                    if !fits_ever(item.len())
                        || self.capacity() - (tail - head) < size
                        || (maxsize != 0 && count >= maxsize)
                    {
                        break;
                    }
                    let header = record_header(tail, item.len() as u64);
                    // SAFETY: we hold the lock; the record's `size ≤ capacity` bytes at `tail`
                    // are free (checked just above against the validated positions).
                    unsafe {
                        self.copy_in(tail, &header);
                        self.copy_in(tail + self.hdr(), item);
                        self.seal(tail + self.hdr(), item.len() as u64);
                    }
                    tail += size;
                    count += 1;
                    n += 1;
                }
                if n > 0 {
                    st.unfinished.fetch_add(n as u64, Relaxed);
                    // The commit point: one store makes every record of the batch visible.
                    st.tail.store(tail, Relaxed);
                    // SYNC(release → count's acquire load).
                    st.count.store(count, Release);
                    drop(held);
                    bump(&st.not_empty);
                    return Ok(n);
                }
            }
            if limit.passed() {
                return Err(QueueFail::Full);
            }
            sleep_on(&st.not_full, seen, limit);
        }
    }

    /// Removes up to `max` (≥ 1) of the oldest records under one lock, after waiting until
    /// `limit` for the first, and returns their payloads.
    pub(super) fn get_records(&self, max: usize, limit: Limit) -> Result<Records, QueueFail> {
        let mut recs = Records::default();
        let bytes = &mut recs.bytes;
        let st = &*self.state;
        loop {
            // Relaxed: see `put_records`.
            let seen = st.not_empty.load(Relaxed);
            let got = {
                let Some(_held) = self.lock(limit)? else { return Err(QueueFail::Empty) };
                let (head, tail) = self.positions()?;
                if head != tail {
                    let mut pos = head;
                    let mut n = 0;
                    while pos < tail && n < max {
                        let Some(size) = self.record_len(pos, tail) else {
                            if n == 0 {
                                return Err(QueueFail::Corrupt("record length"));
                            }
                            break; // the good records before it go; the next call reports it
                        };
                        let mut h = [0u8; 4];
                        // SAFETY: under the lock; 4 writable bytes at a validated position.
                        unsafe { self.copy_out(pos, h.as_mut_ptr(), 4) };
                        let len = u32::from_le_bytes(h) as usize;
                        // SAFETY: under the lock; the record was validated by `record_len`.
                        if !unsafe { self.sealed(pos + self.hdr(), len as u64) } {
                            if n == 0 {
                                // Framed right but changed: dropped, and reported.
                                let count = st.count.load(Relaxed);
                                st.head.store(pos + size, Relaxed);
                                // SYNC(release → count's acquire load).
                                st.count.store(count.saturating_sub(1), Release);
                                drop(_held);
                                bump(&st.not_full);
                                return Err(QueueFail::Corrupt("record payload does not match its checksum"));
                            }
                            break; // the good records before it go; the next call reports it
                        }
                        bytes.reserve(len);
                        // SAFETY: `record_len` checked that the payload lies within
                        // [pos, tail); `reserve` made room for `len` bytes after the current
                        // contents, which the copy initializes before `set_len` exposes them.
                        unsafe {
                            self.copy_out(pos + self.hdr(), bytes.as_mut_ptr().add(bytes.len()), len);
                            bytes.set_len(bytes.len() + len);
                        }
                        recs.ends.push(bytes.len());
                        pos += size;
                        n += 1;
                    }
                    let count = st.count.load(Relaxed);
                    // The commit point.
                    st.head.store(pos, Relaxed);
                    // SYNC(release → count's acquire load).
                    st.count.store(count.saturating_sub(n as u64), Release);
                    Some(n)
                } else if st.shutdown.load(Relaxed) != 0 {
                    // Relaxed: as in `put_records`. Shut down and drained.
                    return Err(QueueFail::ShutDown);
                } else {
                    None
                }
            };
            if got.is_some() {
                bump(&st.not_full);
                return Ok(recs);
            }
            if limit.passed() {
                return Err(QueueFail::Empty);
            }
            sleep_on(&st.not_empty, seen, limit);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::shm::Segment;

    fn ring() -> (Segment, LockedRing) {
        let seg = Segment::anonymous(LockedRing::segment_len(4096)).unwrap();
        let r = LockedRing::create_in(&seg, 4096, 0, false).unwrap();
        (seg, r)
    }

    fn get(r: &LockedRing) -> Result<Vec<u8>, QueueFail> {
        r.get_records(1, Limit::Now).map(|recs| recs.bytes)
    }

    #[test]
    fn a_record_read_where_it_was_not_written_is_corrupt_not_data() {
        let (_seg, r) = ring();
        // A payload that starts like a header of an 8-byte record (a length, then zeroes, as a
        // producer's data may well): read at the wrong place it was delivered before stamps.
        let mut inner = vec![8, 0, 0, 0, 0, 0, 0, 0];
        inner.extend_from_slice(&[7; 8]);
        assert_eq!(r.put_records(&[&inner], Limit::Now).unwrap(), 1);
        // A peer moves `head` into the payload (where `inner` lies, at position 8).
        // Relaxed: single-threaded test, as a corrupt peer would write it.
        r.state.head.store(8, Relaxed);
        assert!(matches!(get(&r), Err(QueueFail::Corrupt(_))));
        // Where it was written, the record reads back.
        r.state.head.store(0, Relaxed);
        assert_eq!(get(&r).unwrap(), inner);
    }

    #[test]
    fn batches_keep_order_and_limits() {
        let (_seg, r) = ring();
        let items: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; i as usize]).collect();
        let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        assert_eq!(r.put_records(&refs, Limit::Now).unwrap(), 10);
        let (first, rest) = (r.get_records(4, Limit::Now).unwrap(), r.get_records(100, Limit::Now).unwrap());
        assert_eq!(first.iter().count(), 4);
        assert_eq!(rest.iter().count(), 6);
        for (i, got) in first.iter().chain(rest.iter()).enumerate() {
            assert_eq!(got, &items[i][..]);
        }
        assert!(matches!(r.get_records(1, Limit::Now), Err(QueueFail::Empty)));
    }

    /// Flips one payload byte of the record at ring position `pos` (a scribbling peer).
    fn scribble(r: &LockedRing, pos: u64) {
        let mut b = [0u8; 1];
        // SAFETY: single-threaded test; the byte lies inside the ring.
        unsafe {
            r.copy_out(pos + r.hdr() + 2, b.as_mut_ptr(), 1);
            r.copy_in(pos + r.hdr() + 2, &[b[0] ^ 0x40]);
        }
    }

    #[test]
    fn que_b10_integrity_turns_a_changed_payload_into_corrupt_and_goes_on() {
        let seg = Segment::anonymous(LockedRing::segment_len(4096)).unwrap();
        let r = LockedRing::create_in(&seg, 4096, 0, true).unwrap();
        assert!(r.integrity());
        let items: [&[u8]; 3] = [b"first item", b"second item", b"third"];
        assert_eq!(r.put_records(&items, Limit::Now).unwrap(), 3);
        // The second record starts after the first: header, checksum word, padded payload.
        scribble(&r, r.record_size(10));
        assert_eq!(get(&r).unwrap(), b"first item");
        assert!(matches!(get(&r), Err(QueueFail::Corrupt("record payload does not match its checksum"))));
        assert_eq!(get(&r).unwrap(), b"third", "the changed record was dropped; the queue goes on");
        // The single-record paths check too.
        r.put_record(4, Limit::Now, |w| w.write(0, b"abcd")).unwrap();
        let tail = r.state.tail.load(Relaxed);
        scribble(&r, tail - r.record_size(4));
        let got = r.get_record(Limit::Now, |rec| {
            let mut v = vec![0u8; rec.len as usize];
            rec.read(0, &mut v);
            Ok(v)
        });
        assert!(matches!(got, Err(QueueFail::Corrupt(_))));
        assert!(matches!(get(&r), Err(QueueFail::Empty)), "dropped, not wedged");
        // Without the mode the same change is delivered as data.
        let (_seg, plain) = ring();
        assert_eq!(plain.put_records(&items, Limit::Now).unwrap(), 3);
        scribble(&plain, 0);
        assert_eq!(get(&plain).unwrap(), b"fi2st item");
    }
}
