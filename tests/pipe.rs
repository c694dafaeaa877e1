//! Pipe / Connection (WAIT-* / PIPE-* in `docs/BEHAVIOURS.md`), multi-process: every test forks, holds `fork_lock` (so that no
//! other test's child inherits our descriptors and keeps an end open) and a watchdog.
#![cfg(feature = "serde")] // typed messages (serde + postcard)

mod common;

use common::{fork_child, fork_lock, sigkill, wait_child, Ended, Rng, Watchdog};
use multiproc::{Connection, Pipe, PollTimeoutError, RecvError, RecvTimeoutError, SendError, SendTimeoutError};
use multiproc::{TryPollError, TryRecvError, TrySendError, WaitStrategy};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

/// Forks a child that runs `f` on `end` (the other end is dropped in the child); returns its pid.
fn child_with(end: Connection, other: &mut Option<Connection>, f: impl FnOnce(Connection) -> i32) -> libc::pid_t {
    fork_child(|| {
        drop(other.take());
        f(end)
    })
}

#[test]
fn pipe_1_duplex_serde_roundtrip() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_1", LIMIT);
    let (a, b) = Pipe::duplex().unwrap();
    assert!(a.readable() && a.writable() && b.readable() && b.writable());
    assert!(a.fileno().is_some());
    let mut a = Some(a);
    let pid = child_with(b, &mut a, |mut b| {
        let v: (i32, f64, Option<u8>) = b.recv().unwrap();
        b.send(&v).unwrap();
        0
    });
    let mut a = a.unwrap();
    a.send(&(1i32, 2.25f64, None::<u8>)).unwrap();
    assert_eq!(a.recv::<(i32, f64, Option<u8>)>().unwrap(), (1, 2.25, None));
    assert_eq!(wait_child(pid), Ended::Code(0));
}

#[test]
fn pipe_2_bytes_and_16mib_roundtrip() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_2", LIMIT);
    let (a, b) = Pipe::builder().capacity(1 << 16).duplex().unwrap();
    let mut a = Some(a);
    let pid = child_with(b, &mut a, |mut b| {
        for _ in 0..2 {
            let m = b.recv_bytes().unwrap();
            b.send_bytes(&m).unwrap();
        }
        0
    });
    let mut a = a.unwrap();
    a.send_bytes(b"hello world").unwrap();
    assert_eq!(a.recv_bytes().unwrap(), b"hello world");
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i ^ (i >> 11)) as u8).collect();
    a.send_bytes(&big).unwrap();
    assert!(a.recv_bytes().unwrap() == big, "16 MiB message came back altered");
    assert_eq!(wait_child(pid), Ended::Code(0));
}

#[test]
fn pipe_2_message_over_the_maximum_is_rejected() {
    let _g = fork_lock();
    let (mut a, mut b) = Pipe::builder().max_message(100).duplex().unwrap();
    assert!(matches!(a.send_bytes(&[0; 101]), Err(SendError::TooLarge { len: 101, max: 100 })));
    a.send_bytes(&[1; 100]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), [1; 100]);
}

#[test]
fn pipe_3_recv_bytes_into_offset_and_too_short() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_3", LIMIT);
    let (r, w) = Pipe::one_way().unwrap();
    let mut r = Some(r);
    let pid = child_with(w, &mut r, |mut w| {
        let ints: Vec<u8> = [0i32, 1, 2, 3].iter().flat_map(|i| i.to_ne_bytes()).collect();
        w.send_bytes(&ints).unwrap();
        w.send_bytes(&ints).unwrap();
        w.send_bytes(&[b'x'; 110]).unwrap();
        0
    });
    let mut r = r.unwrap();
    let ints = |b: &[u8]| -> Vec<i32> { b.chunks(4).map(|c| i32::from_ne_bytes(c.try_into().unwrap())).collect() };
    let mut buf = [0u8; 40];
    assert_eq!(r.recv_bytes_into(&mut buf, 0).unwrap(), 16);
    assert_eq!(ints(&buf), [0, 1, 2, 3, 0, 0, 0, 0, 0, 0]);
    let mut buf = [0u8; 40];
    assert_eq!(r.recv_bytes_into(&mut buf, 12).unwrap(), 16);
    assert_eq!(ints(&buf), [0, 0, 0, 0, 1, 2, 3, 0, 0, 0]);
    match r.recv_bytes_into(&mut [0u8; 40], 0) {
        Err(RecvError::BufferTooShort(m)) => assert_eq!(m, [b'x'; 110]),
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    assert_eq!(wait_child(pid), Ended::Code(0));
}

