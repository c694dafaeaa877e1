//! Pool tests, named after POOL-* in `docs/BEHAVIOURS.md` and the POOL BEYOND items.
//!
//! Every test holds the fork lock (pools fork workers) and a watchdog.
#![cfg(feature = "serde")] // typed messages (serde + postcard)
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code: std atomics and raw libc are fine here

mod common;

use common::{guard_for, unpick, Picky, Watchdog};
use multiproc::{Barrier, Pool, PoolError, PoolOptions, PoolTimeoutError, WouldBlock};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn sqr(x: i64) -> i64 {
    x * x
}

fn mul(a: i64, b: i64) -> i64 {
    a * b
}

fn sqr_u64(x: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(500));
    x * x
}

fn sleep_then_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(1));
    x * x
}

fn mul_pair((a, b): (i64, i64)) -> i64 {
    a * b
}

fn pid_of(_: u32) -> u32 {
    std::process::id()
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn parse(s: String) -> i64 {
    s.parse().expect("not a number")
}

fn parse_or_message(s: String) -> Result<i64, String> {
    s.parse().map_err(|e: std::num::ParseIntError| e.to_string())
}

fn checked_parse(s: String) -> Result<i64, std::num::ParseIntError> {
    s.parse()
}

fn die_on(x: u32) -> u32 {
    if x == 13 {
        // SAFETY: raising a signal on ourselves has no memory effects.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    x
}

static INITIALIZED: AtomicU32 = AtomicU32::new(0);

fn read_init(_: u8) -> u32 {
    INITIALIZED.load(Ordering::SeqCst)
}

fn set_initialized(v: u32) -> Result<(), String> {
    INITIALIZED.store(v, Ordering::SeqCst);
    Ok(())
}

fn boom(_: ()) -> Result<(), String> {
    Err("boom".into())
}

/// A value whose serialization always fails (POOL-5, POOL-17).
#[derive(Debug, Clone, serde::Deserialize)]
struct Unserializable;

impl serde::Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value refuses to be serialized"))
    }
}

fn make_unserializable(_: u8) -> Unserializable {
    Unserializable
}

fn take_unserializable(_: Unserializable) -> u8 {
    0
}

#[test]
fn pool_1_apply() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    assert_eq!(pool.apply(sqr, 5).unwrap(), 25);
    // Several arguments travel as a tuple (Python's `apply(f, (a, b))`).
    assert_eq!(pool.apply(mul_pair, (3, 4)).unwrap(), 12);
}

#[test]
fn pool_2_map_keeps_input_order() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(3).unwrap();
    assert_eq!(pool.map(sqr, 0..10).unwrap(), (0..10).map(sqr).collect::<Vec<_>>());
    assert_eq!(
        pool.map_with(sqr, 0..100, PoolOptions::new().chunksize(20)).unwrap(),
        (0..100).map(sqr).collect::<Vec<_>>()
    );
}

/// Sleeps longer for smaller inputs, so that later chunks finish first.
fn slow_early(x: i64) -> i64 {
    std::thread::sleep(Duration::from_millis(((8 - x.min(8)) * 5) as u64));
    x * 10
}

#[test]
fn pool_2_map_keeps_input_order_when_later_chunks_finish_first() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(3).unwrap();
    // Chunks of one and of three: results come back out of order, and are placed in order
    // (those in turn at once, the early ones when their turn comes).
    for cs in [1, 3] {
        let got = pool.map_with(slow_early, 0..12, PoolOptions::new().chunksize(cs)).unwrap();
        assert_eq!(got, (0..12).map(|x| x * 10).collect::<Vec<_>>(), "chunksize {cs}");
    }
}

