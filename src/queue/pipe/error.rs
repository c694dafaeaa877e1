//! The errors of pipes and connections.

use super::super::ring::RingError;
#[cfg(feature = "serde")]
use crate::codec::CodecError;
use crate::shm::ShmError;
use std::fmt;

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

impl std::error::Error for PipeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PipeError::Shm(e) => Some(e),
            PipeError::Os(e) => Some(e),
            PipeError::BadCapacity(_) => None,
        }
    }
}

/// `send` failed; nothing of the message was sent unless stated.
#[derive(Debug)]
#[non_exhaustive]
pub enum SendError {
    /// The reading end is closed in every process (or they all died).
    Closed,
    /// This handle was closed with [`Connection::close`](crate::Connection::close).
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
    /// `send_fd` on a pipe built without [`PipeBuilder::fd_passing`](crate::PipeBuilder::fd_passing).
    FdPassingDisabled,
    /// The descriptor could not be sent (`sendmsg` failed, e.g. `EBADF`); nothing was sent.
    Fd(std::io::Error),
    /// The value could not be encoded; nothing was sent.
    #[cfg(feature = "serde")]
    Encode(CodecError),
    /// The socket of a TCP connection failed (other than the peer closing: that is `Closed`).
    Io(std::io::Error),
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
            SendError::Encode(e) => write!(f, "cannot send: {e}"),
            SendError::Io(e) => write!(f, "connection socket failed: {e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Fd(e) | SendError::Io(e) => Some(e),
            #[cfg(feature = "serde")]
            SendError::Encode(e) => Some(e),
            _ => None,
        }
    }
}

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
    /// This handle was closed with [`Connection::close`](crate::Connection::close).
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
    /// `recv*` found a descriptor next (it stays there for [`Connection::recv_fd`](crate::Connection::recv_fd)).
    FdPending,
    /// `recv_fd` on a pipe built without [`PipeBuilder::fd_passing`](crate::PipeBuilder::fd_passing).
    FdPassingDisabled,
    /// The message was sent as another type than the one asked for (`send::<String>`, then
    /// `recv::<u64>`): it stays in the pipe, for `recv_bytes` or a `recv` of the right type.
    WrongType {
        /// The type asked for.
        expected: &'static str,
    },
    /// The bytes are not a valid encoding of the requested type (the message was consumed).
    #[cfg(feature = "serde")]
    Decode(CodecError),
    /// The socket of a TCP connection failed (other than the peer closing: that is `Eof`).
    Io(std::io::Error),
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
            RecvError::WrongType { expected } => {
                write!(f, "the next message was sent as another type than {expected} (it is still there)")
            }
            #[cfg(feature = "serde")]
            RecvError::Decode(e) => write!(f, "cannot receive: {e}"),
            RecvError::Io(e) => write!(f, "connection socket failed: {e}"),
        }
    }
}

impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "serde")]
            RecvError::Decode(e) => Some(e),
            RecvError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RingError> for RecvError {
    fn from(e: RingError) -> RecvError {
        let RingError::Corrupt(w) = e;
        RecvError::Corrupt(w)
    }
}
