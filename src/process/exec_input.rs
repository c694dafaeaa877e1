//! One fresh child per input, forked by a fork server: AFL's fork-server mode for a target that
//! must start each input from a clean copy of a prepared image ([`ForkServer::run_input`](crate::ForkServer::run_input)).
//! The input travels through shared memory ([`InputArea`]), not as an encoded argument: the
//! parent writes it, the child reads it ([`FuzzInput::bytes`]).

use super::boot::{self, Boot, Role};
use super::call::InputToken;
use super::entry::key;
use super::input::{FuzzInput, InputArea};
use super::lock::lock;
use super::station::{ExecOutcome, RunInputError, StationEnd};
use super::{ChildOutcome, ForkServer, ForkServerError, ProcFail};
use crate::sys::{process as sys, spawn as sys_spawn};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Stations a [`ForkServer`] handle keeps for later inputs (the least recently used goes).
const STATIONS: usize = 8;

impl ForkServer {
    /// Runs `target` on the input in `area` in a fresh child forked from this server (a copy of
    /// the image its `init` prepared), waits for it up to `limit`, and says how it ended: one
    /// call per input, as AFL's fork-server mode. The child leads its own process group; past
    /// the limit it is killed with the group (by the server, which sleeps until the deadline),
    /// and whatever the input left in its group when it ended is killed too. Set the input
    /// with [`InputArea::set`] first.
    ///
    /// The first input of a (`target`, `area`) pair sets up a *station* in the server; every
    /// later one costs a message of 8 bytes each way, the fork and the wait. The answer is
    /// polled for up to 1 ms before this thread sleeps (an input is a chain of wake-ups with
    /// nothing to overlap, and a CPU's wake-up from idle would be paid on each). A handle keeps
    /// the stations of its last 8 pairs; a forked copy of this process sets up its own.
    ///
    /// # Errors
    /// [`RunInputError`] if the child could not be started or waited for.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::{ExecOutcome, ForkServer, FuzzInput, InputArea};
    /// use std::time::Duration;
    ///
    /// fn target(input: FuzzInput) -> i32 {
    ///     let b = input.bytes();
    ///     if b.starts_with(b"crash") {
    ///         std::process::abort();
    ///     }
    ///     b.len() as i32
    /// }
    ///
    /// let server = ForkServer::builder().start()?;
    /// let area = InputArea::new(1024)?;
    /// for (input, want) in [(&b"abc"[..], ExecOutcome::Exited(3)), (b"crash!", ExecOutcome::Signaled(libc::SIGABRT))] {
    ///     area.set(input)?;
    ///     assert_eq!(server.run_input(target, &area, Duration::from_secs(10))?, want);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_input<R: ChildOutcome>(
        &self,
        target: fn(FuzzInput) -> R,
        area: &InputArea,
        limit: Duration,
    ) -> Result<ExecOutcome, RunInputError> {
        let token = InputToken::new(key(), target);
        let me = sys::getpid();
        let found = {
            let mut all = lock(&self.inner.stations);
            // A forked copy of the creator holds copies of its stations: never share them.
            all.retain(|s| s.owner == me);
            all.iter().position(|s| s.area == area.id && s.token == token).map(|i| all.remove(i))
        };
        let station = match found {
            Some(s) => s,
            None => self.open_station(token, area).map_err(|e| RunInputError::Start(e.start()))?,
        };
        let outcome = station.run(limit)?;
        let mut all = lock(&self.inner.stations);
        if all.len() >= STATIONS {
            all.remove(0);
        }
        all.push(station);
        Ok(outcome)
    }

    /// Sets up a station in the server for `target` on `area` (`server_exec.rs`).
    fn open_station(&self, token: InputToken, area: &InputArea) -> Result<StationEnd, ProcFail> {
        let (args, handles) =
            crate::queue::encode_with_handles(&FuzzInput { shm: area.shm.clone() }).map_err(ProcFail::Encode)?;
        let (mine, theirs) = sys_spawn::socketpair_stream().map_err(ProcFail::Os)?;
        let boot = Boot {
            version: boot::VERSION,
            role: Role::Exec,
            exe: None,
            key: *key(),
            entry: None,
            target: Some(token),
            args,
            report_off: 0,
            name: "run_input".into(),
            identity: Vec::new(),
            parent: (sys::getpid(), String::new()),
            daemon: false,
            group: true,
        };
        let mut fds: Vec<BorrowedFd<'_>> = vec![theirs.as_fd()];
        fds.extend(handles.iter().map(|f| f.as_fd()));
        boot::send(&lock(&self.inner.ctl), &boot, &fds).map_err(|_| ProcFail::ForkServer(ForkServerError::Gone))?;
        #[cfg(feature = "test-hooks")]
        hooks::before_drop(self.inner.pid);
        // The server holds the station's other end now (in flight or taken): its end of file
        // comes when the server drops the station or dies, taken or not, unless another thread
        // forked meanwhile (the child holds a copy of `theirs` until it execs or exits). So
        // the wait below watches the server's own end too.
        drop(fds);
        drop(theirs);
        let chan = UnixStream::from(mine);
        // Set up only once the server says so: a server that dies first (its control socket is
        // the last descriptor it closes, so the send above may still have gone through) makes
        // this call fail to start, not the run after it.
        wait_for_ready(&chan, self.inner.pidfd.as_fd())?;
        // Readable (or at end of file): this read does not wait.
        let mut ready = [0u8; 1];
        (&chan).read_exact(&mut ready).map_err(|e| ProcFail::ForkServer(ForkServerError::from_io(e)))?;
        if ready[0] != super::server_exec::STATION_READY {
            return Err(ProcFail::ForkServer(ForkServerError::Garbage));
        }
        chan.set_nonblocking(true).map_err(ProcFail::Os)?;
        Ok(StationEnd { owner: sys::getpid(), area: area.id, token, chan })
    }
}

