//! The fork server's side of [`ForkServer::run_input`](crate::ForkServer::run_input): one
//! *station* per (target, input area) a requester runs inputs with.
//!
//! A station is set up once, by a bootstrap message with the role [`Role::Exec`] on the control
//! socket: its `target` is the target's [`InputToken`], its arguments the
//! [`FuzzInput`](crate::FuzzInput) (the area's descriptor rides with them), and its first
//! descriptor is the station's own socket. The server decodes the input, mapping the area, once;
//! each child inherits the mapping and is handed the decoded value, then answers one byte on the
//! station's socket: the station is set up. (The requester waits for that byte: without it, a
//! station asked of a server already dying, whose control socket is the last descriptor it
//! closes, would look set up, and the run would fail as if an input had been under way.) After
//! that, one input costs one small message each way, the fork, and the wait:
//!
//! ```text
//! ← [1]                                    once: the station is set up
//! → [limit: u64 LE, nanoseconds]          run the target once, on the area's current input
//! ← [pid: i32 LE]                          the child is forked and leads its process group
//! ← [kind: i32 LE][value: i32 LE]         0: exited with `value`; 1: killed by signal `value`;
//!                                          2: past the limit (killed with its process group)
//! ```
//!
//! The server enforces the limit itself (its `poll` sleeps until the nearest deadline), so the
//! requester only waits for the answer. The pid is for the one case the server cannot handle:
//! its own death during a run. The child dies with it (its parent-death signal), but what the
//! input started would live on in the child's group; the requester, finding the station closed
//! with a run under way, kills that group. One run at a time per station; a request while one runs,
//! or bytes that are not a request, end the station (the requester sees end of file).
//!
//! Before reaping an ended child the server kills its process group, so nothing the input
//! started outlives it; the zombie holds the pid, so the group id cannot be a reused pid's.

use super::boot::{Boot, Role};
use super::call::{CallKey, InputToken};
use super::input::FuzzInput;
use crate::sys::process::{self as sys, WaitStatus};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// How long the server looks for a station's next request without sleeping after an answer.
pub(super) const LINGER: Duration = Duration::from_micros(100);

/// The byte a station's socket answers once the station is set up.
pub(super) const STATION_READY: u8 = 1;

/// How a run ended, as the answer says it (`station.rs` reads it).
pub(super) const EXITED: i32 = 0;
pub(super) const SIGNALED: i32 = 1;
pub(super) const TIMED_OUT: i32 = 2;

/// One station: the target, its encoded input handle, and the run under way.
pub(super) struct Station {
    chan: UnixStream,
    token: InputToken,
    key: CallKey,
    /// Taken by each child (its copy of this memory); the server's stays.
    input: Option<FuzzInput>,
    run: Option<Run>,
}

/// A child running one input.
struct Run {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    /// `None`: no limit (one too far away to be an instant).
    deadline: Option<Instant>,
    timed_out: bool,
}

impl Station {
    /// The station a [`Role::Exec`] message sets up; `None` if it is not one (dropping its
    /// socket tells the requester).
    pub(super) fn new(boot: Boot, fds: Vec<OwnedFd>) -> Option<Station> {
        let mut fds = fds.into_iter();
        let chan = UnixStream::from(fds.next()?);
        if boot.role != Role::Exec {
            return None;
        }
        let input: FuzzInput = crate::queue::decode_with_handles(&boot.args, fds.collect()).ok()?;
        // A request is 8 bytes written at once: a reader that finds fewer waits briefly, never
        // long (the server is single-threaded; every other station waits meanwhile).
        let _ = chan.set_read_timeout(Some(Duration::from_millis(100)));
        // Made here, once, so that a child's flush at its end finds them and allocates nothing.
        let _ = (std::io::stdout(), std::io::stderr());
        let token = boot.target?;
        // The station is set up: say so (one byte into an empty socket never blocks).
        crate::sys::fdpass::send_all(chan.as_fd(), &[STATION_READY]).ok()?;
        Some(Station { chan, token, key: boot.key, input: Some(input), run: None })
    }

