//! Queue, SimpleQueue, JoinableQueue, QUE-* in `docs/BEHAVIOURS.md`, with real processes.
#![cfg(feature = "serde")] // typed messages (serde + postcard)
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard_for;
use multiproc::{
    GetError, GetTimeoutError, JoinableQueue, Process, PutError, PutTimeoutError, Queue, SimpleQueue, TaskDoneError,
    TryGetError, TryPutError, WaitStrategy,
};
use std::time::{Duration, Instant};

fn at_once(t: Instant) {
    assert!(t.elapsed() < Duration::from_millis(50), "took {:?}", t.elapsed());
}

#[test]
fn que_1_and_2_put_forms_full_and_empty() {
    let q = Queue::<i32>::with_maxsize(6).unwrap();
    assert!(q.empty() && !q.full());
    q.put(&1).unwrap();
    q.put(&2).unwrap();
    q.put_timeout(&3, Duration::from_secs(1)).unwrap();
    q.try_put(&4).unwrap();
    q.try_put(&5).unwrap();
    q.put_deadline(&6, Instant::now() + Duration::from_secs(1)).unwrap();
    assert!(!q.empty() && q.full());
    let t = Instant::now();
    assert!(matches!(q.try_put(&7), Err(TryPutError::Full)));
    at_once(t);
    let t = Instant::now();
    assert!(matches!(q.put_timeout(&7, Duration::from_millis(100)), Err(PutTimeoutError::Timeout)));
    assert!(t.elapsed() >= Duration::from_millis(90));
    for i in 1..=6 {
        assert_eq!(q.get().unwrap(), i);
    }
    assert!(q.empty() && !q.full());
}

#[test]
fn que_3_and_4_get_forms_fifo_and_empty() {
    let q = Queue::<i32>::new().unwrap();
    for i in 2..=5 {
        q.put(&i).unwrap();
    }
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get_timeout(Duration::from_secs(1)).unwrap(), 3);
    assert_eq!(q.get_deadline(Instant::now() + Duration::from_secs(1)).unwrap(), 4);
    assert_eq!(q.try_get().unwrap(), 5);
    let t = Instant::now();
    assert!(matches!(q.try_get(), Err(TryGetError::Empty)));
    at_once(t);
    let t = Instant::now();
    assert!(matches!(q.get_timeout(Duration::from_millis(100)), Err(GetTimeoutError::Timeout)));
    assert!(t.elapsed() >= Duration::from_millis(90));
}

#[test]
fn que_5_parent_and_child_items_in_order() {
    let _g = guard_for(Duration::from_secs(40));
    let q = Queue::<u32>::new().unwrap();
    for i in 0..10 {
        q.put(&i).unwrap();
    }
    let child = Process::new({
        let q = q.clone();
        move || {
            for i in 10..20 {
                q.put(&i).unwrap();
            }
        }
    });
    child.start().unwrap();
    assert!(child.join().unwrap().success());
    let got: Vec<u32> = (0..20).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    assert!(matches!(q.try_get(), Err(TryGetError::Empty)));
}

#[test]
fn que_6_and_b2_qsize_is_exact_at_once() {
    let q = Queue::<u8>::new().unwrap();
    for (op, expect) in [(true, 1), (true, 2), (false, 1), (false, 0)] {
        if op {
            q.put(&1).unwrap();
        } else {
            q.get().unwrap();
        }
        assert_eq!(q.qsize(), expect);
        assert_eq!(q.empty(), expect == 0);
    }
}

#[test]
fn que_7_closed_handle_refuses_put_and_get() {
    let q = Queue::<u8>::new().unwrap();
    q.close();
    assert!(matches!(q.put(&1), Err(PutError::Closed)));
    assert!(matches!(q.get(), Err(GetError::Closed)));
    let j = JoinableQueue::<u8>::new().unwrap();
    j.close();
    assert!(matches!(j.put(&1), Err(PutError::Closed)));
}

/// A value whose serialization fails.
#[derive(Debug, serde::Deserialize)]
enum Item {
    Good(bool),
    Bad,
}

impl serde::Serialize for Item {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Item::Good(b) => s.serialize_newtype_variant("Item", 0, "Good", b),
            Item::Bad => Err(serde::ser::Error::custom("cannot serialize Bad")),
        }
    }
}

