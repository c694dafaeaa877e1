//! Start methods, START-* in `docs/BEHAVIOURS.md`: fork, spawn and forkserver children, the objects
//! passed to them, and a multi-threaded parent.
#![cfg(feature = "serde")] // entries take serde arguments
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use multiproc::ForkServer;
use multiproc::{
    get_context, get_start_method, set_start_method, Array, Barrier, Condition, Connection, Event, Lock, Pipe, Process,
    Queue, Semaphore, SharedMemory, StartMethod, Value,
};
use multiproc::{BootError, StartError, StartMethodSetError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const ALL: [StartMethod; 3] = [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer];
const FRESH: [StartMethod; 2] = [StartMethod::Spawn, StartMethod::ForkServer];
const T: Duration = Duration::from_secs(20);

fn start(m: StartMethod) -> multiproc::ProcessBuilder {
    Process::builder().start_method(m)
}

fn exit_with(code: i32) -> i32 {
    code
}

#[test]
fn start_1_the_three_methods_exist_and_fork_is_the_default() {
    // Under the guard `start_2` holds while it changes the process-wide default: the two
    // reads below must see the same one.
    let _g = common::guard();
    assert_eq!(StartMethod::default(), StartMethod::Fork);
    assert_eq!(ALL.map(StartMethod::name), ["fork", "spawn", "forkserver"]);
    assert_eq!(Process::new(|| ()).start_method(), get_start_method());
}

/// Sets the process-wide default (and puts `Fork` back: the other tests of this file name
/// their method explicitly, so they do not mind).
#[test]
fn start_2_the_default_is_set_once_unless_forced() {
    let _g = common::guard();
    set_start_method(StartMethod::Spawn, true).unwrap();
    assert!(matches!(set_start_method(StartMethod::Fork, false), Err(StartMethodSetError(StartMethod::Spawn))));
    assert_eq!(get_start_method(), StartMethod::Spawn);
    let p = Process::spawn(exit_with, 3).unwrap();
    assert_eq!(p.start_method(), StartMethod::Spawn);
    assert_eq!(p.join().unwrap().exitcode(), 3);
    // A closure under a fresh-image default is refused with a clear error.
    assert!(matches!(Process::new(|| ()).start(), Err(StartError::NotSpawnable(StartMethod::Spawn))));
    set_start_method(StartMethod::Fork, true).unwrap();
}

#[test]
fn start_3_a_context_uses_its_method_without_changing_the_default() {
    let _g = common::guard();
    for m in ALL {
        let p = get_context(m).process().spawn(exit_with, 4).unwrap();
        assert_eq!((p.start_method(), p.join().unwrap().exitcode()), (m, 4));
    }
    assert_eq!(get_context(StartMethod::Spawn).start_method(), StartMethod::Spawn);
}

static CHANGED_AT_RUN_TIME: AtomicU32 = AtomicU32::new(0);

fn read_static(_: ()) -> i32 {
    CHANGED_AT_RUN_TIME.load(Ordering::SeqCst) as i32
}

/// A forked child inherits what the parent changed at run time; a spawned one (or a fork
/// server's, forked from a fresh image) starts from the program's initial state.
#[test]
fn start_4_a_spawned_child_starts_from_a_fresh_image() {
    let _g = common::guard();
    CHANGED_AT_RUN_TIME.store(7, Ordering::SeqCst);
    let code = |m| start(m).spawn(read_static, ()).unwrap().join().unwrap().exitcode();
    assert_eq!(code(StartMethod::Fork), 7);
    assert_eq!(code(StartMethod::Spawn), 0);
    assert_eq!(code(StartMethod::ForkServer), 0);
}

type Objects =
    (Queue<u64>, Lock, Value<u64>, Array<u32>, Event, Semaphore, Barrier, Condition<Lock>, Connection, SharedMemory);

fn use_objects((q, lock, v, a, e, s, b, c, mut conn, shm): Objects) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    q.put(&42).map_err(|e| err(&e))?;
    match lock.try_lock() {
        Err(e) if e.is_would_block() => {}
        Ok(_) => return Err("the lock the parent holds is free here".into()),
        Err(e) => return Err(err(&e)),
    }
    v.fetch_add(1).map_err(|e| err(&e))?;
    a.set(3, 9).map_err(|e| err(&e))?;
    e.set();
    if s.acquire_timeout(T).is_err() {
        return Err("no permit".into());
    }
    b.wait_timeout(T).map_err(|e| err(&e))?;
    drop(c.lock().lock().map_err(|e| err(&e))?);
    conn.send_bytes(b"through a passed pipe end").map_err(|e| err(&e))?;
    shm.write_at(0, b"shm").map_err(|e| err(&e))?;
    Ok(())
}

