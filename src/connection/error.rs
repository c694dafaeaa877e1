//! Why a listener could not bind or accept, or a client could not connect: one enum per form
//! (`docs/API.md` §4), shared by `accept` and `connect`.

use super::Address;
use crate::forms::error_forms;
use crate::shm::ShmError;

error_forms! {
    /// Why [`Listener::bind`](crate::Listener::bind), a blocking
    /// [`Listener::accept`](crate::Listener::accept) or [`Client::connect`](crate::Client::connect)
    /// failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Address, Client, ConnError};
    ///
    /// let r = Client::connect(Address::unique(), None);
    /// assert!(matches!(r, Err(ConnError::Refused(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug)]
    pub enum ConnError;
    /// Why [`Listener::try_accept`](crate::Listener::try_accept) returned no connection: no
    /// client is waiting now, or one of [`ConnError`]'s reasons.
    #[derive(Debug)]
    pub enum TryConnError {
        /// No client is waiting to be accepted now.
        WouldBlock => "no client is waiting", is_would_block
    }
    /// Why `accept_timeout`/`accept_deadline` or `connect_timeout`/`connect_deadline` returned
    /// no connection: the time ran out, or one of [`ConnError`]'s reasons.
    #[derive(Debug)]
    pub enum ConnTimeoutError {
        /// The time ran out (waiting for a client, or for the handshake to finish).
        Timeout => "timed out", is_timeout
    }
    {
        /// The text is not an [`Address`].
        BadAddress {
            /// The text given.
            address: String,
            /// What is wrong with it.
            reason: &'static str,
        } [{ address, reason }] => ("bad address {address:?}: {reason}");
        /// A live listener already has this address (`EADDRINUSE`). A socket file left by a
        /// dead listener is not this: it is replaced.
        AddressInUse(Address) [(a)] => ("address {a} is in use (by a live listener, or by a file that is not a socket)");
        /// Nobody listens at this address (`ECONNREFUSED`, or no such socket file).
        Refused(Address) [(a)] => ("nobody listens at {a}");
        /// The other side's key differs, or only one side has a key (Python's
        /// `AuthenticationError`). No message was exchanged.
        Authentication(&'static str) [(w)] => ("authentication failed: {w}");
        /// The peer does not speak this protocol (or this version of it), or closed during the
        /// handshake.
        Protocol(&'static str) [(w)] => ("connection handshake failed: {w}");
        /// The peer did not finish the handshake within
        /// [`HANDSHAKE_TIMEOUT`](crate::HANDSHAKE_TIMEOUT) (a blocking `accept` or `connect`).
        HandshakeTimeout => ("the peer did not finish the handshake in time");
        /// The shared-memory rings of a same-host connection could not be made or received.
        Shm(ShmError) [(e)] => ("cannot set up the connection's rings: {e}"), source e;
        /// Any other OS error.
        Os(std::io::Error) [(e)] => ("connection failed: {e}"), source e;
    }
}

impl ConnTimeoutError {
    /// This error of a call whose limit was the handshake's own: `Timeout` is the peer's
    /// stall, [`ConnError::HandshakeTimeout`].
    pub(crate) fn handshake(self) -> ConnError {
        match self {
            ConnTimeoutError::Timeout => ConnError::HandshakeTimeout,
            ConnTimeoutError::BadAddress { address, reason } => ConnError::BadAddress { address, reason },
            ConnTimeoutError::AddressInUse(a) => ConnError::AddressInUse(a),
            ConnTimeoutError::Refused(a) => ConnError::Refused(a),
            ConnTimeoutError::Authentication(w) => ConnError::Authentication(w),
            ConnTimeoutError::Protocol(w) => ConnError::Protocol(w),
            ConnTimeoutError::HandshakeTimeout => ConnError::HandshakeTimeout,
            ConnTimeoutError::Shm(e) => ConnError::Shm(e),
            ConnTimeoutError::Os(e) => ConnError::Os(e),
        }
    }

    /// This error of a try form: an expired limit means nobody is waiting now.
    pub(crate) fn try_form(self) -> TryConnError {
        match self {
            ConnTimeoutError::Timeout => TryConnError::WouldBlock,
            e => TryConnError::from(e.handshake()),
        }
    }
}

impl From<crate::queue::ExportFail> for ConnError {
    fn from(e: crate::queue::ExportFail) -> ConnError {
        use crate::queue::ExportFail;
        match e {
            ExportFail::Shm(e) => ConnError::Shm(e),
            ExportFail::Os(e) => ConnError::Os(e),
            ExportFail::Closed | ExportFail::NotShared => ConnError::Protocol("the rings could not be handed over"),
            ExportFail::AlreadyHeld => ConnError::Protocol("the listener handed over rings this process already holds"),
        }
    }
}
