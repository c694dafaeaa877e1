//! The requester's end of a `run_input` station, and what an input's run can come to
//! ([`ExecOutcome`], [`RunInputError`]). The station's protocol is in `server_exec.rs`; setting
//! one up is `exec_input.rs`.

use super::boot::BOOT_TIMEOUT;
use super::call::InputToken;
use super::server_exec::{EXITED, SIGNALED, TIMED_OUT};
use super::{ForkServerError, JoinTimeoutError, StartError};
use crate::sys::process as sys;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// How long [`ForkServer::run_input`](crate::ForkServer::run_input) polls for the answer before
/// it sleeps. One input is a chain of wake-ups (server, child, server, requester) with nothing
/// to overlap; sleeping at the end of it costs a CPU's wake-up from idle, tens of µs on a
/// virtual machine, on every input. A run that takes longer than this (a slow target, a
/// time-out) is slept for.
const SPIN: Duration = Duration::from_millis(1);

/// How one input's child ended ([`ForkServer::run_input`](crate::ForkServer::run_input)).
///
/// # Examples
///
/// ```
/// use multiproc::ExecOutcome;
/// let crashed = ExecOutcome::Signaled(libc::SIGSEGV);
/// assert_ne!(crashed, ExecOutcome::Exited(0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOutcome {
    /// It exited with this code (0: the target returned normally).
    Exited(i32),
    /// A signal ended it (a crash: SIGSEGV, SIGABRT, …).
    Signaled(i32),
    /// It ran past the time limit and was killed with its process group.
    TimedOut,
}

/// Why [`ForkServer::run_input`](crate::ForkServer::run_input) has no outcome.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunInputError {
    /// The child could not be started (the fork server is gone, …).
    Start(StartError),
    /// Waiting for the child failed (its status was lost, …); never a time-out.
    Wait(JoinTimeoutError),
}

impl fmt::Display for RunInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunInputError::Start(e) => write!(f, "could not start the input's child: {e}"),
            RunInputError::Wait(e) => write!(f, "could not wait for the input's child: {e}"),
        }
    }
}

impl std::error::Error for RunInputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunInputError::Start(e) => Some(e),
            RunInputError::Wait(e) => Some(e),
        }
    }
}

/// The requester's end of a station: one input per request (the protocol is in
/// `server_exec.rs`).
#[derive(Debug)]
pub(super) struct StationEnd {
    /// The process that set it up (a forked copy must not use it).
    pub(super) owner: libc::pid_t,
    pub(super) area: u64,
    pub(super) token: InputToken,
    pub(super) chan: UnixStream,
}

impl StationEnd {
    /// Runs the area's current input once; the server enforces `limit`. A failure to ask is
    /// `Start`, a failure to hear the answer `Wait` (the server died with the child running).
    pub(super) fn run(&self, limit: Duration) -> Result<ExecOutcome, RunInputError> {
        let ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        let gone = ForkServerError::from_io;
        crate::sys::fdpass::send_all(self.chan.as_fd(), &ns.to_le_bytes())
            .map_err(|e| RunInputError::Start(StartError::ForkServer(gone(e))))?;
        let wait = |e| RunInputError::Wait(JoinTimeoutError::ForkServer(e));
        // The child's pid (its process group), then the answer (`server_exec.rs`).
        let mut m = [0u8; 12];
        let mut got = 0;
        // The server died with the child running: the child died with it (its parent-death
        // signal), but what the input started lives on in its group. Killed here. The group id
        // cannot name another group while any process of this one lives (the kernel keeps the
        // id in use); once it is empty the kill finds nobody, unless in that instant the pid
        // space wrapped round to a new group leader with this id.
        let orphaned = |got: usize, m: &[u8; 12], e| {
            if got >= 4 {
                let pid = i32::from_le_bytes(m[..4].try_into().expect("4 bytes"));
                if pid > 1 {
                    let _ = sys::killpg(pid, libc::SIGKILL);
                }
            }
            wait(e)
        };
        let spin_until = std::time::Instant::now() + SPIN;
        // The server answers at the limit at the latest; past that and a start's patience, it
        // is stuck.
        let patience = crate::sys::clock::Deadline::after(limit.saturating_add(BOOT_TIMEOUT));
        while got < m.len() {
            match (&self.chan).read(&mut m[got..]) {
                Ok(0) => return Err(orphaned(got, &m, ForkServerError::Gone)),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() < spin_until {
                        std::hint::spin_loop();
                    } else if !sys::poll_readable(self.chan.as_fd(), patience)
                        .map_err(|e| wait(ForkServerError::Os(e)))?
                    {
                        return Err(wait(ForkServerError::Timeout));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(orphaned(got, &m, gone(e))),
            }
        }
        let kind = i32::from_le_bytes(m[4..8].try_into().expect("4 bytes"));
        let value = i32::from_le_bytes(m[8..].try_into().expect("4 bytes"));
        match kind {
            EXITED => Ok(ExecOutcome::Exited(value)),
            SIGNALED => Ok(ExecOutcome::Signaled(value)),
            TIMED_OUT => Ok(ExecOutcome::TimedOut),
            _ => Err(wait(ForkServerError::Garbage)),
        }
    }
}
