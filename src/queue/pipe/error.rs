//! The errors of pipes and connections.

use super::super::ring::RingError;
#[cfg(feature = "serde")]
use crate::codec::CodecError;
use std::fmt;

/// `send` failed; nothing of the message was sent unless stated.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum SendFail {
    /// The reading end is closed in every process (or they all died).
    Closed,
    /// This handle was closed with [`Connection::close`](crate::Connection::close).
    HandleClosed,
    /// This end is read-only (`Pipe::one_way` reader).
    NotWritable,
    /// The message is larger than the pipe's maximum message size.
    TooLarge {
        /// Message length.
        len: usize,
        /// The limit.
        max: usize,
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

impl fmt::Display for SendFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFail::Closed => write!(f, "the reading end of the pipe is closed"),
            SendFail::HandleClosed => write!(f, "handle is closed"),
            SendFail::NotWritable => write!(f, "connection is read-only"),
            SendFail::TooLarge { len, max } => write!(f, "message of {len} bytes exceeds the maximum {max}"),
            SendFail::Timeout => write!(f, "send timed out"),
            SendFail::Full => write!(f, "pipe is full"),
            SendFail::Corrupt(w) => write!(f, "corrupt pipe: {w}"),
            SendFail::FdPassingDisabled => write!(f, "this pipe was built without fd_passing(true)"),
            SendFail::Fd(e) => write!(f, "cannot send the descriptor: {e}"),
            #[cfg(feature = "serde")]
            SendFail::Encode(e) => write!(f, "cannot send: {e}"),
            SendFail::Io(e) => write!(f, "connection socket failed: {e}"),
        }
    }
}

impl std::error::Error for SendFail {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendFail::Fd(e) | SendFail::Io(e) => Some(e),
            #[cfg(feature = "serde")]
            SendFail::Encode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RingError> for SendFail {
    fn from(e: RingError) -> SendFail {
        let RingError::Corrupt(w) = e;
        SendFail::Corrupt(w)
    }
}

/// `recv`/`poll` failed.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum RecvFail {
    /// The writing end is closed in every process (or died) and everything it sent was received.
    Eof,
    /// This handle was closed with [`Connection::close`](crate::Connection::close).
    HandleClosed,
    /// This end is write-only (`Pipe::one_way` writer).
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
    /// The socket of a TCP connection failed (other than the peer closing: that is `Disconnected`).
    Io(std::io::Error),
}

impl fmt::Display for RecvFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvFail::Eof => write!(f, "end of file: the writing end is closed"),
            RecvFail::HandleClosed => write!(f, "handle is closed"),
            RecvFail::NotReadable => write!(f, "connection is write-only"),
            RecvFail::Timeout => write!(f, "recv timed out"),
            RecvFail::Empty => write!(f, "nothing to receive"),
            RecvFail::TooLong { len, max } => write!(f, "bad message length: {len} > {max}"),
            RecvFail::BufferTooShort(m) => write!(f, "buffer too short for a message of {} bytes", m.len()),
            RecvFail::Corrupt(w) => write!(f, "corrupt pipe: {w}"),
            RecvFail::NotAnFd => write!(f, "the next message is data, not a file descriptor"),
            RecvFail::FdPending => write!(f, "the next message is a file descriptor: use recv_fd"),
            RecvFail::FdPassingDisabled => write!(f, "this pipe was built without fd_passing(true)"),
            RecvFail::WrongType { expected } => {
                write!(f, "the next message was sent as another type than {expected} (it is still there)")
            }
            #[cfg(feature = "serde")]
            RecvFail::Decode(e) => write!(f, "cannot receive: {e}"),
            RecvFail::Io(e) => write!(f, "connection socket failed: {e}"),
        }
    }
}

impl std::error::Error for RecvFail {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "serde")]
            RecvFail::Decode(e) => Some(e),
            RecvFail::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RingError> for RecvFail {
    fn from(e: RingError) -> RecvFail {
        let RingError::Corrupt(w) = e;
        RecvFail::Corrupt(w)
    }
}

use crate::forms::error_forms;

