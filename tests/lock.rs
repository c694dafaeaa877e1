//! Lock and RLock, LOCK-* in `docs/BEHAVIOURS.md`, with real processes.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{Event, Lock, LockError, LockTimeoutError, Process, RLock, TryLockError, Value};
use std::time::{Duration, Instant};

#[test]
fn lock_1_acquire_try_release() {
    let l = Lock::new().unwrap();
    let g = l.lock().unwrap();
    assert!(matches!(l.try_lock(), Err(TryLockError::WouldDeadlock)));
    drop(g);
    assert!(l.try_lock().is_ok());
}

#[test]
fn lock_2_timed_acquire_of_a_held_lock() {
    let _g = guard_for(Duration::from_secs(30));
    let l = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let done = Event::new().unwrap();
    let p = Process::new({
        let (l, held, done) = (l.clone(), held.clone(), done.clone());
        move || {
            let _g = l.lock().unwrap();
            held.set();
            done.wait_timeout(Duration::from_secs(20)).expect("released in time");
        }
    });
    p.start().unwrap();
    assert!(held.wait_timeout(Duration::from_secs(10)).is_ok());
    assert!(matches!(l.try_lock(), Err(TryLockError::WouldBlock)));
    let t = Instant::now();
    assert!(matches!(l.lock_timeout(Duration::from_millis(100)), Err(LockTimeoutError::Timeout)));
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(90) && e < Duration::from_secs(2), "{e:?}");
    done.set();
    p.join().unwrap();
    assert!(l.lock_timeout(Duration::from_secs(5)).is_ok());
}

#[test]
fn lock_3_mutual_exclusion_across_processes() {
    let _g = guard_for(Duration::from_secs(30));
    let lock = Lock::new().unwrap();
    let counter = multiproc::RawValue::new(0u64).unwrap();
    let ps: Vec<Process> = (0..4)
        .map(|_| {
            let (lock, counter) = (lock.clone(), counter.clone());
            let p = Process::new(move || {
                for _ in 0..20_000 {
                    let _g = lock.lock().unwrap();
                    counter.set(counter.get() + 1); // racy without the lock
                }
            });
            p.start().unwrap();
            p
        })
        .collect();
    for p in ps {
        assert!(p.join().unwrap().success());
    }
    assert_eq!(counter.get(), 80_000);
}

#[test]
fn lock_4_release_by_another_process_is_impossible_and_the_lock_stays_held() {
    // Python lets any process release a Lock (LOCK-4). A robust mutex has an owner: a child
    // cannot release the parent's lock; it can only fail to take it.
    let _g = guard_for(Duration::from_secs(30));
    let l = Lock::new().unwrap();
    let _g = l.lock().unwrap();
    let p = Process::new({
        let l = l.clone();
        move || if matches!(l.try_lock(), Err(TryLockError::WouldBlock)) { 0 } else { 1 }
    });
    p.start().unwrap();
    assert_eq!(p.join().unwrap().code(), Some(0));
}

#[test]
fn lock_5_rlock_reentry() {
    let r = RLock::new().unwrap();
    let a = r.lock().unwrap();
    let b = r.lock().unwrap();
    let c = r.try_lock().unwrap();
    drop(c);
    drop(b);
    drop(a);
}

#[test]
fn lock_6_rlock_held_by_parent_is_not_available_to_a_child() {
    let _g = guard_for(Duration::from_secs(30));
    let r = RLock::new().unwrap();
    let _g = r.lock().unwrap();
    let p = Process::new({
        let r = r.clone();
        move || if matches!(r.try_lock(), Err(TryLockError::WouldBlock)) { 0 } else { 1 }
    });
    p.start().unwrap();
    assert_eq!(p.join().unwrap().code(), Some(0));
}

#[test]
fn lock_7_value_lock_is_recursive() {
    let v = Value::new(1i32).unwrap();
    let _outer = v.get_lock().lock().unwrap();
    assert!(v.get_lock().try_lock().is_ok());
    assert_eq!(v.get().unwrap(), 1);
}

