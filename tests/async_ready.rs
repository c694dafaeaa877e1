//! Async readiness: `ReadyFd` with tokio's `AsyncFd` (epoll), and the `async` feature's
//! futures under a tokio runtime (tokio is a dev-dependency only). Real processes feed them.
#![cfg(all(feature = "async", feature = "serde", not(loom)))]
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::{fork_child, guard, wait_child, Ended};
use multiproc::{ArrayQueue, GetError, Pipe, PutError, Queue, RecvError};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// CPU time (user + system) of every thread of this process so far.
fn cpu_time() -> Duration {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `u` is a writable rusage.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) }, 0);
    // SAFETY: getrusage filled it.
    let u = unsafe { u.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// A task awaiting a queue fed by a forked child receives 1,000 messages,
/// and the process (runtime, watcher thread and all) spends far less CPU than wall time: no
/// busy loop. The child pauses every 50 messages, so most of the time there is nothing to get.
#[test]
fn get_async_receives_1000_messages_from_a_child_without_spinning() {
    let _g = guard();
    let q = Queue::<u32>::new().unwrap();
    let pid = fork_child(|| {
        for i in 0..1000 {
            q.put(&i).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(15));
            }
        }
        0
    });
    let (wall, cpu) = (Instant::now(), cpu_time());
    runtime().block_on(async {
        for i in 0..1000 {
            assert_eq!(q.get_async().await.unwrap(), i);
        }
    });
    let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
    assert_eq!(wait_child(pid), Ended::Code(0));
    eprintln!("1000 messages: wall {wall:?}, CPU {cpu:?}");
    assert!(wall >= Duration::from_millis(250), "the child's pauses make it last: {wall:?}");
    assert!(cpu < wall / 2, "busy waiting? CPU {cpu:?} over wall {wall:?}");
}

/// A task awaiting `get_async` on an empty queue is woken by a `shutdown()` in another process
/// and ends with `ShutDown` (QUE-13), after taking what was queued first.
#[test]
fn get_async_ends_with_shut_down_when_another_process_shuts_the_queue() {
    let _g = guard();
    let q = Queue::<u32>::new().unwrap();
    let me = common::this_thread(); // the runtime runs the task on this thread
    let got = multiproc::Event::new().unwrap();
    let pid = fork_child(|| {
        common::until_asleep(me);
        q.put(&7).unwrap();
        // Once the task took the item, wait until it is asleep again: the shutdown must wake it.
        assert!(got.wait_timeout(Duration::from_secs(10)).is_ok());
        common::until_asleep(me);
        q.shutdown();
        0
    });
    runtime().block_on(async {
        assert_eq!(q.get_async().await.unwrap(), 7);
        got.set();
        let end = tokio::time::timeout(Duration::from_secs(20), q.get_async()).await;
        assert!(matches!(end, Ok(Err(GetError::ShutDown))), "{end:?}");
    });
    assert_eq!(wait_child(pid), Ended::Code(0));
}

/// `ReadyFd` in tokio's `AsyncFd` (epoll): an ArrayQueue fed by a child is drained on each
/// readiness, rearmed on empty; every item arrives.
#[test]
fn ready_fd_drives_tokio_async_fd_for_an_array_queue() {
    let _g = guard();
    let q = ArrayQueue::<u64>::new(64).unwrap();
    let pid = fork_child(|| {
        for i in 0..500u64 {
            while q.try_push(i).is_err() {
                std::thread::yield_now();
            }
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        0
    });
    let got = runtime().block_on(async {
        // SAFETY: a ReadyFd owns its eventfd for its whole life and always reports that one.
        let afd = unsafe { AsyncFd::register(q.ready_fd().unwrap()) }.unwrap();
        let mut got = Vec::new();
        while got.len() < 500 {
            let mut guard = afd.readable().await.unwrap();
            while let Ok(v) = q.try_pop() {
                got.push(v);
            }
            afd.get_ref().rearm();
            guard.clear_ready();
        }
        got
    });
    assert_eq!(got, (0..500).collect::<Vec<_>>());
    assert_eq!(wait_child(pid), Ended::Code(0));
}

/// `recv_async` over a pipe from a child, then end of file when it exits.
#[test]
fn recv_async_then_eof_when_the_writer_exits() {
    let _g = guard();
    let (mut rx, mut tx) = Pipe::one_way().unwrap();
    let pid = fork_child(move || {
        for i in 0..200u32 {
            tx.send(&i).unwrap();
            if i % 40 == 39 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        0
    });
    runtime().block_on(async {
        for i in 0..200u32 {
            assert_eq!(rx.recv_async::<u32>().await.unwrap(), i);
        }
        assert!(matches!(rx.recv_async::<u32>().await, Err(RecvError::Disconnected)));
    });
    assert_eq!(wait_child(pid), Ended::Code(0));
}

/// A split consumer's `get_async` ends with `Disconnected` once the producer child exits.
#[test]
fn consumer_get_async_ends_with_disconnected() {
    let _g = guard();
    let (tx, rx) = Queue::<u32>::new().unwrap().split().unwrap();
    let pid = fork_child(move || {
        std::thread::sleep(Duration::from_millis(30));
        tx.put(&1).unwrap();
        0
    });
    runtime().block_on(async {
        assert_eq!(rx.get_async().await.unwrap(), 1);
        assert!(matches!(rx.get_async().await, Err(GetError::Disconnected)));
    });
    assert_eq!(wait_child(pid), Ended::Code(0));
}

/// Two tasks awaiting the same queue both get served (each future registers its own waker).
#[test]
fn two_tasks_await_one_queue() {
    let _g = guard();
    let q = Queue::<u32>::new().unwrap();
    let pid = fork_child(|| {
        std::thread::sleep(Duration::from_millis(30));
        q.put(&1).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        q.put(&2).unwrap();
        0
    });
    let mut got = runtime().block_on(async {
        let (a, b) = tokio::join!(q.get_async(), q.get_async());
        vec![a.unwrap(), b.unwrap()]
    });
    got.sort();
    assert_eq!(got, [1, 2]);
    assert_eq!(wait_child(pid), Ended::Code(0));
}

/// Watcher threads of this process (named `multiproc-ready`).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|t| {
            let comm = t.as_ref().map(|t| t.path().join("comm")).ok().and_then(|p| std::fs::read_to_string(p).ok());
            comm.is_some_and(|c| c.trim() == "multiproc-ready")
        })
        .count()
}

