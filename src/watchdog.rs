//! A watchdog for the crate's own unit tests: a test that would spin or sleep for ever when a
//! fix regresses aborts the test binary instead of hanging the run (the integration tests
//! have their own, with the fork lock, in `tests/common`).

use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::Duration;

/// Aborts the process when the test that made it is still running after its limit; dropping
/// it calls it off.
pub(crate) struct Watchdog(#[allow(dead_code)] Sender<()>);

/// A watchdog named after the running test (libtest names each test's thread after it).
pub(crate) fn watchdog(limit: Duration) -> Watchdog {
    let (tx, rx) = channel::<()>();
    let name = std::thread::current().name().unwrap_or("a unit test").to_string();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit) == Err(RecvTimeoutError::Timeout) {
            eprintln!("{name}: still running after {limit:?}; aborting");
            std::process::abort();
        }
    });
    Watchdog(tx)
}
