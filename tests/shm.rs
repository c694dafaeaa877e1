//! Named objects and SharedMemory, SHM-* in `docs/BEHAVIOURS.md`, and "unrelated processes meet by
//! name": every named kind is opened by a separately launched program (this test binary run
//! again with `std::process::Command`, not forked), which does its part and exits 0.
#![cfg(feature = "serde")] // typed messages (serde + postcard)
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use multiproc::list_named;
use multiproc::{
    Array, ArrayQueue, Barrier, BoundedSemaphore, Broadcast, Condition, Event, JoinableQueue, Lock, Process, Queue,
    RLock, RawArray, RawValue, Segment, Semaphore, SharedMemory, ShmError, SimpleQueue, Value,
};
use std::process::{Command, Stdio};
use std::time::Duration;

const OPEN: Duration = Duration::from_secs(10);

fn unique(tag: &str) -> String {
    format!("mp-test-{tag}-{}", std::process::id())
}

/// Starts this test binary again as a separate program that plays `role` on `name`.
fn peer(role: &str, name: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "peer_program", "--nocapture", "--test-threads=1", "-q"])
        .env("MP_PEER_ROLE", role)
        .env("MP_PEER_NAME", name)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the peer program")
}

/// Runs the peer to completion; true if it did its part.
fn run_peer(role: &str, name: &str) -> bool {
    peer(role, name).wait().unwrap().success()
}

/// The peer's side of every test below: opens `MP_PEER_NAME` as what `MP_PEER_ROLE` says and
/// does its part; a failed check panics, so the program exits non-zero.
#[test]
#[ignore = "run by the other tests of this file as a separate program"]
fn peer_program() {
    let role = std::env::var("MP_PEER_ROLE").expect("MP_PEER_ROLE is set by the test that runs this");
    let name = std::env::var("MP_PEER_NAME").unwrap();
    match role.as_str() {
        "lock-is-held" => {
            assert!(Lock::open_timeout(&name, OPEN).unwrap().try_lock().is_err_and(|e| e.is_would_block()))
        }
        "rlock-is-held" => {
            assert!(RLock::open_timeout(&name, OPEN).unwrap().try_lock().is_err_and(|e| e.is_would_block()))
        }
        "semaphore-take-2" => {
            let s = Semaphore::open_timeout(&name, OPEN).unwrap();
            assert!(s.try_acquire().is_ok() && s.try_acquire().is_ok() && s.try_acquire().is_err());
        }
        "bounded-over-release" => {
            let s = BoundedSemaphore::open_timeout(&name, OPEN).unwrap();
            assert!(s.release().is_err(), "the bound travels with the object");
        }
        "event-set" => Event::open_timeout(&name, OPEN).unwrap().set(),
        "condition-notify" => {
            let c = Condition::<Lock>::open_timeout(&name, OPEN).unwrap();
            let flag = Value::<u32>::open_timeout(&format!("{name}-flag"), OPEN).unwrap();
            let g = c.lock().lock().unwrap();
            flag.set(1).unwrap();
            c.notify_all(&g).unwrap();
        }
        "barrier-wait" => {
            Barrier::open_timeout(&name, OPEN).unwrap().wait_timeout(OPEN).unwrap();
        }
        "value-add" => {
            Value::<u64>::open_timeout(&name, OPEN).unwrap().fetch_add(5).unwrap();
        }
        "array-set" => Array::<u32>::open_timeout(&name, OPEN).unwrap().set(7, 1).unwrap(),
        "raw-value-set" => RawValue::<i64>::open_timeout(&name, OPEN).unwrap().set(-3),
        "raw-array-set" => RawArray::<u16>::open_timeout(&name, OPEN).unwrap().set(2, 9).unwrap(),
        "queue-consume" => {
            let q = Queue::<u64>::open_timeout(&name, OPEN).unwrap();
            let got: Vec<u64> = (0..10).map(|_| q.get_timeout(OPEN).unwrap()).collect();
            assert_eq!(got, (0..10).collect::<Vec<_>>());
        }
        "simple-queue-reply" => {
            let q = SimpleQueue::<String>::open_timeout(&name, OPEN).unwrap();
            let s = q.get_timeout(OPEN).unwrap();
            q.put(&format!("{s} back")).unwrap();
        }
        "joinable-consume" => {
            let q = JoinableQueue::<u64>::open_timeout(&name, OPEN).unwrap();
            for _ in 0..3 {
                q.get_timeout(OPEN).unwrap();
                q.task_done().unwrap();
            }
        }
        "array-queue-produce" => {
            let q = ArrayQueue::<u64>::open_timeout(&name, OPEN).unwrap();
            for i in 0..100 {
                q.push_timeout(i, OPEN).unwrap();
            }
        }
        "shared-memory-howdy" => SharedMemory::open_timeout(&name, OPEN).unwrap().write_at(0, b"howdy").unwrap(),
        "broadcast-echo" => {
            // A fuzzing instance's shape (LLMP): subscribe to the shared channel, announce itself,
            // read what the others publish, publish what it found.
            let b = Broadcast::<String>::open_timeout(&name, OPEN).unwrap();
            let mut sub = b.subscribe();
            b.publish(&"ready".to_string()).unwrap();
            loop {
                match sub.recv_timeout(OPEN).unwrap() {
                    s if s == "input" => break,
                    _ => continue, // our own "ready"
                }
            }
            b.publish(&"found".to_string()).unwrap();
        }
        "queue-as-wrong-type" => {
            let r = Queue::<String>::open_timeout(&name, OPEN);
            assert!(matches!(r, Err(ShmError::Mismatch { .. })), "{r:?}");
            let r = Lock::open(&name);
            assert!(matches!(r, Err(ShmError::Mismatch { .. })), "{r:?}");
        }
        other => panic!("unknown peer role {other}"),
    }
}

