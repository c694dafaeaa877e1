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

#[test]
fn ring_integrity_turns_payload_corruption_into_corrupt() {
    let mut h = HeapRing::with_integrity(256);
    let r = h.ring();
    assert!(r.integrity());
    let (mut p, mut q) = (Producer::new(r), Consumer::new(r));
    assert_eq!(r.max_record(), 256 / 2 - 24);
    // Clean messages pass, whatever their length (the checksum word keeps payloads 8-aligned).
    for n in [0usize, 1, 7, 8, 9, 64, r.max_record()] {
        let msg: Vec<u8> = (0..n).map(|i| i as u8 ^ 0x5a).collect();
        assert_eq!(p.try_push(KIND_FULL, Some(0), None, &msg).unwrap(), Pushed::Done);
        assert_eq!(pop(&mut q).unwrap(), msg, "length {n}");
    }
    // One flipped payload bit is `Corrupt`, not data; nothing is consumed.
    assert_eq!(p.try_push(KIND_FULL, Some(0), None, b"payload").unwrap(), Pushed::Done);
    let rec = q.peek().unwrap().unwrap();
    let at = rec.off;
    let byte = q.payload(&rec)[3];
    r.write_at(at + 3, &[byte ^ 0x10]);
    assert_eq!(q.peek(), Err(RingError::Corrupt("record payload does not match its checksum")));
    // The same flip without the integrity mode is delivered: the mode is what catches it.
    let mut plain = HeapRing::new(256);
    let r = plain.ring();
    let (mut p, mut q) = (Producer::new(r), Consumer::new(r));
    assert_eq!(p.try_push(KIND_FULL, Some(0), None, b"payload").unwrap(), Pushed::Done);
    let at = q.peek().unwrap().unwrap().off;
    r.write_at(at + 3, b"L");
    assert_eq!(pop(&mut q).unwrap(), b"payLoad");
}

#[test]
fn ring_integrity_covers_reservations_and_fragments() {
    let mut h = HeapRing::with_integrity(128);
    let r = h.ring();
    let (mut p, mut q) = (Producer::new(r), Consumer::new(r));
    let res = p.try_reserve(10, 0).unwrap().unwrap();
    p.reserved(&res).copy_from_slice(b"0123456789");
    p.publish_reserved(res);
    assert_eq!(pop(&mut q).unwrap(), b"0123456789");
    assert_eq!(p.try_push(KIND_FIRST, Some(0), Some(99), b"abc").unwrap(), Pushed::Done);
    let rec = q.peek().unwrap().unwrap();
    assert_eq!(q.read_prefix(&rec), Some(99));
    q.release(&rec);
}

#[test]
fn ring_a_reader_in_the_other_integrity_mode_gets_corrupt_not_data() {
    for sealed in [true, false] {
        let mut h = if sealed { HeapRing::with_integrity(256) } else { HeapRing::new(256) };
        let r = h.ring();
        let mut p = Producer::new(r);
        assert_eq!(p.try_push(KIND_FULL, Some(0), None, b"0123456789abcdef").unwrap(), Pushed::Done);
        // A reader whose view of the mode flag differs from the writer's.
        let mut other = r;
        other.crc_word = if sealed { 0 } else { 8 };
        let mut q = Consumer::new(other);
        assert!(matches!(q.peek(), Err(RingError::Corrupt(_))), "sealed = {sealed}");
    }
}

#[test]
fn ring_a_consumer_that_finds_a_record_before_sleeping_leaves_other_waiters_flag_up() {
    let mut h = HeapRing::new(256);
    let r = h.ring();
    let (mut p, mut q) = (Producer::new(r), Consumer::new(r));
    // Another waiter on this end (a `ReadyFd` watcher, a `wait`) announced itself and sleeps.
    let watcher = q.probe();
    watcher.announce();
    // A record arrives; this process's `recv` gets ready to sleep, but finds it first. It must
    // leave the flag up: the watcher is still asleep on it, and the next publish must wake it.
    assert_eq!(p.try_push(KIND_FULL, Some(0), None, b"x").unwrap(), Pushed::Done);
    let word = watcher.announce();
    assert!(!q.prepare_sleep().unwrap());
    // Relaxed: single-threaded test.
    assert_eq!(word.load(crate::loom::atomic::Ordering::Relaxed), 1, "the watcher's flag was lowered");
    assert_eq!(pop(&mut q).unwrap(), b"x");
}
