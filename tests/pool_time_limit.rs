//! POOL-B4 in `docs/BEHAVIOURS.md`: task time limits. A task past its limit has its worker
//! killed (with the worker's process group), fails with `PoolError::TimeLimit` naming its
//! input, and the pool heals; the limit counts from when the task starts.
#![cfg(feature = "serde")] // typed messages (serde + postcard)
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{PoolError, PoolOptions};
use std::time::{Duration, Instant};

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Starts `sleep 60` as a child, writes its pid to `path`, then waits for ever.
fn start_child_and_hang(path: String) -> u32 {
    let mut child = std::process::Command::new("sleep").arg("60").spawn().expect("start sleep");
    std::fs::write(&path, child.id().to_string()).expect("write the pid");
    // Waits for it (60 s, far past the limit): the time limit kills us both first.
    let _ = child.wait();
    0
}

fn deadline_left_ms(_: u8) -> Option<u64> {
    multiproc::task_deadline().map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64)
}

#[test]
fn pool_b4_a_task_past_its_limit_is_killed_named_and_the_pool_heals() {
    let _g = guard_for(Duration::from_secs(60));
    let limit = Duration::from_millis(300);
    let pool = common::pool_builder().processes(2).time_limit(limit).build().unwrap();
    let before = pool.worker_pids();
    let t = Instant::now();
    let r = pool.map_with(nap, [10, 60_000, 10], PoolOptions::new().chunksize(1));
    let pid = match r {
        Err(PoolError::TimeLimit { pid, index: 1, len: 1, limit: l }) => {
            assert_eq!(l, limit);
            pid
        }
        other => panic!("expected a time limit on item 1, got {other:?}"),
    };
    assert!(t.elapsed() < Duration::from_secs(10), "the stuck task held the call for {:?}", t.elapsed());
    assert!(before.contains(&pid), "the error names the killed worker");
    // The pool healed: both workers take tasks, one of them new.
    assert_eq!(pool.map_with(nap, [1, 2, 3, 4], PoolOptions::new().chunksize(1)).unwrap(), [1, 2, 3, 4]);
    let after = pool.worker_pids();
    assert!(!after.contains(&pid), "the killed worker was replaced");
    // Per input, with imap: the others get their values.
    let got: Vec<_> = pool.imap_with(nap, [5, 60_000, 5], PoolOptions::new()).unwrap().collect();
    assert_eq!(got[0].as_ref().unwrap(), &5);
    assert!(matches!(got[1], Err(PoolError::TimeLimit { index: 1, .. })), "{:?}", got[1]);
    assert_eq!(got[2].as_ref().unwrap(), &5);
}

#[test]
fn pool_b4_the_limit_counts_from_when_each_task_starts() {
    let _g = guard_for(Duration::from_secs(60));
    // One worker, three tasks of 250 ms under a 600 ms limit: the last is submitted at once
    // but starts 500 ms later, and must not be charged for its wait.
    let pool = common::pool_builder().processes(1).time_limit(Duration::from_millis(600)).build().unwrap();
    let r = pool.map_with(nap, [250, 250, 250], PoolOptions::new().chunksize(1));
    assert_eq!(r.unwrap(), [250, 250, 250]);
}

#[test]
fn pool_b4_a_calls_limit_overrides_the_pools_and_tasks_see_their_deadline() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_builder().processes(1).time_limit(Duration::from_secs(30)).build().unwrap();
    let t = Instant::now();
    let r = pool.apply_with(nap, 60_000, PoolOptions::new().time_limit(Duration::from_millis(200)));
    assert!(matches!(r, Err(PoolError::TimeLimit { index: 0, len: 1, .. })), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let left = pool.apply(deadline_left_ms, 0).unwrap().expect("the pool's limit gives a deadline");
    assert!(left > 20_000 && left <= 30_000, "{left} ms left of 30 s");
    let none = common::pool_new(1).unwrap().apply(deadline_left_ms, 0).unwrap();
    assert_eq!(none, None, "no limit, no deadline");
}

