//! The `Connection` handle: what it holds, its state queries, and closing.

use super::super::ring::Record;
use super::liveness::{Rx, Tx};
use super::socket::SockLink;
use super::WaitStrategy;
#[cfg(feature = "serde")]
use crate::codec::FingerprintCache;
use crate::loom::atomic::Ordering;
use crate::shm::Segment;
use crate::wait::AdaptiveSpin;
use std::os::fd::{BorrowedFd, OwnedFd};

/// A fragmented message being reassembled.
#[derive(Debug)]
pub(super) struct Assembly {
    pub(super) total: usize,
    pub(super) buf: Vec<u8>,
    /// Longer than the caller's limit: drain and drop.
    pub(super) discard: bool,
}

/// A message ready to be handed out.
pub(super) enum Msg {
    /// One record still in the ring (copy, then release).
    Inline(Record),
    /// A reassembled message.
    Whole(Vec<u8>),
    /// A descriptor marker, not released: it stays for `recv_fd`.
    Fd,
}

/// One end of a [`Pipe`](crate::Pipe) (Python's `Connection`).
///
/// `send*` and `recv*` take `&mut self`: one thread per end at a time. After `fork` each process
/// has its own copy; an end must be used by one process at a time (as with Python, whose
/// concurrent use of one end is unsafe without a lock).
///
/// # Examples
///
/// ```
/// let (mut a, mut b) = multiproc::Pipe::duplex()?;
/// a.send_bytes(b"abc")?;
/// let mut buf = [0u8; 8];
/// assert_eq!(b.recv_bytes_into(&mut buf, 0)?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Connection {
    /// The socket descriptors travel over (`PipeBuilder::fd_passing`).
    pub(super) fd_sock: Option<OwnedFd>,
    /// The segment of the rings (none for a TCP connection).
    _seg: Option<Segment>,
    pub(super) tx: Option<Tx>,
    pub(super) rx: Option<Rx>,
    pub(super) wait: WaitStrategy,
    pub(super) max: usize,
    pub(super) closed: bool,
    pub(super) asm: Option<Assembly>,
    /// How `Adaptive` waits in `recv` have gone.
    pub(super) rx_spin: AdaptiveSpin,
    /// Type fingerprints of the last type sent and received (one hash per type, not per message).
    #[cfg(feature = "serde")]
    pub(super) types: (FingerprintCache, FingerprintCache),
    /// The socket transport of a TCP connection (then `tx` and `rx` are `None`).
    pub(super) sock: Option<SockLink>,
    /// This process's `ReadyFd` for the `async` methods.
    #[cfg(feature = "async")]
    pub(super) ready: crate::queue::ready::ReadyCache,
}

impl Connection {
    /// Assembles a connection from its sides (the builder, and handles received from another
    /// process).
    pub(super) fn from_parts(
        seg: Segment,
        tx: Option<Tx>,
        rx: Option<Rx>,
        fd_sock: Option<OwnedFd>,
        wait: WaitStrategy,
        max: usize,
    ) -> Connection {
        Connection {
            fd_sock,
            _seg: Some(seg),
            tx,
            rx,
            wait,
            max,
            closed: false,
            asm: None,
            rx_spin: AdaptiveSpin::default(),
            #[cfg(feature = "serde")]
            types: Default::default(),
            sock: None,
            #[cfg(feature = "async")]
            ready: Default::default(),
        }
    }

    /// A connection over a connected TCP stream (see `socket.rs`).
    pub(crate) fn over_tcp(stream: std::net::TcpStream, max: usize) -> std::io::Result<Connection> {
        Ok(Connection {
            fd_sock: None,
            _seg: None,
            tx: None,
            rx: None,
            wait: WaitStrategy::Park,
            max,
            closed: false,
            asm: None,
            rx_spin: AdaptiveSpin::default(),
            #[cfg(feature = "serde")]
            types: Default::default(),
            sock: Some(SockLink::new(stream)?),
            #[cfg(feature = "async")]
            ready: Default::default(),
        })
    }

    /// True when this end can receive (duplex ends and one-way readers), and is not closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (r, w) = multiproc::Pipe::one_way()?;
    /// assert!(r.readable() && !w.readable());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn readable(&self) -> bool {
        (self.rx.is_some() || self.sock.is_some()) && !self.closed
    }

    /// True when this end can send, and is not closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (r, w) = multiproc::Pipe::one_way()?;
    /// assert!(w.writable() && !r.writable());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writable(&self) -> bool {
        (self.tx.is_some() || self.sock.is_some()) && !self.closed
    }

    /// True after [`Connection::close`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, _b) = multiproc::Pipe::duplex()?;
    /// assert!(!a.closed());
    /// a.close();
    /// assert!(a.closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Changes how this end waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, _b) = multiproc::Pipe::duplex()?;
    /// a.set_wait(multiproc::WaitStrategy::Spin);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_wait(&mut self, w: WaitStrategy) {
        self.wait = w;
    }

    /// The liveness descriptor of the receiving side (`POLLHUP` when every writer is gone), for
    /// `poll`/`epoll` based event loops. It never becomes readable for data: use [`wait`](crate::wait)
    /// to wait for messages.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = multiproc::Pipe::duplex()?;
    /// assert!(a.fileno().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fileno(&self) -> Option<BorrowedFd<'_>> {
        if self.closed {
            return None;
        }
        if let Some(s) = &self.sock {
            return Some(s.fd());
        }
        self.rx.as_ref().map(Rx::live_fd).or_else(|| self.tx.as_ref().map(Tx::live_fd))
    }

    /// Closes this process's copy of this end (the peer sees end of file once every process
    /// closed theirs). Later calls on this handle fail with `Closed`. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"last")?;
    /// a.close();
    /// assert_eq!(b.recv_bytes()?, b"last");
    /// assert!(matches!(b.recv_bytes(), Err(multiproc::RecvError::Disconnected)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let tx = self.tx.take();
        let rx = self.rx.take();
        if let Some(t) = tx {
            let ring = *t.prod.ring();
            drop(t); // closes the fd first, then hints and wakes
                     // Relaxed: a hint; readers confirm with poll.
            ring.writer_closes().fetch_add(1, Ordering::Relaxed);
            ring.wake_all();
        }
        if let Some(r) = rx {
            let ring = *r.cons.ring();
            drop(r);
            // Relaxed: a hint; writers confirm with poll.
            ring.reader_closes().fetch_add(1, Ordering::Relaxed);
            ring.wake_all();
        }
        self.fd_sock = None;
        self.sock = None;
        self.asm = None;
    }
}

impl Connection {
    /// The segment of the rings (none for a TCP connection).
    pub(super) fn segment(&self) -> Option<&Segment> {
        self._seg.as_ref()
    }

    /// The ring this end writes into (fuzzing: play a faulty peer).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn tx_ring(&self) -> Option<super::super::ring::Ring> {
        self.tx.as_ref().map(|t| *t.prod.ring())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}