#[test]
fn pool_3_starmap_and_async_forms() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    let pairs: Vec<(i64, i64)> = (0..10).zip((0..10).rev()).collect();
    let serial: Vec<i64> = pairs.iter().map(|&(a, b)| mul(a, b)).collect();
    assert_eq!(pool.starmap(mul, pairs.clone()).unwrap(), serial);
    let pairs100: Vec<(i64, i64)> = (0..100).zip((0..100).rev()).collect();
    let serial100: Vec<i64> = pairs100.iter().map(|&(a, b)| mul(a, b)).collect();
    assert_eq!(pool.starmap_with(mul, pairs100, PoolOptions::new().chunksize(20)).unwrap(), serial100);
    assert_eq!(pool.starmap_async(mul, pairs).unwrap().get().unwrap(), serial);
    assert_eq!(pool.map_async(sqr, 0..10).unwrap().get().unwrap(), (0..10).map(sqr).collect::<Vec<_>>());
}

#[test]
fn pool_4_map_async_callbacks_run_once() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c1, c2) = (calls.clone(), calls.clone());
    let seen = Arc::new(std::sync::Mutex::new(None));
    let s = seen.clone();
    let opts = PoolOptions::new()
        .callback(move |v: &Vec<i64>| {
            c1.fetch_add(1, Ordering::SeqCst);
            *s.lock().unwrap() = Some(v.clone());
        })
        .error_callback(move |_| {
            c2.fetch_add(100, Ordering::SeqCst);
        });
    let r = pool.map_async_with(parse, vec!["1".to_string()], opts).unwrap();
    assert_eq!(r.get().unwrap(), vec![1]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(*seen.lock().unwrap(), Some(vec![1]));

    let errs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let e2 = errs.clone();
    let opts = PoolOptions::new()
        .callback(|_| panic!("success callback on failure"))
        .error_callback(move |e| e2.lock().unwrap().push(e.clone()));
    let r = pool.map_async_with(parse, vec!["a".to_string()], opts).unwrap();
    assert!(matches!(r.get(), Err(PoolError::Remote(_))));
    let errs = errs.lock().unwrap();
    assert_eq!(errs.len(), 1);
    assert!(matches!(&errs[0], PoolError::Remote(e) if e.message.contains("not a number")), "{errs:?}");
}

#[test]
fn pool_5_unserializable_arguments_fail_without_hanging() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    let r = pool.map(take_unserializable, vec![Unserializable, Unserializable]);
    assert!(matches!(r, Err(PoolError::Codec { remote: false, ref error }) if !error.is_decode()), "{r:?}");
    assert_eq!(pool.map(sqr, 0..3).unwrap(), vec![0, 1, 4]);
}

#[test]
fn pool_6_empty_inputs() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    assert_eq!(pool.map(sqr, Vec::new()).unwrap(), Vec::<i64>::new());
    assert_eq!(pool.imap(sqr, Vec::new()).unwrap().count(), 0);
    assert_eq!(pool.imap_unordered(sqr, Vec::new()).unwrap().count(), 0);
    let r = pool.map_async(sqr, Vec::new()).unwrap();
    assert_eq!(r.get_timeout(Duration::from_millis(100)).unwrap(), Vec::<i64>::new());
}

#[test]
fn pool_8_async_get_timeout_then_value() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    let t = Instant::now();
    let r = pool.apply_async(sleep_ms, 300).unwrap();
    assert!(matches!(r.get_timeout(Duration::from_millis(100)), Err(PoolTimeoutError::Timeout)));
    assert!(t.elapsed() >= Duration::from_millis(90));
    assert!(!r.ready());
    assert_eq!(r.get().unwrap(), 300);
    assert!(t.elapsed() >= Duration::from_millis(290));
}

#[test]
fn pool_9_imap_is_ordered_and_lazy() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(3).unwrap();
    let mut it = pool.imap(sqr, 0..10).unwrap();
    for i in 0..10 {
        assert_eq!(it.next().unwrap().unwrap(), i * i);
    }
    assert!(it.next().is_none());
    let v: Vec<i64> =
        pool.imap_with(sqr, 0..1000, PoolOptions::new().chunksize(100)).unwrap().map(Result::unwrap).collect();
    assert_eq!(v, (0..1000).map(sqr).collect::<Vec<_>>());
}

