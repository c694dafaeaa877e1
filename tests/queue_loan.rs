//! Queue loans (QUE-B11 in `docs/BEHAVIOURS.md`): an item of a `Queue<Vec<u8>>` written in
//! place with `put_loan` and read in place with `get_loan`, records that never wrap around the
//! ring's end, and what a process killed with a loan open leaves behind. Multi-process tests
//! fork under `fork_lock` with a watchdog.

mod common;

use common::{chaos_secs, fork_child, guard, sigkill, wait_child, Ended, Rng};
use multiproc::{Event, GetError, PutError, Queue, TryGetError, TryPutError};
use std::collections::VecDeque;
use std::time::Duration;

/// Fills `buf` as item `seq`: its sequence number, then a pattern derived from it.
fn fill(seq: u32, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (seq as usize * 31 + i) as u8;
    }
    if buf.len() >= 4 {
        buf[..4].copy_from_slice(&seq.to_le_bytes());
    }
}

fn item(seq: u32, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill(seq, &mut v);
    v
}

fn small(cap: usize) -> Queue<Vec<u8>> {
    Queue::builder().capacity_bytes(cap).build().unwrap()
}

#[cfg(feature = "serde")] // the typed path too
#[test]
fn que_b11_loans_put_and_get_in_place_and_mix_with_copies() {
    let q = small(4096);
    let mut loan = q.put_loan(5).unwrap();
    assert_eq!(loan.len(), 5);
    loan.copy_from_slice(b"hello");
    loan.commit().unwrap();
    q.put_bytes(b"copied").unwrap();
    q.put(&vec![1, 2, 3]).unwrap();
    q.put_loan(0).unwrap().commit().unwrap();
    assert_eq!(q.qsize(), 4);
    assert_eq!(q.get().unwrap(), b"hello", "the typed path reads a loaned item");
    assert_eq!(&*q.get_loan().unwrap(), b"copied");
    assert_eq!(&*q.try_get_loan().unwrap(), [1, 2, 3]);
    assert!(q.get_loan().unwrap().is_empty());
    assert!(q.try_get_loan().unwrap_err().is_empty());
    assert!(q.get_loan_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
}

#[cfg(feature = "serde")] // the typed path too
#[test]
fn que_b11_an_abandoned_loan_is_never_seen_and_a_borrowed_item_is_taken_on_drop() {
    let q = small(4096);
    let mut loan = q.put_loan(100).unwrap();
    loan.fill(9);
    drop(loan);
    assert!(q.empty());
    assert!(q.try_get_loan().unwrap_err().is_empty());
    q.put_bytes(b"one").unwrap();
    q.put_bytes(b"two").unwrap();
    {
        let got = q.get_loan().unwrap();
        assert_eq!(&*got, b"one");
        assert_eq!(q.qsize(), 2, "borrowed, not taken yet");
    }
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.get().unwrap(), b"two");
}

#[cfg(feature = "serde")] // the typed path too
#[test]
fn que_b11_a_loan_too_large_is_refused_and_the_largest_fits_anywhere_in_the_ring() {
    let q = small(4096);
    let most = q.max_loan();
    assert!(most > 4000 && most < 4096, "{most}");
    assert!(matches!(q.put_loan(most + 1), Err(PutError::TooLarge { capacity: 4096, .. })));
    assert!(matches!(q.try_put_loan(usize::MAX / 2), Err(TryPutError::TooLarge { .. })));
    assert!(q.empty(), "a refused loan leaves nothing behind");
    // From every position in the ring, an empty queue takes the largest item: records do not
    // wrap, and an empty ring starts the next lap instead of skipping to it.
    for shift in (0..4096).step_by(200) {
        if shift > 0 {
            q.put_bytes(&vec![0; shift]).unwrap();
            q.get().unwrap();
        }
        let mut loan = q.try_put_loan(most).unwrap();
        fill(shift as u32, &mut loan);
        loan.commit().unwrap();
        assert!(q.try_put_loan(0).unwrap_err().is_full());
        assert_eq!(*q.get_loan().unwrap(), item(shift as u32, most));
    }
}

#[test]
fn que_b11_maxsize_and_the_four_forms_of_a_put_loan() {
    let q: Queue<Vec<u8>> = Queue::with_maxsize(2).unwrap();
    q.put_loan(1).unwrap().commit().unwrap();
    q.try_put_loan(1).unwrap().commit().unwrap();
    assert!(q.try_put_loan(1).unwrap_err().is_full());
    assert!(q.put_loan_timeout(1, Duration::from_millis(5)).unwrap_err().is_timeout());
    assert!(q.put_loan_deadline(1, std::time::Instant::now()).unwrap_err().is_timeout());
    drop(q.get_loan_deadline(std::time::Instant::now()).unwrap());
    q.put_loan_deadline(1, std::time::Instant::now()).unwrap().commit().unwrap();
    assert_eq!(q.qsize(), 2);
    q.close();
    assert!(matches!(q.put_loan(1), Err(PutError::Closed)));
    assert!(matches!(q.get_loan(), Err(GetError::Closed)));
}

