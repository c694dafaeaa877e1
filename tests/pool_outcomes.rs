//! POOL-B5 in `docs/BEHAVIOURS.md`: one outcome per input that never stops the run, naming the
//! input that crashed even inside a chunk of several.
#![cfg(feature = "serde")] // typed messages (serde + postcard)
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{PoolError, PoolOptions, TaskOutcome};
use std::time::Duration;

/// A fuzz target: crashes on multiples of 7 (`abort`, SIGABRT: a raised SIGSEGV is no crash
/// in a Rust process, whose stack-overflow handler takes the first one), panics on multiples
/// of 11, hangs on 50, returns its input doubled otherwise.
fn target(x: u32) -> u32 {
    if x == 50 {
        std::thread::sleep(Duration::from_secs(3600));
    }
    if x % 7 == 0 && x > 0 {
        std::process::abort();
    }
    assert!(x % 11 != 0 || x == 0, "eleven divides {x}");
    x * 2
}

/// Checks one input's outcome against what `target` does with it.
fn check(o: &TaskOutcome<u32>) {
    let x = o.index as u32;
    match &o.result {
        Ok(v) => assert_eq!(*v, x * 2, "input {x}"),
        Err(PoolError::WorkerDied { signal, index, len, .. }) => {
            assert!(x % 7 == 0 && x > 0, "input {x} did not crash");
            assert_eq!((*signal, *index, *len), (Some(libc::SIGABRT), o.index, 1), "input {x}");
        }
        Err(PoolError::Remote(e)) => assert!(x % 11 == 0 && e.message.contains("eleven"), "input {x}: {e}"),
        Err(PoolError::TimeLimit { index, len, .. }) => assert_eq!((x, *index, *len), (50, 50, 1)),
        Err(e) => panic!("input {x}: {e}"),
    }
}

#[test]
fn pool_b5_every_input_gets_its_own_outcome_in_order() {
    let _g = guard_for(Duration::from_secs(120));
    let pool = common::pool_new(2).unwrap();
    for chunksize in [1, 4, 9] {
        let opts = PoolOptions::new().chunksize(chunksize).time_limit(Duration::from_millis(400));
        let outcomes: Vec<_> = pool.imap_outcomes_with(target, 0..60u32, opts).unwrap().collect();
        assert_eq!(outcomes.len(), 60, "chunksize {chunksize}");
        for (i, o) in outcomes.iter().enumerate() {
            assert_eq!(o.index, i, "in order");
            check(o);
        }
        let crashes = outcomes.iter().filter(|o| matches!(o.result, Err(PoolError::WorkerDied { .. }))).count();
        assert_eq!(crashes, 8, "7, 14, … 56: each named on its own (chunksize {chunksize})");
    }
    // The pool healed after 24 crashes and 3 time-outs.
    assert_eq!(pool.map(target, [1, 2, 3]).unwrap(), [2, 4, 6]);
}

#[test]
fn pool_b5_unordered_outcomes_cover_every_input_once() {
    let _g = guard_for(Duration::from_secs(120));
    let pool = common::pool_new(2).unwrap();
    let opts = PoolOptions::new().chunksize(5).time_limit(Duration::from_millis(400));
    let mut seen: Vec<usize> =
        pool.imap_unordered_outcomes_with(target, 0..60u32, opts).unwrap().inspect(check).map(|o| o.index).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..60).collect::<Vec<_>>());
}

#[test]
fn pool_b5_a_terminated_pool_settles_every_input() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    let mut it = pool.imap_outcomes(target, [1, 50, 2, 3]).unwrap();
    assert_eq!(it.next().unwrap().result.unwrap(), 2);
    pool.terminate();
    let rest: Vec<_> = it.collect();
    assert_eq!(rest.iter().map(|o| o.index).collect::<Vec<_>>(), [1, 2, 3], "one outcome each, still");
    assert!(rest.iter().all(|o| matches!(o.result, Err(PoolError::Terminated))));
}

