//! `wait` over connections, queues, events, semaphores and process sentinels (Python's
//! `multiprocessing.connection.wait`, extended to every kind that can say "ready", as
//! crossbeam's `Select` is).
//!
//! Anything that can say "ready" implements [`Waitable`]: [`Connection`](crate::Connection) (a message or end of
//! file is pending), [`Queue`](crate::Queue), [`SimpleQueue`](crate::SimpleQueue), [`JoinableQueue`](crate::JoinableQueue) and [`ArrayQueue`](crate::ArrayQueue) (an item
//! is there), [`Event`](crate::Event) (set), [`Semaphore`](crate::Semaphore) and [`BoundedSemaphore`](crate::BoundedSemaphore) (a permit is free),
//! [`Broadcast`](crate::Broadcast) subscribers (a message is there), and every [`AsFd`] type
//! (readable or hung up: a pidfd becomes readable when its process exits, so the process
//! layer's [`Sentinel`](crate::Sentinel) works as is).
//!
//! These objects carry no data through a descriptor, so `wait` cannot sleep in one `poll(2)`
//! on all of them. Each object with a futex word (connections, queues, events, broadcast
//! subscribers) raises its sleeper flag and names the word and the value to sleep on; `wait`
//! sleeps on all of them at once with `futex_waitv(2)` (Linux 5.16, up to 128 words): an item,
//! a message or a `set` wakes it at once. A writer's death wakes nobody, so it sleeps in slices
//! of 10 ms and re-checks; a dead writer is noticed within about 50 ms (the connections' own
//! liveness check period).
//!
//! Semaphores have a word but no place in that sleep: a release wakes *one* sleeper, and if
//! that were a `wait` that then took nothing, a blocked `acquire` would stay asleep with a
//! permit free. They are checked between sleeps instead, as descriptors are: with either in the
//! mix, the futex sleep lasts a step that grows from 50 µs to 2 ms, so a message still wakes
//! `wait` at once and a sentinel or a permit is noticed within ≈ 2 ms. With no futex word at
//! all, or on an older kernel, `wait` checks every object, then sleeps in `poll(2)` on the
//! descriptors (sentinels, and the connections' liveness descriptors, which wake it at once on
//! a peer's death) for the same growing step.

//!
//! The trait lives here, below every layer that implements it, and each type implements it
//! beside its own code (as crossbeam's `SelectHandle`): the queues in `queue/`, `Event` and the
//! semaphores in `sync/`, descriptors (sentinels included) by the blanket impl below.

use super::Limit;
use crate::sys::clock::Deadline;
use crate::sys::process::poll_many;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

/// The longest one futex sleep over several words lasts: a writer's death wakes nobody, so
/// `wait` looks at every object again after this.
#[cfg(not(all(test, loom)))]
const WORD_SLICE: Duration = Duration::from_millis(10);

#[cfg(not(all(test, loom)))]
impl<'a> WaitWord<'a> {
    /// The word and the value to sleep on.
    pub(crate) fn parts(self) -> (&'a crate::loom::atomic::AtomicU32, u32) {
        (self.0, self.1)
    }
}

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
    /// and names the futex word its readiness is announced on, with the value to sleep on, if
    /// it has one. Every change that can make the object ready must change the word (or wake
    /// its sleepers) after the flag is up.
    #[doc(hidden)]
    #[cfg(not(all(test, loom)))]
    fn announce_waiter(&self) -> Option<WaitWord<'_>> {
        None
    }
}

/// A futex word and the value to sleep on, that [`Waitable::announce_waiter`] hands to
/// [`wait`] (opaque).
#[doc(hidden)]
#[cfg(not(all(test, loom)))]
#[derive(Debug)]
pub struct WaitWord<'a>(&'a crate::loom::atomic::AtomicU32, u32);

#[cfg(not(all(test, loom)))]
impl<'a> WaitWord<'a> {
    /// Sleep on `word` while it holds `v`.
    pub(crate) fn new(word: &'a crate::loom::atomic::AtomicU32, v: u32) -> WaitWord<'a> {
        WaitWord(word, v)
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
/// negative: check once), and returns the indices of the ready ones (WAIT-1, WAIT-2). Objects
/// of different kinds mix freely (crossbeam's `Select`); `wait` only reports readiness and
/// takes nothing, so follow it with the non-blocking form (`try_get`, `try_acquire`, ...),
/// which may still find nothing if another process was faster.
///
/// Up to 128 objects with futex words are slept on together and wake `wait` at
/// once; with more, or on kernels before 5.16, it checks every object between sleeps that grow
/// from 50 µs to 2 ms, so readiness is then noticed within about 2 ms (module docs).
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
///
/// Across kinds: a queue, an event and a connection.
///
/// ```
/// use std::time::Duration;
/// let q = multiproc::Queue::<u32>::new()?;
/// let stop = multiproc::Event::new()?;
/// let (_a, b) = multiproc::Pipe::duplex()?;
/// q.put(&7)?;
/// assert_eq!(multiproc::wait(&[&q, &stop, &b], Some(Duration::from_secs(5))), [0]);
/// assert_eq!(q.try_get()?, 7);
/// stop.set();
/// assert_eq!(multiproc::wait(&[&q, &stop, &b], None), [1]);
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

/// `wait` when at least one object has a futex word: one `futex_waitv` sleep over all the
/// words. Objects without one (sentinels, semaphores) are re-checked between sleeps, which then
/// last 50 µs growing to 2 ms. `None` if none has a word, or the kernel cannot do it (the caller
/// falls back to its poll loop).
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
        // Objects without a word (descriptors, semaphores) are re-checked between steps.
        let mut has_polled = false;
        for o in objects {
            match o.announce_waiter() {
                Some(w) => words.push((w.0, w.1)),
                None => has_polled = true,
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
        let until = if has_polled {
            let d = Deadline::after(step);
            step = (step * 2).min(Duration::from_millis(2));
            match (deadline, d) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        } else {
            super::earliest(deadline, Deadline::after(WORD_SLICE))
        };
        match wait_any(&words, until) {
            Ok(()) | Err(WaitAnyError::TimedOut) => {}
            Err(WaitAnyError::Unsupported) => return None,
        }
    }
}
