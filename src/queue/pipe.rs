//! `Pipe` and `Connection`: Python's `multiprocessing.Pipe` over a shared-memory byte ring.
//!
//! A [`Pipe`] is created before `fork`; each process keeps one end. Messages are byte strings
//! (or any serde type with the `serde` feature); boundaries are kept, empty messages are real
//! messages, and a message of any size up to [`PipeBuilder::max_message`] goes through, larger
//! ones than the ring in fragments.
//!
//! ```
//! use multiproc::Pipe;
//! let (mut a, mut b) = Pipe::duplex()?;
//! a.send_bytes(b"hello")?;
//! assert!(b.poll()?);
//! assert_eq!(b.recv_bytes()?, b"hello");
//! b.send_bytes(b"")?; // an empty message is a message
//! assert_eq!(a.recv_bytes()?, b"");
//! drop(a); // the last handle of an end closes it: the peer drains, then sees Eof
//! assert!(matches!(b.recv_bytes(), Err(multiproc::RecvError::Eof)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Fast path
//!
//! `send_bytes` writes one framed record into the ring and publishes it with one store; the
//! reader copies it out with `recv_bytes_into`. Neither makes a system call or allocates unless
//! it has to sleep (ring full/empty, [`WaitStrategy::Park`]) or the message is fragmented. A
//! futex wake-up is only issued when the other side announced that it sleeps.
//!
//! # End of file and peer death
//!
//! Each direction has a pipe(2) created with the `Pipe` that carries no data: the writing end
//! holds its write side, the reading end its read side, and `fork` duplicates both. The kernel
//! closes them when a process exits or is killed, so "the writer is gone" is exactly "the
//! read side polls `POLLHUP`" and "the reader is gone" is "the write side polls `POLLERR`". This
//! costs nothing on the fast path: it is only checked when a call would otherwise wait (on a
//! close hint that every closing handle bumps in shared memory, and at least every
//! [`SLICE`](self) of 50 ms of sleeping). Recording pids instead would be racy (pid reuse) and
//! would not answer for handles duplicated by `fork`.
//!
//! An end is **closed when it is closed in every process** that holds a copy (as in Python):
//! [`Connection::close`] and `drop` close this process's copy only. A parent that hands an end
//! to a child must therefore drop its own copy for the child's exit to be seen as end of file.

use super::ring::{Consumer, Producer, Pushed, Record, Ring, RingCtl, RingError};
use super::ring::{KIND_FD, KIND_FIRST, KIND_FULL, KIND_LAST, KIND_MORE};
use crate::loom::atomic::Ordering;
use crate::loom::hint::spin_loop;
use crate::shm::{Segment, ShmError};
use crate::sys::clock::{monotonic_nanos, Deadline};
use crate::sys::process::{pipe_cloexec, poll_now};
use std::cell::Cell;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long a parked side sleeps before it re-checks whether its peer died.
const SLICE: Duration = Duration::from_millis(50);
const SLICE_NS: u64 = 50_000_000;

/// Longest single sleep of `poll`/`wait` on a connection before it looks at the writer's
/// liveness again (a message ends the sleep at once).
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(10);

/// The earlier of `deadline` and one [`WAIT_SLICE`] from now.
pub(crate) fn wait_slice(deadline: Option<Deadline>) -> Option<Deadline> {
    match (deadline, Deadline::after(WAIT_SLICE)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
/// Spin iterations of [`WaitStrategy::Adaptive`] before it parks (≈ 10–30 µs).
const ADAPTIVE_SPINS: u32 = 500;
/// While spinning, the peer-death check (a clock read) runs once every this many iterations.
const CHECK_EVERY: u32 = 64;
/// After this many consecutive `recv` spin phases that ended in parking anyway, `Adaptive`
/// parks at once (spinning is pure loss when the writer cannot run meanwhile, e.g. when both
/// processes share one CPU); it tries spinning again every [`SPIN_PROBE_EVERY`]-th wait.
const SPIN_FAILS_TO_STOP: u8 = 4;
const SPIN_PROBE_EVERY: u32 = 16;

/// How an endpoint waits for its peer.
///
/// # Examples
///
/// ```
/// use multiproc::{Pipe, WaitStrategy};
/// let (mut a, mut b) = Pipe::builder().wait(WaitStrategy::Spin).duplex()?;
/// a.send_bytes(b"x")?;
/// assert_eq!(b.recv_bytes()?, b"x");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Sleep in the kernel (futex) at once: lowest CPU use.
    Park,
    /// Busy-wait: lowest latency, burns a CPU while waiting.
    Spin,
    /// Spin briefly (≈ 10–30 µs), then park. The default. An end whose spinning keeps failing
    /// (four waits in a row that ended parked anyway, typically because the peer shares its
    /// CPU and cannot run meanwhile) parks at once, and tries spinning again every 16th wait.
    #[default]
    Adaptive,
}

/// Creating a pipe failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PipeError {
    /// The shared segment could not be created.
    Shm(ShmError),
    /// The liveness pipe(2) could not be created.
    Os(std::io::Error),
    /// Ring capacity not a power of two in `64..=1 GiB`.
    BadCapacity(usize),
}

impl fmt::Display for PipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipeError::Shm(e) => write!(f, "pipe segment: {e}"),
            PipeError::Os(e) => write!(f, "pipe liveness descriptors: {e}"),
            PipeError::BadCapacity(c) => write!(f, "ring capacity {c} is not a power of two in 64..=1GiB"),
        }
    }
}

impl std::error::Error for PipeError {}

