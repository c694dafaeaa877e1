//! A listener's pending handshakes, run side by side on non-blocking sockets (CONN-B3).
//!
//! `accept` takes every connection the kernel has queued, writes each its hello at once, and
//! then feeds each peer's bytes to its own handshake state machine (`auth::Serving`) as they
//! arrive, sleeping in one `poll` on the listening socket and every pending peer. A peer that
//! connects and says nothing, or trickles a byte a second, holds only its own slot: the
//! legitimate client behind it finishes its handshake as soon as its bytes arrive. At most
//! [`MAX_PENDING_HANDSHAKES`] wait at once (the oldest is dropped for a newcomer), and each
//! is dropped [`HANDSHAKE_TIMEOUT`] after it was accepted.
//!
//! One thread runs the handshakes at a time: the others wait in [`Acceptor::enter`] (with
//! their own time limits), so the pending list needs no lock while a thread polls.

use super::auth::Serving;
use super::auth::{HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES};
use super::stream::Stream;
use super::{Address, ConnError};
use crate::wait::Limit;
use std::io::Read;
use std::os::fd::AsFd;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Whether `e` says only that the peer hung up before finishing its handshake (closed,
/// reset, or gone before our hello was written): a port probe, or `Listener::bind`'s check
/// for a stale socket file, not a client that failed. `accept` drops those and goes on.
pub(super) fn hung_up(e: &ConnError) -> bool {
    match e {
        ConnError::Protocol(m) => *m == super::auth::PEER_CLOSED,
        ConnError::Os(e) => matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

/// One accepted connection whose handshake is under way.
#[derive(Debug)]
pub(super) struct Handshake {
    stream: Stream,
    serving: Serving,
    /// What the peer sent of the message `serving` wants next.
    got: Vec<u8>,
    since: Instant,
    pub(super) peer: Option<Address>,
}

/// Where a handshake stands after [`Handshake::advance`].
pub(super) enum Progress {
    /// Waiting for the peer.
    Waiting,
    /// Authenticated: the stream is ready to become a connection.
    Done,
    /// Over, and failed; the connection is dropped.
    Failed(ConnError),
}

impl Handshake {
    /// Starts the handshake on a freshly accepted stream: makes it non-blocking and sends the
    /// hello.
    pub(super) fn start(
        mut stream: Stream,
        peer: Option<Address>,
        key: Option<&[u8]>,
        flags: u8,
    ) -> Result<Handshake, ConnError> {
        stream.set_nonblocking(true)?;
        let (serving, hello) = Serving::start(key, flags)?;
        stream.write_now(&hello)?;
        Ok(Handshake { stream, serving, got: Vec::new(), since: Instant::now(), peer })
    }

    /// When this handshake runs out of time.
    pub(super) fn expires(&self) -> Instant {
        self.since + HANDSHAKE_TIMEOUT
    }

    /// Reads whatever the peer has sent, without blocking, and answers it.
    pub(super) fn advance(&mut self, key: Option<&[u8]>) -> Progress {
        let mut buf = [0u8; 64];
        loop {
            let want = self.serving.wants() - self.got.len();
            match self.stream.read(&mut buf[..want.min(64)]) {
                Ok(0) => return Progress::Failed(ConnError::Protocol(super::auth::PEER_CLOSED)),
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Progress::Waiting,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Progress::Failed(ConnError::Os(e)),
            }
            if self.got.len() < self.serving.wants() {
                continue;
            }
            let reply = self.serving.feed(key, &self.got);
            self.got.clear();
            let sent = self.stream.write_now(&reply.send);
            match reply.done {
                Some(Ok(())) => return Progress::Done,
                // A failure's last word is best effort: the peer may have gone.
                Some(Err(e)) => return Progress::Failed(e),
                None => {
                    if let Err(e) = sent {
                        return Progress::Failed(e);
                    }
                }
            }
        }
    }

    /// The stream of a finished handshake, blocking again.
    pub(super) fn into_stream(self) -> Result<Stream, ConnError> {
        let mut s = self.stream;
        s.prepare()?;
        Ok(s)
    }

    pub(super) fn stream(&self) -> &Stream {
        &self.stream
    }
}

/// The pending handshakes of one listener, and which thread runs them now.
#[derive(Debug, Default)]
pub(super) struct Acceptor {
    state: Mutex<State>,
    free: Condvar,
}

#[derive(Debug, Default)]
struct State {
    busy: bool,
    pending: Vec<Handshake>,
}

/// The calling thread's turn at running the handshakes: owns the pending list until dropped.
pub(super) struct Turn<'a> {
    acceptor: &'a Acceptor,
    pub(super) pending: Vec<Handshake>,
}

impl Acceptor {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits (until `limit`) for the turn at running the handshakes; `None` if the limit passed
    /// while another thread had it.
    pub(super) fn enter(&self, limit: Limit) -> Option<Turn<'_>> {
        let mut st = self.lock();
        while st.busy {
            if limit.passed() {
                return None;
            }
            st = match limit.deadline_opt() {
                None => self.free.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => self.free.wait_timeout(st, d.remaining()).unwrap_or_else(|p| p.into_inner()).0,
            };
        }
        st.busy = true;
        Some(Turn { acceptor: self, pending: std::mem::take(&mut st.pending) })
    }
}

impl Turn<'_> {
    /// Adds a newly started handshake, dropping the oldest beyond the bound.
    pub(super) fn push(&mut self, h: Handshake) {
        if self.pending.len() >= MAX_PENDING_HANDSHAKES {
            self.pending.remove(0);
        }
        self.pending.push(h);
    }

    /// Advances every pending handshake once. Returns the first that finished (the others
    /// stay, for this call or the next), or else the first failure of this pass (a handshake
    /// that failed or ran out of time is dropped either way), or `None`.
    pub(super) fn advance(&mut self, key: Option<&[u8]>) -> Option<Result<Handshake, ConnError>> {
        let now = Instant::now();
        let mut failure = None;
        let mut i = 0;
        while i < self.pending.len() {
            let progress = if self.pending[i].expires() <= now {
                Progress::Failed(ConnError::HandshakeTimeout)
            } else {
                self.pending[i].advance(key)
            };
            match progress {
                Progress::Waiting => i += 1,
                Progress::Done => return Some(Ok(self.pending.remove(i))),
                Progress::Failed(e) => {
                    self.pending.remove(i);
                    failure.get_or_insert(e);
                }
            }
        }
        failure.map(Err)
    }

    /// The earliest time a pending handshake runs out.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.pending.iter().map(Handshake::expires).min()
    }

    /// The pending peers' descriptors, for `poll`.
    pub(super) fn fds(&self) -> impl Iterator<Item = std::os::fd::BorrowedFd<'_>> {
        self.pending.iter().map(|h| h.stream().as_fd())
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut st = self.acceptor.lock();
        st.pending = std::mem::take(&mut self.pending);
        st.busy = false;
        drop(st);
        self.acceptor.free.notify_one();
    }
}
