//! For embedders: `wait` across kinds (crossbeam's `Select`), iterators, and the split
//! queue's disconnection. Real processes, a watchdog on every test.
#![cfg(feature = "serde")] // typed messages (serde + postcard)
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::{fork_child, guard, sigkill, this_thread, until_asleep, wait_child, Ended, AT_ONCE};
use multiproc::{
    wait, ArrayQueue, BoundedSemaphore, Event, GetError, GetTimeoutError, JoinableQueue, Pipe, Process, PutError,
    Queue, Semaphore, SimpleQueue, Waitable,
};
use std::time::{Duration, Instant};

const LONG: Option<Duration> = Some(Duration::from_secs(20));

/// Each kind, made ready by a forked child after a pause, wakes a parent blocked in `wait` on
/// all of them, and `wait` reports exactly that one.
#[test]
fn select_wakes_for_each_kind_made_ready_by_another_process() {
    let _g = guard();
    for which in 0..7 {
        let q = Queue::<u32>::new().unwrap();
        let sq = SimpleQueue::<u32>::new().unwrap();
        let jq = JoinableQueue::<u32>::new().unwrap();
        let aq = ArrayQueue::<u64>::new(4).unwrap();
        let ev = Event::new().unwrap();
        let sem = Semaphore::new(0).unwrap();
        let (rx, mut tx) = Pipe::one_way().unwrap();
        let me = this_thread();
        let pid = fork_child(|| {
            until_asleep(me); // the parent is asleep in `wait`
            match which {
                0 => q.put(&1).unwrap(),
                1 => sq.put(&1).unwrap(),
                2 => jq.put(&1).unwrap(),
                3 => aq.try_push(1).unwrap(),
                4 => ev.set(),
                5 => sem.release(),
                _ => tx.send(&1u8).unwrap(),
            }
            0
        });
        let objects: [&dyn Waitable; 7] = [&q, &sq, &jq, &aq, &ev, &sem, &rx];
        let ready = wait(&objects, LONG);
        assert_eq!(ready, [which], "kind {which}");
        assert_eq!(wait_child(pid), Ended::Code(0));
    }
}

/// Nothing ready: `wait` over every kind returns empty after its timeout, not before.
#[test]
fn select_times_out_empty_over_every_kind() {
    let _g = guard();
    let q = Queue::<u32>::new().unwrap();
    let aq = ArrayQueue::<u64>::new(4).unwrap();
    let ev = Event::new().unwrap();
    let sem = BoundedSemaphore::new(0).unwrap();
    let (_tx, rx) = Pipe::duplex().unwrap();
    let t = Instant::now();
    assert!(wait(&[&q, &aq, &ev, &sem, &rx], Some(Duration::from_millis(200))).is_empty());
    assert!(t.elapsed() >= Duration::from_millis(190));
    assert!(wait(&[&q, &aq, &ev, &sem, &rx], Some(Duration::ZERO)).is_empty());
}

/// Several ready at once are all reported; `wait` takes nothing.
#[test]
fn select_reports_every_ready_object_and_takes_nothing() {
    let _g = guard();
    let q = Queue::<u32>::new().unwrap();
    let aq = ArrayQueue::<u64>::new(4).unwrap();
    let ev = Event::new().unwrap();
    let sem = Semaphore::new(1).unwrap();
    q.put(&5).unwrap();
    aq.try_push(6).unwrap();
    assert_eq!(wait(&[&q, &aq, &ev, &sem], Some(Duration::ZERO)), [0, 1, 3]);
    assert_eq!(q.try_get().unwrap(), 5);
    assert_eq!(aq.try_pop().unwrap(), 6);
    assert!(sem.try_acquire().is_ok());
    assert!(wait(&[&q, &aq, &ev, &sem], Some(Duration::ZERO)).is_empty());
}

/// A child's exit (its sentinel) and a queue in one `wait`: whichever comes first is reported.
#[test]
fn select_mixes_queues_and_process_sentinels() {
    let _g = guard();
    let q = Queue::<u32>::new().unwrap();
    let p = Process::new(|| std::thread::sleep(Duration::from_millis(50)));
    p.start().unwrap();
    let s = p.sentinel().unwrap();
    assert_eq!(wait(&[&q, &s], LONG), [1]);
    p.join().unwrap();
    q.put(&1).unwrap();
    assert_eq!(wait(&[&q, &s], LONG), [0, 1]);
}

/// A semaphore released while a plain `acquire` sleeps in another process and a `wait`
/// watches it: the sleeper still gets the permit (`wait` never swallows a release's one wake).
#[test]
fn select_on_a_semaphore_never_strands_a_blocked_acquirer() {
    let _g = guard();
    let sem = Semaphore::new(0).unwrap();
    let got = Event::new().unwrap();
    let pid = fork_child(|| {
        sem.acquire();
        got.set();
        0
    });
    until_asleep((pid as u32, pid as u32)); // the child is blocked in `acquire`
    let waiter = std::thread::scope(|s| {
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (sem, got) = (&sem, &got);
        let w = s.spawn(move || {
            tid_tx.send(this_thread()).unwrap();
            wait(&[sem, got], LONG)
        });
        until_asleep(tid_rx.recv().unwrap()); // and so is the thread in `wait`
        sem.release();
        w.join().unwrap()
    });
    assert!(!waiter.is_empty());
    assert!(got.wait_timeout(Duration::from_secs(10)).is_ok(), "the blocked acquirer never got the permit");
    assert_eq!(wait_child(pid), Ended::Code(0));
}

