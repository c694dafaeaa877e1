//! `wait` over several connections and process sentinels (Python's
//! `multiprocessing.connection.wait`).
//!
//! Anything that can say "ready" implements [`Waitable`]: [`Connection`] (a message or end of
//! file is pending), and every [`AsFd`] type (readable or hung up: a pidfd becomes readable when
//! its process exits, so the process layer's sentinel works as is).
//!
//! Connections carry no data through a descriptor, so `wait` cannot sleep in one `poll(2)` on
//! all of them. When every object is a connection (up to 128), `wait` raises each one's
//! sleeper flag and sleeps on all their futex words at once with `futex_waitv(2)` (Linux 5.16):
//! a message wakes it at once. A writer's death wakes nobody, so it sleeps in slices of
//! 10 ms and re-checks; a dead writer is noticed within about 50 ms (the connections' own
//! liveness check period).
//!
//! With descriptors in the mix (process sentinels), the futex sleep lasts a step that grows
//! from 50 µs to 2 ms, and the descriptors are checked between steps: a message still wakes
//! `wait` at once, a sentinel within ≈ 2 ms. With descriptors only, or on an older kernel, it
//! checks every object, then sleeps in `poll(2)` on the descriptors (sentinels, and the
//! connections' liveness descriptors, which wake it at once on a peer's death) for the same
//! growing step: a message is then noticed within ≈ 2 ms.

use super::pipe::Connection;
use crate::sys::clock::Deadline;
use crate::sys::process::poll_many;
use crate::wait::Limit;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

/// An object [`wait`] can watch.
///
/// # Examples
///
/// ```
/// use multiproc::Waitable;
/// let (mut a, b) = multiproc::Pipe::duplex()?;
/// assert!(!b.is_ready());
/// a.send_bytes(b"x")?;
/// assert!(b.is_ready());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Waitable {
    /// True when a read (or `join`) would not block now.
    fn is_ready(&self) -> bool;

    /// A descriptor whose readability or hang-up may signal readiness, so that `wait` can sleep
    /// on it; `None` if there is none (then `wait` re-checks `is_ready` periodically).
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// Implementation detail of [`wait`], not a stable API: raises this object's sleeper flag
    /// and names the futex word its readiness is announced on, if it has one.
    #[doc(hidden)]
    #[cfg(not(all(test, loom)))]
    fn announce_waiter(&self) -> Option<WaitWord<'_>> {
        None
    }
}

/// A futex word that [`Waitable::announce_waiter`] hands to [`wait`] (opaque).
#[doc(hidden)]
#[cfg(not(all(test, loom)))]
#[derive(Debug)]
pub struct WaitWord<'a>(&'a crate::loom::atomic::AtomicU32);

impl Waitable for Connection {
    fn is_ready(&self) -> bool {
        self.ready_now()
    }

    #[cfg(not(all(test, loom)))]
    fn announce_waiter(&self) -> Option<WaitWord<'_>> {
        Connection::announce_waiter(self).map(WaitWord)
    }

    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.fileno()
    }
}

impl<T: AsFd> Waitable for T {
    fn is_ready(&self) -> bool {
        crate::sys::process::poll_now(self.as_fd(), libc::POLLIN) != 0
    }

    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
}

/// Waits until at least one object is ready or `timeout` passes (`None`: forever; zero or
/// negative: check once), and returns the indices of the ready ones (WAIT-1, WAIT-2).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let (mut a1, b1) = multiproc::Pipe::duplex()?;
/// let (_a2, b2) = multiproc::Pipe::duplex()?;
/// assert!(multiproc::wait(&[&b1, &b2], Some(Duration::ZERO)).is_empty());
/// a1.send_bytes(b"hi")?;
/// assert_eq!(multiproc::wait(&[&b1, &b2], Some(Duration::from_secs(5))), [0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Vec<usize> {
    // `Duration::MAX` (or any timeout that overflows the clock) waits forever, as `None` does.
    let deadline = Limit::optional(timeout).deadline_opt();
    #[cfg(not(all(test, loom)))]
    if let Some(ready) = wait_on_words(objects, deadline) {
        return ready;
    }
    let mut step = Duration::from_micros(50);
    let mut revents = Vec::new();
    loop {
        let ready: Vec<usize> = (0..objects.len()).filter(|&i| objects[i].is_ready()).collect();
        if !ready.is_empty() {
            return ready;
        }
        let left = match deadline {
            Some(d) if d.has_passed() => return ready,
            Some(d) => d.remaining().min(step),
            None => step,
        };
        let fds: Vec<BorrowedFd<'_>> = objects.iter().filter_map(|o| o.wake_fd()).collect();
        let ms = left.as_micros().div_ceil(1000) as i32;
        if fds.is_empty() || poll_many(&fds, libc::POLLIN, ms, &mut revents).is_err() {
            std::thread::sleep(left);
        }
        step = (step * 2).min(Duration::from_millis(2));
    }
}

fn ready_indices(objects: &[&dyn Waitable]) -> Vec<usize> {
    (0..objects.len()).filter(|&i| objects[i].is_ready()).collect()
}

/// `wait` when at least one object is a connection: one `futex_waitv` sleep over all their
/// words. Descriptors in the mix (sentinels) are re-checked between sleeps, which then last 50 µs
/// growing to 2 ms. `None` if some object has neither a word nor a descriptor, none has a word,
/// or the kernel cannot do it (the caller falls back to its poll loop).
#[cfg(not(all(test, loom)))]
fn wait_on_words(objects: &[&dyn Waitable], deadline: Option<Deadline>) -> Option<Vec<usize>> {
    use crate::sys::futex::{wait_any, WaitAnyError, WAIT_ANY_MAX};
    if objects.is_empty() || objects.len() > WAIT_ANY_MAX {
        return None;
    }
    let mut words = Vec::with_capacity(objects.len());
    let mut step = Duration::from_micros(50);
    loop {
        let ready = ready_indices(objects);
        if !ready.is_empty() || deadline.is_some_and(|d| d.has_passed()) {
            return Some(ready);
        }
        words.clear();
        let mut has_fds = false;
        for o in objects {
            match o.announce_waiter() {
                Some(w) => words.push((w.0, 1)),
                None if o.wake_fd().is_some() => has_fds = true,
                None => return None,
            }
        }
        if words.is_empty() {
            return None;
        }
        // Re-check after raising the flags: a message published before a flag went up did
        // not wake anyone (the Dekker pair of `Consumer::announce_waiter`).
        let ready = ready_indices(objects);
        if !ready.is_empty() {
            return Some(ready);
        }
        let until = if has_fds {
            let d = Deadline::after(step);
            step = (step * 2).min(Duration::from_millis(2));
            match (deadline, d) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        } else {
            crate::wait::earliest(deadline, Deadline::after(super::pipe::WAIT_SLICE))
        };
        match wait_any(&words, until) {
            Ok(()) | Err(WaitAnyError::TimedOut) => {}
            Err(WaitAnyError::Unsupported) => return None,
        }
    }
}
