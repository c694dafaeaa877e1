//! ArrayQueue: the lock-free POD queue across real processes, with kills, stuck claims and
//! corrupt shared state.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::{guard, AT_ONCE};
use multiproc::{ArrayQueue, PopError, PopTimeoutError, Process, PushError, PushTimeoutError, STUCK_AFTER};
use multiproc::{TryPopError, TryPushError, UNRECORDED_AFTER};
use std::time::{Duration, Instant};

#[test]
fn array_queue_single_process_forms() {
    let q = ArrayQueue::<u32>::new(2).unwrap();
    assert!(q.is_empty() && !q.is_full() && q.capacity() == 2);
    q.try_push(1).unwrap();
    q.push_timeout(2, Duration::from_secs(1)).unwrap();
    assert!(q.is_full());
    assert!(matches!(q.try_push(3), Err(TryPushError::Full(3))));
    let t = Instant::now();
    assert!(matches!(q.push_timeout(3, Duration::from_millis(100)), Err(PushTimeoutError::Timeout(3))));
    assert!(t.elapsed() >= Duration::from_millis(90));
    assert_eq!(q.try_pop().ok(), Some(1));
    assert_eq!(q.pop().ok(), Some(2));
    assert!(matches!(q.try_pop(), Err(TryPopError::Empty)));
    let t = Instant::now();
    assert!(matches!(q.pop_timeout(Duration::from_millis(100)), Err(PopTimeoutError::Timeout)));
    assert!(t.elapsed() >= Duration::from_millis(90));
    let one = ArrayQueue::<u8>::new(1).unwrap();
    for i in 0..10 {
        one.try_push(i).unwrap();
        assert!(one.try_push(99).is_err());
        assert_eq!(one.try_pop().ok(), Some(i));
    }
    // Duration::MAX waits forever, like `push`: here it finds room at once.
    q.push_timeout(4, Duration::MAX).unwrap();
    assert_eq!(q.pop_timeout(Duration::MAX).ok(), Some(4));
}

/// A producer killed between its `tail` CAS and recording itself leaves the slot naming the
/// previous claimant (here: this live process, which consumed the slot's last item). The stale
/// record must not make the dead producer look alive: `pop_timeout` honours its timeout, the
/// `try_` form returns at once, and the claim is recovered once it has been unrecorded for
/// `UNRECORDED_AFTER`.
#[test]
fn array_queue_unrecorded_dead_producer_behind_a_stale_live_record() {
    let _g = guard();
    let q = ArrayQueue::<u64>::new(1).unwrap();
    q.push(1).unwrap();
    assert_eq!(q.pop().ok(), Some(1)); // the slot's record now names this (live) process
    q.debug_state().claim_as(true, 0, 0); // a producer claims position 1 and dies unrecorded
    let t = Instant::now();
    assert!(matches!(q.try_pop(), Err(TryPopError::Empty)));
    assert!(t.elapsed() < AT_ONCE, "try_pop blocked for {:?}", t.elapsed());
    let t = Instant::now();
    assert!(matches!(q.pop_timeout(Duration::from_millis(20)), Err(PopTimeoutError::Timeout)));
    assert!(t.elapsed() < Duration::from_millis(20) + AT_ONCE, "pop_timeout(20 ms) took {:?}", t.elapsed());
    // The claim is presumed dead after UNRECORDED_AFTER: a waiting pop skips it (a tombstone),
    // after which the queue is empty and usable again.
    let t = Instant::now();
    assert!(matches!(q.pop_timeout(UNRECORDED_AFTER * 2), Err(PopTimeoutError::Timeout)));
    assert!(t.elapsed() >= UNRECORDED_AFTER * 2 - Duration::from_millis(10));
    assert_eq!(q.debug_state().indices(), (2, 2), "the dead producer's position was skipped");
    q.push(7).unwrap();
    assert_eq!(q.try_pop().ok(), Some(7));
}

