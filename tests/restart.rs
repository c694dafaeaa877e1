//! A service killed and restarted gets its names back (SHM-B3 in `docs/BEHAVIOURS.md`): `create`
//! over the named objects of a dead creator that did not persist them removes them and creates
//! anew, and of two restarters exactly one wins. Real processes, forked under `fork_lock`.
#![cfg(feature = "serde")]

mod common;

use common::{fork_child, fork_lock, sigkill, wait_child, Ended, Watchdog};
use multiproc::{Event, Lock, Queue, Segment, SharedMemory, ShmError};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn names(tag: &str) -> [String; 4] {
    ["q", "l", "e", "m"].map(|k| format!("mp-test-restart-{tag}-{k}-{}", std::process::id()))
}

/// Forks a child that creates the four named objects (persisting them if asked), says so,
/// and waits to be killed; kills it and reaps it.
fn create_and_die(n: &[String; 4], persist: bool) {
    let ready = Event::new().unwrap();
    let pid = fork_child(|| {
        let q = Queue::<u32>::create(&n[0]).unwrap();
        q.put(&7).unwrap();
        let l = Lock::create(&n[1]).unwrap();
        let e = Event::create(&n[2]).unwrap();
        let m = SharedMemory::create(&n[3], 4096).unwrap();
        if persist {
            q.persist();
            l.persist();
            e.persist();
            m.persist();
        }
        ready.set();
        std::thread::sleep(Duration::from_secs(60));
        0
    });
    assert!(ready.wait_timeout(Duration::from_secs(10)).is_ok());
    sigkill(pid);
    assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
}

#[test]
fn shm_b3_a_killed_creators_names_are_created_afresh() {
    let _g = fork_lock();
    let _w = Watchdog::new("shm_b3_fresh", LIMIT);
    let n = names("fresh");
    create_and_die(&n, false);
    let q = Queue::<u32>::create(&n[0]).expect("a dead creator's queue name is taken over");
    assert!(q.empty(), "the new queue is new: the dead one's item is not in it");
    let _l = Lock::create(&n[1]).unwrap();
    let _e = Event::create(&n[2]).unwrap();
    let _m = SharedMemory::create(&n[3], 4096).unwrap();
    // And while this creator lives, the names are its own.
    assert!(matches!(Queue::<u32>::create(&n[0]), Err(ShmError::Exists { .. })));
}

#[test]
fn shm_b3_persisted_names_are_not_taken_over() {
    let _g = fork_lock();
    let _w = Watchdog::new("shm_b3_persisted", LIMIT);
    let n = names("persisted");
    create_and_die(&n, true);
    assert!(matches!(Queue::<u32>::create(&n[0]), Err(ShmError::Exists { .. })));
    assert!(matches!(Lock::create(&n[1]), Err(ShmError::Exists { .. })));
    // The persisted queue is still there, with its item.
    assert_eq!(Queue::<u32>::open(&n[0]).unwrap().get().unwrap(), 7);
    for name in &n {
        Segment::unlink(name).unwrap();
    }
}

#[test]
fn shm_b3_of_two_restarters_exactly_one_wins() {
    let _g = fork_lock();
    let _w = Watchdog::new("shm_b3_race", LIMIT);
    for round in 0..10 {
        let n = names(&format!("race{round}"));
        create_and_die(&n, false);
        let go = Event::new().unwrap();
        let pids: Vec<_> = (0..2)
            .map(|_| {
                fork_child(|| {
                    assert!(go.wait_timeout(Duration::from_secs(10)).is_ok());
                    match Queue::<u32>::create(&n[0]) {
                        Ok(q) => {
                            // Hold it while the other tries.
                            std::thread::sleep(Duration::from_millis(100));
                            drop(q);
                            0
                        }
                        Err(ShmError::Exists { .. }) => 1,
                        Err(_) => 2,
                    }
                })
            })
            .collect();
        go.set();
        let codes: Vec<_> = pids.into_iter().map(wait_child).collect();
        let wins = codes.iter().filter(|c| **c == Ended::Code(0)).count();
        let lost = codes.iter().filter(|c| **c == Ended::Code(1)).count();
        assert_eq!((wins, lost), (1, 1), "round {round}: {codes:?}");
        for name in &n[1..] {
            let _ = Segment::unlink(name);
        }
    }
}
