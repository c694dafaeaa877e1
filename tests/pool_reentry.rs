//! POOL-B9: a pool's callbacks may call back into their pool. Python runs callbacks on its
//! result-handler thread, which holds no lock the submitting side needs: a callback can submit
//! more work (the crawler shape), close the pool, terminate it, or drop the last handle to it.
//! So outcomes are delivered after the pool's lock is let go; the tests here also hold that
//! delivery to what it promises (every `join` after the last callback, a panicking decode
//! failing its own call only).
//!
//! Every test holds the fork lock (pools fork workers) and a watchdog: a callback that runs
//! under the pool's own lock deadlocks, and the watchdog turns that into a failure.
#![cfg(feature = "serde")] // typed messages (serde + postcard)
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code: std atomics are fine here

mod common;

use common::{guard_for, unpick, Picky};
use multiproc::{Pool, PoolError, PoolOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

fn plus_one(x: u64) -> u64 {
    x + 1
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Submits `x + 1` from the callback of `x`'s task until 20 is reached: each callback runs on
/// the pool's thread and calls `apply_async_with` on the pool that runs it.
fn chain(pool: &Arc<Pool>, x: u64, seen: &Arc<Mutex<Vec<u64>>>, done: &mpsc::Sender<()>) {
    let (p, s, d) = (pool.clone(), seen.clone(), done.clone());
    let opts = PoolOptions::new().callback(move |v: &u64| {
        s.lock().unwrap().push(*v);
        if *v < 20 {
            chain(&p, *v, &s, &d);
        } else {
            let _ = d.send(());
        }
    });
    pool.apply_async_with(plus_one, x, opts).expect("submitted from a callback");
}

#[test]
fn pool_b9_a_callback_submits_more_work_to_its_pool() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Arc::new(common::pool_new(2).unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    chain(&pool, 0, &seen, &tx);
    rx.recv_timeout(Duration::from_secs(30)).expect("the chain of callbacks reached 20");
    assert_eq!(*seen.lock().unwrap(), (1..=20).collect::<Vec<u64>>());
    // The pool still serves its caller afterwards.
    assert_eq!(pool.map(plus_one, 0..4u64).unwrap(), [1, 2, 3, 4]);
    pool.close();
    pool.join();
}

#[test]
fn pool_b9_an_imap_callback_submits_and_an_error_callback_too() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Arc::new(common::pool_new(2).unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let (p, g) = (pool.clone(), got.clone());
    let opts = PoolOptions::new().callback(move |v: &u64| {
        // A blocking call from the pool's thread would wait for that same thread: the
        // callback submits and keeps the handle.
        g.lock().unwrap().push(p.apply_async(plus_one, *v * 10).expect("submitted from an imap callback"));
    });
    let it = pool.imap_with(plus_one, 0..5u64, opts).unwrap();
    assert_eq!(it.collect::<Result<Vec<_>, _>>().unwrap(), [1, 2, 3, 4, 5]);
    let handles = std::mem::take(&mut *got.lock().unwrap());
    let mut second: Vec<u64> = handles.into_iter().map(|h| h.get().unwrap()).collect();
    second.sort_unstable();
    assert_eq!(second, [11, 21, 31, 41, 51]);

    // The error callback of a job that fails while the caller queues it runs on the caller's
    // thread: it may submit too.
    let (p, calls) = (pool.clone(), Arc::new(AtomicUsize::new(0)));
    let c = calls.clone();
    let opts = PoolOptions::new().error_callback(move |e: &PoolError| {
        assert!(matches!(e, PoolError::Codec { .. }), "{e:?}");
        assert_eq!(p.apply(plus_one, 1).expect("the pool still runs"), 2);
        c.fetch_add(1, Ordering::SeqCst);
    });
    let inputs = vec![Picky(1), Picky(Picky::REFUSED), Picky(3)];
    let r = pool.map_async_with(unpick, inputs, opts.chunksize(1));
    assert!(matches!(r.and_then(|r| r.get()), Err(PoolError::Codec { .. })));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the error callback ran once");
    pool.close();
    pool.join();
}

#[test]
fn pool_b9_a_callback_terminates_its_pool() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Arc::new(common::pool_new(2).unwrap());
    let p = pool.clone();
    let opts = PoolOptions::new().callback(move |_: &u64| p.terminate());
    let first = pool.apply_async_with(plus_one, 1, opts).unwrap();
    assert_eq!(first.get().unwrap(), 2, "the callback's own result is delivered");
    // The callback ran before its result was ready, so the pool has ended by now.
    assert!(matches!(pool.apply_async(plus_one, 1), Err(PoolError::NotRunning)));
    pool.join();
}

#[test]
fn pool_b9_a_callback_drops_the_last_handle_to_its_pool() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Arc::new(common::pool_new(1).unwrap());
    let held = Arc::new(Mutex::new(Some(pool.clone())));
    let h = held.clone();
    let (tx, rx) = mpsc::channel();
    let opts = PoolOptions::new().callback(move |_: &u64| {
        // The callback drops the pool's last handle on the pool's own thread: dropping
        // terminates the pool, which must not wait for the thread it runs on.
        drop(h.lock().unwrap().take());
        let _ = tx.send(());
    });
    let r = pool.apply_async_with(sleep_ms, 50, opts).unwrap();
    drop(pool);
    rx.recv_timeout(Duration::from_secs(30)).expect("the callback ran and returned");
    assert_eq!(r.get().unwrap(), 50);
    assert!(held.lock().unwrap().is_none());
}

