//! A pool whose worker starts fail for a while (`fork`'s `EAGAIN` at the process limit, no
//! memory): the work waiting then fails with the start error, and the empty slot is tried
//! again until a start succeeds, so the pool heals instead of queueing work for ever on no
//! worker (Python's pool keeps repopulating too).
//!
//! A test binary of its own: the hook that refuses starts is process-wide.
#![cfg(feature = "serde")] // pool tasks carry serde values
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{PoolError, PoolOptions};
use std::time::Duration;

fn plus_one(x: u64) -> u64 {
    x + 1
}

/// Input 0 crashes its worker; the others come back plus one.
fn crash_at_0(x: u64) -> u64 {
    if x == 0 {
        std::process::abort();
    }
    x + 1
}

#[test]
fn pool_b1_a_pool_whose_worker_starts_fail_heals_once_they_succeed() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    // The crashed worker's replacement, and the next two tries after it, fail.
    multiproc::fuzz::refuse_pool_starts(3);
    let crash = pool.apply_async(crash_at_0, 0).unwrap();
    assert!(matches!(crash.get_timeout(Duration::from_secs(30)), Err(multiproc::PoolTimeoutError::WorkerDied { .. })));
    // Work submitted while the slot is empty runs once a start succeeds (or, if it was queued
    // when a start failed, fails with that start's error): it never waits for ever.
    let mut healed = false;
    for _ in 0..10 {
        match pool.apply_async(plus_one, 1).unwrap().get_timeout(Duration::from_secs(30)) {
            Ok(v) => {
                assert_eq!(v, 2);
                healed = true;
                break;
            }
            Err(multiproc::PoolTimeoutError::Spawn(_)) => continue,
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    assert!(healed, "the pool never ran a task again");
    assert_eq!(pool.worker_pids().len(), 1);
    pool.close();
    pool.join();
}

#[test]
fn pool_b5_outcomes_end_when_the_crashed_worker_cannot_be_replaced_at_once() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    multiproc::fuzz::refuse_pool_starts(2);
    // The first chunk crashes at input 0 and is re-run item by item; its replacement's first
    // starts fail. Every input still gets an outcome and the iteration ends.
    let opts = PoolOptions::new().chunksize(4);
    let outcomes: Vec<_> = pool.imap_outcomes_with(crash_at_0, 0..8u64, opts).unwrap().collect();
    assert_eq!(outcomes.iter().map(|o| o.index).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
    for o in &outcomes {
        match (&o.result, o.index) {
            (Err(PoolError::WorkerDied { .. }), 0) => {}
            (Ok(v), i) => assert_eq!(*v, i as u64 + 1),
            (Err(PoolError::Spawn(_)), _) => {}
            (r, i) => panic!("input {i}: {r:?}"),
        }
    }
    pool.close();
    pool.join();
}

#[test]
fn pool_b1_work_sent_to_a_pool_with_no_worker_that_cannot_start_one_fails_instead_of_waiting() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    // Every start fails until told otherwise: the crashed worker is never replaced.
    multiproc::fuzz::refuse_pool_starts(usize::MAX);
    let crash = pool.apply_async(crash_at_0, 0).unwrap();
    assert!(matches!(crash.get_timeout(Duration::from_secs(30)), Err(multiproc::PoolTimeoutError::WorkerDied { .. })));
    // No worker, and none can be started: the work fails with the start's error (before: it
    // waited for ever, a `get` without a timeout hung).
    for _ in 0..3 {
        let r = pool.apply_async(plus_one, 1).unwrap().get_timeout(Duration::from_secs(20));
        assert!(matches!(r, Err(multiproc::PoolTimeoutError::Spawn(_))), "{r:?}");
    }
    assert!(matches!(pool.map(plus_one, 0..10u64), Err(PoolError::Spawn(_))));
    // Starts work again: the pool heals.
    multiproc::fuzz::refuse_pool_starts(0);
    let t = std::time::Instant::now();
    loop {
        match pool.apply_async(plus_one, 1).unwrap().get_timeout(Duration::from_secs(20)) {
            Ok(v) => {
                assert_eq!(v, 2);
                break;
            }
            Err(multiproc::PoolTimeoutError::Spawn(_)) if t.elapsed() < Duration::from_secs(20) => {}
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    assert_eq!(pool.map(plus_one, 0..10u64).unwrap(), (1..11).collect::<Vec<u64>>());
    pool.close();
    pool.join();
}
