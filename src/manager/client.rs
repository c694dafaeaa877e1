//! The client side: how a proxy reaches the server, and [`ManagerError`].
//!
//! Each process keeps its own connections to each server (a `Connection` end belongs to one
//! process; a forked child must not use its parent's), opened on first use and reused; a call
//! takes an idle one (or opens one), so threads never wait on each other's calls. Local
//! servers are reached through a Unix address, so the connections run on shared-memory rings.

use super::protocol::{Failure, Reply, Request};
use crate::codec::{self, CodecError};
use crate::connection::{Address, Client, ConnError};
use crate::queue::Connection;
use crate::RemoteError;
use std::fmt;
use std::sync::Mutex;

crate::forms::error_forms! {
    /// Why a manager call failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{Manager, ManagerError};
    ///
    /// let m = Manager::start()?;
    /// let l = m.list::<u32>()?;
    /// assert!(matches!(l.get(3), Err(ManagerError::NotFound)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug)]
    pub enum ManagerError;
    /// Why the try form of a proxy's waiting call (`try_put`, `try_get`, `try_lock`,
    /// `try_acquire`, `try_wait`) did not proceed: not possible now, or one of
    /// [`ManagerError`]'s reasons.
    #[derive(Debug)]
    pub enum TryManagerError {
        /// Not possible now: the queue is full (a put) or empty (a get), the lock or permit is
        /// taken, the event is clear.
        WouldBlock => "not possible now", is_would_block
    }
    /// Why the timed form of a proxy's waiting call did not proceed: the time ran out, or one
    /// of [`ManagerError`]'s reasons.
    #[derive(Debug)]
    pub enum ManagerTimeoutError {
        /// The time ran out.
        Timeout => "timed out", is_timeout
    }
    {
        /// The server is gone (shut down, killed, or the connection broke): every later call
        /// says the same at once.
        ServerGone => ("the manager's server is gone");
        /// The server could not be reached.
        Connect(ConnError) [(e)] => ("cannot reach the manager: {e}"), source e;
        /// Starting the server failed.
        Start(ManagerStartError) [(e)] => ("cannot start the manager: {e}"), source e;
        /// A value could not be encoded or decoded.
        Codec(CodecError) [(e)] => ("manager value: {e}"), source e;
        /// No such item: a list index out of range, a missing key, an empty list.
        NotFound => ("no such item");
        /// A lock released by a client that does not hold it, or a bounded semaphore released
        /// above its bound (Python's `RuntimeError`/`ValueError`).
        NotHeld => ("release of a lock not held (or a semaphore above its bound)");
        /// The barrier is broken.
        Broken => ("the barrier is broken");
        /// The server failed to do what was asked: a registered type's handler panicked, the
        /// server's pool failed, a request it could not decode (its kind and message).
        Remote(RemoteError) [(e)] => ("the server failed: {e}"), source e;
        /// The object does not support the operation, or does not exist in the server.
        Unsupported => ("the manager object does not support that");
        /// A [`SharedMemoryManager`](crate::SharedMemoryManager) could not make a segment.
        Shm(crate::ShmError) [(e)] => ("cannot make the segment: {e}"), source e;
    }
}

/// Why [`Manager::start`](crate::Manager::start) could not start a server.
#[derive(Debug)]
#[non_exhaustive]
pub enum ManagerStartError {
    /// The server process could not be started.
    Process(crate::StartError),
    /// What the start needs beside the process (its ready event, its answer queue) could not
    /// be made.
    Setup(crate::ShmError),
    /// The random authentication key could not be drawn.
    Os(std::io::Error),
    /// The server ended before it listened; its status says why (an address in use, …).
    Exited(crate::ExitStatus),
    /// The server did not listen within the start limit (it was killed).
    Timeout,
}

impl fmt::Display for ManagerStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerStartError::Process(e) => write!(f, "the server process did not start: {e}"),
            ManagerStartError::Setup(e) => write!(f, "cannot set up the server's start: {e}"),
            ManagerStartError::Os(e) => write!(f, "cannot draw an authentication key: {e}"),
            ManagerStartError::Exited(s) => write!(f, "the server ended before it listened: {s}"),
            ManagerStartError::Timeout => f.write_str("the server did not start listening in time"),
        }
    }
}