#[test]
fn pool_b9_an_imap_callback_terminates_its_pool_part_way() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Arc::new(common::pool_new(1).unwrap());
    let p = pool.clone();
    // The callback of the job's first chunk ends the pool while the job still has chunks
    // left: the job's failure is filed for that same job, on the thread running its sink.
    let opts = PoolOptions::new().callback(move |_: &u64| p.terminate());
    let it = pool.imap_with(sleep_ms, [1, 60_000, 60_000], opts).unwrap();
    let got: Vec<Result<u64, PoolError>> = it.collect();
    assert!(got.len() == 1 || got.len() == 2, "{got:?}");
    assert!(matches!(got.last(), Some(Err(PoolError::Terminated))), "{got:?}");
    if got.len() == 2 {
        assert_eq!(got[0].as_ref().unwrap(), &1, "the first chunk's result came first");
    }
    pool.join();
}

#[test]
fn pool_b9_join_from_a_callback_is_refused_and_the_pool_still_joins() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Arc::new(common::pool_new(1).unwrap());
    let (p, returned) = (pool.clone(), Arc::new(AtomicUsize::new(0)));
    let r2 = returned.clone();
    let opts = PoolOptions::new().callback(move |_: &u64| {
        p.join(); // panics (reported, contained): it would wait for this very thread
        r2.fetch_add(1, Ordering::SeqCst);
    });
    let r = pool.apply_async_with(plus_one, 1, opts).unwrap();
    assert_eq!(r.get().unwrap(), 2, "the result is still delivered");
    assert_eq!(returned.load(Ordering::SeqCst), 0, "join did not return on the pool's thread");
    assert!(matches!(pool.apply_async(plus_one, 1), Err(PoolError::NotRunning)), "it closed the pool");
    pool.join();
}

/// Input 0 crashes its worker, input 9 outlives the test; the others come back as they are.
fn crash_at_0_hang_at_9(x: u64) -> u64 {
    match x {
        0 => std::process::abort(),
        9 => std::thread::sleep(Duration::from_secs(600)),
        _ => {}
    }
    x
}

#[test]
fn pool_b9_an_outcomes_callback_terminates_its_pool_during_re_runs() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Arc::new(common::pool_new(2).unwrap());
    let p = pool.clone();
    // Chunks of 5: the first crashes at input 0 and is re-run item by item (jobs of their own
    // that share the call's callbacks); the callback of the re-run input 1 ends the pool
    // while the re-runs of 2..5 are still queued, and their failures are delivered on the
    // thread that runs it.
    let opts = PoolOptions::new().chunksize(5).callback(move |v: &u64| {
        if *v == 1 {
            p.terminate();
        }
    });
    let outcomes: Vec<_> = pool.imap_unordered_outcomes_with(crash_at_0_hang_at_9, 0..10u64, opts).unwrap().collect();
    let mut indices: Vec<usize> = outcomes.iter().map(|o| o.index).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..10).collect::<Vec<_>>(), "one outcome per input: {outcomes:?}");
    let of = |i: usize| &outcomes.iter().find(|o| o.index == i).unwrap().result;
    // Input 0's re-run may crash before or after input 1's re-run ends the pool (another worker).
    assert!(
        matches!(of(0), Err(PoolError::WorkerDied { signal: Some(libc::SIGABRT), .. } | PoolError::Terminated)),
        "{:?}",
        of(0)
    );
    assert_eq!(of(1).as_ref().unwrap(), &1);
    assert!(matches!(of(9), Err(PoolError::Terminated)), "{:?}", of(9));
    pool.join();
}