/// `Queue::try_iter` drains what is there; `iter` blocks for more and yields in order.
#[test]
fn iter_and_try_iter_over_queues() {
    let _g = guard();
    let q = Queue::<u32>::new().unwrap();
    assert_eq!(q.try_iter().count(), 0);
    for i in 0..4 {
        q.put(&i).unwrap();
    }
    assert_eq!(q.try_iter().collect::<Result<Vec<_>, _>>().unwrap(), [0, 1, 2, 3]);
    let pid = fork_child(|| {
        for i in 10..13 {
            std::thread::sleep(Duration::from_millis(10));
            q.put(&i).unwrap();
        }
        0
    });
    let got: Vec<u32> = q.iter().take(3).collect::<Result<_, _>>().unwrap();
    assert_eq!(got, [10, 11, 12]);
    assert_eq!(wait_child(pid), Ended::Code(0));
    // A closed handle ends the iteration.
    q.put(&1).unwrap();
    q.close();
    assert_eq!(q.iter().count(), 0);
}

/// A message that does not decode is reported and skipped; the iteration goes on. One sent
/// as another type stays in the pipe and ends the iteration with `WrongType`.
#[test]
fn connection_iter_reports_a_bad_message_and_goes_on() {
    let _g = guard();
    let (mut a, mut b) = Pipe::duplex().unwrap();
    a.send_bytes(b"not a u64 at all").unwrap();
    a.send(&5u64).unwrap();
    a.send(&6u32).unwrap();
    let got: Vec<_> = b.try_iter::<u64>().collect();
    assert_eq!(got.len(), 3);
    assert!(matches!(got[0], Err(multiproc::RecvError::Decode(_))));
    assert_eq!(*got[1].as_ref().unwrap(), 5);
    assert!(matches!(got[2], Err(multiproc::RecvError::WrongType { .. })));
    assert_eq!(b.recv::<u32>().unwrap(), 6, "the other type's message stayed");
}

/// `Connection::iter` ends at end of file when the only writer (a child) exits.
#[test]
fn connection_iter_ends_at_eof_when_the_writer_exits() {
    let _g = guard();
    let (mut rx, mut tx) = Pipe::one_way().unwrap();
    let pid = fork_child(move || {
        for i in 0..100u32 {
            tx.send(&i).unwrap();
        }
        0
    });
    let got: Vec<u32> = rx.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert_eq!(wait_child(pid), Ended::Code(0));
    assert_eq!(rx.try_iter::<u32>().count(), 0);
}

/// Every producer (two children) exits: the consumer gets every item, then `Disconnected`.
#[test]
fn split_consumer_sees_disconnected_after_every_producer_exits() {
    let _g = guard();
    let (tx, rx) = Queue::<u32>::new().unwrap().split().unwrap();
    let mut kids = Vec::new();
    for k in 0..2u32 {
        let tx = tx.clone();
        let p = Process::new(move || -> Result<(), PutError> {
            for i in 0..50 {
                tx.put(&(k * 100 + i))?;
            }
            Ok(())
        });
        p.start().unwrap();
        kids.push(p);
    }
    drop(tx);
    let mut got: Vec<u32> = rx.iter().collect::<Result<_, _>>().unwrap();
    got.sort();
    let want: Vec<u32> = (0..50).chain(100..150).collect();
    assert_eq!(got, want);
    assert!(matches!(rx.get(), Err(GetError::Disconnected)));
    assert!(rx.is_disconnected());
    for p in kids {
        p.join().unwrap();
    }
}