#[test]
fn shm_named_locks_are_seen_held_by_another_program() {
    let _g = common::guard();
    let (n, m) = (unique("lock"), unique("rlock"));
    let (lock, rlock) = (Lock::create(&n).unwrap(), RLock::create(&m).unwrap());
    let _held = lock.lock().unwrap();
    let _rheld = rlock.lock().unwrap();
    assert!(run_peer("lock-is-held", &n));
    assert!(run_peer("rlock-is-held", &m));
}

#[test]
fn shm_named_semaphores_events_and_barriers_work_across_programs() {
    let _g = common::guard();
    let n = unique("sem");
    let s = Semaphore::create(&n, 2).unwrap();
    assert!(run_peer("semaphore-take-2", &n));
    assert_eq!(s.get_value(), 0);

    let n = unique("bsem");
    let _b = BoundedSemaphore::create(&n, 1).unwrap();
    assert!(run_peer("bounded-over-release", &n));

    let n = unique("event");
    let e = Event::create(&n).unwrap();
    assert!(run_peer("event-set", &n));
    assert!(e.is_set());

    let n = unique("barrier");
    let b = Barrier::create(&n, 2).unwrap();
    let mut p = peer("barrier-wait", &n);
    b.wait_timeout(OPEN).expect("the other program arrived");
    assert!(p.wait().unwrap().success());
}

#[test]
fn shm_named_condition_is_notified_from_another_program() {
    let _g = common::guard();
    let n = unique("cond");
    let c = Condition::<Lock>::create(&n).unwrap();
    let flag = Value::create(&format!("{n}-flag"), 0u32).unwrap();
    let mut g = c.lock().lock().unwrap();
    let mut p = peer("condition-notify", &n);
    while flag.get().unwrap() == 0 {
        g = match c.wait_timeout(g, Duration::from_millis(100)) {
            Ok(g) => g,
            Err(multiproc::ConditionWaitTimeoutError::Timeout(g)) => g,
            Err(e) => panic!("{e}"),
        };
    }
    drop(g);
    assert!(p.wait().unwrap().success());
}

#[test]
fn shm_named_values_and_arrays_are_shared_with_another_program() {
    let _g = common::guard();
    let n = unique("value");
    let v = Value::create(&n, 1u64).unwrap();
    assert!(run_peer("value-add", &n));
    assert_eq!(v.get().unwrap(), 6);

    let n = unique("array");
    let a = Array::create(&n, &[0u32; 8]).unwrap();
    assert!(run_peer("array-set", &n));
    assert_eq!(a.to_vec().unwrap(), [0, 0, 0, 0, 0, 0, 0, 1]);

    let n = unique("rawvalue");
    let v = RawValue::create(&n, 0i64).unwrap();
    assert!(run_peer("raw-value-set", &n));
    assert_eq!(v.get(), -3);

    let n = unique("rawarray");
    let a = RawArray::create(&n, &[1u16, 2, 3]).unwrap();
    assert!(run_peer("raw-array-set", &n));
    assert_eq!(a.to_vec(), [1, 2, 9]);
}

