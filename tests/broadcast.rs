//! `Broadcast`: every reader sees every message, slow and dead readers lag instead of
//! blocking writers, late readers start from now, killed writers never publish half a message.
//! Real processes, a watchdog on every test.
#![cfg(feature = "serde")] // typed messages (serde + postcard)
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::{chaos_secs, fork_child, guard, sigkill, wait_child, Ended, Rng};
use multiproc::{wait, Broadcast, BroadcastRecvTimeoutError, Event, PublishError, Semaphore, TryBroadcastRecvError};
use std::time::{Duration, Instant};

/// 1 writer, 4 reader processes, a ring larger than the run: every reader gets every message,
/// in order.
#[test]
fn every_reader_sees_every_message_in_order() {
    let _g = guard();
    const N: u64 = 5_000;
    let b = Broadcast::<u64>::new(8192, 8).unwrap();
    let ready = Semaphore::new(0).unwrap();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let mut sub = b.subscribe();
            fork_child(|| {
                ready.release();
                for i in 0..N {
                    if sub.recv().unwrap() != i {
                        return 1;
                    }
                }
                i32::from(sub.missed() != 0) * 2
            })
        })
        .collect();
    for _ in 0..4 {
        ready.acquire();
    }
    for i in 0..N {
        b.publish(&i).unwrap();
    }
    for pid in readers {
        assert_eq!(wait_child(pid), Ended::Code(0));
    }
    assert_eq!(b.published(), N);
}

/// 3 writer processes and 2 readers: each reader sees all 3,000 messages, each writer's in the
/// order it published them.
#[test]
fn many_writers_each_reader_sees_all_in_per_writer_order() {
    let _g = guard();
    const PER: u32 = 1_000;
    let b = Broadcast::<(u32, u32)>::new(4096, 16).unwrap();
    let go = Event::new().unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut sub = b.subscribe();
            fork_child(|| {
                let mut last = [None::<u32>; 3];
                for _ in 0..3 * PER {
                    let (w, i) = sub.recv().unwrap();
                    let w = w as usize;
                    if last[w].is_some_and(|l| l + 1 != i) || (last[w].is_none() && i != 0) {
                        return 1;
                    }
                    last[w] = Some(i);
                }
                i32::from(last != [Some(PER - 1); 3]) * 3
            })
        })
        .collect();
    let writers: Vec<_> = (0..3u32)
        .map(|w| {
            fork_child(|| {
                go.wait();
                for i in 0..PER {
                    b.publish(&(w, i)).unwrap();
                }
                0
            })
        })
        .collect();
    go.set();
    for pid in writers.into_iter().chain(readers) {
        assert_eq!(wait_child(pid), Ended::Code(0));
    }
}

/// A reader process stopped with SIGSTOP (and another killed) never holds the writer up; the
/// stopped one, resumed, reports how many it missed and goes on with consecutive messages.
#[test]
fn stopped_and_dead_readers_lag_and_never_block_the_writer() {
    let _g = guard();
    let b = Broadcast::<u64>::new(8, 8).unwrap();
    let started = Semaphore::new(0).unwrap();
    let mut slow = b.subscribe();
    let slow_pid = fork_child(|| {
        started.release();
        // SIGSTOPped here by the parent; then read what is left.
        let mut got = 0u64;
        let mut missed = 0u64;
        let mut last = None;
        loop {
            match slow.recv_timeout(Duration::from_secs(2)) {
                Ok(v) => {
                    if last.is_some_and(|l: u64| v <= l) {
                        return 1; // out of order
                    }
                    last = Some(v);
                    got += 1;
                    if v == 999 {
                        break;
                    }
                }
                Err(BroadcastRecvTimeoutError::Lagged(n)) => missed += n,
                Err(_) => return 2,
            }
        }
        // Every message is either received or counted as missed, never both, never neither.
        i32::from(got + missed != 1000 || missed != slow.missed() || missed == 0) * 3
    });
    let mut dead = b.subscribe();
    let dead_pid = fork_child(|| {
        let _ = dead.recv();
        0
    });
    started.acquire();
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(slow_pid, libc::SIGSTOP) };
    sigkill(dead_pid);
    assert_eq!(wait_child(dead_pid), Ended::Signal(libc::SIGKILL));
    for i in 0..1000u64 {
        b.publish(&i).unwrap(); // a writer blocked by a reader would trip the watchdog here
    }
    // SAFETY: as above.
    unsafe { libc::kill(slow_pid, libc::SIGCONT) };
    assert_eq!(wait_child(slow_pid), Ended::Code(0));
}

