//! Barrier, BAR-* in `docs/BEHAVIOURS.md`, with real processes.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{Barrier, BarrierError, BarrierTimeoutError, Process, RawValue};
use std::time::{Duration, Instant};

/// Starts `n` processes running `f(i)` and returns them.
fn spawn_n(n: usize, f: impl Fn(usize) -> i32 + Clone + Send + 'static) -> Vec<Process> {
    (0..n)
        .map(|i| {
            let f = f.clone();
            let p = Process::new(move || f(i));
            p.start().unwrap();
            p
        })
        .collect()
}

fn codes(ps: Vec<Process>) -> Vec<i32> {
    ps.into_iter().map(|p| p.join().unwrap().exitcode()).collect()
}

#[test]
fn bar_1_new_barrier_state() {
    let b = Barrier::new(5).unwrap();
    assert_eq!(b.parties(), 5);
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.broken());
    assert!(Barrier::new(0).is_err());
    // The arrival count has 31 bits: more parties than that is refused, not wrapped.
    for parties in [1u32 << 31, u32::MAX] {
        match Barrier::new(parties) {
            Err(multiproc::ShmError::InvalidArgument { value, .. }) => assert_eq!(value, u64::from(parties)),
            other => panic!("{parties} parties: {other:?}"),
        }
    }
    assert_eq!(Barrier::new((1 << 31) - 1).unwrap().parties(), (1 << 31) - 1);
}

#[test]
fn bar_2_and_3_lockstep_generations_with_distinct_indices() {
    let _g = guard_for(Duration::from_secs(30));
    let b = Barrier::new(5).unwrap();
    let seen = multiproc::RawArray::<u32>::zeroed(5 * 10).unwrap();
    let ps = spawn_n(4, {
        let (b, seen) = (b.clone(), seen.clone());
        move |_| {
            for g in 0..10 {
                let idx = b.wait().unwrap();
                seen.set(g * 5 + idx as usize, 1).unwrap();
            }
            0
        }
    });
    for g in 0..10 {
        let idx = b.wait().unwrap();
        seen.set(g * 5 + idx as usize, 1).unwrap();
    }
    assert_eq!(codes(ps), vec![0; 4]);
    // Every generation handed out each index 0..5 exactly once.
    assert_eq!(seen.to_vec(), vec![1; 50]);
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.broken());
}