/// A producer SIGKILLed while the consumer is blocked in `get`: the consumer returns
/// `Disconnected` (within about a slice), never hangs; what was put before is delivered.
#[test]
fn split_consumer_blocked_in_get_learns_of_a_killed_producer() {
    let _g = guard();
    let (tx, rx) = Queue::<u32>::new().unwrap().split().unwrap();
    let ready = Event::new().unwrap();
    let pid = fork_child(|| {
        tx.put(&7).unwrap();
        ready.set();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    drop(tx);
    assert!(ready.wait_timeout(Duration::from_secs(10)).is_ok());
    assert_eq!(rx.get().unwrap(), 7);
    let me = this_thread();
    let killer = std::thread::spawn(move || {
        until_asleep(me); // blocked in `get`: the kill must wake it, not be found first
        sigkill(pid);
        wait_child(pid)
    });
    let t = Instant::now();
    assert!(matches!(rx.get(), Err(GetError::Disconnected)));
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    assert_eq!(killer.join().unwrap(), Ended::Signal(libc::SIGKILL));
}

/// A dropped producer wakes a consumer blocked in `get` at once (no slice to wait out), and a
/// `wait` on the consumer reports it ready.
#[test]
fn split_dropped_producer_wakes_blocked_consumer_and_wait() {
    let _g = guard();
    let (tx, rx) = Queue::<u32>::new().unwrap().split().unwrap();
    let me = this_thread();
    let t = std::thread::spawn(move || {
        until_asleep(me); // asleep in `wait`
        drop(tx);
    });
    assert_eq!(wait(&[&rx], LONG), [0]);
    let start = Instant::now();
    assert!(matches!(rx.get(), Err(GetError::Disconnected)));
    assert!(start.elapsed() < AT_ONCE);
    t.join().unwrap();
}

/// Every consumer gone: a producer's `put` fails with `Disconnected` and puts nothing; one
/// blocked on a full queue returns too.
#[test]
fn split_producer_learns_when_no_consumer_is_left() {
    let _g = guard();
    let (tx, rx) = Queue::<u32>::with_maxsize(1).unwrap().split().unwrap();
    tx.put(&1).unwrap();
    let me = this_thread();
    let pid = fork_child(move || {
        until_asleep(me); // the parent is asleep in `put`, on a full queue
        drop(rx);
        0
    });
    // `rx` moved into the child's closure: the parent's copy was dropped with it.
    let t = Instant::now();
    let r = tx.put(&2);
    assert!(matches!(r, Err(PutError::Disconnected)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(wait_child(pid), Ended::Code(0));
    assert_eq!(tx.qsize(), 1, "the refused item was not put");
}

/// Split handles travel to a spawned child as arguments and count there.
#[test]
fn split_handles_travel_to_spawned_children() {
    let _g = guard();
    let (tx, rx) = Queue::<u32>::new().unwrap().split().unwrap();
    let p = Process::builder().start_method(multiproc::StartMethod::Spawn).spawn(put_three, tx).unwrap();
    let got: Vec<u32> = rx.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(got, [1, 2, 3]);
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

fn put_three(tx: multiproc::Producer<u32>) -> Result<(), PutError> {
    for i in 1..=3 {
        tx.put(&i)?;
    }
    Ok(())
}

/// A producer handed over a connection (`send_object`) counts in the receiving process: the
/// consumer sees `Disconnected` only once that process dropped it too.
#[test]
fn split_producer_sent_as_an_object_counts_where_it_lands() {
    let _g = guard();
    let (tx, rx) = Queue::<u32>::new().unwrap().split().unwrap();
    let (mut a, mut b) = Pipe::builder().fd_passing(true).duplex().unwrap();
    let pid = fork_child(move || {
        let tx: multiproc::Producer<u32> = b.recv_object().unwrap();
        tx.put(&9).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        drop(tx);
        0
    });
    a.send_object(&tx).unwrap();
    drop(tx);
    assert_eq!(rx.get().unwrap(), 9);
    // Still connected while the child holds the producer it received.
    assert!(matches!(rx.get_timeout(Duration::from_millis(20)), Err(GetTimeoutError::Timeout)));
    assert!(matches!(rx.get(), Err(GetError::Disconnected)));
    assert_eq!(wait_child(pid), Ended::Code(0));
}

/// Chaos: producers SIGKILLed at random points while putting. The consumer gets each
/// producer's items in order with no gap and no duplicate (a killed `put` commits its item or
/// nothing), and then `Disconnected`: never a hang, never a torn item.
#[test]
fn split_producers_killed_at_random_points() {
    let _g = common::guard_for(Duration::from_secs(120));
    let mut rng = common::Rng::new("split_producers_killed_at_random_points");
    let end = Instant::now() + common::chaos_secs(3);
    let mut rounds = 0;
    while Instant::now() < end {
        let (tx, rx) = Queue::<(u32, u32)>::with_maxsize(64).unwrap().split().unwrap();
        let kids: Vec<_> = (0..3u32)
            .map(|k| {
                let tx = tx.clone();
                fork_child(move || {
                    for i in 0.. {
                        if tx.put(&(k, i)).is_err() {
                            return 1;
                        }
                    }
                    0
                })
            })
            .collect();
        drop(tx);
        let killer = {
            let delays: Vec<u64> = kids.iter().map(|_| rng.range(0, 20_000)).collect();
            let kids = kids.clone();
            std::thread::spawn(move || {
                for (pid, us) in kids.into_iter().zip(delays) {
                    std::thread::sleep(Duration::from_micros(us));
                    sigkill(pid);
                }
            })
        };
        let mut next = [0u32; 3];
        loop {
            match rx.get() {
                Ok((k, i)) => {
                    assert_eq!(i, next[k as usize], "producer {k}: a gap or a duplicate");
                    next[k as usize] += 1;
                }
                Err(GetError::Disconnected) => break,
                Err(e) => panic!("{e}"),
            }
        }
        killer.join().unwrap();
        for pid in kids {
            assert_eq!(wait_child(pid), Ended::Signal(libc::SIGKILL));
        }
        rounds += 1;
    }
    eprintln!("{rounds} rounds of 3 killed producers");
    assert!(rounds > 0);
}
