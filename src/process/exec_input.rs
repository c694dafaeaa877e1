//! One fresh child per input, forked by a fork server: AFL's fork-server mode for a target that
//! must start each input from a clean copy of a prepared image ([`ForkServer::run_input`]).
//! The input travels through shared memory ([`InputArea`]), not as an encoded argument: the
//! parent writes it, the child reads it ([`FuzzInput::bytes`]).

use super::boot::{self, Boot, Role, BOOT_TIMEOUT};
use super::call::InputToken;
use super::entry::key;
use super::lock::lock;
use super::{ChildOutcome, ForkServer, ForkServerError, JoinTimeoutError, ProcFail, StartError};
use crate::shm::{SharedMemory, ShmError};
use crate::sys::{process as sys, spawn as sys_spawn};
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Stations a [`ForkServer`] handle keeps for later inputs (the least recently used goes).
const STATIONS: usize = 8;
/// How long [`ForkServer::run_input`] polls for the answer before it sleeps. One input is a
/// chain of wake-ups (server, child, server, requester) with nothing to overlap; sleeping at
/// the end of it costs a CPU's wake-up from idle, tens of µs on a virtual machine, on every
/// input. A run that takes longer than this (a slow target, a time-out) is slept for.
const SPIN: Duration = Duration::from_millis(1);

/// Bytes before the input in the area: its length (`u64`, little-endian).
const LEN: usize = 8;

/// Where [`ForkServer::run_input`] puts each input: shared memory of a fixed capacity, written
/// by the parent before each child starts and read by that child.
///
/// # Examples
///
/// ```
/// let area = multiproc::InputArea::new(1 << 16)?;
/// assert_eq!(area.capacity(), 1 << 16);
/// area.set(b"an input")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct InputArea {
    shm: SharedMemory,
    /// Unique in this process: names the area's stations (`ServerInner::stations`).
    id: u64,
}

impl InputArea {
    /// An area for inputs of up to `capacity` bytes.
    ///
    /// # Errors
    /// [`ShmError`] if the memory cannot be made.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiproc::InputArea::new(4096).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(capacity: usize) -> Result<InputArea, ShmError> {
        // A process-wide counter, not part of any shared-memory algorithm (so not loom's type).
        #[allow(clippy::disallowed_types)]
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let shm = SharedMemory::anonymous(capacity.saturating_add(LEN))?;
        Ok(InputArea { shm, id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) })
    }

    /// The largest input the area holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiproc::InputArea::new(100)?.capacity(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.shm.len() - LEN
    }

    /// Makes `input` the input of the next child (no child may be running from this area).
    ///
    /// # Errors
    /// [`ShmError::InvalidArgument`] if `input` is longer than [`capacity`](Self::capacity)
    /// (the area keeps its previous input).
    ///
    /// # Examples
    ///
    /// ```
    /// let area = multiproc::InputArea::new(4)?;
    /// assert!(area.set(b"four").is_ok());
    /// assert!(area.set(b"five!").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, input: &[u8]) -> Result<(), ShmError> {
        if input.len() > self.capacity() {
            return Err(ShmError::InvalidArgument { what: "input longer than the area", value: input.len() as u64 });
        }
        self.shm.write_at(LEN, input)?;
        self.shm.write_at(0, &(input.len() as u64).to_le_bytes())
    }
}

/// The input of a child started by [`ForkServer::run_input`]: the argument of its target.
///
/// # Examples
///
/// ```
/// fn target(input: multiproc::FuzzInput) -> i32 {
///     input.bytes().len() as i32
/// }
/// # let _ = target;
/// ```
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct FuzzInput {
    shm: SharedMemory,
}

impl FuzzInput {
    /// A copy of the input. The area is shared memory: its length word is checked against the
    /// area (a longer one is cut to what the area holds).
    ///
    /// # Examples
    ///
    /// See [`ForkServer::run_input`].
    pub fn bytes(&self) -> Vec<u8> {
        let mut len = [0u8; LEN];
        if self.shm.read_at(0, &mut len).is_err() {
            return Vec::new();
        }
        let n = (u64::from_le_bytes(len) as usize).min(self.shm.len() - LEN);
        let mut v = vec![0u8; n];
        if self.shm.read_at(LEN, &mut v).is_err() {
            v.clear();
        }
        v
    }
}

/// How one input's child ended ([`ForkServer::run_input`]).
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

/// Why [`ForkServer::run_input`] has no outcome.
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
        let chan = UnixStream::from(mine);
        chan.set_nonblocking(true).map_err(ProcFail::Os)?;
        Ok(StationEnd { owner: sys::getpid(), area: area.id, token, chan })
    }
}

/// The requester's end of a station: one input per request (the protocol is in
/// `server_exec.rs`).
#[derive(Debug)]
pub(super) struct StationEnd {
    /// The process that set it up (a forked copy must not use it).
    owner: libc::pid_t,
    area: u64,
    token: InputToken,
    chan: UnixStream,
}

impl StationEnd {
    /// Runs the area's current input once; the server enforces `limit`. A failure to ask is
    /// `Start`, a failure to hear the answer `Wait` (the server died with the child running).
    fn run(&self, limit: Duration) -> Result<ExecOutcome, RunInputError> {
        let ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        let gone = |e: io::Error| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ForkServerError::Timeout,
            io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                ForkServerError::Gone
            }
            _ => ForkServerError::Os(e),
        };
        (&self.chan).write_all(&ns.to_le_bytes()).map_err(|e| RunInputError::Start(StartError::ForkServer(gone(e))))?;
        let wait = |e| RunInputError::Wait(JoinTimeoutError::ForkServer(e));
        let mut m = [0u8; 8];
        let mut got = 0;
        let spin_until = std::time::Instant::now() + SPIN;
        // The server answers at the limit at the latest; past that and a start's patience, it
        // is stuck.
        let patience = crate::sys::clock::Deadline::after(limit.saturating_add(BOOT_TIMEOUT));
        while got < m.len() {
            match (&self.chan).read(&mut m[got..]) {
                Ok(0) => return Err(wait(ForkServerError::Gone)),
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
                Err(e) => return Err(wait(gone(e))),
            }
        }
        let kind = i32::from_le_bytes(m[..4].try_into().expect("4 bytes"));
        let value = i32::from_le_bytes(m[4..].try_into().expect("4 bytes"));
        match kind {
            0 => Ok(ExecOutcome::Exited(value)),
            1 => Ok(ExecOutcome::Signaled(value)),
            2 => Ok(ExecOutcome::TimedOut),
            _ => Err(wait(ForkServerError::Garbage)),
        }
    }
}