/// Every kind of shared object, passed as an argument, works in the child (START-5).
#[test]
fn start_5_objects_passed_as_arguments_work_in_the_child() {
    let _g = common::guard();
    for m in ALL {
        let (q, lock, v, a, e) = (
            Queue::<u64>::new().unwrap(),
            Lock::new().unwrap(),
            Value::new(1u64).unwrap(),
            Array::<u32>::zeroed(4).unwrap(),
            Event::new().unwrap(),
        );
        let (s, b, c, shm) = (
            Semaphore::new(1).unwrap(),
            Barrier::new(2).unwrap(),
            Condition::new(Lock::new().unwrap()).unwrap(),
            SharedMemory::anonymous(8).unwrap(),
        );
        let (mut mine, theirs) = Pipe::duplex().unwrap();
        let held = lock.lock().unwrap();
        let args = (
            q.clone(),
            lock.clone(),
            v.clone(),
            a.clone(),
            e.clone(),
            s.clone(),
            b.clone(),
            c.clone(),
            theirs,
            shm.clone(),
        );
        let p = start(m).spawn(use_objects, args).unwrap();
        b.wait_timeout(T).unwrap_or_else(|e| panic!("{m:?}: {e}"));
        let status = p.join().unwrap();
        assert!(status.success(), "{m:?}: {status}");
        drop(held);
        assert_eq!(q.get_timeout(T).unwrap(), 42, "{m:?}");
        assert_eq!((v.get().unwrap(), a.get(3).unwrap(), e.is_set(), s.get_value()), (2, 9, true, 0), "{m:?}");
        assert_eq!(mine.recv_bytes_timeout(T).unwrap(), b"through a passed pipe end");
        let mut buf = [0u8; 3];
        shm.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"shm");
    }
}

static PRELOADED: AtomicU32 = AtomicU32::new(0);

fn preload() {
    PRELOADED.store(11, Ordering::SeqCst);
}

fn read_preloaded(_: ()) -> i32 {
    PRELOADED.load(Ordering::SeqCst) as i32
}

fn panic_in_init() {
    panic!("the target failed to load");
}

/// What a fork server's `init` prepared is what its children start from (START-6); an init
/// that panics is a clear error.
#[test]
fn start_6_a_fork_server_prepares_its_children_once() {
    let _g = common::guard();
    let server = ForkServer::builder().init(preload).start().unwrap();
    for _ in 0..3 {
        let p = server.spawn(Process::builder(), read_preloaded, ()).unwrap();
        assert_eq!(p.join().unwrap().exitcode(), 11);
    }
    assert_eq!(PRELOADED.load(Ordering::SeqCst), 0, "init ran in the server, not here");
    match ForkServer::builder().init(panic_in_init).start() {
        Err(StartError::Boot(BootError::Refused(w))) => assert!(w.contains("the target failed to load"), "{w}"),
        other => panic!("{other:?}"),
    }
}

fn fail(how: u8) -> Result<(), String> {
    match how {
        0 => Ok(()),
        1 => Err("an error".into()),
        2 => panic!("a panic"),
        _ => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
    }
}

/// Exit codes, failure reports and signals are the same under every method (START-7).
#[test]
fn start_7_exit_status_reports_and_signals_are_the_same_under_every_method() {
    let _g = common::guard();
    for m in ALL {
        let s = start(m).spawn(fail, 0).unwrap().join().unwrap();
        assert!(s.success(), "{m:?}");
        let s = start(m).spawn(fail, 1).unwrap().join().unwrap();
        assert_eq!((s.exitcode(), s.message()), (1, Some("an error")), "{m:?}");
        let s = start(m).spawn(fail, 2).unwrap().join().unwrap();
        assert_eq!(s.exitcode(), 1, "{m:?}");
        assert!(s.message().is_some_and(|t| t.contains("a panic") && t.contains("start.rs")), "{m:?}: {s}");
        let p = start(m).spawn(fail, 3).unwrap();
        assert!(p.join_timeout(Duration::from_millis(50)).is_err_and(|e| e.is_timeout()) && p.is_alive(), "{m:?}");
        p.terminate().unwrap();
        assert_eq!(p.join().unwrap().exitcode(), -15, "{m:?}");
        let p = start(m).spawn(fail, 3).unwrap();
        p.kill().unwrap();
        assert_eq!(p.join().unwrap().exitcode(), -9, "{m:?}");
        let p = start(m).name("named-child").spawn(fail, 0).unwrap();
        assert_eq!(p.name(), "named-child");
        assert!(p.join().unwrap().success());
    }
}