#[test]
fn shm_named_queues_carry_items_between_programs() {
    let _g = common::guard();
    let n = unique("queue");
    let q = Queue::<u64>::create(&n).unwrap();
    for i in 0..10 {
        q.put(&i).unwrap();
    }
    assert!(run_peer("queue-consume", &n));
    assert!(q.empty());

    let n = unique("simple");
    let q = SimpleQueue::<String>::create(&n).unwrap();
    q.put(&"ping".to_string()).unwrap();
    let mut p = peer("simple-queue-reply", &n);
    assert!(p.wait().unwrap().success());
    assert_eq!(q.get_timeout(OPEN).unwrap(), "ping back");

    let n = unique("joinable");
    let q = JoinableQueue::<u64>::create(&n).unwrap();
    for i in 0..3 {
        q.put(&i).unwrap();
    }
    let mut p = peer("joinable-consume", &n);
    assert!(q.join_timeout(OPEN).is_ok(), "the other program's task_done calls reach join");
    assert!(p.wait().unwrap().success());

    let n = unique("arrayqueue");
    let q = ArrayQueue::<u64>::create(&n, 16).unwrap();
    let mut p = peer("array-queue-produce", &n);
    let sum: u64 = (0..100).map(|_| q.pop_timeout(OPEN).unwrap()).sum();
    assert_eq!(sum, 4950);
    assert!(p.wait().unwrap().success());
}

/// A broadcast shared with a separately launched program: both see every message.
#[test]
fn shm_named_broadcast_between_programs() {
    let _g = common::guard();
    let n = unique("broadcast");
    let b = Broadcast::<String>::create(&n, 64, 64).unwrap();
    let mut sub = b.subscribe();
    let mut p = peer("broadcast-echo", &n);
    assert_eq!(sub.recv_timeout(OPEN).unwrap(), "ready");
    b.publish(&"input".to_string()).unwrap();
    assert_eq!(sub.recv_timeout(OPEN).unwrap(), "input"); // our own, as every subscriber sees it
    assert_eq!(sub.recv_timeout(OPEN).unwrap(), "found");
    assert!(p.wait().unwrap().success());
}

/// Kind and type are checked on open, in-process and from another program.
#[test]
fn shm_named_wrong_kind_or_type_is_a_mismatch() {
    let _g = common::guard();
    let n = unique("mismatch");
    let _q = Queue::<u64>::create(&n).unwrap();
    assert!(run_peer("queue-as-wrong-type", &n));
    match Value::<u64>::open(&n) {
        Err(ShmError::Mismatch { expected, found, .. }) => {
            assert_eq!(expected, "Value<u64>");
            assert_eq!(found, "Queue<u64>");
        }
        other => panic!("{other:?}"),
    }
    let n = unique("mismatch-array");
    let _a = Array::create(&n, &[0u32; 4]).unwrap();
    assert!(matches!(Array::<i32>::open(&n), Err(ShmError::Mismatch { .. })), "same size, other type");
    assert!(matches!(Array::<u64>::open(&n), Err(ShmError::Mismatch { .. })));
    assert!(matches!(RawArray::<u32>::open(&n), Err(ShmError::Mismatch { .. })), "other kind");
    assert!(Array::<u32>::open(&n).is_ok());
}

#[test]
fn shm_1_create_has_the_name_and_size() {
    let n = unique("shm1");
    let shm = SharedMemory::create(&n, 512).unwrap();
    assert_eq!(shm.name(), Some(n.as_str()), "as Python's `name`: without the leading slash");
    assert_eq!(shm.len(), 512);
    assert_eq!(shm.as_atomic_bytes().len(), 512);
    let repr = format!("{shm:?}");
    assert!(repr.contains(&n) && repr.contains("512"), "{repr}");
}

#[test]
fn shm_2_and_3_a_second_handle_sees_writes_and_the_real_size() {
    let n = unique("shm2");
    let shm = SharedMemory::create(&n, 100).unwrap();
    shm.write_at(0, &[42]).unwrap();
    let other = SharedMemory::open(&n).unwrap();
    let mut b = [0u8];
    other.read_at(0, &mut b).unwrap();
    assert_eq!(b[0], 42);
    assert_eq!(other.len(), 100, "the opener gets the created size");
}

#[test]
fn shm_4_and_5_bad_sizes_taken_and_missing_names_are_errors() {
    let n = unique("shm4");
    assert!(matches!(SharedMemory::create(&n, 0), Err(ShmError::TooSmall { .. })));
    assert!(matches!(SharedMemory::create("", 10), Err(ShmError::InvalidName { .. })));
    assert!(matches!(SharedMemory::open(""), Err(ShmError::InvalidName { .. })));
    let _shm = SharedMemory::create(&n, 10).unwrap();
    assert!(matches!(SharedMemory::create(&n, 10), Err(ShmError::Exists { .. })));
    assert!(matches!(SharedMemory::open(&unique("shm4-missing")), Err(ShmError::NotFound { .. })));
    assert!(matches!(Queue::<u8>::create(&n), Err(ShmError::Exists { .. })));
    assert!(matches!(Semaphore::create(&n, 1), Err(ShmError::Exists { .. })));
}