/// Exits the worker with code 0 in the middle of input 3, returns the others doubled.
fn exits_on_three(x: u32) -> u32 {
    if x == 3 {
        // SAFETY: ends the process at once, as a target calling `exit` in the middle of an
        // input would (without running this test binary's exit handlers in the worker).
        unsafe { libc::_exit(0) };
    }
    x * 2
}

/// A target that exits (code 0, no signal) in the middle of an input: that input's outcome
/// is `WorkerDied` with the code, the others get their values, and the pool goes on.
#[test]
fn pool_b5_an_input_whose_target_exits_cleanly_is_a_worker_death_with_its_code() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    let outcomes: Vec<_> = pool.imap_outcomes_with(exits_on_three, 0..6u32, PoolOptions::new()).unwrap().collect();
    assert_eq!(outcomes.len(), 6);
    for o in &outcomes {
        match (&o.result, o.index) {
            (Err(PoolError::WorkerDied { signal: None, code: Some(0), index: 3, len: 1, .. }), 3) => {}
            (Ok(v), i) if i != 3 => assert_eq!(*v, i as u32 * 2),
            (r, i) => panic!("input {i}: {r:?}"),
        }
    }
    assert_eq!(pool.map(exits_on_three, [4, 5]).unwrap(), [8, 10]);
}

/// Closes every descriptor from 3 up on input 2 (as a target's library code might), goes on
/// a while, then returns its input doubled, as for every other input.
fn closes_its_descriptors_on_two(x: u32) -> u32 {
    if x == 2 {
        // SAFETY: a raw system call with plain integer arguments; closing descriptors the
        // worker's own objects hold is the misbehaviour under test.
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
        std::thread::sleep(Duration::from_millis(300));
    }
    x * 2
}

/// A target that closes the worker's descriptors and goes on running: its link hangs up at
/// once (the manager stops reading it until the worker exits), and the worker can no longer
/// be sent work. The worker finishes the input, finds its task pipe unusable and exits; its
/// exit delivers the result it wrote. Every input gets its value, none hangs, and the pool
/// goes on with a new worker. (A review feared the input would stay unresolved for ever.)
#[test]
fn pool_b5_a_target_that_closes_the_workers_descriptors_does_not_hang_the_run() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    let before = pool.worker_pids();
    let outcomes: Vec<_> =
        pool.imap_outcomes_with(closes_its_descriptors_on_two, 0..5u32, PoolOptions::new()).unwrap().collect();
    assert_eq!(outcomes.len(), 5);
    for o in &outcomes {
        assert_eq!(o.result.as_ref().ok(), Some(&(o.index as u32 * 2)), "input {}: {:?}", o.index, o.result);
    }
    assert_eq!(pool.map(closes_its_descriptors_on_two, [4, 5]).unwrap(), [8, 10]);
    assert_ne!(pool.worker_pids(), before, "the worker whose descriptors were closed was replaced");
}

/// `n` zero bytes as a string (its encoding is one length and one copy, quick even unoptimised).
fn zeros(n: usize) -> String {
    String::from_utf8(vec![0; n]).unwrap_or_default()
}

/// A result too large for one pool message (1 GiB) is that input's error, saying so, and
/// the worker goes on: before, its send failed and the worker exited, which read as a death
/// with exit code 0.
#[test]
fn pool_b5_a_result_too_large_for_a_message_is_its_inputs_error_not_a_death() {
    let _g = guard_for(Duration::from_secs(120));
    let pool = common::pool_new(1).unwrap();
    let outcomes: Vec<_> = pool.imap_outcomes_with(zeros, [3, (1 << 30) + 1, 5], PoolOptions::new()).unwrap().collect();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0].result.as_ref().map(String::len).ok(), Some(3));
    match &outcomes[1].result {
        Err(PoolError::Remote(e)) => {
            assert_eq!(e.kind, "result too large", "{e:?}");
            assert!(e.message.contains("are 10737418") && e.message.contains("at most"), "names the sizes: {e}");
        }
        other => panic!("expected the result's own error, got {other:?}"),
    }
    assert_eq!(outcomes[2].result.as_ref().map(String::len).ok(), Some(5));
    assert_eq!(pool.map(zeros, [1, 2]).unwrap(), ["\0", "\0\0"]);
}