impl std::error::Error for ManagerStartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManagerStartError::Process(e) => Some(e),
            ManagerStartError::Setup(e) => Some(e),
            ManagerStartError::Os(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CodecError> for ManagerError {
    fn from(e: CodecError) -> Self {
        ManagerError::Codec(e)
    }
}

impl From<CodecError> for ManagerTimeoutError {
    fn from(e: CodecError) -> Self {
        ManagerTimeoutError::Codec(e)
    }
}

/// A server's refusal, for a waiting call's timed form (the server answers every limit that
/// passed, `Some(0)` included, with `Timeout`).
impl From<Failure> for ManagerTimeoutError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::NoSuchObject | Failure::WrongOp => ManagerTimeoutError::Unsupported,
            Failure::NotFound => ManagerTimeoutError::NotFound,
            Failure::Timeout => ManagerTimeoutError::Timeout,
            Failure::NotHeld => ManagerTimeoutError::NotHeld,
            Failure::Broken => ManagerTimeoutError::Broken,
            Failure::Remote(e) => ManagerTimeoutError::Remote(e),
        }
    }
}

impl ManagerTimeoutError {
    /// As the error of a call without limit: a server that answers it with `Timeout` does
    /// not speak this protocol.
    pub(crate) fn untimed(self) -> ManagerError {
        self.failure().unwrap_or(ManagerError::Unsupported)
    }

    /// As the error of a try form: the limit that passed was "now".
    pub(crate) fn try_form(self) -> TryManagerError {
        match self.failure() {
            Some(e) => e.into(),
            None => TryManagerError::WouldBlock,
        }
    }
}

/// Where a server is and the key to it: what every proxy carries (plain data, so proxies can
/// be sent to spawned children as arguments).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Remote {
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
}

/// Idle connections of this process: (pid that opened it, the server and key, connection).
static IDLE: Mutex<Vec<(u32, Remote, Connection)>> = Mutex::new(Vec::new());

fn idle() -> std::sync::MutexGuard<'static, Vec<(u32, Remote, Connection)>> {
    IDLE.lock().unwrap_or_else(|p| p.into_inner())
}

impl Remote {
    /// A connection to the server: an idle one of this process (`true`), or a new one.
    fn take(&self) -> Result<(Connection, bool), ManagerTimeoutError> {
        let me = std::process::id();
        {
            let mut idle = idle();
            // Connections inherited through fork belong to the parent: forget them here.
            idle.retain(|(pid, _, _)| *pid == me);
            while let Some(i) = idle.iter().position(|(_, r, _)| r == self) {
                let conn = idle.swap_remove(i).2;
                // An idle connection has nothing to read: if it polls ready, its server closed
                // it (shut down, died): drop it.
                if conn.try_poll().is_err_and(|e| e.is_empty()) {
                    return Ok((conn, true));
                }
            }
        }
        let c = Client::connect(&self.address, Some(&self.authkey)).map_err(|e| match e {
            ConnError::Refused(_) => ManagerTimeoutError::ServerGone,
            e => ManagerTimeoutError::Connect(e),
        })?;
        Ok((c, false))
    }

    fn give_back(&self, conn: Connection) {
        idle().push((std::process::id(), self.clone(), conn));
    }

    /// One call that does not wait in the server: the request out, the reply back.
    pub(crate) fn call(&self, req: &Request) -> Result<Reply, ManagerError> {
        self.call_timed(req).map_err(ManagerTimeoutError::untimed)
    }

    /// One call whose operation may wait in the server (with the limit inside it): a limit
    /// that passed is `Timeout`.
    pub(crate) fn call_timed(&self, req: &Request) -> Result<Reply, ManagerTimeoutError> {
        let bytes = codec::encode(req)?;
        let (mut conn, reused) = self.take()?;
        if conn.send_bytes(&bytes).is_err() {
            if !reused {
                return Err(ManagerTimeoutError::ServerGone);
            }
            // An idle connection to a server that has gone since (and perhaps been restarted
            // at the same address): nothing was sent, so try once with a new connection.
            idle().retain(|(_, r, _)| r != self);
            let (c, _) = self.take()?;
            conn = c;
            conn.send_bytes(&bytes).map_err(|_| ManagerTimeoutError::ServerGone)?;
        }
        let reply = conn.recv_bytes().map_err(|_| ManagerTimeoutError::ServerGone)?;
        self.give_back(conn);
        Ok(codec::decode::<Result<Reply, Failure>>(&reply)??)
    }
}