error_forms! {
    /// Why a blocking send (`send`, `send_bytes`, `send_fd`, `send_object`) failed: nothing of
    /// the message was sent (a reader never sees part of one).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Pipe, SendError};
    ///
    /// let (mut a, b) = Pipe::duplex()?;
    /// drop(b);
    /// assert!(matches!(a.send_bytes(b"x"), Err(SendError::Disconnected)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug)]
    pub enum SendError;
    /// Why a `try_send*` did not send: no room now, or one of [`SendError`]'s reasons.
    #[derive(Debug)]
    pub enum TrySendError {
        /// The message does not fit in the ring now.
        Full => "the pipe is full", is_full
    }
    /// Why a `send*_timeout`/`send*_deadline` did not send: no room came in time, or one of
    /// [`SendError`]'s reasons.
    #[derive(Debug)]
    pub enum SendTimeoutError {
        /// No room came before the time ran out (a message already partly written is
        /// abandoned: the reader discards it).
        Timeout => "timed out waiting for room in the pipe", is_timeout
    }
    {
        /// The reading end is closed in every process, or they all died (Python's
        /// `BrokenPipeError`).
        Disconnected => ("the reading end of the pipe is closed");
        /// This handle was closed with [`Connection::close`](crate::Connection::close).
        Closed => ("the connection handle is closed");
        /// This end is read-only (the reader of [`Pipe::one_way`](crate::Pipe::one_way)).
        NotWritable => ("connection is read-only");
        /// The message is larger than the pipe's maximum message size.
        TooLarge {
            /// Message length.
            len: usize,
            /// The limit.
            max: usize,
        } [{ len, max }] => ("a message of {len} bytes exceeds the maximum {max}");
        /// `offset`/`size` do not describe a range of the buffer.
        BadRange {
            /// Requested offset.
            offset: usize,
            /// Requested size (`None`: to the end).
            size: Option<usize>,
            /// Buffer length.
            len: usize,
        } [{ offset, size, len }] => ("bad range offset {offset} size {size:?} for a buffer of {len} bytes");
        /// The shared ring broke its invariants (a corrupt or malicious peer).
        Corrupt(&'static str) [(w)] => ("corrupt pipe: {w}");
        /// `send_fd`/`send_object` on a pipe built without
        /// [`PipeBuilder::fd_passing`](crate::PipeBuilder::fd_passing).
        FdPassingDisabled => ("this pipe was built without fd_passing(true)");
        /// `send_object` of an object that cannot go to another process: a closed
        /// connection end, or a TCP connection end.
        NotShareable(&'static str) [(what)] => ("{what} cannot be sent to another process");
        /// The value could not be encoded; nothing was sent.
        #[cfg(feature = "serde")]
        Encode(CodecError) [(e)] => ("cannot encode the message: {e}"), source e;
        /// The OS failed: the descriptor could not be sent (`sendmsg`, e.g. `EBADF`), or the
        /// socket of a TCP connection failed other than by its peer closing.
        Os(std::io::Error) [(e)] => ("sending failed: {e}"), source e;
    }
}

error_forms! {
    /// Why a blocking receive (`recv`, `recv_bytes`, `recv_bytes_into`, `recv_fd`,
    /// `recv_object`) failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Pipe, RecvError};
    ///
    /// let (a, mut b) = Pipe::duplex()?;
    /// drop(a);
    /// assert!(matches!(b.recv_bytes(), Err(RecvError::Disconnected))); // Python's EOFError
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug)]
    pub enum RecvError;
    /// Why a `try_recv*` returned nothing: no message now, or one of [`RecvError`]'s reasons.
    #[derive(Debug)]
    pub enum TryRecvError {
        /// No message is pending now.
        Empty => "nothing to receive", is_empty
    }
    /// Why a `recv*_timeout`/`recv*_deadline` returned nothing: none came in time, or one of
    /// [`RecvError`]'s reasons.
    #[derive(Debug)]
    pub enum RecvTimeoutError {
        /// No message came before the time ran out.
        Timeout => "timed out waiting for a message", is_timeout
    }
    {
        /// The writing end is closed in every process (or died), and everything it sent was
        /// received (Python's `EOFError`).
        Disconnected => ("end of file: the writing end is closed");
        /// This handle was closed with [`Connection::close`](crate::Connection::close).
        Closed => ("the connection handle is closed");
        /// This end is write-only (the writer of [`Pipe::one_way`](crate::Pipe::one_way)).
        NotReadable => ("connection is write-only");
        /// The message is longer than the `maxlength` given (it was consumed and dropped).
        TooLong {
            /// Message length.
            len: usize,
            /// The limit.
            max: usize,
        } [{ len, max }] => ("bad message length: {len} > {max}");
        /// `recv_bytes_into`: the buffer is too short; the error carries the whole message.
        BufferTooShort(Vec<u8>) [(m)] => ("buffer too short for a message of {} bytes", m.len());
        /// The shared ring broke its invariants (a corrupt or malicious peer).
        Corrupt(&'static str) [(w)] => ("corrupt pipe: {w}");
        /// `recv_object` received a connection end that this process already holds (it was
        /// sent to its own process, or a peer's message points at one of this process's
        /// rings): a second handle to one end in one process is refused (the message was
        /// consumed; the end this process holds is untouched).
        AlreadyHeld => ("this process already holds that connection end");
        /// `recv_fd` found a data message next (it stays there; Python's `recv_handle` raises
        /// `RuntimeError` here).
        NotAnFd => ("the next message is data, not a file descriptor");
        /// A data receive found a descriptor next (it stays there for
        /// [`Connection::recv_fd`](crate::Connection::recv_fd)).
        FdPending => ("the next message is a file descriptor: use recv_fd");
        /// `recv_fd`/`recv_object` on a pipe built without
        /// [`PipeBuilder::fd_passing`](crate::PipeBuilder::fd_passing).
        FdPassingDisabled => ("this pipe was built without fd_passing(true)");
        /// The message was sent as another type than the one asked for (`send::<String>`, then
        /// `recv::<u64>`): it stays in the pipe, for `recv_bytes` or a `recv` of the right type.
        WrongType {
            /// The type asked for.
            expected: &'static str,
        } [{ expected }] => ("the next message was sent as another type than {expected} (it is still there)");
        /// The bytes are not a valid encoding of the requested type (the message was consumed).
        #[cfg(feature = "serde")]
        Decode(CodecError) [(e)] => ("cannot decode the message: {e}"), source e;
        /// The OS failed: the socket of a TCP connection (other than the peer closing), or the
        /// descriptor transfer.
        Os(std::io::Error) [(e)] => ("receiving failed: {e}"), source e;
    }
}

error_forms! {
    /// Why a blocking [`poll`](crate::Connection::poll) failed.
    #[derive(Debug)]
    pub enum PollError;
    /// Why [`try_poll`](crate::Connection::try_poll) found nothing to receive.
    #[derive(Debug)]
    pub enum TryPollError {
        /// Nothing to receive now (Python's `poll()` returning `False`).
        Empty => "nothing to receive", is_empty
    }
    /// Why a timed poll found nothing to receive.
    #[derive(Debug)]
    pub enum PollTimeoutError {
        /// Nothing came before the time ran out (Python's `poll(t)` returning `False`).
        Timeout => "timed out waiting for a message", is_timeout
    }
    {
        /// This handle was closed with [`Connection::close`](crate::Connection::close).
        Closed => ("the connection handle is closed");
        /// This end is write-only (the writer of [`Pipe::one_way`](crate::Pipe::one_way)).
        NotReadable => ("connection is write-only");
        /// The shared ring broke its invariants (a corrupt or malicious peer).
        Corrupt(&'static str) [(w)] => ("corrupt pipe: {w}");
        /// The socket of a TCP connection failed.
        Os(std::io::Error) [(e)] => ("polling failed: {e}"), source e;
    }
}

/// Converts an internal outcome into the public error of one form. `crossed` names outcomes
/// the form cannot have (read as inconsistent state, never a panic).
macro_rules! into_form {
    ($fail:ident => $name:ident -> $E:ident { $($(#[$m:meta])* $from:pat => $to:expr),* $(,)? }) => {
        impl $fail {
            // Out of line and cold: the `Ok` path of every public call is a tag check and a
            // move, not this match (inlined, it cost the 64 B send/recv pair about 10 %).
            #[cold]
            #[inline(never)]
            pub(crate) fn $name(self) -> $E {
                #[allow(unreachable_patterns)]
                match self {
                    $($(#[$m])* $from => $to,)*
                }
            }
        }
    };
}

/// Shared between the three forms of a send.
macro_rules! send_common {
    ($E:ident, $e:ident) => {
        into_form!(SendFail => $e -> $E {
            SendFail::Closed => $E::Disconnected,
            SendFail::HandleClosed => $E::Closed,
            SendFail::NotWritable => $E::NotWritable,
            SendFail::TooLarge { len, max } => $E::TooLarge { len, max },
            SendFail::Corrupt(w) => $E::Corrupt(w),
            SendFail::FdPassingDisabled => $E::FdPassingDisabled,
            SendFail::Fd(e) | SendFail::Io(e) => $E::Os(e),
            #[cfg(feature = "serde")]
            SendFail::Encode(e) => $E::Encode(e),
            SendFail::Full => send_other!($E, Full),
            SendFail::Timeout => send_other!($E, Timeout),
        });
    };
}

macro_rules! send_other {
    (SendError, $v:ident) => {
        SendError::Corrupt(CROSSED)
    };
    (TrySendError, Full) => {
        TrySendError::Full
    };
    (TrySendError, Timeout) => {
        TrySendError::Full
    };
    (SendTimeoutError, Full) => {
        SendTimeoutError::Timeout
    };
    (SendTimeoutError, Timeout) => {
        SendTimeoutError::Timeout
    };
}

send_common!(SendError, send);
send_common!(TrySendError, try_send);
send_common!(SendTimeoutError, send_timeout);

macro_rules! recv_common {
    ($E:ident, $e:ident) => {
        into_form!(RecvFail => $e -> $E {
            RecvFail::Eof => $E::Disconnected,
            RecvFail::HandleClosed => $E::Closed,
            RecvFail::NotReadable => $E::NotReadable,
            RecvFail::TooLong { len, max } => $E::TooLong { len, max },
            RecvFail::BufferTooShort(m) => $E::BufferTooShort(m),
            RecvFail::Corrupt(w) => $E::Corrupt(w),
            RecvFail::NotAnFd => $E::NotAnFd,
            RecvFail::FdPending => $E::FdPending,
            RecvFail::FdPassingDisabled => $E::FdPassingDisabled,
            RecvFail::WrongType { expected } => $E::WrongType { expected },
            #[cfg(feature = "serde")]
            RecvFail::Decode(e) => $E::Decode(e),
            RecvFail::Io(e) => $E::Os(e),
            RecvFail::Empty => recv_other!($E, Empty),
            RecvFail::Timeout => recv_other!($E, Timeout),
        });
    };
}

macro_rules! recv_other {
    (RecvError, $v:ident) => {
        RecvError::Corrupt(CROSSED)
    };
    (TryRecvError, $v:ident) => {
        TryRecvError::Empty
    };
    (RecvTimeoutError, $v:ident) => {
        RecvTimeoutError::Timeout
    };
}

recv_common!(RecvError, recv);
recv_common!(TryRecvError, try_recv);
recv_common!(RecvTimeoutError, recv_timeout);

macro_rules! poll_common {
    ($E:ident, $e:ident, $none:expr) => {
        into_form!(RecvFail => $e -> $E {
            RecvFail::HandleClosed => $E::Closed,
            RecvFail::NotReadable => $E::NotReadable,
            RecvFail::Corrupt(w) => $E::Corrupt(w),
            RecvFail::Io(e) => $E::Os(e),
            RecvFail::Empty | RecvFail::Timeout => $none,
            _ => $E::Corrupt(CROSSED),
        });
    };
}

poll_common!(PollError, poll, PollError::Corrupt(CROSSED));
poll_common!(TryPollError, try_poll, TryPollError::Empty);
poll_common!(PollTimeoutError, poll_timeout, PollTimeoutError::Timeout);

/// An outcome the form cannot have: read as inconsistent state.
const CROSSED: &str = "an outcome of another form (inconsistent state)";
