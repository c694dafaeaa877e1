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
    let child: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let _ = std::fs::remove_file(&pidfile);
    let running = || {
        std::fs::read_to_string(format!("/proc/{child}/stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
    };
    let t = std::time::Instant::now();
    while running() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!running(), "the hung input's own child {child} survived");
    // The server goes on.
    area.set(b"x").unwrap();
    assert!(matches!(server.run_input(target, &area, Duration::from_secs(10)).unwrap(), ExecOutcome::Exited(_)));
}
