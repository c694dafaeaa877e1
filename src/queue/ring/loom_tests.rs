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