#[test]
fn que_8_and_b1_serialization_errors_are_returned_and_change_nothing() {
    let q = Queue::<Item>::with_maxsize(1).unwrap();
    assert!(matches!(q.put(&Item::Bad), Err(PutError::Encode(_))));
    assert_eq!(q.qsize(), 0);
    q.put(&Item::Good(true)).unwrap();
    assert_eq!(q.qsize(), 1);
    assert!(matches!(q.get().unwrap(), Item::Good(true)));
    assert!(q.empty());
}

#[test]
fn que_9_joinable_queue_task_done_and_join() {
    let _g = guard_for(Duration::from_secs(40));
    let q = JoinableQueue::<Option<u32>>::new().unwrap();
    let done = multiproc::Value::new(0u32).unwrap();
    let workers: Vec<Process> = (0..4)
        .map(|_| {
            let (q, done) = (q.clone(), done.clone());
            let p = Process::new(move || loop {
                match q.get().unwrap() {
                    Some(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        done.fetch_add(1).unwrap();
                        q.task_done().unwrap();
                    }
                    None => {
                        q.task_done().unwrap();
                        return;
                    }
                }
            });
            p.start().unwrap();
            p
        })
        .collect();
    for i in 0..10 {
        q.put(&Some(i)).unwrap();
    }
    assert!(q.join_timeout(Duration::from_secs(20)).is_ok());
    // `join` returned only after every item was processed (not merely taken).
    assert_eq!(done.get().unwrap(), 10);
    for _ in 0..4 {
        q.put(&None).unwrap();
    }
    for w in workers {
        assert!(w.join().unwrap().success());
    }
    q.join();
    assert!(matches!(q.task_done(), Err(TaskDoneError)));
}

#[test]
fn que_10_simple_queue() {
    let _g = guard_for(Duration::from_secs(40));
    let q = SimpleQueue::<bool>::new().unwrap();
    assert!(q.empty());
    let child = Process::new({
        let q = q.clone();
        move || {
            q.put(&q.empty()).unwrap();
            q.put(&q.empty()).unwrap();
        }
    });
    child.start().unwrap();
    assert!(child.join().unwrap().success());
    assert!(!q.empty());
    assert!(q.get().unwrap());
    assert!(!q.get().unwrap());
    assert!(q.empty());
    q.close();
    q.close();
}

static EARLY: std::sync::OnceLock<Queue<String>> = std::sync::OnceLock::new();

#[test]
fn que_11_usable_during_initialisation() {
    let q = EARLY.get_or_init(|| {
        let q = Queue::new().unwrap();
        q.put(&"knock knock".to_string()).unwrap();
        q
    });
    assert_eq!(q.get_timeout(Duration::from_secs(3)).unwrap(), "knock knock");
}

#[test]
fn que_12_each_producer_keeps_its_order() {
    let _g = guard_for(Duration::from_secs(40));
    let q = Queue::<(u32, u32)>::new().unwrap();
    let ps: Vec<Process> = (0..3)
        .map(|p| {
            let q = q.clone();
            let pr = Process::new(move || {
                for i in 0..300 {
                    q.put(&(p, i)).unwrap();
                }
            });
            pr.start().unwrap();
            pr
        })
        .collect();
    let mut last = [None::<u32>; 3];
    for _ in 0..900 {
        let (p, i) = q.get_timeout(Duration::from_secs(10)).unwrap();
        assert!(last[p as usize].is_none_or(|l| l + 1 == i), "producer {p}: {i} after {:?}", last[p as usize]);
        last[p as usize] = Some(i);
    }
    for p in ps {
        assert!(p.join().unwrap().success());
    }
}

