//! `poll`: whether a message (or end of file) is pending, waiting on the consumer's futex word.

use super::{Connection, RecvError};
use crate::loom::hint::spin_loop;
use crate::wait::{Limit, ADAPTIVE_SPINS};
use std::time::{Duration, Instant};

/// Longest single sleep of `poll`/`wait` on a connection before it looks at the writer's
/// liveness again (a message ends the sleep at once).
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(10);

impl Connection {
    fn poll_inner(&self, limit: Limit) -> Result<bool, RecvError> {
        if self.closed {
            return Err(RecvError::HandleClosed);
        }
        if let Some(s) = &self.sock {
            return s.poll(limit);
        }
        let rx = self.rx.as_ref().ok_or(RecvError::NotReadable)?;
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
        if self.closed {
            return None;
        }
        self.rx.as_ref().map(|rx| rx.cons.announce_waiter())
    }

    /// Python's `poll()`: true when a message (or end of file) is pending. Never consumes.
    ///
    /// # Errors
    /// `NotReadable`, `HandleClosed`, `Corrupt`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, b) = multiproc::Pipe::duplex()?;
    /// assert!(!b.poll()?);
    /// a.send_bytes(b"")?;
    /// assert!(b.poll()? && b.poll()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&self) -> Result<bool, RecvError> {
        self.poll_inner(Limit::Now)
    }

    /// Python's `poll(timeout)`: waits up to `timeout` for a message or end of file.
    ///
    /// # Errors
    /// As [`Connection::poll`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (_a, b) = multiproc::Pipe::duplex()?;
    /// assert!(!b.poll_timeout(Duration::from_millis(10))?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_timeout(&self, timeout: Duration) -> Result<bool, RecvError> {
        self.poll_inner(Limit::timeout(timeout))
    }

    /// `poll` waiting until `deadline`.
    ///
    /// # Errors
    /// As [`Connection::poll`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (_a, b) = multiproc::Pipe::duplex()?;
    /// assert!(!b.poll_deadline(Instant::now() + Duration::from_millis(10))?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_deadline(&self, deadline: Instant) -> Result<bool, RecvError> {
        self.poll_inner(Limit::deadline(deadline))
    }

    /// Python's `poll(None)`: blocks until a message or end of file is pending; always `true`.
    ///
    /// # Errors
    /// As [`Connection::poll`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"x")?;
    /// assert!(b.poll_blocking()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_blocking(&self) -> Result<bool, RecvError> {
        self.poll_inner(Limit::Forever)
    }

    /// Whether this end has a message or end of file pending, or is unusable (an error to
    /// report): what [`wait`](super::wait) calls "ready".
    pub(crate) fn ready_now(&self) -> bool {
        !matches!(self.poll_inner(Limit::Now), Ok(false))
    }
}
