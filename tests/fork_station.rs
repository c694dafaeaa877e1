//! START-B2's station set-up when the fork server dies before answering while a copy of the
//! station socket's other end lives on in a child that another thread forked at that moment.
//! The end of file the caller waited for never comes then; it must still learn at once that
//! the server is gone (from the server's pidfd), not after the 30 s boot timeout.
//!
//! A test binary of its own: the hook it sets is process-wide.
#![cfg(feature = "serde")] // the fork server
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code: raw libc is fine here

mod common;

use multiproc::{ForkServer, FuzzInput, InputArea, RunInputError};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

fn target(_: FuzzInput) -> i32 {
    0
}

/// The child forked in the window, holding a copy of the station socket's other end.
static HOLDER: AtomicI32 = AtomicI32::new(0);

/// In the window: a fork (as another thread's would be), then the server's death before it can
/// answer (it is stopped first, so that it never reads the request).
fn fork_then_kill_the_server(server: libc::pid_t) {
    // SAFETY: plain signals to the server, a child of this process.
    unsafe { libc::kill(server, libc::SIGSTOP) };
    // The child only sleeps, holding the descriptors it inherited.
    let holder = common::fork_child(|| {
        std::thread::sleep(Duration::from_secs(60));
        0
    });
    HOLDER.store(holder, Ordering::SeqCst);
    // SAFETY: as above.
    unsafe { libc::kill(server, libc::SIGKILL) };
}

#[test]
fn start_b2_a_station_whose_server_dies_unanswered_fails_at_once() {
    // Under the boot timeout (30 s): without the server's pidfd in the wait, this fires.
    let _g = common::guard_for(Duration::from_secs(20));
    let server = ForkServer::builder().start().unwrap();
    let area = InputArea::new(16).unwrap();
    area.set(b"x").unwrap();
    multiproc::fuzz::before_station_ack(Some(fork_then_kill_the_server));
    let r = server.run_input(target, &area, Duration::from_secs(5));
    multiproc::fuzz::before_station_ack(None);
    let holder = HOLDER.load(Ordering::SeqCst);
    assert!(holder > 0, "the hook ran");
    common::sigkill(holder);
    common::wait_child(holder);
    match r {
        Err(RunInputError::Start(e)) => assert!(e.to_string().contains("fork server"), "{e}"),
        other => panic!("expected a start failure naming the fork server, got {other:?}"),
    }
}
