//! Managers, MGR-* in `docs/BEHAVIOURS.md`, with real processes: forked and spawned children, a TCP
//! server, and deaths on both sides.
#![cfg(feature = "serde")] // values travel with serde + postcard
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use multiproc::{Manager, ManagerError, ManagerTimeoutError, QueueProxy, Shared, TryManagerError};
use multiproc::{Process, StartMethod};
use std::error::Error;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// Runs `f` in a forked child and requires it to succeed.
fn in_child(f: impl FnOnce() -> Result<(), Box<dyn Error>> + Send + 'static) {
    let p = Process::new(f);
    p.start().unwrap();
    let s = p.join().unwrap();
    assert!(s.success(), "{s}");
}

#[test]
fn mgr_1_list_operations_nesting_and_snapshot_iteration() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let a = m.list_from((0..10).collect::<Vec<i32>>()).unwrap();
    assert_eq!(a.to_vec().unwrap(), (0..10).collect::<Vec<_>>());
    let b = m.list::<i32>().unwrap();
    b.extend(0..5).unwrap();
    assert_eq!(b.get(2).unwrap(), 2);
    let v = b.to_vec().unwrap();
    assert_eq!(&v[2..v.len().min(10)], [2, 3, 4]); // b[2:10]
    b.update_with(|v| v.extend(v.clone())).unwrap(); // b *= 2
    assert_eq!(b.to_vec().unwrap(), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    assert_eq!([b.to_vec().unwrap(), vec![5, 6]].concat().len(), 12); // b + [5, 6]
                                                                      // A list holding proxies: later changes through the proxy are seen through the list.
    let inner = m.list::<String>().unwrap();
    let f = m.list_from(vec![inner.clone()]).unwrap();
    inner.push("hello".into()).unwrap();
    assert_eq!(f.get(0).unwrap().to_vec().unwrap(), ["hello"]);
    // Iteration is over a snapshot: exhausted after one pass; a new one sees later changes.
    let mut it = a.iter().unwrap();
    assert_eq!(it.by_ref().count(), 10);
    assert_eq!(it.next(), None);
    a.set(0, 100).unwrap();
    assert_eq!(a.iter().unwrap().next(), Some(100));
    assert!(matches!(a.get(10), Err(ManagerError::NotFound)));
    assert_eq!(a.get(-1).unwrap(), 9);
}

#[test]
fn mgr_2_dict_keeps_insertion_order_and_iterates_a_snapshot() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let d = m.dict::<u32, char>().unwrap();
    for i in 65..70u32 {
        d.insert(i, char::from_u32(i).unwrap()).unwrap();
    }
    assert_eq!(d.keys().unwrap(), [65, 66, 67, 68, 69]);
    assert_eq!(d.values().unwrap(), ['A', 'B', 'C', 'D', 'E']);
    assert_eq!(d.items().unwrap()[0], (65, 'A'));
    let items = d.items().unwrap(); // Python's d.copy()
    d.clear().unwrap();
    // Differs from Python on purpose: a snapshot, so clearing meanwhile is not an error.
    assert_eq!(items.len(), 5);
    assert!(d.is_empty().unwrap());
}

#[test]
fn mgr_3_nested_proxies_work_and_outlive_the_outer_object() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let d = m.dict::<String, multiproc::DictProxy<String, u32>>().unwrap();
    let supplies = m.dict::<String, u32>().unwrap();
    d.insert("supplies".into(), supplies.clone()).unwrap();
    d.get("supplies").unwrap().unwrap().insert("blankets".into(), 5).unwrap();
    assert_eq!(supplies.get("blankets").unwrap(), Some(5));
    d.clear().unwrap();
    assert_eq!(supplies.get("blankets").unwrap(), Some(5), "the inner object outlives clear()");
    // Queue proxies inside list and dict proxies.
    let q = m.queue::<u32>().unwrap();
    let a = m.list_from(vec![q.clone()]).unwrap();
    a.get(0).unwrap().put(&123).unwrap();
    assert_eq!(a.get(0).unwrap().get().unwrap(), 123);
    let qd = m.dict::<u8, QueueProxy<u32>>().unwrap();
    qd.insert(0, q.clone()).unwrap();
    qd.get(&0).unwrap().unwrap().put(&456).unwrap();
    assert_eq!(q.get().unwrap(), 456);
    // A plain list stays plain.
    let outer = m.list_from(vec![vec![1u8, 2]]).unwrap();
    assert_eq!(outer.get(0).unwrap(), [1, 2]);
}

#[test]
fn mgr_4_namespace_fields() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let n = m.namespace().unwrap();
    n.set("name", "Bob").unwrap();
    n.set("job", "Builder").unwrap();
    assert!(n.remove("job").unwrap());
    assert_eq!(n.names().unwrap(), ["name"]);
    assert!(!n.has("job").unwrap());
    assert_eq!(n.get::<String>("name").unwrap().as_deref(), Some("Bob"));
}

