//! POOL-B10 in `docs/BEHAVIOURS.md`: with `PoolBuilder::reset_signals`, what a task does to
//! its worker's signal state (an armed timer, a disposition, the mask) ends with its chunk
//! and does not decide how the next input on that worker ends; a signal it left blocked and
//! pending is its own chunk's death.
#![cfg(feature = "serde")] // typed messages (serde + postcard)
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{Pool, PoolError};
use std::mem::MaybeUninit;
use std::ptr;
use std::time::Duration;

/// Arms a 100 ms `ITIMER_REAL` (what `alarm` uses) and returns before it fires.
fn arms_timer(x: u32) -> u32 {
    let t = libc::itimerval {
        it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 },
        it_value: libc::timeval { tv_sec: 0, tv_usec: 100_000 },
    };
    // SAFETY: `t` is a valid timer value; no old value is read back.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &t, ptr::null_mut()) };
    x
}

/// An innocent input that runs long enough for a timer left armed to fire in it.
fn naps(x: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(400));
    x
}

/// Ignores SIGTERM and blocks SIGUSR2.
fn ignores_and_blocks(x: u32) -> u32 {
    // SAFETY: plain signal-state calls on this worker's own (single) thread.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), ptr::null_mut());
    }
    x
}

/// Whether SIGTERM has its default disposition and SIGUSR2 is not blocked.
fn signals_as_started(_: u32) -> bool {
    // SAFETY: queries only, into zeroed out-parameters.
    unsafe {
        let mut act = MaybeUninit::<libc::sigaction>::zeroed();
        libc::sigaction(libc::SIGTERM, ptr::null(), act.as_mut_ptr());
        let mut mask = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), mask.as_mut_ptr());
        act.assume_init().sa_sigaction == libc::SIG_DFL && libc::sigismember(mask.as_ptr(), libc::SIGUSR2) == 0
    }
}

/// Blocks SIGUSR1, raises it (left pending) and returns.
fn leaves_a_signal_pending(x: u32) -> u32 {
    // SAFETY: plain signal-state calls on this worker's own (single) thread.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), ptr::null_mut());
        libc::raise(libc::SIGUSR1);
    }
    x
}

extern "C" fn ignore_tick(_: libc::c_int) {}

/// Handles SIGALRM itself and arms a repeating 20 µs `ITIMER_REAL`: a well-behaved target
/// with its own timer, which ticks on after the task returns.
fn ticks_with_a_handler(x: u32) -> u32 {
    let t = libc::itimerval {
        it_interval: libc::timeval { tv_sec: 0, tv_usec: 20 },
        it_value: libc::timeval { tv_sec: 0, tv_usec: 20 },
    };
    // SAFETY: a handler that does nothing is async-signal-safe; `t` is a valid timer value.
    unsafe {
        libc::signal(libc::SIGALRM, ignore_tick as extern "C" fn(libc::c_int) as libc::sighandler_t);
        libc::setitimer(libc::ITIMER_REAL, &t, ptr::null_mut());
    }
    x
}

/// An initializer that leaves a one-shot `alarm` behind.
fn init_arms_alarm(_: ()) {
    // SAFETY: `alarm` has no memory-safety preconditions.
    unsafe { libc::alarm(1) };
}

fn slow(x: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(1500));
    x
}

fn pool(reset: bool) -> Pool {
    common::pool_builder().processes(1).reset_signals(reset).build().unwrap()
}

/// Without the option (Python's behaviour) the timer one task armed ends the next one: the
/// failure this option is for, and what makes the test below meaningful.
#[test]
fn pool_b10_without_reset_a_timer_armed_by_one_task_kills_the_next() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = pool(false);
    assert_eq!(pool.apply(arms_timer, 1).unwrap(), 1);
    match pool.apply(naps, 2) {
        Err(PoolError::WorkerDied { signal: Some(libc::SIGALRM), .. }) => {}
        other => panic!("expected the innocent task's worker to die of SIGALRM, got {other:?}"),
    }
}

#[test]
fn pool_b10_with_reset_an_armed_timer_ends_with_its_task() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = pool(true);
    assert_eq!(pool.apply(arms_timer, 1).unwrap(), 1);
    assert_eq!(pool.apply(naps, 2).unwrap(), 2);
}

/// A task with its own handler for its own repeating timer: the timer is stopped before the
/// handler goes (a tick in between would meet the default action and end the worker, with
/// the task's result lost), so the task succeeds and the next one runs in peace.
#[test]
fn pool_b10_with_reset_a_task_timer_with_its_handler_ends_cleanly() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = pool(true);
    for round in 0..20 {
        assert_eq!(pool.apply(ticks_with_a_handler, round).unwrap(), round, "round {round}");
        assert_eq!(pool.apply(naps_briefly, round).unwrap(), round);
    }
}

fn naps_briefly(x: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(5));
    x
}

#[test]
fn pool_b10_with_reset_dispositions_and_the_mask_are_put_back() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = pool(true);
    assert!(pool.apply(signals_as_started, 0).unwrap());
    assert_eq!(pool.apply(ignores_and_blocks, 1).unwrap(), 1);
    assert!(pool.apply(signals_as_started, 0).unwrap(), "the same worker, as it started");
    // And without the option the change stays (the same probe sees it).
    let plain = self::pool(false);
    assert_eq!(plain.apply(ignores_and_blocks, 1).unwrap(), 1);
    assert!(!plain.apply(signals_as_started, 0).unwrap());
}

/// A signal the task blocked and left pending is delivered when the mask is put back, while
/// the chunk is still its worker's: the death is that input's, and the next input runs.
#[test]
fn pool_b10_a_pending_signal_a_task_left_is_its_own_death() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = pool(true);
    match pool.apply(leaves_a_signal_pending, 7) {
        Err(PoolError::WorkerDied { signal: Some(libc::SIGUSR1), .. }) => {}
        other => panic!("expected this task's worker to die of SIGUSR1, got {other:?}"),
    }
    assert_eq!(pool.apply(naps, 3).unwrap(), 3);
}

/// A one-shot `alarm` the initializer left is stopped with the first chunk's reset too (it
/// would otherwise fire in whichever task runs a second later); only a repeating timer the
/// initializer started (a profiler's) is left running.
#[test]
fn pool_b10_with_reset_an_alarm_left_by_the_initializer_is_stopped() {
    let _g = guard_for(Duration::from_secs(60));
    let pool =
        common::pool_builder().processes(1).initializer_fn(init_arms_alarm, ()).reset_signals(true).build().unwrap();
    assert_eq!(pool.apply(naps_briefly, 1).unwrap(), 1);
    assert_eq!(pool.apply(slow, 2).unwrap(), 2, "the initializer's alarm fired in a later task");
}
