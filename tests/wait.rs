//! connection.wait (WAIT-* / PIPE-* in `docs/BEHAVIOURS.md`), multi-process. Every test holds `fork_lock` and a watchdog.
#![cfg(feature = "serde")] // typed messages (serde + postcard)
#![allow(clippy::disallowed_methods)] // test code: raw syscalls are fine here

mod common;

use common::{fork_child, fork_lock, wait_child, Ended, Watchdog};
use multiproc::{wait, Connection, Pipe, RecvError, Waitable};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

fn pidfd(pid: libc::pid_t) -> OwnedFd {
    // SAFETY: pidfd_open takes a pid and flags; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn wait_1_collects_every_message_from_four_children() {
    let _g = fork_lock();
    let _w = Watchdog::new("wait_1", LIMIT);
    let mut readers: Vec<Connection> = Vec::new();
    let mut pids = Vec::new();
    for i in 0..4u32 {
        let (r, w) = Pipe::one_way().unwrap();
        let pid = fork_child(move || {
            let mut w = w;
            let me = std::process::id();
            for _ in 0..10 {
                w.send(&(i, me)).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            0
        });
        // `w` moved into the closure: the parent's copy was dropped with it after fork.
        readers.push(r);
        pids.push(pid);
    }
    let mut got = Vec::new();
    while !readers.is_empty() {
        let refs: Vec<&dyn Waitable> = readers.iter().map(|r| r as &dyn Waitable).collect();
        let ready = wait(&refs, None);
        assert!(!ready.is_empty());
        let mut drop_ix = Vec::new();
        for &ix in &ready {
            match readers[ix].recv::<(u32, u32)>() {
                Ok(m) => got.push(m),
                Err(RecvError::Disconnected) => drop_ix.push(ix),
                Err(e) => panic!("{e}"),
            }
        }
        for ix in drop_ix.into_iter().rev() {
            readers.remove(ix);
        }
    }
    let mut want: Vec<(u32, u32)> =
        (0..4).flat_map(|i| std::iter::repeat_n((i, pids[i as usize] as u32), 10)).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    for p in pids {
        assert_eq!(wait_child(p), Ended::Code(0));
    }
}

#[test]
fn wait_2_timeout_then_ready_at_once() {
    let _g = fork_lock();
    let _w = Watchdog::new("wait_2", LIMIT);
    let (mut a_tx, a) = Pipe::duplex().unwrap();
    let (mut b_tx, b) = Pipe::duplex().unwrap();
    // 1 s instead of Python's 5 s keeps the file short; the property is the same lower bound.
    let t = Instant::now();
    assert!(wait(&[&a, &b], Some(Duration::from_secs(1))).is_empty());
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(900) && e <= Duration::from_secs(3), "{e:?}");
    b_tx.send(&()).unwrap();
    let t = Instant::now();
    assert_eq!(wait(&[&a, &b], Some(Duration::from_secs(20))), [1]);
    assert!(t.elapsed() < Duration::from_millis(400));
    // A zero ("negative") timeout checks once.
    let t = Instant::now();
    assert_eq!(wait(&[&a, &b], Some(Duration::ZERO)), [1]);
    assert!(t.elapsed() < Duration::from_secs(1));
    a_tx.send(&()).unwrap();
    assert_eq!(wait(&[&a, &b], Some(Duration::ZERO)), [0, 1]);
}

#[test]
fn wait_2_connections_and_process_sentinels_mixed() {
    let _g = fork_lock();
    let _w = Watchdog::new("wait_2_sentinel", LIMIT);
    let (mut a_tx, a) = Pipe::duplex().unwrap();
    let (_b_tx, b) = Pipe::duplex().unwrap();
    let pid = fork_child(|| {
        std::thread::sleep(Duration::from_millis(500));
        0
    });
    let sentinel = pidfd(pid);
    let t = Instant::now();
    let objs: [&dyn Waitable; 3] = [&a, &sentinel, &b];
    assert_eq!(wait(&objs, None), [1]);
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(400) && e <= Duration::from_secs(5), "{e:?}");
    a_tx.send(&1u8).unwrap();
    let t = Instant::now();
    assert_eq!(wait(&objs, Some(Duration::from_secs(20))), [0, 1]);
    assert!(t.elapsed() < Duration::from_millis(400));
    assert_eq!(wait_child(pid), Ended::Code(0));
}
