//! The futex system call: shared (never `FUTEX_PRIVATE_FLAG`), absolute deadlines, EINTR-proof.
//!
//! See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html). The words live in
//! `MAP_SHARED` memory used by several processes, so the private flag, which keys the wait queue
//! on the process's own address space, would make cross-process wake-ups silently fail.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use super::clock::Deadline;
use std::ptr;
use std::sync::atomic::AtomicU32;

/// The wait ended because its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimedOut;

/// Sleeps while `*word == expected`, until woken or `deadline` (CLOCK_MONOTONIC) passes.
///
/// May return spuriously: callers always re-check their state word. `EINTR` is retried with
/// the same absolute deadline, so signals never stretch the wait.
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> Result<(), TimedOut> {
    let ts = deadline.map(|d| d.as_timespec());
    loop {
        // SAFETY: `word` is a live, aligned u32 that the kernel only reads; `ts` is null or a
        // valid timespec for the duration of the call. FUTEX_WAIT_BITSET takes an absolute
        // CLOCK_MONOTONIC timeout (no FUTEX_CLOCK_REALTIME), and the match-any bitset makes it
        // behave like FUTEX_WAIT otherwise.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT_BITSET,
                expected,
                ts.as_ref().map_or(ptr::null(), |t| t as *const libc::timespec),
                ptr::null::<u32>(),
                u32::MAX,
            )
        };
        if r == 0 {
            return Ok(());
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => return Ok(()), // the value had already changed
            Some(libc::EINTR) => continue,       // absolute deadline: retrying adds no drift
            Some(libc::ETIMEDOUT) => return Err(TimedOut),
            // EFAULT/EINVAL can only come from a bad address or op: a bug in this crate.
            e => panic!("futex wait failed unexpectedly: errno {e:?}"),
        }
    }
}

/// Wakes up to `n` waiters sleeping on `word`; returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> u32 {
    let n = n.min(i32::MAX as u32);
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE reads no other argument.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n) };
    if r < 0 {
        0
    } else {
        r as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn wait_on_changed_value_returns_at_once() {
        let w = AtomicU32::new(1);
        assert_eq!(wait(&w, 0, None), Ok(()));
    }

    #[test]
    fn wait_times_out_at_the_deadline() {
        let w = AtomicU32::new(0);
        let t = Instant::now();
        let r = wait(&w, 0, Deadline::after(Duration::from_millis(50)));
        assert_eq!(r, Err(TimedOut));
        assert!(t.elapsed() >= Duration::from_millis(45));
    }

    #[test]
    fn wake_releases_a_sleeper() {
        let w = Arc::new(AtomicU32::new(0));
        let w2 = w.clone();
        let h = std::thread::spawn(move || {
            while w2.load(SeqCst) == 0 {
                let _ = wait(&w2, 0, Deadline::after(Duration::from_secs(10)));
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        w.store(1, SeqCst);
        wake(&w, 1);
        h.join().unwrap();
    }
}