/// `send` failed; nothing of the message was sent unless stated.
#[derive(Debug)]
#[non_exhaustive]
pub enum SendError {
    /// The reading end is closed in every process (or they all died).
    Closed,
    /// This handle was closed with [`Connection::close`].
    HandleClosed,
    /// This end is read-only (`Pipe::new` reader).
    NotWritable,
    /// The message is larger than the pipe's maximum message size.
    TooLarge {
        /// Message length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `offset`/`size` do not describe a range of the buffer.
    BadRange {
        /// Requested offset.
        offset: usize,
        /// Requested size (`None`: to the end).
        size: Option<usize>,
        /// Buffer length.
        len: usize,
    },
    /// No room in time (a fragmented message may be partly written; the reader discards it).
    Timeout,
    /// `try_send*`: the ring is full now.
    Full,
    /// The shared ring broke its invariants (corrupt or malicious peer).
    Corrupt(&'static str),
    /// `send_fd` on a pipe built without [`PipeBuilder::fd_passing`].
    FdPassingDisabled,
    /// The descriptor could not be sent (`sendmsg` failed, e.g. `EBADF`); nothing was sent.
    Fd(std::io::Error),
    /// The value could not be serialised.
    #[cfg(feature = "serde")]
    Encode(postcard::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => write!(f, "the reading end of the pipe is closed"),
            SendError::HandleClosed => write!(f, "handle is closed"),
            SendError::NotWritable => write!(f, "connection is read-only"),
            SendError::TooLarge { len, max } => write!(f, "message of {len} bytes exceeds the maximum {max}"),
            SendError::BadRange { offset, size, len } => {
                write!(f, "bad range offset {offset} size {size:?} for a buffer of {len} bytes")
            }
            SendError::Timeout => write!(f, "send timed out"),
            SendError::Full => write!(f, "pipe is full"),
            SendError::Corrupt(w) => write!(f, "corrupt pipe: {w}"),
            SendError::FdPassingDisabled => write!(f, "this pipe was built without fd_passing(true)"),
            SendError::Fd(e) => write!(f, "cannot send the descriptor: {e}"),
            #[cfg(feature = "serde")]
            SendError::Encode(e) => write!(f, "cannot encode message: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

impl From<RingError> for SendError {
    fn from(e: RingError) -> SendError {
        let RingError::Corrupt(w) = e;
        SendError::Corrupt(w)
    }
}

/// `recv`/`poll` failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecvError {
    /// The writing end is closed in every process (or died) and everything it sent was received.
    Eof,
    /// This handle was closed with [`Connection::close`].
    HandleClosed,
    /// This end is write-only (`Pipe::new` writer).
    NotReadable,
    /// Nothing arrived in time.
    Timeout,
    /// `try_recv*`: nothing is pending now.
    Empty,
    /// The message is longer than the `maxlength` given (it was consumed and dropped).
    TooLong {
        /// Message length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `recv_bytes_into`: the buffer is too short; the error carries the whole message.
    BufferTooShort(Vec<u8>),
    /// The shared ring broke its invariants (corrupt or malicious peer).
    Corrupt(&'static str),
    /// `recv_fd` found a data message next (it stays there for `recv*`; Python's
    /// `recv_handle` raises `RuntimeError` here).
    NotAnFd,
    /// `recv*` found a descriptor next (it stays there for [`Connection::recv_fd`]).
    FdPending,
    /// `recv_fd` on a pipe built without [`PipeBuilder::fd_passing`].
    FdPassingDisabled,
    /// The bytes are not a valid encoding of the requested type.
    #[cfg(feature = "serde")]
    Decode(postcard::Error),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Eof => write!(f, "end of file: the writing end is closed"),
            RecvError::HandleClosed => write!(f, "handle is closed"),
            RecvError::NotReadable => write!(f, "connection is write-only"),
            RecvError::Timeout => write!(f, "recv timed out"),
            RecvError::Empty => write!(f, "nothing to receive"),
            RecvError::TooLong { len, max } => write!(f, "bad message length: {len} > {max}"),
            RecvError::BufferTooShort(m) => write!(f, "buffer too short for a message of {} bytes", m.len()),
            RecvError::Corrupt(w) => write!(f, "corrupt pipe: {w}"),
            RecvError::NotAnFd => write!(f, "the next message is data, not a file descriptor"),
            RecvError::FdPending => write!(f, "the next message is a file descriptor: use recv_fd"),
            RecvError::FdPassingDisabled => write!(f, "this pipe was built without fd_passing(true)"),
            #[cfg(feature = "serde")]
            RecvError::Decode(e) => write!(f, "cannot decode message: {e}"),
        }
    }
}

impl std::error::Error for RecvError {}

impl From<RingError> for RecvError {
    fn from(e: RingError) -> RecvError {
        let RingError::Corrupt(w) = e;
        RecvError::Corrupt(w)
    }
}

/// Builder for a [`Pipe`]: ring capacity, maximum message size, wait strategy.
///
/// # Examples
///
/// ```
/// use multiproc::{Pipe, WaitStrategy};
/// let (mut r, mut w) = Pipe::builder().capacity(4096).max_message(1 << 20).wait(WaitStrategy::Park).one_way()?;
/// // Larger than the ring: sent in fragments while the reader drains them, received whole.
/// let h = std::thread::spawn(move || w.send_bytes(&vec![7u8; 100_000]));
/// assert_eq!(r.recv_bytes()?.len(), 100_000);
/// h.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PipeBuilder {
    capacity: usize,
    max_message: usize,
    wait: WaitStrategy,
    fd_passing: bool,
}

impl Default for PipeBuilder {
    fn default() -> PipeBuilder {
        PipeBuilder { capacity: 1 << 18, max_message: 1 << 30, wait: WaitStrategy::default(), fd_passing: false }
    }
}

impl PipeBuilder {
    /// Bytes of each direction's ring (power of two, 64 B ..= 1 GiB; default 256 KiB).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, _b) = multiproc::Pipe::builder().capacity(1 << 12).duplex()?;
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn capacity(mut self, bytes: usize) -> PipeBuilder {
        self.capacity = bytes;
        self
    }

    /// Largest message accepted by `send` and `recv` (default 1 GiB).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, _b) = multiproc::Pipe::builder().max_message(4).duplex()?;
    /// assert!(matches!(a.send_bytes(b"12345"), Err(multiproc::SendError::TooLarge { .. })));
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn max_message(mut self, bytes: usize) -> PipeBuilder {
        self.max_message = bytes;
        self
    }

    /// Lets the ends pass file descriptors ([`Connection::send_fd`] / [`Connection::recv_fd`],
    /// Python's `reduction.send_handle` / `recv_handle`; PIPE-13). Off by default: it costs a
    /// Unix socket pair (two descriptors) per pipe, which most pipes never use.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// let file = std::fs::File::open("/dev/null")?;
    /// a.send_fd(std::os::fd::AsFd::as_fd(&file))?;
    /// let _same_file: std::os::fd::OwnedFd = b.recv_fd()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fd_passing(mut self, on: bool) -> PipeBuilder {
        self.fd_passing = on;
        self
    }

    /// How both ends wait (changeable per end with [`Connection::set_wait`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, _b) = multiproc::Pipe::builder().wait(multiproc::WaitStrategy::Park).duplex()?;
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn wait(mut self, w: WaitStrategy) -> PipeBuilder {
        self.wait = w;
        self
    }

    /// A duplex pipe: two ends that both send and receive.
    ///
    /// # Errors
    /// [`PipeError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::builder().duplex()?;
    /// b.send_bytes(b"pong")?;
    /// assert_eq!(a.recv_bytes()?, b"pong");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn duplex(self) -> Result<(Connection, Connection), PipeError> {
        let (seg, r1, r2) = self.segment(2)?;
        let r2 = r2.expect("two rings");
        let (l1r, l1w) = pipe_cloexec().map_err(PipeError::Os)?;
        let (l2r, l2w) = pipe_cloexec().map_err(PipeError::Os)?;
        let (sa, sb) = self.sockets()?;
        let a = self.conn(seg.clone(), Some((r1, l1w)), Some((r2, l2r)), sa);
        let b = self.conn(seg, Some((r2, l2w)), Some((r1, l1r)), sb);
        Ok((a, b))
    }

    /// A one-way pipe: `(reader, writer)`.
    ///
    /// # Errors
    /// [`PipeError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut r, mut w) = multiproc::Pipe::builder().one_way()?;
    /// w.send_bytes(b"x")?;
    /// assert_eq!(r.recv_bytes()?, b"x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn one_way(self) -> Result<(Connection, Connection), PipeError> {
        let (seg, r1, _) = self.segment(1)?;
        let (lr, lw) = pipe_cloexec().map_err(PipeError::Os)?;
        let (sr, sw) = self.sockets()?;
        let reader = self.conn(seg.clone(), None, Some((r1, lr)), sr);
        let writer = self.conn(seg, Some((r1, lw)), None, sw);
        Ok((reader, writer))
    }

