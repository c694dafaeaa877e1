//! A worker whose result ring is corrupt while it lives (POOL-B7 in `docs/BEHAVIOURS.md`): a
//! task writing through a wild pointer can reach the shared memory its worker reports through.
//! The pool kills that worker, fails the chunk it was running with `WorkerDied`, and heals;
//! it neither hangs on the ring it cannot read nor spins on it.
#![cfg(feature = "serde")] // pool tasks carry serde values
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{Pool, PoolTimeoutError, StartMethod};
use std::time::Duration;

/// Corrupts this worker's result ring when `x` is 0, then waits (the worker lives on, so only
/// the corruption can end the task); other inputs come back doubled.
fn scribble_or_double(x: u32) -> u32 {
    if x == 0 {
        multiproc::fuzz::corrupt_pool_results();
        std::thread::sleep(Duration::from_secs(3600));
    }
    x * 2
}

#[test]
fn pool_b7_a_live_worker_with_a_corrupt_result_ring_is_killed_and_replaced() {
    let _g = guard_for(Duration::from_secs(120));
    for method in [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn] {
        let pool = Pool::builder().processes(2).start_method(method).build().unwrap();
        let first = pool.worker_pids();
        // The corrupting task, beside good ones still served by the other worker.
        let bad = pool.apply_async(scribble_or_double, 0).unwrap();
        assert_eq!(pool.map(scribble_or_double, 1..=20u32).unwrap(), (1..=20).map(|x| x * 2).collect::<Vec<_>>());
        match bad.get_timeout(Duration::from_secs(30)) {
            Err(PoolTimeoutError::WorkerDied { signal, index, len, .. }) => {
                assert_eq!(signal, Some(libc::SIGKILL), "{method:?}: killed by the pool");
                assert_eq!((index, len), (0, 1), "{method:?}: the failure names the input");
            }
            other => panic!("{method:?}: expected WorkerDied, got {other:?}"),
        }
        // Healed: two workers again, one of them new, and both serve.
        let now = pool.worker_pids();
        assert_eq!(now.len(), 2, "{method:?}");
        assert!(now.iter().any(|p| !first.contains(p)), "{method:?}: no replacement started");
        assert_eq!(pool.map(scribble_or_double, 1..=100u32).unwrap().iter().sum::<u32>(), 10100);
    }
}