/// Waits (up to 10 s) until `threads()` is `n`; returns what it last saw.
fn settle(n: usize) -> usize {
    let t = Instant::now();
    let mut seen = threads();
    while seen != n && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
        seen = threads();
    }
    seen
}

/// Dropping a process's last `ReadyFd` ends its watcher thread (no thread leak per `ready_fd`
/// call), and eight of them share one thread. Earlier tests' watchers leave within one slice of
/// their handles' drop, so start from none.
#[test]
fn dropping_a_ready_fd_ends_its_watcher() {
    let _g = guard();
    assert_eq!(settle(0), 0, "watchers of earlier tests still running");
    let q = Queue::<u32>::new().unwrap();
    let fds: Vec<_> = (0..8).map(|_| q.ready_fd().unwrap()).collect();
    // A new thread names itself once it runs: wait for the name, then for no second one.
    assert_eq!(settle(1), 1, "eight ready descriptors, one watcher thread");
    drop(fds);
    assert_eq!(settle(0), 0);
}

/// WAIT-B1: 1,000 queues watched in one process cost a handful of threads (one per 127), and an
/// item put by another process fires its own queue's descriptor and no other.
#[test]
fn wait_b1_a_thousand_watched_queues_in_a_handful_of_threads_fire_the_right_fd() {
    use std::os::fd::AsFd;
    let _g = guard();
    assert_eq!(settle(0), 0, "watchers of earlier tests still running");
    let queues: Vec<Queue<u32>> = (0..1000).map(|_| Queue::new().unwrap()).collect();
    let fds: Vec<_> = queues.iter().map(|q| q.ready_fd().unwrap()).collect();
    // Threads name themselves once they run: count when the count has held for 100 ms.
    let (mut n, mut held, t) = (threads(), 0, Instant::now());
    while held < 5 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        let now = threads();
        held = if now == n { held + 1 } else { 0 };
        n = now;
    }
    assert!((1..=8).contains(&n), "{n} watcher threads for 1,000 objects");
    for target in [537usize, 0, 999, 126, 127] {
        let q = queues[target].clone();
        let pid = fork_child(move || {
            q.put(&7).unwrap();
            0
        });
        assert_eq!(wait_child(pid), Ended::Code(0));
        // Sleep in poll(2) on all 1,000 descriptors until one fires.
        let mut set: Vec<_> =
            fds.iter().map(|f| nix::poll::PollFd::new(f.as_fd(), nix::poll::PollFlags::POLLIN)).collect();
        assert_eq!(nix::poll::poll(&mut set, 10_000u16).unwrap(), 1, "exactly one descriptor fires");
        let fired: Vec<usize> =
            set.iter().enumerate().filter(|(_, p)| p.any().unwrap_or(false)).map(|(i, _)| i).collect();
        assert_eq!(fired, [target]);
        assert_eq!(queues[target].try_get().unwrap(), 7);
        assert!(queues[target].try_get().is_err());
        fds[target].rearm();
        assert!(fds.iter().all(|f| !f.is_signaled()), "no other descriptor fired");
    }
    drop(fds);
    assert_eq!(settle(0), 0);
}

