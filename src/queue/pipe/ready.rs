//! `Connection::ready_fd` and (feature `async`) `recv_async`/`recv_bytes_async`.

use super::conn::Link;
use super::RecvError;
use super::{Connection, RecvFail};
use crate::queue::ready::{Probe, ReadyFd, Sleep};
use crate::queue::ring::RingProbe;
use crate::shm::Segment;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// What the watcher of a connection looks at: the receiving ring (its positions and sleeper
/// flag) and a descriptor, the liveness pipe's read end (hung up once every writer is gone)
/// or, for TCP, the socket.
struct ConnProbe {
    _seg: Option<Segment>,
    ring: Option<RingProbe>,
    fd: OwnedFd,
}

impl Probe for ConnProbe {
    fn ready(&self) -> bool {
        self.ring.as_ref().is_some_and(RingProbe::pending)
            || crate::sys::process::poll_now(self.fd.as_fd(), libc::POLLIN) != 0
    }

    fn announce(&self) -> Option<(&crate::loom::atomic::AtomicU32, u32)> {
        self.ring.as_ref().map(|r| (r.announce(), 1))
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }

    /// A ring has a word to sleep on (its liveness descriptor is looked at every slice); a TCP
    /// connection has only its socket.
    fn sleep(&self) -> Sleep {
        if self.ring.is_some() {
            Sleep::Word
        } else {
            Sleep::Fd
        }
    }
}

impl Connection {
    /// A descriptor that becomes readable when a message (or end of file) may be pending, for
    /// epoll, mio or tokio's `AsyncFd` (see [`ReadyFd`]: receive with `try_recv*` until
    /// `Empty`, then [`rearm`](ReadyFd::rearm)). Unlike [`fileno`](Self::fileno), which only
    /// reports the peer's death, it reports messages too. While it lives, it holds a copy of
    /// this end's liveness descriptor (the writer sees this end open).
    ///
    /// # Errors
    /// [`RecvError::NotReadable`], [`RecvError::Closed`], [`RecvError::Os`] (no eventfd
    /// or thread).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, b) = multiproc::Pipe::duplex()?;
    /// let ready = b.ready_fd()?;
    /// a.send_bytes(b"x")?;
    /// let t = std::time::Instant::now();
    /// while !ready.is_signaled() && t.elapsed().as_secs() < 5 {
    ///     std::thread::yield_now();
    /// }
    /// assert!(ready.is_signaled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ready_fd(&self) -> Result<ReadyFd, RecvError> {
        (|| -> Result<_, RecvFail> {
            let probe = match &self.link {
                Link::Closed => return Err(RecvFail::HandleClosed),
                Link::Stream(s) => {
                    ConnProbe { _seg: None, ring: None, fd: s.fd().try_clone_to_owned().map_err(RecvFail::Io)? }
                }
                Link::Rings(r) => {
                    let rx = r.rx.as_ref().ok_or(RecvFail::NotReadable)?;
                    ConnProbe {
                        _seg: Some(r.seg.clone()),
                        ring: Some(rx.cons.probe()),
                        fd: rx.live_fd().try_clone_to_owned().map_err(RecvFail::Io)?,
                    }
                }
            };
            ReadyFd::watch(probe).map_err(RecvFail::Io)
        })()
        .map_err(RecvFail::recv)
    }
}

#[cfg(feature = "async")]
impl Connection {
    /// This process's `ReadyFd` of this end (made on first use).
    fn ready_cached(&self) -> Result<std::sync::Arc<ReadyFd>, RecvError> {
        self.ready.get(|| self.ready_fd())
    }

    /// Receives a message's bytes, as a future that any executor can run: no thread blocks
    /// (a watcher thread sleeps on the ring for it; see [`ReadyFd`]).
    ///
    /// # Errors
    /// As [`recv_bytes`](Self::recv_bytes), and those of [`ready_fd`](Self::ready_fd).
    pub async fn recv_bytes_async(&mut self) -> Result<Vec<u8>, RecvError> {
        loop {
            match self.try_recv_bytes() {
                Ok(v) => return Ok(v),
                Err(e) => {
                    // `None`: empty, so wait for the watcher.
                    if let Some(e) = e.failure() {
                        return Err(e);
                    }
                }
            }
            self.ready_cached()?.readable().await;
        }
    }

    /// Receives a serde value, as a future (see [`recv_bytes_async`](Self::recv_bytes_async)).
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and those of [`ready_fd`](Self::ready_fd).
    #[cfg(feature = "serde")]
    pub async fn recv_async<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, RecvError> {
        loop {
            match self.try_recv::<T>() {
                Ok(v) => return Ok(v),
                Err(e) => {
                    // `None`: empty, so wait for the watcher.
                    if let Some(e) = e.failure() {
                        return Err(e);
                    }
                }
            }
            self.ready_cached()?.readable().await;
        }
    }
}