#[test]
fn pool_11_imap_unordered_same_multiset() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(3).unwrap();
    let mut v: Vec<i64> = pool.imap_unordered(sqr, 0..10).unwrap().map(Result::unwrap).collect();
    v.sort();
    assert_eq!(v, (0..10).map(sqr).collect::<Vec<_>>());
    let mut v: Vec<i64> = pool
        .imap_unordered_with(sqr, 0..1000, PoolOptions::new().chunksize(100))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    v.sort();
    assert_eq!(v, (0..1000).map(sqr).collect::<Vec<_>>());
}

#[test]
fn pool_12_invalid_sizes_are_rejected() {
    let _g = guard_for(Duration::from_secs(60));
    assert!(matches!(common::pool_new(0), Err(PoolError::InvalidArgument(_))));
    assert!(matches!(
        common::pool_builder().processes(1).maxtasksperchild(0).build(),
        Err(PoolError::InvalidArgument(_))
    ));
    let pool = common::pool_new(3).unwrap();
    assert_eq!(pool.processes(), 3);
    assert_eq!(pool.worker_pids().len(), 3);
}

#[test]
fn pool_13_terminate_with_many_queued_long_tasks_is_prompt() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    let results: Vec<_> = (0..10_000).map(|_| pool.apply_async(sleep_ms, 10_000).unwrap()).collect();
    let t = Instant::now();
    pool.terminate();
    pool.join();
    assert!(t.elapsed() < Duration::from_secs(10), "terminate took {:?}", t.elapsed());
    assert!(results.iter().all(|r| matches!(r.get(), Err(PoolError::Terminated))));
}

#[test]
fn pool_14_close_and_terminate_refuse_new_work() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    let r = pool.map_async(sqr, 0..10).unwrap();
    pool.close();
    assert!(matches!(pool.map_async(sqr, 0..3), Err(PoolError::NotRunning)));
    pool.join();
    assert_eq!(r.get().unwrap(), (0..10).map(sqr).collect::<Vec<_>>());

    let pool = common::pool_new(1).unwrap();
    pool.terminate();
    pool.join();
    assert!(matches!(pool.apply_async(sqr, 1), Err(PoolError::NotRunning)));
}

#[test]
fn pool_15_remote_errors_keep_kind_message_and_location() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    match pool.apply(parse, "x".to_string()) {
        Err(PoolError::Remote(e)) => {
            assert_eq!(e.kind, "panic");
            assert!(e.message.contains("not a number"), "{e:?}");
            assert!(e.location.as_deref().is_some_and(|l| l.contains("pool.rs")), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    // A task's own `Err` is a value: it comes back as the task returned it.
    assert_eq!(pool.apply(parse_or_message, "y".to_string()).unwrap(), Err("invalid digit found in string".into()));
    assert_eq!(pool.apply(parse_or_message, "12".to_string()).unwrap(), Ok(12));
}

/// The 0.1 calls kept as deprecated shims still work as they did: `try_apply` turns a task's
/// `Err` into `PoolError::Remote` with the error's type name, `map_chunked` and
/// `starmap_chunked` take the chunk size as a third argument.
#[test]
#[allow(deprecated)]
fn pool_deprecated_shims_keep_their_0_1_behaviour() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    match pool.try_apply(checked_parse, "y".to_string()) {
        Err(PoolError::Remote(e)) => {
            assert!(e.kind.contains("ParseIntError"), "{e:?}");
            assert_eq!(e.message, "invalid digit found in string");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.try_apply(checked_parse, "12".to_string()).unwrap(), 12);
    assert_eq!(pool.map_chunked(sqr, 0..10, 3).unwrap(), (0..10).map(sqr).collect::<Vec<_>>());
    assert_eq!(pool.starmap_chunked(mul, vec![(2, 3), (4, 5)], 1).unwrap(), [6, 20]);
    let fma: fn(i64, i64, i64) -> i64 = |a, b, c| a * b + c; // a pointer, as 0.1 allowed
    assert_eq!(pool.starmap3(fma, vec![(2, 3, 1)]).unwrap(), [7]);
    let r = pool.try_apply_async_with(checked_parse, "k".to_string(), PoolOptions::new()).unwrap();
    assert!(matches!(r.get(), Err(PoolError::Remote(_))));
}

#[test]
fn pool_16_error_callback_receives_the_error() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    let got = Arc::new(std::sync::Mutex::new(None));
    let g = got.clone();
    let opts = PoolOptions::new()
        .callback(|_: &i64| panic!("success callback"))
        .error_callback(move |e: &PoolError| *g.lock().unwrap() = Some(e.to_string()));
    let r = pool.apply_async_with(parse, "k".to_string(), opts).unwrap();
    let err = r.get().unwrap_err();
    assert!(matches!(err, PoolError::Remote(_)), "{err:?}");
    assert_eq!(got.lock().unwrap().as_deref(), Some(err.to_string().as_str()));
}

#[test]
fn pool_17_unserializable_results_fail_and_lose_no_worker() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    let before = pool.worker_pids();
    for _ in 0..20 {
        let r = pool.apply(make_unserializable, 0);
        assert!(matches!(r, Err(PoolError::Codec { remote: true, ref error }) if !error.is_decode()), "{r:?}");
    }
    assert_eq!(pool.worker_pids(), before);
}