    /// The station's socket (readable: a request, or its end).
    pub(super) fn chan(&self) -> BorrowedFd<'_> {
        self.chan.as_fd()
    }

    /// The running child's pidfd (readable: it ended).
    pub(super) fn running(&self) -> Option<BorrowedFd<'_>> {
        self.run.as_ref().map(|r| r.pidfd.as_fd())
    }

    /// The running child's deadline.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.run.as_ref().filter(|r| !r.timed_out).and_then(|r| r.deadline)
    }

    /// Kills the run's group if its deadline has passed.
    pub(super) fn check_deadline(&mut self, now: Instant) {
        if let Some(r) = self.run.as_mut().filter(|r| !r.timed_out && r.deadline.is_some_and(|d| d <= now)) {
            r.timed_out = true;
            let _ = sys::killpg(r.pid, libc::SIGKILL);
            let _ = sys::kill(r.pid, libc::SIGKILL); // in case it had not made its group yet
        }
    }

    /// The running child ended: kill what it left in its group, reap it, answer. False: the
    /// station is over (its requester is gone).
    pub(super) fn ended(&mut self) -> bool {
        let Some(r) = self.run.take() else { return true };
        let _ = sys::killpg(r.pid, libc::SIGKILL);
        let (kind, value) = match sys::waitpid_blocking(r.pid) {
            Ok(_) if r.timed_out => (TIMED_OUT, libc::SIGKILL),
            Ok(WaitStatus::Exited(c)) => (EXITED, c),
            Ok(WaitStatus::Signaled(s)) => (SIGNALED, s),
            Err(_) => return false, // its status is lost: end the station (the requester sees EOF)
        };
        let mut m = [0u8; 8];
        m[..4].copy_from_slice(&kind.to_le_bytes());
        m[4..].copy_from_slice(&value.to_le_bytes());
        crate::sys::fdpass::send_all(self.chan.as_fd(), &m).is_ok()
    }

    /// Takes a request and forks its child. False: the station is over (end of file, a
    /// request while a run is under way, a failed fork). `close` are the server's descriptors
    /// a child must not keep (its control socket, every station's socket).
    pub(super) fn request(&mut self, close: &[RawFd]) -> bool {
        let mut m = [0u8; 8];
        if self.run.is_some() || (&self.chan).read_exact(&mut m).is_err() {
            return false;
        }
        let limit = Duration::from_nanos(u64::from_le_bytes(m));
        let server = sys::getpid();
        // SAFETY: the server is single-threaded (it runs nothing but its loop), so the child may
        // do anything; it leaves through `_exit` (`run_here`).
        #[allow(unsafe_code)]
        let forked = unsafe { sys::fork() };
        match forked {
            Err(_) => false,
            Ok(sys::Fork::Child) => self.run_here(server, close),
            Ok(sys::Fork::Parent(pid)) => {
                // Also here, so a kill at the deadline finds the group whichever side ran first.
                let _ = sys::setpgid(pid, pid);
                let Ok(pidfd) = sys::pidfd_open(pid) else {
                    let _ = sys::kill(pid, libc::SIGKILL);
                    let _ = sys::waitpid_blocking(pid);
                    return false;
                };
                let deadline = Instant::now().checked_add(limit);
                self.run = Some(Run { pid, pidfd, deadline, timed_out: false });
                // The group to kill should this server die during the run (module docs). A
                // requester that is gone is noticed at the answer.
                let _ = crate::sys::fdpass::send_all(self.chan.as_fd(), &pid.to_le_bytes());
                true
            }
        }
    }

    /// The child: its own group, death with the server, the target on the input; `_exit`.
    fn run_here(&mut self, server: libc::pid_t, close: &[RawFd]) -> ! {
        let _ = sys::set_parent_death_signal(libc::SIGKILL);
        if sys::getppid() != server {
            sys::exit_now(1);
        }
        let _ = sys::setpgid(0, 0);
        for &fd in close {
            // SAFETY: these are the server's sockets; this child never uses them again (it
            // leaves through `_exit` below, and their owners are never dropped here).
            #[allow(unsafe_code)]
            unsafe {
                sys::close_inherited(fd)
            };
        }
        let Some(input) = self.input.take() else { sys::exit_now(1) };
        let (token, key) = (self.token, self.key);
        let code = match panic::catch_unwind(AssertUnwindSafe(|| token.run(&key, input))) {
            Ok(Ok((code, _))) => code,
            Ok(Err(_)) => 1, // a token that does not authenticate: nothing was called
            Err(payload) => {
                std::mem::forget(payload); // dropping it can panic again; we are leaving
                1
            }
        };
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        sys::exit_now(code)
    }

    /// Ends the station: a run under way is killed with its group and reaped.
    pub(super) fn close(mut self) {
        if let Some(r) = self.run.take() {
            let _ = sys::killpg(r.pid, libc::SIGKILL);
            let _ = sys::kill(r.pid, libc::SIGKILL);
            let _ = sys::waitpid_blocking(r.pid);
        }
    }

    /// The raw descriptor of its socket (closed in every child the server forks).
    pub(super) fn raw(&self) -> RawFd {
        self.chan.as_raw_fd()
    }
}

/// How long the server may sleep before the nearest deadline (−1: none).
pub(super) fn poll_timeout(stations: &[Station], now: Instant) -> i32 {
    stations.iter().filter_map(Station::deadline).min().map_or(-1, |d| {
        let ms = d.saturating_duration_since(now).as_nanos().div_ceil(1_000_000);
        i32::try_from(ms).unwrap_or(i32::MAX)
    })
}