#[test]
fn lock_b1_dead_owner_is_reported_and_recoverable() {
    let _g = guard_for(Duration::from_secs(30));
    let mut rng = common::Rng::new("lock_b1");
    for _ in 0..5 {
        let l = Lock::new().unwrap();
        let holding = Event::new().unwrap();
        let p = Process::new({
            let (l, holding) = (l.clone(), holding.clone());
            move || -> () {
                let _g = l.lock().unwrap();
                holding.set();
                loop {
                    std::hint::spin_loop();
                }
            }
        });
        p.start().unwrap();
        assert!(holding.wait_timeout(Duration::from_secs(10)).is_ok());
        std::thread::sleep(Duration::from_millis(rng.range(0, 20)));
        p.kill().unwrap();
        p.join().unwrap();
        let t = Instant::now();
        match l.lock_timeout(Duration::from_secs(5)) {
            Err(LockTimeoutError::OwnerDied(d)) => {
                let mut g = d.into_guard();
                g.make_consistent();
            }
            other => panic!("expected OwnerDied, got {other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(1));
        // Repaired: usable again.
        assert!(l.lock().is_ok());
    }
}

#[test]
fn lock_b1_unrepaired_lock_is_reported_unrecoverable_not_hung() {
    let _g = guard_for(Duration::from_secs(30));
    let l = Lock::new().unwrap();
    let p = Process::new({
        let l = l.clone();
        move || std::mem::forget(l.lock().unwrap())
    });
    p.start().unwrap();
    p.join().unwrap();
    match l.lock() {
        Err(LockError::OwnerDied(d)) => drop(d.into_guard()), // not repaired
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert!(matches!(l.lock(), Err(LockError::Unrecoverable)));
    assert!(matches!(l.try_lock(), Err(TryLockError::Unrecoverable)));
}

/// Takes and releases `l` `n` times, repairing after dead owners.
fn hammer(l: &Lock, n: u32) {
    for _ in 0..n {
        match l.lock() {
            Ok(g) => drop(g),
            Err(LockError::OwnerDied(d)) => d.into_guard().make_consistent(),
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// Stress: waiters are killed at random while others hammer the lock; every hammer finishes.
///
/// glibc wakes one waiter per unlock; if that one is SIGKILLed before re-taking the lock
/// while another process takes it on the CAS fast path, nobody is left who knows about the
/// remaining sleepers. The staged test below hits that window every time; this one covers the
/// mixture (killed holders, killed waiters, fast-path takers) the queue's kill test first
/// hung on.
#[test]
fn lock_b1_killed_waiters_never_strand_the_others() {
    let _g = guard_for(Duration::from_secs(30));
    let mut rng = common::Rng::new("lock_b1_killed_waiters");
    let l = Lock::new().unwrap();
    let hammers: Vec<Process> = (0..3)
        .map(|_| {
            let l = l.clone();
            let p = Process::new(move || hammer(&l, 300_000));
            p.start().unwrap();
            p
        })
        .collect();
    // Kill waiters for as long as the hammers run (bounded, in case one is stuck).
    for _ in 0..400 {
        if !hammers.iter().any(|h| h.is_alive()) {
            break;
        }
        let victims: Vec<Process> = (0..2)
            .map(|_| {
                let l = l.clone();
                let v = Process::new(move || hammer(&l, u32::MAX));
                v.start().unwrap();
                v
            })
            .collect();
        std::thread::sleep(Duration::from_micros(rng.range(50, 1000)));
        for v in victims {
            v.kill().unwrap();
            v.join().unwrap();
        }
    }
    for p in &hammers {
        // Each hammer finishes its loop: none is asleep on a lock nobody will wake.
        let st = p.join_timeout(Duration::from_secs(20)).expect("a hammer is stuck");
        assert_eq!(st.exitcode(), 0, "{st:?}");
    }
}

/// Waits until process `pid` sleeps in a futex wait (its `wchan`). Where the kernel hides
/// `wchan` (it then reads `0`), gives up after a second: the test still checks that nothing
/// hangs, it just may not stage the exact interleaving.
fn wait_until_asleep_in_futex(pid: u32) {
    let t = Instant::now();
    while !std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default().contains("futex") {
        if t.elapsed() > Duration::from_secs(1) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The same lost wake-up, staged: the unlocker wakes the first sleeper (the victim), takes the
/// lock back at once on the fast path, and kills the victim before it can run. The second
/// sleeper must still get the lock.
#[test]
fn lock_b1_woken_waiter_killed_before_it_runs_strands_nobody() {
    let _g = guard_for(Duration::from_secs(30));
    for _ in 0..10 {
        let l = Lock::new().unwrap();
        let held = l.lock().unwrap();
        let victim = Process::new({
            let l = l.clone();
            move || drop(l.lock())
        });
        victim.start().unwrap();
        wait_until_asleep_in_futex(victim.pid().unwrap());
        let sleeper = Process::new({
            let l = l.clone();
            move || match l.lock() {
                Ok(_) => {}
                Err(LockError::OwnerDied(d)) => d.into_guard().make_consistent(),
                Err(e) => panic!("{e:?}"),
            }
        });
        sleeper.start().unwrap();
        wait_until_asleep_in_futex(sleeper.pid().unwrap());
        // Futex wake-ups are FIFO: this wakes the victim, which we kill before it re-takes the
        // lock (most iterations), while we hold the lock again.
        drop(held);
        let again = l.try_lock();
        victim.kill().unwrap();
        victim.join().unwrap();
        drop(again);
        let st = sleeper.join_timeout(Duration::from_secs(5));
        if st.as_ref().is_err_and(|e| e.is_timeout()) {
            sleeper.kill().unwrap();
        }
        let st = st.expect("the second sleeper was never woken");
        assert_eq!(st.exitcode(), 0, "{st:?}");
    }
}