#[test]
fn que_b11_a_second_loan_in_the_same_thread_is_an_error_not_a_hang() {
    let q = small(4096);
    q.put_bytes(b"x").unwrap();
    let held = q.get_loan().unwrap();
    match q.put_loan(1) {
        Err(PutError::Os(e)) => assert_eq!(e.raw_os_error(), Some(libc::EDEADLK)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(q.try_get_loan(), Err(TryGetError::Os(_))));
    drop(held);
    assert!(q.empty());
}

#[test]
fn que_b11_a_loan_length_near_usize_max_is_too_large_not_a_panic() {
    let q = small(4096);
    assert!(matches!(q.try_put_loan(usize::MAX), Err(TryPutError::TooLarge { .. })));
    assert!(matches!(q.put_loan(usize::MAX - 5), Err(PutError::TooLarge { .. })));
    assert!(q.empty());
}

#[test]
fn que_b11_a_loan_open_across_a_shutdown_puts_nothing() {
    // Shut down by another thread while the loan is open: the commit is refused.
    let q = small(4096);
    let mut loan = q.put_loan(3).unwrap();
    loan.copy_from_slice(b"abc");
    std::thread::scope(|s| s.spawn(|| q.shutdown()).join().unwrap());
    assert!(matches!(loan.commit(), Err(PutError::ShutDown)));
    assert!(q.empty());
    // Shut down at once by the thread that holds a loan (the shutter cannot take the lock):
    // the loan's end drops what was queued.
    for get in [false, true] {
        let q = small(4096);
        q.put_bytes(b"one").unwrap();
        q.put_bytes(b"two").unwrap();
        if get {
            let item = q.get_loan().unwrap();
            q.shutdown_immediate();
            assert_eq!(&*item, b"one");
        } else {
            let loan = q.put_loan(1).unwrap();
            q.shutdown_immediate();
            assert!(matches!(loan.commit(), Err(PutError::ShutDown)));
        }
        assert_eq!(q.qsize(), 0, "get = {get}");
        assert!(matches!(q.try_get_loan(), Err(TryGetError::ShutDown)));
    }
}

/// Loans, copies and batches, with random sizes, against a model: every lap of the ring's
/// end is crossed many times, so skip records are written and stepped over by every reader.
#[test]
fn que_b11_records_that_would_wrap_are_placed_at_the_next_lap_for_every_reader() {
    let mut rng = Rng::new("que_b11_wrap");
    let q = small(1024);
    let most = q.max_loan();
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let mut seq = 0u32;
    for _ in 0..20_000 {
        match rng.range(0, 6) {
            0 | 1 => {
                let len = rng.range(0, most as u64 / 3) as usize;
                match q.try_put_loan(len) {
                    Ok(mut loan) => {
                        fill(seq, &mut loan);
                        loan.commit().unwrap();
                        model.push_back(item(seq, len));
                    }
                    Err(TryPutError::Full) => assert!(!model.is_empty(), "an empty ring takes any item"),
                    Err(e) => panic!("{e}"),
                }
            }
            2 => {
                let len = rng.range(0, 300) as usize;
                let items = [item(seq, len), item(seq + 1, len / 2)];
                let n = q.try_put_bytes_many(&items).unwrap_or(0);
                model.extend(items.into_iter().take(n));
                seq += 1;
            }
            3 => match q.try_get_loan() {
                Ok(got) => assert_eq!(Some(&*got), model.pop_front().as_deref()),
                Err(TryGetError::Empty) => assert!(model.is_empty()),
                Err(e) => panic!("{e}"),
            },
            4 => {
                let mut out = Vec::new();
                match q.try_get_bytes_into(&mut out) {
                    Ok(_) => assert_eq!(Some(out), model.pop_front()),
                    Err(TryGetError::Empty) => assert!(model.is_empty()),
                    Err(e) => panic!("{e}"),
                }
            }
            _ => {
                let max = rng.range(1, 4) as usize;
                let mut got = Vec::new();
                match q.try_get_bytes_many(max, |b| got.push(b.to_vec())) {
                    Ok(n) => assert_eq!(n, got.len()),
                    Err(TryGetError::Empty) => {}
                    Err(e) => panic!("{e}"),
                }
                for g in got {
                    assert_eq!(Some(g), model.pop_front());
                }
            }
        }
        seq += 1;
        assert_eq!(q.qsize(), model.len(), "skip records are not items");
    }
}

#[test]
fn que_b11_integrity_mode_checks_loaned_items() {
    let q: Queue<Vec<u8>> = Queue::builder().capacity_bytes(4096).integrity(true).build().unwrap();
    for seq in 0..200u32 {
        let len = (seq as usize * 37) % 700;
        let mut loan = q.put_loan(len).unwrap();
        fill(seq, &mut loan);
        loan.commit().unwrap();
        assert_eq!(*q.get_loan().unwrap(), item(seq, len));
    }
}

/// A producer killed with a loan open puts nothing; a consumer killed while borrowing takes
/// nothing, and the next consumer gets that item whole.
#[test]
fn que_b11_a_process_killed_with_a_loan_open_loses_nothing_and_wedges_nobody() {
    let _g = guard();
    let q = small(1 << 16);
    let ready = Event::new().unwrap();
    // A producer killed after writing half of its loan.
    let pid = fork_child(|| {
        let mut loan = q.put_loan(1000).unwrap();
        fill(7, &mut loan[..500]);
        ready.set();
        std::thread::sleep(Duration::from_secs(60));
        0
    });
    ready.wait_timeout(Duration::from_secs(10)).unwrap();
    sigkill(pid);
    assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
    assert!(q.try_get_loan().unwrap_err().is_empty(), "the uncommitted item is never seen");
    q.put_bytes(&item(1, 300)).unwrap();
    // A consumer killed while it borrows that item.
    ready.clear();
    let pid = fork_child(|| {
        let got = q.get_loan().unwrap();
        assert_eq!(*got, item(1, 300));
        ready.set();
        std::thread::sleep(Duration::from_secs(60));
        0
    });
    ready.wait_timeout(Duration::from_secs(10)).unwrap();
    sigkill(pid);
    assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
    assert_eq!(*q.get_loan().unwrap(), item(1, 300), "the borrowed item is still there, whole");
    assert!(q.empty());
}

/// A fork with a loan open: the child's copy neither puts nor takes; the parent's does.
#[test]
fn que_b11_a_forked_copy_of_a_loan_does_nothing() {
    let _g = guard();
    let q = small(4096);
    let mut loan = q.put_loan(3).unwrap();
    loan.copy_from_slice(b"abc");
    let pid = fork_child(|| match loan.commit() {
        Err(PutError::Os(e)) if e.raw_os_error() == Some(libc::EPERM) => 0,
        _ => 1,
    });
    assert_eq!(wait_child(pid), Ended::Code(0));
    assert!(q.empty());
    let mut loan = q.put_loan(3).unwrap();
    loan.copy_from_slice(b"abc");
    loan.commit().unwrap();
    let mut got = std::mem::ManuallyDrop::new(q.get_loan().unwrap());
    let pid = fork_child(|| {
        // SAFETY: the child's copy of the loan is dropped once, here; the parent's stays.
        unsafe { std::mem::ManuallyDrop::drop(&mut got) };
        0
    });
    assert_eq!(wait_child(pid), Ended::Code(0));
    assert_eq!(q.qsize(), 1, "the child's copy took nothing");
    drop(std::mem::ManuallyDrop::into_inner(got));
    assert!(q.empty());
}

/// Producers and consumers, all through loans, while processes of both kinds are killed at
/// random: every item a consumer reads is whole, each producer's items arrive in order, and
/// nothing hangs.
#[test]
fn que_b11_chaos_loans_under_kills() {
    let _g = guard();
    let mut rng = Rng::new("que_b11_chaos");
    let q = small(8192);
    let (started, budget) = (std::time::Instant::now(), chaos_secs(1));
    let mut round = 0u32;
    while round < 4 || started.elapsed() < budget {
        round += 1;
        let producer = fork_child(|| {
            for seq in 0u32.. {
                let len = 4 + (seq as usize * 7919) % 1500;
                let Ok(mut loan) = q.put_loan(len) else { return 1 };
                fill(seq, &mut loan);
                loan.commit().unwrap();
            }
            0
        });
        let consumer = fork_child(|| loop {
            let Ok(got) = q.get_loan() else { return 1 };
            let seq = u32::from_le_bytes(got[..4].try_into().unwrap());
            if *got != item(seq, got.len()) {
                return 2;
            }
        });
        std::thread::sleep(Duration::from_micros(rng.range(100, 20_000)));
        sigkill(consumer);
        std::thread::sleep(Duration::from_micros(rng.range(100, 5_000)));
        sigkill(producer);
        assert_eq!(wait_child(producer), Ended::Signal(libc::SIGKILL));
        assert_eq!(wait_child(consumer), Ended::Signal(libc::SIGKILL), "a consumer saw a torn item");
        // What is left reads back whole and in the producer's order, then the queue is empty.
        let mut last = None;
        while let Ok(got) = q.try_get_loan() {
            let seq = u32::from_le_bytes(got[..4].try_into().unwrap());
            assert_eq!(*got, item(seq, got.len()), "round {round}: torn item");
            assert!(last.is_none_or(|l| seq == l + 1), "round {round}: {seq} after {last:?}");
            last = Some(seq);
        }
        assert_eq!(q.qsize(), 0);
    }
}
