//! START-B3 (`docs/BEHAVIOURS.md`): the fork server that `StartMethod::ForkServer` uses is
//! started again when it has died, and a server the program installed with an `init` comes back
//! with that same `init`, so children (and a pool's replacement workers) keep starting from the
//! prepared state instead of silently from a plain image.
//!
//! A test binary of its own: `install` changes the process-wide default server.
#![cfg(feature = "serde")] // the fork server
#![allow(clippy::disallowed_types)] // test code: a plain static for the prepared state

mod common;

use multiproc::{ForkServer, Pool, Process, StartMethod};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static PRELOADED: AtomicU32 = AtomicU32::new(0);

fn preload() {
    PRELOADED.store(11, Ordering::SeqCst);
}

fn read_preloaded(_: ()) -> i32 {
    PRELOADED.load(Ordering::SeqCst) as i32
}

fn child_sees() -> i32 {
    let p = Process::builder().start_method(StartMethod::ForkServer).spawn(read_preloaded, ()).unwrap();
    p.join().unwrap().exitcode()
}

fn kill_and_wait(server: &ForkServer) {
    common::sigkill(server.pid() as i32);
    let t = Instant::now();
    while server.is_alive() {
        assert!(t.elapsed() < Duration::from_secs(10), "the killed server still looks alive");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn start_b3_a_dead_installed_server_comes_back_with_its_init() {
    let _g = common::guard();
    let first = ForkServer::builder().init(preload).install().unwrap();
    assert_eq!(child_sees(), 11);
    kill_and_wait(&first);
    // Before: the default server came back without `init`, and this child saw 0.
    assert_eq!(child_sees(), 11, "the restarted server ran the installed init");
    let second = ForkServer::global().unwrap();
    assert!(second.is_alive());
    assert_ne!(second.pid(), first.pid(), "a new server, not the dead one");
    assert!(!first.is_alive(), "the old handle still says its server is dead");
    assert_eq!(PRELOADED.load(Ordering::SeqCst), 0, "init ran in the servers, not here");
}

#[test]
fn start_b3_a_pool_heals_through_a_restarted_server_with_its_init() {
    let _g = common::guard();
    let server = ForkServer::builder().init(preload).install().unwrap();
    let pool = Pool::builder().processes(2).start_method(StartMethod::ForkServer).build().unwrap();
    assert_eq!(pool.map(read_preloaded, [(), ()]).unwrap(), [11, 11]);
    // The server's death takes its children, the pool's workers, with it; the pool starts
    // new ones, through a new server.
    kill_and_wait(&server);
    let t = Instant::now();
    loop {
        match pool.apply(read_preloaded, ()) {
            Ok(v) => {
                assert_eq!(v, 11, "a replacement worker started from the prepared state");
                break;
            }
            // A task that met a worker dying with the server fails; the next one must not.
            Err(multiproc::PoolError::WorkerDied { .. }) => {
                assert!(t.elapsed() < Duration::from_secs(20), "the pool did not heal");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(pool.map(read_preloaded, vec![(); 8]).unwrap(), [11; 8]);
    pool.close();
    pool.join();
}