    /// The descriptor-passing socket pair, if enabled.
    fn sockets(&self) -> Result<(Option<OwnedFd>, Option<OwnedFd>), PipeError> {
        if !self.fd_passing {
            return Ok((None, None));
        }
        let (a, b) = crate::sys::fdpass::socketpair_seqpacket().map_err(PipeError::Os)?;
        Ok((Some(a), Some(b)))
    }

    fn segment(&self, rings: usize) -> Result<(Segment, Ring, Option<Ring>), PipeError> {
        let cap = self.capacity;
        if !cap.is_power_of_two() || !(64..=1 << 30).contains(&cap) {
            return Err(PipeError::BadCapacity(cap));
        }
        let seg = Segment::anonymous(rings * (cap + 512) + 4096).map_err(PipeError::Shm)?;
        let make = || -> Result<Ring, ShmError> {
            let ctl = seg.alloc_object::<RingCtl>()?;
            let off = seg.alloc(cap, 128)?;
            let data = seg.bytes_at(off, cap)?;
            let ctl_ptr = std::ptr::NonNull::from(&*ctl);
            // SAFETY: both live in `seg`, which every Connection keeps mapped; `cap` is a power of
            // two ≥ 64 and the region is 128-aligned; one producer and one consumer per ring.
            Ok(unsafe { Ring::from_raw(ctl_ptr, data, cap) })
        };
        let r1 = make().map_err(PipeError::Shm)?;
        let r2 = if rings == 2 { Some(make().map_err(PipeError::Shm)?) } else { None };
        Ok((seg, r1, r2))
    }

    fn conn(
        &self,
        seg: Segment,
        tx: Option<(Ring, OwnedFd)>,
        rx: Option<(Ring, OwnedFd)>,
        fd_sock: Option<OwnedFd>,
    ) -> Connection {
        Connection {
            fd_sock,
            _seg: seg,
            tx: tx.map(|(r, fd)| Tx {
                prod: Producer::new(r),
                live: fd,
                gone: Cell::new(false),
                seen: Cell::new(0),
                spin_fails: 0,
                waits: 0,
            }),
            rx: rx.map(|(r, fd)| Rx {
                cons: Consumer::new(r),
                live: fd,
                gone: Cell::new(false),
                seen: Cell::new(0),
                last_check: Cell::new(0),
            }),
            wait: self.wait,
            max: self.max_message,
            closed: false,
            asm: None,
            spin_fails: 0,
            waits: 0,
        }
    }
}

/// Python's `multiprocessing.Pipe`.
///
/// # Examples
///
/// ```
/// let (mut a, mut b) = multiproc::Pipe::duplex()?;
/// a.send_bytes(b"hi")?;
/// assert_eq!(b.recv_bytes()?, b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Pipe;

impl Pipe {
    /// `Pipe()`: a duplex pipe with default settings.
    ///
    /// # Errors
    /// [`PipeError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = multiproc::Pipe::duplex()?;
    /// assert!(a.readable() && a.writable() && b.readable() && b.writable());
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn duplex() -> Result<(Connection, Connection), PipeError> {
        PipeBuilder::default().duplex()
    }

    /// `Pipe(duplex=False)`: `(reader, writer)`.
    ///
    /// # Errors
    /// [`PipeError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (r, w) = multiproc::Pipe::new()?;
    /// assert!(r.readable() && !r.writable() && w.writable() && !w.readable());
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    #[allow(clippy::new_ret_no_self)] // Python's name: `Pipe(duplex=False)` returns two ends
    pub fn new() -> Result<(Connection, Connection), PipeError> {
        PipeBuilder::default().one_way()
    }

    /// A [`PipeBuilder`] with the defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_r, _w) = multiproc::Pipe::builder().capacity(1 << 16).one_way()?;
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn builder() -> PipeBuilder {
        PipeBuilder::default()
    }
}

#[derive(Debug)]
struct Tx {
    prod: Producer,
    /// Write side of the liveness pipe: `POLLERR` once every reader copy is closed.
    live: OwnedFd,
    gone: Cell<bool>,
    seen: Cell<u32>,
    /// Consecutive full-ring spin phases that ended in parking (`Adaptive`; see
    /// `SPIN_FAILS_TO_STOP`), and full-ring waits so far.
    spin_fails: u8,
    waits: u32,
}

