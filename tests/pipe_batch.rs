//! Pipe / Connection batches (PIPE-B1 in `docs/BEHAVIOURS.md`): `send_bytes_many` publishes
//! many messages at once, `recv_bytes_many` reads them in place and releases them at once.
//! Multi-process tests fork under `fork_lock` with a watchdog, as in `tests/pipe.rs`.

mod common;

use common::{chaos_secs, fork_child, fork_lock, sigkill, wait_child, Ended, Rng, Watchdog};
use multiproc::{Pipe, RecvError, RecvTimeoutError, TryRecvError, TrySendError};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// Message `i` of a test stream: its index, then a length that varies (0 to 300 bytes, some
/// larger than a record of the small rings used here, so fragments mix with whole records).
fn message(i: u32) -> Vec<u8> {
    let len = (i.wrapping_mul(2_654_435_761) >> 23) as usize % 301;
    let mut m = vec![(i % 251) as u8; len.max(4)];
    m[..4].copy_from_slice(&i.to_le_bytes());
    if i % 97 == 0 {
        m.truncate(0); // an empty message now and then: a message all the same
    }
    m
}

fn check(i: u32, got: &[u8]) {
    assert_eq!(got, message(i), "message {i}");
}

#[test]
fn pipe_b1_batches_cross_processes_in_order_with_fragments_and_full_rings() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_b1_batches", LIMIT);
    const N: u32 = 20_000;
    // 512 bytes: a record holds at most 232, so some messages are fragmented, and a batch
    // of 64 never fits at once (the sender waits for room between parts of a batch).
    let (a, b) = Pipe::builder().capacity(512).duplex().unwrap();
    let (mut a, mut b) = (Some(a), Some(b));
    let pid = fork_child(|| {
        drop(a.take());
        let mut b = b.take().unwrap();
        let mut i = 0;
        while i < N {
            let batch: Vec<Vec<u8>> = (i..(i + 64).min(N)).map(message).collect();
            let sent = b.send_bytes_many(&batch).unwrap();
            assert!(sent > 0);
            i += sent as u32;
        }
        0
    });
    drop(b);
    let mut a = a.unwrap();
    let mut next = 0u32;
    while next < N {
        let n = a.recv_bytes_many(50, |m| {
            check(next, m);
            next += 1;
        });
        assert!(n.unwrap() >= 1);
    }
    assert!(matches!(a.recv_bytes_many(50, |_| {}), Err(RecvError::Disconnected)));
    assert_eq!(wait_child(pid), Ended::Code(0));
}

#[test]
fn pipe_b1_try_timeout_and_deadline_forms() {
    let (mut a, mut b) = Pipe::builder().capacity(64).duplex().unwrap();
    // Nothing to receive: each form says so its own way.
    assert!(matches!(b.try_recv_bytes_many(4, |_| {}), Err(TryRecvError::Empty)));
    assert!(matches!(b.recv_bytes_many_timeout(4, |_| {}, Duration::from_millis(5)), Err(RecvTimeoutError::Timeout)));
    assert_eq!(b.recv_bytes_many(0, |_| panic!("max 0 takes nothing")).unwrap(), 0);
    // 16 bytes a record: four fit; the rest are refused now, and counted.
    assert_eq!(a.try_send_bytes_many(&[[7u8; 8]; 10]).unwrap(), 4);
    assert!(matches!(a.try_send_bytes_many(&[[7u8; 8]]), Err(TrySendError::Full)));
    assert!(a.send_bytes_many_timeout(&[[7u8; 8]; 3], Duration::from_millis(5)).unwrap_err().is_timeout());
    let mut seen = 0;
    assert_eq!(
        b.recv_bytes_many(3, |m| {
            assert_eq!(m, [7; 8]);
            seen += 1;
        })
        .unwrap(),
        3
    );
    assert_eq!(seen, 3);
    // Room for three again (the one left and three new make four).
    assert_eq!(a.send_bytes_many_timeout(&[[8u8; 8]; 5], Duration::from_millis(5)).unwrap(), 3);
    let mut got = Vec::new();
    assert_eq!(b.try_recv_bytes_many(10, |m| got.push(m[0])).unwrap(), 4);
    assert_eq!(got, [7, 8, 8, 8]);
}

#[test]
fn pipe_b1_a_batch_stops_before_a_fragmented_message_and_the_next_call_takes_it() {
    let (mut a, mut b) = Pipe::builder().capacity(8192).duplex().unwrap();
    let big = vec![3u8; 5000]; // larger than a record (4080 bytes here): two fragments
    assert_eq!(a.send_bytes_many(&[vec![1u8; 5], vec![2u8; 5], big.clone(), vec![4u8; 5]]).unwrap(), 4);
    let mut lens = Vec::new();
    assert_eq!(b.recv_bytes_many(10, |m| lens.push(m.len())).unwrap(), 2);
    // A fragmented message first is reassembled, and the batch goes on after it.
    assert_eq!(b.recv_bytes_many(10, |m| lens.push(m.len())).unwrap(), 2);
    assert_eq!(lens, [5, 5, 5000, 5]);
}

#[test]
fn pipe_b1_a_panicking_callback_consumes_nothing() {
    let (mut a, mut b) = Pipe::duplex().unwrap();
    a.send_bytes_many(&[b"a", b"b", b"c"]).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.recv_bytes_many(3, |m| assert_ne!(m, b"b", "the callback fails at the second message"))
    }));
    assert!(r.is_err());
    let mut got = Vec::new();
    assert_eq!(b.recv_bytes_many(3, |m| got.push(m.to_vec())).unwrap(), 3);
    assert_eq!(got, [b"a", b"b", b"c"]);
}

#[test]
fn pipe_b1_a_sender_killed_mid_batch_leaves_whole_messages_in_order() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_b1_kill", LIMIT);
    let mut rng = Rng::new("pipe_b1_kill");
    // Rounds for a second or so (`MULTIPROC_CHAOS_SECS` for longer), at least five.
    let (started, budget) = (std::time::Instant::now(), chaos_secs(1));
    let mut round = 0;
    while round < 5 || started.elapsed() < budget {
        round += 1;
        let (a, b) = Pipe::builder().capacity(4096).duplex().unwrap();
        let (mut a, mut b) = (Some(a), Some(b));
        let pid = fork_child(|| {
            drop(a.take());
            let mut b = b.take().unwrap();
            let mut i = 0u32;
            loop {
                let batch: Vec<Vec<u8>> = (i..i + 32).map(message).collect();
                match b.send_bytes_many(&batch) {
                    Ok(n) => i += n as u32,
                    Err(_) => return 0,
                }
            }
        });
        drop(b);
        let mut a = a.unwrap();
        let mut next = 0u32;
        let kill_after = rng.range(0, 3_000);
        loop {
            let r = a.recv_bytes_many(64, |m| {
                check(next, m);
                next += 1;
            });
            if u64::from(next) >= kill_after && next > 0 {
                sigkill(pid);
            }
            match r {
                Ok(_) => {}
                Err(RecvError::Disconnected) => break,
                Err(e) => panic!("after {next} messages: {e}"),
            }
        }
        assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
    }
}