#[test]
fn pipe_4_poll_forms() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_4", LIMIT);
    let (a, b) = Pipe::duplex().unwrap();
    assert!(matches!(b.try_poll(), Err(TryPollError::Empty)));
    assert!(matches!(b.poll_timeout(Duration::ZERO), Err(PollTimeoutError::Timeout)));
    let t = Instant::now();
    assert!(matches!(b.poll_timeout(Duration::from_millis(100)), Err(PollTimeoutError::Timeout)));
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(90) && e <= Duration::from_millis(2100), "{e:?}");
    let mut b = Some(b);
    let pid = child_with(a, &mut b, |mut a| {
        a.send_bytes(b"data").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        a.send_bytes(b"later").unwrap();
        0
    });
    let mut b = b.unwrap();
    b.poll_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"data");
    b.poll().expect("poll blocks until data arrives");
    assert_eq!(b.recv_bytes().unwrap(), b"later");
    assert_eq!(wait_child(pid), Ended::Code(0));
}

#[test]
fn pipe_5_eof_after_drain_when_closed_in_every_process() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_5", LIMIT);
    let (a, b) = Pipe::duplex().unwrap();
    let mut b = Some(b);
    let pid = child_with(a, &mut b, |mut a| {
        for i in 0..100u32 {
            a.send(&i).unwrap();
        }
        0 // exiting closes the child's copy
    });
    let mut b = b.unwrap();
    for i in 0..100u32 {
        assert_eq!(b.recv::<u32>().unwrap(), i);
    }
    assert!(matches!(b.recv_bytes(), Err(RecvError::Disconnected)));
    assert!(matches!(b.recv::<u32>(), Err(RecvError::Disconnected)));
    assert!(b.try_poll().is_ok(), "end of file counts as readable");
    assert!(matches!(b.send_bytes(&[0; 300_000]), Err(SendError::Disconnected)), "the reader side died too");
    assert_eq!(wait_child(pid), Ended::Code(0));
}

/// The 0.1 name `Pipe::new` is kept, deprecated, as the one-way pipe it always was.
#[test]
#[allow(deprecated)]
fn pipe_6_deprecated_new_is_still_one_way() {
    let (r, w) = Pipe::new().unwrap();
    assert!(r.readable() && !r.writable() && w.writable() && !w.readable());
}

#[test]
fn pipe_6_one_way_wrong_direction_is_an_error() {
    let _g = fork_lock();
    let (mut r, mut w) = Pipe::one_way().unwrap();
    assert!(r.readable() && !r.writable() && w.writable() && !w.readable());
    assert!(matches!(r.send_bytes(b"x"), Err(SendError::NotWritable)));
    assert!(matches!(w.recv_bytes(), Err(RecvError::NotReadable)));
    assert!(matches!(w.try_poll(), Err(TryPollError::NotReadable)));
    assert_eq!(SendError::NotWritable.to_string(), "connection is read-only");
}

#[test]
fn pipe_7_send_bytes_ranges() {
    let _g = fork_lock();
    let (mut a, mut b) = Pipe::duplex().unwrap();
    let msg: Vec<u8> = (b'a'..=b'z').collect();
    a.send_bytes_range(&msg, 5, None).unwrap();
    a.send_bytes_range(&msg, 7, Some(8)).unwrap();
    a.send_bytes_range(&msg, 26, None).unwrap();
    a.send_bytes_range(&msg, 26, Some(0)).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), &msg[5..]);
    assert_eq!(b.recv_bytes().unwrap(), &msg[7..15]);
    assert_eq!(b.recv_bytes().unwrap(), b"");
    assert_eq!(b.recv_bytes().unwrap(), b"");
}

