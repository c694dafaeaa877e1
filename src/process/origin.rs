//! Where a started child came from and how its end is learnt: [`Origin`] (our own child, or a
//! fork server's), the requester's side of a fork server ([`ForkServer`] as a handle:
//! its control socket and [`ForkServer::request`]), and what a launcher returns ([`Started`],
//! or [`Refused`] with the entry given back).
//!
//! # The fork server's protocol
//! Requests are bootstrap messages (`boot.rs`) on the server's control socket, each with a
//! fresh *status socket* as its first descriptor. The server forks; the child runs the entry
//! (`_exit`s, never returns into the server); the server sends `"MPPID"`, the pid and a pidfd
//! of the child over the status socket, and when the child ends (it polls the pidfds of its
//! children) `"MPEXIT"` and the wait status, then closes it (`server_main.rs`).
//!
//! # Deaths
//! * The creator (the process that started the server) dies or drops every handle: the
//!   control socket reaches end of file (once every copy is closed: processes forked from the
//!   creator hold copies too), and the server exits.
//! * The server dies: its children get SIGKILL (parent-death signal, set in each child right
//!   after the fork), a start fails with [`StartError::ForkServer`](crate::StartError::ForkServer),
//!   and `join` on a child whose status never came returns the same error (never a hang). The
//!   next start under `ForkServer` starts a new default server.

use super::report::Report;
use super::ProcFail;
use crate::shm::ShmRef;
use std::os::fd::OwnedFd;
#[cfg(feature = "serde")]
use {
    super::boot::{self, Boot, BOOT_TIMEOUT},
    super::lock::lock,
    super::ForkServerError,
    crate::sys::process::{self as sys, WaitStatus},
    crate::sys::spawn as sys_spawn,
    std::io::Read,
    std::os::fd::{AsFd, BorrowedFd},
    std::os::unix::net::UnixStream,
    std::sync::{Arc, Mutex},
};

/// The first word of the server's message naming a new child (then its pid, and its pidfd).
#[cfg(feature = "serde")]
pub(super) const PID: &[u8; 8] = b"MPPID\0\0\0";
/// The first word of the server's message reporting a child's end (then kind and value).
#[cfg(feature = "serde")]
pub(super) const EXIT: &[u8; 8] = b"MPEXIT\0\0";

/// Who can tell the child's exit status.
#[derive(Default)]
pub(super) enum Origin {
    /// Our own child: `waitpid`.
    #[default]
    Own,
    /// A fork server's child: the server reports its status.
    #[cfg(feature = "serde")]
    Server(ServerChild),
}

/// What a launcher started: the child, its pidfd, its report area, and who reports its end.
pub(super) struct Started {
    pub(super) pid: libc::pid_t,
    pub(super) pidfd: OwnedFd,
    pub(super) report: ShmRef<Report>,
    pub(super) origin: Origin,
}

/// Why a launcher started nothing, with the entry it was given when it can still run (no
/// child was made): the caller puts it back, and a later `start` may try again.
pub(super) struct Refused<E> {
    pub(super) error: ProcFail,
    pub(super) entry: Option<E>,
}

impl<E> Refused<E> {
    /// Refused before anything happened: the entry comes back.
    pub(super) fn before(error: ProcFail, entry: E) -> Refused<E> {
        Refused { error, entry: Some(entry) }
    }

    /// Refused after the entry was spent (a child was made, then killed).
    pub(super) fn spent(error: ProcFail) -> Refused<E> {
        Refused { error, entry: None }
    }

    /// The same refusal with the entry wrapped as `f` wraps it.
    pub(super) fn map_entry<F>(self, f: impl FnOnce(E) -> F) -> Refused<F> {
        Refused { error: self.error, entry: self.entry.map(f) }
    }
}

/// A running fork server: a fresh, single-threaded image of this program (spawned once) that
/// forks children on request, so that a multi-threaded parent gets fork's start cost without
/// fork's hazards ([`ForkServer::builder`] prepares the image once with `init`). Cheap to clone; the server exits when the last
/// handle of its creator is dropped.
///
/// # Examples
///
/// ```
/// use multiproc::{ForkServer, Process};
///
/// fn warm_up() {
///     // load a fuzz target, parse a corpus, … once, in the server
/// }
/// fn child(x: u32) -> i32 {
///     x as i32
/// }
///
/// let server = ForkServer::builder().init(warm_up).start()?;
/// let p = server.spawn(Process::builder(), child, 5)?;
/// assert_eq!(p.join()?.exitcode(), 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "serde")]
#[derive(Clone, Debug)]
pub struct ForkServer {
    pub(super) inner: Arc<ServerInner>,
}

