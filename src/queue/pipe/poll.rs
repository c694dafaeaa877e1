//! `poll`: whether a message (or end of file) is pending, waiting on the consumer's futex word.

use super::conn::Link;
use super::{Connection, PollError, PollTimeoutError, RecvFail, TryPollError};
use crate::loom::hint::spin_loop;
use crate::wait::{Limit, ADAPTIVE_SPINS};
use std::time::{Duration, Instant};

/// Longest single sleep of `poll`/`wait` on a connection before it looks at the writer's
/// liveness again (a message ends the sleep at once).
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(10);

impl Connection {
    fn poll_inner(&self, limit: Limit) -> Result<bool, RecvFail> {
        let rx = match &self.link {
            Link::Closed => return Err(RecvFail::HandleClosed),
            Link::Stream(s) => return s.poll(limit),
            Link::Rings(r) => r.rx.as_ref().ok_or(RecvFail::NotReadable)?,
        };
        let mut spins = 0u32;
        loop {
            if rx.cons.pending()? || rx.writer_gone(false) {
                return Ok(true);
            }
            if limit.passed() {
                return Ok(false);
            }
            spins += 1;
            if spins < ADAPTIVE_SPINS {
                spin_loop();
                continue;
            }
            // Sleep on the consumer's futex word (a message wakes us at once); a writer's
            // death wakes nobody, so sleep at most one slice before looking again.
            let word = rx.cons.announce_waiter();
            if rx.cons.pending()? {
                return Ok(true);
            }
            let _ = crate::loom::futex::wait(word, 1, limit.slice(WAIT_SLICE));
        }
    }

    /// The consumer-side futex word that `wait` sleeps on (raised, see
    /// `Consumer::announce_waiter`), if this end receives.
    #[cfg(not(all(test, loom)))]
    pub(crate) fn announce_waiter(&self) -> Option<&crate::loom::atomic::AtomicU32> {
        match &self.link {
            Link::Rings(r) => r.rx.as_ref().map(|rx| rx.cons.announce_waiter()),
            _ => None,
        }
    }

    /// Waits until a message, or end of file, is pending (Python's `poll(None)`): the next
    /// receive will not block. Never consumes.
    ///
    /// # Errors
    /// [`PollError::NotReadable`], [`PollError::Closed`], [`PollError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"x")?;
    /// b.poll()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&self) -> Result<(), PollError> {
        self.poll_until(Limit::Forever).map_err(RecvFail::poll)
    }

    /// Whether a message, or end of file, is pending now (Python's `poll()`). Never consumes.
    ///
    /// # Errors
    /// [`TryPollError::Empty`] if nothing is, or as [`poll`](Self::poll).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, b) = multiproc::Pipe::duplex()?;
    /// assert!(b.try_poll().unwrap_err().is_empty());
    /// a.send_bytes(b"")?;
    /// b.try_poll()?;
    /// b.try_poll()?; // still there
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_poll(&self) -> Result<(), TryPollError> {
        self.poll_until(Limit::Now).map_err(RecvFail::try_poll)
    }

    /// Waits up to `timeout` for a message or end of file (Python's `poll(timeout)`, whose
    /// `False` is `Err(Timeout)`).
    ///
    /// # Errors
    /// [`PollTimeoutError::Timeout`], or as [`poll`](Self::poll).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (_a, b) = multiproc::Pipe::duplex()?;
    /// assert!(b.poll_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_timeout(&self, timeout: Duration) -> Result<(), PollTimeoutError> {
        self.poll_until(Limit::timeout(timeout)).map_err(RecvFail::poll_timeout)
    }

    /// Waits until `deadline` for a message or end of file.
    ///
    /// # Errors
    /// As [`poll_timeout`](Self::poll_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (_a, b) = multiproc::Pipe::duplex()?;
    /// assert!(b.poll_deadline(Instant::now() + Duration::from_millis(10)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_deadline(&self, deadline: Instant) -> Result<(), PollTimeoutError> {
        self.poll_until(Limit::deadline(deadline)).map_err(RecvFail::poll_timeout)
    }

    /// The deprecated name of [`poll`](Self::poll), with its old result (always `true`).
    ///
    /// # Errors
    /// As [`poll`](Self::poll).
    #[deprecated(since = "0.2.0", note = "renamed `poll` (blocking); `try_poll` is Python's `poll()`")]
    pub fn poll_blocking(&self) -> Result<bool, PollError> {
        self.poll().map(|()| true)
    }

    /// `poll` with the internal outcome: `Err(Empty/Timeout)` when the limit passed.
    fn poll_until(&self, limit: Limit) -> Result<(), RecvFail> {
        match self.poll_inner(limit)? {
            true => Ok(()),
            false if limit.is_now() => Err(RecvFail::Empty),
            false => Err(RecvFail::Timeout),
        }
    }

    /// Whether this end has a message or end of file pending, or is unusable (an error to
    /// report): what [`wait`](super::wait) calls "ready".
    pub(crate) fn ready_now(&self) -> bool {
        !matches!(self.poll_inner(Limit::Now), Ok(false))
    }
}

/// Ready when a message or end of file is pending.
impl crate::wait::Waitable for Connection {
    fn is_ready(&self) -> bool {
        self.ready_now()
    }

    #[cfg(not(all(test, loom)))]
    fn announce_waiter(&self) -> Option<crate::wait::WaitWord<'_>> {
        Connection::announce_waiter(self).map(|w| crate::wait::WaitWord::new(w, 1))
    }

    fn wake_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.fileno()
    }
}
