//! Spare workers (POOL-B6 in `docs/BEHAVIOURS.md`): after its first worker death a pool keeps a
//! worker started ahead of need, which takes the next dead worker's slot at once; a spare that
//! dies unneeded is not restarted until a worker dies again, and one whose initializer fails
//! breaks the pool as a replacement's would (POOL-B3), without a restart loop.
#![cfg(feature = "serde")] // pool tasks carry serde values
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{Pool, PoolError, StartMethod};
use std::time::{Duration, Instant};

fn pid(_: u8) -> i32 {
    std::process::id() as i32
}

fn die(_: u8) -> i32 {
    std::process::abort()
}

/// A fresh file (under the temporary directory, named for this process) to count starts in.
fn starts_file(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("mp-spare-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Counts one worker start in `file` (a byte appended; an initializer calls it) and returns
/// the starts so far.
fn count_start(file: &std::path::Path) -> Result<u64, String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file).map_err(|e| e.to_string())?;
    f.write_all(b"x").map_err(|e| e.to_string())?;
    drop(f);
    Ok(std::fs::metadata(file).map_err(|e| e.to_string())?.len())
}

/// Polls `f` until it gives a value (the watchdog bounds the test; this bounds the wait).
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{what} never happened");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn pool_b6_after_a_death_the_spare_takes_the_next_dead_workers_slot() {
    let _g = guard_for(Duration::from_secs(120));
    for method in [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn] {
        let pool = Pool::builder().processes(1).start_method(method).build().unwrap();
        assert_eq!(pool.spare_pid(), None, "{method:?}: a spare before any death");
        assert!(matches!(pool.apply(die, 0), Err(PoolError::WorkerDied { .. })));
        let spare = wait_for("a spare after the first death", || pool.spare_pid());
        assert!(!pool.worker_pids().contains(&spare), "{method:?}: the spare is in a slot already");
        // The next death: the spare has the slot as soon as the failure is delivered.
        assert!(matches!(pool.apply(die, 0), Err(PoolError::WorkerDied { .. })));
        assert_eq!(pool.worker_pids(), vec![spare], "{method:?}: the spare did not take the slot");
        assert_eq!(pool.apply(pid, 0).unwrap(), spare, "{method:?}: the task ran elsewhere");
        // And a new spare follows, while the pool goes on serving.
        let next = wait_for("the next spare", || pool.spare_pid().filter(|&p| p != spare));
        assert_ne!(next, spare);
        assert_eq!(pool.map(pid, [0u8; 4]).unwrap(), vec![spare; 4]);
    }
}

#[test]
fn pool_b6_a_spare_killed_unneeded_comes_back_only_after_the_next_death() {
    let _g = guard_for(Duration::from_secs(60));
    let pool = Pool::builder().processes(1).build().unwrap();
    assert!(matches!(pool.apply(die, 0), Err(PoolError::WorkerDied { .. })));
    let spare = wait_for("a spare", || pool.spare_pid());
    common::sigkill(spare);
    // Reaped, and not started again while no worker dies (each task below is a manager round).
    wait_for("the killed spare reaped", || pool.spare_pid().is_none().then_some(()));
    let worker = pool.apply(pid, 0).unwrap();
    for _ in 0..20 {
        assert_eq!(pool.apply(pid, 0).unwrap(), worker);
    }
    assert_eq!(pool.spare_pid(), None, "a spare that died unneeded was started again at once");
    // A worker's death makes the pool want one again: the slot gets a start on the spot, and
    // a spare follows.
    assert!(matches!(pool.apply(die, 0), Err(PoolError::WorkerDied { .. })));
    let again = wait_for("a spare after the next death", || pool.spare_pid());
    assert_ne!(again, spare);
}

#[test]
fn pool_b6_a_spare_whose_initializer_fails_breaks_the_pool_once() {
    let _g = guard_for(Duration::from_secs(60));
    // Counts the starts in a file: the first two (the first worker and the on-the-spot
    // replacement) succeed, every later one (the spare) fails.
    let starts = starts_file("init");
    let file = starts.clone();
    let pool = Pool::builder()
        .processes(1)
        .initializer(move || -> Result<(), String> {
            let n = count_start(&file)?;
            if n > 2 {
                return Err(format!("start {n} refused"));
            }
            Ok(())
        })
        .build()
        .unwrap();
    assert!(matches!(pool.apply(die, 0), Err(PoolError::WorkerDied { .. })));
    let e = wait_for("the pool broken by the spare's initializer", || match pool.apply(pid, 0) {
        Err(PoolError::InitializerFailed(e)) => Some(e),
        _ => None,
    });
    assert!(e.message.contains("start 3 refused"), "{e:?}");
    std::thread::sleep(Duration::from_millis(200));
    let n = std::fs::metadata(&starts).unwrap().len();
    let _ = std::fs::remove_file(&starts);
    assert_eq!(n, 3, "workers were started again after the spare's initializer failed");
}

fn die_on_99(x: u32) -> u32 {
    if x % 100 == 99 {
        std::process::abort()
    }
    x
}

#[test]
fn pool_b6_each_death_under_load_costs_one_start() {
    let _g = guard_for(Duration::from_secs(120));
    // Counts the starts in a file. Under a stream of work the manager holds the pool's state
    // most of the time; a spare handed over there must not be asked for a second time (whose
    // worker was then started only to be killed: two starts per death).
    let starts = starts_file("starts");
    let file = starts.clone();
    let pool = Pool::builder().processes(2).initializer(move || count_start(&file).map(drop)).build().unwrap();
    let mut crashes = 0;
    for o in pool.imap_unordered_outcomes(die_on_99, 0..3000u32).unwrap() {
        match o.result {
            Ok(v) => assert_eq!(v, o.index as u32),
            Err(PoolError::WorkerDied { .. }) => crashes += 1,
            Err(e) => panic!("input {}: {e}", o.index),
        }
    }
    assert_eq!(crashes, 30);
    pool.close();
    pool.join();
    let n = std::fs::metadata(&starts).unwrap().len();
    let _ = std::fs::remove_file(&starts);
    // Two workers, the first death's replacement on the spot, one spare per death, and at
    // most one spare started as the pool closed.
    assert!(n <= 2 + 1 + crashes + 1, "{n} worker starts for {crashes} deaths");
}