static ACTION_RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn count_action() {
    // Runs in whichever process arrives last: count in shared memory through a static handle.
    COUNTER.with(|c| {
        if let Some(c) = c.get() {
            c.set(c.get() + 1);
        }
    });
    ACTION_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

thread_local! {
    static COUNTER: std::cell::OnceCell<RawValue<u32>> = const { std::cell::OnceCell::new() };
}

#[test]
fn bar_4_action_runs_once_per_generation_before_release() {
    let _g = guard_for(Duration::from_secs(30));
    let runs = RawValue::new(0u32).unwrap();
    COUNTER.with(|c| {
        let _ = c.set(runs.clone());
    });
    let b = Barrier::new(3).unwrap().with_action(count_action);
    let ps = spawn_n(2, {
        let (b, runs) = (b.clone(), runs.clone());
        move |_| {
            // The forked child inherits this thread's COUNTER (fork copies the calling thread).
            b.wait().unwrap();
            if runs.get() == 1 {
                0
            } else {
                1
            }
        }
    });
    b.wait().unwrap();
    assert_eq!(runs.get(), 1);
    assert_eq!(codes(ps), vec![0, 0]);
}

#[test]
fn bar_5_abort_breaks_waiters_and_later_arrivals() {
    let _g = guard_for(Duration::from_secs(30));
    let b = Barrier::new(5).unwrap();
    let ps = spawn_n(3, {
        let b = b.clone();
        move |_| match b.wait() {
            Err(BarrierError::Broken) => 0,
            _ => 1,
        }
    });
    while b.n_waiting() < 3 {
        std::thread::sleep(Duration::from_millis(1));
    }
    b.abort();
    assert!(b.broken());
    assert_eq!(b.wait(), Err(BarrierError::Broken));
    assert_eq!(codes(ps), vec![0, 0, 0]);
}

#[test]
fn bar_6_and_7_reset_breaks_waiters_then_all_pass() {
    let _g = guard_for(Duration::from_secs(30));
    let b = Barrier::new(3).unwrap();
    let ps = spawn_n(2, {
        let b = b.clone();
        move |_| match b.wait() {
            Err(BarrierError::Broken) => 0,
            _ => 1,
        }
    });
    while b.n_waiting() < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    b.reset();
    assert_eq!(codes(ps), vec![0, 0]);
    assert!(!b.broken());
    assert_eq!(b.n_waiting(), 0);
    // BAR-7: abort, reset, and everyone passes.
    b.abort();
    b.reset();
    let ps = spawn_n(2, {
        let b = b.clone();
        move |_| if b.wait().is_ok() { 0 } else { 1 }
    });
    assert!(b.wait().is_ok());
    assert_eq!(codes(ps), vec![0, 0]);
}

#[test]
fn bar_8_timeout_breaks_for_everyone() {
    let _g = guard_for(Duration::from_secs(30));
    let b = Barrier::new(3).unwrap();
    let ps = spawn_n(1, {
        let b = b.clone();
        move |_| match b.wait_timeout(Duration::from_secs(20)) {
            Err(BarrierTimeoutError::Broken) => 0,
            _ => 1,
        }
    });
    let t = Instant::now();
    assert_eq!(b.wait_timeout(Duration::from_millis(300)), Err(BarrierTimeoutError::Timeout));
    assert!(t.elapsed() >= Duration::from_millis(290));
    assert_eq!(codes(ps), vec![0]);
    assert_eq!(b.wait(), Err(BarrierError::Broken));
}

#[test]
fn bar_9_single_party_passes_at_once() {
    let b = Barrier::new(1).unwrap();
    for _ in 0..3 {
        assert_eq!(b.wait(), Ok(0));
    }
}

#[test]
fn bar_10_many_generations_keep_lockstep() {
    let _g = guard_for(Duration::from_secs(30));
    let b = Barrier::new(3).unwrap();
    // progress[p] = generations party p has passed. After passing barrier i, every party has
    // reached barrier i (so passed i - 1... i.e. progress ≥ i) and none can be past i + 1.
    let progress = multiproc::RawArray::<u32>::zeroed(3).unwrap();
    let ps = spawn_n(3, {
        let (b, progress) = (b.clone(), progress.clone());
        move |me| {
            for i in 0..500u32 {
                b.wait().unwrap();
                progress.set(me, i + 1).unwrap();
                for q in 0..3 {
                    let p = progress.get(q).unwrap();
                    if p < i || p > i + 1 {
                        return 1;
                    }
                }
            }
            0
        }
    });
    assert_eq!(codes(ps), vec![0, 0, 0]);
    assert_eq!(progress.to_vec(), vec![500, 500, 500]);
}

#[test]
fn bar_11_lone_timed_wait_breaks_until_reset() {
    let b = Barrier::new(2).unwrap();
    let t = Instant::now();
    assert_eq!(b.wait_timeout(Duration::from_millis(200)), Err(BarrierTimeoutError::Timeout));
    assert!(t.elapsed() >= Duration::from_millis(190));
    assert!(b.broken());
    assert_eq!(b.wait(), Err(BarrierError::Broken));
    b.reset();
    assert!(!b.broken());
    assert_eq!(b.n_waiting(), 0);
}

#[test]
fn bar_b1_dead_party_breaks_the_barrier_promptly() {
    let _g = guard_for(Duration::from_secs(30));
    let mut rng = common::Rng::new("bar_b1");
    let b = Barrier::new(3).unwrap();
    let victim = Process::new({
        let b = b.clone();
        move || b.wait().map(|_| ())
    });
    victim.start().unwrap();
    while b.n_waiting() < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(rng.range(0, 30)));
    victim.kill().unwrap();
    victim.join().unwrap();
    let t = Instant::now();
    assert_eq!(b.wait_timeout(Duration::from_secs(20)), Err(BarrierTimeoutError::PartyDied));
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    assert!(b.broken());
}

