//! Condition, COND-* in `docs/BEHAVIOURS.md`, with real processes.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{Condition, ConditionWaitTimeoutError, Lock, NotifyError, Process, RLock, Value};
use std::time::{Duration, Instant};

/// Starts `n` processes that, under the lock, count themselves in `ready`, wait (up to 20 s)
/// and count themselves in `woken` if notified.
fn waiters(n: usize, cond: &Condition, ready: &Value<u32>, woken: &Value<u32>) -> Vec<Process> {
    (0..n)
        .map(|_| {
            let (cond, ready, woken) = (cond.clone(), ready.clone(), woken.clone());
            let p = Process::new(move || {
                let g = cond.lock().lock().unwrap();
                ready.fetch_add(1).unwrap();
                if cond.wait_timeout(g, Duration::from_secs(20)).is_ok() {
                    woken.fetch_add(1).unwrap();
                }
            });
            p.start().unwrap();
            p
        })
        .collect()
}

/// The guard from a wait that must have timed out (and holds the lock again).
fn timed_out<G: std::fmt::Debug>(r: Result<G, ConditionWaitTimeoutError<G>>) -> G {
    match r {
        Err(ConditionWaitTimeoutError::Timeout(g)) => g,
        other => panic!("expected a timeout: {other:?}"),
    }
}