#[test]
fn shm_6_unlink_works_once() {
    let n = unique("shm6");
    let shm = SharedMemory::create(&n, 10).unwrap();
    let other = SharedMemory::open(&n).unwrap();
    shm.unlink().unwrap();
    assert!(matches!(other.unlink(), Err(ShmError::NotFound { .. })));
    assert!(matches!(SharedMemory::open(&n), Err(ShmError::NotFound { .. })));
}

#[test]
fn shm_7_dropping_a_handle_releases_only_that_mapping() {
    let n = unique("shm7");
    let shm = SharedMemory::create(&n, 10).unwrap();
    let other = SharedMemory::open(&n).unwrap();
    other.write_at(0, b"x").unwrap();
    drop(other);
    let again = SharedMemory::open(&n).expect("still there: only the creator's drop unlinks");
    let mut b = [0u8];
    again.read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"x");
    drop(shm);
    assert!(matches!(SharedMemory::open(&n), Err(ShmError::NotFound { .. })));
}

#[test]
fn shm_9_a_separate_program_and_a_forked_child_write_and_the_parent_sees() {
    let _g = common::guard();
    let n = unique("shm9");
    let shm = SharedMemory::create(&n, 16).unwrap();
    assert!(run_peer("shared-memory-howdy", &n));
    let mut b = [0u8; 5];
    shm.read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"howdy");

    let handed = shm.clone();
    let p = Process::new(move || handed.write_at(5, b"HELLO"));
    p.start().unwrap();
    p.join().unwrap().exit_ok().unwrap();
    shm.read_at(5, &mut b).unwrap();
    assert_eq!(&b, b"HELLO");
}