/// The pid a task wrote to `path` (which is removed).
fn take_pid(path: &std::path::Path) -> i32 {
    let pid = std::fs::read_to_string(path).unwrap().trim().parse().unwrap();
    let _ = std::fs::remove_file(path);
    pid
}

/// Whether process `pid` is still running (not gone, nor a zombie waiting for init to reap
/// it) after up to 5 s; one still running is killed, so that a failing test leaves nothing.
fn runs_on(pid: i32) -> bool {
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
    };
    let t = Instant::now();
    while running() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let alive = running();
    if alive {
        // SAFETY: a plain signal to the leftover process.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    alive
}

/// A fresh path (none left from an earlier run) where a task writes the pid of a child it
/// starts.
fn pid_file(what: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("mp-{what}-{}.pid", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn pool_b4_a_killed_tasks_own_children_go_with_it() {
    let _g = guard_for(Duration::from_secs(60));
    let path = pid_file("timelimit");
    let pool = common::pool_builder().processes(1).time_limit(Duration::from_millis(500)).build().unwrap();
    let r = pool.apply(start_child_and_hang, path.display().to_string());
    assert!(matches!(r, Err(PoolError::TimeLimit { .. })), "{r:?}");
    let child = take_pid(&path);
    assert!(!runs_on(child), "the task's child {child} outlived the killed worker");
    assert_eq!(pool.apply(nap, 1).unwrap(), 1);
}

/// Hangs on an input that starts with 1, else gives its length.
fn hang_on_one(v: Vec<u8>) -> usize {
    if v.first() == Some(&1) {
        std::thread::sleep(Duration::from_secs(60));
    }
    v.len()
}

/// A chunk queued behind a stuck task, larger than the room left in the worker's pipe: the
/// pool used to send it while holding its lock, waiting for the stuck worker to read, so the
/// time limit (and `terminate`) waited too, for as long as the task hung. Now it waits in the
/// pool's queue for a worker that reads: the limit fires, and the rest run on the replacement.
#[test]
fn pool_b4_a_large_chunk_behind_a_stuck_task_does_not_hold_the_time_limit_up() {
    let _g = guard_for(Duration::from_secs(60));
    let limit = Duration::from_millis(300);
    let pool = common::pool_builder().processes(1).pipe_capacity(1 << 16).time_limit(limit).build().unwrap();
    let big = |first: u8| {
        let mut v = vec![0u8; 100_000];
        v[0] = first;
        v
    };
    let t = Instant::now();
    let got: Vec<_> = pool.imap_with(hang_on_one, [big(1), big(0), big(0)], PoolOptions::new()).unwrap().collect();
    assert!(t.elapsed() < Duration::from_secs(30), "the stuck task held the pool for {:?}", t.elapsed());
    assert!(matches!(got[0], Err(PoolError::TimeLimit { index: 0, .. })), "{:?}", got[0]);
    assert_eq!(got[1].as_ref().unwrap(), &100_000);
    assert_eq!(got[2].as_ref().unwrap(), &100_000);
    pool.terminate();
}

/// Starts `sleep 60` as a child, writes its pid to `path`, and returns at once: the child
/// lives on in the worker's process group.
fn start_child_and_return(path: String) -> u32 {
    let child = std::process::Command::new("sleep").arg("60").spawn().expect("start sleep");
    std::fs::write(&path, child.id().to_string()).expect("write the pid");
    std::mem::forget(child);
    0
}

/// `terminate` kills a worker that leads a process group (a pool with a time limit) with its
/// group, as the time limit does: a process a task started does not outlive the pool. Before,
/// only the workers were killed, and `sleep 60` ran on.
#[test]
fn pool_b4_terminate_takes_what_the_tasks_started_with_the_workers() {
    let _g = guard_for(Duration::from_secs(60));
    let path = pid_file("terminate");
    let pool = common::pool_builder().processes(1).time_limit(Duration::from_secs(30)).build().unwrap();
    assert_eq!(pool.apply(start_child_and_return, path.display().to_string()).unwrap(), 0);
    let child = take_pid(&path);
    pool.terminate();
    pool.join();
    assert!(!runs_on(child), "the task's child {child} outlived the terminated pool");
}