/// Waits until the server's answer on a new station's socket can be read (or its end of file),
/// for at most the boot timeout; fails with `Gone` once the server (`server`, its pidfd) has
/// ended without answering.
fn wait_for_ready(chan: &UnixStream, server: BorrowedFd<'_>) -> Result<(), ProcFail> {
    let deadline = crate::sys::clock::Deadline::after(boot::BOOT_TIMEOUT);
    let fds = [chan.as_fd(), server];
    let mut revents = Vec::with_capacity(2);
    loop {
        let ms = deadline.map_or(-1, |d| i32::try_from(d.remaining().as_millis()).unwrap_or(i32::MAX).max(1));
        sys::poll_many(&fds, libc::POLLIN, ms, &mut revents).map_err(ProcFail::Os)?;
        match revents[..] {
            // The answer (or the socket's end of file, which the read then reports) first:
            // a server that answered and then died still set the station up.
            [answer, _] if answer != 0 => return Ok(()),
            [_, ended] if ended != 0 => return Err(ProcFail::ForkServer(ForkServerError::Gone)),
            _ if deadline.is_some_and(|d| d.has_passed()) => {
                return Err(ProcFail::ForkServer(ForkServerError::Timeout))
            }
            _ => {}
        }
    }
}

/// A test hook: code to run between sending a station's request and letting go of the
/// station's other end (a fork in another thread, a server that dies there).
#[cfg(feature = "test-hooks")]
pub(crate) mod hooks {
    use std::sync::Mutex;

    static BEFORE_DROP: Mutex<Option<fn(libc::pid_t)>> = Mutex::new(None);

    /// Sets (or clears) the hook; it is given the server's pid.
    pub(crate) fn set(f: Option<fn(libc::pid_t)>) {
        *BEFORE_DROP.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }

    pub(super) fn before_drop(server: libc::pid_t) {
        let f = *BEFORE_DROP.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = f {
            f(server);
        }
    }
}
