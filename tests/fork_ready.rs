//! A forked child lets go of the readiness entries it inherited (FAILURE.md, "Async
//! readiness"). A test binary of its own: under `cargo test` the tests of one binary run as
//! threads of one process, and a child another test forks meanwhile would inherit this test's
//! descriptors too, keeping the end open for as long as it lives.
#![cfg(all(feature = "async", feature = "serde", not(loom)))]
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // test code

mod common;

use common::guard;
use multiproc::Pipe;
use std::future::Future;
use std::time::{Duration, Instant};

/// A reading end whose readiness this process watched (a `recv_bytes_async` that waited),
/// moved into a forked child that drops it: the end is closed in every process, and its writer
/// is told so, while the child lives on. Before, the child kept the parent's watcher entry
/// (the fork copies the registry, not the thread that would drop it), and with it the end's
/// descriptors: the writer was never told.
#[test]
fn a_watched_end_dropped_in_a_forked_child_is_closed_there() {
    let _g = guard();
    let (mut a, mut b) = Pipe::duplex().unwrap();
    {
        let mut fut = Box::pin(b.recv_bytes_async());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending(), "nothing sent yet");
    }
    let child = multiproc::Process::new(move || {
        drop(b);
        std::thread::sleep(Duration::from_secs(30));
    });
    child.start().unwrap();
    let t = Instant::now();
    loop {
        match a.try_send_bytes(b"x") {
            Err(multiproc::TrySendError::Disconnected) => break,
            Ok(()) | Err(multiproc::TrySendError::Full) => {}
            Err(e) => panic!("{e:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the writer was never told that its reader is gone");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.join().unwrap();
}