/// The server's handle: dropped with its last [`ForkServer`] clone.
#[cfg(feature = "serde")]
#[derive(Debug)]
pub(super) struct ServerInner {
    pub(super) ctl: Mutex<UnixStream>,
    pub(super) pid: libc::pid_t,
    pub(super) pidfd: OwnedFd,
    /// `run_input`'s stations in the server, most recently used last (`exec_input.rs`).
    pub(super) stations: Mutex<Vec<super::station::StationEnd>>,
}

#[cfg(feature = "serde")]
impl Drop for ServerInner {
    fn drop(&mut self) {
        // Closing the control socket tells the server to exit; reap it.
        let _ = lock(&self.ctl).shutdown(std::net::Shutdown::Both);
        let _ = sys::waitpid_blocking(self.pid);
    }
}

#[cfg(feature = "serde")]
impl ForkServer {
    /// The server's pid.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::ForkServer::global()?.pid() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.inner.pid as u32
    }

    /// Whether the server still runs.
    ///
    /// # Examples
    ///
    /// See [`ForkServer::global`].
    pub fn is_alive(&self) -> bool {
        sys::poll_now(self.inner.pidfd.as_fd(), libc::POLLIN) == 0
    }

    /// Sends a child's bootstrap message; returns once the server forked it.
    pub(super) fn request(
        &self,
        boot: &Boot,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(libc::pid_t, OwnedFd, Origin), ProcFail> {
        let gone = |why: ForkServerError| ProcFail::ForkServer(why);
        let (mine, theirs) = sys_spawn::socketpair_stream().map_err(ProcFail::Os)?;
        let mut all: Vec<BorrowedFd<'_>> = vec![theirs.as_fd()];
        all.extend_from_slice(fds);
        {
            let ctl = lock(&self.inner.ctl);
            boot::send(&ctl, boot, &all).map_err(|_| gone(ForkServerError::Gone))?;
        }
        drop(all);
        drop(theirs);
        let sock = UnixStream::from(mine);
        let _ = sock.set_read_timeout(Some(BOOT_TIMEOUT));
        let mut tag = [0u8; 12];
        let (n, mut fds) = crate::sys::fdpass::recv_fds(sock.as_fd(), &mut tag, false)
            .map_err(|e| gone(ForkServerError::from_io(e)))?
            .ok_or_else(|| gone(ForkServerError::Timeout))?;
        if n < tag.len() {
            (&sock).read_exact(&mut tag[n..]).map_err(|_| gone(ForkServerError::Garbage))?;
        }
        if &tag[..8] != PID || fds.len() != 1 {
            return Err(gone(ForkServerError::Garbage));
        }
        let pid = i32::from_le_bytes(tag[8..].try_into().expect("4 bytes"));
        let _ = sock.set_read_timeout(None);
        sock.set_nonblocking(true).map_err(ProcFail::Os)?;
        let wait = Arc::new(sock.as_fd().try_clone_to_owned().map_err(ProcFail::Os)?);
        Ok((pid, fds.pop().expect("one"), Origin::Server(ServerChild { sock, wait, got: Vec::new() })))
    }
}

/// The requester's side of a fork server's child: where its exit status arrives.
#[cfg(feature = "serde")]
pub(super) struct ServerChild {
    sock: UnixStream,
    /// A copy of `sock`'s descriptor, to wait on without the process's state lock.
    wait: Arc<OwnedFd>,
    got: Vec<u8>,
}

#[cfg(feature = "serde")]
impl ServerChild {
    /// What `join` waits on: readable once the status (or the server's end of file) arrived.
    pub(super) fn wait_fd(&self) -> Arc<OwnedFd> {
        self.wait.clone()
    }

    /// The child's exit status once the server sent it; `None` while it has not. Waits up to
    /// `patience` for it (the caller saw the child end: the server reports right after it
    /// reaps).
    pub(super) fn try_status(&mut self, patience: std::time::Duration) -> Result<Option<WaitStatus>, ProcFail> {
        let mut buf = [0u8; 16];
        let deadline = crate::sys::clock::Deadline::after(patience);
        loop {
            match (&self.sock).read(&mut buf[..16 - self.got.len().min(16)]) {
                Ok(0) => return Err(ProcFail::ForkServer(ForkServerError::Gone)),
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if patience.is_zero() || deadline.is_none_or(|d| d.has_passed()) {
                        return Ok(None);
                    }
                    sys::poll_readable(self.sock.as_fd(), deadline).map_err(ProcFail::Os)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ProcFail::Os(e)),
            }
            if self.got.len() >= 16 {
                if &self.got[..8] != EXIT {
                    return Err(ProcFail::ForkServer(ForkServerError::Garbage));
                }
                let kind = i32::from_le_bytes(self.got[8..12].try_into().expect("4 bytes"));
                let value = i32::from_le_bytes(self.got[12..16].try_into().expect("4 bytes"));
                return Ok(Some(if kind == 0 { WaitStatus::Exited(value) } else { WaitStatus::Signaled(value) }));
            }
        }
    }
}