/// A subscriber made late starts at the next message; `subscribe_oldest` at the oldest kept.
#[test]
fn late_subscribers_start_from_now_or_from_the_oldest_kept() {
    let _g = guard();
    let b = Broadcast::<u32>::new(4, 8).unwrap();
    for i in 0..10 {
        b.publish(&i).unwrap();
    }
    let mut now = b.subscribe();
    let mut oldest = b.subscribe_oldest();
    assert!(matches!(now.try_recv(), Err(TryBroadcastRecvError::Empty)));
    b.publish(&10).unwrap();
    assert_eq!(now.try_recv().unwrap(), 10);
    // The oldest subscriber starts at 6 (10 - 4 slots); message 6's slot now holds 10.
    let mut seen = Vec::new();
    loop {
        match oldest.try_recv() {
            Ok(v) => seen.push(v),
            Err(TryBroadcastRecvError::Lagged(_)) => {}
            Err(TryBroadcastRecvError::Empty) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(seen.last(), Some(&10));
    assert!(seen.windows(2).all(|w| w[0] + 1 == w[1]), "{seen:?}");
    assert_eq!(oldest.position(), 11);
}

/// A writer SIGKILLed at random points, again and again: every message a reader gets is whole
/// (its bytes agree with its header), and a new writer can always publish after.
#[test]
fn killed_writers_never_publish_half_a_message() {
    let _g = guard();
    let b = Broadcast::<Vec<u8>>::new(64, 1024).unwrap();
    let mut sub = b.subscribe();
    let mut rng = Rng::new("killed_writers_never_publish_half_a_message");
    let end = Instant::now() + chaos_secs(2);
    let (mut kills, mut checked) = (0u64, 0u64);
    let mut check = |sub: &mut multiproc::Subscriber<Vec<u8>>| loop {
        match sub.try_recv_bytes() {
            Ok(m) => {
                let (len, fill) = (m[0] as usize * 4, m[1]);
                assert_eq!(m.len(), len.max(2), "torn length");
                assert!(m[2..].iter().all(|&x| x == fill), "torn payload");
                checked += 1;
            }
            Err(TryBroadcastRecvError::Lagged(_)) => {}
            Err(TryBroadcastRecvError::Empty) => break,
            Err(e) => panic!("{e}"),
        }
    };
    while Instant::now() < end {
        let seed = rng.next_u64();
        let pid = fork_child(|| {
            let mut r = seed;
            loop {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                let n = (r % 256) as u8;
                let mut m = vec![(r >> 8) as u8; (n as usize * 4).max(2)];
                m[0] = n;
                m[1] = (r >> 8) as u8;
                b.publish_bytes(&m).unwrap();
            }
        });
        std::thread::sleep(Duration::from_micros(rng.range(100, 3000)));
        sigkill(pid);
        assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
        kills += 1;
        check(&mut sub);
        // The writers' lock is free again (a dead holder is recovered).
        b.publish_bytes(&[1, 7, 7, 7]).unwrap();
    }
    check(&mut sub);
    eprintln!("{kills} writers killed, {checked} messages checked");
    assert!(kills > 0 && checked > 0);
}

/// Named: a forked child opens the broadcast by name and publishes; another type is refused.
#[test]
fn named_broadcast_open_and_type_check() {
    let _g = guard();
    let name = format!("mp-test-bcast-{}", std::process::id());
    let b = Broadcast::<String>::create(&name, 16, 64).unwrap();
    let mut sub = b.subscribe();
    let pid = fork_child(|| {
        let o = Broadcast::<String>::open(&name).unwrap();
        o.publish(&"from the opener".to_string()).unwrap();
        0
    });
    assert_eq!(sub.recv_timeout(Duration::from_secs(10)).unwrap(), "from the opener");
    assert_eq!(wait_child(pid), Ended::Code(0));
    assert!(matches!(Broadcast::<u64>::open(&name), Err(multiproc::ShmError::Mismatch { .. })));
    assert!(matches!(b.publish(&"x".repeat(100)), Err(PublishError::TooLarge { .. })));
    assert_eq!(b.published(), 1, "a refused message publishes nothing");
    drop(b);
    drop(sub);
    assert!(matches!(Broadcast::<String>::open(&name), Err(multiproc::ShmError::NotFound { .. })));
}

/// A subscriber in `wait` is woken by a publish from another process.
#[test]
fn wait_wakes_for_a_subscriber() {
    let _g = guard();
    let b = Broadcast::<u8>::new(4, 8).unwrap();
    let sub = b.subscribe();
    let ev = Event::new().unwrap();
    let pid = fork_child(|| {
        std::thread::sleep(Duration::from_millis(50));
        b.publish(&1).unwrap();
        0
    });
    assert_eq!(wait(&[&ev, &sub], Some(Duration::from_secs(20))), [1]);
    assert_eq!(wait_child(pid), Ended::Code(0));
}

/// Shared memory is untrusted: a length beyond the slot or a stamp older than the published
/// message is `Corrupt`, a stamp from the future a lag, never a panic or an out-of-bounds read.
/// The slot is found in the segment's file by its payload and rewritten from outside.
#[test]
fn corrupt_slots_are_errors_not_undefined_behaviour() {
    use std::os::unix::fs::FileExt;
    let _g = guard();
    let name = format!("mp-test-bcast-corrupt-{}", std::process::id());
    let b = Broadcast::<Vec<u8>>::create(&name, 4, 16).unwrap();
    let sub = b.subscribe();
    b.publish_bytes(b"MARKER01").unwrap();
    let file = std::fs::OpenOptions::new().read(true).write(true).open(format!("/dev/shm/{name}")).unwrap();
    let bytes = std::fs::read(format!("/dev/shm/{name}")).unwrap();
    let at = bytes.windows(8).position(|w| w == b"MARKER01").expect("the payload is in the segment") as u64;
    let put = |off: u64, v: u64| file.write_all_at(&v.to_ne_bytes(), off).unwrap();
    let read_once = || sub.clone().try_recv_bytes();
    assert_eq!(read_once().unwrap(), b"MARKER01");
    put(at - 8, 1 << 40); // the length
    assert!(matches!(read_once(), Err(TryBroadcastRecvError::Corrupt(_))));
    put(at - 8, 8);
    put(at - 16, 0); // the stamp: older than message 0
    assert!(matches!(read_once(), Err(TryBroadcastRecvError::Corrupt(_))));
    put(at - 16, 2 + 2 * 4); // the stamp of message 4: overwritten
    assert!(matches!(read_once(), Err(TryBroadcastRecvError::Lagged(_))));
    put(at - 16, 2);
    assert_eq!(read_once().unwrap(), b"MARKER01");
}

fn publish_from_spawned(b: Broadcast<u32>) -> Result<(), PublishError> {
    b.publish(&77).map(drop)
}

/// A broadcast handed to a spawned child as an argument works there.
#[test]
fn a_spawned_child_publishes_through_its_argument() {
    let _g = guard();
    let b = Broadcast::<u32>::new(8, 8).unwrap();
    let mut sub = b.subscribe();
    let p = multiproc::Process::builder()
        .start_method(multiproc::StartMethod::Spawn)
        .spawn(publish_from_spawned, b.clone())
        .unwrap();
    assert_eq!(sub.recv_timeout(Duration::from_secs(20)).unwrap(), 77);
    assert!(p.join().unwrap().success());
}