#[test]
fn pool_18_failing_tasks_do_not_deadlock_close_join() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    let r = pool.map_with(parse, vec!["1".into(), "a".into(), "b".into(), "4".into()], PoolOptions::new().chunksize(1));
    assert!(matches!(r, Err(PoolError::Remote(_))));
    pool.close();
    pool.join();
}

#[test]
fn pool_19_maxtasksperchild_replaces_workers() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_builder().processes(2).maxtasksperchild(10).build().unwrap();
    let rs: Vec<_> = (0..100).map(|i| pool.apply_async(pid_of, i).unwrap()).collect();
    let pids: std::collections::HashSet<u32> = rs.iter().map(|r| r.get().unwrap()).collect();
    assert!(pids.len() >= 10, "only {} distinct workers ran 100 tasks", pids.len());
    pool.close();
    pool.join();
}

#[test]
fn pool_20_initializer_runs_before_tasks() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_builder().processes(1).initializer_fn(set_initialized, 1).build().unwrap();
    assert_eq!(pool.apply(read_init, 0).unwrap(), 1);
    assert_eq!(INITIALIZED.load(Ordering::SeqCst), 0, "the initializer ran in the parent");
}

#[test]
fn pool_21_async_result_state() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    let r = pool.apply_async(sleep_ms, 200).unwrap();
    assert!(!r.ready());
    assert!(matches!(r.successful(), Err(WouldBlock)));
    r.wait();
    assert!(r.ready());
    assert!(matches!(r.successful(), Ok(true)));
    let bad = pool.apply_async(parse, "z".into()).unwrap();
    assert!(bad.wait_timeout(Duration::from_secs(10)).is_ok());
    assert!(matches!(bad.successful(), Ok(false)));
}

#[test]
fn pool_22_pool_inside_a_child_process() {
    let _g = guard_for(Duration::from_secs(60));
    let pid = common::fork_child(|| {
        let pool = common::pool_new(2).unwrap();
        let ok = pool.map(sqr, 1..8).unwrap() == vec![1, 4, 9, 16, 25, 36, 49];
        // The pool is left running: leaving the process must still work.
        std::mem::forget(pool);
        if ok {
            0
        } else {
            1
        }
    });
    assert_eq!(common::wait_child(pid), common::Ended::Code(0));
}

#[test]
fn pool_b1_worker_killed_mid_task_fails_only_that_task() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    let before = pool.worker_pids();
    let rs: Vec<_> = (0..30).map(|i| pool.apply_async(die_on, i).unwrap()).collect();
    for (i, r) in rs.iter().enumerate() {
        match r.get() {
            Ok(v) => assert_eq!(v as usize, i),
            Err(PoolError::WorkerDied { signal, .. }) => {
                assert_eq!(i, 13, "task {i} failed although its worker did not die in it");
                assert_eq!(signal, Some(libc::SIGKILL));
            }
            Err(e) => panic!("task {i}: {e:?}"),
        }
    }
    assert!(rs[13].get().is_err());
    let after = pool.worker_pids();
    assert_eq!(after.len(), 2);
    assert_ne!(before, after, "the dead worker was not replaced");
    assert_eq!(pool.map(sqr, 0..5).unwrap(), vec![0, 1, 4, 9, 16]);
}