#[test]
fn pipe_8_bad_ranges_send_nothing() {
    let _g = fork_lock();
    let (mut a, b) = Pipe::duplex().unwrap();
    let msg: Vec<u8> = (b'a'..=b'z').collect();
    for (off, size) in [(27, None), (22, Some(5)), (26, Some(1)), (usize::MAX, None), (0, Some(usize::MAX))] {
        assert!(matches!(a.send_bytes_range(&msg, off, size), Err(SendError::BadRange { .. })), "{off} {size:?}");
    }
    assert!(matches!(b.try_poll(), Err(TryPollError::Empty)), "a rejected range sends nothing");
}

#[test]
fn pipe_9_empty_messages_and_boundaries() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_9", LIMIT);
    let (a, b) = Pipe::duplex().unwrap();
    let seq: [&[u8]; 8] = [b"hello", b"", b"a", b"b", b"", b"bye", b"", b"lop"];
    let mut b = Some(b);
    let pid = child_with(a, &mut b, |mut a| {
        for m in seq {
            a.send_bytes(m).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        0
    });
    let mut b = b.unwrap();
    for m in seq {
        b.poll_timeout(Duration::from_secs(10)).unwrap();
        assert!(b.poll_timeout(Duration::ZERO).is_ok() && b.try_poll().is_ok(), "poll stays true");
        assert_eq!(b.recv_bytes().unwrap(), m);
    }
    assert_eq!(wait_child(pid), Ended::Code(0));
    let (mut a, mut b) = Pipe::duplex().unwrap();
    a.send_bytes(b"a").unwrap();
    a.send_bytes(b"b").unwrap();
    a.send_bytes(b"cd").unwrap();
    assert_eq!([b.recv_bytes().unwrap(), b.recv_bytes().unwrap(), b.recv_bytes().unwrap()], [&b"a"[..], b"b", b"cd"]);
}

#[test]
fn pipe_10_poll_in_another_process_never_consumes() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_10", LIMIT);
    let (mut a, b) = Pipe::duplex().unwrap();
    a.send_bytes(b"first").unwrap();
    a.send_bytes(b"second").unwrap();
    let pid = fork_child(|| if b.try_poll().is_ok() && b.try_poll().is_ok() { 0 } else { 1 });
    assert_eq!(wait_child(pid), Ended::Code(0));
    let mut b = b;
    assert_eq!(b.recv_bytes().unwrap(), b"first");
    assert_eq!(b.recv_bytes().unwrap(), b"second");
}

#[test]
fn pipe_11_closed_handle_fails() {
    let _g = fork_lock();
    let (mut a, mut b) = Pipe::duplex().unwrap();
    assert!(!a.closed());
    a.close();
    assert!(a.closed() && !a.readable() && !a.writable());
    assert!(matches!(a.recv_bytes(), Err(RecvError::Closed)));
    assert!(matches!(a.send_bytes(b""), Err(SendError::Closed)));
    assert!(matches!(b.recv_bytes(), Err(RecvError::Disconnected)));
    a.close(); // idempotent
}

#[test]
fn pipe_12_recv_bytes_maxlength() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_12", LIMIT);
    let (mut a, mut b) = Pipe::builder().capacity(256).duplex().unwrap();
    let h = std::thread::spawn(move || {
        a.send_bytes(b"0123456789").unwrap();
        a.send_bytes(&[5u8; 5000]).unwrap(); // fragmented: waits for the reader
        a.send_bytes(b"ok").unwrap();
        a
    });
    assert!(matches!(b.recv_bytes_max(9), Err(RecvError::TooLong { len: 10, max: 9 })));
    let r = b.recv_bytes_max(4999).map(|v| v.len());
    assert!(matches!(r, Err(RecvError::TooLong { len: 5000, max: 4999 })), "{r:?}");
    assert_eq!(b.recv_bytes_max(2).unwrap(), b"ok");
    drop(h.join().unwrap());
}

/// Message `i` of the kill tests: its length and contents derive from `i`, so a torn or mixed
/// message cannot pass the check.
fn pattern(i: u32) -> Vec<u8> {
    let len = match i % 7 {
        0 => 0,
        1 => 3000 + (i as usize % 5000), // fragmented in a 1 KiB ring
        _ => (i as usize * 13) % 300,
    };
    let mut v: Vec<u8> = (0..len).map(|k| (k as u32).wrapping_mul(31).wrapping_add(i) as u8).collect();
    if len >= 4 {
        v[..4].copy_from_slice(&i.to_le_bytes());
    }
    v
}