/// QUE-13: `shutdown()` from one process: the others' puts fail with `ShutDown`, a consumer
/// blocked in `get` in a child wakes, the items already there are drained first, and `wait`
/// reports the queue ready (a `get` would not block).
#[test]
fn que_13_shutdown_reaches_every_process_and_drains_first() {
    let _g = guard_for(Duration::from_secs(40));
    let q = Queue::<u32>::new().unwrap();
    let got = Queue::<Vec<u32>>::new().unwrap();
    let consumer = Process::new({
        let (q, got) = (q.clone(), got.clone());
        move || -> Result<(), String> {
            let mut seen = Vec::new();
            loop {
                match q.get() {
                    Ok(v) => seen.push(v),
                    Err(GetError::ShutDown) => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
            match q.put(&9) {
                Err(PutError::ShutDown) => {}
                other => return Err(format!("put after shutdown: {other:?}")),
            }
            got.put(&seen).map_err(|e| e.to_string())
        }
    });
    consumer.start().unwrap();
    for i in 0..3 {
        q.put(&i).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50)); // the consumer drains and blocks in `get`
    q.put(&3).unwrap();
    q.shutdown();
    assert!(q.is_shutdown());
    assert!(matches!(q.try_put(&4), Err(TryPutError::ShutDown)));
    assert!(matches!(q.put_timeout(&4, Duration::from_secs(1)), Err(PutTimeoutError::ShutDown)));
    let s = consumer.join().unwrap();
    assert!(s.success(), "{s}");
    assert_eq!(got.get().unwrap(), [0, 1, 2, 3], "every item put before the shutdown was taken");
    assert_eq!(multiproc::wait(&[&q], Some(Duration::from_secs(5))), [0], "ready: a get fails at once");
    assert!(matches!(q.get_timeout(Duration::from_secs(5)), Err(GetTimeoutError::ShutDown)));
}

/// QUE-14: `shutdown_immediate()` drops what is queued: gets fail at once, and a
/// `JoinableQueue`'s `join` returns even though its items were never marked done.
#[test]
fn que_14_immediate_shutdown_drops_the_items_and_releases_join() {
    let _g = guard_for(Duration::from_secs(40));
    let q = JoinableQueue::<u32>::new().unwrap();
    for i in 0..5 {
        q.put(&i).unwrap();
    }
    let joiner = Process::new({
        let q = q.clone();
        move || q.join_timeout(Duration::from_secs(20))
    });
    joiner.start().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    q.shutdown_immediate();
    assert!(joiner.join().unwrap().success(), "join returned after the immediate shutdown");
    assert!(q.empty());
    assert!(matches!(q.try_get(), Err(TryGetError::ShutDown)));
}

#[test]
fn que_b3_value_captured_at_put() {
    let q = Queue::<Vec<u32>>::new().unwrap();
    let mut v = vec![1, 2, 3];
    q.put(&v).unwrap();
    v.push(4);
    assert_eq!(q.get().unwrap(), vec![1, 2, 3]);
}

#[test]
fn que_b4_nothing_lost_when_a_child_exits_right_after_putting() {
    let _g = guard_for(Duration::from_secs(40));
    let q = Queue::<u32>::new().unwrap();
    let child = Process::new({
        let q = q.clone();
        move || {
            for i in 0..1000 {
                q.put(&i).unwrap();
            }
            // The abrupt exit of QUE-B4 (Python's os._exit(0)); Process leaves through _exit.
        }
    });
    child.start().unwrap();
    assert!(child.join().unwrap().success());
    assert_eq!(q.qsize(), 1000);
    let got: Vec<u32> = (0..1000).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

#[test]
fn que_b5_child_that_put_10_mib_joins_before_the_parent_reads() {
    let _g = guard_for(Duration::from_secs(40));
    let q = Queue::<Vec<u8>>::new().unwrap();
    let child = Process::new({
        let q = q.clone();
        move || q.put(&vec![7u8; 10 << 20]).unwrap()
    });
    child.start().unwrap();
    let status = child.join_timeout(Duration::from_secs(10)).expect("the child could not exit");
    assert!(status.success());
    assert_eq!(q.get().unwrap().len(), 10 << 20);
    // An item that can never fit is refused at once instead of blocking forever.
    let small = Queue::<Vec<u8>>::builder().capacity_bytes(1024).build().unwrap();
    assert!(matches!(small.put(&vec![0u8; 4096]), Err(PutError::TooLarge { .. })));
}

#[test]
fn que_b6_consumer_killed_inside_get_does_not_wedge_the_others() {
    let _g = guard_for(Duration::from_secs(40));
    let mut rng = common::Rng::new("que_b6");
    let q = Queue::<Vec<u8>>::new().unwrap();
    for round in 0..10 {
        // A consumer hammering `get` on large items, killed at a random moment.
        for _ in 0..50 {
            q.put(&vec![round as u8; 64 * 1024]).unwrap();
        }
        let consumer = Process::new({
            let q = q.clone();
            move || -> () {
                loop {
                    let _ = q.get();
                }
            }
        });
        consumer.start().unwrap();
        std::thread::sleep(Duration::from_micros(rng.range(50, 3000)));
        consumer.kill().unwrap();
        consumer.join().unwrap();
        // The survivors still get every remaining item, whole.
        q.put(&vec![0xEE; 10]).unwrap();
        let t = Instant::now();
        loop {
            let item = q.get_timeout(Duration::from_secs(5)).expect("queue wedged after a consumer died");
            if item == vec![0xEE; 10] {
                break;
            }
            assert!(item.len() == 64 * 1024 && item.iter().all(|&b| b == round as u8), "torn item");
        }
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(q.empty());
    }
}

#[test]
fn que_stress_producers_and_consumers_killed_at_random() {
    let _g = guard_for(Duration::from_secs(40));
    let mut rng = common::Rng::new("que_stress");
    let q = Queue::<(u32, u32, u64)>::new().unwrap(); // (producer, seq, checksum)
    let sum = |p: u32, i: u32| (p as u64) << 32 ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let producers: Vec<Process> = (0..3)
        .map(|p| {
            let q = q.clone();
            let pr = Process::new(move || {
                for i in 0..20_000u32 {
                    q.put(&(p, i, (p as u64) << 32 ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))).unwrap();
                }
            });
            pr.start().unwrap();
            pr
        })
        .collect();
    // Kill one producer partway and a throwaway consumer a few times.
    std::thread::sleep(Duration::from_millis(rng.range(1, 20)));
    producers[0].kill().unwrap();
    for _ in 0..3 {
        let c = Process::new({
            let q = q.clone();
            move || -> () {
                // Paced, so that three short-lived consumers cannot take every item (they
                // drained the queue in a few ms once waits stopped costing a sleep per item,
                // and the check below then had nothing to find).
                loop {
                    let _ = q.get();
                    std::thread::sleep(Duration::from_micros(10));
                }
            }
        });
        c.start().unwrap();
        std::thread::sleep(Duration::from_micros(rng.range(100, 2000)));
        c.kill().unwrap();
        c.join().unwrap();
    }
    for p in producers {
        p.join().unwrap();
    }
    // Drain: no torn item, no duplicate, each producer's items in order.
    let mut last = [None::<u32>; 3];
    while let Ok((p, i, c)) = q.try_get() {
        assert_eq!(c, sum(p, i), "torn or corrupt item");
        if let Some(l) = last[p as usize] {
            assert!(i > l, "duplicate or reordered item from producer {p}");
        }
        last[p as usize] = Some(i);
    }
    // Producers 1 and 2 finished: their last item arrived (only items taken by killed
    // consumers may be missing).
    assert!(last[1].is_some() && last[2].is_some());
}

/// The stress test: producers and consumers over real processes, over a million
/// checksummed messages, a producer and many consumers SIGKILLed at random. Every consumer
/// forwards what it got to a results queue, so the parent can account for every message: no
/// torn item, no duplicate, and nothing acknowledged is lost except at most one item per killed
/// consumer (taken from the queue, then killed before forwarding it: documented in FAILURE.md).
#[test]
fn que_stress_a_million_checksummed_messages_with_random_kills() {
    let _g = guard_for(Duration::from_secs(120));
    let mut rng = common::Rng::new("que_stress_million");
    const N: u32 = 400_000; // per producer; three producers
    const STOP: u32 = u32::MAX;
    let sum = |p: u32, i: u32| (p as u64) << 32 ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let q = Queue::<(u32, u32, u64)>::builder().capacity_bytes(1 << 20).build().unwrap();
    let results = Queue::<(u32, u32, bool)>::builder().capacity_bytes(64 << 20).build().unwrap();
    let consumer = |q: Queue<(u32, u32, u64)>, results: Queue<(u32, u32, bool)>| {
        move || loop {
            let (p, i, c) = q.get().unwrap();
            if p == STOP {
                return;
            }
            results.put(&(p, i, c == sum(p, i))).unwrap();
        }
    };
    let producers: Vec<Process> = (0..3)
        .map(|p| {
            let q = q.clone();
            let pr = Process::new(move || {
                for i in 0..N {
                    q.put(&(p, i, sum(p, i))).unwrap();
                }
            });
            pr.start().unwrap();
            pr
        })
        .collect();
    let steady: Vec<Process> = (0..2)
        .map(|_| {
            let c = Process::new(consumer(q.clone(), results.clone()));
            c.start().unwrap();
            c
        })
        .collect();
    let mut killed = 0;
    let kill_producer_at = rng.range(5, 40);
    for round in 0..40 {
        if round == kill_producer_at {
            producers[0].kill().unwrap();
        }
        let c = Process::new(consumer(q.clone(), results.clone()));
        c.start().unwrap();
        std::thread::sleep(Duration::from_micros(rng.range(200, 5000)));
        c.kill().unwrap();
        c.join().unwrap();
        killed += 1;
    }
    for p in &producers {
        p.join().unwrap();
    }
    for _ in &steady {
        q.put(&(STOP, 0, 0)).unwrap();
    }
    for c in steady {
        assert_eq!(c.join().unwrap().exitcode(), 0);
    }
    // Account for every message.
    let mut seen = vec![vec![false; N as usize]; 3];
    let mut max0 = None::<u32>;
    while let Ok((p, i, ok)) = results.try_get() {
        assert!(ok, "torn or corrupt item from producer {p}, #{i}");
        assert!(!seen[p as usize][i as usize], "duplicate: producer {p}, #{i}");
        seen[p as usize][i as usize] = true;
        if p == 0 {
            max0 = max0.max(Some(i));
        }
    }
    let missing = |p: usize, upto: usize| seen[p][..upto].iter().filter(|&&s| !s).count();
    let lost = missing(1, N as usize) + missing(2, N as usize) + max0.map_or(0, |m| missing(0, m as usize + 1));
    assert!(lost <= killed, "{lost} messages lost with only {killed} consumers killed");
    assert!(q.empty(), "items left behind: {}", q.qsize());
}

/// `Duration::MAX` means "no deadline" for the queue family's timed calls.
#[test]
fn que_max_timeouts_wait() {
    let _g = common::guard();
    let q: multiproc::Queue<u32> = multiproc::Queue::with_maxsize(1).unwrap();
    let sq: multiproc::SimpleQueue<u32> = multiproc::SimpleQueue::new().unwrap();
    let child = multiproc::Process::new({
        let (q, sq) = (q.clone(), sq.clone());
        move || -> Result<(), multiproc::PutError> {
            std::thread::sleep(Duration::from_millis(30));
            q.put(&1)?;
            sq.put(&5)?;
            q.put(&2)?; // waits until the parent has taken 1
            Ok(())
        }
    });
    child.start().unwrap();
    assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 1);
    assert_eq!(sq.get_timeout(Duration::MAX).unwrap(), 5);
    assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 2);
    q.put_timeout(&3, Duration::MAX).unwrap();
    assert!(child.join().unwrap().success());
}