#[test]
fn pool_b1_kill_loop_every_task_resolves_in_order() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Arc::new(common::pool_new(3).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let (pool, stop) = (pool.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = common::Rng::new("pool_b1_kill_loop");
            let mut kills = 0;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(rng.range(5, 40)));
                let pids = pool.worker_pids();
                if !pids.is_empty() {
                    common::sigkill(pids[rng.range(0, pids.len() as u64) as usize]);
                    kills += 1;
                }
            }
            kills
        })
    };
    // imap with chunksize 1: exactly one outcome per input, in input order, no hang.
    let n = 400u64;
    let mut outcomes = 0;
    let mut died = 0;
    for (i, r) in pool.imap(sqr_u64, 0..n).unwrap().enumerate() {
        match r {
            Ok(v) => assert_eq!(v, (i as u64) * (i as u64), "result out of order"),
            Err(PoolError::WorkerDied { .. }) => died += 1,
            Err(e) => panic!("{e:?}"),
        }
        outcomes += 1;
    }
    assert_eq!(outcomes, n);
    // apply_async: every task resolves individually.
    let rs: Vec<_> = (0..200).map(|i| pool.apply_async(sleep_then_square, i).unwrap()).collect();
    let mut resolved = 0;
    for (i, r) in rs.iter().enumerate() {
        match r.get() {
            Ok(v) => assert_eq!(v, (i * i) as u64),
            Err(PoolError::WorkerDied { .. }) => died += 1,
            Err(e) => panic!("{e:?}"),
        }
        resolved += 1;
    }
    assert_eq!(resolved, 200);
    stop.store(true, Ordering::SeqCst);
    let kills = killer.join().unwrap();
    eprintln!("kills={kills} tasks failed by a death={died}");
    // Once the killing stops, the pool is whole again.
    assert_eq!(pool.map(sqr, 0..50).unwrap(), (0..50).map(sqr).collect::<Vec<_>>());
}