/// Python needs a resource tracker for this (SHM-10); here the creator's drop unlinks, and a
/// creator killed before its drop leaves a segment that `clean_stale` removes.
#[test]
fn shm_10_a_killed_creators_segment_is_cleaned() {
    let _g = common::guard();
    let n = unique("shm10");
    let made = multiproc::Event::new().unwrap();
    let (n2, made2) = (n.clone(), made.clone());
    let p = Process::new(move || -> std::convert::Infallible {
        let _shm = SharedMemory::create(&n2, 64).unwrap();
        made2.set();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    p.start().unwrap();
    assert!(made.wait_timeout(OPEN).is_ok());
    p.kill().unwrap();
    p.join().unwrap();
    let full = n.clone();
    let listed = list_named().unwrap().into_iter().find(|s| s.name == full).expect("left by the killed creator");
    assert!(!listed.creator_alive);
    assert_eq!(listed.object, "SharedMemory");
    assert!(Segment::clean_stale().unwrap().contains(&full));
    assert!(matches!(SharedMemory::open(&n), Err(ShmError::NotFound { .. })));
}

/// SHM-B1: a process that only opens never unlinks, however it ends.
#[test]
fn shm_b1_an_opener_never_unlinks() {
    let _g = common::guard();
    let n = unique("shmb1");
    let shm = SharedMemory::create(&n, 8).unwrap();
    assert!(run_peer("shared-memory-howdy", &n));
    let n2 = n.clone();
    let p = Process::new(move || SharedMemory::open(&n2).map(drop));
    p.start().unwrap();
    p.join().unwrap().exit_ok().unwrap();
    assert!(SharedMemory::open(&n).is_ok(), "an opener's exit removed the creator's segment");
    drop(shm);
}

/// An opener keeps working after the creator has exited (and its drop removed the name).
#[test]
fn shm_named_an_opener_outlives_the_creator() {
    let _g = common::guard();
    let n = unique("outlive");
    let opened = multiproc::Event::new().unwrap();
    let n2 = n.clone();
    let o2 = opened.clone();
    let creator = Process::new(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let q = Queue::<u64>::create(&n2)?;
        for i in 0..3 {
            q.put(&i)?;
        }
        if o2.wait_timeout(OPEN).is_err() {
            return Err("the opener never opened".into());
        }
        Ok(()) // drops the creator's handle: the name goes
    });
    creator.start().unwrap();
    let q = Queue::<u64>::open_timeout(&n, OPEN).unwrap();
    opened.set();
    creator.join().unwrap().exit_ok().unwrap();
    assert!(matches!(Queue::<u64>::open(&n), Err(ShmError::NotFound { .. })), "the creator's exit removed the name");
    let got: Vec<u64> = (0..3).map(|_| q.get_timeout(OPEN).unwrap()).collect();
    assert_eq!(got, [0, 1, 2]);
    q.put(&9).unwrap();
    assert_eq!(q.get().unwrap(), 9);
}

/// SIGKILL at random moments of a process that creates and drops named objects in a
/// loop never leaves a half-made segment: whatever is left under its names opens complete,
/// and `clean_stale` removes all of it.
#[test]
fn shm_named_creators_killed_mid_create_leave_nothing_unclean() {
    let secs = common::chaos_secs(2);
    let _g = common::guard_for(secs + Duration::from_secs(60));
    let mut rng = common::Rng::new("shm_named_creators_killed");
    let end = std::time::Instant::now() + secs;
    let mut rounds = 0;
    while std::time::Instant::now() < end || rounds < 5 {
        rounds += 1;
        let prefix = unique(&format!("kill{rounds}"));
        let p2 = prefix.clone();
        let p = Process::new(move || -> std::convert::Infallible {
            let mut i = 0u64;
            loop {
                let name = format!("{p2}-{}", i % 4);
                let q = Queue::<u64>::builder().capacity_bytes(64 << 10).create(&name);
                if let Ok(q) = q {
                    q.persist(); // as if killed before the drop: leaves a complete segment
                }
                i += 1;
            }
        });
        p.start().unwrap();
        std::thread::sleep(Duration::from_micros(rng.range(200, 20_000)));
        p.kill().unwrap();
        p.join().unwrap();
        let pid = p.pid().unwrap();
        for s in list_named().unwrap().into_iter().filter(|s| s.creator_pid == pid) {
            if !s.temporary {
                assert!(s.name.starts_with(&prefix), "{s:?}");
                assert!(s.published && s.object == "Queue<u64>", "a half-made segment is visible: {s:?}");
                Queue::<u64>::open(&s.name).expect("whatever has a name opens complete");
            }
            assert!(!s.creator_alive);
        }
        let cleaned = Segment::clean_stale().unwrap();
        assert!(
            !list_named().unwrap().iter().any(|s| s.creator_pid == pid),
            "clean_stale left some of the killed creator's segments (cleaned {cleaned:?})"
        );
    }
    eprintln!("shm kill chaos: {rounds} rounds in {secs:?}");
}

/// A size no segment can have is `TooLarge`, never a sum that wraps into a small segment.
#[test]
fn shm_a_size_that_cannot_exist_is_too_large() {
    for len in [usize::MAX, usize::MAX - 63] {
        let r = multiproc::SharedMemory::anonymous(len);
        assert!(matches!(r, Err(multiproc::ShmError::TooLarge { .. })), "{len}: {r:?}");
        let r = multiproc::SharedMemory::create(&format!("mp-test-huge-{}", std::process::id()), len);
        assert!(matches!(r, Err(multiproc::ShmError::TooLarge { .. })), "{len}: {r:?}");
    }
}

/// A named segment larger than all of `/dev/shm` is `NoSpace` when it is made, not a SIGBUS at
/// its first touch later (the space is allocated up front), and it leaves no name behind.
/// (Anonymous segments live outside `/dev/shm`, on the kernel's own unlimited mount.)
#[test]
fn shm_a_segment_larger_than_dev_shm_is_no_space_at_once() {
    // SAFETY: all-zero bytes are a valid statvfs (plain integers).
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a writable statvfs; the path is a NUL-terminated literal.
    assert_eq!(unsafe { libc::statvfs(c"/dev/shm".as_ptr(), &mut st) }, 0);
    let total = (st.f_blocks as u64).saturating_mul(st.f_frsize as u64);
    if total == 0 {
        eprintln!("/dev/shm reports no size (no limit): nothing to exceed");
        return;
    }
    // More than the whole file system: tmpfs refuses it before allocating a page.
    let len = usize::try_from(total + (64 << 20)).unwrap();
    let name = format!("mp-test-nospace-{}", std::process::id());
    let r = multiproc::SharedMemory::create(&name, len);
    assert!(matches!(r, Err(multiproc::ShmError::NoSpace { .. })), "{len}: {r:?}");
    assert!(matches!(multiproc::SharedMemory::open(&name), Err(multiproc::ShmError::NotFound { .. })));
}