#[test]
fn mgr_5_list_and_dict_across_processes() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let l = m.list_from(vec![5i32]).unwrap();
    let l2 = l.clone();
    in_child(move || {
        assert_eq!(l2.to_vec()?, [5]);
        assert_eq!((l2.count(&5)?, l2.index(&5)?), (1, 0));
        l2.sort()?;
        l2.reverse()?;
        assert_eq!(l2.remove_at(0)?, 5);
        Ok(())
    });
    assert!(l.is_empty().unwrap());
    let d = m.dict::<String, i32>().unwrap();
    d.insert("foo".into(), 5).unwrap();
    let d2 = d.clone();
    in_child(move || {
        assert_eq!(d2.get("foo")?, Some(5));
        assert_eq!(d2.items()?, [("foo".to_string(), 5)]);
        assert_eq!((d2.keys()?, d2.values()?), (vec!["foo".to_string()], vec![5]));
        assert_eq!(d2.popitem()?, Some(("foo".to_string(), 5)));
        Ok(())
    });
    assert!(d.is_empty().unwrap());
}

#[test]
fn mgr_6_bounded_queue_across_processes() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let q = m.queue_with_maxsize::<u32>(2).unwrap();
    q.put(&5).unwrap();
    q.put(&6).unwrap();
    let q2 = q.clone();
    in_child(move || {
        assert_eq!(q2.qsize()?, 2);
        assert!(q2.full()? && !q2.empty()?);
        assert_eq!((q2.get()?, q2.get()?), (5, 6));
        assert!(q2.empty()?);
        Ok(())
    });
    assert!(q.empty().unwrap() && !q.full().unwrap());
    assert!(matches!(q.try_get(), Err(TryManagerError::WouldBlock)));
}

#[test]
fn mgr_7_a_lock_acquired_in_a_child_is_released_by_the_parent() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let l = m.lock().unwrap();
    let l2 = l.clone();
    let held = m.event().unwrap();
    let (h2, stay) = (held.clone(), m.event().unwrap());
    let s2 = stay.clone();
    let p = Process::new(move || -> Result<(), Box<dyn Error>> {
        l2.acquire()?;
        h2.set()?;
        s2.wait_timeout(T)?; // keep the connection open: a dead client's lock is released
        Ok(())
    });
    p.start().unwrap();
    held.wait_timeout(T).unwrap();
    assert!(matches!(l.try_acquire(), Err(TryManagerError::WouldBlock)));
    l.release().unwrap();
    assert!(matches!(l.release(), Err(ManagerError::NotHeld)), "release unlocked lock");
    stay.set().unwrap();
    assert!(p.join().unwrap().success());
}

#[test]
fn mgr_8_event_value_and_array_across_processes() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let e = m.event().unwrap();
    e.set().unwrap();
    let v = m.value(1i64).unwrap();
    let a = m.array(&[0u8, 1]).unwrap();
    let (e2, v2, a2) = (e.clone(), v.clone(), a.clone());
    in_child(move || {
        assert!(e2.is_set()?);
        e2.clear()?;
        assert_eq!(v2.get()?, 1);
        v2.set(2)?;
        assert_eq!(a2.to_vec()?, [0, 1]);
        Ok(())
    });
    assert!(!e.is_set().unwrap());
    assert_eq!(v.get().unwrap(), 2);
}

#[test]
fn mgr_9_semaphores_condition_and_barrier_from_a_child() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let s = m.semaphore(1).unwrap();
    let bs = m.bounded_semaphore(1).unwrap();
    let c = m.condition().unwrap();
    let b = m.barrier(5).unwrap();
    let (s2, bs2, c2, b2) = (s.clone(), bs.clone(), c.clone(), b.clone());
    in_child(move || {
        s2.acquire_timeout(T)?;
        s2.release()?;
        bs2.try_acquire()?;
        bs2.release()?;
        assert!(matches!(bs2.release(), Err(ManagerError::NotHeld)));
        c2.acquire()?;
        c2.notify_all()?;
        assert!(matches!(c2.wait_timeout(Duration::from_millis(10)), Err(ManagerTimeoutError::Timeout)));
        c2.release()?;
        assert_eq!(b2.parties()?, 5);
        b2.reset()?;
        Ok(())
    });
    // A condition's notify reaches a waiter in another process.
    let ready = m.event().unwrap();
    let (c3, r3) = (c.clone(), ready.clone());
    let waiter = Process::new(move || -> Result<(), String> {
        let err = |e: ManagerError| e.to_string();
        c3.acquire().map_err(err)?;
        r3.set().map_err(err)?;
        c3.wait_timeout(T).map_err(|e| format!("not notified: {e}"))?;
        c3.release().map_err(err)
    });
    waiter.start().unwrap();
    ready.wait_timeout(T).unwrap();
    c.acquire().unwrap(); // granted once the waiter gave the lock up inside wait
    assert_eq!(c.notify(1).unwrap(), 1);
    c.release().unwrap();
    let s = waiter.join().unwrap();
    assert!(s.success(), "{s}");
    // Barrier(5): four children and this process pass together.
    let kids: Vec<Process> = (0..4)
        .map(|_| {
            let b = b.clone();
            Process::new(move || b.wait_timeout(T).map(drop))
        })
        .collect();
    for k in &kids {
        k.start().unwrap();
    }
    b.wait_timeout(T).unwrap();
    for k in kids {
        assert!(k.join().unwrap().success());
    }
    let _ = (s, bs);
}