#[test]
fn pipe_kill_writer_mid_stream_gives_intact_messages_then_eof() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_kill_writer", LIMIT);
    let mut rng = Rng::new("pipe_kill_writer");
    for (round, wait) in [WaitStrategy::Park, WaitStrategy::Adaptive, WaitStrategy::Spin].into_iter().enumerate() {
        let (r, w) = Pipe::builder().capacity(1024).wait(wait).one_way().unwrap();
        let mut r = Some(r);
        let pid = child_with(w, &mut r, |mut w| {
            for i in 0.. {
                w.send_bytes(&pattern(i)).unwrap();
            }
            0
        });
        let mut r = r.unwrap();
        let kill_after = Duration::from_micros(rng.range(0, 30_000));
        let t = Instant::now();
        let mut i = 0u32;
        let mut killed = false;
        let end = loop {
            if !killed && t.elapsed() >= kill_after {
                sigkill(pid);
                killed = true;
            }
            match r.recv_bytes_timeout(Duration::from_secs(5)) {
                Ok(m) => {
                    assert!(m == pattern(i), "round {round}: message {i} torn or out of order");
                    i += 1;
                }
                Err(e) => break e,
            }
        };
        assert!(matches!(end, RecvTimeoutError::Disconnected), "round {round}: ended with {end:?} after {i} messages");
        assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
    }
}

#[test]
fn pipe_kill_reader_makes_send_fail_with_closed() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_kill_reader", LIMIT);
    let (r, w) = Pipe::builder().capacity(4096).wait(WaitStrategy::Park).one_way().unwrap();
    let mut w = Some(w);
    let pid = child_with(r, &mut w, |mut r| {
        let _ = r.recv_bytes();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let mut w = w.unwrap();
    w.send_bytes(b"wake").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    sigkill(pid);
    assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
    let t = Instant::now();
    let err = loop {
        if let Err(e) = w.send_bytes(&[0; 512]) {
            break e;
        }
    };
    assert!(matches!(err, SendError::Disconnected), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn pipe_parent_copy_keeps_end_open_until_dropped() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_parent_copy", LIMIT);
    let (mut r, w) = Pipe::one_way().unwrap();
    // The child gets a copy of `w` and exits; the parent's copy keeps the end open.
    let pid = fork_child(|| 0);
    assert_eq!(wait_child(pid), Ended::Code(0));
    assert!(matches!(r.recv_bytes_timeout(Duration::from_millis(100)), Err(RecvTimeoutError::Timeout)));
    drop(w);
    assert!(matches!(r.recv_bytes_timeout(Duration::from_secs(5)), Err(RecvTimeoutError::Disconnected)));
}

/// An unlinked temporary file, open for reading and writing.
fn scratch_file(tag: &str) -> std::fs::File {
    let p = std::env::temp_dir().join(format!("multiproc-{tag}-{}", std::process::id()));
    let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    f
}

fn contents(f: &mut std::fs::File) -> String {
    use std::io::{Read, Seek};
    f.rewind().unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

/// The child receives `n` descriptors and writes `foo` into each.
fn fd_writer_child(mut b: Connection, n: usize) -> i32 {
    use std::io::Write;
    for _ in 0..n {
        let Ok(fd) = b.recv_fd() else { return 2 };
        if std::fs::File::from(fd).write_all(b"foo").is_err() {
            return 3;
        }
    }
    0
}

#[test]
fn pipe_13_fd_transfer_child_writes_into_parents_file() {
    use std::os::fd::AsFd;
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_13", LIMIT);
    let (a, b) = Pipe::builder().fd_passing(true).duplex().unwrap();
    let mut a = Some(a);
    let pid = child_with(b, &mut a, |b| fd_writer_child(b, 1));
    let mut a = a.unwrap();
    let mut f = scratch_file("fd13");
    a.send_fd(f.as_fd()).unwrap();
    assert_eq!(wait_child(pid), Ended::Code(0));
    assert_eq!(contents(&mut f), "foo");
}

#[test]
fn pipe_13_fd_above_256() {
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_13_large_fd", LIMIT);
    let (a, b) = Pipe::builder().fd_passing(true).duplex().unwrap();
    let mut a = Some(a);
    let pid = child_with(b, &mut a, |b| fd_writer_child(b, 1));
    let mut a = a.unwrap();
    let f = scratch_file("fd13big");
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor (>= 300) that we then own.
    let high = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 300) };
    assert!(high >= 300, "{}", std::io::Error::last_os_error());
    // SAFETY: `high` is a fresh descriptor owned by nobody else.
    let high = unsafe { OwnedFd::from_raw_fd(high) };
    // SAFETY: `high` is open for the duration of the call.
    a.send_fd(unsafe { BorrowedFd::borrow_raw(high.as_raw_fd()) }).unwrap();
    assert_eq!(wait_child(pid), Ended::Code(0));
    let mut f = std::fs::File::from(high);
    assert_eq!(contents(&mut f), "foo");
}

#[test]
fn pipe_13_plain_data_is_not_an_fd_and_nothing_is_lost() {
    use std::os::fd::AsFd;
    let (mut a, mut b) = Pipe::builder().fd_passing(true).duplex().unwrap();
    a.send_bytes(b"plain").unwrap();
    let f = scratch_file("fd13mix");
    a.send_fd(f.as_fd()).unwrap();
    a.send(&7u32).unwrap();
    // Data first: recv_fd refuses it and leaves it.
    assert!(matches!(b.recv_fd(), Err(RecvError::NotAnFd)));
    assert_eq!(b.recv_bytes().unwrap(), b"plain");
    // A descriptor next: recv* refuse it and leave it.
    assert!(b.try_poll().is_ok());
    assert!(matches!(b.recv_bytes(), Err(RecvError::FdPending)));
    assert!(matches!(b.recv::<u32>(), Err(RecvError::FdPending)));
    let mut buf = [0u8; 8];
    assert!(matches!(b.recv_bytes_into(&mut buf, 0), Err(RecvError::FdPending)));
    let _fd = b.recv_fd().unwrap();
    assert_eq!(b.recv::<u32>().unwrap(), 7);
    assert!(matches!(b.recv_fd_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Timeout)));
}

