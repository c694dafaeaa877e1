//! Pipe / Connection loans (PIPE-B2 in `docs/BEHAVIOURS.md`): a message written in place with
//! `send_loan` and read in place with `recv_loan`, and what a process killed with a loan open
//! leaves behind. Multi-process tests fork under `fork_lock` with a watchdog.

mod common;

use common::{chaos_secs, fork_child, fork_lock, sigkill, wait_child, Ended, Rng, Watchdog};
use multiproc::{Pipe, RecvError, SendError, TrySendError};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// Fills `buf` as message `seq`: the sequence number, then a pattern derived from it.
fn fill(seq: u32, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (seq as usize * 31 + i) as u8;
    }
    if buf.len() >= 4 {
        buf[..4].copy_from_slice(&seq.to_le_bytes());
    }
}

fn check(seq: u32, got: &[u8]) {
    let mut want = vec![0; got.len()];
    fill(seq, &mut want);
    assert_eq!(got, want, "message {seq} is torn");
}

#[test]
fn pipe_b2_loans_cross_processes_whole_and_in_order() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_b2_loans", LIMIT);
    const N: u32 = 20_000;
    let (a, b) = Pipe::builder().capacity(1024).duplex().unwrap();
    let most = a.max_loan();
    assert_eq!(most, 512 - 16);
    let (mut a, mut b) = (Some(a), Some(b));
    let pid = fork_child(|| {
        drop(a.take());
        let mut b = b.take().unwrap();
        for seq in 0..N {
            let len = (seq as usize * 7919) % (most + 1);
            let mut loan = b.send_loan(len.max(4)).unwrap();
            fill(seq, &mut loan);
            loan.commit().unwrap();
        }
        0
    });
    drop(b);
    let mut a = a.unwrap();
    for seq in 0..N {
        if seq % 2 == 0 {
            check(seq, &a.recv_loan().unwrap());
        } else {
            check(seq, &a.recv_bytes().unwrap()); // loans and copies mix freely
        }
    }
    assert!(matches!(a.recv_loan(), Err(RecvError::Disconnected)));
    assert_eq!(wait_child(pid), Ended::Code(0));
}

#[test]
fn pipe_b2_a_loan_too_large_is_refused_and_an_abandoned_one_is_never_seen() {
    let (mut a, mut b) = Pipe::builder().capacity(256).duplex().unwrap();
    let most = a.max_loan();
    assert!(matches!(a.send_loan(most + 1), Err(SendError::TooLarge { len, max }) if len == most + 1 && max == most));
    let mut loan = a.send_loan(most).unwrap();
    loan.fill(9);
    drop(loan); // abandoned
    assert!(b.try_recv_loan().is_err(), "an abandoned loan is not a message");
    // The room it had is used by the next messages, until the ring is full.
    let mut sent = 0;
    loop {
        match a.try_send_loan(most) {
            Ok(mut loan) => {
                loan.fill(1);
                loan.commit().unwrap();
                sent += 1;
            }
            Err(TrySendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(sent, 2, "two records of half the ring fit");
    {
        let got = b.recv_loan().unwrap();
        assert_eq!(got.len(), most);
        assert!(got.iter().all(|&x| x == 1));
        // While it is borrowed its space stays taken.
        assert!(matches!(a.try_send_loan(most), Err(TrySendError::Full)));
    }
    // Released on drop: the room is back.
    a.try_send_loan(most).unwrap().commit().unwrap();
    // A message larger than a record arrives reassembled, in a loan of its own.
    let (mut c, mut d) = Pipe::builder().capacity(256).duplex().unwrap();
    let big: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let t = std::thread::spawn(move || {
        c.send_bytes(&big).unwrap();
        big
    });
    let got = d.recv_loan().unwrap().to_vec();
    assert_eq!(got, t.join().unwrap());
}

#[test]
fn pipe_b2_a_sender_killed_with_a_loan_open_never_publishes_it() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_b2_kill_sender", LIMIT);
    let mut rng = Rng::new("pipe_b2_kill_sender");
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
            for seq in 0u32.. {
                let Ok(mut loan) = b.send_loan(8 + (seq as usize * 13) % 1000) else { return 0 };
                fill(seq, &mut loan);
                if loan.commit().is_err() {
                    return 0;
                }
            }
            0
        });
        drop(b);
        let mut a = a.unwrap();
        let kill_after = rng.range(1, 5_000) as u32;
        let mut seq = 0u32;
        loop {
            match a.recv_loan() {
                Ok(m) => check(seq, &m),
                Err(RecvError::Disconnected) => break,
                Err(e) => panic!("after {seq} messages: {e}"),
            }
            seq += 1;
            if seq == kill_after {
                sigkill(pid);
            }
        }
        assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
    }
}

#[test]
fn pipe_b2_a_reader_killed_while_borrowing_leaves_the_message_to_the_next_reader() {
    let _g = fork_lock();
    let _w = Watchdog::new("pipe_b2_kill_reader", LIMIT);
    let (mut tx, rx) = Pipe::builder().capacity(4096).duplex().unwrap();
    let (told, mut hear) = Pipe::duplex().unwrap();
    // fork copies both ends into the child: the child reads with its copy of `rx` while this
    // process keeps its own, as two holders of one reading end taking turns.
    let (mut rx, mut told) = (Some(rx), Some(told));
    let pid = fork_child(|| {
        let mut rx = rx.take().unwrap();
        let mut told = told.take().unwrap();
        let loan = rx.recv_loan().unwrap();
        told.send_bytes(&loan).unwrap(); // "I hold it"
        std::thread::sleep(Duration::from_secs(60)); // killed here, the loan open
        drop(loan);
        1
    });
    let mut msg = vec![0u8; 300];
    fill(7, &mut msg);
    tx.send_bytes(&msg).unwrap();
    check(7, &hear.recv_bytes().unwrap());
    sigkill(pid);
    assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
    // This process holds the reading end too: the message is still there, whole.
    let mut rx = rx.take().unwrap();
    check(7, &rx.recv_loan().unwrap());
    assert!(rx.try_recv_loan().is_err());
}
