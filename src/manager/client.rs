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
use std::fmt;
use std::sync::Mutex;

/// Why a manager call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ManagerError {
    /// The server is gone (shut down, killed, or the connection broke): every later call says
    /// the same at once.
    ServerGone,
    /// The server could not be reached or started.
    Connect(ConnError),
    /// Starting the server process failed.
    Start(ManagerStartError),
    /// A value could not be encoded or decoded.
    Codec(CodecError),
    /// No such item: a list index out of range, a missing key, an empty list or queue.
    NotFound,
    /// A timed call ran out.
    Timeout,
    /// A lock released by a client that does not hold it, or a bounded semaphore released
    /// above its bound (Python's `RuntimeError`/`ValueError`).
    NotHeld,
    /// The barrier is broken.
    Broken,
    /// A registered type's handler panicked (its message).
    Remote(String),
    /// The object does not support the operation, or does not exist in the server.
    Unsupported,
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::ServerGone => f.write_str("the manager's server is gone"),
            ManagerError::Connect(e) => write!(f, "cannot reach the manager: {e}"),
            ManagerError::Start(e) => write!(f, "cannot start the manager: {e}"),
            ManagerError::Codec(e) => write!(f, "manager value: {e}"),
            ManagerError::NotFound => f.write_str("no such item"),
            ManagerError::Timeout => f.write_str("timed out"),
            ManagerError::NotHeld => f.write_str("release of a lock not held (or a semaphore above its bound)"),
            ManagerError::Broken => f.write_str("the barrier is broken"),
            ManagerError::Remote(m) => write!(f, "the server failed: {m}"),
            ManagerError::Unsupported => f.write_str("the manager object does not support that"),
        }
    }
}

impl std::error::Error for ManagerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManagerError::Connect(e) => Some(e),
            ManagerError::Start(e) => Some(e),
            ManagerError::Codec(e) => Some(e),
            _ => None,
        }
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

impl From<Failure> for ManagerError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::NoSuchObject | Failure::WrongOp => ManagerError::Unsupported,
            Failure::NotFound => ManagerError::NotFound,
            Failure::Timeout => ManagerError::Timeout,
            Failure::NotHeld => ManagerError::NotHeld,
            Failure::Broken => ManagerError::Broken,
            Failure::Remote(m) => ManagerError::Remote(m),
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
    fn take(&self) -> Result<(Connection, bool), ManagerError> {
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
            ConnError::Refused(_) => ManagerError::ServerGone,
            e => ManagerError::Connect(e),
        })?;
        Ok((c, false))
    }

    fn give_back(&self, conn: Connection) {
        idle().push((std::process::id(), self.clone(), conn));
    }

    /// One call: the request out, the reply back.
    pub(crate) fn call(&self, req: &Request) -> Result<Reply, ManagerError> {
        let bytes = codec::encode(req)?;
        let (mut conn, reused) = self.take()?;
        if conn.send_bytes(&bytes).is_err() {
            if !reused {
                return Err(ManagerError::ServerGone);
            }
            // An idle connection to a server that has gone since (and perhaps been restarted
            // at the same address): nothing was sent, so try once with a new connection.
            idle().retain(|(_, r, _)| r != self);
            let (c, _) = self.take()?;
            conn = c;
            conn.send_bytes(&bytes).map_err(|_| ManagerError::ServerGone)?;
        }
        let reply = conn.recv_bytes().map_err(|_| ManagerError::ServerGone)?;
        self.give_back(conn);
        Ok(codec::decode::<Result<Reply, Failure>>(&reply)??)
    }
}
