//! The `Connection` handle: what it holds, its state queries, and closing.

use super::super::ring::Record;
use super::liveness::{Rx, Tx};
use super::WaitStrategy;
use super::{RecvFail, SendFail};
#[cfg(feature = "serde")]
use crate::codec::FingerprintCache;
use crate::loom::atomic::Ordering;
use crate::shm::Segment;
use crate::wait::{AdaptiveSpin, Limit};
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
    /// What the messages travel over.
    pub(super) link: Link,
    pub(super) wait: WaitStrategy,
    pub(super) max: usize,
    /// Type fingerprints of the last type sent and received (one hash per type, not per message).
    #[cfg(feature = "serde")]
    pub(super) types: (FingerprintCache, FingerprintCache),
    /// This process's `ReadyFd` for the `async` methods.
    #[cfg(feature = "async")]
    pub(super) ready: crate::queue::ready::ReadyCache,
}

/// The transports of a connection: every operation is one `match` on it.
#[derive(Debug)]
// The rings inline, not boxed: every send and receive goes through this enum, and a box would
// put a pointer chase on each of them; a connection is one value per end, so its size is not
// worth that.
#[allow(clippy::large_enum_variant)]
pub(super) enum Link {
    /// Shared-memory rings (a `Pipe`, or a same-host `Listener`/`Client` connection).
    Rings(Rings),
    /// A byte stream (a TCP connection: `connection/socket.rs`).
    Stream(Box<dyn ByteStream>),
    /// Closed with [`Connection::close`] (or dropped): every call says so.
    Closed,
}

/// The rings of a connection and what receiving from them keeps.
#[derive(Debug)]
pub(super) struct Rings {
    /// The segment the rings live in (kept mapped while the connection lives).
    pub(super) seg: Segment,
    /// The side this end sends on (`None`: a one-way reader).
    pub(super) tx: Option<Tx>,
    /// The side this end receives on (`None`: a one-way writer).
    pub(super) rx: Option<Rx>,
    /// The socket descriptors travel over (`PipeBuilder::fd_passing`).
    pub(super) fd_sock: Option<OwnedFd>,
    /// A fragmented message being reassembled.
    pub(super) asm: Option<Assembly>,
    /// How `Adaptive` waits in `recv` have gone.
    pub(super) rx_spin: AdaptiveSpin,
}

/// A byte-stream transport (TCP), implemented beside `Listener`/`Client` in `connection/`:
/// the queue layer names only this trait, so the transport lives with the code that makes it.
/// Framing and the untrusted-input checks are the transport's (see `connection/socket.rs`).
pub(crate) trait ByteStream: std::fmt::Debug + Send {
    /// The socket, for `poll`/`epoll` (readable when bytes or end of file arrived).
    fn fd(&self) -> BorrowedFd<'_>;
    /// Sends `buf` as one message of type `type_fp` (0: bytes), waiting for room until `limit`.
    fn send(&self, buf: &[u8], type_fp: u64, max: usize, limit: Limit) -> Result<(), SendFail>;
    /// The next whole message, at most `maxlen` bytes (`TooLong` otherwise), waiting until
    /// `limit`; with `expect`, a message of another type is refused and kept.
    fn recv(
        &self,
        limit: Limit,
        maxlen: usize,
        max: usize,
        expect: Option<(u64, &'static str)>,
    ) -> Result<Vec<u8>, RecvFail>;
    /// The next message into `buf[offset..]` (`BufferTooShort` with the message otherwise).
    fn recv_into(&self, limit: Limit, max: usize, buf: &mut [u8], offset: usize) -> Result<usize, RecvFail>;
    /// Whether a message (or end of file) is pending, waiting until `limit`.
    fn poll(&self, limit: Limit) -> Result<bool, RecvFail>;
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
        let rings = Rings { seg, tx, rx, fd_sock, asm: None, rx_spin: AdaptiveSpin::default() };
        Connection::with_link(Link::Rings(rings), wait, max)
    }

    /// A connection over a byte stream (a TCP connection, `connection/socket.rs`).
    pub(crate) fn over_stream(stream: Box<dyn ByteStream>, max: usize) -> Connection {
        Connection::with_link(Link::Stream(stream), WaitStrategy::Park, max)
    }

    fn with_link(link: Link, wait: WaitStrategy, max: usize) -> Connection {
        Connection {
            link,
            wait,
            max,
            #[cfg(feature = "serde")]
            types: Default::default(),
            #[cfg(feature = "async")]
            ready: Default::default(),
        }
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
        match &self.link {
            Link::Rings(r) => r.rx.is_some(),
            Link::Stream(_) => true,
            Link::Closed => false,
        }
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
        match &self.link {
            Link::Rings(r) => r.tx.is_some(),
            Link::Stream(_) => true,
            Link::Closed => false,
        }
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
        matches!(self.link, Link::Closed)
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
        match &self.link {
            Link::Rings(r) => r.rx.as_ref().map(Rx::live_fd).or_else(|| r.tx.as_ref().map(Tx::live_fd)),
            Link::Stream(s) => Some(s.fd()),
            Link::Closed => None,
        }
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
        let Link::Rings(rings) = std::mem::replace(&mut self.link, Link::Closed) else {
            return; // a stream closes when it drops; closed already: nothing to do
        };
        if let Some(t) = rings.tx {
            let ring = *t.prod.ring();
            drop(t); // closes the fd first, then hints and wakes
                     // Relaxed: a hint; readers confirm with poll.
            ring.writer_closes().fetch_add(1, Ordering::Relaxed);
            ring.wake_all();
        }
        if let Some(r) = rings.rx {
            let ring = *r.cons.ring();
            drop(r);
            // Relaxed: a hint; writers confirm with poll.
            ring.reader_closes().fetch_add(1, Ordering::Relaxed);
            ring.wake_all();
        }
    }
}

impl Connection {
    /// The rings, for tests that look inside them.
    #[cfg(all(test, not(loom)))]
    pub(super) fn rings_mut(&mut self) -> Option<&mut Rings> {
        match &mut self.link {
            Link::Rings(r) => Some(r),
            _ => None,
        }
    }

    /// Whether descriptors travel on this end (`None`: closed).
    pub(super) fn passes_fds(&self) -> Option<bool> {
        match &self.link {
            Link::Rings(r) => Some(r.fd_sock.is_some()),
            Link::Stream(_) => Some(false),
            Link::Closed => None,
        }
    }

    /// The ring this end writes into (fuzzing: play a faulty peer).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn tx_ring(&self) -> Option<super::super::ring::Ring> {
        match &self.link {
            Link::Rings(r) => r.tx.as_ref().map(|t| *t.prod.ring()),
            _ => None,
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}