#[test]
fn pool_b2_terminate_resolves_pending_results() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    let r = pool.apply_async(sleep_ms, 30_000).unwrap();
    let queued = pool.apply_async(sleep_ms, 1).unwrap();
    let t = Instant::now();
    pool.terminate();
    assert!(matches!(r.get(), Err(PoolError::Terminated)));
    assert!(matches!(queued.get(), Err(PoolError::Terminated)));
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn pool_b3_failing_initializer_fails_build_once() {
    let _g = guard_for(Duration::from_secs(60));
    let t = Instant::now();
    let r = common::pool_builder().processes(2).initializer_fn(boom, ()).build();
    match r {
        Err(PoolError::InitializerFailed(e)) => assert!(e.message.contains("boom"), "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(10));
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

fn count_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

#[test]
fn pool_survives_10000_tasks_with_maxtasksperchild_without_leaks() {
    let _g = guard_for(Duration::from_secs(60));
    // A first pool, unmeasured: the process keeps one chunk of its small-object arena (a
    // memfd) from its first use on, which is not a leak (alone in a process, as under
    // nextest, this test would otherwise count it).
    let warm = common::pool_builder().processes(1).build().unwrap();
    warm.close();
    warm.join();
    drop(warm);
    let fds = count_fds();
    let shm = common::our_named_segments();
    {
        let pool = common::pool_builder().processes(2).maxtasksperchild(10).build().unwrap();
        let v = pool.map_with(sqr, 0..10_000, PoolOptions::new().chunksize(10)).unwrap();
        assert_eq!(v.len(), 10_000);
        assert_eq!(v[9_999], 9_999 * 9_999);
        pool.close();
        pool.join();
    }
    assert_eq!(count_fds(), fds, "file descriptors leaked");
    assert_eq!(common::our_named_segments(), shm, "named segments leaked");
}

#[test]
fn pool_workers_die_with_their_parent() {
    let _g = guard_for(Duration::from_secs(60));
    let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
    let pid = common::fork_child(move || {
        use std::io::Write;
        let pool = common::pool_new(2).unwrap();
        let pids = pool.worker_pids();
        let mut w = w;
        let _ = writeln!(w, "{} {}", pids[0], pids[1]);
        std::thread::sleep(Duration::from_secs(30));
        0
    });
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(r), &mut line).unwrap();
    let workers: Vec<i32> = line.split_whitespace().map(|s| s.parse().unwrap()).collect();
    common::sigkill(pid);
    common::wait_child(pid);
    let t = Instant::now();
    for w in workers {
        while alive(w) {
            assert!(t.elapsed() < Duration::from_secs(10), "worker {w} outlived its parent");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Chunks are dispatched while later ones are still being encoded: a chunk that fails to
/// encode after earlier ones went out fails the whole call once, and the pool stays usable.
#[test]
fn pool_5_late_chunk_that_cannot_be_encoded_fails_the_call_and_nothing_else() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    for _ in 0..3 {
        let r = pool.map_with(unpick, (0..2000).map(Picky), PoolOptions::new().chunksize(10));
        assert!(matches!(r, Err(PoolError::Codec { remote: false, .. })), "{r:?}");
        let errors = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let e2 = errors.clone();
        let opts = PoolOptions::new().callback(|_| panic!("no success")).error_callback(move |_| {
            e2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let r = pool.map_async_with(unpick, (0..2000).map(Picky), opts).unwrap();
        assert!(r.get().is_err());
        assert_eq!(errors.load(std::sync::atomic::Ordering::SeqCst), 1, "error callback runs once");
    }
    assert_eq!(pool.map(unpick, (0..500).map(Picky)).unwrap(), (0..500).collect::<Vec<_>>());
    pool.close();
    pool.join();
}

/// A panicking callback runs on the pool's manager thread: it is reported and contained, the
/// result is still delivered, and the pool keeps working (nothing waits forever).
#[test]
fn pool_4_a_panicking_callback_does_not_wedge_the_pool() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    let opts = PoolOptions::new().callback(|_| panic!("callback bug"));
    let r = pool.map_async_with(parse, vec!["1".to_string(), "2".to_string()], opts).unwrap();
    assert_eq!(r.get().unwrap(), vec![1, 2]);
    let opts = PoolOptions::new().error_callback(|_| panic!("error callback bug"));
    let r = pool.map_async_with(parse, vec!["x".to_string()], opts).unwrap();
    assert!(matches!(r.get(), Err(PoolError::Remote(_))));
    assert_eq!(pool.map(parse, vec!["3".to_string()]).unwrap(), vec![3]);
    pool.close();
    pool.join();
}

/// A pool larger than one `futex_waitv` (128 words) still works: the manager sleeps on one
/// shared doorbell word that every worker notifies, whatever their number.
#[test]
fn pool_many_workers_beyond_one_futex_waitv() {
    let _g = guard_for(Duration::from_secs(60));
    // Each worker costs the parent four descriptors (two pipes' liveness ends): make sure the
    // soft limit allows ~520 more, raising it towards the hard limit if needed.
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur < 2048 {
        lim.rlim_cur = lim.rlim_max.min(2048);
        // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
    let pool = common::pool_new(130).unwrap();
    assert_eq!(pool.worker_pids().len(), 130);
    let v: Vec<i64> = (0..2000).collect();
    assert_eq!(
        pool.map_with(sqr, v.clone(), PoolOptions::new().chunksize(1)).unwrap(),
        v.iter().map(|x| x * x).collect::<Vec<_>>()
    );
    pool.close();
    pool.join();
}

/// Barriers for the "run at once" tests, created before the pools are forked (workers inherit
/// them). One per test: each is used by exactly one test.
static BARRIER_MAP: std::sync::OnceLock<Barrier> = std::sync::OnceLock::new();
static BARRIER_CHUNKED: std::sync::OnceLock<Barrier> = std::sync::OnceLock::new();
static BARRIER_APPLY: std::sync::OnceLock<Barrier> = std::sync::OnceLock::new();

/// Waits at `barrier` (a shared Barrier of 4): only succeeds if 4 tasks run at the same time.
fn meet(barrier: &Barrier) -> bool {
    barrier.wait_timeout(Duration::from_secs(20)).is_ok()
}

fn meet_map(_: u32) -> bool {
    meet(BARRIER_MAP.get().expect("set before the pool"))
}

fn meet_chunked(_: u32) -> bool {
    meet(BARRIER_CHUNKED.get().expect("set before the pool"))
}

fn meet_apply(_: u32) -> bool {
    meet(BARRIER_APPLY.get().expect("set before the pool"))
}

/// `n` long tasks on `Pool(n)` run at once, whatever the call: four tasks that each wait at a
/// barrier of four parties can only pass if all four run together (no timing assumption, so it
/// holds on a loaded 2-CPU machine).
#[test]
fn pool_n_long_tasks_on_pool_n_run_at_once() {
    let _g = guard_for(Duration::from_secs(60));
    BARRIER_MAP.get_or_init(|| Barrier::new(4).unwrap());
    BARRIER_CHUNKED.get_or_init(|| Barrier::new(4).unwrap());
    BARRIER_APPLY.get_or_init(|| Barrier::new(4).unwrap());
    // Fork only: the workers find the barriers in statics they inherit.
    let pool = Pool::builder().processes(4).start_method(multiproc::StartMethod::Fork).build().unwrap();
    assert_eq!(pool.map(meet_map, 0..4).unwrap(), [true; 4], "map");
    assert_eq!(
        pool.map_with(meet_chunked, 0..4, PoolOptions::new().chunksize(1)).unwrap(),
        [true; 4],
        "map_chunked(.., 1)"
    );
    let rs: Vec<_> = (0..4).map(|i| pool.apply_async(meet_apply, i).unwrap()).collect();
    for r in rs {
        assert!(r.get().unwrap(), "apply_async");
    }
}

/// A stuck worker delays only its own task: with one of three workers stuck in a task that
/// never ends, an unrelated map of 1000 items completes on the other two (Python's Pool does
/// this too; a chunk queued behind the stuck task is taken back for an idle worker).
#[test]
fn pool_stuck_worker_delays_only_its_own_task() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(3).unwrap();
    let stuck = pool.apply_async(sleep_ms, 600_000).unwrap();
    for round in 0..3 {
        let v = pool.map_with(sqr, 0..1000, PoolOptions::new().chunksize(1)).unwrap();
        assert_eq!(v, (0..1000).map(sqr).collect::<Vec<_>>(), "round {round}");
        let v = pool.map(sqr, 0..1000).unwrap();
        assert_eq!(v.len(), 1000);
        let rs: Vec<_> = (0..20).map(|i| pool.apply_async(sqr, i).unwrap()).collect();
        for (i, r) in rs.into_iter().enumerate() {
            assert_eq!(r.get_timeout(Duration::from_secs(30)).unwrap(), (i * i) as i64);
        }
    }
    assert!(!stuck.ready());
    pool.terminate();
    assert!(matches!(stuck.get(), Err(PoolError::Terminated)));
}

fn die_on_pair(a: u32, b: u32) -> u32 {
    die_on(a) + b
}

fn died_at(r: &Result<impl std::fmt::Debug, PoolError>) -> (usize, usize) {
    match r {
        Err(PoolError::WorkerDied { index, len, signal, .. }) => {
            assert_eq!(*signal, Some(libc::SIGKILL));
            (*index, *len)
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
}

/// `WorkerDied` names the input that killed the worker: the index of the failed chunk's first
/// item and the chunk's length (with chunksize 1, the item), for map, imap, imap_unordered,
/// starmap and apply_async.
#[test]
fn pool_b1_worker_died_names_the_failed_items() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    assert_eq!(died_at(&pool.map_with(die_on, 0..30, PoolOptions::new().chunksize(1))), (13, 1), "map, chunksize 1");
    assert_eq!(died_at(&pool.map_with(die_on, 0..30, PoolOptions::new().chunksize(5))), (10, 5), "map, chunksize 5");
    assert_eq!(died_at(&pool.map_with(die_on, 0..15, PoolOptions::new().chunksize(7))), (7, 7), "map, chunk 7..14");
    assert_eq!(
        died_at(&pool.map_with(die_on, 10..15, PoolOptions::new().chunksize(4))),
        (0, 4),
        "indices count from the input's start"
    );
    let pairs: Vec<(u32, u32)> = (0..20).map(|i| (i, 1)).collect();
    assert_eq!(died_at(&pool.starmap_with(die_on_pair, pairs, PoolOptions::new().chunksize(3))), (12, 3), "starmap");
    let failed: Vec<(usize, (usize, usize))> = pool
        .imap(die_on, 0..20)
        .unwrap()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(i, r)| (i, died_at(&r)))
        .collect();
    assert_eq!(failed, [(13, (13, 1))], "imap");
    let failed: Vec<(usize, usize)> = pool
        .imap_unordered_with(die_on, 0..20, PoolOptions::new().chunksize(2))
        .unwrap()
        .filter(|r| r.is_err())
        .map(|r| died_at(&r))
        .collect();
    assert_eq!(failed, [(12, 2)], "imap_unordered");
    assert_eq!(died_at(&pool.apply_async(die_on, 13).unwrap().get()), (0, 1), "apply_async");
    let e = pool.apply(die_on, 13).unwrap_err();
    assert!(e.to_string().contains("item 0"), "{e}");
}

/// A closure initializer cannot cross into a fresh image: refused at build under `Spawn`
/// and `ForkServer`, accepted under `Fork` (POOL-B3's closure form).
#[test]
fn pool_closure_initializers_need_fork() {
    let _g = guard_for(Duration::from_secs(60));
    for m in [multiproc::StartMethod::Spawn, multiproc::StartMethod::ForkServer] {
        let r = Pool::builder().processes(1).start_method(m).initializer(|| ()).build();
        assert!(matches!(r, Err(PoolError::InvalidArgument(_))), "{m:?}");
    }
    let r = Pool::builder()
        .processes(1)
        .start_method(multiproc::StartMethod::Fork)
        .initializer(|| Err::<(), _>("boom"))
        .build();
    assert!(matches!(r, Err(PoolError::InitializerFailed(e)) if e.message.contains("boom")));
}

/// Every pool test of this file, run again with the pools under `Spawn` and under
/// `ForkServer` (this test binary started anew with `MULTIPROC_TEST_POOL_METHOD`).
#[test]
fn pool_suite_passes_under_spawn_and_forkserver() {
    if std::env::var_os("MULTIPROC_TEST_POOL_METHOD").is_some() {
        return; // the nested run: the other tests are what it is for
    }
    let _w = Watchdog::new("pool_suite_under_other_methods", Duration::from_secs(600));
    for m in ["spawn", "forkserver"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--test-threads=2", "-q"])
            .env("MULTIPROC_TEST_POOL_METHOD", m)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the pool tests failed under {m}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A panic payload whose own `Drop` panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's drop panics too");
    }
}

fn panic_with_a_bomb(_: u8) -> u8 {
    std::panic::panic_any(Bomb)
}

/// A task that panics with a payload whose `Drop` panics is still a task's panic (a remote
/// error, the worker alive), not a worker death: the worker no longer drops the payload.
#[test]
fn pool_15_a_panic_payload_that_panics_on_drop_is_still_the_tasks_panic() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(1).unwrap();
    let before = pool.worker_pids();
    match pool.apply(panic_with_a_bomb, 1) {
        Err(PoolError::Remote(e)) => assert_eq!(e.kind, "panic", "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.worker_pids(), before, "the worker died");
}