/// The `async` methods cache their watcher in the handle; dropping the handles ends it (the
/// watcher's own clone must not keep the cache, and so itself, alive), and a dropped
/// consumer that used `get_async` no longer counts: its producer sees `Disconnected`.
#[test]
fn async_methods_leave_no_watcher_behind() {
    let _g = guard();
    assert_eq!(settle(0), 0, "watchers of earlier tests still running");
    let q = Queue::<u32>::new().unwrap();
    let aq = ArrayQueue::<u64>::new(4).unwrap();
    let (tx, rx) = Queue::<u32>::new().unwrap().split().unwrap();
    let (mut r, mut w) = Pipe::one_way().unwrap();
    let pid = fork_child(|| {
        std::thread::sleep(Duration::from_millis(20));
        q.put(&1).unwrap();
        aq.try_push(2).unwrap();
        tx.put(&3).unwrap();
        w.send(&4u32).unwrap();
        0
    });
    runtime().block_on(async {
        assert_eq!(q.get_async().await.unwrap(), 1);
        assert_eq!(aq.pop_async().await.unwrap(), 2);
        assert_eq!(rx.get_async().await.unwrap(), 3);
        assert_eq!(r.recv_async::<u32>().await.unwrap(), 4);
    });
    assert_eq!(wait_child(pid), Ended::Code(0));
    assert!(threads() >= 1, "the first await needed a watcher");
    drop((q, aq, rx, r));
    assert_eq!(settle(0), 0, "a watcher outlived its handles");
    assert!(matches!(tx.put(&5), Err(PutError::Disconnected)));
    drop(w);
}

/// A TCP connection (the socket transport, no rings): `recv_async` wakes on the socket.
#[test]
fn recv_async_over_tcp() {
    use multiproc::{Address, Client, Listener};
    let _g = guard();
    let l = Listener::bind(Address::Tcp("127.0.0.1:0".into()), Some(b"k")).unwrap();
    let addr = l.address().clone();
    let pid = fork_child(move || {
        let mut c = Client::connect(&addr, Some(b"k")).unwrap();
        for i in 0..50u32 {
            c.send(&i).unwrap();
            if i % 10 == 9 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        0
    });
    let mut conn = l.accept().unwrap();
    runtime().block_on(async {
        for i in 0..50u32 {
            assert_eq!(conn.recv_async::<u32>().await.unwrap(), i);
        }
        assert!(matches!(conn.recv_async::<u32>().await, Err(RecvError::Disconnected)));
    });
    assert_eq!(wait_child(pid), Ended::Code(0));
}

/// A waker that panics when woken (a caller's bug).
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        panic!("a waker that panics");
    }
}

/// A waker that panics does not take the watcher thread down with it: objects watched after it
/// (which join the same group) are still signaled. Before, the thread died and every later
/// `ReadyFd` of its group stayed silent: their futures never completed.
#[test]
fn a_panicking_waker_leaves_the_watcher_running() {
    let _g = guard();
    let q = ArrayQueue::<u64>::new(4).unwrap();
    let fd = q.ready_fd().unwrap();
    let waker = std::task::Waker::from(std::sync::Arc::new(PanickingWaker));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = Box::pin(fd.readable());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    q.try_push(1).unwrap(); // the watcher wakes the panicking waker
    let t = Instant::now();
    while !fd.is_signaled() {
        assert!(t.elapsed() < Duration::from_secs(5), "never signaled");
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(fut);
    let q2 = ArrayQueue::<u64>::new(4).unwrap();
    let fd2 = q2.ready_fd().unwrap();
    q2.try_push(2).unwrap();
    let t = Instant::now();
    while !fd2.is_signaled() {
        assert!(t.elapsed() < Duration::from_secs(5), "an object watched after the panic is never signaled");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(q2.try_pop().unwrap(), 2);
    drop(fd);
}

/// A waker that counts, in a shared counter, how many wakers like it are alive.
struct Tracked(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Tracked {
    fn waker(alive: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> std::task::Waker {
        alive.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::task::Waker::from(std::sync::Arc::new(Tracked(alive.clone())))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl std::task::Wake for Tracked {
    fn wake(self: std::sync::Arc<Self>) {}
}

/// Futures dropped before their object was ready (a select with a timeout, in a loop) do not
/// leave their wakers on the object: each takes its own out. Before, 10,000 such polls kept
/// 10,000 wakers alive until the object next became ready. Many futures still waiting on one
/// object (more than a bound) are all kept, and all woken when it is ready.
#[test]
fn dropped_futures_do_not_pile_up_wakers_on_a_quiet_object() {
    let q = ArrayQueue::<u64>::new(4).unwrap();
    let fd = q.ready_fd().unwrap();
    let alive = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // 100 futures that keep waiting, each with a waker of its own (distinct tasks).
    let mut waiting: Vec<_> = (0..100).map(|_| (Box::pin(fd.readable()), Tracked::waker(&alive))).collect();
    for (f, w) in &mut waiting {
        assert!(f.as_mut().poll(&mut std::task::Context::from_waker(w)).is_pending());
    }
    for _ in 0..10_000 {
        let waker = Tracked::waker(&alive);
        let mut cx = std::task::Context::from_waker(&waker);
        let mut fut = Box::pin(fd.readable());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    // The 100 futures' wakers, held by them and by the object: no more.
    assert_eq!(alive.load(std::sync::atomic::Ordering::SeqCst), 100, "wakers of dropped futures are still held");
    q.try_push(1).unwrap();
    let t = Instant::now();
    while !fd.is_signaled() {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    let (f, w) = &mut waiting[0];
    assert!(f.as_mut().poll(&mut std::task::Context::from_waker(w)).is_ready(), "a waiting future missed the signal");
    drop(waiting);
    assert_eq!(alive.load(std::sync::atomic::Ordering::SeqCst), 0);
}
