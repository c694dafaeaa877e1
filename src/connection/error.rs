//! Why a listener could not bind or accept, or a client could not connect.

use crate::queue::PipeError;
use std::{fmt, io};

/// Why [`Listener::bind`](super::Listener::bind), [`Listener::accept`](super::Listener::accept)
/// or [`Client::connect`](super::Client::connect) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnError {
    /// The text is not an [`Address`](super::Address).
    BadAddress {
        /// The text given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A live listener already has this address (`EADDRINUSE`). A socket file left by a dead
    /// listener is not this: it is replaced.
    AddressInUse(String),
    /// Nobody listens at this address (`ECONNREFUSED`, or no such socket file).
    Refused(String),
    /// The other side's key differs, or only one side has a key (Python's
    /// `AuthenticationError`). No message was exchanged.
    Authentication(&'static str),
    /// The peer does not speak this protocol (or this version of it), or closed during the
    /// handshake.
    Protocol(&'static str),
    /// `accept_timeout`/`connect_timeout` ran out, or the handshake took too long.
    Timeout,
    /// The shared-memory rings of a same-host connection could not be made or received.
    Pipe(PipeError),
    /// Any other OS error.
    Io(io::Error),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::BadAddress { address, reason } => write!(f, "bad address {address:?}: {reason}"),
            ConnError::AddressInUse(a) => write!(f, "address {a} is in use by a live listener"),
            ConnError::Refused(a) => write!(f, "nobody listens at {a}"),
            ConnError::Authentication(w) => write!(f, "authentication failed: {w}"),
            ConnError::Protocol(w) => write!(f, "connection handshake failed: {w}"),
            ConnError::Timeout => write!(f, "timed out"),
            ConnError::Pipe(e) => write!(f, "cannot set up the connection's rings: {e}"),
            ConnError::Io(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl std::error::Error for ConnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnError::Pipe(e) => Some(e),
            ConnError::Io(e) => Some(e),
            _ => None,
        }
    }
}