fn my_name(_: ()) -> Result<(), String> {
    let me = multiproc::current_process();
    if me.name() == "spawned" {
        Ok(())
    } else {
        Err(format!("named {}", me.name()))
    }
}

/// The child runs its entry, never the program's `main` (here: the test harness, which would
/// run the tests again); a program that does not take the entry is a clear error, not a hang
/// (START-8).
#[test]
fn start_8_the_child_runs_its_entry_and_a_foreign_program_is_a_clear_error() {
    let _g = common::guard();
    for m in FRESH {
        let s = start(m).name("spawned").spawn(my_name, ()).unwrap().join().unwrap();
        assert!(s.success(), "{m:?}: {s}");
    }
    let t = std::time::Instant::now();
    let p = start(StartMethod::Spawn).executable("/bin/true").entry(exit_with, 0).unwrap();
    match p.start() {
        Err(StartError::Boot(e @ BootError::Exited { code: Some(0), .. })) => {
            assert!(e.to_string().contains("init()"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(10), "the error took {:?}", t.elapsed());
}

fn work((q, lock, i): (Queue<u32>, Lock, u32)) -> Result<(), String> {
    drop(lock.lock().map_err(|e| e.to_string())?);
    q.put(&i).map_err(|e| e.to_string())
}

/// START-B1: a parent with 8 busy threads (one holding a `std::sync::Mutex` for good, one
/// printing in a loop) starts 100 children with Spawn and 100 with ForkServer; all succeed.
#[test]
fn start_b1_spawn_and_forkserver_are_safe_in_a_threaded_parent() {
    let _g = common::guard_for(Duration::from_secs(300));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let held = std::sync::Arc::new(std::sync::Mutex::new(0u32));
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let (stop, held, locked_tx) = (stop.clone(), held.clone(), locked_tx.clone());
            std::thread::Builder::new()
                .name(format!("multiproc-test-busy-{k}"))
                .spawn(move || match k {
                    0 => {
                        let _g = held.lock().unwrap();
                        locked_tx.send(()).unwrap();
                        while !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    1 => {
                        while !stop.load(Ordering::Relaxed) {
                            println!("busy printing");
                        }
                    }
                    _ => {
                        let mut x = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            x = x.wrapping_mul(31).wrapping_add(1);
                            std::hint::black_box(x);
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    locked_rx.recv().unwrap();
    let q = Queue::<u32>::new().unwrap();
    let lock = Lock::new().unwrap();
    for m in FRESH {
        let kids: Vec<Process> =
            (0..100).map(|i| start(m).spawn(work, (q.clone(), lock.clone(), i)).unwrap()).collect();
        let mut got: Vec<u32> = (0..100).map(|_| q.get_timeout(T).unwrap()).collect();
        for k in kids {
            let s = k.join().unwrap();
            assert!(s.success(), "{m:?}: {s}");
        }
        got.sort();
        assert_eq!(got, (0..100).collect::<Vec<_>>(), "{m:?}");
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}

fn sleep_forever(_: ()) -> std::convert::Infallible {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A dead fork server gives clear errors, and its children do not keep running.
#[test]
fn start_forkserver_death_is_an_error_and_takes_its_children() {
    let _g = common::guard();
    let server = ForkServer::builder().start().unwrap();
    let child = server.spawn(Process::builder(), sleep_forever, ()).unwrap();
    let child_pid = child.pid().unwrap() as i32;
    common::sigkill(server.pid() as i32);
    let s = child.join_timeout(T);
    assert!(matches!(s, Err(multiproc::JoinTimeoutError::ForkServer(_)) | Ok(_)), "{s:?}");
    let t = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{child_pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{child_pid}/stat")).unwrap_or_default().contains(") Z")
    {
        assert!(t.elapsed() < T, "the dead server's child still runs");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(matches!(server.spawn(Process::builder(), exit_with, 0), Err(StartError::ForkServer(_))));
}
