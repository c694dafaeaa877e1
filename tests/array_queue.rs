//! ArrayQueue: the lock-free POD queue across real processes, with kills.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::{fork_lock, Watchdog};
use multiproc::{ArrayQueue, Full, Process};
use std::time::{Duration, Instant};

fn wd(n: &'static str) -> Watchdog {
    Watchdog::new(n, Duration::from_secs(40))
}

#[test]
fn array_queue_single_process_forms() {
    let q = ArrayQueue::<u32>::new(2).unwrap();
    assert!(q.is_empty() && !q.is_full() && q.capacity() == 2);
    q.try_push(1).unwrap();
    q.push_timeout(2, Duration::from_secs(1)).unwrap();
    assert!(q.is_full());
    assert_eq!(q.try_push(3), Err(Full(3)));
    let t = Instant::now();
    assert_eq!(q.push_timeout(3, Duration::from_millis(100)), Err(Full(3)));
    assert!(t.elapsed() >= Duration::from_millis(90));
    assert_eq!(q.try_pop(), Some(1));
    assert_eq!(q.pop(), 2);
    assert_eq!(q.try_pop(), None);
    let t = Instant::now();
    assert_eq!(q.pop_timeout(Duration::from_millis(100)), None);
    assert!(t.elapsed() >= Duration::from_millis(90));
    let one = ArrayQueue::<u8>::new(1).unwrap();
    for i in 0..10 {
        one.try_push(i).unwrap();
        assert!(one.try_push(99).is_err());
        assert_eq!(one.try_pop(), Some(i));
    }
}

#[test]
fn array_queue_mpmc_across_processes_with_checksums() {
    let _f = fork_lock();
    let _w = wd("array_queue_mpmc");
    let q = ArrayQueue::<[u64; 2]>::new(64).unwrap();
    let out = ArrayQueue::<u64>::new(4).unwrap();
    let producers: Vec<Process> = (0..2u64)
        .map(|p| {
            let q = q.clone();
            let pr = Process::new(move || {
                for i in 0..20_000u64 {
                    let v = (p << 32) | i;
                    q.push([v, v.wrapping_mul(0x9e37_79b9_7f4a_7c15)]).unwrap();
                }
            });
            pr.start().unwrap();
            pr
        })
        .collect();
    let consumers: Vec<Process> = (0..2)
        .map(|_| {
            let (q, out) = (q.clone(), out.clone());
            let c = Process::new(move || {
                let mut sum = 0u64;
                for _ in 0..20_000 {
                    let [v, c] = q.pop();
                    assert_eq!(c, v.wrapping_mul(0x9e37_79b9_7f4a_7c15), "torn item");
                    sum = sum.wrapping_add(v);
                }
                out.push(sum).unwrap();
            });
            c.start().unwrap();
            c
        })
        .collect();
    for p in producers.into_iter().chain(consumers) {
        assert!(p.join().unwrap().success());
    }
    let total = out.pop().wrapping_add(out.pop());
    let expected = (0..2u64).flat_map(|p| (0..20_000u64).map(move |i| (p << 32) | i)).fold(0u64, u64::wrapping_add);
    assert_eq!(total, expected);
}

#[test]
fn array_queue_killed_producers_and_consumers_never_wedge_it() {
    let _f = fork_lock();
    let _w = wd("array_queue_kill");
    let mut rng = common::Rng::new("array_queue_kill");
    let q = ArrayQueue::<[u64; 2]>::new(8).unwrap();
    for round in 0..8u64 {
        // A producer and a consumer hammering the queue, both killed at random moments.
        let prod = Process::new({
            let q = q.clone();
            move || -> () {
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
            move || -> () {
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
        prod.join().unwrap();
        cons.join().unwrap();
        // The survivors drain what is there (whole items only), then the queue works normally.
        let t = Instant::now();
        while let Some([v, c]) = q.pop_timeout(Duration::from_millis(30)) {
            assert_eq!(c, !v, "torn item");
            assert!(t.elapsed() < Duration::from_secs(10), "drain never ends");
        }
        for k in 0..8u64 {
            q.push_timeout([k, !k], Duration::from_secs(5)).expect("queue wedged after a producer or consumer died");
        }
        for k in 0..8u64 {
            let [v, c] = q.pop_timeout(Duration::from_secs(5)).expect("queue wedged");
            assert_eq!((v, c), (k, !k));
        }
    }
}