/// Waits until `v` reaches `n` (checked under the condition's lock).
fn until(cond: &Condition, v: &Value<u32>, n: u32) {
    let t = Instant::now();
    loop {
        {
            let _g = cond.lock().lock().unwrap();
            if v.get().unwrap() >= n {
                return;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(20), "value stuck below {n}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Checks that nothing *more* happens: an absence can only be observed over a while, so this
/// one sleep is not synchronisation (a slow machine makes it weaker, never flaky).
fn settle(v: &Value<u32>, expect: u32) {
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(v.get().unwrap(), expect, "too many waiters woke");
}

#[test]
fn cond_1_each_notify_wakes_exactly_one() {
    let _g = guard_for(Duration::from_secs(40));
    let cond = Condition::new(RLock::new().unwrap()).unwrap();
    let (ready, woken) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
    let ps = waiters(2, &cond, &ready, &woken);
    until(&cond, &ready, 2);
    settle(&woken, 0);
    for expect in 1..=2 {
        let g = cond.lock().lock().unwrap();
        assert_eq!(cond.notify(&g, 1).unwrap(), 1);
        drop(g);
        until(&cond, &woken, expect);
        settle(&woken, expect);
    }
    for p in ps {
        assert!(p.join().unwrap().success());
    }
}

#[test]
fn cond_2_notify_all_wakes_everyone() {
    let _g = guard_for(Duration::from_secs(40));
    let cond = Condition::new(RLock::new().unwrap()).unwrap();
    let (ready, woken) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
    let ps = waiters(4, &cond, &ready, &woken);
    until(&cond, &ready, 4);
    let g = cond.lock().lock().unwrap();
    assert_eq!(cond.notify_all(&g).unwrap(), 4);
    drop(g);
    until(&cond, &woken, 4);
    for p in ps {
        assert!(p.join().unwrap().success());
    }
}

#[test]
fn cond_3_timed_out_waiters_leave_the_counts_consistent() {
    let _g = guard_for(Duration::from_secs(40));
    let cond = Condition::new(RLock::new().unwrap()).unwrap();
    let timed_out = Value::new(0u32).unwrap();
    let ps: Vec<Process> = (0..3)
        .map(|_| {
            let (cond, timed_out) = (cond.clone(), timed_out.clone());
            let p = Process::new(move || {
                let g = cond.lock().lock().unwrap();
                match cond.wait_timeout(g, Duration::from_millis(100)) {
                    Err(ConditionWaitTimeoutError::Timeout(_g)) => drop(timed_out.fetch_add(1).unwrap()),
                    other => panic!("expected a timeout: {other:?}"),
                }
            });
            p.start().unwrap();
            p
        })
        .collect();
    for p in ps {
        assert!(p.join().unwrap().success());
    }
    assert_eq!(timed_out.get().unwrap(), 3);
    // A new round is woken by notify_all, and only the new waiters count.
    let (ready, woken) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
    let ps = waiters(3, &cond, &ready, &woken);
    until(&cond, &ready, 3);
    let g = cond.lock().lock().unwrap();
    assert_eq!(cond.notify_all(&g).unwrap(), 3);
    drop(g);
    until(&cond, &woken, 3);
    for p in ps {
        assert!(p.join().unwrap().success());
    }
}

#[test]
fn cond_4_notify_n() {
    let _g = guard_for(Duration::from_secs(40));
    let cond = Condition::new(RLock::new().unwrap()).unwrap();
    let (ready, woken) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
    let ps = waiters(6, &cond, &ready, &woken);
    until(&cond, &ready, 6);
    for (n, total) in [(2, 2), (4, 6)] {
        let g = cond.lock().lock().unwrap();
        assert_eq!(cond.notify(&g, n).unwrap(), n);
        drop(g);
        until(&cond, &woken, total);
        settle(&woken, total);
    }
    let g = cond.lock().lock().unwrap();
    assert_eq!(cond.notify(&g, 3).unwrap(), 0, "nobody is left to wake");
    drop(g);
    settle(&woken, 6);
    for p in ps {
        assert!(p.join().unwrap().success());
    }
}

#[test]
fn cond_5_wait_results() {
    let _g = guard_for(Duration::from_secs(40));
    let cond = Condition::new(RLock::new().unwrap()).unwrap();
    let g = cond.lock().lock().unwrap();
    let g = timed_out(cond.wait_timeout(g, Duration::ZERO));
    let t = Instant::now();
    let g = timed_out(cond.wait_timeout(g, Duration::from_millis(100)));
    assert!(t.elapsed() >= Duration::from_millis(90));
    let p = Process::new({
        let cond = cond.clone();
        move || {
            std::thread::sleep(Duration::from_millis(50));
            let g = cond.lock().lock().unwrap();
            cond.notify(&g, 1).unwrap();
        }
    });
    p.start().unwrap();
    let g = cond.wait_timeout(g, Duration::from_secs(60)).expect("notified");
    drop(g);
    assert!(p.join().unwrap().success());
}

#[test]
fn cond_6_wait_for_predicate_across_processes() {
    let _g = guard_for(Duration::from_secs(40));
    let cond = Condition::new(RLock::new().unwrap()).unwrap();
    let state = Value::new(0u32).unwrap();
    let child = Process::new({
        let (cond, state) = (cond.clone(), state.clone());
        move || {
            let g = cond.lock().lock().unwrap();
            match cond.wait_for_timeout(g, || state.get().unwrap() == 4, Duration::from_secs(20)) {
                Ok(_g) => 0,
                Err(_) => 1,
            }
        }
    });
    child.start().unwrap();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(20));
        let g = cond.lock().lock().unwrap();
        state.fetch_add(1).unwrap();
        cond.notify(&g, 1).unwrap();
    }
    assert_eq!(child.join().unwrap().code(), Some(0));
    // Timeout: the predicate never becomes true.
    let g = cond.lock().lock().unwrap();
    let t = Instant::now();
    let g = timed_out(cond.wait_for_timeout(g, || state.get().unwrap() == 99, Duration::from_millis(100)));
    assert!(t.elapsed() >= Duration::from_millis(90));
    // Already true: at once.
    let t = Instant::now();
    let _g = cond.wait_for_timeout(g, || true, Duration::from_secs(10)).unwrap();
    assert!(t.elapsed() < Duration::from_millis(50));
}

#[test]
fn cond_7_wrong_lock_is_refused() {
    let cond = Condition::new(Lock::new().unwrap()).unwrap();
    let other = Lock::new().unwrap();
    let g = other.lock().unwrap();
    assert_eq!(cond.notify(&g, 1), Err(NotifyError::NotOwner));
    assert!(matches!(cond.wait_timeout(g, Duration::ZERO), Err(ConditionWaitTimeoutError::NotOwner(_))));
}

#[test]
fn cond_8_rlock_depth_is_released_and_restored() {
    let _g = guard_for(Duration::from_secs(40));
    let cond = Condition::new(RLock::new().unwrap()).unwrap();
    let outer = cond.lock().lock().unwrap();
    let inner = cond.lock().lock().unwrap();
    // A child can take the lock only if *both* levels were released during the wait.
    let p = Process::new({
        let cond = cond.clone();
        move || {
            let g = cond.lock().lock_timeout(Duration::from_secs(10)).expect("lock still held");
            cond.notify(&g, 1).unwrap();
        }
    });
    p.start().unwrap();
    let inner = cond.wait_timeout(inner, Duration::from_secs(20)).expect("notified");
    assert!(p.join().unwrap().success());
    // Depth 2 again: a child cannot take it until both guards are gone.
    drop(inner);
    let p = Process::new({
        let cond = cond.clone();
        move || if cond.lock().try_lock().is_err_and(|e| e.is_would_block()) { 0 } else { 1 }
    });
    p.start().unwrap();
    assert_eq!(p.join().unwrap().code(), Some(0));
    drop(outer);
}

/// Waiting with a guard that owns its lock handle (one given back inside an error) does not
/// leak that handle: when every handle is dropped, a named lock's name goes, as it should.
/// Before, the wait forgot the guard whole, handle included, and the name stayed for good.
#[test]
fn cond_wait_with_an_owned_guard_leaks_no_handle() {
    let name = format!("mp-test-cond-owned-{}", std::process::id());
    {
        let cond = Condition::new(Lock::create(&name).unwrap()).unwrap();
        let g = cond.lock().lock().unwrap();
        let owned = timed_out(cond.wait_timeout(g, Duration::from_millis(10)));
        let owned = timed_out(cond.wait_timeout(owned, Duration::from_millis(10)));
        drop(owned);
    }
    assert!(matches!(Lock::open(&name), Err(multiproc::ShmError::NotFound { .. })), "the name outlived every handle");
}
