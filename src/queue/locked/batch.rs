//! Batches on the locked ring: many records put, or taken, under one hold of the lock, with
//! one commit store and one wake-up. Across CPUs the lock's cache lines then travel once per
//! batch instead of once per item.
//!
//! The guarantees are the single record's: a batch is committed by one store of `tail` (or
//! `head`) after every copy, so a process killed holding the lock leaves nothing half-visible
//! (the next locker repairs as for one record), and a consumer killed after its commit loses
//! the records it took, as one killed after a `get` loses its item.

use super::record::RecordReader;
use super::state::LockedRing;
use super::QueueFail;
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
        if !self.fits_ever(first.len() as u64) {
            return Err(QueueFail::TooLarge { len: size_of(first.len()), capacity: self.capacity() });
        }
        self.put_with(limit, |mut s| {
            let (mut tail, mut n) = (s.tail, 0u64);
            for item in items {
                if !self.fits_ever(item.len() as u64) || (s.maxsize != 0 && s.count + n >= s.maxsize) {
                    break;
                }
                // SAFETY: we hold the lock; the positions were validated under it, and `tail`
                // is past what this batch wrote.
                let Some(pos) = (unsafe { self.place(&mut s.head, tail, size_of(item.len())) }) else { break };
                // SAFETY: we hold the lock; `place` found the record's bytes free at `pos`.
                tail = pos + unsafe { self.write_record(pos, item.len() as u64, |w| w.write(0, item)) };
                n += 1;
            }
            (n > 0).then_some((tail, n, n as usize))
        })
    }

    /// Removes up to `max` (≥ 1) of the oldest records under one lock, after waiting until
    /// `limit` for the first, and returns their payloads.
    pub(super) fn get_records(&self, max: usize, limit: Limit) -> Result<Records, QueueFail> {
        let mut recs = Records::default();
        self.get_with(limit, |head, tail| {
            let (mut pos, mut n) = (head, 0u64);
            while pos < tail && n < max as u64 {
                // A record that cannot be framed, or fails its checksum, ends the batch before
                // it; first in a batch, it is reported (and, if framed, dropped).
                let f = match self.frame(pos, tail) {
                    Ok(f) => f,
                    Err(e) if n == 0 => return Err(e),
                    Err(_) => break,
                };
                let rec = RecordReader::at(self, f.pos, f.len);
                if let Err(e) = self.checked(&rec) {
                    if n == 0 {
                        return Ok((f.end, 1, Err(e)));
                    }
                    break;
                }
                rec.read_append(0, f.len as usize, &mut recs.bytes);
                recs.end_record();
                pos = f.end;
                n += 1;
            }
            Ok((pos, n, Ok(())))
        })?;
        Ok(recs)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::loom::atomic::Ordering::Relaxed;
    use crate::shm::Segment;

    fn ring() -> (Segment, LockedRing) {
        let seg = Segment::anonymous(LockedRing::segment_len(4096).unwrap()).unwrap();
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
    fn que_b11_a_skip_record_is_stepped_over_and_repair_drops_one_left_alone() {
        let (a, b, c) = (vec![1u8; 400], vec![2u8; 400], vec![3u8; 300]);
        // A ring of 1024 bytes holding B (408..816) and C, which does not fit before the ring's
        // end: a skip record covers the rest of the lap and C (312 bytes) starts the next one.
        let setup = || {
            let seg = Segment::anonymous(LockedRing::segment_len(1024).unwrap()).unwrap();
            let r = LockedRing::create_in(&seg, 1024, 0, false).unwrap();
            assert_eq!(r.put_records(&[&a, &b], Limit::Now).unwrap(), 2);
            assert_eq!(get(&r).unwrap(), a);
            assert_eq!(r.put_records(&[&c], Limit::Now).unwrap(), 1);
            // Relaxed: single-threaded test.
            assert_eq!(r.state.tail.load(Relaxed), 1024 + 312);
            (seg, r)
        };
        let (_seg, r) = setup();
        assert_eq!(r.get_records(5, Limit::Now).unwrap().iter().collect::<Vec<_>>(), [&b[..], &c[..]]);
        // C's header broken: C is corrupt, and the repair drops the skip record before it too.
        let (_seg, r) = setup();
        assert_eq!(get(&r).unwrap(), b);
        // SAFETY: single-threaded test; C's header lies at the next lap's start.
        unsafe { r.copy_in(1024, &[0; 8]) };
        assert!(matches!(get(&r), Err(QueueFail::Corrupt(_))));
        r.repair();
        assert_eq!((r.state.tail.load(Relaxed), r.count()), (816, 0), "truncated at the skip record");
        assert!(matches!(get(&r), Err(QueueFail::Empty)));
    }

    #[test]
    fn an_immediate_shutdown_whose_shutter_died_before_the_lock_is_finished_by_the_next_locker() {
        let (_seg, r) = ring();
        assert_eq!(r.put_records(&[b"one", b"two"], Limit::Now).unwrap(), 2);
        // The shutter's flag store, and nothing after it (killed, or its thread holds a loan).
        // Relaxed: single-threaded test.
        r.state.shutdown.store(super::super::state::SHUT_IMMEDIATE, Relaxed);
        assert!(matches!(get(&r), Err(QueueFail::ShutDown)), "nothing is taken after an immediate shutdown");
        assert_eq!(r.count(), 0);
        assert!(r.join(Limit::Now), "join's count was dropped with the items");
    }

    #[test]
    fn positions_near_the_end_of_u64_are_corrupt_not_wrapped() {
        let (_seg, r) = ring();
        // A peer moves both positions to within a lap of `u64::MAX`: the sums on them would wrap.
        // Relaxed: single-threaded test, as a corrupt peer would write it.
        r.state.head.store(u64::MAX - 7, Relaxed);
        r.state.tail.store(u64::MAX - 7, Relaxed);
        assert!(matches!(r.put_records(&[&[1u8; 3000]], Limit::Now), Err(QueueFail::Corrupt("ring positions"))));
        assert!(matches!(get(&r), Err(QueueFail::Corrupt("ring positions"))));
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
            r.copy_out(pos + r.hdr + 2, b.as_mut_ptr(), 1);
            r.copy_in(pos + r.hdr + 2, &[b[0] ^ 0x40]);
        }
    }

    #[test]
    fn que_b10_integrity_turns_a_changed_payload_into_corrupt_and_goes_on() {
        let seg = Segment::anonymous(LockedRing::segment_len(4096).unwrap()).unwrap();
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

    #[test]
    fn que_b10_a_reader_in_the_other_integrity_mode_gets_corrupt_not_data() {
        for sealed in [true, false] {
            let seg = Segment::anonymous(LockedRing::segment_len(4096).unwrap()).unwrap();
            let r = LockedRing::create_in(&seg, 4096, 0, sealed).unwrap();
            assert_eq!(r.put_records(&[b"0123456789abcdef"], Limit::Now).unwrap(), 1);
            // A reader whose view of the mode flag differs from the writer's.
            let mut other = r.clone();
            other.hdr = LockedRing::hdr_for(!sealed);
            assert!(matches!(get(&other), Err(QueueFail::Corrupt(_))), "sealed = {sealed}");
        }
    }
}
