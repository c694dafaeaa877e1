//! Test and fuzzing hooks: a faulty producer's writes, a ring over heap memory, and the model
//! the `ring_ops` fuzz target checks the ring against.

use super::{Consumer, Producer, Pushed, Record, Ring, RingCtl, HDR, KIND_FULL};
use crate::loom::atomic::Ordering;
use std::ptr::NonNull;

impl Ring {
    /// Overwrites the region and `tail` with arbitrary bytes, playing a faulty producer (fuzzing).
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
#[derive(Debug)]
pub(crate) struct HeapRing {
    ctl: Box<RingCtl>,
    data: Vec<u64>,
}

impl HeapRing {
    /// A zeroed heap ring of `cap` bytes (power of two ≥ 64).
    pub(crate) fn new(cap: usize) -> HeapRing {
        assert!(cap.is_power_of_two() && cap >= 64);
        let ctl = Box::new(RingCtl::new());
        HeapRing { ctl, data: vec![0u64; cap / 8] }
    }

    /// [`new`](Self::new) in the integrity mode (a CRC32C word per data record).
    pub(crate) fn with_integrity(cap: usize) -> HeapRing {
        let h = HeapRing::new(cap);
        h.ctl.set_integrity();
        h
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
/// Every producer call but staging commits the batch first, as the ring does. Bit 7 of byte 0
/// turns the integrity mode on (a checksum per record), which must change nothing visible.
pub(crate) fn model_ops(data: &[u8]) {
    let Some((&c, ops)) = data.split_first() else { return };
    let cap = 64 << (c % 6);
    let mut heap = if c & 0x80 != 0 { HeapRing::with_integrity(cap) } else { HeapRing::new(cap) };
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