#[test]
fn pool_b9_every_join_returns_after_the_last_callback_ran() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Arc::new(common::pool_new(1).unwrap());
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let opts = PoolOptions::new().callback(move |_: &u64| {
        // Slow, so that both joiners are waiting while it runs.
        std::thread::sleep(Duration::from_millis(300));
        r.store(1, Ordering::SeqCst);
    });
    pool.apply_async_with(plus_one, 1, opts).unwrap();
    // Two threads join at once: one of them joins the pool's thread, the other must still
    // wait for that thread's last callback (Python's join guarantees callbacks ran).
    let joiners: Vec<_> = (0..2)
        .map(|_| {
            let (p, r) = (pool.clone(), ran.clone());
            std::thread::spawn(move || {
                p.join();
                r.load(Ordering::SeqCst)
            })
        })
        .collect();
    for j in joiners {
        assert_eq!(j.join().unwrap(), 1, "join returned before the callback had run");
    }
}

/// A value whose decoding panics for 13 (a caller-side `Deserialize` with a bug).
#[derive(Debug, Clone, PartialEq)]
struct Touchy(u64);

impl serde::Serialize for Touchy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Touchy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Touchy, D::Error> {
        let v = <u64 as serde::Deserialize>::deserialize(d)?;
        assert_ne!(v, 13, "a Deserialize bug");
        Ok(Touchy(v))
    }
}

fn touchy(x: u64) -> Touchy {
    Touchy(x)
}

#[test]
fn pool_b9_a_result_whose_decoding_panics_fails_its_call_only() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = common::pool_new(2).unwrap();
    let other = pool.apply_async(sleep_ms, 100).unwrap();
    // The panic happens on the pool's own thread, decoding the chunk with 13.
    let r = pool.map_async_with(touchy, [1, 13, 2], PoolOptions::new().chunksize(1)).unwrap();
    assert!(matches!(r.get(), Err(PoolError::Codec { .. })), "the call fails with a codec error");
    assert_eq!(other.get().unwrap(), 100, "another call in flight is delivered");
    assert_eq!(pool.map(touchy, [3, 4]).unwrap(), [Touchy(3), Touchy(4)], "the pool still serves");
    pool.close();
    pool.join();
}

#[test]
fn pool_b9_a_callback_terminates_while_another_thread_joins() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Arc::new(common::pool_new(1).unwrap());
    let p = pool.clone();
    let opts = PoolOptions::new().callback(move |_: &u64| {
        // By now the joining thread has taken the pool thread's handle and waits for it.
        std::thread::sleep(Duration::from_millis(100));
        p.terminate(); // must not wait for the thread it runs on
    });
    let r = pool.apply_async_with(plus_one, 1, opts).unwrap();
    pool.close();
    pool.join();
    assert_eq!(r.get().unwrap(), 2);
}

#[test]
fn pool_b9_an_imap_error_callback_joins_while_its_job_is_being_queued() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Arc::new(common::pool_new(2).unwrap());
    let p = pool.clone();
    // The item that cannot be encoded fails its chunk while the caller is still queueing the
    // job; the callback runs once the job is queued, so the join it makes can finish.
    let opts = PoolOptions::new().chunksize(1).error_callback(move |_| p.join());
    let items = vec![Picky(1), Picky(Picky::REFUSED), Picky(3)];
    let got: Vec<Result<u64, PoolError>> = pool.imap_with(unpick, items, opts).unwrap().collect();
    assert!(matches!(got[..], [Ok(1), Err(PoolError::Codec { .. }), Ok(3)]), "{got:?}");
    assert!(matches!(pool.apply_async(plus_one, 1), Err(PoolError::NotRunning)), "the callback's join closed it");
}