#[derive(Debug)]
struct Rx {
    cons: Consumer,
    /// Read side of the liveness pipe: `POLLHUP` once every writer copy is closed.
    live: OwnedFd,
    gone: Cell<bool>,
    seen: Cell<u32>,
    last_check: Cell<u64>,
}

impl Rx {
    /// Whether every writer is gone. Polls the kernel only when a close was hinted, `force`, or a
    /// slice passed since the last check.
    fn writer_gone(&self, force: bool) -> bool {
        if self.gone.get() {
            return true;
        }
        // Relaxed: a hint only; the authoritative answer is the poll below.
        let c = self.cons.ring().writer_closes().load(Ordering::Relaxed);
        let now = monotonic_nanos();
        if force || c != self.seen.get() || now.saturating_sub(self.last_check.get()) >= SLICE_NS {
            self.seen.set(c);
            self.last_check.set(now);
            if poll_now(self.live.as_fd(), libc::POLLIN) & (libc::POLLHUP | libc::POLLERR) != 0 {
                self.gone.set(true);
            }
        }
        self.gone.get()
    }
}

impl Tx {
    fn reader_gone(&self) -> bool {
        if !self.gone.get() && poll_now(self.live.as_fd(), 0) & libc::POLLERR != 0 {
            self.gone.set(true);
        }
        self.gone.get()
    }
}

/// A fragmented message being reassembled.
#[derive(Debug)]
struct Assembly {
    total: usize,
    buf: Vec<u8>,
    /// Longer than the caller's limit: drain and drop.
    discard: bool,
}

/// A message ready to be handed out.
enum Msg {
    /// One record still in the ring (copy, then release).
    Inline(Record),
    /// A reassembled message.
    Whole(Vec<u8>),
    /// A descriptor marker, not released: it stays for `recv_fd`.
    Fd,
}

/// One end of a [`Pipe`] (Python's `Connection`).
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
    fd_sock: Option<OwnedFd>,
    _seg: Segment,
    tx: Option<Tx>,
    rx: Option<Rx>,
    wait: WaitStrategy,
    max: usize,
    closed: bool,
    asm: Option<Assembly>,
    /// Consecutive `recv` spin phases that ended in parking (`Adaptive`).
    spin_fails: u8,
    /// `recv` waits so far (wrapping), for re-probing spinning.
    waits: u32,
}

fn deadline_at(t: Instant) -> Option<Deadline> {
    Deadline::at(t).or_else(|| Some(Deadline::now()))
}

impl Connection {
    /// True when this end can receive (duplex ends and one-way readers), and is not closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (r, w) = multiproc::Pipe::new()?;
    /// assert!(r.readable() && !w.readable());
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn readable(&self) -> bool {
        self.rx.is_some() && !self.closed
    }

    /// True when this end can send, and is not closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (r, w) = multiproc::Pipe::new()?;
    /// assert!(w.writable() && !r.writable());
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn writable(&self) -> bool {
        self.tx.is_some() && !self.closed
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
    /// # Ok::<(), multiproc::PipeError>(())
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
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn set_wait(&mut self, w: WaitStrategy) {
        self.wait = w;
    }

    /// The liveness descriptor of the receiving side (`POLLHUP` when every writer is gone), for
    /// `poll`/`epoll` based event loops. It never becomes readable for data: use [`wait`](super::wait)
    /// to wait for messages.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = multiproc::Pipe::duplex()?;
    /// assert!(a.fileno().is_some());
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn fileno(&self) -> Option<BorrowedFd<'_>> {
        if self.closed {
            return None;
        }
        self.rx.as_ref().map(|r| r.live.as_fd()).or_else(|| self.tx.as_ref().map(|t| t.live.as_fd()))
    }