/// QUE-B8: `try_get` says `Empty` only when the queue is empty. Four threads each put an item
/// and then `try_get` one (crossbeam's `linearizable` test): each `try_get` has at least its
/// own thread's item to find, however busy the lock is with the others.
#[test]
fn que_b8_try_get_is_empty_only_when_the_queue_is() {
    let _g = guard_for(Duration::from_secs(60));
    const THREADS: usize = 4;
    const COUNT: usize = 20_000;
    let q = Queue::<u32>::with_maxsize(THREADS).unwrap();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let q = q.clone();
            s.spawn(move || {
                for i in 0..COUNT {
                    q.put(&0).unwrap();
                    if let Err(e) = q.try_get() {
                        panic!("try_get after our own put, round {i}: {e}");
                    }
                }
            });
        }
    });
    assert!(q.empty());
}

/// QUE-B8, split handles: with every producer gone, consumer clones draining together never
/// hear `Disconnected` while an item is left (crossbeam's disconnection tests, ported): a
/// consumer that got it gets it again, and all items are taken once.
#[test]
fn que_b8_disconnected_only_once_drained() {
    let _g = guard_for(Duration::from_secs(60));
    const ITEMS: u32 = 20_000;
    for _ in 0..5 {
        let (tx, rx) = Queue::<u32>::new().unwrap().split().unwrap();
        for i in 0..ITEMS {
            tx.put(&i).unwrap();
        }
        drop(tx);
        let total = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (rx, total) = (rx.clone(), &total);
                s.spawn(move || loop {
                    match rx.try_get() {
                        Ok(_) => {
                            total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(TryGetError::Disconnected) => {
                            assert!(
                                matches!(rx.try_get(), Err(TryGetError::Disconnected)),
                                "an item after Disconnected"
                            );
                            return;
                        }
                        Err(e) => panic!("{e}"),
                    }
                });
            }
        });
        assert_eq!(total.into_inner(), ITEMS);
    }
}