/// A party killed and **not reaped** breaks the barrier as promptly as a reaped one: the
/// process that should reap it is the one blocked in `wait` (BAR-B1 with a zombie).
#[test]
fn bar_b1_dead_unreaped_party_breaks_the_barrier_promptly() {
    let _g = common::guard();
    for _ in 0..5 {
        let b = Barrier::new(3).unwrap();
        let victim = Process::new({
            let b = b.clone();
            move || b.wait().map(|_| ())
        });
        victim.start().unwrap();
        while b.n_waiting() < 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        victim.kill().unwrap(); // and not joined until after our wait
        let t = Instant::now();
        assert_eq!(b.wait_timeout(Duration::from_secs(5)), Err(BarrierTimeoutError::PartyDied));
        assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
        victim.join().unwrap();
    }
}

/// A party that dies in the instant after it is counted as arrived (staged exactly: the child
/// runs `wait`'s real path and exits right after its arrival) is on record, so the barrier
/// breaks with `PartyDied`, not after the timeout.
#[test]
fn bar_b1_party_dying_right_after_its_arrival_is_seen() {
    let _g = common::guard();
    let b = Barrier::new(3).unwrap();
    let child = common::fork_child({
        let b = b.clone();
        move || b.debug_wait_then_die_after_arrival()
    });
    let t = Instant::now();
    while b.n_waiting() < 1 {
        assert!(t.elapsed() < Duration::from_secs(10), "the child never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    let t = Instant::now();
    assert_eq!(b.wait_timeout(Duration::from_secs(5)), Err(BarrierTimeoutError::PartyDied));
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    assert_eq!(common::wait_child(child), common::Ended::Code(0));
}

fn die_in_the_action() {
    // SAFETY: `_exit` ends this (child) process at once, as a kill inside the action would.
    unsafe { libc::_exit(3) }
}

/// The last party to arrive dies inside the barrier's action (the releasing party): the
/// parties already waiting see it dead and break the barrier, with no timeout to wait for.
#[test]
fn bar_b1_the_last_party_dying_inside_the_action_breaks_the_barrier() {
    let _g = common::guard();
    let b = Barrier::new(2).unwrap();
    let child = common::fork_child({
        let b = b.clone().with_action(die_in_the_action);
        move || {
            // Arrive last, so that this party runs the action.
            while b.n_waiting() < 1 {
                std::thread::sleep(Duration::from_millis(1));
            }
            b.wait().map_or(1, |_| 2)
        }
    });
    // No timeout: only the liveness check can end this wait (the watchdog turns a hang into
    // a failure).
    assert_eq!(b.wait(), Err(BarrierError::PartyDied));
    assert_eq!(common::wait_child(child), common::Ended::Code(3));
    assert_eq!(b.wait(), Err(BarrierError::Broken), "broken until reset");
}

/// `Duration::MAX` means no deadline (not an immediate time-out).
#[test]
fn bar_max_timeout_waits_for_the_others() {
    let _g = common::guard();
    let b = Barrier::new(2).unwrap();
    let other = Process::new({
        let b = b.clone();
        move || {
            std::thread::sleep(Duration::from_millis(50));
            b.wait().map(|_| ())
        }
    });
    other.start().unwrap();
    let r = b.wait_timeout(Duration::MAX);
    assert!(r.is_ok(), "{r:?}");
    assert!(other.join().unwrap().success());
}

/// The deprecated handle-wide timeout of 0.1 (`with_timeout`) still applies to `wait`: running
/// out of it breaks the barrier, reported as `Broken` since `wait` has no timeout variant.
#[test]
#[allow(deprecated)]
fn bar_8_deprecated_handle_timeout_still_breaks_the_barrier() {
    let _g = guard_for(Duration::from_secs(30));
    let b = Barrier::new(2).unwrap().with_timeout(Duration::from_millis(100));
    let t = Instant::now();
    assert_eq!(b.wait(), Err(BarrierError::Broken));
    assert!(t.elapsed() >= Duration::from_millis(90));
    assert!(b.broken());
}

/// A party that arrives while the last party of the generation dies inside the action (here
/// the only party) is not left waiting for ever: it sees that party dead and the barrier
/// broken. Before, arrivals waiting for an action to end checked no liveness.
#[test]
fn bar_b1_an_arrival_during_an_action_whose_party_died_is_not_left_waiting() {
    let _g = common::guard();
    let b = Barrier::new(1).unwrap();
    let child = common::fork_child({
        let b = b.clone().with_action(die_in_the_action);
        move || b.wait().map_or(1, |_| 2)
    });
    assert_eq!(common::wait_child(child), common::Ended::Code(3));
    // The generation stays "releasing" for good: only the liveness check can end this wait
    // (the watchdog turns a hang into a failure).
    assert!(matches!(b.wait(), Err(BarrierError::Broken | BarrierError::PartyDied)));
    assert!(b.broken());
}

/// Set while `slow_action` runs (the test's threads share this process).
static IN_ACTION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn slow_action() {
    IN_ACTION.store(true, std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(600));
}

/// A wait that times out before it could even arrive (the generation's last party was running
/// the action) breaks nothing: that generation's parties all arrived and pass. Before, its
/// time-out broke their generation.
#[test]
fn bar_8_a_time_out_before_arriving_breaks_nothing() {
    let _g = common::guard();
    let b = Barrier::new(2).unwrap().with_action(slow_action);
    let parties: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || b.wait().map(|_| ()))
        })
        .collect();
    // Both arrived once the last one runs the 600 ms action.
    let t = std::time::Instant::now();
    while !IN_ACTION.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(b.wait_timeout(Duration::from_millis(100)), Err(multiproc::BarrierTimeoutError::Timeout)));
    for p in parties {
        assert_eq!(p.join().unwrap(), Ok(()), "a party of the generation was broken");
    }
    assert!(!b.broken());
}

