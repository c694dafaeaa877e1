//! Semaphore and BoundedSemaphore, SPEC.md §6 (SEM-*), with real processes.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::{fork_lock, Watchdog};
use multiproc::{BoundedSemaphore, Event, Process, Semaphore, SemaphoreError, Value};
use std::time::{Duration, Instant};

fn wd(n: &'static str) -> Watchdog {
    Watchdog::new(n, Duration::from_secs(30))
}

#[test]
fn sem_1_counts_down_and_up() {
    for bounded in [false, true] {
        let b = BoundedSemaphore::new(2).unwrap();
        let p = Semaphore::new(2).unwrap();
        let s: &Semaphore = if bounded { &b } else { &p };
        assert_eq!(s.get_value(), 2);
        s.acquire();
        assert_eq!(s.get_value(), 1);
        assert!(s.try_acquire());
        assert_eq!(s.get_value(), 0);
        assert!(!s.try_acquire());
        assert_eq!(s.get_value(), 0);
        if bounded {
            b.release().unwrap();
            b.release().unwrap();
        } else {
            p.release();
            p.release();
        }
        assert_eq!(s.get_value(), 2);
    }
}

#[test]
fn sem_2_plain_semaphore_is_unbounded() {
    let s = Semaphore::new(2).unwrap();
    s.release();
    assert_eq!(s.get_value(), 3);
    s.release();
    assert_eq!(s.get_value(), 4);
}

#[test]
fn sem_3_bounded_over_release_is_an_error() {
    let s = BoundedSemaphore::new(2).unwrap();
    assert_eq!(s.release(), Err(SemaphoreError::ReleasedTooManyTimes));
    assert_eq!(s.get_value(), 2);
    let z = BoundedSemaphore::new(0).unwrap();
    assert_eq!(z.release(), Err(SemaphoreError::ReleasedTooManyTimes));
    assert_eq!(z.get_value(), 0);
}

#[test]
fn sem_4_timeouts() {
    let s = Semaphore::new(0).unwrap();
    let t = Instant::now();
    assert!(!s.try_acquire());
    assert!(!s.acquire_timeout(Duration::ZERO));
    assert!(t.elapsed() < Duration::from_millis(50));
    let t = Instant::now();
    assert!(!s.acquire_timeout(Duration::from_millis(100)));
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(90) && e < Duration::from_secs(2), "{e:?}");
    assert!(!s.acquire_deadline(Instant::now() + Duration::from_millis(20)));
}

#[test]
fn sem_5_invalid_initial_values_are_rejected() {
    assert_eq!(Semaphore::new(u32::MAX).unwrap_err(), SemaphoreError::InvalidValue(u32::MAX as u64));
    assert!(BoundedSemaphore::new(i32::MAX as u32 + 1).is_err());
    assert!(Semaphore::new(i32::MAX as u32).is_ok());
}

#[test]
fn sem_6_caps_concurrency_across_processes() {
    let _f = fork_lock();
    let _w = wd("sem_6");
    let sem = Semaphore::new(2).unwrap();
    let inside = Value::new(0i64).unwrap();
    let peak = Value::new(0i64).unwrap();
    let t = Instant::now();
    let workers: Vec<Process> = (0..6)
        .map(|_| {
            let (sem, inside, peak) = (sem.clone(), inside.clone(), peak.clone());
            let p = Process::new(move || {
                let _permit = sem.acquire_guard();
                let now = inside.fetch_add(1) + 1;
                peak.update(|p| *p = (*p).max(now)).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                inside.fetch_add(-1);
            });
            p.start().unwrap();
            p
        })
        .collect();
    for w in workers {
        assert!(w.join().unwrap().success());
    }
    assert_eq!(peak.get().unwrap(), 2);
    assert!(t.elapsed() >= Duration::from_millis(290), "three waves of 100 ms took {:?}", t.elapsed());
}

#[test]
fn sem_b1_permit_of_a_killed_holder_comes_back() {
    let _f = fork_lock();
    let _w = wd("sem_b1");
    let sem = Semaphore::new(1).unwrap();
    let holding = Event::new().unwrap();
    let child = Process::new({
        let (sem, holding) = (sem.clone(), holding.clone());
        move || {
            let _permit = sem.acquire_guard();
            holding.set();
            std::thread::sleep(Duration::from_secs(60));
        }
    });
    child.start().unwrap();
    assert!(holding.wait_timeout(Duration::from_secs(10)));
    assert_eq!(sem.get_value(), 0);
    child.kill().unwrap();
    child.join().unwrap();
    let t = Instant::now();
    assert!(sem.acquire_timeout(Duration::from_secs(5)), "the dead holder's permit never came back");
    assert!(t.elapsed() < Duration::from_secs(2), "recovery took {:?}", t.elapsed());
    assert_eq!(sem.get_value(), 0);
    sem.release();
    assert_eq!(sem.get_value(), 1, "recovery gave back more than was held");
}

#[test]
fn sem_b1_holders_killed_at_random_points_of_their_hold() {
    let _f = fork_lock();
    let _w = wd("sem_b1_random");
    let mut rng = common::Rng::new("sem_b1_random");
    let sem = Semaphore::new(2).unwrap();
    let holding = multiproc::RawValue::new(0u32).unwrap();
    for round in 0..10u32 {
        let child = Process::new({
            let (sem, holding) = (sem.clone(), holding.clone());
            move || -> () {
                let mut i = 0u32;
                loop {
                    let _p = sem.acquire_guard();
                    holding.set(round * 1_000_000 + i + 1);
                    std::thread::sleep(Duration::from_micros(200));
                    i += 1;
                }
            }
        });
        child.start().unwrap();
        // Kill the child at a random moment while it holds a permit.
        while holding.get() <= round * 1_000_000 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_micros(rng.range(0, 150)));
        child.kill().unwrap();
        child.join().unwrap();
        assert!(sem.acquire_timeout(Duration::from_secs(5)), "round {round}: a permit was lost");
        assert!(sem.acquire_timeout(Duration::from_secs(5)), "round {round}: a permit was lost");
        assert!(!sem.try_acquire(), "round {round}: a permit was duplicated");
        sem.release();
        sem.release();
    }
}