    /// Closes this process's copy of this end (the peer sees end of file once every process
    /// closed theirs). Later calls on this handle fail with `HandleClosed`. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"last")?;
    /// a.close();
    /// assert_eq!(b.recv_bytes()?, b"last");
    /// assert!(matches!(b.recv_bytes(), Err(multiproc::RecvError::Eof)));
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
        self.asm = None;
    }

    // ---------------------------------------------------------------- sending

    fn send_inner(&mut self, buf: &[u8], deadline: Option<Deadline>) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::HandleClosed);
        }
        let max = self.max;
        let wait = self.wait;
        let tx = self.tx.as_mut().ok_or(SendError::NotWritable)?;
        if buf.len() > max {
            return Err(SendError::TooLarge { len: buf.len(), max });
        }
        let rec_max = tx.prod.ring().max_record();
        if buf.len() <= rec_max {
            return push_wait(tx, wait, KIND_FULL, None, buf, deadline);
        }
        let (first, mut rest) = buf.split_at(rec_max - 8);
        push_wait(tx, wait, KIND_FIRST, Some(buf.len() as u64), first, deadline)?;
        while !rest.is_empty() {
            let n = rest.len().min(rec_max);
            let kind = if n == rest.len() { KIND_LAST } else { KIND_MORE };
            push_wait(tx, wait, kind, None, &rest[..n], deadline)?;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Sends `buf` as one message, blocking while the ring is full.
    ///
    /// # Errors
    /// [`SendError::Closed`] when the reader is gone (noticed once the ring is full; earlier
    /// messages sit in the ring like in a socket buffer), `NotWritable`, `HandleClosed`,
    /// `TooLarge`, `Corrupt`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"hello world")?;
    /// assert_eq!(b.recv_bytes()?, b"hello world");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_bytes(&mut self, buf: &[u8]) -> Result<(), SendError> {
        self.send_inner(buf, None)
    }

    /// `send_bytes` without blocking: [`SendError::Full`] when it does not fit now.
    ///
    /// # Errors
    /// As [`Connection::send_bytes`], plus `Full`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, _b) = multiproc::Pipe::builder().capacity(64).duplex()?;
    /// a.try_send_bytes(b"0123456789")?; // 24 bytes with header and padding
    /// a.try_send_bytes(b"0123456789")?;
    /// assert!(matches!(a.try_send_bytes(b"0123456789"), Err(multiproc::SendError::Full)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send_bytes(&mut self, buf: &[u8]) -> Result<(), SendError> {
        self.send_inner(buf, Some(Deadline::now())).map_err(|e| match e {
            SendError::Timeout => SendError::Full,
            e => e,
        })
    }

    /// `send_bytes` waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Connection::send_bytes`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (mut a, _b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes_timeout(b"x", Duration::from_millis(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_bytes_timeout(&mut self, buf: &[u8], timeout: Duration) -> Result<(), SendError> {
        self.send_inner(buf, Deadline::after(timeout).or_else(|| Some(Deadline::now())))
    }

    /// `send_bytes` waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`Connection::send_bytes`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (mut a, _b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes_deadline(b"x", Instant::now() + Duration::from_millis(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_bytes_deadline(&mut self, buf: &[u8], deadline: Instant) -> Result<(), SendError> {
        self.send_inner(buf, deadline_at(deadline))
    }

    /// Python's `send_bytes(buf, offset, size)`: sends `buf[offset..offset + size]` (`size`
    /// `None`: to the end). A bad range sends nothing (PIPE-7, PIPE-8).
    ///
    /// # Errors
    /// [`SendError::BadRange`], or as [`Connection::send_bytes`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// let msg: Vec<u8> = (b'a'..=b'z').collect();
    /// a.send_bytes_range(&msg, 7, Some(8))?;
    /// assert_eq!(b.recv_bytes()?, &msg[7..15]);
    /// assert!(a.send_bytes_range(&msg, 26, Some(1)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_bytes_range(&mut self, buf: &[u8], offset: usize, size: Option<usize>) -> Result<(), SendError> {
        let bad = SendError::BadRange { offset, size, len: buf.len() };
        if offset > buf.len() {
            return Err(bad);
        }
        let size = size.unwrap_or(buf.len() - offset);
        if size > buf.len() - offset {
            return Err(bad);
        }
        self.send_bytes(&buf[offset..offset + size])
    }

    // ---------------------------------------------------------- descriptors

    /// Sends a file descriptor (Python's `reduction.send_handle`; PIPE-13): the receiver's
    /// [`recv_fd`](Self::recv_fd) gets its own descriptor for the same open file, in order
    /// with the messages sent before and after. `fd` stays open here.
    ///
    /// The descriptor travels over the pipe's socket (`SCM_RIGHTS`), then a marker record
    /// takes its place in the ring; a sender killed between the two leaves only an unused
    /// descriptor in the socket (closed with it), never a marker without a descriptor.
    ///
    /// # Errors
    /// [`SendError::FdPassingDisabled`] unless built with [`PipeBuilder::fd_passing`];
    /// `NotWritable`, `HandleClosed`, `Closed` (the reader is gone), [`SendError::Fd`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Seek, Write};
    /// use std::os::fd::AsFd;
    ///
    /// let (mut a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// let mut file = tempfile_like()?;
    /// a.send_fd(file.as_fd())?;
    /// let mut theirs = std::fs::File::from(b.recv_fd()?);
    /// theirs.write_all(b"foo")?;
    /// file.rewind()?;
    /// let mut s = String::new();
    /// file.read_to_string(&mut s)?;
    /// assert_eq!(s, "foo");
    /// # fn tempfile_like() -> std::io::Result<std::fs::File> {
    /// #     let p = std::env::temp_dir().join(format!("multiproc-doc-{}", std::process::id()));
    /// #     let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&p)?;
    /// #     std::fs::remove_file(&p)?;
    /// #     Ok(f)
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "send_handle")]
    pub fn send_fd(&mut self, fd: BorrowedFd<'_>) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::HandleClosed);
        }
        let wait = self.wait;
        let Some(tx) = self.tx.as_mut() else { return Err(SendError::NotWritable) };
        let Some(sock) = self.fd_sock.as_ref() else { return Err(SendError::FdPassingDisabled) };
        if tx.reader_gone() {
            return Err(SendError::Closed);
        }
        crate::sys::fdpass::send_fd(sock.as_fd(), fd).map_err(|e| match e.raw_os_error() {
            Some(libc::EPIPE | libc::ECONNRESET) => SendError::Closed,
            _ => SendError::Fd(e),
        })?;
        push_wait(tx, wait, KIND_FD, None, &[], None)
    }

    /// Receives a file descriptor sent with [`send_fd`](Self::send_fd) (Python's
    /// `reduction.recv_handle`), blocking until the next message arrives. The descriptor is
    /// close-on-exec.
    ///
    /// # Errors
    /// [`RecvError::NotAnFd`] if the next message is data (it is left for `recv*`, where
    /// Python's `recv_handle` raises and loses it); [`RecvError::FdPassingDisabled`]; `Eof`,
    /// `NotReadable`, `HandleClosed`; `Corrupt` if a marker arrives without its descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::builder().fd_passing(true).duplex()?;
    /// a.send_bytes(b"data")?;
    /// assert!(matches!(b.recv_fd(), Err(multiproc::RecvError::NotAnFd)));
    /// assert_eq!(b.recv_bytes()?, b"data"); // nothing was lost
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "recv_handle")]
    pub fn recv_fd(&mut self) -> Result<OwnedFd, RecvError> {
        self.recv_fd_until(None)
    }

    /// [`recv_fd`](Self::recv_fd), waiting at most `timeout` (`RecvError::Timeout`).
    pub fn recv_fd_timeout(&mut self, timeout: Duration) -> Result<OwnedFd, RecvError> {
        self.recv_fd_until(Some(Deadline::after(timeout).unwrap_or_else(Deadline::now)))
    }

    fn recv_fd_until(&mut self, deadline: Option<Deadline>) -> Result<OwnedFd, RecvError> {
        self.rx()?;
        if self.fd_sock.is_none() {
            return Err(RecvError::FdPassingDisabled);
        }
        let rec = self.next_record(deadline)?;
        if rec.kind != KIND_FD {
            return Err(RecvError::NotAnFd);
        }
        self.asm = None;
        let rx = self.rx.as_mut().expect("checked by next_record");
        rx.cons.release(&rec);
        let sock = self.fd_sock.as_ref().expect("checked above");
        match crate::sys::fdpass::try_recv_fd(sock.as_fd()) {
            Ok(Some(fd)) => Ok(fd),
            Ok(None) => Err(RecvError::Corrupt("descriptor marker without a descriptor")),
            Err(_) => Err(RecvError::Corrupt("descriptor message without exactly one descriptor")),
        }
    }

    // ---------------------------------------------------------------- receiving

    fn rx(&mut self) -> Result<&mut Rx, RecvError> {
        if self.closed {
            return Err(RecvError::HandleClosed);
        }
        self.rx.as_mut().ok_or(RecvError::NotReadable)
    }

    /// Waits for the next record (not released).
    fn next_record(&mut self, deadline: Option<Deadline>) -> Result<Record, RecvError> {
        let wait = self.wait;
        // How long `Adaptive` spins this time: not at all after a run of spin phases that all
        // ended in parking (see SPIN_FAILS_TO_STOP), except for an occasional probe.
        let budget = if self.spin_fails >= SPIN_FAILS_TO_STOP && self.waits % SPIN_PROBE_EVERY != 0 {
            0
        } else {
            ADAPTIVE_SPINS
        };
        let rx = self.rx.as_mut().filter(|_| !self.closed);
        let Some(rx) = rx else {
            return Err(if self.closed { RecvError::HandleClosed } else { RecvError::NotReadable });
        };
        let mut spins = 0u32;
        let mut parked = false;
        let mut waited = false;
        let r = loop {
            match rx.cons.peek() {
                Ok(Some(rec)) => break Ok(rec),
                Ok(None) => {}
                Err(e) => break Err(e.into()),
            }
            waited = true;
            // Every iteration once parking, every CHECK_EVERY-th while spinning.
            let check = spins % CHECK_EVERY == 0 || (spins >= budget && wait == WaitStrategy::Adaptive);
            if check && rx.writer_gone(false) {
                // The writer's last publish happened before its descriptors closed: re-check.
                break rx.cons.peek().map_err(RecvError::from).and_then(|r| r.ok_or(RecvError::Eof));
            }
            if check && deadline.is_some_and(|d| d.has_passed()) {
                break Err(RecvError::Timeout);
            }
            let park = match wait {
                WaitStrategy::Park => true,
                WaitStrategy::Spin => false,
                WaitStrategy::Adaptive => spins >= budget,
            };
            if !park {
                spins = spins.wrapping_add(1);
                spin_loop();
                continue;
            }
            parked = true;
            match rx.cons.prepare_sleep() {
                Ok(true) => {
                    let slice = Deadline::after(SLICE);
                    let d = match (deadline, slice) {
                        (Some(a), Some(b)) => Some(if a.remaining() < b.remaining() { a } else { b }),
                        (a, b) => a.or(b),
                    };
                    rx.cons.sleep(d);
                }
                Ok(false) => {}
                Err(e) => break Err(e.into()),
            }
        };
        if waited && wait == WaitStrategy::Adaptive {
            self.waits = self.waits.wrapping_add(1);
            if !parked {
                self.spin_fails = 0;
            } else if budget > 0 {
                self.spin_fails = self.spin_fails.saturating_add(1);
            }
        }
        r
    }

    /// The next whole message, honouring `limit` (longer ones are dropped with `TooLong`).
    fn next_message(&mut self, deadline: Option<Deadline>, limit: usize) -> Result<Msg, RecvError> {
        loop {
            let rec = match self.next_record(deadline) {
                Err(RecvError::Eof) => {
                    self.asm = None; // a dead writer's partial message is never returned
                    return Err(RecvError::Eof);
                }
                r => r?,
            };
            let max = self.max;
            let rx = self.rx.as_mut().expect("checked by next_record");
            match rec.kind {
                KIND_FD => {
                    self.asm = None; // as for KIND_FULL
                    return Ok(Msg::Fd);
                }
                KIND_FULL => {
                    self.asm = None; // a partial message from a writer that died: drop it
                    if rec.len > limit {
                        rx.cons.release(&rec);
                        return Err(RecvError::TooLong { len: rec.len, max: limit });
                    }
                    return Ok(Msg::Inline(rec));
                }
                KIND_FIRST => {
                    let total = rx.cons.read_prefix(&rec).ok_or(RecvError::Corrupt("short first fragment"))?;
                    if total > max as u64 || total < rec.len as u64 - 8 {
                        return Err(RecvError::Corrupt("fragmented message length out of range"));
                    }
                    let total = total as usize;
                    let discard = total > limit;
                    let mut buf = Vec::new();
                    if !discard {
                        buf.resize(rec.len - 8, 0);
                        rx.cons.copy_out(&rec, 8, &mut buf);
                        // Grow as fragments arrive (up to 16 MiB reserved now): `total` is untrusted.
                        buf.reserve_exact((total - buf.len()).min(1 << 24));
                    }
                    rx.cons.release(&rec);
                    self.asm = Some(Assembly { total, buf, discard });
                }
                _ => {
                    let Some(a) = self.asm.as_mut() else {
                        return Err(RecvError::Corrupt("fragment without a first fragment"));
                    };
                    if !a.discard {
                        let at = a.buf.len();
                        if at + rec.len > a.total {
                            return Err(RecvError::Corrupt("fragments longer than announced"));
                        }
                        a.buf.resize(at + rec.len, 0);
                        rx.cons.copy_out(&rec, 0, &mut a.buf[at..]);
                    }
                    rx.cons.release(&rec);
                    if rec.kind == KIND_LAST {
                        let a = self.asm.take().expect("present");
                        if a.discard {
                            return Err(RecvError::TooLong { len: a.total, max: limit });
                        }
                        if a.buf.len() != a.total {
                            return Err(RecvError::Corrupt("fragments shorter than announced"));
                        }
                        return Ok(Msg::Whole(a.buf));
                    }
                }
            }
        }
    }

    fn recv_vec(&mut self, deadline: Option<Deadline>, limit: usize) -> Result<Vec<u8>, RecvError> {
        match self.next_message(deadline, limit)? {
            Msg::Fd => Err(RecvError::FdPending),
            Msg::Whole(v) => Ok(v),
            Msg::Inline(rec) => {
                let rx = self.rx.as_mut().expect("checked");
                let mut v = vec![0u8; rec.len];
                rx.cons.copy_out(&rec, 0, &mut v);
                rx.cons.release(&rec);
                Ok(v)
            }
        }
    }

    /// Receives the next message, blocking; `Eof` once the writer is gone and all is drained.
    ///
    /// # Errors
    /// [`RecvError::Eof`], `NotReadable`, `HandleClosed`, `Corrupt`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"x")?;
    /// assert_eq!(b.recv_bytes()?, b"x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(None, usize::MAX)
    }

    /// `recv_bytes` without blocking ([`RecvError::Empty`]).
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// assert!(matches!(b.try_recv_bytes(), Err(multiproc::RecvError::Empty)));
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn try_recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Some(Deadline::now()), usize::MAX).map_err(empty)
    }

    /// `recv_bytes` waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// assert!(matches!(b.recv_bytes_timeout(Duration::from_millis(5)), Err(multiproc::RecvError::Timeout)));
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Deadline::after(timeout).or_else(|| Some(Deadline::now())), usize::MAX)
    }

    /// `recv_bytes` waiting until `deadline`.
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// let r = b.recv_bytes_deadline(Instant::now() + Duration::from_millis(5));
    /// assert!(matches!(r, Err(multiproc::RecvError::Timeout)));
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn recv_bytes_deadline(&mut self, deadline: Instant) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(deadline_at(deadline), usize::MAX)
    }

    /// Python's `recv_bytes(maxlength)`: a longer message is consumed and reported as
    /// [`RecvError::TooLong`] (PIPE-12).
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus `TooLong`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"too long")?;
    /// assert!(matches!(b.recv_bytes_max(3), Err(multiproc::RecvError::TooLong { len: 8, max: 3 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_max(&mut self, maxlength: usize) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(None, maxlength)
    }

    /// Python's `recv_bytes_into(buf, offset)`: writes the next message at `buf[offset..]` and
    /// returns its length. Allocation-free for messages that fit one record. A buffer too short
    /// gives [`RecvError::BufferTooShort`] carrying the whole (consumed) message (PIPE-3).
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus `BufferTooShort` (also for `offset > buf.len()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(&[1, 2, 3, 4])?;
    /// let mut buf = [0u8; 10];
    /// assert_eq!(b.recv_bytes_into(&mut buf, 3)?, 4);
    /// assert_eq!(buf, [0, 0, 0, 1, 2, 3, 4, 0, 0, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_into(&mut self, buf: &mut [u8], offset: usize) -> Result<usize, RecvError> {
        self.recv_into_inner(buf, offset, None)
    }

    /// `recv_bytes_into` waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Connection::recv_bytes_into`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_bytes(b"ab")?;
    /// let mut buf = [0u8; 2];
    /// assert_eq!(b.recv_bytes_into_timeout(&mut buf, 0, Duration::from_secs(1))?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_into_timeout(
        &mut self,
        buf: &mut [u8],
        offset: usize,
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.recv_into_inner(buf, offset, Deadline::after(timeout).or_else(|| Some(Deadline::now())))
    }

    fn recv_into_inner(
        &mut self,
        buf: &mut [u8],
        offset: usize,
        deadline: Option<Deadline>,
    ) -> Result<usize, RecvError> {
        let room = buf.len().saturating_sub(offset);
        match self.next_message(deadline, usize::MAX)? {
            Msg::Fd => Err(RecvError::FdPending),
            Msg::Inline(rec) => {
                let rx = self.rx.as_mut().expect("checked");
                if rec.len > room || offset > buf.len() {
                    let mut v = vec![0u8; rec.len];
                    rx.cons.copy_out(&rec, 0, &mut v);
                    rx.cons.release(&rec);
                    return Err(RecvError::BufferTooShort(v));
                }
                rx.cons.copy_out(&rec, 0, &mut buf[offset..offset + rec.len]);
                rx.cons.release(&rec);
                Ok(rec.len)
            }
            Msg::Whole(v) => {
                if v.len() > room || offset > buf.len() {
                    return Err(RecvError::BufferTooShort(v));
                }
                buf[offset..offset + v.len()].copy_from_slice(&v);
                Ok(v.len())
            }
        }
    }

    // ---------------------------------------------------------------- polling

    fn poll_inner(&self, deadline: Option<Deadline>) -> Result<bool, RecvError> {
        if self.closed {
            return Err(RecvError::HandleClosed);
        }
        let rx = self.rx.as_ref().ok_or(RecvError::NotReadable)?;
        let mut spins = 0u32;
        loop {
            if rx.cons.pending()? || rx.writer_gone(false) {
                return Ok(true);
            }
            if deadline.is_some_and(|d| d.has_passed()) {
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
            let _ = crate::loom::futex::wait(word, 1, wait_slice(deadline));
        }
    }

    /// The consumer-side futex word that `wait` sleeps on (raised, see
    /// `Consumer::announce_waiter`), if this end receives.
    #[cfg(not(loom))]
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
        self.poll_inner(Some(Deadline::now()))
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
        self.poll_inner(Deadline::after(timeout).or_else(|| Some(Deadline::now())))
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
        self.poll_inner(deadline_at(deadline))
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
        self.poll_inner(None)
    }

    /// Whether this end has a message or end of file pending, or is unusable (an error to
    /// report): what [`wait`](super::wait) calls "ready".
    pub(crate) fn ready_now(&self) -> bool {
        !matches!(self.poll_inner(Some(Deadline::now())), Ok(false))
    }
}