/// The mirror case: a consumer killed between its `head` CAS and its record, the slot naming
/// the live producer of its item. `push` honours its timeout and recovers the slot later.
#[test]
fn array_queue_unrecorded_dead_consumer_behind_a_stale_live_record() {
    let _g = guard();
    let q = ArrayQueue::<u64>::new(1).unwrap();
    q.push(1).unwrap(); // the slot's record names this (live) process as the producer
    q.debug_state().claim_as(false, 0, 0); // a consumer takes position 0 and dies unrecorded
    let t = Instant::now();
    assert!(matches!(q.try_push(2), Err(TryPushError::Full(2))));
    assert!(matches!(q.push_timeout(2, Duration::from_millis(20)), Err(PushTimeoutError::Timeout(2))));
    assert!(t.elapsed() < Duration::from_millis(20) + AT_ONCE, "took {:?}", t.elapsed());
    q.push_timeout(3, Duration::from_secs(10)).unwrap();
    assert_eq!(q.pop().ok(), Some(3), "the dead consumer's item is lost with it; the queue goes on");
}

/// Forks a child that exits at once and is **not** reaped: a zombie, dead but with its pid
/// still taken. Returns (pid, start time).
fn zombie() -> (u32, u64) {
    let pid = common::fork_child(|| 0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("a zombie keeps its /proc entry");
    let start = stat.rsplit(')').next().unwrap().split_whitespace().nth(19).unwrap().parse().unwrap();
    // Wait until it has exited (state Z), without reaping it.
    let t = Instant::now();
    while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap()
        .rsplit(')')
        .next()
        .unwrap()
        .trim_start()
        .starts_with('Z')
    {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
    (pid as u32, start)
}

/// A claimant that recorded itself and died is recovered after `STUCK_AFTER`, even while its
/// parent has not reaped it (the usual deadlock: the parent that would reap it is the one
/// blocked in `pop`).
#[test]
fn array_queue_dead_unreaped_claimant_is_recovered_promptly() {
    let _g = guard();
    let q = ArrayQueue::<u64>::new(4).unwrap();
    let (pid, start) = zombie();
    q.debug_state().claim_as(true, pid, start);
    q.push(9).unwrap();
    let t = Instant::now();
    assert_eq!(q.pop_timeout(Duration::from_secs(10)).ok(), Some(9));
    assert!(t.elapsed() < STUCK_AFTER + AT_ONCE, "recovery waited {:?}", t.elapsed());
    // The consumer side too: a consumer that took an item and died unreaped.
    q.push(10).unwrap();
    q.push(11).unwrap();
    q.debug_state().claim_as(false, pid, start); // item 10 is lost with it
    for k in 0..2 {
        q.push_timeout(20 + k, Duration::from_secs(10)).unwrap();
    }
    let t = Instant::now();
    q.push_timeout(22, Duration::from_secs(10)).unwrap(); // needs the dead consumer's slot
    assert!(t.elapsed() < STUCK_AFTER + AT_ONCE, "recovery waited {:?}", t.elapsed());
    let got: Vec<u64> = (0..4).map(|_| q.pop().unwrap()).collect();
    assert_eq!(got, [11, 20, 21, 22]);
    common::wait_child(pid as i32);
}

/// This process's (pid, start time), as a live claimant records itself.
fn own_identity() -> (u32, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    (std::process::id(), stat.rsplit(')').next().unwrap().split_whitespace().nth(19).unwrap().parse().unwrap())
}

/// `wait` (and so `ready_fd` and `pop_async`, which share the readiness test) is not woken by a
/// position a live producer claimed and has not published: a pop would find nothing. Before,
/// readiness was "tail past head", so a producer stopped in that window made every `wait`
/// return at once and every `try_pop` answer empty: a busy loop for as long as it stayed
/// stopped. A dead producer's claim does make the queue ready, once it is due for recovery,
/// and the pop that follows gets past it.
#[test]
fn array_queue_wait_ignores_a_live_producers_unpublished_claim_but_not_a_dead_ones() {
    let _g = guard();
    let q = ArrayQueue::<u64>::new(4).unwrap();
    let (pid, start) = own_identity();
    q.debug_state().claim_as(true, pid, start); // alive, between its claim and its publication
    q.push(9).unwrap(); // published behind it
    let t = Instant::now();
    assert!(multiproc::wait(&[&q], Some(Duration::from_millis(300))).is_empty(), "woken for nothing");
    assert!(t.elapsed() >= Duration::from_millis(250));
    assert!(matches!(q.try_pop(), Err(TryPopError::Empty)));

    let q = ArrayQueue::<u64>::new(4).unwrap();
    let (pid, start) = zombie();
    q.debug_state().claim_as(true, pid, start);
    q.push(9).unwrap();
    let t = Instant::now();
    assert_eq!(multiproc::wait(&[&q], Some(Duration::from_secs(10))), [0]);
    assert!(t.elapsed() < STUCK_AFTER + Duration::from_secs(1), "ready only after {:?}", t.elapsed());
    assert_eq!(q.try_pop().ok(), Some(9));
    common::wait_child(pid as i32);
}

/// A consumer that only polls (`try_pop` in a loop, as a spinning reader does) still finds a
/// dead producer's stuck claim and gets past it: an empty `try_pop` looks at the producers'
/// index on one poll in 32 of its handle, which is enough for the recovery.
#[test]
fn array_queue_polling_try_pop_recovers_a_dead_producer() {
    let _g = guard();
    let q = ArrayQueue::<u64>::new(4).unwrap();
    let (pid, start) = zombie();
    for _ in 0..5 {
        // Polls of an empty queue first, so that the stuck claim is met at any count.
        assert!(matches!(q.try_pop(), Err(TryPopError::Empty)));
    }
    q.debug_state().claim_as(true, pid, start);
    q.push(9).unwrap();
    let t = Instant::now();
    let got = loop {
        if let Ok(v) = q.try_pop() {
            break v;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the stuck claim was never recovered by polling");
        std::hint::spin_loop();
    };
    assert_eq!(got, 9);
    common::wait_child(pid as i32);
}

/// Garbage in `head`, `tail` or a stamp is an error (or at worst full/empty), never a spin:
/// every operation returns, the `try_` forms at once and the timed forms by their timeout.
#[test]
fn array_queue_corrupt_indices_and_stamps_are_errors_not_hangs() {
    let _g = guard();
    let mut rng = common::Rng::new("array_queue_corrupt");
    let mut corrupt_seen = 0;
    for round in 0..200 {
        let q = ArrayQueue::<u64>::new(1 + rng.range(0, 8) as usize).unwrap();
        for i in 0..rng.range(0, 12) {
            let _ = q.try_push(i);
            if rng.range(0, 3) == 0 {
                let _ = q.try_pop();
            }
        }
        let d = q.debug_state();
        let garbage = match rng.range(0, 4) {
            0 => rng.next_u64(),
            1 => rng.range(0, 64),
            2 => u64::MAX - rng.range(0, 4),
            _ => 1 << 62,
        };
        match rng.range(0, 3) {
            0 => d.set_indices(Some(garbage), None),
            1 => d.set_indices(None, Some(garbage)),
            _ => d.set_stamp(rng.range(0, 8) as usize, garbage),
        }
        for _ in 0..6 {
            let t = Instant::now();
            let pushed = q.try_push(round);
            let popped = q.try_pop();
            assert!(t.elapsed() < AT_ONCE, "try_ forms blocked for {:?} on a corrupt queue", t.elapsed());
            corrupt_seen += matches!(pushed, Err(TryPushError::Corrupt { .. })) as u32;
            corrupt_seen += matches!(popped, Err(TryPopError::Corrupt(_))) as u32;
            let t = Instant::now();
            let _ = q.pop_timeout(Duration::from_millis(5));
            let _ = q.push_timeout(round, Duration::from_millis(5));
            assert!(t.elapsed() < Duration::from_millis(10) + AT_ONCE, "timed forms overran: {:?}", t.elapsed());
        }
    }
    assert!(corrupt_seen > 0, "no corruption was ever reported as such");
    // The plain cases: a tail far ahead of head, a head past tail.
    let q = ArrayQueue::<u64>::new(4).unwrap();
    q.debug_state().set_indices(None, Some(1 << 40));
    assert!(matches!(q.try_push(1), Err(TryPushError::Corrupt { .. })));
    assert!(matches!(q.try_pop(), Err(TryPopError::Corrupt(_))));
    assert!(matches!(q.pop(), Err(PopError::Corrupt(_))), "a blocking pop reports it too");
    let q = ArrayQueue::<u64>::new(4).unwrap();
    q.debug_state().set_indices(Some(5), None);
    assert!(matches!(q.try_pop(), Err(TryPopError::Corrupt(_))));
}

#[test]
fn array_queue_mpmc_across_processes_with_checksums() {
    let _g = guard();
    let q = ArrayQueue::<[u64; 2]>::new(64).unwrap();
    let out = ArrayQueue::<u64>::new(4).unwrap();
    let producers: Vec<Process> = (0..2u64)
        .map(|p| {
            let q = q.clone();
            let pr = Process::new(move || -> Result<(), PushError<[u64; 2]>> {
                for i in 0..20_000u64 {
                    let v = (p << 32) | i;
                    q.push([v, v.wrapping_mul(0x9e37_79b9_7f4a_7c15)])?;
                }
                Ok(())
            });
            pr.start().unwrap();
            pr
        })
        .collect();
    let consumers: Vec<Process> = (0..2)
        .map(|_| {
            let (q, out) = (q.clone(), out.clone());
            let c = Process::new(move || -> Result<(), Box<dyn std::error::Error>> {
                let mut sum = 0u64;
                for _ in 0..20_000 {
                    let [v, c] = q.pop()?;
                    assert_eq!(c, v.wrapping_mul(0x9e37_79b9_7f4a_7c15), "torn item");
                    sum = sum.wrapping_add(v);
                }
                out.push(sum)?;
                Ok(())
            });
            c.start().unwrap();
            c
        })
        .collect();
    for p in producers.into_iter().chain(consumers) {
        let s = p.join().unwrap();
        assert!(s.success(), "{s}");
    }
    let total = out.pop().unwrap().wrapping_add(out.pop().unwrap());
    let expected = (0..2u64).flat_map(|p| (0..20_000u64).map(move |i| (p << 32) | i)).fold(0u64, u64::wrapping_add);
    assert_eq!(total, expected);
}

/// Kill chaos: producers and consumers hammering a small queue, SIGKILLed at random moments
/// (and left unreaped for a while), for a few seconds (`MULTIPROC_CHAOS_SECS` for longer).
/// After each round the survivors drain whole items only, nothing is duplicated, and the queue
/// works normally: no kill ever wedges it.
#[test]
fn array_queue_chaos_killed_producers_and_consumers_never_wedge_it() {
    let secs = common::chaos_secs(3);
    let _g = common::guard_for(secs + Duration::from_secs(60));
    let mut rng = common::Rng::new("array_queue_chaos");
    let q = ArrayQueue::<[u64; 2]>::new(8).unwrap();
    let end = Instant::now() + secs;
    let mut rounds = 0u64;
    while Instant::now() < end || rounds < 3 {
        let round = rounds;
        rounds += 1;
        let prod = Process::new({
            let q = q.clone();
            move || -> std::convert::Infallible {
                let mut i = 0u64;
                loop {
                    let v = (round << 40) | i;
                    let _ = q.push_timeout([v, !v], Duration::from_millis(50));
                    i += 1;
                }
            }
        });
        let cons = Process::new({
            let q = q.clone();
            move || -> std::convert::Infallible {
                loop {
                    let _ = q.pop_timeout(Duration::from_millis(50));
                }
            }
        });
        prod.start().unwrap();
        cons.start().unwrap();
        std::thread::sleep(Duration::from_micros(rng.range(100, 5000)));
        prod.kill().unwrap();
        std::thread::sleep(Duration::from_micros(rng.range(0, 500)));
        cons.kill().unwrap();
        // Drain and use the queue *before* reaping the dead: recovery must not need the reap.
        // Until nothing is claimed any more: a claim its dead claimant never recorded is
        // recovered only after UNRECORDED_AFTER, so a short pop timeout alone can stop early.
        let t = Instant::now();
        let mut seen = std::collections::HashSet::new();
        loop {
            match q.pop_timeout(Duration::from_millis(30)) {
                Ok([v, c]) => {
                    assert_eq!(c, !v, "torn item");
                    assert!(seen.insert(v), "item {v:#x} delivered twice");
                }
                Err(_) => {
                    let (head, tail) = q.debug_state().indices();
                    if head == tail {
                        break;
                    }
                }
            }
            assert!(t.elapsed() < UNRECORDED_AFTER + Duration::from_secs(10), "drain never ends");
        }
        for k in 0..8u64 {
            q.push_timeout([k, !k], Duration::from_secs(5)).expect("queue wedged after a producer or consumer died");
        }
        for k in 0..8u64 {
            let [v, c] = q.pop_timeout(Duration::from_secs(5)).expect("queue wedged");
            assert_eq!((v, c), (k, !k));
        }
        prod.join().unwrap();
        cons.join().unwrap();
    }
    eprintln!("array_queue chaos: {rounds} rounds in {secs:?}");
}
