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
//! b.poll()?; // ready: a message is waiting
//! assert_eq!(b.recv_bytes()?, b"hello");
//! b.send_bytes(b"")?; // an empty message is a message
//! assert_eq!(a.recv_bytes()?, b"");
//! drop(a); // the last handle of an end closes it: the peer drains, then sees Eof
//! assert!(matches!(b.recv_bytes(), Err(multiproc::RecvError::Disconnected)));
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

mod batch;
mod builder;
mod conn;
mod error;
mod export;
mod fd;
mod handles;
mod held;
#[cfg(feature = "serde")]
mod iter;
mod liveness;
mod loan;
mod poll;
mod ready;
mod recv;
mod send;
#[cfg(feature = "serde")]
mod typed;

pub use builder::{Pipe, PipeBuilder};
pub(crate) use conn::ByteStream;
pub use conn::Connection;
pub use error::{
    PollError, PollTimeoutError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryPollError, TryRecvError,
    TrySendError,
};
pub(crate) use error::{RecvFail, SendFail};
pub(crate) use export::{ExportFail, Exported, EXPORT_WORDS};
pub use handles::Shareable;
#[cfg(feature = "serde")]
pub(crate) use handles::{decode_with_handles, encode_with_handles};
#[cfg(feature = "serde")]
pub use iter::ConnectionIter;
pub use loan::{RecvLoan, SendLoan};

use std::time::Duration;

/// How long a parked side sleeps before it re-checks whether its peer died.
const SLICE: Duration = Duration::from_millis(50);

/// While spinning, the peer-death check (a clock read) runs once every this many iterations.
const CHECK_EVERY: u32 = 64;

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
    /// Spin briefly (≈ 10–30 µs), then park. The default (and a `Pipe`'s; a
    /// [`Queue`](crate::Queue)'s gets park unless told otherwise). An end whose spinning keeps failing
    /// (four waits in a row that ended parked anyway, typically because the peer shares its
    /// CPU and cannot run meanwhile) parks at once, and tries spinning again every 16th wait.
    #[default]
    Adaptive,
}