/// QUE-B9: a dropped side of a split queue is seen by the other side's very next call, with
/// no clock tick to wait for (crossbeam's `send_after_disconnect`, ported): a put after the
/// last consumer's drop fails, and nothing is stranded in the queue.
#[test]
fn que_b9_a_put_after_the_last_consumer_dropped_is_disconnected_at_once() {
    for _ in 0..20 {
        let (tx, rx) = Queue::<u32>::new().unwrap().split().unwrap();
        tx.put(&1).unwrap();
        tx.put(&2).unwrap();
        tx.put(&3).unwrap(); // the put just before the drop, in the same clock tick
        drop(rx);
        assert!(matches!(tx.put(&4), Err(PutError::Disconnected)), "a put after the drop");
        assert!(matches!(tx.try_put(&5), Err(TryPutError::Disconnected)));
    }
    // And the other way: the last producer's drop ends the consumer's drain at once.
    for _ in 0..20 {
        let (tx, rx) = Queue::<u32>::new().unwrap().split().unwrap();
        assert!(matches!(rx.try_get(), Err(TryGetError::Empty)));
        drop(tx);
        assert!(matches!(rx.try_get(), Err(TryGetError::Disconnected)));
    }
}

/// A ring no segment can hold is refused when the queue is made (`TooLarge`), never made with
/// a capacity that wrapped around (which then refused every item).
#[test]
fn queue_capacity_that_cannot_exist_is_too_large_at_creation() {
    for cap in [usize::MAX, usize::MAX - 4096, isize::MAX as usize] {
        let r = multiproc::Queue::<Vec<u8>>::builder().capacity_bytes(cap).build();
        assert!(matches!(r, Err(multiproc::ShmError::TooLarge { .. })), "{cap}: {r:?}");
    }
}