impl Connection {
    /// The ring this end writes into (fuzzing: play a faulty peer).
    pub(crate) fn tx_ring(&self) -> Option<Ring> {
        self.tx.as_ref().map(|t| *t.prod.ring())
    }
}

fn empty(e: RecvError) -> RecvError {
    match e {
        RecvError::Timeout => RecvError::Empty,
        e => e,
    }
}

/// Pushes one record, waiting for room per `wait` until `deadline`.
fn push_wait(
    tx: &mut Tx,
    wait: WaitStrategy,
    kind: u32,
    prefix: Option<u64>,
    body: &[u8],
    deadline: Option<Deadline>,
) -> Result<(), SendError> {
    if tx.prod.try_push(kind, prefix, body)? == Pushed::Done {
        return Ok(());
    }
    // The ring is full. As in `next_record`: `Adaptive` stops spinning after a run of spin
    // phases that all ended parked (the reader cannot drain while we spin on its CPU).
    let budget =
        if tx.spin_fails >= SPIN_FAILS_TO_STOP && tx.waits % SPIN_PROBE_EVERY != 0 { 0 } else { ADAPTIVE_SPINS };
    let mut spins = 0u32;
    let mut parked = false;
    let mut last_check = 0u64;
    let r = loop {
        // While spinning, the close hint, clock and deadline are looked at every CHECK_EVERY-th
        // round only (a clock read per spin would cost more than the spin).
        let spinning = wait == WaitStrategy::Spin || (wait == WaitStrategy::Adaptive && spins < budget);
        if !spinning || spins % CHECK_EVERY == 0 {
            // Relaxed: a hint only, confirmed by poll.
            let c = tx.prod.ring().reader_closes().load(Ordering::Relaxed);
            let now = monotonic_nanos();
            if c != tx.seen.get() || now.saturating_sub(last_check) >= SLICE_NS {
                tx.seen.set(c);
                last_check = now;
                if tx.reader_gone() {
                    break Err(SendError::Closed);
                }
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                break Err(SendError::Timeout);
            }
        }
        if spinning {
            spins = spins.saturating_add(1);
            spin_loop();
        } else {
            parked = true;
            match tx.prod.prepare_sleep() {
                Ok(true) => {
                    let slice = Deadline::after(SLICE);
                    let d = match (deadline, slice) {
                        (Some(a), Some(b)) => Some(if a.remaining() < b.remaining() { a } else { b }),
                        (a, b) => a.or(b),
                    };
                    tx.prod.sleep(d);
                }
                Ok(false) => {}
                Err(e) => break Err(e.into()),
            }
        }
        match tx.prod.try_push(kind, prefix, body) {
            Ok(Pushed::Done) => break Ok(()),
            Ok(_) => {}
            Err(e) => break Err(e.into()),
        }
    };
    if wait == WaitStrategy::Adaptive {
        tx.waits = tx.waits.wrapping_add(1);
        if !parked {
            tx.spin_fails = 0;
        } else if budget > 0 {
            tx.spin_fails = tx.spin_fails.saturating_add(1);
        }
    }
    r
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(feature = "serde")]
impl Connection {
    /// Sends any serde value (postcard encoding), blocking while the ring is full.
    ///
    /// # Errors
    /// As [`Connection::send_bytes`], plus [`SendError::Encode`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send(&(1u32, 2.25f64, None::<u8>))?;
    /// assert_eq!(b.recv::<(u32, f64, Option<u8>)>()?, (1, 2.25, None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SendError> {
        let v = postcard::to_stdvec(value).map_err(SendError::Encode)?;
        self.send_bytes(&v)
    }

    /// `send` waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Connection::send`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send_timeout(&"hi", Duration::from_secs(1))?;
    /// assert_eq!(b.recv::<String>()?, "hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_timeout<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
        timeout: Duration,
    ) -> Result<(), SendError> {
        let v = postcard::to_stdvec(value).map_err(SendError::Encode)?;
        self.send_bytes_timeout(&v, timeout)
    }

    fn decode<T: serde::de::DeserializeOwned>(v: Result<Vec<u8>, RecvError>) -> Result<T, RecvError> {
        postcard::from_bytes(&v?).map_err(RecvError::Decode)
    }

    /// Receives a serde value, blocking.
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`], plus [`RecvError::Decode`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send(&vec![1u8, 2])?;
    /// assert_eq!(b.recv::<Vec<u8>>()?, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, RecvError> {
        Self::decode(self.recv_bytes())
    }

    /// `recv` without blocking.
    ///
    /// # Errors
    /// As [`Connection::recv`], plus `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, mut b) = multiproc::Pipe::duplex()?;
    /// assert!(matches!(b.try_recv::<u8>(), Err(multiproc::RecvError::Empty)));
    /// # Ok::<(), multiproc::PipeError>(())
    /// ```
    pub fn try_recv<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, RecvError> {
        Self::decode(self.try_recv_bytes())
    }

    /// `recv` waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Connection::recv`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send(&7u64)?;
    /// assert_eq!(b.recv_timeout::<u64>(Duration::from_secs(1))?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout<T: serde::de::DeserializeOwned>(&mut self, timeout: Duration) -> Result<T, RecvError> {
        Self::decode(self.recv_bytes_timeout(timeout))
    }

    /// `recv` waiting until `deadline`.
    ///
    /// # Errors
    /// As [`Connection::recv`], plus `Timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// let (mut a, mut b) = multiproc::Pipe::duplex()?;
    /// a.send(&7u64)?;
    /// assert_eq!(b.recv_deadline::<u64>(Instant::now() + Duration::from_secs(1))?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_deadline<T: serde::de::DeserializeOwned>(&mut self, deadline: Instant) -> Result<T, RecvError> {
        Self::decode(self.recv_bytes_deadline(deadline))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn adaptive_stops_spinning_after_failed_spin_phases_and_probes_again() {
        let (mut a, mut b) = Pipe::duplex().unwrap();
        assert_eq!(b.wait, WaitStrategy::Adaptive);
        // Waits that spin, then park until their deadline: each is a failed spin phase.
        for n in 1..=SPIN_FAILS_TO_STOP {
            assert!(matches!(b.recv_bytes_timeout(Duration::from_millis(20)), Err(RecvError::Timeout)));
            assert_eq!(b.spin_fails, n);
        }
        // Now waits park at once (budget 0) and do not count, except the periodic probe.
        let before = b.waits;
        for _ in 0..SPIN_PROBE_EVERY {
            let _ = b.recv_bytes_timeout(Duration::from_millis(20));
        }
        assert_eq!(b.waits, before.wrapping_add(SPIN_PROBE_EVERY));
        // Exactly one of those 16 waits was a probe that spun (and failed again).
        assert_eq!(b.spin_fails, SPIN_FAILS_TO_STOP + 1);
        // A message that is already there costs no wait and changes nothing.
        a.send_bytes(b"x").unwrap();
        let w = b.waits;
        assert_eq!(b.recv_bytes().unwrap(), b"x");
        assert_eq!(b.waits, w);
    }
}
