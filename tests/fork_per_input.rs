//! `ForkServer::run_input` (START-B2 in `docs/BEHAVIOURS.md`): a fresh child per input from the
//! fork server's prepared image, the input through shared memory, a time limit, and how each
//! child ended.
#![cfg(feature = "serde")] // the fork server
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use multiproc::{ExecOutcome, ForkServer, FuzzInput, InputArea, ShmError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Set by the server's `init` (the prepared image); changed by every input's run.
static STATE: AtomicU32 = AtomicU32::new(0);

fn prepare() {
    STATE.store(40, Ordering::SeqCst);
}

/// Exits with the prepared state plus one (a child that saw a previous input's change would
/// exit with more); crashes on "abort"; on "hang:PATH" starts a child of its own, writes its
/// pid to PATH and waits for it (60 s: past any limit here).
fn target(input: FuzzInput) -> i32 {
    let b = input.bytes();
    if b == b"abort" {
        std::process::abort();
    }
    if let Some(path) = b.strip_prefix(b"hang:") {
        let mut c = std::process::Command::new("sleep").arg("60").spawn().expect("sleep");
        std::fs::write(String::from_utf8_lossy(path).as_ref(), c.id().to_string()).expect("pid file");
        let _ = c.wait();
    }
    STATE.fetch_add(1, Ordering::SeqCst) as i32 + 1
}

#[test]
fn start_b2_each_input_runs_in_a_fresh_copy_of_the_prepared_image() {
    let _g = common::guard_for(Duration::from_secs(60));
    let server = ForkServer::builder().init(prepare).start().unwrap();
    let area = InputArea::new(256).unwrap();
    for input in [&b"a"[..], b"bb", b"", b"ccc"] {
        area.set(input).unwrap();
        // 41 every time: the prepared 40, plus this input's own change, never the last one's.
        assert_eq!(server.run_input(target, &area, Duration::from_secs(10)).unwrap(), ExecOutcome::Exited(41));
    }
    area.set(b"abort").unwrap();
    assert_eq!(server.run_input(target, &area, Duration::from_secs(10)).unwrap(), ExecOutcome::Signaled(libc::SIGABRT));
    assert!(matches!(area.set(&[0u8; 257]), Err(ShmError::InvalidArgument { .. })));
}

/// The pid the `hang:` input wrote is not a running process within 5 s (dead or a zombie).
fn assert_input_child_is_gone(pidfile: &std::path::Path) {
    let child: i32 = std::fs::read_to_string(pidfile).unwrap().trim().parse().unwrap();
    let _ = std::fs::remove_file(pidfile);
    let running = || {
        std::fs::read_to_string(format!("/proc/{child}/stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
    };
    let t = std::time::Instant::now();
    while running() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!running(), "the input's own child {child} survived");
}

#[test]
fn start_b2_a_hung_input_is_killed_with_its_children() {
    let _g = common::guard_for(Duration::from_secs(60));
    let server = ForkServer::builder().start().unwrap();
    let area = InputArea::new(256).unwrap();
    let pidfile = std::env::temp_dir().join(format!("mp-exec-{}.pid", std::process::id()));
    let _ = std::fs::remove_file(&pidfile);
    area.set(format!("hang:{}", pidfile.display()).as_bytes()).unwrap();
    let out = server.run_input(target, &area, Duration::from_millis(500)).unwrap();
    assert_eq!(out, ExecOutcome::TimedOut);
    assert_input_child_is_gone(&pidfile);
    // The server goes on.
    area.set(b"x").unwrap();
    assert!(matches!(server.run_input(target, &area, Duration::from_secs(10)).unwrap(), ExecOutcome::Exited(_)));
}

/// Exits with the input's length; a panic exits with 1, as any child's panic does.
fn length(input: FuzzInput) -> i32 {
    let b = input.bytes();
    assert!(b != b"panic", "asked to panic");
    b.len() as i32
}

#[test]
fn start_b2_areas_targets_and_threads_each_get_their_own_station() {
    let _g = common::guard_for(Duration::from_secs(60));
    let server = ForkServer::builder().init(prepare).start().unwrap();
    let (a, b) = (InputArea::new(64).unwrap(), InputArea::new(64).unwrap());
    a.set(b"aaaa").unwrap();
    b.set(b"bb").unwrap();
    // Interleaved areas and targets: each run sees its own area and runs its own target.
    for _ in 0..3 {
        assert_eq!(server.run_input(length, &a, Duration::from_secs(10)).unwrap(), ExecOutcome::Exited(4));
        assert_eq!(server.run_input(length, &b, Duration::from_secs(10)).unwrap(), ExecOutcome::Exited(2));
        assert_eq!(server.run_input(target, &b, Duration::from_secs(10)).unwrap(), ExecOutcome::Exited(41));
    }
    b.set(b"panic").unwrap();
    assert_eq!(server.run_input(length, &b, Duration::from_secs(10)).unwrap(), ExecOutcome::Exited(1));
    // More areas than the handle keeps stations for: the oldest are let go, the runs go on.
    let many: Vec<InputArea> = (0..12).map(|_| InputArea::new(16).unwrap()).collect();
    for (i, area) in many.iter().enumerate() {
        area.set(&vec![0u8; i]).unwrap();
        assert_eq!(server.run_input(length, area, Duration::from_secs(10)).unwrap(), ExecOutcome::Exited(i as i32));
    }
    // Threads at once, each with its own area, on one server.
    std::thread::scope(|s| {
        for t in 1..=4usize {
            let server = &server;
            s.spawn(move || {
                let area = InputArea::new(16).unwrap();
                area.set(&vec![1u8; t]).unwrap();
                for _ in 0..20 {
                    assert_eq!(
                        server.run_input(length, &area, Duration::from_secs(10)).unwrap(),
                        ExecOutcome::Exited(t as i32)
                    );
                }
            });
        }
    });
}

#[test]
fn start_b2_a_forked_copy_of_the_requester_runs_inputs_of_its_own() {
    let _g = common::guard_for(Duration::from_secs(60));
    let server = ForkServer::builder().start().unwrap();
    let area = std::sync::Arc::new(InputArea::new(16).unwrap());
    area.set(b"abc").unwrap();
    assert_eq!(server.run_input(length, &area, Duration::from_secs(10)).unwrap(), ExecOutcome::Exited(3));
    // The forked child inherits the handle and its station for this very area and target; it
    // must not use that station (two processes on one station would cross their requests), so
    // it sets up its own, while the parent goes on with the first.
    let child = {
        let (server, area) = (server.clone(), area.clone());
        multiproc::Process::builder()
            .start(move || {
                for _ in 0..50 {
                    if server.run_input(length, &area, Duration::from_secs(10)).unwrap() != ExecOutcome::Exited(3) {
                        return 1;
                    }
                }
                0
            })
            .unwrap()
    };
    for _ in 0..50 {
        assert_eq!(server.run_input(length, &area, Duration::from_secs(10)).unwrap(), ExecOutcome::Exited(3));
    }
    assert_eq!(child.join().unwrap().exitcode(), 0);
}

#[test]
fn start_b2_a_server_killed_during_a_run_fails_the_run_and_kills_what_the_input_started() {
    let _g = common::guard_for(Duration::from_secs(60));
    let server = ForkServer::builder().start().unwrap();
    let area = InputArea::new(256).unwrap();
    let pidfile = std::env::temp_dir().join(format!("mp-exec-kill-{}.pid", std::process::id()));
    let _ = std::fs::remove_file(&pidfile);
    area.set(format!("hang:{}", pidfile.display()).as_bytes()).unwrap();
    let killer = {
        let pid = server.pid() as i32;
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: a signal to the server, a process this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })
    };
    let t = std::time::Instant::now();
    let r = server.run_input(target, &area, Duration::from_secs(40));
    killer.join().unwrap();
    assert!(matches!(r, Err(multiproc::RunInputError::Wait(_))), "{r:?}");
    // The input died with the server; what it started is killed by `run_input`.
    assert_input_child_is_gone(&pidfile);
    assert!(t.elapsed() < Duration::from_secs(30), "the failure came at the limit, not at the server's death");
    assert!(matches!(server.run_input(target, &area, Duration::from_secs(1)), Err(multiproc::RunInputError::Start(_))));
}

#[test]
fn start_b2_after_the_server_dies_the_next_station_fails_to_start() {
    let _g = common::guard_for(Duration::from_secs(120));
    // A dying server closes its descriptors from the highest down, its control socket last:
    // a station asked for in between used to look set up, and the run after it failed as if
    // an input had been under way (`Wait`). The server now confirms each station; each round
    // kills a server right after a run and asks for a new station at once.
    let area = InputArea::new(64).unwrap();
    area.set(b"a").unwrap();
    let other = InputArea::new(64).unwrap();
    other.set(b"b").unwrap();
    for round in 0..60 {
        let server = ForkServer::builder().start().unwrap();
        assert_eq!(server.run_input(target, &area, Duration::from_secs(10)).unwrap(), ExecOutcome::Exited(1));
        // SAFETY: a signal to the server, a process this test started.
        unsafe { libc::kill(server.pid() as i32, libc::SIGKILL) };
        // A new (target, area) pair: a new station, whatever state the dying server is in.
        let r = server.run_input(target, &other, Duration::from_secs(10));
        assert!(matches!(r, Err(multiproc::RunInputError::Start(_))), "round {round}: {r:?}");
    }
}
