//! `Subscriber`: one reader of a [`Broadcast`], with its own cursor in its own process.

use super::error::{BcFail, BroadcastRecvError, BroadcastRecvTimeoutError, TryBroadcastRecvError};
use super::ring::Read;
use super::{Broadcast, SLICE};
use crate::wait::Limit;
use std::fmt;
use std::time::{Duration, Instant};

/// One reader of a [`Broadcast`], with its own position: it receives every message published
/// after it was made, in order, unless it falls more than [`Broadcast::slots`] behind; then its
/// next `recv` reports [`BroadcastRecvError::Lagged`] and it goes on from the oldest message left.
///
/// A subscriber is local to a process (its position is not shared): a forked child gets a copy
/// that goes on independently. Readers write nothing to shared memory, so any number of them,
/// dead or alive, cost writers nothing.
///
/// # Examples
///
/// ```
/// let b = multiproc::Broadcast::<u32>::new(2, 8)?;
/// let mut sub = b.subscribe();
/// for i in 0..5 {
///     b.publish(&i)?;
/// }
/// assert!(matches!(sub.recv(), Err(multiproc::BroadcastRecvError::Lagged(3))));
/// assert_eq!(sub.recv()?, 3);
/// assert_eq!(sub.recv()?, 4);
/// assert_eq!(sub.missed(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscriber<T> {
    b: Broadcast<T>,
    pos: u64,
    missed: u64,
    buf: Vec<u8>,
}

impl<T> fmt::Debug for Subscriber<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber").field("position", &self.pos).field("missed", &self.missed).finish()
    }
}

impl<T> Subscriber<T> {
    /// A subscriber of `b` whose next message is number `pos`.
    pub(super) fn at(b: Broadcast<T>, pos: u64) -> Subscriber<T> {
        Subscriber { b, pos, missed: 0, buf: Vec::new() }
    }
}

impl<T> Clone for Subscriber<T> {
    /// Another subscriber at the same position.
    fn clone(&self) -> Self {
        Subscriber { b: self.b.clone(), pos: self.pos, missed: self.missed, buf: Vec::new() }
    }
}