#[test]
fn pipe_13_fd_passing_is_opt_in_and_checks_directions() {
    use std::os::fd::AsFd;
    let f = scratch_file("fd13off");
    let (mut a, mut b) = Pipe::duplex().unwrap();
    assert!(matches!(a.send_fd(f.as_fd()), Err(SendError::FdPassingDisabled)));
    assert!(matches!(b.recv_fd(), Err(RecvError::FdPassingDisabled)));
    let (mut r, mut w) = Pipe::builder().fd_passing(true).one_way().unwrap();
    assert!(matches!(r.send_fd(f.as_fd()), Err(SendError::NotWritable)));
    assert!(matches!(w.recv_fd(), Err(RecvError::NotReadable)));
    w.send_fd(f.as_fd()).unwrap();
    assert!(r.recv_fd().is_ok());
    w.close();
    assert!(matches!(w.send_fd(f.as_fd()), Err(SendError::Closed)));
    assert!(matches!(r.recv_fd(), Err(RecvError::Disconnected)));
    drop(r);
    let (r, mut w) = Pipe::builder().fd_passing(true).one_way().unwrap();
    drop(r);
    assert!(matches!(w.send_fd(f.as_fd()), Err(SendError::Disconnected)));
}

#[test]
fn pipe_13_sender_killed_gives_eof_not_a_hang() {
    use std::os::fd::AsFd;
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_13_kill", LIMIT);
    let mut rng = Rng::new("pipe_13_kill");
    for _ in 0..5 {
        let (r, w) = Pipe::builder().fd_passing(true).one_way().unwrap();
        let mut r = Some(r);
        let pid = child_with(w, &mut r, |mut w| {
            let f = scratch_file("fd13kill");
            // Bounded: descriptors in flight count against the sender's open-file limit.
            for _ in 0..200 {
                if w.send_fd(f.as_fd()).is_err() {
                    return 1;
                }
            }
            loop {
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let mut r = r.unwrap();
        std::thread::sleep(Duration::from_micros(rng.range(0, 3000)));
        sigkill(pid);
        assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
        // Every marker that made it has its descriptor; then end of file.
        let mut got = 0;
        loop {
            match r.recv_fd() {
                Ok(_) => got += 1,
                Err(RecvError::Disconnected) => break,
                Err(e) => panic!("after {got} descriptors: {e:?}"),
            }
        }
    }
}

/// A send to a reader that closed fails with `Closed` at once, even while the ring has room
/// (it used to succeed until the ring filled): same thread, another thread, another process.
#[test]
fn pipe_send_to_a_closed_reader_fails_at_once() {
    let _g = common::guard();
    // This thread.
    let (r, mut w) = Pipe::one_way().unwrap();
    w.send_bytes(b"before").unwrap();
    drop(r);
    assert!(matches!(w.send_bytes(b"x"), Err(SendError::Disconnected)));
    assert!(matches!(w.try_send_bytes(b"x"), Err(TrySendError::Disconnected)));
    assert!(matches!(w.send_bytes_timeout(b"x", Duration::from_secs(1)), Err(SendTimeoutError::Disconnected)));
    assert!(matches!(w.send(&1u8), Err(SendError::Disconnected)));
    // Another thread.
    let (r, mut w) = Pipe::duplex().unwrap();
    std::thread::spawn(move || drop(r)).join().unwrap();
    assert!(matches!(w.send_bytes(b"x"), Err(SendError::Disconnected)));
    // Another process, which closes its end and lives on.
    let (r, w) = Pipe::one_way().unwrap();
    let (done_r, mut done_w) = Pipe::one_way().unwrap();
    let mut w = Some(w);
    let pid = child_with(r, &mut w, move |r| {
        drop(r);
        let _ = done_w.send_bytes(b"closed");
        std::thread::sleep(Duration::from_secs(30));
        0
    });
    let mut w = w.unwrap();
    let mut done_r = done_r;
    assert_eq!(done_r.recv_bytes_timeout(Duration::from_secs(10)).unwrap(), b"closed");
    assert!(matches!(w.send_bytes(b"x"), Err(SendError::Disconnected)), "the reader closed in its process");
    sigkill(pid);
    wait_child(pid);
}

/// A reader that died (SIGKILL, its end never closed by itself) is noticed by a send within one
/// coarse clock tick of the sender's last look, with the ring still nearly empty.
#[test]
fn pipe_send_to_a_killed_reader_fails_without_filling_the_ring() {
    let _g = common::guard();
    let (r, w) = Pipe::builder().capacity(1 << 16).one_way().unwrap();
    let mut w = Some(w);
    let pid = child_with(r, &mut w, |mut r| {
        let _ = r.recv_bytes();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let mut w = w.unwrap();
    w.send_bytes(b"hello").unwrap();
    sigkill(pid);
    assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
    std::thread::sleep(Duration::from_millis(10)); // more than one coarse tick
    assert!(matches!(w.send_bytes(b"x"), Err(SendError::Disconnected)));
}

/// `send(&"text")` then `recv::<u64>()` is `WrongType` (it used to decode garbage: `Ok(8)`),
/// and the message stays for a `recv` of the right type; `&str`/`String`, `&[T]`/`Vec<T>` are
/// the same type; plain bytes are decoded without a check.
#[test]
fn pipe_typed_messages_are_checked() {
    let _g = common::guard();
    let (mut a, mut b) = Pipe::duplex().unwrap();
    a.send(&"text").unwrap();
    assert!(matches!(b.recv::<u64>(), Err(RecvError::WrongType { expected }) if expected == "u64"));
    assert!(matches!(b.try_recv::<u64>(), Err(TryRecvError::WrongType { .. })));
    assert_eq!(b.recv::<String>().unwrap(), "text");
    a.send(&[1u16, 2][..]).unwrap();
    a.send(&vec![3u16]).unwrap();
    assert_eq!(b.recv::<Vec<u16>>().unwrap(), [1, 2]);
    assert_eq!(b.recv::<Vec<u16>>().unwrap(), [3]);
    a.send(&5u32).unwrap();
    a.send(&6u64).unwrap();
    assert!(matches!(b.recv::<u64>(), Err(RecvError::WrongType { .. })), "u32 is not u64");
    assert_eq!(b.recv::<u32>().unwrap(), 5);
    assert_eq!(b.recv::<u64>().unwrap(), 6);
    // Bytes carry no type: a typed recv decodes them (and rejects what is not its encoding).
    a.send_bytes(&[7]).unwrap();
    assert_eq!(b.recv::<u8>().unwrap(), 7);
    a.send_bytes(b"not a u64 at all").unwrap();
    assert!(matches!(b.recv::<u64>(), Err(RecvError::Decode(_))));
    // A large typed message travels in fragments; the check applies to it as a whole.
    let big = vec![9u8; 200_000];
    a.send(&big).unwrap();
    assert!(matches!(b.recv::<String>(), Err(RecvError::WrongType { .. })));
    assert_eq!(b.recv::<Vec<u8>>().unwrap(), big);
}

/// `Duration::MAX` means "no deadline" for every timed pipe call (send, recv, poll, recv_fd)
/// and for `wait` (it used to be an immediate time-out).
#[test]
fn pipe_max_timeouts_wait_instead_of_failing_at_once() {
    let _g = common::guard();
    let (a, b) = Pipe::builder().fd_passing(true).capacity(64).duplex().unwrap();
    let mut b = Some(b);
    // Each step waits until the parent is asleep in its call, so that every "forever" wait
    // is really waited in.
    let me = common::this_thread();
    let pid = child_with(a, &mut b, |mut a| {
        common::until_asleep(me);
        a.send_bytes(b"one").unwrap();
        common::until_asleep(me);
        a.send_bytes(b"two").unwrap();
        common::until_asleep(me);
        let f = std::fs::File::open("/dev/null").unwrap();
        a.send_fd(std::os::fd::AsFd::as_fd(&f)).unwrap();
        common::until_asleep(me);
        a.send_bytes(b"three").unwrap();
        // Drain what the parent sends once it waits for room.
        common::until_asleep(me);
        while a.recv_bytes().is_ok() {}
        0
    });
    let mut b = b.unwrap();
    b.poll_timeout(Duration::MAX).unwrap();
    assert_eq!(b.recv_bytes_timeout(Duration::MAX).unwrap(), b"one");
    assert_eq!(multiproc::wait(&[&b], Some(Duration::MAX)), [0]);
    assert_eq!(b.recv_bytes().unwrap(), b"two");
    let _fd = b.recv_fd_timeout(Duration::MAX).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"three");
    for _ in 0..8 {
        b.send_bytes_timeout(&[1; 16], Duration::MAX).unwrap();
    }
    drop(b);
    assert_eq!(wait_child(pid), Ended::Code(0));
}

/// A closed end refuses to share objects with `Closed`, as every other call on it does (not
/// `FdPassingDisabled`, which would send the caller to the builder for nothing).
#[test]
fn pipe_closed_end_refuses_objects_as_closed() {
    let (mut a, mut b) = Pipe::builder().fd_passing(true).duplex().unwrap();
    a.close();
    let q = multiproc::Queue::<u8>::new().unwrap();
    assert!(matches!(a.send_object(&q), Err(SendError::Closed)));
    b.close();
    assert!(matches!(b.recv_object::<multiproc::Queue<u8>>(), Err(RecvError::Closed)));
}

/// PIPE-B4: a connection end sent to the process that holds it is refused there (a second
/// handle to one end in one process would make two loans alias one region of the ring, or two
/// threads write it at once); the end it holds is untouched, and an end let go of before it
/// arrives is taken up normally.
#[test]
fn pipe_b4_an_end_sent_to_its_own_holder_is_refused_there() {
    let (mut a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex().unwrap();
    let (mut x, mut y) = multiproc::Pipe::duplex().unwrap();
    a.send_object(&x).unwrap();
    assert!(matches!(b.recv_object::<multiproc::Connection>(), Err(multiproc::RecvError::AlreadyHeld)));
    // Each side of `x` is still this process's one handle: a loan through it works.
    let mut loan = x.send_loan(8).unwrap();
    loan.copy_from_slice(b"12345678");
    loan.commit().unwrap();
    assert_eq!(y.recv_bytes().unwrap(), b"12345678");
    // An end given away (dropped here once sent) arrives and works.
    a.send_object(&x).unwrap();
    drop(x);
    let mut x2 = b.recv_object::<multiproc::Connection>().unwrap();
    x2.send_bytes(b"moved").unwrap();
    assert_eq!(y.recv_bytes().unwrap(), b"moved");
    y.send_bytes(b"back").unwrap();
    assert_eq!(x2.recv_bytes().unwrap(), b"back");
}