fn cube(x: u64) -> u64 {
    x * x * x
}

fn fail_on_three(x: u32) -> u32 {
    assert!(x != 3, "three is refused");
    x
}

/// MGR-9's Pool proxy: a pool in the server, used by a forked child and by this process; a
/// task's panic comes back as the pool's error.
#[test]
fn mgr_9_pool_proxy_from_a_child() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let pool = m.pool(2).unwrap();
    let p2 = pool.clone();
    in_child(move || {
        assert_eq!(p2.map(cube, (0..10).collect())?, (0..10).map(cube).collect::<Vec<_>>());
        assert_eq!(p2.apply(cube, 4)?, 64);
        Ok(())
    });
    assert_eq!(pool.map(cube, vec![]).unwrap().len(), 0);
    match pool.map(fail_on_three, vec![1, 2, 3, 4]) {
        Err(ManagerError::Remote(e)) => assert!(e.message.contains("three is refused"), "{e}"),
        other => panic!("expected the task's panic, got {other:?}"),
    }
    assert_eq!(pool.apply(cube, 2).unwrap(), 8, "the pool goes on after a failed task");
}

#[test]
fn mgr_10_shutdown_ends_the_server_and_later_calls_say_so() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let d = m.dict::<u8, u8>().unwrap();
    d.insert(1, 1).unwrap();
    m.shutdown().unwrap();
    let t = Instant::now();
    assert!(matches!(d.get(&1), Err(ManagerError::ServerGone)));
    assert!(matches!(m.dict::<u8, u8>(), Err(ManagerError::ServerGone)));
    assert!(t.elapsed() < common::AT_ONCE * 2, "took {:?}", t.elapsed());
}

#[derive(Default)]
struct Account {
    balance: i64,
}

impl Shared for Account {
    type Init = i64;
    type Request = i64;
    type Response = Result<i64, String>;
    fn new(balance: i64) -> Self {
        Account { balance }
    }
    fn handle(&mut self, delta: i64) -> Result<i64, String> {
        if delta == i64::MIN {
            panic!("a handler that panics");
        }
        if self.balance + delta < 0 {
            return Err(format!("insufficient funds: {}", self.balance));
        }
        self.balance += delta;
        Ok(self.balance)
    }
}