impl<T> Subscriber<T> {
    /// The sequence number of the next message this subscriber will receive.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u8>::new(4, 8)?;
    /// b.publish(&1)?;
    /// assert_eq!(b.subscribe().position(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Messages published and not yet received (including any already overwritten).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u8>::new(4, 8)?;
    /// let sub = b.subscribe();
    /// b.publish(&1)?;
    /// assert_eq!(sub.pending(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pending(&self) -> u64 {
        self.b.ring.published().saturating_sub(self.pos)
    }

    /// Messages this subscriber missed so far (the sum of every `Lagged` it reported).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u8>::new(4, 8)?;
    /// assert_eq!(b.subscribe().missed(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// Receives the next message's bytes, blocking until one is published.
    ///
    /// # Errors
    /// [`BroadcastRecvError::Lagged`] (messages were overwritten before this subscriber read
    /// them: the next call goes on from the oldest one left), [`BroadcastRecvError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// let mut sub = b.subscribe();
    /// b.publish_bytes(b"hi")?;
    /// assert_eq!(sub.recv_bytes()?, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, BroadcastRecvError> {
        self.next_bytes(Limit::Forever).map(<[u8]>::to_vec).map_err(BcFail::recv)
    }

    /// [`recv_bytes`](Self::recv_bytes) without blocking.
    ///
    /// # Errors
    /// [`TryBroadcastRecvError::Empty`], or as [`recv_bytes`](Self::recv_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// assert!(b.subscribe().try_recv_bytes().unwrap_err().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_bytes(&mut self) -> Result<Vec<u8>, TryBroadcastRecvError> {
        self.next_bytes(Limit::Now).map(<[u8]>::to_vec).map_err(BcFail::try_recv)
    }

    /// [`recv_bytes`](Self::recv_bytes), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`BroadcastRecvTimeoutError::Timeout`], or as [`recv_bytes`](Self::recv_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// let r = b.subscribe().recv_bytes_timeout(Duration::from_millis(10));
    /// assert!(r.unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, BroadcastRecvTimeoutError> {
        self.next_bytes(Limit::timeout(timeout)).map(<[u8]>::to_vec).map_err(BcFail::recv_timeout)
    }

    /// [`recv_bytes`](Self::recv_bytes), waiting until `deadline`.
    ///
    /// # Errors
    /// As [`recv_bytes_timeout`](Self::recv_bytes_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// assert!(b.subscribe().recv_bytes_deadline(std::time::Instant::now()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_deadline(&mut self, deadline: Instant) -> Result<Vec<u8>, BroadcastRecvTimeoutError> {
        self.next_bytes(Limit::deadline(deadline)).map(<[u8]>::to_vec).map_err(BcFail::recv_timeout)
    }

    /// [`recv_bytes`](Self::recv_bytes) into `out` (cleared first), without allocating once
    /// `out` has room; returns the message's length.
    ///
    /// # Errors
    /// As [`recv_bytes`](Self::recv_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// let mut sub = b.subscribe();
    /// let mut buf = Vec::with_capacity(8);
    /// b.publish_bytes(b"abc")?;
    /// assert_eq!(sub.recv_bytes_into(&mut buf)?, 3);
    /// assert_eq!(buf, b"abc");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, BroadcastRecvError> {
        self.recv_into_until(out, Limit::Forever).map_err(BcFail::recv)
    }

    /// [`recv_bytes_into`](Self::recv_bytes_into) without blocking.
    ///
    /// # Errors
    /// [`TryBroadcastRecvError::Empty`], or as [`recv_bytes`](Self::recv_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// let mut buf = Vec::new();
    /// assert!(b.subscribe().try_recv_bytes_into(&mut buf).unwrap_err().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, TryBroadcastRecvError> {
        self.recv_into_until(out, Limit::Now).map_err(BcFail::try_recv)
    }

    /// [`recv_bytes_into`](Self::recv_bytes_into), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`BroadcastRecvTimeoutError::Timeout`], or as [`recv_bytes`](Self::recv_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// let mut buf = Vec::new();
    /// let r = b.subscribe().recv_bytes_into_timeout(&mut buf, std::time::Duration::from_millis(5));
    /// assert!(r.unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_into_timeout(
        &mut self,
        out: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<usize, BroadcastRecvTimeoutError> {
        self.recv_into_until(out, Limit::timeout(timeout)).map_err(BcFail::recv_timeout)
    }

    /// [`recv_bytes_into`](Self::recv_bytes_into), waiting until `deadline`.
    ///
    /// # Errors
    /// As [`recv_bytes_into_timeout`](Self::recv_bytes_into_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<Vec<u8>>::new(4, 8)?;
    /// let mut sub = b.subscribe();
    /// b.publish_bytes(b"z")?;
    /// let mut buf = Vec::new();
    /// assert_eq!(sub.recv_bytes_into_deadline(&mut buf, std::time::Instant::now())?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_into_deadline(
        &mut self,
        out: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<usize, BroadcastRecvTimeoutError> {
        self.recv_into_until(out, Limit::deadline(deadline)).map_err(BcFail::recv_timeout)
    }

    fn recv_into_until(&mut self, out: &mut Vec<u8>, limit: Limit) -> Result<usize, BcFail> {
        std::mem::swap(&mut self.buf, out);
        let r = self.next_bytes(limit).map(<[u8]>::len);
        std::mem::swap(&mut self.buf, out);
        r
    }

    /// The next message, in this subscriber's buffer, waiting until `limit`.
    fn next_bytes(&mut self, limit: Limit) -> Result<&[u8], BcFail> {
        loop {
            self.buf.clear();
            match self.b.ring.read(self.pos, &mut self.buf)? {
                Read::Message => {
                    self.pos += 1;
                    return Ok(&self.buf);
                }
                Read::Lagged(to) => {
                    let n = to.saturating_sub(self.pos);
                    self.pos = to.max(self.pos);
                    self.missed += n;
                    return Err(BcFail::Lagged(n));
                }
                Read::Empty => {}
            }
            if limit.passed() {
                return Err(BcFail::NotNow);
            }
            let ring = &self.b.ring;
            let pos = self.pos;
            let _ = crate::queue::doorbell::wait_for(&ring.header().bell, limit.slice(SLICE), || {
                (ring.published() > pos).then_some(())
            });
        }
    }

    /// Whether a `recv` would not block now (for `wait`).
    pub(crate) fn ready_now(&self) -> bool {
        self.b.ring.published() > self.pos
    }

    /// See `BcRing::announce` (for `wait`).
    #[cfg(not(all(test, loom)))]
    pub(crate) fn announce(&self) -> (&crate::loom::atomic::AtomicU32, u32) {
        self.b.ring.announce()
    }
}

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> Subscriber<T> {
    /// Receives the next message, blocking until one is published.
    ///
    /// # Errors
    /// [`BroadcastRecvError::Lagged`] (see [`recv_bytes`](Self::recv_bytes)),
    /// [`BroadcastRecvError::Decode`] (the message was consumed), [`BroadcastRecvError::Corrupt`].
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u64>::new(4, 8)?;
    /// let mut sub = b.subscribe();
    /// b.publish(&42)?;
    /// assert_eq!(sub.recv()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv(&mut self) -> Result<T, BroadcastRecvError> {
        self.recv_limit(Limit::Forever).map_err(BcFail::recv)
    }

    /// [`recv`](Self::recv) without blocking.
    ///
    /// # Errors
    /// [`TryBroadcastRecvError::Empty`], or as [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = multiproc::Broadcast::<u64>::new(4, 8)?;
    /// assert!(b.subscribe().try_recv().unwrap_err().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryBroadcastRecvError> {
        self.recv_limit(Limit::Now).map_err(BcFail::try_recv)
    }

    /// [`recv`](Self::recv), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`BroadcastRecvTimeoutError::Timeout`], or as [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = multiproc::Broadcast::<u64>::new(4, 8)?;
    /// assert!(b.subscribe().recv_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, BroadcastRecvTimeoutError> {
        self.recv_limit(Limit::timeout(timeout)).map_err(BcFail::recv_timeout)
    }

    /// [`recv`](Self::recv), waiting until `deadline`.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let b = multiproc::Broadcast::<u64>::new(4, 8)?;
    /// let mut sub = b.subscribe();
    /// b.publish(&1)?;
    /// assert_eq!(sub.recv_deadline(Instant::now() + Duration::from_secs(1))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<T, BroadcastRecvTimeoutError> {
        self.recv_limit(Limit::deadline(deadline)).map_err(BcFail::recv_timeout)
    }

    fn recv_limit(&mut self, limit: Limit) -> Result<T, BcFail> {
        let bytes = self.next_bytes(limit)?;
        crate::codec::decode(bytes).map_err(BcFail::Decode)
    }
}

/// Ready when a message it has not received is published (or it lagged).
impl<T> crate::wait::Waitable for Subscriber<T> {
    fn is_ready(&self) -> bool {
        self.ready_now()
    }

    #[cfg(not(all(test, loom)))]
    fn announce_waiter(&self) -> Option<crate::wait::WaitWord<'_>> {
        let (word, v) = self.announce();
        Some(crate::wait::WaitWord::new(word, v))
    }
}