/// A party stopped (SIGSTOP) after it arrived, while its generation is released and a whole
/// later generation passes without it (more processes than parties), still gets its own
/// generation's outcome when it runs again: `Ok` (BAR-B2). Before, it found the barrier's
/// last-released generation moved on and reported `Broken`.
#[test]
fn bar_b2_a_waiter_that_slept_through_later_generations_gets_its_own_outcome() {
    let _g = guard_for(Duration::from_secs(60));
    let b = Barrier::new(2).unwrap();
    let sleeper = Process::new({
        let b = b.clone();
        move || match b.wait() {
            Ok(_) => 0,
            Err(_) => 3,
        }
    });
    sleeper.start().unwrap();
    let t = Instant::now();
    while b.n_waiting() != 1 {
        assert!(t.elapsed() < Duration::from_secs(10), "the sleeper never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20)); // let it fall asleep in the kernel
    let pid = sleeper.pid().unwrap() as i32;
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    // Its generation is released while it is stopped, then a whole generation passes.
    assert!(b.wait_timeout(Duration::from_secs(10)).is_ok());
    let other = std::thread::spawn({
        let b = b.clone();
        move || b.wait_timeout(Duration::from_secs(10)).is_ok()
    });
    assert!(b.wait_timeout(Duration::from_secs(10)).is_ok());
    assert!(other.join().unwrap());
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    assert_eq!(sleeper.join().unwrap().exitcode(), 0, "the stopped party's released generation read as broken");
    assert!(!b.broken());
}