#[test]
fn mgr_11_registered_types_their_errors_and_panics() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let acct = m.create::<Account>(100).unwrap();
    assert_eq!(acct.call(-30).unwrap(), Ok(70));
    assert_eq!(acct.call(-100).unwrap(), Err("insufficient funds: 70".to_string()), "the server's error comes back");
    let a2 = acct.clone();
    in_child(move || {
        assert_eq!(a2.call(5)?, Ok(75));
        Ok(())
    });
    match acct.call(i64::MIN) {
        Err(ManagerError::Remote(e)) => assert!(e.message.contains("a handler that panics"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(acct.call(0).unwrap(), Ok(75), "the object survives its handler's panic");
}

type Mixed = (String, Option<()>, bool, f64, String, Vec<u8>);

fn put_mixed((q, v): (QueueProxy<Mixed>, Mixed)) -> Result<(), ManagerError> {
    q.put(&v)
}

#[test]
fn mgr_12_a_tcp_manager_reached_by_another_process_and_restarted_on_its_address() {
    let _g = common::guard();
    let m = Manager::builder().address("tcp:127.0.0.1:0").unwrap().authkey(b"secret").start().unwrap();
    let address = m.address().clone();
    let q = m.queue::<Mixed>().unwrap();
    let value: Mixed = ("str".into(), None, true, 2.5, "ünïcode".into(), b"bytes".to_vec());
    // A spawned client receives the queue proxy as an argument and reaches the server by TCP.
    let p = Process::builder().start_method(StartMethod::Spawn).spawn(put_mixed, (q.clone(), value.clone())).unwrap();
    assert!(p.join().unwrap().success());
    assert_eq!(q.get_timeout(T).unwrap(), value);
    // Scenario (g): 3 processes × 3 keys, through Manager::connect.
    let d = m.dict::<String, String>().unwrap();
    let kids: Vec<Process> = (0..3)
        .map(|i| {
            let (address, d) = (address.clone(), d.clone());
            Process::new(move || -> Result<(), ManagerError> {
                let _m = Manager::connect(&address, b"secret")?;
                for j in 0..3 {
                    d.insert(format!("process_{i}_item_{j}"), format!("Value from process {i}"))?;
                }
                Ok(())
            })
        })
        .collect();
    for k in &kids {
        k.start().unwrap();
    }
    for k in kids {
        assert!(k.join().unwrap().success());
    }
    assert_eq!(d.len().unwrap(), 9);
    assert!(matches!(Manager::connect(&address, b"wrong"), Err(ManagerError::Connect(_))));
    m.shutdown().unwrap();
    let again = Manager::builder().address(&address).unwrap().authkey(b"secret").start().unwrap();
    assert_eq!(again.address(), &address, "restarted on the same address");
    again.shutdown().unwrap();
}

/// MGR-B1: `update_with` is atomic where Python's `d[k] += 1` loses updates.
#[test]
fn mgr_b1_concurrent_increments_are_not_lost() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let d = m.dict::<String, u64>().unwrap();
    let kids: Vec<Process> = (0..4)
        .map(|_| {
            let d = d.clone();
            Process::new(move || -> Result<(), ManagerError> {
                for _ in 0..300 {
                    d.update_with("n".into(), |v| v.unwrap_or(0) + 1)?;
                }
                Ok(())
            })
        })
        .collect();
    for k in &kids {
        k.start().unwrap();
    }
    for k in kids {
        assert!(k.join().unwrap().success());
    }
    assert_eq!(d.get("n").unwrap(), Some(1200));
}

/// A client SIGKILLed while holding a manager lock (and in the middle of a blocking call on
/// another object): the server serves the others, and the lock is released.
#[test]
fn mgr_a_killed_client_releases_its_lock_and_the_server_goes_on() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let l = m.lock().unwrap();
    let q = m.queue::<u8>().unwrap();
    let held = m.event().unwrap();
    let (l2, q2, h2) = (l.clone(), q.clone(), held.clone());
    let p = Process::new(move || -> Result<(), ManagerError> {
        l2.acquire()?;
        h2.set()?;
        q2.get().map(drop) // blocks in the server for ever
    });
    p.start().unwrap();
    held.wait_timeout(T).unwrap();
    assert!(matches!(l.try_acquire(), Err(TryManagerError::WouldBlock)));
    p.kill().unwrap();
    p.join().unwrap();
    l.acquire_timeout(T).expect("the dead client's lock was not released");
    q.put(&1).unwrap();
    assert_eq!(q.get_timeout(T).unwrap(), 1, "the item went to a live client, not to the dead one");
}

/// The server killed: every proxy call returns ServerGone, blocked callers included.
#[test]
fn mgr_server_death_makes_every_call_fail_fast() {
    let _g = common::guard();
    let m = Manager::start().unwrap();
    let q = m.queue::<u8>().unwrap();
    let server_pid =
        multiproc::active_children().iter().find(|p| p.name() == "SyncManager").and_then(|p| p.pid()).unwrap();
    let q2 = q.clone();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let blocked = std::thread::spawn(move || {
        tid_tx.send(common::this_thread()).unwrap();
        q2.get()
    });
    common::until_asleep(tid_rx.recv().unwrap()); // blocked in `get`, waiting on the server
    common::sigkill(server_pid as i32);
    let r = blocked.join().unwrap();
    assert!(matches!(r, Err(ManagerError::ServerGone)), "{r:?}");
    let t = Instant::now();
    assert!(matches!(q.put(&1), Err(ManagerError::ServerGone)));
    assert!(t.elapsed() < common::AT_ONCE * 2);
}

/// The server is not daemonic (it may start a pool's workers) but still dies with the process
/// that started it, even one that leaves without shutting it down (here: `_exit`, no drops).
#[test]
fn mgr_server_dies_with_its_creator() {
    let _g = common::guard();
    let server = multiproc::Value::new(0u32).unwrap();
    let pid = common::fork_child(|| {
        let m = Manager::start().unwrap();
        let kids = multiproc::active_children();
        server.set(kids[0].pid().unwrap()).unwrap();
        std::mem::forget(m);
        0
    });
    assert_eq!(common::wait_child(pid), common::Ended::Code(0));
    let server = server.get().unwrap();
    assert_ne!(server, 0);
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{server}")).exists()
        && std::fs::read_to_string(format!("/proc/{server}/stat")).is_ok_and(|s| !s.contains(") Z"))
    {
        assert!(t.elapsed() < T, "the manager's server {server} outlived its creator");
        std::thread::sleep(Duration::from_millis(5));
    }
}