#[test]
fn que_b12_every_wait_strategy_gets_items_from_another_process_and_keeps_its_limits() {
    let _g = guard_for(Duration::from_secs(60));
    for w in [WaitStrategy::Park, WaitStrategy::Adaptive, WaitStrategy::Spin] {
        let to = Queue::<u64>::builder().wait(w).build().unwrap();
        let mut back = Queue::<u64>::new().unwrap();
        back.set_wait(w);
        let child = {
            let (to, back) = (to.clone(), back.clone());
            Process::new(move || -> Result<(), GetError> {
                // An echo: each item back, plus one.
                for _ in 0..2000 {
                    let v = to.get()?;
                    back.put(&(v + 1)).map_err(|_| GetError::Closed)?;
                }
                Ok(())
            })
        };
        child.start().unwrap();
        for i in 0..2000u64 {
            to.put(&i).unwrap();
            assert_eq!(back.get().unwrap(), i + 1, "{w:?}");
        }
        child.join().unwrap();
        assert_eq!(child.exitcode(), Some(0), "{w:?}");
        // A try form never waits; a timed one times out; a shutdown ends a waiting get.
        assert!(matches!(back.try_get(), Err(TryGetError::Empty)), "{w:?}");
        let t = Instant::now();
        assert!(matches!(back.get_timeout(Duration::from_millis(20)), Err(GetTimeoutError::Timeout)), "{w:?}");
        assert!(t.elapsed() >= Duration::from_millis(20), "{w:?}");
        std::thread::scope(|s| {
            let getter = s.spawn(|| back.get());
            std::thread::sleep(Duration::from_millis(20));
            back.shutdown();
            assert!(matches!(getter.join().unwrap(), Err(GetError::ShutDown)), "{w:?}");
        });
    }
}
